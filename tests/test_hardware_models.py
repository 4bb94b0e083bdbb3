"""Hardware models: each chip rule against integer sequences derived by hand from
the rules in ../shared/HARDWARE.md, the NIR paper's LIF experiment, every refusal
and the mapping reports."""

import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest

import nirsim
from nirsim import Current, Spikes
from nirsim.hardware_models import Loihi2, SpiNNaker2, fixed_point as fp
from nirsim.hardware_models.loihi2 import LoihiParams, LoihiState, dense_weights, step
from nirsim.hardware_models.spinnaker2 import Exponential
from nirsim.solvers import BySubtraction

PATTERN = (
    "00000010000000000000001000010001100101001101111111111100000000000001"
    "11111111111000001100000000000000"
)


def _a(*x):
    return np.asarray(x, dtype=np.float32)


def _chain(*layers, n_in=1):
    """Input -> layer -> ... -> Output (layers are (name, nir node))."""
    nodes = {"input": nir.Input(input_type=np.array([n_in]))}
    order = ["input"]
    for name, node in layers:
        nodes[name] = node
        order.append(name)
    last = layers[-1][1]
    size = last.weight.shape[0] if hasattr(last, "weight") else np.size(_shape_of(last))
    nodes["output"] = nir.Output(output_type=np.array([size]))
    order.append("output")
    edges = list(zip(order[:-1], order[1:], strict=True))
    return nirsim.load(nir.NIRGraph(nodes=nodes, edges=edges))


def _shape_of(node):
    for f in ("tau", "tau_mem", "r"):
        if hasattr(node, f):
            return getattr(node, f)
    raise AssertionError(node)


def _lif(tau=2.5e-3, vth=0.1, r=1.0, v_leak=0.0, v_reset=0.0):
    return nir.LIF(
        tau=_a(tau), r=_a(r), v_leak=_a(v_leak), v_threshold=_a(vth), v_reset=_a(v_reset)
    )


def _steps(trace, node):
    return np.flatnonzero(np.asarray(trace.spikes[node].counts)[:, 0]).tolist()


def _pulses(steps, n, dt=1e-4):
    x = np.zeros((n, 1))
    x[list(steps), 0] = 1.0
    return Current(x, dt)


# ------------------------------------------------------------------ fixed point
def test_roundings_and_integer_operations():
    x = jnp.asarray([2.5, -2.5, 1.7, -1.7, 0.5])
    assert fp.round_toward_zero(x).tolist() == [2, -2, 1, -1, 0]
    assert fp.round_half_away(x).tolist() == [3, -3, 2, -2, 1]
    assert fp.round_half_even(x).tolist() == [2, -2, 2, -2, 0]
    assert fp.round_floor(x).tolist() == [2, -3, 1, -2, 0]
    i = jnp.asarray([-3, 3, -8, 7], jnp.int32)
    assert fp.shift_right(i, 1).tolist() == [-2, 1, -4, 3]  # floor
    assert fp.shift(i, 2).tolist() == [-12, 12, -32, 28]
    assert fp.shift(i, -1).tolist() == [-2, 1, -4, 3]
    # trunc0(x * m / 4096): -1000 * 3933 / 4096 = -960.2 -> -960 (floor: -961);
    # (2^23 - 1) * 3933 / 4096 = 8054783.04 (the product needs 35 bits)
    big = jnp.asarray([-1000, 1000, 8388607, -8388607], jnp.int32)
    assert fp.mul_shift_trunc0(big, 3933, 12).tolist() == [-960, 960, 8054783, -8054783]
    assert fp.wrap(jnp.asarray([127, 128, -129, 300], jnp.int32), 8).tolist() == [
        127,
        -128,
        127,
        44,
    ]
    assert fp.saturating_add(
        jnp.asarray([32000, -32000], jnp.int32), jnp.asarray([1000, -1000], jnp.int32), 16
    ).tolist() == [32767, -32768]


# ------------------------------------------------------------------ Loihi 2
def _params(du=4095, dv=0, vth=25, bias_mant=0, bias_exp=0):
    i = lambda x: jnp.asarray([x], jnp.int32)
    return LoihiParams(
        du=i(du),
        dv=i(dv),
        vth=i(vth),
        bias_mant=i(bias_mant),
        bias_exp=i(bias_exp),
        v_unit=jnp.asarray([1.0]),
        cuba=False,
    )


_step = jax.jit(step, static_argnums=3)


def _run(params, a_ins, u=0, v=0, weight_exp=0):
    s = LoihiState(
        jnp.asarray([u], jnp.int32), jnp.asarray([v], jnp.int32), jnp.zeros(1, bool)
    )
    out = []
    for a in a_ins:
        s, z = _step(params, s, jnp.asarray([a], jnp.int32), weight_exp)
        out.append((int(s.u[0]), int(s.v[0]), int(z[0])))
    return out


def test_loihi_voltage_decay_rounds_toward_zero():
    # dv = 163: v (4096 - 163) / 4096, truncated toward zero for either sign
    p = _params(dv=163, vth=131071)
    assert [v for _, v, _ in _run(p, [0, 0], v=-1000)] == [-960, -921]  # -960.2, -921.8
    assert [v for _, v, _ in _run(p, [0, 0], v=1000)] == [960, 921]


