"""The 18 primitives: file round trip (nir -> nirsim -> nir) bit for bit, and the
mathematics of each primitive against independent oracles (numpy loops for the
stateless maps, scipy's solve_ivp for the neuron ODEs, a dense search for CubaLIF's
stationary point)."""

import math
import warnings

import jax.numpy as jnp
import nir
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import nirsim
from nirsim.primitives import (
    IF,
    LI,
    LIF,
    AvgPool2d,
    Conv1d,
    Conv2d,
    CubaLI,
    CubaLIF,
    CubaState,
    Flatten,
    I,
    MembraneState,
    SumPool2d,
)

# ------------------------------------------------------------------- graph cases


def _inp(*shape):
    return nir.Input(input_type={"input": np.array(shape)})


def _out(*shape):
    return nir.Output(output_type={"output": np.array(shape)})


def _wrap(node, in_shape, out_shape):
    """Input(in_shape) -> x -> Output(out_shape), checked by nir's type inference."""
    return nir.NIRGraph(
        nodes={"in": _inp(*in_shape), "x": node, "out": _out(*out_shape)},
        edges=[("in", "x"), ("x", "out")],
    )


def _case(name, dtype):
    """A small valid graph holding one node of kind ``name`` (called 'x', except for
    Input/Output, which are 'in'/'out' around a Scale)."""
    rng = np.random.default_rng(abs(hash(name)) % 2**32)

    def rnd(*shape, lo=-1.0, hi=1.0):
        return rng.uniform(lo, hi, size=shape).astype(dtype)

    def tau(*shape):
        return rng.uniform(0.002, 0.05, size=shape).astype(dtype)

    n = 3
    if name in ("Input", "Output"):
        return _wrap(nir.Scale(rnd(2, 3)), (2, 3), (2, 3))
    if name == "Affine":
        return _wrap(nir.Affine(rnd(4, n), rnd(4)), (n,), (4,))
    if name == "Linear":
        return _wrap(nir.Linear(rnd(4, n)), (n,), (4,))
    if name == "Conv1d":  # stride 2, padding 1, dilation 2
        return _wrap(nir.Conv1d(9, rnd(4, 2, 3), 2, 1, 2, 1, rnd(4)), (2, 9), (4, 4))
    if name == "Conv1d-same":
        return _wrap(nir.Conv1d(8, rnd(3, 2, 4), 1, "same", 1, 1, rnd(3)), (2, 8), (3, 8))
    if name == "Conv2d":  # stride (2, 1), padding (1, 2), no input_shape given
        node = nir.Conv2d(None, rnd(3, 2, 3, 3), (2, 1), (1, 2), 1, 1, rnd(3))
        return _wrap(node, (2, 7, 5), (3, 4, 7))
    if name == "Conv2d-same":  # 'same' with dilation 2 and an even kernel
        node = nir.Conv2d((5, 6), rnd(2, 2, 2, 2), 1, "same", 2, 1, rnd(2))
        return _wrap(node, (2, 5, 6), (2, 5, 6))
    if name == "Conv2d-valid":
        node = nir.Conv2d((6, 6), rnd(4, 1, 3, 3), 1, "valid", (1, 2), 1, rnd(4))
        return _wrap(node, (1, 6, 6), (4, 4, 2))
    if name == "Conv2d-groups":  # nir's type check does not know groups: see test
        node = nir.Conv2d((5, 5), rnd(4, 2, 3, 3), 1, 1, 1, 2, rnd(4))
        return nir.NIRGraph(
            nodes={"in": _inp(4, 5, 5), "x": node, "out": _out(4, 5, 5)},
            edges=[("in", "x"), ("x", "out")],
            type_check=False,
        )
    if name == "SumPool2d":
        node = nir.SumPool2d(np.array([2, 2]), np.array([2, 2]), np.array([1, 1]))
        return _wrap(node, (2, 5, 5), (2, 3, 3))
    if name == "AvgPool2d":
        node = nir.AvgPool2d(np.array([3, 3]), np.array([1, 1]), np.array([0, 0]))
        return _wrap(node, (2, 5, 5), (2, 3, 3))
    if name == "Flatten":
        node = nir.Flatten({"input": np.array([2, 3, 4])}, start_dim=1, end_dim=2)
        return _wrap(node, (2, 3, 4), (2, 12))
    if name == "Scale":
        return _wrap(nir.Scale(rnd(n)), (n,), (n,))
    if name == "Delay":
        return _wrap(nir.Delay(tau(n)), (n,), (n,))
    if name == "Threshold":
        return _wrap(nir.Threshold(rnd(n)), (n,), (n,))
    if name == "I":
        return _wrap(nir.I(rnd(n)), (n,), (n,))
    if name == "IF":
        return _wrap(nir.IF(rnd(n), rnd(n, lo=1), rnd(n)), (n,), (n,))
    if name == "LI":
        return _wrap(nir.LI(tau(n), rnd(n), rnd(n)), (n,), (n,))
    if name == "LIF":
        return _wrap(nir.LIF(tau(n), rnd(n), rnd(n), rnd(n, lo=1), rnd(n)), (n,), (n,))
    if name == "CubaLI":
        return _wrap(nir.CubaLI(tau(n), tau(n), rnd(n), rnd(n), rnd(n)), (n,), (n,))
    if name == "CubaLIF":
        node = nir.CubaLIF(tau(n), tau(n), rnd(n), rnd(n), rnd(n, lo=1), rnd(n), rnd(n))
        return _wrap(node, (n,), (n,))
    raise AssertionError(name)


