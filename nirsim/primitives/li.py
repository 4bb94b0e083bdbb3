"""Leaky integrator (NIR ``LI``)."""

from __future__ import annotations

import equinox as eqx

from .._custom_types import NeuronArray, Shape
from ._families import AbstractLeaky
from .base import as_param


class LI(AbstractLeaky):
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
    positive_params = ("tau",)
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
