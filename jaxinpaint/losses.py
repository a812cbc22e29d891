"""Inpainting losses (Liu et al. 2018, as in seed 5.3.1) and the adversarial losses.

Every function is pure and returns `(loss, metrics)`; metric keys are prefixed `gen/` or `disc/`.
Images are NHWC in [0, 1]; `hole` is 1 on the pixels to fill. Normalisations follow the seed:
pixel and feature L1 are means over all elements; Gram matrices are divided by C·H·W.

Adversarial formulation: hinge loss by default (`"hinge"`; Lim & Ye 2017, as in SAGAN and
DeepFill v2). The discriminator's loss is bounded: once it scores a sample beyond the margin it
stops pushing on it, which keeps it from running away from a generator that starts far behind,
and the generator's term `−D(fake)` never saturates. The non-saturating logistic loss
(`"nonsat"`, computed from logits with softplus so it cannot overflow) is the alternative.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp

ADV_LOSSES = ("hinge", "nonsat")


def l1_valid_hole(
    pred: jax.Array, target: jax.Array, hole: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Mean |pred − target| over the known pixels and over the hole (both ÷ all elements)."""
    err = jnp.abs(pred - target)
    return jnp.mean((1.0 - hole) * err), jnp.mean(hole * err)


def perceptual(
    feats_out: Sequence[jax.Array], feats_comp: Sequence[jax.Array], feats_gt: Sequence[jax.Array]
) -> jax.Array:
    """Σ_layers mean|φ(out) − φ(gt)| + mean|φ(comp) − φ(gt)|."""
    return sum(
        jnp.mean(jnp.abs(o - g)) + jnp.mean(jnp.abs(c - g))
        for o, c, g in zip(feats_out, feats_comp, feats_gt, strict=True)
    )


def gram(feat_BxHxWxC: jax.Array) -> jax.Array:
    """Gram matrix `[B, C, C]` divided by C·H·W (computed in float32)."""
    b, h, w, c = feat_BxHxWxC.shape
    f = feat_BxHxWxC.reshape(b, h * w, c).astype(jnp.float32)
    return jnp.einsum("bnc,bnd->bcd", f, f) / (c * h * w)


def style(
    feats_out: Sequence[jax.Array], feats_comp: Sequence[jax.Array], feats_gt: Sequence[jax.Array]
) -> jax.Array:
    """Σ_layers mean|G(out) − G(gt)| + mean|G(comp) − G(gt)| over Gram matrices G."""
    total = 0.0
    for o, c, g in zip(feats_out, feats_comp, feats_gt, strict=True):
        gram_gt = gram(g)
        total += jnp.mean(jnp.abs(gram(o) - gram_gt)) + jnp.mean(jnp.abs(gram(c) - gram_gt))
    return total


def dilate(hole_BxHxWx1: jax.Array) -> jax.Array:
    """Hole grown by one pixel (3×3 max filter)."""
    return jax.lax.reduce_window(
        hole_BxHxWx1, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 1, 1, 1), "SAME"
    )


def total_variation(composite: jax.Array, hole: jax.Array) -> jax.Array:
    """Mean |neighbour differences| of the composite restricted to the 1-pixel-dilated hole."""
    p = dilate(hole) * composite
    return jnp.mean(jnp.abs(p[:, 1:] - p[:, :-1])) + jnp.mean(jnp.abs(p[:, :, 1:] - p[:, :, :-1]))


def structure(
    points_comp_BxNx2: jax.Array, points_gt_BxNx2: jax.Array, weights_BxN: jax.Array
) -> jax.Array:
    """The structure term (the seed's parsing regulariser, 6.2.1, with the face mesh as the
    fixed network): the weighted mean over points of |dx| + |dy| between the mesh's points on the
    composite and on the original, in the units the points come in (the train step: fractions of
    the mesh's window). `weights` are 1 on the points that lie in the hole (0 when no point
    does: the term is then 0, not NaN)."""
    err = jnp.sum(jnp.abs(points_comp_BxNx2 - points_gt_BxNx2), axis=-1)
    return jnp.sum(weights_BxN * err) / jnp.maximum(jnp.sum(weights_BxN), 1.0)


