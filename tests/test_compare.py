"""nirsim.compare, nirsim.plot and ``nirsim compare``: every metric against values
derived by hand here, or against an independent oracle (brute force over all
matchings, scipy's assignment solver, the double-sum formula of the van Rossum
distance). Traces are built by hand, so these tests do not depend on any simulator."""

import itertools
import json
import math

import jax.numpy as jnp
import matplotlib
import nir
import numpy as np
import pytest

import nirsim
import nirsim.cli
import nirsim.plot
from nirsim._compare import match_spikes, van_rossum, victor_purpura

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

TAU = 5e-3


# ----------------------------------------------------------------- helpers
def make_trace(
    trains,
    *,
    node="lif",
    t_end=1.0,
    dt=None,
    v=None,
    ts=None,
    save_dt=None,
    backend="ideal",
    extra_nodes=(),
):
    """A Trace of one node from per-neuron spike lists (``trains[neuron]``) or, for a
    batch, ``trains[batch][neuron]`` (then ``batch=True`` is inferred from nesting)."""
    batched = any(isinstance(x, list | tuple | np.ndarray) for x in trains[0])
    rows = trains if batched else [trains]
    n = len(rows[0])
    times, idx = [], []
    for row in rows:
        t = [x for k, tr in enumerate(row) for x in tr]
        i = [k for k, tr in enumerate(row) for _ in tr]
        times.append(t)
        idx.append(i)
    width = max(len(t) for t in times)
    tt = np.full((len(rows), width), np.inf)
    ii = np.full((len(rows), width), -1)
    for b, (t, i) in enumerate(zip(times, idx, strict=True)):
        tt[b, : len(t)] = t
        ii[b, : len(i)] = i
    if not batched:
        tt, ii = tt[0], ii[0]
    spikes = {node: nirsim.Spikes(tt, ii, n_neurons=n)}
    shapes = [(node, (n,))]
    for name, s in extra_nodes:
        spikes[name] = s
        shapes.append((name, (s.n_neurons,)))
    states = {}
    if v is not None:
        states[node] = {"v": jnp.asarray(v, dtype=float)}
    if ts is None:
        ts = np.zeros(0)
    return nirsim.Trace(
        spikes=spikes,
        states=states,
        ts=jnp.asarray(ts, dtype=float),
        result=jnp.zeros((len(rows),) if batched else (), int),
        t_end=t_end,
        save_dt=save_dt,
        dt=dt,
        backend=backend,
        shapes=tuple(shapes),
    )


def random_train(rng, n_max=5, t_max=0.05):
    return np.sort(rng.uniform(0, t_max, rng.integers(0, n_max + 1)))


def brute_force_vp(a, b, q):
    """Victor-Purpura by enumeration of every partial one-to-one pairing (crossing
    ones included): q * sum |dt| over pairs + one per unpaired spike."""
    n, m = len(a), len(b)
    best = float(n + m)
    for k in range(1, min(n, m) + 1):
        for ia in itertools.combinations(range(n), k):
            for jb in itertools.permutations(range(m), k):
                c = q * sum(abs(a[i] - b[j]) for i, j in zip(ia, jb, strict=True))
                best = min(best, c + n + m - 2 * k)
    return best


def brute_force_matching(a, b, tol):
    """(most pairs, smallest total |dt| among those) over every partial pairing."""
    best = (0, 0.0)
    for k in range(1, min(len(a), len(b)) + 1):
        for ia in itertools.combinations(range(len(a)), k):
            for jb in itertools.permutations(range(len(b)), k):
                d = [abs(a[i] - b[j]) for i, j in zip(ia, jb, strict=True)]
                if max(d) <= tol:
                    cand = (k, sum(d))
                    if cand[0] > best[0] or (cand[0] == best[0] and cand[1] < best[1]):
                        best = cand
    return best


