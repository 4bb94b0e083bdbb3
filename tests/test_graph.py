"""Graph loading: every refusal of ``nirsim.load`` with its message, flattening of
nested graphs, evaluation order, and the Network pytree (leaves = parameters)."""

import dataclasses
import re

import equinox as eqx
import h5py
import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest

import nirsim

# ----------------------------------------------------------------------- builders


def inp(*shape):
    return nir.Input(input_type={"input": np.array(shape)})


def out(*shape):
    return nir.Output(output_type={"output": np.array(shape)})


def lif(n, **kw):
    p = dict(
        tau=np.full(n, 0.01),
        r=np.ones(n),
        v_leak=np.zeros(n),
        v_threshold=np.ones(n),
        v_reset=np.zeros(n),
    )
    p.update(kw)
    return nir.LIF(**p)


def cuba_lif(n, **kw):
    p = dict(
        tau_syn=np.full(n, 0.005),
        tau_mem=np.full(n, 0.01),
        r=np.ones(n),
        v_leak=np.zeros(n),
        v_threshold=np.ones(n),
        v_reset=np.zeros(n),
        w_in=np.ones(n),
    )
    p.update(kw)
    return nir.CubaLIF(**p)


def cuba_li(n, **kw):
    p = dict(
        tau_syn=np.full(n, 0.005),
        tau_mem=np.full(n, 0.01),
        r=np.ones(n),
        v_leak=np.zeros(n),
        w_in=np.ones(n),
    )
    p.update(kw)
    return nir.CubaLI(**p)


def li(n, **kw):
    p = dict(tau=np.full(n, 0.01), r=np.ones(n), v_leak=np.zeros(n))
    p.update(kw)
    return nir.LI(**p)


def graph(nodes, edges):
    """A NIRGraph without nir's own type check, so that broken graphs reach nirsim."""
    return nir.NIRGraph(nodes=nodes, edges=list(edges), type_check=False)


def chain(*middle, n=2):
    """Input(n) -> middle nodes in order -> Output(n)."""
    nodes = {"in": inp(n)}
    names = ["in"]
    for i, node in enumerate(middle):
        nodes[f"n{i}"] = node
        names.append(f"n{i}")
    nodes["out"] = out(n)
    names.append("out")
    return graph(nodes, zip(names[:-1], names[1:], strict=True))


def refused(source, pattern):
    """``nirsim.load(source)`` raises a GraphError (a ValueError) matching pattern."""
    with pytest.raises(nirsim.GraphError, match=pattern) as info:
        nirsim.load(source)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, nirsim.NirsimError)
    return str(info.value)


# ------------------------------------------------------------------- node types


@dataclasses.dataclass(eq=False)
class Mystery(nir.NIRNode):
    """A node type NIR allows to be defined but nirsim does not know."""

    gain: np.ndarray

    def __post_init__(self):
        self.input_type = {"input": np.array(self.gain.shape)}
        self.output_type = {"output": np.array(self.gain.shape)}


def test_unknown_node_type_in_memory():
    g = graph(
        {"in": inp(2), "odd": Mystery(np.ones(2)), "out": out(2)},
        [("in", "odd"), ("odd", "out")],
    )
    refused(g, r"^node 'odd': unknown node type 'Mystery'$")


def test_unknown_node_type_in_nested_graph():
    sub = graph(
        {"input": inp(2), "odd": Mystery(np.ones(2)), "output": out(2)},
        [("input", "odd"), ("odd", "output")],
    )
    g = graph({"in": inp(2), "sub": sub, "out": out(2)}, [("in", "sub"), ("sub", "out")])
    refused(g, r"^node 'sub.odd': unknown node type 'Mystery'$")


def test_unknown_node_type_in_file(tmp_path):
    path = tmp_path / "odd.nir"
    nir.write(path, chain(nir.Scale(np.ones(2))))
    with h5py.File(path, "a") as f:
        del f["node/nodes/n0/type"]
        f["node/nodes/n0/type"] = b"Hodgkin-Huxley"
    refused(path, r"^node 'n0': unknown node type 'Hodgkin-Huxley'$")


