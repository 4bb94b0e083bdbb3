"""How the ideal solver behaves around the mathematics: batching, compilation
caching, failure reports (Zeno guard, event budget), Delay and Threshold nodes, and
refusal of bad input. Oracles are closed forms written here and hand-derived event
lists."""

import itertools
import math
import re

import nir
import numpy as np
import pytest

import nirsim

T_END = 0.05  # s
DT = 1e-3  # s: bin width of the input currents
N_BINS = 50
SAVE_DT = 1e-3  # s
TAU = 0.01  # s


def lif_graph(v_reset=0.0):
    """input(1) -> lif(1) -> output: tau 10 ms, r 1, v_leak 0, v_threshold 1."""
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([1])}),
            "lif": nir.LIF(
                tau=np.array([TAU]),
                r=np.array([1.0]),
                v_leak=np.array([0.0]),
                v_threshold=np.array([1.0]),
                v_reset=np.array([v_reset]),
            ),
            "output": nir.Output(output_type={"output": np.array([1])}),
        },
        edges=[("input", "lif"), ("lif", "output")],
    )


def constant(value, batch=()):
    return nirsim.Current(np.full(batch + (N_BINS, 1), value, dtype=float), DT)


def lif_spike_times(current, v_reset=0.0):
    """Closed form for lif_graph under a constant current: first spike from 0 at
    tau log(I/(I-1)), then every tau log((I - v_reset)/(I - 1))."""
    t1 = TAU * math.log(current / (current - 1.0))
    period = TAU * math.log((current - v_reset) / (current - 1.0))
    return t1 + period * np.arange(math.floor((T_END - t1) / period) + 1)


# ---------------------------------------------------------------------------- batch
def test_batch_equals_loop():
    """A leading batch axis (jax.vmap) gives what one call per sample gives."""
    graph = lif_graph()
    currents = [1.3, 2.0, 0.8]  # the last never fires
    batched = nirsim.simulate(
        graph,
        nirsim.Current(np.array(currents)[:, None, None] * np.ones((3, N_BINS, 1)), DT),
        t_end=T_END,
        save_dt=SAVE_DT,
    )
    assert batched.batch_shape == (3,)
    assert np.asarray(batched.states["lif"]["v"]).shape == (3, N_BINS, 1)
    trains = batched.spike_trains("lif")
    for b, value in enumerate(currents):
        single = nirsim.simulate(graph, constant(value), t_end=T_END, save_dt=SAVE_DT)
        # the same float64 operations, vectorised or not: equal to rounding (1e-13)
        np.testing.assert_allclose(trains[b][0], single.spike_trains("lif")[0], rtol=1e-13)
        np.testing.assert_allclose(
            np.asarray(batched.states["lif"]["v"])[b],
            np.asarray(single.states["lif"]["v"]),
            rtol=0,
            atol=1e-13,
        )
        expected = lif_spike_times(value) if value > 1 else np.array([])
        np.testing.assert_allclose(trains[b][0], expected, rtol=1e-9)
    assert np.asarray(batched.result).tolist() == [0, 0, 0]


# --------------------------------------------------------------------- no recompile
TRACES = 0


class Counting(nirsim.solvers.AbstractSolver):
    """The closed-form solver, counting how often its ``solve`` is traced."""

    name = "counting"

    def solve(self, network, inputs, ts, t_end, options):
        global TRACES
        TRACES += 1
        return nirsim.solvers.ClosedForm().solve(network, inputs, ts, t_end, options)


def test_second_call_with_same_shapes_does_not_recompile():
    graph = nirsim.load(lif_graph())
    first = nirsim.simulate(
        graph, constant(1.5), t_end=T_END, save_dt=SAVE_DT, solver=Counting()
    )
    second = nirsim.simulate(
        graph, constant(2.5), t_end=T_END, save_dt=SAVE_DT, solver=Counting()
    )
    assert TRACES == 1
    # and the second call really used its own input
    np.testing.assert_allclose(
        first.spike_trains("lif")[0], lif_spike_times(1.5), rtol=1e-9
    )
    np.testing.assert_allclose(
        second.spike_trains("lif")[0], lif_spike_times(2.5), rtol=1e-9
    )
    assert first.backend == second.backend == "counting"


