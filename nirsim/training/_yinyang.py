"""The Yin-Yang data set (Kriener, Göltz and Petrovici 2021), generated here.

Kriener et al.'s published algorithm, reproduced draw for draw so that the canonical
splits come out identical: with ``r_big = 0.5``, ``r_small = 0.1`` and
``numpy.random.RandomState(seed)``, each sample first draws its goal class
``randint(3)``, then draws ``x, y = rand(2) * 2 r_big`` until the point lies in the big
circle (distance to ``(r_big, r_big)`` at most ``r_big``) and its class is the goal.
With ``d_r`` the distance to ``(1.5 r_big, r_big)`` and ``d_l`` the distance to
``(0.5 r_big, r_big)``, the class is 2 (dot) if ``d_r < r_small`` or
``d_l < r_small``; otherwise 1 if ``d_r <= r_small`` or
``r_small < d_l <= 0.5 r_big`` or (``y > r_big`` and ``d_r > 0.5 r_big``) (the
published code's ``is_yin``, returned as ``int(is_yin)``), else 0. Features
``[x, y, 1 - x, 1 - y]``.

Issue 11 states the last rule the other way round (0 when the criteria hold). The
class decides how many points the rejection loop draws, hence the rest of the random
stream: only the published order reproduces the published class counts (the other
gives train ``[1657, 1688, 1655]``), so nirsim follows the published code, and
``tests/test_training.py`` checks the counts.

Canonical splits: train 5000 samples (seed 42), validation 1000 (seed 41), test 1000
(seed 40); class counts train ``[1681, 1702, 1617]``, test ``[350, 316, 334]``.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import nir
import numpy as np

from .._data import Spikes
from .._errors import InputError
from .._network import Network, load
from .._simulate import simulate
from ..solvers.discrete.exponential import exponential
from ..solvers.surrogate import FastSigmoid
from ._losses import (
    accuracy,
    cross_entropy,
    mean_membrane,
    silence_penalty,
    spike_counts,
)

R_BIG = 0.5
R_SMALL = 0.1
SPLITS = {"train": (5000, 42), "validation": (1000, 41), "test": (1000, 40)}


def _which_class(x: float, y: float) -> int:
    d_right = math.hypot(x - 1.5 * R_BIG, y - R_BIG)
    d_left = math.hypot(x - 0.5 * R_BIG, y - R_BIG)
    if d_right < R_SMALL or d_left < R_SMALL:
        return 2
    is_yin = (
        d_right <= R_SMALL
        or R_SMALL < d_left <= 0.5 * R_BIG
        or (y > R_BIG and d_right > 0.5 * R_BIG)
    )
    return int(is_yin)


def yin_yang(
    split: str = "train", *, size: int | None = None, seed: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Yin-Yang samples.

    Args:
        split: ``"train"`` (5000, seed 42), ``"validation"`` (1000, seed 41) or
            ``"test"`` (1000, seed 40), the published splits.
        size, seed: override the split's size or seed.

    Returns:
        ``(features, labels)``: float64 ``(size, 4)`` rows ``[x, y, 1-x, 1-y]`` with
        ``x, y`` in ``[0, 1]``, and int ``(size,)`` classes 0, 1 (the two halves; 1 is the
        published code's ``is_yin``) and 2 (the dots).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    n, s = SPLITS[split]
    n = n if size is None else int(size)
    s = s if seed is None else int(seed)
    rng = np.random.RandomState(s)
    features = np.empty((n, 4))
    labels = np.empty(n, dtype=np.int64)
    for k in range(n):
        goal = rng.randint(3)
        while True:
            x, y = rng.rand(2) * 2.0 * R_BIG
            if math.hypot(x - R_BIG, y - R_BIG) > R_BIG:
                continue
            c = _which_class(x, y)
            if c == goal:
                break
        features[k] = (x, y, 1.0 - x, 1.0 - y)
        labels[k] = c
    return features, labels


# ------------------------------------------------------------------ the network
T_EARLY = 2e-3
T_LATE = 20e-3
T_BIAS = 10e-3
T_END = 40e-3
DT = 1e-3
TAU = 10e-3


def yin_yang_spikes(features) -> Spikes:
    """Latency code of Yin-Yang features ``(*batch, 4)``: input neuron ``i < 4`` fires
    once at ``T_EARLY + features[i] (T_LATE - T_EARLY)`` (2 to 20 ms, earlier for
    smaller values), neuron 4 (the bias) once at ``T_BIAS`` = 10 ms. ``features``
    may be a traced array (encode inside a jitted step); the neuron indices are
    constants."""
    f = jnp.asarray(features)
    times = jnp.concatenate(
        [T_EARLY + f * (T_LATE - T_EARLY), jnp.full(f.shape[:-1] + (1,), T_BIAS, f.dtype)],
        axis=-1,
    )
    indices = np.broadcast_to(np.arange(5), times.shape)
    return Spikes(times, indices, n_neurons=5)


def yin_yang_network(
    hidden: int = 120, *, seed: int = 0, tau: float = TAU, synapses: bool = False
) -> Network:
    """The 4(+bias)-``hidden``-3 network: ``input (5) -> Linear -> LIF (hidden) ->
    Linear -> LI (3) -> output``.

    Both neuron layers have ``tau`` (10 ms), ``r = tau`` (so a spike of area 1
    through a weight ``w`` moves the membrane by exactly ``w``), ``v_leak = 0``; the
    LIF layer has ``v_threshold = 1``, ``v_reset = 0``. The LI layer does not spike:
    its largest membrane value per neuron is the class score
    (:func:`yin_yang_loss`). Weights are drawn with
    ``numpy.random.default_rng(seed)``: input weights ``N(0.5, 0.5^2)`` (so most
    hidden neurons can reach threshold from the five input spikes), output weights
    ``N(0, 1/hidden)``.

    ``synapses=True`` makes the hidden layer CubaLIF instead (``tau_syn = tau/2``,
    ``tau_mem = tau``, ``w_in = tau_syn`` so a spike through ``w`` moves the
    synaptic current by ``w``, ``r = 4``): for exact spike-time gradients. A LIF
    driven by impulses alone can only cross its threshold by a jump, at an input
    spike's time, so its spike times (and the loss) do not move with its input
    weights; behind a synaptic current the membrane rises continuously and its
    crossing times do. Its input weights are drawn from ``N(0.25, 0.25^2)``: about one
    spike per hidden neuron and sample (``N(0.5, 0.5^2)`` gives three, and three times
    the events: the exact solver's cost grows with them). The readout is then a
    CubaLI with the hidden layer's time constants, ``r`` and ``w_in`` (a spike
    through ``w`` raises its membrane to a peak of ``w`` after ``tau ln 2``): its
    membrane is continuous in every hidden spike time, so a loss on its samples is
    smooth in the hidden weights between spike-count changes. An LI's membrane
    jumps by ``w`` at each spike, so its sampled value jumps whenever a spike time
    crosses a sample time, jumps that an exact gradient does not see: the gradient
    of such a loss in the hidden weights describes it only over steps far below an
    optimiser's (``tests/test_training.py`` checks the CubaLI readout).
    """
    rng = np.random.default_rng(seed)
    w_in = rng.normal(0.5, 0.5, size=(hidden, 5))
    if synapses:
        w_in = 0.5 * w_in
    w_out = rng.normal(0.0, 1.0 / math.sqrt(hidden), size=(3, hidden))
    ones = np.ones(hidden)
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([5])),
            "fc1": nir.Linear(weight=w_in),
            "hidden": nir.CubaLIF(
                tau_syn=tau / 2 * ones,
                tau_mem=tau * ones,
                r=4 * ones,
                v_leak=0 * ones,
                v_threshold=ones,
                v_reset=0 * ones,
                w_in=tau / 2 * ones,
            )
            if synapses
            else nir.LIF(
                tau=tau * ones,
                r=tau * ones,
                v_leak=0 * ones,
                v_threshold=ones,
                v_reset=0 * ones,
            ),
            "fc2": nir.Linear(weight=w_out),
            "readout": nir.CubaLI(
                tau_syn=tau / 2 * np.ones(3),
                tau_mem=tau * np.ones(3),
                r=4 * np.ones(3),
                v_leak=np.zeros(3),
                w_in=tau / 2 * np.ones(3),
            )
            if synapses
            else nir.LI(tau=tau * np.ones(3), r=tau * np.ones(3), v_leak=np.zeros(3)),
            "output": nir.Output(output_type=np.array([3])),
        },
        edges=[
            ("input", "fc1"),
            ("fc1", "hidden"),
            ("hidden", "fc2"),
            ("fc2", "readout"),
            ("readout", "output"),
        ],
    )
    return load(graph)


def yin_yang_chip_form(
    network: Network, *, dt: float = DT, readout_threshold: float = 100.0
) -> Network:
    """The Yin-Yang network (:func:`yin_yang_network`, trained or not, either kind)
    rewritten so that a chip importer that ignores or fixes ``r`` reads it as the
    graph means, with the same behaviour in every exact or discrete model.

    Two rewrites, node by node:

    * ``r`` is set to what the chips expect and the weights feeding the neuron are
      multiplied by ``r_old / r_new`` (per target neuron), so every product ``r W``
      (``r w_in W`` for a CubaLIF), hence every jump or synaptic kick a spike
      causes, is unchanged: a LIF gets ``r = dt`` (Loihi 2's paper mapping moves
      the membrane by ``W dt / tau`` per event whatever ``r`` says,
      :mod:`nirsim.hardware_models.loihi2`, which is then the graph's jump); a
      CubaLIF gets ``r = tau_mem / dt`` (lava-dl's CUBA neuron, which refuses any
      other, reads the same graph then);
    * the non-spiking readout (LI, CubaLI) becomes a spiking one of the same kind
      (LIF, CubaLIF) with the same time constants and ``v_leak``, ``r`` as above,
      ``v_reset = 0`` and ``v_threshold = readout_threshold`` (in the graph's voltage
      units, default 100: far above the readout's scores, which are of order 1).
      Below threshold it is the readout it replaces, so its membrane is unchanged
      as long as it stays below ``readout_threshold``; chips and frameworks that map
      LIF or CubaLIF but not LI or CubaLI then hold the whole graph.
    """
    from ..primitives import LI, LIF, CubaLI, CubaLIF, Linear

    graph = network.to_nir()
    nodes = dict(graph.nodes)
    for name, prim in network.nodes.items():
        if not isinstance(prim, LIF | LI | CubaLIF | CubaLI):
            continue
        cuba = isinstance(prim, CubaLIF | CubaLI)
        r = np.asarray(prim.r, dtype=float)
        tau = np.asarray(prim.tau_mem if cuba else prim.tau, dtype=float)
        r_new = tau / dt if cuba else np.full_like(tau, dt)
        for pred in network.predecessors(name):
            feeds = tuple(network.successors(pred))
            if not isinstance(network.nodes[pred], Linear) or feeds != (name,):
                raise InputError(
                    f"yin_yang_chip_form: node '{name}' ({prim.nir_type}) is fed by "
                    f"'{pred}' ({network.nodes[pred].nir_type}); only a Linear that "
                    "feeds this neuron alone can carry its r"
                )
            w = np.asarray(nodes[pred].weight, dtype=float)
            nodes[pred] = nir.Linear(weight=w * (r / r_new)[:, None])
        ones = np.ones_like(tau)
        if isinstance(prim, LI | CubaLI):
            threshold, reset = readout_threshold * ones, 0 * ones
        else:
            threshold = np.asarray(prim.v_threshold, dtype=float)
            reset = np.asarray(prim.v_reset, dtype=float)
        common = dict(
            r=r_new,
            v_leak=np.asarray(prim.v_leak, dtype=float),
            v_threshold=threshold,
            v_reset=reset,
        )
        if cuba:
            nodes[name] = nir.CubaLIF(
                tau_syn=np.asarray(prim.tau_syn, dtype=float),
                tau_mem=tau,
                w_in=np.asarray(prim.w_in, dtype=float),
                **common,
            )
        else:
            nodes[name] = nir.LIF(tau=tau, **common)
    return load(nir.NIRGraph(nodes=nodes, edges=graph.edges))


def yin_yang_solver(dt: float = DT, *, slope: float = 2.0, dtype: str = "float32"):
    """The discrete back-end the Yin-Yang benchmark trains with: exponential
    integration with step ``dt`` (1 ms) in float32, surrogate ``FastSigmoid(slope)``
    (``slope = 2`` per unit of voltage: thresholds are 1, and the jumps the input
    spikes cause leave the membrane far from threshold, where snnTorch's default
    slope 25 passes almost no gradient)."""
    return exponential(dt, surrogate=FastSigmoid(slope=slope), dtype=dtype)


def yin_yang_loss(
    solver=None,
    *,
    scale: float = 10.0,
    t_end: float = T_END,
    silence: float = 0.0,
    min_fraction: float = 0.2,
    **simulate_kwargs,
):
    """``loss_fn(network, (features, labels)) -> (loss, metrics)`` for
    :class:`~nirsim.training.Trainer`: simulate the latency-coded batch with
    ``solver`` (default :func:`yin_yang_solver`), sampling every step (every ``DT``
    = 1 ms for an exact solver: its gradients are then the exact spike-time ones;
    ``simulate_kwargs`` such as ``max_spikes`` and ``max_events`` bound its buffers,
    hence the memory of reverse mode), and take the
    cross-entropy of ``scale * mean_membrane(trace, "readout")`` (``scale`` in
    1/voltage), plus ``silence`` times :func:`silence_penalty` of the hidden layer
    (``min_fraction``: the share of a batch's samples below which a hidden neuron
    counts as silent and is pulled back to its threshold; for exact gradients,
    which cannot revive a neuron that stopped firing). Metrics: ``accuracy``
    (argmax of the mean membrane), ``rate`` (hidden spikes per neuron and sample),
    ``silent`` (the share of hidden neurons that fire on no sample of the batch) and,
    with ``silence``, ``cross_entropy``.

    The score is the time-averaged membrane, not the maximum: the maximum over time
    includes the resting value 0 at ``t = 0``, so an output driven only downwards
    reads as 0 with zero gradient, and training stalls near chance.
    """
    solver = yin_yang_solver() if solver is None else solver
    dt = solver.grid_dt() or DT

    def loss_fn(network: Network, batch):
        features, labels = batch
        trace = simulate(
            network,
            yin_yang_spikes(features),
            t_end=t_end,
            save_dt=dt,
            solver=solver,
            **simulate_kwargs,
        )
        scores = mean_membrane(trace, "readout")
        counts = spike_counts(trace, "hidden")
        fired = jnp.any(counts.reshape(-1, counts.shape[-1]) > 0, axis=0)
        metrics = {
            "accuracy": accuracy(scores, labels),
            "rate": jnp.mean(counts),
            "silent": jnp.mean(~fired),
        }
        loss = cross_entropy(scale * scores, labels)
        if silence:
            metrics["cross_entropy"] = loss
            threshold = network.nodes["hidden"].v_threshold
            loss = loss + silence * silence_penalty(
                trace, "hidden", threshold, min_fraction=min_fraction
            )
        return loss, metrics

    return loss_fn
