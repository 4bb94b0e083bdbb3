"""Current-based leaky integrate-and-fire neuron (NIR ``CubaLIF``)."""

from __future__ import annotations

import equinox as eqx
import nir

from .._custom_types import NeuronArray, Shape
from ._dynamics import cuba_extremum, cuba_field, cuba_propagate
from .base import (
    AbstractSpikingNeuron,
    as_param,
    check_finite,
    check_positive,
    check_same_shape,
    source_dtypes,
)
from .states import CubaState


class CubaLIF(AbstractSpikingNeuron):
    r"""Current-based leaky integrate-and-fire neuron.

    ``tau_syn di/dt = -i + w_in x(t)``, ``tau_mem dv/dt = (v_leak - v) + r i``; a spike
    when ``v`` reaches ``v_threshold`` from below, then ``v <- v_reset`` (or
    ``v <- v - (v_threshold - v_reset)`` with ``reset="subtract"``); ``i`` is not reset.

    * ``tau_syn``, ``tau_mem``: time constants (graph's time unit);
    * ``r``: resistance (voltage per unit of current); ``w_in``: input weight;
    * ``v_leak``, ``v_threshold``, ``v_reset``: voltages.

    An impulse of area ``a`` makes ``i`` jump by ``w_in a / tau_syn``. Graphs exported
    from discrete-time frameworks with ``w_in = tau_syn/dt``, ``r = tau_mem/dt`` assume
    spikes of area ``dt`` (see ``spike_area``). Initial state ``i = 0``, ``v = v_leak``.
    Between events ``v`` is a difference of exponentials with at most one stationary
    point, which is how spike times are bracketed exactly.
    """

    nir_type = "CubaLIF"
    param_names = (
        "tau_syn",
        "tau_mem",
        "r",
        "v_leak",
        "v_threshold",
        "v_reset",
        "w_in",
    )

    tau_syn: NeuronArray
    tau_mem: NeuronArray
    r: NeuronArray
    v_leak: NeuronArray
    v_threshold: NeuronArray
    v_reset: NeuronArray
    w_in: NeuronArray
    shape: Shape = eqx.field(static=True)

    def __init__(
        self,
        tau_syn,
        tau_mem,
        r,
        v_leak,
        v_threshold,
        v_reset=None,
        w_in=1.0,
        *,
        source_dtypes=(),
    ):
        self.tau_syn = as_param(tau_syn, "tau_syn")
        self.tau_mem = as_param(tau_mem, "tau_mem")
        self.r = as_param(r, "r")
        self.v_leak = as_param(v_leak, "v_leak")
        self.v_threshold = as_param(v_threshold, "v_threshold")
        self.v_reset = (
            self.v_threshold * 0.0 if v_reset is None else as_param(v_reset, "v_reset")
        )
        self.shape = tuple(self.tau_mem.shape)
        self.w_in = as_param(w_in, "w_in", self.shape)
        self.source_dtypes = source_dtypes

    def __check_init__(self):
        check_same_shape(self, self.param_names)
        check_finite(self, self.param_names)
        check_positive(self, ("tau_syn", "tau_mem"))

    @classmethod
    def from_nir(cls, node: nir.CubaLIF, in_shape: Shape | None) -> CubaLIF:
        return cls(
            node.tau_syn,
            node.tau_mem,
            node.r,
            node.v_leak,
            node.v_threshold,
            node.v_reset,
            node.w_in,
            source_dtypes=source_dtypes(node, cls.param_names),
        )

    def to_nir(self) -> nir.CubaLIF:
        return nir.CubaLIF(**{n: self._export(n) for n in self.param_names})

    def _p(self):
        return self.tau_syn, self.tau_mem, self.r, self.v_leak, self.w_in

    def threshold(self):
        return self.v_threshold

    def reset_value(self):
        return self.v_reset

    def init_state(self) -> CubaState:
        return CubaState(i_syn=self.v_leak * 0.0, v=self.v_leak)

    def vector_field(self, state, drive):
        di, dv = cuba_field(state.i_syn, state.v, drive, *self._p())
        return CubaState(i_syn=di, v=dv)

    def propagate(self, state, drive, h):
        i, v = cuba_propagate(state.i_syn, state.v, drive, *self._p(), h)
        return CubaState(i_syn=i, v=v)

    def impulse(self, state, area):
        return CubaState(i_syn=state.i_syn + self.w_in * area / self.tau_syn, v=state.v)

    def extremum_time(self, state, drive):
        return cuba_extremum(state.i_syn, state.v, drive, *self._p())
