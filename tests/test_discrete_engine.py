"""The discrete engine's guarantees: rasters instead of buffers, dtype as an
argument with grid arithmetic exact in float32, one compilation per structure, and
the NIR paper graphs under every preset that accepts them."""

import subprocess
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest

import nirsim
from nirsim import Current, Spikes
from nirsim.solvers import PRESETS

DT = 1e-4


def _a(*x):
    return np.array(x, dtype=float)


def _lif_net(th=1.0):
    nodes = {
        "input": nir.Input(np.array([2])),
        "fc": nir.Affine(np.array([[1.0, 0.5], [0.2, 1.0]]), np.zeros(2)),
        "lif": nir.LIF(
            tau=_a(1e-3, 2e-3),
            r=_a(1.0, 1.0),
            v_leak=_a(0, 0),
            v_threshold=_a(th, th),
            v_reset=_a(0, 0),
        ),  # fmt: skip
        "output": nir.Output(np.array([2])),
    }
    edges = [("input", "fc"), ("fc", "lif"), ("lif", "output")]
    return nirsim.load(nir.NIRGraph(nodes=nodes, edges=edges))


def test_float32_grid_times_are_binned_like_float64():
    # Spike times k*dt rounded to float32 (as a float32 file or run gives them) land
    # in step k, exactly as the float64 times do: the IF below counts the spikes of
    # each step, so its state after step k is the number of events up to k.
    nodes = {
        "input": nir.Input(np.array([1])),
        "i": nir.I(r=_a(1.0)),
        "output": nir.Output(np.array([1])),
    }
    net = nirsim.load(nir.NIRGraph(nodes=nodes, edges=[("input", "i"), ("i", "output")]))
    k = np.arange(1, 256)
    t64 = k * DT
    t32 = (k.astype(np.float32) * np.float32(DT)).astype(np.float64)
    assert np.any(np.floor(t32 / DT) != k)  # the old floor-binning got these wrong
    kw = dict(t_end=256 * DT, save_dt=DT, solver="euler", dt=DT, spike_area=1.0)
    for t in (t64, t32):
        for dtype in (jnp.float32, jnp.float64):
            tr = nirsim.simulate(net, Spikes(t, np.zeros_like(k)), dtype=dtype, **kw)
            v = np.asarray(tr.states["i"]["v"])[:, 0]
            np.testing.assert_array_equal(v, np.minimum(np.arange(1, 257) - 1, 255))
            assert tr.states["i"]["v"].dtype == dtype


def test_dtype_argument_and_preset_defaults():
    net = _lif_net()
    x = Current(np.full((20, 2), 2.0), DT)
    kw = dict(t_end=20 * DT, save_dt=DT, dt=DT)
    assert nirsim.simulate(net, x, solver="euler", **kw).states["lif"]["v"].dtype == (
        jnp.float64
    )
    for name in ("norse", "spyx", "sinabs", "nir-euler"):
        tr = nirsim.simulate(net, x, solver=name, **kw)
        assert tr.states["lif"]["v"].dtype == jnp.float32, name
        tr = nirsim.simulate(net, x, solver=name, dtype="float64", **kw)
        assert tr.states["lif"]["v"].dtype == jnp.float64, name
    with pytest.raises(nirsim.InputError, match="dtype"):
        nirsim.simulate(net, x, solver="euler", dtype=jnp.int32, **kw)
    with pytest.raises(nirsim.InputError, match="dtype"):
        nirsim.simulate(net, x, t_end=20 * DT, dtype=jnp.float32)  # ideal: float64


def test_many_spikes_need_no_buffer_and_rasters_are_small_integers():
    # An IF of threshold 0.25 fed 1.0 per step fires 4 times per step under a
    # multi-spike rule (Sinabs): 4 x 2000 steps, all kept, as int8 counts.
    nodes = {
        "input": nir.Input(np.array([1])),
        "if": nir.IF(r=_a(1.0), v_threshold=_a(0.25), v_reset=_a(0.0)),
        "output": nir.Output(np.array([1])),
    }
    net = nirsim.load(nir.NIRGraph(nodes=nodes, edges=[("input", "if"), ("if", "output")]))
    n = 2000
    tr = nirsim.simulate(
        net, Current(np.ones((n, 1)), DT), t_end=n * DT, solver="sinabs", dt=DT
    )
    r = tr.spikes["if"]
    assert isinstance(r, nirsim.SpikeRaster)
    assert r.counts.dtype == jnp.int32 and r.counts.shape == (n, 1)
    assert int(r.count()) == 4 * n
    tr = nirsim.simulate(net, Current(np.ones((n, 1)), DT), t_end=n * DT, solver="euler",
                         dt=DT)  # fmt: skip
    assert tr.spikes["if"].counts.dtype == jnp.bool_


