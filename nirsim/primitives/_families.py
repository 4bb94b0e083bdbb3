"""The three families of NIR neurons: leaky (LI, LIF), integrating (I, IF) and
current-based (CubaLI, CubaLIF). Each family's dynamics live here once; the
primitives add their parameters (and, for the spiking ones, threshold and reset)."""

from __future__ import annotations

import equinox as eqx

from .._custom_types import NeuronArray
from ._dynamics import (
    cuba_crossing,
    cuba_extremum,
    cuba_field,
    cuba_propagate,
    integrator_crossing,
    leaky_crossing,
    leaky_field,
    leaky_propagate,
)
from .base import AbstractNeuron
from .states import CubaState, MembraneState


class AbstractLeaky(AbstractNeuron):
    """``tau dv/dt = (v_leak - v) + r x``; an impulse of area ``a`` adds ``r a / tau``;
    ``v(0) = v_leak``."""

    tau: eqx.AbstractVar[NeuronArray]
    r: eqx.AbstractVar[NeuronArray]
    v_leak: eqx.AbstractVar[NeuronArray]

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

    def crossing_root(self, state, drive, lo, hi):
        """Closed-form threshold crossing (spiking subclasses), see
        :meth:`AbstractSpikingNeuron.crossing_root`."""
        return leaky_crossing(
            state.v, drive, self.tau, self.r, self.v_leak, self.threshold()
        )


class AbstractIntegrator(AbstractNeuron):
    """``dv/dt = r x``; an impulse of area ``a`` adds ``r a``; ``v(0) = 0``."""

    r: eqx.AbstractVar[NeuronArray]

    def init_state(self) -> MembraneState:
        return MembraneState(v=self.r * 0.0)

    def vector_field(self, state, drive):
        return MembraneState(v=self.r * drive)

    def propagate(self, state, drive, h):
        return MembraneState(v=state.v + self.r * drive * h)

    def impulse(self, state, area):
        return MembraneState(v=state.v + self.r * area)

    def crossing_root(self, state, drive, lo, hi):
        """Closed-form threshold crossing (spiking subclasses), see
        :meth:`AbstractSpikingNeuron.crossing_root`."""
        return integrator_crossing(state.v, drive, self.r, self.threshold())


class AbstractCuba(AbstractNeuron):
    """``tau_syn di/dt = -i + w_in x``, ``tau_mem dv/dt = (v_leak - v) + r i``; an
    impulse of area ``a`` adds ``w_in a / tau_syn`` to ``i``; ``i(0) = 0``,
    ``v(0) = v_leak``."""

    tau_syn: eqx.AbstractVar[NeuronArray]
    tau_mem: eqx.AbstractVar[NeuronArray]
    r: eqx.AbstractVar[NeuronArray]
    v_leak: eqx.AbstractVar[NeuronArray]
    # ``w_in`` too; not declared here so that CubaLIF keeps NIR's field order
    # (``v_threshold``, ``v_reset`` before ``w_in``) for its pytree leaves

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

    def extremum_time(self, state, drive):
        """The one stationary point of ``v`` along :meth:`propagate` (or inf)."""
        return cuba_extremum(state.i_syn, state.v, drive, *self._p())

    def crossing_root(self, state, drive, lo, hi):
        """Closed-form threshold crossing where ``tau_mem / tau_syn`` is 2 or 1/2 (nan
        elsewhere), see :meth:`AbstractSpikingNeuron.crossing_root`."""
        return cuba_crossing(
            state.i_syn, state.v, drive, *self._p(), self.threshold(), lo, hi
        )
