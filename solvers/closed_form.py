"""Closed-form event-driven solver for NIR's linear primitives.

Between events every neuron's drive is constant, so its state follows the exact
exponential propagator of its primitive (``propagate``). A spike time is the first
root of ``v(h) - v_threshold`` on ``(0, H]``: the primitive gives the one stationary
point of ``v(h)`` (none for LIF and IF, at most one for CubaLIF, a sum of two
exponentials), which splits ``(0, H]`` into monotone pieces; the first piece whose end
is at or above threshold brackets the root. The root is the primitive's closed form
where it has one (LIF, IF; CubaLIF with ``tau_mem / tau_syn`` equal to 2 or 1/2, a
quadratic in ``exp(-h / tau)``), checked by the search's own convergence test; else
it is found by Newton steps safeguarded by regula falsi inside the bracket. No
crossing inside a step can be missed.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from nirsim._errors import GraphError

from ._event_loop import (
    any_in_loop,
    check_adjoint,
    make_plan,
    run_event_loop,
    run_event_loop_batch,
)
from .base import AbstractSolver, SimOptions
from .structure import check_delays_and_thresholds, continuous_delays, coupling_report

_EPS = float(jnp.finfo(jnp.float64).eps)


def _no_grad(tree):
    """``tree`` with every array leaf behind ``stop_gradient``."""
    return jax.tree_util.tree_map(
        lambda x: jax.lax.stop_gradient(x) if eqx.is_array(x) else x, tree
    )


NEWTON_STEPS = 10  # unrolled, safeguarded Newton iterations per advance


def _refine(prim, state, drive, h_max, t):
    """The bracketed root search of :func:`first_crossing` (values only: it is
    called on stopped-gradient arguments): the primitive's closed-form root
    (``crossing_root``) where it passes the convergence test below, else a
    safeguarded Newton search unrolled ``NEWTON_STEPS`` times. Returns per neuron
    ``(x, found, converged, lo, hi)``: the root (where ``converged``), whether a
    crossing lies in ``(0, h_max]`` and the bracket ``lo < root <= hi`` left by the
    iterations (where not converged).

    Newton starts at the bracket's lower end, where ``g < 0``: on a rising concave
    piece (every LIF and IF crossing, most CubaLIF ones) its iterates then increase
    monotonically to the root without leaving the bracket. A step that leaves the
    bracket is replaced by a regula-falsi step (Illinois variant), which converges
    superlinearly where Newton does not."""

    def f_and_rate(h):
        s = prim.propagate(state, drive, h)
        return prim.event(s), prim.event_rate(s, drive)

    f = lambda h: prim.event(prim.propagate(state, drive, h))
    H = jnp.broadcast_to(h_max, prim.shape)
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
    f_hi = jnp.where(seg1, f_m, f_H)

    def noise(fx):
        """|g| below this is rounding noise: a root to working precision."""
        return 8 * _EPS * (jnp.abs(prim.threshold()) + jnp.abs(fx) + jnp.abs(f_H))

    def search(lo, hi):
        x = lo
        fx, dfx = f_and_rate(x)
        ftol = noise(fx)
        flo, fhi = fx, f_hi
        side = jnp.zeros(prim.shape, jnp.int32)  # which end moved last (Illinois)
        conv = ~found
        for _ in range(NEWTON_STEPS):
            # materialise each iteration: XLA would otherwise fuse (and recompute) the
            # whole unrolled chain into every consumer
            x, fx, dfx, lo, hi, flo, fhi, side, conv = jax.lax.optimization_barrier(
                (x, fx, dfx, lo, hi, flo, fhi, side, conv)
            )
            xn = x - fx / dfx
            ok = jnp.isfinite(xn) & (xn > lo) & (xn < hi)
            rf = lo - flo * (hi - lo) / (fhi - flo)
            rf_ok = jnp.isfinite(rf) & (rf > lo) & (rf < hi)
            xn = jnp.where(ok, xn, jnp.where(rf_ok, rf, 0.5 * (lo + hi)))
            at_root = jnp.abs(fx) <= ftol  # stay: a fallback step would move off it
            now = (jnp.abs(xn - x) <= tol) | (hi - lo <= tol) | at_root
            x = jnp.where(conv | at_root, x, xn)
            conv = conv | now
            fx, dfx = f_and_rate(x)
            below = fx < 0
            fhi = jnp.where(below & (side < 0), 0.5 * fhi, fhi)
            flo = jnp.where(~below & (side > 0), 0.5 * flo, flo)
            lo = jnp.where(below, jnp.maximum(lo, x), lo)
            flo = jnp.where(below, fx, flo)
            hi = jnp.where(below, hi, jnp.minimum(hi, x))
            fhi = jnp.where(below, fhi, fx)
            side = jnp.where(below, -1, 1)
        x_up = jnp.minimum(x + tol, hi)
        x = jnp.where(
            (fx >= 0) | (jnp.abs(fx) <= ftol), x, jnp.where(f(x_up) >= 0, x_up, hi)
        )
        return x, conv, lo, hi

    # A closed-form root (LIF, IF, CubaLIF with time constants in ratio 2), accepted
    # where it passes the search's own convergence test; the search runs only if
    # some crossing has no accepted closed form. Most advances (bin edges, input
    # spikes) find no crossing at all: then neither runs (one branch).
    def closed_form(lo, hi):
        root = prim.crossing_root(state, drive, lo, hi)
        if root is None:
            return jnp.zeros(prim.shape, bool), hi
        usable = found & jnp.isfinite(root)
        x0 = jnp.clip(jnp.where(usable, root, lo), lo, hi)
        fx, dfx = f_and_rate(x0)
        ftol = noise(fx)
        small = (jnp.abs(fx) <= ftol) | (jnp.abs(fx / dfx) <= tol)
        x_up = jnp.minimum(x0 + tol, hi)
        up = (fx < 0) & (jnp.abs(fx) > ftol)
        closed = usable & small & (~up | (f(x_up) >= 0))
        return closed, jnp.where(up, x_up, x0)

    def nothing(lo, hi):
        return hi, ~found, lo, hi

    def solve(lo, hi):
        closed, x0 = closed_form(lo, hi)
        need = found & ~closed
        x, conv, lo, hi = jax.lax.cond(any_in_loop(need), search, nothing, lo, hi)
        return jnp.where(closed, x0, x), conv | closed, lo, hi

    x, conv, lo, hi = jax.lax.cond(any_in_loop(found), solve, nothing, lo, hi)
    return x, found, conv, lo, hi


def first_crossing(prim, state, drive, h_max, t, min_rate=0.0):
    """Earliest ``h`` in ``(0, h_max]`` with ``prim.event(propagate(state, drive, h))
    >= 0`` per neuron (``inf`` if none), accurate to a few ulps of ``t + h``; per
    neuron, whether that crossing grazes (its rate ``dv/dt`` below ``min_rate``);
    and, where the unrolled search did not converge, a safe lower and upper bound
    ``(lo, hi)`` of the crossing (``lo = inf`` elsewhere).

    Differentiable: the root is searched on stopped-gradient values, then one
    differentiable Newton step ``x - g(x)/g'(x)`` whose value is dropped (``x`` is
    kept bit for bit) carries the implicit-function derivative
    ``dh/dp = -(dg/dp)/(dg/dh)`` at the root, with respect to the state, the drive,
    the primitive's parameters and ``t`` (through ``h_max``). The refinement
    iterations are never differentiated. A grazing crossing (``dg/dh < min_rate``)
    uses ``min_rate`` in the denominator: a finite, clipped derivative."""
    x, found, conv, lo, hi = _refine(
        _no_grad(prim), _no_grad(state), _no_grad(drive), _no_grad(h_max), _no_grad(t)
    )
    done = found & conv
    xs = jnp.where(done, x, 0.0)
    s = prim.propagate(state, drive, xs)
    g = prim.event(s)
    rate = prim.event_rate(s, drive)
    grazing = done & (rate < min_rate)
    rate = jnp.where(done, jnp.maximum(rate, min_rate), 1.0)
    rate = jnp.where(rate > 0, rate, 1.0)  # min_rate 0 and a flat crossing
    step = jnp.where(done, -g / rate, 0.0)
    xs = xs + (step - jax.lax.stop_gradient(step))
    open_ = found & ~conv
    return (
        jnp.where(done, xs, jnp.inf),
        grazing,
        jnp.where(open_, lo, jnp.inf),
        jnp.where(open_, hi, jnp.inf),
    )


GRAZING = 1e-6  # a crossing slower than |v_threshold - v_reset| per 1e6 t_end grazes


def closed_form_advance(network, plan, t_end):
    """The event loop's ``advance`` with closed-form propagators; it also counts
    grazing crossings (see :func:`first_crossing`)."""

    def min_rate(prim):
        gap = jnp.abs(prim.threshold() - prim.reset_value())
        gap = jnp.where(gap > 0, gap, jnp.maximum(jnp.abs(prim.threshold()), 1.0))
        return jax.lax.stop_gradient(GRAZING * gap / t_end)

    def advance(states, drives, t, h_max):
        crossings, grazing = {}, {}
        h = h_max
        lo = hi = jnp.asarray(jnp.inf)
        for n in plan.spiking_neurons:
            prim = network.nodes[n]
            crossings[n], grazing[n], lo_n, hi_n = first_crossing(
                prim, states[n], drives[n], h_max, t, min_rate(prim)
            )
            h = jnp.minimum(h, jnp.min(crossings[n], initial=jnp.inf))
            lo = jnp.minimum(lo, jnp.min(lo_n, initial=jnp.inf))
            hi = jnp.minimum(hi, jnp.min(hi_n, initial=jnp.inf))
        # A search cut short: advance no further than its bracket's lower end (no
        # crossing can lie before it); with nothing gained, retry on (0, hi].
        # (no further than a step that moves t, else retry at once)
        lo = jax.lax.stop_gradient(jnp.where(t + lo > t, lo, 0.0))
        h = jnp.minimum(h, lo)
        new_states = {
            n: network.nodes[n].propagate(states[n], drives[n], h) for n in plan.neurons
        }
        flags = {n: hc <= h for n, hc in crossings.items()}
        n_grazing = jnp.asarray(0, jnp.int32)
        for n in crossings:
            n_grazing = n_grazing + jnp.sum(grazing[n] & flags[n]).astype(jnp.int32)
        return h, new_states, flags, n_grazing, jnp.where(h > 0, jnp.inf, hi)

    return advance


class ClosedForm(AbstractSolver):
    """Exact event-driven solve with the primitives' closed-form propagators.

    Applies when every neuron's drive is piecewise constant between events: the
    graph's continuous signals come from its inputs and biases only (spikes couple
    neurons; the continuous output of an LI, I or CubaLI reaches only Output nodes).
    Otherwise use :class:`nirsim.solvers.Diffrax`. ``nirsim.simulate`` picks this
    solver by default where it applies.

    Differentiable (exact gradients through spike times, see
    :func:`first_crossing`). ``adjoint`` picks the event loop:

    * ``"checkpointed"`` (default): reverse mode (``jax.grad``); the loop is
      ``equinox.internal.while_loop(kind="checkpointed")``, whose backward pass keeps
      ``checkpoints`` copies of the loop's carry (default about
      ``sqrt(2 max_events)``, see :mod:`nirsim.solvers._event_loop`); it does not support
      forward mode;
    * ``"forward"``: plain ``lax.while_loop``, forward mode only (``jax.jvp``,
      ``jax.jacfwd``).

    Without differentiation both run the same forward computation.
    """

    name = "closed_form"
    adjoint: str = eqx.field(static=True, default="checkpointed")
    checkpoints: int | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        check_adjoint(self.adjoint, self.checkpoints)

    def check(self, network) -> None:
        check_delays_and_thresholds(network)  # the structural check of every ideal path
        problems = coupling_report(network)
        if problems:
            raise GraphError(
                problems[0] + "; the closed-form solver needs piecewise-constant drives "
                "(use solver='diffrax')"
            )

    def solve(self, network, inputs, ts, t_end, options: SimOptions):
        return self._run(run_event_loop, network, inputs, ts, t_end, options)

    def solve_batch(self, network, inputs, ts, t_end, options: SimOptions):
        """:meth:`solve` for inputs with one leading batch axis, without lockstep
        (see :func:`nirsim.solvers._event_loop.run_event_loop_batch`)."""
        return self._run(run_event_loop_batch, network, inputs, ts, t_end, options)

    def _run(self, loop, network, inputs, ts, t_end, options):
        plan = make_plan(network, continuous_delays(network))
        return loop(
            network,
            inputs,
            ts,
            t_end,
            options,
            plan,
            closed_form_advance(network, plan, t_end),
            adjoint=self.adjoint,
            checkpoints=self.checkpoints,
        )
