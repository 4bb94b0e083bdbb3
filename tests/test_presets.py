"""Framework presets against step sequences written from each framework's documented
rule (FRAMEWORKS.md / HARDWARE.md), in the framework's own variables; refusals; the
NIR paper's LIF experiment with the Norse preset."""

import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest

import nirsim
from nirsim import Current
from nirsim.solvers import preset

DT = 1e-4
STEPS = 40
RNG = np.random.default_rng(7)
U = RNG.uniform(0.0, 1.0, size=(STEPS, 2))  # per-step input values


def _a(*x):
    return np.array(x, dtype=float)


def _graph(nodes, chain, extra_edges=()):
    edges = list(zip(chain[:-1], chain[1:], strict=True)) + list(extra_edges)
    return nirsim.load(nir.NIRGraph(nodes=nodes, edges=edges))


def _io(n_out, n_in=2):
    return {"input": nir.Input(np.array([n_in])), "output": nir.Output(np.array([n_out]))}


def _simulate(net, name, **kw):
    # float64: the hand-derived sequences below are float64 arithmetic; the float32
    # default is checked against the frameworks themselves (tests/test_peers.py)
    kw.setdefault("dtype", jnp.float64)
    return nirsim.simulate(
        net, Current(U, DT), t_end=STEPS * DT, save_dt=DT, solver=name, dt=DT, **kw
    )


def _spike_steps(trace, node):
    t = np.asarray(trace.spikes[node].times)
    i = np.asarray(trace.spikes[node].indices)
    ok = i >= 0
    return sorted(
        zip(np.round(t[ok] / DT).astype(int).tolist(), i[ok].tolist(), strict=True)
    )


def _raster_events(z):
    """(step, neuron) pairs of a count raster, repeated by count."""
    out = []
    for k, row in enumerate(np.asarray(z)):
        for j, c in enumerate(row):
            out += [(k, j)] * int(round(c))
    return out


def _check(trace, expected_v, expected_z, atol=1e-10):
    """Compare recorded membranes and spikes with the hand-computed sequences."""
    for node, v in expected_v.items():
        np.testing.assert_allclose(
            np.asarray(trace.states[node]["v"]), np.array(v), atol=atol, err_msg=node
        )
    total = 0
    for node, z in expected_z.items():
        assert _spike_steps(trace, node) == _raster_events(z), node
        total += np.sum(z)
    assert total > 0  # the sequences exercise spikes


def _grad_is_finite(net, name, last):
    def loss(net):
        tr = _simulate(net, name, throw=False)
        counts = sum(
            jnp.sum(s["spike_count"]) for s in tr.states.values() if "spike_count" in s
        )
        return jnp.sum(tr.states[last]["v"] ** 2) + counts

    g = jax.grad(loss)(net)
    leaves = jax.tree.leaves(g)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in leaves)
    assert any(bool(jnp.any(x != 0)) for x in leaves)


W1 = _a(2.0, 1.5, 0.5, 2.5, 1.8, 1.2).reshape(3, 2)
B1 = _a(0.2, -0.1, 0.3)
W2 = _a(1.0, 0.8, 0.5, 0.4, 0.9, 1.1).reshape(2, 3)
W3 = _a(1.0, 0.7).reshape(1, 2)


