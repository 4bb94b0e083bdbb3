"""BrainScaleS-2: the weight rule, the event jump, the CADC read-out and the time
constants against values derived by hand from ../shared/HARDWARE.md; mismatch and
noise against their seeds and magnitudes; every refusal; the mapping report; the
command line."""

import math

import nir
import numpy as np
import pytest

import nirsim
from nirsim import Current, GraphError, Spikes
from nirsim.hardware_models import CADC, BrainScaleS2, Mismatch, Noise
from nirsim.hardware_models.brainscales2 import quantise_weights

#: no mismatch, no noise, no read-out: the ideal solution of the chip's graph
CLEAN = dict(mismatch=Mismatch.none(), noise=Noise.none(), readout=False)

TAU_SYN, TAU_MEM = 2e-3, 5e-3  # s


def _cuba(
    n, tau_syn=TAU_SYN, tau_mem=TAU_MEM, r=1.0, v_leak=0.0, vth=1.0, v_reset=0.0, w_in=1.0
):
    k = lambda x: np.broadcast_to(np.asarray(x, float), (n,)).copy()
    return nir.CubaLIF(
        tau_syn=k(tau_syn),
        tau_mem=k(tau_mem),
        r=k(r),
        v_leak=k(v_leak),
        v_threshold=k(vth),
        v_reset=k(v_reset),
        w_in=k(w_in),
    )


def _graph(weight, neuron=None, n_in=None):
    weight = np.asarray(weight, float)
    n_out, n_in = weight.shape
    neuron = _cuba(n_out) if neuron is None else neuron
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([n_in])),
            "w": nir.Linear(weight=weight),
            "lif": neuron,
            "output": nir.Output(output_type=np.array([n_out])),
        },
        edges=[("input", "w"), ("w", "lif"), ("lif", "output")],
    )


# ------------------------------------------------------------------ the weight rule
def test_weights_six_bits_halves_away_from_zero():
    # 64 w = +-0.5, +-1.5, 2.5 are exact halves (w a multiple of 2^-7): away from zero
    # gives +-1, +-2, 3 (halves to even would give 0, +-2, 2); 0.49 rounds to 0; 63.5
    # and 2 * 64 clip to 63
    w = np.array([0.5, -0.5, 1.5, -1.5, 2.5, 0.49, 63.5, 128.0, -128.0]) / 64
    expected = [1, -1, 2, -2, 3, 0, 63, 63, -63]
    assert quantise_weights(w, 64.0).tolist() == expected
    net = nirsim.load(_graph(w.reshape(-1, 1)))
    chip = BrainScaleS2(**CLEAN).chip_network(net)
    np.testing.assert_array_equal(
        np.asarray(chip.nodes["w"].weight)[:, 0], np.array(expected) / 64
    )
    e = BrainScaleS2().report(net).find("w", "weight")
    assert e.action == "rounded" and e.rel_change == 1.0  # 0.49/64 -> 0


def test_better_mapping_scales_each_linear_to_its_largest_weight():
    # weight_scale=None: s = 63 / max|W| = 63 / 0.75 = 84; 0.375 -> 31.5 -> 32 and
    # -0.125 -> -10.5 -> -11 (halves away from zero); 4 bits: s = 15 / 0.75 = 20;
    # 0.375 -> 7.5 -> 8, -0.125 -> -2.5 -> -3
    net = nirsim.load(_graph([[0.75, 0.375, -0.125]]))
    chip = BrainScaleS2(weight_scale=None).chip_weights(net.nodes["w"])
    assert np.asarray(chip).tolist() == [[63, 32, -11]]
    chip4 = BrainScaleS2(weight_scale=None, weight_bits=4).chip_weights(net.nodes["w"])
    assert np.asarray(chip4).tolist() == [[15, 8, -3]]


