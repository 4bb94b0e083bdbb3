"""Training: parameter filters, readouts and losses on traces, gradients against
finite differences, a short training run, checkpoints and resuming, export round
trips, and the Yin-Yang data set."""

import math

import jax
import jax.numpy as jnp
import nir
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import nirsim
from nirsim import training
from nirsim.training._yinyang import DT, T_END

SOLVER = training.yin_yang_solver(dtype="float64")  # float64: finite differences


@pytest.fixture(scope="module")
def data():
    x, y = training.yin_yang("train", size=48)
    return x, y


def small_net(hidden=16, seed=0):
    return training.yin_yang_network(hidden, seed=seed)


# ------------------------------------------------------------------- data set
def test_yin_yang_published_class_counts():
    # Kriener et al.'s generator, draw for draw: these counts pin the random stream
    _, y_train = training.yin_yang("train")
    _, y_test = training.yin_yang("test")
    assert np.bincount(y_train).tolist() == [1681, 1702, 1617]
    assert np.bincount(y_test).tolist() == [350, 316, 334]


def test_yin_yang_features_and_classes_are_consistent():
    x, y = training.yin_yang("validation")
    assert x.shape == (1000, 4) and y.shape == (1000,)
    np.testing.assert_allclose(x[:, 2:], 1.0 - x[:, :2], rtol=0, atol=0)
    # every point lies in the big circle; dots are within r_small of a dot centre
    r = np.hypot(x[:, 0] - 0.5, x[:, 1] - 0.5)
    assert np.all(r <= 0.5)
    d_r = np.hypot(x[:, 0] - 0.75, x[:, 1] - 0.5)
    d_l = np.hypot(x[:, 0] - 0.25, x[:, 1] - 0.5)
    assert np.all((np.minimum(d_r, d_l) < 0.1) == (y == 2))


# ---------------------------------------------------------------- parameters
def test_filter_default_is_weights_only():
    net = small_net()
    params = training.init_params(net)
    assert {n: set(f) for n, f in params.items()} == {"fc1": {"weight"}, "fc2": {"weight"}}
    np.testing.assert_array_equal(params["fc1"]["weight"], net.nodes["fc1"].weight)


def test_time_constants_and_thresholds_stay_positive():
    net = small_net()
    filt = training.ParameterFilter(weights=False, time_constants=True, thresholds=True)
    params = training.init_params(net, filt)
    assert set(params) == {"hidden", "readout"}
    assert set(params["hidden"]) == {"tau", "v_threshold"}
    np.testing.assert_allclose(params["hidden"]["tau"], np.log(net.nodes["hidden"].tau))
    # round trip reproduces the values (exp(log(x)) to a few ulp)
    back = training.apply_params(net, params)
    tau = net.nodes["hidden"].tau
    np.testing.assert_allclose(back.nodes["hidden"].tau, tau, rtol=1e-15)
    # any raw value, however negative, gives tau > 0 and v_threshold > v_reset
    raw = jax.tree.map(lambda a: a - 50.0, params)
    moved = training.apply_params(net, raw)
    assert np.all(np.asarray(moved.nodes["hidden"].tau) > 0)
    assert np.all(np.asarray(moved.nodes["readout"].tau) > 0)
    vr = np.asarray(moved.nodes["hidden"].v_reset)
    assert np.all(np.asarray(moved.nodes["hidden"].v_threshold) > vr)


def test_filter_refuses_unknown_nodes():
    with pytest.raises(nirsim.InputError, match="not in the network"):
        training.init_params(small_net(), training.ParameterFilter(nodes=("nope",)))


# ------------------------------------------------------------------ readouts
def lif_net(weight=1.0, tau=2.5e-3, thr=0.1):
    graph = nir.NIRGraph.from_list(
        nir.Affine(weight=np.array([[weight]]), bias=np.array([0.0])),
        nir.LIF(
            tau=np.array([tau]),
            r=np.array([1.0]),
            v_leak=np.array([0.0]),
            v_threshold=np.array([thr]),
            v_reset=np.array([0.0]),
        ),
    )
    return nirsim.load(graph)


