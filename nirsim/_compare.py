"""Divergence between two simulation results: ``nirsim.compare``.

Any two :class:`~nirsim.Trace` objects (ideal, discrete, framework preset, chip
model) or NIRGraphData files recorded elsewhere are compared node by node and neuron by
neuron. All metrics are computed from spike times in numpy, exactly (no time grid):

* **Matching.** Reference spikes ``t_1 < ... < t_n`` and other spikes
  ``s_1 < ... < s_m`` of one neuron are paired one-to-one, a pair being allowed when
  ``|s_j - t_i| <= tolerance`` (with a relative slack of ``1e-9`` for rounding). The
  matching is *optimal*: it has the largest number of pairs, and among those the
  smallest total ``sum |s_j - t_i|``. Because both trains are sorted, an optimal
  matching that never crosses exists (uncrossing two pairs keeps them within the
  tolerance and does not increase the total), so an exact dynamic programme over
  prefixes finds it; it only visits pairs that can be within the tolerance, so it costs
  ``O((n + m) k)`` for ``k`` spikes per tolerance window.
* **Counts.** ``missed`` = unmatched reference spikes, ``extra`` = unmatched other
  spikes, ``precision = matched / other_spikes`` (1 when the other train is empty),
  ``recall = matched / ref_spikes`` (1 when the reference is empty),
  ``F1 = 2 matched / (ref_spikes + other_spikes)`` (1 when both are empty).
* **Timing error** of matched pairs, ``dt = s_j - t_i`` (other minus reference):
  ``mean_dt`` (signed), ``mean_abs_dt``, ``rms_dt``, ``max_abs_dt``.
* **First divergence**: the time of the earliest unmatched spike (a missed spike at its
  reference time, an extra spike at its time in the other trace). A matched pair never
  counts: it is within the tolerance by construction, so a pair further apart than the
  tolerance shows up as one missed plus one extra spike. ``None`` when every spike is
  matched.
* **van Rossum distance** with the causal exponential kernel ``f(t) = exp(-t/tau) H(t)``
  and the normalisation ``D^2 = (1/tau) * integral_0^inf (f*x - f*y)(t)^2 dt``,
  i.e. ``D^2 = (1/2) [sum_ij e^{-|t_i-t_j|/tau} + sum_ij e^{-|s_i-s_j|/tau}
  - 2 sum_ij e^{-|t_i-s_j|/tau}]``: one spike against none gives ``D = sqrt(1/2)``,
  one spike each, ``d`` apart, gives ``D = sqrt(1 - exp(-d/tau))``. The integral runs
  to infinity (not to ``t_end``). It is evaluated exactly, as a sum of non-negative
  terms over the intervals between the merged spikes (so identical trains give exactly
  0, without the cancellation of the three double sums).
* **Victor-Purpura distance** with cost ``q`` (per unit of time): the cheapest way to
  turn one train into the other by deleting or inserting spikes (cost 1 each) and
  shifting spikes (cost ``q |dt|``); the classic dynamic programme, again restricted to
  pairs closer than ``2/q`` (a shift dearer than 2 is never better than delete+insert).
* **Membrane error** where both traces sample ``v``: RMS and maximum of
  ``(v_other - v_ref) / |v_threshold|`` (unnormalised when no threshold is known or it
  is 0; the report says which), see :func:`compare` for how the time grids are aligned.

Per node and for the whole graph: counts are summed over neurons and over the batch;
precision, recall and F1 are computed from those sums; timing statistics pool all
matched pairs; the first divergence is the earliest over neurons and batch; the van
Rossum distance of a node (or the graph) is the population distance
``sqrt(sum over its neurons of D^2)`` and the Victor-Purpura distance the sum over its
neurons (labelled-line distances), each computed per batch element and then *averaged*
over the batch; membrane RMS pools every compared value.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

import nir
import numpy as np

from ._errors import InputError
from ._network import Network
from ._trace import Trace, load_trace, trace_from_nir_data
from .primitives.base import AbstractSpikingNeuron

GRID_TIMES = ("start", "centre")
DEFAULT_TAU = 5e-3
DEFAULT_TOLERANCE = 1e-3
#: Relative slack on the matching tolerance and on "common" sample times.
REL_SLACK = 1e-9
#: Units check: end times further apart than this factor are refused.
UNIT_FACTOR = 100.0

_SPIKE_FIELDS = (
    "ref_spikes",
    "other_spikes",
    "count_diff",
    "matched",
    "missed",
    "extra",
    "precision",
    "recall",
    "f1",
    "mean_dt",
    "mean_abs_dt",
    "rms_dt",
    "max_abs_dt",
    "first_divergence",
    "van_rossum",
    "victor_purpura",
)

_COUNT_FIELDS = ("ref_spikes", "other_spikes", "count_diff", "matched", "missed", "extra")


# ============================================================ spike-train metrics
def _as_train(x, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=float).reshape(-1)
    if a.size and not np.all(np.isfinite(a)):
        raise InputError(f"{name} spike times must be finite")
    if a.size > 1 and np.any(np.diff(a) < 0):
        a = np.sort(a)
    return a


def _banded_dp(a, b, width, pair_cost, gap, want_path):
    """Minimum over non-crossing partial matchings between sorted ``a`` and ``b`` of
    ``sum pair_cost(i, j) + gap * (unmatched spikes)``; values are tuples compared
    lexicographically.

    Only pairs with ``|a_i - b_j| <= width`` may be matched (``pair_cost`` returns
    ``None`` for a forbidden pair). Cells ``(i, j)`` (prefix lengths) outside the band
    reduce to a band cell: the spikes beyond the band cannot be matched inside the
    prefix, so they are unmatched. Returns ``(value, pairs)``; ``pairs`` is a list of
    index pairs (empty unless ``want_path``).
    """
    n, m = len(a), len(b)
    # hi[i]: number of b with b <= a[i-1] + width; hj[j]: number of a with
    # a <= b[j-1] + width; lo[i]: number of j >= 1 with hj[j] < i.
    hi = np.concatenate([[0], np.searchsorted(b, a + width, side="right")]).tolist()
    hj = np.searchsorted(a, b + width, side="right")
    lo = np.concatenate([[0], np.searchsorted(hj, np.arange(n), side="right")]).tolist()
    hj = [0, *hj.tolist()]
    g0, g1 = gap
    rows: list[list] = [[]]
    choices: list[list] = [[]]

    def value(i, j):
        e0, e1 = 0, 0.0
        while True:
            if i == 0:
                return (e0 + g0 * j, e1 + g1 * j)
            if j == 0:
                return (e0 + g0 * i, e1 + g1 * i)
            if j > hi[i]:
                k = j - hi[i]
                e0, e1, j = e0 + g0 * k, e1 + g1 * k, hi[i]
                continue
            if j <= lo[i]:
                k = i - hj[j]
                e0, e1, i = e0 + g0 * k, e1 + g1 * k, hj[j]
                continue
            v = rows[i][j - lo[i] - 1]
            return (v[0] + e0, v[1] + e1)

    for i in range(1, n + 1):
        row: list = []
        ch: list = []
        rows.append(row)
        choices.append(ch)
        for j in range(lo[i] + 1, hi[i] + 1):
            v = value(i - 1, j)
            best, c = (v[0] + g0, v[1] + g1), 0
            v = value(i, j - 1)
            cand = (v[0] + g0, v[1] + g1)
            if cand < best:
                best, c = cand, 1
            pc = pair_cost(i - 1, j - 1)
            if pc is not None:
                v = value(i - 1, j - 1)
                cand = (v[0] + pc[0], v[1] + pc[1])
                if cand < best:
                    best, c = cand, 2
            row.append(best)
            ch.append(c)
    total = value(n, m)
    pairs: list[tuple[int, int]] = []
    if want_path:
        i, j = n, m
        while i > 0 and j > 0:
            if j > hi[i]:
                j = hi[i]
            elif j <= lo[i]:
                i = hj[j]
            else:
                c = choices[i][j - lo[i] - 1]
                if c == 2:
                    pairs.append((i - 1, j - 1))
                    i, j = i - 1, j - 1
                elif c == 0:
                    i -= 1
                else:
                    j -= 1
        pairs.reverse()
    return total, pairs


def match_spikes(reference, other, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """Optimal one-to-one matching of two sorted spike trains within ``tolerance``.

    Returns index arrays ``(i, j)``: ``reference[i[k]]`` is matched with
    ``other[j[k]]``, ``|other[j] - reference[i]| <= tolerance * (1 + 1e-9)``. The
    matching has the most pairs possible and, among those, the smallest total
    ``|dt|`` (see the module docstring for why the dynamic programme is exact).
    """
    a = _as_train(reference, "reference")
    b = _as_train(other, "other")
    tol = float(tolerance) * (1 + REL_SLACK)
    empty = np.zeros(0, dtype=np.int64)
    if len(a) == 0 or len(b) == 0:
        return empty, empty
    if len(a) == len(b) and np.all(np.abs(a - b) <= tol):
        # Every spike paired with its rank-mate: the most pairs, and the sorted
        # pairing minimises sum |dt| among perfect matchings (convex cost).
        idx = np.arange(len(a))
        return idx, idx
    al, bl = a.tolist(), b.tolist()

    def pair_cost(i, j):
        d = abs(al[i] - bl[j])
        return (0, d) if d <= tol else None

    width = tol * (1 + 1e-6) + 1e-300
    _, pairs = _banded_dp(a, b, width, pair_cost, (1, 0.0), want_path=True)
    if not pairs:
        return empty, empty
    p = np.asarray(pairs, dtype=np.int64)
    return p[:, 0], p[:, 1]


def van_rossum(reference, other, tau: float) -> float:
    """Exact van Rossum distance between two spike trains (kernel
    ``exp(-t/tau) H(t)``, ``tau`` in the trains' time unit), normalised so that
    ``D^2 = (1/tau) * integral (f*x - f*y)^2 dt``: one spike each, ``d`` apart, gives
    ``sqrt(1 - exp(-d/tau))``; one spike against none ``sqrt(1/2)``.

    Between consecutive merged spikes the filtered difference ``u`` decays as
    ``u_k exp(-(t - e_k)/tau)``, whose square integrates in closed form, so
    ``D^2 = (1/2) sum_k u_k^2 (1 - exp(-2 (e_{k+1} - e_k)/tau))`` (last interval
    infinite): a sum of non-negative terms.
    """
    tau = float(tau)
    a = _as_train(reference, "reference")
    b = _as_train(other, "other")
    if len(a) == len(b) and np.array_equal(a, b):
        return 0.0
    t = np.concatenate([a, b])
    s = np.concatenate([np.ones(len(a)), -np.ones(len(b))])
    order = np.argsort(t, kind="stable")
    t, s = t[order].tolist(), s[order].tolist()
    u, total, prev = 0.0, 0.0, None
    for tk, sk in zip(t, s, strict=True):
        if prev is not None and tk != prev:
            x = (tk - prev) / tau
            total += u * u * -math.expm1(-2.0 * x)
            u *= math.exp(-x)
        u += sk
        prev = tk
    total += u * u
    return math.sqrt(0.5 * total)


def victor_purpura(reference, other, cost: float) -> float:
    """Victor-Purpura distance: the minimum total cost of turning one train into the
    other by deleting or inserting spikes (cost 1 each) and shifting a spike by
    ``dt`` (cost ``cost * |dt|``; ``cost`` per unit of time, ``inf`` allowed). Exact
    dynamic programme over prefixes (Victor & Purpura 1996)."""
    q = float(cost)
    a = _as_train(reference, "reference")
    b = _as_train(other, "other")
    n, m = len(a), len(b)
    if q == 0.0 or n == 0 or m == 0:
        return float(abs(n - m))
    if n == m and np.array_equal(a, b):
        return 0.0
    al, bl = a.tolist(), b.tolist()

    def pair_cost(i, j):
        d = abs(al[i] - bl[j])
        if d == 0.0:
            return (0.0, 0.0)
        c = q * d
        return (c, 0.0) if c < 2.0 else None

    width = (2.0 / q) * (1 + 1e-6) if math.isfinite(q) else 0.0
    (total, _), _ = _banded_dp(a, b, width, pair_cost, (1.0, 0.0), want_path=False)
    return float(total)


# ================================================================== the report
def _jsonable(x):
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, bool | np.bool_):
        return bool(x)
    if isinstance(x, int | np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        x = float(x)
        return x if math.isfinite(x) else None
    return x


def _fmt(x, kind="g") -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and not math.isfinite(x):
        return "-"
    if kind == "int":
        return str(int(x))
    if kind == "f1":
        return f"{x:.3f}"
    return f"{x:.3g}"


_COLUMNS = (
    # (header, key, format, width)
    ("ref", "ref_spikes", "int", 7),
    ("other", "other_spikes", "int", 7),
    ("matched", "matched", "int", 8),
    ("missed", "missed", "int", 7),
    ("extra", "extra", "int", 7),
    ("F1", "f1", "f1", 6),
    ("mean|dt|", "mean_abs_dt", "g", 9),
    ("rms dt", "rms_dt", "g", 9),
    ("max|dt|", "max_abs_dt", "g", 9),
    ("first div", "first_divergence", "g", 10),
    ("vRossum", "van_rossum", "g", 9),
    ("VicPurp", "victor_purpura", "g", 9),
    ("v rms", "v_rms", "g", 9),
    ("v max", "v_max", "g", 9),
)


@dataclasses.dataclass(frozen=True)
class DivergenceReport:
    """What :func:`compare` found; times in the traces' time unit (seconds).

    * ``nodes``: per-node summary dicts (keys ``ref_spikes``, ``other_spikes``,
      ``count_diff`` (other minus reference), ``matched``, ``missed``, ``extra``,
      ``precision``, ``recall``, ``f1``, ``mean_dt``, ``mean_abs_dt``, ``rms_dt``,
      ``max_abs_dt``, ``first_divergence``, ``van_rossum``, ``victor_purpura``,
      ``v_rms``, ``v_max``, ``v_samples``, ``v_normalised``, ``spiking``, ``shape``);
      ``None`` where a metric does not apply (no matched pair, no sampled ``v``...).
    * ``summary``: the same for the whole graph.
    * ``settings``: tolerance, tau, cost, grid-time convention, membrane alignment,
      batch handling, the two back-ends.
    * ``notes``: sentences on what was assumed or left out.
    * :meth:`per_neuron` gives arrays of shape ``(*batch, *node_shape)``.
    """

    nodes: dict[str, dict[str, Any]]
    summary: dict[str, Any]
    settings: dict[str, Any]
    notes: tuple[str, ...] = ()
    _per_neuron: dict[str, dict[str, np.ndarray]] = dataclasses.field(
        default_factory=dict, repr=False
    )
    _events: dict[str, dict[str, np.ndarray]] = dataclasses.field(
        default_factory=dict, repr=False
    )
    reference: Trace | None = dataclasses.field(default=None, repr=False, compare=False)
    other: Trace | None = dataclasses.field(default=None, repr=False, compare=False)

    def per_neuron(self, node: str) -> dict[str, np.ndarray]:
        """Per-neuron metrics of ``node``: a dict of arrays of shape
        ``(*batch, *node_shape)`` (NaN where a metric does not apply, e.g. timing
        error without matched pairs or ``first_divergence`` when all spikes match)."""
        if node not in self._per_neuron:
            raise InputError(
                f"node '{node}' is not in the report (nodes: {', '.join(self.nodes)})"
            )
        return dict(self._per_neuron[node])

    def missed_times(self, node: str) -> np.ndarray:
        """Sorted times of the reference spikes of ``node`` left unmatched (pooled
        over neurons and batch)."""
        return self._events[node]["missed"].copy()

    def extra_times(self, node: str) -> np.ndarray:
        """Sorted times of the other trace's spikes of ``node`` left unmatched."""
        return self._events[node]["extra"].copy()

    # ------------------------------------------------------------ presentation
    def table(self) -> str:
        """A fixed-width table: one row per node and a total row, under a header
        stating the settings."""
        s = self.settings
        lines = [
            f"nirsim compare: reference '{s['reference_backend']}' vs other "
            f"'{s['other_backend']}' ({s['batch_note']})",
            f"spike tolerance {s['tolerance']:.3g}, van Rossum tau {s['tau']:.3g}, "
            f"Victor-Purpura cost {s['cost']:.3g} per unit time; {s['grid_note']}",
            f"membrane: {s['membrane_note']}",
        ]
        lines += [f"note: {n}" for n in self.notes]
        name_w = max([4, 5, *(len(n) for n in self.nodes)]) + 1
        header = "node".ljust(name_w) + "".join(h.rjust(w) for h, _, _, w in _COLUMNS)
        lines += [header, "-" * len(header)]

        def row(name, d):
            return name.ljust(name_w) + "".join(
                _fmt(d.get(k), f).rjust(w) for _, k, f, w in _COLUMNS
            )

        for name, d in self.nodes.items():
            lines.append(row(name, d))
        lines.append("-" * len(header))
        lines.append(row("total", self.summary))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def to_dict(self, per_neuron: bool = False) -> dict[str, Any]:
        """Plain Python (JSON-compatible: NaN and inf become ``None``); with
        ``per_neuron=True`` the per-neuron arrays are included as nested lists."""
        out = {
            "settings": self.settings,
            "notes": list(self.notes),
            "summary": self.summary,
            "nodes": self.nodes,
        }
        if per_neuron:
            out["per_neuron"] = self._per_neuron
        return _jsonable(out)

    def to_json(self, per_neuron: bool = False, indent: int | None = 2) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(per_neuron=per_neuron), indent=indent)

    def plot(self, kind: str = "overview", **kwargs):
        """A matplotlib Figure from :mod:`nirsim.plot`: ``kind="overview"`` (raster,
        membrane and divergence in one figure), ``"divergence"`` (cumulative missed
        and extra spikes), ``"raster"`` or ``"membrane"`` (the two traces overlaid;
        ``node=`` picks the node, default the first)."""
        from . import plot  # plot depends on this module; matplotlib stays optional

        if kind == "overview":
            return plot.overview(self, **kwargs)
        if kind == "divergence":
            return plot.divergence(self, **kwargs)
        if kind in ("raster", "membrane"):
            if self.reference is None or self.other is None:
                raise InputError("this report holds no traces to plot")
            node = kwargs.pop("node", None) or next(iter(self.nodes))
            labels = kwargs.pop("labels", ("reference", "other"))
            fn = plot.raster if kind == "raster" else plot.membrane
            return fn([self.reference, self.other], node, labels=labels, **kwargs)
        raise InputError(
            f"unknown plot kind {kind!r}: overview, divergence, raster or membrane"
        )