# ------------------------------------------------------------------ snnTorch
def test_snntorch_matches_its_step_rule():
    d0 = 1e-4  # the importer's hard-coded dt
    tau_syn, tau_mem, w_in = 5e-4, 1e-3, 3.0
    tau_l, r_l = _a(2e-3, 4e-3), _a(2.0, 3.0)
    nodes = _io(1) | {
        "fc1": nir.Affine(W1, B1),
        "cuba": nir.CubaLIF(
            tau_syn=np.full(3, tau_syn),
            tau_mem=np.full(3, tau_mem),
            r=np.full(3, tau_mem / d0),
            v_leak=np.zeros(3),
            v_threshold=np.full(3, 1.0),
            v_reset=np.zeros(3),
            w_in=np.full(3, w_in),
        ),
        "fc2": nir.Linear(W2),
        "lif": nir.LIF(
            tau=tau_l,
            r=r_l,
            v_leak=np.zeros(2),
            v_threshold=np.full(2, 0.3),
            v_reset=np.full(2, 0.05),
        ),  # fmt: skip
        "fc3": nir.Linear(W3),
        "if": nir.IF(r=_a(1.0), v_threshold=_a(0.5), v_reset=_a(0.2)),
    }
    net = _graph(nodes, ["input", "fc1", "cuba", "fc2", "lif", "fc3", "if", "output"])
    tr = _simulate(net, "snntorch")
    # snnTorch variables: Synaptic (syn, mem) with threshold vthr / w_scale,
    # Leaky with beta = 1 - dt/tau, threshold vthr / min(r dt/tau), reset to zero,
    # IF -> Leaky(beta=0.9), subtract.
    w_s = w_in * d0 / tau_syn
    alpha, beta = 1 - d0 / tau_syn, 1 - d0 / tau_mem
    beta_l = 1 - d0 / tau_l
    w_l = np.min(r_l * d0 / tau_l)
    syn, mem, m2, m3 = np.zeros(3), np.zeros(3), np.zeros(2), np.zeros(1)
    ev = {"cuba": [], "lif": [], "if": []}
    zs = {"cuba": [], "lif": [], "if": []}
    for k in range(STEPS):
        syn = alpha * syn + (W1 @ U[k] + B1)
        mem = beta * mem + syn
        z1 = (mem > 1.0 / w_s).astype(float)
        mem = mem * (1 - z1)
        m2 = beta_l * m2 + W2 @ z1
        z2 = (m2 > 0.3 / w_l).astype(float)
        m2 = m2 * (1 - z2)
        m3 = 0.9 * m3 + W3 @ z2
        z3 = (m3 > 0.5).astype(float)
        m3 = m3 - 0.5 * z3
        ev["cuba"].append(w_s * mem)
        ev["lif"].append(w_l * m2)
        ev["if"].append(m3.copy())
        for n, z in zip(zs, (z1, z2, z3), strict=True):
            zs[n].append(z)
    np.testing.assert_allclose(np.asarray(tr.states["cuba"]["i_syn"])[-1], w_s * syn)
    _check(tr, ev, zs)
    _grad_is_finite(net, "snntorch", "if")


def test_snntorch_refusals():
    lif = nir.LIF(
        tau=_a(1e-3), r=_a(1.0), v_leak=_a(0.1), v_threshold=_a(1.0), v_reset=_a(0.0)
    )
    net = _graph(_io(1, 1) | {"lif": lif}, ["input", "lif", "output"])
    with pytest.raises(nirsim.GraphError, match="'lif'.*v_leak"):
        _simulate(net, "snntorch")
    cuba = nir.CubaLIF(
        tau_syn=_a(1e-3), tau_mem=_a(1e-3), r=_a(1.0), v_leak=_a(0.0),
        v_threshold=_a(1.0), v_reset=_a(0.0), w_in=_a(1.0),
    )  # fmt: skip
    net = _graph(_io(1, 1) | {"c": cuba}, ["input", "c", "output"])
    with pytest.raises(nirsim.GraphError, match="'c'.*r = tau_mem/dt"):
        _simulate(net, "snntorch")
    with pytest.warns(UserWarning, match="hard-codes dt"):
        preset("snntorch", 1e-3)


