"""The full-resolution smooth base, solved (`jaxinpaint.fills.solve_smooth_fill`): the limit of
the relaxation it replaces, exact on functions its equation holds for, and the same on a crop
around the hole as on the whole image."""

import cv2
import numpy as np
import pytest

from jaxinpaint.fills import (
    BASE_TENSION,
    pushpull_fill,
    smooth_fill_around_hole,
    solve_smooth_fill,
)


def _smooth_image(h=32, w=40, seed=0):
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, (h, w, 3)).astype(np.float32)
    return cv2.GaussianBlur(noise, (0, 0), 3)


def test_the_solve_is_the_limit_of_the_relaxation():
    image = _smooth_image()
    hole = np.zeros(image.shape[:2], bool)
    hole[10:22, 12:24] = True
    hole[0:5, 30:36] = True  # a second hole at the image's edge (replicated there)
    for order, steps in ((1, 2000), (2, 10000)):
        got = solve_smooth_fill(image, hole, order)
        np.testing.assert_array_equal(got[~hole], image[~hole])
        relaxed = pushpull_fill(image, hole, steps, order)
        assert np.abs(got - relaxed)[hole].max() < 0.02, order  # grey levels of 255
        # A few relaxation steps are not there yet: the comparison can fail.
        assert np.abs(got - pushpull_fill(image, hole, 5, order))[hole].max() > 0.1


def test_the_solve_reproduces_what_its_equation_holds_for():
    yy, xx = np.mgrid[0:30, 0:34].astype(np.float64)
    hole = np.zeros((30, 34), bool)
    hole[8:22, 6:26] = True
    # Discretely harmonic (Δ = 0): a plane and x² - y²; biharmonic (Δ² = 0): any cubic.
    harmonic = 60 + 2 * xx - yy + 0.1 * (xx**2 - yy**2)
    cubic = 40 + 0.02 * xx**3 - 0.03 * xx * yy**2 + 0.2 * yy**2 + xx
    # With tension, (Δ² - τ²Δ)u = 0 holds for harmonic functions only.
    for truth, order, tension in (
        (harmonic, 1, 0),
        (cubic, 2, 0),
        (harmonic, 2, 0),
        (harmonic, 2, 1),
    ):
        image = np.repeat(truth[..., None], 3, -1).astype(np.float32)
        got = solve_smooth_fill(image, hole, order, tension)
        np.testing.assert_allclose(got[hole], image[hole], atol=1e-3)
    # A cubic is not harmonic: the Laplace fill and the tensioned one miss it (the checks above
    # can fail); the more tension, the nearer the harmonic fill.
    image = np.repeat(cubic[..., None], 3, -1).astype(np.float32)
    harmonic_fill = solve_smooth_fill(image, hole, 1)
    assert np.abs(harmonic_fill - image)[hole].max() > 1.0
    gaps = [
        np.abs(solve_smooth_fill(image, hole, 2, t) - harmonic_fill)[hole].mean()
        for t in (0.0, 0.1, 10.0)
    ]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 0.1 * gaps[0]


def test_the_solve_around_the_hole_is_the_whole_images_solve():
    image = _smooth_image(60, 80, seed=1)
    hole = np.zeros(image.shape[:2], bool)
    hole[20:35, 30:52] = True
    hole[50:60, 0:6] = True  # in the corner: the crop meets the image's edge
    for name, order, tension in (
        ("harmonic", 1, 0.0),
        ("biharmonic", 2, BASE_TENSION),
        ("pushpull", 1, 0.0),
    ):
        got = smooth_fill_around_hole(image, hole, name)
        np.testing.assert_allclose(got, solve_smooth_fill(image, hole, order, tension), atol=1e-3)
    # The relaxed base is still there for a number of steps.
    relaxed = smooth_fill_around_hole(image, hole, "biharmonic", relax=3)
    assert np.abs(relaxed - got)[hole].max() > 0.1
    np.testing.assert_array_equal(
        smooth_fill_around_hole(image, np.zeros_like(hole), "harmonic"), image
    )


def test_a_hole_without_known_pixels_and_bad_arguments():
    image = _smooth_image(8, 8)
    whole = solve_smooth_fill(image, np.ones((8, 8), bool), 2)
    assert np.isfinite(whole).all()  # push-pull's fill of nothing, no singular system
    with pytest.raises(ValueError, match="order"):
        solve_smooth_fill(image, np.ones((8, 8), bool), 3)
    with pytest.raises(ValueError, match="tension"):
        solve_smooth_fill(image, np.eye(8, dtype=bool), 1, 0.5)
    with pytest.raises(ValueError, match="smooth fill"):
        smooth_fill_around_hole(image, np.ones((8, 8), bool), "telea")