CASES = [
    "Input",
    "Output",
    "Affine",
    "Linear",
    "Conv1d",
    "Conv1d-same",
    "Conv2d",
    "Conv2d-same",
    "Conv2d-valid",
    "Conv2d-groups",
    "SumPool2d",
    "AvgPool2d",
    "Flatten",
    "Scale",
    "Delay",
    "Threshold",
    "I",
    "IF",
    "LI",
    "LIF",
    "CubaLI",
    "CubaLIF",
]


def test_cases_cover_every_node_type():
    kinds = {c.split("-")[0] for c in CASES}
    assert kinds == set(nirsim.primitives.PRIMITIVES)


# Fields compared as parameters (arrays: bit for bit and dtype) or as configuration
# (values, whatever container nir uses).
ARRAY_FIELDS = {
    "Affine": ("weight", "bias"),
    "Linear": ("weight",),
    "Conv1d": ("weight", "bias"),
    "Conv2d": ("weight", "bias"),
    "Scale": ("scale",),
    "Delay": ("delay",),
    "Threshold": ("threshold",),
    "I": ("r",),
    "IF": ("r", "v_threshold", "v_reset"),
    "LI": ("tau", "r", "v_leak"),
    "LIF": ("tau", "r", "v_leak", "v_threshold", "v_reset"),
    "CubaLI": ("tau_syn", "tau_mem", "r", "v_leak", "w_in"),
    "CubaLIF": ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"),
}
CONFIG_FIELDS = {
    "Conv1d": ("stride", "padding", "dilation", "groups"),
    "Conv2d": ("stride", "padding", "dilation", "groups"),
    "SumPool2d": ("kernel_size", "stride", "padding"),
    "AvgPool2d": ("kernel_size", "stride", "padding"),
    "Flatten": ("start_dim", "end_dim"),
}


def _config_value(node, field):
    v = getattr(node, field)
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, np.ndarray) and v.dtype.kind in "SUO":
        v = v.reshape(-1)[0]
        v = v.decode() if isinstance(v, bytes) else str(v)
    if isinstance(v, str):
        return v
    arr = np.asarray(v).reshape(-1)
    if field in ("groups", "start_dim", "end_dim"):
        return int(arr[0])
    n = 1 if isinstance(node, nir.Conv1d) else 2
    return tuple(int(a) for a in np.broadcast_to(arr, (n,)))


