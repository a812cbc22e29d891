"""Export the trained models to files that run without JAX or PyTorch.

    python launch/export.py --inpainter=runs/demo/inpainter \
        --detector=runs/demo/detector/model_final.pt --output=runs/demo/exported

writes (atomically: the folder appears whole or not at all)

    generator.onnx       the generator (ONNX, onnxruntime), weights inside
    generator.stablehlo  the same as serialized StableHLO (`jax.export`), any batch size
    detector.onnx        the Mask R-CNN (ONNX), when --detector is given
    manifest.json        sizes, thresholds, classes, sources, and the check below

and checks each file against the framework model before it keeps them: the generator on sample
faces (largest difference of the composite at most --tolerance), the detector on the demo's face
(same detections and classes; box, score and mask differences recorded). Then
`python launch/reconstruct.py --exported=runs/demo/exported ...` reconstructs with onnxruntime
alone (README, "Serving").
"""

import contextlib
import json
import os
import sys
import time

import numpy as np
from absl import flags, logging

import launch

FLAGS = flags.FLAGS
flags.DEFINE_string("inpainter", None, "Training workdir of the inpainter (launch/train.py).")
flags.DEFINE_enum(
    "checkpoint", "auto", ["auto", "best", "latest"], "Which of the workdir's checkpoints."
)
flags.DEFINE_string("detector", None, "Detector checkpoint (launch/train_detector.py), optional.")
flags.DEFINE_string("output", None, "Folder to write (replaced whole if it exists).")
flags.DEFINE_integer("onnx_batch", 1, "Faces per call of generator.onnx (reconstruct uses 1).")
flags.DEFINE_float(
    "score_floor", 0.05, "Lowest detector score the ONNX graph keeps (serving may go higher)."
)
flags.DEFINE_float("tolerance", 1e-4, "Largest composite difference allowed, in [0, 1] units.")
flags.mark_flags_as_required(["inpainter", "output"])

CHECK_FACES = 3  # sample faces for the generator's check: a block hole, a stroke, none


