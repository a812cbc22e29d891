"""Compositing: reproducible, exact masks, every category and library variant, difference masks."""

import os

import numpy as np
import pytest
from PIL import Image

from data_pipeline import compose, difference, faces, occluders, sample_faces
from data_pipeline.categories import CATEGORIES, category_id


@pytest.fixture(scope="module")
def library():
    return occluders.OccluderLibrary.load()


@pytest.fixture(scope="module")
def few_faces():
    return sample_faces.load(64)[:6]


def test_committed_library_covers_every_category_with_several_variants(library):
    counts = library.counts()
    assert set(counts) == set(CATEGORIES)
    assert min(counts.values()) >= 5, counts
    for occs in library.items.values():
        for occ in occs:
            assert occ.rgba.dtype == np.uint8 and occ.rgba.shape[2] == 4


def test_committed_sample_faces_are_real_colour_crops():
    got = sample_faces.load(64)
    assert len(got) >= 100
    assert len({f.id for f in got}) == len(got)
    for f in got[:10]:
        assert f.image.shape == (64, 64, 3)
        x, y, w, h = f.face_box
        assert 0 <= x < 64 and 0 <= y < 64 and 0 < w <= 64 and 0 < h <= 64


def test_same_seed_same_examples_other_seed_other_examples(few_faces, library):
    a = list(compose.generate(few_faces, library, seed=3, per_face=2))
    b = list(compose.generate(few_faces, library, seed=3, per_face=2))
    c = list(compose.generate(few_faces, library, seed=4, per_face=2))
    assert len(a) == len(b) == 12
    for x, y in zip(a, b, strict=True):
        assert x["id"] == y["id"] and x["category"] == y["category"]
        np.testing.assert_array_equal(x["occluded"], y["occluded"])
        np.testing.assert_array_equal(x["mask"], y["mask"])
    assert any(not np.array_equal(x["occluded"], z["occluded"]) for x, z in zip(a, c, strict=True))


def test_mask_is_exact_and_bbox_is_its_tight_box(few_faces, library):
    for ex in compose.generate(few_faces, library, seed=0, per_face=3):
        mask = ex["mask"]
        assert mask.shape == (64, 64, 1) and mask.dtype == np.uint8
        assert set(np.unique(mask)) <= {0, 1} and mask.sum() >= compose.MIN_AREA * 64 * 64
        outside = mask[..., 0] == 0
        np.testing.assert_array_equal(ex["occluded"][outside], ex["original"][outside])
        assert (ex["occluded"] != ex["original"]).any()
        ys, xs = np.nonzero(mask[..., 0])
        x, y, w, h = ex["bbox"]
        assert (x, y, x + w - 1, y + h - 1) == (xs.min(), ys.min(), xs.max(), ys.max())
        assert 1 <= ex["category"] <= len(CATEGORIES)


def test_every_category_can_be_produced(few_faces, library):
    for cat in CATEGORIES:
        got = list(compose.generate(few_faces[:2], library, seed=1, categories=(cat,)))
        assert len(got) == 2 and {e["category"] for e in got} == {category_id(cat)}, cat
        assert all(e["occluder"].startswith(f"{cat}/") for e in got)


def test_every_library_variant_can_be_placed(few_faces, library):
    face = few_faces[0]
    rng = np.random.default_rng(0)
    for occs in library.items.values():
        for occ in occs:
            assert compose.composite(face, occ, rng) is not None, occ.name


def test_balanced_schedule_and_repeat_stream():
    cats = [compose.category_for(i, seed=0) for i in range(38)]
    assert sorted(cats) == sorted(CATEGORIES * 2)
    stream = compose.sample_stream(size=32, seed=0)
    first = [next(stream) for _ in range(3)]
    assert [e["original"].shape for e in first] == [(32, 32, 3)] * 3


def test_user_png_dropped_into_a_category_is_used(tmp_path, library, few_faces):
    root = tmp_path / "lib"
    for cat in CATEGORIES:
        (root / cat).mkdir(parents=True)
    rgba = np.zeros((40, 60, 4), np.uint8)
    rgba[5:35, 5:55] = (200, 30, 30, 255)
    Image.fromarray(rgba).save(root / "book" / "my_book.png")
    Image.new("RGB", (10, 10)).save(root / "book" / "no_alpha.png")
    with pytest.warns(UserWarning, match="no_alpha.png"):
        lib = occluders.OccluderLibrary.load(str(root))
    assert [o.name for o in lib.items["book"]] == ["book/my_book.png"]
    with pytest.raises(ValueError, match="box"):
        lib.check()
    got = list(compose.generate(few_faces[:1], lib, seed=0, categories=("book",)))
    assert got[0]["occluder"] == "book/my_book.png"
    with pytest.raises(ValueError, match="unknown occluder category"):
        list(compose.generate(few_faces[:1], library, categories=("hat",)))