def _types(node):
    key = "input" if isinstance(node, nir.Input) else "output"
    types = node.input_type if isinstance(node, nir.Input) else node.output_type
    return tuple(int(s) for s in np.asarray(types[key]).reshape(-1))


def _same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _assert_same_node(kind, src, back, where):
    assert type(back) is type(src), where
    if kind in ("Input", "Output"):
        assert _types(back) == _types(src), where
    for field in ARRAY_FIELDS.get(kind, ()):
        a, b = getattr(src, field), getattr(back, field)
        assert _same_bits(a, b), (where, field, np.asarray(a).dtype, np.asarray(b).dtype)
    for field in CONFIG_FIELDS.get(kind, ()):
        assert _config_value(back, field) == _config_value(src, field), (where, field)
    if kind in ("Conv1d", "Conv2d") and src.input_shape is not None:
        assert _config_value(back, "input_shape") == _config_value(src, "input_shape")
    if kind == "Flatten":
        assert _types(nir.Input(back.input_type)) == _types(nir.Input(src.input_type))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES)
def test_file_round_trip_keeps_every_parameter_bit_for_bit(case, dtype, tmp_path):
    source = _case(case, dtype)
    first = tmp_path / "first.nir"
    nir.write(first, source)
    with warnings.catch_warnings():
        if case == "Conv2d-groups":
            # nir's type inference takes weight.shape[1] (C_in/groups) as the input
            # channels, so nir.read refuses the file; nirsim reads it with a warning.
            warnings.simplefilter("ignore", nirsim.GraphWarning)
        net = nirsim.load(first)
    for p in net.nodes.values():  # parameters are float64 inside nirsim
        for field in type(p).param_names:
            assert getattr(p, field).dtype == jnp.float64
    exported = net.to_nir()
    second = tmp_path / "second.nir"
    nir.write(second, exported)
    as_written = nir.read(first, type_check=case != "Conv2d-groups")
    back = nir.read(second, type_check=case != "Conv2d-groups")
    assert set(back.nodes) == set(as_written.nodes) == {"in", "x", "out"}
    assert sorted(map(tuple, back.edges)) == sorted(map(tuple, as_written.edges))
    for name, src in as_written.nodes.items():
        kind = type(src).__name__
        _assert_same_node(kind, src, back.nodes[name], (case, name, "file"))
        _assert_same_node(kind, source.nodes[name], back.nodes[name], (case, name, "mem"))
        _assert_same_node(kind, src, exported.nodes[name], (case, name, "to_nir"))


# -------------------------------------------------------- stateless maps: oracles


