"""Abstract base classes of NIR primitives.

Every NIR primitive is an :class:`equinox.Module` whose array fields are its parameters
(float64) and whose static fields are its configuration. Solvers and hardware models
use only the methods declared here, so adding a primitive is one file.

Three families:

* :class:`AbstractStateless`: a linear map applied to both parts of a signal (the
  continuous part ``c(t)`` and the impulse part ``sum_k a_k delta(t - t_k)``); a bias is
  added to the continuous part only (``offset``).
* :class:`AbstractNeuron`: a linear ODE between events (``vector_field``), its exact
  solution for a constant drive (``propagate``), the jump an impulse causes
  (``impulse``) and the continuous signal it puts on its outgoing edges (``output``).
* :class:`AbstractSpikingNeuron`: a neuron with a threshold: ``event`` is the signed
  distance to threshold, ``reset`` the jump after a spike; its outgoing signal is
  the impulse train of its spikes.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar

import equinox as eqx
import jax.numpy as jnp
import nir
import numpy as np

from .._custom_types import Array, NeuronArray, Shape
from .._errors import GraphError


def as_param(value: Any, name: str, shape: Shape | None = None) -> Array:
    """Convert a NIR parameter to a float64 array (broadcast to ``shape`` if given)."""
    if isinstance(value, jnp.ndarray) and not isinstance(value, np.ndarray):
        arr = value
        if jnp.iscomplexobj(arr):
            raise GraphError(f"parameter '{name}' is complex ({arr.dtype}); NIR is real")
        if arr.dtype != jnp.float64:
            arr = arr.astype(jnp.float64)
    else:
        try:
            if np.iscomplexobj(value):  # the cast would drop the imaginary part
                raise GraphError(
                    f"parameter '{name}' is complex ({np.asarray(value).dtype}); NIR "
                    "parameters are real"
                )
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as e:
            if isinstance(e, GraphError):
                raise
            raise GraphError(f"parameter '{name}' is not numeric: {value!r}") from e
        arr = jnp.asarray(arr)
    if shape is not None and arr.shape != tuple(shape):
        try:
            arr = jnp.broadcast_to(arr, shape)
        except ValueError as e:
            raise GraphError(
                f"parameter '{name}' has shape {tuple(arr.shape)}, expected {shape}"
            ) from e
    return arr


def is_concrete(x: Any) -> bool:
    """True when ``x`` holds values (not a tracer), so checks can look at them."""
    try:
        np.asarray(x)
    except Exception:  # jax tracers refuse conversion
        return False
    return True


def check_finite(module: eqx.Module, names: tuple[str, ...]) -> None:
    for name in names:
        x = getattr(module, name)
        if is_concrete(x) and not np.all(np.isfinite(np.asarray(x))):
            flat = np.asarray(x).reshape(-1)
            bad = int(np.flatnonzero(~np.isfinite(flat))[0])
            raise GraphError(
                f"parameter '{name}' is not finite: {float(flat[bad])} at flat index {bad}"
            )


def check_positive(module: eqx.Module, names: tuple[str, ...]) -> None:
    for name in names:
        x = getattr(module, name)
        if is_concrete(x):
            arr = np.asarray(x)
            if np.any(~(arr > 0)):
                bad = np.flatnonzero(~(arr.reshape(-1) > 0))[0]
                raise GraphError(
                    f"time constant '{name}' must be > 0 (in the graph's time unit), "
                    f"got {float(arr.reshape(-1)[bad])} at flat index {bad}"
                )


def check_same_shape(module: eqx.Module, names: tuple[str, ...]) -> Shape:
    shapes = {n: tuple(np.shape(getattr(module, n))) for n in names}
    first = shapes[names[0]]
    for s in shapes.values():
        if s != first:
            detail = ", ".join(f"{k}{v}" for k, v in shapes.items())
            raise GraphError(f"parameters must share one shape, got {detail}")
    return first


def export_param(x: Array, dtype: str | None) -> np.ndarray:
    """Parameter array for a NIR node: numpy, in the dtype the graph came with."""
    arr = np.asarray(x)
    return arr.astype(dtype) if dtype is not None else arr


class AbstractPrimitive(eqx.Module):
    """A NIR primitive. Subclasses are final and live one per file.

    Subclasses declare ``nir_type`` (the NIR class name), ``param_names`` (their array
    fields, in NIR's naming), and implement :meth:`from_nir` and :meth:`to_nir`.
    """

    nir_type: ClassVar[str]
    param_names: ClassVar[tuple[str, ...]] = ()

    # dtype of each parameter in the source graph, restored on export (static).
    source_dtypes: tuple[tuple[str, str], ...] = eqx.field(
        static=True, default=(), kw_only=True
    )

    @property
    @abc.abstractmethod
    def in_shape(self) -> Shape:
        """Shape of the node's input signal (no batch axis)."""

    @property
    @abc.abstractmethod
    def out_shape(self) -> Shape:
        """Shape of the node's output signal (no batch axis)."""

    @classmethod
    @abc.abstractmethod
    def from_nir(cls, node: nir.NIRNode, in_shape: Shape | None) -> AbstractPrimitive:
        """Build from a NIR node; ``in_shape`` is the shape inferred from the graph."""

    @abc.abstractmethod
    def to_nir(self) -> nir.NIRNode:
        """An equivalent NIR node."""

    def _dtype_of(self, name: str) -> str | None:
        return dict(self.source_dtypes).get(name)

    def _export(self, name: str) -> np.ndarray:
        return export_param(getattr(self, name), self._dtype_of(name))

    def summary(self) -> dict[str, str]:
        """Key parameters as short strings, for ``nirsim info``."""
        out = {}
        for name in self.param_names:
            arr = np.asarray(getattr(self, name))
            if arr.size == 0:
                continue
            lo, hi = float(arr.min()), float(arr.max())
            out[name] = f"{lo:.6g}" if lo == hi else f"{lo:.4g}..{hi:.4g}"
        return out


def source_dtypes(node: nir.NIRNode, names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Record the numpy dtype of each parameter of a NIR node."""
    out = []
    for n in names:
        v = getattr(node, n, None)
        if v is not None:
            out.append((n, str(np.asarray(v).dtype)))
    return tuple(out)


class AbstractStateless(AbstractPrimitive):
    """A memoryless linear map ``y = L(x) (+ offset on the continuous part)``.

    ``linear`` acts on one sample (no batch axis) of the node's input shape.
    """

    @abc.abstractmethod
    def linear(self, x: Array) -> Array:
        """The linear part ``L(x)``, applied to continuous values and impulse areas."""

    def offset(self) -> Array:
        """Constant added to the continuous part of the output (a bias); default 0."""
        return jnp.zeros(self.out_shape)


class AbstractNeuron(AbstractPrimitive):
    """A stateful primitive: linear ODE between events, jumps at impulses.

    ``drive`` below is the continuous input signal summed over incoming edges, in the
    node's shape; ``area`` is the summed area of the impulses arriving at one instant.
    """

    shape: eqx.AbstractVar[Shape]
    #: parameters that are time constants (must be > 0)
    positive_params: ClassVar[tuple[str, ...]] = ()

    def __check_init__(self):
        check_same_shape(self, self.param_names)
        check_finite(self, self.param_names)
        check_positive(self, self.positive_params)

    @classmethod
    def from_nir(cls, node: nir.NIRNode, in_shape: Shape | None) -> AbstractNeuron:
        # every neuron's constructor takes its parameters in ``param_names`` order
        return cls(
            *(getattr(node, n) for n in cls.param_names),
            source_dtypes=source_dtypes(node, cls.param_names),
        )

    def to_nir(self) -> nir.NIRNode:
        return getattr(nir, self.nir_type)(**{n: self._export(n) for n in self.param_names})

    @property
    def in_shape(self) -> Shape:
        return self.shape

    @property
    def out_shape(self) -> Shape:
        return self.shape

    @abc.abstractmethod
    def init_state(self) -> eqx.Module:
        """State at ``t = 0``."""

    @abc.abstractmethod
    def vector_field(self, state: eqx.Module, drive: NeuronArray) -> eqx.Module:
        """Time derivative of every state field for a given drive."""

    @abc.abstractmethod
    def propagate(self, state: eqx.Module, drive: NeuronArray, h: Array) -> eqx.Module:
        """Exact state after time ``h`` under a constant drive (closed form)."""

    @abc.abstractmethod
    def impulse(self, state: eqx.Module, area: NeuronArray) -> eqx.Module:
        """State right after impulses of total area ``area`` arrive."""

    def output(self, state: eqx.Module) -> NeuronArray:
        """Continuous signal on the outgoing edges (the membrane for LI, I, CubaLI)."""
        return state.v

    def membrane(self, state: eqx.Module) -> NeuronArray:
        return state.v


class AbstractSpikingNeuron(AbstractNeuron):
    """A neuron that fires when ``v`` crosses ``v_threshold`` upward.

    Its outgoing signal is the impulse train of its spikes (no continuous part).
    """

    def output(self, state: eqx.Module) -> NeuronArray:
        return jnp.zeros(self.shape)

    @abc.abstractmethod
    def threshold(self) -> NeuronArray:
        """Firing threshold ``v_threshold``."""

    @abc.abstractmethod
    def reset_value(self) -> NeuronArray:
        """Reset potential ``v_reset``."""

    def event(self, state: eqx.Module) -> NeuronArray:
        """Signed distance to threshold, ``v - v_threshold`` (fires at >= 0)."""
        return state.v - self.threshold()

    def event_rate(self, state: eqx.Module, drive: NeuronArray) -> NeuronArray:
        """Time derivative of :meth:`event`."""
        return self.vector_field(state, drive).v

    def extremum_time(self, state: eqx.Module, drive: NeuronArray) -> NeuronArray:
        """Time ``h > 0`` at which :meth:`event` along :meth:`propagate` has its one
        stationary point, ``inf`` if none. Default: monotone dynamics (none)."""
        return jnp.full(self.shape, jnp.inf)

    def crossing_root(self, state: eqx.Module, drive: NeuronArray, lo: Array, hi: Array):
        """Closed form of the crossing the event-driven solver searches for: the ``h``
        (same time unit as ``lo``, ``hi``) at which :meth:`event` along
        :meth:`propagate` reaches 0 inside ``[lo, hi]``, a bracket of one upward
        crossing on a monotone piece; nan for neurons without a closed form. ``None``
        (the default): no closed form for this primitive. The solver checks every
        value it gets and searches numerically where a value fails."""
        return None

    def reset(self, state: eqx.Module, fired: Array, subtract: bool) -> eqx.Module:
        """After a spike: ``v <- v_reset``, or ``v <- v - (v_threshold - v_reset)``."""
        if subtract:
            v = jnp.where(fired, state.v - (self.threshold() - self.reset_value()), state.v)
        else:
            v = jnp.where(fired, self.reset_value(), state.v)
        return dataclasses.replace(state, v=v)
