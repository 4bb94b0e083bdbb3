r"""Lava's floating-point LIF process (``PyLifModelFloat``) behind the NIR paper's
converter (``nir_to_lava.py``, ``fixed_pt=False``; CubaLIF as lava-dl maps it).

One step: ``u = u (1 - du) + a_in``, ``v = v (1 - dv) + u + bias``, spike
``v > vth``, then ``v = 0``; ``a_in`` is what the Dense processes sent, and every
Dense (Affine, Linear) emits in step ``n`` what it received in step ``n - 1``: one
step of delay per weight layer.

Changes relative to the ideal model:

* LIF: ``du = 1`` (no current state), ``dv = dt/tau``, input scaled by ``dt/tau``:
  forward Euler with ``r`` ignored (taken as 1), ``v_leak`` ignored (bias 0), reset to
  0 (``v_reset`` ignored); the paper's converter puts a 1x1 Dense of weight
  ``dt/tau`` before each LIF, folded here into the neuron without an extra delay (as
  in the published traces, where one Dense sits between input and neuron: an input
  in step ``i`` shows in ``v`` at step ``i + 1``);
* CubaLIF: ``du = dt/tau_syn``, ``dv = dt/tau_mem``, input scaled by
  ``w_in dt/tau_syn``: Euler with the new current, ``r = tau_mem/dt``;
* initial state ``u = v = 0``; one spike per step.

Refused: Affine with a non-zero bias (the converter asserts), LIF-family nodes with
parameters lava-dl refuses (CubaLIF with ``v_leak != 0`` or ``r != tau_mem/dt``),
node types other than Affine, Linear, LIF, CubaLIF.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from nirsim.primitives import LIF, Affine, CubaLIF, Input, Linear, Output

from ..discrete.base import concrete
from ..discrete.rules import AbstractReading, EulerIntegrator, Exceeds, NeuronRule, ToZero
from ._common import AbstractPreset, _check_types, _ones, _refuse, _values


class LavaReading(AbstractReading):
    """Lava's parameters as an Euler primitive (see the module docstring)."""

    def primitive(self, p, dt):
        if isinstance(p, LIF):
            z = 0.0 * p.v_leak
            return LIF(p.tau, _ones(p.r), z, p.v_threshold, z)
        if isinstance(p, CubaLIF):
            z = 0.0 * p.v_leak
            return CubaLIF(
                p.tau_syn, p.tau_mem, p.tau_mem / dt, z, p.v_threshold, z, p.w_in
            )
        return p


class LavaFloat(AbstractPreset):
    """Lava floating-point preset (see :mod:`nirsim.solvers.presets.lava_float`)."""

    name: ClassVar[str] = "lava-float"
    dense_delay = True

    def neuron_rule(self, network, name, primitive):
        return NeuronRule(
            integrator=EulerIntegrator(new_current=True),
            test=Exceeds(),
            reset=ToZero(),
            reading=LavaReading(),
            surrogate=self.surrogate,
        )

    def check(self, network):
        fw = "lava-float"
        dt = float(self.dt)
        _check_types(fw, network, (Input, Output, Affine, Linear, LIF, CubaLIF))
        for n in network.order:
            p = network.nodes[n]
            if not concrete(p):
                continue
            if isinstance(p, Affine) and not np.allclose(_values(p.bias), 0.0):
                _refuse(fw, n, p, "non-zero bias is not supported by Lava's Dense")
            if isinstance(p, CubaLIF):
                if not np.allclose(_values(p.v_leak), 0.0):
                    _refuse(fw, n, p, "v_leak != 0 is not supported (lava-dl refuses)")
                if not np.allclose(_values(p.r), _values(p.tau_mem) / dt):
                    _refuse(fw, n, p, f"lava-dl requires r = tau_mem/dt (dt = {dt!r})")
        super().check(network)
