"""The inpainting GAN: train state, initialisation and the pure train step.

`InpaintingGAN(config)` holds the (stateless) Flax modules and optax transforms built from the
config; `init(rng)` makes a `TrainState` and `train_step(state, batch, rng, frozen)` returns
the next state and the step's metrics. Both are pure, so `jaxinpaint.train` can wrap them in
`jax.jit` with explicit shardings. `frozen` (`InpaintingGAN.frozen_params()`) holds the weights
of the fixed networks the losses read: VGG16 and the face mesh, each None when no loss uses it;
they never reach an optimizer or a checkpoint.

One forward pass serves both players: `jax.vjp` of `(gen_loss, disc_loss)` is pulled back twice,
once with cotangent (1, 0) for the generator's gradients and once with (0, 1) for the
discriminators'; under jit the unused halves are dead code. The discriminators therefore judge
the composites with their parameters from before this step (a simultaneous update).
"""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from jaxinpaint import backends, losses
from jaxinpaint.models import (
    crop,
    discriminators_from_config,
    face_mesh,
    generator_from_config,
    hole_crop_origin,
)
from jaxinpaint.vgg import VGG16Features, load_vgg16_params

Batch = dict[str, jax.Array]

# XLA options for functions that run once (initialisation): ~4x faster to compile, same values.
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


@flax.struct.dataclass
class TrainState:
    """Everything that changes during training (and goes into a checkpoint)."""

    step: jax.Array
    gen_params: Any
    disc_params: Any  # {"global": ..., "local": ...}
    gen_opt_state: Any
    disc_opt_state: Any
    # The generator that validation, samples and inference use: an exponential moving average of
    # `gen_params` (`config.gen_optim.ema`), or `gen_params` itself when that is 0.
    gen_ema: Any


def ema_decay(step: jax.Array, decay: float) -> jax.Array:
    """The average's decay at `step`: `decay`, ramped up as (1 + step) / (10 + step) early on.

    The ramp (as in TensorFlow's `ExponentialMovingAverage(num_updates=...)`) lets a short run's
    average follow its first steps instead of staying at the initialisation.
    """
    step = step.astype(jnp.float32)
    return jnp.minimum(decay, (1.0 + step) / (10.0 + step))


def _optimizer(optim_config) -> optax.GradientTransformation:
    adam = optax.adam(optim_config.lr, b1=optim_config.b1, b2=optim_config.b2)
    if optim_config.grad_clip > 0:
        return optax.chain(optax.clip_by_global_norm(optim_config.grad_clip), adam)
    return adam


def prepare_batch(batch: Batch) -> tuple[jax.Array, jax.Array, jax.Array]:
    """uint8 `occluded`, `original`, `mask` → float32 (occluded, target, hole) in [0, 1]."""
    occluded = batch["occluded"].astype(jnp.float32) / 255.0
    target = batch["original"].astype(jnp.float32) / 255.0
    hole = (batch["mask"] > 0).astype(jnp.float32)
    return occluded, target, hole


COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def compute_dtype(config) -> jnp.dtype:
    """`config.compute_dtype` ("float32" when absent): the dtype of the models' activations and
    convolutions. Parameters, optimizer states, losses and their reductions stay float32."""
    name = config.get("compute_dtype", "float32")
    if name not in COMPUTE_DTYPES:
        raise ValueError(
            f"config.compute_dtype must be one of {list(COMPUTE_DTYPES)}, got {name!r}"
        )
    return COMPUTE_DTYPES[name]


