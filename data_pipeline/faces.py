"""Face sources: find, crop, label and de-duplicate faces from any folder of photos.

Faces are found with keypoints (eyes, nose, mouth) by BlazeFace (`data_pipeline.landmarks`), which
sees faces behind sunglasses, masks and hands, with YuNet as a second opinion where too little of
the face shows for BlazeFace, and aligned to a fixed template
(`data_pipeline.align`). OpenCV's Haar frontal-face cascades (seed 4.1.2) are the fallback: a face
found only by them is cropped square around its box with a margin, as are all faces with
`align=False` (for sets that come aligned, like FFHQ or CelebA-HQ). UTKFace names
(`age_gender_race_date.jpg`) and the CelebA(-HQ) attribute files give
labels; gender is 0 = male, 1 = female, -1 = unknown (UTKFace's convention), age and race -1 when
unknown. Near-duplicates are dropped by a 64-bit difference hash of the crop.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import multiprocessing
import os
import re
from collections.abc import Iterable, Iterator

import cv2
import numpy as np

from data_pipeline import align as align_lib
from data_pipeline import images, landmarks

DEFAULT_SIZE = 256
DEFAULT_MARGIN = 0.25  # of the Haar box side, added on each side: keeps hair, chin and ears
_DETECT_MAX_SIDE = 640  # Haar runs on a copy no larger than this; big photos gain nothing but time
_UTK_NAME = re.compile(r"^(\d{1,3})_([01])_([0-4])_")
_CELEBA_ATTRS = ("CelebAMask-HQ-attribute-anno.txt", "list_attr_celeba.txt")
_CELEBA_IDENTITY = "identity_CelebA.txt"  # "<file> <identity>" per line


@dataclasses.dataclass
class Face:
    """One face crop. `face_box` is the face's box inside the crop, [x, y, w, h] in pixels."""

    id: str
    image: np.ndarray  # HxWx3 uint8, square
    face_box: tuple[float, float, float, float]
    source: str
    gender: int = -1
    age: int = -1
    race: int = -1
    keypoints: np.ndarray | None = None  # 6x2 in crop pixels (landmarks.KEYPOINTS) if found
    person: str = ""  # who it is, for splits by person ("" = this face is its own person)

    @property
    def person_id(self) -> str:
        return self.person or self.id


class SkipLog:
    """Counts skipped photos by reason and keeps the first few paths of each for the summary."""

    def __init__(self, keep: int = 5):
        self.counts: collections.Counter[str] = collections.Counter()
        self.examples: dict[str, list[str]] = collections.defaultdict(list)
        self._keep = keep

    def add(self, path: str, reason: str) -> None:
        self.counts[reason] += 1
        if len(self.examples[reason]) < self._keep:
            self.examples[reason].append(path)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


DEFAULT_CASCADE = "haarcascade_frontalface_default.xml"  # seed 4.1.2
# Sunglasses, masks and hands hide what the default cascade looks for; this one, with fewer
# neighbours, still finds many such faces (at the price of more false positives).
OCCLUDED_CASCADE = ("haarcascade_frontalface_alt.xml", 3)


@functools.cache
def _haar(name: str) -> cv2.CascadeClassifier:
    path = os.path.join(cv2.data.haarcascades, name)
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"OpenCV Haar cascade {path!r} could not be loaded")
    return cascade


def detect_faces(
    rgb: np.ndarray,
    min_size: int = 48,
    max_side: int = _DETECT_MAX_SIDE,
    cascade: str = DEFAULT_CASCADE,
    min_neighbors: int = 5,
) -> list[tuple[int, int, int, int]]:
    """Haar frontal-face boxes [x, y, w, h] in `rgb` pixels, largest first.

    Detection runs on a copy shrunk to `max_side`, which finds the one big face of a portrait
    quickly; group photos of small faces need a larger `max_side`.
    """
    h, w = rgb.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if scale < 1.0:
        # at least 1 px a side: a 1x2048 strip shrinks to 0 px otherwise, which OpenCV refuses
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    gray = cv2.equalizeHist(gray)
    min_px = max(24, round(min_size * scale))
    boxes = _haar(cascade).detectMultiScale(
        gray, scaleFactor=1.1, minNeighbors=min_neighbors, minSize=(min_px,) * 2
    )
    found = [tuple(round(v / scale) for v in b) for b in np.asarray(boxes).reshape(-1, 4)]
    return sorted(found, key=lambda b: -b[2] * b[3])


