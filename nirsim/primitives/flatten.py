"""Flatten (NIR ``Flatten``)."""

from __future__ import annotations

import math

import equinox as eqx
import nir
import numpy as np

from .._custom_types import Array, Shape
from .._errors import GraphError
from .base import AbstractStateless
from .input import shape_of


def flatten_shape(shape: Shape, start_dim: int, end_dim: int) -> Shape:
    """Shape after merging axes ``start_dim..end_dim`` (inclusive, no batch axis)."""
    n = len(shape)
    s = start_dim + n if start_dim < 0 else start_dim
    e = end_dim + n if end_dim < 0 else end_dim
    if not (0 <= s <= e < n):
        raise GraphError(
            f"start_dim={start_dim}, end_dim={end_dim} do not fit input shape {shape}"
        )
    return tuple(shape[:s]) + (math.prod(shape[s : e + 1]),) + tuple(shape[e + 1 :])


class Flatten(AbstractStateless):
    """Merge axes ``start_dim..end_dim`` of the input (C order). Axes count from the
    node's own shape, without a batch axis, as NIR's shape inference does (the CNN of
    the NIR paper uses ``start_dim = 0`` on a ``(8, 4, 4)`` input)."""

    nir_type = "Flatten"
    input_shape: Shape = eqx.field(static=True)
    start_dim: int = eqx.field(static=True)
    end_dim: int = eqx.field(static=True)

    def __check_init__(self):
        flatten_shape(self.input_shape, self.start_dim, self.end_dim)

    @property
    def in_shape(self) -> Shape:
        return self.input_shape

    @property
    def out_shape(self) -> Shape:
        return flatten_shape(self.input_shape, self.start_dim, self.end_dim)

    @classmethod
    def from_nir(cls, node: nir.Flatten, in_shape: Shape | None) -> Flatten:
        declared = shape_of(node.input_type, "input")
        shape = in_shape if in_shape is not None else declared
        if shape is None:
            raise GraphError("cannot infer the input shape of Flatten")
        return cls(
            input_shape=shape, start_dim=int(node.start_dim), end_dim=int(node.end_dim)
        )

    def to_nir(self) -> nir.Flatten:
        return nir.Flatten(
            input_type={"input": np.array(self.input_shape)},
            start_dim=self.start_dim,
            end_dim=self.end_dim,
        )

    def linear(self, x: Array) -> Array:
        return x.reshape(x.shape[: x.ndim - len(self.input_shape)] + self.out_shape)
