"""The ideal solver on single neurons of every NIR neuron type against closed forms
written here: constant and piecewise-constant currents, single impulses and impulse
trains, spike times of LIF, IF and CubaLIF under constant drive, sampled states, and
the two reset modes.

Every check uses one "zoo" graph: one Input of 4 channels fanning out to a node of each
type (LIF, LI, IF, I, CubaLI, CubaLIF), each with 4 independent neurons. Parameters
change from test to test but shapes, ``t_end``, ``dt`` and ``save_dt`` do not, so the
simulation compiles once per input kind (current, impulses) and reset mode.

Conventions under test (DESIGN.md section 1): ``v(0) = v_leak`` for leaky neurons, 0
for I/IF, ``i_syn(0) = 0``; a current value ``x[n]`` holds on ``[n dt, (n+1) dt)``; an
impulse of area ``a = spike_area * value`` makes LIF/LI jump by ``r a / tau``,
CubaLI/CubaLIF's ``i_syn`` by ``w_in a / tau_syn``, I/IF by ``r a``; row ``n`` of a
sampled state is its value at ``ts[n] = (n+1) save_dt``, after any reset there.
"""

import math

import nir
import numpy as np
import pytest
from scipy.optimize import brentq

import nirsim

N = 4  # neurons per node
T_END = 0.05  # s
DT_IN = 1e-3  # bin width of the piecewise-constant input currents (s)
N_BINS = 50  # bins covering [0, T_END)
SAVE_DT = 1e-3  # s: samples at the bin edges (n+1) * DT_IN
K_EVENTS = 8  # impulse lists are padded to this length (one compile for all)
KINDS = ("lif", "li", "if", "i", "cuba_li", "cuba_lif")
SPIKING = ("lif", "if", "cuba_lif")

# Spike times: the solver brackets each crossing and refines it to a few ulps of t,
# and errors add up over at most ~15 spikes per neuron here: 1e-9 relative is far
# above that and far below any modelling error (a wrong jump or reset moves times by
# more than 1e-6 relative).
RTOL_T = 1e-9
# Sampled states are O(1); both sides evaluate the same exponentials in float64 along
# different event sequences, which agrees to ~1e-15; 1e-12 leaves room for the
# rounding of spike times feeding through exp(-(t - t_k)/tau) with tau >= 2 ms.
ATOL_V = 1e-12

DEFAULTS = {
    "lif": dict(tau=0.01, r=1.0, v_leak=0.0, v_threshold=1.0, v_reset=0.0),
    "li": dict(tau=0.01, r=1.0, v_leak=0.0),
    "if": dict(r=1.0, v_threshold=1.0, v_reset=0.0),
    "i": dict(r=1.0),
    "cuba_li": dict(tau_syn=0.005, tau_mem=0.01, r=1.0, v_leak=0.0, w_in=1.0),
    "cuba_lif": dict(
        tau_syn=0.005,
        tau_mem=0.01,
        r=1.0,
        v_leak=0.0,
        v_threshold=1.0,
        v_reset=0.0,
        w_in=1.0,
    ),
}
NIR_CLASS = {
    "lif": nir.LIF,
    "li": nir.LI,
    "if": nir.IF,
    "i": nir.I,
    "cuba_li": nir.CubaLI,
    "cuba_lif": nir.CubaLIF,
}


# ------------------------------------------------------------------ building and running
def params(kind, **overrides):
    """Per-neuron parameter arrays of one node: defaults, overridden by scalars or
    length-N sequences."""
    out = {}
    for name, default in DEFAULTS[kind].items():
        value = overrides.pop(name, default)
        out[name] = np.broadcast_to(np.asarray(value, dtype=np.float64), (N,)).copy()
    assert not overrides, f"unknown parameters {overrides}"
    return out


def zoo(**per_kind):
    """The zoo graph; ``per_kind[kind]`` is a dict of parameter overrides."""
    nodes = {"input": nir.Input(input_type={"input": np.array([N])})}
    edges = []
    for kind in KINDS:
        nodes[kind] = NIR_CLASS[kind](**params(kind, **dict(per_kind.get(kind, {}))))
        nodes["out_" + kind] = nir.Output(output_type={"output": np.array([N])})
        edges += [("input", kind), (kind, "out_" + kind)]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def current(values):
    """Piecewise-constant current from ``values[bin, neuron]`` (broadcast from a
    scalar, a per-neuron vector or a full array)."""
    return nirsim.Current(np.broadcast_to(np.asarray(values, float), (N_BINS, N)), DT_IN)