def test_first_spike_time_exact_on_ideal_and_bin_end_on_discrete():
    # constant current I = 0.5: first spike at -tau log(1 - thr/(r I)) (DESIGN.md 4)
    net = lif_net()
    current = nirsim.Current(np.full((100, 1), 0.5), dt=1e-4)
    t_star = -2.5e-3 * math.log(1 - 0.1 / 0.5)
    ideal = nirsim.simulate(net, current, t_end=0.01, save_dt=1e-4)
    t_ideal = training.first_spike_times(ideal, "lif")
    np.testing.assert_allclose(t_ideal, [t_star], rtol=1e-9)  # solver tolerance
    disc = nirsim.simulate(
        net, current, t_end=0.01, save_dt=1e-4, solver="exponential", dt=1e-4
    )
    t_disc = training.first_spike_times(disc, "lif")
    # the smooth readout's value is the end of the first sample interval with a spike
    first_step = int(np.argmax(np.asarray(disc.spikes["lif"].counts)[:, 0] > 0))
    np.testing.assert_allclose(t_disc, [(first_step + 1) * 1e-4], rtol=1e-12)
    assert abs(float(t_disc[0]) - t_star) <= 1e-4  # within one step of the exact time


def test_first_spike_time_surrogate_gradient_points_earlier():
    # a stronger input weight fires earlier: d t_first / d w < 0, finite
    current = nirsim.Current(np.full((100, 1), 0.5), dt=1e-4)

    def t_first(w):
        net = training.apply_params(lif_net(), {"affine": {"weight": w}})
        solver = training.yin_yang_solver(1e-4, dtype="float64")
        tr = nirsim.simulate(net, current, t_end=0.01, save_dt=1e-4, solver=solver)
        return training.first_spike_times(tr, "lif")[0]

    g = jax.grad(t_first)(jnp.array([[1.0]]))
    assert np.isfinite(g).all() and float(g[0, 0]) < 0


def test_silent_neuron_reads_t_max():
    net = lif_net(weight=0.0)
    current = nirsim.Current(np.full((10, 1), 0.5), dt=1e-4)
    disc = nirsim.simulate(net, current, t_end=1e-3, save_dt=1e-4, solver="euler", dt=1e-4)
    ideal = nirsim.simulate(net, current, t_end=1e-3, save_dt=1e-4)
    for tr in (disc, ideal):
        np.testing.assert_allclose(training.first_spike_times(tr, "lif"), [1e-3])


def test_losses_have_their_closed_forms():
    scores = jnp.array([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]])
    labels = jnp.array([1, 0])
    ce = -np.mean(
        [
            2.0 - np.log(np.exp(1.0) + np.exp(2.0) + np.exp(0.5)),
            0.0 - np.log(2 + np.exp(3.0)),
        ]
    )
    np.testing.assert_allclose(training.cross_entropy(scores, labels), ce, rtol=1e-12)
    np.testing.assert_allclose(training.accuracy(scores, labels), 0.5)
    # first-spike loss: cross-entropy of -t/tau, plus alpha (exp(t_label/tau_reg) - 1)
    t = jnp.array([[1e-3, 2e-3, 3e-3]])
    got = training.first_spike_loss(t, jnp.array([0]), tau=1e-3, alpha=0.1)
    want = -(-1.0 - np.log(np.exp(-1.0) + np.exp(-2.0) + np.exp(-3.0))) + 0.1 * (np.e - 1)
    np.testing.assert_allclose(got, want, rtol=1e-12)


# ----------------------------------------------------------------- gradients
def test_gradients_match_finite_differences_where_the_model_is_smooth(data):
    """The loss depends on the readout weights (fc2) and the readout's time constant
    only through the LI layer, with no spike decision in between: the surrogate
    gradient there is the exact gradient, so central differences must agree
    (step 1e-6 in float64: truncation error ~1e-12 relative, rounding ~1e-10)."""
    x, y = data
    net = small_net()
    loss_fn = training.yin_yang_loss(SOLVER)
    batch = (jnp.asarray(x[:12]), jnp.asarray(y[:12]))
    filt = training.ParameterFilter(nodes=("fc2", "readout"), time_constants=True)
    params = training.init_params(net, filt)

    def f(p):
        return loss_fn(training.apply_params(net, p), batch)[0]

    grads = jax.grad(f)(params)
    flat, unravel = ravel_pytree(params)
    gflat = ravel_pytree(grads)[0]
    rng = np.random.default_rng(0)
    for k in rng.choice(flat.size, 6, replace=False):
        e = np.zeros(flat.size)
        e[k] = 1e-6
        fd = (f(unravel(flat + e)) - f(unravel(flat - e))) / 2e-6
        np.testing.assert_allclose(gflat[k], fd, rtol=1e-5, atol=1e-9)


