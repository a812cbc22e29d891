"""Alignment of a face to a fixed template, and the way back into the photo.

A face is aligned by the similarity transform (rotation, uniform scale, shift) that takes its
eyes, nose tip and mouth (`data_pipeline.landmarks`) closest, in least squares, to the template's
points at the crop size: eyes level at 40 % of the height, 0.33 of the side apart, the mouth at
75 %. That is a CelebA-128-like framing (the face fills most of the crop, with room for caps and
scarves), the way FFHQ, CelebA-HQ, GFPGAN and CodeFormer frame faces. Each face then spends the
model's pixels on the face, not on where it sat in the photo.

`Alignment.matrix` maps photo pixels to crop pixels (a 2x3 affine matrix for `cv2.warpAffine`);
`paste` maps a crop (or part of it) back with the inverse, so a tilted face comes back tilted.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

# Template points as fractions of the crop side, in `landmarks.KEYPOINTS` order (ears unused).
TEMPLATE = np.array([[0.335, 0.40], [0.665, 0.40], [0.5, 0.59], [0.5, 0.75]], np.float64)
# The face's outline in the aligned crop, as fractions of its side: MediaPipe's face-oval mesh
# vertices averaged over the 99 sample train faces the mesh finds (`python tools/face_oval.py`),
# clockwise from the top of the forehead. Where an occluder must overlap (`face_region`).
FACE_OVAL = np.array(
    [
        [0.495, 0.146], [0.596, 0.146], [0.681, 0.156], [0.761, 0.180],
        [0.813, 0.219], [0.846, 0.268], [0.864, 0.322], [0.870, 0.391],
        [0.866, 0.458], [0.863, 0.528], [0.854, 0.603], [0.832, 0.682],
        [0.798, 0.748], [0.758, 0.798], [0.707, 0.842], [0.664, 0.873],
        [0.620, 0.900], [0.569, 0.920], [0.505, 0.927], [0.442, 0.920],
        [0.394, 0.901], [0.352, 0.874], [0.313, 0.843], [0.266, 0.800],
        [0.230, 0.751], [0.199, 0.686], [0.177, 0.607], [0.166, 0.534],
        [0.161, 0.465], [0.155, 0.398], [0.156, 0.330], [0.169, 0.276],
        [0.196, 0.226], [0.241, 0.187], [0.314, 0.161], [0.395, 0.149],
    ],
    np.float64,
)  # fmt: skip
# Least fraction of a detection's mask on the face (`face_region`) of an aligned crop for it to
# count (`on_face`; `Reconstructor(on_face=)`, `launch/cache_masks.py --on_face`): what a detector
# finds off the face (a suit's collar, a box in the background) is not an occluder of it. On the
# validation composites 1 of 791 true detections has less; on the test composites and photos it
# drops 24 of 32 false ones and 3 of 758 true ones (docs/detector.md, "Detections off the face").
ON_FACE = 0.3
# The points' weights in the fit: eyes count double, they matter most to how a face reads.
_WEIGHTS = np.array([2.0, 2.0, 1.0, 1.0])


def similarity(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """The 2x3 similarity transform taking `src` points ([N, 2]) closest to `dst` in weighted
    least squares: x' = a·x − b·y + tx, y' = b·x + a·y + ty."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    w = np.sqrt(np.ones(len(src)) if weights is None else np.asarray(weights, np.float64))
    n = len(src)
    rows = np.zeros((2 * n, 4))
    rows[0::2] = np.stack([src[:, 0], -src[:, 1], np.ones(n), np.zeros(n)], 1)
    rows[1::2] = np.stack([src[:, 1], src[:, 0], np.zeros(n), np.ones(n)], 1)
    ww = np.repeat(w, 2)
    (a, b, tx, ty), *_ = np.linalg.lstsq(rows * ww[:, None], dst.reshape(-1) * ww, rcond=None)
    return np.array([[a, -b, tx], [b, a, ty]])


def face_region(size: int, grow: float = 1 / 16) -> np.ndarray:
    """`size`x`size` bool: the pixels of an aligned crop inside `FACE_OVAL` grown by `grow` of
    the side (the outline is an average face's; a margin takes in broader ones)."""
    region = np.zeros((size, size), np.uint8)
    cv2.fillPoly(region, [np.round(FACE_OVAL * size).astype(np.int32)], 1)
    radius = round(grow * size)
    if radius > 0:
        disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)
        region = cv2.dilate(region, disk)
    return region.astype(bool)


