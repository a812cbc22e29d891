"""A tiny synthetic COCO instances set (coloured shapes on noise) for tests and smoke runs.

Same layout as the dataset builder's: `<root>/<split>/*.png` and
`<root>/annotations/instances_<split>.json` with RLE masks and the project's category ids.
Each category gets its own colour and shape, so a detector can learn it in a few hundred steps.
"""

import json
import pathlib

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from data_pipeline.categories import CATEGORIES, CATEGORY_TO_ID

DEFAULT_CLASSES = ("cap", "mask", "sunglasses")


def _shape_mask(rng, size: int, kind: int) -> np.ndarray:
    """A random rectangle (kind 0) or ellipse (kind 1) covering 10-40% of the side."""
    h, w = (rng.integers(size // 4, size // 2 + 1, size=2)).tolist()
    y0, x0 = rng.integers(0, size - h), rng.integers(0, size - w)
    mask = np.zeros((size, size), np.uint8)
    if kind == 0:
        mask[y0 : y0 + h, x0 : x0 + w] = 1
    else:
        yy, xx = np.mgrid[:size, :size]
        cy, cx = y0 + h / 2, x0 + w / 2
        mask[((yy - cy) / (h / 2)) ** 2 + ((xx - cx) / (w / 2)) ** 2 <= 1] = 1
    return mask


def make_image(rng, size: int, classes, max_instances: int):
    """(HxWx3 uint8 image, [(category name, HxW mask), ...]) with 0..max_instances shapes."""
    image = rng.integers(60, 120, size=(size, size, 3)).astype(np.uint8)
    instances = []
    for _ in range(int(rng.integers(0, max_instances + 1))):
        k = int(rng.integers(len(classes)))
        mask = _shape_mask(rng, size, k % 2)
        for _, other in instances:  # later shapes cover earlier ones, like real occluders
            other &= 1 - mask
        colour = np.array([(255, 40, 40), (40, 220, 40), (40, 80, 255)][k % 3], np.uint8)
        image[mask.astype(bool)] = colour
        instances.append((classes[k], mask))
    return image, [(n, m) for n, m in instances if m.any()]


def write_split(root, split: str, images_and_instances) -> pathlib.Path:
    """Write one split's PNGs and COCO JSON; returns the JSON path."""
    root = pathlib.Path(root)
    (root / split).mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i, (image, instances) in enumerate(images_and_instances, start=1):
        name = f"{split}_{i:05d}.png"
        Image.fromarray(image).save(root / split / name)
        images.append(
            {"id": i, "file_name": name, "height": image.shape[0], "width": image.shape[1]}
        )
        for category, mask in instances:
            rle = mask_utils.encode(np.asfortranarray(mask))
            x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
            rle["counts"] = rle["counts"].decode("ascii")
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i,
                    "category_id": CATEGORY_TO_ID[category],
                    "segmentation": rle,
                    "area": float(mask_utils.area(rle)),
                    "bbox": [x, y, w, h],
                    "iscrowd": 0,
                }
            )
    coco = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": CATEGORY_TO_ID[n], "name": n} for n in CATEGORIES],
    }
    path = root / "annotations" / f"instances_{split}.json"
    path.write_text(json.dumps(coco), encoding="utf-8")
    return path


def make_coco(
    root, *, num_train=8, num_test=4, size=64, classes=DEFAULT_CLASSES, max_instances=2, seed=0
) -> pathlib.Path:
    """Write train and test splits of a synthetic set under `root`; returns `root`."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", num_train), ("test", num_test)):
        write_split(root, split, [make_image(rng, size, classes, max_instances) for _ in range(n)])
    return pathlib.Path(root)
