"""Examples composited in memory by `data_pipeline`, addressable by index.

`data_pipeline.compose.generate` is a stream; training needs example `i` on demand (to resume at
any step and to give each process its own share), so this module applies the same per-index
recipe (`compose.category_for` for the category schedule, a generator seeded by
`(seed, index)`, `compose.composite` for the pasting) to face `index mod #faces`. The faces are
the committed sample set (or `config.data.faces_dir`) at `config.image_size`, aligned unless
`config.data.align` is off, and only those of one split: the split `launch/build_dataset.py
--seed=config.data.split_seed` gives them (`data_pipeline.splits`, by person), so training draws
from the train faces alone and no evaluation split shares a person with it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

_RETRY_STRIDE = 1_000_003  # an index whose every variant fails to place moves to index + k·stride


def _load_faces(config) -> tuple:
    return _faces(config.data.faces_dir, config.image_size, config.data.get("align", True))


@functools.cache
def _faces(faces_dir: str, size: int, align: bool) -> tuple:
    """The faces at `size`, found, aligned and labelled once per process: training, its sample
    grids, validation and the record of training faces all ask for them."""
    from data_pipeline import faces as faces_lib
    from data_pipeline import sample_faces

    if not faces_dir:
        return tuple(sample_faces.load(size, align=align))
    found = tuple(faces_lib.iter_faces(faces_dir, size=size, align=align))
    if not found:
        raise FileNotFoundError(f"config.data.faces_dir={faces_dir!r} has no faces")
    return found


def split_faces(config, split: str) -> list:
    """The faces of `split` ("train" | "validation" | "test"), split by person."""
    from data_pipeline import splits

    faces = _load_faces(config)
    assigned = splits.assign_splits(
        {f.id: f.person_id for f in faces},
        {f.id: f.gender for f in faces},
        config.data.get("split_seed", 0),
    )
    chosen = [f for f in faces if assigned[f.id] == split]
    if not chosen:
        raise ValueError(f"no {split} faces among the {len(faces)} faces found")
    return chosen


def example_fn(config, split: str = "train") -> Callable[[int], dict[str, np.ndarray]]:
    """`index -> {"occluded", "original", "mask"}` from the faces of `split`, the same for the
    same config and index."""
    from data_pipeline import compose, occluders

    faces = split_faces(config, split)
    library = occluders.OccluderLibrary.load(config.data.occluders_dir or occluders.LIBRARY_DIR)
    library.check()
    seed = config.data.seed
    # Augmentation and free-form holes for training only: validation and test stay as built.
    augment = split == "train" and config.data.get("augment", False)
    free_form = config.data.get("free_form", 0.0) if split == "train" else 0.0
    geometry = config.data.get("augment_geometry", 0.0)

    def example(index: int) -> dict[str, np.ndarray]:
        if free_form and np.random.default_rng([seed, index, 2]).random() < free_form:
            rng = np.random.default_rng([seed, index, 3])
            face = faces[index % len(faces)]
            if augment:
                face = compose.augment_face(face, rng, geometry)
            hole = compose.free_form_hole(face.image.shape[0], rng)
            occluded = np.where(hole > 0, np.uint8(127), face.image)
            return {"occluded": occluded, "original": face.image, "mask": hole}
        for attempt in range(8):
            i = index + attempt * _RETRY_STRIDE
            face = faces[i % len(faces)]
            if augment:  # its own generator: the occluder draws stay as without augmentation
                face = compose.augment_face(face, np.random.default_rng([seed, i, 1]), geometry)
            category = compose.category_for(i, seed)
            rng = np.random.default_rng([seed, i])
            variants = library.items[category]
            for v in rng.permutation(len(variants)):
                parts = compose.composite(face, variants[v], rng)
                if parts is not None:
                    return {
                        "occluded": parts["occluded"],
                        "original": face.image,
                        "mask": parts["mask"],
                    }
        raise ValueError(f"no occluder could be placed for example {index}; check the library")

    return example