# ------------------------------------------------------------------ Norse
def test_norse_matches_its_step_rule():
    tau_syn, tau_mem = _a(5e-4, 8e-4, 6e-4), _a(1e-3, 2e-3, 1.5e-3)
    r_c, w_in, vl_c = _a(1.5, 2.0, 1.0), _a(2.0, 1.0, 3.0), _a(0.1, -0.05, 0.0)
    w_rec, b_rec = RNG.uniform(-0.5, 1.0, size=(3, 3)), _a(0.3, 0.2, -0.1)
    tau_l, vl_l, r_l = _a(1e-3, 3e-4), _a(0.05, 0.1), _a(5.0, 0.5)
    nodes = _io(1) | {
        "fc1": nir.Affine(W1, B1),
        "cuba": nir.CubaLIF(
            tau_syn=tau_syn,
            tau_mem=tau_mem,
            r=r_c,
            v_leak=vl_c,
            v_threshold=np.full(3, 0.4),
            v_reset=np.full(3, -0.3),
            w_in=w_in,
        ),  # fmt: skip
        "rec": nir.Affine(w_rec, b_rec),
        "fc2": nir.Linear(W2),
        "lif": nir.LIF(
            tau=tau_l, r=r_l, v_leak=vl_l, v_threshold=_a(0.35, 0.3), v_reset=_a(0.1, 0.1)
        ),
        "fc3": nir.Linear(W3),
        "if": nir.IF(r=_a(2.0), v_threshold=_a(0.9), v_reset=_a(0.4)),
    }
    chain = ["input", "fc1", "cuba", "fc2", "lif", "fc3", "if", "output"]
    net = _graph(nodes, chain, [("cuba", "rec"), ("rec", "cuba")])
    tr = _simulate(net, "norse")
    i, v = vl_c.copy(), vl_c.copy()  # Norse starts I = v = v_leak
    v2, v3 = vl_l.copy(), np.zeros(1)
    z1 = np.zeros(3)
    ev = {"cuba": [], "lif": [], "if": []}
    zs = {"cuba": [], "lif": [], "if": []}
    for k in range(STEPS):
        rec = w_rec @ z1 + b_rec if k > 0 else np.zeros(3)  # nothing at t = 0
        x = W1 @ U[k] + B1 + rec
        i = i + DT / tau_syn * (vl_c - i + w_in * x)
        v = v + DT / tau_mem * (vl_c - v + r_c * i)
        z1 = (v > 0.4).astype(float)
        v = (1 - z1) * v  # reset to Norse's v_reset = 0
        v2 = v2 + DT / tau_l * (W2 @ z1 + vl_l - v2)  # r ignored
        z2 = (v2 > _a(0.35, 0.3)).astype(float)
        v2 = (1 - z2) * v2
        v3 = v3 + W3 @ z2  # IAF: v += x
        z3 = (v3 > 0.9).astype(float)
        v3 = (1 - z3) * v3
        for n, val, z in zip(zs, (v, v2, v3), (z1, z2, z3), strict=True):
            ev[n].append(val.copy())
            zs[n].append(z)
    _check(tr, ev, zs)
    _grad_is_finite(net, "norse", "if")


def test_norse_reproduces_the_nir_paper_lif_csv(shared_data):
    folder = shared_data
    csv = np.loadtxt(folder / "lif_norse.csv", delimiter=",")
    pattern = np.zeros(1000)
    pattern[::10] = [
        int(c)
        for c in "00000010000000000000001000010001100101001101111111111100000000000001"
        "11111111111000001100000000000000"
    ]
    np.testing.assert_array_equal(csv[:, 0], pattern)  # the README's input
    net = nirsim.load(folder / "lif_norse.nir")
    tr = nirsim.simulate(
        net, Current(pattern[:, None], 1e-4), t_end=0.1, save_dt=1e-4,
        solver="norse", dt=1e-4,
    )  # fmt: skip
    (lif,) = net.spiking
    # Row n of the CSV is Norse's v after step n (input x[n]), after reset; a spike
    # in row n is stamped n dt. The CSV is float32: 1e-6 is far above its rounding.
    np.testing.assert_allclose(np.asarray(tr.states[lif]["v"])[:, 0], csv[:, 1], atol=1e-6)
    got = _spike_steps(tr, lif)
    assert [k for k, _ in got] == np.flatnonzero(csv[:, 2]).tolist() == [460, 510, 710, 760]


def test_norse_refuses_what_it_cannot_import():
    li = nir.LI(tau=_a(1e-3), r=_a(1.0), v_leak=_a(0.0))
    net = _graph(_io(1, 1) | {"li": li}, ["input", "li", "output"])
    with pytest.raises(nirsim.GraphError, match="norse preset: node 'li' \\(LI\\)"):
        _simulate(net, "norse")


