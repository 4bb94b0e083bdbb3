"""The exact engine's execution model: one flat loop per program (no nested loops
per event), batches run without lockstep and equal their samples run one by one
(their gradients: tests/test_ideal_gradients.py), no recompilation on a second
call, and the closed-form engine against the independent diffrax path on a graph
with every kind of event (impulse inputs, recurrent CubaLIF, LIF and IF neurons, a
spike Delay, several inputs and outputs).

Oracles: the per-sample runs (batching must not change a sample's arithmetic beyond
rounding, 1e-12 relative), the diffrax path (rtol 1e-10; its event root by Newton to
1e-11, so spike times agree to 1e-9 relative), the program text (counted loops).
"""

import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest

import nirsim

T_END = 0.03  # s
BINS = 60
DT_IN = T_END / BINS  # s: one input bin
AREA = 1e-3  # spike area (s)


def graph(n_in=4, n_h=6, n_o=3, seed=0):
    """in(4) -> CubaLIF(6, recurrent) -> LIF(3) -> out, and a second path
    in2(2) -> Delay(2 ms) -> IF(2) -> out2."""
    rng = np.random.default_rng(seed)
    full = lambda n, x: np.full(n, float(x))
    nodes = {
        "in": nir.Input(np.array([n_in])),
        "w1": nir.Linear(rng.uniform(0.0, 6.0, (n_h, n_in))),
        "hid": nir.CubaLIF(
            tau_syn=full(n_h, 3e-3),
            tau_mem=full(n_h, 6e-3),
            r=full(n_h, 1.0),
            v_leak=full(n_h, 0.0),
            v_threshold=full(n_h, 1.0),
            v_reset=full(n_h, 0.0),
            w_in=full(n_h, 1.0),
        ),
        "rec": nir.Linear(rng.normal(0.0, 1.0, (n_h, n_h)) * (1 - np.eye(n_h))),
        "w2": nir.Linear(rng.uniform(0.0, 4.0, (n_o, n_h))),
        "lif": nir.LIF(
            tau=full(n_o, 5e-3),
            r=full(n_o, 1.0),
            v_leak=full(n_o, 0.0),
            v_threshold=full(n_o, 1.0),
            v_reset=full(n_o, 0.0),
        ),
        "out": nir.Output(np.array([n_o])),
        "in2": nir.Input(np.array([2])),
        "delay": nir.Delay(np.array([2e-3, 0.5e-3])),
        "if_": nir.IF(r=full(2, 317.3), v_threshold=full(2, 1.0), v_reset=full(2, 0.0)),
        "out2": nir.Output(np.array([2])),
    }
    edges = [
        ("in", "w1"),
        ("w1", "hid"),
        ("hid", "rec"),
        ("rec", "hid"),
        ("hid", "w2"),
        ("w2", "lif"),
        ("lif", "out"),
        ("in2", "delay"),
        ("delay", "if_"),
        ("if_", "out2"),
    ]
    return nirsim.load(nir.NIRGraph(nodes=nodes, edges=edges))


def inputs(rates=(0.0, 0.05, 0.2, 0.5, 0.9), seed=1):
    """One sample per rate: Bernoulli spike rasters from empty to nearly full, so
    the samples need very different numbers of events."""
    rng = np.random.default_rng(seed)
    r = np.asarray(rates)[:, None, None]
    spk = rng.random((len(rates), BINS, 4)) < r
    spk2 = rng.random((len(rates), BINS, 2)) < r
    return {
        "in": nirsim.Spikes.from_grid(spk, DT_IN),
        "in2": nirsim.Spikes.from_grid(spk2, DT_IN),
    }


def sample(x, b):
    return jax.tree_util.tree_map(lambda a: a[b], x)


KW = dict(t_end=T_END, save_dt=3e-3, spike_area=AREA, max_spikes=1000)
NODES = ("hid", "lif", "if_")