def conv_oracle(x, w, b, stride, padding, dilation, groups):
    """torch-style cross-correlation by direct loops: ``x`` (C_in, *spatial),
    ``w`` (C_out, C_in/groups, *kernel); padding sizes, 'same' (extra on the high
    side, as torch) or 'valid'."""
    nsp = w.ndim - 2
    k = w.shape[2:]
    if padding == "valid":
        pads = [(0, 0)] * nsp
    elif padding == "same":
        pads = [
            (d * (kk - 1) // 2, d * (kk - 1) - d * (kk - 1) // 2)
            for kk, d in zip(k, dilation, strict=True)
        ]
    else:
        pads = [(p, p) for p in padding]
    xp = np.pad(x, [(0, 0)] + pads)
    out_sp = [
        (xp.shape[1 + i] - dilation[i] * (k[i] - 1) - 1) // stride[i] + 1
        for i in range(nsp)
    ]
    c_out, c_in_g = w.shape[0], w.shape[1]
    per_group = c_out // groups
    y = np.zeros((c_out, *out_sp))
    for o in range(c_out):
        g = o // per_group
        for pos in np.ndindex(*out_sp):
            acc = b[o]
            for c in range(c_in_g):
                for kk in np.ndindex(*k):
                    at = tuple(pos[i] * stride[i] + kk[i] * dilation[i] for i in range(nsp))
                    acc += w[(o, c) + kk] * xp[(g * c_in_g + c,) + at]
            y[(o,) + pos] = acc
    return y


def pool_oracle(x, kernel, stride, padding, mean):
    xp = np.pad(x, [(0, 0)] + [(p, p) for p in padding])
    out_sp = [(xp.shape[1 + i] - kernel[i]) // stride[i] + 1 for i in range(2)]
    y = np.zeros((x.shape[0], *out_sp))
    for c in range(x.shape[0]):
        for i, j in np.ndindex(*out_sp):
            win = xp[c, i * stride[0] : i * stride[0] + kernel[0]]
            win = win[:, j * stride[1] : j * stride[1] + kernel[1]]
            y[c, i, j] = win.sum() / (kernel[0] * kernel[1] if mean else 1)
    return y


CONV_CASES = [
    # (ndim, C_in, C_out, spatial, kernel, stride, padding, dilation, groups)
    (1, 2, 4, (9,), (3,), (2,), (1,), (2,), 1),
    (1, 4, 6, (8,), (4,), (1,), "same", (1,), 2),
    (1, 3, 3, (7,), (2,), (3,), "valid", (1,), 3),
    (2, 2, 3, (7, 5), (3, 3), (2, 1), (1, 2), (1, 1), 1),
    (2, 2, 2, (5, 6), (2, 3), (1, 1), "same", (2, 1), 1),
    (2, 1, 4, (6, 6), (3, 2), (1, 1), "valid", (1, 2), 1),
    (2, 4, 4, (5, 5), (3, 3), (2, 2), (1, 1), (1, 1), 2),
    (2, 4, 8, (6, 5), (1, 3), (1, 2), (0, 1), (1, 1), 4),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[0]}d-{c[6]}-g{c[8]}")
def test_conv_against_numpy_loops(case):
    nd, c_in, c_out, spatial, kernel, stride, padding, dilation, groups = case
    rng = np.random.default_rng(7)
    w = rng.normal(size=(c_out, c_in // groups, *kernel))
    b = rng.normal(size=c_out)
    cls = Conv1d if nd == 1 else Conv2d
    conv = cls(spatial, w, stride, padding, dilation, groups, b)
    x = rng.normal(size=(c_in, *spatial))
    want = conv_oracle(x, w, b, stride, padding, dilation, groups)
    assert conv.in_shape == (c_in, *spatial)
    assert conv.out_shape == want.shape
    # float64 sums of a few terms: agreement to rounding
    got = np.asarray(conv.linear(jnp.asarray(x)) + conv.offset())
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # linear: the bias is not part of it
    no_bias = conv_oracle(x, w, np.zeros(c_out), stride, padding, dilation, groups)
    np.testing.assert_allclose(np.asarray(conv.linear(jnp.asarray(x))), no_bias, atol=1e-12)
    # a batch axis in front
    xb = rng.normal(size=(2, c_in, *spatial))
    got_b = np.asarray(conv.linear(jnp.asarray(xb)))
    for k in range(2):
        want_k = conv_oracle(xb[k], w, np.zeros(c_out), stride, padding, dilation, groups)
        np.testing.assert_allclose(got_b[k], want_k, atol=1e-12)


@pytest.mark.parametrize(
    "cls, kernel, stride, padding",
    [
        (SumPool2d, (2, 2), (2, 2), (0, 0)),
        (SumPool2d, (3, 2), (1, 2), (1, 0)),
        (AvgPool2d, (2, 2), (2, 2), (1, 1)),
        (AvgPool2d, (3, 3), (2, 1), (0, 1)),
    ],
)
def test_pools_against_numpy(cls, kernel, stride, padding):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 6, 7))
    pool = cls(input_shape=(3, 6, 7), kernel_size=kernel, stride=stride, padding=padding)
    want = pool_oracle(x, kernel, stride, padding, mean=cls is AvgPool2d)
    assert pool.out_shape == want.shape
    np.testing.assert_allclose(np.asarray(pool.linear(jnp.asarray(x))), want, atol=1e-13)
    np.testing.assert_array_equal(np.asarray(pool.offset()), np.zeros(want.shape))


@pytest.mark.parametrize("start, end", [(0, -1), (1, 2), (0, 1), (-2, -1), (1, 1)])
def test_flatten_against_numpy_reshape(start, end):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 3, 4))
    flat = Flatten(input_shape=(2, 3, 4), start_dim=start, end_dim=end)
    s = start % 3
    e = end % 3
    want = x.reshape(x.shape[:s] + (-1,) + x.shape[e + 1 :])
    assert flat.out_shape == want.shape
    np.testing.assert_array_equal(np.asarray(flat.linear(jnp.asarray(x))), want)
    xb = rng.normal(size=(5, 2, 3, 4))  # batch axis in front stays
    got = np.asarray(flat.linear(jnp.asarray(xb)))
    np.testing.assert_array_equal(got, xb.reshape((5,) + want.shape))