def test_loihi_current_decay_has_the_plus_one_and_input_shift():
    # du = 2047: u (4096 - 2048) / 4096 halves u toward zero; input enters << 6
    p = _params(du=2047, dv=4095, vth=131071)
    assert [u for u, _, _ in _run(p, [0, 0], u=-5)] == [-2, -1]
    assert [u for u, _, _ in _run(p, [3, 0, 0], u=0)] == [192, 96, 48]
    # du = 4095 clears u every step
    p = _params(du=4095, dv=4095, vth=131071)
    assert [u for u, _, _ in _run(p, [3, 0], u=1000)] == [192, 0]


def test_loihi_current_wraps_as_lava_and_voltage_saturates():
    p = _params(du=4095, dv=4095, vth=131071)
    # a_in << 6: 131072 -> 2^23 (kept), 131073 -> 2^23 + 64 -> wraps to -2^23 + 64
    # -131072 -> -2^23 -> gains 2^24 (Lava's quirk: -2^23 is not kept)
    got = [u for u, _, _ in _run(p, [131072, 131073, -131072])]
    assert got == [8388608, -8388544, 8388608]
    # v saturates at -(2^23 - 1): no decay (dv = 0), u = -64000 on top of -8388000
    p = _params(du=4095, dv=0, vth=131071)
    assert _run(p, [-1000], v=-8388000) == [(-64000, -8388607, 0)]
    # and at +(2^23 - 1), where it exceeds the largest threshold 131071 << 6 and fires
    assert _run(p, [1000], v=8388000) == [(64000, 0, 1)]


def test_loihi_threshold_is_strict_and_reset_keeps_u():
    p = _params(du=4095, dv=0, vth=25)  # vth << 6 = 1600
    # 25 << 6 = 1600 equals the threshold: no spike; one more unit (64) fires
    assert _run(p, [25, 1, 0]) == [(1600, 1600, 0), (64, 0, 1), (0, 0, 0)]
    p = _params(du=0, dv=0, vth=25)  # u decays by 4095/4096 and is not reset
    assert _run(p, [26, 0]) == [(1664, 0, 1), (1663, 0, 1)]  # 1663 > 1600 again


def test_loihi_bias_mantissa_exponent_and_weight_exp():
    p = _params(du=4095, dv=0, vth=131071, bias_mant=3, bias_exp=2)
    assert [v for _, v, _ in _run(p, [0, 0])] == [12, 24]  # 3 << 2 per step
    p = _params(du=4095, dv=0, vth=131071, bias_mant=-3, bias_exp=-1)
    assert [v for _, v, _ in _run(p, [0, 0])] == [-2, -4]  # -3 >> 1 = -2 (floor)
    p = _params(du=4095, dv=4095, vth=131071)
    assert [u for u, _, _ in _run(p, [5, -5], weight_exp=-1)] == [128, -192]  # 2, -3
    assert [u for u, _, _ in _run(p, [5], weight_exp=2)] == [1280]


def test_loihi_dense_sign_modes_and_the_lost_bit():
    w = lambda *x: dense_weights(jnp.asarray([x], float))[0].tolist()
    assert w(300.0, 7.0) == [255, 7]  # excitatory: [0, 255]
    assert w(-300.0, -7.0) == [-255, -7]  # inhibitory: [-255, 0]
    assert w(3.0, -3.0) == [2, -4]  # mixed: the lowest bit floored away
    assert w(300.0, -300.0) == [254, -256]  # mixed: [-256, 255], then even


def _paper_input():
    pattern = np.zeros(1000)
    pattern[::10] = [int(c) for c in PATTERN]
    return pattern


def test_loihi_paper_lif_spikes_one_step_after_the_ideal(shared_data):
    net = nirsim.load(shared_data / "lif_norse.nir")
    x = Current(_paper_input()[:, None], 1e-4)
    tr = nirsim.simulate(
        net, x, t_end=0.1, save_dt=1e-4, solver=Loihi2(dt=1e-4, raw=True, probe=True)
    )
    (lif,) = net.spiking
    assert _steps(tr, lif) == [461, 511, 711, 761]
    v = np.asarray(tr.states[lif]["v"])[:, 0]
    # the first input (step 60) reaches v in step 61 (row 61: after step 61) as
    # 10 << 6 = 640 (weight trunc(256 * 1 * dt/tau) = 10), then v (4096 - 163)/4096
    # truncated: 640 -> 614 -> 589
    assert v[59:64].tolist() == [0, 0, 640, 614, 589]
    assert v[461] == 128 and v[462] != 128  # the probe reads 128 in a spike's step
    # by name, in the graph's units (v_chip / (64 * 131071 / 512))
    tr2 = nirsim.simulate(net, x, t_end=0.1, save_dt=1e-4, solver="loihi2", dt=1e-4)
    assert _steps(tr2, lif) == [461, 511, 711, 761]
    np.testing.assert_allclose(
        np.asarray(tr2.states[lif]["v"])[61, 0], 640 / (64 * 131071 / 512)
    )