def test_not_a_graph_object():
    refused(42, r"takes a path or a nir\.NIRGraph, not int")


# -------------------------------------------------------------------------- edges


def test_dangling_target_with_suggestion():
    g = graph(
        {"in": inp(2), "lif1": lif(2), "out": out(2)},
        [("in", "lif"), ("lif1", "out")],
    )
    refused(
        g,
        r"^edge \('in', 'lif'\): target node 'lif' does not exist; did you mean 'lif1'\?$",
    )


def test_dangling_source_with_suggestion():
    g = graph(
        {"in": inp(2), "lif1": lif(2), "out": out(2)},
        [("in", "lif1"), ("lif", "out")],
    )
    refused(
        g,
        r"^edge \('lif', 'out'\): source node 'lif' does not exist; did you mean 'lif1'\?$",
    )


def test_dangling_edge_without_close_name():
    g = graph(
        {"in": inp(2), "lif1": lif(2), "out": out(2)},
        [("in", "lif1"), ("lif1", "out"), ("lif1", "zzzzzzzz")],
    )
    msg = refused(g, r"^edge \('lif1', 'zzzzzzzz'\): target node 'zzzzzzzz' does not exist")
    assert "did you mean" not in msg


def test_dangling_edge_inside_subgraph_suggests_local_name():
    """The published braille_*_subgraph.nir mistake: inner edge to 'lif', node 'lif1'."""
    sub = graph(
        {"input": inp(2), "lif1": lif(2), "output": out(2)},
        [("input", "lif"), ("lif1", "output")],
    )
    g = graph({"in": inp(2), "rec": sub, "out": out(2)}, [("in", "rec"), ("rec", "out")])
    refused(
        g,
        r"^edge \('rec\.input', 'rec\.lif'\): target node 'rec\.lif' does not exist; "
        r"did you mean 'rec\.lif1'\?$",
    )


def test_duplicate_edge():
    g = graph(
        {"in": inp(2), "s": nir.Scale(np.ones(2)), "out": out(2)},
        [("in", "s"), ("s", "out"), ("s", "out")],
    )
    refused(g, r"^edge \('s', 'out'\) appears twice$")


# ------------------------------------------------------------------------- shapes


def test_shape_mismatch_along_edge():
    g = chain(nir.Linear(np.ones((3, 4))), n=2)
    refused(
        g,
        r"^edge \('in', 'n0'\): shape mismatch, 'in' \(Input\) puts out \(2,\) but "
        r"'n0' \(Linear\) takes \(4,\)$",
    )


def test_shape_mismatch_between_neurons():
    g = graph(
        {"in": inp(3), "a": lif(3), "b": lif(2), "out": out(2)},
        [("in", "a"), ("a", "b"), ("b", "out")],
    )
    refused(g, r"^edge \('a', 'b'\): shape mismatch, 'a' \(LIF\) puts out \(3,\) but")


def test_neuron_parameters_of_different_shapes():
    node = lif(2)
    node.r = np.ones(3)  # nir checks this on construction only (with an assert)
    g = chain(node)
    refused(
        g, r"^node 'n0' \(LIF\): parameters must share one shape, got tau\(2,\), r\(3,\)"
    )


# ------------------------------------------------------------------ algebraic loops


def test_algebraic_loop_of_linear_and_affine():
    g = graph(
        {
            "in": inp(2),
            "a": nir.Linear(np.eye(2)),
            "b": nir.Affine(0.5 * np.eye(2), np.zeros(2)),
            "out": out(2),
        },
        [("in", "a"), ("a", "b"), ("b", "a"), ("b", "out")],
    )
    msg = refused(
        g,
        r"^algebraic loop: the cycle through 'a' \(Linear\), 'b' \(Affine\) has no "
        r"stateful node",
    )
    assert "'out'" not in msg  # only the cycle is named, not what hangs below it


