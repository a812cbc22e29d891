r"""Evaluate a trained inpainter against OpenCV's Telea and Navier-Stokes inpainting.

    python launch/evaluate.py --workdir=runs/demo --dataset=runs/demo/data [--split=test]

Reads the `occluded_faces` split of a `launch/build_dataset.py` output, fills every hole with the
workdir's generator and with both classical baselines, and writes into `<workdir>/eval/`:
`eval_<split>.json` and `eval_<split>.md` (PSNR and SSIM over the whole image and over the hole,
LPIPS; overall and by mask ratio, category and gender) and `best_worst_<split>.png` (rows:
occluded | mask | model | telea | ns | original; the 4 best, then the 4 worst by the model's LPIPS).
Examples whose size differs from the model's are resized to it. Exit status 1 on a user error.
"""

import itertools
import os
import sys

import cv2
from absl import app, flags
from tqdm import tqdm

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Training workdir of the inpainter (launch/train.py).")
flags.DEFINE_string("dataset", None, "Output folder of launch/build_dataset.py.")
flags.DEFINE_string("split", "test", "Dataset split: train, validation or test.")
flags.DEFINE_string("out", None, "Report folder (default: <workdir>/eval).")
flags.DEFINE_integer("max_examples", 0, "Evaluate at most this many examples (0 = all).")
flags.DEFINE_integer("batch_size", 8, "Examples per generator call.")
flags.mark_flags_as_required(["workdir", "dataset"])


def _resized(example: dict, size: int) -> dict:
    """The example at the model's resolution (area for images, nearest for the mask)."""
    if example["original"].shape[0] == size:
        return example
    out = dict(example)
    for key in ("original", "occluded"):
        out[key] = cv2.resize(example[key], (size, size), interpolation=cv2.INTER_AREA)
    out["mask"] = cv2.resize(example["mask"], (size, size), interpolation=cv2.INTER_NEAREST)[
        ..., None
    ]
    return out


def main(argv):
    del argv
    from data_pipeline import tfds_builder
    from jaxinpaint.evaluation import evaluate, report
    from jaxinpaint.inference import Inpainter
    from jaxinpaint.samples import write_png

    try:
        inpainter = Inpainter.from_workdir(FLAGS.workdir)
        examples = tfds_builder.load_numpy(FLAGS.dataset, FLAGS.split)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    examples = (_resized(ex, inpainter.size) for ex in examples)
    if FLAGS.max_examples:
        examples = itertools.islice(examples, FLAGS.max_examples)

    def model(occluded, hole):
        return inpainter.inpaint_batch(occluded, hole)[1]

    with tqdm(desc=f"evaluate {FLAGS.split}", unit="img") as bar:
        result = evaluate.evaluate(
            model, examples, batch_size=FLAGS.batch_size, progress=bar.update
        )
    summary = report.aggregate(result.records)
    out_dir = FLAGS.out or os.path.join(FLAGS.workdir, "eval")
    title = f"Inpainting on the {FLAGS.split} split ({len(result.records)} faces)"
    json_path, md_path = report.write_report(summary, out_dir, f"eval_{FLAGS.split}", title)
    best, worst = evaluate.best_and_worst(result, "model", "lpips")
    strip_path = os.path.join(out_dir, f"best_worst_{FLAGS.split}.png")
    write_png(strip_path, evaluate.strip(result, best + worst))

    overall = summary["overall"]
    print(f"{'method':<8}{'PSNR':>8}{'PSNR hole':>11}{'SSIM':>8}{'SSIM hole':>11}{'LPIPS':>8}")
    for method in ("model", "telea", "ns"):
        m = overall[method]
        print(
            f"{method:<8}{m['psnr']:>8.2f}{m['psnr_hole']:>11.2f}{m['ssim']:>8.3f}"
            f"{m['ssim_hole']:>11.3f}{m['lpips']:>8.4f}"
        )
    print(f"wrote {md_path}, {json_path} and {strip_path}")
    return 0


if __name__ == "__main__":
    sys.exit(app.run(main))
