"""Quantisation-aware training through the chip models: the straight-through rules
themselves, forward passes unchanged bit for bit under ``jax.grad``, gradients that
are finite and non-zero, the gradient of a chip run against finite differences of
the same run with every rounding removed, and a few optax steps that lower a loss
measured on the chip."""

import jax
import jax.numpy as jnp
import nir
import numpy as np
import optax
import pytest

import nirsim
from nirsim import Current, Spikes, training
from nirsim.hardware_models import Loihi2, Speck, Xylo, fixed_point as fp
from nirsim.hardware_models.loihi2 import PAPER_V_UNIT

DT = 1e-3


# ------------------------------------------------------------------ the rules
@pytest.mark.parametrize(
    "fn, exact",
    [
        (fp.round_toward_zero, np.trunc),
        (fp.round_half_even, np.round),
        (fp.round_floor, np.floor),
        (fp.round_half_away, lambda x: np.sign(x) * np.floor(np.abs(x) + 0.5)),
    ],
)
def test_roundings_are_exact_forward_and_identity_backward(fn, exact):
    # halves, near-halves, large and tiny values, both signs
    x = np.array([-2.5, -0.5, -0.49999999, 0.3, 0.5, 1.5, 2.5, 7.999999, 1e7 + 0.5, 3e-9])
    np.testing.assert_array_equal(np.asarray(fn(jnp.asarray(x))), exact(x))
    # d q_ste(x)/dx = 1 at every point, halves included
    g = jax.vmap(jax.grad(lambda v: fn(v)))(jnp.asarray(x))
    np.testing.assert_array_equal(np.asarray(g), np.ones_like(x))


def test_straight_through_returns_q_bit_for_bit():
    # x + stop_gradient(q - x) misses q by an ulp for some x; q + (x - x) cannot
    x = jnp.asarray(np.random.default_rng(0).normal(0, 1e6, 10_000))
    q = jnp.round(x * 3.7)
    out = fp.straight_through(x, q)
    assert out.dtype == x.dtype
    np.testing.assert_array_equal(np.asarray(out), np.asarray(q))
    # an integer q (a chip's state) comes back as x's float type
    assert fp.straight_through(x[:3], q[:3].astype(jnp.int32)).dtype == x.dtype
    # a non-finite x (a degenerate mapping) still gives q, and a zero gradient
    bad = jnp.asarray([jnp.inf, -jnp.inf, jnp.nan, 2.5])
    out, g = jax.vmap(jax.value_and_grad(lambda v: fp.straight_through(v, 3.0)))(bad)
    assert np.asarray(out).tolist() == [3.0] * 4
    assert np.asarray(g).tolist() == [0.0, 0.0, 0.0, 1.0]


def test_clip_is_a_masked_identity():
    g = jax.vmap(jax.grad(lambda v: fp.clip(v, -1.0, 2.0)))(jnp.asarray([-3.0, 0.5, 3.0]))
    assert np.asarray(g).tolist() == [0.0, 1.0, 0.0]


# ------------------------------------------------------------------ small graphs
def _chain(neuron, w1, w2):
    nodes = {
        "input": nir.Input(input_type=np.array([w1.shape[1]])),
        "w1": nir.Linear(weight=w1),
        "h": neuron(w1.shape[0], 1.0),
        "w2": nir.Linear(weight=w2),
        "o": neuron(w2.shape[0], 100.0),  # a readout that never reaches threshold
        "output": nir.Output(output_type=np.array([w2.shape[0]])),
    }
    edges = [("input", "w1"), ("w1", "h"), ("h", "w2"), ("w2", "o"), ("o", "output")]
    return nirsim.load(nir.NIRGraph(nodes=nodes, edges=edges))


def _lif(n, vth):
    # r = dt: the jump per event is W dt/tau on Loihi 2 (paper mapping) and here alike
    k = np.ones(n)
    return nir.LIF(tau=1e-2 * k, r=DT * k, v_leak=0 * k, v_threshold=vth * k, v_reset=0 * k)


def _cuba(n, vth):
    k = np.ones(n)
    return nir.CubaLIF(
        tau_syn=2e-3 * k, tau_mem=1e-2 * k, r=10 * k, v_leak=0 * k,
        v_threshold=vth * k, v_reset=0 * k, w_in=2 * k,
    )  # fmt: skip


def _loihi_net(seed=0):
    rng = np.random.default_rng(seed)
    return _chain(_lif, rng.normal(6, 3, (4, 2)), rng.normal(0, 3, (2, 4)))


def _xylo_net(seed=0):
    rng = np.random.default_rng(seed)
    w1 = rng.normal(1, 0.5, (4, 2))
    w1[1] = 0.0  # a neuron with no input: per-channel scale 127/0 = inf, no NaN
    return _chain(_cuba, w1, rng.normal(0, 0.3, (2, 4)))


def _speck_net(seed=0):
    # Conv2d 1x1 (2 -> 4 channels) -> IF -> Conv2d 1x1 (4 -> 2) -> IF
    rng = np.random.default_rng(seed)

    def conv(w):
        w = w.reshape(w.shape + (1, 1))
        return nir.Conv2d(
            input_shape=(1, 1), weight=w, stride=1, padding=0, dilation=1, groups=1,
            bias=np.zeros(w.shape[0]),
        )  # fmt: skip

    def if_(c, vth):
        return nir.IF(r=np.ones((c, 1, 1)), v_threshold=np.full((c, 1, 1), vth))

    nodes = {
        "input": nir.Input(input_type=np.array([2, 1, 1])),
        "w1": conv(rng.normal(1, 0.5, (4, 2))),
        "h": if_(4, 1.0),
        "w2": conv(rng.normal(0.5, 0.5, (2, 4))),
        "o": if_(2, 1.0),
        "output": nir.Output(output_type=np.array([2, 1, 1])),
    }
    edges = [("input", "w1"), ("w1", "h"), ("h", "w2"), ("w2", "o"), ("o", "output")]
    return nirsim.load(nir.NIRGraph(nodes=nodes, edges=edges))


# a batch of two samples: input 0 fires three times, or input 1
SPIKES = Spikes(
    np.array([[1e-3, 2e-3, 3e-3], [1e-3, 2e-3, 3e-3]]),
    np.array([[0, 0, 0], [1, 1, 1]]),
    n_neurons=2,
)
SPECK_IN = Current(np.tile(np.eye(2)[:, None, :, None, None], (1, 4, 1, 1, 1)) * 2, DT)
CHIPS = {
    "loihi2": (Loihi2(dt=DT), _loihi_net, SPIKES),
    "xylo": (Xylo(dt=DT), _xylo_net, SPIKES),
    "speck": (Speck(dt=DT), _speck_net, SPECK_IN),
}


@pytest.mark.parametrize("chip", sorted(CHIPS))
def test_chip_forward_unchanged_under_grad_and_gradient_finite(chip):
    solver, make, x = CHIPS[chip]
    net = make()

    def run(net, solver):
        return nirsim.simulate(net, x, t_end=10e-3, save_dt=DT, solver=solver)

    def loss(net, solver):
        tr = run(net, solver)
        v = tr.states["o"]["v"].astype(float)  # chip integers with raw=True: no gradient
        return jnp.sum(v**2) + jnp.sum(tr.states["h"]["spike_count"]), tr

    # raw=True: the chip's integers and spikes under jax.grad are the plain run's, bit
    # for bit (the gradient still flows, through the spike counts)
    raw = type(solver)(dt=DT, raw=True)
    (_, traced), g_raw = jax.value_and_grad(loss, has_aux=True)(net, raw)
    plain = run(net, raw)
    for node in ("h", "o"):
        np.testing.assert_array_equal(
            traced.spikes[node].raster(), plain.spikes[node].raster()
        )
        for f, v in plain.states[node].items():
            np.testing.assert_array_equal(np.asarray(traced.states[node][f]), np.asarray(v))
    assert plain.spikes["h"].raster().sum() > 0  # the gradient passes spikes
    assert np.any(np.asarray(g_raw.nodes["w1"].weight) != 0)

    # graph units (the chip's numbers divided by the mapping's scale): the gradient
    # also flows through the recorded membrane
    (_, traced), g = jax.value_and_grad(loss, has_aux=True)(net, solver)
    for node in ("h", "o"):
        np.testing.assert_array_equal(
            traced.spikes[node].raster(), plain.spikes[node].raster()
        )
    for node in ("w1", "w2"):
        gw = np.asarray(g.nodes[node].weight)
        assert np.all(np.isfinite(gw)), node
        assert np.any(gw != 0), node