# ================================================================ compare()
def _as_trace(x, which: str) -> Trace:
    if isinstance(x, Trace):
        return x
    if isinstance(x, nir.NIRGraphData):
        return trace_from_nir_data(x)
    if isinstance(x, str | os.PathLike):
        return load_trace(x)
    raise InputError(
        f"{which} must be a nirsim.Trace, nir.NIRGraphData or a file path, not "
        f"{type(x).__name__}"
    )


def _check_number(x, name, *, allow_zero=True, allow_inf=False) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {x!r}") from None
    ok = (v >= 0 if allow_zero else v > 0) and (math.isfinite(v) or (allow_inf and v > 0))
    if not ok:
        raise InputError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {v!r}")
    return v


def _nodes_of(tr: Trace) -> dict[str, bool]:
    """Compared candidates: node -> has spikes (nodes with spikes or a sampled v)."""
    out = {}
    for name, _ in tr.shapes:
        if name in tr.spikes or "v" in tr.states.get(name, {}):
            out[name] = name in tr.spikes
    for name in tr.spikes:
        out.setdefault(name, True)
    return out


def _shape_of(tr: Trace, node: str) -> tuple[int, ...]:
    shapes = dict(tr.shapes)
    if node in shapes:
        return tuple(shapes[node])
    s = tr.spikes.get(node)
    if s is not None and s.n_neurons is not None:
        return (s.n_neurons,)
    raise InputError(f"trace has no shape for node '{node}'")


