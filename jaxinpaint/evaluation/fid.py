"""Fréchet Inception Distance (Heusel et al. 2017) with the standard FID Inception network.

The network is the Inception-v3 of TensorFlow's 2015 FID graph as `pytorch-fid` ports it: the
torchvision block layout with the FID variants of the A, C and E blocks (average pools that do
not count padding; a max pool in the last block), fed images resized bilinearly to 299×299 and
scaled to [-1, 1]. Its pool3 output (2048 values per image) is the feature; FID is the Fréchet
distance between Gaussians fitted to two feature sets.

No weights ship with jaxinpaint. The usual file is pytorch-fid's
`pt_inception-2015-12-05-6726825d.pth` (see docs/evaluation.md); `launch/evaluate.py` reads it
with torch and hands its state dict to `InceptionFeatures`, and `.npz` files holding the same
state dict (names as keys) load without torch.

FID is a property of two sets, not of an image: it is biased upwards for small sets, and with
fewer images than feature dimensions the covariances are singular. Compare FIDs only between
methods scored on the same images.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

FEATURES = 2048
INPUT_SIZE = 299


class _ConvBN(nn.Module):
    """Conv (no bias) + BatchNorm (running statistics, eps 1e-3) + ReLU: torchvision's
    `BasicConv2d`. Stride-1 convs keep the size; strided ones are unpadded."""

    features: int
    kernel: tuple[int, int]
    stride: int = 1
    padding: str = "SAME"

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(
            self.features,
            self.kernel,
            self.stride,
            padding=self.padding,
            use_bias=False,
            name="conv",
        )(x)
        x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x)
        return nn.relu(x)


def _avg_pool_3x3(x):
    return nn.avg_pool(x, (3, 3), padding="SAME", count_include_pad=False)


def _max_pool_3x3_s2(x):
    return nn.max_pool(x, (3, 3), strides=(2, 2))


class _BlockA(nn.Module):  # Mixed_5b..5d
    pool_features: int

    @nn.compact
    def __call__(self, x):
        b1 = _ConvBN(64, (1, 1), name="branch1x1")(x)
        b5 = _ConvBN(48, (1, 1), name="branch5x5_1")(x)
        b5 = _ConvBN(64, (5, 5), name="branch5x5_2")(b5)
        b3 = _ConvBN(64, (1, 1), name="branch3x3dbl_1")(x)
        b3 = _ConvBN(96, (3, 3), name="branch3x3dbl_2")(b3)
        b3 = _ConvBN(96, (3, 3), name="branch3x3dbl_3")(b3)
        bp = _ConvBN(self.pool_features, (1, 1), name="branch_pool")(_avg_pool_3x3(x))
        return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class _BlockB(nn.Module):  # Mixed_6a: 35² -> 17²
    @nn.compact
    def __call__(self, x):
        b3 = _ConvBN(384, (3, 3), 2, "VALID", name="branch3x3")(x)
        bd = _ConvBN(64, (1, 1), name="branch3x3dbl_1")(x)
        bd = _ConvBN(96, (3, 3), name="branch3x3dbl_2")(bd)
        bd = _ConvBN(96, (3, 3), 2, "VALID", name="branch3x3dbl_3")(bd)
        return jnp.concatenate([b3, bd, _max_pool_3x3_s2(x)], axis=-1)


class _BlockC(nn.Module):  # Mixed_6b..6e: factorised 7×7
    channels_7x7: int

    @nn.compact
    def __call__(self, x):
        c = self.channels_7x7
        b1 = _ConvBN(192, (1, 1), name="branch1x1")(x)
        b7 = _ConvBN(c, (1, 1), name="branch7x7_1")(x)
        b7 = _ConvBN(c, (1, 7), name="branch7x7_2")(b7)
        b7 = _ConvBN(192, (7, 1), name="branch7x7_3")(b7)
        bd = _ConvBN(c, (1, 1), name="branch7x7dbl_1")(x)
        bd = _ConvBN(c, (7, 1), name="branch7x7dbl_2")(bd)
        bd = _ConvBN(c, (1, 7), name="branch7x7dbl_3")(bd)
        bd = _ConvBN(c, (7, 1), name="branch7x7dbl_4")(bd)
        bd = _ConvBN(192, (1, 7), name="branch7x7dbl_5")(bd)
        bp = _ConvBN(192, (1, 1), name="branch_pool")(_avg_pool_3x3(x))
        return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class _BlockD(nn.Module):  # Mixed_7a: 17² -> 8²
    @nn.compact
    def __call__(self, x):
        b3 = _ConvBN(192, (1, 1), name="branch3x3_1")(x)
        b3 = _ConvBN(320, (3, 3), 2, "VALID", name="branch3x3_2")(b3)
        b7 = _ConvBN(192, (1, 1), name="branch7x7x3_1")(x)
        b7 = _ConvBN(192, (1, 7), name="branch7x7x3_2")(b7)
        b7 = _ConvBN(192, (7, 1), name="branch7x7x3_3")(b7)
        b7 = _ConvBN(192, (3, 3), 2, "VALID", name="branch7x7x3_4")(b7)
        return jnp.concatenate([b3, b7, _max_pool_3x3_s2(x)], axis=-1)


class _BlockE(nn.Module):  # Mixed_7b (average pool) and Mixed_7c (max pool)
    max_pool: bool

    @nn.compact
    def __call__(self, x):
        b1 = _ConvBN(320, (1, 1), name="branch1x1")(x)
        b3 = _ConvBN(384, (1, 1), name="branch3x3_1")(x)
        b3 = [
            _ConvBN(384, (1, 3), name="branch3x3_2a")(b3),
            _ConvBN(384, (3, 1), name="branch3x3_2b")(b3),
        ]
        bd = _ConvBN(448, (1, 1), name="branch3x3dbl_1")(x)
        bd = _ConvBN(384, (3, 3), name="branch3x3dbl_2")(bd)
        bd = [
            _ConvBN(384, (1, 3), name="branch3x3dbl_3a")(bd),
            _ConvBN(384, (3, 1), name="branch3x3dbl_3b")(bd),
        ]
        pooled = nn.max_pool(x, (3, 3), padding="SAME") if self.max_pool else _avg_pool_3x3(x)
        bp = _ConvBN(192, (1, 1), name="branch_pool")(pooled)
        return jnp.concatenate([b1, *b3, *bd, bp], axis=-1)


class FIDInceptionV3(nn.Module):
    """Images NHWC in [0, 1] (any size) -> pool3 features [B, 2048]."""

    @nn.compact
    def __call__(self, images_BxHxWx3):
        x = images_BxHxWx3.astype(jnp.float32)
        b = x.shape[0]
        # torch's bilinear `interpolate(align_corners=False)`: half-pixel centres, no antialias.
        x = jax.image.resize(x, (b, INPUT_SIZE, INPUT_SIZE, 3), "bilinear", antialias=False)
        x = 2.0 * x - 1.0
        x = _ConvBN(32, (3, 3), 2, "VALID", name="Conv2d_1a_3x3")(x)
        x = _ConvBN(32, (3, 3), padding="VALID", name="Conv2d_2a_3x3")(x)
        x = _ConvBN(64, (3, 3), name="Conv2d_2b_3x3")(x)
        x = _max_pool_3x3_s2(x)
        x = _ConvBN(80, (1, 1), name="Conv2d_3b_1x1")(x)
        x = _ConvBN(192, (3, 3), padding="VALID", name="Conv2d_4a_3x3")(x)
        x = _max_pool_3x3_s2(x)
        for name, pool_features in (("Mixed_5b", 32), ("Mixed_5c", 64), ("Mixed_5d", 64)):
            x = _BlockA(pool_features, name=name)(x)
        x = _BlockB(name="Mixed_6a")(x)
        for name, c in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
            x = _BlockC(c, name=name)(x)
        x = _BlockD(name="Mixed_7a")(x)
        x = _BlockE(max_pool=False, name="Mixed_7b")(x)
        x = _BlockE(max_pool=True, name="Mixed_7c")(x)
        return jnp.mean(x, axis=(1, 2))


# torch state-dict leaf -> (flax collection, flax leaf, layout change)
_LEAVES = {
    "conv.weight": ("params", "kernel", lambda w: w.transpose(2, 3, 1, 0)),  # OIHW -> HWIO
    "bn.weight": ("params", "scale", None),
    "bn.bias": ("params", "bias", None),
    "bn.running_mean": ("batch_stats", "mean", None),
    "bn.running_var": ("batch_stats", "var", None),
}
_IGNORED = ("fc.", "AuxLogits.")  # the classifier heads, unused for features


def variables_from_state_dict(state_dict: Mapping[str, np.ndarray], source: str = "weights"):
    """Flax variables of `FIDInceptionV3` from a pytorch-fid Inception state dict (arrays or
    tensors converted with `.numpy()`), checked name by name and shape by shape."""
    expected = jax.eval_shape(
        FIDInceptionV3().init, jax.random.key(0), jnp.zeros((1, INPUT_SIZE, INPUT_SIZE, 3))
    )
    variables: dict = {"params": {}, "batch_stats": {}}
    for key, value in state_dict.items():
        if key.endswith("num_batches_tracked") or key.startswith(_IGNORED):
            continue
        module, _, leaf = key.rpartition(".")
        module, _, layer = module.rpartition(".")
        if not module or f"{layer}.{leaf}" not in _LEAVES:
            raise ValueError(f"{source}: unexpected entry {key!r}; is this an Inception-v3?")
        collection, name, layout = _LEAVES[f"{layer}.{leaf}"]
        array = np.asarray(value, np.float32)
        node = variables[collection]
        for part in (*module.split("."), layer):
            node = node.setdefault(part, {})
        node[name] = layout(array) if layout and array.ndim == 4 else array  # else: shape error

    flat_expected = dict(jax.tree_util.tree_leaves_with_path(expected))
    flat_given = dict(jax.tree_util.tree_leaves_with_path(variables))
    for path, spec in flat_expected.items():
        name = jax.tree_util.keystr(path)
        if path not in flat_given:
            raise ValueError(f"{source}: missing {name}; is this pytorch-fid's FID Inception?")
        if flat_given[path].shape != spec.shape:
            raise ValueError(
                f"{source}: {name} has shape {flat_given[path].shape}, expected {spec.shape}"
            )
    extra = set(flat_given) - set(flat_expected)
    if extra:
        name = jax.tree_util.keystr(sorted(extra, key=str)[0])
        raise ValueError(f"{source}: unexpected entry {name}; is this an Inception-v3?")
    return jax.tree.map(jnp.asarray, variables)


def load_state_dict_npz(path: str | Path) -> dict[str, np.ndarray]:
    """The state dict stored in an `.npz` (one array per state-dict name)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Inception weights {path} do not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError) as e:
        raise ValueError(f"Inception weights {path} are not a readable .npz file ({e})") from e


