"""Shared helpers of the convolution and pooling primitives (NCHW, torch semantics)."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import nir
import numpy as np

from .._custom_types import Array, Shape
from .._errors import GraphError
from .base import AbstractStateless, as_param, check_finite, source_dtypes


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
    # Channels-last inside: XLA's CPU convolutions are several times faster in NHWC
    # than in NCHW (benchmarks/RESULTS.md); inputs and outputs stay channels-first.
    spec = ("NHC", "HIO", "NHC") if nsp == 1 else ("NHWC", "HWIO", "NHWC")
    y = jax.lax.conv_general_dilated(
        jnp.moveaxis(xb, 1, -1),
        jnp.moveaxis(weight, (0, 1), (-1, -2)),
        window_strides=stride,
        padding=lax_padding(padding, weight.shape[2:], dilation),
        rhs_dilation=dilation,
        feature_group_count=groups,
        dimension_numbers=spec,
        precision=jax.lax.Precision.HIGHEST,
    )
    y = jnp.moveaxis(y, -1, 1)
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


class AbstractConv(AbstractStateless):
    """Cross-correlation over ``n_spatial`` axes, as torch and NIR define it (the
    shared implementation of :class:`Conv1d` and :class:`Conv2d`)."""

    n_spatial: ClassVar[int]
    param_names = ("weight", "bias")

    weight: Array
    bias: Array
    input_shape: Shape = eqx.field(static=True)
    stride: Shape = eqx.field(static=True)
    padding: str | Shape = eqx.field(static=True)
    dilation: Shape = eqx.field(static=True)
    groups: int = eqx.field(static=True)

    def __init__(
        self,
        input_shape,
        weight,
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        bias=None,
        *,
        source_dtypes=(),
    ):
        self.weight = as_param(weight, "weight")
        if self.weight.ndim != 2 + self.n_spatial:
            raise GraphError(
                f"weight must be {2 + self.n_spatial}-D (C_out, C_in/groups, *kernel), "
                f"got {self.weight.shape}"
            )
        self.bias = as_param(0.0 if bias is None else bias, "bias", self.weight.shape[:1])
        self.input_shape = as_tuple(input_shape, self.n_spatial, "input_shape")
        self.stride = as_tuple(stride, self.n_spatial, "stride")
        self.padding = padding_config(padding, self.n_spatial)
        self.dilation = as_tuple(dilation, self.n_spatial, "dilation")
        self.groups = int(np.asarray(groups))
        self.source_dtypes = source_dtypes

    def __check_init__(self):
        check_finite(self, self.param_names)
        if self.groups < 1 or self.weight.shape[0] % self.groups:
            raise GraphError(
                f"groups={self.groups} does not divide C_out={self.weight.shape[0]}"
            )
        self.out_shape  # noqa: B018 (raises if the kernel does not fit)

    @property
    def in_shape(self) -> Shape:
        return (self.weight.shape[1] * self.groups,) + self.input_shape

    @property
    def out_shape(self) -> Shape:
        size = conv_out_size(
            self.input_shape,
            self.weight.shape[2:],
            self.stride,
            self.padding,
            self.dilation,
        )
        return (self.weight.shape[0],) + size

    @classmethod
    def from_nir(cls, node, in_shape: Shape | None):
        spatial = node.input_shape
        if spatial is None:
            if in_shape is None:
                raise GraphError(f"cannot infer the input shape of {cls.nir_type}")
            spatial = in_shape[1:]
        return cls(
            spatial,
            node.weight,
            node.stride,
            node.padding,
            node.dilation,
            node.groups,
            node.bias,
            source_dtypes=source_dtypes(node, cls.param_names),
        )

    def to_nir(self) -> nir.NIRNode:
        # nir takes an int input_shape for Conv1d, a pair for Conv2d
        spatial = self.input_shape[0] if self.n_spatial == 1 else self.input_shape
        return getattr(nir, self.nir_type)(
            input_shape=spatial,
            weight=self._export("weight"),
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.groups,
            bias=self._export("bias"),
        )

    def linear(self, x: Array) -> Array:
        return conv(x, self.weight, self.stride, self.padding, self.dilation, self.groups)

    def offset(self) -> Array:
        return jnp.broadcast_to(
            self.bias.reshape((-1,) + (1,) * self.n_spatial), self.out_shape
        )
