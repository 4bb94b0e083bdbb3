"""Current-based leaky integrator (NIR ``CubaLI``)."""

from __future__ import annotations

import equinox as eqx
import nir

from .._custom_types import NeuronArray, Shape
from ._dynamics import cuba_field, cuba_propagate
from .base import (
    AbstractNeuron,
    as_param,
    check_finite,
    check_positive,
    check_same_shape,
    source_dtypes,
)
from .states import CubaState


class CubaLI(AbstractNeuron):
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

    def __check_init__(self):
        check_same_shape(self, self.param_names)
        check_finite(self, self.param_names)
        check_positive(self, ("tau_syn", "tau_mem"))

    @classmethod
    def from_nir(cls, node: nir.CubaLI, in_shape: Shape | None) -> CubaLI:
        return cls(
            node.tau_syn,
            node.tau_mem,
            node.r,
            node.v_leak,
            node.w_in,
            source_dtypes=source_dtypes(node, cls.param_names),
        )

    def to_nir(self) -> nir.CubaLI:
        return nir.CubaLI(**{n: self._export(n) for n in self.param_names})

    def _p(self):
        return self.tau_syn, self.tau_mem, self.r, self.v_leak, self.w_in

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