class InpaintingGAN:
    """Modules, optimizers and pure functions of one config, for the devices of `platform`
    ("cpu", "gpu", "tpu"; default: JAX's default backend), which picks `config.layer_ops`."""

    def __init__(self, config, platform: str | None = None):
        self.config = config
        dtype = compute_dtype(config)
        self.ops = backends.layer_ops(
            config.get("layer_ops", "auto"), platform or jax.default_backend()
        )
        self.generator = generator_from_config(config.gen, dtype, self.ops)
        self.discriminators = discriminators_from_config(config.disc, dtype, self.ops)
        self.vgg = VGG16Features(dtype, self.ops)
        # VGG16 is most of a small model's step: skipped when no loss term reads its features.
        self.uses_vgg = config.loss.perceptual > 0 or config.loss.style > 0
        # The face mesh (frozen) for the structure term, when it has a weight.
        self.face_mesh = face_mesh.FaceMeshNet()
        self.uses_mesh = config.loss.get("structure", 0.0) > 0
        if config.loss.get("structure", 0.0) < 0:
            raise ValueError(
                f"config.loss.structure must be >= 0 (0 = off), got {config.loss.structure}"
            )
        self.gen_tx = _optimizer(config.gen_optim)
        self.disc_tx = _optimizer(config.disc_optim)
        self.local_size = config.disc.local_size
        self.ema = config.gen_optim.get("ema", 0.0)
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"config.gen_optim.ema must be in [0, 1), got {self.ema}")
        if config.loss.adv_loss not in losses.ADV_LOSSES:
            raise ValueError(
                f"config.loss.adv_loss must be one of {losses.ADV_LOSSES}, "
                f"got {config.loss.adv_loss!r}"
            )
        size = config.image_size
        if not 0 < self.local_size <= size:
            raise ValueError(
                f"config.disc.local_size must be in 1..image_size={size}, got {self.local_size}"
            )

    def frozen_params(self) -> dict:
        """The fixed networks' weights for `train_step` (numpy): {"vgg", "face_mesh"}, each None
        when no loss term reads it, so neither is loaded nor run."""
        loss = self.config.loss
        return {
            "vgg": load_vgg16_params(loss.vgg_weights or None) if self.uses_vgg else None,
            "face_mesh": face_mesh.load_face_mesh_params() if self.uses_mesh else None,
        }

    def dummy_batch(self, batch_size: int) -> Batch:
        """A zero batch of the config's image size (for initialisation and shape checks)."""
        s = self.config.image_size
        return {
            "occluded": jnp.zeros((batch_size, s, s, 3), jnp.uint8),
            "original": jnp.zeros((batch_size, s, s, 3), jnp.uint8),
            "mask": jnp.zeros((batch_size, s, s, 1), jnp.uint8),
        }

    def init(self, rng: jax.Array) -> TrainState:
        """Fresh parameters and optimizer states from `rng`."""
        gen_rng, global_rng, local_rng = jax.random.split(rng, 3)
        occluded, _, hole = prepare_batch(self.dummy_batch(1))
        gen_params = self.generator.init(gen_rng, occluded, hole, train=False)["params"]
        crop_img = occluded[:, : self.local_size, : self.local_size]
        disc_params = {
            "global": self.discriminators["global"].init(global_rng, occluded)["params"],
            "local": self.discriminators["local"].init(local_rng, crop_img)["params"],
        }
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            gen_params=gen_params,
            disc_params=disc_params,
            gen_opt_state=self.gen_tx.init(gen_params),
            disc_opt_state=self.disc_tx.init(disc_params),
            gen_ema=gen_params,
        )

    def generate(self, gen_params: Any, batch: Batch) -> tuple[jax.Array, jax.Array]:
        """Inference: `(pred, composite)` in [0, 1] with dropout off."""
        occluded, _, hole = prepare_batch(batch)
        return self.generator.apply({"params": gen_params}, occluded, hole, train=False)

    def _structure(self, composite, target, hole, mesh_params) -> jax.Array:
        """`losses.structure` of the mesh's points on the composite against the original's, both
        crops framed for the mesh (`face_mesh.crop_to_window`); the weights are the hole at the
        original's points. Gradients reach the composite, never the mesh's weights."""
        mesh_params = jax.lax.stop_gradient(mesh_params)
        windows = face_mesh.crop_to_window(jnp.concatenate([composite, target]))
        points, _ = self.face_mesh.apply(mesh_params, windows)
        points_comp, points_gt = jnp.split(points[..., :2] / face_mesh.INPUT_SIZE, 2)
        points_gt = jax.lax.stop_gradient(points_gt)
        size = hole.shape[1]
        at = face_mesh.window_to_crop(points_gt * face_mesh.INPUT_SIZE, size)
        weights = (face_mesh.sample_at(hole[..., 0], at) >= 0.5).astype(jnp.float32)
        return losses.structure(points_comp, points_gt, weights)

    def _losses(self, gen_params, disc_params, batch, rng, frozen):
        occluded, target, hole = prepare_batch(batch)
        pred, composite = self.generator.apply(
            {"params": gen_params}, occluded, hole, train=True, rngs={"dropout": rng}
        )
        origin = hole_crop_origin(hole, self.local_size)
        fake = {"global": composite, "local": crop(composite, origin, self.local_size)}
        real = {"global": target, "local": crop(target, origin, self.local_size)}
        logits_fake, logits_real = {}, {}
        for name, disc in self.discriminators.items():
            both = disc.apply(
                {"params": disc_params[name]}, jnp.concatenate([fake[name], real[name]])
            )
            logits_fake[name], logits_real[name] = jnp.split(both, 2)

        feats_out = feats_comp = feats_gt = None
        if self.uses_vgg:
            feats = self.vgg.apply(frozen["vgg"], jnp.concatenate([pred, composite, target]))
            thirds = [jnp.split(f, 3) for f in feats]
            feats_out = [t[0] for t in thirds]
            feats_comp = [t[1] for t in thirds]
            feats_gt = [jax.lax.stop_gradient(t[2]) for t in thirds]

        structure_term = None
        if self.uses_mesh:
            structure_term = self._structure(composite, target, hole, frozen["face_mesh"])

        kind = self.config.loss.adv_loss
        gen_loss, gen_metrics = losses.generator_loss(
            pred=pred,
            composite=composite,
            target=target,
            hole=hole,
            feats_out=feats_out,
            feats_comp=feats_comp,
            feats_gt=feats_gt,
            logits_fake=logits_fake,
            weights=self.config.loss,
            adv_kind=kind,
            structure_term=structure_term,
        )
        disc_loss, disc_metrics = losses.discriminator_loss(logits_real, logits_fake, kind)
        return (gen_loss, disc_loss), {**gen_metrics, **disc_metrics}

    def train_step(
        self, state: TrainState, batch: Batch, rng: jax.Array, frozen: dict
    ) -> tuple[TrainState, dict[str, jax.Array]]:
        """One generator update and one discriminator update; pure. `frozen`: see
        `frozen_params`."""
        rng = jax.random.fold_in(rng, state.step)
        (gen_loss, disc_loss), pullback, metrics = jax.vjp(
            lambda g, d: self._losses(g, d, batch, rng, frozen),
            state.gen_params,
            state.disc_params,
            has_aux=True,
        )
        one, zero = jnp.ones_like(gen_loss), jnp.zeros_like(disc_loss)
        gen_grads, _ = pullback((one, zero))
        _, disc_grads = pullback((zero, one))

        gen_updates, gen_opt_state = self.gen_tx.update(
            gen_grads, state.gen_opt_state, state.gen_params
        )
        disc_updates, disc_opt_state = self.disc_tx.update(
            disc_grads, state.disc_opt_state, state.disc_params
        )
        metrics["gen/grad_norm"] = optax.tree.norm(gen_grads)
        metrics["disc/grad_norm"] = optax.tree.norm(disc_grads)
        gen_params = optax.apply_updates(state.gen_params, gen_updates)
        if self.ema > 0:
            decay = ema_decay(state.step, self.ema)
            gen_ema = optax.incremental_update(gen_params, state.gen_ema, 1.0 - decay)
        else:
            gen_ema = gen_params
        new_state = state.replace(
            step=state.step + 1,
            gen_params=gen_params,
            gen_ema=gen_ema,
            disc_params=optax.apply_updates(state.disc_params, disc_updates),
            gen_opt_state=gen_opt_state,
            disc_opt_state=disc_opt_state,
        )
        return new_state, metrics