def double_sum_van_rossum(a, b, tau):
    """D^2 = (1/2) [sum e^{-|t_i-t_j|/tau} + sum e^{-|s_i-s_j|/tau}
    - 2 sum e^{-|t_i-s_j|/tau}] (the textbook formula, evaluated directly)."""
    k = lambda x, y: np.exp(-np.abs(np.subtract.outer(x, y)) / tau).sum()
    return math.sqrt(max(0.5 * (k(a, a) + k(b, b) - 2 * k(a, b)), 0.0))


# ------------------------------------------------------------ identical
def test_identical_trains_give_zero():
    rng = np.random.default_rng(0)
    trains = [list(random_train(rng, 8, 0.5)) for _ in range(4)]
    tr = make_trace(trains)
    r = nirsim.compare(tr, tr)
    s = r.nodes["lif"]
    total = sum(len(t) for t in trains)
    assert s["ref_spikes"] == s["other_spikes"] == s["matched"] == total
    assert s["missed"] == s["extra"] == s["count_diff"] == 0
    assert s["f1"] == s["precision"] == s["recall"] == 1.0
    assert s["van_rossum"] == 0.0 and s["victor_purpura"] == 0.0
    assert s["mean_abs_dt"] == s["max_abs_dt"] == s["rms_dt"] == 0.0
    assert s["first_divergence"] is None
    assert r.summary["van_rossum"] == 0.0
    assert np.all(r.per_neuron("lif")["f1"] == 1.0)


# ---------------------------------------------------------- van Rossum
@pytest.mark.parametrize("d", [1e-4, 2e-3, 5e-3, 3e-2])
def test_van_rossum_one_spike_shifted(d):
    # With f = e^{-t/tau} H(t), one spike each: (f*x - f*y)(t) = e^{-(t-t0)/tau} on
    # [t0, t0+d) and (1 - e^{d/tau}) e^{-(t-t0)/tau} after. (1/tau) * integral of the
    # square = (1/2)(1 - e^{-2d/tau}) + (1/2)(1 - e^{-d/tau})^2 = 1 - e^{-d/tau}.
    expected = math.sqrt(1 - math.exp(-d / TAU))
    t0 = 0.1
    assert van_rossum([t0], [t0 + d], TAU) == pytest.approx(expected, rel=1e-12)
    r = nirsim.compare(make_trace([[t0]]), make_trace([[t0 + d]]), tau=TAU, tolerance=1.0)
    assert r.nodes["lif"]["van_rossum"] == pytest.approx(expected, rel=1e-12)


def test_van_rossum_one_spike_against_none():
    # (1/tau) * integral_0^inf e^{-2t/tau} dt = 1/2.
    assert van_rossum([0.3], [], TAU) == pytest.approx(math.sqrt(0.5), rel=1e-14)
    assert van_rossum([], [], TAU) == 0.0


def test_van_rossum_matches_double_sum_formula():
    rng = np.random.default_rng(1)
    for _ in range(50):
        a, b = random_train(rng, 8), random_train(rng, 8)
        # The double sums cancel: absolute error ~ 1e-16 * (n+m)^2 in D^2.
        assert van_rossum(a, b, TAU) == pytest.approx(
            double_sum_van_rossum(a, b, TAU), abs=1e-7
        )


# ------------------------------------------------------- Victor-Purpura
def test_victor_purpura_brute_force():
    rng = np.random.default_rng(2)
    for _ in range(150):
        a, b = random_train(rng, 4), random_train(rng, 4)
        q = float(rng.choice([10.0, 100.0, 400.0, 3000.0]))
        assert victor_purpura(a, b, q) == pytest.approx(brute_force_vp(a, b, q), abs=1e-12)


def test_victor_purpura_limits():
    # q = 0: shifting is free, only the count difference costs.
    assert victor_purpura([0.1, 0.2, 0.9], [0.5], 0.0) == 2.0
    # q = inf: only coincident spikes pair up.
    assert victor_purpura([0.1, 0.2], [0.1, 0.3], math.inf) == 2.0
    # one pair, q d < 2: the shift; q d > 2: delete + insert.
    assert victor_purpura([0.1], [0.1 + 1e-3], 1000.0) == pytest.approx(1.0)
    assert victor_purpura([0.1], [0.1 + 3e-3], 1000.0) == 2.0


