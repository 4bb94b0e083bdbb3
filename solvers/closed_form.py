"""Closed-form event-driven solver for NIR's linear primitives.

Between events every neuron's drive is constant, so its state follows the exact
exponential propagator of its primitive (``propagate``). A spike time is the first
root of ``v(h) - v_threshold`` on ``(0, H]``: the primitive gives the one stationary
point of ``v(h)`` (none for LIF and IF, at most one for CubaLIF, a sum of two
exponentials), which splits ``(0, H]`` into monotone pieces; the first piece whose end
is at or above threshold brackets the root, found by Newton steps safeguarded by
bisection inside the bracket. No crossing inside a step can be missed.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from nirsim._errors import GraphError

from ._event_loop import make_plan, run_event_loop
from .base import AbstractSolver, SimOptions
from .structure import continuous_delays, coupling_report

_EPS = float(jnp.finfo(jnp.float64).eps)


def first_crossing(prim, state, drive, h_max, t):
    """Earliest ``h`` in ``(0, h_max]`` with ``prim.event(propagate(state, drive, h))
    >= 0`` per neuron (``inf`` if none), accurate to a few ulps of ``t + h``."""
    f = lambda h: prim.event(prim.propagate(state, drive, h))

    def f_and_rate(h):
        s = prim.propagate(state, drive, h)
        return prim.event(s), prim.event_rate(s, drive)

    shape = prim.shape
    H = jnp.broadcast_to(h_max, shape)
    hm = jnp.minimum(prim.extremum_time(state, drive), H)
    hm = jnp.where(hm > 0, hm, H)
    f_m = f(hm)
    f_H = f(H)
    seg1 = f_m >= 0
    seg2 = (~seg1) & (f_H >= 0)
    found = seg1 | seg2
    lo = jnp.where(seg2, hm, 0.0)
    hi = jnp.where(seg1, hm, H)
    tol = 4 * _EPS * (t + h_max)

    def body(c):
        lo, hi, x, it, conv = c
        fx, dfx = f_and_rate(x)
        lo = jnp.where(fx < 0, jnp.maximum(lo, x), lo)
        hi = jnp.where(fx >= 0, jnp.minimum(hi, x), hi)
        xn = x - fx / dfx
        ok = jnp.isfinite(xn) & (xn > lo) & (xn < hi)
        xn = jnp.where(ok, xn, 0.5 * (lo + hi))
        conv = (jnp.abs(xn - x) <= tol) | (hi - lo <= tol) | ~found
        return lo, hi, xn, it + 1, conv

    def cond(c):
        return jnp.any(~c[4]) & (c[3] < 200)

    def refine(lo, hi):
        lo, hi, x, _, _ = jax.lax.while_loop(
            cond, body, (lo, hi, hi, jnp.asarray(0), ~found)
        )
        x_up = jnp.minimum(x + tol, hi)
        return jnp.where(f(x) >= 0, x, jnp.where(f(x_up) >= 0, x_up, hi))

    # Most events (bin edges, input spikes) have no crossing before the horizon.
    res = jax.lax.cond(jnp.any(found), refine, lambda lo, hi: hi, lo, hi)
    return jnp.where(found, res, jnp.inf)


def closed_form_advance(network, plan):
    def advance(states, drives, t, h_max):
        crossings = {
            n: first_crossing(network.nodes[n], states[n], drives[n], h_max, t)
            for n in plan.spiking_neurons
        }
        h = h_max
        for hc in crossings.values():
            h = jnp.minimum(h, jnp.min(hc, initial=jnp.inf))
        new_states = {
            n: network.nodes[n].propagate(states[n], drives[n], h) for n in plan.neurons
        }
        flags = {n: hc <= h for n, hc in crossings.items()}
        return h, new_states, flags

    return advance


class ClosedForm(AbstractSolver):
    """Exact event-driven solve with the primitives' closed-form propagators.

    Applies when every neuron's drive is piecewise constant between events: the
    graph's continuous signals come from its inputs and biases only (spikes couple
    neurons; the continuous output of an LI, I or CubaLI reaches only Output nodes).
    Otherwise use :class:`nirsim.solvers.Diffrax`. ``nirsim.simulate`` picks this
    solver by default where it applies.
    """

    name = "closed_form"

    def check(self, network) -> None:
        problems = coupling_report(network)
        if problems:
            raise GraphError(
                problems[0] + "; the closed-form solver needs piecewise-constant drives "
                "(use solver='diffrax')"
            )

    def solve(self, network, inputs, ts, t_end, options: SimOptions):
        plan = make_plan(network, continuous_delays(network))
        return run_event_loop(
            network, inputs, ts, t_end, options, plan, closed_form_advance(network, plan)
        )