def test_algebraic_self_loop():
    g = graph(
        {"in": inp(2), "s": nir.Scale(np.ones(2)), "out": out(2)},
        [("in", "s"), ("s", "s"), ("s", "out")],
    )
    refused(g, r"^algebraic loop: the cycle through 's' \(Scale\) has no stateful node")


def test_zero_delay_does_not_break_a_loop():
    g = graph(
        {"in": inp(2), "d": nir.Delay(np.array([0.0, 1e-3])), "s": nir.Scale(np.ones(2)),
         "out": out(2)},
        [("in", "s"), ("s", "d"), ("d", "s"), ("s", "out")],
    )  # fmt: skip
    refused(g, r"^algebraic loop: the cycle through 'd' \(Delay\), 's' \(Scale\)")


def test_positive_delay_breaks_a_loop():
    g = graph(
        {"in": inp(2), "d": nir.Delay(np.array([1e-3, 2e-3])), "s": nir.Scale(np.ones(2)),
         "out": out(2)},
        [("in", "s"), ("s", "d"), ("d", "s"), ("s", "out")],
    )  # fmt: skip
    net = nirsim.load(g)
    assert net.order.index("s") < net.order.index("out")


# --------------------------------------------------------------- parameter values


@pytest.mark.parametrize(
    "node, field",
    [
        (nir.Linear(np.array([[1.0, np.nan], [0.0, 1.0]])), "weight"),
        (nir.Affine(np.eye(2), np.array([0.0, np.inf])), "bias"),
        (nir.Scale(np.array([-np.inf, 1.0])), "scale"),
        (lif(2, v_threshold=np.array([1.0, np.inf])), "v_threshold"),
        (lif(2, v_leak=np.array([np.nan, 0.0])), "v_leak"),
        (cuba_lif(2, w_in=np.array([1.0, np.nan])), "w_in"),
        (nir.IF(np.ones(2), np.ones(2), np.array([np.nan, 0.0])), "v_reset"),
        (nir.I(np.array([np.inf, 1.0])), "r"),
        (nir.Threshold(np.array([np.nan, 1.0])), "threshold"),
        (nir.Delay(np.array([np.inf, 1.0])), "delay"),
    ],
    ids=lambda x: x if isinstance(x, str) else type(x).__name__,
)
def test_non_finite_parameter(node, field):
    refused(
        chain(node),
        rf"^node 'n0' \({type(node).__name__}\): parameter '{field}' is not finite: "
        r"(nan|inf|-inf) at flat index \d+$",
    )


@pytest.mark.parametrize("value", [0.0, -0.01])
@pytest.mark.parametrize(
    "make, field",
    [
        (lambda t: lif(2, tau=t), "tau"),
        (lambda t: li(2, tau=t), "tau"),
        (lambda t: cuba_lif(2, tau_mem=t), "tau_mem"),
        (lambda t: cuba_lif(2, tau_syn=t), "tau_syn"),
        (lambda t: cuba_li(2, tau_mem=t), "tau_mem"),
        (lambda t: cuba_li(2, tau_syn=t), "tau_syn"),
    ],
)
def test_time_constant_not_positive(make, field, value):
    node = make(np.array([0.01, value]))
    refused(
        chain(node),
        rf"^node 'n0' \({type(node).__name__}\): time constant '{field}' must be > 0 "
        rf"\(in the graph's time unit\), got {re.escape(str(value))} at flat index 1$",
    )


def test_negative_delay():
    refused(chain(nir.Delay(np.array([1e-3, -1e-3]))), r"'delay' must be >= 0")


# ------------------------------------------------------------------- Input/Output


def test_no_input():
    g = graph({"a": lif(2), "out": out(2)}, [("a", "out")])
    refused(g, r"^the graph has no Input node$")


