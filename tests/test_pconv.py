"""Numeric equivalence of jaxinpaint's partial convolution with independent references.

References: NVIDIA's `PartialConv2d(multi_channel=True)` formula written here with
`torch.nn.functional.conv2d` (including its full `Cout×Cin×kh×kw` ones-kernel mask update), and a
float64 NumPy loop over output positions.
"""

import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from jaxinpaint.layers import PartialConv2d, partial_conv


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)


def explicit_pads(size, k, stride, dilation, padding):
    """The (lo, hi) pads XLA uses for one spatial dim (SAME as in TensorFlow)."""
    if isinstance(padding, str):
        if padding == "VALID":
            return 0, 0
        effective = (k - 1) * dilation + 1
        out = -(-size // stride)
        total = max((out - 1) * stride + effective - size, 0)
        return total // 2, total - total // 2
    return padding


def torch_partial_conv(x, mask, kernel, bias, strides, padding, dilation):
    """NVIDIA PartialConv2d(multi_channel=True, return_mask=True), NHWC numpy in and out."""
    kh, kw, cin, cout = kernel.shape
    to_nchw = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))
    pad_h = explicit_pads(x.shape[1], kh, strides[0], dilation[0], padding[0])
    pad_w = explicit_pads(x.shape[2], kw, strides[1], dilation[1], padding[1])
    xt = to_nchw(x).requires_grad_(True)
    mt = to_nchw(mask)
    wt = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))).requires_grad_(True)
    bt = None if bias is None else torch.from_numpy(bias).requires_grad_(True)
    pad = lambda a: F.pad(a, (*pad_w, *pad_h))  # zero padding: a hole in the mask
    conv = lambda a, w, b=None: F.conv2d(pad(a), w, b, stride=strides, dilation=dilation)
    with torch.no_grad():
        update = conv(mt, torch.ones(cout, cin, kh, kw, dtype=mt.dtype))
        slide_winsize = cin * kh * kw
        ratio = slide_winsize / (update + 1e-8)
        update = torch.clamp(update, 0, 1)
        ratio = ratio * update
    raw = conv(xt * mt, wt, bt)
    if bt is not None:
        b = bt.view(1, cout, 1, 1)
        out = ((raw - b) * ratio + b) * update
    else:
        out = raw * ratio
    return out, update, (xt, wt, bt)


def to_nhwc(t):
    return t.detach().numpy().transpose(0, 2, 3, 1)


def padding_arg(padding):
    return padding[0] if isinstance(padding[0], str) else padding


# (kernel, stride, dilation, padding per dim, bias, cin, cout): every value of every factor appears
# several times, and every pair of stride x dilation x padding kind is covered.
CASES = [
    (3, 1, 1, ("SAME", "SAME"), True, 3, 8),
    (3, 2, 1, ("SAME", "SAME"), False, 4, 6),
    (3, 1, 2, ("VALID", "VALID"), True, 5, 3),
    (3, 2, 2, ((1, 2), (2, 0)), True, 3, 5),
    (5, 1, 1, ((2, 2), (1, 3)), False, 6, 4),
    (5, 2, 1, ("VALID", "VALID"), True, 2, 7),
    (5, 1, 2, ("SAME", "SAME"), True, 4, 4),
    (5, 2, 2, ("SAME", "SAME"), False, 3, 9),
    (7, 1, 1, ("VALID", "VALID"), False, 3, 2),
    (7, 2, 1, ((3, 3), (3, 3)), True, 4, 8),
    (7, 1, 2, ((6, 6), (0, 1)), False, 2, 3),
    (7, 2, 2, ("SAME", "SAME"), True, 5, 6),
    (3, 1, 1, ((0, 0), (1, 1)), True, 1, 4),
    (5, 2, 2, ("VALID", "VALID"), False, 8, 3),
]


def random_problem(seed, kernel, cin, cout, bias, fractional, size=(2, 17, 19)):
    rng = np.random.default_rng(seed)
    n, h, w = size
    x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
    if fractional:
        mask = rng.uniform(size=x.shape).astype(np.float32)
        mask[rng.uniform(size=x.shape) < 0.3] = 0.0  # fractional values and true holes
    else:
        mask = (rng.uniform(size=x.shape) > 0.6).astype(np.float32)
        mask[:, 3:11, 4:12, :] = 0.0  # a hole larger than every kernel: exact zeros appear
    k = (rng.standard_normal((kernel, kernel, cin, cout)) / np.sqrt(kernel * kernel * cin)).astype(
        np.float32
    )
    b = rng.standard_normal(cout).astype(np.float32) if bias else None
    g = rng.standard_normal  # cotangent drawn once the output shape is known
    return x, mask, k, b, g