def impulses(events):
    """Impulse list from ``(time, neuron, value)`` triples, padded to K_EVENTS."""
    assert len(events) <= K_EVENTS
    t = np.full(K_EVENTS, np.inf)
    i = np.full(K_EVENTS, -1)
    v = np.zeros(K_EVENTS)
    for k, (tk, ik, vk) in enumerate(events):
        t[k], i[k], v[k] = tk, ik, vk
    return nirsim.Spikes(t, i, v)


def run(graph, inputs, **kw):
    return nirsim.simulate(graph, inputs, t_end=T_END, save_dt=SAVE_DT, **kw)


def trains(trace, kind):
    return trace.spikes[kind].trains(N)


def assert_times(got, expected, what):
    got = np.asarray(got, float)
    expected = np.asarray(expected, float)
    assert got.shape == expected.shape, f"{what}: got {got}, expected {expected}"
    np.testing.assert_allclose(got, expected, rtol=RTOL_T, atol=0, err_msg=what)


# ---------------------------------------------------------------- closed forms (oracle)
def leaky(v0, x, h, tau, r, v_leak):
    """LIF/LI: ``tau dv/dt = v_leak - v + r x`` with x constant, after time h."""
    v_inf = v_leak + r * x
    return v_inf + (v0 - v_inf) * np.exp(-h / tau)


def cuba(i0, v0, x, h, tau_syn, tau_mem, r, v_leak, w_in):
    """CubaLI/CubaLIF with x constant, after time h.

    With ``D = i0 - w_in x``: ``i(h) = w_in x + D e^{-h/tau_syn}`` and
    ``v(h) - v_leak = r w_in x + (v0 - v_leak - r w_in x) e^{-h/tau_mem}
    + r D tau_syn/(tau_syn - tau_mem) (e^{-h/tau_syn} - e^{-h/tau_mem})``;
    for ``tau_syn == tau_mem = tau`` the last term is ``r D (h/tau) e^{-h/tau}``.
    """
    i_inf = w_in * x
    d = i0 - i_inf
    u_inf = r * i_inf
    es, em = np.exp(-h / tau_syn), np.exp(-h / tau_mem)
    if tau_syn == tau_mem:
        kernel = (h / tau_mem) * em
    else:
        kernel = tau_syn / (tau_syn - tau_mem) * (es - em)
    u = u_inf + (v0 - v_leak - u_inf) * em + r * d * kernel
    return i_inf + d * es, v_leak + u


def first_crossing(v_of_h, v_th, h_max, n_grid=4000):
    """First ``h`` in ``(0, h_max]`` with ``v_of_h(h) >= v_th``, or None: a fine scan
    (``v_of_h`` takes arrays) brackets the crossing (the cases here cross
    transversally), brentq refines it to ~1e-17 s."""
    hs = np.linspace(0.0, h_max, n_grid + 1)
    above = v_of_h(hs[1:]) >= v_th
    if not above.any():
        return None
    k = int(np.argmax(above))
    lo, hi = hs[k], hs[k + 1]
    if v_of_h(lo) >= v_th:  # only at lo = 0 (a state already at threshold fires)
        return lo
    return brentq(lambda h: v_of_h(h) - v_th, lo, hi, xtol=1e-18, rtol=1e-15, maxiter=500)


