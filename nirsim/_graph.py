"""Reading, flattening, validating and ordering NIR graphs.

Everything here runs once, before any simulation, in plain Python and numpy. Every
refusal is a :class:`~nirsim.GraphError` naming the node or edge and the reason.
"""

from __future__ import annotations

import difflib
import heapq
import os
import re
import warnings
from collections.abc import Mapping

import h5py
import nir
import numpy as np

from ._errors import GraphError
from ._hdf5 import probe
from .primitives import PRIMITIVES, AbstractNeuron, AbstractPrimitive, Delay, Threshold


class GraphWarning(UserWarning):
    """A graph was read with a repair (older NIR version, inconsistent declared shape)."""


# --------------------------------------------------------------------------- reading


def _file_node_types(path) -> dict[str, str]:
    """Qualified name -> type string of every node stored in a NIR file."""
    out: dict[str, str] = {}

    def walk(group, prefix):
        if "nodes" not in group:
            return
        for name, sub in group["nodes"].items():
            if not isinstance(sub, h5py.Group) or "type" not in sub:
                out[prefix + name] = "<no type>"
                continue
            typ = sub["type"][()]
            typ = typ.decode() if isinstance(typ, bytes) else str(typ)
            out[prefix + name] = typ
            if typ == "NIRGraph":
                walk(sub, prefix + name + ".")

    with h5py.File(path, "r") as f:
        if "node" not in f or not isinstance(f["node"], h5py.Group):
            raise GraphError(f"{os.fspath(path)!s}: not a NIR file (no 'node' group)")
        root = f["node"]["type"][()] if "type" in f["node"] else b"NIRGraph"
        root = root.decode() if isinstance(root, bytes) else str(root)
        if root != "NIRGraph":
            raise GraphError(
                f"{os.fspath(path)!s}: the root node has type '{root}'; a NIR file holds "
                "a NIRGraph at its root"
            )
        walk(f["node"], "")
    return out


