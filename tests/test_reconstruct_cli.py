"""launch/reconstruct.py end to end with a tiny trained inpainter and a user mask, or an untrained
detector over a folder (its photos hold no face, so it is never asked; only loaded)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from inpaint_tiny import REPO
from PIL import ExifTags, Image, ImageCms
from skimage import data


@pytest.fixture(scope="module")
def inpainter_workdir(tiny_workdir):
    return tiny_workdir


def noise(shape, seed=0):
    """A photo in which no face is found: written unchanged, without asking the detector."""
    return np.random.default_rng(seed).integers(0, 255, shape, dtype=np.uint8)


def run(*args, env=None):
    proc = subprocess.run(
        [sys.executable, "launch/reconstruct.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc.returncode, proc.stdout + proc.stderr


def camera_metadata(orientation=1):
    """Pillow `save` arguments of a camera JPEG: an sRGB profile and EXIF with a make."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make], exif[ExifTags.Base.Orientation] = "Canon", orientation
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return {"exif": exif.tobytes(), "icc_profile": icc}


def assert_kept_metadata(path, source):
    """`path` keeps `source`'s profile and EXIF, with the orientation upright."""
    with Image.open(path) as im:
        exif = im.getexif()
        assert im.info.get("icc_profile") == source["icc_profile"]
    assert exif[ExifTags.Base.Make] == "Canon" and exif[ExifTags.Base.Orientation] == 1


def test_photo_with_a_mask_file_is_reconstructed(inpainter_workdir, tmp_path):
    photo = data.astronaut()
    metadata = camera_metadata()
    Image.fromarray(photo).save(tmp_path / "photo.jpg", quality=95, **metadata)
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[135:148, 212:238] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    out = tmp_path / "out" / "result.png"
    rc, log = run(
        f"--input={tmp_path / 'photo.jpg'}",
        f"--mask={tmp_path / 'mask.png'}",
        f"--inpainter={inpainter_workdir}",
        f"--output={out}",
        "--compare",
        "--details",
    )
    assert rc == 0, log
    assert "reconstructed 1 of 1 face(s)" in log
    result = np.asarray(Image.open(out))
    assert result.shape == (512, 1536, 3)
    assert_kept_metadata(out, metadata)
    src = np.asarray(Image.open(tmp_path / "photo.jpg"))
    np.testing.assert_array_equal(result[:, :512], src)
    for panel in (result[:, 512:1024], result[:, 1024:]):  # ours, then OpenCV's Telea
        changed = np.any(panel != src, axis=-1)
        assert changed[135:148, 212:238].mean() > 0.9 and not changed[:100].any()
    assert np.any(result[:, 512:1024] != result[:, 1024:])
    # --details: the replaced pixels are the mask (a user mask is exact), its outline drawn on
    # the photo, each face before and after, and the record.
    details = tmp_path / "out" / "result.png.details"
    np.testing.assert_array_equal(np.asarray(Image.open(details / "mask.png")) > 0, mask > 0)
    overlay = np.asarray(Image.open(details / "overlay.png"))
    assert np.all(overlay[135, 212:238] == 255) and np.all(overlay[:60] == src[:60])
    record = json.loads((details / "record.json").read_text())
    assert record["replaced_pixels"] == int((mask > 0).sum()) and record["size_wh"] == [512, 512]
    assert record["mask"] == str(tmp_path / "mask.png")
    assert record["seconds"]["total"] >= record["seconds"]["inpaint"] > 0
    (face,) = record["faces"]
    assert face["inpainted"] and face["aligned"] and 0 < face["hole_fraction"] < 0.2
    assert face["detections"] == []  # a user's mask, not the detector's
    before, after = (
        np.asarray(Image.open(details / "faces" / f"0_{k}.png")) for k in ("before", "after")
    )
    assert before.shape == after.shape and np.any(before != after)


def test_an_empty_mask_is_written_unchanged_with_a_message(inpainter_workdir, tmp_path):
    photo = noise((96, 128, 3))
    Image.fromarray(photo).save(tmp_path / "noise.png")
    mask = np.zeros((96, 128), np.uint8)  # an empty mask: nothing to remove
    Image.fromarray(mask).save(tmp_path / "mask.png")
    out = tmp_path / "noise_out.png"
    rc, log = run(
        f"--input={tmp_path / 'noise.png'}",
        f"--mask={tmp_path / 'mask.png'}",
        f"--inpainter={inpainter_workdir}",
        f"--output={out}",
    )
    assert rc == 0 and "mask.png marks nothing (no pixel brighter than 127" in log, log
    np.testing.assert_array_equal(np.asarray(Image.open(out)), photo)


