"""The event-driven engine shared by the ideal solvers: one flat loop, every sample
on its own clock.

Each iteration of the loop does a fixed amount of work for one sample at its time
``t``; nothing inside it loops:

1. impulses due at ``t`` arrive: up to ``_WINDOW`` graph input events per input
   (more at one instant take more iterations) and the Delay outputs due;
2. the continuous drives on ``[t, B)`` are read, ``B`` being the next instant a
   continuous source changes (a current bin edge, shifted by continuous Delays);
   Threshold nodes compare them with the previous segment's value (upward crossing);
3. one firing round: every spiking neuron with ``v >= v_threshold`` (or flagged by
   the previous advance as crossing there) fires, is reset, and its impulse (area
   ``spike_area``) reaches its targets at ``t``;
4. if something is still due at ``t`` (a neuron pushed over threshold by that
   round, more input events, a zero Delay), the sample stays at ``t`` and the next
   iteration runs the next round of the zero-delay cascade (more than
   ``max_cascade`` rounds at one instant is a Zeno error). Otherwise the instant is
   settled: its states are saved if ``t`` is a sample time, and the solver's
   ``advance`` moves every neuron to the earliest of the next scheduled instant and
   the first threshold crossing (closed form or diffrax).

A batch is not run in lockstep: :func:`run_event_loop_batch` advances only the
samples that still have work, and gathers the last ones into smaller buckets (see
there).

Buffers have fixed sizes (``max_spikes``); ``max_events`` bounds the iterations.

Differentiation (closed-form path). The loop is differentiable with respect to
every array the network holds: a spike time carries its implicit-function
derivative (:func:`nirsim.solvers.closed_form.first_crossing`) and the chain rule
carries it through resets, propagators and coupling impulses into every later
event. Which loop runs is the solver's ``adjoint``:

* ``"checkpointed"``: ``equinox.internal.while_loop(kind="checkpointed")``, reverse
  mode only. The backward pass recomputes iterations from checkpoints
  (Stumm-Walther online treeverse): its memory is ``checkpoints`` copies of the
  loop's carry (states, Delay queues, spike buffers of ``max_spikes`` times and
  indices per spiking node, sampled states ``len(ts) x`` node sizes), per sample;
  ``checkpoints`` defaults to about ``sqrt(2 max_events)``. Its cost is a few forward
  passes.
* ``"forward"``: ``lax.while_loop``, forward mode only (``jax.jvp``).

Input impulse times and values are constants for differentiation;
``spike_area`` is differentiable.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp

from nirsim._data import Current
from nirsim._progress import tick as progress_tick
from nirsim.primitives import AbstractSpikingNeuron, Delay, Threshold

from . import results
from ._signals import InputSignals, grid_as_impulses


class Plan(eqx.Module):
    """Static description of a network for the event loop."""

    neurons: tuple[str, ...] = eqx.field(static=True)
    spiking_neurons: tuple[str, ...] = eqx.field(static=True)
    thresholds: tuple[str, ...] = eqx.field(static=True)
    delays: tuple[str, ...] = eqx.field(static=True)
    continuous_delays: tuple[str, ...] = eqx.field(static=True)
    continuous_neurons: tuple[str, ...] = eqx.field(static=True)


def make_plan(network, continuous_delays: tuple[str, ...]) -> Plan:
    neurons = network.neurons
    return Plan(
        neurons=neurons,
        spiking_neurons=tuple(
            n for n in neurons if isinstance(network.nodes[n], AbstractSpikingNeuron)
        ),
        thresholds=network.names_of(Threshold),
        delays=network.names_of(Delay),
        continuous_delays=continuous_delays,
        continuous_neurons=tuple(
            n for n in neurons if not isinstance(network.nodes[n], AbstractSpikingNeuron)
        ),
    )


_WINDOW = 32  # input events read per iteration at one instant
ADJOINTS = ("checkpointed", "forward")


def check_adjoint(adjoint, checkpoints) -> None:
    from nirsim._errors import InputError

    if adjoint not in ADJOINTS:
        raise InputError(f"adjoint must be one of {ADJOINTS}, got {adjoint!r}")
    if checkpoints is not None and (int(checkpoints) != checkpoints or checkpoints < 1):
        raise InputError(f"checkpoints must be an integer >= 1, got {checkpoints!r}")


def _while(cond, body, init, adjoint, max_steps, checkpoints=None):
    """The loop of ``adjoint`` (see the module docstring)."""
    if adjoint == "forward":
        return jax.lax.while_loop(cond, body, init)
    return eqxi.while_loop(
        cond,
        body,
        init,
        max_steps=max_steps,
        kind="checkpointed",
        checkpoints=None if checkpoints is None else min(checkpoints, max_steps),
    )


def _flat_size(network, name) -> int:
    return math.prod(network.shape(name))


def _record(buf, fired_flat, t, max_spikes):
    times, idx, count = buf
    k = jnp.sum(fired_flat)
    pos = count + jnp.cumsum(fired_flat) - 1
    pos = jnp.where(fired_flat, pos, max_spikes)  # out of range -> dropped
    neuron = jnp.arange(fired_flat.shape[0], dtype=jnp.int32)
    times = times.at[pos].set(t, mode="drop")
    idx = idx.at[pos].set(neuron, mode="drop")
    return (times, idx, count + k), count + k > max_spikes


def _schedule(queue, areas_flat, t, delay_flat, active=True):
    """Put non-zero impulse areas into a Delay node's queue at ``t + delay``."""
    qt, qi, qa = queue
    mask = (areas_flat != 0) & active
    cap = qt.shape[0]
    free = jnp.nonzero(qt == jnp.inf, size=areas_flat.shape[0], fill_value=cap)[0]
    rank = jnp.cumsum(mask) - 1
    slot = jnp.where(mask, free[jnp.clip(rank, 0, areas_flat.shape[0] - 1)], cap)
    overflow = jnp.any(mask & (slot >= cap))
    neuron = jnp.arange(areas_flat.shape[0], dtype=jnp.int32)
    qt = qt.at[slot].set(t + delay_flat, mode="drop")
    qi = qi.at[slot].set(neuron, mode="drop")
    qa = qa.at[slot].set(areas_flat, mode="drop")
    return (qt, qi, qa), overflow


