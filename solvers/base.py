"""The solver contract.

A solver turns a :class:`~nirsim.Network`, one sample of inputs and the simulation
options into a :class:`~nirsim.Trace`. :func:`nirsim.simulate` resolves and batches
the inputs, calls :meth:`AbstractSolver.check` once, then jit-compiles and
``vmap``s :meth:`AbstractSolver.solve` over the batch.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from nirsim._custom_types import Array

#: Name of the ``k``-th batch axis :func:`nirsim.simulate` maps ``solve`` over
#: (``k = 0``: the last batch axis), so a solver can tell the samples apart.
BATCH_AXIS = "nirsim_batch{}"

#: Most batch axes :func:`batch_index` looks for.
MAX_BATCH_AXES = 8


def batch_index() -> Array:
    """The flat (row-major) index of the sample being solved within the batch of a
    :func:`nirsim.simulate` call (0 for an unbatched call), for solvers that draw
    randomness per sample (a chip's trial noise). Traceable; call it inside
    :meth:`AbstractSolver.solve`."""
    index = jnp.zeros((), jnp.uint32)
    stride = 1
    for k in range(MAX_BATCH_AXES):
        name = BATCH_AXIS.format(k)
        try:
            i = jax.lax.axis_index(name)
        except NameError:  # no such axis: the batch has k axes
            break
        index = index + jnp.asarray(i, jnp.uint32) * jnp.uint32(stride)
        stride = stride * jax.lax.axis_size(name)
    return index


class SimOptions(eqx.Module):
    """Options shared by every solver (validated by :func:`nirsim.simulate`).

    * ``subtract``: reset by subtraction instead of to ``v_reset``;
    * ``spike_area``: area ``A`` of each emitted spike (graph's time unit x 1);
    * ``impulse_grid``: read gridded inputs as one impulse per bin instead of a
      piecewise-constant current;
    * ``max_events``: bound on solver steps (event-driven: events; discrete: unused);
    * ``max_spikes``: capacity of each spiking node's spike buffer;
    * ``max_cascade``: bound on firing rounds at one instant (Zeno guard);
    * ``rtol``, ``atol``: tolerances of adaptive solvers;
    * ``progress``: report simulated time to :mod:`nirsim._progress` as it goes.
    """

    spike_area: Array
    subtract: bool = eqx.field(static=True, default=False)
    impulse_grid: bool = eqx.field(static=True, default=False)
    max_events: int = eqx.field(static=True, default=100_000)
    max_spikes: int = eqx.field(static=True, default=10_000)
    max_cascade: int = eqx.field(static=True, default=1_000)
    rtol: float = eqx.field(static=True, default=1e-10)
    atol: float = eqx.field(static=True, default=1e-12)
    progress: bool = eqx.field(static=True, default=False)


class AbstractSolver(eqx.Module):
    """How time advances. Subclasses are final.

    ``check`` refuses (with a :class:`~nirsim.GraphError` naming node and reason) a
    graph the solver cannot simulate; ``solve`` simulates one unbatched sample and
    must be a pure, jit-able function of its array arguments.
    """

    name: ClassVar[str]

    def check(self, network) -> None:  # noqa: B027 (optional hook)
        """Refuse graphs this solver cannot simulate; default accepts all."""

    @abc.abstractmethod
    def solve(self, network, inputs: dict, ts: Array, t_end: float, options: SimOptions):
        """Simulate one sample: a :class:`~nirsim.solvers.results.Solution` (spikes
        per spiking node, as padded ``(times, indices)`` for exact back-ends or a
        count raster for discrete ones; states node -> field -> ``(len(ts),
        *shape)``; a :class:`~nirsim.solvers.results.RESULTS` item)."""

    def check_times(self, ts, t_end: float) -> None:  # noqa: B027 (optional hook)
        """Refuse sample times ``ts`` (numpy, before any tracing) this solver cannot
        produce, with an InputError (discrete solvers: times off their step grid);
        default accepts all."""

    def grid_dt(self) -> float | None:
        """Step of a discrete solver (spikes are stamped on its grid), or None."""
        return None
