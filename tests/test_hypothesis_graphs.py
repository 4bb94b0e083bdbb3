"""Property tests: generated valid graphs load and round trip; generated broken
graphs and corrupted files raise a nirsim error and nothing else.

Graphs are chains of Affine/Linear/Scale/LIF/LI/CubaLIF/IF/Delay layers with
consistent shapes, with parallel branches, recurrence through a neuron (sometimes as
a nested NIRGraph block) and a shuffled node order. Parameters come from a drawn
numpy seed (float32 or float64), so shrinking acts on the structure.
"""

import dataclasses
import os
import tempfile
import warnings

import hypothesis.strategies as st
import nir
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import nirsim

# A few dozen examples keep the suite fast; NIRSIM_HYPOTHESIS_EXAMPLES=2000 for a
# longer search.
SETTINGS = settings(
    max_examples=int(os.environ.get("NIRSIM_HYPOTHESIS_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

LAYERS = ("Affine", "Linear", "Scale", "LIF", "LI", "CubaLIF", "IF", "Delay")
NEURONS = ("LIF", "LI", "CubaLIF", "IF")


def _inp(n):
    return nir.Input(input_type={"input": np.array([n])})


def _out(n):
    return nir.Output(output_type={"output": np.array([n])})


def _layer(kind, n_in, n_out, rng, dtype):
    def rnd(*shape, lo=-1.0, hi=1.0):
        return rng.uniform(lo, hi, size=shape).astype(dtype)

    def tau(n):
        return rng.uniform(1e-3, 5e-2, size=n).astype(dtype)

    n = n_in
    if kind == "Affine":
        return nir.Affine(rnd(n_out, n_in), rnd(n_out))
    if kind == "Linear":
        return nir.Linear(rnd(n_out, n_in))
    if kind == "Scale":
        return nir.Scale(rnd(n))
    if kind == "LIF":
        return nir.LIF(tau(n), rnd(n, lo=0.1), rnd(n), rnd(n, lo=1, hi=2), rnd(n))
    if kind == "LI":
        return nir.LI(tau(n), rnd(n, lo=0.1), rnd(n))
    if kind == "CubaLIF":
        return nir.CubaLIF(
            tau(n), tau(n), rnd(n, lo=0.1), rnd(n), rnd(n, lo=1), rnd(n), rnd(n)
        )
    if kind == "IF":
        return nir.IF(rnd(n, lo=0.1), rnd(n, lo=1, hi=2), rnd(n))
    if kind == "Delay":
        return nir.Delay(tau(n))
    raise AssertionError(kind)


@dataclasses.dataclass
class Plan:
    """A generated graph before it becomes a nir.NIRGraph (easy to break)."""

    nodes: dict
    edges: list
    size: int  # shape (size,) arriving at the Output
    last: list  # names feeding the Output
    order: list  # node insertion order

    def graph(self, type_check=False):
        nodes = {k: self.nodes[k] for k in self.order if k in self.nodes}
        return nir.NIRGraph(nodes=nodes, edges=list(self.edges), type_check=type_check)


@st.composite
def plans(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    size = draw(st.integers(1, 4))
    nodes = {"in": _inp(size)}
    edges = []
    prev = ["in"]
    n_layers = draw(st.integers(1, 5))
    for k in range(n_layers):
        kind = draw(st.sampled_from(LAYERS))
        n_out = draw(st.integers(1, 4)) if kind in ("Affine", "Linear") else size
        name = f"{kind.lower()}{k}"
        node = _layer(kind, size, n_out, rng, dtype)
        size = n_out
        recurrent = kind in NEURONS and draw(st.booleans())
        if recurrent and draw(st.booleans()):
            # a nested block: input -> neuron <-> recurrent Linear, neuron -> output
            block = nir.NIRGraph(
                nodes={
                    "input": _inp(size),
                    "cell": node,
                    "w_rec": nir.Linear(rng.uniform(-1, 1, (size, size)).astype(dtype)),
                    "output": _out(size),
                },
                edges=[
                    ("input", "cell"),
                    ("cell", "w_rec"),
                    ("w_rec", "cell"),
                    ("cell", "output"),
                ],
                type_check=False,
            )
            nodes[name] = block
        else:
            nodes[name] = node
            if recurrent:
                rec = f"rec{k}"
                nodes[rec] = nir.Linear(rng.uniform(-1, 1, (size, size)).astype(dtype))
                edges += [(name, rec), (rec, name)]
        edges += [(p, name) for p in prev]
        prev = [name]
        if draw(st.booleans()):  # a parallel branch joining the next node
            branch = f"branch{k}"
            nodes[branch] = _layer("Scale", size, size, rng, dtype)
            edges.append((name, branch))
            prev.append(branch)
    nodes["out"] = _out(size)
    edges += [(p, "out") for p in prev]
    order = draw(st.permutations(list(nodes)))
    return Plan(nodes, edges, size, prev, list(order))


def _flat_params(net):
    return {
        (name, f): np.asarray(getattr(p, f))
        for name, p in net.nodes.items()
        for f in type(p).param_names
    }


def _assert_same_network(a, b):
    assert a.order == b.order
    assert a.edges == b.edges
    pa, pb = _flat_params(a), _flat_params(b)
    assert pa.keys() == pb.keys()
    for k in pa:
        assert pa[k].tobytes() == pb[k].tobytes() and pa[k].shape == pb[k].shape, k
    for n in a.order:
        assert a.nodes[n].source_dtypes == b.nodes[n].source_dtypes


def _instant_edges_go_forward(net):
    from nirsim.primitives import AbstractNeuron, Delay, Threshold

    for i, j in net.edges:
        node = net.nodes[net.order[j]]
        if isinstance(node, AbstractNeuron | Threshold | Delay):
            continue
        assert i < j


@SETTINGS
@given(plans())
def test_generated_valid_graphs_load_and_round_trip(plan):
    net = nirsim.load(plan.graph())  # warnings are errors: none expected
    _instant_edges_go_forward(net)
    assert net.inputs == ("in",) and net.outputs == ("out",)
    assert net.shape("out") == (plan.size,)
    for name, node in plan.nodes.items():
        if isinstance(node, nir.NIRGraph):  # flattened with qualified names
            assert f"{name}.cell" in net.order and f"{name}.w_rec" in net.order
            assert f"{name}.input" not in net.order
        else:
            assert name in net.order
    exported = net.to_nir()
    _assert_same_network(net, nirsim.load(exported))
    with tempfile.TemporaryDirectory() as tmp:
        first = os.path.join(tmp, "first.nir")
        nir.write(first, plan.graph())
        from_file = nirsim.load(first)
        _assert_same_network(net, from_file)
        second = os.path.join(tmp, "second.nir")
        nir.write(second, from_file.to_nir())
        _assert_same_network(net, nirsim.load(second))
        # exported parameters keep the source dtype
        back = nir.read(second)
        for (name, f), value in _flat_params(net).items():
            stored = np.asarray(getattr(back.nodes[name], f))
            assert stored.dtype == np.dtype(dict(net.nodes[name].source_dtypes)[f])
            np.testing.assert_array_equal(stored, value.astype(stored.dtype))


# -------------------------------------------------------------------- broken graphs


@dataclasses.dataclass(eq=False)
class Mystery(nir.NIRNode):
    gain: np.ndarray

    def __post_init__(self):
        self.input_type = {"input": np.array(self.gain.shape)}
        self.output_type = {"output": np.array(self.gain.shape)}


def _insert_before_output(plan, name, node, extra_edges=()):
    """Put ``node`` between the last layer(s) and the Output."""
    plan.nodes[name] = node
    plan.order.insert(len(plan.order) // 2, name)
    plan.edges = [(a, name) if b == "out" else (a, b) for a, b in plan.edges]
    plan.edges = list(dict.fromkeys(plan.edges))
    plan.edges.append((name, "out"))
    plan.edges.extend(extra_edges)


BREAKS = (
    "dangling",
    "shape",
    "tau",
    "nan",
    "loop",
    "no_input",
    "no_output",
    "unknown",
)


def _break(plan, how, draw):
    """Break a valid plan; returns the pattern the refusal must match."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = plan.size
    if how == "dangling":
        k = draw(st.integers(0, len(plan.edges) - 1))
        a, b = plan.edges[k]
        if draw(st.booleans()):
            plan.edges[k] = (a, b + "_gone")
            # the other end may be a nested block, named by its inner Output/Input
            return (
                rf"edge \('{a}(\.output)?', '{b}_gone'\): target node '{b}_gone' does not"
            )
        plan.edges[k] = ("x" + a, b)
        return rf"edge \('x{a}', '{b}(\.input)?'\): source node 'x{a}' does not exist"
    if how == "shape":
        plan.nodes["in"] = _inp(plan.nodes["in"].input_type["input"][0] + 1)
        return r"^edge \('in', '.*'\): shape mismatch"
    if how == "tau":
        field = draw(
            st.sampled_from(["LIF.tau", "LI.tau", "CubaLIF.tau_mem", "CubaLIF.tau_syn"])
        )
        kind, param = field.split(".")
        node = _layer(kind, n, n, rng, np.float64)
        bad = getattr(node, param).copy()
        bad[draw(st.integers(0, n - 1))] = draw(st.sampled_from([0.0, -1e-3, -np.inf]))
        setattr(node, param, bad)
        _insert_before_output(plan, "broken", node)
        if np.isinf(bad).any():
            return rf"^node 'broken' \({kind}\): parameter '{param}' is not finite"
        return rf"^node 'broken' \({kind}\): time constant '{param}' must be > 0"
    if how == "nan":
        w = rng.uniform(-1, 1, (n, n))
        w[draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))] = np.nan
        kind = draw(st.sampled_from(["Linear", "Affine"]))
        node = nir.Linear(w) if kind == "Linear" else nir.Affine(w, np.zeros(n))
        _insert_before_output(plan, "broken", node)
        return rf"^node 'broken' \({kind}\): parameter 'weight' is not finite: nan"
    if how == "loop":
        a = nir.Linear(rng.uniform(-1, 1, (n, n)))
        b = nir.Affine(rng.uniform(-1, 1, (n, n)), np.zeros(n))
        plan.nodes["loop_b"] = b
        plan.order.append("loop_b")
        _insert_before_output(
            plan, "loop_a", a, [("loop_a", "loop_b"), ("loop_b", "loop_a")]
        )
        return (
            r"^algebraic loop: the cycle through 'loop_a' \(Linear\), 'loop_b' \(Affine\)"
        )
    if how == "no_input":
        del plan.nodes["in"]
        plan.edges = [e for e in plan.edges if "in" not in e]
        return r"^the graph has no Input node$"
    if how == "no_output":
        del plan.nodes["out"]
        plan.edges = [e for e in plan.edges if "out" not in e]
        return r"^the graph has no Output node$"
    if how == "unknown":
        _insert_before_output(plan, "odd", Mystery(np.ones(n)))
        return r"^node 'odd': unknown node type 'Mystery'$"
    raise AssertionError(how)


@SETTINGS
@given(plans(), st.sampled_from(BREAKS), st.data())
def test_generated_broken_graphs_raise_nirsim_errors_only(plan, how, data):
    pattern = _break(plan, how, data.draw)
    with pytest.raises(nirsim.NirsimError, match=pattern):
        nirsim.load(plan.graph())


@SETTINGS
@given(plans(), st.sampled_from(["dangling", "shape", "tau", "nan", "loop"]), st.data())
def test_generated_broken_files_raise_nirsim_errors_only(plan, how, data):
    """The same breaks through a file (nir.write does not check the graph). A file
    without Input or Output is completed by nir.read (tested in test_graph.py)."""
    pattern = _break(plan, how, data.draw)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "broken.nir")
        nir.write(path, plan.graph())
        with pytest.raises(nirsim.NirsimError, match=pattern):
            nirsim.load(path)


# ---------------------------------------------------------------- corrupted bytes


@SETTINGS
@given(
    plans(),
    st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1,
             max_size=12),
    st.booleans(),
)  # fmt: skip
def test_corrupted_hdf5_bytes_raise_nirsim_errors_only(plan, edits, truncate):
    """Random byte edits (and truncation) of a valid file: either it still loads (the
    edit hit padding or a parameter value) or nirsim refuses it. libhdf5 crashes on
    some of these files; nirsim must not (see nirsim/_hdf5.py)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "graph.nir")
        nir.write(path, plan.graph())
        with open(path, "rb") as f:
            raw = bytearray(f.read())
        for where, value in edits:
            raw[int(where * len(raw))] = value
        if truncate:
            raw = raw[: int(edits[0][0] * len(raw))]
        with open(path, "wb") as f:
            f.write(bytes(raw))
        with warnings.catch_warnings():
            # a repaired read warns; any other warning is still an error
            warnings.simplefilter("ignore", nirsim.GraphWarning)
            try:
                net = nirsim.load(path)
            except nirsim.NirsimError as e:
                assert str(e)  # a message, naming the file or the node
                return
        assert isinstance(net, nirsim.Network)
