"""Fixed-step solvers: convergence to closed forms, the rules, the contract.

Oracles: closed-form solutions of the LIF and CubaLIF ODEs written here (not nirsim's
propagators), and step sequences derived by hand from the documented rules.
"""

import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest

import nirsim
from nirsim import Current, Spikes
from nirsim.solvers import (
    BySubtraction,
    Discrete,
    Exceeds,
    ExponentialIntegrator,
    GridAsImpulses,
    NeuronRule,
    ToZero,
    euler,
    exponential,
)

T = 0.04
DRIVE = np.array([1.0, -0.5, 2.0, 0.7])  # held over T/4 each
LIF_P = dict(tau=0.02, r=1.3, v_leak=0.1, w=1.5, b=0.2)
CUBA_P = dict(tau_syn=0.005, tau_mem=0.02, r=2.0, v_leak=-0.1, w_in=1.7, w=0.8)


def _a(x):
    return np.array([x], dtype=float)


def _two_neuron_graph():
    """Input -> Affine -> LIF and Input -> Affine -> CubaLIF, thresholds out of reach."""
    p, q = LIF_P, CUBA_P
    nodes = {
        "input": nir.Input(np.array([1])),
        "fa": nir.Affine(np.array([[p["w"]]]), _a(p["b"])),
        "lif": nir.LIF(
            tau=_a(p["tau"]),
            r=_a(p["r"]),
            v_leak=_a(p["v_leak"]),
            v_threshold=_a(100.0),
            v_reset=_a(0.0),
        ),
        "fb": nir.Linear(np.array([[q["w"]]])),
        "cuba": nir.CubaLIF(
            tau_syn=_a(q["tau_syn"]),
            tau_mem=_a(q["tau_mem"]),
            r=_a(q["r"]),
            v_leak=_a(q["v_leak"]),
            v_threshold=_a(100.0),
            v_reset=_a(0.0),
            w_in=_a(q["w_in"]),
        ),
        "out1": nir.Output(np.array([1])),
        "out2": nir.Output(np.array([1])),
    }
    edges = [
        ("input", "fa"),
        ("fa", "lif"),
        ("lif", "out1"),
        ("input", "fb"),
        ("fb", "cuba"),
        ("cuba", "out2"),
    ]
    return nirsim.load(nir.NIRGraph(nodes=nodes, edges=edges))


def _exact_at_T():
    """Closed forms, piece by piece (drive constant on each quarter of T)."""
    p, q = LIF_P, CUBA_P
    h = T / 4
    v = p["v_leak"]  # LIF starts at rest
    i, u = 0.0, q["v_leak"]  # CubaLIF: i = 0, v = v_leak
    a, b = 1 / q["tau_syn"], 1 / q["tau_mem"]
    for x in DRIVE:
        v_inf = p["v_leak"] + p["r"] * (p["w"] * x + p["b"])
        v = v_inf + (v - v_inf) * np.exp(-h / p["tau"])
        i_inf = q["w_in"] * q["w"] * x
        u_inf = q["v_leak"] + q["r"] * i_inf
        d = i - i_inf
        c = b * q["r"] * d / (b - a)
        u = u_inf + (u - u_inf) * np.exp(-b * h) + c * (np.exp(-a * h) - np.exp(-b * h))
        i = i_inf + d * np.exp(-a * h)
    return v, i, u


def _run(net, solver, t_end=T, save_at=(T,), **kw):
    x = Current(DRIVE[:, None], T / 4)
    return nirsim.simulate(net, x, t_end=t_end, save_at=save_at, solver=solver, **kw)


def test_euler_converges_with_order_one():
    net = _two_neuron_graph()
    v_ex, i_ex, u_ex = _exact_at_T()
    dts, errs = [], []
    for m in (4, 8, 16, 32, 64):
        dt = T / 4 / m
        tr = _run(net, euler(dt))
        errs.append(
            [
                abs(float(tr.states["lif"]["v"][-1, 0]) - v_ex),
                abs(float(tr.states["cuba"]["i_syn"][-1, 0]) - i_ex),
                abs(float(tr.states["cuba"]["v"][-1, 0]) - u_ex),
            ]
        )
        dts.append(dt)
    errs = np.array(errs)
    for k in range(3):
        slope = np.polyfit(np.log(dts), np.log(errs[:, k]), 1)[0]
        # Forward Euler is first order; 0.1 leaves room for the O(dt^2) term at
        # the coarsest step.
        assert abs(slope - 1.0) < 0.1, (k, slope, errs[:, k])


