"""Benchmark of the ideal (event-driven) solvers.

Prints Markdown tables: wall time and events per second of the closed-form and the
diffrax paths on (a) the NIR paper's LIF, (b) a 1,000-neuron random recurrent
CubaLIF network for 1 s of model time, (c) a Braille-shaped graph (12 -> 40 recurrent
CubaLIF -> 7) at batch 64, 256 bins of 1e-4 s, Bernoulli(0.1) spike input, beside a
plain forward-Euler ``jax.lax.scan`` of the same graph at dt = 1e-4; and how the cost
grows with model time and with spike count; (c) at batch 1 too, with the event loop
as a plain ``lax.while_loop`` (``adjoint="forward"``, the loop before exact gradients)
beside the default checkpointed loop; (e) the time of one exact gradient
(``value_and_grad`` of a time-to-first-spike loss) on a 5-120-3 CubaLIF network with a
batch of 500 latency-coded inputs, against the forward pass.

Run: ``python benchmarks/ideal.py [--quick] [--baseline REV]``; results go in
benchmarks/RESULTS.md. ``--baseline REV`` first runs the same measurements on the
engine of git revision ``REV`` (a temporary worktree) and prints both side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import equinox as eqx
import jax
import jax.numpy as jnp
import nir
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine, table, timeit  # noqa: E402

import nirsim  # noqa: E402

SHARED = os.environ.get(
    "NIRSIM_SHARED_DATA",
    os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "nir-paper"),
)
PATTERN = (
    "0 0 0 0 0 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 0 0 0 0 1 0 0 0 1 1 0 0 1 0 1 0 0 1 "
    "1 0 1 1 1 1 1 1 1 1 1 1 1 0 0 0 0 0 0 0 0 0 0 0 0 0 1 1 1 1 1 1 1 1 1 1 1 1 0 0 0 "
    "0 0 1 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
)


def n_spikes(trace) -> int:
    return int(sum(int(np.sum(np.asarray(s.indices) >= 0)) for s in trace.spikes.values()))


def paper_lif():
    g = nir.NIRGraph.from_list(
        nir.Affine(weight=np.array([[1.0]]), bias=np.array([0.0])),
        nir.LIF(
            tau=np.array([0.0025]),
            r=np.array([1.0]),
            v_leak=np.array([0.0]),
            v_threshold=np.array([0.1]),
            v_reset=np.array([0.0]),
        ),
    )
    x = np.zeros(1000)
    x[::10] = np.array(PATTERN.split(), float)
    return nirsim.load(g), nirsim.Current(x[:, None], 1e-4), 0.1


def random_recurrent(n=1000, seed=0, rate_input=50.0, t_end=1.0):
    """n CubaLIF neurons, 10 % random recurrent Linear weights, Poisson input
    spikes on 100 input channels through a dense Linear map."""
    rng = np.random.default_rng(seed)
    n_in = 100
    w_in = rng.normal(0.0, 0.6, (n, n_in)) * (rng.random((n, n_in)) < 0.1)
    w_rec = rng.normal(0.0, 0.3, (n, n)) * (rng.random((n, n)) < 0.1)
    nodes = {
        "input": nir.Input(input_type=np.array([n_in])),
        "w_in": nir.Linear(weight=w_in),
        "lif": nir.CubaLIF(
            tau_syn=np.full(n, 5e-3),
            tau_mem=np.full(n, 2e-2),
            r=np.ones(n),
            v_leak=np.zeros(n),
            v_threshold=np.full(n, 1.0),
            v_reset=np.zeros(n),
            w_in=np.full(n, 5e-3),
        ),
        "w_rec": nir.Linear(weight=w_rec),
        "output": nir.Output(output_type=np.array([n])),
    }
    edges = [
        ("input", "w_in"),
        ("w_in", "lif"),
        ("lif", "w_rec"),
        ("w_rec", "lif"),
        ("lif", "output"),
    ]
    net = nirsim.load(nir.NIRGraph(nodes=nodes, edges=edges))
    k = rng.poisson(rate_input * t_end * n_in)
    times = np.sort(rng.random(k) * t_end)
    idx = rng.integers(0, n_in, k)
    return net, nirsim.Spikes(times, idx), t_end


def braille(batch=64, seed=0):
    path = os.path.join(SHARED, "braille_noDelay_noBias_subtract.nir")
    if os.path.exists(path):
        net = nirsim.load(path)
        source = "braille_noDelay_noBias_subtract.nir"
    else:  # same shapes, random weights
        rng = np.random.default_rng(1)
        h, o = 40, 7
        cuba = lambda m: nir.CubaLIF(
            tau_syn=np.full(m, 2e-4),
            tau_mem=np.full(m, 4e-4),
            r=np.full(m, 4.0),
            v_leak=np.zeros(m),
            v_threshold=np.ones(m),
            v_reset=np.zeros(m),
            w_in=np.full(m, 2.0),
        )
        nodes = {
            "input": nir.Input(input_type=np.array([12])),
            "fc1": nir.Linear(weight=rng.normal(0, 1, (h, 12))),
            "lif1": cuba(h),
            "rec": nir.Linear(weight=rng.normal(0, 0.3, (h, h))),
            "fc2": nir.Linear(weight=rng.normal(0, 1, (o, h))),
            "lif2": cuba(o),
            "output": nir.Output(output_type=np.array([o])),
        }
        edges = [
            ("input", "fc1"),
            ("fc1", "lif1"),
            ("lif1", "rec"),
            ("rec", "lif1"),
            ("lif1", "fc2"),
            ("fc2", "lif2"),
            ("lif2", "output"),
        ]
        net = nirsim.load(nir.NIRGraph(nodes=nodes, edges=edges))
        source = "random weights (shared data absent)"
    rng = np.random.default_rng(seed)
    raster = rng.random((batch, 256, 12)) < 0.1
    return net, raster, source


def euler_scan(net, raster, dt=1e-4, spike_area=1e-4):
    """A plain forward-Euler scan of a Linear -> CubaLIF (recurrent) -> Linear ->
    CubaLIF graph: the cheapest honest discrete-time baseline."""
    fc1, lif1, rec, fc2, lif2 = (
        net.nodes[n] for n in ("fc1", "lif1.lif", "lif1.w_rec", "fc2", "lif2")
    )

    def cuba_step(p, i, v, x):
        i = i + dt / p.tau_syn * (-i + p.w_in * x)
        v = v + dt / p.tau_mem * (p.v_leak - v + p.r * i)
        z = (v >= p.v_threshold).astype(v.dtype)
        return i, v - z * (p.v_threshold - p.v_reset), z

    @jax.jit
    def run(raster):
        def step(carry, s):
            i1, v1, z1, i2, v2 = carry
            x1 = fc1.weight @ (s / dt * spike_area) + rec.weight @ (z1 / dt * spike_area)
            i1, v1, z1 = cuba_step(lif1, i1, v1, x1)
            i2, v2, z2 = cuba_step(lif2, i2, v2, fc2.weight @ (z1 / dt * spike_area))
            return (i1, v1, z1, i2, v2), (z1, z2)

        h, o = lif1.shape[0], lif2.shape[0]
        init = (jnp.zeros(h), jnp.zeros(h), jnp.zeros(h), jnp.zeros(o), jnp.zeros(o))
        return jax.vmap(lambda r: jax.lax.scan(step, init, r)[1])(raster)

    return lambda: run(jnp.asarray(raster, float))


LOOPS = {
    "closed_form (checkpointed loop, default)": lambda: nirsim.solvers.ClosedForm(),
    "closed_form (lax loop, adjoint='forward')": lambda: nirsim.solvers.ClosedForm(
        adjoint="forward"
    ),
}


def latency_network(seed=0):
    """5 -> 120 CubaLIF -> 3 CubaLIF, dense Linear weights."""
    rng = np.random.default_rng(seed)
    cuba = lambda m: nir.CubaLIF(
        tau_syn=np.full(m, 5e-3),
        tau_mem=np.full(m, 1e-2),
        r=np.ones(m),
        v_leak=np.zeros(m),
        v_threshold=np.ones(m),
        v_reset=np.zeros(m),
        w_in=np.ones(m),
    )
    nodes = {
        "input": nir.Input(np.array([5])),
        "fc1": nir.Linear(rng.normal(0.8, 0.8, (120, 5))),
        "hid": cuba(120),
        "fc2": nir.Linear(rng.normal(0.1, 0.1, (3, 120))),
        "out": cuba(3),
        "output": nir.Output(np.array([3])),
    }
    edges = [("input", "fc1"), ("fc1", "hid"), ("hid", "fc2"), ("fc2", "out")]
    edges.append(("out", "output"))
    return nirsim.load(nir.NIRGraph(nodes=nodes, edges=edges))


def latency_inputs(batch, seed=0):
    """One spike per channel at a uniform time in [0, 10 ms]; a class label each."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 0.01, (batch, 5))
    order = np.argsort(t, axis=-1)
    return nirsim.Spikes(np.take_along_axis(t, order, -1), order), rng.integers(0, 3, batch)


