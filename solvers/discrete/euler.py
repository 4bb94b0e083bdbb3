"""Forward Euler on the step grid."""

from __future__ import annotations

from ..surrogate import AbstractSurrogate, FastSigmoid
from .generic import Discrete
from .rules import EulerIntegrator, NeuronRule


def euler(dt: float, *, surrogate: AbstractSurrogate = FastSigmoid(), dtype=None):
    r"""Forward Euler, ``s+ = s + dt f(s, x)`` with ``x = c + a/dt`` (order 1 in
    ``dt``); ``>=`` threshold test, reset as ``simulate`` says, one spike per step,
    spikes as impulses of area ``spike_area`` delivered in the step they are emitted.
    """
    rule = NeuronRule(integrator=EulerIntegrator())
    return Discrete(dt, neuron_rule=rule, surrogate=surrogate, dtype=dtype, label="euler")