def test_surrogate_gradients_of_hidden_weights_are_finite_and_nonzero(data):
    x, y = data
    net = small_net()
    trainer = training.Trainer(net, training.yin_yang_loss(SOLVER), optax.sgd(0.0))
    params = trainer.init().params
    grads = jax.grad(lambda p: trainer.loss(p, (jnp.asarray(x), jnp.asarray(y)))[0])(params)
    g1 = np.asarray(grads["fc1"]["weight"])
    assert np.all(np.isfinite(g1)) and np.any(g1 != 0)


# ------------------------------------------------------------------ training
def test_short_training_lowers_the_loss(data):
    x, y = data
    traces = []
    inner = training.yin_yang_loss()

    def loss_fn(net, batch):
        traces.append(1)  # runs once per compilation, not per step
        return inner(net, batch)

    trainer = training.Trainer(small_net(hidden=24), loss_fn, optax.adam(2e-2))
    full = (jnp.asarray(x), jnp.asarray(y))
    state = trainer.init()
    before = float(trainer.evaluate(state, full)["loss"])
    result = training.fit(trainer, (x, y), epochs=4, batch_size=16, progress=False)
    after = float(trainer.evaluate(result.state, full)["loss"])
    assert int(result.state.step) == 12 and len(result.history) == 4
    assert after < 0.9 * before, (before, after)
    assert len(traces) == 2  # one compilation of the step, one of evaluate


def test_resumed_run_continues_exactly(data, tmp_path):
    x, y = data
    trainer = training.Trainer(
        small_net(),
        training.yin_yang_loss(),
        optax.adam(1e-2),
        training.ParameterFilter(time_constants=True),
    )
    kw = dict(epochs=2, batch_size=12, seed=3, progress=False)
    whole = training.fit(trainer, (x, y), **kw)
    ckpt = tmp_path / "ckpt"
    part = training.fit(trainer, (x, y), checkpoint_dir=str(ckpt), max_steps=5, **kw)
    assert int(part.state.step) == 5
    assert training.latest_checkpoint(ckpt).endswith("step-00000005")
    resumed = training.fit(trainer, (x, y), checkpoint_dir=str(ckpt), **kw)
    assert int(resumed.state.step) == int(whole.state.step) == 8
    for a, b in zip(
        jax.tree.leaves(resumed.state), jax.tree.leaves(whole.state), strict=True
    ):
        np.testing.assert_array_equal(a, b)  # bit for bit
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    # the checkpoint's graph is the trained network, readable by nir and nirsim
    state, net, meta = training.load_checkpoint(ckpt, trainer.init())
    assert meta["step"] == 8
    np.testing.assert_allclose(
        net.nodes["hidden"].tau, resumed.network.nodes["hidden"].tau, rtol=0
    )
    assert isinstance(nir.read(str(ckpt / "step-00000008" / "network.nir")), nir.NIRGraph)


def test_checkpoint_refuses_a_different_trainer(data, tmp_path):
    x, y = data
    trainer = training.Trainer(small_net(), training.yin_yang_loss(), optax.sgd(1e-2))
    kw = dict(epochs=1, batch_size=48, progress=False)
    training.fit(trainer, (x, y), checkpoint_dir=str(tmp_path), **kw)
    other = training.Trainer(small_net(), training.yin_yang_loss(), optax.adam(1e-2))
    with pytest.raises(nirsim.InputError, match="does not match"):
        training.load_checkpoint(tmp_path, other.init())


# -------------------------------------------------------------------- export
def test_trained_network_exports_and_simulates_to_the_same_spikes(data, tmp_path):
    x, y = data
    trainer = training.Trainer(
        small_net(hidden=8),
        training.yin_yang_loss(),
        optax.adam(5e-2),
        training.ParameterFilter(time_constants=True, thresholds=True),
    )
    result = training.fit(trainer, (x, y), epochs=1, batch_size=16, progress=False)
    trained = result.network
    assert not np.array_equal(trained.nodes["fc1"].weight, small_net(8).nodes["fc1"].weight)
    path = tmp_path / "trained.nir"
    nir.write(str(path), trained.to_nir())
    spikes = training.yin_yang_spikes(jnp.asarray(x[:6]))
    for back in (nirsim.load(str(path)), nirsim.load(nir.read(str(path)))):
        for solver, kw in (("exponential", {"dt": DT}), (None, {})):
            a = nirsim.simulate(trained, spikes, t_end=T_END, solver=solver, **kw)
            b = nirsim.simulate(back, spikes, t_end=T_END, solver=solver, **kw)
            if solver is None:  # exact times, identical arithmetic
                ta, tb = a.spikes["hidden"].times, b.spikes["hidden"].times
                np.testing.assert_array_equal(ta, tb)
            np.testing.assert_array_equal(
                a.spike_counts("hidden"), b.spike_counts("hidden")
            )
            assert int(np.sum(a.spike_counts("hidden"))) > 0