def test_exponential_is_exact_for_piecewise_constant_input():
    net = _two_neuron_graph()
    v_ex, i_ex, u_ex = _exact_at_T()
    for m in (1, 5):
        tr = _run(net, exponential(T / 4 / m))
        # Exact propagation: only round-off (values are O(1), a few dozen steps).
        assert abs(float(tr.states["lif"]["v"][-1, 0]) - v_ex) < 1e-13
        assert abs(float(tr.states["cuba"]["i_syn"][-1, 0]) - i_ex) < 1e-13
        assert abs(float(tr.states["cuba"]["v"][-1, 0]) - u_ex) < 1e-13


def test_euler_spike_time_converges_with_order_one():
    # LIF from rest under a constant drive: v(t) = 1 - exp(-t/tau), first spike
    # at t* = tau ln 2 (threshold 0.5). Euler's state after k steps is
    # 1 - (1 - dt/tau)^k, which reaches 0.5 at k_E = ln(1/2)/ln(1 - dt/tau); with
    # dt chosen so that k_E = m + 1/2 the spike is decided in step m, stamped m dt
    # (no stamping jitter), and m dt - t* = O(dt).
    tau = 0.01
    nodes = {
        "input": nir.Input(np.array([1])),
        "lif": nir.LIF(
            tau=_a(tau), r=_a(1.0), v_leak=_a(0.0), v_threshold=_a(0.5), v_reset=_a(0.0)
        ),
        "output": nir.Output(np.array([1])),
    }
    net = nirsim.load(
        nir.NIRGraph(nodes=nodes, edges=[("input", "lif"), ("lif", "output")])
    )
    t_star = tau * np.log(2.0)
    dts, errs = [], []
    for m in (8, 16, 32, 64, 128):
        dt = tau * (1 - np.exp(np.log(0.5) / (m + 0.5)))
        t_end = 1.2 * t_star
        x = Current(np.ones((1, 1)), t_end)
        tr = nirsim.simulate(net, x, t_end=t_end, solver=euler(dt))
        first = float(tr.spikes["lif"].times[0])
        assert first == pytest.approx(m * dt, rel=1e-12)
        dts.append(dt)
        errs.append(abs(first - t_star))
    slope = np.polyfit(np.log(dts), np.log(errs), 1)[0]
    assert abs(slope - 1.0) < 0.1, (slope, errs)


def _chain(first, second, w2=1.0):
    nodes = {
        "input": nir.Input(np.array([1])),
        "n1": first,
        "w": nir.Linear(np.array([[w2]])),
        "n2": second,
        "output": nir.Output(np.array([1])),
    }
    edges = [("input", "n1"), ("n1", "w"), ("w", "n2"), ("n2", "output")]
    return nirsim.load(nir.NIRGraph(nodes=nodes, edges=edges))


def _if(th, r=1.0):
    return nir.IF(r=_a(r), v_threshold=_a(th), v_reset=_a(0.0))