# ------------------------------------------------------------------ Spyx
def test_spyx_matches_its_step_rule():
    tau_syn, tau_mem, tau_l = _a(5e-4, 8e-4, 3e-4), _a(1e-3, 2e-3, 5e-4), _a(1e-3, 4e-4)
    nodes = _io(1) | {
        "fc1": nir.Affine(W1, B1),
        "cuba": nir.CubaLIF(
            tau_syn=tau_syn,
            tau_mem=tau_mem,
            r=_a(3.0, 1.0, 2.0),
            v_leak=_a(0.1, 0, 0),
            v_threshold=np.full(3, 1.2),
            v_reset=np.full(3, 0.5),
            w_in=_a(2.0, 1, 1),
        ),  # fmt: skip
        "fc2": nir.Linear(W2),
        "lif": nir.LIF(
            tau=tau_l,
            r=_a(4.0, 4.0),
            v_leak=_a(0.2, 0.0),
            v_threshold=_a(0.9, 1.1),
            v_reset=_a(0.0, 0.3),
        ),  # fmt: skip
        "fc3": nir.Linear(W3),
        "if": nir.IF(r=_a(3.0), v_threshold=_a(0.6), v_reset=_a(0.0)),
    }
    net = _graph(nodes, ["input", "fc1", "cuba", "fc2", "lif", "fc3", "if", "output"])
    tr = _simulate(net, "spyx")
    al, be, bl = 1 - DT / tau_syn, 1 - DT / tau_mem, np.clip(1 - DT / tau_l, 0, 1)
    i, v, v2, v3 = np.zeros(3), np.zeros(3), np.zeros(2), np.zeros(1)
    ev = {"cuba": [], "lif": [], "if": []}
    zs = {"cuba": [], "lif": [], "if": []}
    for k in range(STEPS):
        z1 = (v > 1.2).astype(float)  # decided on the carried membrane
        v = v - z1 * 1.2
        i = al * i + (W1 @ U[k] + B1)
        v = be * v + i
        z2 = (v2 > _a(0.9, 1.1)).astype(float)
        v2 = bl * v2 + W2 @ z1 - z2 * _a(0.9, 1.1)
        z3 = (v3 > 0.6).astype(float)
        v3 = v3 + W3 @ z2 - z3 * 0.6
        for n, val, z in zip(zs, (v, v2, v3), (z1, z2, z3), strict=True):
            ev[n].append(val.copy())
            zs[n].append(z)
    _check(tr, ev, zs)
    _grad_is_finite(net, "spyx", "if")


def _recurrent_cuba(tau_syn, tau_mem, r, w_in, th, w_rec, b_rec):
    """input -> fc1 -> cuba <-> rec, cuba -> output (a flat recurrent layer)."""
    nodes = _io(3) | {
        "fc1": nir.Affine(W1, B1),
        "cuba": nir.CubaLIF(
            tau_syn=np.full(3, tau_syn),
            tau_mem=np.full(3, tau_mem),
            r=np.full(3, r),
            v_leak=np.zeros(3),
            v_threshold=np.full(3, th),
            v_reset=np.zeros(3),
            w_in=np.full(3, w_in),
        ),  # fmt: skip
        "rec": nir.Affine(w_rec, b_rec),
    }
    return _graph(nodes, ["input", "fc1", "cuba", "output"],
                  [("cuba", "rec"), ("rec", "cuba")])  # fmt: skip


W_REC = _a(0.0, -0.6, 0.4, 0.5, 0.0, -0.3, -0.2, 0.7, 0.0).reshape(3, 3)
B_REC = _a(0.1, -0.05, 0.2)


def test_snntorch_emulates_rsynaptic():
    """snnTorch's RSynaptic (what its importer builds for a recurrent CubaLIF, reset
    to zero, reset_delay=False): the step after a spike zeroes the whole new
    membrane; the recurrent Affine (bias included, from step 0) sees last step's z."""
    d0 = 1e-4
    tau_syn, tau_mem = 2e-4, 5e-4
    net = _recurrent_cuba(tau_syn, tau_mem, tau_mem / d0, tau_syn / d0, 1.5, W_REC, B_REC)
    tr = _simulate(net, "snntorch")
    al, be = 1 - d0 / tau_syn, 1 - d0 / tau_mem
    s = m = z = np.zeros(3)
    ev, zs = {"cuba": []}, {"cuba": []}
    for k in range(STEPS):
        late = m > 1.5  # the previous step's spike: m was never reset
        s = al * s + (W1 @ U[k] + B1) + (W_REC @ z + B_REC)
        m = np.where(late, 0.0, be * m + s)
        z = (m > 1.5).astype(float)
        ev["cuba"].append(m.copy())
        zs["cuba"].append(z)
    _check(tr, ev, zs)
    assert not np.any(np.array(zs["cuba"])[1:] * np.array(zs["cuba"])[:-1])