def test_bad_inputs_fail_cleanly_without_output(inpainter_workdir, tmp_path):
    (tmp_path / "not_a_photo.jpg").write_text("<html>hello</html>")
    out = tmp_path / "never.png"
    rc, log = run(
        f"--input={tmp_path / 'not_a_photo.jpg'}",
        f"--mask={tmp_path / 'not_a_photo.jpg'}",
        f"--inpainter={inpainter_workdir}",
        f"--output={out}",
    )
    assert rc == 1 and "is not a readable image" in log, log
    Image.fromarray(data.astronaut()).save(tmp_path / "photo.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "small_mask.png")
    for args, code, message in [
        (
            [f"--input={tmp_path / 'not_a_photo.jpg'}", f"--mask={tmp_path / 'small_mask.png'}"],
            2,
            "not an image",
        ),
        (
            [f"--input={tmp_path / 'photo.png'}", f"--mask={tmp_path / 'small_mask.png'}"],
            1,
            "small_mask.png is 8x8 px but the photo",
        ),
        (
            [f"--input={tmp_path / 'missing.jpg'}", f"--mask={tmp_path / 'small_mask.png'}"],
            1,
            "does not exist",
        ),
        ([f"--input={tmp_path / 'photo.png'}"], 1, "give --detector"),
    ]:
        rc, log = run(*args, f"--inpainter={inpainter_workdir}", f"--output={out}")
        assert rc == code and message in log, log
    gif = tmp_path / "never.gif"
    rc, log = run(f"--input={tmp_path / 'photo.png'}", f"--inpainter={tmp_path}", f"--output={gif}")
    assert rc == 1 and "never.gif must end in .png, .jpg" in log, log  # before loading models
    rc, log = run(
        f"--input={tmp_path / 'photo.png'}",
        f"--mask={tmp_path / 'small_mask.png'}",
        f"--inpainter={tmp_path}",
        f"--output={out}",
    )
    assert rc == 1 and "config.json not found" in log, log
    assert not out.exists() and not gif.exists()
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]


