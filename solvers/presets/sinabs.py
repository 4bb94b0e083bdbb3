r"""Sinabs 3.1.3's ``sinabs.from_nir`` (the software model of Speck) as a preset.

Changes relative to the ideal model:

* time constants are read **in steps**: a LIF or LI decays by ``exp(-1/tau)`` per
  step whatever ``dt`` (``tau = 2.5e-3`` forgets everything each step); the grid step
  only stamps spikes and samples;
* LIF: ``v = exp(-1/tau) v + x``; LI (``ExpLeak``): the same without spikes; ``r``,
  ``v_reset`` ignored;
* IF (``IAF``): ``v += x``; ``r``, ``v_reset`` ignored; ``v`` clamped to
  ``>= -v_threshold`` after each step;
* several spikes per step: ``n = trunc(v/th)`` when ``v > 0``, one division in the
  run's dtype (float32 by default, as Sinabs), ``v -= n th`` (reset by subtraction);
  initial state 0.

Refused: CubaLIF (Sinabs has none), Linear, I, CubaLI, AvgPool2d, Scale, Delay,
Threshold (no mapping in the importer), LIF or LI with ``v_leak != 0``, LI with
``r != 1``, SumPool2d with padding (ignored by Sinabs).
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
import numpy as np

from nirsim.primitives import (
    IF,
    LI,
    LIF,
    Affine,
    Conv1d,
    Conv2d,
    CubaLIF,
    Flatten,
    Input,
    Output,
    SumPool2d,
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
    _li_decay,
    _lif_decay,
    _ones,
    _refuse,
    _values,
    _zero_padding,
)


class SinabsReading(AbstractReading):
    """Sinabs' parameters as an Euler primitive (see the module docstring)."""

    def primitive(self, p, dt):
        if isinstance(p, LIF):
            a = jnp.exp(-1.0 / p.tau)
            return _lif_decay(a, _ones(a), 0.0 * a, p.v_threshold, 0.0 * a, dt)
        if isinstance(p, LI):
            a = jnp.exp(-1.0 / p.tau)
            return _li_decay(a, _ones(a), dt)
        if isinstance(p, IF):
            return IF(_ones(p.r) / dt, p.v_threshold, 0.0 * p.r)
        return p


class Sinabs(AbstractPreset):
    """Sinabs preset (see :mod:`nirsim.solvers.presets.sinabs`); ``dt`` only sets
    the grid."""

    name: ClassVar[str] = "sinabs"

    def neuron_rule(self, network, name, primitive):
        return NeuronRule(
            integrator=EulerIntegrator(),
            test=Reaches(),
            reset=BySubtraction(),
            max_spikes_per_step=None,
            spikes_by_division=True,
            floor_at_minus_threshold=isinstance(primitive, IF),
            reading=SinabsReading(),
            surrogate=self.surrogate,
        )

    def check(self, network):
        fw = "sinabs"
        allowed = (Input, Output, Affine, Conv1d, Conv2d, SumPool2d, Flatten, IF, LIF)
        extra = "; Sinabs has no CubaLIF" if network.names_of(CubaLIF) else ""
        _check_types(fw, network, allowed + (LI,), extra)
        for n in network.order:
            p = network.nodes[n]
            if isinstance(p, SumPool2d):
                _zero_padding(fw, n, p)
            if not concrete(p):
                continue
            if isinstance(p, LIF | LI) and np.any(_values(p.v_leak) != 0):
                _refuse(fw, n, p, "`v_leak` must be 0 (Sinabs refuses it)")
            if isinstance(p, LI) and np.any(_values(p.r) != 1):
                _refuse(fw, n, p, "`r` must be 1 (Sinabs refuses it)")
        super().check(network)
