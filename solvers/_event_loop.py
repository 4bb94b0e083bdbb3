"""The event-driven loop shared by the ideal solvers.

One iteration at time ``t``:

1. impulses due at ``t`` arrive (graph input spikes, Delay outputs);
2. the continuous drives on ``[t, B)`` are read, ``B`` being the next instant a
   continuous source changes (a current bin edge, shifted by continuous Delays);
   Threshold nodes compare them with the previous segment's value (upward crossing);
3. the zero-delay cascade at ``t``: every spiking neuron with ``v >= v_threshold``
   fires, is reset, and its impulse (area ``spike_area``) reaches its targets at
   ``t``; repeated in rounds until nothing fires (more than ``max_cascade`` rounds is
   a Zeno error);
4. states are saved if ``t`` is a sample time (after resets);
5. the solver's ``advance`` moves every neuron to the earliest of the next scheduled
   instant and the first threshold crossing (closed form or diffrax).

Everything is one while loop; buffers have fixed sizes (``max_spikes``).

Differentiation (closed-form path). The loop is differentiable with respect to
every array the network holds: a spike time carries its implicit-function
derivative (:func:`nirsim.solvers.closed_form.first_crossing`) and the chain rule
carries it through resets, propagators and coupling impulses into every later
event. Which loop runs is the solver's ``adjoint``:

* ``"checkpointed"``: ``equinox.internal.while_loop(kind="checkpointed")`` for the
  event loop and for the cascade at one instant, reverse mode only. The backward
  pass recomputes events from checkpoints (Stumm-Walther online treeverse): its
  memory is ``checkpoints`` copies of the event loop's carry (states, Delay
  queues, spike buffers of ``max_spikes`` times and indices per spiking node,
  sampled states ``len(ts) x`` node sizes), per sample, plus
  ``_CASCADE_CHECKPOINTS`` copies for the cascade; ``checkpoints`` defaults to
  about ``sqrt(2 max_events)``. Its cost is a few forward passes.
* ``"forward"``: ``lax.while_loop``, forward mode only (``jax.jvp``).

Input impulse times and values are constants for differentiation (the input-reading
loop is stop-gradient'ed); ``spike_area`` is differentiable.
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


_WINDOW = 32  # input events read per pass at one instant
_CASCADE_CHECKPOINTS = 4  # backward-pass checkpoints of the cascade at one instant
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


def _schedule(queue, areas_flat, t, delay_flat):
    """Put non-zero impulse areas into a Delay node's queue at ``t + delay``."""
    qt, qi, qa = queue
    mask = areas_flat != 0
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


