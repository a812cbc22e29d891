"""pytorch-fid's FID Inception with seeded random weights: the real weights are a download, so
tests compare networks and exercise weight files with these."""

import pytest
import torch
import torchvision
from pytorch_fid import inception as pf_inception

# The weights file's top-level names, in pytorch-fid's forward order (`blocks.N.M` there).
LAYER_NAMES = (
    *("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3"),
    *("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d"),
    *("Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"),
)


def random_pytorch_fid_inception(seed: int = 0) -> torch.nn.Module:
    """pytorch-fid's InceptionV3 (FID variant, pool3 output) in eval mode, random weights."""
    # fid_inception_v3() loads the downloaded weights into the model; keep the random init.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pf_inception, "load_state_dict_from_url", lambda *a, **k: None)
        mp.setattr(torchvision.models.Inception3, "load_state_dict", lambda self, sd: None)
        model = pf_inception.InceptionV3([3]).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith(("weight", "running_var")) and t.ndim == 1:  # BN scale, variance
                t.copy_(0.5 + torch.rand(t.shape, generator=gen))
            elif t.ndim == 1:  # BN shift, mean
                t.copy_(0.1 * torch.randn(t.shape, generator=gen))
            else:  # conv kernels, scaled to keep activations O(1) through ~90 layers
                fan_in = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
    return model


def weights_file_state_dict(model: torch.nn.Module) -> dict:
    """The model's weights under the names of `pt_inception-2015-12-05-*.pth`, as NumPy."""
    pools = (torch.nn.MaxPool2d, torch.nn.AdaptiveAvgPool2d)
    layers = [m for block in model.blocks for m in block if not isinstance(m, pools)]
    state = {}
    for name, layer in zip(LAYER_NAMES, layers, strict=True):
        for key, value in layer.state_dict().items():
            state[f"{name}.{key}"] = value.numpy()
    return state
