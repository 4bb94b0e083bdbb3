"""Solver lookup by name: ``simulate(..., solver="closed_form")`` and the CLI's
``--backend``. Discrete rules and presets register here with a factory that takes
``dt``."""

from __future__ import annotations

from collections.abc import Callable

from nirsim._errors import InputError

from .base import AbstractSolver

# name -> (factory(dt) -> solver, needs_dt)
_NAMED: dict[str, tuple[Callable[[float | None], AbstractSolver], bool]] = {}


def register(
    name: str, factory: Callable[[float | None], AbstractSolver], *, needs_dt: bool
) -> None:
    """Make ``factory`` available as ``solver=name`` (and ``--backend name``)."""
    _NAMED[name] = (factory, needs_dt)


def names() -> tuple[str, ...]:
    _load_builtin()
    return tuple(_NAMED)


def get_solver(solver, dt: float | None = None) -> AbstractSolver:
    """Resolve ``None``, a registered name or a solver instance."""
    _load_builtin()
    if solver is None:
        solver = "ideal"
    if isinstance(solver, AbstractSolver):
        if dt is not None:
            raise InputError("dt applies to a named solver; this instance has its own")
        return solver
    if isinstance(solver, str):
        if solver not in _NAMED:
            raise InputError(
                f"unknown solver {solver!r}; choose one of {', '.join(_NAMED)}"
            )
        factory, needs_dt = _NAMED[solver]
        if needs_dt and dt is None:
            raise InputError(f"solver {solver!r} is discrete: give its step dt")
        if not needs_dt and dt is not None:
            raise InputError(f"solver {solver!r} is exact in time: it takes no dt")
        return factory(dt)
    raise InputError(f"solver must be a name or a solver instance, not {solver!r}")


_loaded = False


def _load_builtin() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    import importlib

    for mod in (
        "nirsim.solvers.ideal",
        "nirsim.solvers.discrete",
        "nirsim.solvers.presets",
        "nirsim.hardware_models",
    ):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise
