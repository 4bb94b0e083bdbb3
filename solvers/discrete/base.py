r"""The contract of the discrete engine: step rules and discrete solvers.

Two roles, as in diffrax (``AbstractSolver.init`` / ``step``) and optax
(``init`` / ``update``):

* The **engine** (:mod:`nirsim.solvers.discrete.engine`) owns everything that is
  about the graph and about time: the step grid ``t_n = n dt``, the evaluation order
  of the nodes within a step, when a spike reaches the nodes downstream, Delays,
  graph inputs, sampling of states, batching and the one ``jax.lax.scan``. Spikes are
  kept as per-step count rasters (no event buffers).
* A **step rule** (:class:`AbstractStepRule`) owns the discrete arithmetic of one
  stateful node (a neuron or a Threshold) and nothing else:

  ``params = rule.interpret(primitive, dt, options)``
      the node's parameters as the framework or chip reads them (decay factors, a
      rewritten primitive, integer mantissas and exponents, ...); called once per
      run, inside the traced program (so gradients reach the Network's parameters).
  ``state = rule.init(params, dt)``
      the state before step 0 (any pytree: floats, or integers for a chip).
  ``state, spikes = rule.step(params, state, drive, dt)``
      one step. ``drive`` is a :class:`Drive`: the continuous input held over the
      step and the area of the impulses arriving in it, in the graph's units.
      ``spikes`` is the number of spikes of each neuron in the step (a float array
      that may carry a surrogate gradient; zeros for a non-spiking neuron).
  ``rule.output(params, state)``
      the continuous value the node sends downstream (a non-spiking neuron's
      membrane), or ``None`` for spiking nodes.
  ``rule.observe(params, state)``
      the state fields recorded in the Trace (``{"v": ..., "i_syn": ...}``).

  A rule never re-implements the graph (the engine does) nor a primitive's
  continuous mathematics: a rule for the graph as written calls the primitive's
  ``vector_field`` / ``propagate`` / ``impulse``; a framework's or chip's rule writes
  its own discrete arithmetic (``V = beta V + x``, integer decays with shifts and
  saturation) on the parameters its ``interpret`` produced.

A **discrete solver** (:class:`AbstractDiscrete`) is the engine's configuration:
``dt``, the dtype it computes in, which step rule each node gets (:meth:`rule`),
how spikes and gridded inputs are read (:class:`AbstractSpikeUnit`,
:class:`AbstractGridReading`), which emitters deliver one step late, and what it
refuses (:meth:`check`, called once when a simulation is built, naming node and
reason). Framework presets (``solvers/presets/``) and hardware models are discrete
solvers.
"""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from nirsim._custom_types import Array
from nirsim._errors import GraphError, InputError, positive_number
from nirsim.primitives import (
    AbstractNeuron,
    AbstractPrimitive,
    AbstractStateless,
    Affine,
    Conv1d,
    Conv2d,
    Delay,
    Linear,
    Threshold,
)
from nirsim.primitives.base import is_concrete

from ..base import AbstractSolver, SimOptions
from ..surrogate import AbstractSurrogate


class Drive(eqx.Module):
    """What reaches a stateful node in one step (graph units).

    * ``current``: the continuous input held over the step (``c``), shape of the node;
    * ``impulse``: the total area of the impulses arriving in the step (``a``);
    * ``unit``: the area one emitted spike carries (``spike_area``, or ``dt`` for
      frameworks), for rules that feed their own spikes back.

    Frameworks that feed "the step's input" ``x`` read :meth:`total`
    (``x = c + a/dt``: a spike of area ``dt`` counts 1).
    """

    current: Array
    impulse: Array
    unit: Array

    def total(self, dt) -> Array:
        return self.current + self.impulse / dt


