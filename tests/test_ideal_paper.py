"""The NIR paper's experiments under the ideal solver.

* The LIF experiment (Pedersen et al. 2024, Fig. 4): one LIF behind a 1x1 Affine,
  driven by the paper's binary pattern read as a piecewise-constant current. Oracles:
  an exact bin-by-bin computation written here (exponential per bin, crossing time in
  closed form, reset), and the paper's own exact reference ``lif_exact.csv``.
* The Braille graphs (recurrent CubaLIF, exported from snnTorch with dt = 1e-4 s, so
  spikes have area 1e-4): the first hidden spikes against a forward-Euler run of the
  same equations at dt = 1e-7 s written here.

The shared folder of paper files is optional: tests that need it skip without it.
"""

import math

import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest

import nirsim

DT = 1e-4  # s: the experiment's bin width
# The 100 values of the paper's input (shared/data/nir-paper/README.md); each is
# followed by nine zeros, giving 1000 bins of DT.
PATTERN = np.array(
    "0 0 0 0 0 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 0 0 0 0 1 0 0 0 1 1 0 0 1 0 1 0 0 "
    "1 1 0 1 1 1 1 1 1 1 1 1 1 1 0 0 0 0 0 0 0 0 0 0 0 0 0 1 1 1 1 1 1 1 1 1 1 1 1 0 "
    "0 0 0 0 1 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0".split(),
    dtype=float,
)
PAPER_LIF = dict(tau=0.0025, r=1.0, v_leak=0.0, v_threshold=0.1, v_reset=0.0)
PAPER_SPIKE_BINS = [460, 510, 710, 760]


def paper_input():
    x = np.zeros(1000)
    x[::10] = PATTERN
    return x


def paper_graph():
    p = {k: np.array([v]) for k, v in PAPER_LIF.items()}
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([1])}),
            "affine": nir.Affine(weight=np.array([[1.0]]), bias=np.array([0.0])),
            "lif": nir.LIF(**p),
            "output": nir.Output(output_type={"output": np.array([1])}),
        },
        edges=[("input", "affine"), ("affine", "lif"), ("lif", "output")],
    )


def exact_lif_bins(x, *, tau, r, v_leak, v_threshold, v_reset):
    """Exact LIF under ``x[n]`` on ``[n DT, (n+1) DT)``: in each bin ``v`` relaxes to
    ``v_inf = v_leak + r x[n]``; if ``v_inf > v_threshold > v`` it crosses after
    ``h = tau log((v - v_inf)/(v_threshold - v_inf))``, resets to ``v_reset`` and
    goes on. Returns spike times and ``v`` at the bin ends ``(n+1) DT``."""
    v, spikes, out = v_leak, [], []
    for n, xn in enumerate(x):
        t, t_bin_end = n * DT, (n + 1) * DT
        v_inf = v_leak + r * xn
        while True:
            if v_inf > v_threshold > v:
                h = tau * math.log((v - v_inf) / (v_threshold - v_inf))
                if t + h < t_bin_end:
                    t += h
                    spikes.append(t)
                    v = v_reset
                    continue
            v = v_inf + (v - v_inf) * math.exp(-(t_bin_end - t) / tau)
            break
        out.append(v)
    return np.array(spikes), np.array(out)


@pytest.fixture(scope="module")
def paper_trace():
    current = nirsim.Current(paper_input()[:, None], DT)
    return nirsim.simulate(paper_graph(), current, t_end=0.1, save_dt=DT)


def test_paper_lif_spike_bins(paper_trace):
    times = paper_trace.spike_trains("lif")[0]
    assert np.floor(times / DT).astype(int).tolist() == PAPER_SPIKE_BINS


def test_paper_lif_against_exact_bins(paper_trace):
    spikes, v = exact_lif_bins(paper_input(), **PAPER_LIF)
    assert np.floor(spikes / DT).astype(int).tolist() == PAPER_SPIKE_BINS
    # spike times: both sides solve the crossing in closed form; a few ulps
    np.testing.assert_allclose(paper_trace.spike_trains("lif")[0], spikes, rtol=1e-12)
    ts = np.asarray(paper_trace.ts)
    np.testing.assert_allclose(ts, DT * np.arange(1, 1001), rtol=1e-14)
    # v ~ 0.1 from exact exponentials on both sides: 1e-12 is ~1e4 ulps of slack
    got = np.asarray(paper_trace.states["lif"]["v"])[:, 0]
    np.testing.assert_allclose(got, v, rtol=0, atol=1e-12)


def test_paper_lif_against_lif_exact_csv(paper_trace, shared_data):
    csv = np.loadtxt(shared_data / "lif_exact.csv", delimiter=",")
    assert csv.shape == (1000, 3)
    np.testing.assert_array_equal(csv[:, 0], paper_input())
    assert np.flatnonzero(csv[:, 2]).tolist() == PAPER_SPIKE_BINS
    # the paper's reference is an independent exact computation stored with ~8
    # significant digits of agreement: 1e-7 on values of ~0.1
    got = np.asarray(paper_trace.states["lif"]["v"])[:, 0]
    np.testing.assert_allclose(got, csv[:, 1], rtol=0, atol=1e-7)


# ------------------------------------------------------------------------- Braille
BRAILLE = {
    "braille_noDelay_bias_zero.nir": "to_v_reset",
    "braille_noDelay_noBias_subtract.nir": "subtract",
}
AREA = 1e-4  # spike area of graphs exported from snnTorch at dt = 1e-4 s
N_BINS = 256
EULER_DT = 1e-7  # s: 1000 Euler steps per input bin
N_FIRST = 20