# ------------------------------------------------------------------ the emulation
def _psp(t, w, r=1.0, tau_syn=TAU_SYN, tau_mem=TAU_MEM):
    """v after one event of weight w at t = 0 into a CubaLIF at rest (v_leak = 0),
    when the event makes I jump by w: ``tau_mem v' = -v + r I``, ``I = w
    exp(-t/tau_syn)`` gives ``v = r w tau_syn / (tau_syn - tau_mem) (exp(-t/tau_syn)
    - exp(-t/tau_mem))``."""
    a = r * w * tau_syn / (tau_syn - tau_mem)
    return np.where(t >= 0, a * (np.exp(-t / tau_syn) - np.exp(-t / tau_mem)), 0.0)


def test_an_event_adds_its_chip_weight_to_the_current_whatever_w_in():
    # w = 0.3 -> round(19.2) = 19 -> 19/64 per event; w_in = 7 and spike_area = 0.5
    # are ignored; r = 2 is kept
    w_chip = 19 / 64
    neuron = _cuba(1, r=2.0, w_in=7.0, vth=10.0)
    net = nirsim.load(_graph([[0.3]], neuron))
    t0 = 1e-3
    x = Spikes(np.array([t0]), np.array([0]), n_neurons=1)
    tr = nirsim.simulate(
        net, x, t_end=0.02, save_dt=5e-4, spike_area=0.5, solver=BrainScaleS2(**CLEAN)
    )
    ts = np.asarray(tr.ts)
    np.testing.assert_allclose(
        np.asarray(tr.states["lif"]["v"])[:, 0], _psp(ts - t0, w_chip, r=2.0), atol=1e-12
    )
    # a gridded input's value is the number of events of its bin (2 events at 1 ms)
    grid = np.zeros((40, 1))
    grid[2, 0] = 2.0
    tr = nirsim.simulate(
        net, Current(grid, 5e-4), t_end=0.02, save_dt=5e-4, solver=BrainScaleS2(**CLEAN)
    )
    np.testing.assert_allclose(
        np.asarray(tr.states["lif"]["v"])[:, 0],
        _psp(ts - t0, 2 * w_chip, r=2.0),
        atol=1e-12,
    )