def exact_neuron(kind, p, x, events, ts, *, area=1.0, subtract=False):
    """Event-by-event exact solution of neuron ``p`` (scalar parameters): drive
    ``x[n]`` on ``[n DT_IN, (n+1) DT_IN)``, impulses ``(t, value)``, samples at ``ts``.

    Between instants (bin edges, impulse times, sample times) the drive is constant
    and the state follows the closed forms above; LIF and IF crossings are solved in
    closed form, CubaLIF crossings with brentq. At an instant: impulses jump the
    state, then a spiking neuron at or above threshold fires and resets, repeatedly
    (a cascade), then samples are taken. Returns ``(spike_times, v_samples,
    i_samples)``.
    """
    x = np.asarray(x, float)
    instants = sorted(
        {n * DT_IN for n in range(N_BINS + 1)}
        | {float(t) for t, _ in events}
        | {float(t) for t in ts}
        | {T_END}
    )
    instants = [t for t in instants if t <= T_END]
    leak = kind in ("lif", "li", "cuba_li", "cuba_lif")
    v = p["v_leak"] if leak else 0.0
    i = 0.0
    spikes, v_s, i_s = [], {}, {}
    sample_set = {float(t) for t in ts}

    def drive_at(t):
        n = math.floor(t / DT_IN)
        n += 1 if (n + 1) * DT_IN <= t else 0
        n -= 1 if n * DT_IN > t else 0
        return x[n] if 0 <= n < N_BINS else 0.0

    def advance(i, v, xc, h):
        if kind in ("lif", "li"):
            return i, leaky(v, xc, h, p["tau"], p["r"], p["v_leak"])
        if kind in ("if", "i"):
            return i, v + p["r"] * xc * h
        return cuba(i, v, xc, h, p["tau_syn"], p["tau_mem"], p["r"], p["v_leak"], p["w_in"])

    def fire(t, v):
        while kind in SPIKING and v >= p["v_threshold"]:
            spikes.append(t)
            drop = p["v_threshold"] - p["v_reset"]
            v = v - drop if subtract else p["v_reset"]
            assert len(spikes) < 10_000
        return v

    t = 0.0
    for t_next in instants + [None]:
        # the instant t: impulses, cascade, samples
        a = sum(val for tk, val in events if tk == t) * area
        if kind in ("lif", "li"):
            v += p["r"] * a / p["tau"]
        elif kind in ("if", "i"):
            v += p["r"] * a
        else:
            i += p["w_in"] * a / p["tau_syn"]
        v = fire(t, v)
        if t in sample_set:
            v_s[t], i_s[t] = v, i
        if t_next is None:
            break
        if t_next <= t:
            continue
        xc = drive_at(t)
        # drift to t_next, stopping at every threshold crossing on the way
        while True:
            h_max = t_next - t
            if h_max <= 0:  # a crossing landed on t_next (after rounding)
                t = t_next
                break
            hc = None
            if kind == "lif":
                v_inf = p["v_leak"] + p["r"] * xc
                if v_inf > p["v_threshold"] > v:
                    hc = p["tau"] * math.log((v - v_inf) / (p["v_threshold"] - v_inf))
            elif kind == "if":
                if p["r"] * xc > 0 and v < p["v_threshold"]:
                    hc = (p["v_threshold"] - v) / (p["r"] * xc)
            elif kind == "cuba_lif":
                hc = first_crossing(
                    lambda h, i=i, v=v, xc=xc: advance(i, v, xc, h)[1],
                    p["v_threshold"],
                    h_max,
                )
            if hc is None or hc > h_max or hc <= 0:
                i, v = advance(i, v, xc, h_max)
                t = t_next
                break
            i, v = advance(i, v, xc, hc)
            t = t + hc
            v = fire(t, max(v, p["v_threshold"]))
    order = [float(t) for t in ts]
    return (
        np.array(spikes),
        np.array([v_s[t] for t in order]),
        np.array([i_s[t] for t in order]),
    )


def scalar_params(kind, overrides, k):
    """Parameters of neuron ``k`` of a node, as floats."""
    return {n: float(a[k]) for n, a in params(kind, **dict(overrides)).items()}


# --------------------------------------------------------------- LIF: constant current
LIF_CONST = dict(
    tau=[0.01, 0.005, 0.02, 0.01],
    r=[1.0, 2.0, 0.5, 1.0],
    v_leak=[0.0, -0.2, 0.1, 0.0],
    v_threshold=[1.0, 0.8, 1.2, 1.0],
    v_reset=[0.0, -0.5, 0.3, 0.0],
)
LIF_CURRENT = np.array([1.7, 0.9, 5.0, 0.6])  # neuron 3 stays below threshold


@pytest.fixture(scope="module")
def lif_constant_trace():
    return run(zoo(lif=LIF_CONST), current(LIF_CURRENT))


def lif_constant_expected(k):
    p = scalar_params("lif", LIF_CONST, k)
    tau, r, v_leak = p["tau"], p["r"], p["v_leak"]
    v_th, v_reset = p["v_threshold"], p["v_reset"]
    current_k = LIF_CURRENT[k]
    if r * current_k <= v_th - v_leak:
        return np.array([]), p
    # first spike from v(0) = v_leak: DESIGN.md section 4
    t1 = -tau * math.log(1 - (v_th - v_leak) / (r * current_k))
    # then from v_reset every T (v_inf = v_leak + r I)
    v_inf = v_leak + r * current_k
    period = tau * math.log((v_inf - v_reset) / (v_inf - v_th))
    n = math.floor((T_END - t1) / period) + 1
    return t1 + period * np.arange(n), p


