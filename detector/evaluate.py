"""COCO evaluation of the detector: bbox and segm AP, AP50, AP75, per-category AP, and how well
the masks hug the occluders (median mask IoU per category).

`coco_results` turns predictions into COCO result records (boxes as xywh, masks as RLE);
`evaluate_results` runs pycocotools COCOeval on them and `mask_iou` scores every ground-truth mask
against its best detection; `write_report` writes the numbers as JSON and as Markdown tables.
`evaluate_model` ties these to a model and a test set.
"""

import contextlib
import io
import json
import pathlib

import numpy as np
import torch
from pycocotools import mask as mask_utils
from pycocotools.cocoeval import COCOeval

from data_pipeline import atomic
from data_pipeline.categories import CATEGORIES, CATEGORY_TO_ID
from detector import model as model_lib
from detector import visualize

IOU_TYPES = ("bbox", "segm")
SUMMARY_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def coco_results(image_id: int, boxes_Nx4, scores_N, labels_N, masks_NxHxW) -> list[dict]:
    """COCO result records of one image; boxes xyxy in pixels, masks 0/1 (or probabilities)."""
    records = []
    boxes = np.asarray(boxes_Nx4, np.float64).reshape(-1, 4)
    masks = np.asarray(masks_NxHxW)
    for i in range(len(boxes)):
        x0, y0, x1, y1 = boxes[i]
        binary = np.asfortranarray((masks[i] >= 0.5).astype(np.uint8))
        rle = mask_utils.encode(binary)
        rle["counts"] = rle["counts"].decode("ascii")  # JSON-serialisable
        records.append(
            {
                "image_id": int(image_id),
                "category_id": int(labels_N[i]),
                "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                "score": float(scores_N[i]),
                "segmentation": rle,
            }
        )
    return records


def _per_category_ap(coco_eval: COCOeval, iou: float | None = None) -> dict[str, float]:
    """AP (IoU .50:.95, or at `iou` alone; all areas, 100 detections) of each category, NaN
    where it has no labels."""
    # precision: [T iou thresholds, R recall points, K categories, A areas, M max-dets]
    precision = coco_eval.eval["precision"]
    if iou is not None:
        precision = precision[np.isclose(coco_eval.params.iouThrs, iou)]
    out = {}
    for k, cat_id in enumerate(coco_eval.params.catIds):
        p = precision[:, :, k, 0, -1]
        p = p[p > -1]
        name = coco_eval.cocoGt.cats[cat_id]["name"]
        out[name] = float(np.mean(p) * 100) if p.size else float("nan")
    return out


def evaluate_results(coco_gt, results: list[dict], image_ids=None, *, use_cats=True) -> dict:
    """COCOeval bbox and segm metrics (in percent, like detectron2) of `results` against `coco_gt`.

    Returns {"bbox": {"AP": .., "AP50": .., ..., "per_category": {name: AP}, "per_category_ap50":
    {name: AP50}}, "segm": {...}}.
    With no results at all every AP is 0. `use_cats=False` scores class-agnostically (any
    detection may match any occluder; COCOeval's useCats=0) and has no per-category AP.
    """
    ids = sorted(coco_gt.getImgIds()) if image_ids is None else sorted(image_ids)
    metrics = {}
    for iou_type in IOU_TYPES:
        if not results:
            metrics[iou_type] = {k: 0.0 for k in SUMMARY_KEYS}
            if use_cats:
                zeros = {coco_gt.cats[c]["name"]: 0.0 for c in coco_gt.getCatIds()}
                metrics[iou_type]["per_category"] = zeros
                metrics[iou_type]["per_category_ap50"] = dict(zeros)
            continue
        # Like detectron2, each task sees only its own field: with a bbox present, loadRes would
        # take the segm areas from the boxes and misplace instances in the area ranges.
        drop = "segmentation" if iou_type == "bbox" else "bbox"
        task_results = [{k: v for k, v in r.items() if k != drop} for r in results]
        with contextlib.redirect_stdout(io.StringIO()):
            coco_dt = coco_gt.loadRes(task_results)
            coco_eval = COCOeval(coco_gt, coco_dt, iou_type)
            coco_eval.params.imgIds = ids
            coco_eval.params.useCats = int(use_cats)
            coco_eval.evaluate()
            coco_eval.accumulate()
            coco_eval.summarize()
        stats = [float(s * 100) if s >= 0 else float("nan") for s in coco_eval.stats[:6]]
        metrics[iou_type] = dict(zip(SUMMARY_KEYS, stats, strict=True))
        if use_cats:
            metrics[iou_type]["per_category"] = _per_category_ap(coco_eval)
            metrics[iou_type]["per_category_ap50"] = _per_category_ap(coco_eval, iou=0.5)
    return metrics


