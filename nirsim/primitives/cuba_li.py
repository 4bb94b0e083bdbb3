"""Current-based leaky integrator (NIR ``CubaLI``)."""

from __future__ import annotations

import equinox as eqx

from .._custom_types import NeuronArray, Shape
from ._families import AbstractCuba
from .base import as_param


class CubaLI(AbstractCuba):
    r"""Current-based leaky integrator.

    ``tau_syn di/dt = -i + w_in x(t)``, ``tau_mem dv/dt = (v_leak - v) + r i``.

    * ``tau_syn``, ``tau_mem``: time constants (graph's time unit);
    * ``r``: resistance (voltage per unit of current); ``w_in``: input weight;
    * ``v_leak``: leak voltage.

    An impulse of area ``a`` makes ``i`` jump by ``w_in a / tau_syn``. The outgoing
    signal is the continuous ``v(t)``. Initial state ``i = 0``, ``v = v_leak``.
    Between events ``v`` is a difference of exponentials (``tau_syn == tau_mem``
    included, where it is ``t e^{-t/tau}``).
    """

    nir_type = "CubaLI"
    positive_params = ("tau_syn", "tau_mem")
    param_names = ("tau_syn", "tau_mem", "r", "v_leak", "w_in")

    tau_syn: NeuronArray
    tau_mem: NeuronArray
    r: NeuronArray
    v_leak: NeuronArray
    w_in: NeuronArray
    shape: Shape = eqx.field(static=True)

    def __init__(self, tau_syn, tau_mem, r, v_leak, w_in=1.0, *, source_dtypes=()):
        self.tau_syn = as_param(tau_syn, "tau_syn")
        self.tau_mem = as_param(tau_mem, "tau_mem")
        self.r = as_param(r, "r")
        self.v_leak = as_param(v_leak, "v_leak")
        self.shape = tuple(self.tau_mem.shape)
        self.w_in = as_param(w_in, "w_in", self.shape)
        self.source_dtypes = source_dtypes