class AbstractStepRule(eqx.Module):
    """One stateful primitive's discrete arithmetic (see the module docstring)."""

    @abc.abstractmethod
    def interpret(
        self, primitive: AbstractPrimitive, dt: float, options: SimOptions
    ) -> Any:
        """The parameters as this rule reads them (a pytree; traced)."""

    @abc.abstractmethod
    def init(self, params: Any, dt: float) -> Any:
        """The state before step 0."""

    @abc.abstractmethod
    def step(self, params: Any, state: Any, drive: Drive, dt: float) -> tuple[Any, Array]:
        """One step: ``(new_state, spikes)`` with ``spikes`` the count per neuron."""

    def init_at_rest(self, params: Any, dt: float, rest: Drive) -> Any:
        """The state before step 0 given the node's input at rest (default
        :meth:`init`; a Threshold needs to know whether its input starts above)."""
        return self.init(params, dt)

    @property
    def spikes_per_step(self) -> int | None:
        """Most spikes of one neuron in one step (``None``: no bound); sets the
        raster's integer type."""
        return 1

    def output(self, params: Any, state: Any) -> Array | None:
        """Continuous output sent downstream (``None``: the node emits spikes)."""
        return None

    def observe(self, params: Any, state: Any) -> dict[str, Array]:
        """State fields recorded in the Trace (default: the state's own fields)."""
        if isinstance(state, eqx.Module):
            return {k: getattr(state, k) for k in state.__dataclass_fields__}
        return {}

    def check(self, name: str, primitive: AbstractPrimitive) -> None:  # noqa: B027
        """Refuse (GraphError naming ``name`` and the reason) a node this rule cannot
        step; called once, on concrete parameters."""


# ------------------------------------------------------------------ engine strategies
class AbstractSpikeUnit(eqx.Module):
    """The area an emitted spike (and an input event of value 1) carries."""

    @abc.abstractmethod
    def area(self, dt: float, options: SimOptions) -> Array: ...


class SpikeArea(AbstractSpikeUnit):
    """An impulse of area ``spike_area`` (NIR's formalism; the default)."""

    def area(self, dt, options):
        return options.spike_area


class OneStep(AbstractSpikeUnit):
    """The value 1 held for one step (area ``dt``), as every framework feeds spikes to
    the next layer; ``spike_area`` is ignored."""

    def area(self, dt, options):
        return jnp.asarray(dt)


class AbstractGridReading(eqx.Module):
    """How a gridded input (:class:`~nirsim.Current`) is read."""

    @abc.abstractmethod
    def as_impulses(self, options: SimOptions) -> bool: ...


class GridFromOptions(AbstractGridReading):
    """As :func:`nirsim.simulate`'s ``grid_as`` says (default)."""

    def as_impulses(self, options):
        return options.impulse_grid


class GridAsCurrent(AbstractGridReading):
    """The value held over the step (a bin that does not match the step is averaged
    over it): the step's input ``x[n]`` for a framework."""

    def as_impulses(self, options):
        return False


class GridAsImpulses(AbstractGridReading):
    """One impulse of area ``x[b] * A`` in the step holding ``b dt_in``."""

    def as_impulses(self, options):
        return True


WEIGHT_NODES = (Affine, Linear, Conv1d, Conv2d)

#: Relative tolerance with which a sample time counts as lying on the step grid.
GRID_RTOL = 1e-9


