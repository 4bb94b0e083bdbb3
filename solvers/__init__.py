"""How time advances: the event-driven ideal solvers and the discrete rules."""

from .base import AbstractSolver as AbstractSolver, SimOptions as SimOptions
from .closed_form import ClosedForm as ClosedForm
from .diffrax_solver import Diffrax as Diffrax
from .discrete import (
    AbstractInterpretation as AbstractInterpretation,
    AsGraph as AsGraph,
    Discrete as Discrete,
    DiscreteRules as DiscreteRules,
    euler as euler,
    exponential as exponential,
)
from .ideal import Ideal as Ideal
from .presets import (
    PRESETS as PRESETS,
    LavaFloat as LavaFloat,
    NirEuler as NirEuler,
    Norse as Norse,
    Rockpool as Rockpool,
    Sinabs as Sinabs,
    SnnTorch as SnnTorch,
    Spyx as Spyx,
    preset as preset,
)
from .surrogate import (
    AbstractSurrogate as AbstractSurrogate,
    Arctan as Arctan,
    FastSigmoid as FastSigmoid,
    Triangle as Triangle,
    heaviside as heaviside,
)