# ------------------------------------------------------------------ failure reports
def zeno_graph():
    """lif_graph with v_reset = v_threshold = 1, plus a Threshold "a_thr" on a second
    input that comes before "lif" among the spiking nodes."""
    g = lif_graph(v_reset=1.0)
    nodes = dict(g.nodes)
    nodes["thr_in"] = nir.Input(input_type={"input": np.array([1])})
    nodes["a_thr"] = nir.Threshold(threshold=np.array([0.5]))
    nodes["thr_out"] = nir.Output(output_type={"output": np.array([1])})
    edges = list(g.edges) + [("thr_in", "a_thr"), ("a_thr", "thr_out")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def test_zeno_guard_raises_naming_node_time_and_bound():
    """v_reset >= v_threshold under drive: at the first crossing, tau log(I/(I-1)),
    the neuron fires, resets onto its threshold and fires again without end. The
    Threshold "a_thr" precedes "lif" in Network.spiking, so a node index counted
    in another order would name the wrong node."""
    inputs = {"input": constant(2.0), "thr_in": constant(0.0)}
    with pytest.raises(nirsim.SimulationError) as info:
        nirsim.simulate(zeno_graph(), inputs, t_end=T_END, max_cascade=10)
    msg = str(info.value)
    assert "'lif'" in msg and "a_thr" not in msg, msg
    assert "max_cascade" in msg, msg
    t_msg = float(re.search(r"t = ([-+0-9.eE]+) s", msg).group(1))
    # the message prints 9 significant digits
    assert t_msg == pytest.approx(TAU * math.log(2.0), rel=1e-8), msg

    trace = nirsim.simulate(zeno_graph(), inputs, t_end=T_END, max_cascade=10, throw=False)
    assert int(np.asarray(trace.result)) == 3 == nirsim.solvers.results.ZENO


def test_event_budget_raises_with_max_events():
    with pytest.raises(nirsim.SimulationError, match="max_events"):
        nirsim.simulate(lif_graph(), constant(2.0), t_end=T_END, max_events=5)


# ------------------------------------------------------------- Delay and Threshold
D_SPIKE = 0.0071  # s
T0 = 0.0123  # s: input spike time
D_CUR = (2.5 * DT, 3 * DT, 0.0)  # continuous delays; channel 2 gets a shifted input
THRESHOLDS = (0.5, -0.2)
THR_VALUES = np.zeros((N_BINS, 2))
# channel 0: 0, 0.3, 0.5 (= threshold: counts), 0.7, 0.2, 1.0, 1.0, 0.49, 2.0, ...
THR_VALUES[:9, 0] = [0.0, 0.3, 0.5, 0.7, 0.2, 1.0, 1.0, 0.49, 2.0]
# channel 1 (threshold -0.2, input 0 before t = 0: above): dips below and back
THR_VALUES[:8, 1] = [0.0, -0.5, -0.1, -0.3, -0.2, -0.25, 0.4, 0.0]


def delay_graph():
    """spk(2) -> sdelay (delays D_SPIKE, 0) -> slif (LIF 2);
    cur(3) -> cdelay (delays D_CUR) -> li (LI 3); thr_in(2) -> thr (Threshold 2)."""
    ones = lambda n: np.ones(n)
    return nir.NIRGraph(
        nodes={
            "spk": nir.Input(input_type={"input": np.array([2])}),
            "sdelay": nir.Delay(delay=np.array([D_SPIKE, 0.0])),
            "slif": nir.LIF(
                tau=np.full(2, TAU),
                r=ones(2),
                v_leak=np.full(2, 0.1),
                v_threshold=ones(2),
                v_reset=np.zeros(2),
            ),
            "sout": nir.Output(output_type={"output": np.array([2])}),
            "cur": nir.Input(input_type={"input": np.array([3])}),
            "cdelay": nir.Delay(delay=np.array(D_CUR)),
            "li": nir.LI(tau=np.full(3, 0.004), r=np.full(3, 2.0), v_leak=np.full(3, -0.1)),
            "cout": nir.Output(output_type={"output": np.array([3])}),
            "thr_in": nir.Input(input_type={"input": np.array([2])}),
            "thr": nir.Threshold(threshold=np.array(THRESHOLDS)),
            "tout": nir.Output(output_type={"output": np.array([2])}),
        },
        edges=[
            ("spk", "sdelay"),
            ("sdelay", "slif"),
            ("slif", "sout"),
            ("cur", "cdelay"),
            ("cdelay", "li"),
            ("li", "cout"),
            ("thr_in", "thr"),
            ("thr", "tout"),
        ],
    )


def cur_values():
    rng = np.random.default_rng(5)
    x = rng.uniform(-1.0, 2.0, N_BINS)
    shifted = np.concatenate([np.zeros(3), x[:-3]])  # x[n - 3]: x delayed by 3 DT
    return x, np.stack([x, x, shifted], axis=1)


@pytest.fixture(scope="module")
def delay_trace():
    _, cur = cur_values()
    inputs = {
        # channel 0 at T0 (delayed by D_SPIKE), channel 1 at T0 + D_SPIKE (no delay)
        "spk": nirsim.Spikes(np.array([T0, T0 + D_SPIKE]), np.array([0, 1]), [0.004] * 2),
        "cur": nirsim.Current(cur, DT),
        "thr_in": nirsim.Current(THR_VALUES, DT),
    }
    return nirsim.simulate(delay_graph(), inputs, t_end=T_END, save_dt=SAVE_DT)


def test_delay_shifts_spikes_exactly(delay_trace):
    """An impulse (area 0.004, jump r a / tau = 0.4) at T0 through Delay(d) acts as
    one at T0 + d: v = v_leak + 0.4 e^{-(t - T0 - d)/tau} from then on."""
    ts = np.asarray(delay_trace.ts)
    v = np.asarray(delay_trace.states["slif"]["v"])
    t_arr = T0 + D_SPIKE
    expected = 0.1 + np.where(ts >= t_arr, 0.4 * np.exp(-(ts - t_arr) / TAU), 0.0)
    # exact exponentials on both sides: 1e-12 on O(1) values
    np.testing.assert_allclose(v[:, 0], expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(v[:, 0], v[:, 1], rtol=0, atol=1e-12)


def li_closed_form(ts, x, shift, *, tau, r, v_leak):
    """LI driven by ``x[n]`` on ``[n DT + shift, (n+1) DT + shift)`` (0 outside),
    from v = v_leak, at times ``ts``: an exact exponential over each constant piece
    between consecutive knots (piece edges and sample times)."""
    starts = shift + DT * np.arange(len(x) + 1)
    knots = sorted({0.0, *starts.tolist(), *map(float, ts)})
    v, at = v_leak, {}
    for a, b in itertools.pairwise(knots):
        n = int(np.searchsorted(starts, a, side="right")) - 1  # piece holding [a, b)
        xn = x[n] if 0 <= n < len(x) else 0.0
        v_inf = v_leak + r * xn
        v = v_inf + (v - v_inf) * math.exp(-(b - a) / tau)
        at[b] = v
    return np.array([at[float(t)] for t in ts])


def test_delay_shifts_continuous_signals_exactly(delay_trace):
    """Current -> Delay(d) -> LI equals LI driven by the current shifted by d: a
    closed form with pieces on [n DT + d, (n+1) DT + d), for d = 2.5 DT (edges
    between samples) and d = 3 DT; and for d = 3 DT it equals an LI fed the input
    shifted by three bins directly."""
    x, _ = cur_values()
    ts = np.asarray(delay_trace.ts)
    v = np.asarray(delay_trace.states["li"]["v"])
    for k, shift in enumerate((D_CUR[0], D_CUR[1], 3 * DT)):
        expected = li_closed_form(ts, x, shift, tau=0.004, r=2.0, v_leak=-0.1)
        # exact exponentials over the same pieces: 1e-12 on O(1) values
        np.testing.assert_allclose(v[:, k], expected, rtol=0, atol=1e-12, err_msg=str(k))
    np.testing.assert_allclose(v[:, 1], v[:, 2], rtol=0, atol=1e-12)
    # a half-bin error in the shift would show: the two shifts differ by ~0.1 somewhere
    assert np.max(np.abs(v[:, 0] - v[:, 1])) > 1e-2


def test_threshold_fires_at_upward_crossings(delay_trace):
    """Hand-derived: bin edges n DT where the input goes from below the threshold
    (the input is 0 before t = 0) to at or above it."""
    trains = delay_trace.spike_trains("thr")
    expected = []
    for k, th in enumerate(THRESHOLDS):
        x = np.concatenate([[0.0], THR_VALUES[:, k]])
        expected.append([n * DT for n in range(N_BINS) if x[n] < th <= x[n + 1]])
    assert expected == [[2 * DT, 5 * DT, 8 * DT], [2 * DT, 4 * DT, 6 * DT]]
    for k in range(2):
        # the bin edges n DT, as the solver's event instants (rounding only)
        np.testing.assert_allclose(trains[k], expected[k], rtol=1e-12, atol=0)


# ----------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(inputs=nirsim.Current(np.ones((N_BINS, 3)), DT)), r"Input 'input'.*shape"),
        (dict(t_end=-0.1), r"t_end.*> 0"),
        (dict(solver="nope"), r"unknown solver 'nope'"),
        (dict(reset="zero"), r"reset must be one of.*'zero'"),
        (dict(save_dt=-1e-3), r"save_dt"),
        (
            dict(inputs=nirsim.Spikes(np.array([0.01]), np.array([4]))),
            r"spike index 4 out of range for Input 'input'",
        ),
    ],
)
def test_bad_input_is_refused_with_a_message(kwargs, pattern):
    call = dict(inputs=constant(2.0), t_end=T_END, save_dt=SAVE_DT)
    call.update(kwargs)
    inputs = call.pop("inputs")
    with pytest.raises(nirsim.InputError, match=pattern):
        nirsim.simulate(lif_graph(), inputs, **call)


