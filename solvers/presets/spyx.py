r"""Spyx 1.0.0's ``spyx.nir.from_nir(graph, dt=...)`` as a preset (Spyx's default
``dt`` is 1; the preset uses the step it is given).

Changes relative to the ideal model:

* every spiking layer decides ``z = V > th`` on the membrane carried into the step:
  one step of latency per spiking layer, and the spike is stamped in the step it
  leaves;
* LIF: ``V = beta V + x - z th``, ``beta = clip(1 - dt/tau, 0, 1)``; no
  ``r dt/tau`` input factor; ``r``, ``v_leak``, ``v_reset`` ignored;
* CubaLIF (``CuBaLIF``): ``V <- V - z th``, ``I = alpha I + x``, ``V = beta V + I+``
  (the subtraction comes before the decay here, unlike LIF); ``w_in``, ``r``,
  ``v_leak``, ``v_reset`` ignored;
* IF: ``V = V + x - z th``; reset always by subtraction; initial state 0;
* ``Flatten`` after a convolution flattens channels-last data, so the next Affine
  sees the features in ``(h, w, c)`` order instead of ``(c, h, w)``;
* a recurrent CubaLIF (fed back through one Affine/Linear, in a nested subgraph or
  flat: Spyx folds the flat pair itself) is Spyx's ``RCuBaLIF``: ``z = V > th`` on the
  carried membrane, ``V -= z th``, ``I = alpha I + x + z W_rec`` (this step's spike
  fed back in this step, the recurrent bias dropped), ``V = beta V + I``.

Refused: graphs that are not one chain from a node named ``input`` to a node named
``output`` apart from that recurrent pair (the importer follows the first edge out of
``"input"`` until ``"output"`` and drops the rest), other cycles (RLIF, RIF and longer
loops are not emulated), node types other than Affine,
Linear, Conv2d, SumPool2d, Flatten, IF, LIF, CubaLIF (an LI is only read as the
membrane of a PSU_LIF, not emulated), SumPool2d with padding (Spyx switches to
``SAME``).
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp

from nirsim._errors import GraphError
from nirsim.primitives import (
    IF,
    LIF,
    Affine,
    Conv2d,
    CubaLIF,
    Flatten,
    Input,
    Linear,
    Output,
    SumPool2d,
)

from ..discrete.rules import (
    AbstractReading,
    BySubtraction,
    EulerIntegrator,
    Exceeds,
    NeuronRule,
)
from ._common import (
    AbstractPreset,
    ChannelsLastFlatten,
    _check_types,
    _cuba_decay,
    _lif_decay,
    _ones,
    _refuse,
    _zero_padding,
    recurrent_layers,
    refuse_other_cycles,
)


class SpyxReading(AbstractReading):
    """Spyx's parameters as an Euler primitive (see the module docstring)."""

    def primitive(self, p, dt):
        if isinstance(p, LIF):
            beta = jnp.clip(1.0 - dt / p.tau, 0.0, 1.0)
            z = 0.0 * beta
            return _lif_decay(beta, _ones(beta), z, p.v_threshold, z, dt)
        if isinstance(p, CubaLIF):
            alpha = jnp.clip(1.0 - dt / p.tau_syn, 0.0, 1.0)
            beta = jnp.clip(1.0 - dt / p.tau_mem, 0.0, 1.0)
            one = _ones(beta)
            return _cuba_decay(alpha, one, beta, one, 0.0 * one, p.v_threshold, 0 * one, dt)
        if isinstance(p, IF):
            return IF(_ones(p.r) / dt, p.v_threshold, 0.0 * p.r)
        return p


class Spyx(AbstractPreset):
    """Spyx preset (see :mod:`nirsim.solvers.presets.spyx`)."""

    name: ClassVar[str] = "spyx"

    def neuron_rule(self, network, name, primitive):
        layers = recurrent_layers(network, CubaLIF)
        weight = {n: w for w, n in layers.items()}.get(name)
        return NeuronRule(
            integrator=EulerIntegrator(new_current=True),
            test=Exceeds(),
            reset=BySubtraction(),
            fire_on_carried=True,
            reset_next_step=isinstance(primitive, CubaLIF),
            # RCuBaLIF: the recurrent weight acts inside the layer, in the same step
            feedback=None if weight is None else network.nodes[weight].weight,
            reading=SpyxReading(),
            surrogate=self.surrogate,
        )

    def rewrite(self, network, name, primitive):
        if isinstance(primitive, Flatten) and len(primitive.input_shape) == 3:
            return ChannelsLastFlatten(input_shape=primitive.input_shape)
        if name in recurrent_layers(network, CubaLIF):
            # RCuBaLIF applies the weight itself (feedback); its bias is not imported
            return Linear(0.0 * primitive.weight)
        return primitive

    def check(self, network):
        fw = "spyx"
        allowed = (Input, Output, Affine, Linear, Conv2d, SumPool2d, Flatten, IF, LIF)
        _check_types(fw, network, allowed + (CubaLIF,))
        layers = recurrent_layers(network, CubaLIF)
        refuse_other_cycles(
            fw,
            network,
            layers,
            "Spyx maps a recurrent layer only as RCuBaLIF (a CubaLIF fed back through "
            "one Affine/Linear); other cycles are not emulated",
        )
        for n in network.order:
            p = network.nodes[n]
            if isinstance(p, SumPool2d):
                _zero_padding(fw, n, p)
            if n in layers:
                continue
            succ = [m for m in network.successors(n) if m not in layers]
            pred = [m for m in network.predecessors(n) if m not in layers]
            if len(succ) > 1 or len(pred) > 1:
                _refuse(
                    fw,
                    n,
                    p,
                    "Spyx imports a graph as one chain from 'input' to 'output'; this "
                    "node branches or merges",
                )
        if network.inputs != ("input",) or network.outputs != ("output",):
            raise GraphError(
                "spyx preset: Spyx's importer follows edges from a node named 'input' "
                f"to one named 'output'; this graph has inputs {network.inputs} and "
                f"outputs {network.outputs}"
            )
        super().check(network)