def _deliver(queue, t, n):
    """Remove the queued impulses due at or before ``t``; their areas per neuron."""
    qt, qi, qa = queue
    due = qt <= t
    areas = jnp.zeros(n).at[jnp.where(due, qi, n)].add(qa, mode="drop")
    qt = jnp.where(due, jnp.inf, qt)
    return (qt, qi, qa), areas, jnp.any(due)


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
    """Simulate one sample; see the module docstring. ``advance(states, drives, t,
    H)`` returns ``(h, new_states, fire_flags)``: the time actually advanced
    (``0 < h <= H``), the states at ``t + h`` and, per spiking neuron node, which
    neurons reached threshold there by drift; optionally a fourth output, the
    number of grazing crossings among them (counted in the result).
    Returns a :class:`~nirsim.solvers.results.Solution`."""
    net = network
    area = options.spike_area
    max_spikes = options.max_spikes
    signals = InputSignals(net, inputs, plan.continuous_delays)

    # Impulse inputs: (times, indices, values) per Input node.
    impulse_inputs = {}
    for name, v in inputs.items():
        if isinstance(v, Current):
            if options.impulse_grid:
                impulse_inputs[name] = grid_as_impulses(v, net.shape(name))
                signals.currents.pop(name)
        else:
            vals = jnp.ones_like(v.times) if v.values is None else v.values
            impulse_inputs[name] = (v.times, v.indices, vals)

    n_save = ts.shape[0]
    spiking_nodes = plan.spiking_neurons + plan.thresholds
    zeros_like_shape = {n: jnp.zeros(net.shape(n)) for n in net.order}

    def input_impulses(ptrs, t):
        """Areas of the input impulses due at ``t``; advanced pointers.

        Inputs are time-sorted, so the impulses due at ``t`` start at the pointer:
        they are read through a window of ``_WINDOW`` events (several windows when
        more arrive at one instant), a one-hot contraction rather than a scatter
        (scatters are slow under vmap); the cost per event does not grow with the
        length of the input.
        """
        areas, new_ptrs = {}, {}
        for name, (times, idx, vals) in impulse_inputs.items():
            n = _flat_size(net, name)
            total = times.shape[0]
            if total == 0:
                areas[name] = jnp.zeros(net.shape(name))
                new_ptrs[name] = ptrs[name]
                continue
            w_len = min(_WINDOW, total)
            padded = (
                jax.lax.stop_gradient(jnp.concatenate([times, jnp.full(w_len, jnp.inf)])),
                jnp.concatenate([idx, jnp.full(w_len, -1, idx.dtype)]),
                jax.lax.stop_gradient(jnp.concatenate([vals, jnp.zeros(w_len)])),
            )

            def window(c, padded=padded, w_len=w_len, n=n):
                ptr, acc = c
                tw, iw, vw = (jax.lax.dynamic_slice(a, (ptr,), (w_len,)) for a in padded)
                due = (tw <= t) & (iw >= 0)
                w = jnp.where(due, vw, 0.0)
                acc = acc + (iw[:, None] == jnp.arange(n)).astype(w.dtype).T @ w
                return ptr + jnp.sum(tw <= t).astype(jnp.int32), acc

            def more(c, padded=padded, total=total):
                return padded[0][jnp.minimum(c[0], total)] <= t

            ptr, acc = window((ptrs[name], jnp.zeros(n)))
            ptr, acc = jax.lax.while_loop(more, window, (ptr, acc))
            # times the area outside the loop: differentiable in spike_area
            areas[name] = (acc * area).reshape(net.shape(name))
            new_ptrs[name] = ptr
        return areas, new_ptrs

    def next_input_spike(ptrs):
        nxt = jnp.asarray(jnp.inf)
        for name, (times, _, _) in impulse_inputs.items():
            k = ptrs[name]
            safe = jnp.clip(k, 0, max(times.shape[0] - 1, 0))
            tk = times[safe] if times.shape[0] else jnp.inf
            nxt = jnp.minimum(nxt, jnp.where(k < times.shape[0], tk, jnp.inf))
        return nxt

    def apply_impulses(states, queues, sources, t):
        """Push impulse areas from ``sources`` into neurons and Delay queues."""
        arriving = net.propagate(sources, bias=False)
        new_states = dict(states)
        overflow = jnp.asarray(False)
        for n in plan.neurons:
            if n in arriving:
                new_states[n] = net.nodes[n].impulse(states[n], arriving[n])
        new_queues = dict(queues)
        for d in plan.delays:
            if d in arriving:
                q, o = _schedule(
                    queues[d], arriving[d].reshape(-1), t, net.nodes[d].delay.reshape(-1)
                )
                new_queues[d] = q
                overflow = overflow | o
        return new_states, new_queues, overflow

    def cascade(c, t, first_sources, flags, thr_fire):
        """Firing rounds at instant ``t``."""

        def body(cc):
            states, queues, bufs, rnd, active, code, srcs, flg, thr, last = cc
            sources = dict(srcs)
            fired_any = jnp.asarray(False)
            new_bufs = dict(bufs)
            new_states = dict(states)
            full = jnp.asarray(False)
            for n in plan.spiking_neurons:
                prim = net.nodes[n]
                fired = (prim.event(states[n]) >= 0) | flg[n]
                new_states[n] = prim.reset(states[n], fired, options.subtract)
                sources[n] = jnp.where(fired, area, 0.0)
                new_bufs[n], f = _record(bufs[n], fired.reshape(-1), t, max_spikes)
                full = full | f
                fired_any = fired_any | jnp.any(fired)
                last = jnp.where(jnp.any(fired), net.spiking.index(n), last)
            for n in plan.thresholds:
                fired = thr[n]
                sources[n] = jnp.where(fired, area, 0.0)
                new_bufs[n], f = _record(bufs[n], fired.reshape(-1), t, max_spikes)
                full = full | f
                fired_any = fired_any | jnp.any(fired)
            new_queues = dict(queues)
            delivered = jnp.asarray(False)
            for d in plan.delays:
                q, a, any_due = _deliver(queues[d], t, _flat_size(net, d))
                new_queues[d] = q
                sources[d] = a.reshape(net.shape(d))
                delivered = delivered | any_due
            new_states, new_queues, overflow = apply_impulses(
                new_states, new_queues, sources, t
            )
            code = jnp.where(full & (code == 0), results.SPIKE_BUFFER_FULL, code)
            code = jnp.where(overflow & (code == 0), results.DELAY_BUFFER_FULL, code)
            no_flags = {n: jnp.zeros(net.shape(n), bool) for n in plan.spiking_neurons}
            no_thr = {n: jnp.zeros(net.shape(n), bool) for n in plan.thresholds}
            active = fired_any | delivered
            return (
                new_states,
                new_queues,
                new_bufs,
                rnd + 1,
                active,
                code,
                {},
                no_flags,
                no_thr,
                last,
            )

        def cond(cc):
            _, _, _, rnd, active, code, *_ = cc
            return active & (rnd <= options.max_cascade) & (code == 0)

        states, queues, bufs, code = c["states"], c["queues"], c["bufs"], c["code"]
        # Round 0 applies the external impulses due at t.
        init = (
            states,
            queues,
            bufs,
            jnp.asarray(0),
            jnp.asarray(True),
            code,
            first_sources,
            flags,
            thr_fire,
            jnp.asarray(-1),
        )
        init = body(init)
        init = init[:4] + (jnp.asarray(True),) + init[5:]  # look again after inputs
        out = _while(
            cond, body, init, adjoint, options.max_cascade + 2, _CASCADE_CHECKPOINTS
        )
        states, queues, bufs, rnd, active, code = out[:6]
        code = jnp.where(active & (code == 0), results.ZENO, code)
        return states, queues, bufs, code, out[-1]

    def save(c, t):
        k = c["save_idx"]
        due = (
            (k < n_save) & (ts[jnp.clip(k, 0, max(n_save - 1, 0))] == t)
            if n_save
            else False
        )
        if not n_save:
            return c
        saved = {}
        for n in plan.neurons:
            fields = {}
            for f, arr in c["saved"][n].items():
                val = getattr(c["states"][n], f)
                fields[f] = jnp.where(due, arr.at[k].set(val, mode="drop"), arr)
            saved[n] = fields
        return dict(c, saved=saved, save_idx=jnp.where(due, k + 1, k))

    def body(c):
        t = c["t"]
        if options.progress:
            jax.debug.callback(progress_tick, t, ordered=False)
        # 1. external impulses due at t
        in_areas, ptrs = input_impulses(c["ptrs"], t)
        # 2. continuous drives on [t, B)
        b = signals.next_break(t)
        mid = jnp.where(jnp.isfinite(b), 0.5 * (t + b), t + 1.0)
        cont = net.propagate(signals.sources(mid), bias=True)
        thr_fire = {}
        last = dict(c["thr_last"])
        for n in plan.thresholds:
            x = cont.get(n, zeros_like_shape[n])
            th = net.nodes[n].threshold
            thr_fire[n] = (last[n] < th) & (x >= th)
            last[n] = x
        # 3. cascade at t
        states, queues, bufs, code, last_node = cascade(
            c, t, in_areas, c["flags"], thr_fire
        )
        newly = (code != 0) & (c["code"] == 0)
        c = dict(
            c,
            fail_t=jnp.where(newly, t, c["fail_t"]),
            fail_node=jnp.where(newly, last_node, c["fail_node"]),
        )
        c = dict(
            c, states=states, queues=queues, bufs=bufs, code=code, ptrs=ptrs, thr_last=last
        )
        # 4. samples at t
        c = save(c, t)
        # 5. advance
        k = c["save_idx"]
        t_save = ts[jnp.clip(k, 0, max(n_save - 1, 0))] if n_save else jnp.inf
        t_save = jnp.where(k < n_save, t_save, jnp.inf)
        t_delay = jnp.asarray(jnp.inf)
        for d in plan.delays:
            t_delay = jnp.minimum(t_delay, jnp.min(c["queues"][d][0]))
        horizon = jnp.minimum(jnp.minimum(b, next_input_spike(ptrs)), t_save)
        horizon = jnp.minimum(jnp.minimum(horizon, t_delay), t_end)
        drives = {n: cont.get(n, zeros_like_shape[n]) for n in plan.neurons}
        h_max = horizon - t
        h, new_states, flags, *graze = advance(c["states"], drives, t, h_max)
        n_grazing = c["n_grazing"] + (graze[0] if graze else 0)
        t_new = jnp.where(h >= h_max, horizon, jnp.minimum(t + h, horizon))
        finite = jnp.asarray(True)
        for n in plan.neurons:
            for leaf in jax.tree_util.tree_leaves(new_states[n]):
                finite = finite & jnp.all(jnp.isfinite(leaf))
        code = jnp.where(~finite & (c["code"] == 0), results.NONFINITE, c["code"])
        c = dict(c, fail_t=jnp.where((code != 0) & (c["code"] == 0), t, c["fail_t"]))
        done = (t >= t_end) | (code != 0)
        return dict(
            c,
            t=jnp.where(done, t, t_new),
            states=jax.tree_util.tree_map(
                lambda a, b_: jnp.where(done, a, b_), c["states"], new_states
            ),
            flags=flags,
            code=code,
            done=done,
            n_events=c["n_events"] + 1,
            n_grazing=jnp.where(done, c["n_grazing"], n_grazing),
        )

    def cond(c):
        return (~c["done"]) & (c["n_events"] < options.max_events)

    states0 = {n: net.nodes[n].init_state() for n in plan.neurons}
    cap = max_spikes
    init = dict(
        t=jnp.asarray(0.0),
        states=states0,
        flags={n: jnp.zeros(net.shape(n), bool) for n in plan.spiking_neurons},
        queues={
            d: (jnp.full(cap, jnp.inf), jnp.full(cap, -1, jnp.int32), jnp.zeros(cap))
            for d in plan.delays
        },
        bufs={
            n: (jnp.full(cap, jnp.inf), jnp.full(cap, -1, jnp.int32), jnp.asarray(0))
            for n in spiking_nodes
        },
        ptrs={n: jnp.asarray(0, jnp.int32) for n in impulse_inputs},
        thr_last={n: jnp.zeros(net.shape(n)) for n in plan.thresholds},
        saved={
            n: {
                f: jnp.full((n_save,) + net.shape(n), jnp.nan)
                for f in type(states0[n]).__dataclass_fields__
            }
            for n in plan.neurons
        },
        save_idx=jnp.asarray(0),
        code=jnp.asarray(0, jnp.int32),
        done=jnp.asarray(False),
        n_events=jnp.asarray(0),
        fail_t=jnp.asarray(jnp.nan),
        fail_node=jnp.asarray(-1),
        n_grazing=jnp.asarray(0, jnp.int32),
    )
    final = _while(cond, body, init, adjoint, options.max_events, checkpoints)
    code = final["code"]
    code = jnp.where((code == 0) & ~final["done"], results.MAX_EVENTS, code).astype(
        jnp.int32
    )
    fail_t = jnp.where(code == results.MAX_EVENTS, final["t"], final["fail_t"])
    spikes = {n: (final["bufs"][n][0], final["bufs"][n][1]) for n in spiking_nodes}
    return results.Solution(
        spikes=spikes,
        states=final["saved"],
        result=results.from_code(code),
        failure_time=fail_t,
        failure_node=final["fail_node"],
        n_grazing=final["n_grazing"],
    )