def gradient_bench(batch, repeats):
    """Forward loss vs value_and_grad (both jitted) on the latency task."""
    net = latency_network()
    x, labels = latency_inputs(batch)
    kw = dict(t_end=0.03, spike_area=5e-3, max_spikes=256, max_events=2000)

    def loss(net):
        tr = nirsim.simulate(net, x, **kw)
        first = nirsim.readout.first_spike_times(tr, "out")
        ll = jax.nn.log_softmax(-first / 5e-3)[jnp.arange(batch), labels]
        return -jnp.mean(ll), tr.result

    fwd = eqx.filter_jit(loss)
    vg = eqx.filter_jit(eqx.filter_value_and_grad(loss, has_aux=True))
    f_first, f_med = timeit(lambda: fwd(net)[0], repeats=repeats)
    g_first, g_med = timeit(lambda: vg(net)[1], repeats=repeats)
    (value, res), grads = vg(net)
    assert int(jnp.sum(res != 0)) == 0
    tr = nirsim.simulate(net, x, **kw)
    spikes = [int(np.sum(np.asarray(tr.spikes[n].indices) >= 0)) for n in ("hid", "out")]
    finite = all(
        bool(jnp.all(jnp.isfinite(g)))
        for g in jax.tree_util.tree_leaves(eqx.filter(grads, eqx.is_inexact_array))
    )
    return f_first, f_med, g_first, g_med, spikes, finite, int(jnp.sum(tr.n_grazing))