def test_flatten_refuses_bad_dims():
    with pytest.raises(nirsim.GraphError, match="do not fit input shape"):
        Flatten(input_shape=(2, 3), start_dim=1, end_dim=0)


def test_affine_linear_scale_against_numpy():
    from nirsim.primitives import Affine, Linear, Scale

    rng = np.random.default_rng(5)
    w, b, x, s = (
        rng.normal(size=(4, 3)),
        rng.normal(size=4),
        rng.normal(size=3),
        rng.normal(size=3),
    )
    np.testing.assert_allclose(np.asarray(Affine(w, b).linear(x)), w @ x, rtol=1e-13)
    np.testing.assert_array_equal(np.asarray(Affine(w, b).offset()), b)
    np.testing.assert_allclose(np.asarray(Linear(w).linear(x)), w @ x, rtol=1e-13)
    np.testing.assert_array_equal(np.asarray(Linear(w).offset()), np.zeros(4))
    np.testing.assert_array_equal(np.asarray(Scale(s).linear(x)), s * x)


# --------------------------------------------------------------- neurons: ODE oracle


def _neuron(kind, rng, n, equal_taus=False):
    u = lambda lo, hi: rng.uniform(lo, hi, n)  # noqa: E731
    if kind == "LI":
        return LI(u(0.005, 0.02), u(0.5, 2), u(-0.5, 0.5))
    if kind == "LIF":
        return LIF(u(0.005, 0.02), u(0.5, 2), u(-0.5, 0.5), u(1, 2), u(-0.5, 0.5))
    if kind == "I":
        return I(u(-2, 2))
    if kind == "IF":
        return IF(u(0.5, 2), u(1, 2), u(-0.5, 0.5))
    tau_mem = u(0.005, 0.02)
    tau_syn = tau_mem if equal_taus else u(0.002, 0.03)
    if kind == "CubaLI":
        return CubaLI(tau_syn, tau_mem, u(0.5, 2), u(-0.5, 0.5), u(0.5, 2))
    return CubaLIF(
        tau_syn, tau_mem, u(0.5, 2), u(-0.5, 0.5), u(1, 2), u(-0.5, 0.5), u(0.5, 2)
    )


def _rhs(kind, p, x):
    """The ODE of each NIR neuron, written from the NIR definitions (not from
    nirsim): y = [v] or [i_syn, v]."""
    g = lambda name: np.asarray(getattr(p, name))  # noqa: E731
    if kind in ("LI", "LIF"):
        return lambda t, y: (g("v_leak") - y + g("r") * x) / g("tau")
    if kind in ("I", "IF"):
        return lambda t, y: g("r") * x + 0 * y
    n = len(x)

    def f(t, y):
        i, v = y[:n], y[n:]
        di = (g("w_in") * x - i) / g("tau_syn")
        dv = (g("v_leak") - v + g("r") * i) / g("tau_mem")
        return np.concatenate([di, dv])

    return f


def _state(kind, y):
    n = len(y) // (2 if kind.startswith("Cuba") else 1)
    if kind.startswith("Cuba"):
        return CubaState(i_syn=jnp.asarray(y[:n]), v=jnp.asarray(y[n:]))
    return MembraneState(v=jnp.asarray(y))


