"""A user's photo loads in any pixel format, upright; a file that is not a whole image does not."""

import cv2
import numpy as np
import pytest
from data_helpers import colour_photo, make_bad_files
from PIL import Image

from data_pipeline import images


def test_gray_palette_and_alpha_photos_become_rgb(tmp_path):
    gray = colour_photo(24)[..., 0]
    Image.fromarray(gray).save(tmp_path / "gray.png")
    np.testing.assert_array_equal(images.load_photo(tmp_path / "gray.png"), np.dstack([gray] * 3))

    palette = Image.new("P", (8, 4))
    palette.putpalette([255, 0, 0, 0, 0, 255])  # index 0 red, 1 blue
    palette.paste(1, (4, 0, 8, 4))
    palette.save(tmp_path / "palette.png")
    got = images.load_photo(tmp_path / "palette.png")
    np.testing.assert_array_equal(got[:, :4], np.broadcast_to([255, 0, 0], (4, 4, 3)))
    np.testing.assert_array_equal(got[:, 4:], np.broadcast_to([0, 0, 255], (4, 4, 3)))

    rgb = colour_photo(24, seed=1)
    alpha = np.zeros((24, 24), np.uint8)
    alpha[:, 12:] = 255
    Image.fromarray(np.dstack([rgb, alpha])).save(tmp_path / "rgba.png")
    got = images.load_photo(tmp_path / "rgba.png")
    assert (got[:, :12] == 255).all()  # transparent reads as white, not as the hidden colour
    np.testing.assert_array_equal(got[:, 12:], rgb[:, 12:])
    black = images.load_photo(tmp_path / "rgba.png", background=(0, 0, 0))
    assert (black[:, :12] == 0).all()

    Image.fromarray(np.dstack([gray, alpha]), "LA").save(tmp_path / "la.png")
    got = images.load_photo(tmp_path / "la.png")
    assert (got[:, :12] == 255).all()
    np.testing.assert_array_equal(got[:, 12:, 1], gray[:, 12:])


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg", quality=95)
    got = images.load_photo(tmp_path / "cmyk.jpg")
    assert got.shape == (16, 16, 3) and got.dtype == np.uint8
    np.testing.assert_allclose(got.reshape(-1, 3).mean(0), [255, 0, 0], atol=3)  # red


def test_16_bit_pngs_are_scaled_to_8_bits(tmp_path):
    levels = np.array([[0, 257 * 100, 65535, 257 * 7]], np.uint16)
    Image.fromarray(levels).save(tmp_path / "gray16.png")  # Pillow mode I;16
    got = images.load_photo(tmp_path / "gray16.png")
    np.testing.assert_array_equal(got[..., 0], [[0, 100, 255, 7]])
    np.testing.assert_array_equal(got[..., 0], got[..., 2])
    rgb48 = np.zeros((2, 3, 3), np.uint16)
    rgb48[..., 2] = 257 * 200  # OpenCV writes BGR: this is red
    cv2.imwrite(str(tmp_path / "rgb48.png"), rgb48)
    np.testing.assert_array_equal(images.load_photo(tmp_path / "rgb48.png")[0, 0], [200, 0, 0])


def test_exif_orientation_is_applied(tmp_path):
    landscape = np.zeros((20, 40, 3), np.uint8)
    landscape[:, :20] = (255, 0, 0)  # left half red, right half blue
    landscape[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned; show rotated 90° clockwise
    Image.fromarray(landscape).save(tmp_path / "turned.jpg", quality=95, exif=exif)
    got = images.load_photo(tmp_path / "turned.jpg")
    assert got.shape == (40, 20, 3)  # width and height swapped
    # A clockwise turn brings the left half to the top.
    np.testing.assert_allclose(got[4:16].reshape(-1, 3).mean(0), [255, 0, 0], atol=8)
    np.testing.assert_allclose(got[24:36].reshape(-1, 3).mean(0), [0, 0, 255], atol=8)


def test_broken_files_raise_one_clear_error_and_odd_formats_load(tmp_path):
    expected = make_bad_files(tmp_path)
    broken = {"zero.jpg", "html.jpg", "truncated.jpg", "bomb.png", "dangling.jpg"}
    for name, reason in expected.items():
        path = tmp_path / name
        if name not in broken:  # what curation skips for quality, a user's photo converts
            assert images.load_photo(path).shape[2] == 3, name
            continue
        with pytest.raises(images.SkipImage) as e:
            images.load_photo(path)
        assert e.value.reason == reason, name
        assert str(e.value).startswith(f"{path}: {reason}"), name
        if name != "bomb.png":
            assert "expected a" in str(e.value), name