def read_nir(path: str | os.PathLike) -> nir.NIRGraph:
    """Read a ``.nir`` file with ``nir.read``; if only its type check refuses the file
    (older NIR versions), read it again without, and warn."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise GraphError(f"{path}: no such file")
    try:
        if not h5py.is_hdf5(path):
            raise GraphError(f"{path}: not an HDF5 file, so not a NIR graph")
        probe(path, GraphError)  # a corrupted file may crash libhdf5: look first
        types = _file_node_types(path)
    except GraphError:
        raise
    except Exception as e:  # corrupted HDF5 internals
        raise GraphError(f"{path}: unreadable HDF5 file ({e})") from e
    for name, typ in types.items():
        if typ != "NIRGraph" and typ not in PRIMITIVES:
            raise GraphError(f"node '{name}': unknown node type '{typ}'")
    try:
        graph = nir.read(path)
    except Exception as first:  # nir raises ValueError, KeyError, AssertionError...
        reason = str(first).strip()
        if isinstance(first, KeyError) or not reason:  # KeyError('type') says 'type'
            reason = f"{type(first).__name__} {reason}".strip()
    else:
        # nir.read completes a graph whose sources/leaves are not Input/Output
        # nodes by adding them; say so rather than hide it.
        graph._nirsim_read_notes = [
            f"nir.read added the {type(node).__name__} node '{name}' that the file lacks"
            for name, node in _qualified_nodes(graph)
            if name not in types
        ]
        return graph
    try:
        with h5py.File(path, "r") as f:
            graph = _graph_from_dict(nir.serialization.hdf2dict(f["node"]))
    except GraphError:
        raise
    except Exception as e:
        raise GraphError(f"{path}: nir.read cannot build the graph ({e})") from e
    graph._nirsim_read_warning = reason  # reported once validation has passed
    return graph


def _qualified_nodes(graph: nir.NIRGraph, prefix: str = ""):
    for name, node in graph.nodes.items():
        yield prefix + name, node
        if isinstance(node, nir.NIRGraph):
            yield from _qualified_nodes(node, prefix + name + ".")


def _graph_from_dict(d: dict) -> nir.NIRGraph:
    """Like ``nir.dict2NIRNode`` but without type checks at any nesting level."""
    nodes = {}
    for name, nd in d["nodes"].items():
        typ = nd.get("type")
        try:
            if typ == "NIRGraph":
                nodes[name] = _graph_from_dict(nd)
            else:
                nodes[name] = nir.dict2NIRNode(dict(nd))
        except Exception as e:
            raise GraphError(
                f"node '{name}' ({typ}): cannot read its fields ({type(e).__name__}: {e})"
            ) from None
    edges = [tuple(nir.ir.utils.ensure_str(x) for x in e) for e in d["edges"]]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


# ------------------------------------------------------------------------ flattening


def _suggest(name: str, candidates) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    if not close:
        # a shared prefix such as 'lif' / 'lif1' counts as close
        close = [c for c in candidates if c.startswith(name) or name.startswith(c)]
    return f"; did you mean '{close[0]}'?" if close else ""


def flatten(graph: nir.NIRGraph, prefix: str = "") -> tuple[dict, list]:
    """Flatten nested ``NIRGraph`` nodes into qualified names (``"lif1.lif"``).

    Edges to or from a subgraph name go through its (single) inner Input or Output
    node; the inner Input/Output nodes are kept as identity nodes so the wiring stays
    visible, then removed by :func:`_splice_identities`.
    """
    nodes: dict[str, nir.NIRNode] = {}
    edges: list[tuple[str, str]] = []
    sub_io: dict[str, tuple[list[str], list[str]]] = {}
    if not isinstance(getattr(graph, "nodes", None), Mapping):
        raise GraphError(f"graph '{prefix or '<root>'}' has no node dictionary")
    for name, node in graph.nodes.items():
        q = prefix + str(name)
        if isinstance(node, nir.NIRGraph):
            inner_nodes, inner_edges = flatten(node, q + ".")
            nodes.update(inner_nodes)
            edges.extend(inner_edges)
            ins = [q + "." + k for k, n in node.nodes.items() if isinstance(n, nir.Input)]
            outs = [q + "." + k for k, n in node.nodes.items() if isinstance(n, nir.Output)]
            sub_io[q] = (ins, outs)
        else:
            nodes[q] = node
    for edge in graph.edges:
        if len(edge) != 2:
            raise GraphError(f"edge {edge!r} is not a pair of node names")
        a, b = (prefix + (e.decode() if isinstance(e, bytes) else str(e)) for e in edge)
        for end, role, io_index in ((a, "source", 1), (b, "target", 0)):
            if end in sub_io:
                io = sub_io[end][io_index]
                if len(io) != 1:
                    kind = "Output" if role == "source" else "Input"
                    raise GraphError(
                        f"edge ('{a}', '{b}'): subgraph '{end}' has {len(io)} {kind} "
                        f"nodes; name one of them ({', '.join(io) or 'none'})"
                    )
        a = sub_io[a][1][0] if a in sub_io else a
        b = sub_io[b][0][0] if b in sub_io else b
        edges.append((a, b))
    return nodes, edges


def _check_edges(nodes: Mapping, edges: list[tuple[str, str]]) -> None:
    seen = set()
    for a, b in edges:
        for end, role in ((a, "source"), (b, "target")):
            if end not in nodes:
                # Suggest among nodes of the same (sub)graph first.
                scope = end.rsplit(".", 1)[0] + "." if "." in end else ""
                local = [n for n in nodes if n.startswith(scope)] if scope else list(nodes)
                raise GraphError(
                    f"edge ('{a}', '{b}'): {role} node '{end}' does not exist"
                    + _suggest(end, local or nodes)
                )
        if (a, b) in seen:
            raise GraphError(f"edge ('{a}', '{b}') appears twice")
        seen.add((a, b))


def _splice_identities(nodes: dict, edges: list) -> tuple[dict, list]:
    """Remove the Input/Output nodes of flattened subgraphs (qualified names with a
    dot whose node is nir.Input/nir.Output), connecting their neighbours directly."""
    inner = [
        n
        for n, node in nodes.items()
        if "." in n and isinstance(node, nir.Input | nir.Output)
    ]
    for n in inner:
        ins = [a for a, b in edges if b == n]
        outs = [b for a, b in edges if a == n]
        edges = [e for e in edges if n not in e]
        edges.extend((a, b) for a in ins for b in outs if (a, b) not in edges)
        del nodes[n]
    return nodes, edges


# -------------------------------------------------------------------------- building


def _needs_input_shape(node: nir.NIRNode) -> bool:
    if isinstance(node, nir.Output | nir.SumPool2d | nir.AvgPool2d):
        return True
    if isinstance(node, nir.Conv1d | nir.Conv2d):
        return node.input_shape is None
    if isinstance(node, nir.Flatten):
        return True
    return False


def build_primitives(
    nodes: dict, edges: list, warn: list[str]
) -> dict[str, AbstractPrimitive]:
    """Turn NIR nodes into primitives, inferring shapes along edges where needed."""
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        preds[b].append(a)
    built: dict[str, AbstractPrimitive] = {}
    pending = list(nodes)
    while pending:
        progress = False
        for name in list(pending):
            node = nodes[name]
            known = [built[p].out_shape for p in preds[name] if p in built]
            if _needs_input_shape(node) and len(known) < len(preds[name]):
                continue
            in_shape = known[0] if known else None
            try:
                prim = PRIMITIVES[type(node).__name__].from_nir(node, in_shape)
            except GraphError as e:
                raise GraphError(f"node '{name}' ({type(node).__name__}): {e}") from None
            except Exception as e:  # nir nodes with missing or malformed fields
                raise GraphError(
                    f"node '{name}' ({type(node).__name__}): cannot read its "
                    f"parameters ({type(e).__name__}: {e})"
                ) from None
            if isinstance(node, nir.Output):
                declared = _declared_shape(node)
                if declared is not None and in_shape is not None and declared != in_shape:
                    warn.append(
                        f"node '{name}' (Output) declares shape {declared} but receives "
                        f"{in_shape}; using {in_shape}"
                    )
            built[name] = prim
            pending.remove(name)
            progress = True
        if not progress:
            raise GraphError(
                f"node '{pending[0]}' ({type(nodes[pending[0]]).__name__}): cannot "
                "infer its input shape (it has no input_shape and no predecessor with "
                "a known shape)"
            )
    return built


def _declared_shape(node) -> tuple | None:
    from .primitives.input import shape_of

    try:
        return shape_of(node.output_type, "output")
    except GraphError:
        return None


def _check_shapes(prims: Mapping[str, AbstractPrimitive], edges: list) -> None:
    for a, b in edges:
        out, inp = prims[a].out_shape, prims[b].in_shape
        if tuple(out) != tuple(inp):
            raise GraphError(
                f"edge ('{a}', '{b}'): shape mismatch, '{a}' ({prims[a].nir_type}) puts "
                f"out {tuple(out)} but '{b}' ({prims[b].nir_type}) takes {tuple(inp)}"
            )


def breaks_instant_path(prim: AbstractPrimitive) -> bool:
    """True when the node's output at ``t`` does not depend on its input at ``t``
    (neurons integrate; a Delay > 0 shifts; a Threshold emits only impulses)."""
    if isinstance(prim, AbstractNeuron | Threshold):
        return True
    if isinstance(prim, Delay):
        return bool(np.all(np.asarray(prim.delay) > 0))
    return False


def _natural_key(name: str) -> tuple:
    """Sort key: 'lif2' < 'lif10'; digit runs compare as numbers."""
    parts = re.split(r"(\d+)", name)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts if p)


def evaluation_order(prims: Mapping[str, AbstractPrimitive], edges: list) -> list[str]:
    """Topological order of the instantaneous dependencies; an algebraic loop is
    refused. Ties are broken by the distance from the graph inputs, then by name
    (numbers in names compared as numbers), so the order depends on the graph only,
    not on the order of its node dictionary (which a file does not keep)."""
    names = list(prims)
    # Ties: distance from the graph inputs along all edges, then name.
    depth = {n: len(names) for n in names}
    frontier = [n for n in names if prims[n].nir_type == "Input"]
    for n in frontier:
        depth[n] = 0
    while frontier:
        nxt = []
        for a, b in edges:
            if a in frontier and depth[b] > depth[a] + 1:
                depth[b] = depth[a] + 1
                nxt.append(b)
        frontier = nxt
    index = {n: (depth[n], _natural_key(n)) for n in names}
    succ: dict[str, list[str]] = {n: [] for n in names}
    indeg = {n: 0 for n in names}
    for a, b in edges:
        if breaks_instant_path(prims[b]):
            continue  # b's output does not depend instantly on a
        succ[a].append(b)
        indeg[b] += 1
    heap = [(index[n], n) for n in names if indeg[n] == 0]
    heapq.heapify(heap)
    order = []
    while heap:
        _, n = heapq.heappop(heap)
        order.append(n)
        for m in succ[n]:
            indeg[m] -= 1
            if indeg[m] == 0:
                heapq.heappush(heap, (index[m], m))
    if len(order) < len(names):
        # Left over: the cycles and what hangs below them; keep only the cycles
        # (drop nodes with no instantaneous successor left, repeatedly).
        left = {n for n in names if indeg[n] > 0}
        while True:
            ends = {n for n in left if not any(m in left for m in succ[n])}
            if not ends:
                break
            left -= ends
        loop = [n for n in names if n in left]
        raise GraphError(
            "algebraic loop: the cycle through "
            + ", ".join(f"'{n}' ({prims[n].nir_type})" for n in loop)
            + " has no stateful node (neuron or Delay > 0), so its output depends "
            "instantly on itself"
        )
    return order


def subgraphs_as_written(
    graph: nir.NIRGraph, kept: set[str], prefix: str = ""
) -> tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]:
    """The nested ``NIRGraph`` nodes of ``graph`` as written, outermost first: for each,
    its qualified name (``"lif1"``), the NIR types of its direct children, and the
    qualified names of those children that survive flattening (in ``kept``).
    Flattening forgets this (a flat node called ``"lif1.lif"`` is not nested)."""
    out: list = []
    for name, node in getattr(graph, "nodes", {}).items():
        if isinstance(node, nir.NIRGraph):
            q = prefix + str(name)
            types = tuple(type(c).__name__ for c in node.nodes.values())
            names = tuple(q + "." + str(k) for k in node.nodes if q + "." + str(k) in kept)
            out.append((q, types, names))
            out.extend(subgraphs_as_written(node, kept, q + "."))
    return tuple(out)


def compile_graph(
    graph: nir.NIRGraph,
) -> tuple[dict[str, AbstractPrimitive], list[str], list[tuple[str, str]]]:
    """Flatten, validate, build and order a NIR graph (see :func:`nirsim.load`)."""
    if not isinstance(graph, nir.NIRGraph):
        raise GraphError(f"expected a nir.NIRGraph or a path, got {type(graph).__name__}")
    nodes, edges = flatten(graph)
    for name, node in nodes.items():
        if type(node).__name__ not in PRIMITIVES or not isinstance(node, nir.NIRNode):
            raise GraphError(f"node '{name}': unknown node type '{type(node).__name__}'")
    _check_edges(nodes, edges)
    nodes, edges = _splice_identities(dict(nodes), list(edges))
    for a, b in edges:
        if isinstance(nodes[b], nir.Input):
            raise GraphError(
                f"edge ('{a}', '{b}'): '{b}' is an Input node, which takes no incoming "
                "edge (its signal is the input given to simulate)"
            )
        if isinstance(nodes[a], nir.Output):
            raise GraphError(
                f"edge ('{a}', '{b}'): '{a}' is an Output node, which has no outgoing "
                "edge; connect the node that feeds it instead"
            )
    if not any(isinstance(n, nir.Input) for n in nodes.values()):
        raise GraphError("the graph has no Input node")
    if not any(isinstance(n, nir.Output) for n in nodes.values()):
        raise GraphError("the graph has no Output node")
    warn: list[str] = []
    prims = build_primitives(nodes, edges, warn)
    _check_shapes(prims, edges)
    order = evaluation_order(prims, edges)
    for name, p in prims.items():
        if not isinstance(p, PRIMITIVES["Input"]) and not any(b == name for _, b in edges):
            warn.append(f"node '{name}' ({p.nir_type}) has no incoming edge")
    reason = getattr(graph, "_nirsim_read_warning", None)
    if reason:
        warn.insert(
            0,
            f"nir.read refused the file's types ({reason}); read without "
            "its type check, shapes inferred from the parameters",
        )
    warn[:0] = getattr(graph, "_nirsim_read_notes", [])
    for w in warn:
        warnings.warn(w, GraphWarning, stacklevel=3)
    return prims, order, edges
