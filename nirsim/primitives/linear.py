"""Linear map (NIR ``Linear``)."""

from __future__ import annotations

import jax.numpy as jnp
import nir

from .._custom_types import Array, Shape
from .._errors import GraphError
from .base import AbstractStateless, as_param, check_finite, source_dtypes


class Linear(AbstractStateless):
    r"""``y(t) = W x(t)`` on both signal parts; ``weight`` has shape ``(out, in)``.
    Units: output unit per input unit."""

    nir_type = "Linear"
    param_names = ("weight",)

    weight: Array

    def __init__(self, weight, *, source_dtypes=()):
        self.weight = as_param(weight, "weight")
        if self.weight.ndim < 2:
            raise GraphError(f"weight must be at least 2-D, got shape {self.weight.shape}")
        self.source_dtypes = source_dtypes

    def __check_init__(self):
        check_finite(self, self.param_names)

    @property
    def in_shape(self) -> Shape:
        return tuple(self.weight.shape[:-2]) + (self.weight.shape[-1],)

    @property
    def out_shape(self) -> Shape:
        return tuple(self.weight.shape[:-1])

    @classmethod
    def from_nir(cls, node: nir.Linear, in_shape: Shape | None) -> Linear:
        return cls(node.weight, source_dtypes=source_dtypes(node, cls.param_names))

    def to_nir(self) -> nir.Linear:
        return nir.Linear(weight=self._export("weight"))

    def linear(self, x: Array) -> Array:
        return jnp.einsum("...ij,...j->...i", self.weight, x)