def test_without_mismatch_and_noise_it_is_the_ideal_solution_of_the_chip_graph():
    # a recurrent network: the chip's graph written by hand (weights round(64 w)/64,
    # w_in = tau_syn, events of area 1) solved by the ideal solver, bit for bit
    rng = np.random.default_rng(3)
    w_in = rng.normal(0.6, 0.3, (4, 2))
    w_rec = rng.normal(0.0, 0.3, (4, 4))
    nodes = {
        "input": nir.Input(input_type=np.array([2])),
        "w_in": nir.Linear(weight=w_in),
        "lif": _cuba(4, vth=0.3),
        "w_rec": nir.Linear(weight=w_rec),
        "output": nir.Output(output_type=np.array([4])),
    }
    edges = [
        ("input", "w_in"),
        ("w_in", "lif"),
        ("lif", "w_rec"),
        ("w_rec", "lif"),
        ("lif", "output"),
    ]
    net = nirsim.load(nir.NIRGraph(nodes=nodes, edges=edges))
    q = lambda w: np.sign(w) * np.minimum(np.floor(np.abs(64 * w) + 0.5), 63) / 64
    hand = dict(nodes)
    hand["w_in"] = nir.Linear(weight=q(w_in))
    hand["w_rec"] = nir.Linear(weight=q(w_rec))
    hand["lif"] = _cuba(4, vth=0.3, w_in=TAU_SYN)
    ref_net = nirsim.load(nir.NIRGraph(nodes=hand, edges=edges))
    times = np.sort(rng.uniform(0, 0.03, 40))
    x = Spikes(times, rng.integers(0, 2, 40), n_neurons=2)
    got = nirsim.simulate(net, x, t_end=0.04, save_dt=1e-3, solver=BrainScaleS2(**CLEAN))
    ref = nirsim.simulate(ref_net, x, t_end=0.04, save_dt=1e-3, spike_area=1.0)
    assert sum(len(t) for t in ref.spike_trains("lif")) > 5
    for a, b in zip(got.spike_trains("lif"), ref.spike_trains("lif"), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(got.states["lif"]["v"], ref.states["lif"]["v"])
    assert got.backend == "brainscales2"


def test_cadc_codes_and_their_saturation():
    # v_leak = 0 reads code 80, v_threshold = 1 reads 150: one code is 1/70. Neuron 0
    # gets one event of w = 0.5 (exact on the chip: 32/64) and reads round(80 + 70 v);
    # neuron 1 gets six events of w = -1 -> -63/64 at once, and v falls below
    # -80/70 = -1.14 (to -1.28), which reads 0
    net = nirsim.load(_graph([[0.5, 0.0], [0.0, -1.0]]))
    t0 = 1e-3
    x = Spikes(np.full(7, t0), np.array([0, 1, 1, 1, 1, 1, 1]), n_neurons=2)
    quiet = dict(mismatch=Mismatch.none(), noise=Noise.none())
    tr = nirsim.simulate(
        net, x, t_end=0.02, save_dt=5e-4, solver=BrainScaleS2(**quiet, raw=True)
    )
    ts = np.asarray(tr.ts)
    v = np.stack([_psp(ts - t0, 0.5), _psp(ts - t0, -6 * 63 / 64)], axis=1)
    codes = np.clip(np.round(80 + 70 * v), 0, 255)
    np.testing.assert_array_equal(np.asarray(tr.states["lif"]["v"]), codes)
    assert codes[:, 1].min() == 0 and codes[:, 0].max() > 80
    # in graph units: v_leak + (code - 80) / 70
    tr = nirsim.simulate(net, x, t_end=0.02, save_dt=5e-4, solver=BrainScaleS2(**quiet))
    np.testing.assert_allclose(
        np.asarray(tr.states["lif"]["v"]), (codes - 80) / 70, rtol=0, atol=1e-12
    )
    # a CubaLI reads 50 codes per graph unit (hxtorch's trace_scale = 1/50)
    li = nir.CubaLI(
        tau_syn=np.array([TAU_SYN]),
        tau_mem=np.array([TAU_MEM]),
        r=np.array([1.0]),
        v_leak=np.array([0.0]),
        w_in=np.array([1.0]),
    )
    net = nirsim.load(_graph([[1.0]], li))
    x = Spikes(np.array([t0]), np.array([0]), n_neurons=1)
    tr = nirsim.simulate(
        net, x, t_end=0.02, save_dt=5e-4, solver=BrainScaleS2(**quiet, raw=True)
    )
    np.testing.assert_array_equal(
        np.asarray(tr.states["lif"]["v"])[:, 0],
        np.clip(np.round(80 + 50 * _psp(ts - t0, 63 / 64)), 0, 255),
    )


def test_cadc_settings_are_checked():
    with pytest.raises(nirsim.InputError, match="leak_code < threshold_code"):
        CADC(leak_code=150.0, threshold_code=80.0)
    with pytest.raises(nirsim.InputError, match="bits"):
        CADC(bits=0)
    with pytest.raises(nirsim.InputError, match="standard deviation must be finite"):
        Mismatch(tau_mem=-0.1)
    with pytest.raises(nirsim.InputError, match="seed"):
        BrainScaleS2(seed=-1)


# ------------------------------------------------------------------ mismatch and noise
def _driven(n=6):
    net = nirsim.load(_graph(np.full((n, 1), 0.8), _cuba(n, vth=0.3)))
    times = np.arange(1, 30) * 1e-3
    x = Spikes(times, np.zeros_like(times, dtype=int), n_neurons=1)
    return net, x


def _run(model, net, x):
    tr = nirsim.simulate(net, x, t_end=0.03, save_dt=1e-3, solver=model)
    return [np.asarray(t) for t in tr.spike_trains("lif")], np.asarray(
        tr.states["lif"]["v"]
    )


def _same(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a[0], b[0], strict=True)) and (
        np.array_equal(a[1], b[1])
    )