def test_chip_form_keeps_the_behaviour_and_fits_loihi(data):
    """``yin_yang_chip_form``: ``r = dt`` with every ``r W`` kept, the LI readout as a
    LIF that never fires. On the exponential rule the hidden spikes are the same and
    the readout's membrane agrees to rounding (``r W`` is recomputed as ``(W r/dt) dt``,
    a few ulps); Loihi 2 refuses the original graph (LI) and holds the rewritten one."""
    from nirsim.hardware_models import Loihi2
    from nirsim.primitives import LIF

    x, _ = data
    net = small_net()
    chip = training.yin_yang_chip_form(net)
    assert all(isinstance(chip.nodes[n], LIF) for n in ("hidden", "readout"))
    np.testing.assert_allclose(chip.nodes["hidden"].r, DT)
    spikes = training.yin_yang_spikes(jnp.asarray(x[:8]))
    a = nirsim.simulate(net, spikes, t_end=T_END, save_dt=DT, solver=SOLVER)
    b = nirsim.simulate(chip, spikes, t_end=T_END, save_dt=DT, solver=SOLVER)
    np.testing.assert_array_equal(a.spike_counts("hidden"), b.spike_counts("hidden"))
    assert int(np.sum(b.spike_counts("readout"))) == 0
    va, vb = a.states["readout"]["v"], b.states["readout"]["v"]
    np.testing.assert_allclose(vb, va, rtol=1e-12, atol=1e-12)
    with pytest.raises(nirsim.GraphError, match="'readout' \\(LI\\)"):
        Loihi2(dt=DT).check(net)
    Loihi2(dt=DT).check(chip)


def test_chip_form_of_the_cuba_network_keeps_the_exact_behaviour():
    """The exact-gradient network (CubaLIF hidden layer, CubaLI readout): every
    CubaLIF gets ``r = tau_mem / dt`` with every ``r W`` kept, the readout becomes a
    CubaLIF that never fires. The ideal solver gives the same hidden spikes and the
    readout's membrane to rounding; Loihi 2 and Xylo refuse the original (CubaLI)
    and hold the rewritten graph."""
    from nirsim.hardware_models import Loihi2, Xylo
    from nirsim.primitives import CubaLIF

    net = training.yin_yang_network(12, seed=3, synapses=True)
    chip = training.yin_yang_chip_form(net)
    assert all(isinstance(chip.nodes[n], CubaLIF) for n in ("hidden", "readout"))
    np.testing.assert_allclose(chip.nodes["hidden"].r, 10e-3 / DT)
    np.testing.assert_allclose(
        chip.nodes["fc1"].weight, net.nodes["fc1"].weight * 4 / 10, rtol=1e-15
    )
    x, _ = training.yin_yang("test", size=6, seed=2)
    spikes = training.yin_yang_spikes(jnp.asarray(x))
    a = nirsim.simulate(net, spikes, t_end=T_END, save_dt=DT)
    b = nirsim.simulate(chip, spikes, t_end=T_END, save_dt=DT)
    np.testing.assert_array_equal(a.spike_counts("hidden"), b.spike_counts("hidden"))
    assert int(np.sum(a.spike_counts("hidden"))) > 0
    assert int(np.sum(b.spike_counts("readout"))) == 0
    va, vb = a.states["readout"]["v"], b.states["readout"]["v"]
    np.testing.assert_allclose(vb, va, rtol=1e-12, atol=1e-12)
    for model in (Loihi2(dt=DT), Xylo(dt=DT)):
        with pytest.raises(nirsim.GraphError, match="'readout' \\(CubaLI\\)"):
            model.check(net)
        model.check(chip)