def test_gray_16_bit_photo_with_a_transparent_mask(inpainter_workdir, tmp_path):
    photo = noise((96, 128)).astype(np.uint16) * 257  # 16-bit grayscale: refused by curation
    Image.fromarray(photo).save(tmp_path / "photo16.png")
    mask = np.zeros((96, 128, 4), np.uint8)
    mask[..., :3] = 255  # white everywhere, but only the square is opaque: the rest is keep
    mask[40:56, 60:76, 3] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    out = tmp_path / "out.png"
    rc, log = run(
        f"--input={tmp_path / 'photo16.png'}",
        f"--mask={tmp_path / 'mask.png'}",
        f"--inpainter={inpainter_workdir}",
        f"--output={out}",
    )
    assert rc == 0 and "no face found; the mask's 256 px filled smoothly" in log, log
    result = np.asarray(Image.open(out))
    assert result.shape == (96, 128, 3)
    changed = np.any(result != (photo // 257)[..., None].astype(np.uint8), axis=-1)
    assert changed[40:56, 60:76].mean() > 0.9
    changed[32:64, 52:84] = False  # the hole and its feathered seam
    assert not changed.any()


def run_folder(src, out, detector_checkpoint, inpainter_workdir):
    return run(
        f"--input={src}",
        f"--output={out}",
        f"--detector={detector_checkpoint}",
        f"--inpainter={inpainter_workdir}",
        "--device=cpu",
    )


def test_folder_goes_on_past_bad_photos_and_names_them(
    detector_checkpoint, inpainter_workdir, tmp_path
):
    src, out = tmp_path / "photos", tmp_path / "out"
    (src / "sub").mkdir(parents=True)
    good, gray = noise((96, 128, 3)), noise((96, 128), seed=1)
    Image.fromarray(good).save(src / "good.png")
    Image.fromarray(gray).save(src / "gray.png")  # the curation loader refuses grayscale
    Image.fromarray(good).save(src / "full.jpg", quality=95)
    data = (src / "full.jpg").read_bytes()
    (src / "full.jpg").unlink()
    (src / "bad.jpg").write_bytes(data[: len(data) // 2])
    Image.fromarray(good).save(src / "sub" / "blocked.png")
    (out / "sub" / "blocked.png").mkdir(parents=True)  # its output cannot be written
    rc, log = run_folder(src, out, detector_checkpoint, inpainter_workdir)
    assert rc == 2, log
    summary = log[log.index(f"4 photos in {src}") :]
    assert "0 done, 2 skipped (written unchanged), 2 failed" in summary, log
    assert f"failed {src / 'bad.jpg'}: truncated or corrupt image" in summary, log
    assert f"failed {src / 'sub' / 'blocked.png'}: not written to" in summary, log
    assert f"skipped {src / 'gray.png'}: no face found" in summary, log
    np.testing.assert_array_equal(np.asarray(Image.open(out / "good.png")), good)
    assert (out / "gray.png").read_bytes() == (src / "gray.png").read_bytes()  # not re-encoded
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["good.png", "gray.png"]


def test_folder_outputs_of_same_named_photos_do_not_collide(
    detector_checkpoint, inpainter_workdir, tmp_path
):
    src = tmp_path / "photos"
    out = src / "out"  # inside the input: earlier outputs there are not inputs again
    out.mkdir(parents=True)
    Image.fromarray(noise((96, 128, 3), seed=2)).save(src / "a.jpg", quality=95)
    Image.fromarray(noise((96, 128, 3), seed=3)).save(src / "a.png")
    Image.fromarray(noise((96, 128, 3), seed=4)).save(out / "earlier.png")
    rc, log = run_folder(src, out, detector_checkpoint, inpainter_workdir)
    assert rc == 0 and f"2 photos in {src}: 0 done, 2 skipped" in log, log
    assert Image.open(out / "a.jpg").format == "JPEG" and Image.open(out / "a.png").format == "PNG"
    np.testing.assert_array_equal(np.asarray(Image.open(out / "a.png")), noise((96, 128, 3), 3))
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "a.png", "earlier.png"]
    # The input folder itself is refused as the output: it would overwrite the photos.
    rc, log = run_folder(src, src, detector_checkpoint, inpainter_workdir)
    assert rc == 1 and "is the --input folder" in log, log


def test_folder_of_photos_with_their_masks_lama_convention(inpainter_workdir, tmp_path):
    """a.jpg + a_mask.png: reconstructed with that mask, without a detector; the JPEG stays a
    JPEG with its EXIF (turned upright) and profile; a photo with no mask fails by name."""
    src, out = tmp_path / "photos", tmp_path / "out"
    src.mkdir()
    upright = data.astronaut()
    metadata = camera_metadata(orientation=6)  # shown turned 90 degrees clockwise
    Image.fromarray(np.rot90(upright)).save(src / "astro.jpg", quality=95, **metadata)
    mask = np.zeros(upright.shape[:2], np.uint8)
    mask[135:148, 212:238] = 255  # the mouth of the upright photo
    Image.fromarray(mask).save(src / "astro_mask.png")
    Image.fromarray(noise((96, 128, 3))).save(src / "alone.png")
    # Without a cache folder of their own, the launchers keep JAX's compiled programs in the
    # user's cache folder (tests otherwise share one session cache, conftest.py).
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    env.update(XDG_CACHE_HOME=str(tmp_path / "xdg"), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    rc, log = run(
        f"--input={src}",
        f"--output={out}",
        f"--inpainter={inpainter_workdir}",
        "--details",
        env=env,
    )
    assert rc == 2, log
    assert any(p.name.startswith("jit_generate") for p in (tmp_path / "xdg").rglob("*")), log
    summary = log[log.index(f"2 photos in {src} (1 with their own mask)") :]
    assert "1 done, 0 skipped (written unchanged), 1 failed" in summary, log
    assert f"failed {src / 'alone.png'}: no mask beside it (alone_mask.png or another" in log
    assert sorted(p.name for p in out.iterdir()) == ["astro.jpg", "astro.jpg.details"]
    record = json.loads((out / "astro.jpg.details" / "record.json").read_text())
    assert record["mask"] == str(src / "astro_mask.png")  # its own mask, no detector named
    assert Image.open(out / "astro.jpg").format == "JPEG"
    assert_kept_metadata(out / "astro.jpg", metadata)
    result = np.asarray(Image.open(out / "astro.jpg")).astype(int)
    assert np.abs(result[:100] - upright[:100]).mean() < 3  # upright, and untouched there
    assert np.abs(result[135:148, 212:238] - upright[135:148, 212:238]).mean() > 10
    # Without --detector, a folder with no masks at all is refused before any work.
    (src / "astro_mask.png").unlink()
    rc, log = run(f"--input={src}", f"--output={out}", f"--inpainter={inpainter_workdir}")
    assert rc == 1 and "no photo in" in log and "give --detector" in log, log


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--dilate=-1", "-1 is not a non-negative integer"),
        ("--feather=-2", "-2 is not a non-negative integer"),
        ("--grow=-3", "-3 is not a non-negative integer"),
        ("--score_thresh=1.5", "1.5 is not a number in the range [0.0, 1.0]"),
        ("--score_thresh=-1", "-1.0 is not a number in the range [0.0, 1.0]"),
    ],
)
@pytest.mark.parametrize("model", ["--inpainter", "--exported"])
def test_flags_out_of_range_are_refused_before_any_model_loads(tmp_path, flag, message, model):
    """Negative --dilate/--feather/--grow loaded the models, then raised the Reconstructor's
    ValueError as a traceback; --score_thresh=1.5 found nothing and -1 kept every detection on
    the JAX path (the export refused it only once loaded)."""
    Image.fromarray(noise((32, 32, 3))).save(tmp_path / "photo.png")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    rc, log = run(
        f"--input={tmp_path / 'photo.png'}",
        f"--output={tmp_path / 'out.png'}",
        f"{model}={tmp_path / 'no_model'}",  # never read: the flags are refused first
        flag,
        env=env,
    )
    assert rc == 1 and f"flag {flag}: {message}" in log and "Traceback" not in log, log
    assert not (tmp_path / "out.png").exists()
