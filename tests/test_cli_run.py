"""``nirsim run GRAPH.nir --input IN.h5 --t-end T --save-dt DT -o OUT.h5`` end to
end: files written with nir.write / nir.write_data, the result read back with
nirsim.load_trace and checked against closed forms written here; the flags
``--spike-area`` and ``--reset`` reach the simulation; bad input files give exit
code 2 and one plain sentence."""

import math

import h5py
import nir
import numpy as np
import pytest

import nirsim
import nirsim.cli

T_END = 0.05  # s
SAVE_DT = 1e-3  # s
DT_IN = 1e-3  # s: bin width of the input current
TAU = 0.01  # s
# Spike times: the closed-form solver finds crossings to a few ulps (1e-9 relative
# leaves room for error accumulation over a few spikes); states: exact exponentials
# on O(1) values written to HDF5 as float64 (1e-12).
RTOL_T = 1e-9
ATOL_V = 1e-12


def lif_graph(r=1.0):
    """input(2) -> lif(2) -> output: tau 10 ms, v_leak 0, v_threshold 1, v_reset 0."""
    n = 2
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([n])}),
            "lif": nir.LIF(
                tau=np.full(n, TAU),
                r=np.full(n, r),
                v_leak=np.zeros(n),
                v_threshold=np.ones(n),
                v_reset=np.zeros(n),
            ),
            "output": nir.Output(output_type={"output": np.array([n])}),
        },
        edges=[("input", "lif"), ("lif", "output")],
    )


def write_current(path, values, dt):
    """IN.h5 with one 'current' observable for node 'input': values (steps, n)."""
    data = nir.TimeGriddedData(np.asarray(values, float)[None], dt)
    nir.write_data(path, nir.NIRGraphData({"input": nir.NIRNodeData({"current": data})}))


def write_spikes(path, times, idx, n, t_max):
    data = nir.EventData(np.array([idx]), np.array([times], float), n, t_max)
    nir.write_data(path, nir.NIRGraphData({"input": nir.NIRNodeData({"spikes": data})}))


def run_cli(capsys, *argv):
    code = nirsim.cli.main(["run", *map(str, argv), "--no-progress"])
    return code, capsys.readouterr()


def unbatch(trace, node):
    """Spike trains and v of a trace read back from a one-sample file."""
    trains = trace.spike_trains(node)
    v = np.asarray(trace.states[node]["v"])
    if trace.batch_shape:
        assert trace.batch_shape == (1,)
        trains, v = trains[0], v[0]
    return trains, v


def test_run_small_graph_end_to_end(tmp_path, capsys):
    graph_path, in_path, out_path = (
        tmp_path / "g.nir",
        tmp_path / "in.h5",
        tmp_path / "o.h5",
    )
    nir.write(graph_path, lif_graph())
    currents = np.array([1.6, 0.7])  # neuron 1 stays below threshold
    write_current(in_path, np.tile(currents, (50, 1)), DT_IN)
    code, out = run_cli(
        capsys,
        graph_path,
        "--input",
        in_path,
        "--t-end",
        T_END,
        "--save-dt",
        SAVE_DT,
        "-o",
        out_path,
    )
    assert code == 0, out.err
    assert str(out_path) in out.out
    trace = nirsim.load_trace(out_path)
    trains, v = unbatch(trace, "lif")
    # closed form: first spike tau log(I/(I-1)) from v = 0; period the same (reset 0)
    period = TAU * math.log(currents[0] / (currents[0] - 1.0))
    expected = period * np.arange(1, math.floor(T_END / period) + 1)
    np.testing.assert_allclose(trains[0], expected, rtol=RTOL_T)
    assert len(trains[1]) == 0
    ts = SAVE_DT * np.arange(1, 51)
    np.testing.assert_allclose(np.asarray(trace.ts), ts, rtol=1e-14)
    last = np.array([expected[expected <= t].max(initial=0.0) for t in ts])
    v_expected = np.stack(
        [
            currents[0] * (1 - np.exp(-(ts - last) / TAU)),
            currents[1] * (1 - np.exp(-ts / TAU)),
        ],
        axis=1,
    )
    np.testing.assert_allclose(v, v_expected, rtol=0, atol=ATOL_V)


# the paper's input pattern (shared/data/nir-paper/README.md), each value then 9 zeros
PATTERN = np.array(
    "0 0 0 0 0 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 0 0 0 0 1 0 0 0 1 1 0 0 1 0 1 0 0 "
    "1 1 0 1 1 1 1 1 1 1 1 1 1 1 0 0 0 0 0 0 0 0 0 0 0 0 0 1 1 1 1 1 1 1 1 1 1 1 1 0 "
    "0 0 0 0 1 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0".split(),
    dtype=float,
)