def test_chip_form_refuses_a_neuron_fed_by_an_affine():
    net = small_net().to_nir()
    w = net.nodes["fc1"].weight
    net.nodes["fc1"] = nir.Affine(weight=w, bias=np.ones(w.shape[0]))
    with pytest.raises(nirsim.InputError, match="'hidden' \\(LIF\\) is fed by 'fc1'"):
        training.yin_yang_chip_form(nirsim.load(net))


def test_count_and_membrane_readouts_agree_with_the_trace():
    net = lif_net()
    current = nirsim.Current(np.full((2, 100, 1), 0.5), dt=1e-4)  # a batch of 2
    tr = nirsim.simulate(net, current, t_end=0.01, save_dt=1e-4, solver="euler", dt=1e-4)
    counts = training.spike_counts(tr, "lif")
    assert counts.shape == (2, 1) and float(counts[0, 0]) > 1
    np.testing.assert_array_equal(counts, tr.spike_counts("lif"))
    v = np.asarray(tr.states["lif"]["v"])
    np.testing.assert_array_equal(training.max_membrane(tr, "lif"), v.max(axis=1))
    np.testing.assert_allclose(training.mean_membrane(tr, "lif"), v.mean(axis=1))
    ideal = nirsim.simulate(net, current, t_end=0.01, save_dt=1e-4)
    # an exact trace: event counts (Euler's differ: it is not the exact model)
    np.testing.assert_array_equal(
        training.spike_counts(ideal, "lif"), ideal.spike_counts("lif")
    )


def test_thresholds_at_the_reset_cannot_be_log_parameterised():
    filt = training.ParameterFilter(weights=False, thresholds=True)
    with pytest.raises(nirsim.InputError, match="v_threshold <= v_reset"):
        training.init_params(lif_net(thr=0.0), filt)


def test_exact_gradient_loss_runs_inside_jit_on_traced_inputs():
    """Exact-gradient training encodes the inputs inside the jitted step, so the
    ideal path gets traced (unsorted) spike times: it sorts them on the device, and
    gives the loss, metrics and spikes of the same batch passed in from the host."""
    import equinox as eqx

    net = training.yin_yang_network(6, seed=1, synapses=True)
    loss = training.yin_yang_loss(nirsim.solvers.Ideal(), max_spikes=64, max_events=600)
    x, y = training.yin_yang("test", size=4, seed=3)
    host = loss(net, (x, y))
    traced_loss, traced_metrics = eqx.filter_jit(loss)(net, (jnp.asarray(x), y))
    np.testing.assert_allclose(traced_loss, host[0], rtol=1e-12)
    np.testing.assert_allclose(traced_metrics["rate"], host[1]["rate"], rtol=1e-12)
    assert float(host[1]["rate"]) > 0  # hidden neurons fire: the times matter
    # the silence penalty adds to the cross-entropy, which is still reported
    reg = training.yin_yang_loss(
        nirsim.solvers.Ideal(), silence=2.0, max_spikes=64, max_events=600
    )
    total, metrics = reg(net, (x, y))
    np.testing.assert_allclose(metrics["cross_entropy"], host[0], rtol=1e-12)
    trace = nirsim.simulate(
        net, training.yin_yang_spikes(x), t_end=T_END, save_dt=DT, max_spikes=64,
        max_events=600,
    )  # fmt: skip
    penalty = training.silence_penalty(trace, "hidden", 1.0)
    np.testing.assert_allclose(total, host[0] + 2.0 * penalty, rtol=1e-12)
    grads = eqx.filter_jit(eqx.filter_grad(lambda n: loss(n, (jnp.asarray(x), y))[0]))(net)
    w = np.asarray(grads.nodes["fc1"].weight)
    assert np.all(np.isfinite(w)) and np.any(w != 0)