def _deliver(queue, t, n, active=True):
    """Remove the queued impulses due at or before ``t``; their areas per neuron."""
    qt, qi, qa = queue
    due = (qt <= t) & active
    areas = jnp.zeros(n).at[jnp.where(due, qi, n)].add(qa, mode="drop")
    qt = jnp.where(due, jnp.inf, qt)
    return (qt, qi, qa), areas


class Engine:
    """The loop of the module docstring for one network, built while tracing.

    ``advance(states, drives, t, H)`` returns ``(h, new_states, fire_flags, *extra)``:
    the time actually advanced (``0 <= h <= H``), the states at ``t + h`` and, per
    spiking neuron node, which neurons reached threshold there by drift; ``extra``
    may hold the number of grazing crossings among them (counted in the result) and
    a bound ``cap`` on the next search (``h = 0`` with a finite ``cap``: the search
    was cut short, retry on ``(0, cap]``)."""

    def __init__(self, network, ts, t_end: float, options, plan: Plan, advance: Callable):
        self.net = network
        self.ts = ts
        self.t_end = t_end
        self.options = options
        self.plan = plan
        self.advance = advance
        self.spiking_nodes = plan.spiking_neurons + plan.thresholds

    # ----------------------------------------------------------------- inputs
    def prepare(self, inputs) -> dict:
        """What the loop reads of one sample's inputs, built once outside it: the
        inputs and, per impulse input, its time-sorted ``(times, indices, values)``
        padded with ``_WINDOW`` empty events (constants for differentiation)."""
        impulses = {}
        for name, v in inputs.items():
            if isinstance(v, Current):
                if not self.options.impulse_grid:
                    continue
                times, idx, vals = grid_as_impulses(v, self.net.shape(name))
            else:
                vals = jnp.ones_like(v.times) if v.values is None else v.values
                times, idx = v.times, v.indices
            if times.shape[0] == 0:
                continue
            w_len = min(_WINDOW, times.shape[0])
            impulses[name] = (
                jax.lax.stop_gradient(jnp.concatenate([times, jnp.full(w_len, jnp.inf)])),
                jnp.concatenate([idx, jnp.full(w_len, -1, idx.dtype)]),
                jax.lax.stop_gradient(jnp.concatenate([vals, jnp.zeros(w_len)])),
            )
        return dict(inputs=inputs, impulses=impulses)

    def _signals(self, inputs) -> InputSignals:
        signals = InputSignals(self.net, inputs, self.plan.continuous_delays)
        if self.options.impulse_grid:
            signals.currents.clear()
        return signals

    def _input_window(self, impulses, ptrs, t):
        """Areas of the (up to ``_WINDOW``) input impulses due at ``t`` from each
        pointer, the advanced pointers and whether more are due at ``t``. A one-hot
        contraction rather than a scatter (scatters are slow under vmap)."""
        net = self.net
        areas, new_ptrs, more = {}, {}, jnp.asarray(False)
        for name, (times, idx, vals) in impulses.items():
            n = _flat_size(net, name)
            w_len = min(_WINDOW, times.shape[0] // 2)
            total = times.shape[0] - w_len
            ptr = ptrs[name]
            tw, iw, vw = (
                jax.lax.dynamic_slice(a, (ptr,), (w_len,)) for a in (times, idx, vals)
            )
            due = (tw <= t) & (iw >= 0)
            w = jnp.where(due, vw, 0.0)
            acc = (iw[:, None] == jnp.arange(n)).astype(w.dtype).T @ w
            ptr = ptr + jnp.sum(due).astype(jnp.int32)
            # times the area outside the window: differentiable in spike_area
            areas[name] = (acc * self.options.spike_area).reshape(net.shape(name))
            new_ptrs[name] = ptr
            more = more | (times[jnp.minimum(ptr, total)] <= t)
        return areas, new_ptrs, more

    @staticmethod
    def _next_input_spike(impulses, ptrs):
        nxt = jnp.asarray(jnp.inf)
        for name, (times, _, _) in impulses.items():
            nxt = jnp.minimum(nxt, times[ptrs[name]])  # the padding is inf
        return nxt

    # ------------------------------------------------------------------ carry
    def init(self, prep) -> dict:
        """The loop's carry at ``t = 0`` for one sample (``prep``: :meth:`prepare`)."""
        net, plan, cap = self.net, self.plan, self.options.max_spikes
        impulses = prep["impulses"]
        states0 = {n: net.nodes[n].init_state() for n in plan.neurons}
        n_save = self.ts.shape[0]
        return dict(
            t=jnp.asarray(0.0),
            t_cap=jnp.asarray(jnp.inf),
            states=states0,
            flags={n: jnp.zeros(net.shape(n), bool) for n in plan.spiking_neurons},
            queues={
                d: (jnp.full(cap, jnp.inf), jnp.full(cap, -1, jnp.int32), jnp.zeros(cap))
                for d in plan.delays
            },
            bufs={
                n: (jnp.full(cap, jnp.inf), jnp.full(cap, -1, jnp.int32), jnp.asarray(0))
                for n in self.spiking_nodes
            },
            ptrs={n: jnp.asarray(0, jnp.int32) for n in impulses},
            thr_last={n: jnp.zeros(net.shape(n)) for n in plan.thresholds},
            saved={
                n: {
                    f: jnp.full((n_save,) + net.shape(n), jnp.nan)
                    for f in type(states0[n]).__dataclass_fields__
                }
                for n in plan.neurons
            },
            save_idx=jnp.asarray(0),
            rounds=jnp.asarray(0),
            code=jnp.asarray(0, jnp.int32),
            done=jnp.asarray(False),
            n_events=jnp.asarray(0),
            fail_t=jnp.asarray(jnp.nan),
            fail_node=jnp.asarray(-1),
            n_grazing=jnp.asarray(0, jnp.int32),
        )

    def running(self, c):
        return (~c["done"]) & (c["n_events"] < self.options.max_events)

    # ------------------------------------------------------------------- step
    def _fire(self, states, bufs, flags, thr_fire, t, active):
        """One firing round at ``t``: resets, recorded spikes, outgoing areas."""
        net, opts = self.net, self.options
        sources, new_states, new_bufs = {}, dict(states), dict(bufs)
        full = jnp.asarray(False)
        last = jnp.asarray(-1)
        for n in self.spiking_nodes:
            if n in thr_fire:
                fired = thr_fire[n]
            else:
                prim = net.nodes[n]
                fired = (prim.event(states[n]) >= 0) | flags[n]
                new_states[n] = prim.reset(states[n], fired, opts.subtract)
                last = jnp.where(jnp.any(fired), net.spiking.index(n), last)
            sources[n] = jnp.where(fired, opts.spike_area, 0.0)
            new_bufs[n], f = _record(
                bufs[n], (fired & active).reshape(-1), t, opts.max_spikes
            )
            full = full | f
        return new_states, new_bufs, sources, full, last

    def _arrive(self, states, queues, sources, t, active):
        """Push impulse areas from ``sources`` into neurons and Delay queues."""
        net = self.net
        arriving = net.propagate(sources, bias=False)
        new_states, new_queues = dict(states), dict(queues)
        overflow = jnp.asarray(False)
        for n in self.plan.neurons:
            if n in arriving:
                new_states[n] = net.nodes[n].impulse(states[n], arriving[n])
        for d in self.plan.delays:
            if d in arriving:
                q, o = _schedule(
                    queues[d],
                    arriving[d].reshape(-1),
                    t,
                    net.nodes[d].delay.reshape(-1),
                    active,
                )
                new_queues[d] = q
                overflow = overflow | o
        return new_states, new_queues, overflow

    def _save(self, saved, k, states, due):
        """Write the states into sample row ``k`` where ``due`` (a dropped scatter
        otherwise, so the buffers are updated in place)."""
        row = jnp.where(due, k, self.ts.shape[0])
        return {
            n: {
                f: arr.at[row].set(getattr(states[n], f), mode="drop")
                for f, arr in fields.items()
            }
            for n, fields in saved.items()
        }

    def step(self, c, prep, active=True) -> dict:
        """One iteration (see the module docstring) for one sample (``prep``:
        :meth:`prepare`). Where ``active`` is False the carry comes back unchanged
        (and its buffers are not copied: their writes are dropped)."""
        net, plan, opts, ts = self.net, self.plan, self.options, self.ts
        n_save = ts.shape[0]
        impulses, signals = prep["impulses"], self._signals(prep["inputs"])
        t = c["t"]
        if opts.progress:
            jax.debug.callback(progress_tick, t, ordered=False)
        # 1. external impulses due at t
        sources, ptrs, more_inputs = self._input_window(impulses, c["ptrs"], t)
        queues = dict(c["queues"])
        for d in plan.delays:
            queues[d], a = _deliver(queues[d], t, _flat_size(net, d), active)
            sources[d] = a.reshape(net.shape(d))
        # 2. continuous drives on [t, B)
        b = jax.lax.stop_gradient(signals.next_break(t))
        mid = jnp.where(jnp.isfinite(b), 0.5 * (t + b), t + 1.0)
        cont = net.propagate(signals.sources(mid), bias=True)
        zeros = {n: jnp.zeros(net.shape(n)) for n in plan.neurons + plan.thresholds}
        thr_fire, thr_last = {}, {}
        for n in plan.thresholds:
            x = cont.get(n, zeros[n])
            thr_fire[n] = (c["thr_last"][n] < net.nodes[n].threshold) & (
                x >= net.nodes[n].threshold
            )
            thr_last[n] = x
        # 3. one firing round at t
        states, bufs, fired_sources, full, last = self._fire(
            c["states"], c["bufs"], c["flags"], thr_fire, t, active
        )
        sources.update(fired_sources)
        states, queues, overflow = self._arrive(states, queues, sources, t, active)
        code = c["code"]
        code = jnp.where(full & (code == 0), results.SPIKE_BUFFER_FULL, code)
        code = jnp.where(overflow & (code == 0), results.DELAY_BUFFER_FULL, code)
        # 4. is the instant settled?
        pending = more_inputs
        for n in plan.spiking_neurons:
            pending = pending | jnp.any(net.nodes[n].event(states[n]) >= 0)
        for d in plan.delays:
            pending = pending | jnp.any(queues[d][0] <= t)
        rounds = jnp.where(pending, c["rounds"] + 1, 0)
        code = jnp.where(
            pending & (rounds > opts.max_cascade) & (code == 0), results.ZENO, code
        )
        settled = ~pending
        # samples at t, after the instant settles
        k = c["save_idx"]
        if n_save:
            due = settled & active & (k < n_save) & (ts[jnp.clip(k, 0, n_save - 1)] == t)
            saved = self._save(c["saved"], k, states, due)
            k = jnp.where(due, k + 1, k)
            t_save = jnp.where(k < n_save, ts[jnp.clip(k, 0, n_save - 1)], jnp.inf)
        else:
            saved, t_save = c["saved"], jnp.asarray(jnp.inf)
        # 5. advance
        t_delay = jnp.asarray(jnp.inf)
        for d in plan.delays:
            t_delay = jnp.minimum(t_delay, jnp.min(queues[d][0]))
        horizon = jnp.minimum(
            jnp.minimum(b, self._next_input_spike(impulses, ptrs)), t_save
        )
        horizon = jnp.minimum(jnp.minimum(horizon, t_delay), self.t_end)
        horizon = jnp.minimum(horizon, c["t_cap"])
        drives = {n: cont.get(n, zeros[n]) for n in plan.neurons}
        h_max = horizon - t
        h, new_states, flags, *extra = self.advance(states, drives, t, h_max)
        n_grazing = c["n_grazing"] + (extra[0] if extra else 0)
        cap = extra[1] if len(extra) > 1 else jnp.asarray(jnp.inf)
        # the value lands on the horizon exactly; the derivative is that of t + h
        t_new = jnp.where(h >= h_max, horizon, jnp.minimum(t + h, horizon))
        t_new = t + h + jax.lax.stop_gradient(t_new - (t + h))
        finite = jnp.asarray(True)
        for n in plan.neurons:
            for leaf in jax.tree_util.tree_leaves(new_states[n]):
                finite = finite & jnp.all(jnp.isfinite(leaf))
        code = jnp.where(settled & ~finite & (code == 0), results.NONFINITE, code)
        newly = (code != 0) & (c["code"] == 0)
        finished = (settled & (t >= self.t_end)) | (code != 0)
        move = settled & ~finished
        no_flags = {n: jnp.zeros(net.shape(n), bool) for n in plan.spiking_neurons}
        pick = lambda a, b_: jax.tree_util.tree_map(
            lambda x, y: jnp.where(move, x, y), a, b_
        )
        new = dict(
            t=jnp.where(move, t_new, t),
            t_cap=jnp.where(move & (h == 0), jax.lax.stop_gradient(t + cap), jnp.inf),
            states=pick(new_states, states),
            flags=pick(flags, no_flags),
            ptrs=ptrs,
            thr_last=thr_last,
            save_idx=k,
            rounds=rounds,
            code=code,
            done=finished,
            n_events=c["n_events"] + 1,
            fail_t=jnp.where(newly, t, c["fail_t"]),
            fail_node=jnp.where(newly, last, c["fail_node"]),
            n_grazing=jnp.where(move, n_grazing, c["n_grazing"]),
        )
        if active is not True:
            new = jax.tree_util.tree_map(
                lambda x, y: jnp.where(active, x, y), new, {k_: c[k_] for k_ in new}
            )
        # the buffers: writes dropped where inactive
        return dict(c, queues=queues, bufs=bufs, saved=saved, **new)

    # ----------------------------------------------------------------- result
    def solution(self, final) -> results.Solution:
        code = final["code"]
        code = jnp.where((code == 0) & ~final["done"], results.MAX_EVENTS, code).astype(
            jnp.int32
        )
        fail_t = jnp.where(code == results.MAX_EVENTS, final["t"], final["fail_t"])
        spikes = {n: (final["bufs"][n][0], final["bufs"][n][1]) for n in self.spiking_nodes}
        return results.Solution(
            spikes=spikes,
            states=final["saved"],
            result=results.from_code(code),
            failure_time=fail_t,
            failure_node=final["fail_node"],
            n_grazing=final["n_grazing"],
        )


def run_event_loop(
    network,
    inputs: dict,
    ts,
    t_end: float,
    options,
    plan: Plan,
    advance: Callable,
    adjoint: str = "forward",
    checkpoints: int | None = None,
):
    """Simulate one sample (see the module docstring and :class:`Engine`).
    Returns a :class:`~nirsim.solvers.results.Solution`."""
    eng = Engine(network, ts, t_end, options, plan, advance)
    prep = eng.prepare(inputs)
    final = _while(
        eng.running,
        lambda c: eng.step(c, prep),
        eng.init(prep),
        adjoint,
        options.max_events,
        checkpoints,
    )
    return eng.solution(final)


_SHRINK = 8  # a batch of B runs in buckets of B, B // 8 and 1 sample(s)


#: The batch axis of :func:`run_event_loop_batch`'s step (see :func:`any_in_loop`).
LOOP_AXIS = "nirsim_event_loop"


def any_in_loop(pred) -> jax.Array:
    """``jnp.any(pred)``, taken over every sample of the bucket when called inside
    :func:`run_event_loop_batch`'s step: a ``lax.cond`` on it stays a branch (under
    ``vmap`` a per-sample predicate turns the cond into computing both branches)."""
    p = jnp.any(pred)
    try:
        return jax.lax.psum(p.astype(jnp.int32), LOOP_AXIS) > 0
    except NameError:  # not inside the batched loop
        return p


def _take(tree, idx):
    return jax.tree_util.tree_map(lambda a: a[idx], tree)


def _put(tree, idx, sub):
    return jax.tree_util.tree_map(lambda a, b: a.at[idx].set(b), tree, sub)


def run_event_loop_batch(
    network,
    inputs: dict,
    ts,
    t_end: float,
    options,
    plan: Plan,
    advance: Callable,
    adjoint: str = "forward",
    checkpoints: int | None = None,
):
    """Simulate a batch (``inputs`` with one leading batch axis) without lockstep.

    ``vmap`` of a while loop runs every sample until the busiest one is done, and
    copies each sample's whole carry (spike buffers included) at every iteration.
    Here every sample keeps its own clock and a finished sample's writes are
    dropped; and when no more than ``B // 8`` samples are still running, those are
    gathered into a bucket of that size and continue there, and the last one alone,
    unbatched. In a bucket the numerical search for a crossing runs when some
    sample needs it (:func:`any_in_loop`). Three loops at most (each bucket size is
    compiled once, so more buckets would cost compile time for little run time).
    Returns a batched :class:`~nirsim.solvers.results.Solution`."""
    eng = Engine(network, ts, t_end, options, plan, advance)
    prep = jax.vmap(eng.prepare)(inputs)
    carry = jax.vmap(eng.init)(prep)
    running = jax.vmap(eng.running)
    vstep = jax.vmap(eng.step, axis_name=LOOP_AXIS)
    size = jax.tree_util.tree_leaves(carry)[0].shape[0]

    def loop(c, p, s):
        if s == 1:
            c1 = _while(
                eng.running,
                lambda x: eng.step(x, _take(p, 0)),
                _take(c, 0),
                adjoint,
                options.max_events,
                checkpoints,
            )
            return jax.tree_util.tree_map(lambda a: a[None], c1)
        nxt = s // _SHRINK if s == size and s // _SHRINK > 1 else 1
        c = _while(
            lambda x: jnp.sum(running(x)) > nxt,
            lambda x: vstep(x, p, running(x)),
            c,
            adjoint,
            options.max_events,
            checkpoints,
        )
        # the (at most nxt) samples still running, first
        order = jnp.argsort(~running(c), stable=True)[:nxt]
        return _put(c, order, loop(_take(c, order), _take(p, order), nxt))

    final = loop(carry, prep, size)
    return jax.vmap(eng.solution)(final)