@pytest.mark.parametrize("fractional", [False, True], ids=["binary", "fractional"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"k{c[0]}s{c[1]}d{c[2]}-{c[3][0]}-b{c[4]:d}")
def test_matches_torch_reference(case, fractional):
    kernel, stride, dilation, padding, bias, cin, cout = case
    x, mask, k, b, draw = random_problem(CASES.index(case), kernel, cin, cout, bias, fractional)
    strides, dilations = (stride, stride), (dilation, dilation)

    ref_y, ref_mask, (xt, wt, bt) = torch_partial_conv(x, mask, k, b, strides, padding, dilations)
    cot = draw(tuple(ref_y.shape)).astype(np.float32)
    (ref_y * torch.from_numpy(cot)).sum().backward()

    def loss(x, k, b):
        y, new_mask = partial_conv(
            x, mask, k, b, strides=strides, padding=padding_arg(padding), dilation=dilations
        )
        return jnp.sum(y * jnp.asarray(cot.transpose(0, 2, 3, 1))), (y, new_mask)

    argnums = (0, 1, 2) if bias else (0, 1)
    grads, (y, new_mask) = jax.jit(jax.grad(loss, argnums=argnums, has_aux=True))(x, k, b)

    assert y.shape == to_nhwc(ref_y).shape
    assert rel_err(y, to_nhwc(ref_y)) <= 1e-5
    assert rel_err(new_mask, to_nhwc(ref_mask)) <= 1e-5
    assert np.all(np.asarray(y)[np.asarray(new_mask) == 0] == 0.0), "holes must be exactly zero"
    assert rel_err(grads[0], to_nhwc(xt.grad)) <= 1e-4
    assert rel_err(grads[1], wt.grad.numpy().transpose(2, 3, 1, 0)) <= 1e-4
    if bias:
        assert rel_err(grads[2], bt.grad.numpy()) <= 1e-4


def numpy_loop_partial_conv(x, mask, kernel, bias, stride, pads, dilation):
    """Direct float64 definition: one output pixel at a time."""
    x, mask, kernel = (a.astype(np.float64) for a in (x, mask, kernel))
    kh, kw, cin, cout = kernel.shape
    (pt, pb), (pl, pr) = pads
    xp = np.pad(x * mask, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    mp = np.pad(mask, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    span_h, span_w = (kh - 1) * dilation + 1, (kw - 1) * dilation + 1
    out_h = (xp.shape[1] - span_h) // stride + 1
    out_w = (xp.shape[2] - span_w) // stride + 1
    y = np.zeros((x.shape[0], out_h, out_w, cout))
    new_mask = np.zeros_like(y)
    for n, i, j in itertools.product(range(x.shape[0]), range(out_h), range(out_w)):
        rows = slice(i * stride, i * stride + span_h, dilation)
        cols = slice(j * stride, j * stride + span_w, dilation)
        s = mp[n, rows, cols, :].sum()
        if s <= 0:
            continue
        update = min(s, 1.0)
        raw = np.einsum("hwc,hwco->o", xp[n, rows, cols, :], kernel)
        y[n, i, j] = raw * (kh * kw * cin / (s + 1e-8)) * update
        if bias is not None:
            y[n, i, j] = (y[n, i, j] + bias) * update
        new_mask[n, i, j] = update
    return y, new_mask


@pytest.mark.parametrize(
    "kernel,stride,dilation,pads,bias",
    [
        (3, 1, 1, ((1, 1), (1, 1)), True),
        (5, 2, 1, ((2, 1), (0, 2)), False),
        (3, 1, 2, ((0, 0), (2, 2)), True),
    ],
)
@pytest.mark.parametrize("fractional", [False, True])
def test_matches_float64_numpy_loop(kernel, stride, dilation, pads, bias, fractional):
    x, mask, k, b, _ = random_problem(7, kernel, 3, 4, bias, fractional, size=(1, 9, 10))
    want_y, want_mask = numpy_loop_partial_conv(x, mask, k, b, stride, pads, dilation)
    y, new_mask = partial_conv(x, mask, k, b, strides=stride, padding=pads, dilation=dilation)
    assert rel_err(y, want_y) <= 1e-5
    assert rel_err(new_mask, want_mask) <= 1e-6


def test_golden_ratio_map():
    """All-ones mask, 3x3 kernel, padding 1: the renormalisation is 9/9 inside, 9/6 on edges, 9/4 in
    corners. A centre-tap kernel reads the ratio out directly: y = Cin * ratio."""
    cin = 2
    x = np.ones((1, 5, 6, cin), np.float32)
    kernel = np.zeros((3, 3, cin, 1), np.float32)
    kernel[1, 1] = 1.0
    y, new_mask = partial_conv(x, np.ones_like(x), kernel, padding=((1, 1), (1, 1)))
    ratio = np.asarray(y)[0, :, :, 0] / cin
    want = np.ones((5, 6))
    want[0, :] = want[-1, :] = want[:, 0] = want[:, -1] = 1.5
    want[0, 0] = want[0, -1] = want[-1, 0] = want[-1, -1] = 2.25
    np.testing.assert_allclose(ratio, want, rtol=1e-6)
    np.testing.assert_array_equal(new_mask, np.ones_like(new_mask))


def test_all_ones_mask_is_plain_conv():
    x, _, k, b, _ = random_problem(1, 3, 4, 5, True, False)
    ones = np.ones_like(x)
    plain = jax.lax.conv_general_dilated(
        x, k, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    y, new_mask = partial_conv(x, ones, k, b, padding="VALID")
    assert rel_err(y, plain + b) <= 1e-6
    np.testing.assert_array_equal(new_mask, 1.0)
    # With SAME padding the border sees zero padding as hole; the interior is still a plain conv.
    y_same, _ = partial_conv(x, ones, k, b, padding="SAME")
    assert rel_err(np.asarray(y_same)[:, 1:-1, 1:-1], plain + b) <= 1e-6


def test_all_zeros_mask_gives_zeros():
    x, _, k, b, _ = random_problem(2, 3, 3, 4, True, False)
    y, new_mask = partial_conv(x, np.zeros_like(x), k, b, strides=2)
    np.testing.assert_array_equal(y, 0.0)
    np.testing.assert_array_equal(new_mask, 0.0)


def test_single_channel_mask_broadcasts_over_cin():
    x, mask, k, b, _ = random_problem(3, 3, 4, 2, True, False)
    mask1 = mask[..., :1]
    y1, m1 = partial_conv(x, mask1, k, b)
    y, m = partial_conv(x, np.repeat(mask1, x.shape[-1], axis=-1), k, b)
    assert rel_err(y1, y) <= 1e-6
    np.testing.assert_array_equal(m1, m)


def test_no_gradient_through_mask():
    x, mask, k, b, _ = random_problem(4, 3, 3, 2, True, True)
    grad = jax.grad(lambda m: jnp.sum(partial_conv(x, m, k, b)[0] ** 2))(mask)
    np.testing.assert_array_equal(grad, 0.0)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(padding="FULL"), "padding"),
        (dict(strides=0), "strides"),
        (dict(padding=((1, 1),)), "explicit padding"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    x, mask, k, b, _ = random_problem(5, 3, 3, 2, True, False)
    with pytest.raises(ValueError, match=message):
        partial_conv(x, mask, k, b, **kwargs)


def test_bad_shapes_raise_clear_errors():
    x, mask, k, b, _ = random_problem(6, 3, 3, 2, True, False)
    with pytest.raises(ValueError, match="mask must have"):
        partial_conv(x, mask[:, :-1], k, b)
    with pytest.raises(ValueError, match="channels"):
        partial_conv(x[..., :2], mask[..., :2], k, b)
    with pytest.raises(ValueError, match="bias"):
        partial_conv(x, mask, k, b[:1])


def test_flax_module_wraps_the_function():
    x, mask, _, _, _ = random_problem(8, 3, 3, 6, True, True)
    layer = PartialConv2d(features=6, kernel_size=(5, 5), strides=2, dilation=1)
    params = layer.init(jax.random.key(0), x, mask)
    assert params["params"]["kernel"].shape == (5, 5, 3, 6)
    assert params["params"]["bias"].shape == (6,)
    params = jax.tree.map(lambda p: p + 0.1, params)  # a non-zero bias
    y, new_mask = layer.apply(params, x, mask)
    want_y, want_mask = partial_conv(
        x, mask, params["params"]["kernel"], params["params"]["bias"], strides=2
    )
    np.testing.assert_allclose(y, want_y, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(new_mask, want_mask)
    # Chaining layers: the mask is updated layer by layer and stays per channel.
    y2, mask2 = PartialConv2d(4).init_with_output(jax.random.key(1), y, new_mask)[0]
    assert y2.shape == mask2.shape == (2, 9, 10, 4)
    assert isinstance(layer, nn.Module)