def test_symmetry_and_triangle_inequality():
    rng = np.random.default_rng(3)
    q = 500.0
    for _ in range(100):
        a, b, c = (random_train(rng, 6) for _ in range(3))
        for f in (lambda x, y: van_rossum(x, y, TAU), lambda x, y: victor_purpura(x, y, q)):
            ab, ba, bc, ac = f(a, b), f(b, a), f(b, c), f(a, c)
            assert ab == pytest.approx(ba, abs=1e-12)
            assert ac <= ab + bc + 1e-12
        i, _ = match_spikes(a, b, 2e-3)
        j, _ = match_spikes(b, a, 2e-3)
        assert len(i) == len(j)


# ------------------------------------------------------------- matching
def greedy_nearest_first(a, b, tol):
    pairs = sorted((abs(x - y), i, j) for i, x in enumerate(a) for j, y in enumerate(b))
    used_a, used_b, out = set(), set(), []
    for d, i, j in pairs:
        if d <= tol and i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            out.append((i, j))
    return out


def test_optimal_matching_beats_greedy():
    ref, other = [0.0, 1.0], [0.9, 1.9]
    # Greedy takes the closest pair (1.0, 0.9) first; 0.0 and 1.9 are 1.9 apart.
    assert len(greedy_nearest_first(ref, other, 1.0)) == 1
    # Both 0.0-0.9 and 1.0-1.9 are within 1: the optimum pairs both.
    r = nirsim.compare(
        make_trace([ref], t_end=2.0), make_trace([other], t_end=2.0), tolerance=1.0
    )
    s = r.nodes["lif"]
    assert (s["matched"], s["missed"], s["extra"]) == (2, 0, 0)
    assert s["mean_dt"] == pytest.approx(0.9)


def test_matching_against_brute_force_and_assignment():
    from scipy.optimize import linear_sum_assignment

    rng = np.random.default_rng(4)
    tol = 4e-3
    for trial in range(120):
        small = trial < 60
        a = random_train(rng, 5 if small else 25)
        b = random_train(rng, 5 if small else 25)
        i, j = match_spikes(a, b, tol)
        assert len(set(i.tolist())) == len(i) and len(set(j.tolist())) == len(j)
        d = np.abs(b[j] - a[i])
        assert np.all(d <= tol * (1 + 1e-9))
        if small:
            k, cost = brute_force_matching(a, b, tol)
        else:
            # Min-cost assignment over (n+m) x (n+m): pair cost |dt|/tol (<= 1),
            # leaving a spike unpaired costs P > min(n, m)/2, so more pairs win first.
            n, m = len(a), len(b)
            big, P = 1e9, min(n, m) + 1.0
            c = np.full((n + m, m + n), big)
            dd = np.abs(np.subtract.outer(a, b)) / tol
            c[:n, :m] = np.where(dd <= 1, dd, big)
            c[:n, m:][np.diag_indices(n)] = P
            c[n:, :m][np.diag_indices(m)] = P
            c[n:, m:] = 0.0
            rows, cols = linear_sum_assignment(c)
            pairs = [
                (r_, c_) for r_, c_ in zip(rows, cols, strict=True) if r_ < n and c_ < m
            ]
            k = len(pairs)
            cost = sum(abs(a[r_] - b[c_]) for r_, c_ in pairs)
        assert len(i) == k
        assert d.sum() == pytest.approx(cost, abs=1e-12)