def _trains(tr: Trace, node: str, n: int, batch: int, shift: float, t_max: float):
    """Spike times of ``node`` per batch element and neuron (sorted numpy arrays)."""
    s = tr.spikes[node]
    t = np.asarray(s.times, dtype=float)
    idx = np.asarray(s.indices)
    rows = math.prod(t.shape[:-1])
    if rows != batch:
        raise InputError(
            f"node '{node}': spikes have {rows} batch rows, the trace a batch of {batch}"
        )
    t = t.reshape(rows, t.shape[-1])
    idx = idx.reshape(rows, idx.shape[-1])
    out = []
    for b in range(rows):
        valid = (idx[b] >= 0) & (t[b] <= t_max)
        tb, ib = t[b][valid] + shift, idx[b][valid]
        if ib.size and ib.max() >= n:
            raise InputError(
                f"node '{node}': spike index {int(ib.max())} out of range for {n} neurons"
            )
        order = np.lexsort((tb, ib))
        counts = np.bincount(ib, minlength=n)
        out.append(np.split(tb[order], np.cumsum(counts)[:-1]))
    return out


def _is_regular(ts: np.ndarray, save_dt) -> float | None:
    if save_dt is not None:
        return float(save_dt)
    if len(ts) < 2:
        return None
    d = np.diff(ts)
    step = float(np.mean(d))
    if step > 0 and np.all(np.abs(d - step) <= 1e-9 * step):
        return step
    return None


