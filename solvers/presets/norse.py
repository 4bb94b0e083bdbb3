r"""Norse 1.1.0's ``norse.torch.from_nir(graph, dt=...)`` as a preset (Norse's
default ``dt`` is 1e-3; the preset uses the step it is given).

Changes relative to the ideal model:

* LIF (``LIFBoxCell``): ``v += dt/tau (x + v_leak - v)``: forward Euler with ``r``
  ignored (taken as 1, Norse warns) and reset to 0 (``v_reset`` ignored);
* CubaLIF: ``I += dt/tau_syn (v_leak - I + w_in x)`` (the leak voltage also leaks
  the current), ``v += dt/tau_mem (v_leak - v + r I+)`` (the new current); reset to
  0 by value, or ``v <- v - v_threshold`` with ``reset="subtract"`` (Norse's
  ``reset_method``); initial state ``I = v = v_leak``;
* IF (``IAFCell``): ``v += x``: ``r`` and ``v_reset`` ignored (reset to 0);
* spike test ``v > v_threshold``; one spike per step;
* a recurrent edge delivers the previous step's output, and in step 0 nothing, not
  even the bias of the recurrent layer;
* Norse's ``Flatten`` flattens from dimension 0, which breaks batches larger than
  one; nirsim simulates one sample at a time, so that failure is not reproduced.

Refused: node types Norse's importer does not map (it maps Affine, Linear, Conv2d,
Flatten, SumPool2d, IF, LIF, CubaLIF; LI, I, CubaLI, Conv1d, AvgPool2d, Scale, Delay
and Threshold are not); SumPool2d with padding (ignored by Norse, which changes the
shape); a CubaLIF with ``w_in = 0`` and ``v_leak != 0`` (its current leak cannot be
expressed here).
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
import numpy as np

from nirsim.primitives import (
    IF,
    LIF,
    Affine,
    Conv2d,
    CubaLIF,
    CubaState,
    Flatten,
    Input,
    Linear,
    Output,
    SumPool2d,
)

from ..discrete.base import concrete
from ..discrete.rules import (
    AbstractReading,
    EulerIntegrator,
    Exceeds,
    NeuronRule,
    ResetFromOptions,
    ToVReset,
)
from ._common import (
    AbstractPreset,
    _check_types,
    _ones,
    _refuse,
    _values,
    _zero_padding,
)


class NorseReading(AbstractReading):
    """Norse's parameters as a nirsim primitive (see the module docstring)."""

    def primitive(self, p, dt):
        if isinstance(p, LIF):
            return LIF(p.tau, _ones(p.r), p.v_leak, p.v_threshold, 0.0 * p.v_reset)
        if isinstance(p, CubaLIF):
            return CubaLIF(
                p.tau_syn, p.tau_mem, p.r, p.v_leak, p.v_threshold, 0.0 * p.v_reset, p.w_in
            )
        if isinstance(p, IF):
            return IF(_ones(p.r) / dt, p.v_threshold, 0.0 * p.v_reset)
        return p

    def drive_offset(self, p, dt):
        if isinstance(p, CubaLIF):
            nz = p.w_in != 0
            return jnp.where(nz, p.v_leak / jnp.where(nz, p.w_in, 1.0), 0.0)
        return None

    def init_state(self, p):
        if isinstance(p, CubaLIF):
            return CubaState(i_syn=p.v_leak, v=p.v_leak)
        return p.init_state()


class Norse(AbstractPreset):
    """Norse preset (see :mod:`nirsim.solvers.presets.norse`)."""

    name: ClassVar[str] = "norse"
    zero_initial_feedback = True

    def neuron_rule(self, network, name, primitive):
        reset = ResetFromOptions() if isinstance(primitive, CubaLIF) else ToVReset()
        return NeuronRule(
            integrator=EulerIntegrator(new_current=True),
            test=Exceeds(),
            reset=reset,
            reading=NorseReading(),
            surrogate=self.surrogate,
        )

    def check(self, network):
        fw = "norse"
        allowed = (Input, Output, Affine, Linear, Conv2d, Flatten, SumPool2d, IF, LIF)
        _check_types(fw, network, allowed + (CubaLIF,))
        for n in network.order:
            p = network.nodes[n]
            if isinstance(p, SumPool2d):
                _zero_padding(fw, n, p)
            if isinstance(p, CubaLIF) and concrete(p):
                bad = (_values(p.w_in) == 0) & (_values(p.v_leak) != 0)
                if np.any(bad):
                    _refuse(
                        fw,
                        n,
                        p,
                        "w_in = 0 with v_leak != 0: Norse's current leak towards "
                        "v_leak cannot be expressed for it",
                    )
        super().check(network)
