"""Affine map (NIR ``Affine``)."""

from __future__ import annotations

import jax.numpy as jnp
import nir

from .._custom_types import Array, Shape
from .._errors import GraphError
from .base import AbstractStateless, as_param, check_finite, source_dtypes


class Affine(AbstractStateless):
    r"""``y(t) = W x(t) + b``: ``W`` acts on both signal parts, ``b`` is added to the
    continuous part only (a constant current). ``weight`` has shape ``(out, in)``
    (leading axes, if any, are batched maps); ``bias`` has shape ``(out,)``. Units:
    output unit per input unit."""

    nir_type = "Affine"
    param_names = ("weight", "bias")

    weight: Array
    bias: Array

    def __init__(self, weight, bias, *, source_dtypes=()):
        self.weight = as_param(weight, "weight")
        if self.weight.ndim < 2:
            raise GraphError(f"weight must be at least 2-D, got shape {self.weight.shape}")
        self.bias = as_param(bias, "bias", self.weight.shape[:-1])
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
    def from_nir(cls, node: nir.Affine, in_shape: Shape | None) -> Affine:
        return cls(
            node.weight, node.bias, source_dtypes=source_dtypes(node, cls.param_names)
        )

    def to_nir(self) -> nir.Affine:
        return nir.Affine(weight=self._export("weight"), bias=self._export("bias"))

    def linear(self, x: Array) -> Array:
        return jnp.einsum("...ij,...j->...i", self.weight, x)

    def offset(self) -> Array:
        return self.bias
