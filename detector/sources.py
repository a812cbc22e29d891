"""Where the mask cache's (id, image) pairs come from: the TFDS inpainting set or an image folder.

`open_examples(path, splits)` returns `Examples`: an iterator of (id, HxWx3 uint8), their count,
and the files skipped on the way. A TFDS folder is recognised by its `dataset_info.json` (at
`path` or in a version folder below it) and read with `tfds.builder_from_directory` (no network);
its `id` and `occluded` features are used. Any other folder is read as images (PNG/JPEG,
recursively), with the file stem as the id; a file that is not a whole image is skipped with its
reason (`data_pipeline.images`), not fatal.
"""

import dataclasses
import pathlib
from collections.abc import Iterator, Sequence

import numpy as np

from data_pipeline import images


@dataclasses.dataclass
class Examples:
    """(id, HxWx3 uint8 image) pairs to iterate once, how many there are, and the files skipped
    as not whole images: (path, reason), filled in while `pairs` is iterated."""

    pairs: Iterator[tuple[str, np.ndarray]]
    total: int
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)


def find_tfds_dir(path) -> pathlib.Path | None:
    """The TFDS version folder at or under `path` (the newest by name), or None."""
    path = pathlib.Path(path)
    if (path / "dataset_info.json").is_file():
        return path
    found = sorted(p.parent for p in path.glob("**/dataset_info.json"))
    return found[-1] if found else None


def tfds_splits(tfds_dir, splits: Sequence[str]):
    """(read-only builder, the split names, their example count) of a TFDS folder; ValueError
    for an unknown split or a dataset that is not the occluded_faces set."""
    from data_pipeline.tfds_builder import open_builder

    builder = open_builder(str(tfds_dir))  # ValueError naming a garbled dataset_info.json
    available = list(builder.info.splits)
    splits = available if not splits or list(splits) == ["all"] else list(splits)
    unknown = sorted(set(splits) - set(available))
    if unknown:
        raise ValueError(f"{tfds_dir} has no split {unknown}; expected {available} or 'all'")
    features = builder.info.features
    for name in ("id", "occluded"):
        if name not in features:
            raise ValueError(f"{tfds_dir}: no {name!r} feature; expected the occluded_faces set")
    total = sum(builder.info.splits[s].num_examples for s in splits)
    return builder, splits, total


def _tfds_examples(tfds_dir, splits: Sequence[str]):
    import tensorflow_datasets as tfds

    builder, splits, total = tfds_splits(tfds_dir, splits)

    def gen():
        for split in splits:
            for ex in tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)):
                example_id = ex["id"]
                if isinstance(example_id, bytes):
                    example_id = example_id.decode("utf-8")
                yield str(example_id), np.asarray(ex["occluded"], np.uint8)

    return gen(), total


def folder_images(path: pathlib.Path) -> list[pathlib.Path]:
    """The images of a folder (recursively, sorted); their file stems are the example ids."""
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in images.IMAGE_EXTENSIONS)
    if not files:
        raise FileNotFoundError(
            f"{path} holds neither a TFDS dataset (dataset_info.json) nor images "
            f"({', '.join(images.IMAGE_EXTENSIONS)})"
        )
    stems = [p.stem for p in files]
    if len(set(stems)) != len(stems):
        raise ValueError(f"{path}: two images share a file stem; expected unique names as ids")
    return files


def _folder_examples(path: pathlib.Path):
    files = folder_images(path)

    skipped: list[tuple[str, str]] = []

    def gen():
        for p in files:
            try:
                yield p.stem, images.load_photo(p)
            except images.SkipImage as skip:
                skipped.append((str(p), skip.reason))

    return Examples(gen(), len(files), skipped)


def open_examples(path, splits: Sequence[str] = ("all",)) -> Examples:
    """The examples of a TFDS or image folder (see the module docstring)."""
    path = pathlib.Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a folder; expected a TFDS dataset or images")
    tfds_dir = find_tfds_dir(path)
    if tfds_dir is not None:
        return Examples(*_tfds_examples(tfds_dir, splits))
    return _folder_examples(path)
