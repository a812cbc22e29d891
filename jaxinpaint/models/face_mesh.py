"""MediaPipe's face mesh network (`face_landmark.tflite`) as a frozen Flax module.

The network is the one `data_pipeline.landmarks.FaceMesh` runs through OpenCV: a 192x192 RGB
window in [0, 1] (NHWC) in; 468 points (x, y in the window's pixels, z in the same scale) and
one face-presence logit out. Here it is differentiable and batched, for the structure loss
(`jaxinpaint.losses.structure`) and the structure metric of the evaluation.

Its weights are read from the same `.tflite` file at load time (`load_face_mesh_params`), so
none are copied into the repository. The file stores them as float16 constants that a
DEQUANTIZE op turns into float32 before each layer; that is a plain cast (float16 -> float32 is
exact), done here once when loading.

The graph (read with `tf.lite.Interpreter(path)._get_ops_details()` and the operators' options):
a 3x3 stride-2 conv and PReLU, then residual blocks `PReLU(shortcut(x) + conv1x1(dw3x3(x)))`,
where a stride-2 block's shortcut is a 2x2 max pool and a widening block's pads its channels with
zeros; after the 14 blocks of the trunk (6x6x128) two heads: the mesh's (blocks to 3x3x32, then
a 3x3 VALID conv to 1404 numbers) and the face's (to one logit). Every depthwise conv and the
first conv use TFLite's SAME padding (the odd pixel at the end, as `lax`'s "SAME"; padding both
sides of one stride-2 depthwise conv instead moves the points by 2-12 px), the 1x1 and head
convs VALID. Layers are named as in the file (`conv2d_7`, `p_re_lu_7`, ...), so
loading is a match of names.
"""

from __future__ import annotations

import functools
import os
import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from data_pipeline import landmarks
from data_pipeline.landmarks import LEFT_BROW, LEFT_EYE, LIPS, RIGHT_BROW, RIGHT_EYE

# The file `data_pipeline.landmarks.FaceMesh` reads (MediaPipe 0.10.21's, Apache-2.0).
MESH_PATH = landmarks.MESH_PATH
INPUT_SIZE = landmarks.MESH_INPUT
NUM_POINTS = 468

# Residual blocks: (depthwise conv, 1x1 conv, PReLU) numbers as named in the file, stride, width.
_TRUNK = (
    (1, 2, 2, 1, 16),
    (2, 3, 3, 1, 16),
    (3, 4, 4, 2, 32),
    (4, 5, 5, 1, 32),
    (5, 6, 6, 1, 32),
    (6, 7, 7, 2, 64),
    (7, 8, 8, 1, 64),
    (8, 9, 9, 1, 64),
    (9, 10, 10, 2, 128),
    (10, 11, 11, 1, 128),
    (11, 12, 12, 1, 128),
    (12, 13, 13, 2, 128),
    (13, 14, 14, 1, 128),
    (14, 15, 15, 1, 128),
)
# Each head: blocks at 128 channels, a 1x1 conv to 32 + PReLU, one block at 32, the output conv.
_MESH_HEAD = dict(
    blocks=((15, 16, 16, 2, 128), (16, 17, 17, 1, 128), (17, 18, 18, 1, 128)),
    narrow=(19, 19),
    block32=(18, 20, 20, 1, 32),
    out=(21, 3 * NUM_POINTS),
)
_FACE_HEAD = dict(
    blocks=((23, 28, 26, 2, 128),),
    narrow=(29, 27),
    block32=(24, 30, 28, 1, 32),
    out=(31, 1),
)


