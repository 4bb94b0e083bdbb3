"""The ten boundary cases of issue 12: each malformed graph, input, option or file
gives a nirsim error (a ``ValueError``) naming the node, input, option or file and
the reason; result files get the user's permissions and no temporary file outlives
an interrupted save; ``throw=False`` says which rows are valid. Every test here
failed before the fix it names."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import nir
import numpy as np
import pytest

import nirsim
import nirsim.cli


def lif(n=1, **kw):
    p = dict(
        tau=np.full(n, 2.5e-3),
        r=np.ones(n),
        v_leak=np.zeros(n),
        v_threshold=np.full(n, 0.1),
        v_reset=np.zeros(n),
    )
    p.update(kw)
    return nir.LIF(**p)


def graph(**kw):
    """input -> affine (weight 1) -> lif -> output."""
    return nir.NIRGraph.from_list(
        nir.Affine(weight=np.array([[1.0]]), bias=np.array([0.0])), lif(**kw)
    )


def io_graph(extra_nodes=None, extra_edges=()):
    nodes = {
        "input": nir.Input(np.array([1])),
        "lif": lif(),
        "output": nir.Output(np.array([1])),
    }
    nodes.update(extra_nodes or {})
    edges = [("input", "lif"), ("lif", "output"), *extra_edges]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


ONES = nirsim.Current(np.ones((10, 1)), dt=1e-3)


def cli(capsys, *argv):
    code = nirsim.cli.main([*map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_line(err):
    assert "Traceback" not in err
    assert err.strip() and "\n" not in err.strip(), err


def write_in(path, obs, data):
    nir.write_data(path, nir.NIRGraphData({"input": nir.NIRNodeData({obs: data})}))


# ------------------------------------------------------------ 1. zero time steps


def test_1_current_with_zero_steps_is_refused():
    with pytest.raises(nirsim.InputError, match=r"shape \(0, 1\).*at least one time step"):
        nirsim.Current(np.zeros((0, 1)), dt=1e-4)


def test_1_cli_input_file_with_zero_steps_exits_2(tmp_path, capsys):
    nir.write(tmp_path / "g.nir", graph())
    write_in(tmp_path / "in.h5", "current", nir.TimeGriddedData(np.zeros((1, 0, 1)), 1e-4))
    code, _, err = cli(
        capsys, "run", tmp_path / "g.nir", "--input", tmp_path / "in.h5",
        "--t-end", 0.01, "--save-dt", 1e-3, "-o", tmp_path / "o.h5", "--no-progress",
    )  # fmt: skip
    assert code == 2
    assert_one_line(err)
    assert "input 'input'" in err and "at least one time step" in err


# ------------------------------------------- 2. edges into Inputs, out of Outputs


def test_2_edge_into_an_input_node_is_refused():
    g = io_graph(extra_edges=[("lif", "input")])
    with pytest.raises(
        nirsim.GraphError, match=r"edge \('lif', 'input'\): 'input' is an Input"
    ):
        nirsim.load(g)


def test_2_edge_out_of_an_output_node_is_refused():
    g = io_graph({"scale": nir.Scale(np.ones(1))}, [("output", "scale")])
    with pytest.raises(
        nirsim.GraphError, match=r"edge \('output', 'scale'\): 'output' is an Output"
    ):
        nirsim.load(g)


# ----------------------------------------------------------------- 3. spike lists


def test_3_negative_index_at_a_finite_time_is_refused():
    with pytest.raises(nirsim.InputError, match=r"spike index -3 at time 0.001"):
        nirsim.Spikes([1e-3], [-3])
    with pytest.raises(nirsim.InputError, match=r"only padding is index -1 at time inf"):
        nirsim.Spikes([1e-3], [-1])
    nirsim.Spikes([1e-3, np.inf], [0, -1])  # padding as documented


def test_3_fractional_index_is_refused():
    with pytest.raises(nirsim.InputError, match=r"spike index 0.5 .* not a whole number"):
        nirsim.Spikes([1e-3], [0.5])
    assert int(nirsim.Spikes([1e-3], [2.0]).indices[0]) == 2  # whole floats are fine


def test_3_nan_spike_values_are_refused_naming_the_input(tmp_path):
    with pytest.raises(nirsim.InputError, match=r"spike values must be finite; event 0"):
        nirsim.Spikes([1e-3], [0], [np.nan])
    data = nir.ValuedEventData(
        np.array([[0]]), np.array([[1e-3]]), 1, 0.01, np.array([[np.nan]])
    )
    gd = nir.NIRGraphData({"input": nir.NIRNodeData({"spikes": data})})
    with pytest.raises(nirsim.InputError, match=r"^input 'input': spike values must be"):
        nirsim.simulate(graph(), gd, t_end=0.01)


# ------------------------------------------------------- 4. complex and strings


@pytest.mark.parametrize(
    "build, where",
    [
        (lambda: nir.NIRGraph.from_list(
            nir.Affine(weight=np.array([[1.0 + 1j]]), bias=np.array([0.0])), lif()),
         r"node 'affine' \(Affine\): parameter 'weight' is complex"),
        (lambda: graph(tau=np.array([2.5e-3 + 1e-3j])),
         r"node 'lif' \(LIF\): parameter 'tau' is complex"),
    ],
    ids=["weight", "tau"],
)  # fmt: skip
def test_4_complex_parameters_are_refused(build, where):
    with pytest.raises(nirsim.GraphError, match=where):
        nirsim.load(build())


def test_4_complex_and_string_currents_are_refused():
    with pytest.raises(nirsim.InputError, match=r"Current values are complex"):
        nirsim.Current(np.ones((3, 1)) * (1 + 1j), dt=1e-3)
    with pytest.raises(nirsim.InputError, match=r"Current values must be numbers"):
        nirsim.Current(np.array([["a"]]), dt=1e-3)
    with pytest.raises(nirsim.InputError, match=r"spike times are complex"):
        nirsim.Spikes(np.array([1e-3 + 0j]), [0])


def test_4_cli_complex_input_file_exits_2(tmp_path, capsys):
    nir.write(tmp_path / "g.nir", graph())
    data = nir.TimeGriddedData(np.ones((1, 5, 1)) * (1 + 2j), 1e-3)
    write_in(tmp_path / "in.h5", "current", data)
    code, _, err = cli(
        capsys, "run", tmp_path / "g.nir", "--input", tmp_path / "in.h5",
        "--t-end", 0.01, "--save-dt", 1e-3, "-o", tmp_path / "o.h5", "--no-progress",
    )  # fmt: skip
    assert code == 2
    assert_one_line(err)
    assert "input 'input'" in err and "complex" in err
    assert not (tmp_path / "o.h5").exists()


# ------------------------------------------------------------- 5. missing input


def test_5_missing_input_is_refused():
    with pytest.raises(nirsim.InputError, match=r"no input for Input node 'input'"):
        nirsim.simulate(graph(), {}, t_end=0.01)
    # no spikes at all, said explicitly, is fine
    tr = nirsim.simulate(graph(), {"input": nirsim.Spikes([], [])}, t_end=0.01)
    assert int(tr.spikes["lif"].count()) == 0


# ---------------------------------------------------------------- 6. options


def test_6_too_many_samples_is_a_nirsim_error_with_the_sizes():
    with pytest.raises(nirsim.InputError, match=r"save_dt=1e-12 with t_end=1 .*1e\+12"):
        nirsim.simulate(graph(), ONES, t_end=1, save_dt=1e-12)
    with pytest.raises(nirsim.InputError, match=r"dt=1e-15 with t_end=1 .*steps"):
        nirsim.simulate(graph(), ONES, t_end=1, solver="euler", dt=1e-15)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"rtol": -1}, "rtol must be finite and >= 0"),
        ({"atol": float("nan")}, "atol must be finite and >= 0"),
        ({"rtol": 0, "atol": 0}, "rtol and atol are both 0"),
        ({"max_events": "many"}, "max_events must be an integer"),
        ({"max_spikes": float("inf")}, "max_spikes must be an integer"),
    ],
)
def test_6_bad_tolerances_and_bounds_are_refused(kw, match):
    with pytest.raises(nirsim.InputError, match=match):
        nirsim.simulate(graph(), ONES, t_end=0.01, solver="diffrax", **kw)


# ------------------------------------------------- 7. nirsim run without --save-dt


def test_7_cli_run_without_save_dt_writes_the_spikes(tmp_path, capsys):
    nir.write(tmp_path / "g.nir", graph())
    write_in(tmp_path / "in.h5", "current", nir.TimeGriddedData(np.ones((1, 10, 1)), 1e-3))
    code, out, err = cli(
        capsys, "run", tmp_path / "g.nir", "--input", tmp_path / "in.h5",
        "--t-end", 0.01, "-o", tmp_path / "o.h5", "--no-progress",
    )  # fmt: skip
    assert "save_at" not in err
    assert code == 0, err
    tr = nirsim.load_trace(tmp_path / "o.h5")
    assert tr.states == {} and int(tr.spikes["lif"].count().sum()) > 0


# ------------------------------------------------------ 8. root type of a file


def test_8_file_whose_root_is_not_a_graph_is_refused(tmp_path, capsys):
    path = tmp_path / "g.nir"
    nir.write(path, graph())
    with h5py.File(path, "a") as f:
        del f["node"]["type"]
        f["node"]["type"] = "LIF"
    with pytest.raises(nirsim.GraphError, match=r"g.nir: the root node has type 'LIF'"):
        nirsim.load(path)
    code, _, err = cli(capsys, "info", path)
    assert code == 2
    assert_one_line(err)


# ---------------------------------------------------- 9. permissions, interrupts


def _trace():
    return nirsim.simulate(graph(), ONES, t_end=0.01, save_dt=1e-3)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_9_result_file_has_the_users_permissions(tmp_path, umask):
    old = os.umask(umask)
    try:
        _trace().save(tmp_path / "o.h5")
    finally:
        os.umask(old)
    assert (tmp_path / "o.h5").stat().st_mode & 0o777 == 0o666 & ~umask


CHILD = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np, nir, nirsim
    g = nir.NIRGraph.from_list(nir.Affine(np.ones((1, 1)), np.zeros(1)), nir.LIF(
        np.full(1, 2.5e-3), np.ones(1), np.zeros(1), np.full(1, 0.1), np.zeros(1)))
    tr = nirsim.simulate(g, nirsim.Current(np.ones((10, 1)), 1e-3), t_end=0.01,
                         save_dt=1e-3)
    real = os.replace
    def slow_replace(src, dst):  # the moment a kill hurts: the temporary file exists
        open(sys.argv[2], "w").close()
        time.sleep(float(sys.argv[3]))
        real(src, dst)
    os.replace = slow_replace
    tr.save(sys.argv[1])
    """
)