def sample_face(size: int) -> np.ndarray:
    """The demo photo's face (the astronaut, with sunglasses), a square at `size`."""
    import cv2
    from skimage import data

    from data_pipeline import faces
    from data_pipeline.compose import demo_photo

    x, y, w, h = faces.detect_faces(data.astronaut())[0]  # found without the sunglasses
    side = int(1.6 * max(w, h))
    x0, y0 = max(int(x + w / 2) - side // 2, 0), max(int(y + h / 2) - side // 2, 0)
    crop = demo_photo()[0][y0 : y0 + side, x0 : x0 + side]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def export_generator(folder: str) -> dict:
    import jax

    from jaxinpaint import export
    from jaxinpaint.inference import Inpainter
    from serve.runtime import ExportedInpainter

    inpainter = Inpainter.from_workdir(FLAGS.inpainter, checkpoint=FLAGS.checkpoint)
    start = time.perf_counter()
    paths = {kind: os.path.join(folder, f"generator.{kind}") for kind in ("onnx", "stablehlo")}
    with open(paths["onnx"], "wb") as f:
        f.write(export.to_onnx(inpainter, batch=FLAGS.onnx_batch))
    with open(paths["stablehlo"], "wb") as f:
        f.write(export.to_stablehlo(inpainter))
    seconds = time.perf_counter() - start

    occluded, hole = export.sample_inputs(inpainter.size, CHECK_FACES)
    reference = inpainter.inpaint_batch(occluded, hole)[1]
    with open(paths["stablehlo"], "rb") as f:
        stablehlo = jax.export.deserialize(bytearray(f.read()))
    outputs = {
        "onnx": ExportedInpainter(paths["onnx"], inpainter.size).inpaint_batch(occluded, hole),
        "stablehlo": np.asarray(stablehlo.call(occluded, hole)),
    }
    diffs = {kind: float(np.abs(out - reference).max()) for kind, out in outputs.items()}
    for kind, diff in diffs.items():
        if not diff <= FLAGS.tolerance:
            raise launch.UserError(
                f"generator.{kind} differs from the JAX generator by {diff:.3g} on the sample "
                f"faces (--tolerance={FLAGS.tolerance:g}); nothing was written"
            )
    return {
        "onnx": "generator.onnx",
        "stablehlo": "generator.stablehlo",
        "size": inpainter.size,
        "onnx_batch": FLAGS.onnx_batch,
        "align": bool(inpainter.config.data.get("align", True)),
        "coarse_fill": inpainter.coarse_fill,
        "inputs": {"occluded": "BxRxRx3 uint8", "hole": "BxRxRx1 uint8 0/1"},
        "output": "composite BxRxRx3 float32 in [0, 1]",
        "source": {"workdir": os.path.abspath(FLAGS.inpainter), "checkpoint": FLAGS.checkpoint},
        "check": {"faces": CHECK_FACES, "max_abs_difference": diffs},
        "export_seconds": round(seconds, 1),
    }


def export_detector(folder: str) -> dict:
    from data_pipeline.categories import CATEGORIES, category_id
    from detector import export
    from detector.predict import Detector
    from serve.runtime import onnx_session

    try:
        detector = Detector.from_checkpoint(FLAGS.detector, device="cpu")
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        raise launch.UserError(f"detector checkpoint {FLAGS.detector}: {e}") from None
    if not FLAGS.score_floor <= detector.score_thresh:
        raise launch.UserError(
            f"--score_floor={FLAGS.score_floor} is above the detector's threshold "
            f"{detector.score_thresh}: serving could not use its own default"
        )
    start = time.perf_counter()
    path = os.path.join(folder, "detector.onnx")
    with open(path, "wb") as f:
        f.write(export.to_onnx(detector, score_floor=FLAGS.score_floor))
    seconds = time.perf_counter() - start

    size = detector.model.transform.min_size[-1]
    image = sample_face(size).transpose(2, 0, 1).astype(np.float32) / np.float32(255.0)
    reference = export.raw_outputs(detector, image, FLAGS.score_floor)
    try:
        diffs = export.differences(reference, onnx_session(path).run(None, {"image": image}))
    except ValueError as e:
        raise launch.UserError(f"{e} on the demo face; nothing was written") from None
    return {
        "onnx": "detector.onnx",
        "size": size,
        "score_thresh": detector.score_thresh,
        "score": detector.score,
        "score_floor": FLAGS.score_floor,
        "classes": [c for c in CATEGORIES if category_id(c) in detector.class_ids],
        "input": "image 3xHxW float32 in [0, 1], RGB",
        "outputs": list(export.OUTPUT_NAMES),
        "source": {"checkpoint": os.path.abspath(FLAGS.detector)},
        "check": {"image": "the demo face", **diffs},
        "export_seconds": round(seconds, 1),
    }


def main(argv):
    logging.set_verbosity(logging.WARNING)  # Orbax logs every restore at INFO
    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 1
    from data_pipeline import atomic
    from serve.runtime import FORMAT, MANIFEST

    try:
        if FLAGS.onnx_batch < 1:
            raise launch.UserError(f"--onnx_batch must be at least 1, got {FLAGS.onnx_batch}")
        with atomic.folder(FLAGS.output) as folder:
            manifest = {"format": FORMAT, "generator": export_generator(folder)}
            manifest["detector"] = export_detector(folder) if FLAGS.detector else None
            manifest["versions"] = _versions()
            with open(os.path.join(folder, MANIFEST), "w") as f:
                json.dump(manifest, f, indent=2)
    except (FileNotFoundError, ValueError, launch.UserError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for name in sorted(os.listdir(FLAGS.output)):
        size = os.path.getsize(os.path.join(FLAGS.output, name))
        print(f"{os.path.join(FLAGS.output, name)}  {size / 2**20:.1f} MiB")
    checked = {k: v["check"] for k, v in manifest.items() if isinstance(v, dict) and "check" in v}
    print(f"checked: {json.dumps(checked)}")
    return 0


def _versions() -> dict:
    from importlib import metadata

    names = ("jaxinpaint", "jax", "jax2onnx", "torch", "torchvision", "onnx", "onnxruntime")
    found = {}
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def cli():
    """The `jaxinpaint-export` command."""
    launch.run(main, __doc__)


if __name__ == "__main__":
    cli()