def test_no_output():
    g = graph({"in": inp(2), "a": lif(2)}, [("in", "a")])
    refused(g, r"^the graph has no Output node$")


def test_file_without_output_is_completed_by_nir_read_with_a_warning(tmp_path):
    """nir.read adds Input/Output nodes where a file's graph starts or ends at other
    nodes; nirsim accepts nir's reading and says what was added."""
    path = tmp_path / "open_ended.nir"
    nir.write(path, graph({"in": inp(2), "a": lif(2)}, [("in", "a")]))
    with pytest.warns(
        nirsim.GraphWarning, match=r"nir\.read added the Output node '(\w+)'"
    ):
        net = nirsim.load(path)
    (name,) = net.outputs
    assert net.predecessors(name) == ("a",)


# ---------------------------------------------------------------------------- files


def test_non_existent_path(tmp_path):
    missing = tmp_path / "nowhere.nir"
    refused(missing, rf"^{re.escape(str(missing))}: no such file$")


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.nir"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    refused(path, r"noise\.nir: not an HDF5 file, so not a NIR graph$")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.nir"
    path.write_bytes(b"")
    refused(path, r"empty\.nir: not an HDF5 file")


@pytest.mark.parametrize("keep", [0.01, 0.3, 0.7, 0.99])
def test_truncated_file(tmp_path, keep):
    good = tmp_path / "good.nir"
    nir.write(good, chain(lif(2)))
    data = good.read_bytes()
    path = tmp_path / "cut.nir"
    path.write_bytes(data[: max(1, int(len(data) * keep))])
    refused(path, r"cut\.nir: (not an HDF5 file|unreadable HDF5 file|corrupted HDF5 file)")


