"""Pure delay (NIR ``Delay``)."""

from __future__ import annotations

import equinox as eqx
import nir
import numpy as np

from .._custom_types import NeuronArray, Shape
from .._errors import GraphError
from .base import AbstractPrimitive, as_param, check_finite, is_concrete, source_dtypes


class Delay(AbstractPrimitive):
    r"""``y(t) = x(t - delay)`` elementwise, for both signal parts: an impulse at ``t``
    leaves at ``t + delay``; a continuous input is read from its history (0 before
    ``t = 0``). ``delay``: time (graph's time unit), ``>= 0``."""

    nir_type = "Delay"
    param_names = ("delay",)

    delay: NeuronArray
    shape: Shape = eqx.field(static=True)

    def __init__(self, delay, *, source_dtypes=()):
        self.delay = as_param(delay, "delay")
        self.shape = tuple(self.delay.shape)
        self.source_dtypes = source_dtypes

    def __check_init__(self):
        check_finite(self, self.param_names)
        if is_concrete(self.delay) and np.any(np.asarray(self.delay) < 0):
            flat = np.asarray(self.delay).reshape(-1)
            bad = int(np.flatnonzero(flat < 0)[0])
            raise GraphError(
                f"'delay' must be >= 0 (in the graph's time unit), got {float(flat[bad])} "
                f"at flat index {bad}"
            )

    @property
    def in_shape(self) -> Shape:
        return self.shape

    @property
    def out_shape(self) -> Shape:
        return self.shape

    @classmethod
    def from_nir(cls, node: nir.Delay, in_shape: Shape | None) -> Delay:
        return cls(node.delay, source_dtypes=source_dtypes(node, cls.param_names))

    def to_nir(self) -> nir.Delay:
        return nir.Delay(delay=self._export("delay"))