def test_loihi_each_dense_adds_one_step():
    # Input -> Linear(10) -> LIF -> Linear(10) -> LIF, v_threshold 0.01:
    # vth = trunc(1310.71) >> 9 = 2 (128), weights trunc(256 * 10 * 0.04) = 102
    net = _chain(
        ("w1", nir.Linear(_a([10.0]).reshape(1, 1))),
        ("lif1", _lif(vth=0.01)),
        ("w2", nir.Linear(_a([10.0]).reshape(1, 1))),
        ("lif2", _lif(vth=0.01)),
    )
    tr = nirsim.simulate(
        net, _pulses([3], 10), t_end=1e-3, save_dt=1e-4, solver=Loihi2(1e-4, raw=True)
    )
    assert _steps(tr, "lif1") == [4] and _steps(tr, "lif2") == [5]
    assert np.asarray(tr.states["lif1"]["u"])[4, 0] == 102 << 6


def test_loihi_refusals():
    dt = 1e-4
    sim = lambda net: nirsim.simulate(net, _pulses([0], 5), t_end=5e-4, solver=Loihi2(dt))
    cases = [
        (
            _chain(("w", nir.Affine(_a([1.0]).reshape(1, 1), _a(0.5))), ("lif", _lif())),
            "loihi2: node 'w' \\(Affine\\): non-zero bias is not supported",
        ),
        (
            _chain(("lif", _lif())),
            "node 'lif' \\(LIF\\): Loihi 2 neurons receive input only",
        ),
        (
            _chain(("w", nir.Linear(_a([1.0]).reshape(1, 1)))),
            "node 'w' \\(Linear\\): a Dense must feed exactly one LIF or CubaLIF",
        ),
        (
            _chain(
                ("w", nir.Linear(_a([1.0]).reshape(1, 1))), ("if", nir.IF(_a(1.0), _a(1.0)))
            ),
            "node 'if' \\(IF\\): loihi2 has no mapping for IF",
        ),
        (
            _chain(("w", nir.Linear(_a([1.0]).reshape(1, 1))), ("lif", _lif(vth=0.001))),
            "node 'lif' \\(LIF\\): v_threshold maps to vth = 0..0, outside",
        ),
        (
            _chain(("w", nir.Linear(_a([1.0]).reshape(1, 1))), ("c", _cuba(v_leak=0.1))),
            "node 'c' \\(CubaLIF\\): v_leak != 0 is not supported",
        ),
        (
            _chain(("w", nir.Linear(_a([1.0]).reshape(1, 1))), ("c", _cuba(r=1.0))),
            "node 'c' \\(CubaLIF\\): lava-dl requires r = tau_mem/dt",
        ),
    ]
    for net, message in cases:
        with pytest.raises(nirsim.GraphError, match=message):
            sim(net)


def _cuba(tau_syn=5e-4, tau_mem=1e-3, r=10.0, v_leak=0.0, vth=1.0, w_in=5.0):
    return nir.CubaLIF(
        tau_syn=_a(tau_syn),
        tau_mem=_a(tau_mem),
        r=_a(r),
        v_leak=_a(v_leak),
        v_threshold=_a(vth),
        v_reset=_a(0.0),
        w_in=_a(w_in),
    )


def test_loihi_cubalif_lavadl_mapping():
    # du = round(4096 * 0.2) = 819, dv = round(4096 * 0.1) = 410, vth = 64 (4096),
    # weight round(64 * 3 * 5 * 0.2) = 192 (within the excitatory [0, 255])
    net = _chain(("w", nir.Linear(_a([3.0]).reshape(1, 1))), ("c", _cuba()))
    tr = nirsim.simulate(
        net, _pulses([0], 4), t_end=4e-4, save_dt=1e-4, solver=Loihi2(1e-4, raw=True)
    )
    u = np.asarray(tr.states["c"]["u"])[:, 0].tolist()
    v = np.asarray(tr.states["c"]["v"])[:, 0].tolist()
    # step 1: u = 192 << 6 = 12288, v = 12288 > 4096: spike, v = 0
    # step 2: u = trunc(12288 * (4096 - 820) / 4096) = 9828, v = 9828 > 4096: spike
    # step 3: u = trunc(9828 * 3276 / 4096) = trunc(7860.6) = 7860, spike again
    assert u == [0, 12288, 9828, 7860]
    assert v == [0, 0, 0, 0]
    assert _steps(tr, "c") == [1, 2, 3]
    report = Loihi2(1e-4).report(net)
    assert report.find("c", "tau_syn -> du").chip_raw == 820  # du + 1
    assert report.find("c", "tau_mem -> dv").chip_raw == 410
    assert report.find("w", "weight").chip_raw == 192
    assert report.ignored("c") == ("v_reset",)


def test_loihi_report_lists_what_the_paper_mapping_ignores():
    net = _chain(
        ("w", nir.Affine(_a([-1.0, 2.0]).reshape(1, 2), _a(0.0))),
        ("lif", _lif(r=2.0, v_leak=0.3, v_reset=-0.1)),
        n_in=2,
    )
    report = Loihi2(1e-4).report(net)
    assert report.ignored("lif") == ("r", "v_leak", "v_reset")
    assert report.find("lif", "r").rel_change == pytest.approx(0.5)  # 2 read as 1
    e = report.find("lif", "tau -> dv")
    assert e.chip_raw == 163 and e.rel_change == pytest.approx(1 - 163 / 4096 / 0.04, 1e-5)
    assert report.find("lif", "v_threshold -> vth").chip_raw == 25
    # weights trunc(256 * [-1, 2] * 0.04) = [-10, 20], mixed: [-10, 20] stay even
    assert report.find("w", "weight").chip_raw in (-10.0, 20.0)
    assert "mixed sign mode" in report.find("w", "weight").note
    assert "ignored" in str(report)


