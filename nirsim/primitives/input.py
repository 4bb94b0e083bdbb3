"""Graph input (NIR ``Input``)."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import nir
import numpy as np

from .._custom_types import Array, Shape
from .._errors import GraphError
from .base import AbstractStateless


def shape_of(types: dict | None, key: str) -> Shape | None:
    """The shape stored in a NIR ``input_type``/``output_type`` dict, or None."""
    if not types:
        return None
    value = types.get(key)
    if value is None:
        value = next(iter(types.values()), None)
    if value is None:
        return None
    arr = np.asarray(value).reshape(-1)
    if arr.size == 0:
        return ()
    if not np.all(arr == np.floor(arr)) or np.any(arr < 0):
        raise GraphError(f"shape {arr.tolist()} is not a list of sizes")
    return tuple(int(s) for s in arr)


class Input(AbstractStateless):
    """Entry point of an external signal; the identity map on ``shape``."""

    nir_type = "Input"
    shape: Shape = eqx.field(static=True)

    @property
    def in_shape(self) -> Shape:
        return self.shape

    @property
    def out_shape(self) -> Shape:
        return self.shape

    @classmethod
    def from_nir(cls, node: nir.Input, in_shape: Shape | None) -> Input:
        shape = shape_of(node.input_type, "input")
        if shape is None:
            raise GraphError("Input node has no shape")
        return cls(shape=shape)

    def to_nir(self) -> nir.Input:
        return nir.Input(input_type={"input": np.array(self.shape)})

    def linear(self, x: Array) -> Array:
        return jnp.asarray(x)
