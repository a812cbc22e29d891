"""Aggregates per-example metrics into buckets and writes them as JSON and Markdown.

A record is one example evaluated by several methods (the model and the classical baselines):

    {"id": "0007", "category": "mask", "gender": "female" | None, "mask_ratio": 0.23,
     "metrics": {"model": {"psnr": 27.1, "ssim": 0.91, ...}, "telea": {...}, "ns": {...}}}

Buckets: mask ratio (percent of the image covered by the hole), category, gender where the
source labels it, and for photos whether the occluder crosses the face's window ("crosses").
Means skip NaN (a hole metric of an empty hole) and count what they averaged.
FID, a set metric, is reported once per method over all examples, when it was computed.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

from data_pipeline import atomic

# Percent of the image in the hole; the last bucket catches anything larger.
MASK_RATIO_BUCKETS: tuple[tuple[int, int], ...] = ((0, 10), (10, 20), (20, 30), (30, 40), (40, 60))
_LARGEST = (60, 100)


def mask_ratio_bucket(ratio: float) -> str:
    """The bucket name ("10-20%") of a hole covering `ratio` (0..1) of the image."""
    percent = 100.0 * ratio
    for lo, hi in (*MASK_RATIO_BUCKETS, _LARGEST):
        if percent < hi or hi == 100:
            return f"{lo}-{hi}%"
    raise AssertionError("unreachable")


def _mean_table(records: Sequence[dict]) -> dict:
    """{method: {metric: mean, ...}, "n": count} over the given records."""
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        for method, metrics in record["metrics"].items():
            for name, value in metrics.items():
                values[method][name].append(float(value))
    table: dict = {"n": len(records)}
    for method, metrics in values.items():
        table[method] = {}
        for name, vals in metrics.items():
            finite = [v for v in vals if not math.isnan(v)]
            table[method][name] = float(np.mean(finite)) if finite else None
    return table


def aggregate(records: Iterable[dict], fid: dict[str, float] | None = None) -> dict:
    """Overall means and means by mask-ratio bucket, category, gender and window crossing (and
    `fid`, a {method: FID} over all the records, if given)."""
    records = list(records)
    if not records:
        raise ValueError("no evaluated examples to aggregate")
    groups: dict[str, dict[str, list[dict]]] = {
        "by_mask_ratio": defaultdict(list),
        "by_category": defaultdict(list),
        "by_gender": defaultdict(list),
        "by_window": defaultdict(list),
    }
    for record in records:
        if "crosses" in record:  # photos: whether the occluder reaches past the face's window
            groups["by_window"][f"crosses: {'yes' if record['crosses'] else 'no'}"].append(record)
        groups["by_mask_ratio"][mask_ratio_bucket(record["mask_ratio"])].append(record)
        groups["by_category"][record["category"]].append(record)
        if record.get("gender"):
            groups["by_gender"][record["gender"]].append(record)
    order = {f"{lo}-{hi}%": i for i, (lo, hi) in enumerate((*MASK_RATIO_BUCKETS, _LARGEST))}
    summary = {"overall": _mean_table(records)}
    for grouping, members in groups.items():
        keys = sorted(members, key=lambda k: order.get(k, k) if grouping == "by_mask_ratio" else k)
        summary[grouping] = {key: _mean_table(members[key]) for key in keys}
    if fid:
        summary["fid"] = dict(fid)
    return summary


def _fmt(value) -> str:
    if value is None:
        return "–"
    if math.isinf(value):
        return "inf"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.2f}"


def to_markdown(summary: dict, title: str = "Evaluation") -> str:
    """One table per grouping: a row per (group, method), a column per metric."""
    overall = summary["overall"]
    methods = [m for m in overall if m != "n"]
    metrics = sorted({name for m in methods for name in overall[m]})
    header = "| group | n | method | " + " | ".join(metrics) + " |"
    rule = "|" + "---|" * (3 + len(metrics))
    lines = [f"# {title}", ""]
    sections = [("Overall", {"all": overall})] + [
        (name.replace("by_", "By ").replace("_", " "), summary[name])
        for name in ("by_mask_ratio", "by_category", "by_gender", "by_window")
        if summary.get(name)
    ]
    for heading, groups in sections:
        lines += [f"## {heading}", "", header, rule]
        for group, table in groups.items():
            for method in methods:
                if method not in table:
                    continue
                cells = " | ".join(_fmt(table[method].get(m)) for m in metrics)
                lines.append(f"| {group} | {table['n']} | {method} | {cells} |")
        lines.append("")
    if summary.get("fid"):
        lines += [
            f"## FID against the originals ({overall['n']} images)",
            "",
            "| method | FID |",
            "|---|---|",
            *(f"| {method} | {value:.2f} |" for method, value in summary["fid"].items()),
            "",
            "FID is biased upwards on small sets; compare methods on the same images only.",
            "",
        ]
    return "\n".join(lines)


def _jsonable(value):
    """JSON has no inf: a perfect PSNR is written as the string "inf"."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def write_report(summary: dict, out_dir: str, name: str = "eval", title: str = "Evaluation"):
    """Writes `<name>.json` and `<name>.md` in `out_dir`; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    json_path = os.path.join(out_dir, f"{name}.json")
    md_path = os.path.join(out_dir, f"{name}.md")
    atomic.write_text(json_path, json.dumps(_jsonable(summary), indent=2, allow_nan=False))
    atomic.write_text(md_path, to_markdown(summary, title))
    return json_path, md_path
