"""Loss-curve figures from a workdir's event files, drawn with Pillow (no plotting library).

python -m jaxinpaint.curves WORKDIR [TAG ...]   → WORKDIR/curves.png
"""

from __future__ import annotations

import glob
import math
import os
import sys
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from jaxinpaint.event_writer import read_scalars
from jaxinpaint.samples import write_image

DEFAULT_TAGS = (
    "gen/loss",
    "gen/l1_hole",
    "gen/l1_valid",
    "gen/perceptual",
    "gen/style",
    "gen/psnr",
    "disc/loss",
    "gen/adv_global",
)
_W, _H, _PAD = 320, 200, 36


def load(workdir: str) -> dict[str, list[tuple[int, float]]]:
    """All scalars of all event files in `workdir`, by tag, sorted by step (last write wins)."""
    merged: dict[str, dict[int, float]] = {}
    for path in sorted(glob.glob(os.path.join(workdir, "events.out.tfevents.*"))):
        for tag, points in read_scalars(path).items():
            merged.setdefault(tag, {}).update(points)
    return {tag: sorted(points.items()) for tag, points in merged.items()}


def _panel(tag: str, points: list[tuple[int, float]]) -> Image.Image:
    img = Image.new("RGB", (_W, _H), "white")
    draw = ImageDraw.Draw(img)
    draw.text((_PAD, 4), tag, fill="black")
    steps = np.array([p[0] for p in points], np.float64)
    values = np.array([p[1] for p in points], np.float64)
    keep = np.isfinite(values)
    steps, values = steps[keep], values[keep]
    x0, y0, x1, y1 = _PAD, 20, _W - 8, _H - 20
    draw.rectangle((x0, y0, x1, y1), outline="gray")
    if len(values) < 2:
        return img
    lo, hi = float(values.min()), float(values.max())
    if math.isclose(lo, hi):
        lo, hi = lo - 0.5, hi + 0.5
    sx = (x1 - x0) / max(steps[-1] - steps[0], 1)
    sy = (y1 - y0) / (hi - lo)
    xs, ys = x0 + (steps - steps[0]) * sx, y1 - (values - lo) * sy
    xy = list(zip(xs.tolist(), ys.tolist(), strict=True))
    draw.line(xy, fill=(31, 119, 180), width=2)
    draw.text((2, y0), f"{hi:.3g}", fill="black")
    draw.text((2, y1 - 10), f"{lo:.3g}", fill="black")
    draw.text((x0, y1 + 4), f"{int(steps[0])}", fill="black")
    draw.text((x1 - 40, y1 + 4), f"{int(steps[-1])}", fill="black")
    return img


def plot(workdir: str, tags: Sequence[str] = DEFAULT_TAGS, out: str | None = None) -> str:
    """Writes a grid of one panel per tag to `out` (default WORKDIR/curves.png)."""
    series = load(workdir)
    if not series:
        raise FileNotFoundError(f"no event files with scalars in {workdir}")
    tags = [t for t in tags if t in series]
    cols = 4
    rows = math.ceil(len(tags) / cols)
    sheet = Image.new("RGB", (cols * _W, rows * _H), "white")
    for i, tag in enumerate(tags):
        sheet.paste(_panel(tag, series[tag]), ((i % cols) * _W, (i // cols) * _H))
    out = out or os.path.join(workdir, "curves.png")
    write_image(out, np.asarray(sheet))
    return out


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m jaxinpaint.curves WORKDIR [TAG ...]", file=sys.stderr)
        return 2
    try:
        print(plot(argv[1], argv[2:] or DEFAULT_TAGS))
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