def on_face(masks, least: float, grow: float = 1 / 16) -> list[bool]:
    """Per HxW mask of an aligned HxH crop: whether at least `least` of its pixels lie on the face
    (`face_region`). An empty mask is never on it. The rule that drops what a detector finds
    beside the face (a collar, a background object) from reconstruction and the mask cache."""
    masks = [np.asarray(m) > 0.5 for m in masks]
    if not masks:
        return []
    if masks[0].ndim != 2 or masks[0].shape[0] != masks[0].shape[1]:
        raise ValueError(
            f"a {masks[0].shape} mask: the face region is that of a square crop aligned to the "
            "template; expected HxH masks (or no on-face rule for other images)"
        )
    region = face_region(masks[0].shape[0], grow)
    return [bool((m & region).sum() >= least * max(int(m.sum()), 1)) for m in masks]


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """`points` ([..., 2]) mapped by a 2x3 affine matrix."""
    points = np.asarray(points, np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


@dataclasses.dataclass(frozen=True)
class Alignment:
    """Where one face's `size`x`size` crop sits in its photo."""

    matrix: np.ndarray  # 2x3, photo pixels -> crop pixels
    size: int

    @classmethod
    def from_keypoints(cls, keypoints: np.ndarray, size: int) -> Alignment:
        """The template fit of `landmarks.FaceDetection.keypoints` (eyes, nose, mouth used)."""
        kps = np.asarray(keypoints, np.float64)[: len(TEMPLATE)]
        return cls(similarity(kps, TEMPLATE * size, _WEIGHTS), size)

    @classmethod
    def from_window(cls, x0: float, y0: float, side: float, size: int) -> Alignment:
        """An upright square window (x0, y0, side) of the photo scaled to the crop: the framing
        of faces found without keypoints."""
        k = size / side
        return cls(np.array([[k, 0.0, -x0 * k], [0.0, k, -y0 * k]]), size)

    @property
    def scale(self) -> float:
        """Crop pixels per photo pixel."""
        return float(np.hypot(self.matrix[0, 0], self.matrix[1, 0]))

    @property
    def inverse(self) -> np.ndarray:
        """2x3, crop pixels -> photo pixels."""
        return cv2.invertAffineTransform(self.matrix)

    def footprint(self, pad: int = 0) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1): the crop's footprint in photo pixels, grown by `pad` (unclipped)."""
        s = self.size
        corners = apply(self.inverse, np.array([[0, 0], [s, 0], [0, s], [s, s]], np.float64))
        x0, y0 = (int(v) - pad for v in np.floor(corners.min(0)))
        x1, y1 = (int(v) + pad for v in np.ceil(corners.max(0)))
        return x0, y0, x1, y1

    def photo_bounds(self, shape: tuple[int, ...], pad: int = 0) -> tuple[int, int, int, int]:
        """`footprint` clipped to a photo of `shape`; empty (x1 <= x0) when they do not meet."""
        x0, y0, x1, y1 = self.footprint(pad)
        h, w = shape[:2]
        return max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)

    def crop(self, image: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
        """The aligned `size`x`size` crop; the photo is reflected where the crop leaves it.

        A face much larger than the crop is first shrunk with area averaging, so the crop is
        not aliased (`warpAffine` samples, it does not average)."""
        image = np.asarray(image)
        matrix = self.matrix
        if interpolation != cv2.INTER_NEAREST and self.scale < 0.5 and image.size:
            # Cut out the footprint first, so only what the crop needs is shrunk.
            x0, y0, x1, y1 = self.photo_bounds(image.shape, pad=4)
            part = image[y0 : max(y1, y0 + 1), x0 : max(x1, x0 + 1)]
            k = 2 * self.scale  # leaves a factor of 1/2 to the warp
            ph, pw = part.shape[:2]
            small = cv2.resize(
                part, (max(1, round(pw * k)), max(1, round(ph * k))), interpolation=cv2.INTER_AREA
            )
            kx, ky = small.shape[1] / pw, small.shape[0] / ph
            shrink = np.array([[kx, 0, -x0 * kx], [0, ky, -y0 * ky], [0, 0, 1]])
            matrix = (np.vstack([matrix, [0, 0, 1]]) @ np.linalg.inv(shrink))[:2]
            image = small
        return cv2.warpAffine(
            np.ascontiguousarray(image),
            matrix,
            (self.size, self.size),
            flags=interpolation,
            borderMode=cv2.BORDER_REFLECT_101,
        )

    def crop_region(
        self,
        region: np.ndarray,
        origin: tuple[int, int],
        interpolation: int = cv2.INTER_LINEAR,
    ) -> np.ndarray:
        """`crop` of a part of the photo whose top-left pixel is `origin` = (x0, y0) (e.g. the
        region `photo_bounds` gives), without a photo-sized copy."""
        matrix = self.matrix.copy()
        matrix[:, 2] += self.matrix[:, :2] @ np.asarray(origin, np.float64)
        return Alignment(matrix, self.size).crop(region, interpolation)

    def to_photo(
        self, crop: np.ndarray, bounds: tuple[int, int, int, int], fill: float | None = None
    ) -> np.ndarray:
        """`crop` (size x size [x C]) warped back to photo pixels (float32, bilinear) over the
        region `bounds` = (x0, y0, x1, y1); outside the crop's footprint the crop's edge is
        repeated, or `fill` is used where given."""
        x0, y0, x1, y1 = bounds
        inverse = self.inverse.copy()
        inverse[:, 2] -= (x0, y0)
        border = cv2.BORDER_REPLICATE if fill is None else cv2.BORDER_CONSTANT
        return cv2.warpAffine(
            np.ascontiguousarray(crop, np.float32),
            inverse,
            (x1 - x0, y1 - y0),
            flags=cv2.INTER_LINEAR,
            borderMode=border,
            borderValue=0.0 if fill is None else fill,
        )