def test_same_seed_same_chip_other_seed_other_chip():
    net, x = _driven()
    fixed = dict(noise=Noise.none())
    a = _run(BrainScaleS2(seed=1, **fixed), net, x)
    b = _run(BrainScaleS2(seed=1, **fixed), net, x)
    c = _run(BrainScaleS2(seed=2, **fixed), net, x)
    assert _same(a, b) and not _same(a, c)
    # the fixed pattern differs between the neurons of one layer (all driven alike)
    assert len({tuple(t) for t in a[0]}) > 1
    # the fixed pattern does not depend on the trial
    d = _run(BrainScaleS2(seed=1, trial=5, **fixed), net, x)
    assert _same(a, d)


def test_trial_noise_per_call_and_per_sample():
    net, x = _driven()
    fixed = dict(mismatch=Mismatch.none())
    a = _run(BrainScaleS2(trial=1, **fixed), net, x)
    b = _run(BrainScaleS2(trial=1, **fixed), net, x)
    c = _run(BrainScaleS2(trial=2, **fixed), net, x)
    assert _same(a, b) and not _same(a, c)
    # a batch of three copies of one input: three trials, each with its own noise;
    # sample k draws from (trial, k), so sample 0 is the unbatched call's trial
    xb = Spikes(np.tile(x.times, (3, 1)), np.tile(x.indices, (3, 1)), n_neurons=1)
    tr = nirsim.simulate(
        net, xb, t_end=0.03, save_dt=1e-3, solver=BrainScaleS2(trial=1, **fixed)
    )
    v = np.asarray(tr.states["lif"]["v"])
    assert not np.array_equal(v[0], v[1]) and not np.array_equal(v[1], v[2])
    np.testing.assert_array_equal(v[0], a[1])


def test_mismatch_magnitudes_match_the_defaults():
    # 500 neurons: the sample standard deviation of log(tau_chip / tau) estimates 0.05
    # with a relative standard error 1/sqrt(2 * 500) = 3.2 %; allow 4 errors (13 %).
    # Voltages: 2 codes of 1/70 (v_threshold 1 above v_leak 0).
    n = 500
    net = nirsim.load(_graph(np.full((n, 1), 0.5), _cuba(n)))
    m = Mismatch()
    chip = BrainScaleS2().chip_network(net).nodes["lif"]
    checks = {
        "tau_mem": (np.log(np.asarray(chip.tau_mem) / TAU_MEM), m.tau_mem),
        "tau_syn": (np.log(np.asarray(chip.tau_syn) / TAU_SYN), m.tau_syn),
        "gain": (np.log(np.asarray(chip.w_in) / np.asarray(chip.tau_syn)), m.gain),
        "v_leak": (np.asarray(chip.v_leak) * 70, m.v_leak),
        "v_threshold": ((np.asarray(chip.v_threshold) - 1) * 70, m.v_threshold),
        "v_reset": (np.asarray(chip.v_reset) * 70, m.v_reset),
    }
    for name, (z, sigma) in checks.items():
        assert abs(np.std(z) / sigma - 1) < 4 / math.sqrt(2 * n), name
        assert abs(np.mean(z)) < 4 * sigma / math.sqrt(n), name
    # the draws of different parameters are independent
    assert abs(np.corrcoef(checks["tau_mem"][0], checks["tau_syn"][0])[0, 1]) < 0.2


# ------------------------------------------------------------------ time, report, limits
def test_time_constants_scaled_by_1000_and_the_report_lists_w_in():
    net = nirsim.load(_graph([[0.5]]))
    report = BrainScaleS2().report(net)
    for f, tau in (("tau_mem", TAU_MEM), ("tau_syn", TAU_SYN)):
        e = report.find("lif", f)
        assert (
            e.action == "scale" and e.nir == tau and e.chip_raw == pytest.approx(tau / 1000)
        )
    assert report.ignored("lif") == ("w_in",)  # HARDWARE.md: w_in is ignored
    assert BrainScaleS2().chip_time(0.1) == pytest.approx(1e-4)
    assert report.find("lif", "v read-out step").chip == pytest.approx(1 / 70)
    assert "continuous time" in str(report)
    # no mismatch: no "(chip)" entries
    clean = BrainScaleS2(mismatch=Mismatch.none()).report(net)
    assert not [e for e in clean.entries if "(chip)" in e.field]