# ------------------------------------------------------------------ SpiNNaker2
def _s2_lif_numbers(dt, tau, v_th):
    """The importer's FORWARD numbers, computed in float32 as it computes them."""
    f = np.float32
    r_factor = f(dt) / f(tau)
    alpha = f(1) - r_factor
    return alpha, f(v_th) * (f(1) / r_factor)


def test_spinnaker2_forward_lif_sequence_and_latency():
    # tau = 1 ms, dt = 0.1 ms: alpha = 1 - dt/tau (0.9), scale = 1/(r dt/tau) (10),
    # threshold 0.25 * scale (2.5); weight 1; an event in step t reaches v in t + 1
    net = _chain(("w", nir.Linear(_a([1.0]).reshape(1, 1))), ("lif", _lif(1e-3, 0.25)))
    x = _pulses([0, 1, 2, 3], 6)
    f = np.float32
    alpha, th = _s2_lif_numbers(1e-4, 1e-3, 0.25)
    v1 = f(1)
    v2 = alpha * v1 + f(1)
    v3 = alpha * v2 + f(1)
    assert v3 > th > v2  # 2.71 > 2.5 > 1.9: fires in step 3
    tr = nirsim.simulate(
        net, x, t_end=6e-4, save_dt=1e-4, solver=SpiNNaker2(1e-4, raw=True)
    )
    v = np.asarray(tr.states["lif"]["v"])[:, 0]
    assert v.dtype == np.float32
    np.testing.assert_array_equal(v[:4], [0, v1, v2, 0])  # reset to zero
    assert _steps(tr, "lif") == [3]
    # by subtraction: v3 - threshold, then alpha (v3 - threshold) + 1 (step 3's event)
    tr = nirsim.simulate(
        net, x, t_end=6e-4, save_dt=1e-4,
        solver=SpiNNaker2(1e-4, reset=BySubtraction(), raw=True),
    )  # fmt: skip
    v = np.asarray(tr.states["lif"]["v"])[:, 0]
    assert v[3] == v3 - th and v[4] == alpha * (v3 - th) + f(1)
    # conn_delay = 2: everything two steps later
    tr = nirsim.simulate(
        net, x, t_end=6e-4, save_dt=1e-4, solver=SpiNNaker2(1e-4, conn_delay=2)
    )
    assert _steps(tr, "lif") == [5]


def test_spinnaker2_exponential_mapping_and_weight_scaling():
    net = _chain(
        ("w", nir.Affine(_a([0.5]).reshape(1, 1), _a(0.0))), ("lif", _lif(1e-3, 0.2))
    )
    s2 = SpiNNaker2(1e-4, integrator=Exponential(), scale_weights=True)
    report = s2.report(net)
    a = report.find("lif", "tau -> alpha")
    assert a.chip == pytest.approx(float(np.exp(np.float32(-0.1))), rel=1e-7)
    assert a.rel_change < 1e-6
    # w_scale = 127 / 0.5 = 254: the weight is 127; scale = 254 / (1 - exp(-0.1))
    assert report.find("w", "weight").chip_raw == 127
    sc = report.find("lif", "scale").chip
    assert sc == pytest.approx(254 / (1 - np.exp(-0.1)), rel=1e-6)
    assert report.ignored("lif") == ("v_reset",)
    assert report.find("w", "bias").action == "changed"  # moved into i_offset
    # without scaling, 0.5 truncates to 0 (Python's int): no input at all
    assert SpiNNaker2(1e-4).report(net).find("w", "weight").chip_raw == 0


def test_spinnaker2_paper_lif(shared_data):
    net = nirsim.load(shared_data / "lif_norse.nir")
    x = Current(_paper_input()[:, None], 1e-4)
    tr = nirsim.simulate(net, x, t_end=0.1, save_dt=1e-4, solver="spinnaker2", dt=1e-4)
    (lif,) = net.spiking
    # the chip fires in steps 461, 511, 711, 761 (input one step late); the paper's
    # script (lif_spinnaker2.py) saves ``voltages[0][1:]`` and ``spikes[1:]``, so
    # its row k is step k + 1: the published bins 460, 510, 710, 760
    steps = _steps(tr, lif)
    assert steps == [461, 511, 711, 761]
    assert [k - 1 for k in steps] == [460, 510, 710, 760]
    # the state is float32 and in graph units (V / 25): the first input gives 1/25
    v = np.asarray(tr.states[lif]["v"])[:, 0]
    assert v.dtype == np.float32 and v[61] == np.float32(1) / np.float32(25)


def test_spinnaker2_refusals():
    sim = lambda net: nirsim.simulate(
        net, _pulses([0], 5), t_end=5e-4, solver=SpiNNaker2(1e-4)
    )
    w = lambda: nir.Linear(_a([1.0]).reshape(1, 1))
    with pytest.raises(
        nirsim.GraphError, match="spinnaker2: node 'a' \\(Linear\\): two succ"
    ):
        sim(_chain(("a", w()), ("b", w()), ("lif", _lif())))
    with pytest.raises(nirsim.GraphError, match="node 'lif' \\(LIF\\): SpiNNaker2 populat"):
        sim(_chain(("lif", _lif())))
    with pytest.raises(
        nirsim.GraphError, match="node 'li' \\(LI\\): spinnaker2 has no map"
    ):
        sim(_chain(("w", w()), ("li", nir.LI(_a(1e-3), _a(1.0), _a(0.0)))))