def test_second_call_does_not_retrace():
    net = _lif_net()
    rng = np.random.default_rng(0)
    kw = dict(t_end=20 * DT, save_dt=2 * DT, solver="spyx", dt=DT)
    nirsim.simulate(net, Current(rng.normal(size=(3, 20, 2)), DT), **kw)
    from nirsim.solvers.discrete import engine

    traced = []
    run = engine.run

    def counting_run(*a, **k):
        traced.append(1)
        return run(*a, **k)

    engine.run = counting_run
    try:
        for seed in (1, 2):
            x = Current(np.random.default_rng(seed).normal(size=(3, 20, 2)), DT)
            nirsim.simulate(net, x, **kw)
        # a new Network of the same structure (a training step) reuses the program
        net2 = eqx.tree_at(lambda n: n.nodes["fc"].weight, net, net.nodes["fc"].weight * 2)
        nirsim.simulate(net2, Current(rng.normal(size=(3, 20, 2)), DT), **kw)
    finally:
        engine.run = run
    assert traced == []


def test_simulate_equals_a_bare_jit_of_the_solver():
    net = _lif_net(th=0.3)
    x = Current(np.random.default_rng(4).uniform(0, 3, size=(30, 2)), DT)
    tr = nirsim.simulate(net, x, t_end=30 * DT, save_dt=DT, solver="norse", dt=DT)
    solver = nirsim.solvers.preset("norse", DT)
    opts = nirsim.solvers.SimOptions(spike_area=jnp.asarray(1.0))
    ts = jnp.arange(1, 31) * DT
    sol = jax.jit(lambda net, x: solver.solve(net, {"input": x}, ts, 30 * DT, opts))(net, x)
    assert isinstance(sol, nirsim.solvers.results.Solution)
    assert sol.result == nirsim.solvers.results.RESULTS.successful
    np.testing.assert_array_equal(sol.spikes["lif"], tr.spikes["lif"].counts)
    np.testing.assert_array_equal(sol.states["lif"]["v"], tr.states["lif"]["v"])


# ----------------------------------------------------------- NIR paper graphs
def _braille_input(batch, steps=256, seed=0):
    rng = np.random.default_rng(seed)
    b, k, i = np.nonzero(rng.random((batch, steps, 12)) < 0.1)
    n = max(np.bincount(b, minlength=batch).max(), 1)
    t = np.full((batch, n), np.inf)
    idx = np.full((batch, n), -1)
    for s in range(batch):
        sel = b == s
        t[s, : sel.sum()] = k[sel] * DT
        idx[s, : sel.sum()] = i[sel]
    return Spikes(t, idx)


def test_braille_float32_and_float64_euler_rasters_are_identical(shared_data):
    net = nirsim.load(shared_data / "braille_noDelay_bias_zero.nir")
    x = _braille_input(4)
    kw = dict(t_end=256 * DT, solver="euler", dt=DT, spike_area=DT)
    r32 = nirsim.simulate(net, x, dtype=jnp.float32, **kw)
    r64 = nirsim.simulate(net, x, dtype=jnp.float64, **kw)
    for node in r64.spikes:
        a, b = np.asarray(r32.spikes[node].counts), np.asarray(r64.spikes[node].counts)
        assert a.sum() > 0
        np.testing.assert_array_equal(a, b, err_msg=node)


def test_paper_cnn_at_batch_32_under_every_accepting_preset(shared_data, tmp_path):
    # Every preset that accepts the CNN runs it at batch 32 (N-MNIST-sized input) with
    # no buffer option anywhere; through the command line too.
    path = shared_data / "cnn_sinabs.nir"
    net = nirsim.load(path)
    steps = 10
    rng = np.random.default_rng(0)
    x = Current((rng.random((32, steps, 2, 34, 34)) < 0.05).astype(float), DT)
    ran = []
    for name in PRESETS:
        try:
            nirsim.solvers.preset(name, DT).check(net)
        except nirsim.GraphError:
            continue
        tr = nirsim.simulate(net, x, t_end=steps * DT, solver=name, dt=DT)
        assert tr.spikes["12"].counts.shape[:2] == (32, steps)
        ran.append(name)
    assert {"sinabs", "norse", "spyx", "snntorch"} <= set(ran)
    data = nir.NIRGraphData(
        {"input": nir.NIRNodeData({"spikes": nir.TimeGriddedData(
            np.asarray(x.values).reshape(32, steps, -1) > 0, DT)})}
    )  # fmt: skip
    nir.write_data(tmp_path / "in.h5", data)
    out = tmp_path / "out.h5"
    proc = subprocess.run(
        [sys.executable, "-m", "nirsim.cli", "run", str(path), "--input",
         str(tmp_path / "in.h5"), "--t-end", str(steps * DT), "--backend", "sinabs",
         "--dt", str(DT), "--save-dt", str(steps * DT), "-o", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    back = nirsim.load_trace(out)
    assert back.spikes["12"].times.shape[0] == 32