def assert_same(a, b, what, rtol=1e-12):
    for node in NODES:
        ta, tb = a.spike_trains(node), b.spike_trains(node)
        assert [len(x) for x in ta] == [len(x) for x in tb], f"{what}: {node} counts"
        for x, y in zip(ta, tb, strict=True):
            np.testing.assert_allclose(x, y, rtol=rtol, atol=0, err_msg=f"{what} {node}")


@pytest.fixture(scope="module")
def net():
    return graph()


@pytest.fixture(scope="module")
def batch(net):
    x = inputs()
    return x, nirsim.simulate(net, x, **KW)


def test_the_program_has_one_loop_per_sample(net):
    """No nested loop per event: an unbatched solve lowers to exactly one while
    loop (its body: one firing round, one input window, one unrolled search); a
    batch runs in at most three buckets (B, B // 8, 1), one loop each, none
    nested."""
    x = sample(inputs(), 2)
    options = nirsim.solvers.base.SimOptions(spike_area=jnp.asarray(AREA), max_spikes=64)
    ts = jnp.linspace(3e-3, T_END, 10)
    for adjoint in ("forward", "checkpointed"):
        solver = nirsim.solvers.ClosedForm(adjoint=adjoint)
        text = (
            jax.jit(lambda x, s=solver: s.solve(net, x, ts, T_END, options))
            .lower(x)
            .as_text()
        )
        assert text.count("stablehlo.while") == 1, adjoint
    xb = jax.tree_util.tree_map(lambda a: a[:4], inputs())
    solver = nirsim.solvers.ClosedForm(adjoint="forward")
    text = (
        jax.jit(lambda x: solver.solve_batch(net, x, ts, T_END, options))
        .lower(xb)
        .as_text()
    )
    assert text.count("stablehlo.while") == 2  # buckets of 4 and 1


def test_a_batch_equals_its_samples_run_one_by_one(net, batch):
    x, tr = batch
    counts = [int(np.asarray(tr.spike_counts("hid"))[b].sum()) for b in range(5)]
    assert counts[0] == 0 and counts[-1] > 5 * max(counts[1], 1)  # uneven work
    for b in range(5):
        one = nirsim.simulate(net, sample(x, b), **KW)
        assert int(one.result) == int(np.asarray(tr.result)[b]) == 0
        assert_same(sample_trace(tr, b), one, f"sample {b}")
        for node in ("hid", "lif"):
            np.testing.assert_allclose(
                np.asarray(tr.states[node]["v"])[b],
                np.asarray(one.states[node]["v"]),
                rtol=0,
                atol=1e-12,
            )


class _Sample:
    """The spike trains of one sample of a batched trace."""

    def __init__(self, trace, b):
        self.trace, self.b = trace, b

    def spike_trains(self, node):
        return self.trace.spike_trains(node)[self.b]


def sample_trace(trace, b):
    return _Sample(trace, b)


def test_a_failing_sample_fails_alone(net):
    """A sample that runs out of events reports it; the others finish."""
    x = inputs(rates=(0.1, 0.9, 0.0))
    tr = nirsim.simulate(net, x, throw=False, **dict(KW, max_events=150))
    codes = np.asarray(tr.result).tolist()
    assert codes[1] == nirsim.solvers.results.MAX_EVENTS
    assert codes[0] == codes[2] == 0
    ok = nirsim.simulate(net, sample(x, 0), **dict(KW, max_events=150))
    assert_same(sample_trace(tr, 0), ok, "sample 0 beside a failing sample")


def test_a_second_batched_call_does_not_recompile(net, batch):
    """Same shapes, other inputs (the samples reversed): the compiled program of
    the first call is reused, and computes the second call's own answer."""
    x, tr = batch
    jitted = list(nirsim._simulate._JITTED.values())
    sizes = [f._cache_size() for f in jitted]
    y = jax.tree_util.tree_map(lambda a: a[::-1], x)
    again = nirsim.simulate(net, y, **KW)
    assert len(nirsim._simulate._JITTED) == len(jitted)
    assert [f._cache_size() for f in jitted] == sizes
    for node in NODES:
        for k in range(5):
            for got, want in zip(
                again.spike_trains(node)[4 - k], tr.spike_trains(node)[k], strict=True
            ):
                np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)


