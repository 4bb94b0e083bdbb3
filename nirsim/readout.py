"""Differentiable readouts of an ideal :class:`~nirsim.Trace`.

The ideal (closed-form) solve is differentiable: ``jax.grad`` or
``equinox.filter_grad`` of a loss on a trace's spike times or sampled states gives
exact derivatives with respect to every array of the :class:`~nirsim.Network`
(weights, biases, time constants, thresholds, resets, delays)::

    import equinox as eqx, jax.numpy as jnp, nirsim
    from nirsim import readout

    def loss(net):
        trace = nirsim.simulate(net, x, t_end=0.05, save_dt=1e-3)
        first = readout.first_spike_times(trace, "out")        # (*batch, 3)
        v = trace.states["out"]["v"]                            # sampled states
        n = readout.soft_spike_counts(trace, "out", tau=1e-3)  # smooth counts
        return jnp.mean((first - target) ** 2) + ...

    value, grads = eqx.filter_value_and_grad(loss)(net)

Each spike time's derivative follows from the implicit function theorem at its
threshold crossing, ``dt*/dp = -(dv/dp)/(dv/dt)``, and the chain rule carries it
through resets, propagators and coupling impulses into every later event; the
root search itself is never differentiated. A crossing with ``dv/dt`` near 0
(grazing) gets a clipped, finite derivative and is counted in
``trace.n_grazing``. Whether a spike exists is not differentiable: spike counts
have derivative zero almost everywhere, hence :func:`soft_spike_counts`.

Reverse mode (``jax.grad``) needs the default solver (``adjoint="checkpointed"``);
forward mode (``jax.jvp``, ``jax.jacfwd``) needs
``solver=nirsim.solvers.Ideal(adjoint="forward")``. Under differentiation
``simulate`` cannot raise on a failed run: check ``trace.result`` (return it as
an auxiliary output) and give ``max_spikes`` room.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ._trace import Trace

__all__ = ["first_spike_times", "soft_spike_counts", "spike_times"]


def _n(trace: Trace, node: str) -> int:
    return math.prod(trace.shape(node))


def spike_times(trace: Trace, node: str, fill: float | None = None):
    """``(times, indices, valid)`` of ``node``'s spikes, shape ``(*batch, K)``: the
    padding (``inf``/``-1``) replaced by ``fill`` (default ``t_end``) so that any
    loss on them is finite; ``valid`` marks the real spikes."""
    s = trace.spikes[node]
    valid = s.indices >= 0
    fill = trace.t_end if fill is None else fill
    return jnp.where(valid, s.times, fill), s.indices, valid


def first_spike_times(trace: Trace, node: str, default: float | None = None):
    """Earliest spike time of each neuron of ``node``, shape ``(*batch, *shape)``;
    ``default`` (``t_end`` unless given) where a neuron does not fire. Its
    derivative is the first spike's exact derivative (zero where ``default``)."""
    times, idx, valid = spike_times(trace, node, fill=jnp.inf)
    n = _n(trace, node)
    hit = (idx[..., :, None] == jnp.arange(n)) & valid[..., :, None]
    per = jnp.min(jnp.where(hit, times[..., :, None], jnp.inf), axis=-2)
    default = trace.t_end if default is None else default
    out = jnp.where(jnp.isfinite(per), per, default)
    return out.reshape(times.shape[:-1] + trace.shape(node))


def soft_spike_counts(
    trace: Trace,
    node: str,
    tau: float,
    t_start: float = 0.0,
    t_stop: float | None = None,
):
    """Smooth spike count of each neuron of ``node`` in ``[t_start, t_stop]``
    (default the whole run), shape ``(*batch, *shape)``:

    ``sum_k sigmoid((t_k - t_start)/tau) * sigmoid((t_stop - t_k)/tau)``

    over the neuron's spikes ``t_k``. Each spike counts ~1 inside the window and
    fades out over ``tau`` at its edges, so the count's derivative is that of the
    spikes near the edges moving in or out (``tau -> 0`` gives the true count,
    whose derivative is zero almost everywhere). With ``t_start = 0`` and ``t_stop =
    t_end`` a spike at the very start or end counts 1/2."""
    times, idx, valid = spike_times(trace, node)
    t_stop = trace.t_end if t_stop is None else t_stop
    w = jax.nn.sigmoid((times - t_start) / tau) * jax.nn.sigmoid((t_stop - times) / tau)
    w = jnp.where(valid, w, 0.0)
    n = _n(trace, node)
    onehot = (idx[..., :, None] == jnp.arange(n)).astype(w.dtype)
    counts = jnp.sum(w[..., :, None] * onehot, axis=-2)
    return counts.reshape(times.shape[:-1] + trace.shape(node))
