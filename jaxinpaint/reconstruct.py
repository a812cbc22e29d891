"""Photo → face crops → occluder mask → inpainting → faces pasted back at full resolution.

`Reconstructor` takes its two models as plain callables, so this module never imports torch:

- `mask_source(face_RxRx3 uint8) -> hole_RxR` (bool or [0, 1]): which pixels of a face crop to
  remove — the detector's union mask (wired in `launch/reconstruct.py`), a user-given mask file,
  or anything else;
- `inpaint(face_RxRx3 uint8, hole_RxR bool) -> face_RxRx3 uint8`: the generator at its
  resolution R (see `jaxinpaint.inference.Inpainter`), or a classical baseline.

Only the (dilated, feathered) hole is written back into the photo; every other pixel keeps the
photo's full resolution and value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import cv2
import numpy as np

from data_pipeline.faces import DEFAULT_MARGIN, OCCLUDED_CASCADE, detect_faces, extract_square

MaskSource = Callable[[np.ndarray], np.ndarray]
InpaintFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclasses.dataclass(frozen=True)
class FaceResult:
    box: tuple[int, int, int, int]  # Haar face box [x, y, w, h] in photo pixels
    window: tuple[int, int, int]  # square crop (x0, y0, side) in photo pixels; may leave the photo
    hole_fraction: float  # of the crop, after dilation; 0 when nothing was found to remove

    @property
    def inpainted(self) -> bool:
        return self.hole_fraction > 0


@dataclasses.dataclass(frozen=True)
class Reconstruction:
    image: np.ndarray  # HxWx3 uint8, the photo with every occluded face reconstructed
    faces: tuple[FaceResult, ...]

    @property
    def changed(self) -> bool:
        return any(f.inpainted for f in self.faces)


def face_window(box, margin: float = DEFAULT_MARGIN) -> tuple[int, int, int]:
    """The square (x0, y0, side) centred on a face box and grown by `margin` on every side."""
    x, y, w, h = (float(v) for v in box)
    side = round(max(w, h) * (1 + 2 * margin))
    return round(x + w / 2 - side / 2), round(y + h / 2 - side / 2), side


def _window_slices(window, shape):
    """Slices of the window inside the photo, and the matching slices inside the window."""
    x0, y0, side = window
    h, w = shape[:2]
    px0, py0 = max(x0, 0), max(y0, 0)
    px1, py1 = min(x0 + side, w), min(y0 + side, h)
    return (slice(py0, py1), slice(px0, px1)), (
        slice(py0 - y0, py1 - y0),
        slice(px0 - x0, px1 - x0),
    )


class Reconstructor:
    """`Reconstructor(inpaint, mask_source, size=R)(photo) -> Reconstruction`.

    Args:
      inpaint: `(face uint8 RxRx3, hole bool RxR) -> face uint8 RxRx3` at the model's resolution.
      mask_source: `face uint8 RxRx3 -> hole RxR`; values > 0.5 are removed.
      size: the model's resolution R.
      dilate: pixels (at resolution R) the hole grows by, to cover the occluder's soft edges.
      feather: width (photo pixels) of the seam over which the result blends into the photo.
      margin: face box growth on every side, as when the training crops were made.
      max_faces: reconstruct at most this many faces per photo, largest first (None = all).
      min_face: smallest face side (photo pixels) the Haar detector reports.
      detect_side: the face detector runs on a copy of the photo no larger than this.
    """

    def __init__(
        self,
        inpaint: InpaintFn,
        mask_source: MaskSource,
        *,
        size: int,
        dilate: int = 4,
        feather: int = 3,
        margin: float = DEFAULT_MARGIN,
        max_faces: int | None = None,
        min_face: int = 48,
        detect_side: int = 1024,
    ):
        if size < 8 or dilate < 0 or feather < 0 or margin < 0:
            raise ValueError(
                f"need size >= 8 and dilate, feather, margin >= 0; got size={size}, "
                f"dilate={dilate}, feather={feather}, margin={margin}"
            )
        self.inpaint = inpaint
        self.mask_source = mask_source
        self.size = size
        self.dilate = dilate
        self.feather = feather
        self.margin = margin
        self.max_faces = max_faces
        self.min_face = min_face
        self.detect_side = detect_side

    def hole_for(self, face_RxRx3: np.ndarray, hole: np.ndarray | None = None) -> np.ndarray:
        """The dilated boolean hole of one face crop at the model's resolution (from the mask
        source unless `hole` is given)."""
        if hole is None:
            hole = self.mask_source(face_RxRx3)
        hole = np.asarray(hole, np.float32)
        if hole.ndim == 3:
            hole = hole[..., 0]
        if hole.shape != face_RxRx3.shape[:2]:
            raise ValueError(
                f"the mask source returned a {hole.shape} mask for a {face_RxRx3.shape[:2]} face"
            )
        hole = (hole > 0.5).astype(np.uint8)
        if self.dilate and hole.any():
            k = 2 * self.dilate + 1
            hole = cv2.dilate(hole, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
        return hole.astype(bool)

    def reconstruct_face(
        self, photo: np.ndarray, box, photo_mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, FaceResult]:
        """Reconstructs one face of `photo` (HxWx3 uint8) in a copy; returns it and the result.
        With `photo_mask` (HxW, > 0.5 = remove) the hole comes from it, not the mask source."""
        window = face_window(box, self.margin)
        side = window[2]
        face = extract_square(photo, *window)
        interp = cv2.INTER_AREA if side > self.size else cv2.INTER_CUBIC
        face_r = cv2.resize(face, (self.size, self.size), interpolation=interp)
        if photo_mask is None:
            hole_r = self.hole_for(face_r)
        else:
            crop = extract_square(np.asarray(photo_mask, np.float32), *window)
            given = cv2.resize(crop, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
            hole_r = self.hole_for(face_r, given)
        result = FaceResult(tuple(int(v) for v in box), window, float(hole_r.mean()))
        if not result.inpainted:
            return photo, result
        filled_r = np.asarray(self.inpaint(face_r, hole_r))
        if filled_r.shape != face_r.shape or filled_r.dtype != np.uint8:
            raise ValueError(
                f"the inpainter returned {filled_r.dtype} {filled_r.shape}; expected uint8 "
                f"{face_r.shape}"
            )
        # Back to photo resolution; only the hole (feathered) replaces photo pixels.
        filled = cv2.resize(filled_r, (side, side), interpolation=cv2.INTER_CUBIC)
        alpha = cv2.resize(hole_r.astype(np.float32), (side, side), interpolation=cv2.INTER_LINEAR)
        if self.feather:
            alpha = cv2.GaussianBlur(alpha, (0, 0), sigmaX=self.feather / 2)
        alpha = np.clip(alpha, 0.0, 1.0)[..., None]
        inside, crop = _window_slices(window, photo.shape)
        out = photo.copy()
        region = out[inside].astype(np.float32)
        blended = alpha[crop] * filled[crop].astype(np.float32) + (1 - alpha[crop]) * region
        out[inside] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        return out, result

    def find_faces(self, photo: np.ndarray, photo_mask: np.ndarray | None = None) -> list:
        """Face boxes, largest first: the default Haar cascade, then one that tolerates
        occluded eyes, then (with a photo mask) a face-sized box around the masked pixels."""
        kwargs = dict(min_size=self.min_face, max_side=self.detect_side)
        boxes = detect_faces(photo, **kwargs)
        if not boxes:
            cascade, neighbours = OCCLUDED_CASCADE
            boxes = detect_faces(photo, cascade=cascade, min_neighbors=neighbours, **kwargs)
        if not boxes and photo_mask is not None:
            ys, xs = np.nonzero(np.asarray(photo_mask) > 0.5)
            if len(xs):
                side = 2 * max(xs.max() - xs.min(), ys.max() - ys.min()) + 1
                cx, cy = (xs.max() + xs.min()) / 2, (ys.max() + ys.min()) / 2
                boxes = [(round(cx - side / 2), round(cy - side / 2), side, side)]
        return boxes

    def __call__(
        self, photo_HxWx3: np.ndarray, photo_mask: np.ndarray | None = None
    ) -> Reconstruction:
        """Reconstructs every face found in the photo; `photo_mask` (HxW, > 0.5 = remove), when
        given, replaces the mask source."""
        photo = np.asarray(photo_HxWx3)
        if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[-1] != 3:
            raise ValueError(f"expected an HxWx3 uint8 RGB photo, got {photo.dtype} {photo.shape}")
        if photo_mask is not None:
            photo_mask = np.asarray(photo_mask, np.float32)  # once, not once per face
            if photo_mask.shape[:2] != photo.shape[:2]:
                raise ValueError(
                    f"the mask is {photo_mask.shape[:2]} but the photo is {photo.shape[:2]}"
                )
        boxes = self.find_faces(photo, photo_mask)
        if self.max_faces is not None:
            boxes = boxes[: self.max_faces]
        faces = []
        for box in boxes:
            photo, result = self.reconstruct_face(photo, box, photo_mask)
            faces.append(result)
        return Reconstruction(photo, tuple(faces))