def test_closed_form_and_diffrax_agree(net):
    """Every spiking node: same counts, times within 1e-9 relative (reset by
    subtraction here; tests/test_ideal_coupled.py covers the reset to v_reset)."""
    reset = "subtract"
    x = sample(inputs(rates=(0.3,)), 0)
    kw = dict(KW, reset=reset)
    a = nirsim.simulate(net, x, solver="closed_form", **kw)
    b = nirsim.simulate(net, x, solver="diffrax", **kw)
    assert sum(len(t) for t in a.spike_trains("hid")) >= 10
    assert sum(len(t) for t in a.spike_trains("if_")) >= 2
    assert_same(b, a, f"diffrax vs closed_form ({reset})", rtol=1e-9)


# ------------------------------------------- closed-form roots against the search
def _neurons(kind, rng, n):
    """A primitive of ``n`` neurons of ``kind`` and random states and drives, many of
    which cross threshold within 50 ms (impulse-like synaptic currents, membranes
    from far below to just below threshold, constant drives)."""
    from nirsim import primitives as P

    u = lambda lo, hi: rng.uniform(lo, hi, n)
    drive = np.where(rng.random(n) < 0.5, 0.0, u(-50.0, 150.0))
    if kind.startswith("cuba"):
        tau_syn = u(2e-3, 8e-3)
        tau_mem = 2 * tau_syn if kind == "cuba_mem2" else tau_syn / 2
        prim = P.CubaLIF(tau_syn, tau_mem, u(0.5, 4.0), u(-0.2, 0.2), u(0.5, 1.5),
                         u(-0.2, 0.2), u(1e-3, 5e-3))  # fmt: skip
        state = P.CubaState(i_syn=u(-1.0, 3.0), v=u(-1.0, 0.5))
    elif kind == "lif":
        prim = P.LIF(u(2e-3, 2e-2), u(0.5, 2.0), u(-0.2, 0.2), u(0.5, 1.5))
        state = P.MembraneState(v=u(-1.0, 0.5))
    else:
        prim = P.IF(u(0.5, 2.0), u(0.5, 1.5))
        state = P.MembraneState(v=u(-1.0, 0.5))
    return prim, state, jnp.asarray(drive)


@pytest.mark.parametrize("kind", ["cuba_mem2", "cuba_syn2", "lif", "if"])
def test_closed_form_roots_match_the_numerical_search(kind, monkeypatch):
    """LIF, IF and CubaLIF with ``tau_mem / tau_syn`` = 2 or 1/2 have closed-form
    crossing times (a log, a ratio, the root of a quadratic in ``exp(-h/tau)``); the
    safeguarded Newton search, an independent algorithm on the same propagator, must
    find the same crossings to within rounding (1e-15 s at t ~ 0.06 s)."""
    from nirsim.solvers import closed_form

    rng = np.random.default_rng(3)
    prim, state, drive = _neurons(kind, rng, 512)
    h_max, t = jnp.asarray(0.05), jnp.asarray(0.01)
    roots = prim.crossing_root(state, drive, jnp.zeros(512), jnp.full(512, 0.05))
    closed = np.asarray(closed_form.first_crossing(prim, state, drive, h_max, t)[0])
    monkeypatch.setattr(type(prim), "crossing_root", lambda *a: None)
    search, _, lo, hi = map(
        np.asarray, closed_form.first_crossing(prim, state, drive, h_max, t)
    )
    found = np.isfinite(search)
    open_ = np.isfinite(lo)  # the search did not converge: a bracket (lo, hi]
    assert 100 < found.sum() < 512  # crossings and non-crossings both exercised
    np.testing.assert_array_equal(np.isfinite(closed), found | open_)
    # the closed form was used, not the search behind it
    assert np.isfinite(np.asarray(roots))[found].mean() > 0.95
    np.testing.assert_allclose(closed[found], search[found], rtol=0, atol=1e-15)
    assert np.all((closed[open_] > lo[open_]) & (closed[open_] <= hi[open_]))