class InceptionFeatures:
    """`InceptionFeatures(state_dict)(images) -> float64 [B, 2048]`, images NHWC uint8 or
    float in [0, 1], fed through the jitted network `batch_size` at a time. It runs at full
    float32 precision (GPUs default to TF32 convolutions), so FIDs compare across machines."""

    def __init__(self, state_dict: Mapping[str, np.ndarray], *, batch_size=16, source="weights"):
        self.variables = variables_from_state_dict(state_dict, source)
        self.batch_size = batch_size
        self._apply = jax.jit(FIDInceptionV3().apply)

    def __call__(self, images_BxHxWx3) -> np.ndarray:
        images = np.asarray(images_BxHxWx3)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"FID images must be BxHxWx3, got shape {images.shape}")
        if images.dtype == np.uint8:
            images = images.astype(np.float32) / 255.0
        out = []
        for i in range(0, len(images), self.batch_size):
            chunk = images[i : i + self.batch_size]
            # A short chunk is padded to the next power of two, not to the whole batch: a few
            # compiled shapes, and a set of 4 images costs 4 forward passes, not 16.
            size = min(self.batch_size, 1 << (len(chunk) - 1).bit_length())
            padded = np.concatenate(
                [chunk, np.zeros((size - len(chunk), *chunk.shape[1:]), chunk.dtype)]
            )
            with jax.default_matmul_precision("highest"):
                features = self._apply(self.variables, padded)
            out.append(np.asarray(features)[: len(chunk)])
        return np.concatenate(out).astype(np.float64) if out else np.zeros((0, FEATURES))