def test_lif_first_spike_and_period_under_constant_current(lif_constant_trace):
    for k in range(N):
        expected, _ = lif_constant_expected(k)
        assert_times(trains(lif_constant_trace, "lif")[k], expected, f"LIF neuron {k}")
    # the cases are not degenerate: several spikes, one silent neuron
    counts = [len(lif_constant_expected(k)[0]) for k in range(N)]
    assert min(counts[:3]) >= 3 and counts[3] == 0, counts


def test_lif_constant_current_sampled_v(lif_constant_trace):
    ts = np.asarray(lif_constant_trace.ts)
    np.testing.assert_allclose(ts, SAVE_DT * (np.arange(len(ts)) + 1), rtol=1e-15)
    v = np.asarray(lif_constant_trace.states["lif"]["v"])
    assert v.shape == (len(ts), N)
    for k in range(N):
        spikes, p = lif_constant_expected(k)
        assert np.all(np.abs(ts[:, None] - spikes[None, :]) > 1e-6)  # no sample at a spike
        for n, t in enumerate(ts):
            before = spikes[spikes <= t]
            t0, v0 = (before[-1], p["v_reset"]) if len(before) else (0.0, p["v_leak"])
            expected = leaky(v0, LIF_CURRENT[k], t - t0, p["tau"], p["r"], p["v_leak"])
            assert abs(v[n, k] - expected) <= ATOL_V, (k, n, v[n, k], expected)


# ------------------------------------------------- piecewise-constant current, all kinds
PWC_PARAMS = dict(
    lif=dict(
        tau=[0.01, 0.004, 0.02, 0.008],
        v_leak=[0.0, 0.1, -0.1, 0.0],
        v_threshold=[0.6, 0.5, 0.5, 0.4],
        v_reset=[0.0, -0.2, 0.1, 0.0],
    ),
    li=dict(tau=[0.01, 0.003, 0.02, 0.05], r=[1.0, 2.0, 0.5, 1.5], v_leak=[0, 0.2, -1, 0]),
    **{"if": dict(r=[1.0, 0.5, 2.0, 1.0], v_threshold=[0.01, 0.005, 0.02, 0.008])},
    i=dict(r=[1.0, -0.5, 2.0, 3.0]),
    cuba_li=dict(
        tau_syn=[0.005, 0.01, 0.002, 0.004],
        tau_mem=[0.01, 0.01, 0.006, 0.004],
        w_in=[1.0, 2.0, 0.5, 1.0],
        v_leak=[0.0, 0.1, -0.2, 0.0],
    ),
    cuba_lif=dict(
        tau_syn=[0.005, 0.01, 0.002, 0.004],
        tau_mem=[0.01, 0.01, 0.006, 0.004],
        w_in=[1.0, 2.0, 0.5, 1.0],
        v_threshold=[0.5, 0.8, 0.4, 0.6],
        v_reset=[0.0, 0.1, -0.3, 0.2],
    ),
)


@pytest.fixture(scope="module")
def pwc_case():
    rng = np.random.default_rng(1)
    # bins of random height, a third of them 0, some negative
    x = rng.uniform(-0.5, 3.0, size=(N_BINS, N)) * (rng.uniform(size=(N_BINS, N)) > 0.3)
    return x, run(zoo(**PWC_PARAMS), current(x))


@pytest.mark.parametrize("kind", KINDS)
def test_piecewise_constant_current(pwc_case, kind):
    x, trace = pwc_case
    ts = np.asarray(trace.ts)
    for k in range(N):
        p = scalar_params(kind, PWC_PARAMS[kind], k)
        spikes, v_exp, i_exp = exact_neuron(kind, p, x[:, k], [], ts)
        np.testing.assert_allclose(
            np.asarray(trace.states[kind]["v"])[:, k], v_exp, rtol=0, atol=ATOL_V
        )
        if kind.startswith("cuba"):
            np.testing.assert_allclose(
                np.asarray(trace.states[kind]["i_syn"])[:, k], i_exp, rtol=0, atol=ATOL_V
            )
        if kind in SPIKING:
            assert_times(trains(trace, kind)[k], spikes, f"{kind} neuron {k}")
    if kind in SPIKING:  # every spiking neuron fires a few times in this input
        assert all(len(tr) >= 2 for tr in trains(trace, kind)), trains(trace, kind)