def adversarial_generator(logits_fake: jax.Array, kind: str) -> jax.Array:
    """The generator's adversarial loss on the discriminator's logits for its composites."""
    if kind == "hinge":
        return -jnp.mean(logits_fake)
    if kind == "nonsat":
        return jnp.mean(jax.nn.softplus(-logits_fake))
    raise ValueError(f"config.loss.adv_loss must be one of {ADV_LOSSES}, got {kind!r}")


def adversarial_discriminator(
    logits_real: jax.Array, logits_fake: jax.Array, kind: str
) -> jax.Array:
    """The discriminator's loss: real → high, fake → low."""
    if kind == "hinge":
        return jnp.mean(jax.nn.relu(1.0 - logits_real)) + jnp.mean(jax.nn.relu(1.0 + logits_fake))
    if kind == "nonsat":
        return jnp.mean(jax.nn.softplus(-logits_real)) + jnp.mean(jax.nn.softplus(logits_fake))
    raise ValueError(f"config.loss.adv_loss must be one of {ADV_LOSSES}, got {kind!r}")


def generator_loss(
    *,
    pred: jax.Array,
    composite: jax.Array,
    target: jax.Array,
    hole: jax.Array,
    feats_out: Sequence[jax.Array] | None,
    feats_comp: Sequence[jax.Array] | None,
    feats_gt: Sequence[jax.Array] | None,
    logits_fake: Mapping[str, jax.Array],
    weights: Mapping[str, float],
    adv_kind: str,
    structure_term: jax.Array | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Weighted sum of the reconstruction terms and the adversarial terms of each discriminator.
    Without VGG features (`feats_* = None`: both their weights are 0) the perceptual and style
    terms are left out; `structure_term` (`structure`'s value, weighted by `weights.structure`)
    is added when given."""
    valid, in_hole = l1_valid_hole(pred, target, hole)
    terms = {"l1_valid": valid, "l1_hole": in_hole}
    if feats_out is not None:
        terms["perceptual"] = perceptual(feats_out, feats_comp, feats_gt)
        terms["style"] = style(feats_out, feats_comp, feats_gt)
    terms["tv"] = total_variation(composite, hole)
    if structure_term is not None:
        terms["structure"] = structure_term
    for name, logits in logits_fake.items():
        terms[f"adv_{name}"] = adversarial_generator(logits, adv_kind)
    weight_of = {
        "l1_valid": weights["valid"],
        "l1_hole": weights["hole"],
        "perceptual": weights["perceptual"],
        "style": weights["style"],
        "tv": weights["tv"],
        "structure": weights.get("structure", 0.0),
    }
    loss = sum(weight_of.get(k, weights["adv"]) * v for k, v in terms.items())
    metrics = {f"gen/{k}": v for k, v in terms.items()}
    metrics["gen/loss"] = loss
    # PSNR of the composite, a readable progress number (images in [0, 1]).
    mse = jnp.mean((composite - target) ** 2)
    metrics["gen/psnr"] = -10.0 * jnp.log10(jnp.maximum(mse, 1e-10))
    return loss, metrics


def discriminator_loss(
    logits_real: Mapping[str, jax.Array],
    logits_fake: Mapping[str, jax.Array],
    adv_kind: str,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Sum of each discriminator's loss, with mean logits as metrics."""
    metrics = {}
    loss = 0.0
    for name in logits_real:
        term = adversarial_discriminator(logits_real[name], logits_fake[name], adv_kind)
        loss += term
        metrics[f"disc/{name}"] = term
        metrics[f"disc/{name}_real_logit"] = jnp.mean(logits_real[name])
        metrics[f"disc/{name}_fake_logit"] = jnp.mean(logits_fake[name])
    metrics["disc/loss"] = loss
    return loss, metrics
