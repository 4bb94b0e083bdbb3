r"""The discrete engine: one ``jax.lax.scan`` over the step grid.

Step ``n`` goes from ``t_n = n dt`` to ``t_{n+1}``. Within a step every node is
evaluated once, in a topological order of the graph; an edge that closes a cycle
(and every edge out of an emitter the solver delivers late) carries the previous
step's value. The Python loop over nodes runs once, while tracing.

Signals on edges are pairs ``(c, a)``: the continuous value held over the step and
the area of the impulses arriving in it (either part statically absent where no
source produces it). A spiking node's ``n`` spikes in a step leave as an impulse of
area ``n A`` (``A`` from the solver's :class:`~.base.AbstractSpikeUnit`). A ``Delay``
of ``d`` is rounded to ``round(d/dt)`` whole steps and keeps the history of its
input (memory: steps x size).

Graph inputs: a :class:`~nirsim.Spikes` event at time ``t`` lands in step
``floor(t/dt)``, decided on the step index: a time that is the grid time ``k dt`` to
within a few units of its dtype's precision is step ``k`` (so float32 times of the
grid are binned exactly like float64 ones). A :class:`~nirsim.Current` is read as a
current or as impulses (see :class:`~.base.AbstractGridReading`).

Outputs: per spiking node a raster of spike counts ``(steps, *shape)`` (bool for
one spike per step); states observed by each node's rule at the sample times (which
lie on the grid: the sample at ``t = k dt`` is the state after step ``k - 1``, after
any reset; ``t = 0`` is the initial state); and for every spiking node a state field
``"spike_count"``: spikes in ``(ts[k-1], ts[k]]`` as a float carrying the surrogate
gradient, so losses on spike counts can be differentiated.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from nirsim._data import Current, Spikes
from nirsim.primitives import (
    AbstractNeuron,
    AbstractSpikingNeuron,
    AbstractStateless,
    Delay,
    Input,
    Output,
    Threshold,
)

from .. import results
from ..base import SimOptions
from .base import WEIGHT_NODES, AbstractDiscrete, Drive, cast_floats


def run(solver: AbstractDiscrete, network, inputs, ts, t_end, options: SimOptions):
    dt = float(solver.dt)
    dtype = solver.compute_dtype()
    n_steps = solver.n_steps(t_end)
    network = cast_floats(network, dtype)
    options = cast_floats(options, dtype)
    unit = jnp.asarray(solver.spike_unit.area(dt, options), dtype)
    impulse_grid = solver.grid_reading.as_impulses(options)
    prims = {
        n: cast_floats(solver.rewrite(network, n, p), dtype)
        for n, p in network.nodes.items()
        if isinstance(p, AbstractStateless)
    }
    rules = {
        n: solver.rule(network, n, p)
        for n, p in network.nodes.items()
        if isinstance(p, AbstractNeuron | Threshold)
    }
    plan = Plan(network, prims, rules, inputs, impulse_grid, solver)

    params = {n: rules[n].interpret(network.nodes[n], dt, options) for n in plan.stateful}

    seqs = {
        n: _input_sequence(
            inputs[n], network.shape(n), n_steps, dt, unit, impulse_grid, dtype
        )
        for n in network.inputs
    }
    rest = plan.rest_outputs(prims, rules, params, dt, dtype)
    if solver.zero_initial_feedback:
        prev0 = {p: _zeros_like_signal(rest[p]) for p in plan.carried}
    else:
        prev0 = {p: rest[p] for p in plan.carried}
    states0 = {}
    for n in plan.stateful:
        c, a = plan.gather(n, rest, rest)
        states0[n] = rules[n].init_at_rest(params[n], dt, plan.drive(n, c, a, dtype, unit))
    bufs0 = {
        n: tuple(
            None if part is None else jnp.zeros((n_steps,) + part.shape, part.dtype)
            for part in rest[n]
        )
        for n in plan.delays
    }
    delays = {
        n: jnp.round(network.nodes[n].delay / dt).astype(jnp.int32) for n in plan.delays
    }

    rows = jnp.round(ts / dt).astype(jnp.int32) - 1
    n_ts = ts.shape[0]
    # slot[step]: which sample the state after ``step`` is (n_ts: none)
    slot = jnp.full((n_steps,), n_ts, jnp.int32)
    slot = slot.at[jnp.where(rows >= 0, rows, n_steps)].set(
        jnp.arange(n_ts, dtype=jnp.int32), mode="drop"
    )
    observed0 = {n: rules[n].observe(params[n], states0[n]) for n in plan.stateful}
    samples0 = {
        n: {f: jnp.zeros((n_ts,) + x.shape, x.dtype) for f, x in observed0[n].items()}
        for n in plan.stateful
    }
    counts0 = {n: jnp.zeros(plan.shapes[n], dtype) for n in plan.spiking}
    counted0 = {n: jnp.zeros((n_ts,) + plan.shapes[n], dtype) for n in plan.spiking}

    def record(buf, value, k):
        if n_ts == 0:
            return buf
        return buf.at[k].set(value, mode="drop")

    def body(carry, x):
        states, prev, bufs, samples, counts, counted = carry
        step, k, ins = x
        now: dict = {}
        new_states, new_bufs, zs = {}, {}, {}
        for n in plan.order:
            kind = plan.kind[n]
            if kind == "input":
                now[n] = ins[n]
                continue
            if kind == "output":
                continue
            c, a = plan.gather(n, now, prev)
            if kind == "stateless":
                now[n] = _stateless(prims[n], c, a, plan.has_bias[n])
            elif kind == "delay":
                now[n], new_bufs[n] = _delay_step(delays[n], bufs[n], (c, a), step)
            else:
                rule = rules[n]
                s, z = rule.step(params[n], states[n], plan.drive(n, c, a, dtype, unit), dt)
                new_states[n] = s
                if n in plan.spiking:
                    zs[n] = z
                    now[n] = (None, z * unit)
                else:
                    now[n] = (rule.output(params[n], s), None)
        new_prev = {p: now[p] for p in plan.carried}
        new_samples = {
            n: {
                f: record(samples[n][f], v, k)
                for f, v in rules[n].observe(params[n], new_states[n]).items()
            }
            for n in plan.stateful
        }
        new_counts = {n: counts[n] + zs[n] for n in plan.spiking}
        new_counted = {n: record(counted[n], new_counts[n], k) for n in plan.spiking}
        raster = {n: _compact(zs[n], plan.raster_dtype[n]) for n in plan.spiking}
        carry = (new_states, new_prev, new_bufs, new_samples, new_counts, new_counted)
        return carry, raster

    xs = (jnp.arange(n_steps, dtype=jnp.int32), slot, seqs)
    carry0 = (states0, prev0, bufs0, samples0, counts0, counted0)
    final, rasters = jax.lax.scan(body, carry0, xs, length=n_steps)
    samples, counted = final[3], final[5]

    states = {}
    for n in plan.stateful:
        fields = {}
        for f, seq in samples[n].items():
            init = observed0[n][f]
            sel = rows.reshape(rows.shape + (1,) * (seq.ndim - 1)) < 0
            fields[f] = jnp.where(sel, init, seq)
        if fields:
            states[n] = fields
    for n in plan.spiking:
        at = counted[n]
        sel = rows.reshape(rows.shape + (1,) * (at.ndim - 1)) < 0
        at = jnp.where(sel, 0.0, at)
        binned = jnp.diff(at, axis=0, prepend=jnp.zeros((1,) + at.shape[1:], at.dtype))
        states.setdefault(n, {})["spike_count"] = binned
    finite = jnp.asarray(True)
    for leaf in jax.tree.leaves(final[0]):
        if jnp.issubdtype(leaf.dtype, jnp.inexact):
            finite = finite & jnp.all(jnp.isfinite(leaf))
    result = results.RESULTS.where(
        finite, results.RESULTS.successful, results.RESULTS.nonfinite
    )
    return results.Solution(spikes=rasters, states=states, result=result)


# ---------------------------------------------------------------------- helpers
def _stateless(prim, c, a, has_bias: bool):
    out_c = None if c is None else prim.linear(c)
    if has_bias:
        out_c = prim.offset() if out_c is None else out_c + prim.offset()
    out_a = None if a is None else prim.linear(a)
    return (out_c, out_a)


def _delay_step(d, bufs, signal, step):
    out, new = [], []
    for part, hist in zip(signal, bufs, strict=True):
        if hist is None:
            out.append(None)
            new.append(None)
            continue
        src = step - d
        idx = jnp.clip(src, 0, hist.shape[0] - 1)
        past = jnp.take_along_axis(hist, idx[None], axis=0)[0]
        past = jnp.where(src >= 0, past, 0.0)
        out.append(jnp.where(d == 0, part, past))
        new.append(hist.at[step].set(part))
    return tuple(out), tuple(new)


def _zeros_like_signal(sig):
    return tuple(None if p is None else jnp.zeros_like(p) for p in sig)


def _add(x, y):
    if x is None:
        return y
    if y is None:
        return x
    return x + y


def _compact(z, dtype):
    """One step's spike counts as a small integer raster (bool for one spike)."""
    z = jax.lax.stop_gradient(z)
    if dtype == jnp.bool_:
        return z > 0.5
    return jnp.round(z).astype(dtype)


