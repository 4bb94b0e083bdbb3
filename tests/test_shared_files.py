"""The NIR paper's files (../shared/data/nir-paper, skipped when absent): each loads,
or is refused with the reason its README gives; ``nirsim info`` summarises each
loadable file and gives exit code 2 and one plain sentence for the broken ones.

Expected facts below are taken from the folder's README, not from nirsim."""

import re
import warnings

import nir
import numpy as np
import pytest

import nirsim
from nirsim.cli import main as cli_main

BROKEN_SUBGRAPH = (
    r"edge \('lif1\.input', 'lif1\.lif'\): target node 'lif1\.lif' does not exist; "
    r"did you mean 'lif1\.lif1'\?"
)

# file -> README facts: (input shape, output shape, node types present) or refusal
FILES = {
    "lif_norse.nir": ((1,), (1,), {"Affine", "LIF"}),
    "lif_rockpool.nir": ((1,), (1,), {"LIF"}),
    "two_lif_neurons.nir": ((1,), (1,), {"Linear", "LIF"}),
    "cnn_sinabs.nir": (
        (2, 34, 34),
        (10,),
        {"Conv2d", "IF", "SumPool2d", "Flatten", "Affine"},
    ),
    "braille_noDelay_bias_zero.nir": ((12,), (7,), {"Affine", "CubaLIF"}),
    "braille_noDelay_noBias_subtract.nir": ((12,), (7,), {"Linear", "CubaLIF"}),
    "braille_noDelay_bias_zero_subgraph.nir": BROKEN_SUBGRAPH,
    "braille_noDelay_noBias_subtract_subgraph.nir": BROKEN_SUBGRAPH,
}
LOADABLE = [f for f, v in FILES.items() if not isinstance(v, str)]
BROKEN = [f for f, v in FILES.items() if isinstance(v, str)]


def _load_quietly(path):
    """Load; only lif_rockpool.nir may (and must) warn."""
    if path.name == "lif_rockpool.nir":
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            net = nirsim.load(path)
        assert all(issubclass(w.category, nirsim.GraphWarning) for w in caught)
        messages = [str(w.message) for w in caught]
        assert any(m.startswith("nir.read refused the file's types") for m in messages)
        # README: the declared output type [1 1 1] does not fit the neuron's (1,)
        assert any("declares shape (1, 1, 1) but receives (1,)" in m for m in messages)
        return net
    return nirsim.load(path)  # any warning is an error here (pytest config)


def test_every_file_in_the_folder_is_covered(shared_data):
    assert {p.name for p in shared_data.glob("*.nir")} == set(FILES)


@pytest.mark.parametrize("name", LOADABLE)
def test_file_loads(shared_data, name):
    in_shape, out_shape, kinds = FILES[name]
    net = _load_quietly(shared_data / name)
    assert len(net.inputs) == 1 and len(net.outputs) == 1
    assert net.shape(net.inputs[0]) == in_shape
    assert net.shape(net.outputs[0]) == out_shape
    assert kinds <= {p.nir_type for p in net.nodes.values()}


def test_lif_norse_parameters(shared_data):
    """README: 1x1 Affine (weight 1, bias 0), LIF tau = 0.0025 s, r = 1, v_leak = 0,
    v_threshold = 0.1, v_reset = 0 (stored as float32, so compare at that precision)."""
    net = nirsim.load(shared_data / "lif_norse.nir")
    (lif,) = [net.nodes[n] for n in net.neurons]
    for field, value in dict(tau=0.0025, r=1, v_leak=0, v_threshold=0.1, v_reset=0).items():
        np.testing.assert_array_equal(getattr(lif, field), np.float32(value), err_msg=field)
    (aff,) = [p for p in net.nodes.values() if p.nir_type == "Affine"]
    np.testing.assert_array_equal(aff.weight, [[1.0]])
    np.testing.assert_array_equal(aff.bias, [0.0])


def test_braille_recurrence_is_flattened(shared_data):
    """README: 38 hidden CubaLIF neurons with a recurrent Affine (flattened from the
    'lif1' subgraph)."""
    net = nirsim.load(shared_data / "braille_noDelay_bias_zero.nir")
    hidden = [n for n in net.neurons if net.shape(n) == (38,)]
    assert len(hidden) == 1
    (h,) = hidden
    rec = [p for p in net.successors(h) if h in net.successors(p)]
    assert len(rec) == 1 and net.nodes[rec[0]].nir_type == "Affine"
    assert net.nodes[h].nir_type == "CubaLIF"


@pytest.mark.parametrize("name", BROKEN)
def test_broken_subgraph_file_is_refused_with_readme_reason(shared_data, name):
    with pytest.raises(nirsim.GraphError, match=f"^{FILES[name]}$"):
        nirsim.load(shared_data / name)


