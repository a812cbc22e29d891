import json
from pathlib import Path

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from jaxinpaint.evaluation.metrics import psnr, ssim
from jaxinpaint.fills import classical_inpaint


def random_images(seed, shape=(3, 40, 48, 3)):
    rng = np.random.default_rng(seed)
    a = rng.uniform(size=shape).astype(np.float32)
    b = np.clip(a + 0.2 * rng.standard_normal(shape), 0, 1).astype(np.float32)
    return a, b


def box_hole(shape, top=10, left=12, size=16):
    hole = np.zeros((*shape[:3], 1), np.float32)
    hole[:, top : top + size, left : left + size] = 1.0
    return hole


def test_identical_images():
    a, _ = random_images(0)
    hole = box_hole(a.shape)
    assert np.all(np.isinf(psnr(a, a))) and np.all(np.isinf(psnr(a, a, hole)))
    np.testing.assert_allclose(ssim(a, a), 1.0, rtol=1e-6)
    np.testing.assert_allclose(ssim(a, a, hole), 1.0, rtol=1e-6)


def test_known_noise_level_gives_known_psnr():
    a = np.full((2, 32, 32, 3), 0.5, np.float32)
    sign = np.where(np.indices(a.shape).sum(0) % 2 == 0, 1.0, -1.0).astype(np.float32)
    d = 0.05  # every pixel off by exactly d: MSE = d^2
    np.testing.assert_allclose(psnr(a, a + d * sign), 10 * np.log10(1 / d**2), rtol=1e-5)
    np.testing.assert_allclose(psnr(a * 255, (a + d * sign) * 255, data_range=255.0), 26.0206, 1e-5)


def test_hole_psnr_counts_only_the_hole():
    a, _ = random_images(1)
    hole = box_hole(a.shape)
    b = a + 0.1 * hole  # error only inside the hole
    np.testing.assert_allclose(psnr(a, b, hole), 20.0, rtol=1e-4)
    frac = hole.mean()
    np.testing.assert_allclose(psnr(a, b), 10 * np.log10(1 / (0.01 * frac)), rtol=1e-4)


def test_empty_hole_gives_nan():
    a, b = random_images(2)
    empty = np.zeros((*a.shape[:3], 1), np.float32)
    assert np.all(np.isnan(psnr(a, b, empty))) and np.all(np.isnan(ssim(a, b, empty)))


@pytest.mark.parametrize("seed", [3, 4])
def test_ssim_matches_scikit_image(seed):
    a, b = random_images(seed)
    ours = np.asarray(ssim(a, b))
    for i in range(a.shape[0]):
        want = structural_similarity(
            a[i],
            b[i],
            channel_axis=-1,
            data_range=1.0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
        np.testing.assert_allclose(ours[i], want, rtol=1e-4)


def test_ssim_over_hole_averages_the_full_map():
    a, b = random_images(5, shape=(1, 40, 48, 3))
    _, full = structural_similarity(
        a[0],
        b[0],
        channel_axis=-1,
        data_range=1.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        full=True,
    )
    hole = box_hole(a.shape)
    want = full[hole[0, ..., 0] > 0].mean()
    np.testing.assert_allclose(ssim(a, b, hole)[0], want, rtol=1e-4)


@pytest.mark.parametrize("method", ["telea", "ns", "harmonic", "biharmonic"])
def test_classical_baselines_fill_a_smooth_hole(method):
    yy, xx = np.mgrid[0:64, 0:64]
    image = np.stack([xx * 3, yy * 3, (xx + yy) * 2], -1).astype(np.uint8)
    hole = np.zeros((64, 64, 1), np.uint8)
    hole[24:36, 20:40] = 1
    damaged = image.copy()
    damaged[hole[..., 0] > 0] = 255
    filled = classical_inpaint(damaged, hole, method)
    keep = hole[..., 0] == 0
    np.testing.assert_array_equal(filled[keep], image[keep])
    err = np.abs(filled.astype(int) - image.astype(int))[~keep].mean()
    assert err < 8, f"{method} left a mean error of {err:.1f} on a linear ramp"
    assert np.abs(damaged.astype(int) - image.astype(int))[~keep].mean() > 50


def test_classical_baselines_reject_bad_input():
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="unknown inpainting method"):
        classical_inpaint(image, np.zeros((8, 8)), "patchmatch")
    with pytest.raises(ValueError, match="does not match"):
        classical_inpaint(image, np.zeros((4, 8)))
    with pytest.raises(ValueError, match="uint8 HxWx3"):
        classical_inpaint(image.astype(np.float32), np.zeros((8, 8)))


def test_report_buckets_and_files(tmp_path):
    from jaxinpaint.evaluation.report import aggregate, mask_ratio_bucket, write_report

    assert [mask_ratio_bucket(r) for r in (0.0, 0.099, 0.1, 0.35, 0.59, 0.75)] == [
        "0-10%",
        "0-10%",
        "10-20%",
        "30-40%",
        "40-60%",
        "60-100%",
    ]
    records = [
        dict(
            id=str(i),
            category="mask" if i % 2 else "cup",
            gender="female" if i < 2 else None,
            mask_ratio=0.05 + 0.1 * i,
            metrics={
                "model": {"psnr": 20.0 + i, "ssim_hole": float("nan") if i == 0 else 0.5},
                "telea": {"psnr": 10.0 + i, "ssim_hole": 0.25},
            },
        )
        for i in range(4)
    ]
    summary = aggregate(records)
    assert summary["overall"]["n"] == 4
    assert summary["overall"]["model"]["psnr"] == 21.5
    assert summary["overall"]["model"]["ssim_hole"] == 0.5  # the NaN is skipped
    assert list(summary["by_mask_ratio"]) == ["0-10%", "10-20%", "20-30%", "30-40%"]
    assert summary["by_category"]["mask"]["telea"]["psnr"] == 12.0
    assert summary["by_gender"] == {"female": summary["by_gender"]["female"]}
    assert summary["by_gender"]["female"]["n"] == 2
    json_path, md_path = write_report(summary, str(tmp_path))
    text = Path(md_path).read_text()
    assert "| 30-40% | 1 | telea | 13.00 | 0.250 |" in text
    assert json.loads(Path(json_path).read_text())["overall"]["n"] == 4


def test_the_fill_around_the_hole_is_the_whole_images_fill_for_a_fraction_of_the_work():
    from jaxinpaint.fills import smooth_fill, smooth_fill_around_hole

    yy, xx = np.mgrid[0:300, 0:400].astype(np.float32)
    image = np.stack([xx / 3, yy / 2, 100 + 50 * np.sin(xx / 40)], -1)
    hole = np.zeros((300, 400), bool)
    hole[140:160, 200:240] = True
    got = smooth_fill_around_hole(image, hole, "biharmonic", relax=200)
    np.testing.assert_array_equal(got[~hole], image[~hole])
    whole = smooth_fill(image, hole, "biharmonic", relax=200)
    assert np.abs(got[hole] - whole[hole]).mean() < 1.0  # levels, on a 0-255 scale
    assert np.abs(got[hole] - image[hole]).mean() < 2.0  # a smooth image is filled smoothly
    np.testing.assert_array_equal(
        smooth_fill_around_hole(image, np.zeros_like(hole), "harmonic", 20), image
    )
