"""The detector's data made on the fly: library occluders composited onto the faces of one split.

Training (`GeneratedComposites`) makes a fresh composite for every example index: the face and its
augmentation (mirror, colour, a small scale/shift/rotation), the category (compose's balanced
schedule), the occluder variant, its placement, rotation and colour all follow from (seed, index),
so a run resumed at step s sees exactly the images it would have seen, and no two steps repeat.
Evaluation (`GeneratedTestSet`) is a fixed, seeded set on the test faces with the same number of
instances of every category, held in memory with a pycocotools ground truth and read like
`detector.data.CocoInstances` (`ids`, `load_image`, `coco`).

The faces are the committed sample set (or `faces_dir`), split by person exactly as
`launch/build_dataset.py --seed=<split_seed>` splits them, so no test person is ever trained on.
"""

import contextlib
import dataclasses
import functools
import io
from collections.abc import Sequence

import numpy as np
import torch
from pycocotools.coco import COCO

from data_pipeline import coco as coco_lib
from data_pipeline import compose, occluders, sample_faces, splits
from data_pipeline import faces as faces_lib
from data_pipeline.categories import CATEGORIES, ID_TO_CATEGORY, category_id
from detector import data

_RETRY_STRIDE = 1_000_003  # an index whose every variant fails to place moves to index + k·stride
_TRIES = 8


@functools.cache
def _all_faces(faces_dir: str, size: int) -> tuple:
    """Every usable face at `size`, aligned, found once per process (training and test ask)."""
    if not faces_dir:
        return tuple(sample_faces.load(size))
    found = tuple(faces_lib.iter_faces(faces_dir, size=size))
    if not found:
        raise FileNotFoundError(f"config.data.faces_dir={faces_dir!r} holds no usable face")
    return found


def split_faces(data_config, size: int, split: str) -> list:
    """The faces of `split` ("train" | "validation" | "test") at `size` px, split by person."""
    faces = _all_faces(data_config.faces_dir, size)
    chosen = splits.faces_of_split(list(faces), split, data_config.split_seed)
    if not chosen:
        raise ValueError(f"no {split} face among the {len(faces)} faces of {data_config.faces_dir}")
    return chosen


def load_library(data_config) -> occluders.OccluderLibrary:
    """The occluder library of `config.data.occluders_dir` (default: the committed one), checked."""
    library = occluders.OccluderLibrary.load(data_config.occluders_dir or occluders.LIBRARY_DIR)
    library.check()
    return library


def _composite(face, category: str, library, rng: np.random.Generator) -> dict | None:
    """`compose.composite` with the category's variants in a random order; None if none fits."""
    variants = library.items[category]
    for v in rng.permutation(len(variants)):
        parts = compose.composite(face, variants[v], rng)
        if parts is not None:
            return parts
    return None


class GeneratedComposites(torch.utils.data.Dataset):
    """Training composites by index: item = (image 3xHxW float in [0, 1], target) as
    `data.CocoInstances` gives them, with `occluders` instances per image (fewer where a later
    occluder hides too much of an earlier one).

    `augment` mirrors and colour-jitters the face (and moves it by up to `geometry`, see
    `compose.augment_face`) before the occluders are pasted, each from its own generator, so the
    occluder draws of an index are the same with and without augmentation. The first occluder's
    category follows compose's balanced schedule, in which the `oversample` categories come
    twice as often as the others; each further one is another category, drawn
    from the index's own generator and pasted over the ones before it, whose masks lose the
    pixels it hides.
    """

    def __init__(
        self,
        faces,
        library,
        seed: int,
        augment: bool = True,
        geometry: float = 0.0,
        occluders=1,
        oversample: Sequence[str] = (),
    ):
        if occluders < 1:
            raise ValueError(f"occluders per image is {occluders}; expected at least 1")
        unknown = sorted(set(oversample) - set(CATEGORIES))
        if unknown:
            raise ValueError(f"oversample names {unknown}; expected categories of {CATEGORIES}")
        self.faces, self.library, self.seed = faces, library, seed
        self.augment, self.geometry, self.occluders = augment, geometry, occluders
        # compose's balanced schedule over every category once, and the oversampled once more
        self.schedule = (*CATEGORIES, *oversample)

    def example(self, index: int) -> tuple[np.ndarray, list[int], list[np.ndarray]]:
        """(occluded HxWx3 uint8, class ids, exact masks HxW uint8) of example `index`."""
        for attempt in range(_TRIES):
            i = index + attempt * _RETRY_STRIDE
            face = self.faces[i % len(self.faces)]
            if self.augment:
                face_rng = np.random.default_rng([self.seed, i, 1])
                face = compose.augment_face(face, face_rng, self.geometry)
            category = compose.category_for(i, self.seed, self.schedule)
            parts = _composite(face, category, self.library, np.random.default_rng([self.seed, i]))
            if parts is not None:
                return self._cover(face, parts, category_id(category), i)
        raise ValueError(f"no occluder could be placed for example {index}; check the library")

    def _cover(self, face, first: dict, label: int, i: int):
        """`example`'s result: the first composite of index `i` with the further occluders
        pasted over it; an earlier occluder left with less than compose.MIN_AREA is dropped."""
        image, labels, masks = first["occluded"], [label], [first["mask"][..., 0]]
        min_area = compose.MIN_AREA * image.shape[0] * image.shape[1]
        for k in range(1, self.occluders):
            rng = np.random.default_rng([self.seed, i, 2, k])
            taken = {ID_TO_CATEGORY[lab] for lab in labels}
            category = str(rng.choice([c for c in CATEGORIES if c not in taken]))
            parts = _composite(dataclasses.replace(face, image=image), category, self.library, rng)
            if parts is None:
                continue
            over = parts["mask"][..., 0].astype(bool)
            shown = [np.where(over, 0, m).astype(np.uint8) for m in masks]
            kept = [j for j, m in enumerate(shown) if m.sum() >= min_area]
            labels = [labels[j] for j in kept] + [category_id(category)]
            masks = [shown[j] for j in kept] + [parts["mask"][..., 0]]
            image = parts["occluded"]
        return image, labels, masks

    def __getitem__(self, index: int):
        image, labels, masks = self.example(index)
        target = data.make_target(labels, masks, index)
        return torch.from_numpy(image).permute(2, 0, 1).float().div_(255.0), target