def _flat(kind, s):
    if kind.startswith("Cuba"):
        return np.concatenate([np.asarray(s.i_syn), np.asarray(s.v)])
    return np.asarray(s.v)


NEURONS = ["LI", "LIF", "I", "IF", "CubaLI", "CubaLIF"]
NEURON_CASES = [(k, False) for k in NEURONS] + [("CubaLI", True), ("CubaLIF", True)]


@pytest.mark.parametrize(
    "kind, equal_taus",
    NEURON_CASES,
    ids=[f"{k}{'-equal-taus' * e}" for k, e in NEURON_CASES],
)
def test_propagate_against_solve_ivp(kind, equal_taus):
    rng = np.random.default_rng(11)
    n = 6
    p = _neuron(kind, rng, n, equal_taus)
    drive = rng.uniform(-1.5, 1.5, n)
    y0 = rng.uniform(-1, 1, 2 * n if kind.startswith("Cuba") else n)
    hs = [0.0, 1e-4, 3e-3, 0.01, 0.04]
    f = _rhs(kind, p, drive)
    sol = solve_ivp(f, (0, hs[-1]), y0, method="DOP853", t_eval=hs, rtol=1e-12, atol=1e-14)
    assert sol.success
    for k, h in enumerate(hs):
        got = _flat(kind, p.propagate(_state(kind, y0), jnp.asarray(drive), h))
        # solve_ivp at rtol 1e-12 over a few time constants: global error below 1e-10
        np.testing.assert_allclose(
            got, sol.y[:, k], rtol=1e-10, atol=1e-11, err_msg=f"h={h}"
        )
    # the vector field is the same ODE
    vf = _flat(kind, p.vector_field(_state(kind, y0), jnp.asarray(drive)))
    np.testing.assert_allclose(vf, f(0.0, y0), rtol=1e-13, atol=1e-13)


def test_cuba_propagate_near_equal_taus_is_continuous():
    """tau_syn -> tau_mem: the closed form has a removable singularity; values just
    off it agree with the equal case to first order in the difference."""
    rng = np.random.default_rng(12)
    base = _neuron("CubaLIF", rng, 4, equal_taus=True)
    y0 = rng.uniform(-1, 1, 8)
    drive = jnp.asarray(rng.uniform(-1, 1, 4))
    at = _flat("CubaLIF", base.propagate(_state("CubaLIF", y0), drive, 0.013))
    for rel in (1e-9, 1e-7, 1e-5):
        near = CubaLIF(
            base.tau_syn * (1 + rel),
            *(getattr(base, f) for f in CubaLIF.param_names[1:]),
        )
        got = _flat("CubaLIF", near.propagate(_state("CubaLIF", y0), drive, 0.013))
        # d v / d tau_syn is O(1/tau) and tau ~ 0.01: a change of rel*tau moves v by
        # about rel * |v| scale; 10x margin
        np.testing.assert_allclose(got, at, rtol=0, atol=10 * rel + 1e-13)


def test_propagate_composes():
    """A closed form for a constant drive is a flow: h1 then h2 equals h1 + h2."""
    rng = np.random.default_rng(13)
    for kind in NEURONS:
        p = _neuron(kind, rng, 5)
        y0 = rng.uniform(-1, 1, 10 if kind.startswith("Cuba") else 5)
        d = jnp.asarray(rng.uniform(-1, 1, 5))
        two = p.propagate(p.propagate(_state(kind, y0), d, 0.004), d, 0.007)
        one = p.propagate(_state(kind, y0), d, 0.011)
        np.testing.assert_allclose(
            _flat(kind, two), _flat(kind, one), rtol=1e-12, atol=1e-13
        )