def test_run_paper_lif_norse_graph(tmp_path, capsys, shared_data):
    graph_path = shared_data / "lif_norse.nir"
    if not graph_path.exists():
        pytest.skip(f"{graph_path} not found")
    x = np.zeros(1000)
    x[::10] = PATTERN
    in_path, out_path = tmp_path / "in.h5", tmp_path / "o.h5"
    write_current(in_path, x[:, None], 1e-4)
    code, out = run_cli(
        capsys,
        graph_path,
        "--input",
        in_path,
        "--t-end",
        0.1,
        "--save-dt",
        1e-4,
        "-o",
        out_path,
    )
    assert code == 0, out.err
    trace = nirsim.load_trace(out_path)
    (node,) = [n for n in trace.spikes]
    trains, v = unbatch(trace, node)
    assert np.floor(trains[0] / 1e-4).astype(int).tolist() == [460, 510, 710, 760]
    assert v.shape == (1000, 1)


# An input impulse of value 1 at T0 into a LIF with r = 0.004, tau = 0.01: the jump is
# r A / tau = 0.4 A for spike area A. A = 6.25 gives 2.5 thresholds.
T0 = 0.0105


@pytest.mark.parametrize(
    "flags, n_spikes, v_after",
    [
        ((), 0, 0.4),  # A = 1: jump 0.4, below threshold
        (("--spike-area", 6.25), 1, 0.0),  # jump 2.5, one spike, v -> v_reset = 0
        # subtract: 2.5 -> 1.5 -> 0.5, two spikes at the same instant
        (("--spike-area", 6.25, "--reset", "subtract"), 2, 0.5),
    ],
)
def test_run_flags_reach_simulate(tmp_path, capsys, flags, n_spikes, v_after):
    graph_path, in_path, out_path = (
        tmp_path / "g.nir",
        tmp_path / "in.h5",
        tmp_path / "o.h5",
    )
    nir.write(graph_path, lif_graph(r=0.004))
    write_spikes(in_path, [T0], [0], 2, T_END)
    code, out = run_cli(
        capsys,
        graph_path,
        "--input",
        in_path,
        "--t-end",
        T_END,
        "--save-dt",
        SAVE_DT,
        "-o",
        out_path,
        *flags,
    )
    assert code == 0, out.err
    trains, v = unbatch(nirsim.load_trace(out_path), "lif")
    assert trains[0].tolist() == [T0] * n_spikes
    assert len(trains[1]) == 0
    ts = SAVE_DT * np.arange(1, 51)
    expected = np.where(ts >= T0, v_after * np.exp(-(ts - T0) / TAU), 0.0)
    np.testing.assert_allclose(v[:, 0], expected, rtol=0, atol=ATOL_V)
    np.testing.assert_allclose(v[:, 1], 0.0, atol=0)


@pytest.mark.parametrize("problem", ["not_hdf5", "missing"])
def test_run_bad_input_file_exit_code_2(tmp_path, capsys, problem):
    graph_path, in_path, out_path = (
        tmp_path / "g.nir",
        tmp_path / "in.h5",
        tmp_path / "o.h5",
    )
    nir.write(graph_path, lif_graph())
    if problem == "not_hdf5":
        in_path.write_text("this is not an HDF5 file\n")
    code, out = run_cli(
        capsys,
        graph_path,
        "--input",
        in_path,
        "--t-end",
        T_END,
        "--save-dt",
        SAVE_DT,
        "-o",
        out_path,
    )
    assert code == 2
    err = out.err.strip()
    assert err and "\n" not in err, err  # one plain line
    assert "Traceback" not in out.err
    assert str(in_path) in err  # names the file
    assert not out_path.exists()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_run_dtype_flag_reaches_the_discrete_backend(tmp_path, capsys, dtype):
    graph_path, in_path, out_path = (
        tmp_path / "g.nir",
        tmp_path / "in.h5",
        tmp_path / "o.h5",
    )
    nir.write(graph_path, lif_graph())
    write_current(in_path, np.tile([1.6, 0.7], (50, 1)), DT_IN)
    code, out = run_cli(
        capsys, graph_path, "--input", in_path, "--t-end", T_END, "--save-dt",
        SAVE_DT, "--backend", "norse", "--dt", SAVE_DT, "--dtype", dtype, "-o", out_path,
    )  # fmt: skip
    assert code == 0, out.err
    with h5py.File(out_path) as f:
        found = [f["nodes/lif/observables/v/data"].dtype]
    assert found == [np.dtype(dtype)]