def raster_dtype(spikes_per_step: int | None):
    if spikes_per_step == 1:
        return jnp.bool_
    if spikes_per_step is not None and spikes_per_step <= 127:
        return jnp.int8
    if spikes_per_step is not None and spikes_per_step <= 32767:
        return jnp.int16
    return jnp.int32


def event_steps(t, dt: float, n_steps: int):
    """Step index of each time ``t`` (``n_steps`` for padding: inf or NaN).

    The grid step ``k`` when ``t`` is ``k dt`` to within four float32 units of
    ``k`` (``|t/dt - k| <= 4 eps32 max(k, 1)``), else ``floor(t/dt)``. So grid times
    rounded to float32 anywhere on their way in (a float32 file, a float32 array
    upcast to float64, a float32 run) land in the step they name, as in float64; an
    event that close to a step boundary is read as on it (about 5e-7 of a step per
    step index)."""
    ok = jnp.isfinite(t)
    t = jnp.where(ok, t, 0.0)
    q = t / dt
    k = jnp.round(q)
    eps = float(np.finfo(np.float32).eps)
    on_grid = jnp.abs(q - k) <= 4 * eps * jnp.maximum(jnp.abs(k), 1.0)
    step = jnp.where(on_grid, k, jnp.floor(q))
    step = jnp.clip(step, 0, n_steps).astype(jnp.int32)
    return jnp.where(ok, step, n_steps)