def test_spyx_emulates_rcubalif():
    """Spyx's RCuBaLIF: the spike decided on the carried membrane is fed back through
    W_rec in the same step; the recurrent bias is not imported; w_in, r ignored."""
    tau_syn, tau_mem = 2e-4, 5e-4
    net = _recurrent_cuba(tau_syn, tau_mem, 3.0, 2.0, 1.5, W_REC, B_REC)
    tr = _simulate(net, "spyx")
    al, be = 1 - DT / tau_syn, 1 - DT / tau_mem
    i = v = np.zeros(3)
    ev, zs = {"cuba": []}, {"cuba": []}
    for k in range(STEPS):
        z = (v > 1.5).astype(float)
        v = v - z * 1.5
        i = al * i + (W1 @ U[k] + B1) + W_REC @ z
        v = be * v + i
        ev["cuba"].append(v.copy())
        zs["cuba"].append(z)
    _check(tr, ev, zs)


def test_spyx_refuses_branches_and_unnamed_inputs():
    lif = nir.LIF(
        tau=_a(1e-3), r=_a(1.0), v_leak=_a(0.0), v_threshold=_a(1.0), v_reset=_a(0.0)
    )
    nodes = {"in": nir.Input(np.array([1])), "lif": lif, "out": nir.Output(np.array([1]))}
    net = _graph(nodes, ["in", "lif", "out"])
    with pytest.raises(nirsim.GraphError, match="named 'input'"):
        nirsim.simulate(net, Current(U[:, :1], DT), t_end=DT, solver="spyx", dt=DT)


# ------------------------------------------------------------------ Sinabs
def test_sinabs_matches_its_step_rule():
    tau_l, tau_li = _a(2.0, 5.0), 3.0  # read in steps
    nodes = _io(1) | {
        "fc1": nir.Affine(3 * W1 - 3.5, B1),
        "if": nir.IF(r=np.full(3, 2.0), v_threshold=_a(0.7, 1.1, 0.9), v_reset=np.zeros(3)),
        "fc2": nir.Affine(W2 - 0.6, _a(-0.2, 0.1)),
        "lif": nir.LIF(
            tau=tau_l,
            r=_a(1.0, 2.0),
            v_leak=np.zeros(2),
            v_threshold=_a(0.45, 0.65),
            v_reset=_a(0.0, 0.1),
        ),  # fmt: skip
        "fc3": nir.Affine(W3, _a(0.05)),
        "li": nir.LI(tau=_a(tau_li), r=_a(1.0), v_leak=_a(0.0)),
    }
    net = _graph(nodes, ["input", "fc1", "if", "fc2", "lif", "fc3", "li", "output"])
    tr = _simulate(net, "sinabs")
    th1, th2 = _a(0.7, 1.1, 0.9), _a(0.45, 0.65)
    a2, a3 = np.exp(-1 / tau_l), np.exp(-1 / tau_li)
    v1, v2, v3 = np.zeros(3), np.zeros(2), np.zeros(1)
    ev = {"if": [], "lif": [], "li": []}
    zs = {"if": [], "lif": []}
    for k in range(STEPS):
        v1 = v1 + ((3 * W1 - 3.5) @ U[k] + B1)  # IAF: v += x (r ignored)
        n1 = (v1 > 0) * np.trunc(v1 / th1)
        v1 = np.maximum(v1 - n1 * th1, -th1)
        v2 = a2 * v2 + ((W2 - 0.6) @ n1 + _a(-0.2, 0.1))
        n2 = (v2 > 0) * np.trunc(v2 / th2)
        v2 = v2 - n2 * th2
        v3 = a3 * v3 + (W3 @ n2 + 0.05)
        ev["if"].append(v1.copy())
        ev["lif"].append(v2.copy())
        ev["li"].append(v3.copy())
        zs["if"].append(n1)
        zs["lif"].append(n2)
    assert max(np.max(z) for z in zs["if"]) > 1  # several spikes in one step occur
    assert min(np.min(v) for v in ev["if"]) == pytest.approx(-1.1)  # the floor binds
    _check(tr, ev, zs)
    _grad_is_finite(net, "sinabs", "li")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sinabs_counts_spikes_by_one_division_in_its_dtype(dtype):
    # Sinabs' IAF: v += x, n = trunc(v/th) for v > 0, v -= n th, v >= -th, all in the
    # run's dtype. In float32 v = 2.8, th = 0.2 gives trunc(v/th) = 14 where counting
    # after the threshold test, 1 + floor((v - th)/th), gives 13: the sequence below is
    # numpy arithmetic in that dtype, and the float32 one holds such a case.
    th = dtype(0.2)
    nodes = _io(1, 1) | {
        "if": nir.IF(r=_a(1.0), v_threshold=_a(0.2), v_reset=_a(0.0)),
    }
    net = _graph(nodes, ["input", "if", "output"])
    x = np.array([2.8, 0.0, 0.35, 0.25, 4.2, -0.5, 1.0], dtype)
    tr = nirsim.simulate(
        net, Current(x[:, None], DT), t_end=len(x) * DT, save_dt=DT, solver="sinabs",
        dt=DT, dtype=dtype,
    )  # fmt: skip
    v, want_v, want_n, other = dtype(0), [], [], []
    for xk in x:
        v = dtype(v + xk)
        n = np.trunc(v / th) if v > 0 else dtype(0)
        other.append(1 + np.floor((v - th) / th) if v >= th else 0)
        v = np.maximum(dtype(v - dtype(n * th)), -th)
        want_v.append(v)
        want_n.append(n)
    np.testing.assert_array_equal(np.asarray(tr.states["if"]["v"])[:, 0], want_v)
    np.testing.assert_array_equal(np.asarray(tr.spikes["if"].counts)[:, 0], want_n)
    if dtype == np.float32:
        assert want_n[0] == 14 and other[0] == 13  # the two counts differ here


