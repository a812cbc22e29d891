"""Compositing: one occluder per face, reproducible from a seed, as an in-memory stream of examples.

Each example is a dict of numpy values:
    id        str, "<face id>-<k>" (k-th occlusion of that face)
    original  HxWx3 uint8, the face crop
    occluded  HxWx3 uint8, the same crop with the occluder pasted on
    mask      HxWx1 uint8, 1 where the occluder is (the hole), 0 elsewhere
    category  int, class id from data_pipeline.categories (1..19)
    bbox      float32 [x, y, w, h] in pixels, the tight box of the mask
    gender, age, race  int, -1 when unknown (gender 0 = male, 1 = female)
    face_id, source, occluder  str, for tracing an example back to its sources (face id, the
              photo's path or origin, the occluder's library file)

The mask is exact: it is the occluder's warped alpha at or above `ALPHA_CUT`, and alpha below the
cut is dropped before blending, so `occluded == original` wherever `mask == 0`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Sequence

import cv2
import numpy as np

from data_pipeline import faces as faces_lib
from data_pipeline import occluders, sample_faces
from data_pipeline.categories import CATEGORIES, category_id

ALPHA_CUT = 0.25  # occluder alpha below this is dropped: soft fringes would otherwise leak
MIN_AREA = 0.01  # of the image: smaller visible occluders are re-drawn
MIN_VISIBLE = 0.4  # of the occluder's own area: caps and scarves may hang off a tight crop
_TRIES = 20


def category_for(index: int, seed: int, categories: Sequence[str] = CATEGORIES) -> str:
    """Balanced category schedule: each run of len(categories) examples is a fresh permutation."""
    n = len(categories)
    perm = np.random.default_rng([seed, 0x0CC, index // n]).permutation(n)
    return categories[perm[index % n]]


def jitter_colour(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mild brightness, contrast and saturation changes (float, unclipped): occluder variants do
    not look pasted, and faces seen again look a little different."""
    x = rgb.astype(np.float32)
    gray = x.mean(axis=-1, keepdims=True)
    x = gray + (x - gray) * rng.uniform(0.85, 1.15)  # saturation
    x = (x - 128.0) * rng.uniform(0.9, 1.1) + 128.0  # contrast
    x = x * rng.uniform(0.85, 1.15)  # brightness
    return x


