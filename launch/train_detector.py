"""Train (or only evaluate) the occluder detector.

    python launch/train_detector.py --config=configs/detector.py \
        --config.data.coco_dir=DATA/coco --workdir=runs/detector [--eval_only]
    python launch/train_detector.py --config=configs/detector_demo.py \
        --config.data.source=generated --workdir=runs/detector   # composites made per step
    torchrun --nproc_per_node=2 launch/train_detector.py ...   # DistributedDataParallel

Writes checkpoints, metrics.jsonl, eval/step_*/coco_eval.{json,md} and vis/*.png in the workdir.
"""

import logging
import sys

from absl import app, flags
from ml_collections import config_flags

import launch
from detector import train

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Detector config file.", lock_config=True)
flags.DEFINE_string("workdir", None, "Folder for checkpoints, metrics and evaluations.")
flags.DEFINE_bool("eval_only", False, "Only COCO-evaluate the workdir's newest checkpoint.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if FLAGS.config.data.source == "coco" and not FLAGS.config.data.coco_dir:
        sys.exit(
            "error: --config.data.coco_dir is empty; expected the dataset's coco/ folder "
            "(or --config.data.source=generated)"
        )
    try:
        if FLAGS.eval_only:
            metrics = train.evaluate_only(FLAGS.config, FLAGS.workdir)
        else:
            metrics = train.train_and_evaluate(FLAGS.config, FLAGS.workdir)["eval"]
    except (FileNotFoundError, ValueError) as err:  # bad paths, files or config values
        sys.exit(f"error: {err}")
    if metrics is not None:
        print(
            f"bbox AP {metrics['bbox']['AP']:.1f}  segm AP {metrics['segm']['AP']:.1f}  "
            f"segm AP50 {metrics['segm']['AP50']:.1f}  "
            f"median mask IoU {metrics['mask_iou']['median']:.3f}"
        )


def cli():
    """The `jaxinpaint-train-detector` command."""
    launch.run(main, __doc__, config_flag=True)


if __name__ == "__main__":
    cli()
