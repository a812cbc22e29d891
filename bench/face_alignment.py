"""Face finding and alignment on occluded, rotated faces: BlazeFace + template vs today's Haar.

    python bench/face_alignment.py [--faces=40] [--categories=all] [--rotations=-20,0,20]
        [--workers=2] [--crop=128] [--keypoints=mesh|blazeface] [--reference=mesh|blazeface]
        [--no-yunet] [--yunet-mirror]

Faces: the committed sample crops (`data_pipeline.sample_faces.load(size=160, align=False)`),
`--faces=N` of them evenly spaced over the manifest (which is ordered by source photo), or all
with `--faces=0`. Each face makes 60 canvases (19 occluders + a clean copy, 3 rotations) at
about 0.1-0.2 s each with 2 workers on 2 CPU cores, so the default of 40 faces takes 5-10
minutes depending on the machine's load (all 125: 15-30); `--faces=5` is a quick smoke run.
Each face's reference keypoints come from one BlazeFace pass on the clean crop, refined by the
face mesh (`faces.detect_keypoints`; `--reference=blazeface`: BlazeFace's own, so neither method
is measured against itself); faces without one are skipped and counted.

Canvases: each face gets one occluder of every category (`--categories`, default all 19) by
`compose.composite`, with a generator seeded by (face index, category index); a clean copy is the
control. The tight 160 px crop is set in the centre of a 320x320 canvas so detection sees some
context: the crop's edge pixels replicated outwards and then blurred (Gaussian, sigma 12, the
seam feathered over 8 px), i.e. a smooth background in the face's colours with no second face in
it (reflection padding would mirror half-faces into the margin). Each canvas is then rotated by
every `--rotations` angle (degrees, counter-clockwise on screen, `cv2.warpAffine` with replicated
borders) about its centre, and the reference keypoints with it.

Methods, per canvas:
  new   `faces.find_faces(canvas)`; its crop is `FoundFace.alignment(crop)` (the template fit of
        the detected keypoints, or the Haar window for a face only Haar found). Its keypoints
        come from the face mesh (`--keypoints=mesh`, the default, as the pipeline runs) or from
        BlazeFace alone (`--keypoints=blazeface`, `find_faces(mesh=False)`); the reference is
        the same either way. `--no-yunet` leaves out YuNet's second opinion
        (`find_faces(yunet=False)`: BlazeFace and Haar alone, the method before YuNet);
        `--yunet-mirror` has YuNet look at the mirror image too (`landmarks.YuNet(mirror=True)`).
  haar  today's search: `faces.detect_faces(canvas)`, and only when that finds nothing the
        occluded cascade (`OCCLUDED_CASCADE`); its crop is the square `faces.face_window(box,
        DEFAULT_MARGIN)` scaled to the crop size.
A face counts as found when one of the method's boxes holds the midpoint of the reference eyes
(of those, the box whose centre is nearest to it is the match); every other box on the canvas
is counted as an extra (a false positive: each canvas holds one face). Haar is favoured at 0°:
the sample crops were cut around the default cascade's box in the first place.

Spread: the REFERENCE right eye, left eye and mouth mapped into the matched face's crop frame
(crop pixels at `--crop`, default 128), over all found occluded canvases; per point, the RMS of
the x and y standard deviations, sqrt((std_x² + std_y²) / 2), in pixels and in % of the crop
side. A well-aligned crop puts every eye at the same place whatever the tilt, so the spread over
all rotations pooled is the figure that counts; "eye spread" is the larger of the two eyes'.
It is given over each method's own found faces and over the faces both found, with the median
distance from the mean position as an outlier-proof companion. The JSON also lists every miss
and each method's canvases with the worst-placed eyes.

Found rates are also given by how many of the two reference eyes the occluder hides (most of
the 5x5 px about the eye under the composite's mask): a book over the face from the brow down
leaves nothing a face detector knows, a cup at the chin leaves the whole upper face.

Latency: per canvas, wall time of the search plus the crop of the matched face (`aligned_crop`;
the search alone where nothing was found), one OpenCV thread per worker process; median and p90.

Goals (the issue): found on >= 98 % of occluded faces (Haar's rate is the baseline), eye spread
<= 3 % of the crop side. The table is printed, the numbers written to --json
(bench/results/face_alignment.json); the last line is `found_rate=<new method's found fraction
over all occluded canvases>`.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import time

import cv2
import numpy as np
from bench_common import RESULTS, write_json

from data_pipeline import align, compose, faces, landmarks, occluders, sample_faces
from data_pipeline.categories import CATEGORIES

CANVAS = 320
FACE_SIZE = 160
BLUR_SIGMA = 12.0
FEATHER = 8  # px of the crop's edge blended into the blurred surround
CLEAN = "clean"  # the control: the face without an occluder
POINTS = ("right_eye", "left_eye", "mouth")
_POINT_INDEX = (0, 1, 3)  # in landmarks.KEYPOINTS
METHODS = ("new", "haar")
ALL = "all occluded"
OK_FRACTION = 0.1  # of the crop side: how far an eye may sit from its usual place in a usable crop
WORST = 20  # worst-placed canvases per method kept in the JSON
EYE_PATCH = 2  # an eye counts as hidden when the occluder covers most of the 5x5 px around it


def embed(face: np.ndarray) -> tuple[np.ndarray, int]:
    """The face crop in the centre of a CANVAS x CANVAS canvas (see the module docstring), and
    the crop's offset in it."""
    pad = (CANVAS - face.shape[0]) // 2
    grown = cv2.copyMakeBorder(face, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    blurred = cv2.GaussianBlur(grown, (0, 0), BLUR_SIGMA).astype(np.float32)
    n = face.shape[0]
    ramp = np.minimum(np.arange(n), np.arange(n)[::-1]) + 0.5
    ramp = np.clip(ramp / FEATHER, 0.0, 1.0)
    alpha = np.minimum(ramp[:, None], ramp[None, :])[..., None]
    inner = blurred[pad : pad + n, pad : pad + n]
    blurred[pad : pad + n, pad : pad + n] = alpha * face + (1 - alpha) * inner
    return np.clip(np.rint(blurred), 0, 255).astype(np.uint8), pad


def rotation(angle: float) -> np.ndarray:
    """2x3 rotation of the canvas about its centre, as `cv2.warpAffine` takes it (pixel centres
    at integers)."""
    c = (CANVAS - 1) / 2
    return cv2.getRotationMatrix2D((c, c), angle, 1.0)


def rotate_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Keypoints (BlazeFace's continuous pixel coordinates, pixel centres at +0.5) moved as
    `warpAffine(matrix)` moves the pixels under them."""
    return align.apply(matrix, np.asarray(points, np.float64) - 0.5) + 0.5


def contains(box, point) -> bool:
    x, y, w, h = box
    return x <= point[0] <= x + w and y <= point[1] <= y + h


def match(boxes, point) -> int | None:
    """Index of the box holding `point` whose centre is nearest to it, or None."""
    best, best_d = None, np.inf
    for i, (x, y, w, h) in enumerate(boxes):
        if contains((x, y, w, h), point):
            d = np.hypot(x + w / 2 - point[0], y + h / 2 - point[1])
            if d < best_d:
                best, best_d = i, d
    return best


def on_face(boxes, matched, ref) -> int:
    """How many boxes other than `matched` hold one of the reference eyes, nose or mouth: a
    second box on the same face (another scale, a part of it), not one off the face."""
    return sum(any(contains(b, p) for p in ref[:4]) for k, b in enumerate(boxes) if k != matched)


def run_new(canvas, ref, crop_size):
    eyes = ref[:2].mean(0)
    start = time.perf_counter()
    found = faces.find_faces(canvas, mesh=_STATE["mesh"], yunet=_STATE["yunet"])
    i = match([f.box for f in found], eyes)
    if i is not None:
        faces.aligned_crop(canvas, found[i], crop_size)
    ms = (time.perf_counter() - start) * 1e3
    out = {"found": i is not None, "extra": len(found) - (i is not None), "ms": ms}
    out["extra_on_face"] = on_face([f.box for f in found], i, ref)
    if i is not None:
        alignment = found[i].alignment(crop_size)
        out["pos"] = align.apply(alignment.matrix, ref[list(_POINT_INDEX)]).tolist()
        out["keypoints"] = found[i].keypoints is not None
        out["largest"] = i == 0  # what a caller taking the first face would crop
    return out


def run_haar(canvas, ref, crop_size):
    eyes = ref[:2].mean(0)
    start = time.perf_counter()
    boxes = faces.detect_faces(canvas)
    if not boxes:
        cascade, neighbours = faces.OCCLUDED_CASCADE
        boxes = faces.detect_faces(canvas, cascade=cascade, min_neighbors=neighbours)
    i = match(boxes, eyes)
    if i is not None:
        face = faces.FoundFace(tuple(float(v) for v in boxes[i]))
        faces.aligned_crop(canvas, face, crop_size)  # = Alignment.from_window(face_window(box))
    ms = (time.perf_counter() - start) * 1e3
    out = {"found": i is not None, "extra": len(boxes) - (i is not None), "ms": ms}
    out["extra_on_face"] = on_face(boxes, i, ref)
    if i is not None:
        window = faces.face_window(boxes[i], faces.DEFAULT_MARGIN)
        alignment = align.Alignment.from_window(*window, crop_size)
        out["pos"] = align.apply(alignment.matrix, ref[list(_POINT_INDEX)]).tolist()
    return out


_STATE: dict = {}


def _init_worker(
    crop_size: int, mesh: bool, reference_mesh: bool, yunet: bool, mirror: bool
) -> None:
    cv2.setNumThreads(1)
    if mirror:  # find_faces' YuNet, with its mirror view
        detector = landmarks.YuNet(min_score=faces.YUNET_SCORE, mirror=True)
        faces._yunet = lambda: detector
    _STATE["mesh"] = mesh
    _STATE["yunet"] = yunet
    _STATE["reference_mesh"] = reference_mesh
    _STATE["faces"] = sample_faces.load(size=FACE_SIZE, align=False)
    _STATE["library"] = occluders.OccluderLibrary.load()
    _STATE["crop"] = crop_size
    warm = embed(_STATE["faces"][0].image)[0]
    faces.find_faces(warm)  # loads the models and the cascades outside the timed calls
    faces.detect_faces(warm, cascade=faces.OCCLUDED_CASCADE[0])


def eyes_hidden(mask: np.ndarray, keypoints: np.ndarray) -> int:
    """How many of the two eyes (`keypoints`' first two, crop pixels) the occluder `mask` (HxW
    or HxWx1, 1 = occluder) covers: most of the patch of EYE_PATCH px about each."""
    mask = np.asarray(mask, np.float32).reshape(mask.shape[:2])
    hidden = 0
    for x, y in np.asarray(keypoints)[:2].astype(int):
        patch = mask[
            max(y - EYE_PATCH, 0) : y + EYE_PATCH + 1, max(x - EYE_PATCH, 0) : x + EYE_PATCH + 1
        ]
        hidden += bool(patch.size and patch.mean() > 0.5)
    return hidden


def occlude(face, index: int, category: str, library) -> dict | None:
    """Face `index` behind one occluder of `category` (`compose.composite`'s parts), with a
    generator seeded by (face index, category index) trying the variants in a seeded order;
    None when no variant could be placed."""
    rng = np.random.default_rng([index, CATEGORIES.index(category)])
    found = compose.occlude(face, library.items[category], rng)
    return None if found is None else found[0]


def _face_job(job: tuple[int, tuple[str, ...], tuple[float, ...]]) -> dict:
    """All canvases of one face: its clean copy and one occluder per category, each rotated."""
    index, categories, angles = job
    face = _STATE["faces"][index]
    library, crop_size = _STATE["library"], _STATE["crop"]
    reference = faces.detect_keypoints(face.image, mesh=_STATE["reference_mesh"])
    if reference is None:
        return {"face": index, "records": None}
    records = []
    for category in (CLEAN, *categories):
        if category == CLEAN:
            image, hidden = face.image, 0
        else:
            parts = occlude(face, index, category, library)
            if parts is None:
                records.append({"face": index, "category": category, "placed": False})
                continue
            image = parts["occluded"]
            hidden = eyes_hidden(parts["mask"], reference.keypoints)
        canvas, offset = embed(image)
        ref = reference.keypoints.astype(np.float64) + offset
        for angle in angles:
            m = rotation(angle)
            turned = cv2.warpAffine(
                canvas, m, (CANVAS, CANVAS), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
            ref_turned = rotate_points(m, ref)
            records.append(
                {
                    "face": index,
                    "category": category,
                    "angle": angle,
                    "placed": True,
                    "eyes_hidden": hidden,
                    "new": run_new(turned, ref_turned, crop_size),
                    "haar": run_haar(turned, ref_turned, crop_size),
                }
            )
    return {"face": index, "records": records}


def spread(positions: list) -> dict | None:
    """Per point: RMS of the x and y standard deviations (px), and the mean position."""
    if len(positions) < 2:
        return None
    p = np.asarray(positions, np.float64)  # [n, 3, 2]
    std = p.std(axis=0)  # [3, 2]
    rms = np.sqrt((std**2).mean(axis=1))
    dist = np.linalg.norm(p - p.mean(axis=0), axis=-1)  # [n, 3], from the mean position
    return {
        name: {
            "px": float(rms[k]),
            "mean": p[:, k].mean(0).tolist(),
            "median_dist_px": float(np.median(dist[:, k])),
            "p90_dist_px": float(np.percentile(dist[:, k], 90)),
        }
        for k, name in enumerate(POINTS)
    }


def eye_spread(points: dict | None) -> float:
    """The larger of the two eyes' spreads, px; nan when there are too few faces."""
    return max(points[p]["px"] for p in POINTS[:2]) if points else float("nan")


def rate(records, method) -> dict:
    n = len(records)
    k = sum(r[method]["found"] for r in records)
    ok = sum(r[method].get("ok", False) for r in records)
    nan = float("nan")
    return {
        "found": k,
        "n": n,
        "rate": k / n if n else nan,
        "ok": ok,
        "ok_rate": ok / n if n else nan,
    }


def mark_ok(records: list[dict], method: str, limit_px: float) -> list[float] | None:
    """Sets `ok` on each record: found, with both reference eyes within `limit_px` of the
    method's median eye positions over `records`; returns those positions."""
    pos = [np.asarray(r[method]["pos"])[:2] for r in records if r[method]["found"]]
    if not pos:
        return None
    usual = np.median(pos, axis=0)
    for r in records:
        res = r[method]
        res["ok"] = bool(
            res["found"]
            and np.linalg.norm(np.asarray(res["pos"])[:2] - usual, axis=1).max() <= limit_px
        )
    return usual.tolist()


def pct(x: float) -> str:
    return "  -  " if x != x else f"{100 * x:5.1f}"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=40, help="faces used, evenly spaced; 0: all")
    parser.add_argument("--categories", default="all", help="comma-separated, or 'all'")
    parser.add_argument("--rotations", default="-20,0,20", help="degrees, comma-separated")
    parser.add_argument("--crop", type=int, default=128, help="crop side for the spread")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument(
        "--keypoints",
        choices=("mesh", "blazeface"),
        default="mesh",
        help="the new method's keypoints: refined by the face mesh, or BlazeFace's alone",
    )
    parser.add_argument(
        "--reference",
        choices=("mesh", "blazeface"),
        default="mesh",
        help="the clean face's reference keypoints: refined by the face mesh, or BlazeFace's",
    )
    parser.add_argument(
        "--yunet",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="YuNet's second opinion in the new method (--no-yunet: BlazeFace and Haar alone)",
    )
    parser.add_argument(
        "--yunet-mirror",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="YuNet also looks at the mirror image (off in find_faces)",
    )
    parser.add_argument("--json", default=str(RESULTS / "face_alignment.json"))
    args = parser.parse_args()
    if args.categories == "all":
        args.categories = CATEGORIES
    else:
        args.categories = tuple(c.strip() for c in args.categories.split(",") if c.strip())
        unknown = [c for c in args.categories if c not in CATEGORIES]
        if unknown or not args.categories:
            raise SystemExit(f"error: unknown categories {unknown}; expected some of {CATEGORIES}")
    args.rotations = tuple(float(a) for a in args.rotations.split(","))
    return args


def run_all(jobs, workers: int, init: tuple) -> list[dict]:
    if workers <= 1:
        _init_worker(*init)
        return [_face_job(j) for j in jobs]
    # spawn, as data_pipeline.faces does: each worker loads its own faces, library and model
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers, _init_worker, init) as pool:
        return pool.map(_face_job, jobs, chunksize=1)


def main():
    args = parse_args()
    categories, angles = args.categories, args.rotations
    total = len(sample_faces.load(size=FACE_SIZE, align=False))
    n = total if args.faces <= 0 else min(args.faces, total)
    indices = sorted({int(i) for i in np.linspace(0, total - 1, n).round()})

    start = time.perf_counter()
    jobs = [(i, categories, angles) for i in indices]
    init = (
        args.crop,
        args.keypoints == "mesh",
        args.reference == "mesh",
        args.yunet,
        args.yunet_mirror,
    )
    results = run_all(jobs, args.workers, init)
    elapsed = time.perf_counter() - start

    skipped = [r["face"] for r in results if r["records"] is None]
    records = [rec for r in results if r["records"] is not None for rec in r["records"]]
    unplaced = [(r["face"], r["category"]) for r in records if not r["placed"]]
    records = [r for r in records if r["placed"]]
    occluded = [r for r in records if r["category"] != CLEAN]
    both = [r for r in occluded if r["new"]["found"] and r["haar"]["found"]]

    def own_spread(sel, m):
        return spread([r[m]["pos"] for r in sel if r[m]["found"]])

    # a usable crop: both eyes near where that method usually puts them (occluded faces and the
    # clean control each against their own usual place)
    limit = OK_FRACTION * args.crop
    clean = [r for r in records if r["category"] == CLEAN]
    usual = {
        m: {"occluded": mark_ok(occluded, m, limit), "clean": mark_ok(clean, m, limit)}
        for m in METHODS
    }

    # found rates (and eye spread) per category and rotation
    rows = {}
    for category in (*categories, CLEAN, ALL):
        sel = occluded if category == ALL else [r for r in records if r["category"] == category]
        rows[category] = {
            m: {
                **{str(a): rate([r for r in sel if r["angle"] == a], m) for a in angles},
                "all": rate(sel, m),
                "eye_spread_px": eye_spread(own_spread(sel, m)),
            }
            for m in METHODS
        }

    # found rates by how many eyes the occluder hides: what no face detector can be asked to see
    # and the eye spread of those found: a hidden eye's place can only be guessed
    by_eyes = {}
    for k in range(3):
        sel = [r for r in occluded if r["eyes_hidden"] == k]
        by_eyes[str(k)] = {
            m: {**rate(sel, m), "eye_spread_px": eye_spread(own_spread(sel, m))} for m in METHODS
        }

    # spreads over occluded faces: each method's own found faces, and the faces both found
    spreads = {}
    for m in METHODS:
        for a in (*angles, "all"):
            sel = [r for r in occluded if a == "all" or r["angle"] == a]
            com = [r for r in both if a == "all" or r["angle"] == a]
            spreads[f"{m} {a}"] = {
                "n": sum(r[m]["found"] for r in sel),
                "points": own_spread(sel, m),
                "n_both": len(com),
                "points_both": spread([r[m]["pos"] for r in com]),
            }

    latency = {}
    for m in METHODS:
        ms = sorted(r[m]["ms"] for r in records)
        hit = [r[m]["ms"] for r in records if r[m]["found"]]
        latency[m] = {
            "median_ms": statistics.median(ms),
            "p90_ms": float(np.percentile(ms, 90)),
            "found_median_ms": statistics.median(hit) if hit else float("nan"),
        }
    extras = {
        m: {
            "per_canvas": float(np.mean([r[m]["extra"] for r in records])),
            "canvases_with_extra": float(np.mean([r[m]["extra"] > 0 for r in records])),
            "on_face_per_canvas": float(np.mean([r[m]["extra_on_face"] for r in records])),
            "clean_canvases_with_extra": float(
                np.mean([r[m]["extra"] > 0 for r in records if r["category"] == CLEAN])
            ),
        }
        for m in METHODS
    }
    new_found = [r for r in occluded if r["new"]["found"]]
    by_keypoints = (
        float(np.mean([r["new"]["keypoints"] for r in new_found])) if new_found else float("nan")
    )
    not_largest = (
        float(np.mean([not r["new"]["largest"] for r in new_found])) if new_found else float("nan")
    )
    # the canvases behind the figures: misses and the worst-placed eyes of each method
    misses = {
        m: [(r["face"], r["category"], r["angle"]) for r in records if not r[m]["found"]]
        for m in METHODS
    }
    worst = {}
    for m in METHODS:
        pts = spreads[f"{m} all"]["points"]
        if not pts:
            worst[m] = []
            continue
        mean_eyes = np.array([pts["right_eye"]["mean"], pts["left_eye"]["mean"]])
        hits = [r for r in occluded if r[m]["found"]]
        errs = [
            float(np.linalg.norm(np.array(r[m]["pos"])[:2] - mean_eyes, axis=1).max()) for r in hits
        ]
        order = np.argsort(errs)[::-1][:WORST]
        worst[m] = [
            {
                "face": hits[i]["face"],
                "category": hits[i]["category"],
                "angle": hits[i]["angle"],
                "eye_px": errs[i],
            }
            for i in order
        ]

    found_rate = rows[ALL]["new"]["all"]["rate"]
    haar_rate = rows[ALL]["haar"]["all"]["rate"]
    eye_pct = {m: 100 * rows[ALL][m]["eye_spread_px"] / args.crop for m in METHODS}
    detector = faces._blazeface()  # what the run measured: these settings are still moving

    # ---- the table
    print(
        f"{len(indices) - len(skipped)} of {total} sample faces ({len(skipped)} without reference "
        f"keypoints skipped), {len(categories)} categories + clean control, rotations "
        f"{'/'.join(f'{a:+g}' for a in angles)} deg; {CANVAS}x{CANVAS} canvas, {args.crop} px "
        f"crop; {len(records)} canvases in {elapsed:.0f} s on {args.workers} workers; BlazeFace "
        f"min_score {detector.min_score}; YuNet "
        f"{f'min_score {faces.YUNET_SCORE}, mirror {args.yunet_mirror}' if args.yunet else 'off'}; "
        "new method's keypoints: "
        f"{args.keypoints}, reference: {args.reference}"
    )
    if unplaced:
        print(f"occluders that could not be placed (skipped): {unplaced}")
    rot = "".join(f"{a:>+6g}" for a in angles) + f"{'all':>6}"
    width = 6 * (len(angles) + 1)
    print()
    print(
        f"{'':<20}|{'found, % (new)':^{width}}|{'found, % (haar)':^{width}}|{'usable, %':^14}"
        f"|{'eye spread, %':^14}"
    )
    print(f"{'category':<20}|{rot}|{rot}|{'new':>7}{'haar':>7}|{'new':>7}{'haar':>7}")
    for category, row in rows.items():
        if category in (CLEAN, ALL):
            print("-" * (51 + 2 * width))
        cells = [
            "".join(f" {pct(row[m][str(a)]['rate'])}" for a in angles)
            + f" {pct(row[m]['all']['rate'])}"
            for m in METHODS
        ]
        ok = "".join(f"  {pct(row[m]['all']['ok_rate'])}" for m in METHODS)
        eyes = "".join(f"{100 * row[m]['eye_spread_px'] / args.crop:>7.1f}" for m in METHODS)
        name = "clean (control)" if category == CLEAN else category
        print(f"{name:<20}|{cells[0]}|{cells[1]}|{ok}|{eyes}")
    print(
        f"usable: found, and both reference eyes within {100 * OK_FRACTION:g} % of the crop side "
        "of where that method usually puts them (median); eye spread over all rotations"
    )

    print()
    print(
        f"spread of the reference points in the {args.crop} px crop, occluded faces: RMS of the "
        "x and y std, px (% of side); 'med' = median distance from the mean position, px"
    )
    head = "".join(f"{p:>15}" for p in POINTS)
    print(f"{'method':<6}{'rot':>5}{'n':>6}{head}{'eye med':>9}  |{'n both':>7}{head}")

    def cells(points):
        if points is None:
            return "".join(f"{'-':>15}" for _ in POINTS)
        return "".join(
            f"{points[p]['px']:>7.2f} ({100 * points[p]['px'] / args.crop:4.1f}%)" for p in POINTS
        )

    for key, s in spreads.items():
        m, a = key.split(" ")
        a = a if a == "all" else f"{float(a):+g}"
        med = (
            max(s["points"][p]["median_dist_px"] for p in POINTS[:2])
            if s["points"]
            else float("nan")
        )
        print(
            f"{m:<6}{a:>5}{s['n']:>6}{cells(s['points'])}{med:>9.2f}  |{s['n_both']:>7}"
            f"{cells(s['points_both'])}"
        )

    print()
    print(f"{'latency per canvas, ms':<46}{'median':>8}{'p90':>8}{'found':>8}")
    labels = {
        "new": "new: find_faces + aligned_crop",
        "haar": "haar: detect_faces (+ alt cascade) + crop",
    }
    for m in METHODS:
        lat = latency[m]
        print(
            f"{labels[m]:<46}{lat['median_ms']:>8.1f}{lat['p90_ms']:>8.1f}"
            f"{lat['found_median_ms']:>8.1f}"
        )
    print()
    for m in METHODS:
        e = extras[m]
        print(
            f"{m}: extra boxes (false positives) {e['per_canvas']:.3f} per canvas "
            f"({e['on_face_per_canvas']:.3f} of them on the face), on "
            f"{100 * e['canvases_with_extra']:.1f}% of canvases "
            f"({100 * e['clean_canvases_with_extra']:.1f}% of clean ones)"
        )
    print(
        f"new: found occluded faces whose match is not the largest box (what a caller taking "
        f"the first face would crop instead): {100 * not_largest:.1f}%"
    )
    print(
        f"new: found occluded faces aligned by keypoints (not the Haar fallback): "
        f"{100 * by_keypoints:.1f}%"
    )
    print(
        "found, occluded faces, by how many eyes the occluder hides: "
        + "; ".join(
            f"{name} {pct(by_eyes[k]['new']['rate']).strip()} % ({by_eyes[k]['new']['found']}/"
            f"{by_eyes[k]['new']['n']}; haar {pct(by_eyes[k]['haar']['rate']).strip()} %)"
            for k, name in (("0", "none"), ("1", "one"), ("2", "both"))
        )
    )
    print(
        "eye spread of the found occluded faces, by how many eyes the occluder hides: "
        + "; ".join(
            f"{name} {100 * by_eyes[k]['new']['eye_spread_px'] / args.crop:.2f} % (haar "
            f"{100 * by_eyes[k]['haar']['eye_spread_px'] / args.crop:.2f} %)"
            for k, name in (("0", "none"), ("1", "one"), ("2", "both"))
        )
    )
    print(
        f"goal found >= 98 %: new {100 * found_rate:.1f} % (haar {100 * haar_rate:.1f} %); "
        f"goal eye spread <= 3 %: new {eye_pct['new']:.2f} % (haar {eye_pct['haar']:.2f} %)"
    )

    result = dict(
        benchmark="face_alignment",
        machine=platform.machine(),
        cpus=os.cpu_count(),
        opencv=cv2.__version__,
        workers=args.workers,
        blazeface={"min_score": detector.min_score, "iou": detector.iou},
        yunet={"min_score": faces.YUNET_SCORE, "mirror": args.yunet_mirror} if args.yunet else None,
        keypoints=args.keypoints,
        reference=args.reference,
        faces=[i for i in indices if i not in skipped],
        faces_skipped=skipped,
        categories=list(categories),
        rotations=list(angles),
        canvas=CANVAS,
        crop=args.crop,
        canvases=len(records),
        unplaced=unplaced,
        seconds=elapsed,
        found=rows,
        spread=spreads,
        latency=latency,
        extras=extras,
        found_by_eyes_hidden=by_eyes,
        new_by_keypoints=by_keypoints,
        new_match_not_largest=not_largest,
        usual_eyes=usual,
        ok_fraction=OK_FRACTION,
        misses=misses,
        worst_eyes=worst,
        found_rate=found_rate,
        haar_found_rate=haar_rate,
        eye_spread_pct=eye_pct,
    )
    write_json(args.json, result)
    print(f"found_rate={found_rate:.4f}")


if __name__ == "__main__":
    main()
