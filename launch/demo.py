"""The README's first command: the whole pipeline on embedded data, on the CPU.

    make demo                      # = .venv/bin/python launch/demo.py --out=runs/demo
    .venv/bin/python launch/demo.py --out=runs/demo --quick   # fewer steps: a smoke run

Each stage is the command a user would type (printed before it runs), so the demo doubles as a
walk-through:
  1. build the occluded-faces dataset from the committed sample faces and occluder library;
  2. train the Mask R-CNN occluder detector (a VGG16 FPN from the ImageNet weights that install
     offline, on composites of the train faces made on the fly) and COCO-evaluate it on a fixed
     composite set of the test faces;
  3. cache the detector's masks for the inpainting set (TFRecords keyed by example id);
  4. train the inpainting GAN (configs/demo.py: 64x64);
  5. evaluate it against OpenCV's Telea and Navier-Stokes inpainting on the test split;
  6. reconstruct a photo: the NASA astronaut portrait wearing sunglasses composited from the
     library, once with the detector's mask and once with the known mask, each as input | ours
     | cv2.inpaint Telea with its details (mask, detections overlay, faces, record.json);
  7. export both models (ONNX, StableHLO) and reconstruct the photo again from the export, with
     onnxruntime alone (the serving path); the last line is the command that serves the web page
     on that export.
Stages whose outputs exist are skipped when the demo is run again (each command resumes).
"""

import json
import os
import shlex
import subprocess
import sys
import time

from absl import app, flags

from data_pipeline import align
from detector import mask_cache

FLAGS = flags.FLAGS
flags.DEFINE_string("out", "runs/demo", "Folder for every result of the demo.")
flags.DEFINE_bool("quick", False, "Far fewer training steps: checks the path, learns little.")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args: str) -> None:
    """Runs one launch/ command in the repo, printing it first; stops the demo if it fails."""
    cmd = [sys.executable, *args]
    print("\n$ " + " ".join(shlex.quote(a) for a in ["python", *args]), flush=True)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO)
    if proc.returncode != 0:
        sys.exit(f"demo stopped: the command above exited with status {proc.returncode}")
    print(f"({time.perf_counter() - start:.0f} s)", flush=True)


def sample_photo(path: str, mask_path: str) -> None:
    """The astronaut portrait (public domain, NASA) with library sunglasses on her eyes."""
    import numpy as np
    from PIL import Image

    from data_pipeline.compose import demo_photo

    photo, mask = demo_photo()
    Image.fromarray(photo).save(path)
    Image.fromarray(mask.astype(np.uint8) * 255).save(mask_path)


def main(argv):
    del argv
    out = os.path.abspath(FLAGS.out)
    data, det, inp, rec = (os.path.join(out, d) for d in ("data", "detector", "inpainter", "photo"))
    quick = ["--config.train.num_steps=20", "--config.data.test_per_category=1"]
    inp_steps = 100 if FLAGS.quick else 1500
    os.makedirs(out, exist_ok=True)

    if not os.path.exists(os.path.join(data, "summary.json")):
        run("launch/build_dataset.py", "--faces=sample", f"--out={data}", "--size=128")
    run(
        "launch/train_detector.py",
        "--config=configs/detector_demo.py",  # composites made on the fly from the train faces
        *(quick if FLAGS.quick else []),
        f"--workdir={det}",
    )
    checkpoint = os.path.join(det, "model_final.pt")
    cache = os.path.join(data, "mask_cache")
    # Rebuilt unless complete and made from this very checkpoint and dataset, with cache_masks.py's
    # default on-face rule.
    made_from = {**mask_cache.provenance(checkpoint, data), "on_face": align.ON_FACE}
    if stale := mask_cache.stale_reason(cache, made_from):
        print(f"\nmask cache to (re)build: {stale}")
        run("launch/cache_masks.py", f"--detector={checkpoint}", f"--dataset={data}")
    run(
        "launch/train.py",
        "--config=configs/demo.py",
        f"--config.total_steps={inp_steps}",
        f"--workdir={inp}",
    )
    # On the test faces (no person of them trained): crops at the model's resolution, and
    # photos at their own resolution through Reconstructor, with the exact hole and with the one
    # the detector finds, each against cv2.inpaint filling the same hole.
    run("launch/evaluate.py", f"--workdir={inp}", f"--dataset={data}", "--split=test", "--photos",
        f"--detector={checkpoint}")  # fmt: skip

    os.makedirs(rec, exist_ok=True)
    photo, mask = os.path.join(rec, "astronaut_sunglasses.png"), os.path.join(rec, "mask.png")
    sample_photo(photo, mask)
    # Each writes input | ours | Telea, and OUTPUT.details/ (mask, overlay, faces, record).
    common = [f"--input={photo}", f"--inpainter={inp}", "--compare", "--details"]
    # The detector's own threshold (0.7, on p(any occluder)) and growth (2 of its pixels).
    run("launch/reconstruct.py", *common, f"--detector={checkpoint}",
        f"--output={rec}/with_detector.png")  # fmt: skip
    run("launch/reconstruct.py", *common, f"--mask={mask}", f"--output={rec}/with_mask.png")

    exported = os.path.join(out, "exported")
    run(
        "launch/export.py", f"--inpainter={inp}", f"--detector={checkpoint}", f"--output={exported}"
    )
    run("launch/reconstruct.py", f"--input={photo}", f"--exported={exported}",
        f"--output={rec}/with_exported.png")  # fmt: skip

    print("\nDemo results:")
    for what, path in [
        ("dataset (COCO + TFDS)", data),
        ("detector COCO AP", os.path.join(det, "eval")),
        ("inpainter sample grids", os.path.join(inp, "samples")),
        ("inpainter loss curves", os.path.join(inp, "curves.png")),
        ("evaluation table (crops)", os.path.join(inp, "eval", "eval_test.md")),
        ("evaluation table (photos)", os.path.join(inp, "eval", "eval_test_photos.md")),
        ("the same, detector's holes", os.path.join(inp, "eval", "eval_test_photos_detector.md")),
        ("input | model | Telea, known mask", os.path.join(rec, "with_mask.png")),
        ("input | model | Telea, detector", os.path.join(rec, "with_detector.png")),
        ("mask, overlay, faces, record", os.path.join(rec, "with_detector.png.details")),
        ("exported models (ONNX, StableHLO)", exported),
        ("reconstructed from the export", os.path.join(rec, "with_exported.png")),
    ]:
        print(f"  {what:<36}{path}")
    with open(os.path.join(data, "summary.json")) as f:
        print(f"  ({json.load(f)['examples']} examples built)")
    # The page on the export: the command prints the address to open, http://127.0.0.1:8000/.
    print(f"\nThe web page: python launch/web.py --exported={exported}")
    return 0


if __name__ == "__main__":
    sys.exit(app.run(main))
