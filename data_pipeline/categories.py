"""The 19 occluder categories (seed 4.1.3), fixed in one place.

Class ids are the index in the alphabetical list + 1; id 0 is the background. `Instance` is one
detected occluder, as both detectors give it (PyTorch's `detector.predict`, onnxruntime's
`serve`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

CATEGORIES: tuple[str, ...] = (
    "book",
    "box",
    "candy",
    "cap",
    "cigarette",
    "cup",
    "envelope",
    "fastfood",
    "flower",
    "fruit",
    "glove",
    "hand",
    "keys",
    "mask",
    "mic",
    "pen",
    "phone",
    "scarf",
    "sunglasses",
)
NUM_CLASSES = len(CATEGORIES) + 1  # with the background
CATEGORY_TO_ID = {name: i + 1 for i, name in enumerate(CATEGORIES)}
ID_TO_CATEGORY = {i: name for name, i in CATEGORY_TO_ID.items()}

assert list(CATEGORIES) == sorted(CATEGORIES), "ids are defined by alphabetical order"


def category_id(name: str) -> int:
    """The class id of a category name; raises ValueError naming the valid ones."""
    try:
        return CATEGORY_TO_ID[name]
    except KeyError:
        raise ValueError(
            f"unknown occluder category {name!r}; expected one of {', '.join(CATEGORIES)}"
        ) from None


def colour(label: int) -> tuple[int, int, int]:
    """A fixed, well-spread RGB colour per class id (golden-ratio hue steps), for drawings."""
    hue = (label * 0.618034) % 1.0
    i, f = int(hue * 6), hue * 6 - int(hue * 6)
    q, t = int(255 * (1 - f)), int(255 * f)
    return [(255, t, 0), (q, 255, 0), (0, 255, t), (0, q, 255), (t, 0, 255), (255, 0, q)][i % 6]


@dataclasses.dataclass(frozen=True)
class Instance:
    """One detected occluder. `box` is (x0, y0, x1, y1) in pixels; `mask` is HxW bool."""

    label: int
    score: float
    box: tuple[float, float, float, float]
    mask: np.ndarray

    @property
    def category(self) -> str:
        return ID_TO_CATEGORY[self.label]


def union_mask(instances: Sequence[Instance], height: int, width: int) -> np.ndarray:
    """HxW uint8 0/1: the union of the instances' masks (zeros when there are none): the mask
    either detector hands on for inpainting."""
    import numpy as np

    out = np.zeros((height, width), np.uint8)
    for instance in instances:
        out |= np.asarray(instance.mask, bool)
    return out
