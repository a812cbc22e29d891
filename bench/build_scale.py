"""Scale bench of the dataset build and the mask cache: one machine against Beam's DirectRunner.

    .venv-beam/bin/python bench/build_scale.py --photos=2000,10000 --workers=2

Runs in the Beam environment (`make beam-env`), which holds both drivers. For each size it makes a
folder of that many photos from the committed sample faces (each photo a canvas of one to three
faces, each face flipped, cropped, scaled and colour-jittered at random, so that no two are near
duplicates), then builds the dataset from it twice, each build in a fresh process:

- one machine: `data_pipeline.build.build_dataset` with `--workers` processes;
- Beam: `data_pipeline.beam_build.build_dataset` on the DirectRunner in multi-processing mode
  with `--workers` worker processes.

It reports wall time, photos/s per worker, photos per CPU-second (user + system time of the
build's process and all of its children: the figure that a busy, shared machine disturbs least),
the peak resident memory of the driver and of the largest worker process (psutil, sampled every
0.2 s), and the output's size. Then the mask cache over `--cache_images` occluded images of the
build, with the untrained demo detector saved as a checkpoint (threshold 0, so the mask head runs
on every detection): `mask_cache.cache_masks` in one process against `detector.beam_cache` on the
DirectRunner, images/s. Results go to bench/results/build_scale.json; docs/bench.md has the table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

FACES = ROOT / "data_pipeline" / "assets" / "faces"
CANVAS = (480, 360)  # w, h of each photo


def make_photos(folder: Path, n: int, seed: int = 0) -> None:
    """`n` JPEG photos of one to three sample faces each; photo i depends only on (seed, i)."""
    done = folder / ".complete"
    if done.is_file() and done.read_text() == f"{n} {seed}":
        return
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    crops = [cv2.imread(str(p)) for p in sorted(FACES.glob("*.jpg"))]
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        w, h = CANVAS
        # a smooth two-colour background with noise
        a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        t = np.linspace(0, 1, w)[None, :, None]
        canvas = (a * (1 - t) + b * t).repeat(h, axis=0)
        canvas = np.clip(canvas + rng.normal(0, 6, canvas.shape), 0, 255).astype(np.uint8)
        k = rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1])
        slots = rng.permutation(3)[:k]  # left, middle, right thirds: faces never overlap
        for slot in slots:
            face = crops[rng.integers(len(crops))]
            if rng.random() < 0.5:
                face = face[:, ::-1]
            s = face.shape[0]
            c = int(s * rng.uniform(0.85, 1.0))  # a crop of 85-100 % of the side
            x0, y0 = rng.integers(0, s - c + 1, 2)
            face = face[y0 : y0 + c, x0 : x0 + c]
            side = int(rng.uniform(100, 150) if k > 1 else rng.uniform(140, 300))
            side = min(side, h - 10, w // 3 if k > 1 else w)
            face = cv2.resize(
                np.ascontiguousarray(face), (side, side), interpolation=cv2.INTER_AREA
            )
            x = face.astype(np.float32) * rng.uniform(0.8, 1.2) + rng.uniform(-20, 20)
            gray = x.mean(-1, keepdims=True)
            face = np.clip(gray + (x - gray) * rng.uniform(0.7, 1.3), 0, 255).astype(np.uint8)
            lo = slot * w // 3 if k > 1 else 0
            hi = (slot + 1) * w // 3 if k > 1 else w
            px = rng.integers(lo, max(lo + 1, hi - side + 1))
            py = rng.integers(0, h - side + 1)
            canvas[py : py + side, px : px + side] = face
        cv2.imwrite(str(folder / f"photo{i:06d}.jpg"), canvas, [cv2.IMWRITE_JPEG_QUALITY, 90])
    done.write_text(f"{n} {seed}")


class PeakMemory:
    """Peak RSS (MB) of this process and of each of its descendants, sampled in a thread."""

    def __init__(self, every: float = 0.2):
        import psutil

        self._me, self._every = psutil.Process(), every
        self.driver, self.workers = 0.0, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import psutil

        while not self._stop.is_set():
            try:
                self.driver = max(self.driver, self._me.memory_info().rss / 2**20)
                for child in self._me.children(recursive=True):
                    try:
                        rss = child.memory_info().rss / 2**20
                    except psutil.Error:
                        continue
                    self.workers[child.pid] = max(self.workers.get(child.pid, 0.0), rss)
            except psutil.Error:
                pass
            time.sleep(self._every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _cpu_seconds() -> float:
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _du_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def child_build(kind: str, faces: str, out: str, workers: int, size: int) -> dict:
    """One build in this process (run by `run_build` in a fresh one); its measurements."""
    from data_pipeline import beam_build, build

    start, cpu0 = time.perf_counter(), _cpu_seconds()
    with PeakMemory() as mem:
        if kind == "one":
            summary = build.build_dataset(faces, out, size=size, workers=workers, progress=False)
        else:
            args = ["--runner=DirectRunner", f"--direct_num_workers={workers}",
                    "--direct_running_mode=multi_processing"]  # fmt: skip
            summary = beam_build.build_dataset(faces, out, size=size, beam_args=args)
    return {
        "wall_s": round(time.perf_counter() - start, 1),
        "cpu_s": round(_cpu_seconds() - cpu0, 1),
        "driver_peak_mb": round(mem.driver),
        "worker_peak_mb": round(max(mem.workers.values(), default=0.0)),
        "worker_processes": len(mem.workers),
        "faces_used": summary["faces_used"],
        "examples": summary["examples"],
        "skipped": summary["skipped"],
    }


def child_cache(kind: str, images: str, out: str, ckpt: str, batch: int) -> dict:
    import functools

    from detector import beam_cache, mask_cache, predict, sources

    start, cpu0 = time.perf_counter(), _cpu_seconds()
    make = functools.partial(predict.Detector.from_checkpoint, ckpt, score_thresh=0.0,
                             batch_size=batch)  # fmt: skip
    with PeakMemory() as mem:
        if kind == "one":
            ex = sources.open_examples(images)
            meta = mask_cache.cache_masks(make(), ex.pairs, out, batch_size=batch, total=ex.total)
        else:
            meta, _ = beam_cache.cache_masks(make, images, out, batch_size=batch,
                                             beam_args=["--runner=DirectRunner"])  # fmt: skip
    return {
        "wall_s": round(time.perf_counter() - start, 1),
        "cpu_s": round(_cpu_seconds() - cpu0, 1),
        "driver_peak_mb": round(mem.driver),
        "images": meta["num_examples"],
    }


def _in_fresh_process(*args) -> dict:
    cmd = [sys.executable, __file__, "--child", json.dumps(args)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode:
        sys.exit(f"error: {' '.join(map(str, args[:2]))} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _save_detector(path: Path) -> None:
    import torch

    import configs
    from detector import checkpoint
    from detector import model as model_lib

    config = configs.get("detector_demo")
    torch.manual_seed(0)
    model = model_lib.build_model(config.model, config.model.image_size, load_weights=False)
    checkpoint.save(path, model=model, optimizer=None, step=0, config=config,
                    image_size=config.model.image_size)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", default="2000", help="comma-separated folder sizes")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", type=int, default=256, help="face crop side (--size)")
    parser.add_argument("--cache_images", type=int, default=32)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--work", default=str(ROOT / "runs" / "build_scale"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "build_scale.json"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = json.loads(args.child)
        fn = child_build if kind in ("one", "beam") else child_cache
        print(json.dumps(fn(kind.removeprefix("cache-"), *rest)))
        return
    work = Path(args.work)
    result = {"workers": args.workers, "size": args.size, "cpus": os.cpu_count(), "runs": []}
    result["load_before"] = os.getloadavg()
    last_out = None
    for n in [int(v) for v in args.photos.split(",")]:
        photos = work / f"photos{n}"
        make_photos(photos, n)
        for kind in ("one", "beam"):
            out = work / f"out{n}-{kind}"
            shutil.rmtree(out, ignore_errors=True)
            r = _in_fresh_process(kind, str(photos), str(out), args.workers, args.size)
            r.update(kind=kind, photos=n, out_mb=round(_du_mb(out)))
            r["photos_per_s_per_worker"] = round(n / r["wall_s"] / args.workers, 2)
            r["photos_per_cpu_s"] = round(n / r["cpu_s"], 2)
            r["load"] = os.getloadavg()
            print(json.dumps(r), flush=True)
            result["runs"].append(r)
            last_out = out
    # the mask cache over the occluded images of the last build
    images = work / "cache_images"
    shutil.rmtree(images, ignore_errors=True)
    images.mkdir(parents=True)
    for p in sorted((last_out / "pairs" / "occluded").glob("*.png"))[: args.cache_images]:
        shutil.copy(p, images / p.name)
    ckpt = work / "detector_demo_untrained.pt"
    _save_detector(ckpt)
    for kind in ("one", "beam"):
        out = work / f"cache-{kind}"
        shutil.rmtree(out, ignore_errors=True)
        r = _in_fresh_process(f"cache-{kind}", str(images), str(out), str(ckpt), args.batch_size)
        r.update(kind=f"cache-{kind}", images_per_s=round(r["images"] / r["wall_s"], 2))
        r["load"] = os.getloadavg()
        print(json.dumps(r), flush=True)
        result["runs"].append(r)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