def _align(ref: Trace, oth: Trace):
    """Index arrays into the two sample grids and a sentence on how they were
    aligned (``None`` indices when they cannot be)."""
    t1 = np.asarray(ref.ts, dtype=float).reshape(-1)
    t2 = np.asarray(oth.ts, dtype=float).reshape(-1)
    if t1.size == 0 or t2.size == 0:
        return None, None, "no sampled states in one of the traces"
    # Common sample times (within 1e-9 relative).
    k = np.searchsorted(t2, t1)
    below, above = np.clip(k - 1, 0, len(t2) - 1), np.clip(k, 0, len(t2) - 1)
    near = np.where(np.abs(t2[below] - t1) <= np.abs(t2[above] - t1), below, above)
    scale = np.maximum(np.abs(t1), np.abs(t2[near]))
    common = np.abs(t2[near] - t1) <= REL_SLACK * scale
    if np.any(common):
        i1 = np.flatnonzero(common)
        return i1, near[i1], f"compared at the {i1.size} sample times common to both"
    s1, s2 = _is_regular(t1, ref.save_dt), _is_regular(t2, oth.save_dt)
    if s1 is None or s2 is None:
        return None, None, "not compared: no common sample times and an irregular grid"
    # Zero-order hold: the finer grid (the other's when equal) read at the coarser's
    # times, taking its last sample at or before each time.
    if s2 <= s1:
        coarse, fine, swap = t1, t2, False
    else:
        coarse, fine, swap = t2, t1, True
    j = np.searchsorted(fine, coarse + REL_SLACK * np.abs(coarse), side="right") - 1
    keep = (j >= 0) & (coarse <= fine[-1] * (1 + REL_SLACK))
    ic, jf = np.flatnonzero(keep), j[keep]
    if ic.size == 0:
        return None, None, "not compared: the two sample grids do not overlap"
    which = "reference" if swap else "other"
    msg = (
        f"no common sample times: the {which} trace (finer grid) resampled at the "
        f"{ic.size} coarser times by zero-order hold (last sample at or before)"
    )
    return (jf, ic, msg) if swap else (ic, jf, msg)