def test_hdf5_file_that_is_not_a_graph(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(3)
    refused(path, r"other\.h5: not a NIR file \(no 'node' group\)$")


def test_directory_is_refused(tmp_path):
    refused(tmp_path, r"not an HDF5 file|unreadable")


# ------------------------------------------------------------------------ nesting


def _subgraph():
    return graph(
        {
            "input": inp(2),
            "lif": lif(2, tau=np.array([0.01, 0.02])),
            "w": nir.Linear(np.array([[0.0, 0.5], [0.25, 0.0]])),
            "output": out(2),
        },
        [("input", "lif"), ("lif", "w"), ("w", "lif"), ("lif", "output")],
    )


def test_nested_graph_is_flattened_with_qualified_names():
    g = graph(
        {"in": inp(2), "pre": nir.Scale(np.array([2.0, 3.0])), "sub": _subgraph(),
         "out": out(2)},
        [("in", "pre"), ("pre", "sub"), ("sub", "out")],
    )  # fmt: skip
    net = nirsim.load(g)
    assert set(net.order) == {"in", "pre", "sub.lif", "sub.w", "out"}
    # the inner Input/Output are wired through, not kept
    assert set(net.predecessors("sub.lif")) == {"pre", "sub.w"}
    assert net.predecessors("out") == ("sub.lif",)
    assert net.predecessors("sub.w") == ("sub.lif",)
    np.testing.assert_array_equal(net.nodes["sub.lif"].tau, [0.01, 0.02])
    assert net.inputs == ("in",) and net.outputs == ("out",)


def test_doubly_nested_graph():
    inner = _subgraph()
    middle = graph(
        {"input": inp(2), "deep": inner, "output": out(2)},
        [("input", "deep"), ("deep", "output")],
    )
    g = graph({"in": inp(2), "mid": middle, "out": out(2)}, [("in", "mid"), ("mid", "out")])
    net = nirsim.load(g)
    assert set(net.order) == {"in", "mid.deep.lif", "mid.deep.w", "out"}
    assert net.predecessors("out") == ("mid.deep.lif",)
    assert "in" in net.predecessors("mid.deep.lif")


def test_nested_graph_through_a_file(tmp_path):
    g = graph(
        {"in": inp(2), "sub": _subgraph(), "out": out(2)}, [("in", "sub"), ("sub", "out")]
    )
    path = tmp_path / "nested.nir"
    nir.write(path, g)
    net = nirsim.load(path)
    assert set(net.order) == {"in", "sub.lif", "sub.w", "out"}


def test_subgraph_with_two_inputs_must_be_named():
    sub = graph(
        {"a": inp(2), "b": inp(2), "s": nir.Scale(np.ones(2)), "output": out(2)},
        [("a", "s"), ("b", "s"), ("s", "output")],
    )
    g = graph({"in": inp(2), "sub": sub, "out": out(2)}, [("in", "sub"), ("sub", "out")])
    refused(g, r"^edge \('in', 'sub'\): subgraph 'sub' has 2 Input nodes; name one of them")


# ------------------------------------------------------------- evaluation order


def _instant_edges_respected(net):
    """Every edge into a node whose output depends instantly on its input goes
    forward in the evaluation order."""
    from nirsim.primitives import AbstractNeuron, Delay, Threshold

    for a, b in net.edges:
        node = net.nodes[net.order[b]]
        stateful = isinstance(node, AbstractNeuron | Threshold) or (
            isinstance(node, Delay) and np.all(np.asarray(node.delay) > 0)
        )
        if not stateful:
            assert a < b, (net.order[a], net.order[b])


def test_recurrent_graph_loads_and_neuron_breaks_the_cycle():
    g = graph(
        {"in": inp(2), "a": lif(2), "w": nir.Linear(np.eye(2)), "out": out(2)},
        [("in", "a"), ("a", "w"), ("w", "a"), ("a", "out")],
    )
    net = nirsim.load(g)
    assert net.order.index("a") < net.order.index("w")
    assert set(net.predecessors("a")) == {"in", "w"}
    _instant_edges_respected(net)


def test_evaluation_order_is_deterministic_and_topological():
    def make(order_of_nodes):
        nodes = {
            "in": inp(3),
            "a": nir.Affine(np.ones((3, 3)), np.zeros(3)),
            "b": nir.Scale(np.ones(3)),
            "c": nir.Linear(np.ones((3, 3))),
            "n1": cuba_lif(3),
            "n2": li(3),
            "out": out(3),
        }
        edges = [
            ("in", "a"),
            ("a", "b"),
            ("a", "c"),
            ("b", "n1"),
            ("c", "n1"),
            ("n1", "n2"),
            ("n2", "c"),
            ("n2", "out"),
        ]
        return graph({k: nodes[k] for k in order_of_nodes}, edges)

    names = ["in", "a", "b", "c", "n1", "n2", "out"]
    first = nirsim.load(make(names))
    again = nirsim.load(make(names))
    assert first.order == again.order and first.edges == again.edges
    _instant_edges_respected(first)
    shuffled = nirsim.load(make(list(reversed(names))))
    _instant_edges_respected(shuffled)
    # the same graph: the same edges by name
    by_name = {(n.order[a], n.order[b]) for n in [first] for a, b in n.edges}
    assert by_name == {(shuffled.order[a], shuffled.order[b]) for a, b in shuffled.edges}


def test_edges_are_index_pairs_into_order():
    net = nirsim.load(chain(nir.Affine(np.ones((2, 2)), np.zeros(2)), lif(2)))
    assert net.order == ("in", "n0", "n1", "out")
    assert net.edges == ((0, 1), (1, 2), (2, 3))


# -------------------------------------------------------------------- pytree leaves


def _all_kinds_graph():
    rng = np.random.default_rng(1)

    def rnd(*shape, lo=-1.0, hi=1.0):
        return rng.uniform(lo, hi, size=shape)

    def pos(*shape):
        return rng.uniform(0.005, 0.05, size=shape)

    n = 4
    nodes = {
        "img": inp(1, 6, 6),
        "conv2": nir.Conv2d(None, rnd(2, 1, 3, 3), 1, 1, 1, 1, rnd(2)),
        "if": nir.IF(rnd(2, 6, 6, lo=0.5), rnd(2, 6, 6, lo=0.5), rnd(2, 6, 6)),
        "sum": nir.SumPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0])),
        "avg": nir.AvgPool2d(np.array([1, 1]), np.array([1, 1]), np.array([0, 0])),
        "flat": nir.Flatten({"input": np.array([2, 3, 3])}, start_dim=0, end_dim=-1),
        "aff": nir.Affine(rnd(n, 18), rnd(n)),
        "lif": nir.LIF(pos(n), rnd(n, lo=0.5), rnd(n), rnd(n, lo=1), rnd(n)),
        "seq": inp(2, 5),
        "conv1": nir.Conv1d(None, rnd(3, 2, 2), 1, 0, 1, 1, rnd(3)),
        "flat1": nir.Flatten({"input": np.array([3, 4])}, start_dim=0, end_dim=-1),
        "lin1": nir.Linear(rnd(n, 12)),
        "lin": nir.Linear(rnd(n, n)),
        "cuba": nir.CubaLIF(pos(n), pos(n), rnd(n, lo=0.5), rnd(n), rnd(n, lo=1), rnd(n),
                            rnd(n)),
        "scale": nir.Scale(rnd(n)),
        "li": nir.LI(pos(n), rnd(n, lo=0.5), rnd(n)),
        "thr": nir.Threshold(rnd(n)),
        "delay": nir.Delay(pos(n)),
        "i": nir.I(rnd(n)),
        "cli": nir.CubaLI(pos(n), pos(n), rnd(n, lo=0.5), rnd(n), rnd(n)),
        "out": out(n),
    }  # fmt: skip
    edges = [
        ("img", "conv2"),
        ("conv2", "if"),
        ("if", "sum"),
        ("sum", "avg"),
        ("avg", "flat"),
        ("flat", "aff"),
        ("aff", "lif"),
        ("lif", "lin"),
        ("seq", "conv1"),
        ("conv1", "flat1"),
        ("flat1", "lin1"),
        ("lin1", "cuba"),
        ("lin", "cuba"),
        ("cuba", "scale"),
        ("scale", "li"),
        ("li", "thr"),
        ("thr", "delay"),
        ("delay", "i"),
        ("i", "cli"),
        ("cli", "out"),
    ]
    return graph(nodes, edges)


