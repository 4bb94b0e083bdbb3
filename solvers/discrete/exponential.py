"""Exponential integration on the step grid."""

from __future__ import annotations

from ..surrogate import AbstractSurrogate, FastSigmoid
from .generic import Discrete
from .rules import ExponentialIntegrator, NeuronRule


def exponential(dt: float, *, surrogate: AbstractSurrogate = FastSigmoid(), dtype=None):
    r"""Exponential integration: ``s+ = propagate(s, c, dt)``, exact for a drive
    held constant over each step, then the impulse jump of the step's arrivals;
    otherwise as :func:`euler`."""
    rule = NeuronRule(integrator=ExponentialIntegrator())
    return Discrete(
        dt, neuron_rule=rule, surrogate=surrogate, dtype=dtype, label="exponential"
    )
