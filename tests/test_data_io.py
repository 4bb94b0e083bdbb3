"""Inputs and results as NIR data: Current and Spikes to/from nir.TimeGriddedData,
nir.EventData and nir.ValuedEventData (with and without a batch), Trace files
(save / load_trace), atomic writes and plain errors for bad files."""

import os

import jax.numpy as jnp
import nir
import numpy as np
import pytest

import nirsim
from nirsim import Current, Spikes, Trace

# -------------------------------------------------------------------------- Current


def test_current_from_time_gridded_data_reshapes_in_c_order():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(3, 5, 2 * 4))  # samples, steps, columns
    cur = Current.from_nir(nir.TimeGriddedData(data, 1e-3), shape=(2, 4))
    assert cur.dt == 1e-3
    assert cur.values.shape == (3, 5, 2, 4)
    assert cur.batch_shape((2, 4)) == (3,) and cur.n_steps((2, 4)) == 5
    vals = np.asarray(cur.values)
    for b, n, i, j in np.ndindex(3, 5, 2, 4):  # column = i * 4 + j (C order)
        assert vals[b, n, i, j] == data[b, n, i * 4 + j]


def test_current_round_trip_batched_and_unbatched():
    rng = np.random.default_rng(1)
    batched = Current(rng.normal(size=(2, 6, 3, 2)), dt=2e-4)
    tg = batched.to_nir((3, 2))
    assert isinstance(tg, nir.TimeGriddedData)
    assert tg.data.shape == (2, 6, 6) and tg.dt == 2e-4
    back = Current.from_nir(tg, shape=(3, 2))
    np.testing.assert_array_equal(np.asarray(back.values), np.asarray(batched.values))

    single = Current(rng.normal(size=(6, 4)), dt=1e-4)
    tg1 = single.to_nir((4,))
    assert tg1.data.shape == (1, 6, 4)  # one sample
    np.testing.assert_array_equal(tg1.data[0], np.asarray(single.values))
    assert single.batch_shape((4,)) == ()


def test_current_refusals():
    with pytest.raises(nirsim.InputError, match=r"has 5 columns, the input node has shape"):
        Current.from_nir(nir.TimeGriddedData(np.zeros((1, 2, 5)), 1e-3), shape=(2, 2))
    with pytest.raises(nirsim.InputError, match="dt must be finite and > 0"):
        Current(np.zeros((3, 1)), dt=0.0)
    with pytest.raises(nirsim.InputError, match="dt must be finite and > 0"):
        Current(np.zeros((3, 1)), dt=float("nan"))
    with pytest.raises(nirsim.InputError, match="NaN or infinity"):
        Current(np.array([[0.0], [np.nan]]), dt=1e-3)
    with pytest.raises(nirsim.InputError, match="time axis"):
        Current(1.0, dt=1e-3)


# --------------------------------------------------------------------------- Spikes


def test_spikes_from_event_data_batched():
    idx = np.array([[0, 2, 1, -1], [1, -1, -1, -1]])
    time = np.array([[0.1, 0.2, 0.2, np.inf], [0.05, np.inf, np.inf, np.inf]])
    s = Spikes.from_nir(nir.EventData(idx, time, n_neurons=3, t_max=1.0))
    assert s.batch_shape == (2,)
    assert s.n_neurons == 3 and s.t_max == 1.0
    np.testing.assert_array_equal(np.asarray(s.indices), idx)
    np.testing.assert_array_equal(np.asarray(s.times), time)
    np.testing.assert_array_equal(np.asarray(s.count()), [3, 1])
    np.testing.assert_array_equal(s.counts_per_neuron(), [[1, 1, 1], [0, 1, 0]])
    trains = s.trains()
    np.testing.assert_array_equal(trains[0][2], [0.2])
    np.testing.assert_array_equal(trains[1][1], [0.05])
    assert s.values is None


def test_spikes_padding_time_is_ignored():
    """Padding entries (index -1) read as inf whatever time the file holds."""
    s = Spikes.from_nir(nir.EventData(np.array([[1, -1]]), np.array([[0.3, 0.0]]), 2, 1.0))
    np.testing.assert_array_equal(np.asarray(s.times), [[0.3, np.inf]])