def test_li_samples_at_bin_edges_follow_the_bin_recursion(pwc_case):
    """A current value changes exactly at a bin edge: at ``t = n dt`` the LI state
    is the bin-by-bin recursion ``v_{n+1} = v_inf[n] + (v_n - v_inf[n]) e^{-dt/tau}``
    (a change half a bin off would move it by ~1e-2)."""
    x, trace = pwc_case
    v = np.asarray(trace.states["li"]["v"])
    for k in range(N):
        p = scalar_params("li", PWC_PARAMS["li"], k)
        vn, expected = p["v_leak"], []
        for n in range(N_BINS):
            v_inf = p["v_leak"] + p["r"] * x[n, k]
            vn = v_inf + (vn - v_inf) * math.exp(-DT_IN / p["tau"])
            expected.append(vn)
        np.testing.assert_allclose(v[:, k], expected, rtol=0, atol=ATOL_V)


def test_i_integrates_the_current(pwc_case):
    """I: ``v(n dt) = r dt sum_{m<n} x[m]`` exactly."""
    x, trace = pwc_case
    r = params("i", **PWC_PARAMS["i"])["r"]
    expected = r * DT_IN * np.cumsum(x, axis=0)
    np.testing.assert_allclose(np.asarray(trace.states["i"]["v"]), expected, atol=ATOL_V)


# ------------------------------------------------------------------ IF and I: ramps
IF_PARAMS = dict(r=[1.0, 2.0, 0.5, 1.0], v_threshold=[1.0, 1.0, 0.3, 2.0])
IF_CURRENT = np.array([130.0, 70.3, 250.7, 145.1])


def test_if_ramp_spike_times():
    """From v = 0 and back to v_reset = 0 at each spike, an IF under a constant
    current I fires at ``k v_th / (r I)``, k = 1, 2, ..."""
    trace = run(zoo(**{"if": IF_PARAMS}), current(IF_CURRENT))
    ts = np.asarray(trace.ts)
    v = np.asarray(trace.states["if"]["v"])
    for k in range(N):
        p = scalar_params("if", IF_PARAMS, k)
        period = p["v_threshold"] / (p["r"] * IF_CURRENT[k])
        expected = period * np.arange(1, math.floor(T_END / period) + 1)
        expected = expected[expected <= T_END]
        assert_times(trains(trace, "if")[k], expected, f"IF neuron {k}")
        assert len(expected) >= 2
        # between spikes v is the ramp r I (t - t_k) from v_reset = 0
        last = np.array([expected[expected <= t].max(initial=0.0) for t in ts])
        np.testing.assert_allclose(
            v[:, k], p["r"] * IF_CURRENT[k] * (ts - last), rtol=0, atol=1e-9
        )  # 1e-9: slope r I ~ 100 V/s times ~1e-12 s of accumulated spike-time rounding


# ------------------------------------------------------- CubaLIF: constant current
CUBA_CONST = dict(
    tau_syn=[0.005, 0.01, 0.002, 0.004],
    tau_mem=[0.01, 0.01, 0.006, 0.004],  # neurons 1 and 3: tau_syn == tau_mem
    r=[1.0, 1.5, 2.0, 1.0],
    w_in=[1.0, 1.0, 0.5, 2.0],
    v_leak=[0.0, -0.1, 0.1, 0.0],
    v_threshold=[1.0, 1.0, 0.7, 1.2],
    v_reset=[0.0, -0.2, 0.1, 0.5],
)
CUBA_CURRENT = np.array([2.5, 1.2, 3.0, 1.4])


def cuba_u(t, p, current_k):
    """v(t) - v_leak from i = 0, v = v_leak under a constant current: ``r w I [1 -
    e^{-t/tm} - ts/(ts - tm) (e^{-t/ts} - e^{-t/tm})]`` (a difference of
    exponentials), and ``r w I [1 - e^{-t/tau} (1 + t/tau)]`` when ts == tm."""
    ts_, tm = p["tau_syn"], p["tau_mem"]
    a = p["r"] * p["w_in"] * current_k
    if ts_ == tm:
        return a * (1 - math.exp(-t / tm) * (1 + t / tm))
    return a * (
        1 - math.exp(-t / tm) - ts_ / (ts_ - tm) * (math.exp(-t / ts_) - math.exp(-t / tm))
    )