@pytest.mark.parametrize("name", LOADABLE)
def test_file_round_trip_keeps_parameters(shared_data, name, tmp_path):
    net = _load_quietly(shared_data / name)
    source = (
        nir.read(shared_data / name, type_check=False)
        if name == "lif_rockpool.nir"
        else nir.read(shared_data / name)
    )
    out = tmp_path / "again.nir"
    nir.write(out, net.to_nir())
    again = nirsim.load(out)  # clean: no warning, even for the Rockpool file
    assert again.order == net.order and again.edges == net.edges
    back = nir.read(out)

    def flat_nodes(g, prefix=""):
        for k, v in g.nodes.items():
            if isinstance(v, nir.NIRGraph):
                yield from flat_nodes(v, prefix + k + ".")
            else:
                yield prefix + k, v

    src_nodes = dict(flat_nodes(source))
    for name_, prim in net.nodes.items():
        for field in type(prim).param_names:
            a = np.asarray(getattr(src_nodes[name_], field))
            b = np.asarray(getattr(back.nodes[name_], field))
            assert a.dtype == b.dtype and a.shape == b.shape, (name_, field)
            assert a.tobytes() == b.tobytes(), (name_, field)


# -------------------------------------------------------------------- nirsim info


@pytest.mark.parametrize("name", LOADABLE)
def test_info_summarises_loadable_files(shared_data, name, capsys):
    path = shared_data / name
    code = cli_main(["info", str(path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert err == ""
    net = _load_quietly(path)
    assert out.rstrip().endswith("verdict: valid")
    lines = out.splitlines()
    for node in net.order:  # every node on a line with its type and shape
        row = [ln for ln in lines if ln.split()[:2] == [node, net.nodes[node].nir_type]]
        assert len(row) == 1, node
        assert str(net.shape(node)) in row[0]
    for a, b in net.edges:
        assert f"  {net.order[a]} -> {net.order[b]}" in lines
    if name == "lif_rockpool.nir":
        assert re.search(r"^note: nir\.read refused the file's types", out, re.M)
    else:
        assert "note:" not in out
    if name.startswith("braille"):
        # README: trained with dt = 1e-4 s per step (r = tau_mem/dt, w_in = tau_syn/dt)
        assert re.search(r"^hint: .*dt = 0\.0001.*--spike-area 0\.0001", out, re.M)
    else:
        assert "hint:" not in out


def test_info_shows_key_parameters(shared_data, capsys):
    assert cli_main(["info", str(shared_data / "lif_norse.nir")]) == 0
    out = capsys.readouterr().out
    (row,) = [ln for ln in out.splitlines() if " LIF " in ln]
    for text in ("tau=0.0025", "r=1", "v_threshold=0.1", "v_reset=0", "v_leak=0"):
        assert text in row


@pytest.mark.parametrize("name", BROKEN)
def test_info_refuses_broken_files_plainly(shared_data, name, capsys):
    path = shared_data / name
    code = cli_main(["info", str(path)])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1  # one line, no traceback
    assert "Traceback" not in err
    assert err.startswith("nirsim info: ")
    assert str(path) in err
    assert re.search(FILES[name], err)


def test_info_missing_file(tmp_path, capsys):
    code = cli_main(["info", str(tmp_path / "nothing.nir")])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.strip() == f"nirsim info: {tmp_path / 'nothing.nir'}: no such file"


def test_info_on_a_constructed_graph_file(tmp_path, capsys):
    """Without the shared folder too: a small valid file, and a corrupted one."""
    g = nir.NIRGraph(
        nodes={
            "in": nir.Input({"input": np.array([2])}),
            "w": nir.Linear(np.eye(2)),
            "lif": nir.LIF(
                np.full(2, 0.02), np.full(2, 200.0), np.zeros(2), np.ones(2), np.zeros(2)
            ),
            "out": nir.Output({"output": np.array([2])}),
        },
        edges=[("in", "w"), ("w", "lif"), ("lif", "out")],
    )
    path = tmp_path / "small.nir"
    nir.write(path, g)
    assert cli_main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    # tau/r = 0.02/200 = 1e-4: the discrete-export pattern, pointed out
    assert re.search(
        r"^hint: 'lif' \(LIF\) follows r = tau/dt with dt = 0\.0001", out, re.M
    )
    assert "--spike-area 0.0001" in out
    bad = tmp_path / "bad.nir"
    bad.write_bytes(path.read_bytes()[:200])
    assert cli_main(["info", str(bad)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and str(bad) in err


def test_no_hint_without_the_pattern(tmp_path, capsys):
    """r = 1 (dt would equal tau) and ratios that differ per neuron give no hint."""
    from nirsim._cli_info import export_step
    from nirsim.primitives import LIF, CubaLIF

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert (
            export_step(LIF(np.full(2, 0.01), np.ones(2), np.zeros(2), np.ones(2))) is None
        )
        assert (
            export_step(LIF([0.01, 0.02], [100.0, 100.0], np.zeros(2), np.ones(2))) is None
        )
        # Rockpool's r = tau/dt * exp(-dt/tau): not a round step
        assert export_step(LIF([0.0025], [24.0197], [0.0], [0.1])) is None
        assert export_step(LIF([0.01, 0.02], [100.0, 200.0], np.zeros(2), np.ones(2))) == (
            1e-4,
            "r = tau/dt",
        )
        # CubaLIF needs both r = tau_mem/dt and w_in = tau_syn/dt for one dt
        ok = CubaLIF([0.004], [0.01], [100.0], [0.0], [1.0], [0.0], [40.0])
        assert export_step(ok)[0] == 1e-4
        off = CubaLIF([0.004], [0.01], [100.0], [0.0], [1.0], [0.0], [1.0])
        assert export_step(off) is None