def test_rules_next_step_delivery_strict_test_and_zero_reset():
    # IF -> IF with unit weight, input spikes of area 1 (IF jump r*a). Hand rule:
    # layer 1 v += x; z1 = v > 1; v <- 0; layer 2 sees z1 one step later.
    dt = 1e-3
    net = _chain(_if(1.0), _if(1.5))
    solver = Discrete(
        dt, neuron_rule=NeuronRule(test=Exceeds(), reset=ToZero()), late_spikes=True
    )
    x_steps = np.array([1.0, 1.0, 0.5, 0.6, 2.0, 0.0, 0.0, 3.0, 0.0, 0.0])
    n = len(x_steps)
    t, i = np.nonzero(x_steps[:, None])
    x = Spikes(t * dt, i, x_steps[t])
    tr = nirsim.simulate(net, x, t_end=n * dt, save_dt=dt, solver=solver, spike_area=1.0)
    v1 = v2 = 0.0
    z1_prev = 0.0
    exp_v1, exp_v2, s1, s2 = [], [], [], []
    for k in range(n):
        v1 += x_steps[k]
        z1 = float(v1 > 1.0)
        v1 = 0.0 if z1 else v1
        v2 += z1_prev  # spike of area 1, weight 1, r = 1
        z2 = float(v2 > 1.5)
        v2 = 0.0 if z2 else v2
        z1_prev = z1
        exp_v1.append(v1)
        exp_v2.append(v2)
        s1 += [k] * int(z1)
        s2 += [k] * int(z2)
    np.testing.assert_allclose(np.asarray(tr.states["n1"]["v"])[:, 0], exp_v1, atol=1e-12)
    np.testing.assert_allclose(np.asarray(tr.states["n2"]["v"])[:, 0], exp_v2, atol=1e-12)
    got1 = np.asarray(tr.spikes["n1"].times)
    got2 = np.asarray(tr.spikes["n2"].times)
    np.testing.assert_allclose(got1[np.isfinite(got1)], np.array(s1) * dt)
    np.testing.assert_allclose(got2[np.isfinite(got2)], np.array(s2) * dt)
    assert s1 and s2  # the sequence exercises both layers


def test_rules_multi_spike_subtract_and_next_step_reset():
    # One IF, several spikes per step (cap 3), reset by subtraction applied at the
    # start of the next step (the recorded v stays above threshold for a step).
    dt = 1e-3
    nodes = {
        "input": nir.Input(np.array([1])),
        "n": _if(1.0),
        "output": nir.Output(np.array([1])),
    }
    net = nirsim.load(nir.NIRGraph(nodes=nodes, edges=[("input", "n"), ("n", "output")]))
    rule = NeuronRule(max_spikes_per_step=3, reset=BySubtraction(), reset_next_step=True)
    solver = Discrete(dt, neuron_rule=rule, grid_reading=GridAsImpulses())
    x_steps = np.array([2.5, 0.2, 4.7, 0.0, 0.9, 0.1])
    tr = nirsim.simulate(
        net,
        Current(x_steps[:, None], dt),
        t_end=len(x_steps) * dt,
        save_dt=dt,
        solver=solver,
    )
    v, pending = 0.0, 0
    exp_v, exp_t, exp_n = [], [], []
    for k, x in enumerate(x_steps):
        v -= pending * 1.0  # the reset of the previous step's spikes
        v += x  # grid read as impulses of area x (IF jump r*a)
        n = min(3, int(np.floor(v - 1.0)) + 1) if v >= 1.0 else 0
        pending = n
        exp_v.append(v)
        exp_t += [k * dt] * n
        exp_n.append(n)
    np.testing.assert_allclose(np.asarray(tr.states["n"]["v"])[:, 0], exp_v, atol=1e-12)
    got = np.asarray(tr.spikes["n"].times)
    np.testing.assert_allclose(got[np.isfinite(got)], exp_t)
    counts = np.asarray(tr.states["n"]["spike_count"])[:, 0]
    np.testing.assert_allclose(counts, exp_n)
    assert max(exp_n) == 3 and exp_n[3] == 2  # the cap binds; the rest fires next step


def test_delay_rounds_to_steps_and_threshold_fires_on_upward_crossing():
    # Input current -> Threshold (crossing detector) and -> Delay(2.4 dt) -> LI.
    dt = 1e-3
    th = 0.5
    nodes = {
        "input": nir.Input(np.array([1])),
        "thr": nir.Threshold(_a(th)),
        "d": nir.Delay(_a(2.4 * dt)),
        "li": nir.I(r=_a(1.0)),
        "o1": nir.Output(np.array([1])),
        "o2": nir.Output(np.array([1])),
    }
    edges = [
        ("input", "thr"),
        ("thr", "o1"),
        ("input", "d"),
        ("d", "li"),
        ("li", "o2"),
    ]
    net = nirsim.load(nir.NIRGraph(nodes=nodes, edges=edges))
    x = np.array([0.0, 0.6, 0.7, 0.2, 0.9, 0.9, 0.1, 0.0])
    tr = nirsim.simulate(
        net, Current(x[:, None], dt), t_end=len(x) * dt, save_dt=dt, solver=euler(dt)
    )
    # Upward crossings (x >= 0.5 now, not in the step before): steps 1 and 4.
    got = np.asarray(tr.spikes["thr"].times)
    np.testing.assert_allclose(got[np.isfinite(got)], [1 * dt, 4 * dt])
    # Integrator of the input delayed by round(2.4) = 2 steps (Euler: v += dt x).
    delayed = np.concatenate([[0.0, 0.0], x[:-2]])
    np.testing.assert_allclose(
        np.asarray(tr.states["li"]["v"])[:, 0], np.cumsum(dt * delayed), atol=1e-15
    )