def _refused(graph, match, model=None):
    with pytest.raises(GraphError, match=match):
        nirsim.simulate(
            nirsim.load(graph),
            Spikes([], [], n_neurons=1),
            t_end=1e-3,
            solver=model or BrainScaleS2(),
        )


def test_refusals_name_node_and_limit():
    lif = nir.LIF(
        tau=np.array([1e-3]),
        r=np.array([1.0]),
        v_leak=np.array([0.0]),
        v_threshold=np.array([1.0]),
        v_reset=np.array([0.0]),
    )
    _refused(
        _graph([[1.0]], lif), r"node 'lif' \(LIF\): brainscales2 has no mapping for LIF"
    )
    g = _graph([[1.0]])
    g.nodes["w"] = nir.Affine(weight=np.array([[1.0]]), bias=np.array([0.0]))
    _refused(g, r"node 'w' \(Affine\): brainscales2 has no mapping for Affine")
    _refused(
        _graph([[1.0], [1.0]], _cuba(2, tau_mem=[5e-3, 6e-3])),
        r"node 'lif' \(CubaLIF\): heterogeneous layer: tau_mem takes 2 values",
    )
    _refused(
        _graph(np.ones((2, 1)), _cuba(2, vth=[1.0, 2.0])),
        "heterogeneous layer: v_threshold",
    )
    _refused(_graph(np.ones((513, 1))), r"513 neurons, more than the chip holds \(512\)")
    # Input straight into a neuron
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([1])),
            "lif": _cuba(1),
            "output": nir.Output(output_type=np.array([1])),
        },
        edges=[("input", "lif"), ("lif", "output")],
    )
    _refused(g, "input only through Linear synapses; 'input' feeds it")
    # two Linears in a row
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([1])),
            "a": nir.Linear(weight=np.ones((1, 1))),
            "b": nir.Linear(weight=np.ones((1, 1))),
            "lif": _cuba(1),
            "output": nir.Output(output_type=np.array([1])),
        },
        edges=[("input", "a"), ("a", "b"), ("b", "lif"), ("lif", "output")],
    )
    _refused(g, r"node 'a' \(Linear\): a Linear must feed exactly one CubaLIF or CubaLI")
    # a CubaLI feeding a Linear
    li = nir.CubaLI(
        tau_syn=np.array([1e-3]),
        tau_mem=np.array([2e-3]),
        r=np.array([1.0]),
        v_leak=np.array([0.0]),
        w_in=np.array([1.0]),
    )
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([1])),
            "a": nir.Linear(weight=np.ones((1, 1))),
            "li": li,
            "b": nir.Linear(weight=np.ones((1, 1))),
            "lif": _cuba(1),
            "output": nir.Output(output_type=np.array([1])),
        },
        edges=[("input", "a"), ("a", "li"), ("li", "b"), ("b", "lif"), ("lif", "output")],
    )
    _refused(g, r"node 'li' \(CubaLI\): a CubaLI does not spike")
    # two Inputs
    g = nir.NIRGraph(
        nodes={
            "x1": nir.Input(input_type=np.array([1])),
            "x2": nir.Input(input_type=np.array([1])),
            "a": nir.Linear(weight=np.ones((1, 1))),
            "b": nir.Linear(weight=np.ones((1, 1))),
            "lif": _cuba(1),
            "output": nir.Output(output_type=np.array([1])),
        },
        edges=[("x1", "a"), ("x2", "b"), ("a", "lif"), ("b", "lif"), ("lif", "output")],
    )
    with pytest.raises(GraphError, match="2 Input nodes .*exactly one"):
        BrainScaleS2().check(nirsim.load(g))


