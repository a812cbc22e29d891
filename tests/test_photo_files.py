"""A user's photo files through `jaxinpaint.photo_files` with a NumPy stand-in for the inpainter:
what is read as a photo or a mask, what is refused with one sentence, and what is written how."""

import os

import cv2
import numpy as np
import pytest
from PIL import ExifTags, Image, JpegImagePlugin
from skimage import data

from jaxinpaint import photo_files
from jaxinpaint.reconstruct import Reconstructor
from jaxinpaint.samples import write_image

GREEN = np.array([0, 255, 0], np.uint8)


def paint_green(face, hole):
    out = face.copy()
    out[hole] = GREEN
    return out


@pytest.fixture(scope="module")
def reconstructor():
    """Finds faces for real; 'inpaints' green at 64 px: seconds, no model."""
    return Reconstructor(paint_green, None, size=64, base="none")


def mouth_mask(shape=(512, 512)):
    """The astronaut's mouth."""
    mask = np.zeros(shape, np.uint8)
    mask[135:148, 212:238] = 255
    return mask


def test_metadata_the_format_cannot_hold_is_left_out_and_said(reconstructor, tmp_path):
    """70 KB of EXIF do not fit a JPEG's 64 KB segment: Pillow raised ValueError ("EXIF data is
    too long"), a traceback in single-photo mode."""
    exif = Image.Exif()
    exif[ExifTags.Base.ImageDescription] = "x" * 70_000
    Image.fromarray(data.astronaut()).save(tmp_path / "a.png", exif=exif.tobytes())
    Image.fromarray(mouth_mask()).save(tmp_path / "m.png")
    outcome, message, _ = photo_files.reconstruct_file(
        reconstructor, str(tmp_path / "a.png"), str(tmp_path / "a.jpg"), str(tmp_path / "m.png")
    )
    assert outcome == "done" and "written without its EXIF (EXIF data is too long)" in message
    with Image.open(tmp_path / "a.jpg") as im:
        assert im.format == "JPEG" and im.size == (512, 512) and not im.getexif()


