"""Fuzz suite: broken graphs, inputs, options and files never give a silent wrong
answer, through Python and through the command line.

**The property.** Every generated case either runs and gives finite results whose
invariants hold (spike counts non-negative, spike times sorted within ``[0, t_end]``,
every sampled row valid and finite), or raises :class:`nirsim.NirsimError` with a
message naming a node, input, option or file; never another exception, a hang or a
crash. The command line (``nirsim run`` / ``nirsim info`` in the same process, on
files written from the same case) exits 0, or 2 with one or two plain lines naming
what is wrong, never a traceback.

**What is generated.** Graphs of every node type (from templates with consistent
shapes: Affine, Linear, Scale, LIF, LI, CubaLIF, CubaLI, IF, I, Threshold, Delay,
Conv1d, Conv2d, SumPool2d, AvgPool2d, Flatten, recurrence), then at most one break of
each kind: a parameter (NaN, inf, negative, zero, complex, wrong shape, wrong dtype,
strings, huge), the structure (dangling edges, edges into Inputs or out of Outputs,
algebraic loops, empty graphs, missing Input/Output, duplicate edges, unknown types),
the inputs (empty time axis, wrong shapes, bad indices, non-finite values, wrong batch
shapes, wrong types, missing or extra inputs), the options (every argument of
``simulate`` with non-numbers, NaN, inf, negative, zero, absurd sizes) and the files
(byte edits, truncation, an edited root or node type, wrong observables in ``IN.h5``).

**Profiles.** Shapes, end times and options a simulation accepts come from small sets,
so that jit compiles a few dozen programs and the cases run from its cache.

* CI (default): a fixed seed (``derandomize``), 2,100 cases in all.
* Long: ``NIRSIM_FUZZ=long python -m pytest tests/test_fuzz.py -n 2``, 10,500
  cases, random seeds; its last result is in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import re
import tempfile
import warnings

import h5py
import hypothesis.strategies as st
import nir
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings

import nirsim
import nirsim.cli

LONG = os.environ.get("NIRSIM_FUZZ", "ci") == "long"
SCALE = 5 if LONG else 1


def fuzz_settings(n):
    if os.environ.get("NIRSIM_FUZZ_EXAMPLES"):  # a quick look while debugging
        n = int(os.environ["NIRSIM_FUZZ_EXAMPLES"])
    phases = list(Phase)
    if os.environ.get("NIRSIM_FUZZ_NOSHRINK"):
        phases.remove(Phase.shrink)
    return settings(
        phases=phases,
        max_examples=n * SCALE,
        derandomize=not LONG,
        database=None,
        deadline=None,
        print_blob=True,
        suppress_health_check=list(HealthCheck),
    )


N = 2  # neurons per layer in the templates
T_ENDS = (0.01, 0.02)
DT_IN = 1e-3


# ------------------------------------------------------------------ graph templates


def _neuron(kind, n=N, rng=None):
    rng = rng or np.random.default_rng(0)
    tau = lambda: rng.uniform(1e-3, 2e-2, n)
    u = lambda lo, hi: rng.uniform(lo, hi, n)
    if kind == "LIF":
        return nir.LIF(tau(), u(0.5, 2), u(-0.1, 0.1), u(0.2, 1), np.zeros(n))
    if kind == "LI":
        return nir.LI(tau(), u(0.5, 2), u(-0.1, 0.1))
    if kind == "CubaLIF":
        return nir.CubaLIF(
            tau(), tau(), u(0.5, 2), u(-0.1, 0.1), u(0.2, 1), np.zeros(n), u(0.5, 2)
        )
    if kind == "CubaLI":
        return nir.CubaLI(tau(), tau(), u(0.5, 2), u(-0.1, 0.1), u(0.5, 2))
    if kind == "IF":
        return nir.IF(u(0.5, 2), u(0.2, 1), np.zeros(n))
    if kind == "I":
        return nir.I(u(0.5, 2))
    raise AssertionError(kind)


def _inp(*shape):
    return nir.Input(input_type={"input": np.array(shape)})


def _out(*shape):
    return nir.Output(output_type={"output": np.array(shape)})


def template(name, rng):
    """(nodes, edges, input shape) of a small consistent graph."""
    w = lambda *s: rng.uniform(-1, 2, s)
    if name in ("LIF", "LI", "CubaLIF", "CubaLI", "IF", "I"):
        first = {
            "LIF": nir.Affine(w(N, N), w(N)),
            "LI": nir.Linear(w(N, N)),
            "CubaLIF": nir.Linear(w(N, N)),
            "CubaLI": nir.Scale(w(N)),
            "IF": nir.Scale(w(N)),
            "I": nir.Affine(w(N, N), w(N)),
        }[name]
        nodes = {
            "in": _inp(N),
            "syn": first,
            "neuron": _neuron(name, rng=rng),
            "out": _out(N),
        }
        return nodes, [("in", "syn"), ("syn", "neuron"), ("neuron", "out")], (N,)
    if name == "recurrent":
        nodes = {
            "in": _inp(N),
            "w_in": nir.Affine(w(N, N), w(N)),
            "lif": _neuron("LIF", rng=rng),
            "w_rec": nir.Linear(-np.abs(w(N, N)) * 0.2),  # inhibitory: no Zeno
            "out": _out(N),
        }
        edges = [("in", "w_in"), ("w_in", "lif"), ("lif", "w_rec"), ("w_rec", "lif")]
        return nodes, edges + [("lif", "out")], (N,)
    if name == "threshold_delay":
        nodes = {
            "in": _inp(N),
            "thr": nir.Threshold(rng.uniform(0.2, 0.8, N)),
            "delay": nir.Delay(rng.uniform(1e-3, 3e-3, N)),
            "lif": _neuron("LIF", rng=rng),
            "out": _out(N),
        }
        edges = [("in", "thr"), ("thr", "delay"), ("delay", "lif"), ("lif", "out")]
        return nodes, edges, (N,)
    if name == "conv1d":
        nodes = {
            "in": _inp(1, 4),
            "conv": nir.Conv1d(4, w(2, 1, 3), 1, 1, 1, 1, w(2)),
            "flat": nir.Flatten({"input": np.array([2, 4])}, 0, -1),
            "lif": _neuron("LIF", 8, rng),
            "out": _out(8),
        }
        edges = [("in", "conv"), ("conv", "flat"), ("flat", "lif"), ("lif", "out")]
        return nodes, edges, (1, 4)
    if name == "conv2d":
        nodes = {
            "in": _inp(1, 4, 4),
            "conv": nir.Conv2d((4, 4), w(1, 1, 3, 3), 1, 1, 1, 1, w(1)),
            "sum": nir.SumPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0])),
            "lif": _neuron("LIF", 4, rng).__class__(
                *[np.broadcast_to(np.asarray(getattr(_neuron("LIF", 1, rng), f)), (1, 2, 2))
                  for f in ("tau", "r", "v_leak", "v_threshold", "v_reset")]
            ),
            "avg": nir.AvgPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0])),
            "flat": nir.Flatten({"input": np.array([1, 1, 1])}, 0, -1),
            "out": _out(1),
        }  # fmt: skip
        edges = [("in", "conv"), ("conv", "sum"), ("sum", "lif"), ("lif", "avg")]
        edges += [("avg", "flat"), ("flat", "out")]
        return nodes, edges, (1, 4, 4)
    raise AssertionError(name)


TEMPLATES = (
    "LIF", "LI", "CubaLIF", "CubaLI", "IF", "I", "recurrent", "threshold_delay",
    "conv1d", "conv2d",
)  # fmt: skip
SOLVERS = (None, "euler")

PARAM_BREAKS = (
    "nan", "inf", "-inf", "negative", "zero", "complex", "shape", "matrix", "string",
    "object", "huge", "tiny", "scalar", "empty",
)  # fmt: skip
# Integer and boolean parameters are accepted, and each dtype is a new program for jit
# (the source dtype is kept for export): only the long profile tries them.
if LONG:
    PARAM_BREAKS += ("int", "bool", "float32")


def _param_fields(node):
    out = []
    for f, v in vars(node).items():
        if f in ("input_type", "output_type", "metadata"):
            continue
        if isinstance(v, np.ndarray) and v.dtype.kind == "f":
            out.append(f)
    return out


def break_param(node, field, how, rng):
    v = np.array(getattr(node, field), dtype=float)
    k = tuple(rng.integers(0, s) for s in v.shape) if v.ndim else ()
    if how in ("nan", "inf", "-inf", "zero", "huge", "tiny", "negative"):
        value = {
            "nan": np.nan, "inf": np.inf, "-inf": -np.inf, "zero": 0.0, "huge": 1e300,
            "tiny": 1e-300, "negative": -abs(float(v[k])) - 1e-3,
        }[how]  # fmt: skip
        v[k] = value
    elif how == "complex":
        v = v + 1j
    elif how == "shape":
        v = np.concatenate([v.reshape(-1), [1.0]])
    elif how == "matrix":
        v = v.reshape(-1)[:, None] * np.ones((1, 3))
    elif how == "string":
        v = np.array(["x"] * max(v.size, 1))
    elif how == "object":
        v = np.array([None] * max(v.size, 1), dtype=object)
    elif how == "int":
        v = np.round(v).astype(np.int64)
    elif how == "bool":
        v = v != 0
    elif how == "float32":
        v = v.astype(np.float32)
    elif how == "scalar":
        v = np.float64(v.reshape(-1)[0]) if v.size else np.float64(1.0)
    elif how == "empty":
        v = np.zeros((0,))
    setattr(node, field, v)


@dataclasses.dataclass(eq=False)
class Mystery(nir.NIRNode):
    gain: np.ndarray

    def __post_init__(self):
        self.input_type = {"input": np.array(self.gain.shape)}
        self.output_type = {"output": np.array(self.gain.shape)}


STRUCTURE_BREAKS = (
    "dangling_source", "dangling_target", "into_input", "out_of_output", "loop",
    "empty", "no_input", "no_output", "duplicate_edge", "self_loop", "unknown_type",
    "bad_edge",
)  # fmt: skip
if LONG:  # accepted with a GraphWarning: a new program for jit for each template
    STRUCTURE_BREAKS += ("isolated", "no_edges")


def break_structure(nodes, edges, how, rng):
    first = edges[0]
    if how == "dangling_source":
        edges.append(("ghost", first[1]))
    elif how == "dangling_target":
        edges.append((first[0], "ghost"))
    elif how == "into_input":
        edges.append((edges[-1][0], "in"))
    elif how == "out_of_output":
        edges.append(("out", edges[1][1]))
    elif how == "loop":
        a, b = nir.Linear(np.eye(N)), nir.Linear(np.eye(N))
        src = next(e[0] for e in edges if e[1] == "out")
        nodes.update(loop_a=a, loop_b=b)
        edges += [(src, "loop_a"), ("loop_a", "loop_b"), ("loop_b", "loop_a")]
    elif how == "empty":
        nodes.clear()
        edges.clear()
    elif how == "no_input":
        del nodes["in"]
        edges[:] = [e for e in edges if "in" not in e]
    elif how == "no_output":
        del nodes["out"]
        edges[:] = [e for e in edges if "out" not in e]
    elif how == "duplicate_edge":
        edges.append(first)
    elif how == "self_loop":
        edges.append((first[1], first[1]))
    elif how == "unknown_type":
        nodes["odd"] = Mystery(np.ones(N))
        edges.append((first[0], "odd"))
    elif how == "isolated":
        nodes["alone"] = nir.Scale(np.ones(N))
    elif how == "bad_edge":
        edges.append((first[0],))
    elif how == "no_edges":
        edges.clear()
    return how


# --------------------------------------------------------------------- inputs

INPUT_BREAKS = (
    "empty_time", "wrong_shape", "extra_axis", "bad_index_negative", "bad_index_large",
    "bad_index_fraction", "nan_current", "inf_current", "nan_time", "negative_time",
    "inf_time_valid_index", "nan_value", "complex_current", "string_current",
    "missing", "extra_input", "wrong_type", "bad_dt", "unsorted", "padding",
    "batch_mismatch", "empty_spikes", "zero_dim",
)  # fmt: skip


def make_input(shape, kind, batch, rng, steps=8, n_events=6):
    n = int(np.prod(shape))
    if kind == "current":
        values = rng.uniform(-0.5, 3, batch + (steps,) + shape)
        return nirsim.Current(values, DT_IN)
    times = np.sort(rng.uniform(0, 8e-3, batch + (n_events,)), axis=-1)
    idx = rng.integers(0, n, batch + (n_events,))
    return nirsim.Spikes(times, idx, rng.uniform(0.5, 2, batch + (n_events,)))


def broken_input(shape, kind, batch, how, rng):
    """The inputs argument of simulate, built with the break ``how`` (building may
    itself raise: that counts as the case's answer)."""
    n = int(np.prod(shape))
    ok = make_input(shape, kind, batch, rng)
    if how == "empty_time":
        return nirsim.Current(np.zeros(batch + (0,) + shape), DT_IN)
    if how == "wrong_shape":
        return nirsim.Current(np.ones(batch + (8, n + 1)), DT_IN)
    if how == "extra_axis":
        return nirsim.Current(np.ones(batch + (8,) + shape + (1,)), DT_IN)
    if how.startswith("bad_index"):
        bad = {"bad_index_negative": -3, "bad_index_large": n, "bad_index_fraction": 0.5}
        idx = np.zeros(batch + (3,), dtype=float)
        idx[..., 1] = bad[how]
        return nirsim.Spikes(np.ones(batch + (3,)) * 1e-3, idx)
    if how in ("nan_current", "inf_current"):
        v = np.ones(batch + (8,) + shape)
        v.reshape(-1)[rng.integers(0, v.size)] = np.nan if how == "nan_current" else np.inf
        return nirsim.Current(v, DT_IN)
    if how in ("nan_time", "negative_time", "inf_time_valid_index", "nan_value"):
        t = np.full(batch + (3,), 1e-3)
        vals = np.ones_like(t)
        if how == "nan_time":
            t[..., 1] = np.nan
        elif how == "negative_time":
            t[..., 1] = -1e-3
        elif how == "inf_time_valid_index":
            t[..., 1] = np.inf
        else:
            vals[..., 1] = np.nan
        return nirsim.Spikes(t, np.zeros(t.shape, dtype=int), vals)
    if how == "complex_current":
        return nirsim.Current(np.ones(batch + (8,) + shape) * (1 + 1j), DT_IN)
    if how == "string_current":
        return nirsim.Current(np.full(batch + (8,) + shape, "1.0"), DT_IN)
    if how == "missing":
        return {}
    if how == "extra_input":
        return {"in": ok, "nowhere": ok}
    if how == "wrong_type":
        return (None, 3, "in.h5", [1.0, 2.0])[rng.integers(0, 4)]
    if how == "bad_dt":
        return nirsim.Current(np.ones((8,) + shape), rng.choice([0.0, -1e-3, np.nan, "x"]))
    if how == "unsorted":
        t = rng.uniform(0, 8e-3, (6,))
        return nirsim.Spikes(t, rng.integers(0, n, (6,)))
    if how == "padding":
        return nirsim.Spikes([1e-3, np.inf, 2e-3, np.inf], [0, -1, n - 1, -1])
    if how == "batch_mismatch":
        return {"in": nirsim.Current(np.ones((3, 2, 8) + shape), DT_IN)}
    if how == "empty_spikes":
        return nirsim.Spikes([], [])
    if how == "zero_dim":
        return nirsim.Spikes(1e-3, 0)
    raise AssertionError(how)


# -------------------------------------------------------------------- options

OPTIONS = {
    "t_end": (0, -1.0, np.nan, np.inf, "x", None, 1j, [0.01], 1e-9),
    "save_dt": (0, -1e-3, np.nan, np.inf, "x", 1e-15, 1j, [1e-3], 0.5),
    "save_at": ([2e-3, 1e-3], [-1.0], [np.nan], [1.0], "x", [[1e-3]], [1e-3 + 1j], []),
    "dt": (0, -1e-4, np.nan, "x", 1e-15, 1j, 5e-4),
    "solver": ("nope", 3, "", "ideal", "closed_form"),
    "reset": ("zero", None, 1, "subtract"),
    "grid_as": ("currents", None, "impulse"),
    "spike_area": (0, -1.0, np.nan, np.inf, "x", 1j, 1e-4),
    "rtol": (-1.0, np.nan, np.inf, "x", 1j),
    "atol": (-1.0, np.nan, "x"),
    "max_events": (0, -1, 1.5, np.nan, np.inf, "x", True, 1),
    "max_spikes": (0, -1, 2.5, np.nan, "x", 1),
    "max_cascade": (0, -3, np.nan, "x", 1),
}

# The command line's flags (strings, as typed)
CLI_FLAGS = {
    "--t-end": ("0", "-1", "nan", "inf", "x", "1e-9", ""),
    "--save-dt": ("0", "-1e-3", "nan", "inf", "x", "1e-15", "0.5"),
    "--dt": ("0", "-1e-4", "nan", "x", "1e-15", "5e-4"),
    "--backend": ("nope", "ideal", "euler", ""),
    "--spike-area": ("0", "-1", "nan", "x", "1e-4"),
    "--reset": ("zero", "subtract"),
    "--max-events": ("0", "-1", "1.5", "x", "1"),
    "--max-spikes": ("0", "-1", "x", "1"),
}


# ------------------------------------------------------------------ the property

NAMED = re.compile(
    r"'[^']+'|\b(t_end|save_dt|save_at|dt|solver|reset|grid_as|spike_area|rtol|atol"
    r"|max_events|max_spikes|max_cascade|Current|Spikes|spike|input|inputs|graph|"
    r"node|edge|Input|Output|backend|file|values|times|indices)\b"
)


def check_refusal(e: nirsim.NirsimError):
    msg = str(e)
    assert msg.strip(), "empty message"
    assert NAMED.search(msg), f"the message names no node, input, option or file: {msg}"


def check_trace(tr: nirsim.Trace, t_end: float):
    assert np.all(np.asarray(tr.result) == 0)
    for name, s in tr.spikes.items():
        t = np.asarray(s.times)
        i = np.asarray(s.indices)
        assert np.all(np.asarray(s.count()) >= 0)
        valid = i >= 0
        assert np.all(np.isfinite(t[valid])), name
        assert np.all((t[valid] >= 0) & (t[valid] <= t_end * (1 + 1e-12))), name
        tt = np.where(valid, t, np.inf)
        assert np.all(tt[..., 1:] >= tt[..., :-1]), f"{name}: spike times not sorted"
        assert np.all(t[~valid] == np.inf), name
    for name, fields in tr.states.items():
        for f, a in fields.items():
            assert np.all(np.isfinite(np.asarray(a))), f"{name}.{f} not finite"
    if tr.valid is not None:
        assert np.all(np.asarray(tr.valid))


@contextlib.contextmanager
def only_graph_warnings():
    """nirsim's own warnings (GraphWarning) are fine; any other warning (numpy's
    ComplexWarning, overflow...) is a silent change of the input and fails."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        assert issubclass(w.category, nirsim.GraphWarning), (
            f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})"
        )


def python_case(build_graph, build_inputs, options):
    """Run one case through Python; returns the trace or None (refused)."""
    with only_graph_warnings():
        try:
            graph = build_graph()
            net = nirsim.load(graph)
            inputs = build_inputs()
            tr = nirsim.simulate(net, inputs, **options)
        except nirsim.NirsimError as e:
            check_refusal(e)
            return None
    t_end = float(options["t_end"])
    check_trace(tr, t_end)
    return tr


def cli_case(argv):
    err, out = io.StringIO(), io.StringIO()
    with (
        only_graph_warnings(),
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(out),
    ):
        try:
            code = nirsim.cli.main([str(a) for a in argv])
        except SystemExit as e:  # argparse: exit 2 with usage
            code = e.code
    text = err.getvalue().strip()
    assert code in (0, 2), f"exit {code}: {text}"
    assert "Traceback" not in text, text
    if code == 2:
        assert text, "exit 2 without a message"
        lines = [x for x in text.splitlines() if not x.startswith("usage:")]
        lines = [x for x in lines if not x.startswith(" ")]  # argparse usage wrap
        assert 1 <= len(lines) <= 2, text
    return code


def write_graph(path, graph):
    """nir.write of a possibly broken graph (nir.write itself may refuse it: then
    the file case is skipped, the Python case still ran)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nir.write(path, graph)
    except Exception:
        return False
    return True


def write_inputs(path, inputs, shape):
    if isinstance(inputs, nirsim.Current | nirsim.Spikes):
        inputs = {"in": inputs}
    if not isinstance(inputs, dict):
        return False
    try:
        nirsim.save_inputs(
            path,
            {
                k: (v, shape) if isinstance(v, nirsim.Current) else (v, int(np.prod(shape)))
                for k, v in inputs.items()
            },
            t_max=0.01,
        )
    except nirsim.NirsimError:
        return False
    return True


def run_argv(graph_path, in_path, out_path, t_end, solver=None, save_dt="1e-3"):
    argv = ["run", graph_path, "--input", in_path, "--t-end", t_end, "-o", out_path]
    argv += ["--no-progress"]
    if save_dt is not None:
        argv += ["--save-dt", save_dt]
    if solver is not None:
        argv += ["--backend", solver, "--dt", "1e-3"]
    return argv


def cli_run_checked(argv, out_path, t_end):
    code = cli_case(argv)
    if code == 0:
        check_trace(nirsim.load_trace(out_path), float(t_end))
        os.remove(out_path)


# ---------------------------------------------------------------- strategies


@st.composite
def graph_cases(draw, whats):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    name = draw(st.sampled_from(TEMPLATES))
    nodes, edges, shape = template(name, rng)
    what = draw(st.sampled_from(whats))
    label = (name, what)
    if what == "param":
        candidates = [
            (n, f) for n, node in nodes.items() for f in _param_fields(node)
            if not isinstance(node, nir.Input | nir.Output)
        ]  # fmt: skip
        node_name, field = draw(st.sampled_from(candidates))
        how = draw(st.sampled_from(PARAM_BREAKS))
        break_param(nodes[node_name], field, how, rng)
        label += (node_name, field, how)
    elif what == "structure":
        how = draw(st.sampled_from(STRUCTURE_BREAKS))
        break_structure(nodes, edges, how, rng)
        label += (how,)
    if LONG:
        solver = draw(st.sampled_from(SOLVERS))
        kind = draw(st.sampled_from(["current", "spikes"]))
    else:  # one program per template in CI: half ideal, half discrete
        k = TEMPLATES.index(name)
        solver, kind = SOLVERS[k % 2], ("current", "spikes")[k // 2 % 2]
    return label, nodes, edges, shape, solver, kind, rng


def _graph(nodes, edges):
    return nir.NIRGraph(nodes=dict(nodes), edges=list(edges), type_check=False)


def _options(solver, t_end=T_ENDS[0], save_dt=1e-3):
    opts = {"t_end": t_end, "save_dt": save_dt}
    if solver is not None:
        opts.update(solver=solver, dt=1e-3)
    return opts


# --------------------------------------------------------------------- tests


@fuzz_settings(450)
@given(graph_cases(["param", "param", "param", "none"]))
def test_fuzz_graph_parameters(case):
    graph_case(case)


@fuzz_settings(250)
@given(graph_cases(["structure"]))
def test_fuzz_graph_structure(case):
    graph_case(case)


def graph_case(case):
    label, nodes, edges, shape, solver, kind, rng = case
    x = make_input(shape, kind, (1,), rng)  # one sample, as the CLI reads IN.h5
    python_case(lambda: _graph(nodes, edges), lambda: x, _options(solver))
    with tempfile.TemporaryDirectory() as tmp:
        g, i, o = (os.path.join(tmp, f) for f in ("g.nir", "in.h5", "o.h5"))
        if write_graph(g, _graph(nodes, edges)):
            if label[1] != "none":
                cli_case(["info", g])
            if write_inputs(i, x, shape):
                cli_run_checked(run_argv(g, i, o, T_ENDS[0], solver), o, T_ENDS[0])


# CI: one graph, the ideal solver and gridded inputs read as currents (each variant
# is a new program for jit); the long profile varies them too.
@fuzz_settings(600)
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from(("LIF", "CubaLIF", "conv1d") if LONG else ("LIF",)),
    st.sampled_from(["current", "spikes"]),
    st.sampled_from([(1,), (2,)]),
    st.sampled_from(INPUT_BREAKS + ("none",) * 4),
    st.sampled_from(SOLVERS if LONG else (None,)),
    st.sampled_from(["current", "impulse"] if LONG else ["current"]),
)
def test_fuzz_inputs(seed, name, kind, batch, how, solver, grid_as):
    rng = np.random.default_rng(seed)
    nodes, edges, shape = template(name, rng)
    build = (
        (lambda: make_input(shape, kind, batch, rng))
        if how == "none"
        else (lambda: broken_input(shape, kind, batch, how, rng))
    )
    opts = _options(solver) | {"grid_as": grid_as}
    python_case(lambda: _graph(nodes, edges), build, opts)
    try:
        with only_graph_warnings():
            x = build()
    except nirsim.NirsimError:
        return  # refused while building: nothing to write
    with tempfile.TemporaryDirectory() as tmp:
        g, i, o = (os.path.join(tmp, f) for f in ("g.nir", "in.h5", "o.h5"))
        assert write_graph(g, _graph(nodes, edges))
        if write_inputs(i, x, shape):
            cli_run_checked(run_argv(g, i, o, T_ENDS[0], solver), o, T_ENDS[0])


@fuzz_settings(500)
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from(("LIF", "IF") if LONG else ("LIF",)),
    st.sampled_from(SOLVERS if LONG else (None,)),
    st.dictionaries(
        st.sampled_from(sorted(OPTIONS)), st.integers(0, 8), min_size=1, max_size=2
    ),
    st.dictionaries(
        st.sampled_from(sorted(CLI_FLAGS)), st.integers(0, 6), min_size=1, max_size=2
    ),
)
def test_fuzz_options(seed, name, solver, picks, flag_picks):
    rng = np.random.default_rng(seed)
    nodes, edges, shape = template(name, rng)
    x = make_input(shape, "current", (1,), rng)
    opts = _options(solver)
    for key, k in picks.items():
        values = OPTIONS[key]
        opts[key] = values[k % len(values)]
    if "save_at" in opts:
        opts.pop("save_dt")
    if opts.get("solver") in ("ideal", "closed_form") or "solver" not in opts:
        if "solver" not in picks:
            opts.pop("dt", None)
    with only_graph_warnings():
        try:
            t_end = float(opts["t_end"])
        except (TypeError, ValueError):
            t_end = 0.0
    python_case(lambda: _graph(nodes, edges), lambda: x, opts)
    with tempfile.TemporaryDirectory() as tmp:
        g, i, o = (os.path.join(tmp, f) for f in ("g.nir", "in.h5", "o.h5"))
        assert write_graph(g, _graph(nodes, edges))
        assert write_inputs(i, x, shape)
        argv = run_argv(g, i, o, T_ENDS[0], solver)
        for flag, k in flag_picks.items():
            values = CLI_FLAGS[flag]
            argv += [flag, values[k % len(values)]]  # the last occurrence wins
        code = cli_case(argv)
        if code == 0:
            t_cli = float(argv[len(argv) - 1 - argv[::-1].index("--t-end") + 1])
            check_trace(nirsim.load_trace(o), t_cli)
    del t_end