def test_spinnaker2_cubalif_new_and_old_current():
    # FORWARD: exc_decay = 1 - dt/tau_syn (0.8), alpha = 1 - dt/tau_mem (0.9), in
    # float32; raw chip numbers: I = exc_decay I + w s, v = alpha v + I (+ i_offset 0)
    net = _chain(("w", nir.Linear(_a([1.0]).reshape(1, 1))), ("c", _cuba(vth=100.0)))
    x = _pulses([0], 4)
    f = np.float32
    syn = f(1) - f(1e-4) / f(5e-4)
    alpha = f(1) - f(1e-4) / f(1e-3)
    for new in (True, False):
        s2 = SpiNNaker2(1e-4, new_current=new, raw=True)
        tr = nirsim.simulate(net, x, t_end=3e-4, save_dt=1e-4, solver=s2)
        i = np.asarray(tr.states["c"]["i_syn"])[:, 0]
        v = np.asarray(tr.states["c"]["v"])[:, 0]
        assert i.tolist() == [0, 1, syn]
        v1 = f(1) if new else f(0)  # the new current (1) or the old one (0)
        assert v[1] == v1 and v[2] == alpha * v1 + (syn if new else f(1))


# ------------------------------------------------------------------ command line
def test_info_prints_the_mapping_report(shared_data, capsys):
    from nirsim.cli import main

    path = str(shared_data / "lif_norse.nir")
    assert main(["info", path, "--backend", "loihi2", "--dt", "1e-4"]) == 0
    out = capsys.readouterr().out
    assert "mapping to loihi2" in out and "v_reset" in out and "can hold" in out
    assert main(["info", path, "--backend", "euler", "--dt", "1e-4"]) == 2
    assert "not a hardware model" in capsys.readouterr().err


def test_spike_input_events_count_once():
    # a Spikes input event is one event, whatever spike_area says
    net = _chain(("w", nir.Linear(_a([1.0]).reshape(1, 1))), ("lif", _lif(1e-3, 0.25)))
    x = Spikes(np.asarray([0.0, 1e-4]), np.asarray([0, 0]), n_neurons=1)
    tr = nirsim.simulate(
        net, x, t_end=3e-4, save_dt=1e-4, spike_area=7.0, solver=SpiNNaker2(1e-4, raw=True)
    )
    np.testing.assert_array_equal(
        np.asarray(tr.states["lif"]["v"])[:, 0], np.float32([0, 1, 1.9])
    )


def test_gradients_pass_the_roundings_straight_through():
    # SpiNNaker2 (float32 state, surrogate spikes): d(sum v^2)/d(weight) through the
    # truncated weight (straight-through) and the threshold; batch of two inputs
    net = _chain(("w", nir.Linear(_a([3.0]).reshape(1, 1))), ("lif", _lif(1e-3, 0.5)))
    x = Current(np.stack([_pulses([0, 2], 5).values, _pulses([1], 5).values]), 1e-4)

    def loss(net):
        tr = nirsim.simulate(net, x, t_end=5e-4, save_dt=1e-4, solver=SpiNNaker2(1e-4))
        return jnp.sum(tr.states["lif"]["v"] ** 2) + jnp.sum(
            tr.states["lif"]["spike_count"]
        )

    g = jax.grad(loss)(net)
    gw = np.asarray(g.nodes["w"].weight)
    assert np.all(np.isfinite(gw)) and np.any(gw != 0)
    # the integer weight enters as 3 (trunc of 3.0): v after the step-0 event is 3/10
    tr = nirsim.simulate(net, x, t_end=5e-4, save_dt=1e-4, solver=SpiNNaker2(1e-4))
    assert np.asarray(tr.states["lif"]["v"]).shape == (2, 5, 1)


# ------------------------------------------------------------------ Xylo
def _xcuba(n, tau_syn=4e-4, tau_mem=8e-4, vth=1.0, v_leak=0.0):
    k = lambda x: _a(*([x] * n))
    return nir.CubaLIF(
        tau_syn=k(tau_syn),
        tau_mem=k(tau_mem),
        r=k(2.0),
        v_leak=k(v_leak),
        v_threshold=k(vth),
        v_reset=k(0.0),
        w_in=k(3.0),
    )


def _xylo_net(hid=None, out=None, n_out=1, w_in=None):
    """Input(2) -> win -> hid(2) -> wout -> out(n_out) -> Output."""
    w_in = _a(1.0, 0.5, -0.25, 1.0).reshape(2, 2) if w_in is None else w_in
    nodes = {
        "input": nir.Input(input_type=np.array([2])),
        "win": nir.Linear(w_in),
        "hid": hid or _xcuba(2, vth=0.1),
        "wout": nir.Linear(np.tile(_a(1.0, -1.0), (n_out, 1))),
        "out": out or _xcuba(n_out, vth=0.5),
        "output": nir.Output(output_type=np.array([n_out])),
    }
    edges = [("input", "win"), ("win", "hid"), ("hid", "wout"), ("wout", "out")]
    return nirsim.load(nir.NIRGraph(nodes=nodes, edges=edges + [("out", "output")]))


