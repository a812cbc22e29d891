"""The occluder library on disk, and where each category sits on a face.

The library is a folder with one sub-folder per category holding RGBA PNGs
(`data_pipeline/assets/occluders/<category>/*.png`). Users may drop in their own PNGs: any image
with an alpha channel whose transparent background surrounds the object works. Sub-folders that
are not category names are ignored with a warning.
"""

from __future__ import annotations

import dataclasses
import os
import warnings

import numpy as np
from PIL import Image

from data_pipeline.categories import CATEGORIES

LIBRARY_DIR = os.path.join(os.path.dirname(__file__), "assets", "occluders")


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where a category goes, in units of the Haar face box (x: 0 = left edge, 1 = right edge;
    y: 0 = box top, about mid-forehead, 0.4 = eyes, 0.6 = nose tip, 0.8 = mouth, 1 = chin).

    The occluder's centre lands at `anchor` plus a uniform offset within +-`jitter`; its width
    (`by="width"`) or its longer side (`by="long"`) is a uniform fraction in `size` of the box
    width; it turns by up to +-`rotate` degrees.
    """

    anchor: tuple[float, float]
    jitter: tuple[float, float]
    size: tuple[float, float]
    by: str = "long"
    rotate: float = 20.0
    flip: bool = True  # mirror half of the time


# The seed placed its occluders by hand (4.1.3); these priors put each object where it sits on a
# face in photos: glasses on the eyes, masks over mouth and nose, caps on the forehead, food, cups
# and mics at the mouth, phones and hands in front of the lower face.
PLACEMENTS: dict[str, Placement] = {
    "book": Placement((0.5, 0.65), (0.3, 0.25), (0.6, 0.95), "long", 20),
    "box": Placement((0.5, 0.7), (0.3, 0.25), (0.5, 0.85), "long", 15),
    "candy": Placement((0.5, 0.8), (0.15, 0.06), (0.3, 0.5), "long", 35),
    "cap": Placement((0.5, 0.02), (0.05, 0.05), (1.0, 1.25), "width", 10),
    "cigarette": Placement((0.5, 0.8), (0.25, 0.04), (0.35, 0.6), "long", 30),
    "cup": Placement((0.5, 0.92), (0.2, 0.08), (0.35, 0.6), "width", 15),
    "envelope": Placement((0.5, 0.68), (0.3, 0.25), (0.5, 0.85), "width", 25),
    "fastfood": Placement((0.5, 0.86), (0.15, 0.08), (0.35, 0.6), "long", 20),
    "flower": Placement((0.5, 0.6), (0.35, 0.3), (0.3, 0.55), "long", 30),
    "fruit": Placement((0.5, 0.83), (0.2, 0.08), (0.3, 0.5), "long", 30),
    "glove": Placement((0.5, 0.6), (0.3, 0.3), (0.4, 0.7), "long", 40),
    "hand": Placement((0.5, 0.6), (0.3, 0.3), (0.45, 0.75), "long", 40),
    "keys": Placement((0.5, 0.72), (0.3, 0.2), (0.3, 0.5), "long", 40),
    "mask": Placement((0.5, 0.76), (0.03, 0.03), (0.85, 1.05), "width", 6),
    "mic": Placement((0.5, 1.0), (0.15, 0.05), (0.45, 0.7), "long", 20),
    "pen": Placement((0.5, 0.75), (0.25, 0.2), (0.4, 0.7), "long", 50),
    "phone": Placement((0.5, 0.7), (0.3, 0.2), (0.4, 0.65), "long", 25),
    "scarf": Placement((0.5, 1.1), (0.03, 0.05), (1.1, 1.4), "width", 8),
    "sunglasses": Placement((0.5, 0.4), (0.02, 0.03), (0.9, 1.1), "width", 6, flip=True),
}
assert set(PLACEMENTS) == set(CATEGORIES), "every category needs a placement prior"


@dataclasses.dataclass(frozen=True)
class Occluder:
    category: str
    name: str  # "<category>/<file>.png"
    rgba: np.ndarray  # HxWx4 uint8, cropped to the visible object


class OccluderLibrary:
    """All occluder PNGs by category, loaded once into memory (the committed set is ~1.5 MB)."""

    def __init__(self, items: dict[str, list[Occluder]], root: str):
        self.items, self.root = items, root

    @classmethod
    def load(cls, root: str = LIBRARY_DIR) -> OccluderLibrary:
        if not os.path.isdir(root):
            raise FileNotFoundError(f"occluder library {root!r} does not exist")
        items: dict[str, list[Occluder]] = {c: [] for c in CATEGORIES}
        for entry in sorted(os.listdir(root)):
            folder = os.path.join(root, entry)
            if not os.path.isdir(folder) or entry.startswith("."):
                continue
            if entry not in items:
                warnings.warn(f"{folder}: not an occluder category; ignored", stacklevel=2)
                continue
            for name in sorted(os.listdir(folder)):
                if name.lower().endswith(".png"):
                    occ = _read_occluder(os.path.join(folder, name), entry)
                    if occ is not None:
                        items[entry].append(occ)
        return cls(items, root)

    def counts(self) -> dict[str, int]:
        return {c: len(v) for c, v in self.items.items()}

    def check(self, categories: tuple[str, ...] = CATEGORIES) -> None:
        """Raises ValueError naming every requested category that has no usable PNG."""
        empty = [c for c in categories if not self.items.get(c)]
        if empty:
            raise ValueError(
                f"occluder library {self.root!r} has no usable PNG for: {', '.join(empty)}; "
                "add RGBA PNGs to those folders or rebuild with data_pipeline.occluder_builder"
            )


def _read_occluder(path: str, category: str) -> Occluder | None:
    """One library PNG as RGBA cropped to its visible pixels; None (with a warning) if unusable."""
    try:
        with Image.open(path) as im:
            has_alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
            rgba = np.asarray(im.convert("RGBA"))
    except (OSError, ValueError) as e:
        warnings.warn(f"{path}: unreadable occluder PNG ({e}); skipped", stacklevel=3)
        return None
    alpha = rgba[..., 3]
    if not has_alpha:
        warnings.warn(f"{path}: expected an RGBA PNG with transparency; skipped", stacklevel=3)
        return None
    ys, xs = np.nonzero(alpha)
    if ys.size < 16:
        warnings.warn(f"{path}: almost fully transparent; skipped", stacklevel=3)
        return None
    crop = rgba[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    return Occluder(category, f"{category}/{os.path.basename(path)}", np.ascontiguousarray(crop))
