"""Integrator (NIR ``I``)."""

from __future__ import annotations

import equinox as eqx
import nir

from .._custom_types import NeuronArray, Shape
from .base import AbstractNeuron, as_param, check_finite, source_dtypes
from .states import MembraneState


class I(AbstractNeuron):  # noqa: E742
    r"""Integrator.

    ``dv/dt = r x(t)``; an impulse of area ``a`` makes ``v`` jump by ``r a``.

    * ``r``: resistance (voltage per unit of input per unit of time).

    No threshold; the outgoing signal is the continuous ``v(t)``; ``v(0) = 0``.
    """

    nir_type = "I"
    param_names = ("r",)

    r: NeuronArray
    shape: Shape = eqx.field(static=True)

    def __init__(self, r, *, source_dtypes=()):
        self.r = as_param(r, "r")
        self.shape = tuple(self.r.shape)
        self.source_dtypes = source_dtypes

    def __check_init__(self):
        check_finite(self, self.param_names)

    @classmethod
    def from_nir(cls, node: nir.I, in_shape: Shape | None) -> I:
        return cls(node.r, source_dtypes=source_dtypes(node, cls.param_names))

    def to_nir(self) -> nir.I:
        return nir.I(r=self._export("r"))

    def init_state(self) -> MembraneState:
        return MembraneState(v=self.r * 0.0)

    def vector_field(self, state, drive):
        return MembraneState(v=self.r * drive)

    def propagate(self, state, drive, h):
        return MembraneState(v=state.v + self.r * drive * h)

    def impulse(self, state, area):
        return MembraneState(v=state.v + self.r * area)
