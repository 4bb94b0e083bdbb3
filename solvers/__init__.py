"""How time advances: the event-driven ideal solvers and the discrete rules."""

from .base import AbstractSolver as AbstractSolver, SimOptions as SimOptions
from .closed_form import ClosedForm as ClosedForm
from .diffrax_solver import Diffrax as Diffrax
from .ideal import Ideal as Ideal