@pytest.mark.parametrize("kind", NEURONS)
def test_initial_state(kind):
    p = _neuron(kind, np.random.default_rng(14), 3)
    s = p.init_state()
    want_v = np.asarray(p.v_leak) if kind in ("LI", "LIF", "CubaLI", "CubaLIF") else 0.0
    np.testing.assert_array_equal(np.asarray(s.v), np.broadcast_to(want_v, (3,)))
    if kind.startswith("Cuba"):
        np.testing.assert_array_equal(np.asarray(s.i_syn), np.zeros(3))


# ------------------------------------------------------------------------ impulses


@pytest.mark.parametrize("kind", NEURONS)
def test_impulse_jump(kind):
    """DESIGN.md section 1: LIF/LI dv = r a / tau; Cuba di = w_in a / tau_syn (v
    continuous); I/IF dv = r a. Checked by formula and as the limit of a pulse of
    height a/eps over eps (the ODE integrates it), eps -> 0."""
    rng = np.random.default_rng(15)
    n = 4
    p = _neuron(kind, rng, n)
    y0 = rng.uniform(-1, 1, 2 * n if kind.startswith("Cuba") else n)
    area = rng.uniform(-0.01, 0.01, n)
    s0 = _state(kind, y0)
    after = _flat(kind, p.impulse(s0, jnp.asarray(area)))
    g = lambda name: np.asarray(getattr(p, name))  # noqa: E731
    if kind in ("LI", "LIF"):
        want = y0 + g("r") * area / g("tau")
    elif kind in ("I", "IF"):
        want = y0 + g("r") * area
    else:
        want = y0 + np.concatenate([g("w_in") * area / g("tau_syn"), np.zeros(n)])
    np.testing.assert_allclose(after, want, rtol=1e-14, atol=1e-15)
    # pulse limit: the error of a pulse of width eps is O(eps / tau) of the jump
    for eps in (1e-7, 1e-9):
        pulse = _flat(kind, p.propagate(s0, jnp.asarray(area / eps), eps))
        np.testing.assert_allclose(
            pulse, want, rtol=0, atol=2e3 * eps * (1 + np.abs(want)).max()
        )


@pytest.mark.parametrize("kind", ["LIF", "IF", "CubaLIF"])
def test_event_and_reset(kind):
    rng = np.random.default_rng(16)
    p = _neuron(kind, rng, 4)
    y0 = rng.uniform(0.5, 2.5, 8 if kind == "CubaLIF" else 4)
    s = _state(kind, y0)
    v = np.asarray(s.v)
    vth, vr = np.asarray(p.v_threshold), np.asarray(p.v_reset)
    np.testing.assert_allclose(np.asarray(p.event(s)), v - vth, rtol=1e-15)
    fired = jnp.asarray([True, False, True, False])
    to = np.asarray(p.reset(s, fired, subtract=False).v)
    np.testing.assert_array_equal(to, np.where(np.asarray(fired), vr, v))
    sub = np.asarray(p.reset(s, fired, subtract=True).v)
    np.testing.assert_allclose(
        sub, np.where(np.asarray(fired), v - (vth - vr), v), rtol=1e-15
    )
    if kind == "CubaLIF":  # the synaptic current is not reset
        r = p.reset(s, fired, subtract=False)
        np.testing.assert_array_equal(np.asarray(r.i_syn), np.asarray(s.i_syn))


# ------------------------------------------------------ CubaLIF stationary point