# ------------------------------------------------------------------ command line
def test_cli_info_and_run(tmp_path, capsys):
    from nirsim.cli import main

    path = tmp_path / "g.nir"
    nir.write(path, _graph([[0.8]], _cuba(1, vth=0.3)))
    assert main(["info", str(path), "--backend", "brainscales2"]) == 0
    out = capsys.readouterr().out
    assert "mapping to brainscales2 (continuous time)" in out and "w_in" in out
    assert "brainscales2 can hold this graph" in out
    times = np.arange(1, 20) * 1e-3
    data = nir.EventData(np.zeros((1, 19), int), times[None], 1, 0.02)
    in_path, out_path = tmp_path / "in.h5", tmp_path / "out.h5"
    nir.write_data(in_path, nir.NIRGraphData({"input": nir.NIRNodeData({"spikes": data})}))
    code = main(
        [
            "run",
            str(path),
            "--input",
            str(in_path),
            "--t-end",
            "0.02",
            "--save-dt",
            "1e-3",
            "--backend",
            "brainscales2",
            "-o",
            str(out_path),
            "--no-progress",
        ]
    )
    assert code == 0, capsys.readouterr().err
    trace = nirsim.load_trace(out_path)
    assert trace.spike_counts("lif").sum() > 0


def test_magnitudes_seeds_and_bit_width_share_one_program():
    # they are traced values: a sweep over them compiles once
    from nirsim import _simulate

    net, x = _driven()
    run = lambda m: nirsim.simulate(net, x, t_end=0.01, save_dt=1e-3, solver=m)
    run(BrainScaleS2(weight_scale=None, weight_bits=4))
    compiled = len(_simulate._JITTED)
    run(BrainScaleS2(weight_scale=None, weight_bits=7, seed=9, trial=3, readout=False,
                     mismatch=Mismatch(tau_mem=0.2), noise=Noise(readout=0.0)))  # fmt: skip
    assert len(_simulate._JITTED) == compiled


def test_gradients_reach_the_weights_through_the_roundings():
    # straight-through rounding of the weights and of the read-out: d(sum v)/dw of
    # one sub-threshold PSP is the sum over samples of dv/dw = v / w_chip (v is linear
    # in the chip weight), computed from the closed form
    import jax

    net = nirsim.load(_graph([[0.3]], _cuba(1, vth=10.0)))
    t0 = 1e-3
    x = Spikes(np.array([t0]), np.array([0]), n_neurons=1)

    def loss(net, readout):
        model = BrainScaleS2(mismatch=Mismatch.none(), noise=Noise.none(), readout=readout)
        tr = nirsim.simulate(net, x, t_end=0.02, save_dt=1e-3, solver=model)
        return tr.states["lif"]["v"].sum()

    ts = np.arange(1, 21) * 1e-3
    expected = _psp(ts - t0, 1.0).sum()  # d/dw of sum _psp(t, w_chip): w_chip = w + const
    for readout in (False, True):
        g = jax.grad(loss)(net, readout)
        np.testing.assert_allclose(float(g.nodes["w"].weight[0, 0]), expected, rtol=1e-6)


def test_checkpoints_change_neither_values_nor_gradients():
    """``checkpoints`` only chooses how reverse mode stores the exact solve: the
    spikes, the membrane and the gradient are those of the default; a count below 1
    is refused."""
    import jax

    net = nirsim.load(_graph([[0.9], [0.3]], _cuba(2, r=10.0, vth=1.0)))
    x = Spikes(np.array([1e-3, 4e-3]), np.array([0, 0]), n_neurons=1)

    def run(net, checkpoints):
        model = BrainScaleS2(checkpoints=checkpoints)
        return nirsim.simulate(net, x, t_end=0.02, save_dt=1e-3, solver=model)

    a, b = run(net, None), run(net, 64)
    assert int(np.sum(a.spike_counts("lif"))) > 0
    np.testing.assert_array_equal(a.spike_counts("lif"), b.spike_counts("lif"))
    np.testing.assert_array_equal(a.states["lif"]["v"], b.states["lif"]["v"])
    ga, gb = (
        jax.grad(lambda n, c=c: run(n, c).states["lif"]["v"].sum())(net) for c in (None, 64)
    )
    np.testing.assert_allclose(gb.nodes["w"].weight, ga.nodes["w"].weight, rtol=1e-12)
    assert np.any(np.asarray(ga.nodes["w"].weight) != 0)
    with pytest.raises(nirsim.InputError, match="checkpoints"):
        BrainScaleS2(checkpoints=0)
