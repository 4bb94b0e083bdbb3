"""1-D convolution (NIR ``Conv1d``)."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import nir
import numpy as np

from .._custom_types import Array, Shape
from .._errors import GraphError
from ._conv import as_tuple, conv, conv_out_size, padding_config
from .base import AbstractStateless, as_param, check_finite, source_dtypes


class Conv1d(AbstractStateless):
    r"""1-D cross-correlation, as torch's ``Conv1d`` and NIR define it:
    ``y[o] = sum_c W[o, c] * x[c] (+ bias[o] on the continuous part)``.

    ``weight``: ``(C_out, C_in/groups, k)``; ``bias``: ``(C_out,)``; ``stride``,
    ``dilation``: ints; ``padding``: an int or ``"same"``/``"valid"``;
    ``input_shape``: spatial size ``(N,)``. Input ``(C_in, N)``, output
    ``(C_out, N')``."""

    nir_type = "Conv1d"
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
        if self.weight.ndim != 3:
            raise GraphError(
                f"weight must be 3-D (C_out, C_in, k), got {self.weight.shape}"
            )
        self.bias = as_param(0.0 if bias is None else bias, "bias", self.weight.shape[:1])
        self.input_shape = as_tuple(input_shape, 1, "input_shape")
        self.stride = as_tuple(stride, 1, "stride")
        self.padding = padding_config(padding, 1)
        self.dilation = as_tuple(dilation, 1, "dilation")
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
    def from_nir(cls, node: nir.Conv1d, in_shape: Shape | None) -> Conv1d:
        spatial = node.input_shape
        if spatial is None:
            if in_shape is None:
                raise GraphError("cannot infer the input shape of Conv1d")
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

    def to_nir(self) -> nir.Conv1d:
        return nir.Conv1d(
            input_shape=self.input_shape[0],  # nir: an int for Conv1d
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
        return jnp.broadcast_to(self.bias[:, None], self.out_shape)
