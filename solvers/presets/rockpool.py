r"""Rockpool 3.1.0's ``nn.modules.from_nir`` (the software model of Xylo) as a
preset.

Changes relative to the ideal model:

* each CubaLIF layer infers its own step ``dt_l = min(tau_mem/(1 + r))`` (not the
  user's ``dt``) and computes ``I = exp(-dt_l/tau_syn) (I + x)`` (the input is
  decayed in the step it arrives), ``V = exp(-dt_l/tau_mem) V + I + v_leak``;
  ``w_in`` and ``r`` ignored (except in ``dt_l``);
* several spikes per step: ``n = floor(V/th)`` when ``V >= th`` (at most 2^16),
  ``V -= n th``; initial state ``I = V = 0``;
* LI (``ExpSynTorch``): ``tau`` truncated to an integer (``tau.int()``, so 0 for any
  ``tau < 1``, which zeroes the output), ``v = exp(-dt_l/tau_int) (v + x)``,
  ``dt_l = min(tau/(1 + r))``; ``v_leak`` ignored;
* a recurrent layer is read as the graph is written (``Network.subgraphs``): a nested
  ``NIRGraph`` of exactly Input, CubaLIF, Affine/Linear and Output becomes a recurrent
  ``LIFTorch`` (the recurrent input is the previous step's spikes, the Affine's bias
  is dropped, Rockpool warns); in a flat graph (or any other form) the recurrent edge
  carries nothing, as in Rockpool, whose executor runs the recurrent weight after the
  layer it feeds (the recurrence is lost silently there; the published flat Braille
  files run without it).

Refused: LIF (the importer reads ``node.tau_mem``, which ``nir.LIF`` lacks, and
fails), IF, I, CubaLI, Conv, pooling, Flatten, Scale, Delay, Threshold.
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
import numpy as np

from nirsim.primitives import (
    LI,
    LIF,
    Affine,
    CubaLIF,
    CubaState,
    Input,
    Linear,
    MembraneState,
    Output,
)

from ..discrete.base import concrete
from ..discrete.rules import (
    AbstractReading,
    BySubtraction,
    EulerIntegrator,
    NeuronRule,
    Reaches,
)
from ._common import (
    AbstractPreset,
    _check_types,
    _cuba_decay,
    _li_decay,
    _ones,
    _refuse,
    _values,
    cycle_nodes,
)


class RockpoolReading(AbstractReading):
    """Rockpool's parameters as an Euler primitive (see the module docstring)."""

    def primitive(self, p, dt):
        if isinstance(p, CubaLIF):
            dt_l = jnp.min(p.tau_mem / (1.0 + p.r))
            e_s = jnp.exp(-dt_l / p.tau_syn)
            e_m = jnp.exp(-dt_l / p.tau_mem)
            one = _ones(e_m)
            return _cuba_decay(e_s, one, e_m, one, p.v_leak, p.v_threshold, 0 * one, dt)
        if isinstance(p, LI):
            dt_l = jnp.min(p.tau / (1.0 + p.r))
            tau_int = jnp.trunc(p.tau)
            pos = tau_int > 0
            e = jnp.where(pos, jnp.exp(-dt_l / jnp.where(pos, tau_int, 1.0)), 0.0)
            return _li_decay(e, _ones(e), dt)
        return p

    def init_state(self, p):
        if isinstance(p, CubaLIF):
            return CubaState(i_syn=0.0 * p.v_leak, v=0.0 * p.v_leak)
        return MembraneState(v=0.0 * p.v_leak)


class Rockpool(AbstractPreset):
    """Rockpool preset (see :mod:`nirsim.solvers.presets.rockpool`); ``dt`` only
    sets the grid."""

    name: ClassVar[str] = "rockpool"

    def neuron_rule(self, network, name, primitive):
        return NeuronRule(
            integrator=EulerIntegrator(new_current=True),
            test=Reaches(),
            reset=BySubtraction(),
            max_spikes_per_step=2**16,
            input_at_start=True,
            reading=RockpoolReading(),
            surrogate=self.surrogate,
        )

    def rewrite(self, network, name, primitive):
        p = primitive
        if isinstance(p, Affine | Linear) and name in cycle_nodes(network):
            if _nested_recurrent_layer(network, name):
                # LIFTorch(has_rec=True, w_rec=W.T): the bias is dropped (Rockpool warns)
                return Affine(p.weight, 0.0 * p.bias) if isinstance(p, Affine) else p
            # a recurrent edge of a flat graph: nirtorch's executor runs this weight
            # after the layer it feeds, on whole sequences, so nothing arrives
            if isinstance(p, Affine):
                return Affine(0.0 * p.weight, 0.0 * p.bias)
            return Linear(0.0 * p.weight)
        return p

    def check(self, network):
        fw = "rockpool"
        for n in network.order:
            p = network.nodes[n]
            if isinstance(p, LIF):
                _refuse(
                    fw,
                    n,
                    p,
                    "Rockpool 3.1's importer fails on LIF (it reads node.tau_mem, "
                    "which nir.LIF does not have)",
                )
        _check_types(fw, network, (Input, Output, Affine, Linear, CubaLIF, LI))
        for n in network.order:
            p = network.nodes[n]
            if isinstance(p, CubaLIF | LI) and concrete(p):
                tau = _values(p.tau_mem if isinstance(p, CubaLIF) else p.tau)
                if np.min(tau / (1.0 + _values(p.r))) <= 0 or np.any(_values(p.r) <= -1):
                    _refuse(fw, n, p, "the inferred step min(tau/(1 + r)) must be > 0")
        super().check(network)


def _nested_recurrent_layer(network, name) -> bool:
    """True when node ``name`` sits in a nested ``NIRGraph`` that Rockpool maps to a
    recurrent ``LIFTorch``: exactly four nodes, Input, Output, CubaLIF and one Affine
    or Linear (``_convert_nir_to_rockpool``'s test)."""
    sub = network.subgraph_of(name)
    if sub is None:
        return False
    return sorted(sub[1]) in (
        sorted(["Input", "Output", "CubaLIF", "Affine"]),
        sorted(["Input", "Output", "CubaLIF", "Linear"]),
    )