def test_sample_times_must_lie_on_the_grid():
    net = _two_neuron_graph()
    with pytest.raises(nirsim.InputError, match="step grid"):
        _run(net, euler(T / 7), save_at=(T / 2,))
    with pytest.raises(nirsim.InputError, match="dt must be finite"):
        Discrete(0.0)
    with pytest.raises(nirsim.InputError, match="max_spikes_per_step"):
        NeuronRule(max_spikes_per_step=0)


def test_named_solver_needs_dt_and_every_spike_is_kept_without_a_buffer():
    # Two IF layers of threshold 0.01 driven by v += 0.1 per step: the first fires
    # every step (one spike per step), the second too (its input is a spike of area
    # dt = 1e-3 per step, r = 1, weight 1 -> v += 1e-3... so count it by hand).
    net = _chain(_if(0.01), _if(0.01))
    x = Current(np.full((20, 1), 100.0), 1e-3)  # Euler: v += 0.1 per step
    with pytest.raises(nirsim.InputError, match="give its step dt"):
        nirsim.simulate(net, x, t_end=0.02, solver="euler")
    tr = nirsim.simulate(net, x, t_end=0.02, solver="euler", dt=1e-3)
    v2, n2 = 0.0, 0
    for _ in range(20):
        v2 += 1.0  # one spike of area 1 (spike_area) per step into IF r = 1
        if v2 >= 0.01:
            n2 += 1
            v2 = 0.0
    assert int(tr.spikes["n1"].count()) == 20
    assert int(tr.spikes["n2"].count()) == n2 == 20
    assert int(tr.result) == 0
    assert tr.dt == 1e-3 and tr.backend == "euler"


_COMPILES = []
_LISTENING = []


def _count_traces(name, duration, **kwargs):
    if name == "/jax/core/compile/jaxpr_trace_duration":
        _COMPILES.append(name)


def test_no_recompilation_on_second_call():
    if not _LISTENING:
        jax.monitoring.register_event_duration_secs_listener(_count_traces)
        _LISTENING.append(True)
    net = _two_neuron_graph()
    rng = np.random.default_rng(1)
    x1 = Current(rng.normal(size=(3, 8, 1)), T / 8)
    x2 = Current(rng.normal(size=(3, 8, 1)), T / 8)
    kw = dict(t_end=T, save_dt=T / 8, solver="euler", dt=T / 16)
    first = nirsim.simulate(net, x1, **kw)
    _COMPILES.clear()
    second = nirsim.simulate(net, x2, **kw)
    assert _COMPILES == []
    assert not np.allclose(first.states["lif"]["v"], second.states["lif"]["v"])


def test_batch_matches_single_samples():
    net = _two_neuron_graph()
    rng = np.random.default_rng(2)
    xb = rng.normal(size=(2, 8, 1))
    kw = dict(t_end=T, save_dt=T / 8, solver="exponential", dt=T / 16)
    tb = nirsim.simulate(net, Current(xb, T / 8), **kw)
    for k in range(2):
        ts = nirsim.simulate(net, Current(xb[k], T / 8), **kw)
        # Same arithmetic; XLA may fuse the batched and single programs differently.
        np.testing.assert_allclose(
            tb.states["cuba"]["v"][k], ts.states["cuba"]["v"], rtol=1e-13, atol=1e-15
        )
    assert jnp.asarray(tb.states["cuba"]["v"]).shape == (2, 8, 1)


