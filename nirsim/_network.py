"""The :class:`Network`: a validated NIR graph as one equinox Module."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping

import equinox as eqx
import nir

from ._custom_types import Array
from ._errors import GraphError
from ._graph import compile_graph, read_nir, subgraphs_as_written
from .primitives import (
    AbstractNeuron,
    AbstractPrimitive,
    AbstractSpikingNeuron,
    AbstractStateless,
    Input,
    Output,
    Threshold,
)


class Network(eqx.Module):
    """A NIR graph ready to simulate.

    ``nodes`` maps each (qualified) node name to its primitive; the array leaves of
    the Module are exactly the graph's parameters, so ``jax.grad`` and ``optax`` reach
    them. ``order`` is a deterministic evaluation order (instantaneous dependencies
    first); ``edges`` are ``(source, target)`` index pairs into ``order``.
    ``subgraphs`` is the graph as written before flattening: for each nested
    ``NIRGraph`` node, its qualified name, the NIR types of its direct children and
    which of them survive flattening (``(name, (types...), (kept names...))``); some
    importers treat a nested layer differently from a flat one (Rockpool maps only a
    nested recurrent subgraph to a recurrent layer).
    """

    nodes: dict[str, AbstractPrimitive]
    order: tuple[str, ...] = eqx.field(static=True)
    edges: tuple[tuple[int, int], ...] = eqx.field(static=True)
    subgraphs: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = eqx.field(
        static=True, default=()
    )

    @classmethod
    def from_nir(cls, graph: nir.NIRGraph) -> Network:
        prims, order, edges = compile_graph(graph)
        index = {n: i for i, n in enumerate(order)}
        return cls(
            nodes={n: prims[n] for n in order},
            order=tuple(order),
            edges=tuple(sorted((index[a], index[b]) for a, b in edges)),
            subgraphs=subgraphs_as_written(graph, set(order)),
        )

    def subgraph_of(self, name: str) -> tuple[str, tuple[str, ...], tuple[str, ...]] | None:
        """The innermost nested ``NIRGraph`` (as in :attr:`subgraphs`) holding ``name``
        as a direct child, or None for a node of the top-level graph."""
        for sub in self.subgraphs:
            if name in sub[2]:
                return sub
        return None

    # ------------------------------------------------------------------ structure
    def predecessors(self, name: str) -> tuple[str, ...]:
        j = self.order.index(name)
        return tuple(self.order[a] for a, b in self.edges if b == j)

    def successors(self, name: str) -> tuple[str, ...]:
        i = self.order.index(name)
        return tuple(self.order[b] for a, b in self.edges if a == i)

    def names_of(self, kind: type) -> tuple[str, ...]:
        return tuple(n for n in self.order if isinstance(self.nodes[n], kind))

    @functools.cached_property
    def inputs(self) -> tuple[str, ...]:
        return self.names_of(Input)

    @functools.cached_property
    def outputs(self) -> tuple[str, ...]:
        return self.names_of(Output)

    @functools.cached_property
    def neurons(self) -> tuple[str, ...]:
        return self.names_of(AbstractNeuron)

    @functools.cached_property
    def spiking(self) -> tuple[str, ...]:
        """Nodes whose outgoing signal is a spike train (spiking neurons, Threshold)."""
        return tuple(
            n
            for n in self.order
            if isinstance(self.nodes[n], AbstractSpikingNeuron | Threshold)
        )

    @functools.cached_property
    def _shapes(self) -> dict[str, tuple[int, ...]]:
        return {n: tuple(self.nodes[n].out_shape) for n in self.order}

    def shape(self, name: str) -> tuple[int, ...]:
        """Output shape of node ``name`` (structure: computed once per Network)."""
        return self._shapes[name]

    # ------------------------------------------------------------------- signals
    def propagate(
        self, sources: Mapping[str, Array], *, bias: bool, batch_ndim: int = 0
    ) -> dict[str, Array]:
        """Push signals through the stateless part of the graph.

        ``sources`` gives the outgoing signal of some nodes (graph inputs, neurons,
        delays, thresholds). Returns the summed input arriving at every node that is
        not stateless (neurons, Delay, Threshold, Output), zero where nothing
        arrives. ``bias=True`` adds the stateless nodes' offsets (continuous part);
        ``bias=False`` treats the signals as impulse areas. Arrays may carry
        ``batch_ndim`` leading batch axes.
        """
        outgoing: dict[str, Array] = {}
        arriving: dict[str, Array] = {}
        preds = {n: self.predecessors(n) for n in self.order}
        for n in self.order:
            node = self.nodes[n]
            if n in sources:
                outgoing[n] = sources[n]
            elif isinstance(node, AbstractStateless) and not isinstance(node, Output):
                ins = [outgoing[p] for p in preds[n] if p in outgoing]
                if not ins and not (bias and _has_offset(node)):
                    continue
                x = sum(ins[1:], ins[0]) if ins else None
                if x is None:
                    y = node.offset()
                else:
                    y = node.linear(x)
                    if bias:
                        y = y + node.offset()
                outgoing[n] = y
        for n in self.order:
            node = self.nodes[n]
            if isinstance(node, AbstractStateless) and not isinstance(node, Output):
                continue
            ins = [outgoing[p] for p in preds[n] if p in outgoing]
            if ins:
                arriving[n] = sum(ins[1:], ins[0])
        return arriving

    # ------------------------------------------------------------------ export
    def to_nir(self) -> nir.NIRGraph:
        """An equivalent ``nir.NIRGraph`` (flattened; parameters in their source
        dtype)."""
        edges = [(self.order[a], self.order[b]) for a, b in self.edges]
        try:
            return nir.NIRGraph(
                nodes={n: self.nodes[n].to_nir() for n in self.order},
                edges=list(edges),
                type_check=True,
            )
        except (ValueError, NotImplementedError):
            # nir's type inference misses some valid graphs (Conv with groups > 1
            # takes C_in/groups as the input channels): export without it.
            return nir.NIRGraph(
                nodes={n: self.nodes[n].to_nir() for n in self.order},
                edges=list(edges),
                type_check=False,
            )

    def __repr__(self) -> str:
        kinds = ", ".join(f"{n}: {self.nodes[n].nir_type}" for n in self.order)
        return f"Network({kinds})"


def _has_offset(node: AbstractStateless) -> bool:
    return any(name == "bias" for name in node.param_names)


def load(source: str | os.PathLike | nir.NIRGraph | Network) -> Network:
    """Load and validate a NIR graph.

    Args:
        source: path of a ``.nir`` file, a ``nir.NIRGraph``, or a :class:`Network`
            (returned as is).

    Returns:
        The validated :class:`Network`.

    Raises:
        GraphError: (a ``ValueError``) naming the node or edge at fault: unreadable
            file, unknown node type, dangling edge (with a close name suggested),
            shape mismatch, algebraic loop, non-finite parameter, time constant
            ``<= 0``, no Input or no Output.
    """
    if isinstance(source, Network):
        return source
    if isinstance(source, str | os.PathLike):
        graph = read_nir(source)
    elif isinstance(source, nir.NIRGraph):
        graph = source
    else:
        raise GraphError(
            f"nirsim.load takes a path or a nir.NIRGraph, not {type(source).__name__}"
        )
    try:
        return Network.from_nir(graph)
    except GraphError:
        raise
    except RecursionError as e:
        raise GraphError("graph nesting is too deep to flatten") from e


def is_network(x) -> bool:
    return isinstance(x, Network)