def test_xylo_decay_saturation_and_multi_spike_rule():
    from nirsim.hardware_models.xylo import XyloParams, XyloState, step as xstep

    jstep = jax.jit(xstep, static_argnums=(3, 4))

    def run(xs, dash_syn=2, dash_mem=2, thr=32767, bias=0, v2=True, mx=31, i=0, v=0):
        k = lambda x: jnp.asarray([x], jnp.int32)
        p = XyloParams(k(dash_syn), k(dash_mem), k(thr), k(bias), jnp.ones(1))
        s = XyloState(k(i), k(v))
        out = []
        for x in xs:
            s, n = jstep(p, s, k(x), v2, mx)
            out.append((int(s.i_syn[0]), int(s.v[0]), int(n[0])))
        return out

    # i_syn -= i >> 2 (at least 1): 100 -> 75 -> 57; -100 -> -75 -> -56 (floor);
    # 3 -> 2 -> 1 -> 0; the fresh input is decayed before it reaches v
    assert [i for i, _, _ in run([100, 0], i=0)] == [75, 57]
    assert [i for i, _, _ in run([-100, 0])] == [-75, -56]
    assert [i for i, _, _ in run([0, 0, 0], i=3)] == [2, 1, 0]
    assert run([0], dash_syn=0, i=500)[0][0] == 0  # dash_syn = 0 erases input
    # v2: v += -decay(v) + i_syn + bias; v = 75 + 2 after the first step
    assert run([100], bias=2)[0][1] == 77
    # v1: v -= decay(v), then v += i_syn: 40 - 10 + 75 = 105; v2 gives the same here
    assert run([100], v=40, v2=False)[0][1] == 105
    # int16 saturation: 32000 + 1000 -> 32767, minus decay(32767, 15) = 1
    assert run([1000], dash_syn=15, i=32000)[0][0] == 32766
    assert run([-1000], dash_syn=15, i=-32000)[0][0] == -32767  # -32768 + 1
    # multi-spike by subtraction: v = 75 with thr 20 -> 3 spikes, 15 left; capped at
    # 1 for an output neuron (75 - 20 = 55) and at 31 for a hidden one
    assert run([100], thr=20)[0][1:] == (15, 3)
    assert run([100], thr=20, mx=1)[0][1:] == (55, 1)
    assert run([100], thr=1)[0][1:] == (75 - 31, 31)


def test_xylo_delays_input_clipping_and_quantisation():
    # win = round(127 [1, 0.5; -0.25, 1]) per target neuron: [127, 64; -32, 127]
    # (63.5 -> 64 and -31.75 -> -32); thresholds round(0.1 * 127) = 13 and
    # round(0.5 * 127) = 64; dash_syn = round(log2(4)) = 2, dash_mem = 3
    net = _xylo_net()
    x = np.zeros((4, 2))
    x[0, 0] = 20  # 20 events in one step: clipped to 15
    tr = nirsim.simulate(
        net,
        Current(x, 1e-4),
        t_end=4e-4,
        save_dt=1e-4,
        solver=nirsim.hardware_models.Xylo(1e-4, raw=True),
    )
    i_h = np.asarray(tr.states["hid"]["i_syn"])[:, :]
    v_h = np.asarray(tr.states["hid"]["v"])
    # step 0 (no delay from input): i = 15*127 = 1905 - (1905 >> 2) = 1429;
    # neuron 1: 15*(-32) = -480 + 120 = -360; v = i; 1429 // 13 = 109 -> 31 spikes
    assert i_h[0].tolist() == [1429, -360]
    assert v_h[0].tolist() == [1429 - 31 * 13, -360]
    assert np.asarray(tr.spikes["hid"].counts)[:, 0].tolist() == [31, 31, 31, 31]
    # the output sees the hidden spikes one step later: 31 * 127 = 3937 - 984 = 2953
    i_o = np.asarray(tr.states["out"]["i_syn"])[:, 0]
    assert i_o[:2].tolist() == [0, 2953]
    assert np.asarray(tr.spikes["out"].counts)[:, 0].tolist() == [False, True, True, True]
    report = nirsim.hardware_models.Xylo(1e-4).report(net)
    assert report.find("hid", "tau_syn -> dash_syn").chip == 0.75
    assert report.find("hid", "v_threshold").chip_raw == 13
    assert report.ignored("hid") == ("r", "w_in", "v_reset")
    # Global(): one scale for the hidden population (127 / 1), same numbers here
    g = nirsim.hardware_models.Xylo(1e-4, quantisation=nirsim.hardware_models.Global())
    assert g.report(net).find("win", "weight").chip_raw == 64


