"""Graph output (NIR ``Output``)."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import nir
import numpy as np

from .._custom_types import Array, Shape
from .base import AbstractStateless
from .input import shape_of


class Output(AbstractStateless):
    """Exit point of a signal; the identity map on ``shape``."""

    nir_type = "Output"
    shape: Shape = eqx.field(static=True)

    @property
    def in_shape(self) -> Shape:
        return self.shape

    @property
    def out_shape(self) -> Shape:
        return self.shape

    @classmethod
    def from_nir(cls, node: nir.Output, in_shape: Shape | None) -> Output:
        declared = shape_of(node.output_type, "output")
        return cls(shape=in_shape if in_shape is not None else declared)

    def to_nir(self) -> nir.Output:
        return nir.Output(output_type={"output": np.array(self.shape)})

    def linear(self, x: Array) -> Array:
        return jnp.asarray(x)