def _input_sequence(value, shape, n_steps, dt, unit, impulse_grid, dtype):
    """``(c, a)``: per-step drive and impulse areas of one graph input, each
    ``(n_steps, *shape)`` or None."""
    if isinstance(value, Current):
        vals = value.values.astype(dtype)
        if not impulse_grid:
            return (_bin_average(vals, value.dt, n_steps, dt), None)
        bins = vals.shape[0]
        step = np.floor(np.arange(bins) * value.dt / dt + 1e-9).astype(np.int32)
        area = jnp.zeros((n_steps,) + tuple(shape), dtype)
        return (None, area.at[step].add(vals * unit, mode="drop"))
    assert isinstance(value, Spikes)
    width = math.prod(shape)
    idx = value.indices
    ok = idx >= 0
    step = event_steps(value.times, dt, n_steps)
    step = jnp.where(ok, step, n_steps)
    if value.values is None:
        vals = jnp.broadcast_to(unit, idx.shape)
    else:
        vals = value.values.astype(dtype) * unit
    raster = jnp.zeros((n_steps, width), dtype)
    raster = raster.at[step, jnp.where(ok, idx, 0)].add(vals, mode="drop")
    return (None, raster.reshape((n_steps,) + tuple(shape)))


def _bin_average(vals, bin_dt, n_steps, dt):
    """Average over each step of a piecewise-constant signal (0 after its bins)."""
    bins = vals.shape[0]
    ratio = bin_dt / dt
    k = round(ratio)
    if k >= 1 and abs(ratio - k) <= 1e-9 * ratio:
        rep = jnp.repeat(vals, k, axis=0) if k > 1 else vals
        if rep.shape[0] >= n_steps:
            return rep[:n_steps]
        pad = jnp.zeros((n_steps - rep.shape[0],) + rep.shape[1:], rep.dtype)
        return jnp.concatenate([rep, pad], axis=0)
    tail = (1,) * (vals.ndim - 1)
    cum = jnp.concatenate(
        [jnp.zeros((1,) + vals.shape[1:], vals.dtype), jnp.cumsum(vals * bin_dt, axis=0)]
    )
    padded = jnp.concatenate([vals, jnp.zeros((1,) + vals.shape[1:], vals.dtype)])
    # bin edges and step edges on the host in float64: which bin each step edge is in
    edges = np.arange(n_steps + 1) * dt
    b = np.clip(np.floor(edges / bin_dt + 1e-9), 0, bins).astype(np.int32)
    frac = jnp.asarray((edges - b * bin_dt).reshape((-1,) + tail), vals.dtype)
    integral = cum[b] + padded[b] * frac
    return (integral[1:] - integral[:-1]) / jnp.asarray(dt, vals.dtype)


def step_order(network, late=frozenset()) -> tuple[str, ...]:
    """A topological order of all edges but those that close a cycle (reverse
    post-order of a depth-first search from the graph inputs). Edges out of the
    nodes in ``late`` carry the previous step anyway, so they impose no order: a
    cycle through one of them is closed there, and takes one step, not two."""
    succ = {n: () if n in late else network.successors(n) for n in network.order}
    seen: set[str] = set()
    post: list[str] = []
    for root in tuple(network.inputs) + tuple(network.order):
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(succ[root]))]
        while stack:
            n, it = stack[-1]
            for m in it:
                if m not in seen:
                    seen.add(m)
                    stack.append((m, iter(succ[m])))
                    break
            else:
                stack.pop()
                post.append(n)
    return tuple(reversed(post))


