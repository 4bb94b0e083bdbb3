"""Shared helpers of the convolution and pooling primitives (NCHW, torch semantics)."""

from __future__ import annotations

import jax
import numpy as np

from .._custom_types import Array, Shape
from .._errors import GraphError


def as_tuple(value, n: int, name: str) -> tuple[int, ...]:
    arr = np.asarray(value).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, n)
    if arr.size != n:
        raise GraphError(f"'{name}' must have {n} entries, got {arr.tolist()}")
    return tuple(int(a) for a in arr)


def padding_config(padding, n: int) -> str | tuple[int, ...]:
    if isinstance(padding, bytes):
        padding = padding.decode()
    if isinstance(padding, np.ndarray) and padding.dtype.kind in "SUO":
        padding = str(padding.reshape(-1)[0])
        padding = padding.decode() if isinstance(padding, bytes) else padding
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise GraphError(f"padding must be 'same', 'valid' or sizes, got {padding!r}")
        return padding
    return as_tuple(padding, n, "padding")


def conv_out_size(size, kernel, stride, padding, dilation) -> tuple[int, ...]:
    out = []
    for i, n in enumerate(size):
        if padding == "same":
            out.append(n)
            continue
        p = 0 if padding == "valid" else padding[i]
        o = (n + 2 * p - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1
        if o <= 0:
            raise GraphError(f"kernel does not fit the input of spatial size {tuple(size)}")
        out.append(o)
    return tuple(out)


def lax_padding(padding, kernel, dilation):
    if padding == "valid":
        return [(0, 0)] * len(kernel)
    if padding == "same":  # torch: extra padding on the high side
        pads = []
        for k, d in zip(kernel, dilation, strict=True):
            total = d * (k - 1)
            pads.append((total // 2, total - total // 2))
        return pads
    return [(p, p) for p in padding]


def conv(x: Array, weight: Array, stride, padding, dilation, groups: int) -> Array:
    """Cross-correlation of one sample ``x`` of shape ``(C_in, *spatial)`` (or batched
    with leading axes) with ``weight`` of shape ``(C_out, C_in/groups, *kernel)``."""
    nsp = weight.ndim - 2
    lead = x.shape[: x.ndim - nsp - 1]
    xb = x.reshape((-1,) + x.shape[x.ndim - nsp - 1 :])
    spec = ("NCH", "OIH", "NCH") if nsp == 1 else ("NCHW", "OIHW", "NCHW")
    y = jax.lax.conv_general_dilated(
        xb,
        weight,
        window_strides=stride,
        padding=lax_padding(padding, weight.shape[2:], dilation),
        rhs_dilation=dilation,
        feature_group_count=groups,
        dimension_numbers=spec,
        precision=jax.lax.Precision.HIGHEST,
    )
    return y.reshape(lead + y.shape[1:])


def pool_sum(x: Array, kernel: Shape, stride: Shape, padding: Shape) -> Array:
    """Sum over 2-D windows of the last two axes (zero padding)."""
    lead = x.ndim - 2
    return jax.lax.reduce_window(
        x,
        0.0,
        jax.lax.add,
        (1,) * lead + tuple(kernel),
        (1,) * lead + tuple(stride),
        [(0, 0)] * lead + [(p, p) for p in padding],
    )
