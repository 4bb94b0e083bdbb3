r"""Readouts and losses on a :class:`~nirsim.Trace`, whatever back-end produced it.

Readouts turn a trace into one number per output neuron (leading batch axes kept);
losses compare them with integer labels. A readout is differentiable where the
trace is:

* discrete back-ends (``"euler"``, ``"exponential"``, presets): spike counts come from
  ``trace.states[node]["spike_count"]``, which carries the surrogate gradient of the
  spike decision (``nirsim.solvers.surrogate``); sampled states (``"v"``) are
  differentiable as they are;
* exact back-ends: spike times come from ``trace.spikes[node]`` (event lists), so the
  first-spike readout is a ``min`` over a neuron's events, differentiable wherever the
  solver differentiates its spike times (exact spike-time gradients: issue 9); their
  spike counts are integers with no gradient.

**Smooth first-spike readout of a discrete trace.** With ``c_k`` the (surrogate)
spike count of sample interval ``(ts[k-1], ts[k]]`` and ``p_k = min(c_k, 1)`` (the
clip is straight-through), :func:`first_spike_times` returns

.. math::  t_{first} = \sum_k ts_k\, p_k \prod_{j<k} (1 - p_j) + t_{max} \prod_k (1 - p_k),

the expected first-spike time if ``p_k`` were the probability of firing in interval
``k``. For the realised spikes (every ``p_k`` 0 or 1) it is exactly the end of the
first interval with a spike, or ``t_max`` for a silent neuron; its gradient moves the
time earlier when an earlier interval's surrogate count rises, and later when the
first spike's count falls. On an exact trace the same function returns the exact
first spike time, so a loss written with it runs unchanged on both kinds.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import optax

from .._data import SpikeRaster
from .._errors import InputError
from .._trace import Trace


def _node_axis_start(trace: Trace) -> int:
    return len(trace.batch_shape)


def _flat_neurons(x, trace: Trace, time_axis: bool):
    """Reshape ``(*batch, [time,] *shape)`` to ``(*batch, [time,] neurons)``."""
    b = len(trace.batch_shape) + (1 if time_axis else 0)
    return x.reshape(x.shape[:b] + (-1,))


def spike_counts(trace: Trace, node: str) -> jax.Array:
    """Spikes per neuron of ``node`` over the whole run, ``(*batch, neurons)``
    (flat C-order). Discrete traces: the sum of ``states[node]["spike_count"]``
    (surrogate gradient; counts the spikes up to the last sample time, so sample up
    to ``t_end``); exact traces: event counts (no gradient)."""
    states = trace.states.get(node, {})
    if "spike_count" in states:
        c = _flat_neurons(states["spike_count"], trace, True)
        return jnp.sum(c, axis=_node_axis_start(trace))
    if node not in trace.spikes:
        raise InputError(f"node '{node}' has no spikes in this trace")
    idx = trace.spikes[node].indices  # traceable (inside a jitted training step)
    n = math.prod(trace.shape(node))
    return jnp.sum(idx[..., :, None] == jnp.arange(n), axis=-2).astype(float)


def first_spike_times(trace: Trace, node: str, *, t_max: float | None = None) -> jax.Array:
    """First spike time of each neuron of ``node``, ``(*batch, neurons)``; ``t_max``
    (default ``trace.t_end``) for a neuron that never fires. Discrete traces use the
    smooth readout of the module docstring (sample with ``save_dt = dt`` for the
    step's resolution); exact traces the exact times."""
    t_max = trace.t_end if t_max is None else float(t_max)
    spikes = trace.spikes.get(node)
    if spikes is None:
        raise InputError(f"node '{node}' has no spikes in this trace")
    if isinstance(spikes, SpikeRaster):
        c = _flat_neurons(trace.states[node]["spike_count"], trace, True)
        p = c - jax.lax.stop_gradient(c - jnp.minimum(c, 1.0))  # straight-through clip
        ax = _node_axis_start(trace)
        p = jnp.moveaxis(p, ax, -1)  # (*batch, neurons, time)
        survive = jnp.cumprod(1.0 - p, axis=-1)
        before = jnp.concatenate([jnp.ones_like(survive[..., :1]), survive[..., :-1]], -1)
        ts = jnp.asarray(trace.ts, dtype=p.dtype)
        return jnp.sum(ts * p * before, axis=-1) + t_max * survive[..., -1]
    # exact times (and their implicit-function derivatives): nirsim.readout's reading
    from ..readout import first_spike_times as exact_first

    out = exact_first(trace, node, default=t_max)
    return out.reshape(out.shape[: out.ndim - len(trace.shape(node))] + (-1,))


def max_membrane(trace: Trace, node: str, field: str = "v") -> jax.Array:
    """Largest sampled ``field`` (membrane ``v`` by default) of each neuron of
    ``node`` over the sample times, ``(*batch, neurons)``: the readout of a
    non-spiking (LI, CubaLI) output layer. Sample densely enough (``save_dt = dt``
    on a discrete back-end) to see the peak."""
    v = trace.states.get(node, {}).get(field)
    if v is None:
        raise InputError(
            f"node '{node}' has no sampled '{field}' in this trace (give save_dt)"
        )
    v = _flat_neurons(v, trace, True)
    return jnp.max(v, axis=_node_axis_start(trace))


def mean_membrane(trace: Trace, node: str, field: str = "v") -> jax.Array:
    """Time average of the sampled ``field`` (membrane ``v`` by default) of each
    neuron of ``node``, ``(*batch, neurons)``. Unlike :func:`max_membrane`, whose
    maximum includes the resting value (a neuron driven only downwards reads as its
    rest value with zero gradient), every sample contributes a gradient."""
    v = trace.states.get(node, {}).get(field)
    if v is None:
        raise InputError(
            f"node '{node}' has no sampled '{field}' in this trace (give save_dt)"
        )
    v = _flat_neurons(v, trace, True)
    return jnp.mean(v, axis=_node_axis_start(trace))


def silence_penalty(
    trace: Trace,
    node: str,
    threshold,
    *,
    min_fraction: float = 0.2,
    field: str = "v",
) -> jax.Array:
    """A regulariser that keeps the neurons of spiking ``node`` from falling silent
    under exact spike-time gradients, which cannot revive them: a neuron that fires
    on no sample has no spike time, hence no gradient from a loss on spikes.

    For each neuron that fires on fewer than ``min_fraction`` of the batch's samples,
    the mean over its silent samples of ``relu(threshold - max_t field)`` (the gap
    between its highest sampled membrane and its ``threshold``, in voltage); the
    result is the mean over the node's neurons, a scalar. Its gradient flows through
    the sampled membrane (sample densely: ``save_dt`` well below the time
    constants), and it is 0 for a neuron that fires often enough, so it leaves
    the selectivity of live neurons alone. Batch axes: the leading axes of the
    trace (at least one)."""
    if not trace.batch_shape:
        raise InputError("silence_penalty needs a batched trace (a batch of samples)")
    peak = max_membrane(trace, node, field)  # (*batch, neurons)
    peak = peak.reshape(-1, peak.shape[-1])
    counts = spike_counts(trace, node).reshape(peak.shape)
    silent = jax.lax.stop_gradient((counts == 0).astype(peak.dtype))
    rare = jax.lax.stop_gradient(jnp.mean(1.0 - silent, axis=0) < min_fraction)
    gap = jax.nn.relu(jnp.asarray(threshold, peak.dtype).reshape(-1) - peak)
    per_neuron = jnp.sum(silent * gap, axis=0) / jnp.maximum(jnp.sum(silent, axis=0), 1)
    return jnp.mean(jnp.where(rare, per_neuron, 0.0))


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy of ``logits (*batch, classes)`` against integer
    ``labels (*batch,)``."""
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))


def spike_count_loss(trace: Trace, node: str, labels, *, scale: float = 1.0) -> jax.Array:
    """Cross-entropy of ``scale * spike_counts(trace, node)`` as logits: the label's
    neuron should fire most."""
    return cross_entropy(scale * spike_counts(trace, node), labels)


def max_membrane_loss(
    trace: Trace, node: str, labels, *, scale: float = 1.0, field: str = "v"
) -> jax.Array:
    """Cross-entropy of ``scale * max_membrane(trace, node)`` as logits (``scale``
    in 1/voltage): the label's neuron should reach the highest membrane value."""
    return cross_entropy(scale * max_membrane(trace, node, field), labels)


def mean_membrane_loss(
    trace: Trace, node: str, labels, *, scale: float = 1.0, field: str = "v"
) -> jax.Array:
    """Cross-entropy of ``scale * mean_membrane(trace, node)`` as logits."""
    return cross_entropy(scale * mean_membrane(trace, node, field), labels)


def first_spike_loss(
    times: jax.Array,
    labels,
    *,
    tau: float,
    alpha: float = 0.0,
    tau_reg: float | None = None,
) -> jax.Array:
    """The time-to-first-spike loss of Göltz et al. 2021 (Fast & Deep) on first-spike
    times ``(*batch, classes)`` (from :func:`first_spike_times`):

    ``-log softmax(-t / tau)[label] + alpha * (exp(t_label / tau_reg) - 1)``,

    a cross-entropy that makes the label's neuron fire first (``tau`` sets how much
    earlier, in the time unit), plus an optional push towards early label spikes
    (``alpha``, ``tau_reg``; default ``tau_reg = tau``)."""
    labels = jnp.asarray(labels)
    ce = cross_entropy(-times / tau, labels)
    if alpha == 0.0:
        return ce
    tau_reg = tau if tau_reg is None else tau_reg
    t_label = jnp.take_along_axis(times, labels[..., None], axis=-1)[..., 0]
    return ce + alpha * jnp.mean(jnp.expm1(t_label / tau_reg))


def accuracy(scores: jax.Array, labels, *, lower_is_better: bool = False) -> jax.Array:
    """Fraction of samples whose best-scoring neuron is the label (``argmax``, or
    ``argmin`` with ``lower_is_better``, e.g. for first-spike times)."""
    pick = jnp.argmin if lower_is_better else jnp.argmax
    return jnp.mean(pick(scores, axis=-1) == jnp.asarray(labels))
