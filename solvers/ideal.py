"""The ideal (exact, continuous-time) solvers and their registration by name."""

from __future__ import annotations

from . import registry
from .base import AbstractSolver, SimOptions
from .closed_form import ClosedForm
from .diffrax_solver import Diffrax
from .structure import check_delays_and_thresholds, coupling_report


class Ideal(AbstractSolver):
    """The exact answer: :class:`ClosedForm` where it applies (every neuron's drive
    piecewise constant between events), :class:`Diffrax` otherwise."""

    name = "ideal"

    def check(self, network) -> None:
        check_delays_and_thresholds(network)

    def solve(self, network, inputs, ts, t_end, options: SimOptions):
        inner = Diffrax() if coupling_report(network) else ClosedForm()
        return inner.solve(network, inputs, ts, t_end, options)


registry.register("ideal", lambda dt: Ideal(), needs_dt=False)
registry.register("closed_form", lambda dt: ClosedForm(), needs_dt=False)
registry.register("diffrax", lambda dt: Diffrax(), needs_dt=False)
