"""The full-resolution smooth base, solved (`solve_smooth_fill`) against relaxed (Jacobi steps per
level, what `Reconstructor(base_steps=1000)` made before): time and hole PSNR per hole.

    python bench/smooth_base.py [--dataset=runs/demo/data] [--splits=validation,test]
        [--steps=1000]

Holes: the exact occluder masks of `evaluate --photos`' photos of the splits (each face at its
stored size with a library occluder pasted at the photo's resolution: no training saw these
faces), the demo photo's sunglasses (512², `data_pipeline.compose.demo_photo`), and the same
photo doubled (1024², its hole doubled) for a large hole. Both fills are made by
`smooth_fill_around_hole` as `Reconstructor` makes its base, and scored as `evaluate --photos`
scores its smooth rows: rounded to uint8, PSNR over the hole inside the face's square (the demo
photo: over the hole). Median of --repeats calls (the relaxation: of 3). The biharmonic rows
also score the exact solve without tension (`exact dB`), the relaxation's limit. Last line
`speedup=<min over holes>`.
"""

import argparse
import os
import platform
import statistics

import cv2
import numpy as np
import scipy
from bench_common import RESULTS, timed, write_json

from jaxinpaint.fills import SMOOTH_FILLS, smooth_fill_around_hole, solve_smooth_fill


def hole_psnr(out: np.ndarray, original: np.ndarray, hole: np.ndarray) -> float:
    """As `metrics.psnr` over a mask: the mean squared error of the hole's pixels, 0-1 scale."""
    out = np.clip(np.rint(out), 0, 255).astype(np.float32) / 255.0
    err = np.square(out - original.astype(np.float32) / 255.0)[hole]
    return float(10.0 * np.log10(1.0 / err.mean()))


def exact_fill(image: np.ndarray, hole: np.ndarray, name: str) -> np.ndarray:
    """The fill's equation solved without tension, around the hole."""
    ys, xs = np.nonzero(hole)
    y0, x0 = max(ys.min() - 2, 0), max(xs.min() - 2, 0)
    y1, x1 = ys.max() + 3, xs.max() + 3
    out = image.astype(np.float32)
    box = (slice(y0, y1), slice(x0, x1))
    out[box] = solve_smooth_fill(image[box], hole[box], SMOOTH_FILLS[name][1])
    return out


def holes(dataset: str, splits: list[str]):
    """(name, occluded photo, original, hole, scored region) for each hole measured."""
    from skimage import data

    from data_pipeline.compose import demo_photo

    if dataset:
        from jaxinpaint.evaluation.photos import photo_examples

        for split in splits:
            for ex in photo_examples(dataset, split, seed=0):
                x0, y0, x1, y1 = ex["window"]
                region = np.zeros(ex["mask"].shape, bool)
                region[y0:y1, x0:x1] = True
                yield f"{split} {ex['id']}", ex["occluded"], ex["original"], ex["mask"], region
    occluded, mask = demo_photo()
    original = data.astronaut()
    yield "demo photo 512²", occluded, original, mask, np.ones_like(mask)
    # Doubled: the original enlarged with the hole's pixels blanked (a fill never reads them), so
    # that no enlarged occluder edge bleeds into the ring the fills start from.
    big_mask = cv2.resize(mask.astype(np.uint8), None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    big_original = cv2.resize(original, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    big_occluded = np.where(big_mask[..., None] > 0, 0, big_original).astype(np.uint8)
    yield "demo photo 1024²", big_occluded, big_original, big_mask > 0, np.ones_like(big_mask, bool)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="runs/demo/data", help="'' for the demo photo only")
    parser.add_argument("--splits", default="validation,test")
    parser.add_argument("--steps", type=int, default=1000, help="relaxation steps per level")
    parser.add_argument("--fills", default="biharmonic,harmonic")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=str(RESULTS / "smooth_base.json"))
    args = parser.parse_args()

    print(
        f"{'hole':<22}{'fill':<12}{'box':>10}{'pixels':>8}{'relax ms':>10}{'solve ms':>9}"
        f"{'faster':>9}{'relax dB':>9}{'solve dB':>9}{'exact dB':>9}"
    )
    rows = []
    for name, occluded, original, hole, region in holes(args.dataset, args.splits.split(",")):
        ys, xs = np.nonzero(hole)
        size = f"{xs.max() - xs.min() + 1}×{ys.max() - ys.min() + 1}"
        for fill in args.fills.split(","):
            relaxed = smooth_fill_around_hole(occluded, hole, fill, args.steps)
            solved = smooth_fill_around_hole(occluded, hole, fill)
            rows.append(
                dict(
                    hole=name,
                    fill=fill,
                    box=size,
                    pixels=int(hole.sum()),
                    relax_ms=timed(
                        lambda o=occluded, h=hole, f=fill: smooth_fill_around_hole(
                            o, h, f, args.steps
                        ),
                        3,
                        warmup=0,
                    ),
                    solve_ms=timed(
                        lambda o=occluded, h=hole, f=fill: smooth_fill_around_hole(o, h, f),
                        args.repeats,
                        warmup=1,
                    ),
                    relax_db=hole_psnr(relaxed, original, hole & region),
                    solve_db=hole_psnr(solved, original, hole & region),
                    exact_db=hole_psnr(exact_fill(occluded, hole, fill), original, hole & region),
                )
            )
            r = rows[-1]
            print(
                f"{name:<22}{fill:<12}{size:>10}{r['pixels']:>8}{r['relax_ms']:>10.1f}"
                f"{r['solve_ms']:>9.1f}{r['relax_ms'] / r['solve_ms']:>8.1f}x"
                f"{r['relax_db']:>9.2f}{r['solve_db']:>9.2f}{r['exact_db']:>9.2f}",
                flush=True,
            )
    summary = {}
    for group in [*args.splits.split(","), "demo"]:
        for fill in args.fills.split(","):
            mine = [r for r in rows if r["fill"] == fill and r["hole"].startswith(group)]
            if not mine:
                continue
            s = {
                k: statistics.mean(r[k] for r in mine) for k in ("relax_db", "solve_db", "exact_db")
            }
            s |= {k: statistics.median(r[k] for r in mine) for k in ("relax_ms", "solve_ms")}
            summary[f"{group} {fill}"] = s | dict(holes=len(mine))
            print(
                f"{group} {fill}: {len(mine)} holes, mean hole PSNR relaxed {s['relax_db']:.2f} "
                f"dB, solved {s['solve_db']:.2f} (exact {s['exact_db']:.2f}); median "
                f"{s['relax_ms']:.1f} ms → {s['solve_ms']:.1f} ms"
            )
    speedup = min(r["relax_ms"] / r["solve_ms"] for r in rows)
    write_json(
        args.json,
        dict(
            benchmark="smooth_base",
            machine=platform.machine(),
            cpus=os.cpu_count(),
            scipy=scipy.__version__,
            steps=args.steps,
            dataset=args.dataset,
            splits=args.splits,
            rows=rows,
            summary=summary,
            min_speedup=speedup,
        ),
    )
    print(f"speedup={speedup:.1f}")


if __name__ == "__main__":
    main()