class AbstractDiscrete(AbstractSolver):
    """A fixed-step solver: the discrete engine configured (subclasses are final).

    Subclasses provide :meth:`rule` (the step rule of each neuron and Threshold) and
    may override :meth:`check`, :meth:`rewrite` (a framework's reading of a stateless
    node), :meth:`delivers_late` and the class-level choices below.
    """

    dt: eqx.AbstractVar[float]
    surrogate: eqx.AbstractVar[AbstractSurrogate]
    dtype: eqx.AbstractVar[Any]

    # The engine's choices, overridden by subclasses (class attributes or fields):
    #: area of an emitted spike and of an input event of value 1
    spike_unit = SpikeArea()
    #: how gridded inputs are read
    grid_reading = GridFromOptions()
    #: each weight node (Affine, Linear, Conv) emits in step n what it received in
    #: step n - 1 (Loihi's Dense)
    dense_delay = False
    #: in step 0 a recurrent edge carries nothing (Norse), not the graph at rest
    zero_initial_feedback = False
    #: the dtype the framework or chip computes in (``None``: float64 when jax's x64
    #: mode is on, else float32); ``dtype`` (a field) overrides it
    default_dtype = None

    def compute_dtype(self):
        """The floating-point type this run computes in."""
        import jax

        x64 = jax.config.jax_enable_x64
        dtype = self.dtype if self.dtype is not None else self.default_dtype
        if dtype is None:
            return jnp.float64 if x64 else jnp.float32
        dtype = jnp.dtype(dtype)
        if dtype not in (jnp.float32, jnp.float64):
            raise InputError(f"dtype must be float32 or float64, got {dtype}")
        if dtype == jnp.float64 and not x64:
            raise InputError(
                "dtype float64 needs jax's x64 mode (nirsim turns it on at import unless "
                "JAX_ENABLE_X64=0 was set)"
            )
        return dtype

    @abc.abstractmethod
    def rule(self, network, name: str, primitive: AbstractPrimitive) -> AbstractStepRule:
        """The step rule of neuron or Threshold ``name``."""

    def rewrite(self, network, name: str, primitive: AbstractPrimitive):
        """The stateless node as this solver reads it (default: unchanged)."""
        return primitive

    def delivers_late(self, network, name: str) -> bool:
        """Whether spikes of node ``name`` reach its targets one step late (a
        recurrent edge always does)."""
        return False

    def grid_dt(self) -> float:
        return float(self.dt)

    def check(self, network) -> None:
        for n in network.order:
            prim = network.nodes[n]
            if not isinstance(prim, AbstractStateless | AbstractNeuron | Delay | Threshold):
                raise GraphError(
                    f"node '{n}' ({prim.nir_type}): the {self.name} solver cannot step it"
                )
            if isinstance(prim, AbstractNeuron | Threshold) and concrete(prim):
                self.rule(network, n, prim).check(n, prim)

    def check_times(self, ts, t_end: float) -> None:
        """Refuse sample times off the step grid (they must be multiples of dt)."""
        ts = np.asarray(ts, dtype=float).reshape(-1)
        k = ts / self.dt
        off = np.abs(k - np.round(k)) > GRID_RTOL * np.maximum(1.0, np.abs(k))
        if np.any(off):
            bad = float(ts[np.flatnonzero(off)[0]])
            raise InputError(
                f"sample time {bad!r} is not on the step grid of the {self.name} solver "
                f"(dt={self.dt!r}): sample at multiples of dt (e.g. save_dt=k*dt)"
            )

    def n_steps(self, t_end: float) -> int:
        return max(1, int(np.ceil(float(t_end) / float(self.dt) * (1 - GRID_RTOL))))

    def solve(self, network, inputs, ts, t_end, options: SimOptions):
        from .engine import run

        return run(self, network, inputs, ts, t_end, options)


def cast_floats(tree, dtype):
    """Every floating-point array leaf of ``tree`` in ``dtype``."""

    def cast(x):
        if isinstance(x, jax.Array | np.ndarray) and jnp.issubdtype(x.dtype, jnp.floating):
            return x.astype(dtype)
        return x

    return jax.tree.map(cast, tree)


def float_dtype(tree):
    """The dtype of the first floating-point leaf of ``tree`` (None if none)."""
    for x in jax.tree.leaves(tree):
        if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating):
            return x.dtype
    return None


def concrete(prim) -> bool:
    """True when the node's parameters hold values (not tracers, e.g. under
    ``jax.grad``): value checks are made once, on concrete parameters."""
    return all(is_concrete(x) for x in jax.tree.leaves(prim))


def checked_dt(dt) -> float:
    return positive_number(dt, "dt")
