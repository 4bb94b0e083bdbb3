r"""The abstract chip models: a chip's reading of a Network.

Every chip model (:class:`AbstractChipModel`) maps the node types its vendor's
importer maps, refuses what the chip cannot hold and reports its mapping. A digital
chip's model (:class:`AbstractHardwareModel`) is a discrete solver
(:class:`~nirsim.solvers.AbstractDiscrete`) made of two layers, kept apart as in
``../shared/HARDWARE.md``:

1. **the mapping**: how the vendor's NIR importer turns ``tau``, ``r``,
   ``v_threshold`` and weights into chip numbers. It is written once per model as
   functions of the primitive's parameters (``jax.numpy``, roundings from
   :mod:`~nirsim.hardware_models.fixed_point` with straight-through gradients) and
   used twice: inside the traced run (by the step rules' ``interpret`` and the
   model's ``rewrite`` of weight nodes, so ``jax.grad`` reaches the Network), and on
   concrete values by :meth:`AbstractHardwareModel.report`, which lists every
   parameter changed, rounded, clipped, ignored or refused (:class:`MappingReport`);
2. **the chip's step**: an :class:`~nirsim.solvers.AbstractStepRule` per neuron with
   the chip's arithmetic (integer state, rounding, shifts, saturation or wrap). It
   never re-implements a primitive's continuous mathematics; the graph (evaluation
   order, delivery, Delays, batching) is the engine's.

What every hardware model shares, unlike the ideal model:

* a spike, and an input event of value 1, is **one event** (area 1 in the engine's
  bookkeeping, :class:`OneEvent`): the synapses add their integer weight once per
  event; ``spike_area`` and ``grid_as`` are ignored and a gridded input's value
  ``x[n]`` is the number of events (or the graded value) of step ``n``;
* the Trace holds states in the **graph's units** (chip integers divided by the
  mapping's scale), or the raw chip numbers with ``raw=True``;
* a graph the chip cannot hold is refused before running, by :meth:`check`, with
  a :class:`~nirsim.GraphError` naming the node, the field and the limit.

**Gradients (quantisation-aware training).** ``jax.grad`` of a loss on
``nirsim.simulate(net, x, solver=chip)`` reaches the Network's parameters while the
forward pass stays the chip's, bit for bit. A chip's step rule runs its integer step
for the values and, beside it, the same step on floats holding the chip's integers
for the gradient (``relaxed_step`` in each model), joined by
:func:`~nirsim.hardware_models.fixed_point.straight_through` (``q + (x -
stop_gradient(x))``: the value ``q``, the derivative of ``x``). The rules, the same
in every model: a **rounding** (of a parameter, of a decay, a shift) is the identity;
a **clip** or **saturation** is a masked identity (1 inside the range, 0 outside); a
**spike** is the chip's decision with the ``surrogate``'s derivative of
``(v - threshold)`` in the graph's units (:func:`nirsim.solvers.surrogate.heaviside`),
times the chip's spike count where several fit in a step; a **reset** is the
rule's own formula applied to that spike. Values recorded with ``raw=True`` (chip
integers) carry no gradient; SpiNNaker2 steps float32 and needs no relaxed copy.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar

import equinox as eqx
import jax
import numpy as np

from nirsim._errors import GraphError
from nirsim.primitives.base import is_concrete
from nirsim.solvers.base import AbstractSolver
from nirsim.solvers.discrete.base import AbstractDiscrete, AbstractSpikeUnit, GridAsCurrent


class OneEvent(AbstractSpikeUnit):
    """A spike (and an input event of value 1) is one event: area 1, whatever
    ``spike_area`` says."""

    def area(self, dt, options):
        import jax.numpy as jnp

        return jnp.asarray(1.0)


# ------------------------------------------------------------------ the mapping report
#: what happened to a parameter on its way to the chip
ACTIONS = ("exact", "rounded", "clipped", "changed", "ignored", "refused", "scale")


@dataclasses.dataclass(frozen=True)
class MappingEntry:
    """One parameter of one node on its way to the chip.

    ``nir`` and ``chip`` are the values of the element with the largest relative
    change (or the only value), ``chip`` in the graph's units where a scale applies
    (``chip_raw`` is the chip's own number), ``rel_change`` is
    ``max |chip - nir| / |nir|`` over the elements (``inf`` where ``nir`` is 0 and
    the chip differs; ``None`` for ignored values the chip does not hold).
    """

    node: str
    field: str
    action: str
    nir: float | None
    chip: float | None
    chip_raw: float | None
    rel_change: float | None
    note: str = ""

    def row(self) -> tuple[str, ...]:
        def num(x):
            return "-" if x is None else f"{x:.6g}"

        rel = "-" if self.rel_change is None else f"{self.rel_change:.3g}"
        return (
            self.node,
            self.field,
            self.action,
            num(self.nir),
            num(self.chip),
            num(self.chip_raw),
            rel,
            self.note,
        )


@dataclasses.dataclass(frozen=True)
class MappingReport:
    """Every parameter a hardware model's mapping changed, rounded, clipped, ignored
    or refused (one :class:`MappingEntry` each), for ``nirsim info --backend``."""

    model: str
    dt: float | None  # the chip's step (None: a continuous-time chip)
    entries: tuple[MappingEntry, ...]

    def find(self, node: str, field: str) -> MappingEntry:
        for e in self.entries:
            if e.node == node and e.field == field:
                return e
        raise KeyError(f"no entry for {node}.{field}")

    def ignored(self, node: str) -> tuple[str, ...]:
        return tuple(
            e.field for e in self.entries if e.node == node and e.action == "ignored"
        )

    def __str__(self) -> str:
        head = ("node", "field", "action", "NIR", "chip", "chip raw", "rel. change", "")
        rows = [head] + [e.row() for e in self.entries]
        widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]
        when = "continuous time" if self.dt is None else f"dt = {self.dt:g} s"
        lines = [f"mapping to {self.model} ({when}):"]
        for r in rows:
            cells = [c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)] + [r[-1]]
            lines.append("  " + "  ".join(cells).rstrip())
        return "\n".join(lines)


def _np(x) -> np.ndarray:
    return np.asarray(jax.lax.stop_gradient(x), dtype=np.float64)


def entry(
    node: str,
    field: str,
    nir,
    chip,
    *,
    unit=1.0,
    action: str | None = None,
    note: str = "",
) -> MappingEntry:
    """A report entry comparing ``nir`` with the chip number ``chip`` (divided by
    ``unit`` to compare in the graph's units). ``action`` defaults to ``"exact"``
    or ``"rounded"`` by value."""
    a, raw, u = np.broadcast_arrays(_np(nir), _np(chip), _np(unit))
    a, raw, u = a.reshape(-1), raw.reshape(-1), u.reshape(-1)
    c = raw / u
    diff = np.abs(c - a)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(a != 0, diff / np.abs(a), np.where(diff == 0, 0.0, np.inf))
    k = int(np.argmax(rel)) if rel.size else 0
    worst = float(rel[k]) if rel.size else 0.0
    if action is None:
        action = "exact" if worst == 0 else "rounded"
    return MappingEntry(
        node,
        field,
        action,
        float(a[k]) if a.size else None,
        float(c[k]) if c.size else None,
        float(raw[k]) if raw.size else None,
        worst,
        note,
    )


def ignored(node: str, field: str, nir, used, note: str = "") -> MappingEntry:
    """A parameter the mapping does not read: the chip behaves as if it were
    ``used``."""
    e = entry(node, field, nir, used, action="ignored", note=note)
    return e


# ------------------------------------------------------------------ the models
class AbstractChipModel(AbstractSolver):
    """What every chip model shares, whatever advances its time: the node types its
    vendor's importer maps (others are refused), the limits it refuses with the
    node named, and the mapping report.

    Subclasses provide :attr:`name`, :attr:`supported`, :meth:`limits` (what the
    chip cannot hold) and :meth:`report`. Digital chips are
    :class:`AbstractHardwareModel` (the discrete engine with integer step rules);
    an analog chip that runs in continuous time (BrainScaleS-2) derives from this
    class directly and solves with the ideal solver.
    """

    raw: eqx.AbstractVar[bool]

    name: ClassVar[str]
    #: node types the vendor's importer maps (others are refused)
    supported: ClassVar[tuple[type, ...]]

    # -- what the chip refuses
    def refuse(self, name: str, prim, reason: str):
        raise GraphError(f"{self.name}: node '{name}' ({prim.nir_type}): {reason}")

    def limits(self, network) -> None:  # noqa: B027
        """Refuse what the chip cannot hold (called by :meth:`check` on concrete
        parameters)."""

    def check(self, network) -> None:
        for n in network.order:
            prim = network.nodes[n]
            if not isinstance(prim, self.supported):
                names = ", ".join(sorted({c.nir_type for c in self.supported}))
                self.refuse(
                    n,
                    prim,
                    f"{self.name} has no mapping for {prim.nir_type} (it maps {names})",
                )
        if all(is_concrete(x) for x in jax.tree.leaves(network)):
            self.limits(network)
        super().check(network)

    # -- the mapping report
    @abc.abstractmethod
    def report(self, network) -> MappingReport:
        """What the mapping does to each parameter of ``network`` (concrete)."""


class AbstractHardwareModel(AbstractChipModel, AbstractDiscrete):
    """A digital chip's reading of a Network on the discrete engine (see the module
    docstring).

    Subclasses (final) provide :attr:`name`, :attr:`supported` (the node types the
    chip's importer maps), :meth:`rule`, :meth:`rewrite` of weight nodes,
    :meth:`limits` (what the chip cannot hold) and :meth:`report`.
    """

    spike_unit = OneEvent()
    grid_reading = GridAsCurrent()


def concrete(tree: Any) -> bool:
    return all(is_concrete(x) for x in jax.tree.leaves(tree))
