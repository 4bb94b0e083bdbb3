"""Leaky integrate-and-fire neuron (NIR ``LIF``)."""

from __future__ import annotations

import equinox as eqx
import nir

from .._custom_types import NeuronArray, Shape
from ._dynamics import leaky_field, leaky_propagate
from .base import (
    AbstractSpikingNeuron,
    as_param,
    check_finite,
    check_positive,
    check_same_shape,
    source_dtypes,
)
from .states import MembraneState


class LIF(AbstractSpikingNeuron):
    r"""Leaky integrate-and-fire neuron.

    ``tau dv/dt = (v_leak - v) + r x(t)``; a spike when ``v`` reaches ``v_threshold``
    from below, then ``v <- v_reset`` (or ``v <- v - (v_threshold - v_reset)`` with
    ``reset="subtract"``).

    * ``tau``: membrane time constant (graph's time unit, seconds in published graphs);
    * ``r``: resistance (voltage per unit of input);
    * ``v_leak``, ``v_threshold``, ``v_reset``: voltages.

    An impulse of area ``a`` makes ``v`` jump by ``r a / tau``. The outgoing signal is
    the spike train ``sum_k A delta(t - t_k)`` with ``A = spike_area``. Initial state
    ``v(0) = v_leak``. With a constant input ``I`` and ``v(0) = v_leak``, the first spike
    is at ``t = -tau log(1 - (v_threshold - v_leak) / (r I))``.
    """

    nir_type = "LIF"
    param_names = ("tau", "r", "v_leak", "v_threshold", "v_reset")

    tau: NeuronArray
    r: NeuronArray
    v_leak: NeuronArray
    v_threshold: NeuronArray
    v_reset: NeuronArray
    shape: Shape = eqx.field(static=True)

    def __init__(self, tau, r, v_leak, v_threshold, v_reset=None, *, source_dtypes=()):
        self.tau = as_param(tau, "tau")
        self.r = as_param(r, "r")
        self.v_leak = as_param(v_leak, "v_leak")
        self.v_threshold = as_param(v_threshold, "v_threshold")
        self.v_reset = (
            self.v_threshold * 0.0 if v_reset is None else as_param(v_reset, "v_reset")
        )
        self.shape = tuple(self.tau.shape)
        self.source_dtypes = source_dtypes

    def __check_init__(self):
        check_same_shape(self, self.param_names)
        check_finite(self, self.param_names)
        check_positive(self, ("tau",))

    @classmethod
    def from_nir(cls, node: nir.LIF, in_shape: Shape | None) -> LIF:
        return cls(
            node.tau,
            node.r,
            node.v_leak,
            node.v_threshold,
            node.v_reset,
            source_dtypes=source_dtypes(node, cls.param_names),
        )

    def to_nir(self) -> nir.LIF:
        return nir.LIF(**{n: self._export(n) for n in self.param_names})

    def threshold(self):
        return self.v_threshold

    def reset_value(self):
        return self.v_reset

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