class StepSampler(torch.utils.data.Sampler):
    """This process's example indices from `start_step` on, without end: the global batch of
    step s is indices [s·B, (s+1)·B), and process `rank` takes its contiguous share of it."""

    def __init__(self, start_step: int, batch_size: int, rank: int = 0, world: int = 1):
        self.start_step, self.batch_size = start_step, batch_size
        self.rank, self.world = rank, world

    def __iter__(self):
        share = self.batch_size // self.world
        step = self.start_step
        while True:
            first = step * self.batch_size + self.rank * share
            yield from range(first, first + share)
            step += 1


class GeneratedTestSet:
    """A fixed evaluation set: `per_category` composites of every category on the test faces.

    Category k's j-th instance goes on face (k·per_category + j) mod #faces (the next faces if no
    variant fits), drawn from a generator seeded by (seed, k, j): the same set for the same faces,
    library and seed, whatever the training run. Image ids are 1..N in category order; each image
    record names its `face_id`, so the set can be checked against the faces training saw.
    """

    def __init__(self, faces, library, seed: int, per_category: int):
        if per_category < 1:
            raise ValueError(f"test per_category is {per_category}; expected at least 1")
        self.images: dict[int, np.ndarray] = {}
        writer_images, annotations = [], []
        for k, category in enumerate(CATEGORIES):
            for j in range(per_category):
                image, mask, face_id = self._draw(faces, library, seed, k, j, per_category)
                image_id = len(self.images) + 1
                self.images[image_id] = image
                writer_images.append(_image_record(image_id, image, face_id))
                annotations.append(_annotation(len(annotations) + 1, image_id, category, mask))
        self.ids = sorted(self.images)
        self.coco = _coco_index(writer_images, annotations)

    @staticmethod
    def _draw(faces, library, seed, k, j, per_category) -> tuple[np.ndarray, np.ndarray, str]:
        category = CATEGORIES[k]
        rng = np.random.default_rng([seed, k, j])
        for shift in range(len(faces)):
            face = faces[(k * per_category + j + shift) % len(faces)]
            parts = _composite(face, category, library, rng)
            if parts is not None:
                return parts["occluded"], parts["mask"][..., 0], face.id
        raise ValueError(f"no {category} occluder fits any test face; check the library")

    def __len__(self) -> int:
        return len(self.ids)

    def load_image(self, image_id: int) -> np.ndarray:
        """HxWx3 uint8 RGB image of `image_id`."""
        return self.images[image_id]


def _image_record(image_id: int, image: np.ndarray, face_id: str) -> dict:
    h, w = image.shape[:2]
    return {
        "id": image_id,
        "file_name": f"{image_id:08d}.png",
        "width": w,
        "height": h,
        "face_id": face_id,
    }


def _annotation(ann_id: int, image_id: int, category: str, mask: np.ndarray) -> dict:
    ys, xs = np.nonzero(mask)
    bbox = [float(xs.min()), float(ys.min()), float(np.ptp(xs) + 1), float(np.ptp(ys) + 1)]
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": category_id(category),
        "segmentation": coco_lib.encode_mask(mask),
        "area": float(mask.sum()),
        "bbox": bbox,
        "iscrowd": 0,
    }


def _coco_index(images: list[dict], annotations: list[dict]) -> COCO:
    """A pycocotools ground truth built in memory (no JSON file), quietly."""
    coco = COCO()
    coco.dataset = {
        "images": images,
        "annotations": annotations,
        "categories": coco_lib.COCO_CATEGORIES,
    }
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def train_set(config, image_size: int) -> GeneratedComposites:
    """The training composites of `config` (configs/detector.py) on the train faces."""
    return GeneratedComposites(
        split_faces(config.data, image_size, "train"),
        load_library(config.data),
        config.seed,
        augment=config.data.augment,
        geometry=config.data.augment_geometry,
        occluders=config.data.occluders_per_image,
        oversample=tuple(config.data.get("oversample", ())),
    )


def test_set(config, image_size: int) -> GeneratedTestSet:
    """The fixed evaluation set of `config` on the test faces."""
    return GeneratedTestSet(
        split_faces(config.data, image_size, "test"),
        load_library(config.data),
        config.data.test_seed,
        config.data.test_per_category,
    )
