"""COCO evaluation plumbing: perfect predictions score AP 100, imperfect ones less."""

import json

import numpy as np
import pytest
import torch

from detector import data, evaluate, synthetic

# pycocotools 2.0.11 trips numpy 2's __array__ copy deprecation; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools.*")


@pytest.fixture(scope="module")
def coco_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco")
    synthetic.make_coco(root, num_train=2, num_test=6, size=64, max_instances=3, seed=3)
    return data.CocoInstances(root, "test")


def gt_predictions(dataset, shift=0):
    """COCO results equal to the ground truth (boxes from masks), optionally shifted right."""
    results = []
    for index in range(len(dataset)):
        image_id = dataset.ids[index]
        target = dataset.target(image_id, 64, 64)
        boxes = target["boxes"].numpy() + np.array([shift, 0, shift, 0], np.float32)
        masks = np.roll(target["masks"].numpy(), shift, axis=-1)
        scores = np.ones(len(boxes))
        results += evaluate.coco_results(image_id, boxes, scores, target["labels"].numpy(), masks)
    return results


def test_predictions_equal_to_ground_truth_give_ap_100(coco_set, tmp_path):
    results = gt_predictions(coco_set)
    assert len(results) >= 4  # the set really has instances
    metrics = evaluate.evaluate_results(coco_set.coco, results)
    for iou_type in ("bbox", "segm"):
        for key in ("AP", "AP50", "AP75"):
            assert metrics[iou_type][key] == pytest.approx(100.0), (iou_type, key)
        present = {
            coco_set.coco.cats[a["category_id"]]["name"] for a in coco_set.coco.anns.values()
        }
        for key in ("per_category", "per_category_ap50"):
            for name, ap in metrics[iou_type][key].items():
                if name in present:
                    assert ap == pytest.approx(100.0), (key, name)
                else:
                    assert np.isnan(ap), (key, name)  # no labels of that class: AP undefined
    json_path, md_path = evaluate.write_report(metrics, tmp_path)
    written = json.loads(json_path.read_text())
    assert written["segm"]["AP"] == pytest.approx(100.0)
    assert None in written["segm"]["per_category"].values()  # NaN is written as null
    table = md_path.read_text()
    assert "| bbox | 100.0 | 100.0 | 100.0 |" in table
    assert "| cap (id 4) |" in table


def test_shifted_predictions_score_below_100(coco_set):
    metrics = evaluate.evaluate_results(coco_set.coco, gt_predictions(coco_set, shift=6))
    assert metrics["bbox"]["AP"] < 90 and metrics["segm"]["AP"] < 90
    assert metrics["bbox"]["AP50"] > 0  # a 6 px shift still overlaps most shapes
    segm = metrics["segm"]
    for name, ap in segm["per_category"].items():  # IoU 0.5 forgives the shift more than .5:.95
        assert np.isnan(ap) or segm["per_category_ap50"][name] >= ap, name
    assert any(segm["per_category_ap50"][n] > ap for n, ap in segm["per_category"].items())


def test_no_predictions_give_ap_0(coco_set):
    metrics = evaluate.evaluate_results(coco_set.coco, [])
    assert metrics["bbox"]["AP"] == 0.0 and metrics["segm"]["AP"] == 0.0


def test_wrong_category_ids_are_rejected(tmp_path):
    root = synthetic.make_coco(tmp_path, num_train=1, num_test=1, size=32)
    path = root / "annotations" / "instances_test.json"
    coco = json.loads(path.read_text())
    coco["categories"][0]["id"] = 99
    path.write_text(json.dumps(coco))
    with pytest.raises(ValueError, match="expected 1"):
        data.CocoInstances(root, "test")