def cubalif_constant_spikes(p, current_k):
    """Spike times of CubaLIF ``p`` under a constant current from rest. First: the
    root of the closed-form difference of exponentials (brentq); then from
    ``(i(t_k), v_reset)`` with the general closed form (``i_syn`` is not reset, so
    ``i(t_k) = w I (1 - e^{-t_k/tau_syn})``)."""
    target = p["v_threshold"] - p["v_leak"]
    hi = 0.001
    while cuba_u(hi, p, current_k) < target:  # u rises monotonically from 0
        hi += 0.001
    t1 = brentq(
        lambda t: cuba_u(t, p, current_k) - target, hi - 0.001, hi, xtol=1e-18, rtol=1e-15
    )
    expected = [t1]
    cuba_p = [p[k] for k in ("tau_syn", "tau_mem", "r", "v_leak", "w_in")]
    while True:
        t_k = expected[-1]
        i_k = p["w_in"] * current_k * (1 - math.exp(-t_k / p["tau_syn"]))

        def v_after_reset(h, i_k=i_k):
            return cuba(i_k, p["v_reset"], current_k, h, *cuba_p)[1]

        h = first_crossing(v_after_reset, p["v_threshold"], T_END - t_k)
        if h is None:
            return np.array(expected)
        expected.append(t_k + h)


def test_cubalif_spike_times_under_constant_current():
    """Spike times against :func:`cubalif_constant_spikes`; includes tau_syn ==
    tau_mem (neurons 1 and 3)."""
    trace = run(zoo(cuba_lif=CUBA_CONST), current(CUBA_CURRENT))
    got = trains(trace, "cuba_lif")
    for k in range(N):
        p = scalar_params("cuba_lif", CUBA_CONST, k)
        expected = cubalif_constant_spikes(p, CUBA_CURRENT[k])
        assert len(expected) >= 2, (k, expected)
        assert_times(got[k], expected, f"CubaLIF neuron {k}")


def test_cubali_constant_current_sampled_states():
    trace = run(zoo(cuba_li=CUBA_CONST_LI), current(CUBA_CURRENT))
    ts = np.asarray(trace.ts)
    for k in range(N):
        p = scalar_params("cuba_li", CUBA_CONST_LI, k)
        u = np.array([cuba_u(t, p, CUBA_CURRENT[k]) for t in ts])
        i = p["w_in"] * CUBA_CURRENT[k] * (1 - np.exp(-ts / p["tau_syn"]))
        np.testing.assert_allclose(
            np.asarray(trace.states["cuba_li"]["v"])[:, k], p["v_leak"] + u, atol=ATOL_V
        )
        np.testing.assert_allclose(
            np.asarray(trace.states["cuba_li"]["i_syn"])[:, k], i, atol=ATOL_V
        )


CUBA_CONST_LI = {k: v for k, v in CUBA_CONST.items() if k in DEFAULTS["cuba_li"]}


# ------------------------------------------------------------------------- impulses
IMPULSE_PARAMS = dict(
    lif=dict(tau=[0.01, 0.005, 0.02, 0.01], r=[1.0, 2.0, 0.5, 1.0], v_leak=[0, 0.1, 0, 0]),
    li=dict(tau=[0.01, 0.005, 0.02, 0.01], r=[1.0, 2.0, 0.5, 1.0], v_leak=[0, 0.1, 0, 0]),
    **{"if": dict(r=[1.0, 2.0, 0.5, 1.0], v_threshold=[1.0, 2.0, 1.0, 1.0])},
    i=dict(r=[1.0, 2.0, 0.5, -1.0]),
    cuba_li=dict(
        tau_syn=[0.005, 0.004, 0.002, 0.01],
        tau_mem=[0.01, 0.004, 0.006, 0.02],
        w_in=[1.0, 2.0, 0.5, 1.0],
    ),
    cuba_lif=dict(
        tau_syn=[0.005, 0.004, 0.002, 0.01],
        tau_mem=[0.01, 0.004, 0.006, 0.02],
        w_in=[1.0, 2.0, 0.5, 1.0],
        v_threshold=[10.0, 10.0, 10.0, 10.0],
    ),
)
AREA = 2e-3  # spike_area != 1, so that area = spike_area * value is checked


def jump_v(kind, p, a):
    return p["r"] * a / p["tau"] if kind in ("lif", "li") else p["r"] * a


@pytest.fixture(scope="module")
def single_impulse_case():
    # neuron k gets one impulse at t_k (off the sample grid) of value val_k
    events = [(0.0123, 0, 1.0), (0.0031, 1, 0.5), (0.02, 2, 2.0), (0.0407, 3, -0.75)]
    graph = zoo(**IMPULSE_PARAMS)
    return events, run(graph, impulses(events), spike_area=AREA)