def test_exact_yin_yang_loss_is_smooth_in_the_hidden_weights():
    """The exact-gradient Yin-Yang network reads a CubaLI readout, whose membrane is
    continuous in every hidden spike time: between changes of the spike counts the
    loss is smooth in ``fc1``, and a central difference over a step that moves many
    spike times matches the exact gradient. (Behind an LI readout the sampled
    membrane jumps by ``w`` whenever a hidden spike crosses a sample time; the
    gradient sees none of these jumps, and this check fails.)"""
    import equinox as eqx

    net = training.yin_yang_network(12, seed=2, synapses=True)
    assert net.nodes["readout"].nir_type == "CubaLI"
    solver = nirsim.solvers.Ideal()
    loss = training.yin_yang_loss(solver, max_spikes=64, max_events=600)
    x, y = training.yin_yang("test", size=6, seed=5)
    batch = (jnp.asarray(x), jnp.asarray(y))

    def with_w(w):
        return eqx.tree_at(lambda n: n.nodes["fc1"].weight, net, w)

    @jax.jit
    def f(w):
        return loss(with_w(w), batch)[0]

    @jax.jit
    def counts(w):
        trace = nirsim.simulate(
            with_w(w), training.yin_yang_spikes(batch[0]), t_end=T_END, solver=solver,
            max_spikes=64, max_events=600,
        )  # fmt: skip
        return trace.spikes["hidden"].count()

    w0 = net.nodes["fc1"].weight
    d = jax.random.normal(jax.random.PRNGKey(0), w0.shape)
    d = d / jnp.max(jnp.abs(d))
    slope = float(jnp.sum(jax.grad(f)(w0) * d))
    eta = 3e-3
    assert np.array_equal(counts(w0 + eta * d), counts(w0))
    assert np.array_equal(counts(w0 - eta * d), counts(w0))
    assert int(jnp.sum(counts(w0))) > 20  # many spikes, each moved by the step
    central = float(f(w0 + eta * d) - f(w0 - eta * d)) / (2 * eta)
    np.testing.assert_allclose(central, slope, rtol=1e-2)


def test_silence_penalty_is_the_threshold_gap_of_rarely_firing_neurons():
    """Three LIF neurons (tau 2.5 ms, r 1, threshold 1) on constant drives: neuron 0
    rests at v_inf = 0.5 (silent on every sample), neuron 1 at 3 (fires on every
    sample), neuron 2 at the sample's input, 3 on the first of four samples and 0.5
    on the others. Below threshold ``v(t) = v_inf (1 - exp(-t / tau))`` rises to its
    last sample, so each silent sample's gap is ``1 - 0.5 (1 - exp(-t_last/tau))``."""
    graph = nir.NIRGraph.from_list(
        nir.Affine(weight=np.array([[0.0], [0.0], [1.0]]), bias=np.array([0.5, 3, 0])),
        nir.LIF(
            tau=np.full(3, 2.5e-3),
            r=np.ones(3),
            v_leak=np.zeros(3),
            v_threshold=np.ones(3),
            v_reset=np.zeros(3),
        ),
    )
    net = nirsim.load(graph)
    drive = np.broadcast_to(np.array([3.0, 0.5, 0.5, 0.5])[:, None, None], (4, 100, 1))
    current = nirsim.Current(np.ascontiguousarray(drive), dt=1e-4)

    def penalty(net, min_fraction):
        trace = nirsim.simulate(net, current, t_end=0.01, save_dt=1e-4)
        counts = np.asarray(trace.spike_counts("lif"))
        assert (counts[:, 0] == 0).all() and (counts[:, 1] > 0).all()
        assert (counts[0, 2] > 0) and (counts[1:, 2] == 0).all()
        p = training.silence_penalty(trace, "lif", 1.0, min_fraction=min_fraction)
        return p, float(trace.ts[-1])

    p, t_last = penalty(net, 0.2)
    rise = 1 - math.exp(-t_last / 2.5e-3)
    gap = 1 - 0.5 * rise
    np.testing.assert_allclose(p, gap / 3, rtol=1e-12)  # neuron 2 fires on 1/4 > 0.2
    np.testing.assert_allclose(penalty(net, 0.5)[0], 2 * gap / 3, rtol=1e-12)
    g = jax.grad(lambda n: penalty(n, 0.2)[0])(net).nodes["affine"]
    # d gap / d bias_0 = -r (1 - exp(-t_last / tau)), and through weight_0 times the
    # drive, whose mean over the four samples is 1.125; firing neurons get nothing
    np.testing.assert_allclose(g.bias, [-rise / 3, 0.0, 0.0], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(
        g.weight[:, 0], [-1.125 * rise / 3, 0.0, 0.0], rtol=1e-9, atol=1e-15
    )
    with pytest.raises(nirsim.InputError, match="batched"):
        trace = nirsim.simulate(net, nirsim.Current(drive[0], dt=1e-4), t_end=0.01,
                                save_dt=1e-4)  # fmt: skip
        training.silence_penalty(trace, "lif", 1.0)
