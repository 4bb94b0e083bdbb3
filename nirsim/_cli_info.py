"""``nirsim info GRAPH.nir``: nodes, edges, parameters and the validation verdict.

The graph is loaded with :func:`nirsim.load`, so every check of the simulator runs;
repairs made while reading (older NIR files) are shown as notes. A bad file raises a
:class:`~nirsim.NirsimError`, which the command line turns into one or two sentences
on standard error and exit code 2.
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np

from ._errors import GraphError, NirsimError
from ._graph import GraphWarning
from ._network import Network, load
from .primitives import LI, LIF, Conv1d, Conv2d, CubaLI, CubaLIF, Flatten
from .primitives._pool import AbstractPool2d

#: Relative tolerance of ``tau / r == dt`` (parameters stored in float32 carry a
#: relative rounding error of about 6e-8 each, so their ratio about 1.2e-7).
DT_RTOL = 1e-5


def _round_step(x: float) -> bool:
    """True when ``x`` has at most three significant digits (``1e-4``, ``2.5e-4``):
    a time step someone chose, not a ratio of fitted numbers."""
    return x > 0 and math.isclose(float(f"{x:.3g}"), x, rel_tol=DT_RTOL)


def _common_ratio(num, den) -> float | None:
    """``num / den`` if it is one positive value for every neuron (else None)."""
    num = np.asarray(num, dtype=np.float64).reshape(-1)
    den = np.asarray(den, dtype=np.float64).reshape(-1)
    if num.size == 0 or np.any(den <= 0):
        return None
    ratio = num / den
    ref = float(np.median(ratio))
    if ref > 0 and np.allclose(ratio, ref, rtol=DT_RTOL, atol=0.0):
        return ref
    return None


def export_step(prim) -> tuple[float, str] | None:
    """The ``dt`` of a discrete-time export, if ``prim``'s parameters show one.

    Frameworks that step ``v[n+1] = v[n] + (dt/tau)(v_leak - v[n]) + x[n]`` export
    ``r = tau/dt`` (``r = tau_mem/dt`` and ``w_in = tau_syn/dt`` for CubaLIF/CubaLI),
    so that a spike, a pulse of height 1 lasting one step, has area ``dt`` and moves
    the state by exactly its weight (docs/semantics.md, section 1). Returned when one ``dt``
    fits every neuron of the node, ``dt < tau`` (``r > 1``) and ``dt`` is a round
    number; with the rule that gave it.
    """
    if isinstance(prim, LIF | LI):
        dt = _common_ratio(prim.tau, prim.r)
        tau, rule = np.asarray(prim.tau), "r = tau/dt"
    elif isinstance(prim, CubaLIF | CubaLI):
        dt = _common_ratio(prim.tau_mem, prim.r)
        dt_syn = _common_ratio(prim.tau_syn, prim.w_in)
        if dt is None or dt_syn is None or not math.isclose(dt, dt_syn, rel_tol=DT_RTOL):
            return None
        tau, rule = np.asarray(prim.tau_mem), "r = tau_mem/dt and w_in = tau_syn/dt"
    else:
        return None
    if dt is None or not _round_step(dt) or not np.all(dt < tau * (1 - DT_RTOL)):
        return None
    return float(f"{dt:.3g}"), rule


def _config(prim) -> dict[str, str]:
    """Static configuration worth showing next to the parameters."""
    if isinstance(prim, Conv1d | Conv2d):
        return {
            "stride": str(prim.stride),
            "padding": str(prim.padding),
            "dilation": str(prim.dilation),
            "groups": str(prim.groups),
        }
    if isinstance(prim, AbstractPool2d):
        return {
            "kernel": str(prim.kernel_size),
            "stride": str(prim.stride),
            "padding": str(prim.padding),
        }
    if isinstance(prim, Flatten):
        return {"start_dim": str(prim.start_dim), "end_dim": str(prim.end_dim)}
    return {}


def _shape_text(prim) -> str:
    ins, outs = tuple(prim.in_shape), tuple(prim.out_shape)
    return str(outs) if ins == outs else f"{ins} -> {outs}"


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    out = []
    for r in rows:
        cells = [c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)] + [r[-1]]
        out.append("  " + "  ".join(cells).rstrip())
    return out


def describe(net: Network, notes: list[str] = ()) -> str:
    """The text ``nirsim info`` prints for a loaded network."""
    lines = []
    for note in notes:
        lines.append(f"note: {note}")
    if notes:
        lines.append("")
    n_params = sum(
        int(np.size(getattr(p, name))) for p in net.nodes.values() for name in p.param_names
    )
    lines.append(
        f"{len(net.order)} nodes, {len(net.edges)} edges, {n_params} parameter values"
    )
    lines.append("")
    lines.append("nodes (evaluation order):")
    rows = [("name", "type", "shape", "parameters")]
    for name in net.order:
        prim = net.nodes[name]
        params = {**prim.summary(), **_config(prim)}
        text = " ".join(f"{k}={v}" for k, v in params.items())
        rows.append((name, prim.nir_type, _shape_text(prim), text))
    lines.extend(_table(rows))
    lines.append("")
    lines.append("edges:")
    lines.extend(f"  {net.order[a]} -> {net.order[b]}" for a, b in net.edges)
    lines.append("")
    steps: dict[float, list[tuple[str, str, str]]] = {}
    for name in net.neurons:
        found = export_step(net.nodes[name])
        if found is not None:
            steps.setdefault(found[0], []).append(
                (name, net.nodes[name].nir_type, found[1])
            )
    for dt, nodes in steps.items():
        which = ", ".join(f"'{n}' ({t})" for n, t, _ in nodes)
        rules = " / ".join(dict.fromkeys(r for _, _, r in nodes))
        lines.append(
            f"hint: {which} follow{'s' if len(nodes) == 1 else ''} {rules} with "
            f"dt = {dt:g}, the pattern of an export from a discrete-time framework "
            f"whose spikes last one step. Simulate with --spike-area {dt:g} so that "
            "a spike has the area the graph was trained with (the default area is 1)."
        )
    if steps:
        lines.append("")
    lines.append("verdict: valid")
    return "\n".join(lines)


def main(args) -> int:
    """Print the summary of ``args.graph``; exit code 0 for a valid graph."""
    path = os.fspath(args.graph)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GraphWarning)
        try:
            net = load(path)
        except NirsimError as e:
            message = str(e)
            if not message.startswith(path):
                message = f"{path} is not a valid NIR graph: {message}"
            raise GraphError(message) from e
    notes = []
    for w in caught:
        if issubclass(w.category, GraphWarning):
            notes.append(str(w.message))
        else:  # not ours: let it through
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    print(f"graph: {path}")
    print(describe(net, notes))
    backend = getattr(args, "backend", None)
    if backend is not None:
        print("")
        print(mapping_report(net, backend, getattr(args, "dt", None)))
    return 0


def mapping_report(net: Network, backend: str, dt: float | None) -> str:
    """The mapping report of hardware model ``backend`` for ``net``; a graph the
    chip cannot hold raises the model's :class:`GraphError` after the report."""
    from nirsim.hardware_models import AbstractChipModel
    from nirsim.solvers import registry

    from ._errors import InputError

    solver = registry.get_solver(backend, dt)
    if not isinstance(solver, AbstractChipModel):
        raise InputError(
            f"--backend {backend!r} is not a hardware model: the mapping report is "
            "printed for chip models only"
        )
    text = str(solver.report(net))
    try:
        solver.check(net)
    except GraphError as e:
        print(text)
        raise GraphError(f"refused: {e}") from e
    return text + f"\nverdict: {solver.name} can hold this graph"