def best_mask_ious(
    coco_gt, results: list[dict], image_ids=None, *, same_class=True, min_score=0.0
) -> dict[str, list[float]]:
    """Per category name, the mask IoU of each ground-truth instance with its best detection: the
    one in its image (of its category when `same_class`, scoring at least `min_score`) whose
    mask overlaps it most; 0 for an instance with no such detection."""
    ids = set(coco_gt.getImgIds() if image_ids is None else image_ids)
    candidates: dict[tuple[int, int], list] = {}
    for r in results:
        if r["score"] >= min_score:
            key = (r["image_id"], r["category_id"] if same_class else 0)
            candidates.setdefault(key, []).append(r["segmentation"])
    per_category: dict[str, list[float]] = {coco_gt.cats[c]["name"]: [] for c in coco_gt.cats}
    for ann in coco_gt.loadAnns(coco_gt.getAnnIds(imgIds=sorted(ids), iscrowd=False)):
        gt = coco_gt.annToRLE(ann)
        key = (ann["image_id"], ann["category_id"] if same_class else 0)
        detections = candidates.get(key, [])
        best = 0.0
        if detections:
            ious = mask_utils.iou(detections, [gt], [0])  # detections x 1
            best = float(np.max(ious))
        per_category[coco_gt.cats[ann["category_id"]]["name"]].append(best)
    return per_category


def mask_iou(coco_gt, results: list[dict], image_ids=None, *, same_class=True) -> dict:
    """Median mask IoU of every ground-truth instance with its best detection of the same class
    (of any class with `same_class=False`), at any score the results kept.

    An instance with no such detection counts as IoU 0, so a missed occluder pulls the median
    down. Returns {"median": over all instances, "per_category": {name: median, NaN without
    instances}, "num_instances": n}.
    """
    per_category = best_mask_ious(coco_gt, results, image_ids, same_class=same_class)
    every = [v for values in per_category.values() for v in values]
    return {
        "median": float(np.median(every)) if every else float("nan"),
        "per_category": {
            name: float(np.median(v)) if v else float("nan") for name, v in per_category.items()
        },
        "num_instances": len(every),
    }


def found(coco_gt, results: list[dict], image_ids=None, *, score_thresh: float, same_class=True):
    """How many ground-truth instances a detection scoring at least `score_thresh` outlines with
    mask IoU >= 0.5 (of the same class, or any with `same_class=False`): what the union mask
    handed to the inpainter would cover. Returns {"found", "instances", "rate", "per_category":
    {name: rate, NaN without instances}}."""
    per_category = best_mask_ious(
        coco_gt, results, image_ids, same_class=same_class, min_score=score_thresh
    )
    every = [v for values in per_category.values() for v in values]
    hits = sum(v >= 0.5 for v in every)
    return {
        "found": hits,
        "instances": len(every),
        "rate": hits / max(len(every), 1),
        "per_category": {
            name: float(np.mean(np.asarray(v) >= 0.5)) if v else float("nan")
            for name, v in per_category.items()
        },
    }


def markdown_table(metrics: dict) -> str:
    """The metrics as two Markdown tables: summary AP and per-category AP."""
    lines = ["| type | " + " | ".join(SUMMARY_KEYS) + " |", "|---" * (len(SUMMARY_KEYS) + 1) + "|"]
    occluder = metrics.get("occluder")
    for iou_type in IOU_TYPES:
        vals = [f"{metrics[iou_type][k]:.1f}" for k in SUMMARY_KEYS]
        lines.append(f"| {iou_type} | " + " | ".join(vals) + " |")
    for iou_type in IOU_TYPES if occluder else ():
        vals = [f"{occluder[iou_type][k]:.1f}" for k in SUMMARY_KEYS]
        lines.append(f"| {iou_type}, any class (scored by occluder) | " + " | ".join(vals) + " |")
    ious = metrics.get("mask_iou")
    if ious is not None:
        lines += ["", f"median mask IoU (best same-class detection): {ious['median']:.3f}"]
    if occluder:
        thresh = metrics["score_thresh"]
        lines += [
            f"median mask IoU (best detection scored by occluder): "
            f"{occluder['mask_iou']['median']:.3f}",
            "",
            f"occluders outlined (mask IoU >= 0.5) by a detection scoring >= {thresh}: "
            f"{_found_text(occluder['found'])} scored by occluder (what reconstruction uses), "
            f"{_found_text(metrics['found'])} by class",
        ]
    names = [n for n in CATEGORIES if n in metrics["bbox"]["per_category"]]
    header = "| category | bbox AP | segm AP | segm AP50 |" + (" median mask IoU |" if ious else "")
    columns = 5 if ious else 4
    if occluder:
        header += f" found at {metrics['score_thresh']}, by occluder |"
        columns += 1
    lines += ["", header, "|---" * columns + "|"]
    for name in names:
        b = metrics["bbox"]["per_category"][name]
        s = metrics["segm"]["per_category"][name]
        s50 = metrics["segm"]["per_category_ap50"][name]
        row = f"| {name} (id {CATEGORY_TO_ID[name]}) | {b:.1f} | {s:.1f} | {s50:.1f} |"
        if ious:
            row += f" {ious['per_category'][name]:.3f} |"
        if occluder:
            row += f" {100 * occluder['found']['per_category'][name]:.0f} % |"
        lines.append(row)
    return "\n".join(lines) + "\n"