def gaussian_statistics(features_NxD: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (unbiased, as pytorch-fid and the TF reference) of the features."""
    features = _checked(features_NxD)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _checked(features_NxD) -> np.ndarray:
    features = np.asarray(features_NxD, np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"FID needs at least 2 feature vectors, got shape {features.shape}")
    return features


def _sqrt_psd(sigma: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(sigma)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||² + Tr(S1 + S2 - 2 (S1 S2)^½).

    Tr (S1 S2)^½ is the sum of the square roots of the eigenvalues of S1^½ S2 S1^½, a symmetric
    PSD matrix: two `eigh` calls, no complex round-off and no regulariser for singular
    covariances (scipy's `sqrtm` of the product, as pytorch-fid uses, needs both)."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"statistics differ in shape: {mu1.shape} vs {mu2.shape}")
    root1 = _sqrt_psd(sigma1)
    eigenvalues = np.linalg.eigvalsh(root1 @ sigma2 @ root1)
    trace_covmean = np.sqrt(np.clip(eigenvalues, 0.0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_covmean)


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """FID between two feature sets (each N×2048 from `InceptionFeatures`).

    With fewer vectors than dimensions (an evaluation split of a few hundred faces) the D×D
    covariances are never formed: with X the centred features, S = XᵀX / (N-1), and
    Tr (Sa Sb)^½ is the sum of the singular values of Xa Xbᵀ / sqrt((Na-1)(Nb-1)) — exact, and
    Na×Nb instead of 2048×2048."""
    a, b = _checked(features_a), _checked(features_b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sets differ in width: {a.shape[1]} vs {b.shape[1]}")
    if max(len(a), len(b)) > a.shape[1]:
        return frechet_distance(*gaussian_statistics(a), *gaussian_statistics(b))
    na, nb = len(a), len(b)
    xa, xb = a - a.mean(axis=0), b - b.mean(axis=0)
    trace_covmean = np.linalg.svd(xa @ xb.T, compute_uv=False).sum() / np.sqrt((na - 1) * (nb - 1))
    diff = a.mean(axis=0) - b.mean(axis=0)
    traces = np.sum(xa**2) / (na - 1) + np.sum(xb**2) / (nb - 1)
    return float(diff @ diff + traces - 2.0 * trace_covmean)
