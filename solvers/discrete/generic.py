"""A discrete solver configured by hand: one :class:`~.rules.NeuronRule` for every
neuron, and the engine's choices as fields."""

from __future__ import annotations

import dataclasses
from typing import Any

import equinox as eqx

from nirsim.primitives import AbstractSpikingNeuron, Threshold

from ..surrogate import AbstractSurrogate, FastSigmoid
from .base import (
    AbstractDiscrete,
    AbstractGridReading,
    AbstractSpikeUnit,
    GridFromOptions,
    SpikeArea,
    checked_dt,
)
from .rules import NeuronRule, ThresholdRule


class Discrete(AbstractDiscrete):
    r"""A fixed-step solver with one rule for every neuron.

    Args:
        dt: the step, in the graph's time unit (> 0).
        neuron_rule: the :class:`~nirsim.solvers.NeuronRule` of every neuron (default:
            Euler, ``>=``, reset as ``simulate`` says, in the same step, one spike
            per step); a ``Threshold`` node uses its threshold test.
        spike_unit: :class:`~nirsim.solvers.SpikeArea` (default: impulses of area
            ``spike_area``) or :class:`~nirsim.solvers.OneStep` (area ``dt``).
        grid_reading: how gridded inputs are read (default: ``simulate``'s
            ``grid_as``).
        late_spikes: every spiking node's spikes reach its targets one step late.
        dense_delay: every weight node emits one step late (Loihi's Dense).
        zero_initial_feedback: a recurrent edge carries nothing in step 0.
        surrogate: the derivative used for spikes (default ``FastSigmoid(25)``).
        dtype: ``"float32"`` or ``"float64"`` (default: float64 when x64 is on).
        label: the back-end name recorded in the Trace.

    ``nirsim.simulate(net, x, t_end=..., save_dt=..., solver="euler", dt=1e-4)``
    selects the Euler configuration by name.
    """

    dt: float = eqx.field(static=True, converter=checked_dt)
    neuron_rule: NeuronRule = NeuronRule()
    spike_unit: AbstractSpikeUnit = SpikeArea()
    grid_reading: AbstractGridReading = GridFromOptions()
    late_spikes: bool = eqx.field(static=True, default=False)
    dense_delay: bool = eqx.field(static=True, default=False)
    zero_initial_feedback: bool = eqx.field(static=True, default=False)
    surrogate: AbstractSurrogate = FastSigmoid()
    dtype: Any = eqx.field(static=True, default=None)
    label: str = eqx.field(static=True, default="discrete")

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.label

    def rule(self, network, name, primitive):
        if isinstance(primitive, Threshold):
            return ThresholdRule(test=self.neuron_rule.test, surrogate=self.surrogate)
        return dataclasses.replace(self.neuron_rule, surrogate=self.surrogate)

    def delivers_late(self, network, name):
        prim = network.nodes[name]
        return self.late_spikes and isinstance(prim, AbstractSpikingNeuron | Threshold)
