"""Figures of simulation results and of their divergence (matplotlib, optional).

Every function returns the matplotlib ``Figure`` it drew on (the one of ``ax`` when an
axis is given, else a new pyplot figure; close it with ``plt.close(fig)`` when making
many). Times are in the traces' time unit (seconds). Install matplotlib with
``pip install nirsim[plot]``.

* :func:`raster`: spike rasters of several traces overlaid, one marker per trace.
* :func:`membrane`: sampled membrane (or another state field) of one neuron overlaid.
* :func:`divergence`: cumulative missed and extra spikes over time, per node.
* :func:`lif_comparison`: the NIR paper's LIF figure: the input on top, then the
  voltage of each back-end in its own axis with its spikes marked.
* :func:`overview`: raster, membrane and divergence of a :class:`DivergenceReport`
  in one figure (what ``nirsim compare --plot`` writes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import nir
import numpy as np

from ._compare import DivergenceReport, compare
from ._data import Current
from ._errors import InputError
from ._trace import Trace

_MARKERS = ("|", "x", "+", "1", ".", "2", "3", "4")


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(
            "nirsim.plot needs matplotlib: pip install nirsim[plot]"
        ) from None
    return plt


def _axes(ax, **subplots_kw):
    if ax is not None:
        return ax.figure, ax
    plt = _pyplot()
    fig, ax = plt.subplots(**subplots_kw)
    return fig, ax


def _check_traces(traces, labels):
    if isinstance(traces, Trace):
        traces = [traces]
    traces = list(traces)
    if not traces or not all(isinstance(t, Trace) for t in traces):
        raise InputError("pass a non-empty list of nirsim.Trace")
    if labels is None:
        labels = [t.backend for t in traces]
    labels = list(labels)
    if len(labels) != len(traces):
        raise InputError(f"{len(traces)} traces but {len(labels)} labels")
    return traces, labels


def _n_neurons(tr: Trace, node: str) -> int:
    shapes = dict(tr.shapes)
    if node in shapes:
        return math.prod(shapes[node])
    s = tr.spikes.get(node)
    if s is not None and s.n_neurons is not None:
        return s.n_neurons
    raise InputError(f"the trace '{tr.backend}' has no node '{node}'")


def _flat_neuron(tr: Trace, node: str, neuron) -> int:
    n = _n_neurons(tr, node)
    if isinstance(neuron, tuple):
        shape = dict(tr.shapes).get(node, (n,))
        neuron = int(np.ravel_multi_index(neuron, shape))
    neuron = int(neuron)
    if not 0 <= neuron < n:
        raise InputError(f"neuron {neuron} out of range for node '{node}' ({n} neurons)")
    return neuron


def _spikes_of(tr: Trace, node: str, batch: int):
    """``(times, flat indices)`` of one batch element, padding removed."""
    if node not in tr.spikes:
        raise InputError(f"the trace '{tr.backend}' has no spikes of node '{node}'")
    s = tr.spikes[node]
    t = np.asarray(s.times, dtype=float)
    i = np.asarray(s.indices)
    rows = math.prod(t.shape[:-1])
    t, i = t.reshape(rows, t.shape[-1]), i.reshape(rows, i.shape[-1])
    if not 0 <= batch < rows:
        raise InputError(f"batch element {batch} out of range ({rows})")
    valid = i[batch] >= 0
    return t[batch][valid], i[batch][valid]


def _state_of(tr: Trace, node: str, neuron: int, batch: int, field: str):
    arr = tr.states.get(node, {}).get(field)
    if arr is None:
        return None
    ts = np.asarray(tr.ts, dtype=float).reshape(-1)
    a = np.asarray(arr, dtype=float).reshape(-1, len(ts), _n_neurons(tr, node))
    if not 0 <= batch < a.shape[0]:
        raise InputError(f"batch element {batch} out of range ({a.shape[0]})")
    return ts, a[batch, :, neuron]


def raster(
    traces: Sequence[Trace],
    node: str,
    labels: Sequence[str] | None = None,
    ax=None,
    *,
    batch: int = 0,
):
    """Spike rasters of ``node`` from several traces overlaid: neuron (flat index)
    against time, one marker per trace, each trace shifted by a fraction of a row so
    that coincident spikes stay visible."""
    traces, labels = _check_traces(traces, labels)
    fig, ax = _axes(ax, figsize=(8, 3))
    k = len(traces)
    offsets = np.linspace(-0.2, 0.2, k) if k > 1 else np.zeros(1)
    for j, (tr, lab) in enumerate(zip(traces, labels, strict=True)):
        t, i = _spikes_of(tr, node, batch)
        ax.scatter(t, i + offsets[j], marker=_MARKERS[j % len(_MARKERS)], label=lab, s=30)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"{node}: neuron")
    ax.legend(loc="upper right", fontsize="small")
    return fig


def membrane(
    traces: Sequence[Trace],
    node: str,
    neuron: int | tuple = 0,
    labels: Sequence[str] | None = None,
    ax=None,
    *,
    batch: int = 0,
    field: str = "v",
):
    """Sampled state ``field`` (default the membrane ``v``) of one neuron of ``node``
    from several traces overlaid (``neuron``: flat index or index tuple)."""
    traces, labels = _check_traces(traces, labels)
    fig, ax = _axes(ax, figsize=(8, 3))
    drawn = 0
    for tr, lab in zip(traces, labels, strict=True):
        got = _state_of(tr, node, _flat_neuron(tr, node, neuron), batch, field)
        if got is None:
            continue
        ax.plot(*got, label=lab)
        drawn += 1
    if not drawn:
        raise InputError(f"no trace samples '{field}' of node '{node}'")
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"{node}[{neuron}] {field}")
    ax.legend(loc="upper right", fontsize="small")
    return fig


def divergence(report_or_pair, nodes: Sequence[str] | None = None, ax=None, **compare_kw):
    """Cumulative missed (solid) and extra (dashed) spikes over time, per node, from a
    :class:`nirsim.DivergenceReport` or a pair of traces (then compared with
    :func:`nirsim.compare` and ``compare_kw``)."""
    if isinstance(report_or_pair, DivergenceReport):
        report = report_or_pair
    elif isinstance(report_or_pair, tuple | list) and len(report_or_pair) == 2:
        report = compare(*report_or_pair, **compare_kw)
    else:
        raise InputError("divergence needs a DivergenceReport or a (reference, other) pair")
    fig, ax = _axes(ax, figsize=(8, 3))
    names = [n for n in (nodes or report.nodes) if report.nodes[n]["spiking"]]
    t_end = report.settings.get("t_compared")
    colours = [f"C{k % 10}" for k in range(len(names))]
    for name, c in zip(names, colours, strict=True):
        for times, style, what in (
            (report.missed_times(name), "-", "missed"),
            (report.extra_times(name), "--", "extra"),
        ):
            last = float(times[-1]) if times.size else 0.0
            end = max(last, t_end if t_end is not None else last)
            x = np.concatenate([[0.0], times, [end]])
            y = np.concatenate([[0], np.arange(1, times.size + 1), [times.size]])
            ax.step(x, y, where="post", linestyle=style, color=c, label=f"{name} {what}")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("cumulative spikes")
    ax.set_title("unmatched spikes: missed (solid), extra (dashed)", fontsize="small")
    if names:
        ax.legend(loc="upper left", fontsize="small")
    return fig


def _plot_input(ax, input_current, batch: int, input_index: int):
    if isinstance(input_current, Current):
        vals, dt = np.asarray(input_current.values, dtype=float), input_current.dt
    elif isinstance(input_current, nir.TimeGriddedData):
        vals, dt = np.asarray(input_current.data, dtype=float), input_current.dt
    elif isinstance(input_current, tuple) and len(input_current) == 2:
        t, y = (np.asarray(x, dtype=float) for x in input_current)
        ax.plot(t, y, color="k")
        return
    else:
        raise InputError(
            "input_current must be a nirsim.Current, nir.TimeGriddedData or a (t, values) "
            f"pair, not {type(input_current).__name__}"
        )
    # 1-D: (steps,); 2-D: (steps, inputs); more: (batch, steps, inputs...).
    if vals.ndim == 1:
        y = vals
    elif vals.ndim == 2:
        y = vals[:, input_index]
    else:
        y = vals.reshape(vals.shape[0], vals.shape[1], -1)[batch, :, input_index]
    ax.stairs(y, np.arange(y.size + 1) * dt, color="k", baseline=None)


def lif_comparison(
    traces: Sequence[Trace],
    labels: Sequence[str] | None = None,
    input_current=None,
    node: str | None = None,
    neuron: int | tuple = 0,
    *,
    batch: int = 0,
    input_index: int = 0,
    threshold: float | None = None,
    figsize: tuple[float, float] | None = None,
):
    """The NIR paper's LIF comparison figure in one call: the input current on top
    (``input_current``: a :class:`nirsim.Current` (values ``(steps,)``,
    ``(steps, inputs)`` or ``(batch, steps, inputs)``; column ``input_index``), a
    ``nir.TimeGriddedData`` or a ``(t, values)`` pair; omitted when ``None``), then one
    axis per trace with the voltage of ``neuron`` of ``node`` (default: the first node
    whose ``v`` every trace samples) and its spikes marked by triangles at the top.
    ``threshold`` draws a dashed line at ``v_threshold``."""
    traces, labels = _check_traces(traces, labels)
    if node is None:
        common = [
            n
            for n, _ in traces[0].shapes
            if all("v" in t.states.get(n, {}) for t in traces)
        ]
        common = common or [
            n for n in traces[0].spikes if all(n in t.spikes for t in traces)
        ]
        if not common:
            raise InputError("the traces share no node with a sampled v or spikes")
        node = common[0]
    plt = _pyplot()
    rows = len(traces) + (input_current is not None)
    fig, axes = plt.subplots(
        rows,
        1,
        sharex=True,
        squeeze=False,
        figsize=figsize or (7, 1.2 + 1.4 * rows),
    )
    axes = list(axes[:, 0])
    if input_current is not None:
        ax = axes.pop(0)
        _plot_input(ax, input_current, batch, input_index)
        ax.set_ylabel("input")
    for j, (tr, lab, ax) in enumerate(zip(traces, labels, axes, strict=True)):
        k = _flat_neuron(tr, node, neuron)
        got = _state_of(tr, node, k, batch, "v")
        colour = f"C{j % 10}"
        if got is not None:
            ax.plot(*got, color=colour)
        if node in tr.spikes:
            t, i = _spikes_of(tr, node, batch)
            t = np.sort(t[i == k])
            ax.plot(
                t,
                np.full(t.size, 0.92),
                marker="v",
                linestyle="none",
                color=colour,
                transform=ax.get_xaxis_transform(),
            )
        if threshold is not None:
            ax.axhline(threshold, color="grey", linestyle="--", linewidth=0.8)
        ax.set_ylabel(lab)
    axes[-1].set_xlabel("time (s)")
    fig.suptitle(f"{node}[{neuron}]: voltage and spikes (triangles)", fontsize="small")
    return fig


def overview(report, node: str | None = None, *, batch: int = 0):
    """Raster (and membrane, when both traces sample ``v``) of ``node`` (default: the
    report's first spiking node, else its first node) from the two compared traces,
    above the cumulative missed/extra spikes of every node."""
    if report.reference is None or report.other is None:
        return divergence(report)
    names = list(report.nodes)
    if node is None:
        node = next((n for n in names if report.nodes[n]["spiking"]), names[0])
    pair = [report.reference, report.other]
    labels = [
        f"reference ({report.settings['reference_backend']})",
        f"other ({report.settings['other_backend']})",
    ]
    has_spikes = report.nodes[node]["spiking"]
    has_v = report.nodes[node]["v_samples"] > 0
    rows = has_spikes + has_v + 1
    plt = _pyplot()
    fig, axes = plt.subplots(rows, 1, squeeze=False, figsize=(8, 2.6 * rows))
    axes = list(axes[:, 0])
    if has_spikes:
        raster(pair, node, labels, ax=axes.pop(0), batch=batch)
    if has_v:
        membrane(pair, node, 0, labels, ax=axes.pop(0), batch=batch)
    divergence(report, ax=axes.pop(0))
    fig.tight_layout()
    return fig