def test_a_result_larger_than_its_format_holds_is_one_error(tmp_path):
    """WebP holds at most 16383 px a side: Pillow raised ValueError ("encoding error 5")."""
    with pytest.raises(ValueError, match=r"WEBP holds at most 16383 px a side.*18000x100"):
        write_image(tmp_path / "wide.webp", np.zeros((100, 18000, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []  # nothing half-written
    strip = np.random.default_rng(0).integers(0, 255, (100, 6000, 3), dtype=np.uint8)
    Image.fromarray(strip).save(tmp_path / "strip.png")
    Image.fromarray(np.zeros((100, 6000), np.uint8)).save(tmp_path / "strip_mask.png")
    with pytest.raises(photo_files.PhotoError, match=r"strip.webp cannot be written: WEBP"):
        photo_files.reconstruct_file(
            Reconstructor(paint_green, None, size=64),
            str(tmp_path / "strip.png"),
            str(tmp_path / "strip.webp"),
            str(tmp_path / "strip_mask.png"),
            panels="compare",  # 18000 px wide
        )
    assert not (tmp_path / "strip.webp").exists()


def _touch_images(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.new("RGB", (8, 8)).save(folder / name)


def test_masks_match_their_photo_by_stem_in_any_case_and_format(tmp_path):
    """Only `NAME_mask.png` was found: B_mask.PNG and c_mask.jpg were processed as photos and
    their photos went through the detector."""
    src = tmp_path / "in"
    names = "a.jpg a_mask.png B.png B_mask.PNG c.webp c_mask.jpg d.png D_MASK.bmp e.jpg"
    _touch_images(src, [*names.split(), "lone_mask.png", "f.png", "f_mask.png", "f_mask.tif"])
    folder = photo_files.plan_folder(str(src), str(tmp_path / "out"))
    masks = {os.path.basename(j.photo): j.mask and os.path.basename(j.mask) for j in folder.jobs}
    assert masks == {
        "a.jpg": "a_mask.png",
        "B.png": "B_mask.PNG",
        "c.webp": "c_mask.jpg",
        "d.png": "D_MASK.bmp",
        "e.jpg": None,
        "f.png": None,
    }
    (f,) = [j for j in folder.jobs if j.photo.endswith("f.png")]
    assert f.problem == "2 masks beside it (f_mask.png, f_mask.tif); expected one"
    assert [os.path.basename(m) for m in folder.lone_masks] == ["lone_mask.png"]


def test_tiff_is_a_photo_in_both_modes_and_an_empty_folder_is_an_error(reconstructor, tmp_path):
    """Folder mode listed no TIFF (0 photos, exit 0) while single-photo mode read one."""
    src = tmp_path / "in"
    src.mkdir()
    photo = data.astronaut()
    Image.fromarray(photo).save(src / "astro.TIFF")
    Image.fromarray(mouth_mask()).save(src / "astro_mask.tif")
    folder = photo_files.plan_folder(str(src), str(tmp_path / "out"))
    run = photo_files.reconstruct_folder(reconstructor, folder, log=lambda m: None)
    assert len(run.done) == 1 and not run.failed, run
    with Image.open(tmp_path / "out" / "astro.TIFF") as im:
        assert im.format == "TIFF"
        result = np.asarray(im)
    assert np.all(result[140, 220] == GREEN) and np.array_equal(result[:100], photo[:100])
    photo_files.check_photo_name(str(src / "astro.TIFF"))  # single-photo mode: the same list
    with pytest.raises(photo_files.PhotoError, match=r"not named as an image; .*\.tif, \.tiff"):
        photo_files.check_photo_name(str(tmp_path / "a.gif"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(photo_files.PhotoError, match=r"no photo in .*empty; expected files"):
        photo_files.plan_folder(str(tmp_path / "empty"), str(tmp_path / "out2"))
    _touch_images(tmp_path / "masks_only", ["a_mask.png"])
    with pytest.raises(photo_files.PhotoError, match=r"only 1 file\(s\) named as masks"):
        photo_files.plan_folder(str(tmp_path / "masks_only"), str(tmp_path / "out2"))


def test_colour_inverted_and_empty_masks_are_named(reconstructor, tmp_path):
    """A colour photo saved as a mask replaced 76 % of the face, an inverted mask (99 % white)
    was taken as it was, and a red-on-black mask (read as keep) said "no occluder found"."""
    photo = data.astronaut()
    Image.fromarray(photo).save(tmp_path / "astro.png")
    red = np.zeros_like(photo)
    red[135:148, 212:238, 0] = 255
    colour = r"is in colour \((\d+)% of its pixels that are not black\); expected black"
    masks = {
        "photo_mask.png": (photo, colour.replace("(\\d+)", "\\d+")),
        "inverted.png": (255 - mouth_mask(), r"marks 100% of the photo for removal; .*inverted"),
        "red.png": (red, colour.replace("(\\d+)", "100")),
    }
    for name, (pixels, message) in masks.items():
        Image.fromarray(pixels).save(tmp_path / name)
        with pytest.raises(photo_files.PhotoError, match=rf"mask .*{name} {message}"):
            photo_files.read_mask(str(tmp_path / name))
    Image.fromarray(mouth_mask() // 4).save(tmp_path / "dark.png")  # gray, below halfway
    outcome, message, _ = photo_files.reconstruct_file(
        reconstructor,
        str(tmp_path / "astro.png"),
        str(tmp_path / "out.png"),
        str(tmp_path / "dark.png"),
    )
    assert outcome == "skipped" and "dark.png marks nothing (no pixel brighter than 127" in message
    assert not photo_files.read_mask(str(tmp_path / "dark.png")).any()


def _outside(mask, pixels):
    """The photo's pixels farther than `pixels` from the mask."""
    return cv2.dilate(mask, np.ones((2 * pixels + 1,) * 2, np.uint8)) == 0


def test_unchanged_photos_are_copied_and_jpegs_keep_their_encoding(reconstructor, tmp_path):
    """A JPEG "written unchanged" was re-encoded (a third of its pixels changed, the file grew)
    and a reconstructed JPEG was written at quality 95 whatever its own was (231,539 of 262,144
    pixels outside the hole changed)."""
    photo = data.astronaut()
    Image.fromarray(photo).save(tmp_path / "astro.jpg", quality=80)  # 4:2:0 by default
    Image.fromarray(mouth_mask()).save(tmp_path / "mask.png")
    Image.fromarray(np.zeros((512, 512), np.uint8)).save(tmp_path / "empty.png")

    def reconstruct(dst, mask="mask.png", src="astro.jpg"):
        return photo_files.reconstruct_file(
            reconstructor, str(tmp_path / src), str(tmp_path / dst), str(tmp_path / mask)
        )

    assert reconstruct("same.jpg", mask="empty.png")[0] == "skipped"
    assert (tmp_path / "same.jpg").read_bytes() == (tmp_path / "astro.jpg").read_bytes()
    outcome, message, result = reconstruct("out.jpg")
    assert outcome == "done" and "JPEG changes" not in message
    with Image.open(tmp_path / "astro.jpg") as src, Image.open(tmp_path / "out.jpg") as out:
        assert out.quantization == src.quantization
        assert JpegImagePlugin.get_sampling(out) == JpegImagePlugin.get_sampling(src) == 2
        before, after = np.asarray(src).astype(int), np.asarray(out).astype(int)
    assert np.all(after[140, 220] - [0, 255, 0] < 60)  # green, near enough
    far = _outside(result.hole.astype(np.uint8), 3 + 8)  # the seam, then one JPEG block
    changed = np.any(before != after, axis=-1)[far]
    assert changed.mean() < 0.25  # JPEG rounding; 44 % at quality 95
    # A lossless photo: its JPEG at the highest quality, with a word; WebP and TIFF lossless.
    Image.fromarray(photo).save(tmp_path / "astro.png")
    outcome, message, result = reconstruct("png.jpg", src="astro.png")
    assert "JPEG changes pixels outside the hole; a .png output keeps them" in message
    with Image.open(tmp_path / "png.jpg") as out:
        assert all(max(t) == 1 for t in out.quantization.values())  # quality 100
        assert JpegImagePlugin.get_sampling(out) == 0  # 4:4:4
    far = _outside(result.hole.astype(np.uint8), 3)
    for name in ("png.webp", "png.tif"):
        reconstruct(name, src="astro.png")
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / name))[far], photo[far])


def test_the_input_photo_is_no_output_unless_overwrite(tmp_path):
    """--input=x.png --output=x.png replaced the original silently (folder mode refused it)."""
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    (tmp_path / "link.png").symlink_to(tmp_path / "x.png")
    for out in ("x.png", "link.png", "./x.png"):
        with pytest.raises(photo_files.PhotoError, match=r"is the --input photo: .*--overwrite"):
            photo_files.check_output(str(tmp_path / "x.png"), str(tmp_path / out))
    photo_files.check_output(str(tmp_path / "x.png"), str(tmp_path / "x.png"), overwrite=True)
    photo_files.check_output(str(tmp_path / "x.png"), str(tmp_path / "y.png"))
    with pytest.raises(photo_files.PhotoError, match=r"is the --input folder: .*--overwrite"):
        photo_files.plan_folder(str(tmp_path), str(tmp_path))
    folder = photo_files.plan_folder(str(tmp_path), str(tmp_path), overwrite=True)
    assert [j.output for j in folder.jobs] == [str(tmp_path / "link.png"), str(tmp_path / "x.png")]


def test_a_folder_of_odd_inputs_finishes_with_one_line_per_failure(tmp_path):
    """The issue's inputs in one folder: each photo done, skipped or failed with its reason."""
    src, rng = tmp_path / "in", np.random.default_rng(0)
    src.mkdir()

    def pair(name, shape, mask=None, mask_name=None, **save):
        Image.fromarray(rng.integers(0, 255, (*shape, 3), np.uint8)).save(src / name, **save)
        if mask is None:
            mask = np.zeros(shape, np.uint8)
            mask[shape[0] // 3 : shape[0] // 2 + 1, shape[1] // 3 : shape[1] // 2 + 1] = 255
        stem = os.path.splitext(name)[0]
        Image.fromarray(mask).save(src / (mask_name or f"{stem}_mask.png"))

    pair("a.png", (64, 64))
    pair("B.png", (64, 64), mask_name="B_mask.PNG")
    pair("c.tif", (64, 64), mask_name="c_mask.jpg")
    pair("thin.png", (1, 2048))
    pair("colour.png", (64, 64), mask=rng.integers(0, 255, (64, 64, 3), np.uint8))
    pair("inverted.png", (64, 64), mask=np.full((64, 64), 255, np.uint8))
    pair("empty.jpg", (64, 64), mask=np.zeros((64, 64), np.uint8), quality=90)
    pair("two.png", (64, 64))
    Image.new("L", (64, 64)).save(src / "two_mask.bmp")
    pair("broken.jpg", (64, 64))
    (src / "broken.jpg").write_bytes((src / "broken.jpg").read_bytes()[:300])
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), np.uint8)).save(src / "alone.png")
    Image.new("L", (64, 64)).save(src / "lone_mask.png")
    folder = photo_files.plan_folder(str(src), str(tmp_path / "out"))
    run = photo_files.reconstruct_folder(
        Reconstructor(paint_green, None, size=64), folder, log=lambda m: None
    )
    assert len(run.done) == 4 and len(run.skipped) == 1 and len(run.failed) == 5, run
    summary = run.summary(str(src), str(tmp_path / "out"), with_masks=8)
    assert f"10 photos in {src} (8 with their own mask): 4 done, 1 skipped" in summary
    for line in [
        f"skipped {src / 'empty.jpg'}: the mask {src / 'empty_mask.png'} marks nothing",
        f"failed {src / 'colour.png'}: mask {src / 'colour_mask.png'} is in colour",
        f"failed {src / 'inverted.png'}: mask {src / 'inverted_mask.png'} marks 100% of",
        f"failed {src / 'two.png'}: 2 masks beside it (two_mask.bmp, two_mask.png)",
        f"failed {src / 'broken.jpg'}: truncated or corrupt image",
        f"failed {src / 'alone.png'}: no mask beside it (alone_mask.png or another format)",
        f"not used {src / 'lone_mask.png'}: named as a mask",
    ]:
        assert sum(ln.strip().startswith(line) for ln in summary.splitlines()) == 1, line
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["B.png", "a.png", "c.tif", "empty.jpg", "thin.png"]
    assert (tmp_path / "out" / "empty.jpg").read_bytes() == (src / "empty.jpg").read_bytes()