@pytest.mark.parametrize("input_at", ["end", "start"])
def test_exponential_impulses_jump_at_the_chosen_end_of_the_step(input_at):
    # LI with leak: between impulses v relaxes exactly to v_leak; an input event of
    # area a makes v jump by r a / tau, at the end of its step or at its start (then
    # it decays through the step).
    dt, tau, r, v_leak = 1e-3, 4e-3, 2.0, 0.2
    nodes = {
        "input": nir.Input(np.array([1])),
        "li": nir.LI(tau=_a(tau), r=_a(r), v_leak=_a(v_leak)),
        "output": nir.Output(np.array([1])),
    }
    net = nirsim.load(nir.NIRGraph(nodes=nodes, edges=[("input", "li"), ("li", "output")]))
    areas = np.array([0.0, 3e-3, 0.0, 0.0, 1e-3, 2e-3, 0.0])
    # Events inside their step (not on its start): the step they fall in is used.
    t = (np.flatnonzero(areas) + 0.3) * dt
    x = Spikes(t, np.zeros(len(t), int), areas[areas > 0])
    rule = NeuronRule(
        integrator=ExponentialIntegrator(), input_at_start=(input_at == "start")
    )
    tr = nirsim.simulate(
        net,
        x,
        t_end=len(areas) * dt,
        save_dt=dt,
        solver=Discrete(dt, neuron_rule=rule),
        spike_area=1.0,
    )
    e = np.exp(-dt / tau)
    v, expected = v_leak, []
    for a in areas:
        jump = r * a / tau
        if input_at == "start":
            v = v_leak + (v + jump - v_leak) * e
        else:
            v = v_leak + (v - v_leak) * e + jump
        expected.append(v)
    np.testing.assert_allclose(np.asarray(tr.states["li"]["v"])[:, 0], expected, rtol=1e-13)


@pytest.mark.parametrize("kind", ["bool", "counts"])
def test_raster_views_match_a_numpy_listing(kind):
    # The event views of a raster equal a plain numpy listing: step-major,
    # neuron-minor, a count of k repeated k times, then padding; per-neuron trains,
    # counts and NIR EventData agree with it.
    rng = np.random.default_rng(3)
    if kind == "bool":
        raster = rng.random((2, 7, 5)) < 0.3
    else:
        raster = (rng.integers(0, 3, (2, 7, 5)) * (rng.random((2, 7, 5)) < 0.4)).astype(
            np.int8
        )
    dt = 1e-3
    s = nirsim.SpikeRaster(jnp.asarray(raster), dt=dt, shape=(5,), t_max=7 * dt)
    assert s.batch_shape == (2,)
    for b in range(2):
        steps, neurons = np.nonzero(raster[b])
        reps = raster[b][steps, neurons].astype(int)
        want_t = np.repeat(steps * dt, reps)
        want_i = np.repeat(neurons, reps)
        k = len(want_t)
        np.testing.assert_allclose(s.times[b][:k], want_t, rtol=0, atol=0)
        np.testing.assert_array_equal(s.indices[b][:k], want_i)
        assert np.all(np.isinf(s.times[b][k:])) and np.all(s.indices[b][k:] == -1)
        assert int(s.count()[b]) == k
        np.testing.assert_array_equal(
            s.counts_per_neuron()[b], np.bincount(want_i, minlength=5)
        )
        for j, train in enumerate(s.trains()[b]):
            np.testing.assert_allclose(train, want_t[want_i == j], rtol=0, atol=0)
    ev = s.to_nir()
    assert isinstance(ev, nir.EventData) and ev.n_neurons == 5
    np.testing.assert_array_equal(np.asarray(ev.idx), s.indices)
    # no spike at all, unbatched: one sample with no event (found by the fuzz suite)
    empty = nirsim.SpikeRaster(jnp.zeros((7, 5), bool), dt=dt, shape=(5,), t_max=7 * dt)
    assert np.asarray(empty.to_nir().time).shape == (1, 0)
    assert int(empty.count()) == 0 and empty.trains()[0].size == 0
