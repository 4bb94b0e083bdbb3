"""Integrate-and-fire neuron (NIR ``IF``)."""

from __future__ import annotations

import equinox as eqx

from .._custom_types import NeuronArray, Shape
from ._families import AbstractIntegrator
from .base import AbstractSpikingNeuron, as_param


class IF(AbstractIntegrator, AbstractSpikingNeuron):
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

    def threshold(self):
        return self.v_threshold

    def reset_value(self):
        return self.v_reset
