"""Exported models (launch/export.py) compute what the framework models compute, and reconstruct
runs from them with onnxruntime alone (serve/)."""

import ast
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from inpaint_tiny import REPO
from PIL import Image

from data_pipeline.compose import demo_photo
from detector import export as detector_export
from detector.predict import Detector
from jaxinpaint import export as generator_export
from jaxinpaint.inference import Inpainter
from jaxinpaint.reconstruct import Reconstructor
from serve.runtime import ExportedDetector, ExportedInpainter, onnx_session, optimized_path

HEAVY = ("jax", "jaxlib", "flax", "orbax", "optax", "torch", "torchvision", "tensorflow")


@pytest.fixture(scope="module")
def exported(tiny_export):
    """launch/export.py on the tiny inpainter and an untrained detector (conftest.py)."""
    return tiny_export


def test_generator_onnx_and_stablehlo_compute_the_jax_composite(exported, tiny_workdir):
    inpainter = Inpainter.from_workdir(str(tiny_workdir))
    assert inpainter.config.gen.coarse_fill == "biharmonic"  # its relaxation loop is exported too
    occluded, hole = generator_export.sample_inputs(inpainter.size, batch=3)
    reference = inpainter.inpaint_batch(occluded, hole)[1]

    onnx = ExportedInpainter(str(exported / "exported" / "generator.onnx"), inpainter.size)
    assert onnx.batch == 2
    out = onnx.inpaint_batch(occluded, hole)  # 3 faces: a full call, then a padded one
    assert out.shape == reference.shape
    assert np.abs(out - reference).max() <= 1e-4
    # The known pixels come back as they were: the composite keeps them.
    known = np.broadcast_to(hole == 0, out.shape)
    assert np.array_equal(np.round(out[known] * 255), occluded[known].astype(np.float32))

    blob = (exported / "exported" / "generator.stablehlo").read_bytes()
    stablehlo = jax.export.deserialize(bytearray(blob))
    for batch in (1, 3):  # any batch size
        out = np.asarray(stablehlo.call(occluded[:batch], hole[:batch]))
        assert np.abs(out - reference[:batch]).max() <= 1e-5

    with pytest.raises(ValueError, match="takes faces of"):
        ExportedInpainter(str(exported / "exported" / "generator.onnx"), 2 * inpainter.size)
    with pytest.raises(ValueError, match="works at"):
        onnx(occluded[0, 1:], hole[0, 1:, :, 0])


def test_a_broken_model_file_is_one_clear_error(tmp_path):
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="cannot be loaded as an ONNX model"):
        onnx_session(str(tmp_path / "broken.onnx"))
    with pytest.raises(FileNotFoundError, match=r"run launch/export\.py again"):
        onnx_session(str(tmp_path / "missing.onnx"))


def test_the_optimised_graph_is_saved_once_and_computes_the_same(exported, tmp_path, monkeypatch):
    import shutil
    import tempfile

    model = tmp_path / "generator.onnx"
    shutil.copy(exported / "exported" / "generator.onnx", model)
    saved = optimized_path(str(model))
    occluded, hole = generator_export.sample_inputs(32, batch=2)
    feed = {"occluded": occluded, "hole": hole}
    plain = onnx_session(str(model), keep_optimized=False).run(None, feed)[0]
    assert not os.path.exists(saved)
    first = onnx_session(str(model)).run(None, feed)[0]  # optimises, and saves the result
    written = os.stat(saved).st_mtime_ns
    again = onnx_session(str(model)).run(None, feed)[0]  # reads it, writes nothing
    assert os.stat(saved).st_mtime_ns == written
    np.testing.assert_array_equal(first, plain)
    np.testing.assert_array_equal(again, plain)
    assert sorted(os.listdir(tmp_path)) == sorted(["generator.onnx", os.path.basename(saved)])
    # A damaged file is made again; a changed model gets its own (the old one goes).
    with open(saved, "wb") as f:
        f.write(b"half a graph")
    np.testing.assert_array_equal(onnx_session(str(model)).run(None, feed)[0], plain)
    assert os.path.getsize(saved) > 1000
    os.utime(model, ns=(written, written + 10**9))
    assert optimized_path(str(model)) != saved
    onnx_session(str(model))
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["generator.onnx", os.path.basename(optimized_path(str(model)))]
    )
    # A folder nobody may write to loads as before (root may write anywhere: a refused file).
    os.remove(optimized_path(str(model)))

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path))

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    np.testing.assert_array_equal(onnx_session(str(model)).run(None, feed)[0], plain)
    assert os.listdir(tmp_path) == ["generator.onnx"]