def _threshold_of(node, n, thresholds, network):
    """``(|v_threshold| per neuron or None, a note or None)``."""
    thr = None
    if thresholds is not None and node in thresholds:
        thr = thresholds[node]
    elif network is not None and node in network.nodes:
        prim = network.nodes[node]
        if isinstance(prim, AbstractSpikingNeuron):
            thr = prim.threshold()
    if thr is None:
        return None, None
    arr = np.asarray(thr, dtype=float)
    try:
        arr = np.broadcast_to(arr.reshape(-1) if arr.size == n else arr, (n,))
    except ValueError:
        raise InputError(
            f"threshold of node '{node}' has shape {arr.shape}, the node {n} neurons"
        ) from None
    scale = np.abs(arr)
    if not np.all(np.isfinite(scale) & (scale > 0)):
        return None, f"node '{node}': a threshold is 0 or not finite, membrane unnormalised"
    return scale, None


def _stats(dts: np.ndarray) -> dict[str, float | None]:
    if dts.size == 0:
        return dict(mean_dt=None, mean_abs_dt=None, rms_dt=None, max_abs_dt=None)
    ad = np.abs(dts)
    return dict(
        mean_dt=float(np.mean(dts)),
        mean_abs_dt=float(np.mean(ad)),
        rms_dt=float(np.sqrt(np.mean(dts * dts))),
        max_abs_dt=float(np.max(ad)),
    )