def test_sinabs_has_no_cubalif():
    cuba = nir.CubaLIF(
        tau_syn=_a(1e-3), tau_mem=_a(1e-3), r=_a(1.0), v_leak=_a(0.0),
        v_threshold=_a(1.0), v_reset=_a(0.0), w_in=_a(1.0),
    )  # fmt: skip
    net = _graph(_io(1, 1) | {"c": cuba}, ["input", "c", "output"])
    with pytest.raises(nirsim.GraphError, match="'c' \\(CubaLIF\\).*no CubaLIF"):
        _simulate(net, "sinabs")


# ------------------------------------------------------------------ Rockpool
def test_rockpool_matches_its_step_rule():
    tau_syn, tau_mem, r = _a(5e-4, 8e-4, 6e-4), _a(1e-3, 2e-3, 1.5e-3), _a(9.0, 4.0, 2.0)
    vl = _a(0.02, 0.0, -0.01)
    w_rec = RNG.uniform(-0.1, 0.05, size=(3, 3))
    tau2, r2 = _a(2e-3, 1e-3), _a(1.0, 3.0)
    nodes = _io(1) | {
        "fc1": nir.Affine(0.02 * W1, 0.02 * B1),
        "cuba": nir.CubaLIF(
            tau_syn=tau_syn,
            tau_mem=tau_mem,
            r=r,
            v_leak=vl,
            v_threshold=np.full(3, 0.3),
            v_reset=np.full(3, 0.1),
            w_in=_a(5.0, 1.0, 2.0),
        ),  # fmt: skip
        "rec": nir.Affine(w_rec, _a(0.5, 0.5, 0.5)),  # bias dropped by Rockpool
        "fc2": nir.Linear(0.05 * W2),
        "cuba2": nir.CubaLIF(
            tau_syn=_a(1e-3, 5e-4),
            tau_mem=tau2,
            r=r2,
            v_leak=np.zeros(2),
            v_threshold=_a(0.2, 0.25),
            v_reset=np.zeros(2),
            w_in=np.ones(2),
        ),  # fmt: skip
        "fc3": nir.Linear(W3),
        "li": nir.LI(tau=_a(2.7), r=_a(0.5), v_leak=_a(0.3)),
    }
    # Rockpool maps a recurrent layer only in its nested form (a NIRGraph of Input,
    # CubaLIF, Affine, Output); in a flat graph the recurrent edge is dropped
    flat_nodes = dict(nodes)
    layer = {k: nodes.pop(k) for k in ("cuba", "rec")}
    nodes["lif1"] = nir.NIRGraph(
        nodes={"input": nir.Input(np.array([3])), **layer,
               "output": nir.Output(np.array([3]))},
        edges=[("input", "cuba"), ("cuba", "rec"), ("rec", "cuba"), ("cuba", "output")],
    )  # fmt: skip
    chain = ["input", "fc1", "lif1", "fc2", "cuba2", "fc3", "li", "output"]
    net = _graph(nodes, chain)
    tr = _simulate(net, "rockpool")
    flat_chain = ["input", "fc1", "cuba", "fc2", "cuba2", "fc3", "li", "output"]
    flat = _graph(flat_nodes, flat_chain, [("cuba", "rec"), ("rec", "cuba")])
    no_rec = _graph(
        flat_nodes | {"rec": nir.Affine(0 * w_rec, _a(0.0, 0.0, 0.0))},
        flat_chain,
        [("cuba", "rec"), ("rec", "cuba")],
    )
    for n in ("cuba", "cuba2"):
        assert _spike_steps(_simulate(flat, "rockpool"), n) == _spike_steps(
            _simulate(no_rec, "rockpool"), n
        )
    dt1, dt2 = np.min(tau_mem / (1 + r)), np.min(tau2 / (1 + r2))
    es1, em1 = np.exp(-dt1 / tau_syn), np.exp(-dt1 / tau_mem)
    es2, em2 = np.exp(-dt2 / _a(1e-3, 5e-4)), np.exp(-dt2 / tau2)
    e3 = np.exp(-(2.7 / 1.5) / 2.0)  # tau.int() = 2, dt_l = tau/(1 + r)
    i1, v1, i2, v2, v3 = np.zeros(3), np.zeros(3), np.zeros(2), np.zeros(2), np.zeros(1)
    z1 = np.zeros(3)
    ev = {"cuba": [], "cuba2": [], "li": []}
    zs = {"cuba": [], "cuba2": []}
    for k in range(STEPS):
        i1 = es1 * (i1 + 0.02 * (W1 @ U[k] + B1) + w_rec @ z1)
        v1 = em1 * v1 + i1 + vl
        z1 = (v1 >= 0.3) * np.floor(v1 / 0.3)
        v1 = v1 - z1 * 0.3
        i2 = es2 * (i2 + 0.05 * W2 @ z1)
        v2 = em2 * v2 + i2
        z2 = (v2 >= _a(0.2, 0.25)) * np.floor(v2 / _a(0.2, 0.25))
        v2 = v2 - z2 * _a(0.2, 0.25)
        v3 = e3 * (v3 + W3 @ z2)
        for n, val in zip(ev, (v1, v2, v3), strict=True):
            ev[n].append(val.copy())
        zs["cuba"].append(z1)
        zs["cuba2"].append(z2)
    ev["lif1.cuba"], zs["lif1.cuba"] = ev.pop("cuba"), zs.pop("cuba")
    _check(tr, ev, zs)
    _grad_is_finite(net, "rockpool", "li")