def test_spikes_round_trip_sorted_by_time():
    times = np.array([0.3, 0.1, 0.2, np.inf])
    idx = np.array([4, 0, 5, -1])
    s = Spikes(times, idx, n_neurons=6, t_max=0.5)
    ev = s.to_nir()
    assert type(ev) is nir.EventData
    assert ev.idx.shape == (1, 4)  # unbatched list: one sample
    np.testing.assert_array_equal(ev.time[0], [0.1, 0.2, 0.3, np.inf])
    np.testing.assert_array_equal(ev.idx[0], [0, 5, 4, -1])
    assert ev.n_neurons == 6 and ev.t_max == 0.5
    back = Spikes.from_nir(ev)
    np.testing.assert_array_equal(np.asarray(back.times), ev.time)
    np.testing.assert_array_equal(np.asarray(back.indices), ev.idx)


def test_valued_spikes_round_trip():
    idx = np.array([[2, 0, -1], [1, 1, 0]])
    time = np.array([[0.2, 0.1, np.inf], [0.0, 0.4, 0.3]])
    value = np.array([[0.5, -1.5, 0.0], [2.0, 3.0, 4.0]])
    ved = nir.ValuedEventData(idx, time, 3, 0.5, value)
    s = Spikes.from_nir(ved)
    np.testing.assert_array_equal(np.asarray(s.values), value)
    out = s.to_nir()
    assert isinstance(out, nir.ValuedEventData)
    assert out.n_neurons == 3 and out.t_max == 0.5
    # sorted by time within each sample, values travel with their events
    np.testing.assert_array_equal(out.time, [[0.1, 0.2, np.inf], [0.0, 0.3, 0.4]])
    np.testing.assert_array_equal(out.idx, [[0, 2, -1], [1, 0, 1]])
    np.testing.assert_array_equal(out.value, [[-1.5, 0.5, 0.0], [2.0, 4.0, 3.0]])


def test_bool_time_gridded_data_gives_spikes_at_bin_start():
    dt = 1e-3
    grid = np.zeros((2, 5, 6), dtype=bool)  # samples, steps, 2x3 node flattened
    grid[0, 1, 5] = True  # neuron (1, 2) of a (2, 3) node in C order
    grid[0, 3, 0] = True
    grid[0, 3, 4] = True
    grid[1, 4, 2] = True
    s = Spikes.from_nir(nir.TimeGriddedData(grid, dt))
    assert s.values is None
    assert s.n_neurons == 6 and s.t_max == pytest.approx(5 * dt)
    t0 = np.asarray(s.times[0])
    i0 = np.asarray(s.indices[0])
    got = sorted((float(t), int(i)) for t, i in zip(t0, i0, strict=True) if i >= 0)
    assert got == [(1 * dt, 5), (3 * dt, 0), (3 * dt, 4)]
    counts = s.counts_per_neuron().reshape(2, 2, 3)
    assert counts[0, 1, 2] == 1 and counts[1, 0, 2] == 1 and counts.sum() == 4
    # nir's own conversion agrees (bin start, time_shift 0)
    ev = nir.TimeGriddedData(grid, dt).to_event(n_events=3)
    mine = Spikes.from_nir(ev)
    np.testing.assert_array_equal(
        np.sort(np.asarray(mine.times), -1), np.sort(np.asarray(s.times), -1)
    )


def test_count_grid_gives_valued_spikes():
    grid = np.zeros((1, 3, 2))
    grid[0, 2, 1] = 2.0
    s = Spikes.from_nir(nir.TimeGriddedData(grid, 0.5))
    (k,) = np.flatnonzero(np.asarray(s.indices[0]) >= 0)
    assert float(s.times[0, k]) == 1.0 and int(s.indices[0, k]) == 1
    assert float(s.values[0, k]) == 2.0


def test_spikes_refusals():
    with pytest.raises(nirsim.InputError, match="differ in shape"):
        Spikes([0.1, 0.2], [0])
    with pytest.raises(nirsim.InputError, match="finite and >= 0"):
        Spikes([-0.1], [0])
    with pytest.raises(nirsim.InputError, match="out of range for 2 neurons"):
        Spikes([0.1], [2], n_neurons=2)
    with pytest.raises(nirsim.InputError, match="needs n_neurons and t_max"):
        Spikes([0.1], [0]).to_nir()


# --------------------------------------------------------------------------- Trace


