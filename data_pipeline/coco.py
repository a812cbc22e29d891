"""The detection set: occluded images plus COCO instances JSON with RLE masks (pycocotools).

Layout under the dataset root:
    coco/<split>/<example id>.png          the occluded image
    coco/annotations/instances_<split>.json
All 19 categories are listed with their class ids from data_pipeline.categories, whether or not a
split holds an example of each.
"""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
from pycocotools import mask as mask_util

from data_pipeline.categories import CATEGORIES, category_id

COCO_CATEGORIES = [
    {"id": category_id(c), "name": c, "supercategory": "occluder"} for c in CATEGORIES
]


def encode_mask(mask: np.ndarray) -> dict:
    """COCO RLE of an HxW or HxWx1 binary mask, with `counts` as a JSON-ready string."""
    m = np.asfortranarray(mask.reshape(mask.shape[0], mask.shape[1]).astype(np.uint8))
    rle = mask_util.encode(m)
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


class CocoWriter:
    """Writes one split: `add` saves the image and records its annotation; `close` writes JSON."""

    def __init__(self, root: str, split: str):
        self.root, self.split = root, split
        self.image_dir = os.path.join(root, "coco", split)
        os.makedirs(self.image_dir, exist_ok=True)
        os.makedirs(os.path.join(root, "coco", "annotations"), exist_ok=True)
        self.images: list[dict] = []
        self.annotations: list[dict] = []

    def add(self, example: dict) -> None:
        h, w = example["occluded"].shape[:2]
        image_id = len(self.images) + 1
        file_name = f"{example['id']}.png"
        bgr = cv2.cvtColor(example["occluded"], cv2.COLOR_RGB2BGR)
        if not cv2.imwrite(os.path.join(self.image_dir, file_name), bgr):
            raise OSError(f"could not write {os.path.join(self.image_dir, file_name)}")
        self.images.append(
            {
                "id": image_id,
                "file_name": file_name,
                "width": w,
                "height": h,
                "example_id": example["id"],
            }
        )
        rle = encode_mask(example["mask"])
        self.annotations.append(
            {
                "id": len(self.annotations) + 1,
                "image_id": image_id,
                "category_id": int(example["category"]),
                "segmentation": rle,
                "area": float(mask_util.area(rle)),
                "bbox": [float(v) for v in example["bbox"]],
                "iscrowd": 0,
            }
        )

    def close(self) -> str:
        path = os.path.join(self.root, "coco", "annotations", f"instances_{self.split}.json")
        doc = {
            "info": {"description": f"occluded faces, {self.split} split", "version": "1.0"},
            "licenses": [],
            "images": self.images,
            "annotations": self.annotations,
            "categories": COCO_CATEGORIES,
        }
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f)
        return path