def test_rockpool_refuses_lif():
    lif = nir.LIF(
        tau=_a(1e-3), r=_a(1.0), v_leak=_a(0.0), v_threshold=_a(1.0), v_reset=_a(0.0)
    )
    net = _graph(_io(1, 1) | {"lif": lif}, ["input", "lif", "output"])
    with pytest.raises(nirsim.GraphError, match="rockpool preset: node 'lif'.*tau_mem"):
        _simulate(net, "rockpool")


# ------------------------------------------------------------------ Lava
def test_lava_float_matches_its_step_rule():
    tau_l = _a(1e-3, 2e-3, 5e-4)
    tau_syn, tau_mem, w_in = _a(5e-4, 1e-3), _a(1e-3, 2e-3), _a(2.0, 1.0)
    nodes = _io(2) | {
        "fc1": nir.Affine(3 * W1, np.zeros(3)),
        "lif": nir.LIF(
            tau=tau_l,
            r=_a(2.0, 1.0, 3.0),
            v_leak=_a(0.1, 0, 0),
            v_threshold=np.full(3, 0.3),
            v_reset=np.full(3, 0.1),
        ),  # fmt: skip
        "fc2": nir.Linear(2 * W2),
        "cuba": nir.CubaLIF(
            tau_syn=tau_syn,
            tau_mem=tau_mem,
            r=tau_mem / DT,
            v_leak=np.zeros(2),
            v_threshold=_a(0.5, 0.4),
            v_reset=np.zeros(2),
            w_in=w_in,
        ),  # fmt: skip
    }
    net = _graph(nodes, ["input", "fc1", "lif", "fc2", "cuba", "output"])
    tr = _simulate(net, "lava-float")
    v1, u2, v2 = np.zeros(3), np.zeros(2), np.zeros(2)
    a1, a2 = np.zeros(3), np.zeros(2)  # what each Dense holds from the last step
    ev = {"lif": [], "cuba": []}
    zs = {"lif": [], "cuba": []}
    for k in range(STEPS):
        v1 = (1 - DT / tau_l) * v1 + DT / tau_l * a1  # du = 1: u = a_in
        z1 = (v1 > 0.3).astype(float)
        v1 = v1 * (1 - z1)
        u2 = (1 - DT / tau_syn) * u2 + DT / tau_syn * w_in * a2
        v2 = (1 - DT / tau_mem) * v2 + u2
        z2 = (v2 > _a(0.5, 0.4)).astype(float)
        v2 = v2 * (1 - z2)
        a1, a2 = 3 * W1 @ U[k], 2 * W2 @ z1  # emitted in the next step
        ev["lif"].append(v1.copy())
        ev["cuba"].append(v2.copy())
        zs["lif"].append(z1)
        zs["cuba"].append(z2)
    _check(tr, ev, zs)
    _grad_is_finite(net, "lava-float", "cuba")


