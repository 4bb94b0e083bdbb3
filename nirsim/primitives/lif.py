"""Leaky integrate-and-fire neuron (NIR ``LIF``)."""

from __future__ import annotations

import equinox as eqx

from .._custom_types import NeuronArray, Shape
from ._families import AbstractLeaky
from .base import AbstractSpikingNeuron, as_param


class LIF(AbstractLeaky, AbstractSpikingNeuron):
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
    positive_params = ("tau",)
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

    def threshold(self):
        return self.v_threshold

    def reset_value(self):
        return self.v_reset
