"""The ideal (exact, continuous-time) solvers and their registration by name."""

from __future__ import annotations

import equinox as eqx

from . import registry
from ._event_loop import check_adjoint
from .base import AbstractSolver, SimOptions
from .closed_form import ClosedForm
from .diffrax_solver import Diffrax
from .structure import check_delays_and_thresholds, coupling_report


class Ideal(AbstractSolver):
    """The exact answer: :class:`ClosedForm` where it applies (every neuron's drive
    piecewise constant between events), :class:`Diffrax` otherwise.

    ``adjoint`` and ``checkpoints`` choose how the closed-form path is
    differentiated (see :class:`ClosedForm`): ``"checkpointed"`` (default) for
    reverse mode (``jax.grad``), ``"forward"`` for forward mode (``jax.jvp``)."""

    name = "ideal"
    adjoint: str = eqx.field(static=True, default="checkpointed")
    checkpoints: int | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        check_adjoint(self.adjoint, self.checkpoints)

    def check(self, network) -> None:
        check_delays_and_thresholds(network)

    def _inner(self, network):
        if coupling_report(network):
            return Diffrax()
        return ClosedForm(adjoint=self.adjoint, checkpoints=self.checkpoints)

    def solve(self, network, inputs, ts, t_end, options: SimOptions):
        return self._inner(network).solve(network, inputs, ts, t_end, options)

    def solve_batch(self, network, inputs, ts, t_end, options: SimOptions):
        """:meth:`solve` for inputs with one leading batch axis, without lockstep."""
        return self._inner(network).solve_batch(network, inputs, ts, t_end, options)


registry.register("ideal", lambda dt: Ideal(), needs_dt=False)
registry.register("closed_form", lambda dt: ClosedForm(), needs_dt=False)
registry.register("diffrax", lambda dt: Diffrax(), needs_dt=False)
