"""Export the trained models to files that run without JAX or PyTorch.

    python launch/export.py --inpainter=runs/demo/inpainter \
        --detector=runs/demo/detector/model_final.pt --output=runs/demo/exported

writes (atomically: the folder appears whole or not at all)

    generator.onnx       the generator (ONNX, onnxruntime), weights inside
    generator.int8.onnx  the same with its convolutions in int8 (--int8, the default), calibrated
                         on training faces; served when it met --int8_bar and is faster
    generator.stablehlo  the same as serialized StableHLO (`jax.export`), any batch size
    detector.onnx        the Mask R-CNN (ONNX), when --detector is given
    manifest.json        sizes, thresholds, classes, sources, and the check below

and checks each file against the framework model before it keeps them: the generator on sample
faces (largest difference of the composite at most --tolerance), the detector on the demo's face
(same detections and classes; box, score and mask differences recorded), the int8 generator
against the float one on --int8_faces examples of the validation faces (hole PSNR and LPIPS)
and in time per face on this CPU (recorded; `default`, served, when within --int8_bar of the
float one and at least 10 % faster). Then
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
flags.DEFINE_bool(
    "int8",
    True,
    "Also write generator.int8.onnx, its convolutions in int8 (onnxruntime static quantisation, "
    "calibrated on --int8_faces training examples).",
)
flags.DEFINE_integer(
    "int8_faces", 32, "Training examples to calibrate the int8 generator on, validation to check."
)
flags.DEFINE_list(
    "int8_bar",
    ["0.2", "0.005"],
    "Hole PSNR (dB) the int8 generator may lose and LPIPS it may gain against the float one on "
    "the validation examples and still be served by default.",
)
flags.mark_flags_as_required(["inpainter", "output"])

CHECK_FACES = 3  # sample faces for the generator's check: a block hole, a stroke, none
INT8_SPEEDUP = 0.9  # the int8 generator is served by default only below this share of the time


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
    entry = {
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
    if FLAGS.int8:
        entry["int8"] = export_int8(folder, inpainter, paths["onnx"])
    return entry


def int8_examples(config, split: str, count: int) -> dict[str, np.ndarray]:
    """`count` examples of `split`'s faces at the model's size: composited from the faces the
    config names, as training makes them (`jaxinpaint.generated_source`; a synthetic config's
    own images). A TFDS-trained model is calibrated on the same faces composited afresh."""
    from jaxinpaint import generated_source, input_pipeline

    if config.data.source == "synthetic":
        offset = {"train": 0, "validation": 10_000_000}[split]
        items = [
            input_pipeline.synthetic_example(config.data.seed, offset + i, config.image_size)
            for i in range(count)
        ]
    else:
        example = generated_source.example_fn(config, split)
        items = [example(i) for i in range(count)]
    return {k: np.stack([it[k] for it in items]) for k in ("occluded", "original", "mask")}


def export_int8(folder: str, inpainter, onnx_path: str) -> dict:
    """generator.int8.onnx beside the float graph, and how it scores against it."""
    from jaxinpaint import export
    from jaxinpaint.evaluation import metrics
    from jaxinpaint.evaluation.lpips import LPIPS
    from serve.runtime import ExportedInpainter

    start = time.perf_counter()
    batch = FLAGS.onnx_batch
    train = int8_examples(inpainter.config, "train", FLAGS.int8_faces)
    calibration = [
        (train["occluded"][i : i + batch], train["mask"][i : i + batch])
        for i in range(0, FLAGS.int8_faces - batch + 1, batch)
    ]
    path = os.path.join(folder, "generator.int8.onnx")
    with open(path, "wb") as f:
        f.write(export.to_int8_onnx(onnx_path, calibration))
    seconds = time.perf_counter() - start

    val = int8_examples(inpainter.config, "validation", FLAGS.int8_faces)
    target, hole = val["original"].astype(np.float32) / 255.0, val["mask"].astype(np.float32)
    lpips, scores = LPIPS(), {}
    for kind, model_path in (("float", onnx_path), ("int8", path)):
        out = ExportedInpainter(model_path, inpainter.size).inpaint_batch(
            val["occluded"], val["mask"]
        )
        scores[kind] = {
            "psnr_hole": float(np.mean(metrics.psnr(out, target, hole))),
            "lpips": float(np.mean(lpips(out, target))),
        }
    ms = _face_ms(
        {
            kind: ExportedInpainter(p, inpainter.size)
            for kind, p in (("float", onnx_path), ("int8", path))
        },
        val["occluded"][:batch],
        val["mask"][:batch],
    )
    lose_db, gain_lpips = (float(v) for v in FLAGS.int8_bar)
    # Served by default when as good as the float graph and faster on this CPU (on a small
    # model the quantise/dequantise pairs can cost what int8 convolutions save).
    default = (
        scores["int8"]["psnr_hole"] >= scores["float"]["psnr_hole"] - lose_db
        and scores["int8"]["lpips"] <= scores["float"]["lpips"] + gain_lpips
        and ms["int8"] < INT8_SPEEDUP * ms["float"]
    )
    return {
        "onnx": "generator.int8.onnx",
        "default": default,
        "calibration": {"split": "train", "examples": len(calibration) * batch},
        "check": {"split": "validation", "examples": FLAGS.int8_faces, **scores, "ms": ms},
        "bar": {"psnr_hole": -lose_db, "lpips": gain_lpips, "ms": INT8_SPEEDUP},
        "export_seconds": round(seconds, 1),
    }


def _face_ms(models: dict, occluded: np.ndarray, hole: np.ndarray, calls: int = 10) -> dict:
    """Median ms of one call of each model, calls alternating so that both see the same load."""
    times = {kind: [] for kind in models}
    for i in range(calls + 1):
        for kind, model in models.items():
            start = time.perf_counter()
            model.inpaint_batch(occluded, hole)
            if i:  # the first call of each warms it up
                times[kind].append(time.perf_counter() - start)
    return {kind: round(float(np.median(t)) * 1e3, 2) for kind, t in times.items()}


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
        if FLAGS.int8 and (FLAGS.int8_faces < FLAGS.onnx_batch or len(FLAGS.int8_bar) != 2):
            raise launch.UserError(
                f"--int8_faces must be at least --onnx_batch ({FLAGS.onnx_batch}), got "
                f"{FLAGS.int8_faces}; --int8_bar is two numbers (dB, LPIPS), got {FLAGS.int8_bar}"
            )
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
    if int8 := manifest["generator"].get("int8"):
        check = int8["check"]
        print(
            f"int8 generator on {check['examples']} validation examples: hole PSNR "
            f"{check['int8']['psnr_hole']:.2f} dB (float {check['float']['psnr_hole']:.2f}), "
            f"LPIPS {check['int8']['lpips']:.4f} (float {check['float']['lpips']:.4f})"
            + f"; {check['ms']['int8']:.1f} ms a face (float {check['ms']['float']:.1f}): "
            + ("served by default" if int8["default"] else "kept, not served by default")
        )
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
