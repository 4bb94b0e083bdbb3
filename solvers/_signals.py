"""Continuous and impulse signals of a graph's inputs, for the event-driven solvers.

Graph inputs are piecewise-constant currents (value ``x[n]`` on ``[n dt, (n+1) dt)``,
0 after the last bin) or impulse lists. Continuous Delay nodes shift what reaches
them from the graph inputs. Every function here works on one unbatched sample.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from nirsim._data import Current
from nirsim.primitives import Delay

from .structure import continuous_sources_of


def bin_index(t, dt):
    """``n`` with ``n dt <= t < (n+1) dt``, robust to the rounding of ``t / dt``."""
    n = jnp.floor(t / dt)
    n = jnp.where((n + 1) * dt <= t, n + 1, n)
    n = jnp.where(n * dt > t, n - 1, n)
    return n


def current_value(c: Current, shape, t):
    """Value of a piecewise-constant current at time ``t`` (0 outside the data)."""
    steps = c.values.shape[0]
    n = bin_index(t, c.dt)
    inside = (n >= 0) & (n < steps)
    k = jnp.clip(n, 0, steps - 1).astype(jnp.int32)
    return jnp.where(inside, c.values[k], jnp.zeros(shape))


def current_next_break(c: Current, t):
    """First bin edge strictly after ``t`` (inf once the data has ended)."""
    steps = c.values.shape[0]
    n = bin_index(t, c.dt)
    nxt = (n + 1) * c.dt
    nxt = jnp.where(n < 0, 0.0, nxt)
    return jnp.where(n + 1 > steps, jnp.inf, nxt)


class InputSignals:
    """Evaluates the continuous sources of a graph (Inputs with a Current, and Delay
    nodes whose continuous input comes from them) at any time; built while tracing.
    """

    def __init__(self, network, inputs: dict, continuous_delays: tuple[str, ...]):
        self.network = network
        self.currents = {n: v for n, v in inputs.items() if isinstance(v, Current)}
        self.delays = continuous_delays
        # the continuous Delays feeding each one: only these are evaluated (in the
        # past) to read a Delay's input, so tracing stays linear in the nesting
        self.upstream = {
            d: tuple(e for e in continuous_delays if e in continuous_sources_of(network, d))
            for d in continuous_delays
        }

    def sources(self, t, depth: int = 0, delays: tuple[str, ...] | None = None) -> dict:
        """Outgoing continuous signal of every Current input and of the continuous
        Delays ``delays`` (default: all)."""
        net = self.network
        out = {n: current_value(c, net.shape(n), t) for n, c in self.currents.items()}
        if depth > 8:  # nested continuous delays deeper than this are not supported
            return out
        for d in self.delays if delays is None else delays:
            prim: Delay = net.nodes[d]
            flat_delay = prim.delay.reshape(-1)

            def at(tau, i, d=d, prim=prim):
                arr = net.propagate(
                    self.sources(tau, depth + 1, self.upstream[d]), bias=True
                )
                return arr.get(d, jnp.zeros(prim.shape)).reshape(-1)[i]

            idx = jnp.arange(flat_delay.shape[0])
            taus = t - flat_delay
            vals = jax.vmap(at)(taus, idx)
            # Before t = 0 (tau < 0) the delayed signal is 0.
            out[d] = jnp.where(taus >= 0, vals, 0.0).reshape(prim.shape)
        return out

    def next_break(self, t, depth: int = 0, delays: tuple[str, ...] | None = None):
        """First time strictly after ``t`` at which a continuous source (a Current
        input, or one of the continuous Delays ``delays``, default all) changes."""
        nb = jnp.asarray(jnp.inf)
        for c in self.currents.values():
            nb = jnp.minimum(nb, current_next_break(c, t))
        if depth > 8:
            return nb
        for d in self.delays if delays is None else delays:
            delay = self.network.nodes[d].delay.reshape(-1)
            up = self.upstream[d]
            cand = jax.vmap(lambda tau, up=up: self.next_break(tau, depth + 1, up))(
                t - delay
            )
            cand = cand + delay
            cand = jnp.where(t - delay < 0, delay, cand)  # the signal starts at t = d
            cand = jnp.where(cand <= t, jnp.inf, cand)
            nb = jnp.minimum(nb, jnp.min(cand, initial=jnp.inf))
        return nb


def grid_as_impulses(c: Current, shape):
    """``(times, indices, values)``: one impulse of area ``x[n]`` at ``n dt`` per bin
    and neuron, time-sorted."""
    steps = c.values.shape[0]
    n = math.prod(shape)
    times = jnp.repeat(jnp.arange(steps) * c.dt, n)
    idx = jnp.tile(jnp.arange(n, dtype=jnp.int32), steps)
    return times, idx, c.values.reshape(-1)