def bench(net, inputs, t_end, solver, repeats, **kw):
    def go():
        return nirsim.simulate(net, inputs, t_end=t_end, solver=solver, **kw)

    trace = go()
    first, med = timeit(lambda: go().result, repeats=repeats)
    return first, med, n_spikes(trace)


TABLES: list[dict] = []


def emit(title, header, rows):
    """A Markdown table, also kept in ``TABLES`` (for ``--json`` and the side by
    side tables of ``--baseline``)."""
    rows = [[x.item() if isinstance(x, np.generic) else x for x in r] for r in rows]
    TABLES.append(dict(title=title, header=header, rows=rows))
    return table(title, header, rows)


def baseline_tables(rev: str, quick: bool) -> list[dict]:
    """Run this script's measurements on nirsim as of git revision ``rev`` (a
    temporary worktree, imported through PYTHONPATH) and return its tables."""
    root = subprocess.check_output(
        ["git", "rev-parse", "--show-toplevel"], cwd=os.path.dirname(__file__), text=True
    ).strip()
    with tempfile.TemporaryDirectory() as tmp:
        tree = os.path.join(tmp, "tree")
        subprocess.check_call(
            ["git", "worktree", "add", "-q", "--detach", tree, rev], cwd=root
        )
        try:
            # the package layout of pyproject.toml (nirsim.solvers is solvers/ ...)
            for sub in ("solvers", "hardware_models"):
                if os.path.isdir(os.path.join(tree, sub)):
                    os.symlink(os.path.join(tree, sub), os.path.join(tree, "nirsim", sub))
            out = os.path.join(tmp, "tables.json")
            cmd = [sys.executable, os.path.abspath(__file__), "--json", out]
            env = dict(os.environ, PYTHONPATH=tree)
            subprocess.check_call(cmd + (["--quick"] if quick else []), env=env)
            with open(out) as f:
                return json.load(f)
        finally:
            subprocess.call(["git", "worktree", "remove", "--force", tree], cwd=root)


