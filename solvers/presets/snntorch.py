r"""snnTorch 1.0.0's ``import_from_nir`` as a preset.

Changes relative to the ideal model:

* ``dt`` is hard-coded to ``import_dt = 1e-4`` inside the importer: decays are
  ``beta = clip(1 - 1e-4/tau, 0, 1)`` whatever the grid step (with another ``dt``
  each grid step is still one snnTorch step);
* LIF (``Leaky``): ``m+ = beta m + x`` with the threshold divided by
  ``w = r 1e-4/tau`` (unless ``w`` is close to 1): exactly Euler in units of
  ``v = w m``; with neurons of different ``w`` the smallest ``w`` is used for all
  (``np.unique(w)[0]``); reset to zero (``v_reset`` ignored);
* CubaLIF (``Synaptic``): ``s+ = alpha s + x``, ``m+ = beta m + s+`` (the new
  current), threshold divided by ``w = w_in 1e-4/tau_syn``: Euler in units of
  ``w s``, ``w m`` with ``r`` taken as exactly ``tau_mem/1e-4``; reset to zero;
* IF becomes ``Leaky(beta=0.9)`` with reset by subtraction: a leak that is not in
  the graph (``v+ = 0.9 v + x``);
* spike test ``v > v_threshold``; one spike per step; initial state 0.

Refused (the importer asserts): LIF or CubaLIF with ``v_leak != 0``; CubaLIF with
``r`` not close to ``tau_mem/1e-4``; IF with ``r != 1``; layers whose (scaled)
threshold or IF ``r`` differs between neurons; cycles other than a CubaLIF fed back
through one Affine/Linear; node types other than Affine, Linear, Conv2d, Flatten,
AvgPool2d, IF, LIF, CubaLIF and those nirtorch maps by default (Conv1d, SumPool2d,
the latter only without padding, which nirtorch ignores). Not modelled: snnTorch's
double-reset guard (``do_reset = spk - reset``), which only matters when an IF's
membrane is still above threshold after a subtraction.

A recurrent CubaLIF (fed back through one Affine/Linear) is emulated as ``RSynaptic``,
what snnTorch's ``_nir_to_snntorch_module`` builds for it (``import_from_nir`` itself
fails on such graphs with nirtorch 2.6): the recurrent edge carries ``W z[t-1] + b``
(the bias from step 0), reset to zero, and the membrane is zeroed in the step *after*
a spike, that step's input included (``reset_timing="next_step_after_update"``), so
it never fires in two consecutive steps.

Convolutional graphs: with torch 2.x, snnTorch 1.0's importer fails on Conv2d (it
passes ``groups`` and ``padding`` as ``numpy.int64``, which ``torch.conv2d`` rejects);
the preset accepts them and computes what the importer builds when it works
(``nn.Conv2d`` followed by the layers above).
"""

from __future__ import annotations

import math
import warnings
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from nirsim.primitives import (
    IF,
    LIF,
    Affine,
    AvgPool2d,
    Conv1d,
    Conv2d,
    CubaLIF,
    Flatten,
    Input,
    Linear,
    Output,
    SumPool2d,
)

from ..discrete.base import concrete
from ..discrete.rules import (
    AbstractReading,
    BySubtraction,
    EulerIntegrator,
    Exceeds,
    NeuronRule,
    ToZero,
)
from ._common import (
    AbstractPreset,
    _check_types,
    _cuba_decay,
    _lif_decay,
    _ones,
    _refuse,
    _unique,
    _values,
    _zero_padding,
    recurrent_layers,
    refuse_other_cycles,
)

IMPORT_DT = 1e-4