# ------------------------------------------------ counts, F1, timing stats
def test_precision_recall_f1_by_hand():
    ref = [0.1, 0.2, 0.3, 0.4]
    other = [0.1005, 0.25, 0.3, 0.5, 0.6]
    r = nirsim.compare(make_trace([ref]), make_trace([other]), tolerance=1e-3)
    s = r.nodes["lif"]
    # pairs: 0.1-0.1005 and 0.3-0.3; missed 0.2, 0.4; extra 0.25, 0.5, 0.6.
    assert (s["matched"], s["missed"], s["extra"]) == (2, 2, 3)
    assert s["count_diff"] == 1
    assert s["precision"] == pytest.approx(2 / 5)
    assert s["recall"] == pytest.approx(2 / 4)
    assert s["f1"] == pytest.approx(2 * 2 / (4 + 5))
    assert s["first_divergence"] == pytest.approx(0.2)
    np.testing.assert_allclose(r.missed_times("lif"), [0.2, 0.4])
    np.testing.assert_allclose(r.extra_times("lif"), [0.25, 0.5, 0.6])


def test_empty_trains_conventions():
    r = nirsim.compare(make_trace([[], [0.1]]), make_trace([[], []]))
    pn = r.per_neuron("lif")
    # neuron 0: nothing on either side; neuron 1: one missed spike.
    assert pn["f1"][0] == pn["precision"][0] == pn["recall"][0] == 1.0
    assert pn["recall"][1] == 0.0 and pn["precision"][1] == 1.0 and pn["f1"][1] == 0.0
    assert math.isnan(pn["mean_abs_dt"][1])
    assert r.nodes["lif"]["mean_abs_dt"] is None


def test_timing_error_by_hand():
    ref = [[1.0, 2.0, 3.0]]
    other = [[1.0002, 1.9997, 3.0001]]
    r = nirsim.compare(
        make_trace(ref, t_end=4.0), make_trace(other, t_end=4.0), tolerance=1e-3
    )
    s = r.nodes["lif"]
    # dt = other - ref = (2, -3, 1) * 1e-4
    assert s["mean_dt"] == pytest.approx(0.0, abs=1e-15)
    assert s["mean_abs_dt"] == pytest.approx(2e-4, rel=1e-9)
    assert s["rms_dt"] == pytest.approx(math.sqrt(14 / 3) * 1e-4, rel=1e-9)
    assert s["max_abs_dt"] == pytest.approx(3e-4, rel=1e-9)
    assert s["first_divergence"] is None
    # VP with the default cost 2/tol: 2000 * (2 + 3 + 1) * 1e-4.
    assert s["victor_purpura"] == pytest.approx(2000 * 6e-4, rel=1e-9)


def test_first_divergence_is_earliest_unmatched():
    ref = [[0.1, 0.2], [0.05]]
    other = [[0.1, 0.2 + 5e-3], [0.0502]]
    r = nirsim.compare(make_trace(ref), make_trace(other), tolerance=1e-3)
    pn = r.per_neuron("lif")
    # neuron 0: 0.2 missed and 0.205 extra -> 0.2; neuron 1 all matched.
    assert pn["first_divergence"][0] == pytest.approx(0.2)
    assert math.isnan(pn["first_divergence"][1])
    assert r.nodes["lif"]["first_divergence"] == pytest.approx(0.2)