@pytest.mark.parametrize("kind", KINDS)
def test_single_impulse_response(single_impulse_case, kind):
    """One impulse of area ``a`` at t0: LIF/LI jump ``r a / tau`` then decay with tau;
    I/IF jump ``r a`` and hold; CubaLI/CubaLIF's ``i_syn`` jumps ``w_in a /
    tau_syn`` and ``v - v_leak = r di tau_s/(tau_s - tau_m) (e^{-s/tau_s} -
    e^{-s/tau_m})`` (``r di (s/tau) e^{-s/tau}`` for equal taus), ``s = t - t0``.
    All stay below threshold here."""
    events, trace = single_impulse_case
    ts = np.asarray(trace.ts)
    v = np.asarray(trace.states[kind]["v"])
    for t0, k, val in events:
        p = scalar_params(kind, IMPULSE_PARAMS[kind], k)
        a = AREA * val
        s = ts - t0
        after = s >= 0
        if kind in ("lif", "li"):
            expected = p["v_leak"] + jump_v(kind, p, a) * np.exp(-s / p["tau"]) * after
            v0 = p["v_leak"]
        elif kind in ("if", "i"):
            expected = jump_v(kind, p, a) * after
            v0 = 0.0
        else:
            di = p["w_in"] * a / p["tau_syn"]
            tsyn, tm = p["tau_syn"], p["tau_mem"]
            sp = np.where(after, s, 0.0)
            if tsyn == tm:
                kernel = sp / tm * np.exp(-sp / tm)
            else:
                kernel = tsyn / (tsyn - tm) * (np.exp(-sp / tsyn) - np.exp(-sp / tm))
            expected = p["v_leak"] + p["r"] * di * kernel * after
            v0 = p["v_leak"]
            np.testing.assert_allclose(
                np.asarray(trace.states[kind]["i_syn"])[:, k],
                di * np.exp(-sp / tsyn) * after,
                atol=ATOL_V,
            )
        np.testing.assert_allclose(v[:, k], expected, rtol=0, atol=ATOL_V)
        assert v[0, k] == pytest.approx(v0, abs=1e-15)  # the initial state
    for kind_ in SPIKING:
        assert int(trace.spikes[kind_].count()) == 0


@pytest.fixture(scope="module")
def impulse_train_case():
    """Neurons 0-2 get trains of impulses (subthreshold except where noted); neuron 3
    gets one large impulse exactly at a sample time."""
    t_sample = float(SAVE_DT * (19 + 1))  # == ts[19], bitwise
    events = [
        (0.004, 0, 1.0),
        (0.0065, 0, 2.0),
        (0.0111, 0, -0.5),
        (0.003, 1, 1.0),
        (0.003, 1, 1.0),  # two impulses at one instant add up
        (0.025, 1, 1.5),
        (0.015, 2, 3.0),
        (t_sample, 3, 1.0),
    ]
    over = dict(
        lif=dict(tau=0.01, v_threshold=[2.0, 4.0, 2.0, 0.5]),
        # I/IF jump r a (no 1/tau): r = 100 makes a value-1 impulse a jump of 1 too
        **{"if": dict(r=100.0, v_threshold=[2.0, 4.0, 2.0, 0.5])},
        i=dict(r=100.0),
        li=dict(tau=[0.01, 0.005, 0.02, 0.01]),
        cuba_li=dict(tau_syn=0.005, tau_mem=[0.01, 0.005, 0.003, 0.01]),
        cuba_lif=dict(
            tau_syn=0.005,
            tau_mem=[0.01, 0.005, 0.003, 0.01],
            v_threshold=[0.6, 1.1, 1.0, 0.2],
        ),
    )
    # area 1e-2 so that an impulse of value 1 moves LIF (tau 0.01, r 1) by 1
    return events, over, t_sample, run(zoo(**over), impulses(events), spike_area=1e-2)