def _interrupted_save(tmp_path, sig, pause):
    out, ready = tmp_path / "o.h5", tmp_path / "ready"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(out), str(ready), str(pause)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(sig)
    proc.wait(timeout=120)
    proc.stderr.close()
    return proc.returncode, out


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_9_sigterm_during_save_leaves_no_temporary_file(tmp_path):
    code, out = _interrupted_save(tmp_path, signal.SIGTERM, 1.0)
    assert code == -signal.SIGTERM  # the signal still ends the process ...
    assert not list(tmp_path.glob("*.tmp"))  # ... after the save is complete
    assert nirsim.load_trace(out).states["lif"]["v"].shape == (10, 1)


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_9_temporary_file_of_a_killed_save_goes_with_the_next_save(tmp_path):
    code, out = _interrupted_save(tmp_path, signal.SIGKILL, 60.0)
    assert code == -signal.SIGKILL
    _trace().save(out)
    assert [p.name for p in tmp_path.iterdir() if p.name != "ready"] == ["o.h5"]


# ----------------------------------------------------- 10. throw=False, valid rows


def test_10_failed_batch_element_says_which_rows_are_valid():
    g = graph(v_reset=np.array([0.2]))  # v_reset >= v_threshold: Zeno once driven
    x = nirsim.Current(np.array([0.0, 1.0])[:, None, None] * np.ones((2, 10, 1)), 1e-3)
    tr = nirsim.simulate(g, x, t_end=0.01, save_dt=1e-3, throw=False)
    assert np.asarray(tr.result).tolist()[0] == 0 and np.asarray(tr.result)[1] != 0
    valid = np.asarray(tr.valid)
    assert valid.shape == (2, 10)
    assert valid[0].all()  # the successful element: every row
    v = np.asarray(tr.states["lif"]["v"])
    assert np.isfinite(v[0]).all()
    assert not np.isfinite(v[1][~valid[1]]).any()  # what is not valid is said so
    assert np.isfinite(v[1][valid[1]]).all()
    t_valid = np.asarray(tr.t_valid)
    assert t_valid[0] == 0.01 and 0 < t_valid[1] < 0.01  # where it failed
    times = np.asarray(tr.spikes["lif"].times)[1]
    assert (times[np.isfinite(times)] <= t_valid[1] + 1e-15).all()


