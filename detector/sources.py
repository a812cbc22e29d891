"""Where the mask cache's (id, image) pairs come from: the TFDS inpainting set or an image folder.

`open_examples(path, splits)` returns (iterator of (id, HxWx3 uint8), count). A TFDS folder is
recognised by its `dataset_info.json` (at `path` or in a version folder below it) and read with
`tfds.builder_from_directory` (no network); its `id` and `occluded` features are used. Any
other folder is read as images (PNG/JPEG, recursively), with the file stem as the id.
"""

import pathlib
from collections.abc import Iterator, Sequence

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def find_tfds_dir(path) -> pathlib.Path | None:
    """The TFDS version folder at or under `path` (the newest by name), or None."""
    path = pathlib.Path(path)
    if (path / "dataset_info.json").is_file():
        return path
    found = sorted(p.parent for p in path.glob("**/dataset_info.json"))
    return found[-1] if found else None


def _tfds_examples(tfds_dir, splits: Sequence[str]):
    import tensorflow_datasets as tfds

    builder = tfds.builder_from_directory(str(tfds_dir))
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

    def gen():
        for split in splits:
            for ex in tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)):
                example_id = ex["id"]
                if isinstance(example_id, bytes):
                    example_id = example_id.decode("utf-8")
                yield str(example_id), np.asarray(ex["occluded"], np.uint8)

    return gen(), total


def _folder_examples(path: pathlib.Path):
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(
            f"{path} holds neither a TFDS dataset (dataset_info.json) nor PNG/JPEG images"
        )
    stems = [p.stem for p in files]
    if len(set(stems)) != len(stems):
        raise ValueError(f"{path}: two images share a file stem; expected unique names as ids")

    def gen():
        for p in files:
            with Image.open(p) as img:
                yield p.stem, np.asarray(img.convert("RGB"))

    return gen(), len(files)


def open_examples(path, splits: Sequence[str] = ("all",)) -> tuple[Iterator, int]:
    """(iterator of (id, HxWx3 uint8 image), number of examples) from a TFDS or image folder."""
    path = pathlib.Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a folder; expected a TFDS dataset or images")
    tfds_dir = find_tfds_dir(path)
    if tfds_dir is not None:
        return _tfds_examples(tfds_dir, splits)
    return _folder_examples(path)
