"""The detector's on-the-fly data: fresh composites on train faces, a fixed set on test faces."""

import collections

import numpy as np
import pytest
import torch
from config_files import load_config

from data_pipeline import splits
from data_pipeline.categories import CATEGORIES, ID_TO_CATEGORY, NUM_CLASSES
from detector import generated, train

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools.*")
SIZE = 64


def generated_config(**data):
    config = load_config("detector_demo")
    config.data.source = "generated"
    config.data.test_per_category = 2
    config.data.augment_geometry = 0.1
    config.data.update(data)
    return config


@pytest.fixture(scope="module")
def faces_by_split():
    config = generated_config()
    return {s: generated.split_faces(config.data, SIZE, s) for s in splits.SPLITS}


@pytest.fixture(scope="module")
def train_set():
    return generated.train_set(generated_config(), SIZE)


def test_train_composites_come_from_train_faces_only(train_set, faces_by_split):
    train_ids = {f.id for f in faces_by_split["train"]}
    other = {f.person_id for s in ("validation", "test") for f in faces_by_split[s]}
    assert {f.id for f in train_set.faces} == train_ids
    assert not {f.person_id for f in train_set.faces} & other  # no person crosses splits


def test_each_index_is_a_fresh_reproducible_composite_with_an_exact_target(train_set):
    images = [train_set[i][0] for i in range(4)]
    again, target = train_set[2]
    torch.testing.assert_close(again, images[2], rtol=0, atol=0)  # same (seed, index)
    assert not torch.equal(images[0], images[1])
    other_seed = generated.train_set(generated_config(), SIZE)
    other_seed.seed = 1
    assert not torch.equal(other_seed[2][0], images[2])
    assert again.shape == (3, SIZE, SIZE) and again.min() >= 0 and again.max() <= 1
    mask = target["masks"][0].numpy()
    ys, xs = np.nonzero(mask)
    assert target["boxes"].tolist() == [[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]]
    assert 1 <= int(target["labels"][0]) < NUM_CLASSES and target["image_id"] == 2


def test_further_occluders_cover_the_first_and_its_mask_loses_what_they_hide(train_set):
    two = generated.train_set(generated_config(occluders_per_image=2), SIZE)
    counts = collections.Counter()
    for i in range(12):
        image, labels, masks = two.example(i)
        one_image, (one_label,), (one_mask,) = train_set.example(i)
        assert labels[0] == one_label or len(labels) == 1  # the first is the one-occluder draw
        assert len(set(labels)) == len(labels)  # distinct categories
        counts[len(labels)] += 1
        if len(labels) == 2:
            first, second = (m.astype(bool) for m in masks)
            assert not (first & second).any()  # the later occluder hides part of the first
            np.testing.assert_array_equal(first, one_mask.astype(bool) & ~second)
            changed = np.any(image != one_image, axis=-1)
            assert changed[second].mean() > 0.5 and not changed[~second].any()
            _, target = two[i]
            assert target["labels"].tolist() == labels and target["masks"].shape[0] == 2
    assert counts[2] >= 9  # a second occluder nearly always fits
    with pytest.raises(ValueError, match="occluders per image is 0"):
        generated.train_set(generated_config(occluders_per_image=0), SIZE)


def test_oversampled_categories_come_twice_as_often():
    thin = ("cigarette", "pen")
    more = generated.train_set(generated_config(oversample=thin), SIZE)
    block = len(CATEGORIES) + len(thin)
    counts = collections.Counter(
        ID_TO_CATEGORY[more.example(i)[1][0]] for i in range(2 * block)
    )  # two blocks of the balanced schedule
    assert {counts[c] for c in thin} == {4}
    assert {counts[c] for c in CATEGORIES if c not in thin} == {2}
    with pytest.raises(ValueError, match=r"oversample names \['pencil'\]"):
        generated.train_set(generated_config(oversample=("pencil",)), SIZE)


def test_step_sampler_resumes_where_it_stopped_and_splits_the_batch_over_ranks():
    def take(sampler, n):
        it = iter(sampler)
        return [next(it) for _ in range(n)]

    whole = take(generated.StepSampler(0, batch_size=4), 12)  # steps 0, 1, 2
    assert whole == list(range(12))
    assert take(generated.StepSampler(2, batch_size=4), 4) == whole[8:12]  # resumed at step 2
    rank0 = take(generated.StepSampler(1, batch_size=4, rank=0, world=2), 4)
    rank1 = take(generated.StepSampler(1, batch_size=4, rank=1, world=2), 4)
    assert rank0 == [4, 5, 8, 9] and rank1 == [6, 7, 10, 11]  # steps 1 and 2, shared


def test_fixed_test_set_has_every_category_on_test_faces_only(faces_by_split):
    config = generated_config()
    test_set = generated.test_set(config, SIZE)
    counts = collections.Counter(
        test_set.coco.cats[a["category_id"]]["name"] for a in test_set.coco.anns.values()
    )
    assert counts == dict.fromkeys(CATEGORIES, 2)
    used = {test_set.coco.imgs[i]["face_id"] for i in test_set.ids}
    assert used <= {f.id for f in faces_by_split["test"]}
    assert len(test_set) == 2 * len(CATEGORIES)
    again = generated.test_set(config, SIZE)
    for i in test_set.ids:
        np.testing.assert_array_equal(again.load_image(i), test_set.load_image(i))
    other = generated.test_set(generated_config(test_seed=5), SIZE)
    assert any(
        not np.array_equal(other.load_image(i), test_set.load_image(i)) for i in test_set.ids
    )


def test_training_on_generated_data_records_its_faces_and_reports_mask_iou(tmp_path):
    config = generated_config(test_per_category=1)
    config.model.image_size = SIZE
    config.model.rpn_pre_nms_top_n_test = 50
    config.model.rpn_post_nms_top_n_test = 20
    config.train.num_steps = 1
    config.train.warmup_steps = 1
    config.eval.max_images = 2
    config.eval.num_visualizations = 0
    result = train.train_and_evaluate(config, tmp_path)
    assert result["step"] == 1
    recorded = splits.read_record(str(tmp_path))
    assert set(recorded) == {f.id for f in generated.split_faces(config.data, SIZE, "train")}
    assert 0.0 <= result["eval"]["mask_iou"]["median"] <= 1.0
    assert (tmp_path / "eval" / "step_00000001" / "coco_eval.md").is_file()


def test_unknown_source_is_one_clear_error(tmp_path):
    config = generated_config(source="tfrecord")
    with pytest.raises(ValueError, match=r"config\.data\.source is 'tfrecord'"):
        train.train_and_evaluate(config, tmp_path)