# ----------------------------------------------------------- membrane
def test_membrane_error_common_times_and_thresholds():
    ts = (np.arange(10) + 1) * 0.01
    v_ref = np.zeros((10, 2))
    v_oth = np.zeros((10, 2))
    v_oth[2, 0] = 0.6
    v_oth[7, 1] = -0.2
    v_oth[8, 1] = 0.4
    a = make_trace([[], []], v=v_ref, ts=ts, save_dt=0.01, t_end=0.1)
    # The other trace samples twice as often: every second sample is common.
    ts2 = (np.arange(20) + 1) * 0.005
    v2 = np.full((20, 2), 99.0)
    v2[1::2] = v_oth
    b = make_trace([[], []], v=v2, ts=ts2, save_dt=0.005, t_end=0.1)
    r = nirsim.compare(a, b)
    s = r.nodes["lif"]
    assert s["v_samples"] == 10 and s["v_normalised"] is False
    assert s["v_rms"] == pytest.approx(math.sqrt((0.36 + 0.04 + 0.16) / 20))
    assert s["v_max"] == pytest.approx(0.6)
    np.testing.assert_allclose(
        r.per_neuron("lif")["v_rms"], [math.sqrt(0.36 / 10), math.sqrt(0.2 / 10)]
    )
    assert "unnormalised" in r.table() and "common" in r.table()
    # Normalised by |v_threshold| per neuron: thresholds 2 and 4.
    r2 = nirsim.compare(a, b, thresholds={"lif": [2.0, 4.0]})
    e = [0.3**2, (0.2 / 4) ** 2, (0.4 / 4) ** 2]
    assert r2.nodes["lif"]["v_rms"] == pytest.approx(math.sqrt(sum(e) / 20))
    assert r2.nodes["lif"]["v_max"] == pytest.approx(0.3)
    assert r2.nodes["lif"]["v_normalised"] is True
    # ... or from a Network's LIF node.
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([2])}),
            "lif": nir.LIF(
                tau=np.array([0.01, 0.01]),
                r=np.ones(2),
                v_leak=np.zeros(2),
                v_threshold=np.array([2.0, 4.0]),
            ),
            "output": nir.Output(output_type={"output": np.array([2])}),
        },
        edges=[("input", "lif"), ("lif", "output")],
    )
    r3 = nirsim.compare(a, b, network=nirsim.load(g))
    assert r3.nodes["lif"]["v_rms"] == pytest.approx(r2.nodes["lif"]["v_rms"])


def test_membrane_zero_order_hold_alignment():
    ts_ref = (np.arange(10) + 1) * 0.01  # 0.01 ... 0.1
    ts_oth = 0.001 + 0.004 * np.arange(25)  # 0.001 ... 0.097, never on the ref grid
    v_ref = np.zeros((10, 1))
    v_oth = ts_oth[:, None].copy()  # the other's v equals its sample time
    a = make_trace([[]], v=v_ref, ts=ts_ref, save_dt=0.01, t_end=0.1)
    b = make_trace([[]], v=v_oth, ts=ts_oth, t_end=0.1)
    r = nirsim.compare(a, b)
    # Last other sample at or before each ref time; 0.1 is past the other's last
    # sample (0.097), so it is dropped.
    held = [0.009, 0.017, 0.029, 0.037, 0.049, 0.057, 0.069, 0.077, 0.089]
    s = r.nodes["lif"]
    assert s["v_samples"] == 9
    assert s["v_rms"] == pytest.approx(math.sqrt(np.mean(np.square(held))), rel=1e-12)
    assert s["v_max"] == pytest.approx(0.089)
    assert "zero-order hold" in r.settings["membrane_alignment"]


# ------------------------------------------------------ grid convention
def test_grid_time_convention():
    dt = 2.0**-10  # a power of two: n*dt + dt/2 == (n + 1/2)*dt exactly
    steps = [[3, 400], [17]]
    grid = make_trace([[k * dt for k in s] for s in steps], dt=dt, backend="euler")
    exact = make_trace([[(k + 0.5) * dt for k in s] for s in steps])
    r0 = nirsim.compare(exact, grid)
    assert r0.settings["tolerance"] == dt  # default: the larger dt
    assert r0.settings["cost"] == pytest.approx(2 / dt)
    s = r0.nodes["lif"]
    assert s["matched"] == 3 and s["max_abs_dt"] == pytest.approx(dt / 2)
    assert s["mean_dt"] == pytest.approx(-dt / 2)
    one = 1 - math.exp(-dt / 2 / TAU)  # D^2 of one spike shifted by dt/2
    # node distance: sqrt(sum over neurons of D^2); the spikes of neuron 0 are 397 dt
    # (78 tau) apart, so its D^2 is 2 * one to e^-78.
    assert s["van_rossum"] == pytest.approx(math.sqrt(3 * one), rel=1e-9)
    assert "bin start" in r0.table()
    r1 = nirsim.compare(exact, grid, grid_time="centre")
    assert r1.nodes["lif"]["van_rossum"] == pytest.approx(0.0, abs=1e-12)
    assert r1.nodes["lif"]["max_abs_dt"] == pytest.approx(0.0, abs=1e-15)
    assert r1.settings["grid_time"] == "centre" and "bin centre" in r1.table()