def test_all_kinds_graph_loads():
    net = nirsim.load(_all_kinds_graph())
    kinds = {p.nir_type for p in net.nodes.values()}
    assert kinds == set(nirsim.primitives.PRIMITIVES)  # all 18 node types
    assert net.shape("flat") == (18,) and net.shape("flat1") == (12,)
    _instant_edges_respected(net)


def test_array_leaves_are_exactly_the_parameters():
    net = nirsim.load(_all_kinds_graph())
    leaves = jax.tree_util.tree_leaves(eqx.filter(net, eqx.is_array))
    # jax flattens a dict in sorted key order; a Module in field order, and every
    # primitive declares its array fields in the order of param_names.
    expected = [
        getattr(net.nodes[name], p)
        for name in sorted(net.nodes)
        for p in type(net.nodes[name]).param_names
    ]
    assert len(leaves) == len(expected)
    assert all(a is b for a, b in zip(leaves, expected, strict=True))
    assert all(leaf.dtype == jnp.float64 for leaf in leaves)
    # static structure (names, shapes, order) is no leaf
    assert sum(int(np.size(x)) for x in leaves) == sum(int(np.size(x)) for x in expected)


def test_grad_reaches_every_parameter():
    """A scalar built only from the primitives' public methods (stateless maps with
    their offsets, neuron impulse/propagate/event/reset) plus Threshold and Delay
    (used by solvers only) has a non-zero gradient for every parameter."""
    from nirsim.primitives import AbstractNeuron, AbstractSpikingNeuron, Delay, Threshold

    net = nirsim.load(_all_kinds_graph())
    rng = np.random.default_rng(2)
    sources = {
        name: jnp.asarray(rng.uniform(0.5, 1.5, net.shape(name)))
        for name in net.order
        if isinstance(net.nodes[name], AbstractNeuron | Delay | Threshold)
        or name in net.inputs
    }

    def loss(net):
        arriving = net.propagate(sources, bias=True)
        total = sum(jnp.sum(jnp.sin(x)) for x in arriving.values())
        for name in net.neurons:
            node = net.nodes[name]
            drive = jnp.full(node.shape, 0.7)
            state = node.impulse(node.init_state(), jnp.full(node.shape, 0.3))
            state = node.propagate(state, drive, 0.004)
            total = total + sum(jnp.sum(jnp.sin(x)) for x in jax.tree.leaves(state))
            if isinstance(node, AbstractSpikingNeuron):
                total = total + jnp.sum(jnp.sin(node.event(state)))
                fired = jnp.ones(node.shape, dtype=bool)
                reset = node.reset(state, fired, subtract=True)
                total = total + jnp.sum(jnp.sin(reset.v))
        for name in net.order:
            node = net.nodes[name]
            if isinstance(node, Threshold):
                total = total + jnp.sum(jnp.sin(node.threshold))
            if isinstance(node, Delay):
                total = total + jnp.sum(jnp.sin(node.delay))
        return total

    grads = eqx.filter_jit(eqx.filter_grad(loss))(net)
    for name in net.order:
        node = grads.nodes[name]
        for p in type(node).param_names:
            g = np.asarray(getattr(node, p))
            assert np.all(np.isfinite(g)), (name, p)
            assert np.any(g != 0), f"no gradient reaches {name}.{p}"