class Plan:
    """The static structure of one step (built while tracing, in plain Python)."""

    def __init__(self, network, prims, rules, inputs, impulse_grid: bool, solver):
        self.kind: dict[str, str] = {}
        for n in network.order:
            prim = network.nodes[n]
            if isinstance(prim, Input):
                kind = "input"
            elif isinstance(prim, Output):
                kind = "output"
            elif isinstance(prim, AbstractStateless):
                kind = "stateless"
            elif isinstance(prim, Delay):
                kind = "delay"
            elif isinstance(prim, AbstractSpikingNeuron | Threshold):
                kind = "spiking"
            else:
                kind = "neuron"
            self.kind[n] = kind

        def late(p):
            if self.kind[p] == "spiking" and solver.delivers_late(network, p):
                return True
            return solver.dense_delay and isinstance(network.nodes[p], WEIGHT_NODES)

        self.order = step_order(network, frozenset(n for n in network.order if late(n)))
        pos = {n: i for i, n in enumerate(self.order)}
        self.stateful = tuple(
            n for n in self.order if self.kind[n] in ("neuron", "spiking")
        )
        self.spiking = tuple(n for n in self.order if self.kind[n] == "spiking")
        self.delays = tuple(n for n in self.order if self.kind[n] == "delay")
        self.raster_dtype = {
            n: raster_dtype(rules[n].spikes_per_step) for n in self.spiking
        }
        # of the stateless nodes as the solver reads them (a rewrite may drop a bias)
        self.has_bias = {n: "bias" in type(p).param_names for n, p in prims.items()}

        self.reads: dict[str, tuple[tuple[str, bool], ...]] = {}
        carried = set()
        for n in self.order:
            reads = []
            for p in network.predecessors(n):
                if self.kind[p] == "output":
                    continue
                use_prev = pos[p] >= pos[n] or late(p)
                if use_prev:
                    carried.add(p)
                reads.append((p, use_prev))
            self.reads[n] = tuple(reads)
        self.carried = tuple(n for n in self.order if n in carried)

        # which signal parts (continuous, impulse) exist where: a fixed point
        has = {}
        for n in self.order:
            k = self.kind[n]
            if k == "input":
                cur = isinstance(inputs[n], Current) and not impulse_grid
                has[n] = (cur, not cur)
            elif k == "neuron":
                has[n] = (True, False)
            elif k == "spiking":
                has[n] = (False, True)
            else:
                has[n] = (False, False)
        changed = True
        while changed:
            changed = False
            for n in self.order:
                k = self.kind[n]
                if k not in ("stateless", "delay"):
                    continue
                c = any(has[p][0] for p, _ in self.reads[n])
                a = any(has[p][1] for p, _ in self.reads[n])
                if k == "stateless" and self.has_bias[n]:
                    c = True
                if (c, a) != has[n]:
                    has[n] = (c or has[n][0], a or has[n][1])
                    changed = True
        self.has = has
        self.shapes = {n: tuple(network.shape(n)) for n in self.order}

    def gather(self, n, now, prev):
        c = a = None
        for p, use_prev in self.reads[n]:
            sig = (prev if use_prev else now).get(p)
            if sig is None:
                continue
            c = _add(c, sig[0])
            a = _add(a, sig[1])
        return c, a

    def drive(self, n, c, a, dtype, unit) -> Drive:
        zero = jnp.zeros(self.shapes[n], dtype)
        return Drive(
            current=zero if c is None else jnp.broadcast_to(c, self.shapes[n]),
            impulse=zero if a is None else jnp.broadcast_to(a, self.shapes[n]),
            unit=unit,
        )

    def rest_outputs(self, prims, rules, params, dt, dtype):
        """Every node's outgoing signal at rest (before t = 0), with the static
        presence of each part."""
        rest: dict = {}
        for n in self.order:
            k = self.kind[n]
            has_c, has_a = self.has[n]
            shape = self.shapes[n]
            zero = jnp.zeros(shape, dtype)
            if k == "stateless":
                out_c = None
                if has_c:
                    c = self.gather(n, rest, rest)[0]
                    x = None if c is None else prims[n].linear(c)
                    if self.has_bias[n]:
                        x = prims[n].offset() if x is None else x + prims[n].offset()
                    out_c = zero if x is None else x
                rest[n] = (out_c, zero if has_a else None)
            elif k == "neuron":
                state = rules[n].init(params[n], dt)
                rest[n] = (rules[n].output(params[n], state), None)
            else:
                rest[n] = (zero if has_c else None, zero if has_a else None)
        return rest