def _trace(batched: bool) -> Trace:
    rng = np.random.default_rng(3)
    ts = (np.arange(4) + 1) * 1e-3
    lead = (2,) if batched else ()
    times = np.array([[1e-4, 2.5e-3, np.inf], [3e-3, np.inf, np.inf]])
    idx = np.array([[3, 0, -1], [5, -1, -1]])
    if not batched:
        times, idx = times[0], idx[0]
    return Trace(
        spikes={"lif": Spikes(times, idx, n_neurons=6, t_max=4e-3)},
        states={
            "lif": {"v": jnp.asarray(rng.normal(size=lead + (4, 2, 3)))},
            "cuba": {
                "i_syn": jnp.asarray(rng.normal(size=lead + (4, 2))),
                "v": jnp.asarray(rng.normal(size=lead + (4, 2))),
            },
        },
        ts=jnp.asarray(ts),
        result=jnp.zeros(lead, dtype=jnp.int32),
        t_end=4e-3,
        save_dt=1e-3,
        dt=1e-4,
        backend="euler",
        shapes=(("lif", (2, 3)), ("cuba", (2,))),
    )


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
def test_trace_save_and_load_round_trip(tmp_path, batched):
    trace = _trace(batched)
    path = tmp_path / "out.h5"
    trace.save(path)
    assert sorted(os.listdir(tmp_path)) == ["out.h5"]  # no temporary left behind
    back = nirsim.load_trace(path)
    assert back.t_end == trace.t_end and back.save_dt == trace.save_dt
    assert back.dt == trace.dt and back.backend == "euler"
    assert back.batch_shape == trace.batch_shape
    assert back.shape("lif") == (2, 3) and back.shape("cuba") == (2,)
    np.testing.assert_array_equal(np.asarray(back.ts), np.asarray(trace.ts))
    for node, fields in trace.states.items():
        assert set(back.states[node]) == set(fields)
        for f, arr in fields.items():
            np.testing.assert_array_equal(np.asarray(back.states[node][f]), np.asarray(arr))
    s, b = trace.spikes["lif"], back.spikes["lif"]
    np.testing.assert_array_equal(np.asarray(b.times), np.asarray(s.times))
    np.testing.assert_array_equal(np.asarray(b.indices), np.asarray(s.indices))
    np.testing.assert_array_equal(back.spike_counts("lif"), trace.spike_counts("lif"))


def test_trace_nir_data_follows_the_file_convention():
    data = _trace(True).to_nir_data()
    v = data.nodes["lif"].observables["v"]
    assert isinstance(v, nir.TimeGriddedData)
    assert v.data.shape == (2, 4, 6) and v.dt == 1e-3  # columns: (2, 3) in C order
    sp = data.nodes["lif"].observables["spikes"]
    assert isinstance(sp, nir.EventData) and sp.n_neurons == 6 and sp.t_max == 4e-3


def test_save_into_missing_folder_raises_and_leaves_nothing(tmp_path):
    target = tmp_path / "missing" / "out.h5"
    with pytest.raises(OSError):
        _trace(False).save(target)
    assert not target.parent.exists()
    assert os.listdir(tmp_path) == []


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "out.h5"
    path.write_bytes(b"previous result")

    def broken_write(filename, data):
        if isinstance(filename, str | os.PathLike):
            with open(filename, "wb") as f:
                f.write(b"half a file")
        else:  # Trace.save builds the file in memory first
            filename.write(b"half a file")
        raise RuntimeError("disk full")

    monkeypatch.setattr(nir, "write_data", broken_write)
    with pytest.raises(RuntimeError, match="disk full"):
        _trace(False).save(path)
    assert path.read_bytes() == b"previous result"
    assert os.listdir(tmp_path) == ["out.h5"]


def test_load_trace_of_a_non_hdf5_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a result file")
    with pytest.raises(nirsim.InputError, match=r"notes\.txt: not a readable NIRGraphData"):
        nirsim.load_trace(path)


def test_load_trace_of_a_graph_file_or_nothing(tmp_path):
    nodes = {
        "in": nir.Input({"input": np.array([2])}),
        "out": nir.Output({"output": np.array([2])}),
    }
    g = nir.NIRGraph(nodes=nodes, edges=[("in", "out")])
    path = tmp_path / "graph.nir"
    nir.write(path, g)
    with pytest.raises(nirsim.InputError, match="not a readable NIRGraphData"):
        nirsim.load_trace(path)
    with pytest.raises(nirsim.InputError, match="not a readable NIRGraphData"):
        nirsim.load_trace(tmp_path / "none.h5")


def test_load_trace_of_a_truncated_file(tmp_path):
    path = tmp_path / "out.h5"
    _trace(True).save(path)
    cut = tmp_path / "cut.h5"
    cut.write_bytes(path.read_bytes()[:300])
    with pytest.raises(nirsim.InputError, match=r"cut\.h5"):
        nirsim.load_trace(cut)