# ------------------------------------------------------- crash-safe first look


@pytest.fixture
def fresh_probe(monkeypatch):
    """The HDF5 probe helper, restarted around the test."""
    from nirsim import _hdf5

    _hdf5._stop()
    yield _hdf5
    monkeypatch.undo()
    _hdf5._stop()


def test_a_reader_crash_becomes_a_graph_error(tmp_path, fresh_probe, monkeypatch):
    """libhdf5 segfaults on some corrupted files. Stand-in: a helper that kills
    itself with SIGSEGV on every request; nirsim refuses the file and survives."""
    path = tmp_path / "g.nir"
    nir.write(path, chain(lif(2)))
    crash = "import os, signal, sys\nfor _ in sys.stdin:\n    os.kill(os.getpid(), 11)\n"
    monkeypatch.setattr(fresh_probe, "_SERVER", crash)
    refused(path, r"g\.nir: corrupted HDF5 file \(the HDF5 library crashed reading it")
    assert fresh_probe._server is None  # the dead helper is dropped...
    refused(path, r"corrupted HDF5 file")  # ...and the next file gets a new one
    monkeypatch.undo()
    fresh_probe._stop()
    assert nirsim.load(path).order == ("in", "n0", "out")


def test_a_reader_hang_becomes_a_graph_error(tmp_path, fresh_probe, monkeypatch):
    path = tmp_path / "g.nir"
    nir.write(path, chain(lif(2)))
    hang = "import sys, time\nfor _ in sys.stdin:\n    time.sleep(30)\n"
    monkeypatch.setattr(fresh_probe, "_SERVER", hang)
    monkeypatch.setattr(fresh_probe, "PROBE_TIMEOUT", 1.0)
    refused(path, r"g\.nir: corrupted HDF5 file \(reading it did not finish in 1 s\)")


def test_probe_helper_is_reused(tmp_path, fresh_probe):
    path = tmp_path / "g.nir"
    nir.write(path, chain(lif(2)))
    nirsim.load(path)
    first = fresh_probe._server
    nirsim.load(path)
    assert fresh_probe._server is first and first.poll() is None
