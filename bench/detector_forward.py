"""Forward latency of the occluder detector on one 256x256 face, on the CPU.

    python bench/detector_forward.py [--repeats=20] [--detector=runs/detector/model_final.pt]

Without --detector the model is untrained and built from configs/detector_demo.py (the CPU
settings: a 128 px input that the face is resized to, as the trained demo detector does, 300/100
RPN proposals, at most 10 detections) with a score threshold of 0, so the mask head always runs
on all 10 detections: the slow end of what a trained model costs. The image is
the astronaut photo's face (scikit-image, public domain) resized to 256x256. The figure is the
median of --repeats timed `Detector.predict` calls after warm-up, written to --json
(bench/results/detector_forward.json); the last line is `detector_ms=<median ms>`.
"""

import argparse
import json
import platform
import statistics
import time

import numpy as np
import torch
from bench_common import RESULTS, untrained_detector, write_json
from PIL import Image
from skimage import data as skdata

from detector import predict


def face_256() -> np.ndarray:
    """The astronaut's face, 256x256 RGB uint8."""
    crop = skdata.astronaut()[20:280, 110:370]
    return np.asarray(Image.fromarray(crop).resize((256, 256), Image.BILINEAR))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed forward passes")
    parser.add_argument("--warmup", type=int, default=3, help="untimed passes first")
    parser.add_argument("--detector", default="", help="a trained checkpoint to time instead")
    parser.add_argument("--json", default=str(RESULTS / "detector_forward.json"))
    args = parser.parse_args()

    image = face_256()
    det = predict.Detector.from_checkpoint(args.detector) if args.detector else untrained_detector()
    for _ in range(args.warmup):
        det.predict([image])
    times, counts = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        instances = det.predict([image])[0]
        times.append((time.perf_counter() - start) * 1000)
        counts.append(len(instances))
    median = statistics.median(times)
    result = {
        "detector_ms": median,
        "min_ms": min(times),
        "max_ms": max(times),
        "repeats": args.repeats,
        "instances_per_image": statistics.median(counts),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "checkpoint": args.detector or "untrained, configs/detector_demo.py, score_thresh 0",
    }
    print(json.dumps(result, indent=2))
    write_json(args.json, result)
    print(f"detector_ms={median:.1f}")


if __name__ == "__main__":
    main()
