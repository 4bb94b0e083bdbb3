"""Integrate-and-fire neuron (NIR ``IF``)."""

from __future__ import annotations

import equinox as eqx
import nir

from .._custom_types import NeuronArray, Shape
from .base import (
    AbstractSpikingNeuron,
    as_param,
    check_finite,
    check_same_shape,
    source_dtypes,
)
from .states import MembraneState


class IF(AbstractSpikingNeuron):
    r"""Integrate-and-fire neuron.

    ``dv/dt = r x(t)``; a spike when ``v`` reaches ``v_threshold`` from below, then
    ``v <- v_reset`` (or ``v <- v - (v_threshold - v_reset)`` with ``reset="subtract"``).
    An impulse of area ``a`` makes ``v`` jump by ``r a``.

    * ``r``: resistance (voltage per unit of input per unit of time);
    * ``v_threshold``, ``v_reset``: voltages. ``v(0) = 0``.
    """

    nir_type = "IF"
    param_names = ("r", "v_threshold", "v_reset")

    r: NeuronArray
    v_threshold: NeuronArray
    v_reset: NeuronArray
    shape: Shape = eqx.field(static=True)

    def __init__(self, r, v_threshold, v_reset=None, *, source_dtypes=()):
        self.r = as_param(r, "r")
        self.v_threshold = as_param(v_threshold, "v_threshold")
        self.v_reset = (
            self.v_threshold * 0.0 if v_reset is None else as_param(v_reset, "v_reset")
        )
        self.shape = tuple(self.r.shape)
        self.source_dtypes = source_dtypes

    def __check_init__(self):
        check_same_shape(self, self.param_names)
        check_finite(self, self.param_names)

    @classmethod
    def from_nir(cls, node: nir.IF, in_shape: Shape | None) -> IF:
        return cls(
            node.r,
            node.v_threshold,
            node.v_reset,
            source_dtypes=source_dtypes(node, cls.param_names),
        )

    def to_nir(self) -> nir.IF:
        return nir.IF(**{n: self._export(n) for n in self.param_names})

    def threshold(self):
        return self.v_threshold

    def reset_value(self):
        return self.v_reset

    def init_state(self) -> MembraneState:
        return MembraneState(v=self.r * 0.0)

    def vector_field(self, state, drive):
        return MembraneState(v=self.r * drive)

    def propagate(self, state, drive, h):
        return MembraneState(v=state.v + self.r * drive * h)

    def impulse(self, state, area):
        return MembraneState(v=state.v + self.r * area)