def test_xylo_recurrent_spikes_arrive_one_step_later():
    # hid(1) with a recurrent weight: win = 1 -> 127, wrec = 0.5 -> round(63.5) = 64
    # (one scale per target neuron: 127 / max(1, 0.5)); threshold round(0.1 * 127) =
    # 13, dash_syn = 2. One input event in step 0: i = 127 - 31 = 96, v = 96, 7
    # spikes (96 // 13), v = 5. Step 1: the 7 spikes of step 0 add 7 * 64 = 448:
    # i = 96 + 448 = 544 - 136 = 408. Two steps of latency (the engine's cycle edge
    # on top of Xylo's late delivery) would leave step 1 at 96 - 24 = 72.
    nodes = {
        "input": nir.Input(input_type=np.array([1])),
        "win": nir.Linear(_a(1.0).reshape(1, 1)),
        "hid": _xcuba(1, vth=0.1),
        "wrec": nir.Linear(_a(0.5).reshape(1, 1)),
        "wout": nir.Linear(_a(1.0).reshape(1, 1)),
        "out": _xcuba(1, vth=0.5),
        "output": nir.Output(output_type=np.array([1])),
    }
    edges = [
        ("input", "win"),
        ("win", "hid"),
        ("hid", "wrec"),
        ("wrec", "hid"),
        ("hid", "wout"),
        ("wout", "out"),
        ("out", "output"),
    ]
    net = nirsim.load(nir.NIRGraph(nodes=nodes, edges=edges))
    x = np.zeros((2, 1))
    x[0, 0] = 1
    tr = nirsim.simulate(
        net,
        Current(x, 1e-4),
        t_end=2e-4,
        save_dt=1e-4,
        solver=nirsim.hardware_models.Xylo(1e-4, raw=True),
    )
    assert np.asarray(tr.states["hid"]["i_syn"])[:, 0].tolist() == [96, 408]
    assert np.asarray(tr.spikes["hid"].counts)[:, 0].tolist()[0] == 7


def test_xylo_refusals():
    from nirsim.hardware_models import Xylo, XyloV1

    sim = lambda net, **kw: nirsim.simulate(
        net, Current(np.zeros((2, 2)), 1e-4), t_end=2e-4, solver=Xylo(1e-4, **kw)
    )
    with pytest.raises(
        nirsim.GraphError, match="node 'hid' \\(CubaLIF\\): tau_syn = 0.0001 <= dt"
    ):
        sim(_xylo_net(hid=_xcuba(2, tau_syn=1e-4)))
    with pytest.raises(
        nirsim.GraphError, match="xylo: 9 output neurons, more than XyloV1 holds \\(8\\)"
    ):
        sim(_xylo_net(n_out=9), core=XyloV1())
    with pytest.raises(
        nirsim.GraphError, match="node 'hid' \\(CubaLIF\\): v_leak becomes a bias"
    ):
        sim(_xylo_net(hid=_xcuba(2, v_leak=0.1)), core=XyloV1())
    lif = _xylo_net(out=_lif())
    with pytest.raises(
        nirsim.GraphError, match="node 'out' \\(LIF\\): xylo has no mapping for LIF"
    ):
        sim(lif)


# ------------------------------------------------------------------ Speck
def _speck_chain(*layers, in_shape=(1, 1, 1), out_shape=(1, 1, 1)):
    nodes = {"input": nir.Input(input_type=np.array(in_shape))}
    order = ["input"]
    for name, node in layers:
        nodes[name] = node
        order.append(name)
    nodes["output"] = nir.Output(output_type=np.array(out_shape))
    edges = list(zip(order, order[1:] + ["output"], strict=True))
    return nirsim.load(nir.NIRGraph(nodes=nodes, edges=edges))


