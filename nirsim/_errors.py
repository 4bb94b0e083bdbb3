"""Exceptions raised by nirsim.

Every error caused by user input is a :class:`NirsimError` (a ``ValueError``) whose
message names the node, edge or field at fault and what was expected.
"""


class NirsimError(ValueError):
    """Base class of every nirsim error caused by the user's graph, input or options."""


class GraphError(NirsimError):
    """A NIR graph is malformed: unknown node, dangling edge, shape mismatch, loop..."""


class InputError(NirsimError):
    """Simulation inputs or data files do not fit the graph."""


class SimulationError(NirsimError):
    """A simulation failed at run time (event budget, Zeno cascade, non-finite state)."""

    def __init__(self, message: str, code: int = 0):
        super().__init__(message)
        self.code = code


def positive_number(x, name: str) -> float:
    """``x`` as a float, or an :class:`InputError` naming ``name`` unless it is a
    finite number > 0 (steps, end times, spike areas)."""
    import math

    try:
        v = float(x)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {x!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise InputError(f"{name} must be finite and > 0, got {v!r}")
    return v