def test_lava_refuses_affine_bias():
    lif = nir.LIF(
        tau=_a(1e-3), r=_a(1.0), v_leak=_a(0.0), v_threshold=_a(1.0), v_reset=_a(0.0)
    )
    net = _graph(
        _io(1) | {"fc": nir.Affine(np.ones((1, 2)), _a(0.5)), "lif": lif},
        ["input", "fc", "lif", "output"],
    )
    with pytest.raises(nirsim.GraphError, match="'fc' \\(Affine\\).*bias"):
        _simulate(net, "lava-float")


# ------------------------------------------------------------------ NIR reference
def test_nir_euler_matches_its_step_rule():
    tau_syn, tau_mem, r, w_in = _a(5e-4, 8e-4, 6e-4), _a(1e-3, 2e-3, 1.5e-3), 3.0, 4.0
    tau_l, vl = _a(1e-3, 5e-4), _a(0.1, -0.2)
    nodes = _io(2) | {
        "fc1": nir.Affine(W1, B1),
        "cuba": nir.CubaLIF(
            tau_syn=tau_syn,
            tau_mem=tau_mem,
            r=np.full(3, r),
            v_leak=np.full(3, 0.05),
            v_threshold=np.full(3, 0.4),
            v_reset=np.full(3, -0.1),
            w_in=np.full(3, w_in),
        ),  # fmt: skip
        "fc2": nir.Linear(W2),
        "lif": nir.LIF(
            tau=tau_l,
            r=_a(10.0, 8.0),
            v_leak=vl,
            v_threshold=_a(0.3, 0.2),
            v_reset=_a(-0.1, 0.0),
        ),  # fmt: skip
    }
    net = _graph(nodes, ["input", "fc1", "cuba", "fc2", "lif", "output"])
    tr = _simulate(net, "nir-euler")
    i, v, v2 = np.zeros(3), np.full(3, 0.05), vl.copy()
    ev = {"cuba": [], "lif": []}
    zs = {"cuba": [], "lif": []}
    for k in range(STEPS):
        x = W1 @ U[k] + B1
        i, v = i + DT / tau_syn * (-i + w_in * x), v + DT / tau_mem * (0.05 - v + r * i)
        z1 = (v > 0.4).astype(float)
        v = np.where(z1 > 0, -0.1, v)
        v2 = v2 + DT / tau_l * (vl - v2 + _a(10.0, 8.0) * (W2 @ z1))
        z2 = (v2 > _a(0.3, 0.2)).astype(float)
        v2 = np.where(z2 > 0, _a(-0.1, 0.0), v2)
        ev["cuba"].append(v.copy())
        ev["lif"].append(v2.copy())
        zs["cuba"].append(z1)
        zs["lif"].append(z2)
    _check(tr, ev, zs)
    _grad_is_finite(net, "nir-euler", "lif")


def test_spyx_flatten_is_channels_last():
    from nirsim.solvers.presets import Spyx

    x = np.arange(2 * 3 * 4, dtype=float).reshape(2, 3, 4)  # (C, H, W)
    flat = nirsim.primitives.Flatten(input_shape=(2, 3, 4), start_dim=0, end_dim=-1)
    mapped = Spyx(DT).rewrite(None, "f", flat)
    np.testing.assert_array_equal(
        mapped.linear(jnp.asarray(x)), x.transpose(1, 2, 0).ravel()
    )
    np.testing.assert_array_equal(flat.linear(jnp.asarray(x)), x.ravel())
