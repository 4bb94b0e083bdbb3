"""General event-driven solver on diffrax, for any vector field."""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import optimistix as optx

from ._event_loop import make_plan, run_event_loop, run_event_loop_batch
from .base import AbstractSolver, SimOptions
from .structure import check_delays_and_thresholds, continuous_delays


def diffrax_advance(network, plan, solver, options, controller, max_steps):
    coupled = plan.continuous_neurons

    def drives_at(states, const):
        if not coupled:
            return const
        outs = {n: network.nodes[n].output(states[n]) for n in coupled}
        arriving = network.propagate(outs, bias=False)
        return {n: const[n] + arriving[n] if n in arriving else const[n] for n in const}

    def vector_field(t, y, args):
        drives = drives_at(y, args)
        return {n: network.nodes[n].vector_field(y[n], drives[n]) for n in plan.neurons}

    def cond_fn(t, y, args, **kwargs):
        dist = jnp.asarray(-jnp.inf)
        for n in plan.spiking_neurons:
            dist = jnp.maximum(
                dist, jnp.max(network.nodes[n].event(y[n]), initial=-jnp.inf)
            )
        return dist

    root_finder = optx.Newton(rtol=1e-11, atol=1e-13)
    event = (
        diffrax.Event(cond_fn, root_finder=root_finder) if plan.spiking_neurons else None
    )

    def advance(states, drives, t, h_max):
        t1 = t + h_max
        dt0 = jnp.minimum(h_max, 1e-6 * (1 + t))
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(vector_field),
            solver,
            t0=t,
            t1=t1,
            dt0=dt0,
            y0=states,
            args=drives,
            stepsize_controller=controller,
            event=event,
            max_steps=max_steps,
            throw=False,
            saveat=diffrax.SaveAt(t1=True),
        )
        new_states = jax.tree_util.tree_map(lambda a: a[-1], sol.ys)
        t_hit = sol.ts[-1]
        h = jnp.where(jnp.isfinite(t_hit), t_hit - t, h_max)
        ok = sol.result == diffrax.RESULTS.successful
        if event is not None:
            # The root find can stall (e.g. on the kink of the max over neurons
            # when two cross together); its last iterate is still inside the step.
            stalled = sol.result == diffrax.RESULTS.nonlinear_max_steps_reached
            event_result = (sol.result == diffrax.RESULTS.event_occurred) | stalled
            hit = event_result & jnp.asarray(sol.event_mask) & jnp.isfinite(t_hit)
        else:
            hit = jnp.asarray(False)
        # the neuron(s) whose crossing ended the step: the largest event value
        # among the neurons that rose during it, over all spiking nodes (a neuron
        # resting just below threshold, in this node or another, must not fire)
        events, rose = {}, {}
        emax = jnp.asarray(-jnp.inf)
        for n in plan.spiking_neurons:
            events[n] = network.nodes[n].event(new_states[n])
            rose[n] = events[n] > network.nodes[n].event(states[n])
            emax = jnp.maximum(emax, jnp.max(jnp.where(rose[n], events[n], -jnp.inf)))
        flags = {}
        for n, e in events.items():
            flags[n] = (
                hit
                & rose[n]
                & (e >= emax)
                & (e > -1e-6 * (1 + jnp.abs(network.nodes[n].threshold())))
            )
        # A failed solve (step budget) makes the state NaN, which the loop reports.
        new_states = jax.tree_util.tree_map(
            lambda a: jnp.where(ok | hit, a, jnp.nan), new_states
        )
        return jnp.where(ok | hit, h, h_max), new_states, flags

    return advance


class Diffrax(AbstractSolver):
    """Event-driven solve with diffrax: any diffrax ``solver`` with adaptive step
    control between events, and a diffrax ``Event`` (root found with optimistix
    Newton on the solver's dense output) for threshold crossings. Handles graphs
    where neurons drive each other continuously (an LI feeding an LIF), which the
    closed form cannot. Used as the independent cross-check of :class:`ClosedForm`.

    Args:
        solver: a diffrax solver (default ``diffrax.Tsit5()``).
        max_steps: step budget between two events.
    """

    name = "diffrax"
    solver: diffrax.AbstractSolver = diffrax.Tsit5()
    max_steps: int = eqx.field(static=True, default=100_000)

    def check(self, network) -> None:
        check_delays_and_thresholds(network)

    def solve(self, network, inputs, ts, t_end, options: SimOptions):
        return self._run(run_event_loop, network, inputs, ts, t_end, options)

    def solve_batch(self, network, inputs, ts, t_end, options: SimOptions):
        """:meth:`solve` for inputs with one leading batch axis, without lockstep
        (see :func:`nirsim.solvers._event_loop.run_event_loop_batch`)."""
        return self._run(run_event_loop_batch, network, inputs, ts, t_end, options)

    def _run(self, loop, network, inputs, ts, t_end, options):
        plan = make_plan(network, continuous_delays(network))
        controller = diffrax.PIDController(rtol=options.rtol, atol=options.atol)
        advance = diffrax_advance(
            network, plan, self.solver, options, controller, self.max_steps
        )
        return loop(network, inputs, ts, t_end, options, plan, advance)