def side_by_side(out: list[str], old: list[dict], label_old: str) -> list[str]:
    """``out`` with each table replaced by old and new rows in one table."""
    by_title = {t["title"]: t for t in old}
    merged = [out[0]]
    for text, new in zip(out[1:], TABLES, strict=True):
        note = text[len(table(new["title"], new["header"], new["rows"])) :]
        prev = by_title.get(new["title"])
        rows = [["new (this tree)"] + r for r in new["rows"]]
        if prev is not None and prev["header"] == new["header"]:
            rows = [[label_old] + r for r in prev["rows"]] + rows
        merged.append(table(new["title"], ["engine"] + new["header"], rows) + note)
    return merged


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repeats, smaller sizes")
    ap.add_argument("--json", help="also write the tables to this JSON file")
    ap.add_argument(
        "--baseline",
        help="git revision whose engine is measured first, in the same run, and "
        "shown beside this tree's (e.g. the commit before the engine changed)",
    )
    args = ap.parse_args(argv)
    reps = 2 if args.quick else 5
    old = baseline_tables(args.baseline, args.quick) if args.baseline else None
    out = [f"Machine: {machine()}\n"]

    # (a) paper LIF
    net, cur, t_end = paper_lif()
    rows = []
    for solver in ("closed_form", "diffrax"):
        first, med, ns = bench(net, cur, t_end, solver, reps, save_dt=1e-4)
        rows.append([solver, first, med, ns, (ns + 1000) / med])
    out.append(
        emit(
            "(a) NIR paper LIF, 0.1 s, 1000 input bins",
            [
                "path",
                "first call (s)",
                "median (s)",
                "spikes",
                "events/s (spikes + bin edges)",
            ],
            rows,
        )
    )

    # (b) 1000-neuron random recurrent CubaLIF, 1 s
    n = 200 if args.quick else 1000
    net, sp, t_end = random_recurrent(n=n)
    rows = []
    for solver in ("closed_form", "diffrax"):
        first, med, ns = bench(
            net,
            sp,
            t_end,
            solver,
            max(1, reps // 2),
            max_spikes=200_000,
            max_events=1_000_000,
        )
        n_in = int(np.sum(np.asarray(sp.indices) >= 0))
        rows.append([solver, first, med, ns, n_in, (ns + n_in) / med])
    out.append(
        emit(
            f"(b) {n}-neuron random recurrent CubaLIF, 1 s of model time",
            [
                "path",
                "first call (s)",
                "median (s)",
                "output spikes",
                "input spikes",
                "events/s",
            ],
            rows,
        )
    )

    # (c) Braille-shaped graph at batch 64
    net, raster, source = braille(batch=64)
    sp = nirsim.Spikes.from_grid(raster, 1e-4)
    rows = []
    kw = dict(spike_area=1e-4, reset="subtract", max_spikes=5000, max_events=50_000)
    for solver in ("closed_form", "diffrax"):
        if solver == "diffrax" and args.quick:
            continue
        first, med, ns = bench(net, sp, 256e-4, solver, reps, **kw)
        rows.append([solver, first, med, ns, 64 / med])
    first, med = timeit(euler_scan(net, raster), repeats=reps)
    rows.append(["forward-Euler lax.scan, dt = 1e-4 (baseline)", first, med, "-", 64 / med])
    ratio = rows[0][2] / med
    out.append(
        emit(
            f"(c) Braille-shaped graph ({source}), batch 64, 256 bins",
            ["path", "first call (s)", "median (s)", "spikes", "samples/s"],
            rows,
        )
        + f"\nclosed form / Euler scan time: {ratio:.1f}x "
        "(target: <= 15x at batch 64)\n"
    )

    # (c) again: checkpointed vs lax event loop, batch 1 and 64, against Euler
    rows = []
    for b in (1, 64):
        sp_b = nirsim.Spikes.from_grid(raster[:b], 1e-4)
        _, euler = timeit(euler_scan(net, raster[:b]), repeats=reps)
        for label, make in LOOPS.items():
            first, med, ns = bench(net, sp_b, 256e-4, make(), reps, **kw)
            rows.append([b, label, first, med, ns, med / euler])
        rows.append([b, "forward-Euler lax.scan, dt = 1e-4", "-", euler, "-", 1.0])
    out.append(
        emit(
            "(c) Braille graph: event loop kinds at batch 1 and 64 against the Euler scan",
            ["batch", "path", "first call (s)", "median (s)", "spikes", "x Euler scan"],
            rows,
        )
        + "\ntargets: <= 5x the Euler scan at batch 1, <= 15x at batch 64\n"
    )

    # (e) one exact gradient against its forward pass
    b = 100 if args.quick else 500
    f_first, f_med, g_first, g_med, spikes, finite, grazing = gradient_bench(b, reps)
    out.append(
        emit(
            f"(e) exact gradient, 5-120-3 CubaLIF, batch {b} latency-coded inputs "
            "(time-to-first-spike cross-entropy)",
            ["pass", "first call (s)", "median (s)", "x forward"],
            [
                ["forward (loss)", f_first, f_med, 1.0],
                ["value_and_grad", g_first, g_med, g_med / f_med],
            ],
        )
        + f"\nspikes in the batch: hidden {spikes[0]}, output {spikes[1]}; gradients "
        f"finite: {finite}; grazing crossings: {grazing} (target: gradient <= 4x "
        "forward)\n"
    )

    # Scaling with model time and spike count (closed form, 200-neuron network)
    rows = []
    for t_end in (0.125, 0.25, 0.5, 1.0):
        net, sp, _ = random_recurrent(n=200, t_end=t_end)
        first, med, ns = bench(
            net, sp, t_end, "closed_form", reps, max_spikes=200_000, max_events=1_000_000
        )
        rows.append([t_end, ns, med, med / max(ns, 1) * 1e6])
    out.append(
        emit(
            "Cost against model time (200 CubaLIF, 50 Hz input per channel)",
            ["t_end (s)", "spikes", "median (s)", "us per spike"],
            rows,
        )
    )
    rows = []
    for rate in (12.5, 25.0, 50.0, 100.0):
        net, sp, _ = random_recurrent(n=200, rate_input=rate, t_end=0.5)
        first, med, ns = bench(
            net, sp, 0.5, "closed_form", reps, max_spikes=200_000, max_events=1_000_000
        )
        n_in = int(np.sum(np.asarray(sp.indices) >= 0))
        rows.append([rate, n_in, ns, med, med / max(ns + n_in, 1) * 1e6])
    out.append(
        emit(
            "Cost against spike count (200 CubaLIF, 0.5 s)",
            [
                "input rate (Hz)",
                "input spikes",
                "output spikes",
                "median (s)",
                "us per event",
            ],
            rows,
        )
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(TABLES, f)
    if old is not None:
        out = side_by_side(out, old, f"old ({args.baseline})")
    text = "\n".join(out)
    print(text)
    return text


if __name__ == "__main__":
    main()
