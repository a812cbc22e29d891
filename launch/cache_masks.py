"""Fill the mask cache: run a trained detector over the inpainting set, write TFRecords by id.

    python launch/cache_masks.py --detector=runs/detector/model_final.pt \
        --dataset=DATA/tfds --out=DATA/mask_cache [--score_thresh=0.7] [--classes=cap,mask] \
        [--on_face=0.3]

--dataset is a TFDS `occluded_faces` folder (all splits unless --splits) or a folder of images.
With --runner (the Beam environment, `make beam-env`; docs/data.md "Beam") the detector runs in
an Apache Beam pipeline on that runner; pipeline options follow `--`.
"""

import functools
import sys

from absl import app, flags, logging

import launch
from data_pipeline import align
from detector import mask_cache, predict, sources

FLAGS = flags.FLAGS
flags.DEFINE_string("detector", None, "Detector checkpoint (model_final.pt of a training run).")
flags.DEFINE_string("dataset", None, "TFDS occluded_faces folder, or a folder of images.")
flags.DEFINE_string("out", None, "Cache folder (default: <dataset>/mask_cache).")
flags.DEFINE_list("splits", ["all"], "TFDS splits to cover.")
flags.DEFINE_float("score_thresh", None, "Minimum score (default: the checkpoint's config, 0.7).")
flags.DEFINE_list("classes", None, "Category names in the union mask (default: all 19).")
flags.DEFINE_enum(
    "score",
    None,
    ["occluder", "class"],
    "What --score_thresh applies to: p(any occluder) or p(the detection's class) (default: the "
    "checkpoint's config, occluder).",
)
flags.DEFINE_float(
    "on_face",
    align.ON_FACE,
    "Least fraction of a detection's mask on the face of the aligned crop for it to count, as "
    "reconstruct counts it; 0 keeps every detection (sets built with --noalign).",
    lower_bound=0.0,
    upper_bound=1.0,
)
flags.DEFINE_integer("num_shards", 4, "TFRecord shards to write.")
flags.DEFINE_integer("batch_size", 8, "Images per detector call.")
flags.DEFINE_string("device", "cpu", "torch device, e.g. cpu or cuda.")
flags.DEFINE_enum(
    "runner",
    None,
    ["DirectRunner", "DataflowRunner", "FlinkRunner", "SparkRunner", "PortableRunner"],
    "Run the detector in an Apache Beam pipeline on this runner (needs the Beam environment); "
    "pipeline options follow `--`. Unset: one process.",
)
flags.mark_flags_as_required(["detector", "dataset"])


def main(argv):
    logging.set_verbosity(logging.WARNING)  # tfds logs every file it reads at INFO
    if len(argv) > 1 and not FLAGS.runner:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    out = FLAGS.out or f"{FLAGS.dataset.rstrip('/')}/mask_cache"
    make_detector = functools.partial(
        predict.Detector.from_checkpoint,
        FLAGS.detector,
        score_thresh=FLAGS.score_thresh,
        classes=FLAGS.classes,
        score=FLAGS.score,
        device=FLAGS.device,
        batch_size=FLAGS.batch_size,
    )
    try:
        det = make_detector()  # also for Beam: a bad checkpoint is named before a job starts
        made_from = mask_cache.provenance(FLAGS.detector, FLAGS.dataset)
        if FLAGS.runner:  # each worker loads its own detector
            meta, skipped = _cache_on_beam(argv[1:], out, make_detector, made_from)
        else:
            examples = sources.open_examples(FLAGS.dataset, FLAGS.splits)
            meta = mask_cache.cache_masks(
                det,
                examples.pairs,
                out,
                num_shards=FLAGS.num_shards,
                batch_size=FLAGS.batch_size,
                total=examples.total,
                made_from=made_from,
                on_face=FLAGS.on_face,
            )
            skipped = examples.skipped
    except (FileNotFoundError, ValueError) as err:  # bad paths, checkpoints or flag values
        sys.exit(f"error: {err}")
    print(f"{meta['num_examples']} examples ({meta['num_with_mask']} with a mask) -> {out}")
    if skipped:
        print(f"skipped {len(skipped)} files that are not whole images:")
        for path, reason in skipped:
            print(f"  {path}: {reason}")


def _cache_on_beam(extra, out, make_detector, made_from):
    """`detector.beam_cache.cache_masks` on the runner of the flags: (meta, skipped files)."""
    try:  # Beam is imported only when asked for: the default install has none
        from detector import beam_cache
    except ImportError as err:
        sys.exit(
            f"error: --runner={FLAGS.runner} needs apache-beam ({err}); run it in the Beam "
            "environment: `make beam-env`, then .venv-beam/bin/python (docs/data.md, Beam)"
        )
    return beam_cache.cache_masks(
        make_detector,
        FLAGS.dataset,
        out,
        splits=FLAGS.splits,
        num_shards=FLAGS.num_shards,
        batch_size=FLAGS.batch_size,
        made_from=made_from,
        on_face=FLAGS.on_face,
        beam_args=[f"--runner={FLAGS.runner}", *extra],
    )


def cli():
    """The `jaxinpaint-cache-masks` command."""
    launch.run(main, __doc__)


if __name__ == "__main__":
    cli()