def _found_text(found: dict) -> str:
    return f"{found['found']}/{found['instances']} ({100 * found['rate']:.1f} %)"


def _write_text(path: pathlib.Path, text: str) -> None:
    atomic.write_text(path, text)


def _nan_to_none(tree):
    """NaN (a category without test labels) as JSON null, so the file is strict JSON."""
    if isinstance(tree, dict):
        return {k: _nan_to_none(v) for k, v in tree.items()}
    return None if isinstance(tree, float) and np.isnan(tree) else tree


def write_report(metrics: dict, out_dir, stem: str = "coco_eval") -> tuple[pathlib.Path, ...]:
    """Write `<stem>.json` (NaN as null) and `<stem>.md` into `out_dir`; returns their paths."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    _write_text(json_path, json.dumps(_nan_to_none(metrics), indent=2, allow_nan=False) + "\n")
    _write_text(md_path, markdown_table(metrics))
    return json_path, md_path


def _predict(model, dataset, n: int, device, *, vis_dir=None, num_vis=0, vis_thresh=0.7):
    """COCO result records of `model` on the first `n` images of `dataset`, and their ids; the
    first `num_vis` images drawn into `vis_dir`, instances scoring at least `vis_thresh`."""
    results, image_ids = [], []
    for index in range(n):
        image_id = dataset.ids[index]
        image = dataset.load_image(image_id)
        x = torch.from_numpy(image).permute(2, 0, 1).float().div_(255.0).to(device)
        out = model([x])[0]
        masks = out["masks"][:, 0].cpu().numpy()
        boxes, scores = out["boxes"].cpu().numpy(), out["scores"].cpu().numpy()
        labels = out["labels"].cpu().numpy()
        results += coco_results(image_id, boxes, scores, labels, masks)
        image_ids.append(image_id)
        if index < num_vis:
            keep = scores >= vis_thresh
            drawn = visualize.draw_instances(
                image, boxes[keep], scores[keep], labels[keep], masks[keep] >= 0.5
            )
            visualize.save_png(pathlib.Path(vis_dir) / f"{image_id:08d}.png", drawn)
    return results, image_ids


@torch.inference_mode()
def evaluate_model(
    model, dataset, out_dir, *, device="cpu", max_images=0, num_vis=0, vis_thresh=0.7, stem=None
):
    """Run `model` over a test set, COCOeval it, score its masks, write the report + PNGs.

    `dataset` is a `data.CocoInstances` split or anything with its `ids`, `load_image` and `coco`
    (`generated.GeneratedTestSet`).

    Two passes: scored by class (`model_lib.set_scoring`), for COCO AP and the mask IoU of each
    occluder's best same-class detection; then scored by occluder, as reconstruction uses the
    detector, for class-agnostic AP (`metrics["occluder"]`). Both report how many occluders a
    detection scoring at least `vis_thresh` (the prediction threshold) outlines ("found").
    `stem` names the report files (default "coco_eval"); visualisations of the first `num_vis`
    images, scored by occluder, go to `<out_dir>/vis/`. Returns the metrics.
    """
    model.eval()
    scoring = model_lib.scoring(model)
    n = len(dataset) if max_images <= 0 else min(max_images, len(dataset))
    coco_gt = dataset.coco
    try:
        model_lib.set_scoring(model, "class")
        results, image_ids = _predict(model, dataset, n, device)
        model_lib.set_scoring(model, "occluder")
        vis_dir = pathlib.Path(out_dir) / "vis"
        occluders, _ = _predict(
            model, dataset, n, device, vis_dir=vis_dir, num_vis=num_vis, vis_thresh=vis_thresh
        )
    finally:
        model_lib.set_scoring(model, scoring)
    metrics = evaluate_results(coco_gt, results, image_ids)
    metrics["mask_iou"] = mask_iou(coco_gt, results, image_ids)
    metrics["found"] = found(coco_gt, results, image_ids, score_thresh=vis_thresh)
    metrics["occluder"] = {
        **evaluate_results(coco_gt, occluders, image_ids, use_cats=False),
        "mask_iou": mask_iou(coco_gt, occluders, image_ids, same_class=False),
        "found": found(coco_gt, occluders, image_ids, score_thresh=vis_thresh, same_class=False),
    }
    metrics["score_thresh"] = vis_thresh
    metrics["num_images"] = n
    write_report(metrics, out_dir, stem or "coco_eval")
    return metrics