def _delay_chain(k, loop=False):
    nodes = {"input": nir.Input(input_type=np.array([1]))}
    edges, prev = [], "input"
    for i in range(k):
        nodes[f"d{i}"] = nir.Delay(delay=np.array([1e-3]))
        edges.append((prev, f"d{i}"))
        prev = f"d{i}"
    if loop:  # d0's output comes back into d0 through a stateless map
        nodes["back"] = nir.Linear(weight=np.array([[0.5]]))
        edges += [(prev, "back"), ("back", "d0")]
    nodes["li"] = nir.LI(tau=np.array([1e-2]), r=np.array([1.0]), v_leak=np.array([0.0]))
    nodes["output"] = nir.Output(output_type=np.array([1]))
    edges += [(prev, "li"), ("li", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def test_deeply_nested_or_looping_continuous_delays_are_refused():
    # Nine continuous Delays in a row exceed the supported nesting (8): refused by
    # name instead of being silently truncated.
    cur = nirsim.Current(np.ones((5, 1)), 1e-3)
    with pytest.raises(nirsim.GraphError, match=r"'d8' \(Delay\).*at most 8"):
        nirsim.simulate(_delay_chain(9), cur, t_end=0.01)
    # A continuous signal fed back into its own Delay is a delay differential equation.
    with pytest.raises(nirsim.GraphError, match="delay differential equation"):
        nirsim.simulate(_delay_chain(1, loop=True), cur, t_end=0.01)


def test_many_input_impulses_at_one_instant_all_arrive():
    # 100 impulses at the same instant (more than one read window) on 3 LI neurons,
    # plus a later one: each jump is r*a/tau, so v just after 1 ms is
    # (count * r / tau) and decays as exp(-(t - 1 ms)/tau) afterwards.
    tau, r = 0.01, 2.0
    g = nir.NIRGraph.from_list(
        nir.LI(tau=np.full(3, tau), r=np.full(3, r), v_leak=np.zeros(3))
    )
    idx = np.r_[np.zeros(60, int), np.ones(40, int), [2]]
    times = np.r_[np.full(100, 1e-3), [3e-3]]
    tr = nirsim.simulate(g, nirsim.Spikes(times, idx), t_end=4e-3, save_at=[2e-3, 4e-3])
    v = np.asarray(tr.states["li"]["v"])
    decay = np.exp(-1e-3 / tau)
    np.testing.assert_allclose(
        v[0], [60 * r / tau * decay, 40 * r / tau * decay, 0.0], rtol=1e-12
    )
    np.testing.assert_allclose(v[1, 2], r / tau * decay, rtol=1e-12)


@pytest.mark.parametrize("solver", ["ideal", "closed_form", "diffrax"])
def test_every_ideal_path_refuses_ten_chained_continuous_delays(solver):
    # input current -> 10 Delays -> LI: more nested continuous Delays than the ideal
    # solvers support; every ideal path runs the same structural check (closed_form
    # used to return zeros without error).
    nodes = {"input": nir.Input(np.array([1]))}
    edges, prev = [], "input"
    for k in range(10):
        nodes[f"d{k}"] = nir.Delay(np.array([1e-3]))
        edges.append((prev, f"d{k}"))
        prev = f"d{k}"
    nodes["li"] = nir.LI(tau=np.array([1e-3]), r=np.array([1.0]), v_leak=np.array([0.0]))
    nodes["output"] = nir.Output(np.array([1]))
    edges += [(prev, "li"), ("li", "output")]
    net = nirsim.load(nir.NIRGraph(nodes=nodes, edges=edges))
    x = nirsim.Current(np.ones((20, 1)), 1e-3)
    with pytest.raises(nirsim.GraphError, match="'d8'.*at most 8"):
        nirsim.simulate(net, x, t_end=0.02, save_dt=1e-3, solver=solver)