class PReLU(nn.Module):
    """TFLite's PRELU: x where x >= 0, alpha * x elsewhere, one alpha per channel."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        alpha = self.param("alpha", nn.initializers.zeros, (x.shape[-1],), jnp.float32)
        return jnp.where(x >= 0, x, alpha * x)


class DepthwiseConv3x3(nn.Module):
    """TFLite's DEPTHWISE_CONV_2D (3x3, multiplier 1, SAME padding) as nine shifted multiply-adds.

    The same sum as `lax.conv_general_dilated(..., feature_group_count=C)`, which XLA:CPU runs
    60x slower (122 vs 1.8 ms for 8x96x96x16 on this machine); elementwise, it fuses into one
    loop on any backend. The kernel is kept in Flax's grouped-conv layout [3, 3, 1, C]."""

    stride: int = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = x.shape[-1]
        kernel = self.param("kernel", nn.initializers.zeros, (3, 3, 1, c), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (c,), jnp.float32)
        s = self.stride
        out_hw = [-(-n // s) for n in x.shape[1:3]]
        # SAME: total padding (out - 1) * s + 3 - n, the odd pixel at the end (TensorFlow's rule).
        pads = [max((o - 1) * s + 3 - n, 0) for o, n in zip(out_hw, x.shape[1:3], strict=True)]
        x = jnp.pad(x, ((0, 0), (pads[0] // 2, pads[0] - pads[0] // 2),
                        (pads[1] // 2, pads[1] - pads[1] // 2), (0, 0)))  # fmt: skip
        (oh, ow) = out_hw
        out = bias
        for dy in range(3):
            for dx in range(3):
                window = x[:, dy : dy + (oh - 1) * s + 1 : s, dx : dx + (ow - 1) * s + 1 : s]
                out = out + window * kernel[dy, dx, 0]
        return out


def _conv(name: str, features: int, kernel: int, stride: int = 1, padding: str = "VALID"):
    return nn.Conv(features, (kernel, kernel), (stride, stride), padding=padding, name=name)


class FaceMeshNet(nn.Module):
    """`FaceMeshNet()(img_Bx192x192x3)` with RGB in [0, 1] -> (points_Bx468x3 in the input's
    pixels, face logit_B; `jax.nn.sigmoid` of it is the face presence). Float32 throughout."""

    def _block(self, x: jax.Array, spec: tuple[int, int, int, int, int]) -> jax.Array:
        dw, pw, act, stride, width = spec
        cin = x.shape[-1]
        y = DepthwiseConv3x3(stride, name=f"depthwise_conv2d_{dw}")(x)
        y = _conv(f"conv2d_{pw}", width, 1)(y)
        if stride == 2:
            x = nn.max_pool(x, (2, 2), (2, 2), "VALID")
        if width > cin:
            x = jnp.pad(x, ((0, 0), (0, 0), (0, 0), (0, width - cin)))
        return PReLU(name=f"p_re_lu_{act}")(x + y)

    def _head(self, x: jax.Array, spec: dict) -> jax.Array:
        for block in spec["blocks"]:
            x = self._block(x, block)
        conv, act = spec["narrow"]
        x = PReLU(name=f"p_re_lu_{act}")(_conv(f"conv2d_{conv}", 32, 1)(x))
        x = self._block(x, spec["block32"])
        conv, features = spec["out"]
        return _conv(f"conv2d_{conv}", features, 3, stride=3)(x)  # 3x3 -> 1x1

    @nn.compact
    def __call__(self, img_Bx192x192x3: jax.Array) -> tuple[jax.Array, jax.Array]:
        if img_Bx192x192x3.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3):
            raise ValueError(
                f"the face mesh takes [B, {INPUT_SIZE}, {INPUT_SIZE}, 3] images, "
                f"got {img_Bx192x192x3.shape}"
            )
        x = img_Bx192x192x3.astype(jnp.float32)
        x = _conv("conv2d_1", 16, 3, stride=2, padding="SAME")(x)
        x = PReLU(name="p_re_lu_1")(x)
        for block in _TRUNK:
            x = self._block(x, block)
        points = self._head(x, _MESH_HEAD).reshape(-1, NUM_POINTS, 3)
        logit = self._head(x, _FACE_HEAD).reshape(-1)
        return points, logit


def _from_tflite(name: str, array: np.ndarray) -> np.ndarray:
    """One constant in Flax's layout: CONV_2D kernels OHWI -> HWIO, DEPTHWISE_CONV_2D kernels
    1HWC -> HW1C, PReLU alphas 1x1xC -> C; float16 -> float32 as DEQUANTIZE does (exact)."""
    array = np.asarray(array, np.float32)
    layer, kind = name.split("/")
    if kind == "Kernel":
        axes = (1, 2, 0, 3) if layer.startswith("depthwise") else (1, 2, 3, 0)
        return array.transpose(axes)
    if kind == "Alpha":
        return array.reshape(-1)
    return array


@functools.lru_cache(maxsize=2)
def _load_cached(path: str) -> dict:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"face mesh model {path!r} is missing; reinstall the package")
    import tensorflow as tf  # only here: the rest of this module needs no TensorFlow

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the interpreter's notice that LiteRT replaces it
            interpreter = tf.lite.Interpreter(model_path=path)
    except ValueError as e:
        raise ValueError(f"{path} is not a TFLite model: {e}") from None
    # Constants are readable before allocate_tensors(); only weights have these suffixes.
    params: dict[str, dict[str, np.ndarray]] = {}
    leaf = {"Kernel": "kernel", "Bias": "bias", "Alpha": "alpha"}
    for detail in interpreter.get_tensor_details():
        name = detail["name"]
        parts = name.split("/")
        if len(parts) == 2 and parts[1] in leaf:
            array = _from_tflite(name, interpreter.get_tensor(detail["index"]))
            params.setdefault(parts[0], {})[leaf[parts[1]]] = array

    want = jax.eval_shape(
        FaceMeshNet().init, jax.random.key(0), jnp.zeros((1, INPUT_SIZE, INPUT_SIZE, 3))
    )["params"]
    want_shapes = {f"{k}/{p}": v.shape for k, d in want.items() for p, v in d.items()}
    got_shapes = {f"{k}/{p}": v.shape for k, d in params.items() for p, v in d.items()}
    if want_shapes != got_shapes:
        differ = sorted(
            k for k in want_shapes.keys() | got_shapes.keys()
            if want_shapes.get(k) != got_shapes.get(k)
        )  # fmt: skip
        raise ValueError(
            f"{path} does not hold MediaPipe's 468-point face mesh network: its weights "
            f"{', '.join(differ[:5])} differ in name or shape from the ones expected"
        )
    return {"params": params}


def load_face_mesh_params(path: str | None = None) -> dict:
    """The network's weights (`{"params": {...}}`, float32 numpy) read from the `.tflite` file
    (default: the one `data_pipeline` ships). Cached per path."""
    return _load_cached(os.path.abspath(path or MESH_PATH))


# The mesh's points of the face's parts (`data_pipeline.landmarks`), as one tuple.
PARTS = RIGHT_EYE + LEFT_EYE + RIGHT_BROW + LEFT_BROW + LIPS


def template_matrix(size: int) -> np.ndarray:
    """The 2x3 matrix from the pixels of a `size`-square aligned crop (`data_pipeline.align`'s
    template) to the mesh's window, framed as `landmarks.FaceMesh` frames a face BlazeFace found:
    the box `landmarks.keypoint_box` draws around the template's keypoints, times MESH_SCALE. The
    crop is upright, so this is a scale and a shift; the window reaches a little past the crop's
    sides and bottom (black there, as `cv2.warpAffine` leaves it)."""
    from data_pipeline import align

    points = align.TEMPLATE * size
    keypoints = np.concatenate([points, points[:2]])  # ears: unused by the box and the matrix
    return landmarks.mesh_matrix(keypoints, landmarks.keypoint_box(keypoints))


def _resample_matrix(scale: float, shift: float, n_out: int, n_in: int) -> np.ndarray:
    """[n_out, n_in]: linear interpolation of output pixel o at input position (o - shift) /
    scale, zero outside the input (pixel centres at integers, as `cv2.warpAffine`)."""
    pos = (np.arange(n_out, dtype=np.float64) - shift) / scale
    lo = np.floor(pos)
    frac = pos - lo
    out = np.zeros((n_out, n_in), np.float64)
    for index, weight in ((lo, 1.0 - frac), (lo + 1, frac)):
        inside = (index >= 0) & (index < n_in)
        out[np.nonzero(inside)[0], index[inside].astype(int)] += weight[inside]
    return out.astype(np.float32)


def crop_to_window(crop_BxSxSxC: jax.Array) -> jax.Array:
    """Aligned crops -> the mesh's [B, 192, 192, C] windows (`template_matrix`), by bilinear
    interpolation written as two matrix products: differentiable in the crop, cheap, and the same
    sampling as `cv2.warpAffine(crop, template_matrix(S), ..., INTER_LINEAR)`."""
    size = crop_BxSxSxC.shape[1]
    matrix = template_matrix(size)
    rows = _resample_matrix(matrix[1, 1], matrix[1, 2], INPUT_SIZE, size)
    cols = _resample_matrix(matrix[0, 0], matrix[0, 2], INPUT_SIZE, size)
    x = crop_BxSxSxC.astype(jnp.float32)
    hi = jax.lax.Precision.HIGHEST
    x = jnp.einsum("ys,bsxc->byxc", rows, x, precision=hi)
    return jnp.einsum("xt,bytc->byxc", cols, x, precision=hi)


def window_to_crop(points_BxNx2: jax.Array, size: int) -> jax.Array:
    """Window pixels -> the pixels of the `size`-square aligned crop (`template_matrix`'s
    inverse)."""
    matrix = template_matrix(size)
    scale = jnp.asarray([matrix[0, 0], matrix[1, 1]], jnp.float32)
    shift = jnp.asarray(matrix[:, 2], jnp.float32)
    return (points_BxNx2 - shift) / scale


def sample_at(image_BxHxW: jax.Array, points_BxNx2: jax.Array) -> jax.Array:
    """[B, N]: each image bilinearly sampled at its (x, y) points, 0 outside."""

    def one(image, points):
        coords = [points[:, 1], points[:, 0]]
        return jax.scipy.ndimage.map_coordinates(image, coords, order=1, mode="constant")

    return jax.vmap(one)(image_BxHxW.astype(jnp.float32), points_BxNx2)
