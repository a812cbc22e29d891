"""The detector's training data: a COCO instances JSON + image folder, read with pycocotools.

Layout (what the dataset builder writes): `<coco_dir>/<split>/*.png` and
`<coco_dir>/annotations/instances_<split>.json` with RLE or polygon masks. Category ids in the
JSON must be the project's (data_pipeline/categories.py); a mismatch is an error, not a remap,
so a detector never silently learns shuffled labels.
"""

import contextlib
import io
import logging
import pathlib

import numpy as np
import torch
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from data_pipeline.categories import CATEGORY_TO_ID

log = logging.getLogger(__name__)


def split_paths(coco_dir, split: str) -> tuple[pathlib.Path, pathlib.Path]:
    """(image folder, annotation JSON) of one split; FileNotFoundError names what is missing."""
    coco_dir = pathlib.Path(coco_dir)
    image_dir = coco_dir / split
    ann_file = coco_dir / "annotations" / f"instances_{split}.json"
    for path in (image_dir, ann_file):
        if not path.exists():
            raise FileNotFoundError(
                f"{path} does not exist; expected a COCO set with {split}/ images and "
                f"annotations/instances_{split}.json under {coco_dir}"
            )
    return image_dir, ann_file


def load_coco(ann_file) -> COCO:
    """pycocotools COCO index of `ann_file`, quietly, with the category ids checked."""
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress lines
        coco = COCO(str(ann_file))
    for cat in coco.loadCats(coco.getCatIds()):
        expected = CATEGORY_TO_ID.get(cat["name"])
        if expected != cat["id"]:
            raise ValueError(
                f"{ann_file}: category {cat['name']!r} has id {cat['id']}; expected "
                f"{expected} (the ids of data_pipeline/categories.py)"
            )
    return coco


def annotation_mask(coco: COCO, ann: dict, height: int, width: int) -> np.ndarray:
    """HxW uint8 0/1 mask of one annotation (RLE, compressed RLE or polygons)."""
    seg = ann["segmentation"]
    if isinstance(seg, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(seg, height, width))
    elif isinstance(seg["counts"], list):
        rle = mask_utils.frPyObjects(seg, height, width)
    else:
        rle = seg
    return mask_utils.decode(rle).astype(np.uint8)


def image_size_of(ann_file) -> int:
    """The largest side of the first image in a COCO JSON: the detector's default input size."""
    coco = load_coco(ann_file)
    ids = coco.getImgIds()
    if not ids:
        raise ValueError(f"{ann_file} lists no images; expected at least one")
    info = coco.loadImgs(ids[0])[0]
    return int(max(info["height"], info["width"]))


def make_target(labels, masks, image_id: int, size: tuple[int, int] | None = None) -> dict:
    """Mask R-CNN target of one image from its class ids and non-empty HxW 0/1 masks.

    Boxes are the masks' tight boxes, so flips and the mask head always agree with them; `size`
    (H, W) shapes the empty mask array of an image without instances.
    """
    boxes = []
    for mask in masks:
        ys, xs = np.nonzero(mask)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    height, width = size if size is not None else masks[0].shape
    return {
        "boxes": torch.as_tensor(np.array(boxes, np.float32).reshape(-1, 4)),
        "labels": torch.as_tensor(np.array(labels, np.int64)),
        "masks": torch.as_tensor(np.array(masks, np.uint8).reshape(-1, height, width)),
        "image_id": torch.tensor(image_id, dtype=torch.int64),
    }


class CocoInstances(torch.utils.data.Dataset):
    """Images and Mask R-CNN targets of one COCO split.

    Item: (image 3xHxW float32 in [0, 1], target dict with boxes Nx4 xyxy float32, labels N int64,
    masks NxHxW uint8, image_id int64). Crowd annotations and empty masks are dropped.
    """

    def __init__(self, coco_dir, split: str, hflip_prob: float = 0.0, seed: int = 0):
        self.image_dir, self.ann_file = split_paths(coco_dir, split)
        self.coco = load_coco(self.ann_file)
        self.ids = self.readable(sorted(self.coco.getImgIds()))
        self.hflip_prob = hflip_prob
        self.seed = seed
        self.epoch = 0  # mixes into the flip decisions so each epoch flips differently

    def __len__(self) -> int:
        return len(self.ids)

    def load_image(self, image_id: int) -> np.ndarray:
        """HxWx3 uint8 RGB image of `image_id`."""
        info = self.coco.loadImgs(image_id)[0]
        path = self.image_dir / info["file_name"]
        try:
            with Image.open(path) as img:
                return np.array(img.convert("RGB"))  # writable, for torch.from_numpy
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
            raise ValueError(f"{path}: cannot read the image ({err}); expected a PNG/JPEG") from err

    def readable(self, image_ids: list[int]) -> list[int]:
        """`image_ids` without those whose image cannot be decoded, each logged with its file and
        reason: one corrupt file must not stop a training run (or an evaluation) midway."""
        keep = []
        for image_id in image_ids:
            try:
                self.load_image(image_id)
                keep.append(image_id)
            except ValueError as err:
                log.warning("skipped %s", err)
        if len(keep) < len(image_ids):
            log.warning(
                "skipped %d of %d images of %s",
                len(image_ids) - len(keep),
                len(image_ids),
                self.ann_file,
            )
        return keep

    def target(self, image_id: int, height: int, width: int) -> dict:
        """Mask R-CNN target of `image_id` (before augmentation)."""
        anns = self.coco.loadAnns(self.coco.getAnnIds(imgIds=image_id, iscrowd=False))
        labels, masks = [], []
        for ann in anns:
            mask = annotation_mask(self.coco, ann, height, width)
            if mask.any():
                labels.append(ann["category_id"])
                masks.append(mask)
        return make_target(labels, masks, image_id, (height, width))

    def __getitem__(self, index: int):
        image_id = self.ids[index]
        image = self.load_image(image_id)
        height, width = image.shape[:2]
        target = self.target(image_id, height, width)
        image_t = torch.from_numpy(image).permute(2, 0, 1).float().div_(255.0)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        if self.hflip_prob > 0 and rng.random() < self.hflip_prob:
            image_t, target = hflip(image_t, target)
        return image_t, target


def hflip(image_3xHxW: torch.Tensor, target: dict) -> tuple[torch.Tensor, dict]:
    """Mirror an image and its target left-right."""
    width = image_3xHxW.shape[-1]
    target = dict(target)
    boxes = target["boxes"].clone()
    boxes[:, [0, 2]] = width - target["boxes"][:, [2, 0]]
    target["boxes"] = boxes
    target["masks"] = target["masks"].flip(-1)
    return image_3xHxW.flip(-1), target


def collate(batch):
    """Lists of images and targets, as torchvision detection models take them."""
    images, targets = zip(*batch, strict=True)
    return list(images), list(targets)
