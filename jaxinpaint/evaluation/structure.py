"""The structure metric: how far the face mesh's eyes, brows and lips move when the hole is
filled, result against original.

MediaPipe's face mesh (`jaxinpaint.models.face_mesh`, the network the structure loss uses) is run
on the result and on the original, each framed for the mesh the same way. The score of an image
is the mean distance between the two meshes' points of the face's parts (`face_mesh.PARTS`: both
eyes' contours, both brows, the lips) that lie in the hole on the original, divided by the
original's eye distance (between the eye contours' centres): 0.05 means those points moved by 5 %
of the eye distance. It is NaN (skipped by the report's means) when no such point lies in the
hole, or when the mesh finds no face in the original (presence below 0.5).

Framing: an aligned crop (the inpainting set's, `data_pipeline.align`'s template) is framed by
`face_mesh.template_matrix`; any other image (a face square of a photo) by the window
`data_pipeline.landmarks.FaceMesh` cuts around the face BlazeFace finds in the original.
"""

from __future__ import annotations

import cv2
import jax
import jax.numpy as jnp
import numpy as np

from jaxinpaint.models import face_mesh

MIN_PRESENCE = 0.5
_PAD = 8
_PARTS = np.asarray(face_mesh.PARTS)
_EYES = (np.asarray(face_mesh.RIGHT_EYE), np.asarray(face_mesh.LEFT_EYE))


def _score(params, result_win, original_win, hole_win):
    """Per image: (normalised error or NaN, the original's face presence). All NHWC windows."""
    net = face_mesh.FaceMeshNet()
    points, logits = net.apply(params, jnp.concatenate([result_win, original_win]))
    result_pts, original_pts = jnp.split(points[..., :2], 2)
    presence = jax.nn.sigmoid(jnp.split(logits, 2)[1])
    parts_orig = original_pts[:, _PARTS]
    inside = face_mesh.sample_at(hole_win[..., 0], parts_orig) >= 0.5
    dist = jnp.linalg.norm(result_pts[:, _PARTS] - parts_orig, axis=-1)
    count = jnp.sum(inside, axis=1)
    mean = jnp.sum(jnp.where(inside, dist, 0.0), axis=1) / jnp.maximum(count, 1)
    right, left = (original_pts[:, idx].mean(axis=1) for idx in _EYES)
    eye_distance = jnp.linalg.norm(left - right, axis=-1)
    ok = (count > 0) & (presence >= MIN_PRESENCE) & (eye_distance > 0)
    return jnp.where(ok, mean / jnp.where(ok, eye_distance, 1.0), jnp.nan), presence


@jax.jit
def _score_crops(params, result, original, hole):
    windows = [face_mesh.crop_to_window(x) for x in (result, original, hole)]
    return _score(params, *windows)


_score_windows = jax.jit(_score)


class StructureError:
    """`StructureError()(result, original, hole) -> [B]` (NumPy float64), the images NHWC
    float in [0, 1], `hole` [B, H, W, 1] with 1 on the hole. `aligned=True` (aligned square
    crops) frames them by the template; `aligned=False` by the face BlazeFace finds in each
    original."""

    def __init__(self, weights_path: str | None = None):
        params = face_mesh.load_face_mesh_params(weights_path)
        self.params = jax.tree.map(jnp.asarray, params)

    def __call__(self, result, original, hole, aligned: bool = True) -> np.ndarray:
        result, original, hole = (np.asarray(x, np.float32) for x in (result, original, hole))
        if aligned:
            if result.shape[1] != result.shape[2]:
                raise ValueError(f"aligned crops are square, got images of {result.shape[1:3]}")
            # Batches padded to a multiple of _PAD: an evaluation's last, smaller batch compiles
            # nothing new.
            n = len(result)
            pad = ((0, -n % _PAD), (0, 0), (0, 0), (0, 0))
            padded = [np.pad(x, pad) for x in (result, original, hole)]
            err, _ = _score_crops(self.params, *padded)
            return np.asarray(err, np.float64)[:n]
        out = np.full(len(result), np.nan)
        for i in range(len(result)):
            matrix = _framing(original[i])
            if matrix is None:
                continue
            windows = [_warp(x, matrix) for x in (result[i], original[i], hole[i])]
            err, _ = _score_windows(self.params, *(w[None] for w in windows))
            out[i] = float(err[0])
        return out


def _framing(original_f: np.ndarray) -> np.ndarray | None:
    """The mesh window's matrix for the best face BlazeFace finds in `original_f` ([0, 1])."""
    from data_pipeline import landmarks

    rgb = np.clip(np.rint(original_f * 255.0), 0, 255).astype(np.uint8)
    found = landmarks.BlazeFace()(rgb)
    if not found:
        return None
    return landmarks.mesh_matrix(found[0].keypoints, found[0].box)


def _warp(image_f: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    size = face_mesh.INPUT_SIZE
    out = cv2.warpAffine(image_f, matrix, (size, size), flags=cv2.INTER_LINEAR)
    return out.reshape(size, size, image_f.shape[-1])