def _counts_summary(nr, no, nm) -> dict[str, Any]:
    return dict(
        ref_spikes=int(nr),
        other_spikes=int(no),
        count_diff=int(no) - int(nr),
        matched=int(nm),
        missed=int(nr - nm),
        extra=int(no - nm),
        precision=float(nm / no) if no else 1.0,
        recall=float(nm / nr) if nr else 1.0,
        f1=float(2 * nm / (nr + no)) if (nr + no) else 1.0,
    )


def _neuron_spike_metrics(ref_trains, oth_trains, tol, tau, cost):
    """Per (batch, neuron) metrics; returns arrays (B, N), pooled dts and the times
    of the unmatched spikes."""
    B, N = len(ref_trains), len(ref_trains[0]) if ref_trains else 0
    f = {
        k: np.zeros((B, N), np.int64) if k in _COUNT_FIELDS else np.full((B, N), np.nan)
        for k in _SPIKE_FIELDS
    }
    dts, missed, extra = [], [], []
    for b in range(B):
        for k in range(N):
            a, s = ref_trains[b][k], oth_trains[b][k]
            i, j = match_spikes(a, s, tol)
            d = s[j] - a[i]
            um = np.ones(len(a), bool)
            um[i] = False
            ue = np.ones(len(s), bool)
            ue[j] = False
            ma, me = a[um], s[ue]
            for key, val in _counts_summary(len(a), len(s), len(i)).items():
                f[key][b, k] = val
            for key, val in _stats(d).items():
                f[key][b, k] = np.nan if val is None else val
            first = min([*ma[:1].tolist(), *me[:1].tolist()], default=np.nan)
            f["first_divergence"][b, k] = first
            f["van_rossum"][b, k] = van_rossum(a, s, tau)
            f["victor_purpura"][b, k] = victor_purpura(a, s, cost)
            dts.append(d)
            missed.append(ma)
            extra.append(me)
    cat = lambda xs: np.sort(np.concatenate(xs)) if xs else np.zeros(0)
    return f, cat(dts) if dts else np.zeros(0), cat(missed), cat(extra)


def _spike_summary(f, dts, missed, extra) -> dict[str, Any]:
    out = _counts_summary(
        np.nansum(f["ref_spikes"]), np.nansum(f["other_spikes"]), np.nansum(f["matched"])
    )
    out.update(_stats(dts))
    first = min([*missed[:1].tolist(), *extra[:1].tolist()], default=None)
    out["first_divergence"] = None if first is None else float(first)
    B = f["van_rossum"].shape[0]
    vr = f["van_rossum"].reshape(B, -1)
    vp = f["victor_purpura"].reshape(B, -1)
    out["van_rossum"] = float(np.mean(np.sqrt(np.sum(vr**2, axis=1)))) if B else None
    out["victor_purpura"] = float(np.mean(np.sum(vp, axis=1))) if B else None
    return out


