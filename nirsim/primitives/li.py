"""Leaky integrator (NIR ``LI``)."""

from __future__ import annotations

import equinox as eqx
import nir

from .._custom_types import NeuronArray, Shape
from ._dynamics import leaky_field, leaky_propagate
from .base import (
    AbstractNeuron,
    as_param,
    check_finite,
    check_positive,
    check_same_shape,
    source_dtypes,
)
from .states import MembraneState


class LI(AbstractNeuron):
    r"""Leaky integrator.

    ``tau dv/dt = (v_leak - v) + r x(t)``

    * ``tau``: time constant (the graph's time unit, seconds in published graphs);
    * ``r``: resistance (voltage per unit of input);
    * ``v_leak``: leak (resting) voltage.

    An impulse of area ``a`` makes ``v`` jump by ``r a / tau``. No threshold, no reset;
    the outgoing signal is the continuous ``v(t)``. Initial state: ``v(0) = v_leak``
    (rest; NIR leaves it open, frameworks start at 0, equal when ``v_leak = 0``).
    """

    nir_type = "LI"
    param_names = ("tau", "r", "v_leak")

    tau: NeuronArray
    r: NeuronArray
    v_leak: NeuronArray
    shape: Shape = eqx.field(static=True)

    def __init__(self, tau, r, v_leak, *, source_dtypes=()):
        self.tau = as_param(tau, "tau")
        self.r = as_param(r, "r")
        self.v_leak = as_param(v_leak, "v_leak")
        self.shape = tuple(self.tau.shape)
        self.source_dtypes = source_dtypes

    def __check_init__(self):
        check_same_shape(self, self.param_names)
        check_finite(self, self.param_names)
        check_positive(self, ("tau",))

    @classmethod
    def from_nir(cls, node: nir.LI, in_shape: Shape | None) -> LI:
        return cls(
            node.tau,
            node.r,
            node.v_leak,
            source_dtypes=source_dtypes(node, cls.param_names),
        )

    def to_nir(self) -> nir.LI:
        return nir.LI(
            tau=self._export("tau"), r=self._export("r"), v_leak=self._export("v_leak")
        )

    def init_state(self) -> MembraneState:
        return MembraneState(v=self.v_leak)

    def vector_field(self, state, drive):
        return MembraneState(v=leaky_field(state.v, drive, self.tau, self.r, self.v_leak))

    def propagate(self, state, drive, h):
        return MembraneState(
            v=leaky_propagate(state.v, drive, self.tau, self.r, self.v_leak, h)
        )

    def impulse(self, state, area):
        return MembraneState(v=state.v + self.r * area / self.tau)
