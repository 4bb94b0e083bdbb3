"""Exact gradients through the ideal (closed-form) solve, checked three ways:

1. the implicit-function formula written here for a single spike,
   ``dt*/dp = -(dg/dp)/(dg/dt)`` at ``t*``, with ``g = v(t; p) - v_threshold`` the
   neuron's closed-form membrane minus threshold;
2. central finite differences of the loss (each run re-simulated);
3. forward mode (``jax.jvp`` with ``Ideal(adjoint="forward")``) against reverse
   mode (``jax.grad`` with the default checkpointed loop).

Finite differences: relative step ``H_FD = 1e-6`` (``eps = H_FD * max(1, |p|)``).
The truncation error of a central difference is ``eps^2 |L'''| / 6``, ~1e-12
relative for these smooth losses (time constants >= 2 ms, parameters O(1)); the
rounding error is ``~|L| u / eps`` with ``u`` the loss's relative error: spike times
are exact to a few ulps of ``t`` and states to ~1e-15, so ``u ~ 1e-14`` gives
~1e-8 relative. ``RTOL_FD = 1e-5`` is far above both and far below any wrong
derivative (a missing reset, jump or time-shift term changes a gradient by O(1)).
Each check asserts that the spike counts do not change within ``+-eps`` (else the
loss is not differentiable there and the check would be void).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest

import nirsim
from nirsim import readout

H_FD = 1e-6
RTOL_FD = 1e-5
RTOL_MODES = 1e-10  # jvp vs vjp: the same arithmetic in another order
RTOL_IFT = 1e-9  # spike-time derivative vs the formula (both exact in float64)

AREA = 1e-3


def split(net):
    return eqx.partition(net, eqx.is_inexact_array)


def vec(n, x):
    return np.broadcast_to(np.asarray(x, float), (n,)).copy()


def lif(tau, v_th=1.0, v_reset=0.0, n=1):
    return nir.LIF(
        tau=vec(n, tau),
        r=vec(n, 1.0),
        v_leak=vec(n, 0.0),
        v_threshold=vec(n, v_th),
        v_reset=vec(n, v_reset),
    )


# ------------------------------------------------------------------ single neurons
# One graph, three independent neurons, each firing a known first spike:
# * lif:  bias b = 1.5 through an Affine, tau 10 ms: v = r b (1 - e^{-t/tau}),
#         t* = tau ln(r b / (r b - thr)) = 10.99 ms;
# * if_:  bias 80 -> v = r b t, t* = thr / (r b) = 12.5 ms;
# * cuba: one input impulse at t0 = 1 ms through a Linear weight 40 (area 1e-3):
#         i0 = w A w_in / tau_syn = 8; v(s) = r i0 b (e^{-as} - e^{-bs}) / (b - a),
#         a = 1/tau_syn, b = 1/tau_mem; crossing at s = 1.58 ms.
T0 = 1e-3
T_END_SINGLE = 0.02


def single_graph():
    nodes = {
        "x": nir.Input(np.array([1])),
        "b_lif": nir.Affine(np.array([[1.0]]), np.array([1.5])),
        "lif": lif(0.01),
        "b_if": nir.Affine(np.array([[1.0]]), np.array([80.0])),
        "if_": nir.IF(r=vec(1, 1.0), v_threshold=vec(1, 1.0), v_reset=vec(1, 0.0)),
        "s": nir.Input(np.array([1])),
        "w_cuba": nir.Linear(np.array([[40.0]])),
        "cuba": nir.CubaLIF(
            tau_syn=vec(1, 5e-3),
            tau_mem=vec(1, 1e-2),
            r=vec(1, 1.0),
            v_leak=vec(1, 0.0),
            v_threshold=vec(1, 1.0),
            v_reset=vec(1, 0.0),
            w_in=vec(1, 1.0),
        ),
    }
    edges = [("x", "b_lif"), ("b_lif", "lif"), ("x", "b_if"), ("b_if", "if_")]
    edges += [("s", "w_cuba"), ("w_cuba", "cuba")]
    for n in ("lif", "if_", "cuba"):
        nodes[n + "_out"] = nir.Output(np.array([1]))
        edges.append((n, n + "_out"))
    return nirsim.load(nir.NIRGraph(nodes=nodes, edges=edges))


SINGLE_INPUTS = {
    "x": nirsim.Current(np.zeros((20, 1)), 1e-3),
    "s": nirsim.Spikes(np.array([T0]), np.array([0])),
}


def single_run(net, solver=None):
    return nirsim.simulate(
        net,
        SINGLE_INPUTS,
        t_end=T_END_SINGLE,
        save_dt=2e-3,
        spike_area=AREA,
        solver=solver,
        max_spikes=16,
    )


def single_loss(net, solver=None):
    """First spike times, every spike time, smooth counts and sampled states."""
    tr = single_run(net, solver)
    loss = 0.0
    for n in ("lif", "if_", "cuba"):
        loss = loss + 10.0 * jnp.sum(readout.first_spike_times(tr, n))
        t, _, valid = readout.spike_times(tr, n)
        loss = loss + jnp.sum(jnp.where(valid, t, 0.0))
        loss = loss + jnp.sum(readout.soft_spike_counts(tr, n, tau=2e-3, t_stop=0.015))
        loss = loss + 0.1 * jnp.sum(tr.states[n]["v"])
    return loss


@pytest.fixture(scope="module")
def single():
    net = single_graph()
    grads = eqx.filter_grad(lambda n: jnp.sum(first_times(n)))(net)
    return net, grads


def first_times(net, solver=None):
    tr = single_run(net, solver)
    return jnp.stack([readout.first_spike_times(tr, n)[0] for n in ("lif", "if_", "cuba")])


def ift(g, t, p):
    """``dt*/dp = -(dg/dp) / (dg/dt)`` for ``g(t, p) = 0``."""
    return -jax.grad(g, 1)(t, p) / jax.grad(g, 0)(t, p)


def test_single_spike_times_match_closed_forms():
    net = single_graph()
    t = np.asarray(first_times(net))
    t_lif = 0.01 * np.log(1.5 / 0.5)
    t_if = 1.0 / 80.0
    x = (1 + np.sqrt(0.5)) / 2  # e^{-100 s} with x - x^2 = 1/8
    t_cuba = T0 - np.log(x) / 100.0
    np.testing.assert_allclose(t, [t_lif, t_if, t_cuba], rtol=1e-12)


def test_lif_first_spike_derivative_is_the_implicit_function_formula(single):
    net, grads = single
    # g(t; tau, b, thr) = r b (1 - e^{-t/tau}) - thr, r = 1
    p0 = jnp.array([0.01, 1.5, 1.0])  # tau, bias, threshold
    g = lambda t, p: p[1] * (1 - jnp.exp(-t / p[0])) - p[2]
    t_star = 0.01 * np.log(3.0)
    want = ift(g, t_star, p0)
    got = [
        grads.nodes["lif"].tau[0],
        grads.nodes["b_lif"].bias[0],
        grads.nodes["lif"].v_threshold[0],
    ]
    np.testing.assert_allclose(got, want, rtol=RTOL_IFT)
    # by hand too: dt*/dthr = tau / (r b - thr), dt*/dtau = t*/tau
    np.testing.assert_allclose(got[2], 0.01 / 0.5, rtol=RTOL_IFT)
    np.testing.assert_allclose(got[0], t_star / 0.01, rtol=RTOL_IFT)
    # the bias reaches v through the Affine: dv/dW = x = 0, and r through r b
    assert float(grads.nodes["b_lif"].weight[0, 0]) == 0.0


def test_if_first_spike_derivative_is_the_implicit_function_formula(single):
    net, grads = single
    p0 = jnp.array([1.0, 80.0, 1.0])  # r, bias, threshold
    g = lambda t, p: p[0] * p[1] * t - p[2]
    want = ift(g, 1.0 / 80.0, p0)
    got = [
        grads.nodes["if_"].r[0],
        grads.nodes["b_if"].bias[0],
        grads.nodes["if_"].v_threshold[0],
    ]
    np.testing.assert_allclose(got, want, rtol=RTOL_IFT)


def test_cuba_first_spike_derivative_is_the_implicit_function_formula(single):
    net, grads = single

    # g(t; tau_syn, tau_mem, w, thr, w_in, r) for an impulse of area A at T0
    def g(t, p):
        tau_syn, tau_mem, w, thr, w_in, r = p
        a, b = 1 / tau_syn, 1 / tau_mem
        i0 = w * AREA * w_in / tau_syn
        s = t - T0
        return r * i0 * b * (jnp.exp(-a * s) - jnp.exp(-b * s)) / (b - a) - thr

    p0 = jnp.array([5e-3, 1e-2, 40.0, 1.0, 1.0, 1.0])
    x = (1 + np.sqrt(0.5)) / 2
    want = ift(g, T0 - np.log(x) / 100.0, p0)
    c = grads.nodes["cuba"]
    got = [
        c.tau_syn[0],
        c.tau_mem[0],
        grads.nodes["w_cuba"].weight[0, 0],
        c.v_threshold[0],
        c.w_in[0],
        c.r[0],
    ]
    np.testing.assert_allclose(got, want, rtol=RTOL_IFT)


# ------------------------------------------------------------------ finite differences
def fd_check(loss, net, counts, leaves=None):
    """Central differences of ``loss`` on every parameter entry (or the leaf indices
    ``leaves``) against ``eqx.filter_grad``; ``counts(net)`` must not change."""
    params, static = split(net)
    grads = eqx.filter_grad(loss)(net)
    gl = jax.tree_util.tree_leaves(split(grads)[0])
    pl, pdef = jax.tree_util.tree_flatten(params)
    assert len(gl) == len(pl)
    c0 = counts(net)
    checked = 0
    for k, leaf in enumerate(pl):
        if leaves is not None and k not in leaves:
            continue
        for j in np.ndindex(leaf.shape):
            eps = H_FD * max(1.0, abs(float(leaf[j])))

            def at(d, k=k, leaf=leaf, j=j):
                ll = list(pl)
                ll[k] = leaf.at[j].add(d)
                n = eqx.combine(jax.tree_util.tree_unflatten(pdef, ll), static)
                assert counts(n) == c0, "a spike appeared or vanished within +-eps"
                return float(loss(n))

            fd = (at(eps) - at(-eps)) / (2 * eps)
            g = float(gl[k][j])
            scale = max(abs(fd), abs(g), 1e-6 * max(1.0, abs(float(loss(net)))))
            assert abs(g - fd) <= RTOL_FD * scale, (k, j, g, fd)
            checked += 1
    assert checked > 0


def single_counts(net):
    tr = single_run(net)
    assert int(tr.result) == 0
    return tuple(int(tr.spikes[n].count()) for n in ("lif", "if_", "cuba"))


def test_single_neurons_finite_differences():
    net = single_graph()
    fd_check(single_loss, net, single_counts)


def forward_vs_reverse(loss, net, seed=0):
    params, static = split(net)
    f_rev = lambda p: loss(eqx.combine(p, static))
    f_fwd = lambda p: loss(eqx.combine(p, static), nirsim.solvers.Ideal(adjoint="forward"))
    grads = jax.grad(f_rev)(params)
    leaves, tdef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
    tangent = jax.tree_util.tree_unflatten(
        tdef,
        [
            jax.random.normal(k, x.shape) * (1 + jnp.abs(x))
            for k, x in zip(keys, leaves, strict=True)
        ],
    )
    value, jvp = jax.jvp(f_fwd, (params,), (tangent,))
    vjp = sum(
        jnp.vdot(g, t)
        for g, t in zip(
            jax.tree_util.tree_leaves(grads),
            jax.tree_util.tree_leaves(tangent),
            strict=True,
        )
    )
    np.testing.assert_allclose(value, f_rev(params), rtol=1e-14)
    np.testing.assert_allclose(jvp, vjp, rtol=RTOL_MODES)
    # forward mode per leaf too (jacfwd would recompile per leaf; one direction each)
    return grads


def test_single_neurons_forward_mode_equals_reverse_mode():
    forward_vs_reverse(single_loss, single_graph())


# ------------------------------------------------------------------ coupled recurrent pair
# Two LIFs under constant currents exciting each other through a recurrent Linear
# (zero diagonal), as in test_ideal_coupled: spikes of one shift the other's, so
# every spike time depends on every parameter through the coupling impulses.
PAIR_INPUT = nirsim.Current(np.broadcast_to([2.0, 1.05], (40, 2)).copy(), 1e-3)
T_END_PAIR = 0.04


def pair_graph():
    nodes = {
        "cur": nir.Input(np.array([2])),
        "pair": nir.LIF(
            tau=np.array([0.01, 0.02]),
            r=np.ones(2),
            v_leak=np.zeros(2),
            v_threshold=np.ones(2),
            v_reset=np.array([0.0, 0.2]),
        ),
        "rec": nir.Linear(np.array([[0.0, 2.0], [8.0, 0.0]])),
        "out": nir.Output(np.array([2])),
    }
    edges = [("cur", "pair"), ("pair", "rec"), ("rec", "pair"), ("pair", "out")]
    return nirsim.load(nir.NIRGraph(nodes=nodes, edges=edges))


def pair_run(net, solver=None, reset="to_v_reset"):
    return nirsim.simulate(
        net,
        PAIR_INPUT,
        t_end=T_END_PAIR,
        save_dt=1e-3,
        spike_area=AREA,
        solver=solver,
        reset=reset,
        max_spikes=64,
    )


def pair_loss(net, solver=None, reset="to_v_reset"):
    tr = pair_run(net, solver, reset)
    t, idx, valid = readout.spike_times(tr, "pair")
    # weight later spikes more: their times carry everything that came before
    loss = jnp.sum(jnp.where(valid, t * (1 + jnp.arange(t.shape[-1])), 0.0))
    loss = loss + jnp.sum(readout.first_spike_times(tr, "pair"))
    return loss + 0.01 * jnp.sum(tr.states["pair"]["v"])


@pytest.mark.parametrize("reset", ["to_v_reset", "subtract"])
def test_coupled_pair_finite_differences(reset):
    net = pair_graph()

    def counts(n):
        tr = pair_run(n, reset=reset)
        assert int(tr.result) == 0
        return int(tr.spikes["pair"].count())

    assert counts(net) >= 6  # several spikes, each shifted by the other neuron's
    fd_check(lambda n: pair_loss(n, reset=reset), net, counts)


def test_coupled_pair_forward_mode_equals_reverse_mode():
    forward_vs_reverse(pair_loss, pair_graph(), seed=1)


def test_coupled_pair_coupling_moves_spike_times():
    """The recurrent weights' gradient is non-zero: the coupling impulses carry the
    spike-time derivatives into the other neuron's spikes."""
    grads = eqx.filter_grad(pair_loss)(pair_graph())
    w = np.asarray(grads.nodes["rec"].weight)
    assert abs(w[0, 1]) > 1e-5 and abs(w[1, 0]) > 1e-5


