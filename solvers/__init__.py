"""How time advances: the event-driven ideal solvers, the discrete engine with its
step rules, and the framework presets."""

from .base import AbstractSolver as AbstractSolver, SimOptions as SimOptions
from .closed_form import ClosedForm as ClosedForm
from .diffrax_solver import Diffrax as Diffrax
from .discrete import (
    AbstractDiscrete as AbstractDiscrete,
    AbstractGridReading as AbstractGridReading,
    AbstractIntegrator as AbstractIntegrator,
    AbstractReading as AbstractReading,
    AbstractReset as AbstractReset,
    AbstractSpikeUnit as AbstractSpikeUnit,
    AbstractStepRule as AbstractStepRule,
    AbstractThresholdTest as AbstractThresholdTest,
    AsWritten as AsWritten,
    BySubtraction as BySubtraction,
    Discrete as Discrete,
    Drive as Drive,
    EulerIntegrator as EulerIntegrator,
    Exceeds as Exceeds,
    ExponentialIntegrator as ExponentialIntegrator,
    GridAsCurrent as GridAsCurrent,
    GridAsImpulses as GridAsImpulses,
    GridFromOptions as GridFromOptions,
    NeuronRule as NeuronRule,
    OneStep as OneStep,
    Reaches as Reaches,
    ResetFromOptions as ResetFromOptions,
    SpikeArea as SpikeArea,
    ThresholdRule as ThresholdRule,
    ToVReset as ToVReset,
    ToZero as ToZero,
    euler as euler,
    exponential as exponential,
)
from .ideal import Ideal as Ideal
from .presets import (
    PRESETS as PRESETS,
    AbstractPreset as AbstractPreset,
    LavaFloat as LavaFloat,
    NirEuler as NirEuler,
    Norse as Norse,
    Rockpool as Rockpool,
    Sinabs as Sinabs,
    SnnTorch as SnnTorch,
    Spyx as Spyx,
    preset as preset,
)
from .results import RESULTS as RESULTS, Solution as Solution
from .surrogate import (
    AbstractSurrogate as AbstractSurrogate,
    Arctan as Arctan,
    FastSigmoid as FastSigmoid,
    Triangle as Triangle,
    heaviside as heaviside,
)
