"""Base of the 2-D pooling primitives."""

from __future__ import annotations

import equinox as eqx
import nir
import numpy as np

from .._custom_types import Shape
from .._errors import GraphError
from ._conv import as_tuple, conv_out_size
from .base import AbstractStateless


class AbstractPool2d(AbstractStateless):
    """2-D pooling over ``(C, H, W)`` with square or rectangular windows."""

    input_shape: eqx.AbstractVar[Shape]
    kernel_size: eqx.AbstractVar[Shape]
    stride: eqx.AbstractVar[Shape]
    padding: eqx.AbstractVar[Shape]

    def __check_init__(self):
        if len(self.input_shape) != 3:
            raise GraphError(f"input must be (C, H, W), got {self.input_shape}")
        self.out_shape  # noqa: B018 (raises if the window does not fit)

    @property
    def in_shape(self) -> Shape:
        return self.input_shape

    @property
    def out_shape(self) -> Shape:
        size = conv_out_size(
            self.input_shape[1:], self.kernel_size, self.stride, self.padding, (1, 1)
        )
        return (self.input_shape[0],) + size

    @classmethod
    def from_nir(cls, node, in_shape: Shape | None):
        if in_shape is None:
            raise GraphError(f"cannot infer the input shape of {cls.nir_type}")
        return cls(
            input_shape=tuple(in_shape),
            kernel_size=as_tuple(node.kernel_size, 2, "kernel_size"),
            stride=as_tuple(node.stride, 2, "stride"),
            padding=as_tuple(node.padding, 2, "padding"),
        )

    def to_nir(self) -> nir.NIRNode:
        cls = getattr(nir, self.nir_type)
        return cls(
            kernel_size=np.array(self.kernel_size),
            stride=np.array(self.stride),
            padding=np.array(self.padding),
        )