def _warp(occ: occluders.Occluder, size: int, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The occluder's colour (float) and alpha (0..1) warped into a size x size canvas."""
    rgba = occ.rgba.astype(np.float32)
    alpha = rgba[..., 3:] / 255.0
    premult = np.concatenate([rgba[..., :3] * alpha, alpha], axis=-1)  # no dark fringes
    out = cv2.warpAffine(
        premult,
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    a = out[..., 3]
    rgb = out[..., :3] / np.maximum(a, 1e-6)[..., None]
    return rgb, a


# Where a placement that crosses the face's edge puts the occluder's centre, in face-box heights
# (see `occluders.Placement`): below the chin for what is held in front of the lower face, its
# lower part past the aligned crop's bottom (~1.1 box heights); above the brow for caps, the brim
# past the crop's top (~-0.05). Sunglasses and masks sit on the face and never cross.
CROSS_BELOW = (1.0, 1.25)
CROSS_ABOVE = (-0.25, -0.1)
_NEVER_CROSS = ("mask", "sunglasses")


def place(
    occ: occluders.Occluder,
    face_box: Sequence[float],
    size: int,
    rng: np.random.Generator,
    cross: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Samples a placement; returns (rgb float HxWx3, alpha HxW in 0..1, 2x3 affine matrix).
    With `cross`, the occluder's centre is drawn past the chin (a cap: above the brow), so that
    it reaches out of the face's aligned window, as cups, books, mics, hands and scarves do in
    photos; a crop's mask is then the part inside the crop."""
    prior = occluders.PLACEMENTS[occ.category]
    bx, by, bw, bh = face_box
    oh, ow = occ.rgba.shape[:2]
    ref = ow if prior.by == "width" else max(ow, oh)
    scale = rng.uniform(*prior.size) * bw / ref
    angle = rng.uniform(-prior.rotate, prior.rotate)
    cx = bx + bw * (prior.anchor[0] + rng.uniform(-prior.jitter[0], prior.jitter[0]))
    cy = by + bh * (prior.anchor[1] + rng.uniform(-prior.jitter[1], prior.jitter[1]))
    if cross and occ.category not in _NEVER_CROSS:
        cy = by + bh * rng.uniform(*(CROSS_ABOVE if prior.anchor[1] < 0.3 else CROSS_BELOW))
    flip = prior.flip and rng.random() < 0.5
    # occluder pixel -> centred, mirrored, scaled, rotated, moved to (cx, cy)
    c, s = math.cos(math.radians(angle)) * scale, math.sin(math.radians(angle)) * scale
    fx = -1.0 if flip else 1.0
    lin = np.array([[c * fx, s], [-s * fx, c]], np.float64)
    centre = np.array([(ow - 1) / 2, (oh - 1) / 2])
    matrix = np.hstack([lin, (np.array([cx, cy]) - lin @ centre)[:, None]])
    rgb, alpha = _warp(occ, size, matrix)
    return rgb, alpha, matrix


def composite(
    face: faces_lib.Face,
    occ: occluders.Occluder,
    rng: np.random.Generator,
    cross: float = 0.0,
) -> dict[str, np.ndarray] | None:
    """Pastes `occ` onto `face` at a sampled placement; None when no placement is big enough.
    A fraction `cross` of the placements reaches past the face's edge (`place(cross=True)`);
    with 0 the generator draws exactly what it drew before the option existed."""
    img = face.image
    size = img.shape[0]
    full_area = float((occ.rgba[..., 3] >= ALPHA_CUT * 255).sum())
    crossing = cross > 0 and rng.random() < cross
    for _ in range(_TRIES):
        rgb, alpha, matrix = place(occ, face.face_box, size, rng, crossing)
        alpha = np.where(alpha >= ALPHA_CUT, np.minimum(alpha, 1.0), 0.0)
        mask = alpha > 0
        area = int(mask.sum())
        visible = area / max(full_area * abs(np.linalg.det(matrix[:, :2])), 1.0)
        if area >= MIN_AREA * size * size and visible >= MIN_VISIBLE:
            break
    else:
        return None
    rgb = jitter_colour(rgb, rng)
    a = alpha[..., None]
    blended = img.astype(np.float32) * (1 - a) + rgb * a
    occluded = np.where(mask[..., None], np.clip(np.rint(blended), 0, 255), img).astype(np.uint8)
    ys, xs = np.nonzero(mask)
    bbox = np.array(
        [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1], np.float32
    )
    return {"occluded": occluded, "mask": mask[..., None].astype(np.uint8), "bbox": bbox}


def occlude(
    face: faces_lib.Face,
    variants: Sequence[occluders.Occluder],
    rng: np.random.Generator,
    cross: float = 0.0,
) -> tuple[dict, occluders.Occluder] | None:
    """(`composite`'s parts, the variant) for the first of `variants`, in an order drawn from
    `rng`, that can be placed visibly on `face` (a tiny or odd PNG yields to the next); None
    when none can."""
    for v in rng.permutation(len(variants)):
        parts = composite(face, variants[v], rng, cross)
        if parts is not None:
            return parts, variants[v]
    return None


def example(
    example_id: str, face: faces_lib.Face, category: str, parts: dict, occ: occluders.Occluder
) -> dict:
    """One occluded example (the keys of the module docstring) of `face`."""
    return {
        "id": example_id,
        "original": face.image,
        **parts,
        "category": category_id(category),
        "gender": face.gender,
        "age": face.age,
        "race": face.race,
        "face_id": face.id,
        "source": face.source,
        "occluder": occ.name,
    }


def generate(
    faces: Iterable[faces_lib.Face],
    library: occluders.OccluderLibrary,
    seed: int = 0,
    per_face: int = 1,
    categories: Sequence[str] = CATEGORIES,
    repeat: bool = False,
    cross: float = 0.0,
) -> Iterator[dict]:
    """Yields `per_face` occluded examples per face (see the module docstring for the keys).

    The same faces, library, seed and arguments give the same examples. Categories follow a
    balanced schedule; the variant, placement and colour jitter come from a generator seeded by
    (seed, example index). With `repeat`, the faces are cycled forever with fresh occlusions
    (faces must then be a re-iterable sequence). A fraction `cross` of the occluders reaches
    past the face's edge (`composite`); 0, the default, keeps every earlier build's examples.
    """
    if not 0.0 <= cross <= 1.0:
        raise ValueError(f"cross is a fraction of the examples, in [0, 1]; got {cross}")
    if per_face < 1:
        raise ValueError(f"per_face must be at least 1, got {per_face}")
    for c in categories:
        category_id(c)  # raises on unknown names
    library.check(tuple(categories))
    index = 0
    cycle = 0
    while True:
        made = 0
        for face in faces:
            for k in range(per_face):
                cat = category_for(index, seed, categories)
                rng = np.random.default_rng([seed, index])
                variants = library.items[cat]
                index += 1
                found = occlude(face, variants, rng, cross)
                if found is None:
                    continue
                made += 1
                yield example(f"{face.id}-{k + cycle * per_face}", face, cat, *found)
        cycle += 1
        if not repeat:
            return
        if not made:  # an exhausted iterator or faces too small: looping would hang
            raise ValueError(
                "repeat=True needs a re-iterable sequence of faces that yields examples"
            )


def sample_stream(
    size: int = 64, seed: int = 0, per_face: int = 1, repeat: bool = True
) -> Iterator[dict]:
    """Examples from the committed sample faces and occluder library: needs no data on disk."""
    return generate(
        sample_faces.load(size), occluders.OccluderLibrary.load(), seed, per_face, repeat=repeat
    )


def demo_photo(category: str = "sunglasses", seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(photo HxWx3 uint8, exact mask HxW bool): the astronaut portrait (public domain, NASA)
    with a library occluder of `category` on her face; the demo's and the benches' sample photo."""
    from skimage import data

    photo = data.astronaut()
    box = faces_lib.detect_faces(photo)[0]
    face = faces_lib.Face("astronaut", photo, tuple(float(v) for v in box), "nasa")
    rng = np.random.default_rng(seed)
    for variant in occluders.OccluderLibrary.load().items[category]:
        parts = composite(face, variant, rng)
        if parts is not None:
            return parts["occluded"], parts["mask"][..., 0] > 0
    raise ValueError(f"no {category} occluder of the library fits the demo photo")


def augment_face(
    face: faces_lib.Face, rng: np.random.Generator, geometry: float = 0.0
) -> faces_lib.Face:
    """A mirrored (half the time) and colour-jittered copy of an aligned face crop: the template
    is symmetric, so the mirror is still aligned. With `geometry` > 0 the crop also moves by a
    small random similarity: scale in 1 ± geometry, shift up to ± geometry of the side, rotation
    up to ± 60·geometry degrees (the spread of alignment itself), reflected at the borders.
    Keypoints are dropped (they would swap sides)."""
    img = face.image
    x, y, w, h = face.face_box
    if rng.random() < 0.5:
        img = img[:, ::-1]
        x = img.shape[1] - x - w
    if geometry > 0:
        side = img.shape[0]
        scale = 1.0 + rng.uniform(-geometry, geometry)
        angle = rng.uniform(-60.0 * geometry, 60.0 * geometry)
        matrix = cv2.getRotationMatrix2D((side / 2, side / 2), angle, scale)
        matrix[:, 2] += rng.uniform(-geometry, geometry, 2) * side
        img = cv2.warpAffine(
            np.ascontiguousarray(img), matrix, (img.shape[1], img.shape[0]),
            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101,
        )  # fmt: skip
        cx, cy = matrix @ np.array([x + w / 2, y + h / 2, 1.0])
        w, h = w * scale, h * scale
        x, y = cx - w / 2, cy - h / 2
    img = np.clip(np.rint(jitter_colour(img, rng)), 0, 255).astype(np.uint8)
    return dataclasses.replace(
        face, image=np.ascontiguousarray(img), face_box=(x, y, w, h), keypoints=None
    )


def free_form_hole(size: int, rng: np.random.Generator) -> np.ndarray:
    """A LaMa/DeepFill-style hole (HxWx1 uint8, 1 = hole): a few thick random strokes and
    sometimes a box, covering roughly 5-40 % of the image, so that masks users draw are in
    the training distribution too."""
    hole = np.zeros((size, size), np.uint8)
    for _ in range(rng.integers(1, 5)):
        points = [rng.uniform(0.15, 0.85, 2) * size]
        for _ in range(rng.integers(2, 6)):
            angle, step = rng.uniform(0, 2 * np.pi), rng.uniform(0.1, 0.3) * size
            points.append(
                np.clip(points[-1] + step * np.array([np.cos(angle), np.sin(angle)]), 0, size - 1)
            )
        width = max(2, round(rng.uniform(0.04, 0.12) * size))
        cv2.polylines(hole, [np.round(points).astype(np.int32)], False, 1, width)
    if rng.random() < 0.3:
        w, h = (rng.uniform(0.2, 0.45, 2) * size).astype(int)
        x0, y0 = rng.integers(0, size - w), rng.integers(0, size - h)
        hole[y0 : y0 + h, x0 : x0 + w] = 1
    return hole[..., None]