def compare(
    reference,
    other,
    *,
    nodes: str | Iterable[str] | None = None,
    tolerance: float | None = None,
    tau: float | None = None,
    cost: float | None = None,
    grid_time: str = "start",
    thresholds: Mapping[str, Any] | None = None,
    network=None,
) -> DivergenceReport:
    """How far ``other`` is from ``reference``, node by node and neuron by neuron.

    **Arguments.**

    - ``reference``, ``other``: :class:`~nirsim.Trace`, ``nir.NIRGraphData`` (its
      samples form the batch axis) or the path of a NIRGraphData file
      (:func:`nirsim.load_trace`).
    - ``nodes``: restrict to these node names (each must be in both traces). By
      default every node that both traces record (spikes, or a sampled ``v``).
    - ``tolerance``: largest ``|dt|`` of a matched spike pair (time unit of the
      traces). Default: the larger of the two traces' ``dt``, or ``1e-3`` when both
      are exact (``dt is None``).
    - ``tau``: van Rossum time constant, default ``5e-3``.
    - ``cost``: Victor-Purpura cost per unit of time, default ``2 / tolerance`` (a
      shift by the tolerance costs as much as deleting and inserting the spike).
    - ``grid_time``: where a spike of a gridded trace (``dt`` not None) sits within its
      step ``n``: ``"start"`` (``t = n dt``, NIRData's convention, default) or
      ``"centre"`` (``t = (n + 1/2) dt``). Exact traces are never shifted.
    - ``thresholds``: ``{node: v_threshold}`` (scalar or per neuron) to normalise the
      membrane error; otherwise taken from ``network`` (a :class:`nirsim.Network`)
      when given; otherwise (or for a threshold of 0) the error is unnormalised.

    **Membrane alignment.** Errors are compared at the sample times common to both
    traces (equal within ``1e-9`` relative). If there is none and both grids are
    regular, the finer one (the other trace's when the steps are equal) is read at the
    coarser one's times by zero-order hold: its last sample at or before each time
    (coarser times outside the finer grid are dropped). The report says which rule
    applied.

    **Refused** (:class:`nirsim.InputError`): no node in common; a node whose shapes
    differ (a flat shape with as many neurons is accepted, as files written elsewhere
    carry no shape); different batch sizes; end times differing by more than a factor
    100 (other units of time?). When the end times differ less, only spikes up to the
    earlier end are compared.

    Returns a :class:`DivergenceReport`; see the module :mod:`nirsim._compare`
    docstring for every metric and how they are summed over neurons and averaged over
    a batch.
    """
    ref = _as_trace(reference, "reference")
    oth = _as_trace(other, "other")
    if network is not None and not isinstance(network, Network):
        raise InputError(f"network must be a nirsim.Network, not {type(network).__name__}")
    if thresholds is not None and not isinstance(thresholds, Mapping):
        raise InputError("thresholds must be a dict {node: v_threshold}")
    if grid_time == "center":
        grid_time = "centre"
    if grid_time not in GRID_TIMES:
        raise InputError(f"grid_time must be 'start' or 'centre', got {grid_time!r}")

    # ---------------------------------------------------------- which nodes
    rn, on = _nodes_of(ref), _nodes_of(oth)
    if nodes is None:
        names = [n for n in rn if n in on]
        if not names:
            raise InputError(
                "the two traces have no node in common: reference has "
                f"{sorted(rn) or 'none'}, other has {sorted(on) or 'none'}"
            )
    else:
        names = [nodes] if isinstance(nodes, str) else list(nodes)
        if not names:
            raise InputError("nodes is empty: name at least one node to compare")
        for n in names:
            for which, have in (("reference", rn), ("other", on)):
                if n not in have:
                    raise InputError(
                        f"node '{n}' is not recorded in the {which} trace (it has "
                        f"{', '.join(sorted(have)) or 'none'})"
                    )
    shapes = {}
    for n in names:
        s1, s2 = _shape_of(ref, n), _shape_of(oth, n)
        if s1 != s2 and not (
            math.prod(s1) == math.prod(s2) and (len(s1) == 1 or len(s2) == 1)
        ):
            raise InputError(
                f"node '{n}' has shape {s1} in the reference and {s2} in the other "
                "trace: node shapes differ"
            )
        shapes[n] = s1 if len(s1) >= len(s2) else s2

    # ------------------------------------------------------- batch and units
    b1, b2 = ref.batch_shape, oth.batch_shape
    B = math.prod(b1)
    if B != math.prod(b2):
        raise InputError(f"batch sizes differ: reference {b1}, other {b2}")
    batch_shape = b1  # per-neuron arrays follow the reference's batch shape
    te1, te2 = float(ref.t_end), float(oth.t_end)
    if te1 > 0 and te2 > 0 and max(te1, te2) / min(te1, te2) > UNIT_FACTOR:
        raise InputError(
            f"end times differ by a factor {max(te1, te2) / min(te1, te2):.3g} "
            f"(reference {te1:g}, other {te2:g}): other units of time?"
        )

    # ------------------------------------------------------------- settings
    if tolerance is None:
        dts_ = [d for d in (ref.dt, oth.dt) if d is not None]
        tolerance = max(dts_) if dts_ else DEFAULT_TOLERANCE
    tolerance = _check_number(tolerance, "tolerance")
    tau = _check_number(DEFAULT_TAU if tau is None else tau, "tau", allow_zero=False)
    if cost is None:
        cost = 2.0 / tolerance if tolerance > 0 else math.inf
    cost = _check_number(cost, "cost", allow_inf=True)
    notes: list[str] = []
    t_cmp = min(te1, te2)
    if not math.isclose(te1, te2, rel_tol=REL_SLACK):
        notes.append(
            f"end times differ (reference {te1:g}, other {te2:g}): spikes after "
            f"{t_cmp:g} ignored"
        )
    else:
        t_cmp = max(te1, te2)
    if t_cmp <= 0:
        t_cmp = math.inf

    def shift(tr):
        return 0.5 * tr.dt if (tr.dt is not None and grid_time == "centre") else 0.0

    gridded = [w for w, tr in (("reference", ref), ("other", oth)) if tr.dt is not None]
    if grid_time == "start":
        grid_note = "grid spikes at bin start (t = n*dt)"
    else:
        grid_note = "grid spikes at bin centre (t = (n+1/2)*dt)"
    grid_note += f" [{', '.join(gridded)} gridded]" if gridded else " [both exact]"
    i1, i2, align_note = _align(ref, oth)

    # ------------------------------------------------------------- per node
    node_out: dict[str, dict] = {}
    per_neuron: dict[str, dict[str, np.ndarray]] = {}
    events: dict[str, dict[str, np.ndarray]] = {}
    all_f, all_dts, all_missed, all_extra = [], [], [], []
    v_pool: list[tuple[np.ndarray, bool]] = []
    for n in names:
        shape = shapes[n]
        N = math.prod(shape)
        spiking = n in ref.spikes and n in oth.spikes
        d: dict[str, Any] = {"spiking": spiking, "shape": list(shape)}
        pn: dict[str, np.ndarray] = {}
        if spiking:
            rt = _trains(ref, n, N, B, shift(ref), t_cmp)
            ot = _trains(oth, n, N, B, shift(oth), t_cmp)
            f, dts, missed, extra = _neuron_spike_metrics(rt, ot, tolerance, tau, cost)
            d.update(_spike_summary(f, dts, missed, extra))
            pn.update({k: v.reshape(batch_shape + shape) for k, v in f.items()})
            events[n] = {"missed": missed, "extra": extra}
            all_f.append(f)
            all_dts.append(dts)
            all_missed.append(missed)
            all_extra.append(extra)
        else:
            d.update({k: None for k in _SPIKE_FIELDS})
            only = [w for w, tr in (("reference", ref), ("other", oth)) if n in tr.spikes]
            if only:
                notes.append(f"node '{n}': spikes only in the {only[0]} trace")
        # membrane
        d.update(v_rms=None, v_max=None, v_samples=0, v_normalised=None)
        v1 = ref.states.get(n, {}).get("v")
        v2 = oth.states.get(n, {}).get("v")
        if v1 is not None and v2 is not None and i1 is not None:
            a1 = np.asarray(v1, dtype=float).reshape(B, -1, N)[:, i1]
            a2 = np.asarray(v2, dtype=float).reshape(B, -1, N)[:, i2]
            scale, note = _threshold_of(n, N, thresholds, network)
            if note:
                notes.append(note)
            err = a2 - a1
            if scale is not None:
                err = err / scale
            d["v_rms"] = float(np.sqrt(np.mean(err**2)))
            d["v_max"] = float(np.max(np.abs(err)))
            d["v_samples"] = int(len(i1))
            d["v_normalised"] = scale is not None
            pn["v_rms"] = np.sqrt(np.mean(err**2, axis=1)).reshape(batch_shape + shape)
            pn["v_max"] = np.max(np.abs(err), axis=1).reshape(batch_shape + shape)
            v_pool.append((err, scale is not None))
        elif (v1 is None) != (v2 is None):
            which = "reference" if v1 is not None else "other"
            notes.append(f"node '{n}': membrane sampled only in the {which} trace")
        node_out[n] = d
        per_neuron[n] = pn
        if n not in events:
            events[n] = {"missed": np.zeros(0), "extra": np.zeros(0)}

    # ---------------------------------------------------------- whole graph
    summary: dict[str, Any] = {}
    if all_f:
        cat = {k: np.concatenate([f[k] for f in all_f], axis=1) for k in _SPIKE_FIELDS}
        summary.update(
            _spike_summary(
                cat,
                np.concatenate(all_dts),
                np.sort(np.concatenate(all_missed)),
                np.sort(np.concatenate(all_extra)),
            )
        )
    else:
        summary.update({k: None for k in _SPIKE_FIELDS})
    summary.update(v_rms=None, v_max=None, v_samples=0, v_normalised=None)
    if v_pool:
        kinds = {nz for _, nz in v_pool}
        if len(kinds) == 1:
            flat = np.concatenate([e.reshape(-1) for e, _ in v_pool])
            summary["v_rms"] = float(np.sqrt(np.mean(flat**2)))
            summary["v_max"] = float(np.max(np.abs(flat)))
            summary["v_samples"] = int(v_pool[0][0].shape[1])
            summary["v_normalised"] = kinds.pop()
        else:
            notes.append(
                "membrane error of the whole graph not pooled: some nodes are "
                "normalised by their threshold and some are not"
            )
    normed = [n for n, d in node_out.items() if d["v_normalised"]]
    raw = [n for n, d in node_out.items() if d["v_normalised"] is False]
    if not normed and not raw:
        membrane_note = f"not compared ({align_note})"
    else:
        parts = []
        if normed:
            parts.append(f"normalised by |v_threshold| ({', '.join(normed)})")
        if raw:
            parts.append(f"unnormalised, no usable threshold ({', '.join(raw)})")
        membrane_note = "; ".join(parts) + f"; {align_note}"
    batch_note = (
        "unbatched"
        if B == 1 and not batch_shape
        else f"batch of {B}: counts summed, distances averaged over the batch"
    )
    settings = dict(
        tolerance=tolerance,
        tau=tau,
        cost=cost,
        grid_time=grid_time,
        grid_note=grid_note,
        membrane_note=membrane_note,
        membrane_alignment=align_note,
        batch_shape=list(batch_shape),
        batch_note=batch_note,
        t_compared=t_cmp if math.isfinite(t_cmp) else None,
        reference_backend=ref.backend,
        other_backend=oth.backend,
        reference_dt=ref.dt,
        other_dt=oth.dt,
    )
    return DivergenceReport(
        nodes=node_out,
        summary=summary,
        settings=settings,
        notes=tuple(notes),
        _per_neuron=per_neuron,
        _events=events,
        reference=ref,
        other=oth,
    )