def test_the_int8_generator_is_quantised_and_served_when_it_passed(exported, tmp_path):
    import shutil

    import onnx

    import serve

    folder = exported / "exported"
    ops = {n.op_type for n in onnx.load(str(folder / "generator.int8.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    occluded, hole = generator_export.sample_inputs(32, batch=2)
    float_ = ExportedInpainter(str(folder / "generator.onnx"), 32).inpaint_batch(occluded, hole)
    int8 = ExportedInpainter(str(folder / "generator.int8.onnx"), 32).inpaint_batch(occluded, hole)
    assert np.abs(int8 - float_).mean() < 0.02  # close, not equal: int8 arithmetic
    known = np.broadcast_to(hole == 0, int8.shape)
    np.testing.assert_array_equal(int8[known], float_[known])
    # Served when the export found it good enough, unless refused; else the float one.
    for default in (True, False):
        copy = tmp_path / str(default)
        shutil.copytree(folder, copy)
        manifest = json.loads((copy / "manifest.json").read_text())
        manifest["generator"]["int8"]["default"] = default
        (copy / "manifest.json").write_text(json.dumps(manifest))
        assert serve.load(str(copy)).int8 == default
        assert not serve.load(str(copy), int8=False).int8
        served = serve.load(str(copy)).inpainter.inpaint_batch(occluded, hole)
        np.testing.assert_array_equal(served, int8 if default else float_)


def test_detector_onnx_finds_what_pytorch_finds(exported):
    """The untrained detector keeps most of its 100 best boxes above the export's floor (0.01),
    so every head (boxes, classes, masks) is compared."""
    detector = Detector.from_checkpoint(exported / "model_final.pt")
    session = onnx_session(str(exported / "exported" / "detector.onnx"))
    photo, _ = demo_photo()
    # At another size than the model's (the export's own check was at its size): it resizes.
    face = np.asarray(Image.fromarray(photo[30:230, 150:330]).resize((70, 90)))
    image = face.transpose(2, 0, 1).astype(np.float32) / np.float32(255)
    reference = detector_export.raw_outputs(detector, image, 0.01)
    diffs = detector_export.differences(reference, session.run(None, {"image": image}))
    assert diffs["detections"] > 10
    assert diffs["box_px"] < 1e-2 and diffs["score"] < 1e-4
    assert diffs["mask_pixels"] < 1e-3

    # The serving wrapper: the same instances above a threshold, and their union.
    path = str(exported / "exported" / "detector.onnx")
    chosen = ("sunglasses", "hand")
    mask, found = ExportedDetector(
        path, input_size=detector.input_size, score_thresh=0.05, classes=chosen
    ).detect(face)
    assert all(f.score >= 0.05 and f.category in chosen for f in found)
    union = np.any([f.mask for f in found], axis=0) if found else np.zeros(mask.shape, bool)
    assert np.array_equal(mask.astype(bool), union) and mask.shape == face.shape[:2]
    with pytest.raises(ValueError, match=r"keeps detections down to 0\.3"):
        ExportedDetector(path, input_size=detector.input_size, score_thresh=0.1, score_floor=0.3)


def test_detector_differences_refuse_other_detections():
    boxes, masks = np.zeros((1, 4), np.float32), np.zeros((1, 1, 4, 4), np.float32)
    ours = [boxes, np.array([3]), np.array([0.9], np.float32), masks]
    theirs = [boxes, np.array([4]), np.array([0.9], np.float32), masks]
    with pytest.raises(ValueError, match=r"finds \[4\], PyTorch \[3\]"):
        detector_export.differences(ours, theirs)


def test_export_writes_checked_files_and_a_manifest(exported):
    folder = exported / "exported"
    names = sorted(os.listdir(folder))
    # The graphs as onnxruntime optimised them on this machine, saved by the export's check.
    assert names == sorted(
        [
            "detector.onnx",
            os.path.basename(optimized_path(str(folder / "detector.onnx"))),
            "generator.onnx",
            os.path.basename(optimized_path(str(folder / "generator.onnx"))),
            "generator.int8.onnx",
            os.path.basename(optimized_path(str(folder / "generator.int8.onnx"))),
            "generator.stablehlo",
            "manifest.json",
        ]
    )
    manifest = json.loads((folder / "manifest.json").read_text())
    gen, det = manifest["generator"], manifest["detector"]
    assert gen["size"] == 32 and gen["onnx_batch"] == 2
    assert max(gen["check"]["max_abs_difference"].values()) <= 1e-4
    assert det["size"] == 64 and det["score_thresh"] == 0.05 and det["score_floor"] == 0.01
    assert det["score"] == "occluder"
    assert len(det["classes"]) == 19
    assert det["check"]["detections"] > 0 and det["check"]["mask_pixels"] < 1e-3
    int8 = gen["int8"]
    assert int8["onnx"] == "generator.int8.onnx" and int8["calibration"]["split"] == "train"
    assert int8["check"]["split"] == "validation" and int8["check"]["examples"] == 32
    assert set(int8["check"]["int8"]) == {"psnr_hole", "lpips"}
    assert int8["check"]["ms"]["int8"] > 0 and int8["check"]["ms"]["float"] > 0
    # No temporary folder is left beside it.
    assert sorted(os.listdir(exported)) == ["exported", "inpainter", "model_final.pt"]


def reconstruct(*args):
    """launch/reconstruct.py in a fresh process; its output, then the heavy frameworks that
    process imported."""
    script = (
        "import runpy, sys\n"
        f"sys.argv = ['launch/reconstruct.py', *{list(args)!r}]\n"
        "try:\n"
        "    runpy.run_path('launch/reconstruct.py', run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    status = e.code\n"
        f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
        "print('imported frameworks:', heavy)\n"
        "sys.exit(status)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("imported frameworks:")]
    return proc.returncode, proc.stdout + proc.stderr, ast.literal_eval(line.split(":", 1)[1])


def test_reconstruct_from_the_export_imports_neither_jax_nor_torch(exported, tmp_path):
    photo, mask = demo_photo()
    Image.fromarray(photo).save(tmp_path / "photo.png")
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "mask.png")
    common = [f"--input={tmp_path / 'photo.png'}", f"--mask={tmp_path / 'mask.png'}"]

    status, out, heavy = reconstruct(  # the float generator: compared with JAX's below
        *common,
        f"--exported={exported / 'exported'}",
        f"--output={tmp_path / 'onnx.png'}",
        "--noint8",
    )
    assert status == 0, out
    assert heavy == [], f"the serving path imported {heavy}"
    # The JAX generator in this process, with the command's settings for a user mask.
    inpainter = Inpainter.from_workdir(str(exported / "inpainter"))
    align = inpainter.config.data.get("align", True)
    reconstructor = Reconstructor(inpainter, None, size=inpainter.size, dilate=0, align=align)
    jax_ = reconstructor(photo, mask).image
    onnx = np.asarray(Image.open(tmp_path / "onnx.png"), np.int16)
    assert np.abs(onnx - jax_).max() <= 1  # a rounding step at most
    assert (np.abs(onnx - photo).max(axis=-1) > 0).sum() > 100  # and it did inpaint

    # The exported detector as the mask source, with its details.
    status, out, heavy = reconstruct(
        f"--input={tmp_path / 'photo.png'}",
        f"--exported={exported / 'exported'}",
        f"--output={tmp_path / 'detector.png'}",
        "--details",
    )
    assert status == 0, out
    assert heavy == [], f"the serving path imported {heavy}"
    record = json.loads((tmp_path / "detector.png.details" / "record.json").read_text())
    assert record["mask"].endswith("detector.onnx")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--exported={export}", "--inpainter={inpainter}"], "one of the two"),
        (["--exported={missing}"], "manifest.json not found"),
        (["--exported={export}", "--detector=x.pt"], "holds its own detector"),
        (["--exported={export}", "--score=class"], "holds its own detector"),
        (["--exported={export}", "--score_thresh=0.001"], "keeps detections down to 0.01"),
    ],
)
def test_reconstruct_refuses_bad_export_arguments(exported, tmp_path, args, message):
    Image.fromarray(demo_photo()[0]).save(tmp_path / "photo.png")
    paths = {
        "export": exported / "exported",
        "inpainter": exported / "inpainter",
        "missing": tmp_path,
    }
    status, out, _ = reconstruct(
        f"--input={tmp_path / 'photo.png'}",
        f"--output={tmp_path / 'out.png'}",
        *(a.format(**paths) for a in args),
    )
    assert status == 1 and message in out and "Traceback" not in out, out
    assert not (tmp_path / "out.png").exists()
