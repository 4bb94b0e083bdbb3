"""Threshold (NIR ``Threshold``)."""

from __future__ import annotations

import equinox as eqx
import nir

from .._custom_types import NeuronArray, Shape
from .base import AbstractPrimitive, as_param, check_finite, source_dtypes


class Threshold(AbstractPrimitive):
    r"""Emits an impulse of area ``spike_area`` at each upward crossing of
    ``threshold`` by the continuous part of its input (``z = H(x - threshold)`` in
    NIR's notation, read as the events of that step function). Impulses arriving at a
    Threshold carry no continuous part and are not seen by it. ``threshold`` is in the
    input's unit."""

    nir_type = "Threshold"
    param_names = ("threshold",)

    threshold: NeuronArray
    shape: Shape = eqx.field(static=True)

    def __init__(self, threshold, *, source_dtypes=()):
        self.threshold = as_param(threshold, "threshold")
        self.shape = tuple(self.threshold.shape)
        self.source_dtypes = source_dtypes

    def __check_init__(self):
        check_finite(self, self.param_names)

    @property
    def in_shape(self) -> Shape:
        return self.shape

    @property
    def out_shape(self) -> Shape:
        return self.shape

    @classmethod
    def from_nir(cls, node: nir.Threshold, in_shape: Shape | None) -> Threshold:
        return cls(node.threshold, source_dtypes=source_dtypes(node, cls.param_names))

    def to_nir(self) -> nir.Threshold:
        return nir.Threshold(threshold=self._export("threshold"))
