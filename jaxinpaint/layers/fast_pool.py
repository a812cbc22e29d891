"""2×2 / stride-2 max pooling with an elementwise gradient (XLA:CPU speed-up).

`flax.linen.max_pool` is `lax.reduce_window(max)`, whose gradient XLA lowers to
`select-and-scatter`; on XLA:CPU that takes 2.4 s for 12×256²×64 where PyTorch's whole
forward+backward takes 0.5 s (`bench/conv_grad.py` has the conv numbers; this was measured the
same way). For non-overlapping windows the gradient is elementwise: each window's gradient goes
to its first maximal element in row-major order — the element `select-and-scatter` (and
PyTorch) picks, which matters for ReLU outputs, where all-zero windows are common. Written as a
reshape, it fuses into one loop over the input.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _windows(x):
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c)


@jax.custom_vjp
def _max_pool_2x2(x):
    return jnp.max(_windows(x), axis=(2, 4))


def _fwd(x):
    return _max_pool_2x2(x), x


def _bwd(x, g):
    xw = _windows(x)
    m = jnp.max(xw, axis=(2, 4))
    # Row-major order within a window: (0,0), (0,1), (1,0), (1,1); only the first hit counts.
    taken = jnp.zeros(m.shape, bool)
    rows = []
    for i in range(2):
        cols = []
        for j in range(2):
            hit = (xw[:, :, i, :, j] == m) & ~taken
            taken = taken | hit
            cols.append(jnp.where(hit, g, jnp.zeros((), g.dtype)))
        rows.append(jnp.stack(cols, axis=3))  # [N, H/2, W/2, 2, C]
    return (jnp.stack(rows, axis=2).reshape(x.shape).astype(x.dtype),)


_max_pool_2x2.defvjp(_fwd, _bwd)


def max_pool_2x2(x: jax.Array) -> jax.Array:
    """`nn.max_pool(x, (2, 2), strides=(2, 2))` for NHWC `x` with even H and W."""
    if x.ndim != 4 or x.shape[1] % 2 or x.shape[2] % 2:
        raise ValueError(f"max_pool_2x2 expects NHWC input with even H and W, got {x.shape}")
    return _max_pool_2x2(x)