# ------------------------------------------------------ README: compare --graph


def test_cli_compare_with_graph_normalises_as_python(tmp_path, capsys):
    net = nirsim.load(graph())
    nir.write(tmp_path / "g.nir", graph())
    x = nirsim.Current(np.full((50, 1), 2.0), dt=1e-4)
    ideal = nirsim.simulate(net, x, t_end=5e-3, save_dt=1e-4)
    euler = nirsim.simulate(net, x, t_end=5e-3, save_dt=1e-4, solver="euler", dt=1e-4)
    ideal.save(tmp_path / "a.h5")
    euler.save(tmp_path / "b.h5")
    python = nirsim.compare(tmp_path / "a.h5", tmp_path / "b.h5", network=net).table()
    code, out, _ = cli(capsys, "compare", tmp_path / "a.h5", tmp_path / "b.h5",
                       "--graph", tmp_path / "g.nir")  # fmt: skip
    assert code == 0
    assert out.strip() == python.strip()
    assert "normalised by |v_threshold|" in out
    code, plain, _ = cli(capsys, "compare", tmp_path / "a.h5", tmp_path / "b.h5")
    assert "normalised by |v_threshold|" not in plain


def test_input_file_helpers_write_what_nirsim_run_reads(tmp_path, capsys):
    nir.write(tmp_path / "g.nir", graph())
    nirsim.Current(np.ones((10, 1)), dt=1e-3).save(tmp_path / "c.h5")
    nirsim.Spikes([1e-3, 2e-3], [0, 0]).save(tmp_path / "s.h5", n_neurons=1, t_max=0.01)
    for name in ("c.h5", "s.h5"):
        code, out, err = cli(
            capsys, "run", tmp_path / "g.nir", "--input", tmp_path / name,
            "--t-end", 0.01, "--save-dt", 1e-3, "-o", tmp_path / "o.h5", "--no-progress",
        )  # fmt: skip
        assert code == 0, err
    with pytest.raises(nirsim.InputError, match=r"input 'input': Current values"):
        nirsim.Current(np.ones((10, 2)), dt=1e-3).save(tmp_path / "x.h5", shape=(3,))