def test_cuba_extremum_time_against_dense_search():
    """Between events v(h) is a difference of exponentials with at most one
    stationary point. Oracle: sign changes of dv/dh = (v_leak - v + r i)/tau_mem on a
    dense grid along the trajectory (the ODE's right-hand side, written here), then
    brentq; the grid also confirms there is at most one."""
    rng = np.random.default_rng(17)
    n = 200
    u = lambda lo, hi: rng.uniform(lo, hi, n)  # noqa: E731
    tau_mem = u(0.005, 0.02)
    tau_syn = np.where(np.arange(n) % 5 == 0, tau_mem, u(0.002, 0.03))
    p = CubaLIF(tau_syn, tau_mem, u(0.5, 2), u(-0.5, 0.5), u(1, 2), u(-0.5, 0.5), u(0.5, 2))
    drive = u(-1, 1)
    i0 = u(-3, 3)
    i0[::7] = np.asarray(p.w_in)[::7] * drive[::7]  # i at its asymptote: v monotone
    v0 = u(-1, 1)
    s0 = CubaState(i_syn=jnp.asarray(i0), v=jnp.asarray(v0))
    got = np.asarray(p.extremum_time(s0, jnp.asarray(drive)))

    t_max = 12 * max(tau_mem.max(), tau_syn.max())
    hs = np.linspace(0, t_max, 12001)[:, None]
    traj = p.propagate(s0, jnp.asarray(drive), jnp.asarray(hs))
    r, v_leak, tm = np.asarray(p.r), np.asarray(p.v_leak), np.asarray(p.tau_mem)
    slope = (v_leak - np.asarray(traj.v) + r * np.asarray(traj.i_syn)) / tm
    scale = (np.abs(v0 - v_leak) + np.abs(r * i0) + np.abs(r * drive)) / tm

    def slope_at(h):  # dv/dh at h (one h per neuron)
        st = p.propagate(s0, jnp.asarray(drive), jnp.asarray(h))
        return (v_leak - np.asarray(st.v) + r * np.asarray(st.i_syn)) / tm

    lo, hi = np.full(n, np.nan), np.full(n, np.nan)
    for k in range(n):
        d = slope[:, k]
        solid = np.abs(d) > 1e-9 * scale[k]  # ignore noise where v has settled
        idx = np.flatnonzero(solid)
        sg = np.sign(d[idx])
        changes = [(idx[j], idx[j + 1]) for j in np.flatnonzero(sg[1:] != sg[:-1])]
        assert len(changes) <= 1, k
        if changes:
            lo[k], hi[k] = hs[changes[0][0], 0], hs[changes[0][1], 0]
        else:
            last_solid = hs[idx[-1], 0] if len(idx) else 0.0
            # no stationary point in the resolved range: none at all, or beyond it
            assert np.isinf(got[k]) or got[k] > last_solid, (k, got[k], last_solid)
    has = ~np.isnan(lo)
    # bisection on the exact slope, all neurons at once, to a bracket of 1e-16 s
    lo, hi = np.where(has, lo, 0.0), np.where(has, hi, 1.0)
    s_lo = np.sign(slope_at(lo))
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        same = np.sign(slope_at(mid)) == s_lo
        lo, hi = np.where(same, mid, lo), np.where(same, hi, mid)
    # the closed form vs a bracketed root of the exact slope: rounding only
    np.testing.assert_allclose(got[has], 0.5 * (lo + hi)[has], rtol=1e-9)
    found = int(has.sum())
    assert 0.2 * n < found < n  # both kinds of cases occurred
    assert np.all(np.isinf(got[::7]))  # i at its asymptote: no stationary point


def test_cuba_extremum_time_closed_form_rise_and_fall():
    """From rest with a kick of current and no drive, v peaks at
    h* = ln(tau_syn/tau_mem) / (1/tau_mem - 1/tau_syn) (tau_syn*... both ways);
    h* = tau at equal time constants."""
    ts = np.array([0.002, 0.005, 0.01, 0.03, 0.01])
    tm = np.array([0.01, 0.01, 0.01, 0.01, 0.01])
    p = CubaLIF(ts, tm, np.ones(5), np.zeros(5), np.full(5, 10.0), np.zeros(5), np.ones(5))
    s = CubaState(i_syn=jnp.ones(5), v=jnp.zeros(5))
    got = np.asarray(p.extremum_time(s, jnp.zeros(5)))
    a, b = 1 / ts, 1 / tm
    with np.errstate(invalid="ignore", divide="ignore"):
        want = np.where(a == b, ts, np.log(a / b) / (a - b))
    np.testing.assert_allclose(got, want, rtol=1e-10)
    assert math.isclose(got[2], 0.01, rel_tol=1e-10)
