"""Benchmark of nirsim's discrete engine against the frameworks' own simulators.

Prints Markdown tables of samples per second (median of repeated calls after a
warm-up call, the first call, compile included, beside it) on two graphs of the NIR
paper, each at batch 64 and 256, for a forward pass and a surrogate-gradient training
step (softmax cross-entropy of the output spike counts against random labels,
``value_and_grad`` over the parameters, one SGD update; on the CNN, whose step takes
seconds on 2 cores, at the smallest batch only):

* the Braille recurrent CubaLIF graph (12 -> 38 recurrent -> 7;
  ``braille_noDelay_bias_zero.nir``, or the same shapes with random weights when the
  shared data is absent), 256 steps of dt = 1e-4 s, Bernoulli(0.1) input spikes:
  nirsim (its first framework preset that accepts the graph, float32 and float64),
  Spyx, snnTorch (layers chained by hand: its NIR importer fails on this graph) and
  Norse;
* the spiking CNN (``cnn_sinabs.nir``, input 2x34x34, 30 steps), Bernoulli(0.1)
  input: nirsim, Spyx, Norse (its ``Flatten`` patched to keep the batch axis) and
  Sinabs (snnTorch's importer fails on this graph).

Everything runs in one command, in two worker processes: one with jax's x64 mode off
(nirsim float32, Spyx as its users run it, the torch frameworks; the simulators of
one table are timed in turns, call by call, so a change of the machine's load hits
them alike), one with it on (nirsim float64, and the check that the ``euler`` rule
gives the same rasters in float32 and float64). The float32 worker also measures
nirsim's host time per ``simulate`` call (the whole call minus its compiled program)
and checks that the program ``simulate`` runs is the one a bare ``jax.jit`` of the
solver compiles.

Run: ``python benchmarks/discrete.py [--quick]`` (a few minutes on 2 idle cores;
``--quick``: batch 8, half a minute); the peers come with ``pip install -e
".[bench]"`` (a framework that is not installed is left out with a note). Results go
in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _common import machine, table  # noqa: E402

SHARED = os.environ.get(
    "NIRSIM_SHARED_DATA",
    os.path.join(HERE, "..", "..", "shared", "data", "nir-paper"),
)
#: steps, step (s), input shape and output node of each graph
SPEC = {
    "braille": dict(steps=256, dt=1e-4, shape=(12,), out="lif2"),
    "cnn": dict(steps=30, dt=1e-3, shape=(2, 34, 34), out="12"),
}
#: nirsim's presets tried in this order: the first that accepts the graph is timed
PRESETS = ("spyx", "norse", "snntorch")
#: timed calls per simulator (a CNN call takes up to seconds on 2 cores)
REPEATS = {"braille": 7, "cnn": 3}
TITLES = {
    "braille": "Braille recurrent CubaLIF (12 -> 38 rec -> 7), 256 steps of 1e-4 s",
    "cnn": "Spiking CNN of the NIR paper (2x34x34 -> 10), 30 steps",
}
P_IN = 0.1
LR = 1e-3
RESULT = "RESULT "


# ---------------------------------------------------------------------- graphs
def braille_graph():
    """``(nir.NIRGraph, source)``: the paper's Braille graph, or one of the same
    shapes, node names and time constants with random weights."""
    import nir

    path = os.path.join(SHARED, "braille_noDelay_bias_zero.nir")
    if os.path.exists(path):
        return nir.read(path), "braille_noDelay_bias_zero.nir"
    rng = np.random.default_rng(1)
    dt = 1e-4

    def cuba(m, tau_syn, tau_mem):
        return nir.CubaLIF(
            tau_syn=np.full(m, tau_syn),
            tau_mem=np.full(m, tau_mem),
            r=np.full(m, tau_mem / dt),
            v_leak=np.zeros(m),
            v_threshold=np.ones(m),
            v_reset=np.zeros(m),
            w_in=np.full(m, tau_syn / dt),
        )

    h, o = 38, 7
    nodes = {
        "input": nir.Input(input_type=np.array([12])),
        "fc1": nir.Affine(weight=rng.normal(0, 0.7, (h, 12)), bias=rng.normal(0, 0.5, h)),
        "lif1.lif": cuba(h, 2.2e-4, 1e-3),
        "lif1.w_rec": nir.Affine(
            weight=rng.normal(0, 1.0, (h, h)), bias=rng.normal(0, 0.5, h)
        ),
        "fc2": nir.Affine(weight=rng.normal(0, 0.7, (o, h)), bias=rng.normal(0, 0.1, o)),
        "lif2": cuba(o, 2e-4, 2.2e-4),
        "output": nir.Output(output_type=np.array([o])),
    }
    edges = [
        ("input", "fc1"),
        ("fc1", "lif1.lif"),
        ("lif1.lif", "lif1.w_rec"),
        ("lif1.w_rec", "lif1.lif"),
        ("lif1.lif", "fc2"),
        ("fc2", "lif2"),
        ("lif2", "output"),
    ]
    return nir.NIRGraph(nodes=nodes, edges=edges), "random weights (shared data absent)"


def cnn_graph():
    """``(nir.NIRGraph, source)``: the paper's CNN, or one of the same shapes with
    random weights."""
    import nir

    path = os.path.join(SHARED, "cnn_sinabs.nir")
    if os.path.exists(path):
        return nir.read(path), "cnn_sinabs.nir"
    rng = np.random.default_rng(2)

    def conv(o, i, k, stride, hw):
        return nir.Conv2d(
            input_shape=(hw, hw),
            weight=rng.normal(0, 0.2, (o, i, k, k)),
            stride=(stride, stride),
            padding=(1, 1),
            dilation=(1, 1),
            groups=1,
            bias=np.zeros(o),
        )

    def iaf(shape):
        return nir.IF(r=np.ones(shape), v_threshold=np.ones(shape), v_reset=np.zeros(shape))

    def pool():
        return nir.SumPool2d(
            kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])
        )

    nodes = {
        "input": nir.Input(input_type=np.array([2, 34, 34])),
        "0": conv(16, 2, 5, 2, 34),
        "1": iaf((16, 16, 16)),
        "2": conv(16, 16, 3, 1, 16),
        "3": iaf((16, 16, 16)),
        "4": pool(),
        "5": conv(8, 16, 3, 1, 8),
        "6": iaf((8, 8, 8)),
        "7": pool(),
        "8": nir.Flatten(
            input_type={"input": np.array([8, 4, 4])}, start_dim=0, end_dim=-1
        ),
        "9": nir.Affine(weight=rng.normal(0, 0.15, (256, 128)), bias=np.zeros(256)),
        "10": iaf((256,)),
        "11": nir.Affine(weight=rng.normal(0, 0.15, (10, 256)), bias=np.zeros(10)),
        "12": iaf((10,)),
        "output": nir.Output(output_type=np.array([10])),
    }
    order = [
        "input",
        "0",
        "1",
        "2",
        "3",
        "4",
        "5",
        "6",
        "7",
        "8",
        "9",
        "10",
        "11",
        "12",
        "output",
    ]
    edges = list(zip(order[:-1], order[1:], strict=True))
    return nir.NIRGraph(nodes=nodes, edges=edges), "random weights (shared data absent)"


GRAPHS = {"braille": braille_graph, "cnn": cnn_graph}


def raster(graph: str, batch: int, seed: int = 0) -> np.ndarray:
    """Bernoulli(0.1) input spikes, ``(batch, steps, *shape)`` booleans."""
    s = SPEC[graph]
    rng = np.random.default_rng(seed)
    return rng.random((batch, s["steps"]) + s["shape"]) < P_IN


def labels(graph: str, batch: int, n_classes: int) -> np.ndarray:
    return np.random.default_rng(1).integers(0, n_classes, batch)


def cross_entropy(counts, y):
    """Mean softmax cross-entropy of spike counts ``(batch, classes)`` (jax)."""
    import jax
    import jax.numpy as jnp

    logp = jax.nn.log_softmax(counts, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=-1))


# ---------------------------------------------------------------------- nirsim
def nirsim_preset(g, graph) -> str:
    """The first of :data:`PRESETS` whose check accepts the graph."""
    import nirsim
    from nirsim.solvers.presets import preset

    net = nirsim.load(g)
    for name in PRESETS:
        try:
            preset(name, SPEC[graph]["dt"]).check(net)
            return name
        except nirsim.NirsimError:
            continue
    raise RuntimeError(f"no preset of {PRESETS} accepts the {graph} graph")


def nirsim_args(graph, g, x, rule, dtype):
    """``(network, inputs, keywords)`` of a ``simulate`` call on the raster ``x``,
    inputs already on the device. The Braille input is :class:`nirsim.Spikes`
    (impulses of area ``dt``, the export's convention); the CNN input, 2,312 channels
    wide, is a gridded :class:`nirsim.Current` read as impulses of area 1 (the presets
    read either as the step's input). No states are sampled."""
    import jax

    import nirsim

    s = SPEC[graph]
    net = nirsim.load(g)
    batch, steps = x.shape[:2]
    kw = dict(t_end=steps * s["dt"], solver=rule, dt=s["dt"], dtype=dtype)
    if graph == "braille":
        sp = nirsim.Spikes.from_grid(x.reshape(batch, steps, -1), s["dt"])
        inp = jax.device_put(sp)
        kw.update(spike_area=s["dt"])
    else:
        inp = nirsim.Current(x.astype(dtype), s["dt"])
        kw.update(grid_as="impulse")
    return net, inp, kw


def nirsim_forward(graph, g, x, rule, dtype):
    import nirsim

    net, inp, kw = nirsim_args(graph, g, x, rule, dtype)
    out = SPEC[graph]["out"]
    return lambda: nirsim.simulate(net, inp, **kw).spikes[out].counts


def nirsim_train(graph, g, x, rule, dtype):
    """One jitted training step: the loss on the output node's ``spike_count``
    (sampled once, at the end), ``jax.value_and_grad`` over every floating-point
    parameter of the Network, an SGD update."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    import nirsim

    net, inp, kw = nirsim_args(graph, g, x, rule, dtype)
    out = SPEC[graph]["out"]
    params, static = eqx.partition(net, eqx.is_inexact_array)
    y = jnp.asarray(labels(graph, x.shape[0], net.shape(out)[0]))

    @jax.jit
    def step(params, y):
        def loss(params):
            net = eqx.combine(params, static)
            tr = nirsim.simulate(net, inp, save_at=[kw["t_end"]], **kw)
            return cross_entropy(tr.states[out]["spike_count"][:, 0], y)

        value, grads = jax.value_and_grad(loss)(params)
        return value, jax.tree.map(lambda p, d: p - LR * d, params, grads)

    return lambda: step(params, y)


# ---------------------------------------------------------------------- peers
def _torch_device():
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def snntorch_braille(g, x):
    """snnTorch: its importer's own mapping of each node (``_nir_to_snntorch_module``:
    ``Linear``, ``RSynaptic`` for the recurrent CubaLIF, ``Synaptic``), chained by hand
    because ``import_from_nir`` fails on this graph. Returns ``(forward, train)``."""
    import nir
    import torch
    from snntorch.import_nir import _nir_to_snntorch_module

    n = g.nodes
    h = n["lif1.lif"].v_threshold.shape[0]
    sub = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([h])),
            "lif": n["lif1.lif"],
            "w_rec": n["lif1.w_rec"],
            "output": nir.Output(output_type=np.array([h])),
        },
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
    )
    dev = _torch_device()
    with _quiet():
        mods = [
            _nir_to_snntorch_module(m).to(dev) for m in (n["fc1"], sub, n["fc2"], n["lif2"])
        ]
    fc1, lif1, fc2, lif2 = mods
    o = n["lif2"].v_threshold.shape[0]
    xt = torch.as_tensor(x.swapaxes(0, 1), dtype=torch.float32, device=dev)
    batch = xt.shape[1]
    y = torch.as_tensor(labels("braille", batch, o), device=dev)
    params = [p for m in mods for p in m.parameters()]
    opt = torch.optim.SGD(params, lr=LR)

    def run():
        z = lambda k: torch.zeros(batch, k, device=dev)
        spk1, syn1, mem1, syn2, mem2 = z(h), z(h), z(h), z(o), z(o)
        outs = []
        for t in range(xt.shape[0]):
            spk1, syn1, mem1 = lif1(fc1(xt[t]), spk1, syn1, mem1)
            spk2, syn2, mem2 = lif2(fc2(spk1), syn2, mem2)
            outs.append(spk2)
        return torch.stack(outs)

    def forward():
        with torch.no_grad():
            return run()

    def train():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(run().sum(0), y)
        loss.backward()
        opt.step()
        return loss.detach()

    return forward, train


def norse_forward(g, x, graph):
    """Norse: ``norse.torch.from_nir(graph, dt)``, stepped in a Python loop with its
    state. Norse maps NIR's ``Flatten(start_dim=0)`` to ``torch.nn.Flatten(0)``,
    which flattens the batch axis away; it is patched to ``start_dim=1``."""
    import norse.torch as nt
    import torch

    dev = _torch_device()
    with _quiet():
        model = _to_device(nt.from_nir(g, dt=SPEC[graph]["dt"]), dev)
    for m in model.modules():
        if isinstance(m, torch.nn.Flatten) and m.start_dim == 0:
            m.start_dim = 1
    xt = torch.as_tensor(x.swapaxes(0, 1), dtype=torch.float32, device=dev)

    def run():
        with torch.no_grad(), _quiet():
            state = None
            outs = []
            for t in range(xt.shape[0]):
                out, state = model(xt[t], state)
                outs.append(out)
            return torch.stack(outs)

    return run


def _to_device(model, dev):
    """``model.to(dev)``, and also the tensors Norse keeps as plain attributes or in
    parameter NamedTuples (which ``Module.to`` does not move)."""
    import torch

    def move(obj):
        if isinstance(obj, torch.Tensor):
            return obj.to(dev)
        if isinstance(obj, tuple) and hasattr(obj, "_fields"):
            return type(obj)(*(move(v) for v in obj))
        return obj

    model = model.to(dev)
    for m in model.modules():
        for k, v in list(vars(m).items()):
            if not k.startswith("_"):
                new = move(v)
                if new is not v:
                    setattr(m, k, new)
    return model


def sinabs_forward(g, x):
    """Sinabs: ``sinabs.from_nir(graph, batch_size)`` (IAF layers that take all
    steps at once, ``(batch*steps, C, H, W)``); states are reset before each run."""
    import sinabs
    import torch

    dev = _torch_device()
    batch, steps = x.shape[:2]
    with _quiet():
        model = _to_device(sinabs.from_nir(g, batch_size=batch), dev)
    xt = torch.as_tensor(
        x.reshape((batch * steps,) + x.shape[2:]), dtype=torch.float32, device=dev
    )

    def run():
        with torch.no_grad():
            sinabs.reset_states(model)
            out = model(xt)
            return out[0] if isinstance(out, tuple) else out

    return run


def spyx_model(g, x, graph):
    """Spyx: ``spyx.nir.from_nir(graph, x, dt)`` (a flax.nnx model; its inputs are
    time-major and channels-last), run by ``spyx.nn.run`` under ``jax.jit``. Returns
    ``(forward, train)``; the training step differentiates the model's ``nnx.Param``
    state (Spyx's own surrogate gradients)."""
    import jax
    import jax.numpy as jnp
    import spyx
    import spyx.nir
    from flax import nnx

    xt = np.swapaxes(x, 0, 1).astype(np.float32)
    if xt.ndim == 5:  # (T, B, C, H, W) -> channels-last
        xt = np.moveaxis(xt, 2, -1)
    xt = jnp.asarray(xt)
    with _quiet():
        model, _ = spyx.nir.from_nir(g, xt[:1, :1], dt=SPEC[graph]["dt"])
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    @jax.jit
    def forward(params, rest, xt):
        out, _ = spyx.nn.run(nnx.merge(graphdef, params, rest), xt)
        return out

    n_out = forward(params, rest, xt[:, :1]).shape[-1]
    y = jnp.asarray(labels(graph, x.shape[0], n_out))

    @jax.jit
    def train(params, rest, xt, y):
        def loss(params):
            return cross_entropy(forward(params, rest, xt).sum(0), y)

        value, grads = jax.value_and_grad(loss)(params)
        return value, jax.tree.map(lambda p, d: p - LR * d, params, grads)

    return (lambda: forward(params, rest, xt)), (lambda: train(params, rest, xt, y))


class _quiet:
    """Silence the frameworks' prints and warnings while importing or running."""

    def __enter__(self):
        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore")
        self._out = sys.stdout
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115

    def __exit__(self, *exc):
        sys.stdout.close()
        sys.stdout = self._out
        self._w.__exit__(*exc)


# ---------------------------------------------------------------------- timing
def emit(**row):
    line = RESULT + json.dumps(row)
    print(line, flush=True)
    log = os.environ.get("NIRSIM_BENCH_LOG")
    if log:  # partial results survive a run that is cut short
        with open(log, "a") as f:
            f.write(line + "\n")


def progress(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _block(out):
    import jax

    return jax.block_until_ready(out)


def race(fns: dict, repeats: int, graph: str, kind: str = "forward") -> dict:
    """``{name: (first, median)}`` seconds: each function called once (compile
    included) and, for a forward pass, once more, then ``repeats`` rounds in which
    every function is called in turn (so a change of load hits all alike). A function
    that fails is reported and left out."""
    first, times = {}, {}
    for name, fn in list(fns.items()):
        try:
            t0 = time.perf_counter()
            _block(fn())
            first[name] = time.perf_counter() - t0
            if kind == "forward":
                _block(fn())
            times[name] = []
        except Exception as e:  # report, do not hide
            emit(kind="note", graph=graph, text=f"{name} failed: {_err(e)}")
            del fns[name]
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            _block(fn())
            times[name].append(time.perf_counter() - t0)
    return {n: (first[n], statistics.median(times[n])) for n in fns}


def _err(e) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"


def _load() -> float:
    return round(os.getloadavg()[0], 1)


# ---------------------------------------------------------------------- checks
def host_time(graph, g, rule, batch, repeats):
    """nirsim's host time per ``simulate`` call: each call's time minus the time of
    its compiled program (timed inside the call, blocking on its result), median
    over calls, in wall time and in this process's CPU time (which a busy machine
    does not inflate); and, called in turns, the whole call against the bare
    program."""
    from nirsim import _simulate

    call = nirsim_forward(graph, g, raster(graph, batch), rule, "float32")
    _block(call())
    inner, captured = [], {}
    orig = _simulate._run

    def timed_run(*a, **k):
        captured["args"] = a
        t0, c0 = time.perf_counter(), time.process_time()
        r = _block(orig(*a, **k))
        inner.append((time.perf_counter() - t0, time.process_time() - c0))
        return r

    _simulate._run = timed_run
    try:
        host, host_cpu = [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            _block(call())
            host.append(time.perf_counter() - t0 - inner[-1][0])
            host_cpu.append(time.process_time() - c0 - inner[-1][1])
    finally:
        _simulate._run = orig
    plan, prepared, bshape = captured["args"]
    fn, leaves = plan.compiled[len(bshape)]
    res = race(
        {"call": call, "program": lambda: fn(leaves, prepared, plan.ts)}, repeats, graph
    )
    emit(
        kind="host",
        graph=graph,
        batch=batch,
        host=statistics.median(host),
        host_cpu=statistics.median(host_cpu),
        call=res["call"][1],
        program=res["program"][1],
        load=_load(),
    )
    return plan, prepared, bshape


def same_program(graph, plan, prepared, bshape, repeats):
    """Whether the program ``simulate`` runs is the one a bare ``jax.jit`` of the
    solver compiles: same outputs, same optimised HLO operations, same time.

    ``simulate``'s program also computes ``Trace.valid`` (which sampled rows hold the
    answer); the bare program does the same with ``nirsim._simulate._valid_rows``, so
    the comparison is of the same work, not of a program that does less."""
    import collections
    import re

    import equinox as eqx
    import jax

    fn, leaves = plan.compiled[len(bshape)]
    dyn, static = eqx.partition((plan.solver, plan.network, plan.options), eqx.is_array)
    t_end = plan.t_end

    from nirsim._simulate import _valid_rows
    from nirsim.solvers import results

    @jax.jit
    def bare(dyn, inputs, ts):
        solver, network, options = eqx.combine(dyn, static)
        one = lambda i: solver.solve(network, i, ts, t_end, options)
        for _ in bshape:
            one = jax.vmap(one)
        sol = one(inputs)
        code = results.code_of(sol.result)
        return sol, _valid_rows(sol.states, ts, code, sol.failure_time, t_end)

    def ops(compiled):
        text = compiled.as_text()
        return collections.Counter(re.findall(r"= \S+ ([a-z][a-z0-9-]*)\(", text))

    via = ops(fn.lower(leaves, prepared, plan.ts).compile())
    own = ops(bare.lower(dyn, prepared, plan.ts).compile())
    a = jax.tree.leaves(fn(leaves, prepared, plan.ts))
    b = jax.tree.leaves(bare(dyn, prepared, plan.ts))
    equal = len(a) == len(b) and all(
        np.array_equal(x, y) for x, y in zip(a, b, strict=True)
    )
    res = race(
        {
            "simulate's program": lambda: fn(leaves, prepared, plan.ts),
            "bare jax.jit": lambda: bare(dyn, prepared, plan.ts),
        },
        repeats,
        graph,
    )
    emit(
        kind="same_program",
        graph=graph,
        batch=bshape[0],
        same_ops=via == own,
        n_ops=sum(via.values()),
        equal_outputs=bool(equal),
        via=res["simulate's program"][1],
        bare=res["bare jax.jit"][1],
    )


def euler_float32_is_float64(g, batch):
    """The ``euler`` rule's rasters on the Braille graph in float32 and float64 are
    identical (asserted)."""
    import nirsim

    x = raster("braille", batch)
    out = {}
    for dtype in ("float32", "float64"):
        net, inp, kw = nirsim_args("braille", g, x, "euler", dtype)
        tr = nirsim.simulate(net, inp, **kw)
        out[dtype] = {n: np.asarray(r.counts) for n, r in tr.spikes.items()}
    a, b = out["float32"], out["float64"]
    differ = sum(int(np.sum(a[n] != b[n])) for n in a)
    cells = sum(a[n].size for n in a)
    spikes = sum(int(np.sum(b[n])) for n in b)
    emit(kind="f32f64", batch=batch, differ=differ, cells=cells, spikes=spikes)
    assert differ == 0, f"float32 and float64 rasters differ in {differ} cells"


# ---------------------------------------------------------------------- workers
def worker(args):
    """Measure one process's share and print RESULT lines (JSON)."""
    import jax

    x64 = bool(jax.config.jax_enable_x64)
    emit(kind="device", x64=x64, device=str(jax.devices()[0]), load=_load())
    for graph in args.graphs:
        reps = args.repeats or REPEATS[graph]
        g, source = GRAPHS[graph]()
        rule = nirsim_preset(g, graph)
        emit(kind="source", graph=graph, source=source, rule=rule)
        for b in args.batches:
            progress(f"{graph}: batch {b} ({'float64' if x64 else 'float32'} worker)")
            x = raster(graph, b)
            dtype = "float64" if x64 else "float32"
            fwd = {"nirsim": nirsim_forward(graph, g, x, rule, dtype)}
            trn = {"nirsim": nirsim_train(graph, g, x, rule, dtype)}
            if not x64 and not args.no_peers:
                peers(graph, g, x, fwd, trn)
            if graph == "cnn" and b != min(args.batches):
                trn = {}  # a CNN training step takes seconds: the smallest batch only
            for kind, fns in (("forward", fwd), ("train", trn)):
                for impl, (first, med) in race(fns, reps, graph, kind).items():
                    emit(
                        kind="row",
                        graph=graph,
                        batch=b,
                        step=kind,
                        impl=impl,
                        how=HOW[impl, kind].format(rule=rule, threads=threads(graph)),
                        dtype=dtype if impl == "nirsim" else "float32",
                        first=first,
                        median=med,
                        load=_load(),
                    )
        if graph == "braille" and x64:
            progress("braille: euler float32 vs float64")
            euler_float32_is_float64(g, max(args.batches))
        if graph == "braille" and not x64:
            progress("braille: host time per call")
            for b in sorted({1, max(args.batches)}):
                plan, prepared, bshape = host_time(graph, g, rule, b, 5 * reps)
            same_program(graph, plan, prepared, bshape, reps)


HOW = {
    ("nirsim", "forward"): "simulate, preset {rule}",
    ("nirsim", "train"): "jax.jit(value_and_grad) of simulate, preset {rule}",
    ("Spyx", "forward"): "nnx + jax.jit",
    ("Spyx", "train"): "jax.jit(value_and_grad), nnx.Param",
    ("snnTorch", "forward"): "eager, no_grad, {threads} thread(s)",
    ("snnTorch", "train"): "eager autograd + SGD, {threads} thread(s)",
    ("Norse", "forward"): "eager, no_grad, {threads} thread(s)",
    ("Sinabs", "forward"): "eager, no_grad, {threads} thread(s)",
}


def threads(graph) -> int:
    """torch threads: 1 on Braille (microseconds of work per step, where threads only
    add synchronisation), all cores on the CNN."""
    return 1 if graph == "braille" else (os.cpu_count() or 1)


def peers(graph, g, x, fwd, trn):
    """Add the peers' forward and training functions (left out with a note when not
    installed or when they fail to load the graph)."""
    try:  # a copy: Spyx's importer edits the graph it is given
        fwd["Spyx"], trn["Spyx"] = spyx_model(copy.deepcopy(g), x, graph)
    except Exception as e:
        emit(kind="note", graph=graph, text=f"Spyx left out: {_err(e)}")
    try:
        import torch
    except ImportError as e:
        emit(kind="note", graph=graph, text=f"torch left out: {_err(e)}")
        return
    torch.set_num_threads(threads(graph))
    builders = {
        "snnTorch": lambda g: snntorch_braille(g, x) if graph == "braille" else None,
        "Norse": lambda g: (norse_forward(g, x, graph), None),
        "Sinabs": lambda g: (sinabs_forward(g, x), None) if graph == "cnn" else None,
    }
    for name, build in builders.items():
        try:
            built = build(copy.deepcopy(g))
        except Exception as e:
            emit(kind="note", graph=graph, text=f"{name} left out: {_err(e)}")
            continue
        if built is None:
            continue
        fwd[name] = built[0]
        if built[1] is not None:
            trn[name] = built[1]


# ---------------------------------------------------------------------- driver
def run_worker(x64: bool, extra: list[str]) -> list[dict]:
    env = dict(os.environ, JAX_ENABLE_X64="1" if x64 else "0", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", *extra]
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
    rows = [
        json.loads(line[len(RESULT) :])
        for line in proc.stdout.splitlines()
        if line.startswith(RESULT)
    ]
    if proc.returncode != 0:
        text = f"worker (x64={x64}) exited {proc.returncode} (see stderr)"
        rows.append(dict(kind="note", graph=None, text=text))
    return rows


def _versions(names):
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for n in names:
        try:
            out[n] = version(n)
        except PackageNotFoundError:
            out[n] = None
    return out


def render(rows, args, t_total) -> str:
    versions = _versions(
        "nirsim jax jaxlib numpy torch snntorch norse spyx flax sinabs nir".split()
    )
    out = [
        f"Machine: {machine()}, {os.cpu_count()} CPU cores",
        f"Command: `python benchmarks/discrete.py {' '.join(args.argv)}`".replace(
            "  ", " "
        ),
        "Load average (1 min) at the start of each worker: "
        + ", ".join(
            f"{'x64' if r['x64'] else 'x32'} {r['load']}"
            for r in rows
            if r["kind"] == "device"
        )
        + "; each row gives the load after it was measured.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if v),
    ]
    missing = [k for k, v in versions.items() if v is None]
    if missing:
        out.append("Not installed (left out): " + ", ".join(missing))
    reps = {g: args.repeats or REPEATS[g] for g in args.graphs}
    out.append(
        "Timed calls: median of "
        + ", ".join(f"{n} ({g})" for g, n in reps.items())
        + " calls per simulator after a warm-up call, simulators called in turns; "
        "samples/s = batch / median; vs Spyx = Spyx's median / this row's.\n"
    )
    for graph in args.graphs:
        src = [r for r in rows if r["kind"] == "source" and r["graph"] == graph]
        src = f"{src[0]['source']}; nirsim preset {src[0]['rule']}" if src else "?"
        for step, what in (("forward", "forward pass"), ("train", "training step")):
            grows = [
                r
                for r in rows
                if r["kind"] == "row" and r["graph"] == graph and r["step"] == step
            ]
            spyx = {r["batch"]: r["median"] for r in grows if r["impl"] == "Spyx"}
            body = []
            for r in sorted(grows, key=lambda r: (r["batch"], r["median"])):
                ref = spyx.get(r["batch"])
                body.append(
                    [
                        r["batch"],
                        r["impl"],
                        r["how"],
                        r["dtype"],
                        r["first"],
                        r["median"] * 1e3,
                        r["batch"] / r["median"],
                        "-" if ref is None else f"{ref / r['median']:.2f}x",
                        r["load"],
                    ]
                )
            head = "batch,simulator,how,dtype,first call (s),median (ms),samples/s"
            head += ",vs Spyx,load"
            out.append(table(f"{TITLES[graph]}: {what} ({src})", head.split(","), body))
        for r in rows:
            if r["kind"] == "note" and r["graph"] == graph:
                out.append(f"- note: {r['text']}")
        out.append("")
    hosts = [r for r in rows if r["kind"] == "host"]
    if hosts:
        body = [
            [
                r["batch"],
                r["host"] * 1e3,
                r["host_cpu"] * 1e3,
                r["call"] * 1e3,
                r["program"] * 1e3,
                (r["call"] - r["program"]) * 1e3,
                r["load"],
            ]
            for r in hosts
        ]
        head = [
            "batch",
            "host time per call (ms)",
            "host CPU time per call (ms)",
            "whole call (ms)",
            "compiled program (ms)",
            "difference of medians (ms)",
            "load",
        ]
        out.append(
            table("nirsim host time per simulate call (Braille, float32)", head, body)
        )
        out.append(
            "Host time: each call's time minus its compiled program's (timed inside "
            "the call, blocking on its result), median over calls; beside it the whole "
            "call and the bare program called in turns.\n"
        )
    for r in rows:
        if r["kind"] == "same_program":
            out.append(
                f"- simulate's compiled program vs a bare `jax.jit` of the solver "
                f"(Braille, batch {r['batch']}): same optimised HLO operations: "
                f"{'yes' if r['same_ops'] else 'NO'} ({r['n_ops']} instructions), "
                f"identical outputs: {'yes' if r['equal_outputs'] else 'NO'}, medians "
                f"{r['via'] * 1e3:.3g} ms vs {r['bare'] * 1e3:.3g} ms."
            )
        if r["kind"] == "f32f64":
            out.append(
                f"- `euler` on Braille, batch {r['batch']}: float32 and float64 rasters "
                f"differ in {r['differ']} of {r['cells']} cells ({r['spikes']} spikes; "
                "asserted equal)."
            )
        if r["kind"] == "note" and r["graph"] is None:
            out.append(f"- note: {r['text']}")
    out.append(f"\nWhole benchmark: {t_total:.0f} s wall time.")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: batch 8, 3 calls")
    ap.add_argument("--repeats", type=int, default=None, help="timed calls (>= 3)")
    ap.add_argument("--graphs", nargs="+", default=["braille", "cnn"], choices=list(SPEC))
    ap.add_argument("--batches", nargs="+", type=int, default=None)
    ap.add_argument("--no-peers", action="store_true", help="nirsim only")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.repeats is not None:
        args.repeats = max(3, args.repeats)
    elif args.quick:
        args.repeats = 3
    if args.batches is None:
        args.batches = [8] if args.quick else [64, 256]
    if args.worker:
        return worker(args)

    t0 = time.perf_counter()
    common = ["--graphs", *args.graphs, "--batches", *map(str, args.batches)]
    if args.repeats is not None:
        common += ["--repeats", str(args.repeats)]
    if args.no_peers:
        common.append("--no-peers")
    rows = run_worker(False, common) + run_worker(True, common)
    text = render(rows, args, time.perf_counter() - t0)
    print(text)
    return text


if __name__ == "__main__":
    main()
