"""Builds the occluded-faces dataset (detection COCO set + TFDS inpainting set).

    python launch/build_dataset.py --faces=sample --out=/tmp/occluded_faces
    python launch/build_dataset.py --faces=/data/UTKFace --out=/data/occ --size=256 --per_face=2

On Apache Beam (the Beam environment, `make beam-env`; docs/data.md "Beam"), pipeline options
after `--`:
    python launch/build_dataset.py --faces=DIR --out=OUT --runner=DirectRunner --workers=2
    python launch/build_dataset.py --faces=DIR --out=OUT --runner=FlinkRunner -- \
        --flink_master=HOST:8081 --environment_type=DOCKER --environment_config=IMAGE

See docs/data.md for the output layout and the flags.
"""

import functools
import os
import sys

# TensorFlow's start-up notes are noise here; set before anything imports it
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging

import launch
from data_pipeline import build

RUNNERS = ["DirectRunner", "DataflowRunner", "FlinkRunner", "SparkRunner", "PortableRunner"]

_FACES = flags.DEFINE_string("faces", None, "Folder of face photos (recursive), or 'sample'.")
_OUT = flags.DEFINE_string("out", None, "Output folder; created by a rename once complete.")
_SIZE = flags.DEFINE_integer("size", 256, "Side of the square face crops, in pixels.")
_PER_FACE = flags.DEFINE_integer("per_face", 1, "Occluded examples made from each face.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed: the same seed and inputs give the same dataset.")
_WORKERS = flags.DEFINE_integer(
    "workers", 0, "Processes that read and crop photos; 0 = one per CPU core, up to 8."
)
_ALIGN = flags.DEFINE_bool(
    "align", True, "Align faces to the template by their keypoints (--noalign: square crops)."
)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace a non-empty --out.")
_LIBRARY = flags.DEFINE_string(
    "occluders",
    build.occluders.LIBRARY_DIR,
    "Occluder library: one folder of RGBA PNGs per category.",
)
_RUNNER = flags.DEFINE_enum(
    "runner",
    None,
    RUNNERS,
    "Build on this Apache Beam runner (needs the Beam environment); pipeline options follow `--`. "
    "Unset: this machine, --workers processes.",
)
flags.mark_flags_as_required(["faces", "out"])


def beam_args(runner: str, extra: list[str], workers: int) -> list[str]:
    """Beam's pipeline options: the runner, what follows `--`, and for the DirectRunner without
    its own worker options, --workers processes (multi-processing)."""
    args = [f"--runner={runner}", *extra]
    if runner == "DirectRunner" and not any(a.startswith("--direct_") for a in extra):
        args += [f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]
    return args


def main(argv):
    if len(argv) > 1 and not _RUNNER.value:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)  # tfds logs every shard at INFO
    workers = _WORKERS.value or min(8, os.cpu_count() or 1)
    if _RUNNER.value:
        try:  # Beam is imported only when asked for: the default install has none
            from data_pipeline import beam_build
        except ImportError as e:
            print(
                f"error: --runner={_RUNNER.value} needs apache-beam ({e}); run it in the Beam "
                "environment: `make beam-env`, then .venv-beam/bin/python (docs/data.md, Beam)",
                file=sys.stderr,
            )
            return 1
        args = beam_args(_RUNNER.value, argv[1:], workers)
        build_dataset = functools.partial(beam_build.build_dataset, beam_args=args)
    else:
        build_dataset = functools.partial(build.build_dataset, workers=workers)
    try:
        summary = build_dataset(
            _FACES.value,
            _OUT.value,
            _SIZE.value,
            _PER_FACE.value,
            _SEED.value,
            library_dir=_LIBRARY.value,
            overwrite=_OVERWRITE.value,
            align=_ALIGN.value,
        )
    except build.BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(build.summarize(summary))
    return 0


def cli():
    """The `jaxinpaint-build-dataset` command."""
    launch.run(main, __doc__)


if __name__ == "__main__":
    cli()