def extract_square(rgb: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
    """The side×side pixels whose top-left corner is (x0, y0), reflected (OpenCV's
    BORDER_REFLECT_101) where the square leaves the photo."""
    h, w = rgb.shape[:2]
    pad = max(0, -x0, -y0, x0 + side - w, y0 + side - h)
    if pad:
        rgb = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    return rgb[y0 + pad : y0 + pad + side, x0 + pad : x0 + pad + side]


@dataclasses.dataclass(frozen=True)
class FoundFace:
    """A face in a photo: its box [x, y, w, h] and, unless only Haar found it, its keypoints
    (6 x (x, y), `landmarks.KEYPOINTS`), both in photo pixels."""

    box: tuple[float, float, float, float]
    keypoints: np.ndarray | None = None

    def alignment(self, size: int, margin: float = DEFAULT_MARGIN) -> align_lib.Alignment:
        """The template alignment from the keypoints, or the square window around the box."""
        if self.keypoints is not None:
            return align_lib.Alignment.from_keypoints(self.keypoints, size)
        return align_lib.Alignment.from_window(*face_window(self.box, margin), size)


def face_window(box: Iterable[float], margin: float = DEFAULT_MARGIN) -> tuple[int, int, int]:
    """The square (x0, y0, side) centred on a face box and grown by `margin` on every side."""
    x, y, w, h = (float(v) for v in box)
    side = round(max(w, h) * (1 + 2 * margin))
    return round(x + w / 2 - side / 2), round(y + h / 2 - side / 2), side


def face_bounds(
    box: Iterable[float], shape: tuple[int, ...], margin: float = 0.5
) -> tuple[int, int, int, int]:
    """`face_window` clipped to a photo of `shape`, as (x0, y0, x1, y1) (by default the square of
    twice the box: the face with its hair and chin, as evaluations and records show it)."""
    x0, y0, side = face_window(box, margin)
    h, w = shape[:2]
    return max(0, x0), max(0, y0), min(w, x0 + side), min(h, y0 + side)


@functools.cache
def _blazeface() -> landmarks.BlazeFace:
    return landmarks.BlazeFace()


@functools.cache
def _yunet() -> landmarks.YuNet:
    return landmarks.YuNet(min_score=YUNET_SCORE)


@functools.cache
def face_mesh() -> landmarks.FaceMesh:
    """The face mesh, one per process (`find_faces` and `data_pipeline.guide` share it)."""
    return landmarks.FaceMesh()


def _box_overlap(a, b) -> float:
    """Intersection over the smaller box's area."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    return iw * ih / max(min(aw * ah, bw * bh), 1e-9)


def _inside(point, box) -> bool:
    x, y, w, h = box
    return x <= point[0] <= x + w and y <= point[1] <= y + h


def _seen_before(candidate: landmarks.FaceDetection, kept: FoundFace) -> bool:
    """Whether a second opinion's face is a kept one seen again: the boxes overlap by half of
    the smaller, or one face's eyes lie in the other's box (two faces cannot share their eyes; a
    larger box around a face and the blur beside it, that YuNet sometimes adds to a face BlazeFace
    found, overlaps it by less than half)."""
    if _box_overlap(candidate.box, kept.box) >= 0.5:
        return True
    if _inside(candidate.keypoints[:2].mean(0), kept.box):
        return True
    return kept.keypoints is not None and _inside(kept.keypoints[:2].mean(0), candidate.box)


def _unseen_beside_seen(rgb: np.ndarray, found: list[FoundFace]) -> list[FoundFace]:
    """`found` without the faces the face mesh does not see (presence < UNSEEN) that lie within
    half a side of a face it sees (presence >= SEEN): a cap's brim and band over a brow, cut by a
    tile or seen by YuNet at a low score, pass for a face beside the real one, sharing none of
    its eyes; the mesh, which looks at the face alone and upright, finds no face there."""
    if len(found) < 2:
        return found
    level = np.array([[0.0, 0.0], [1.0, 0.0]])  # a Haar box: looked at upright
    presence = [
        face_mesh()(rgb, level, f.box)[0]
        if f.keypoints is None
        else face_mesh()(rgb, f.keypoints, landmarks.keypoint_box(f.keypoints))[0]
        for f in found
    ]
    seen = [f for f, p in zip(found, presence, strict=True) if p >= SEEN]
    return [
        f
        for f, p in zip(found, presence, strict=True)
        if not (p < UNSEEN and any(_near(f.box, s.box) for s in seen if s is not f))
    ]


def _near(box, seen_box) -> bool:
    """Whether `box` lies within half of `seen_box`'s side of it (overlapping or beside)."""
    ax, ay, aw, ah = box
    bx, by, bw, bh = seen_box
    gap = max(bx - (ax + aw), ax - (bx + bw), by - (ay + ah), ay - (by + bh), 0.0)
    return gap <= 0.5 * max(bw, bh)


SEEN, UNSEEN = 0.5, 0.05  # the face mesh's presence: a face it sees; a face it does not
SURE_SCORE = 0.6  # a BlazeFace face seen in one view only needs this score
HAAR_CONFIRMED_SCORE = 0.3  # BlazeFace's threshold inside a window around a Haar face
YUNET_SCORE = 0.2  # YuNet's threshold for a face that no BlazeFace view found


def _shifted(found, origin):
    """A BlazeFace pass on a view whose top-left corner is `origin` (x0, y0) in the photo,
    moved back into photo pixels."""
    corners, kps, scores = found
    shift = np.array(origin, np.float32)
    return corners + np.tile(shift, 2), kps + shift, scores


def find_faces(
    rgb: np.ndarray,
    min_size: int = 24,
    max_side: int = 1024,
    mesh: bool = True,
    yunet: bool = True,
) -> list[FoundFace]:
    """Every face in a photo, largest first, with keypoints where BlazeFace or YuNet finds them.

    BlazeFace sees a face that spans 1/8 to all of the image it is shown, so it runs on the
    whole photo, on the photo framed by a gray border (faces that fill the frame), on tiles of
    half the shorter side (overlapping by half), and on a window around each Haar box (both
    cascades). Its boxes are merged across passes. A face is kept when BlazeFace is sure of it
    (score >= SURE_SCORE), or when two views agree: two passes, or Haar and a pass around its box
    (where a scarf or a book over half the face lowers the score, not the keypoints' accuracy).
    Its keypoints must be laid out like a face's (`landmarks.plausible`), and a box mostly inside
    a larger face is taken for a part of it. Haar boxes that no kept face overlaps are kept
    without keypoints (the fallback). With `yunet` (the default), YuNet (`landmarks.YuNet`, a
    detector trained on crowds' small and half-hidden faces) is a second opinion: a face it finds
    with score >= YUNET_SCORE that is not a kept face seen again (`_seen_before`: overlapping it
    by half, or sharing its eyes) is kept with its keypoints, as when a book leaves only the
    brow. With `mesh` (the default), each kept face's eyes, nose and mouth come from the face
    mesh (`landmarks.FaceMesh.refine`), which places them better when part of the face is hidden;
    for a YuNet face the mesh looks through the box BlazeFace would draw around its keypoints
    (`landmarks.keypoint_box`); a face the mesh does not see beside a face it sees is dropped
    (`_unseen_beside_seen`: a cap over the brow is not a second face).
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got {rgb.dtype} {rgb.shape}")
    h, w = rgb.shape[:2]
    if min(h, w) < min_size:
        # No face fits, and in a strip a few pixels thin the detectors see noise: YuNet gave
        # boxes with NaN corners or others far outside the photo, differing run to run.
        return []
    haar = detect_faces(rgb, min_size, max_side)
    cascade, neighbours = OCCLUDED_CASCADE
    for box in detect_faces(rgb, min_size, max_side, cascade=cascade, min_neighbors=neighbours):
        if all(_box_overlap(box, b) < 0.5 for b in haar):
            haar.append(box)
    side = min(h, w)
    pad = max(h, w) // 4
    windows = [(0, 0, 0), (-pad, -pad, 0)]  # the photo, and the photo on a gray border
    if side // 2 >= 3 * min_size:  # smaller faces are found through the Haar windows
        tile, step = side // 2, side // 4
        windows += [
            (x0, y0, tile)
            for y0 in range(0, h - tile + 1, step)
            for x0 in range(0, w - tile + 1, step)
        ]
    detector = _blazeface()
    passes = []  # (corners, keypoints, scores, how many views it stands for)
    for x0, y0, s in windows:
        if s == 0 and x0 == 0:
            view = rgb
        elif s == 0:
            view = cv2.copyMakeBorder(
                rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(128,) * 3
            )
        else:
            view = extract_square(rgb, x0, y0, s)
        passes.append((*_shifted(detector.raw(view), (x0, y0)), 1))
    for box in haar:
        x, y, bw, bh = box
        x0, y0, s = face_window(box, margin=0.5)  # twice the box
        view = extract_square(rgb, x0, y0, s)
        corners, kps, scores = _shifted(detector.raw(view, HAAR_CONFIRMED_SCORE), (x0, y0))
        centres = (corners[:, :2] + corners[:, 2:]) / 2
        on_face = np.all((centres >= (x, y)) & (centres <= (x + bw, y + bh)), axis=1)
        passes.append((corners[on_face], kps[on_face], scores[on_face], 2))  # Haar agrees
    merged = landmarks.weighted_nms(
        *(np.concatenate([p[i] for p in passes]) for i in range(3)), iou=detector.iou
    )
    found: list[FoundFace] = []
    for d in sorted(merged, key=lambda d: -d.box[2] * d.box[3]):
        box = tuple(float(v) for v in d.box)
        corners = np.array([box[0], box[1], box[0] + box[2], box[1] + box[3]])
        views = sum(
            weight
            for c, _, _, weight in passes
            if len(c) and landmarks.box_iou(corners, c).max() > detector.iou
        )
        if (
            (d.score >= SURE_SCORE or views >= 2)
            and min(box[2], box[3]) >= min_size
            and landmarks.plausible(d.keypoints, box[2])
            and 0 <= d.keypoints[:4, 0].mean() < w
            and 0 <= d.keypoints[:4, 1].mean() < h
            and all(_box_overlap(box, f.box) < 0.5 for f in found)
        ):
            found.append(FoundFace(box, face_mesh().refine(rgb, d) if mesh else d.keypoints))
    for d in _yunet()(rgb, max_side) if yunet else []:
        box = tuple(float(v) for v in d.box)
        if min(box[2], box[3]) >= min_size and not any(_seen_before(d, f) for f in found):
            # the mesh's window from the keypoints as BlazeFace would box them: YuNet's box sits
            # higher and is larger, and the mesh placed hidden eyes worse through it
            window = dataclasses.replace(d, box=landmarks.keypoint_box(d.keypoints))
            found.append(FoundFace(box, face_mesh().refine(rgb, window) if mesh else d.keypoints))
    for box in haar:
        if all(_box_overlap(box, f.box) < 0.3 for f in found):
            found.append(FoundFace(tuple(float(v) for v in box)))
    if mesh:
        found = _unseen_beside_seen(rgb, found)
    return sorted(found, key=lambda f: -f.box[2] * f.box[3])


def detect_keypoints(face_rgb: np.ndarray, mesh: bool = True) -> FoundFace | None:
    """The most confident face of an image that is mostly one face (a crop), in one BlazeFace
    pass, its keypoints refined by the face mesh unless `mesh` is False; None when there is
    none. The crop is shown on a gray border a quarter of its side wide: BlazeFace misses faces
    that fill the whole frame (125 of 125 sample crops found with the border, 112 without)."""
    pad = face_rgb.shape[0] // 4
    framed = cv2.copyMakeBorder(face_rgb, *(pad,) * 4, cv2.BORDER_CONSTANT, value=(128,) * 3)
    found = _blazeface()(framed)
    if not found:
        return None
    best = max(found, key=lambda d: d.score)
    x, y, w, h = best.box
    keypoints = face_mesh().refine(framed, best) if mesh else best.keypoints
    return FoundFace((x - pad, y - pad, w, h), keypoints - pad)


def aligned_crop(
    rgb: np.ndarray,
    face: FoundFace,
    size: int,
    margin: float = DEFAULT_MARGIN,
    alignment: align_lib.Alignment | None = None,
) -> tuple[np.ndarray, tuple[float, float, float, float], np.ndarray | None]:
    """(crop, face box in the crop, keypoints in the crop or None) for one found face, framed
    by `alignment` (default: `face.alignment(size, margin)`)."""
    alignment = alignment or face.alignment(size, margin)
    crop = alignment.crop(rgb, cv2.INTER_CUBIC if alignment.scale > 1 else cv2.INTER_LINEAR)
    x, y, bw, bh = face.box
    (cx, cy), k = align_lib.apply(alignment.matrix, [x + bw / 2, y + bh / 2]), alignment.scale
    # the face's box in the crop, clipped to it (BlazeFace's box can reach past the template)
    x0, y0 = max(cx - bw * k / 2, 0.0), max(cy - bh * k / 2, 0.0)
    x1, y1 = min(cx + bw * k / 2, float(size)), min(cy + bh * k / 2, float(size))
    box = (x0, y0, x1 - x0, y1 - y0)
    kps = None if face.keypoints is None else align_lib.apply(alignment.matrix, face.keypoints)
    return crop, box, kps


def crop_face(
    rgb: np.ndarray, box: Iterable[float], size: int, margin: float = DEFAULT_MARGIN
) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """A size x size crop around `box` grown by `margin`; returns it and the box in crop pixels.

    The square is shifted to stay inside the photo where it fits; otherwise the photo is padded
    by reflection so the crop is never cut off.
    """
    x, y, bw, bh = (float(v) for v in box)
    side = max(bw, bh) * (1 + 2 * margin)
    cx, cy = x + bw / 2, y + bh / 2
    h, w = rgb.shape[:2]
    x0 = min(max(cx - side / 2, 0.0), max(w - side, 0.0)) if side <= w else cx - side / 2
    y0 = min(max(cy - side / 2, 0.0), max(h - side, 0.0)) if side <= h else cy - side / 2
    x0, y0, s = round(x0), round(y0), round(side)
    crop = extract_square(rgb, x0, y0, s)
    interp = cv2.INTER_AREA if s > size else cv2.INTER_CUBIC
    crop = cv2.resize(crop, (size, size), interpolation=interp)
    k = size / s
    return np.ascontiguousarray(crop), ((x - x0) * k, (y - y0) * k, bw * k, bh * k)


def dhash(rgb: np.ndarray) -> int:
    """64-bit difference hash: robust to resizing and re-encoding, changed by any real edit."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(gray, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return int(np.packbits(bits).view(">u8")[0])


class Deduplicator:
    """Remembers hashes; `seen(h)` is True when a stored hash is within `max_distance` bits."""

    def __init__(self, max_distance: int = 4):
        self._hashes = np.zeros(1024, np.uint64)  # grown by doubling: 50k faces stay cheap
        self._n = 0
        self._max = max_distance

    def seen(self, h: int) -> bool:
        stored = self._hashes[: self._n]
        if self._n and np.bitwise_count(stored ^ np.uint64(h)).min() <= self._max:
            return True
        if self._n == self._hashes.size:
            self._hashes = np.concatenate([self._hashes, np.zeros_like(self._hashes)])
        self._hashes[self._n] = h
        self._n += 1
        return False


def read_celeba_gender(root: str) -> dict[str, int]:
    """File name -> gender from a CelebA(-HQ) attribute file in `root`, if there is one."""
    for name in _CELEBA_ATTRS:
        path = os.path.join(root, name)
        if not os.path.isfile(path):
            continue
        expected = (
            "expected CelebA's attribute format: a count line, a header line of attribute names "
            "with 'Male' among them, then '<file> 1|-1 ...' per image"
        )
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except UnicodeDecodeError:
            raise ValueError(f"{path}: not a text file; {expected}") from None
        header = lines[1].split() if len(lines) > 1 else []
        if "Male" not in header:
            raise ValueError(f"{path}: no 'Male' column in its second line; {expected}")
        col = header.index("Male") + 1  # rows start with the file name
        out = {}
        for number, line in enumerate(lines[2:], start=3):
            parts = line.split()
            if not parts:
                continue
            if len(parts) <= col or parts[col] not in ("1", "-1"):
                raise ValueError(f"{path}, line {number}: {line[:80]!r}; {expected}")
            out[parts[0]] = 0 if parts[col] == "1" else 1
        return out
    return {}


def read_celeba_persons(root: str) -> dict[str, str]:
    """File name -> person from CelebA's identity file in `root`, if there is one."""
    path = os.path.join(root, _CELEBA_IDENTITY)
    if not os.path.isfile(path):
        return {}
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2:
                out[parts[0]] = f"celeba-{parts[1]}"
    return out


def labels_from_name(path: str, celeba: dict[str, int]) -> dict[str, int]:
    """Labels a file name carries: UTKFace `age_gender_race_*`, or a CelebA attribute row."""
    name = os.path.basename(path)
    m = _UTK_NAME.match(name)
    if m:
        return {"age": int(m[1]), "gender": int(m[2]), "race": int(m[3])}
    if name in celeba:
        return {"gender": celeba[name]}
    return {}


def face_id(root: str, path: str) -> str:
    """A short stable id: the file stem plus a hash of the path relative to the face folder."""
    rel = os.path.relpath(path, root)
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", os.path.splitext(os.path.basename(rel))[0])[:40]
    return f"{stem}-{hashlib.sha1(rel.encode()).hexdigest()[:6]}"


def read_face(
    path: str, size: int, margin: float, align: bool = True
) -> tuple[np.ndarray, tuple, np.ndarray | None] | str:
    """(crop, face box, keypoints or None) of the largest face in one photo, or the reason to
    skip it. With `align`, the face is found with keypoints and aligned to the template."""
    try:
        rgb = images.load_rgb(path)
    except images.SkipImage as e:
        return e.reason
    if align:
        found = find_faces(rgb)
        return aligned_crop(rgb, found[0], size, margin) if found else images.NO_FACE
    boxes = detect_faces(rgb)
    if not boxes:
        return images.NO_FACE
    return (*crop_face(rgb, boxes[0], size, margin), None)


def _read_face_job(job: tuple[str, int, float, bool]):
    return read_face(*job)


def _read_all(paths: list[str], size: int, margin: float, align: bool, workers: int) -> Iterator:
    """read_face over `paths` in order; with workers > 1 in a process pool, two batches in flight
    at most, so a slow consumer never piles up thousands of decoded crops."""
    jobs = [(p, size, margin, align) for p in paths]
    if workers <= 1:
        yield from map(_read_face_job, jobs)
        return
    batch = workers * 8
    # spawn, not fork: forking a process that already runs TensorFlow's threads can deadlock
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pending = pool.map_async(_read_face_job, jobs[:batch])
        for start in range(batch, len(jobs) + batch, batch):
            ahead = pool.map_async(_read_face_job, jobs[start : start + batch])
            yield from pending.get()
            pending = ahead


def iter_faces(
    root: str,
    size: int = DEFAULT_SIZE,
    margin: float = DEFAULT_MARGIN,
    skips: SkipLog | None = None,
    paths: list[str] | None = None,
    workers: int = 1,
    align: bool = True,
) -> Iterator[Face]:
    """Yields one face crop per usable photo under `root` (the largest face when there are several).

    Photos that cannot be read, have no face, or repeat an earlier crop are counted in `skips`.
    With `align` (the default) faces are aligned to the template by their keypoints.
    `workers` > 1 reads and crops in that many processes; the result does not depend on it.
    """
    skips = skips if skips is not None else SkipLog()
    celeba = read_celeba_gender(root)
    persons = read_celeba_persons(root)
    dedup = Deduplicator()
    paths = paths if paths is not None else images.list_images(root)
    for path, got in zip(paths, _read_all(paths, size, margin, align, workers), strict=True):
        if isinstance(got, str):
            skips.add(path, got)
            continue
        if dedup.seen(dhash(got[0])):
            skips.add(path, images.DUPLICATE)
            continue
        yield face_from(root, path, got, celeba, persons)


def face_from(
    root: str, path: str, got: tuple, celeba: dict[str, int], persons: dict[str, str]
) -> Face:
    """The Face of one photo under `root` from `read_face`'s (crop, box, keypoints), labelled by
    its file name or the folder's CelebA files (`read_celeba_gender`, `read_celeba_persons`)."""
    crop, box, kps = got
    labels = labels_from_name(path, celeba)
    person = persons.get(os.path.basename(path), "")
    return Face(face_id(root, path), crop, box, path, keypoints=kps, person=person, **labels)