# ------------------------------------------------------------------ batches
def test_batch_gradient_is_the_sum_of_sample_gradients():
    net = pair_graph()
    scales = np.array([1.0, 1.2, 0.9])
    batch = nirsim.Current(scales[:, None, None] * np.asarray(PAIR_INPUT.values), 1e-3)

    def loss(n, x):
        tr = nirsim.simulate(
            n, x, t_end=T_END_PAIR, spike_area=AREA, save_dt=1e-3, max_spikes=64
        )
        t, _, valid = readout.spike_times(tr, "pair")
        return jnp.sum(jnp.where(valid, t, 0.0)) + jnp.sum(tr.states["pair"]["v"])

    g_batch = split(eqx.filter_grad(loss)(net, batch))[0]
    one = lambda k: nirsim.Current(batch.values[k], 1e-3)
    g_each = [split(eqx.filter_grad(loss)(net, one(k)))[0] for k in range(3)]
    total = jax.tree_util.tree_map(lambda *a: sum(a), *g_each)
    for a, b in zip(
        jax.tree_util.tree_leaves(g_batch), jax.tree_util.tree_leaves(total), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ grazing
def test_grazing_crossing_gives_finite_clipped_gradient_and_a_count():
    """A LIF whose v_inf exceeds threshold by 1e-8: it crosses at ~0.18 s with dv/dt =
    1e-6 V/s, below the grazing rate GRAZING |thr - reset| / t_end = 3.3e-6 V/s, so
    dt*/dthr = 1/rate (1e6) is clipped to t_end / GRAZING (3e5) and the spike
    counted (once: the next would come at ~0.35 s, after t_end)."""
    from nirsim.solvers.closed_form import GRAZING

    nodes = {
        "x": nir.Input(np.array([1])),
        "b": nir.Affine(np.array([[1.0]]), np.array([1.0 + 1e-8])),
        "lif": lif(0.01),
        "o": nir.Output(np.array([1])),
    }
    edges = [("x", "b"), ("b", "lif"), ("lif", "o")]
    net = nirsim.load(nir.NIRGraph(nodes=nodes, edges=edges))
    x = nirsim.Current(np.zeros((1, 1)), 1e-3)
    t_end = 0.3

    def run(n):
        return nirsim.simulate(n, x, t_end=t_end, max_spikes=4)

    tr = run(net)
    assert int(tr.spikes["lif"].count()) == 1
    assert int(tr.n_grazing) == 1
    grads = eqx.filter_grad(lambda n: readout.first_spike_times(run(n), "lif")[0])(net)
    leaves = jax.tree_util.tree_leaves(grads)
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in leaves)
    min_rate = GRAZING * 1.0 / t_end
    np.testing.assert_allclose(grads.nodes["lif"].v_threshold[0], 1 / min_rate, rtol=1e-6)
    # an ordinary crossing counts nothing
    assert int(single_run(single_graph()).n_grazing) == 0