def test_corrupt_images_are_skipped_with_their_name(tmp_path, caplog):
    root = synthetic.make_coco(tmp_path, num_train=1, num_test=3, size=32)
    dataset = data.CocoInstances(root, "test")
    first, second = (dataset.coco.loadImgs(i)[0]["file_name"] for i in dataset.ids[:2])
    (root / "test" / first).write_bytes(b"")
    png = (root / "test" / second).read_bytes()
    (root / "test" / second).write_bytes(png[: len(png) // 2])  # a torn download
    with caplog.at_level("WARNING", logger="detector.data"):
        dataset = data.CocoInstances(root, "test")
    assert len(dataset) == 1
    assert f"{first}: cannot read the image" in caplog.text
    assert f"{second}: cannot read the image" in caplog.text
    assert "skipped 2 of 3 images" in caplog.text
    image, _ = dataset[0]
    assert image.shape == (3, 32, 32)


def test_flip_mirrors_boxes_and_masks(coco_set):
    image_id = next(i for i in coco_set.ids if coco_set.coco.getAnnIds(imgIds=i))
    target = coco_set.target(image_id, 64, 64)
    image = coco_set.load_image(image_id)
    _, flipped = data.hflip(torch.from_numpy(image).permute(2, 0, 1), target)
    mask = flipped["masks"][0].numpy()
    ys, xs = np.nonzero(mask)
    assert flipped["boxes"][0].tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


def test_mask_iou_is_1_for_exact_masks_and_lower_when_shifted_missed_or_misclassed(coco_set):
    exact = evaluate.mask_iou(coco_set.coco, gt_predictions(coco_set))
    n = len(coco_set.coco.getAnnIds())
    assert exact["num_instances"] == n and exact["median"] == pytest.approx(1.0)
    present = {coco_set.coco.cats[a["category_id"]]["name"] for a in coco_set.coco.anns.values()}
    for name, value in exact["per_category"].items():
        assert value == pytest.approx(1.0) if name in present else np.isnan(value), name
    shifted = evaluate.mask_iou(coco_set.coco, gt_predictions(coco_set, shift=6))
    assert 0.0 < shifted["median"] < 0.95
    assert evaluate.mask_iou(coco_set.coco, [])["median"] == 0.0  # a miss counts as IoU 0
    relabelled = [dict(r, category_id=r["category_id"] % 19 + 1) for r in gt_predictions(coco_set)]
    assert evaluate.mask_iou(coco_set.coco, relabelled)["median"] == 0.0  # same class only


def test_report_tables_the_median_mask_iou(coco_set, tmp_path):
    results = gt_predictions(coco_set)
    metrics = evaluate.evaluate_results(coco_set.coco, results)
    metrics["mask_iou"] = evaluate.mask_iou(coco_set.coco, results)
    _, md_path = evaluate.write_report(metrics, tmp_path)
    table = md_path.read_text()
    assert "median mask IoU (best same-class detection): 1.000" in table
    assert "| category | bbox AP | segm AP | segm AP50 | median mask IoU |" in table
    ann = next(iter(coco_set.coco.anns.values()))
    name = coco_set.coco.cats[ann["category_id"]]["name"]
    assert f"| {name} (id {ann['category_id']}) | 100.0 | 100.0 | 100.0 | 1.000 |" in table


def test_any_class_scores_and_found_count_occluders_whatever_their_label(coco_set, tmp_path):
    exact = gt_predictions(coco_set)
    n = len(coco_set.coco.getAnnIds())
    relabelled = [dict(r, category_id=r["category_id"] % 19 + 1) for r in exact]
    by_class = evaluate.evaluate_results(coco_set.coco, relabelled)
    any_class = evaluate.evaluate_results(coco_set.coco, relabelled, use_cats=False)
    assert by_class["segm"]["AP"] == pytest.approx(0.0)  # every label wrong
    assert any_class["segm"]["AP"] == pytest.approx(100.0)  # every occluder outlined
    assert "per_category" not in any_class["segm"]
    assert evaluate.found(coco_set.coco, relabelled, score_thresh=0.7)["found"] == 0
    anywhere = evaluate.found(coco_set.coco, relabelled, score_thresh=0.7, same_class=False)
    assert (anywhere["found"], anywhere["instances"], anywhere["rate"]) == (n, n, 1.0)
    present = {coco_set.coco.cats[a["category_id"]]["name"] for a in coco_set.coco.anns.values()}
    for name, rate in anywhere["per_category"].items():
        assert rate == 1.0 if name in present else np.isnan(rate), name
    # a detection below the threshold does not count, nor one too far off to reach IoU 0.5
    low = [dict(r, score=0.5) for r in exact]
    assert evaluate.found(coco_set.coco, low, score_thresh=0.7)["found"] == 0
    far = evaluate.found(coco_set.coco, gt_predictions(coco_set, shift=20), score_thresh=0.7)
    assert far["found"] < n

    metrics = {**by_class, "mask_iou": evaluate.mask_iou(coco_set.coco, relabelled)}
    metrics["found"] = evaluate.found(coco_set.coco, relabelled, score_thresh=0.7)
    metrics["score_thresh"] = 0.7
    metrics["occluder"] = {
        **any_class,
        "mask_iou": evaluate.mask_iou(coco_set.coco, relabelled, same_class=False),
        "found": anywhere,
    }
    _, md_path = evaluate.write_report(metrics, tmp_path)
    table = md_path.read_text()
    assert "| segm, any class (scored by occluder) | 100.0 |" in table
    assert "median mask IoU (best detection scored by occluder): 1.000" in table
    assert f"by a detection scoring >= 0.7: {n}/{n} (100.0 %) scored by occluder" in table
    assert f"0/{n} (0.0 %) by class" in table
    name = next(iter(present))
    row = f"| {name} (id {evaluate.CATEGORY_TO_ID[name]}) | 0.0 | 0.0 | 0.0 | 0.000 | 100 % |"
    assert row in table
