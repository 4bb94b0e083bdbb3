"""The discrete engine, its step-rule contract and the rules for the graph as
written (see :mod:`.base` for the contract)."""

from .. import registry
from .base import (
    AbstractDiscrete as AbstractDiscrete,
    AbstractGridReading as AbstractGridReading,
    AbstractSpikeUnit as AbstractSpikeUnit,
    AbstractStepRule as AbstractStepRule,
    Drive as Drive,
    GridAsCurrent as GridAsCurrent,
    GridAsImpulses as GridAsImpulses,
    GridFromOptions as GridFromOptions,
    OneStep as OneStep,
    SpikeArea as SpikeArea,
)
from .euler import euler as euler
from .exponential import exponential as exponential
from .generic import Discrete as Discrete
from .rules import (
    AbstractIntegrator as AbstractIntegrator,
    AbstractReading as AbstractReading,
    AbstractReset as AbstractReset,
    AbstractThresholdTest as AbstractThresholdTest,
    AsWritten as AsWritten,
    BySubtraction as BySubtraction,
    EulerIntegrator as EulerIntegrator,
    Exceeds as Exceeds,
    ExponentialIntegrator as ExponentialIntegrator,
    NeuronRule as NeuronRule,
    Reaches as Reaches,
    ResetFromOptions as ResetFromOptions,
    ThresholdRule as ThresholdRule,
    ToVReset as ToVReset,
    ToZero as ToZero,
)

registry.register("euler", euler, needs_dt=True)
registry.register("exponential", exponential, needs_dt=True)