def test_forward_only_adjoint_is_refused_by_name():
    with pytest.raises(nirsim.InputError):
        nirsim.solvers.Ideal(adjoint="backward")


# ------------------------------------------------------------------ spike_area, Delay
def test_spike_area_gradient_equals_the_weight_gradient_scaled():
    """The cuba neuron sees the input impulse only through w A: so
    dt*/dA = (w / A) dt*/dw exactly (the other neurons do not depend on A)."""
    net = single_graph()

    def first(area, n):
        tr = nirsim.simulate(
            n, SINGLE_INPUTS, t_end=T_END_SINGLE, spike_area=area, max_spikes=16
        )
        return readout.first_spike_times(tr, "cuba")[0]

    g_area = jax.grad(first)(jnp.asarray(AREA), net)
    g_w = eqx.filter_grad(lambda n: first(jnp.asarray(AREA), n))(net)
    want = 40.0 / AREA * float(g_w.nodes["w_cuba"].weight[0, 0])
    np.testing.assert_allclose(g_area, want, rtol=1e-10)


def delay_graph():
    """lif (bias 1.5, first spike at tau ln 3) -> Linear 30 -> Delay 2 ms -> lif2: each
    jump (30 A / tau = 3) fires lif2 at once, so lif2's first spike is lif's + 2 ms."""
    nodes = {
        "x": nir.Input(np.array([1])),
        "b": nir.Affine(np.array([[1.0]]), np.array([1.5])),
        "lif": lif(0.01),
        "w": nir.Linear(np.array([[30.0]])),
        "d": nir.Delay(np.array([2e-3])),
        "lif2": lif(0.01, v_reset=-0.5),
        "o": nir.Output(np.array([1])),
    }
    edges = [("x", "b"), ("b", "lif"), ("lif", "w"), ("w", "d"), ("d", "lif2")]
    edges.append(("lif2", "o"))
    return nirsim.load(nir.NIRGraph(nodes=nodes, edges=edges))


def delay_run(net):
    x = nirsim.Current(np.zeros((30, 1)), 1e-3)
    return nirsim.simulate(net, x, t_end=0.03, save_dt=1e-3, spike_area=AREA, max_spikes=16)


def delay_loss(net, solver=None):
    tr = delay_run(net)
    t, _, valid = readout.spike_times(tr, "lif2")
    return jnp.sum(jnp.where(valid, t, 0.0)) + 0.1 * jnp.sum(tr.states["lif2"]["v"])


def test_delay_gradients():
    net = delay_graph()
    first = lambda n: readout.first_spike_times(delay_run(n), "lif2")[0]
    np.testing.assert_allclose(first(net), 0.01 * np.log(3.0) + 2e-3, rtol=1e-12)
    g = eqx.filter_grad(first)(net)
    np.testing.assert_allclose(g.nodes["d"].delay[0], 1.0, rtol=1e-12)
    np.testing.assert_allclose(g.nodes["lif"].tau[0], np.log(3.0), rtol=1e-9)

    def counts(n):
        tr = delay_run(n)
        assert int(tr.result) == 0
        return int(tr.spikes["lif2"].count()), int(tr.spikes["lif"].count())

    fd_check(delay_loss, net, counts)
