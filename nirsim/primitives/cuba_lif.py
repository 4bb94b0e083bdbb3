"""Current-based leaky integrate-and-fire neuron (NIR ``CubaLIF``)."""

from __future__ import annotations

import equinox as eqx

from .._custom_types import NeuronArray, Shape
from ._families import AbstractCuba
from .base import AbstractSpikingNeuron, as_param


class CubaLIF(AbstractCuba, AbstractSpikingNeuron):
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
    positive_params = ("tau_syn", "tau_mem")
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

    def threshold(self):
        return self.v_threshold

    def reset_value(self):
        return self.v_reset
