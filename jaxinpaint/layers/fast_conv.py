"""A drop-in `conv_general_dilated` whose strided input gradient avoids XLA:CPU's slow path.

The input gradient of a stride-S convolution is a transposed convolution, which XLA expresses
as a convolution with `lhs_dilation=S` (zeros between the output-gradient pixels). XLA:CPU runs
some of those far slower than PyTorch: 5×5, stride 2, 8×8×512→512 (the discriminators' last
layers) takes seconds instead of ~50 ms (`bench/conv_grad.py`). Writing the zeros out with
`lax.pad` does not help, since XLA folds the pad back into the convolution.

The same gradient is S² ordinary stride-1 convolutions, one per output phase (polyphase /
sub-pixel decomposition): for the input pixels `i ≡ a (mod S)` only the taps
`t ≡ (a + pad_lo) (mod S)` contribute, so

    dx[S·q + a] = Σ_m g[q + c − m] · w[r + S·m],    r = (a + lo) mod S,  c = (a + lo) div S

a stride-1 correlation of the output gradient with a sub-kernel of `w`. The phases are
interleaved back with a reshape. Same FLOPs as the forward convolution, numerically equal to
XLA's gradient up to float32 summation order.

`conv_general_dilated` takes `lax.conv_general_dilated`'s arguments (so it can be passed to
`flax.linen.Conv(conv_general_dilated=...)`); it uses the custom gradient for 2-D NHWC/HWIO
convolutions with a stride > 1, no input or kernel dilation and one feature/batch group, and
is exactly `lax.conv_general_dilated` otherwise. The forward pass and the kernel gradient are
XLA's own in every case.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

_DN = ("NHWC", "HWIO", "NHWC")
# Bound at import so that this module keeps working if a caller swaps `lax.conv_general_dilated`
# for `conv_general_dilated` below (bench/train_step.py does, to time the model with it).
_lax_conv = lax.conv_general_dilated


def _same_pads(size: int, k: int, stride: int) -> tuple[int, int]:
    """XLA's "SAME" padding for one spatial dim (the odd pixel goes high)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def _conv(x, kernel, strides, pads, precision):
    return _lax_conv(x, kernel, strides, pads, dimension_numbers=_DN, precision=precision)


def strided_input_grad(g, kernel, input_hw, strides, pads, precision=None):
    """Input gradient of `_conv(x, kernel, strides, pads)` for output gradient `g`, by phases.

    Args:
      g: output gradient `[N, Ho, Wo, Cout]`.
      kernel: HWIO `[K_h, K_w, Cin, Cout]`.
      input_hw: `(H, W)` of the convolution's input.
      strides: `(S_h, S_w)`.
      pads: explicit `((lo_h, hi_h), (lo_w, hi_w))`.
    """
    n, ho, wo, _ = g.shape
    kh, kw, cin, _ = kernel.shape
    (h, w), (sh, sw) = input_hw, strides
    (lo_h, _), (lo_w, _) = pads
    qh, qw = -(-h // sh), -(-w // sw)  # phase rows/cols, before cropping to H×W

    def phase(a: int, s: int, lo: int, k: int, q: int, out: int):
        """Sub-kernel taps and the (lo, hi) padding of g for residue `a` along one dim."""
        r, c = (a + lo) % s, (a + lo) // s
        m = len(range(r, k, s))
        return r, m, (m - 1 - c, q - 1 + c - (out - 1))

    rows = []
    for ah in range(sh):
        rh, mh, pad_h = phase(ah, sh, lo_h, kh, qh, ho)
        cols = []
        for aw in range(sw):
            rw, mw, pad_w = phase(aw, sw, lo_w, kw, qw, wo)
            if mh == 0 or mw == 0:  # no tap lands on this phase (kernel smaller than stride)
                cols.append(jnp.zeros((n, qh, qw, cin), g.dtype))
                continue
            sub = jnp.flip(kernel[rh::sh, rw::sw], (0, 1)).transpose(0, 1, 3, 2)
            zero = jnp.zeros((), g.dtype)
            gp = lax.pad(g, zero, ((0, 0, 0), (*pad_h, 0), (*pad_w, 0), (0, 0, 0)))
            cols.append(_conv(gp, sub, (1, 1), "VALID", precision))
        rows.append(jnp.stack(cols, axis=3))  # [N, Qh, Qw, Sw, Cin]
    dx = jnp.stack(rows, axis=2).reshape(n, qh * sh, qw * sw, cin)  # [N, Qh, Sh, Qw, Sw, Cin]
    return dx[:, :h, :w]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _strided_conv(x, kernel, strides, pads, precision):
    return _conv(x, kernel, strides, pads, precision)


def _strided_conv_fwd(x, kernel, strides, pads, precision):
    return _conv(x, kernel, strides, pads, precision), (x, kernel)


def _strided_conv_bwd(strides, pads, precision, residuals, g):
    x, kernel = residuals
    dx = strided_input_grad(g, kernel, x.shape[1:3], strides, pads, precision)
    _, kernel_vjp = jax.vjp(lambda k: _conv(x, k, strides, pads, precision), kernel)
    return dx.astype(x.dtype), kernel_vjp(g)[0]


_strided_conv.defvjp(_strided_conv_fwd, _strided_conv_bwd)


def _is_nhwc(lhs, rhs, dimension_numbers) -> bool:
    if dimension_numbers is None or lhs.ndim != 4:
        return False
    want = lax.conv_dimension_numbers(lhs.shape, rhs.shape, _DN)
    got = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
    return got == want


def conv_general_dilated(
    lhs,
    rhs,
    window_strides: Sequence[int],
    padding,
    lhs_dilation: Sequence[int] | None = None,
    rhs_dilation: Sequence[int] | None = None,
    dimension_numbers=None,
    feature_group_count: int = 1,
    batch_group_count: int = 1,
    precision=None,
    preferred_element_type=None,
):
    """`lax.conv_general_dilated` with the polyphase input gradient for strided NHWC convs."""
    strides = tuple(window_strides)
    fast = (
        _is_nhwc(lhs, rhs, dimension_numbers)
        and any(s > 1 for s in strides)
        and all(d == 1 for d in (lhs_dilation or (1, 1)))
        and all(d == 1 for d in (rhs_dilation or (1, 1)))
        and feature_group_count == 1
        and batch_group_count == 1
        and preferred_element_type is None
    )
    if not fast:
        return _lax_conv(
            lhs,
            rhs,
            window_strides,
            padding,
            lhs_dilation,
            rhs_dilation,
            dimension_numbers,
            feature_group_count,
            batch_group_count,
            precision,
            preferred_element_type,
        )
    if isinstance(padding, str):
        if padding.upper() == "SAME":
            pads = tuple(_same_pads(lhs.shape[1 + i], rhs.shape[i], strides[i]) for i in range(2))
        elif padding.upper() == "VALID":
            pads = ((0, 0), (0, 0))
        else:
            raise ValueError(f"padding must be 'SAME', 'VALID' or (lo, hi) pairs, got {padding!r}")
    else:
        pads = tuple((int(lo), int(hi)) for lo, hi in padding)
    return _strided_conv(lhs, rhs, strides, pads, precision)
