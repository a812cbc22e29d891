"""Photo → faces with keypoints → aligned crops → occluder mask → inpainting → faces pasted back.

`Reconstructor` takes its two models as plain callables, so this module never imports torch:

- `mask_source(face_RxRx3 uint8) -> hole_RxR` (bool or [0, 1]): which pixels of a face crop to
  remove — the detector's union mask (wired in `launch/reconstruct.py`), a user-given mask file,
  or anything else. It may also return `(hole_RxR, instances)`, the instances that make the hole
  (each with `.category`, `.score` and an RxR `.mask`, as `detector.predict.Detector.detect`
  gives): they come back as each face's `detections`, in photo pixels;
- `inpaint(face_RxRx3 uint8, hole_RxR bool) -> face_RxRx3 uint8`: the generator at its
  resolution R (see `jaxinpaint.inference.Inpainter`), or a classical baseline.

Each face is found with keypoints (`data_pipeline.faces.find_faces`: BlazeFace behind occluders,
YuNet where too little shows for it, Haar as the fallback) and, with `align=True`, warped to the
template framing the model trained on (`data_pipeline.align`); the inverse transform takes the
fill back, so a tilted face comes back tilted. Every pixel of the (dilated) hole is replaced: the
smooth base (`jaxinpaint.fills.smooth_fill_around_hole`) is solved once over the whole hole at the
photo's resolution, and inside each face's window the model's correction is added to it; what
lies outside every window (an occluder reaching below the chin, a mask on a photo where no face
is found) is the base alone. Only the hole and its feathered seam are written back into the
photo; every other pixel keeps the photo's full resolution and value.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from data_pipeline import categories, guide
from data_pipeline.align import ON_FACE, Alignment, on_face
from data_pipeline.faces import DEFAULT_MARGIN, FoundFace, face_window, find_faces
from jaxinpaint.fills import SMOOTH_FILLS, smooth_fill, smooth_fill_around_hole

_BASES = (*SMOOTH_FILLS, "none")
# Pixels of the detector's own input a detector's hole grows by in `launch/reconstruct.py` (and in
# the evaluation that scores its holes), `Reconstructor(grow=)`: a predicted mask's edge falls a
# pixel or two short of the occluder's. Measured on held-out photos, 2 beat 3 and 4, and 2 photo
# pixels instead (docs/detector.md, "How far to grow the detector's hole").
DETECTOR_GROW = 2
# How much of a reference's detail (`data_pipeline.guide`: the warped reference minus its own
# smooth fill of the hole) is added to the photo's smooth base where the reference lends its
# eyes, brows and lips. Its features are never quite where the photo's were: the full detail
# doubles the error where it is off. Chosen on the demo build's train persons (docs/inpainter.md,
# "Guide faces").
GUIDE_GAIN = 0.5
MaskSource = Callable[[np.ndarray], np.ndarray | tuple[np.ndarray, Sequence]]
InpaintFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclasses.dataclass(frozen=True)
class Detection:
    """An occluder the mask source found on a face, in photo pixels."""

    category: str
    score: float
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive) of its mask in the photo
    outline: tuple[np.ndarray, ...]  # its mask's outer contours, each Nx2 int32 (x, y)


@dataclasses.dataclass(frozen=True)
class FaceResult:
    box: tuple[int, int, int, int]  # face box [x, y, w, h] in photo pixels
    matrix: np.ndarray  # 2x3 affine map from photo pixels to the model's RxR crop
    aligned: bool  # True: framed by keypoints; False: a square window around the box
    hole_fraction: float  # of the crop, after dilation; 0 when nothing was found to remove
    detections: tuple[Detection, ...] = ()  # what the mask source found (none for a user mask)
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)  # "mask", "inpaint"
    # The reference that guided the fill (its name), and the share of the hole it lent to.
    reference: str | None = None
    reference_cover: float = 0.0

    @property
    def inpainted(self) -> bool:
        return self.hole_fraction > 0


@dataclasses.dataclass(frozen=True)
class Reconstruction:
    image: np.ndarray  # HxWx3 uint8, the photo with every occluded face reconstructed
    faces: tuple[FaceResult, ...]
    hole: np.ndarray  # HxW bool: the pixels replaced whole (the grown hole); the seam blends
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)  # per stage, and total
    # Of `hole`: the pixels inside a face's window, which its model's correction fills, and the
    # rest, outside every window (or on a photo with no face), which the smooth base fills.
    model_pixels: int = 0
    base_pixels: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.hole.any())


@dataclasses.dataclass(frozen=True)
class _Plan:
    """One face before inpainting: its framing and, from a mask source, its hole."""

    face_box: tuple[float, float, float, float]  # [x, y, w, h] in photo pixels
    keypoints: np.ndarray | None  # the face's keypoints in photo pixels (None: Haar's box)
    alignment: Alignment
    bounds: tuple[int, int, int, int]  # x0, y0, x1, y1 of the photo region the crop touches
    hole: np.ndarray | None  # bool inside `bounds`: the mask source's grown hole; None: none
    aligned: bool
    detections: tuple[Detection, ...]
    seconds: dict[str, float]


class Reconstructor:
    """`Reconstructor(inpaint, mask_source, size=R)(photo) -> Reconstruction`, and
    `.hole(photo)`: the pixels it would replace, without inpainting.

    Args:
      inpaint: `(face uint8 RxRx3, hole bool RxR) -> face uint8 RxRx3` at the model's resolution;
        None for a reconstructor that only finds holes (`hole`), as evaluations score them.
      mask_source: `face uint8 RxRx3 -> hole RxR`; values > 0.5 are removed.
      size: the model's resolution R.
      dilate: photo pixels the hole grows by (the user's mask or the mask source's, taken to
        the photo's resolution), to cover an occluder's soft edge. Each pixel grown costs
        quality: on thin occluders (frames, straps) 2 pixels cost ~1.7 dB hole PSNR.
      feather: width (photo pixels) of the seam, outside the grown hole, over which the result
        blends into the photo; the grown hole itself is replaced whole. No pixel farther than
        `dilate + feather` (and a pixel of rounding) from the mask changes.
      base: "harmonic", "biharmonic" or "pushpull": the fill is the model's correction of that
        smooth fill (`jaxinpaint.fills.smooth_fill`), added to the same fill made at the
        photo's resolution over the whole hole (sharp seams at any face size; the base alone
        outside every face's window); "none": the model's fill, upsampled, and the harmonic
        fill outside the windows; "auto": the fill the generator starts from
        (`inpaint.coarse_fill`, as `Inpainter` and the exported one give it), "harmonic" for an
        inpainter that paints the hole itself.
      base_steps: None (the default): the full-resolution base is solved on the hole's pixels
        (`jaxinpaint.fills.smooth_fill_around_hole`: one sparse factorisation, 1-100 ms for a
        face's hole on 2 cores; the biharmonic one with a little tension); a number: relaxed
        instead, that many Jacobi steps per level around the hole, as before (1000 took
        0.1-1.5 s). Measured against 1000 steps in docs/inpainter.md ("The full-resolution
        base, solved").
      align: frame faces by their keypoints, as `launch/build_dataset.py` does by default; False
        for a model trained on square crops around the face box (`--noalign` builds).
      margin: face box growth on every side for square crops (unaligned, or no keypoints).
      mask_size: side of the face crop the mask source sees, framed as the model's crop; a
        detector's own input size (`Detector.input_size`), so that it sees the face at the
        resolution it trained on rather than the model's crop upsampled. None = `size`.
      grow: pixels of that crop the mask source's hole grows by before it is taken to the
        photo, so that the margin follows the face's size: a detector's mask edge is about as
        far off in its own pixels on a small face as on a large one. `dilate` adds photo pixels
        after it (and is the only growth a user's photo mask gets).
      on_face: a detection (an instance the mask source returns) counts only when at least this
        fraction of its mask lies on the face (`data_pipeline.align.face_region`), and the
        pixels only it covers leave the hole; faces framed by keypoints only (the region is the
        template's), and 0 keeps every detection.
      max_faces: reconstruct at most this many faces per photo, largest first (None = all).
      min_face: smallest face side (photo pixels) reported.
      detect_side: the Haar fallback runs on a copy of the photo no larger than this.
      reach: where the mask source's hole reaches the edge of its crop, ask it again on the same
        framing zoomed out twice and add what of that hole joins the first outside the crop (an
        occluder going on below the chin). Off by default: see docs/inpainter.md for how the
        demo's detector does on such a view.
      references: photos of the same person (`data_pipeline.guide.reference`; or exemplars):
        inside each face's window, where the one posed most like the face lends its eyes, brows
        and lips, the fill is the smooth base plus `guide_gain` of that reference's detail,
        warped onto the face's mesh (`data_pipeline.guide`), instead of the model's correction;
        each call may pass its own.
      guide_gain: the share of a reference's detail added (`GUIDE_GAIN`).
    """

    def __init__(
        self,
        inpaint: InpaintFn | None,
        mask_source: MaskSource,
        *,
        size: int,
        dilate: int = 0,
        feather: int = 3,
        align: bool = True,
        base: str = "auto",
        base_steps: int | None = None,
        margin: float = DEFAULT_MARGIN,
        mask_size: int | None = None,
        grow: int = 0,
        on_face: float = ON_FACE,
        max_faces: int | None = None,
        min_face: int = 48,
        detect_side: int = 1024,
        reach: bool = False,
        references: Sequence[guide.Reference] = (),
        guide_gain: float = GUIDE_GAIN,
    ):
        mask_size = size if mask_size is None else mask_size
        if min(size, mask_size) < 8 or min(dilate, grow, feather, margin, base_steps or 0) < 0:
            raise ValueError(
                f"need size, mask_size >= 8 and dilate, grow, feather, margin, base_steps >= 0; "
                f"got size={size}, mask_size={mask_size}, dilate={dilate}, grow={grow}, "
                f"feather={feather}, margin={margin}, base_steps={base_steps}"
            )
        self.inpaint = inpaint
        self.mask_source = mask_source
        self.size = size
        self.dilate = dilate
        self.feather = feather
        if not 0.0 <= on_face <= 1.0:
            raise ValueError(f"on_face is a fraction of a mask, in [0, 1]; got {on_face}")
        if base == "auto":
            base = getattr(inpaint, "coarse_fill", "none")
            base = base if base in SMOOTH_FILLS else "harmonic"
        if base not in _BASES:
            raise ValueError(f"base must be one of {list(_BASES)} or 'auto', got {base!r}")
        self.align = align
        self.base = base
        self.base_steps = base_steps
        self.margin = margin
        self.mask_size = mask_size
        self.grow = grow
        self.on_face = on_face
        self.max_faces = max_faces
        self.min_face = min_face
        self.detect_side = detect_side
        self.reach = reach
        if references and base == "none":
            raise ValueError(
                "a reference guides the smooth base's correction: base 'none' has none"
            )
        if not 0.0 <= guide_gain <= 1.0:
            raise ValueError(
                f"guide_gain is the share of a reference's detail, in [0, 1]; got {guide_gain}"
            )
        self.references = tuple(references)
        self.guide_gain = guide_gain

    def _grow(self, hole_HxW: np.ndarray) -> np.ndarray:
        """The boolean hole grown by `dilate` photo pixels."""
        return _dilated(hole_HxW, self.dilate)

    def alignment(self, face: FoundFace, size: int | None = None) -> Alignment:
        """Where the model's RxR crop of `face` sits in the photo (or the same framing at
        `size`)."""
        size = size or self.size
        if self.align:
            return face.alignment(size, self.margin)
        return Alignment.from_window(*face_window(face.box, self.margin), size)

    def _detect(self, face_r: np.ndarray, alignment: Alignment, bounds, aligned: bool):
        """The mask source's hole of one face crop, at the photo's resolution inside `bounds`,
        and the detections that make it (none when the source gives only a mask). On a crop
        `aligned` to the template, detections mostly off the face are dropped (`on_face`)."""
        found = self.mask_source(face_r)
        hole, instances = found if isinstance(found, tuple) else (found, ())
        hole = np.asarray(hole, np.float32)
        if hole.ndim == 3:
            hole = hole[..., 0]
        if hole.shape != face_r.shape[:2]:
            raise ValueError(
                f"the mask source returned a {hole.shape} mask for a {face_r.shape[:2]} face"
            )
        if aligned and self.on_face > 0 and len(instances):
            hole, instances = _on_face(hole, instances, self.on_face)
        detections = []
        for instance in instances:
            mask = alignment.to_photo(np.asarray(instance.mask, np.float32), bounds, fill=0.0)
            detection = _detection(instance, mask > 0.5, bounds)
            if detection is not None:
                detections.append(detection)
        hole_r = _dilated(hole > 0.5, self.grow)
        hole = alignment.to_photo(hole_r.astype(np.float32), bounds, fill=0.0) > 0.5
        return hole, tuple(detections), hole_r

    def _plan(self, photo: np.ndarray, face: FoundFace, detect: bool) -> _Plan:
        """Where `face`'s crop sits in `photo` and, with `detect`, the hole the mask source
        finds on it (grown by `grow` of its pixels and `dilate` photo pixels)."""
        alignment = self.alignment(face)
        pad = 2 * self.feather + 2 + self.dilate  # room for the growth around the crop
        x0, y0, x1, y1 = bounds = alignment.photo_bounds(photo.shape, pad=pad)
        hole, detections, seconds = None, (), {}
        aligned = self.align and face.keypoints is not None
        if detect and x1 > x0 and y1 > y0:
            start = time.perf_counter()
            seen_by = alignment
            if self.mask_size != self.size:  # the same framing at the source's size
                seen_by = self.alignment(face, self.mask_size)
            seen = seen_by.crop(photo, _interpolation(seen_by))
            source_hole, detections, hole_r = self._detect(seen, seen_by, bounds, aligned)
            if self.reach and _touches_edge(hole_r):
                bounds, source_hole = self._reach(photo, seen_by, hole_r, pad)
            seconds["mask"] = time.perf_counter() - start
            hole = self._grow(source_hole)
        return _Plan(
            face.box, face.keypoints, alignment, bounds, hole, aligned, detections, seconds
        )

    def _reach(self, photo: np.ndarray, seen_by: Alignment, hole_r: np.ndarray, pad: int):
        """Where the mask source's hole reaches its crop's edge, the occluder may go on past it:
        the source looks again at the same framing zoomed out twice (the same centre, twice the
        side), and the parts of that hole outside the first crop joined to the first hole are
        added. Returns the wider bounds and the hole inside them (photo pixels)."""
        m = seen_by.size
        matrix = seen_by.matrix * 0.5
        matrix[:, 2] += m / 4  # about the crop's centre
        wide = Alignment(matrix, m)
        bounds = wide.photo_bounds(photo.shape, pad=pad)
        first = seen_by.to_photo(hole_r.astype(np.float32), bounds, fill=0.0) > 0.5
        seen = wide.crop(photo, _interpolation(wide))
        found, _, _ = self._detect(seen, wide, bounds, aligned=False)
        # Keep what is joined to the first hole: an occluder going on, not another one.
        _, labels = cv2.connectedComponents((first | found).astype(np.uint8), connectivity=8)
        joined = np.isin(labels, np.unique(labels[first]))
        return bounds, first | (found & joined)

    def _whole_hole(self, shape, plans: Sequence[_Plan], photo_hole: np.ndarray | None):
        """The pixels a call replaces (HxW bool): the user's grown hole, or the union of the
        faces' grown holes from the mask source. Neither is cut at a face's window."""
        if photo_hole is not None:
            return photo_hole
        hole = np.zeros(shape[:2], bool)
        for plan in plans:
            if plan.hole is not None:
                x0, y0, x1, y1 = plan.bounds
                hole[y0:y1, x0:x1] |= plan.hole
        return hole

    def _fill(
        self,
        photo: np.ndarray,
        plans: Sequence[_Plan],
        hole: np.ndarray,
        references: Sequence[guide.Reference] = (),
    ):
        """`photo` with `hole` replaced; returns it, each face's result, the HxW bool mask of
        the hole pixels a face's model filled, and the seconds of the smooth base.

        The smooth base is solved once over the whole hole at the photo's resolution, so the
        pixels outside every face's window (an occluder that reaches below the chin, a mask on
        a photo with no face) are filled by the same solve the model's correction is added to.
        Inside a window the correction's weight falls to 0 over the crop's last `size / 16`
        pixels, so no seam shows where the window ends. With `base="none"` the model's fill
        replaces its window's part of the hole, and what lies outside every window is filled
        smoothly afterwards, with the faces' fills as its known border. With `references`, the
        one posed most like each face lends its detail in the place of the correction
        (`_guided`)."""
        results, model = [], np.zeros(hole.shape, bool)
        seconds = {"base": 0.0}
        if not hole.any():
            for plan in plans:
                results.append(self._result(plan, 0.0))
            return photo, results, model, seconds
        # Everything below works on the hole's surroundings: its box grown by the seam and by
        # what `smooth_fill_around_hole` reads around it.
        bx0, by0, bx1, by1 = box = _work_box(hole, self.feather)
        region = photo[by0:by1, bx0:bx1].astype(np.float32)
        hole_w = hole[by0:by1, bx0:bx1]
        alpha = hole_w.astype(np.float32)
        if self.feather:  # a linear ramp from 1 at the hole to 0 at `feather` pixels from it
            outside = cv2.distanceTransform((~hole_w).astype(np.uint8), cv2.DIST_L2, 5)
            alpha = np.clip(1.0 - outside / self.feather, 0.0, 1.0)
        alpha = alpha[..., None]
        start = time.perf_counter()
        base = None
        if self.base != "none":
            base = smooth_fill_around_hole(region, hole_w, self.base, self.base_steps)
        seconds["base"] = time.perf_counter() - start
        filled = region.copy() if base is None else base.copy()
        out = photo.copy()
        # The faces' crops see the base in the hole, never the occluder.
        _paste(out, box, alpha * filled + (1 - alpha) * region)
        ramp = _window_ramp(self.size)
        for plan in plans:
            alignment = plan.alignment
            fx0, fy0, fx1, fy1 = part = _intersect(plan.bounds, box)
            if fx1 <= fx0 or fy1 <= fy0 or not hole[fy0:fy1, fx0:fx1].any():
                results.append(self._result(plan, 0.0))
                continue
            weight = alignment.to_photo(ramp, part, fill=0.0)
            mine = hole[fy0:fy1, fx0:fx1] & (weight > 1e-3)
            if not mine.any():  # the hole lies outside this face's window: the base fills it
                results.append(self._result(plan, 0.0))
                continue
            start = time.perf_counter()
            lent = None  # (the name of the reference that guided the fill, the share it lent)
            face_r = alignment.crop(out, _interpolation(alignment))
            # The model's hole: every crop pixel the photo's hole touches, so that no occluder
            # colour reaches the model as a known pixel.
            x0, y0, x1, y1 = plan.bounds
            hole_r = alignment.crop_region(hole[y0:y1, x0:x1].astype(np.float32), (x0, y0))
            hole_r = hole_r > 1e-3
            filled_r = np.asarray(self.inpaint(face_r, hole_r))
            if filled_r.shape != face_r.shape or filled_r.dtype != np.uint8:
                raise ValueError(
                    f"the inpainter returned {filled_r.dtype} {filled_r.shape}; expected uint8 "
                    f"{face_r.shape}"
                )
            inner = (slice(fy0 - by0, fy1 - by0), slice(fx0 - bx0, fx1 - bx0))
            if base is not None:
                # The model's correction of a smooth fill, added to the same fill made at the
                # photo's resolution: the seam matches the photo's own pixels at full resolution.
                correction = filled_r.astype(np.float32) - smooth_fill(face_r, hole_r, self.base)
                correction = alignment.to_photo(correction, part)
                if references and plan.keypoints is not None:
                    correction, lent = self._guided(photo, plan, part, hole, correction, references)
                w = weight[..., None]
                filled[inner] = (1 - w) * filled[inner] + w * (base[inner] + correction)
            else:
                window = (weight > 1e-3)[..., None]
                filled[inner] = np.where(window, alignment.to_photo(filled_r, part), filled[inner])
            model[fy0:fy1, fx0:fx1] |= mine
            _paste(out, box, alpha * filled + (1 - alpha) * region)
            face_seconds = {**plan.seconds, "inpaint": time.perf_counter() - start}
            result = self._result(plan, float(hole_r.mean()), face_seconds)
            if lent is not None:
                result = dataclasses.replace(result, reference=lent[0], reference_cover=lent[1])
            results.append(result)
        rest = hole_w & ~model[by0:by1, bx0:bx1]
        if base is None and rest.any():  # outside every window, from the faces' fills
            start = time.perf_counter()
            known = out[by0:by1, bx0:bx1]
            smooth = smooth_fill_around_hole(known, rest, "harmonic", self.base_steps)
            filled = np.where(rest[..., None], smooth, filled)
            _paste(out, box, alpha * filled + (1 - alpha) * region)
            seconds["base"] += time.perf_counter() - start
        return out, results, model, seconds

    def _guided(self, photo, plan: _Plan, part, hole, correction, references):
        """The model's `correction` of the smooth base (over `part`, x0, y0, x1, y1 of the photo)
        with the detail of the reference posed most like the face of `plan` in its place where
        that reference lends its eyes, brows and lips (`data_pipeline.guide`), and (the
        reference's name, the share of the hole it lent to); None for a face whose mesh is unsure
        of it, which keeps the model's correction."""
        face = FoundFace(plan.face_box, plan.keypoints)
        mesh = guide.find_mesh(photo, face)
        if mesh.presence < guide.MIN_PRESENCE:
            return correction, None
        ref = guide.closest(list(references), mesh)
        x0, y0, x1, y1 = part
        guided = guide.guide_face(photo, mesh, hole, ref.photo, ref.mesh)
        image, weight = guided.crop(part)
        mine = hole[y0:y1, x0:x1]
        detail = image - smooth_fill_around_hole(image, mine, self.base, self.base_steps)
        correction = weight[..., None] * (self.guide_gain * detail - correction) + correction
        gx0, gy0, gx1, gy1 = guided.box  # it covers the whole hole
        return correction, (ref.name, float(guided.valid[hole[gy0:gy1, gx0:gx1]].mean()))

    def _result(self, plan: _Plan, hole_fraction: float, seconds=None) -> FaceResult:
        return FaceResult(
            tuple(round(v) for v in plan.face_box),
            plan.alignment.matrix,
            plan.aligned,
            hole_fraction,
            plan.detections,
            dict(plan.seconds if seconds is None else seconds),
        )

    def find_faces(self, photo: np.ndarray) -> list:
        """Faces, largest first (`data_pipeline.faces.find_faces`: BlazeFace and YuNet with
        keypoints, then Haar)."""
        return find_faces(photo, min_size=self.min_face, max_side=self.detect_side)

    def _search(self, photo: np.ndarray, photo_mask: np.ndarray | None):
        """The checked photo, the plans of its faces (at most `max_faces`), the whole hole a
        call replaces and the seconds the search took (faces, and the mask source's holes)."""
        photo = np.asarray(photo)
        if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[-1] != 3:
            raise ValueError(f"expected an HxWx3 uint8 RGB photo, got {photo.dtype} {photo.shape}")
        if photo_mask is None and self.mask_source is None:
            raise ValueError(
                "this Reconstructor has no mask source (a detector): pass photo_mask, the "
                "pixels to remove, with each photo"
            )
        if photo_mask is not None:
            photo_mask = np.asarray(photo_mask, np.float32)  # once, not once per face
            if photo_mask.shape[:2] != photo.shape[:2]:
                raise ValueError(
                    f"the mask is {photo_mask.shape[:2]} but the photo is {photo.shape[:2]}"
                )
        start = time.perf_counter()
        found = self.find_faces(photo)
        if self.max_faces is not None:
            found = found[: self.max_faces]
        searched = time.perf_counter() - start
        photo_hole = None if photo_mask is None else self._grow(photo_mask > 0.5)
        plans = [self._plan(photo, face, photo_hole is None) for face in found]
        return photo, plans, self._whole_hole(photo.shape, plans, photo_hole), searched

    def survey(
        self, photo_HxWx3: np.ndarray, photo_mask: np.ndarray | None = None
    ) -> Reconstruction:
        """What a call on this photo would find and replace, without inpainting: the faces (box,
        framing, the share of each face's crop in the hole, detections), the hole (HxW bool) and
        the seconds spent; `image` is the photo itself. What a page shows before it runs."""
        start = time.perf_counter()
        photo, plans, hole, searched = self._search(photo_HxWx3, photo_mask)
        faces = []
        for plan in plans:
            x0, y0, x1, y1 = plan.bounds
            hole_r = plan.alignment.crop_region(hole[y0:y1, x0:x1].astype(np.float32), (x0, y0))
            faces.append(self._result(plan, float((hole_r > 1e-3).mean())))
        seconds = {
            "find_faces": searched,
            "mask": sum(plan.seconds.get("mask", 0.0) for plan in plans),
            "total": time.perf_counter() - start,
        }
        return Reconstruction(photo, tuple(faces), hole, seconds)

    def hole(self, photo_HxWx3: np.ndarray, photo_mask: np.ndarray | None = None) -> np.ndarray:
        """The pixels a call on this photo would replace (HxW bool), found without inpainting:
        what evaluations and benches score a mask source by."""
        return self._search(photo_HxWx3, photo_mask)[2]

    def __call__(
        self,
        photo_HxWx3: np.ndarray,
        photo_mask: np.ndarray | None = None,
        references: Sequence[guide.Reference] | None = None,
    ) -> Reconstruction:
        """Reconstructs every face found in the photo and replaces every pixel of the hole;
        `photo_mask` (HxW, > 0.5 = remove), when given, replaces the mask source; `references`
        (`data_pipeline.guide.reference`: photos of the same person), when given, replace the
        reconstructor's own."""
        if self.inpaint is None:
            raise ValueError("this Reconstructor has no inpainter: it only finds holes (.hole)")
        start = time.perf_counter()
        photo, plans, hole, searched = self._search(photo_HxWx3, photo_mask)
        references = self.references if references is None else references
        image, results, model, filled = self._fill(photo, plans, hole, references)
        seconds = {"find_faces": searched, "mask": 0.0, "inpaint": 0.0, **filled}
        for result in results:
            for stage, spent in result.seconds.items():
                seconds[stage] += spent
        seconds["total"] = time.perf_counter() - start
        n_model = int(model.sum())
        return Reconstruction(
            image, tuple(results), hole, seconds, n_model, int(hole.sum()) - n_model
        )


def _work_box(hole: np.ndarray, feather: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): the box of `hole` grown by half its size (what
    `smooth_fill_around_hole` reads around it) and by the seam, clipped to the photo."""
    ys, xs = np.nonzero(hole)
    grow_y = (ys.max() - ys.min() + 1) // 2 + 2 + feather
    grow_x = (xs.max() - xs.min() + 1) // 2 + 2 + feather
    h, w = hole.shape
    return (
        max(int(xs.min()) - grow_x, 0),
        max(int(ys.min()) - grow_y, 0),
        min(int(xs.max()) + 1 + grow_x, w),
        min(int(ys.max()) + 1 + grow_y, h),
    )


def _intersect(a, b) -> tuple[int, int, int, int]:
    return max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])


def _paste(out: np.ndarray, box, values: np.ndarray) -> None:
    """Writes float `values` into the uint8 photo `out` over `box`, rounded."""
    x0, y0, x1, y1 = box
    out[y0:y1, x0:x1] = np.clip(values + 0.5, 0, 255).astype(np.uint8)


def _window_ramp(size: int) -> np.ndarray:
    """RxR float32: the weight of the model's correction in its crop, 1 inside and falling
    linearly to 0 at the crop's edge over its last `size / 16` pixels (at least 2)."""
    edge = np.minimum(np.arange(size), np.arange(size)[::-1]).astype(np.float32)
    distance = np.minimum(edge[:, None], edge[None, :])
    return np.clip(distance / max(2.0, size / 16), 0.0, 1.0)


def _touches_edge(hole_r: np.ndarray) -> bool:
    """Whether the crop's hole reaches its outermost pixel ring."""
    return bool(hole_r[0].any() or hole_r[-1].any() or hole_r[:, 0].any() or hole_r[:, -1].any())


def _dilated(hole_HxW: np.ndarray, pixels: int) -> np.ndarray:
    """The boolean hole grown by `pixels` (a disc)."""
    hole = hole_HxW.astype(np.uint8)
    if pixels and hole.any():
        k = 2 * pixels + 1
        hole = cv2.dilate(hole, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    return hole > 0


def _interpolation(alignment: Alignment) -> int:
    """Bicubic where the crop enlarges the photo, bilinear (after area shrinking) where not."""
    return cv2.INTER_CUBIC if alignment.scale > 1 else cv2.INTER_LINEAR


def _on_face(hole: np.ndarray, instances: Sequence, least: float):
    """`hole` (RxR float) and `instances` without the instances of which less than `least` of
    the mask lies on the face of an aligned RxR crop; a dropped instance's pixels leave the hole
    unless a kept one covers them."""
    masks = [np.asarray(i.mask) > 0.5 for i in instances]
    keep = on_face(masks, least)
    if all(keep):
        return hole, instances
    off = np.zeros(hole.shape, bool)
    for mask, k in zip(masks, keep, strict=True):
        if not k:
            off |= mask
    for mask, k in zip(masks, keep, strict=True):
        if k:
            off &= ~mask
    return np.where(off, 0.0, hole).astype(np.float32), [
        i for i, k in zip(instances, keep, strict=True) if k
    ]


def _detection(instance, mask: np.ndarray, bounds) -> Detection | None:
    """`instance` with its mask taken to the photo (`mask`: inside `bounds`); None when no pixel
    of it lies in the photo."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    x0, y0 = bounds[:2]
    found = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return Detection(
        str(instance.category),
        float(instance.score),
        (x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()) + 1, y0 + int(ys.max()) + 1),
        tuple((c[:, 0] + (x0, y0)).astype(np.int32) for c in found[0]),
    )


def draw_overlay(photo: np.ndarray, result: Reconstruction) -> np.ndarray:
    """`photo` (the input) with what reconstruction saw: each face's box (green when framed by
    keypoints, yellow otherwise), each detection's outline with its class and score in the
    class's colour, and the replaced pixels' outline in white when no detection made them (a
    user's mask)."""
    out = np.ascontiguousarray(photo).copy()
    width = max(1, round(min(photo.shape[:2]) / 300))  # lines stay visible on large photos
    scale = 0.4 * width
    for face in result.faces:
        x, y, w, h = face.box
        colour = (0, 255, 0) if face.aligned else (255, 255, 0)
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, width)
        for d in face.detections:
            colour = categories.colour(categories.category_id(d.category))
            cv2.polylines(out, list(d.outline), True, colour, width, cv2.LINE_AA)
            _label(out, f"{d.category} {d.score:.2f}", d.box[:2], colour, scale, width)
    if result.hole.any() and not any(f.detections for f in result.faces):
        contours = cv2.findContours(
            result.hole.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
        )[0]
        cv2.polylines(out, contours, True, (255, 255, 255), width, cv2.LINE_AA)
    return out


def _label(image: np.ndarray, text: str, corner, colour, scale: float, width: int) -> None:
    """`text` in `colour` on a black band whose lower left is `corner` (kept inside the image)."""
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, width)
    x = int(np.clip(corner[0], 0, max(image.shape[1] - w, 0)))
    y = int(np.clip(corner[1], h + base, image.shape[0]))
    cv2.rectangle(image, (x, y - h - base), (x + w, y), (0, 0, 0), cv2.FILLED)
    cv2.putText(image, text, (x, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, width)
