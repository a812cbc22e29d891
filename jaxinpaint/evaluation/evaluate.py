"""Evaluates an inpainter and the classical baselines on the same examples and masks.

For every example (original, occluded, mask, category, gender) each method fills the hole of the
occluded image; the composite is scored against the original with PSNR and SSIM over the whole
image and over the hole, LPIPS over the whole image, and the structure error (how far the face
mesh's eyes, brows and lips in the hole moved; `jaxinpaint.evaluation.structure`). The records feed
`jaxinpaint.evaluation.report`. Given the FID Inception network, each method also gets one FID
between its composites and the originals (a set metric: it has no per-example value).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from data_pipeline.categories import ID_TO_CATEGORY
from data_pipeline.images import to_uint8
from jaxinpaint.evaluation import metrics
from jaxinpaint.evaluation.fid import InceptionFeatures, fid
from jaxinpaint.evaluation.lpips import LPIPS
from jaxinpaint.evaluation.structure import StructureError
from jaxinpaint.fills import METHODS, classical_inpaint

GENDERS = {0: "male", 1: "female"}
# (occluded uint8 BxHxWx3, hole uint8 BxHxWx1) -> composite float32 BxHxWx3 in [0, 1]
BatchInpaintFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclasses.dataclass
class Evaluation:
    records: list[dict]  # one per example, see jaxinpaint.evaluation.report
    composites: dict[str, list[np.ndarray]]  # method -> uint8 HxWx3 per example (for strips)
    examples: list[dict]  # the evaluated examples (original, occluded, mask, ...)
    fid: dict[str, float] = dataclasses.field(default_factory=dict)  # method -> FID, if asked


def _batches(examples: Iterable[dict], size: int) -> Iterator[list[dict]]:
    batch = []
    for ex in examples:
        batch.append(ex)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def evaluate(
    model: BatchInpaintFn | None,
    examples: Iterable[dict],
    *,
    baselines: Iterable[str] = tuple(METHODS),
    lpips: LPIPS | None = None,
    fid_features: InceptionFeatures | None = None,
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
    structure: StructureError | None = None,
    aligned: bool = True,
) -> Evaluation:
    """Scores `model` (named "model"; None to skip it) and each baseline on every example;
    with `fid_features`, also each method's FID against the originals. `aligned`: the examples
    are aligned crops (the dataset's default), which the structure metric frames by the
    template; else it frames each by the face it finds in the original."""
    lpips = lpips or LPIPS()
    structure = structure or StructureError()
    baselines = tuple(baselines)
    result = Evaluation([], {}, [])
    features: dict[str, list[np.ndarray]] = {}  # "original" and each method -> [B, 2048]
    for batch in _batches(examples, batch_size):
        original = np.stack([ex["original"] for ex in batch])
        occluded = np.stack([ex["occluded"] for ex in batch])
        hole = (np.stack([ex["mask"] for ex in batch]) > 0).astype(np.uint8)
        if hole.ndim == 3:
            hole = hole[..., None]
        outputs: dict[str, np.ndarray] = {}
        if model is not None:
            outputs["model"] = to_uint8(model(occluded, hole))
        for name in baselines:
            outputs[name] = np.stack(
                [classical_inpaint(o, h, name) for o, h in zip(occluded, hole, strict=True)]
            )
        if fid_features is not None:
            for name, images in (("original", original), *outputs.items()):
                features.setdefault(name, []).append(fid_features(images))
        target = original.astype(np.float32) / 255.0
        hole_f = hole.astype(np.float32)
        scores = {}
        for name, out in outputs.items():
            out_f = out.astype(np.float32) / 255.0
            scores[name] = {
                "psnr": np.asarray(metrics.psnr(out_f, target)),
                "psnr_hole": np.asarray(metrics.psnr(out_f, target, hole_f)),
                "ssim": np.asarray(metrics.ssim(out_f, target)),
                "ssim_hole": np.asarray(metrics.ssim(out_f, target, hole_f)),
                "lpips": np.asarray(lpips(out_f, target)),
                "structure": structure(out_f, target, hole_f, aligned=aligned),
            }
            result.composites.setdefault(name, []).extend(out)
        for i, ex in enumerate(batch):
            result.records.append(
                {
                    "id": str(ex["id"].decode() if isinstance(ex["id"], bytes) else ex["id"]),
                    "category": ID_TO_CATEGORY.get(int(ex["category"]), str(ex["category"])),
                    "gender": GENDERS.get(int(ex.get("gender", -1))),
                    "mask_ratio": float(hole[i].mean()),
                    "metrics": {
                        name: {k: float(v[i]) for k, v in s.items()} for name, s in scores.items()
                    },
                }
            )
        result.examples.extend(batch)
        if progress is not None:
            progress(len(batch))
    if not result.records:
        raise ValueError("no examples to evaluate")
    if features:
        reference = np.concatenate(features.pop("original"))
        result.fid = {name: fid(np.concatenate(f), reference) for name, f in features.items()}
    return result


def best_and_worst(evaluation: Evaluation, method: str, metric: str = "lpips", k: int = 4):
    """Indices of the k best and k worst examples of `method` by `metric` (lower LPIPS is
    better; higher PSNR/SSIM is better)."""
    values = np.array([r["metrics"][method][metric] for r in evaluation.records], np.float64)
    values = np.where(np.isnan(values), np.inf if metric == "lpips" else -np.inf, values)
    order = np.argsort(values if metric == "lpips" else -values, kind="stable")
    k = min(k, len(order))
    return list(order[:k]), list(order[::-1][:k])


def strip(evaluation: Evaluation, indices: list[int], gap: int = 2) -> np.ndarray:
    """Rows of occluded | mask | each method's composite | original for the given examples."""
    methods = list(evaluation.composites)
    rows = []
    for i in indices:
        ex = evaluation.examples[i]
        mask = np.repeat((np.asarray(ex["mask"]).reshape(*ex["original"].shape[:2], 1) > 0), 3, -1)
        tiles = [ex["occluded"], mask.astype(np.uint8) * 255]
        tiles += [evaluation.composites[m][i] for m in methods] + [ex["original"]]
        h = tiles[0].shape[0]
        sep = np.full((h, gap, 3), 255, np.uint8)
        row = [t for tile in tiles for t in (np.asarray(tile, np.uint8), sep)][:-1]
        rows.append(np.concatenate(row, axis=1))
        rows.append(np.full((gap, rows[-1].shape[1], 3), 255, np.uint8))
    return np.concatenate(rows[:-1], axis=0)