class SnnTorchReading(AbstractReading):
    """snnTorch's parameters as an Euler primitive (see the module docstring)."""

    import_dt: float = eqx.field(static=True, default=IMPORT_DT)

    def primitive(self, p, dt):
        d0 = self.import_dt
        if isinstance(p, LIF):
            beta = jnp.clip(1.0 - d0 / p.tau, 0.0, 1.0)
            w = p.r * d0 / p.tau
            w0 = jnp.where(jnp.all(jnp.isclose(w, 1.0)), 1.0, jnp.min(w))
            return _lif_decay(beta, w0 * _ones(w), 0.0 * w, p.v_threshold, 0.0 * w, dt)
        if isinstance(p, CubaLIF):
            alpha = jnp.clip(1.0 - d0 / p.tau_syn, 0.0, 1.0)
            beta = jnp.clip(1.0 - d0 / p.tau_mem, 0.0, 1.0)
            w = p.w_in * d0 / p.tau_syn
            ws = jnp.where(jnp.all(jnp.isclose(w, 1.0)), _ones(w), w)
            z = 0.0 * w
            return _cuba_decay(alpha, ws, beta, _ones(w), z, p.v_threshold, z, dt)
        if isinstance(p, IF):
            one = _ones(p.r)
            return _lif_decay(0.9 * one, one, 0.0 * one, p.v_threshold, 0.0 * one, dt)
        return p


class SnnTorch(AbstractPreset):
    """snnTorch preset (see :mod:`nirsim.solvers.presets.snntorch`). Its importer
    hard-codes ``dt = 1e-4``; another ``dt`` only changes the grid (a warning says
    so)."""

    name: ClassVar[str] = "snntorch"

    def __check_init__(self):
        if not math.isclose(float(self.dt), IMPORT_DT, rel_tol=1e-9):
            warnings.warn(
                f"snntorch preset: snnTorch's importer hard-codes dt = {IMPORT_DT}; its "
                f"decays use that value, and each step of dt = {self.dt} is one "
                "snnTorch step (time constants are effectively scaled by dt/1e-4)",
                UserWarning,
                stacklevel=2,
            )

    def neuron_rule(self, network, name, primitive):
        reset = BySubtraction() if isinstance(primitive, IF) else ToZero()
        rsynaptic = name in recurrent_layers(network, CubaLIF).values()
        return NeuronRule(
            integrator=EulerIntegrator(new_current=True),
            test=Exceeds(),
            reset=reset,
            reset_next_step=rsynaptic,
            reset_after_update=rsynaptic,
            reading=SnnTorchReading(),
            surrogate=self.surrogate,
        )

    def check(self, network):
        fw = "snntorch"
        allowed = (Input, Output, Affine, Linear, Conv1d, Conv2d, Flatten, AvgPool2d)
        _check_types(fw, network, allowed + (SumPool2d, IF, LIF, CubaLIF))
        for n in network.names_of(SumPool2d):
            _zero_padding(fw, n, network.nodes[n])
        refuse_other_cycles(
            fw,
            network,
            recurrent_layers(network, CubaLIF),
            "snnTorch maps a recurrent layer only as RSynaptic (a CubaLIF fed back "
            "through one Affine/Linear); this cycle is not of that form",
        )
        d0 = IMPORT_DT
        for n in network.order:
            p = network.nodes[n]
            if not concrete(p):
                continue
            if isinstance(p, IF):
                _unique(fw, n, p, "v_threshold", p.v_threshold)
                _unique(fw, n, p, "r", p.r)
                if not np.all(_values(p.r) == 1):
                    _refuse(fw, n, p, "r != 1 is not supported by snnTorch's IF")
            elif isinstance(p, LIF):
                if not np.allclose(_values(p.v_leak), 0.0):
                    _refuse(fw, n, p, "v_leak != 0 is not supported by snnTorch")
                _unique(fw, n, p, "v_threshold", p.v_threshold)
            elif isinstance(p, CubaLIF):
                if not np.allclose(_values(p.v_leak), 0.0):
                    _refuse(fw, n, p, "v_leak != 0 is not supported by snnTorch")
                if not np.allclose(_values(p.r), _values(p.tau_mem) / d0):
                    _refuse(
                        fw,
                        n,
                        p,
                        f"snnTorch requires r = tau_mem/dt with its dt = {d0} "
                        f"(r ignored otherwise); got r = {_values(p.r).ravel()[0]!r}, "
                        f"tau_mem/dt = {_values(p.tau_mem).ravel()[0] / d0!r}",
                    )
                w = _values(p.w_in) * d0 / _values(p.tau_syn)
                th = _values(p.v_threshold)
                scaled = th if np.allclose(w, 1.0) else th / w
                _unique(fw, n, p, "v_threshold / (w_in dt/tau_syn)", scaled)
        super().check(network)