def test_default_tolerance_for_exact_traces():
    tr = make_trace([[0.1]])
    r = nirsim.compare(tr, tr)
    assert r.settings["tolerance"] == 1e-3 and r.settings["tau"] == 5e-3
    assert r.settings["cost"] == pytest.approx(2e3)


# ------------------------------------------------- batch and many nodes
def test_batch_counts_summed_distances_averaged():
    d = 2e-3
    ref = make_trace([[[0.1]], [[0.2]]])
    oth = make_trace([[[0.1]], [[0.2 + d]]])
    r = nirsim.compare(ref, oth, tolerance=1e-2)
    s = r.nodes["lif"]
    assert s["ref_spikes"] == 2 and s["matched"] == 2
    assert s["van_rossum"] == pytest.approx(0.5 * math.sqrt(1 - math.exp(-d / TAU)))
    assert r.per_neuron("lif")["van_rossum"].shape == (2, 1)
    assert "batch of 2" in r.table()


def test_graph_summary_over_nodes():
    second = nirsim.Spikes([0.3], [0], n_neurons=1)
    ref = make_trace([[0.1]], extra_nodes=[("out", second)])
    oth = make_trace([[]], extra_nodes=[("out", nirsim.Spikes([0.3], [0], n_neurons=1))])
    r = nirsim.compare(ref, oth)
    assert set(r.nodes) == {"lif", "out"}
    g = r.summary
    assert (g["ref_spikes"], g["other_spikes"], g["matched"], g["missed"]) == (2, 1, 1, 1)
    assert g["f1"] == pytest.approx(2 / 3)
    assert g["van_rossum"] == pytest.approx(math.sqrt(0.5))
    assert g["victor_purpura"] == pytest.approx(1.0)
    only = nirsim.compare(ref, oth, nodes="out")
    assert list(only.nodes) == ["out"] and only.summary["f1"] == 1.0


# --------------------------------------------------------------- refusals
def test_refusals():
    a = make_trace([[0.1], [0.2]])
    with pytest.raises(nirsim.InputError, match="no node in common"):
        nirsim.compare(a, make_trace([[0.1], [0.2]], node="other"))
    with pytest.raises(nirsim.InputError, match="shapes differ"):
        nirsim.compare(a, make_trace([[0.1], [0.2], []]))
    with pytest.raises(nirsim.InputError, match="batch sizes differ"):
        nirsim.compare(a, make_trace([[[0.1], [0.2]], [[0.1], [0.2]]]))
    with pytest.raises(nirsim.InputError, match="other units of time"):
        nirsim.compare(a, make_trace([[100.0], [200.0]], t_end=1000.0))
    with_out = make_trace(
        [[0.1], [0.2]], extra_nodes=[("out", nirsim.Spikes([0.3], [0], n_neurons=1))]
    )
    with pytest.raises(nirsim.InputError, match="'out' is not recorded in the other"):
        nirsim.compare(with_out, a, nodes=["out"])
    with pytest.raises(nirsim.InputError, match="grid_time"):
        nirsim.compare(a, a, grid_time="end")
    with pytest.raises(nirsim.InputError, match="tau"):
        nirsim.compare(a, a, tau=0.0)


def test_nir_graph_data_and_dict_json(tmp_path):
    a = make_trace([[0.1, 0.2], [0.3]])
    b = make_trace([[0.1002], [0.3, 0.5]])
    r = nirsim.compare(a, b.to_nir_data())
    assert r.nodes["lif"]["matched"] == 2
    d = json.loads(r.to_json(per_neuron=True))
    assert d["nodes"]["lif"]["extra"] == 1 and d["nodes"]["lif"]["missed"] == 1
    assert d["per_neuron"]["lif"]["mean_abs_dt"][1] == pytest.approx(0.0)
    assert r.to_dict()["summary"]["f1"] == pytest.approx(4 / 6)
    # file paths work too
    a.save(tmp_path / "a.h5")
    assert nirsim.compare(tmp_path / "a.h5", a).nodes["lif"]["f1"] == 1.0


