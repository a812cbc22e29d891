"""Guide faces (`data_pipeline.guide`): the mesh warp, the colour match, and a reference photo
guiding `Reconstructor`'s fill."""

import cv2
import numpy as np
import pytest
from skimage import data

from data_pipeline import compose, guide
from jaxinpaint.fills import smooth_fill
from jaxinpaint.reconstruct import Reconstructor


def test_triangles_cover_the_points_hull():
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 100, (40, 2)).astype(np.float32)
    tris = guide.triangles(points)
    assert tris.shape[1] == 3 and tris.min() >= 0 and tris.max() < len(points)
    corners = points[tris]
    a = corners[:, 1] - corners[:, 0]
    b = corners[:, 2] - corners[:, 0]
    area = 0.5 * np.abs(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]).sum()
    assert area == pytest.approx(cv2.contourArea(cv2.convexHull(points)), rel=1e-3)


def test_warp_by_a_shift_is_the_shifted_image():
    rng = np.random.default_rng(1)
    source = rng.uniform(0, 255, (80, 80, 3)).astype(np.float32)
    grid = np.stack(np.meshgrid(np.arange(10, 70, 8), np.arange(10, 70, 8)), -1).reshape(-1, 2)
    source_points = grid.astype(np.float32)
    target_points = source_points + np.float32([3, -2])  # the target sits 3 right, 2 up
    warped, valid = guide.warp(source, source_points, target_points, source.shape)
    assert valid.sum() > 0.5 * 60 * 60
    ys, xs = np.nonzero(valid)
    np.testing.assert_allclose(warped[ys, xs], source[ys + 2, xs - 3], atol=1e-3)


def test_colours_are_matched_over_the_given_pixels():
    rng = np.random.default_rng(2)
    target = rng.uniform(60, 200, (40, 40, 3)).astype(np.uint8)
    where = np.ones((40, 40), bool)
    matched = guide.match_colours(target.astype(np.float32) * 0.5 + 20, target, where)
    np.testing.assert_allclose(matched.mean((0, 1)), target.mean((0, 1)), atol=1.5)


@pytest.fixture(scope="module")
def sunglasses():
    photo, mask = compose.demo_photo()
    return data.astronaut(), photo, mask


def smooth_inpainter(face, hole):
    """An 'inpainter' that returns the smooth start itself: the model's correction is 0."""
    return np.clip(np.rint(smooth_fill(face, hole, "biharmonic")), 0, 255).astype(np.uint8)


smooth_inpainter.coarse_fill = "biharmonic"


def _hole_error(image, original, mask):
    return float(np.abs(image[mask].astype(np.float32) - original[mask]).mean())


def test_a_reference_brings_back_what_the_hole_hid(sunglasses):
    original, occluded, mask = sunglasses
    reconstructor = Reconstructor(smooth_inpainter, None, size=64, base_steps=200)
    plain = reconstructor(occluded, mask)
    # The ideal reference: the same face unoccluded. Its detail is the truth's.
    ref = guide.reference(original, "astronaut.png")
    guided = reconstructor(occluded, mask, references=[ref])
    (face,) = guided.faces
    assert (
        face.reference == "astronaut.png" and 0.6 < face.reference_cover < 0.9
    )  # eyes and brows, not the frame's arms
    np.testing.assert_array_equal(guided.hole, plain.hole)
    assert _hole_error(guided.image, original, mask) < 0.8 * _hole_error(
        plain.image, original, mask
    )


def test_a_reference_without_a_face_is_refused():
    with pytest.raises(ValueError, match=r"reference blank\.png: no face"):
        guide.reference(np.full((120, 120, 3), 128, np.uint8), "blank.png")
    with pytest.raises(ValueError, match="base 'none'"):
        Reconstructor(smooth_inpainter, None, size=64, base="none", references=[object()])


def test_reference_flag_takes_a_photo_or_the_usable_photos_of_a_folder(tmp_path, capsys):
    from PIL import Image

    from jaxinpaint.photo_files import PhotoError, load_references

    Image.fromarray(data.astronaut()).save(tmp_path / "astronaut.png")
    Image.fromarray(np.full((90, 90, 3), 128, np.uint8)).save(tmp_path / "blank.png")
    (tmp_path / "broken.jpg").write_bytes(b"not a photo")
    (ref,) = load_references(str(tmp_path))
    assert ref.name.endswith("astronaut.png")
    warnings = capsys.readouterr().err
    assert "blank.png: no face" in warnings and "broken.jpg" in warnings
    with pytest.raises(PhotoError, match="no usable reference"):
        load_references(str(tmp_path / "blank.png"))
    with pytest.raises(PhotoError, match="does not exist"):
        load_references(str(tmp_path / "nothing.png"))