FILE_BREAKS = (
    "bytes", "truncate", "root_type", "node_type", "no_edges", "in_bytes", "in_truncate",
    "in_observable", "in_node", "in_two_observables", "in_zero_steps", "in_complex",
    "in_1d", "in_n_neurons", "in_not_hdf5", "graph_not_hdf5", "missing_input_file",
    "missing_out_folder", "in_string",
)  # fmt: skip


def _edit_bytes(path, rng, truncate):
    with open(path, "rb") as f:
        raw = bytearray(f.read())
    for _ in range(rng.integers(1, 12)):
        raw[rng.integers(0, len(raw))] = rng.integers(0, 256)
    if truncate:
        raw = raw[: rng.integers(0, len(raw))]
    with open(path, "wb") as f:
        f.write(bytes(raw))


def _write_in(path, obs: dict, node="in"):
    nir.write_data(path, nir.NIRGraphData({node: nir.NIRNodeData(obs)}))


@fuzz_settings(300)
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from(("LIF", "CubaLIF", "recurrent")),
    st.sampled_from(FILE_BREAKS),
    st.sampled_from(SOLVERS),
)
def test_fuzz_files(seed, name, how, solver):
    rng = np.random.default_rng(seed)
    nodes, edges, shape = template(name, rng)
    x = make_input(shape, "current", (), rng)
    n = int(np.prod(shape))
    with tempfile.TemporaryDirectory() as tmp:
        g, i, o = (os.path.join(tmp, f) for f in ("g.nir", "in.h5", "o.h5"))
        assert write_graph(g, _graph(nodes, edges))
        x.save(i, node="in", shape=shape)
        if how in ("bytes", "truncate"):
            _edit_bytes(g, rng, how == "truncate")
        elif how in ("root_type", "node_type", "no_edges"):
            with h5py.File(g, "a") as f:
                inner = f["node/nodes"][sorted(set(nodes) - {"in", "out"})[0]]
                group = {"root_type": f["node"], "node_type": inner}.get(how)
                if group is None:
                    del f["node"]["edges"]
                else:
                    del group["type"]
                    group["type"] = (b"LIF", b"Mystery", b"", b"NIRGraph")[
                        rng.integers(0, 4)
                    ]
        elif how in ("in_bytes", "in_truncate"):
            _edit_bytes(i, rng, how == "in_truncate")
        elif how == "in_observable":
            _write_in(i, {"voltage": nir.TimeGriddedData(np.ones((1, 8, n)), DT_IN)})
        elif how == "in_node":
            _write_in(i, {"current": nir.TimeGriddedData(np.ones((1, 8, n)), DT_IN)}, "x")
        elif how == "in_two_observables":
            data = nir.TimeGriddedData(np.ones((1, 8, n)), DT_IN)
            _write_in(i, {"current": data, "spikes": data})
        elif how == "in_zero_steps":
            _write_in(i, {"current": nir.TimeGriddedData(np.ones((1, 0, n)), DT_IN)})
        elif how == "in_complex":
            _write_in(i, {"current": nir.TimeGriddedData(np.ones((1, 8, n)) * 1j, DT_IN)})
        elif how in ("in_1d", "in_string"):
            with h5py.File(i, "a") as f:  # nir.TimeGriddedData would refuse these
                obs = f["nodes/in/observables/current"]
                del obs["data"]
                obs["data"] = np.ones(8) if how == "in_1d" else np.full((1, 8, n), b"x")
        elif how == "in_n_neurons":
            ev = nir.EventData(
                np.array([[0, n + 1]]), np.array([[1e-3, 2e-3]]), n + 2, 0.01
            )
            _write_in(i, {"spikes": ev})
        elif how in ("in_not_hdf5", "graph_not_hdf5"):
            with open(i if how == "in_not_hdf5" else g, "w") as f:
                f.write("not hdf5")
        elif how == "missing_input_file":
            os.remove(i)
        elif how == "missing_out_folder":
            o = os.path.join(tmp, "nowhere", "o.h5")
        code = cli_case(["info", g])
        assert code in (0, 2)
        cli_run_checked(run_argv(g, i, o, T_ENDS[0], solver), o, T_ENDS[0])
        # the same files through Python
        with only_graph_warnings():
            try:
                net = nirsim.load(g)
                data = nir.read_data(i) if os.path.isfile(i) and h5py.is_hdf5(i) else None
            except nirsim.NirsimError as e:
                check_refusal(e)
                return
            except Exception:
                return  # nir.read_data's own refusal of a broken IN.h5 (the CLI wraps it)
            if data is None:
                return
            try:
                tr = nirsim.simulate(net, data, **_options(solver))
            except nirsim.NirsimError as e:
                check_refusal(e)
                return
        check_trace(tr, T_ENDS[0])


@pytest.mark.parametrize("name", TEMPLATES)
def test_templates_run(name):
    """Each unbroken template runs (so the fuzz cases above reach the solvers)."""
    rng = np.random.default_rng(0)
    nodes, edges, shape = template(name, rng)
    for solver in SOLVERS:
        tr = python_case(
            lambda: _graph(nodes, edges),
            lambda: make_input(shape, "current", (), rng),
            _options(solver),
        )
        assert tr is not None, (name, solver)