# -------------------------------------------------------------------- CLI
def _files(tmp_path):
    ts = (np.arange(5) + 1) * 0.02
    a = make_trace(
        [[0.01, 0.05], [0.07]], v=np.zeros((5, 2)), ts=ts, save_dt=0.02, t_end=0.1
    )
    b = make_trace(
        [[0.0105, 0.05], []],
        v=np.full((5, 2), 0.1),
        ts=ts,
        save_dt=0.02,
        t_end=0.1,
        dt=1e-3,
        backend="euler",
    )
    pa, pb = tmp_path / "ref.h5", tmp_path / "other.h5"
    a.save(pa)
    b.save(pb)
    return str(pa), str(pb)


def test_cli_table_json_plot(tmp_path, capsys):
    pa, pb = _files(tmp_path)
    assert nirsim.cli.main(["compare", pa, pb]) == 0
    out = capsys.readouterr().out
    assert "lif" in out and "total" in out and "F1" in out
    assert nirsim.cli.main(["compare", pa, pb, "--json", "--tolerance", "1e-3"]) == 0
    d = json.loads(capsys.readouterr().out)
    s = d["nodes"]["lif"]
    assert (s["matched"], s["missed"], s["extra"]) == (2, 1, 0)
    assert d["settings"]["tolerance"] == 1e-3
    assert s["v_rms"] == pytest.approx(0.1) and s["v_normalised"] is False
    png = tmp_path / "cmp.png"
    assert nirsim.cli.main(["compare", pa, pb, "--plot", str(png), "--tau", "1e-2"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "0.01" in capsys.readouterr().out


def test_cli_refuses_mismatched_files(tmp_path, capsys):
    pa, _ = _files(tmp_path)
    other = make_trace([[0.1], [0.2], [0.3]], t_end=0.1)
    po = tmp_path / "three.h5"
    other.save(po)
    assert nirsim.cli.main(["compare", pa, str(po)]) == 2
    err = capsys.readouterr().err.strip()
    assert "shapes differ" in err and len(err.splitlines()) == 1
    slow = make_trace([[10.0], [20.0]], t_end=100.0)
    ps = tmp_path / "ms.h5"
    slow.save(ps)
    assert nirsim.cli.main(["compare", pa, str(ps)]) == 2
    assert "other units of time" in capsys.readouterr().err


# ------------------------------------------------------------------ plots
def test_plots_return_figures():
    ts = (np.arange(50) + 1) * 0.002
    v1 = np.sin(ts)[:, None] * np.ones((1, 2))
    a = make_trace([[0.01, 0.05], [0.07]], v=v1, ts=ts, save_dt=0.002, t_end=0.1)
    b = make_trace(
        [[0.011], [0.07, 0.09]], v=v1 + 0.01, ts=ts, save_dt=0.002, t_end=0.1, dt=1e-3
    )
    r = nirsim.compare(a, b)
    figs = [
        nirsim.plot.raster([a, b], "lif", labels=["ideal", "euler"]),
        nirsim.plot.membrane([a, b], "lif", neuron=1),
        nirsim.plot.divergence(r),
        nirsim.plot.divergence((a, b), tolerance=2e-3),
        nirsim.plot.lif_comparison(
            [a, b, a],
            ["ideal", "euler", "again"],
            input_current=nirsim.Current(np.ones((100, 2)), dt=1e-3),
            threshold=1.0,
        ),
        nirsim.plot.lif_comparison([a, b], ["ideal", "euler"], node="lif", neuron=1),
        r.plot(),
        r.plot("raster"),
        r.plot("membrane", node="lif", neuron=1),
    ]
    for fig in figs:
        assert isinstance(fig, Figure)
        assert fig.axes
        plt.close(fig)
    # the LIF figure: input on top plus one axis per trace
    fig = nirsim.plot.lif_comparison(
        [a, b], ["x", "y"], input_current=(ts, np.ones_like(ts))
    )
    assert len(fig.axes) == 3
    plt.close(fig)