@pytest.mark.parametrize("kind", KINDS)
def test_impulse_trains(impulse_train_case, kind):
    events, over, t_sample, trace = impulse_train_case
    ts = np.asarray(trace.ts)
    for k in range(N):
        p = scalar_params(kind, over.get(kind, {}), k)
        mine = [(t, val) for t, kk, val in events if kk == k]
        spikes, v_exp, i_exp = exact_neuron(kind, p, np.zeros(N_BINS), mine, ts, area=1e-2)
        np.testing.assert_allclose(
            np.asarray(trace.states[kind]["v"])[:, k], v_exp, rtol=0, atol=ATOL_V
        )
        if kind.startswith("cuba"):
            np.testing.assert_allclose(
                np.asarray(trace.states[kind]["i_syn"])[:, k], i_exp, rtol=0, atol=ATOL_V
            )
        if kind in SPIKING:
            assert_times(trains(trace, kind)[k], spikes, f"{kind} neuron {k}")


def test_impulse_over_threshold_fires_at_its_time_and_sample_shows_reset(
    impulse_train_case,
):
    """LIF and IF neuron 3: an impulse of value 1 (jump 1 > v_th = 0.5) at a sample
    time fires exactly then, and the sample at that instant holds v_reset = 0."""
    events, over, t_sample, trace = impulse_train_case
    ts = np.asarray(trace.ts)
    n = int(np.flatnonzero(ts == t_sample)[0])
    for kind in ("lif", "if"):
        assert list(trains(trace, kind)[3]) == [t_sample]
        assert float(np.asarray(trace.states[kind]["v"])[n, 3]) == 0.0
        assert float(np.asarray(trace.states[kind]["v"])[n - 1, 3]) == 0.0
    # the other neurons of these trains: LIF 0 fires at 0.0065 (1 e^{-0.25} + 2 > 2)
    assert_times(trains(trace, "lif")[0], [0.0065], "LIF neuron 0")
    assert len(trains(trace, "lif")[1]) == 0  # 2 e^{-2.2} + 1.5 < 4


# ---------------------------------------------------------------------- reset modes
def test_reset_subtract_versus_to_v_reset():
    """An impulse takes a LIF (v_leak = 0, r/tau * area = 2.5) from 0 to 2.5
    thresholds. to_v_reset: one spike, v -> v_reset. subtract: v -> v - (v_th -
    v_reset) repeats while v >= v_th, so it fires twice at the same instant and
    keeps v_reset + 0.5 (v_th - v_reset); then decays to v_leak. Neuron 1 has
    v_reset = 0.4: subtract drops 0.6 a time from 2.5: 1.9, 1.3, 0.7 -> three
    spikes, ends at 0.7 (= v_reset + 0.5 (v_th - v_reset))."""
    t0 = 0.0105
    over = dict(lif=dict(tau=0.01, r=1.0, v_threshold=1.0, v_reset=[0.0, 0.4, 0.0, 0.0]))
    graph = zoo(**over)
    events = [(t0, 0, 2.5), (t0, 1, 2.5), (t0, 2, 0.5)]  # neuron 2 stays below
    ins = impulses(events)
    subtract = run(graph, ins, spike_area=1e-2, reset="subtract")
    to_reset = run(graph, ins, spike_area=1e-2, reset="to_v_reset")
    ts = np.asarray(subtract.ts)
    decay = np.where(ts >= t0, np.exp(-(ts - t0) / 0.01), 0.0)

    # hand-derived: the cascade at t0
    def cascade(v, v_th, v_reset, subtract):
        n = 0
        while v >= v_th:
            v = v - (v_th - v_reset) if subtract else v_reset
            n += 1
        return n, v

    for k, v_reset in ((0, 0.0), (1, 0.4)):
        n_sub, v_sub = cascade(2.5, 1.0, v_reset, True)
        n_to, v_to = cascade(2.5, 1.0, v_reset, False)
        assert (n_sub, n_to) == ((2, 1) if k == 0 else (3, 1))
        assert v_sub == pytest.approx(v_reset + 0.5 * (1.0 - v_reset), abs=1e-15)
        assert list(trains(subtract, "lif")[k]) == [t0] * n_sub
        assert list(trains(to_reset, "lif")[k]) == [t0] * n_to
        np.testing.assert_allclose(
            np.asarray(subtract.states["lif"]["v"])[:, k], v_sub * decay, atol=ATOL_V
        )
        np.testing.assert_allclose(
            np.asarray(to_reset.states["lif"]["v"])[:, k], v_to * decay, atol=ATOL_V
        )
    for tr in (subtract, to_reset):
        assert len(trains(tr, "lif")[2]) == 0
        np.testing.assert_allclose(
            np.asarray(tr.states["lif"]["v"])[:, 2], 0.5 * decay, atol=ATOL_V
        )