def dense(node, n_out):
    """Weight and bias of an Affine or Linear NIR node."""
    w = np.asarray(node.weight, float)
    b = np.asarray(getattr(node, "bias", np.zeros(n_out)), float)
    return w, np.broadcast_to(b, (n_out,))


def euler_hidden_spikes(graph, raster, subtract, n_steps):
    """Forward Euler at EULER_DT for the hidden layer ``lif1.lif`` of a Braille
    graph (its inputs: fc1 from the input, lif1.w_rec from itself):

    * input impulses (area AREA at each bin start) jump ``i += w_in W1 a / tau_syn``
      at the step starting at that instant;
    * ``i += dt (w_in (b1 + b_rec) - i)/tau_syn``, ``v += dt (v_leak - v + r i)/tau_mem``
      with the old ``i``;
    * a neuron fires when ``v >= v_threshold`` after a step (time linearly
      interpolated inside the step), then resets (to ``v_reset`` at the crossing,
      followed by an Euler sub-step over the rest of the step, so that resets do
      not each lose up to a step; or by subtraction, which keeps the overshoot);
      its spike reaches the layer through W_rec as a jump at the start of the next
      step.
    """
    lif = graph.nodes["lif1.lif"]
    names = ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in")
    p = {k: np.asarray(getattr(lif, k), float) for k in names}
    n = p["tau_mem"].shape[0]
    w1, b1 = dense(graph.nodes["fc1"], n)
    w_rec, b_rec = dense(graph.nodes["lif1.w_rec"], n)
    drive = b1 + b_rec
    steps_per_bin = round(DT / EULER_DT)
    in_jump = (p["w_in"] / p["tau_syn"]) * ((raster.astype(float) * AREA) @ w1.T)
    rec_jump = (p["w_in"] / p["tau_syn"])[:, None] * w_rec * AREA

    def step(carry, k):
        i, v, fired_prev = carry
        at_bin = (k % steps_per_bin) == 0
        i = i + jnp.where(at_bin, jnp.asarray(in_jump)[k // steps_per_bin], 0.0)
        i = i + jnp.asarray(rec_jump) @ fired_prev
        i_new = i + EULER_DT * (p["w_in"] * drive - i) / p["tau_syn"]
        v_new = v + EULER_DT * (p["v_leak"] - v + p["r"] * i) / p["tau_mem"]
        fired = v_new >= p["v_threshold"]
        frac = (p["v_threshold"] - v) / (v_new - v)
        t_spike = jnp.where(fired, (k + frac) * EULER_DT, jnp.inf)
        if subtract:
            v_new = jnp.where(fired, v_new - (p["v_threshold"] - p["v_reset"]), v_new)
        else:  # from v_reset at the crossing, an Euler sub-step over the rest
            rest = (1 - frac) * EULER_DT
            v_after = (
                p["v_reset"]
                + rest * (p["v_leak"] - p["v_reset"] + p["r"] * i) / p["tau_mem"]
            )
            v_new = jnp.where(fired, v_after, v_new)
        return (i_new, v_new, fired.astype(float)), t_spike

    init = (jnp.zeros(n), jnp.asarray(p["v_leak"]), jnp.zeros(n))
    _, t = jax.jit(lambda: jax.lax.scan(step, init, jnp.arange(n_steps)))()
    t = np.asarray(t)
    k, j = np.nonzero(np.isfinite(t))
    return t[k, j], j


@pytest.mark.parametrize("name", sorted(BRAILLE))
def test_braille_first_hidden_spikes_against_euler(shared_data, name):
    path = shared_data / name
    if not path.exists():
        pytest.skip(f"{path} not found")
    reset = BRAILLE[name]
    raster = np.random.default_rng(0).uniform(size=(N_BINS, 12)) < 0.1
    trace = nirsim.simulate(
        path,
        nirsim.Spikes.from_grid(raster, DT),
        t_end=N_BINS * DT,
        spike_area=AREA,
        reset=reset,
    )
    s = trace.spikes["lif1.lif"]
    valid = np.asarray(s.indices) >= 0
    t_ideal = np.asarray(s.times)[valid]
    i_ideal = np.asarray(s.indices)[valid]
    assert len(t_ideal) >= N_FIRST
    t_last = t_ideal[N_FIRST - 1]
    # Euler to just after the 20th ideal hidden spike
    n_steps = math.ceil((t_last + 2e-5) / EULER_DT)
    t_euler, i_euler = euler_hidden_spikes(
        nir.read(path), raster, reset == "subtract", n_steps
    )
    # Forward Euler at 1e-7 s on time constants >= 2e-4 s: relative state error
    # ~dt/(2 tau) ~ 2.5e-4, spike-time error ~1e-7 s, plus up to one step (1e-7 s)
    # for recurrent spikes delivered at the next step; 1e-6 s bounds both with room,
    # and a wrong jump size, reset or delivery time moves spikes by far more.
    tol = 1e-6
    for j in np.unique(i_ideal[:N_FIRST]):
        mine = t_ideal[:N_FIRST][i_ideal[:N_FIRST] == j]
        theirs = np.sort(t_euler[i_euler == j])
        assert len(theirs) >= len(mine), (name, j, mine, theirs)
        np.testing.assert_allclose(
            theirs[: len(mine)], mine, rtol=0, atol=tol, err_msg=f"{name} neuron {j}"
        )
    # and Euler has no extra hidden spike before the 20th ideal one
    assert np.sum(t_euler < t_last - tol) <= N_FIRST
    assert np.sum(t_euler < t_last + tol) >= N_FIRST