def _conv(w, b=None, k=1, stride=1, padding=0, hw=(1, 1)):
    w = np.asarray(w, np.float32).reshape(-1, np.size(w) // len(w) // (k * k), k, k)
    b = np.zeros(w.shape[0], np.float32) if b is None else _a(*b)
    return nir.Conv2d(
        input_shape=hw, weight=w, stride=stride, padding=padding, dilation=1, groups=1,
        bias=b,
    )  # fmt: skip


def _if(shape, vth):
    th = np.asarray(vth, np.float32).reshape((-1,) + (1,) * (len(shape) - 1))
    th = np.broadcast_to(th, shape).copy()
    return nir.IF(r=np.ones(shape, np.float32), v_threshold=th)


def test_speck_multi_spike_subtraction_and_lower_clamp():
    from nirsim.hardware_models.speck import step as sstep

    jstep = jax.jit(sstep)
    v, out = jnp.zeros(1, jnp.int32), []
    thr = jnp.asarray([10], jnp.int32)
    for x in (25, -20, 3, 0, 1000, 7, 3):
        v, n = jstep(thr, v, jnp.asarray([x], jnp.int32))
        out.append((int(v[0]), int(n[0])))
    # 25: 2 spikes, 5 left; 5 - 20 = -15 clamped to -10; -7; -7 (no leak);
    # -7 + 1000 = 993: 99 spikes, 3 left; 3 + 7 = 10 reaches the threshold: 1 spike
    assert out == [(5, 2), (-10, 0), (-7, 0), (-7, 0), (3, 99), (0, 1), (3, 0)]


def test_speck_layer_scale_and_same_step_delivery():
    # one scale per layer: weights [0.5, -1] (8 bit: min(127/0.5, -128/-1) = 128),
    # bias 0.25 (16 bit: 131068), threshold pair (1, -1) (16 bit: 32767): s = 128;
    # weights [64, -128], bias 32, threshold 128
    net = _speck_chain(
        ("c1", _conv([[0.5, -1.0]], b=[0.25])),
        ("if1", _if((1, 1, 1), 1.0)),
        ("c2", _conv([[1.0]])),
        ("if2", _if((1, 1, 1), 0.5)),
        in_shape=(2, 1, 1),
    )
    x = np.zeros((3, 2, 1, 1))
    x[0, 0], x[1, 1] = 2, 1
    sp = nirsim.hardware_models.Speck(1e-3, raw=True)
    tr = nirsim.simulate(net, Current(x, 1e-3), t_end=3e-3, save_dt=1e-3, solver=sp)
    v = np.asarray(tr.states["if1"]["v"]).reshape(3).tolist()
    # step 0: 2 * 64 + 32 = 160 -> 1 spike, 32; step 1: 32 - 128 + 32 = -64;
    # step 2: -64 + 32 = -32
    assert v == [32, -64, -32]
    # layer 2 (s = 127, threshold 64) gets the spike in the same step: 127 -> 1 spike
    assert np.asarray(tr.spikes["if2"].counts).reshape(3).tolist() == [1, 0, 0]
    report = sp.report(net)
    assert report.find("c1", "weight").chip_raw in (64.0, -128.0)
    assert report.find("if1", "v_threshold").chip_raw == 128
    assert report.find("c1", "bias").chip_raw == 32
    assert report.ignored("if1") == ("r", "v_reset")
    assert report.find("if1", "lower clamp").action == "changed"


def test_speck_avgpool_becomes_sumpool_with_scaled_weights():
    net = _speck_chain(
        ("c1", _conv([[1.0]], hw=(2, 2))),
        ("if1", _if((1, 2, 2), 0.5)),
        ("pool", nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                               padding=np.array([0, 0]))),
        ("flat", nir.Flatten(input_type={"input": np.array([1, 1, 1])}, start_dim=0)),
        ("fc", nir.Linear(_a(0.8).reshape(1, 1))),
        ("if2", _if((1,), 1.0)),
        in_shape=(1, 2, 2),
        out_shape=(1,),
    )  # fmt: skip
    report = nirsim.hardware_models.Speck(1e-3).report(net)
    # 0.8 / 4 = 0.2 -> s = 127 / 0.2 = 635: weight 127, threshold 635
    e = report.find("fc", "weight")
    assert e.chip_raw == 127 and "pooling factor 0.25" in e.note
    assert report.find("if2", "v_threshold").chip_raw == 635
    # one event per pixel and step: layer 1 (s = 127, threshold 64) fires once per
    # neuron in step 0 (127, 63 left), the SumPool passes 4: 4 * 127 = 508 < 635;
    # in step 1 each fires twice (63 + 127 = 190): 508 + 8 * 127 = 1524 -> 2 spikes,
    # 1524 - 2 * 635 = 254
    x = np.ones((2, 1, 2, 2))
    tr = nirsim.simulate(
        net, Current(x, 1e-3), t_end=2e-3, save_dt=1e-3,
        solver=nirsim.hardware_models.Speck(1e-3, raw=True),
    )  # fmt: skip
    assert np.asarray(tr.states["if2"]["v"]).reshape(2).tolist() == [508, 254]


def test_speck_refusals():
    sp = nirsim.hardware_models.Speck(1e-3)
    sim = lambda net, shape=(1, 1, 1): nirsim.simulate(
        net, Current(np.zeros((1,) + shape), 1e-3), t_end=1e-3, solver=sp
    )
    k16 = np.zeros((1, 1, 16, 16), np.float32)
    big = _speck_chain(
        ("c", nir.Conv2d(input_shape=(16, 16), weight=k16, stride=1, padding=0,
                         dilation=1, groups=1, bias=_a(0.0))),
        ("if", _if((1, 1, 1), 1.0)), in_shape=(1, 16, 16),
    )  # fmt: skip
    with pytest.raises(
        nirsim.GraphError, match="speck: node 'c' \\(Conv2d\\): kernel \\(16, 16\\)"
    ):
        sim(big, (1, 16, 16))
    s3 = _speck_chain(
        ("c", _conv([[1.0]], stride=3, hw=(3, 3))),
        ("if", _if((1, 1, 1), 1.0)),
        in_shape=(1, 3, 3),
    )
    with pytest.raises(nirsim.GraphError, match="node 'c' \\(Conv2d\\): stride \\(3, 3\\)"):
        sim(s3, (1, 3, 3))
    with pytest.raises(
        nirsim.GraphError, match="node 'lif' \\(LIF\\): speck has no mapping"
    ):
        k = lambda v: np.full((1, 1, 1), v, np.float32)
        lif = nir.LIF(tau=k(1e-3), r=k(1), v_leak=k(0), v_threshold=k(1), v_reset=k(0))
        sim(_speck_chain(("c", _conv([[1.0]])), ("lif", lif)))
    het = _speck_chain(
        ("c", _conv([[1.0], [1.0]])),
        ("if", _if((2, 1, 1), [1.0, 2.0])),
        out_shape=(2, 1, 1),
    )
    with pytest.raises(nirsim.GraphError, match="node 'if' \\(IF\\): one v_threshold per"):
        sim(het)
    layers = []
    for i in range(10):
        layers += [(f"c{i}", _conv([[1.0]])), (f"if{i}", _if((1, 1, 1), 1.0))]
    with pytest.raises(
        nirsim.GraphError, match="speck: 10 layers \\(IF nodes\\), more than 9"
    ):
        sim(_speck_chain(*layers))
