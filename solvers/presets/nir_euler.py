r"""The NIR repository's reference reading: forward Euler, every parameter as in
the graph (``r``, ``w_in``, ``v_leak``, ``v_reset``), nirsim's initial state.

``I+ = I + dt/tau_syn (-I + w_in x)``, ``v+ = v + dt/tau_mem (v_leak - v + r I)``
with the **old** current, spike ``v+ > v_th``, reset as ``simulate`` says; a spike is
the value 1 for one step. Each CubaLIF layer therefore lags the frameworks (which use
the new current) by one step. Every node type runs.
"""

from __future__ import annotations

from typing import ClassVar

from ..discrete.rules import EulerIntegrator, Exceeds, NeuronRule
from ._common import AbstractPreset


class NirEuler(AbstractPreset):
    """The NIR repository's Euler reference (see
    :mod:`nirsim.solvers.presets.nir_euler`)."""

    name: ClassVar[str] = "nir-euler"

    def neuron_rule(self, network, name, primitive):
        return NeuronRule(
            integrator=EulerIntegrator(), test=Exceeds(), surrogate=self.surrogate
        )
