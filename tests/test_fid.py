"""FID: our Flax FID Inception against pytorch-fid's network, and the Fréchet distance against
the `scipy.linalg.sqrtm` formula of pytorch-fid and closed forms. The real FID weights are a
download, so the networks are compared with the same random weights (running statistics
included)."""

import fid_reference
import numpy as np
import pytest
import scipy.linalg
import torch

from jaxinpaint.evaluation import fid
from jaxinpaint.evaluation.evaluate import evaluate


@pytest.fixture(scope="module")
def reference():
    return fid_reference.random_pytorch_fid_inception()


@pytest.fixture(scope="module")
def state_dict(reference):
    return fid_reference.weights_file_state_dict(reference)


@pytest.fixture(scope="module")
def features(state_dict):
    return fid.InceptionFeatures(state_dict, batch_size=2, source="random weights")


@pytest.mark.parametrize("size", [64, 331])  # upsampled and downsampled to 299
def test_features_match_pytorch_fid(reference, features, size):
    images = np.random.default_rng(size).random((2, size, size, 3), dtype=np.float32)
    with torch.no_grad():
        (ref,) = reference(torch.from_numpy(images).permute(0, 3, 1, 2))
    ref = ref.reshape(2, -1).numpy()
    ours = features(images)
    assert ours.shape == (2, fid.FEATURES)
    assert ref.std() > 0.01  # the random network has not collapsed
    np.testing.assert_allclose(ours, ref, rtol=1e-3, atol=1e-3 * np.abs(ref).max())


def test_uint8_images_and_ragged_batches(features):
    images = np.random.default_rng(1).integers(0, 256, (3, 48, 48, 3), dtype=np.uint8)
    whole = features(images)
    assert whole.shape == (3, fid.FEATURES)
    np.testing.assert_allclose(features(images[2:]), whole[2:], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(features(images.astype(np.float32) / 255), whole, rtol=1e-5)


def test_frechet_distance_matches_sqrtm_and_closed_form():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 200, 16))
    b = 1.5 * b + 0.3
    mu1, s1 = fid.gaussian_statistics(a)
    mu2, s2 = fid.gaussian_statistics(b)
    # pytorch-fid's formula (its own function passes `disp`, which SciPy 1.18 removed).
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    expected = diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
    assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)
    assert fid.fid(a, b) == pytest.approx(expected, rel=1e-9)
    assert fid.fid(a, a) == pytest.approx(0.0, abs=1e-8)
    # Diagonal covariances: sum((m1-m2)²) + sum((sqrt(v1) - sqrt(v2))²).
    m1, m2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    v1, v2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    closed = 5.0 + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    assert fid.frechet_distance(m1, np.diag(v1), m2, np.diag(v2)) == pytest.approx(closed)


def test_fid_with_fewer_samples_than_dimensions():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((5, 64)), 2.0 * rng.standard_normal((7, 64))  # singular
    by_statistics = fid.frechet_distance(*fid.gaussian_statistics(a), *fid.gaussian_statistics(b))
    assert fid.fid(a, b) == pytest.approx(by_statistics, rel=1e-6)  # sample space vs D×D
    assert fid.fid(a, a + 1.0) == pytest.approx(64.0, rel=1e-9)  # equal covariances: mean shift
    with pytest.raises(ValueError, match="at least 2 feature vectors"):
        fid.fid(a[:1], a)


def test_weights_errors_name_the_file_and_entry(state_dict, tmp_path):
    missing = {k: v for k, v in state_dict.items() if not k.startswith("Mixed_7c.branch_pool")}
    with pytest.raises(ValueError, match=r"w\.pth: missing .*Mixed_7c.*branch_pool"):
        fid.variables_from_state_dict(missing, "w.pth")
    wrong = dict(state_dict)
    wrong["Conv2d_1a_3x3.conv.weight"] = np.zeros((32, 3, 5, 5), np.float32)
    with pytest.raises(ValueError, match=r"Conv2d_1a_3x3.*shape \(5, 5, 3, 32\), expected"):
        fid.variables_from_state_dict(wrong, "w.pth")
    with pytest.raises(ValueError, match=r"unexpected entry 'encoder\.0\.weight'"):
        fid.variables_from_state_dict({**state_dict, "encoder.0.weight": np.zeros(3)}, "w.pth")
    with pytest.raises(FileNotFoundError, match=r"nope\.npz do not exist"):
        fid.load_state_dict_npz(tmp_path / "nope.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"bad\.npz are not a readable \.npz"):
        fid.load_state_dict_npz(bad)
    good = tmp_path / "good.npz"
    np.savez(good, **state_dict)
    assert fid.load_state_dict_npz(good).keys() == state_dict.keys()


def test_evaluate_reports_fid_per_method(features):
    rng = np.random.default_rng(3)
    examples = []
    for i in range(4):
        original = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        mask = np.zeros((32, 32, 1), np.uint8)
        mask[8:20, 6:22] = 1
        occluded = np.where(mask > 0, 0, original).astype(np.uint8)
        examples.append(
            {"id": str(i), "original": original, "occluded": occluded, "mask": mask, "category": 1}
        )
    lookup = {ex["occluded"].tobytes(): ex["original"] for ex in examples}

    def oracle(occluded, hole):  # returns the originals: FID 0 up to round-off
        del hole
        return np.stack([lookup[o.tobytes()] for o in occluded]).astype(np.float32) / 255

    result = evaluate(oracle, examples, fid_features=features, batch_size=4)
    assert set(result.fid) == {"model", "telea", "ns", "harmonic", "biharmonic"}
    assert result.fid["model"] == pytest.approx(0.0, abs=1e-2)
    assert result.fid["telea"] > 1.0