def test_loihi_gradient_is_that_of_the_straight_through_model():
    """One Linear (weight W) -> LIF (tau, a threshold never reached) on Loihi 2. The
    gradient of ``sum_k v(t_k)`` w.r.t. W and tau is the exact derivative of the
    straight-through model: the chip's run in which each rounding ``q(x)`` is replaced
    by ``q(x0) + (x - x0)``, ``x0`` its argument in the unperturbed run (so its value
    is the chip's and its derivative that of the identity). That model is written
    here in numpy, from the module's rules (``w = trunc(256 W dt/tau)``,
    ``dv = trunc(4095 dt/tau)``, ``u = 64 a``, ``v <- trunc0(v (4096 - dv)/4096) + u``,
    one step of Dense delay), checked equal to the chip's run, and differentiated by
    central differences."""
    n_steps = 12
    times = np.array([1e-3, 4e-3, 4.5e-3, 8e-3])  # steps 1, 4, 4, 8
    events = np.bincount(np.floor(times / DT + 1e-9).astype(int), minlength=n_steps)

    def graph(w, tau):
        nodes = {
            "input": nir.Input(input_type=np.array([1])),
            "w": nir.Linear(weight=np.array([[w]])),
            "lif": nir.LIF(
                tau=np.array([tau]),
                r=np.array([DT]),
                v_leak=np.zeros(1),
                v_threshold=np.array([100.0]),
                v_reset=np.zeros(1),
            ),  # fmt: skip
            "output": nir.Output(output_type=np.array([1])),
        }
        edges = [("input", "w"), ("w", "lif"), ("lif", "output")]
        return nirsim.load(nir.NIRGraph(nodes=nodes, edges=edges))

    def ste_model(w, tau, base=None):
        seen = []

        def q(x):  # trunc, straight through around the base run's argument
            x0 = x if base is None else base[len(seen)]
            seen.append(x)
            return np.trunc(x0) + (x - x0)

        weight, dv, v, out = q(256.0 * w * DT / tau), q(4095.0 * DT / tau), 0.0, [0.0]
        for n in range(n_steps - 1):
            a = weight * (events[n - 1] if n >= 1 else 0)  # the Dense's one-step delay
            v = q(v * (4096.0 - dv) / 4096.0) + 64.0 * a
            out.append(v / PAPER_V_UNIT)
        return np.sum(out), seen

    def loss(net):
        x = Spikes(times, np.zeros(4, int), n_neurons=1)
        t_end = (n_steps - 1) * DT
        tr = nirsim.simulate(net, x, t_end=t_end, save_dt=DT, solver=Loihi2(dt=DT))
        return jnp.sum(tr.states["lif"]["v"])

    w0, tau0 = 3.3, 1.1e-2
    net = graph(w0, tau0)
    value, base = ste_model(w0, tau0)
    # the numpy model is the chip's run (sums of the same numbers in another order)
    np.testing.assert_allclose(float(loss(net)), value, rtol=1e-13)
    g = jax.grad(loss)(net)
    hw, ht = 1e-4, 1e-8
    fd_w = (ste_model(w0 + hw, tau0, base)[0] - ste_model(w0 - hw, tau0, base)[0]) / (
        2 * hw
    )
    fd_tau = (ste_model(w0, tau0 + ht, base)[0] - ste_model(w0, tau0 - ht, base)[0]) / (
        2 * ht
    )
    # rtol: the reset's surrogate term, about v sigma((v - 100)/1) with
    # sigma <= 1/(1 + 25 * 90)^2 (2e-7 relative), and the central differences'
    # rounding (1e-16 * loss / h: about 1e-7 for tau)
    np.testing.assert_allclose(float(g.nodes["w"].weight[0, 0]), fd_w, rtol=1e-5)
    np.testing.assert_allclose(float(g.nodes["lif"].tau[0]), fd_tau, rtol=1e-5)
    assert fd_w > 0 and fd_tau != 0


@pytest.mark.parametrize("chip", ["loihi2", "xylo"])
def test_a_few_optax_steps_lower_the_loss_on_the_chip(chip):
    """Two samples, two classes: the readout's mean membrane, measured on the chip,
    separates them after 15 Adam steps through the chip model (weights only)."""
    solver, make, x = CHIPS[chip]
    labels = jnp.asarray([0, 1])

    def loss_fn(net, batch):
        tr = nirsim.simulate(net, x, t_end=10e-3, save_dt=DT, solver=solver)
        s = training.mean_membrane(tr, "o")
        return training.cross_entropy(5.0 * s, labels), {
            "accuracy": training.accuracy(s, labels)
        }

    # Loihi 2's weights are in units of 1/25.6 of a chip step: a larger rate
    trainer = training.Trainer(
        make(), loss_fn, optax.adam(0.5 if chip == "loihi2" else 0.05)
    )
    state = trainer.init()
    losses = []
    for _ in range(15):
        state, m = trainer.step(state, None)
        losses.append(float(m["loss"]))
    final = trainer.evaluate(state, None)
    assert float(final["loss"]) < 0.5 * losses[0], losses
    assert float(final["accuracy"]) == 1.0