def test_difference_mask_recovers_a_pasted_patch():
    rng = np.random.default_rng(0)
    original = rng.integers(60, 200, (64, 64, 3), dtype=np.uint8)
    occluded = original.copy()
    exact = np.zeros((64, 64, 1), np.uint8)
    exact[20:40, 10:50] = 1
    occluded[20:40, 10:50] = (250, 10, 10)
    got = difference.mask_from_difference(original, occluded)
    assert got.shape == (64, 64, 1)
    assert difference.iou(got, exact) > 0.95
    assert difference.iou(difference.mask_from_difference(original, original), exact) == 0.0
    with pytest.raises(ValueError, match="one shape"):
        difference.mask_from_difference(original, occluded[:32])


def test_difference_mask_iou_on_generated_pairs(library):
    # at 64 px the seed's 3x3 erosion wipes out thin occluders (keys, cigarettes): use 128 px
    face_list = sample_faces.load(128)[:6]
    ious = [
        difference.iou(difference.mask_from_difference(e["original"], e["occluded"]), e["mask"])
        for e in compose.generate(face_list, library, seed=0, per_face=3)
    ]
    assert np.mean(ious) > 0.8


def test_face_dataclass_defaults_mean_unknown_labels():
    f = faces.Face("x", np.zeros((8, 8, 3), np.uint8), (0, 0, 8, 8), os.devnull)
    assert (f.gender, f.age, f.race) == (-1, -1, -1)


def test_repeat_over_an_exhausted_iterator_raises_instead_of_hanging(few_faces, library):
    stream = compose.generate(iter(few_faces[:1]), library, seed=0, repeat=True)
    assert next(stream)["id"].endswith("-0")
    with pytest.raises(ValueError, match="re-iterable"):
        next(stream)


def test_dedup_finds_near_copies_beyond_its_first_buffer():
    d = faces.Deduplicator(max_distance=2)
    rng = np.random.default_rng(0)
    hashes = [int(v) for v in rng.integers(0, 2**63, 1500, dtype=np.int64)]
    assert not any(d.seen(h) for h in hashes)
    assert d.seen(hashes[1400] ^ 0b11)  # two bits away from a stored hash
    assert not d.seen(hashes[1400] ^ 0b111)


def test_augmented_faces_stay_faces_and_move_only_as_asked(few_faces):
    face = few_faces[0]
    same = compose.augment_face(face, np.random.default_rng(0))
    moved = compose.augment_face(face, np.random.default_rng(0), geometry=0.1)
    assert same.image.shape == moved.image.shape == face.image.shape
    assert same.image.dtype == moved.image.dtype == np.uint8
    # geometry 0: mirror and colour only, so the mirrored-or-not crop keeps its structure.
    gray = lambda im: im.astype(np.float32).mean(-1)
    plain, flipped = gray(face.image), gray(face.image)[:, ::-1]
    corr = lambda a, b: np.corrcoef(a.ravel(), b.ravel())[0, 1]
    assert max(corr(gray(same.image), plain), corr(gray(same.image), flipped)) > 0.95
    # With geometry the crop moves (still a face: well correlated, not identical).
    best = max(corr(gray(moved.image), plain), corr(gray(moved.image), flipped))
    assert 0.3 < best < 0.99
    assert 0.8 * face.face_box[2] < moved.face_box[2] < 1.2 * face.face_box[2]


def test_crossing_placements_reach_past_the_chin_and_above_the_brow(few_faces, library):
    def centre_y(cross, categories):
        examples = compose.generate(few_faces, library, seed=1, categories=categories, cross=cross)
        return np.mean([np.nonzero(ex["mask"][..., 0])[0].mean() for ex in examples])

    lower = ("cup", "book", "hand", "mic")
    assert centre_y(1.0, lower) > centre_y(0.0, lower) + 4  # of 64 px: further down
    assert centre_y(1.0, ("cap",)) < centre_y(0.0, ("cap",)) - 2  # further up
    same = compose.generate(few_faces, library, seed=1, cross=0.0)
    for x, y in zip(same, compose.generate(few_faces, library, seed=1), strict=True):
        np.testing.assert_array_equal(x["mask"], y["mask"])  # 0 draws nothing more
    with pytest.raises(ValueError, match="cross"):
        next(compose.generate(few_faces, library, cross=1.5))
