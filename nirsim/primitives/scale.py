"""Elementwise scaling (NIR ``Scale``)."""

from __future__ import annotations

import nir

from .._custom_types import Array, Shape
from .base import AbstractStateless, as_param, check_finite, source_dtypes


class Scale(AbstractStateless):
    r"""``y(t) = s * x(t)`` elementwise on both signal parts (dimensionless ``s``)."""

    nir_type = "Scale"
    param_names = ("scale",)

    scale: Array

    def __init__(self, scale, *, source_dtypes=()):
        self.scale = as_param(scale, "scale")
        self.source_dtypes = source_dtypes

    def __check_init__(self):
        check_finite(self, self.param_names)

    @property
    def in_shape(self) -> Shape:
        return tuple(self.scale.shape)

    @property
    def out_shape(self) -> Shape:
        return tuple(self.scale.shape)

    @classmethod
    def from_nir(cls, node: nir.Scale, in_shape: Shape | None) -> Scale:
        return cls(node.scale, source_dtypes=source_dtypes(node, cls.param_names))

    def to_nir(self) -> nir.Scale:
        return nir.Scale(scale=self._export("scale"))

    def linear(self, x: Array) -> Array:
        return self.scale * x
