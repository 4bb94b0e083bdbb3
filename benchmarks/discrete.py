"""Benchmark of nirsim's discrete-time solvers against the frameworks' own simulators.

Prints Markdown tables of samples per second (median of repeated runs after a
warm-up call; the first call, compile included, beside it) on two graphs of the NIR
paper, each at batch 64 and 256:

* the Braille recurrent CubaLIF graph (12 -> 38 recurrent -> 7;
  ``braille_noDelay_bias_zero.nir``, or the same shapes with random weights when the
  shared data is absent), 256 steps of dt = 1e-4 s, Bernoulli(0.1) input spikes:
  nirsim (float64 and float32), Spyx, snnTorch (layers chained by hand: its NIR
  importer fails on this graph) and Norse;
* the spiking CNN (``cnn_sinabs.nir``, input 2x34x34, 30 steps), Bernoulli(0.1)
  input: nirsim, Spyx, Norse (its ``Flatten`` patched to keep the batch axis) and
  Sinabs.

nirsim, Spyx and the torch frameworks are measured in the same command on the same
machine, in two worker processes: one with jax's float64 mode on (nirsim float64,
the torch frameworks), one with it off (nirsim float32, Spyx, which runs in float32
as its users run it). A profile of nirsim's call follows the tables (where its time
goes, XLA statistics of the compiled program, a roofline estimate).

Run: ``python benchmarks/discrete.py [--quick] [--device] [--torch-compile]`` (about 3
minutes on 2 idle cores; ``--quick``: batch 8, half a minute); the peers come with
``pip install -e ".[bench]"`` (a framework that is not installed is left out of the
tables with a note; RESULTS.md says how the measured versions were installed). Results
go in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _common import machine, table, timeit  # noqa: E402

SHARED = os.environ.get(
    "NIRSIM_SHARED_DATA",
    os.path.join(HERE, "..", "..", "shared", "data", "nir-paper"),
)
#: steps, step (s), input shape of each graph
SPEC = {
    "braille": dict(steps=256, dt=1e-4, shape=(12,), out="lif2"),
    "cnn": dict(steps=30, dt=1e-3, shape=(2, 34, 34), out="12"),
}
#: the discrete rules of nirsim tried on each graph (presets that accept the graph)
RULES = {"braille": ("euler", "norse"), "cnn": ("euler", "norse")}
#: timed runs per graph (a CNN call takes seconds on a 2-core machine)
REPEATS = {"braille": 5, "cnn": 3}
TITLES = {
    "braille": "Braille recurrent CubaLIF (12 -> 38 rec -> 7), 256 steps of 1e-4 s",
    "cnn": "Spiking CNN of the NIR paper (2x34x34 -> 10), 30 steps",
}
P_IN = 0.1
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


# ---------------------------------------------------------------------- nirsim
def nirsim_call(graph: str, g, x: np.ndarray, rule: str, max_spikes: int):
    """A no-argument function that runs ``nirsim.simulate`` on the raster ``x``.

    The Braille input is :class:`nirsim.Spikes` (impulses of area ``dt``, the
    export's convention); the CNN input, 2,312 channels wide, is a gridded
    :class:`nirsim.Current` read as impulses of area 1 (the presets read either as
    the step's input). No states are sampled (``save_dt=None``)."""
    import nirsim

    s = SPEC[graph]
    net = nirsim.load(g)
    batch, steps = x.shape[:2]
    kw = dict(t_end=steps * s["dt"], solver=rule, dt=s["dt"], max_spikes=max_spikes)
    if graph == "braille":
        inp = nirsim.Spikes.from_grid(x.reshape(batch, steps, -1), s["dt"])
        kw.update(spike_area=s["dt"])
    else:
        inp = nirsim.Current(x.astype(np.float32), s["dt"])
        kw.update(grid_as="impulse", spike_area=1.0)

    def go():
        return nirsim.simulate(net, inp, **kw)

    return go


def spike_capacity(graph: str, g, rule: str) -> int:
    """The spike buffer nirsim needs on this input: the largest spike count of one
    node in one sample of a batch of 16, with a margin of 1.5, rounded up to a power of
    two (a call whose buffer fills fails loudly, and the caller doubles it)."""
    s = SPEC[graph]
    import nirsim

    net = nirsim.load(g)
    worst = s["steps"] * max(math.prod(net.shape(n)) for n in net.spiking)
    tr = nirsim_call(graph, g, raster(graph, 16, seed=99), rule, worst)()
    most = max(
        int(np.max(np.sum(np.asarray(v.indices) >= 0, -1))) for v in tr.spikes.values()
    )
    return 1 << max(6, math.ceil(math.log2(1.5 * most + 1)))


def time_nirsim(graph, g, x, rule, max_spikes, repeats):
    """``(first, median, max_spikes)``, doubling the buffer until the call succeeds."""
    import nirsim

    while True:
        fn = nirsim_call(graph, g, x, rule, max_spikes)
        try:
            first, med = timeit(lambda fn=fn: fn().result, repeats=repeats)
            return first, med, max_spikes
        except nirsim.SimulationError as e:
            if "max_spikes" not in str(e):
                raise
            max_spikes *= 2


# ---------------------------------------------------------------------- peers
def _torch_device():
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _torch_timed(fn):
    import torch

    if _torch_device() == "cuda":

        def synced():
            out = fn()
            torch.cuda.synchronize()
            return out

        return synced
    return fn


def snntorch_braille(g, x):
    """snnTorch: its importer's own mapping of each node (``_nir_to_snntorch_module``:
    ``Linear``, ``RSynaptic`` for the recurrent CubaLIF, ``Synaptic``), chained by hand
    because ``import_from_nir`` fails on this graph."""
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
        fc1, lif1 = _nir_to_snntorch_module(n["fc1"]), _nir_to_snntorch_module(sub)
        fc2, lif2 = _nir_to_snntorch_module(n["fc2"]), _nir_to_snntorch_module(n["lif2"])
    mods = [m.to(dev) for m in (fc1, lif1, fc2, lif2)]
    fc1, lif1, fc2, lif2 = mods
    o = n["lif2"].v_threshold.shape[0]
    xt = torch.as_tensor(x.swapaxes(0, 1), dtype=torch.float32, device=dev)
    batch = xt.shape[1]

    def step(x_t, spk1, syn1, mem1, syn2, mem2):
        spk1, syn1, mem1 = lif1(fc1(x_t), spk1, syn1, mem1)
        spk2, syn2, mem2 = lif2(fc2(spk1), syn2, mem2)
        return spk2, spk1, syn1, mem1, syn2, mem2

    def runner(step_fn):
        def run():
            with torch.no_grad():
                z = lambda k: torch.zeros(batch, k, device=dev)
                state = (z(h), z(h), z(h), z(o), z(o))
                outs = []
                for t in range(xt.shape[0]):
                    out, *state = step_fn(xt[t], *state)
                    outs.append(out)
                return torch.stack(outs)

        return run

    return runner(step), lambda: runner(torch.compile(step))


def norse_model(g, x, graph):
    """Norse: ``norse.torch.from_nir(graph, dt)``, stepped in a Python loop with its
    state. Norse maps NIR's ``Flatten(start_dim=0)`` to ``torch.nn.Flatten(0)``,
    which flattens the batch axis away; it is patched to ``start_dim=1``."""
    import norse.torch as nt
    import torch

    dev = _torch_device()
    with _quiet():
        model = _to_device(nt.from_nir(g, dt=SPEC[graph]["dt"]), dev)
    patched = 0
    for m in model.modules():
        if isinstance(m, torch.nn.Flatten) and m.start_dim == 0:
            m.start_dim = 1
            patched += 1
    xt = torch.as_tensor(x.swapaxes(0, 1), dtype=torch.float32, device=dev)

    def run():
        with torch.no_grad(), _quiet():
            state = None
            outs = []
            for t in range(xt.shape[0]):
                out, state = model(xt[t], state)
                outs.append(out)
            return torch.stack(outs)

    return run, patched


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
            if k.startswith("_"):
                continue
            new = move(v)
            if new is not v:
                setattr(m, k, new)
    return model


def sinabs_cnn(g, x):
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
    time-major and channels-last), run by ``spyx.nn.run`` under ``jax.jit``."""
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
    graphdef, state = nnx.split(model)

    @jax.jit
    def run(state, xt):
        out, _ = spyx.nn.run(nnx.merge(graphdef, state), xt)
        return out

    return lambda: run(state, xt)


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


def _versions(names):
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for n in names:
        try:
            out[n] = version(n)
        except PackageNotFoundError:
            out[n] = None
    return out


# ---------------------------------------------------------------------- workers
def emit(**row):
    line = RESULT + json.dumps(row)
    print(line, flush=True)
    log = os.environ.get("NIRSIM_BENCH_LOG")
    if log:  # partial results survive a run that is cut short
        with open(log, "a") as f:
            f.write(line + "\n")


def progress(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def best_threads(fn) -> int:
    """Time one call of ``fn`` with 1 and with all torch threads; keep the faster."""
    import torch

    if _torch_device() == "cuda":
        return torch.get_num_threads()
    best = None
    for n in sorted({1, os.cpu_count() or 1}):
        torch.set_num_threads(n)
        fn()
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        if best is None or dt < best[1]:
            best = (n, dt)
    torch.set_num_threads(best[0])
    return best[0]


def worker(args):
    """Measure one process's share and print RESULT lines (JSON)."""
    import jax

    x64 = bool(jax.config.jax_enable_x64)
    dtype = "float64" if x64 else "float32"
    emit(
        kind="device",
        x64=x64,
        device=str(jax.devices()[0]),
        platform=jax.devices()[0].platform,
    )
    batches = sorted(args.batches)
    for graph in args.graphs:
        reps = args.repeats or REPEATS[graph]
        g, source = GRAPHS[graph]()
        emit(kind="source", graph=graph, source=source)
        try:
            best = nirsim_rows(args, graph, g, batches, reps, dtype)
        except Exception as e:  # report it and go on with the peers
            emit(
                kind="note",
                graph=graph,
                text=f"nirsim failed: {type(e).__name__}: {str(e)[:300]}",
            )
            best = None
        if x64 and not args.quick and best is not None:
            default_buffer(graph, g, batches, best, reps, dtype)
        if x64 and not args.no_peers:
            torch_peers(args, graph, g, batches, reps)
        if not x64 and not args.no_peers:
            spyx_rows(graph, g, batches, reps)
        if x64 and args.profile and best is not None:
            b = max(batches) if graph == "braille" else min(batches)
            progress(f"{graph}: profile of nirsim at batch {b}")
            try:
                profile(graph, g, b, best, reps)
            except Exception as e:
                emit(
                    kind="note",
                    graph=graph,
                    text=f"profile failed: {type(e).__name__}: {str(e)[:300]}",
                )


def nirsim_rows(args, graph, g, batches, reps, dtype):
    """Time nirsim: every candidate rule at the smallest batch, the fastest at the
    others. Returns ``(rule, max_spikes)`` of the fastest."""
    rules = RULES[graph] if args.rule is None else (args.rule[graph],)
    timed = []
    for rule in rules:
        cap = args.max_spikes.get(graph) or spike_capacity(graph, g, rule)
        progress(f"{graph}: nirsim {rule} {dtype} batch {batches[0]} (max_spikes {cap})")
        first, med, cap = time_nirsim(graph, g, raster(graph, batches[0]), rule, cap, reps)
        emit(
            kind="row",
            graph=graph,
            batch=batches[0],
            impl="nirsim",
            rule=rule,
            dtype=dtype,
            max_spikes=cap,
            first=first,
            median=med,
        )
        timed.append((med, rule, cap))
    _, rule, cap = min(timed)
    emit(kind="fastest", graph=graph, rule=rule, max_spikes=cap, dtype=dtype)
    for b in batches[1:]:
        progress(f"{graph}: nirsim {rule} {dtype} batch {b}")
        first, med, cap = time_nirsim(graph, g, raster(graph, b), rule, cap, reps)
        emit(
            kind="row",
            graph=graph,
            batch=b,
            impl="nirsim",
            rule=rule,
            dtype=dtype,
            max_spikes=cap,
            first=first,
            median=med,
        )
    return rule, cap


def default_buffer(graph, g, batches, best, reps, dtype):
    """nirsim as called with the default spike buffer (``max_spikes=10000``)."""
    import nirsim

    rule = best[0]
    for b in batches:
        progress(f"{graph}: nirsim {rule} batch {b}, default max_spikes")
        fn = nirsim_call(graph, g, raster(graph, b), rule, 10_000)
        try:
            first, med = timeit(lambda fn=fn: fn().result, repeats=reps)
        except nirsim.SimulationError as e:
            emit(
                kind="note",
                graph=graph,
                text=f"with the default max_spikes=10000, nirsim ({rule}) refuses this "
                f"input at batch {b}: {str(e).splitlines()[0]}",
            )
            return
        emit(
            kind="row",
            graph=graph,
            batch=b,
            impl="nirsim",
            rule=rule,
            dtype=dtype,
            max_spikes="10000 (default)",
            first=first,
            median=med,
        )


def spyx_rows(graph, g, batches, reps):

    for b in batches:
        progress(f"{graph}: Spyx batch {b}")
        try:
            fn = spyx_model(g, raster(graph, b), graph)
            first, med = timeit(fn, repeats=reps)
        except ImportError as e:
            emit(kind="note", graph=graph, text=f"Spyx not installed ({e})")
            return
        except Exception as e:  # report, do not hide
            emit(
                kind="note",
                graph=graph,
                text=f"Spyx failed: {type(e).__name__}: {str(e)[:200]}",
            )
            return
        emit(
            kind="row",
            graph=graph,
            batch=b,
            impl="Spyx",
            rule="nnx + jax.jit",
            dtype="float32",
            first=first,
            median=med,
        )


def torch_peers(args, graph, g, batches, reps):

    try:
        import torch
    except ImportError as e:
        emit(kind="note", graph=graph, text=f"torch not installed ({e})")
        return
    torch.set_grad_enabled(False)
    dev = _torch_device()
    peers = ["snntorch", "norse"] if graph == "braille" else ["norse", "sinabs"]
    for peer in peers:
        for b in batches:
            progress(f"{graph}: {peer} batch {b}")
            x = raster(graph, b)
            try:
                if peer == "snntorch":
                    fn, compiled = snntorch_braille(g, x)
                    how = "eager, torch.no_grad"
                elif peer == "norse":
                    fn, patched = norse_model(g, x, graph)
                    how = "eager, torch.no_grad" + (
                        ", Flatten patched to start_dim=1" if patched else ""
                    )
                else:
                    fn = sinabs_cnn(g, x)
                    how = "eager, torch.no_grad"
            except ImportError as e:
                emit(kind="note", graph=graph, text=f"{peer} not installed ({e})")
                break
            except Exception as e:
                emit(
                    kind="note",
                    graph=graph,
                    text=f"{peer} failed: {type(e).__name__}: {str(e)[:200]}",
                )
                break
            fn = _torch_timed(fn)
            try:
                if graph == "braille":  # per-step work of microseconds: threads add sync
                    torch.set_num_threads(1)
                    threads = 1
                else:
                    threads = best_threads(fn)
                first, med = timeit(fn, repeats=reps)
            except Exception as e:
                emit(
                    kind="note",
                    graph=graph,
                    text=f"{peer} failed: {type(e).__name__}: {str(e)[:200]}",
                )
                break
            emit(
                kind="row",
                graph=graph,
                batch=b,
                impl=_pretty(peer),
                rule=f"{how}, {dev}" + (f", {threads} thread(s)" if dev == "cpu" else ""),
                dtype="float32",
                first=first,
                median=med,
            )
            if peer == "snntorch" and args.torch_compile:
                try:
                    cfn = _torch_timed(compiled())
                    first, med = timeit(cfn, repeats=reps)
                    emit(
                        kind="row",
                        graph=graph,
                        batch=b,
                        impl="snnTorch",
                        rule=f"torch.compile of the step, torch.no_grad, {dev}",
                        dtype="float32",
                        first=first,
                        median=med,
                    )
                except Exception as e:
                    emit(
                        kind="note",
                        graph=graph,
                        text=f"torch.compile failed: {type(e).__name__}: {str(e)[:200]}",
                    )
    torch.set_num_threads(os.cpu_count() or 1)


def _pretty(peer):
    return {"snntorch": "snnTorch", "norse": "Norse", "sinabs": "Sinabs"}[peer]


# ---------------------------------------------------------------------- profile
def profile(graph, g, batch, best, reps):
    """Where nirsim's time goes at one batch: the whole call, the compiled program,
    the program without the spike lists, a plain ``lax.scan`` of the same arithmetic
    (Braille), XLA's statistics and a roofline estimate."""
    import jax
    import jax.numpy as jnp

    from nirsim import _simulate

    s = SPEC[graph]
    x = raster(graph, batch)
    rule, cap = best
    out = {
        "graph": graph,
        "batch": batch,
        "steps": s["steps"],
        "rule": rule,
        "max_spikes": cap,
    }
    fn = nirsim_call(graph, g, x, rule, cap)
    # 1. the whole call, and the compiled program alone (the solver's jitted function)
    inner = []
    orig = _simulate._run
    captured = {}

    def timed_run(*a, **k):
        captured["args"] = a
        t0 = time.perf_counter()
        r = orig(*a, **k)
        jax.block_until_ready(r)
        inner.append(time.perf_counter() - t0)
        return r

    _simulate._run = timed_run
    try:
        _, out["call"] = timeit(lambda: fn().result, repeats=reps)
        out["program"] = float(np.median(inner[-reps:]))
        # 2. the same without building the padded spike lists (solver internals:
        # reported as missing if they moved)
        try:
            from nirsim.solvers import discrete

            ev = discrete._events

            def no_events(z, dt, max_spikes, *a, **k):
                return (
                    jnp.zeros(max_spikes),
                    jnp.zeros(max_spikes, jnp.int32),
                    jnp.asarray(False),
                )

            discrete._events = no_events
            _simulate._CACHE.clear()
            try:
                _, out["call_no_lists"] = timeit(lambda: fn().result, repeats=reps)
                out["program_no_lists"] = float(np.median(inner[-reps:]))
            finally:
                discrete._events = ev
                _simulate._CACHE.clear()
        except Exception as e:
            out["no_spike_lists_error"] = f"{type(e).__name__}: {e}"
    finally:
        _simulate._run = orig
    # 3. XLA statistics of the compiled program
    try:
        solver, network, inputs, ts, t_end, options, bshape = captured["args"]
        jfn = _simulate._compiled(solver, bshape)
        compiled = jfn.lower(solver, network, inputs, ts, t_end, options).compile()
        compiled = getattr(compiled, "compiled", compiled)  # equinox's wrapper
        text = compiled.as_text()
        ca = compiled.cost_analysis()
        ca = ca[0] if isinstance(ca, list | tuple) else ca
        out["hlo"] = dict(
            instructions=sum(1 for ln in text.splitlines() if " = " in ln),
            fusions=text.count(" fusion("),
            while_loops=text.count(" while("),
            scatters=text.count(" scatter("),
            flops=float(ca.get("flops", float("nan"))),
            bytes=float(ca.get("bytes accessed", float("nan"))),
        )
    except Exception as e:
        out["hlo_error"] = f"{type(e).__name__}: {e}"
    # 4. plain scan of the same arithmetic (Braille): the floor for this graph in jax
    if graph == "braille":
        for dtype in (jnp.float64, jnp.float32):
            run = plain_scan(g, x, s["dt"], dtype)
            _, out[f"plain_scan_{jnp.dtype(dtype).name}"] = timeit(run, repeats=reps)
    if graph == "cnn":
        for layout, dtype in (
            ("NCHW", jnp.float32),
            ("NHWC", jnp.float32),
            ("NCHW", jnp.float64),
        ):
            run = plain_cnn_scan(g, x, layout, dtype)
            _, out[f"plain_scan_{layout}_{jnp.dtype(dtype).name}"] = timeit(
                run, repeats=reps
            )
    out["model_flops_per_step"] = model_flops(g, graph) * batch
    out["machine"] = machine_roofline()
    emit(kind="profile", **out)


def plain_scan(g, x, dt, dtype):
    """Forward Euler (new current, reset to zero) of the Braille graph as one
    hand-written ``lax.scan`` over a batch: what the arithmetic alone costs."""
    import jax
    import jax.numpy as jnp

    n = g.nodes
    p = {
        k: jnp.asarray(v, dtype)
        for k, v in dict(
            w1=n["fc1"].weight,
            b1=n["fc1"].bias,
            wr=n["lif1.w_rec"].weight,
            br=n["lif1.w_rec"].bias,
            w2=n["fc2"].weight,
            b2=n["fc2"].bias,
        ).items()
    }
    cubas = [n["lif1.lif"], n["lif2"]]
    c = [
        {
            k: jnp.asarray(getattr(q, k), dtype)
            for k in ("tau_syn", "tau_mem", "r", "w_in", "v_threshold")
        }
        for q in cubas
    ]

    def cuba(q, i, v, xin):
        i = i + dt / q["tau_syn"] * (-i + q["w_in"] * xin)
        v = v + dt / q["tau_mem"] * (-v + q["r"] * i)
        z = (v > q["v_threshold"]).astype(dtype)
        return i, v * (1 - z), z

    @jax.jit
    def run(xs):
        b = xs.shape[1]
        h, o = p["w1"].shape[0], p["w2"].shape[0]

        def step(carry, s):
            i1, v1, z1, i2, v2 = carry
            x1 = s @ p["w1"].T + p["b1"] + z1 @ p["wr"].T + p["br"]
            i1, v1, z1 = cuba(c[0], i1, v1, x1)
            i2, v2, z2 = cuba(c[1], i2, v2, z1 @ p["w2"].T + p["b2"])
            return (i1, v1, z1, i2, v2), z2

        zero = lambda k: jnp.zeros((b, k), dtype)
        return jax.lax.scan(step, (zero(h), zero(h), zero(h), zero(o), zero(o)), xs)[1]

    xs = jnp.asarray(np.swapaxes(x, 0, 1), dtype)
    return lambda: run(xs)


def plain_cnn_scan(g, x, layout, dtype):
    """The CNN's IF layers (reset to zero) as one hand-written ``lax.scan`` over a
    batch, with the convolutions in ``layout`` ("NCHW", as NIR and nirsim hold them,
    or "NHWC", as Spyx does)."""
    import jax
    import jax.numpy as jnp

    n = g.nodes
    convs = [n[k] for k in ("0", "2", "5")]
    dense = [n[k] for k in ("9", "11")]
    th = {k: float(np.unique(n[k].v_threshold)[0]) for k in ("1", "3", "6", "10", "12")}
    nhwc = layout == "NHWC"
    ws = [
        jnp.asarray(c.weight.transpose(2, 3, 1, 0) if nhwc else c.weight, dtype)
        for c in convs
    ]
    bs = [jnp.asarray(c.bias if nhwc else c.bias[:, None, None], dtype) for c in convs]
    spec = ("NHWC", "HWIO", "NHWC") if nhwc else ("NCHW", "OIHW", "NCHW")
    win = (1, 2, 2, 1) if nhwc else (1, 1, 2, 2)

    def conv(h, i):
        c = convs[i]
        st = tuple(int(v) for v in np.broadcast_to(np.asarray(c.stride), (2,)))
        pd = [(int(v), int(v)) for v in np.broadcast_to(np.asarray(c.padding), (2,))]
        y = jax.lax.conv_general_dilated(h, ws[i], st, pd, dimension_numbers=spec)
        return y + bs[i]

    def pool(h):
        return jax.lax.reduce_window(h, 0.0, jax.lax.add, win, win, "VALID")

    def iaf(v, xin, th):
        v = v + xin
        z = (v > th).astype(dtype)
        return v * (1 - z), z

    w9, b9 = (jnp.asarray(a, dtype) for a in (dense[0].weight, dense[0].bias))
    w11, b11 = (jnp.asarray(a, dtype) for a in (dense[1].weight, dense[1].bias))

    def step(carry, s):
        v1, v3, v6, v10, v12 = carry
        v1, z = iaf(v1, conv(s, 0), th["1"])
        v3, z = iaf(v3, conv(z, 1), th["3"])
        v6, z = iaf(v6, conv(pool(z), 2), th["6"])
        z = pool(z)
        z = (jnp.moveaxis(z, -1, 1) if nhwc else z).reshape(z.shape[0], -1)
        v10, z = iaf(v10, z @ w9.T + b9, th["10"])
        v12, z = iaf(v12, z @ w11.T + b11, th["12"])
        return (v1, v3, v6, v10, v12), z

    xs = np.swapaxes(x, 0, 1)
    if nhwc:
        xs = np.moveaxis(xs, 2, -1)
    xs = jnp.asarray(xs, dtype)
    b = xs.shape[1]

    @jax.jit
    def run(xs):
        shapes = [(16, 16, 16), (16, 16, 16), (8, 8, 8)]
        if nhwc:
            shapes = [(h, w, c) for c, h, w in shapes]
        init = tuple(jnp.zeros((b,) + sh, dtype) for sh in shapes) + (
            jnp.zeros((b, w9.shape[0]), dtype),
            jnp.zeros((b, w11.shape[0]), dtype),
        )
        return jax.lax.scan(step, init, xs)[1]

    return lambda: run(xs)


def model_flops(g, graph) -> float:
    """Multiply-adds x 2 of the weight layers plus ~10 flops per neuron, one sample,
    one step."""
    import nir

    f = 0.0
    for node in g.nodes.values():
        if isinstance(node, nir.Affine | nir.Linear):
            f += 2 * node.weight.size
        elif isinstance(node, nir.Conv2d):
            out_hw = _conv_out(node)
            f += 2 * node.weight.size * out_hw
        elif isinstance(node, nir.CubaLIF | nir.IF | nir.LIF):
            f += 10 * node.v_threshold.size
    return f


def _conv_out(node) -> int:
    hw = np.asarray(node.input_shape)
    k = np.asarray(node.weight.shape[-2:])
    st = np.broadcast_to(np.asarray(node.stride), (2,))
    pad = np.broadcast_to(np.asarray(node.padding), (2,))
    return int(np.prod((hw + 2 * pad - k) // st + 1))


def machine_roofline():
    """Measured float32 and float64 matrix-product rates of jax (GFLOP/s, 1024^2
    operands) and the host's copy bandwidth (GB/s, bytes read + written, numpy)."""
    import jax
    import jax.numpy as jnp

    n = 1024
    out = {}
    for dt in ("float32", "float64"):
        a = jnp.ones((n, n), dt)
        mm = jax.jit(lambda a: a @ a)
        _, t = timeit(lambda a=a, mm=mm: mm(a), repeats=3)
        out[f"gflops_{dt}"] = 2 * n**3 / t / 1e9
    src = np.ones(8 * 2**20)
    dst = np.empty_like(src)
    _, tc = timeit(lambda: np.copyto(dst, src), repeats=5)
    out["gbps"] = 2 * src.nbytes / tc / 1e9
    return out


# ---------------------------------------------------------------------- driver
def run_worker(x64: bool, extra: list[str]) -> list[dict]:
    env = dict(os.environ, JAX_ENABLE_X64="1" if x64 else "0", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", *extra]
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
    rows = []
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT):
            rows.append(json.loads(line[len(RESULT) :]))
    if proc.returncode != 0:
        rows.append(
            dict(
                kind="note",
                graph=None,
                text=f"worker (x64={x64}) exited {proc.returncode} (see stderr)",
            )
        )
    return rows


def render(rows, args, versions, t_total) -> str:

    out = [f"Machine: {machine()}, {os.cpu_count()} CPU cores"]
    devs = {r["x64"]: r for r in rows if r["kind"] == "device"}
    out.append(
        "jax devices: "
        + ", ".join(
            f"{'x64' if k else 'x32'} worker: {v['device']}" for k, v in devs.items()
        )
    )
    try:
        out.append(f"Load average at start: {args.load}")
    except AttributeError:
        pass
    out.append(
        "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if v is not None)
    )
    missing = [k for k, v in versions.items() if v is None]
    if missing:
        out.append("Not installed (left out): " + ", ".join(missing))
    reps = {g: args.repeats or REPEATS[g] for g in args.graphs}
    out.append(
        "Timed runs: median of "
        + ", ".join(f"{n} ({g})" for g, n in reps.items())
        + " calls after one warm-up call; samples/s = batch / median.\n"
    )
    for graph in args.graphs:
        src = next(
            (r["source"] for r in rows if r["kind"] == "source" and r["graph"] == graph),
            "?",
        )
        grows = [r for r in rows if r["kind"] == "row" and r["graph"] == graph]
        spyx = {r["batch"]: r["median"] for r in grows if r["impl"] == "Spyx"}
        table_rows = []
        for r in sorted(grows, key=lambda r: (r["batch"], r["median"])):
            sps = r["batch"] / r["median"]
            ref = spyx.get(r["batch"])
            table_rows.append(
                [
                    r["batch"],
                    r["impl"],
                    r["rule"]
                    + (f", max_spikes={r['max_spikes']}" if "max_spikes" in r else ""),
                    r["dtype"],
                    r["first"],
                    r["median"] * 1e3,
                    sps,
                    "-" if ref is None else f"{ref / r['median']:.2f}x",
                ]
            )
        out.append(
            table(
                f"{TITLES[graph]} ({src})",
                [
                    "batch",
                    "simulator",
                    "how",
                    "dtype",
                    "first call (s)",
                    "median (ms)",
                    "samples/s",
                    "vs Spyx",
                ],
                table_rows,
            )
        )
        for r in rows:
            if r["kind"] == "note" and r["graph"] in (graph,):
                out.append(f"- note: {r['text']}")
        out.append("")
    for r in rows:
        if r["kind"] == "note" and r["graph"] is None:
            out.append(f"- note: {r['text']}")
    for p in (r for r in rows if r["kind"] == "profile"):
        out.append(render_profile(p))
    out.append(f"Whole benchmark: {t_total:.0f} s wall time.")
    return "\n".join(out)


def render_profile(p) -> str:

    steps, batch = p["steps"], p["batch"]
    rows = [
        [label, p[k] * 1e3, p[k] / steps * 1e6]
        for label, k in (
            ("whole nirsim.simulate call", "call"),
            ("its compiled program (device time + dispatch)", "program"),
            ("whole call, padded spike lists stubbed out", "call_no_lists"),
            ("compiled program, padded spike lists stubbed out", "program_no_lists"),
        )
        if k in p
    ]
    for k in ("plain_scan_float64", "plain_scan_float32"):
        if k in p:
            rows.append(
                [
                    f"hand-written lax.scan, same arithmetic, {k[-7:]}",
                    p[k] * 1e3,
                    p[k] / steps * 1e6,
                ]
            )
    for k in (
        "plain_scan_NCHW_float32",
        "plain_scan_NHWC_float32",
        "plain_scan_NCHW_float64",
    ):
        if k in p:
            _, _, layout, dt = k.split("_")
            rows.append(
                [
                    f"hand-written lax.scan of the IF layers, {layout} convolutions, {dt}",
                    p[k] * 1e3,
                    p[k] / steps * 1e6,
                ]
            )
    text = table(
        f"Profile: nirsim ({p['rule']}, float64, max_spikes={p['max_spikes']}) on the "
        f"{p['graph']} graph, batch {batch}",
        ["piece", "median (ms)", "per step (us)"],
        rows,
    )
    m = p["machine"]
    fl = p["model_flops_per_step"]
    f32 = fl / (m["gflops_float32"] * 1e9) * 1e6
    f64 = fl / (m["gflops_float64"] * 1e9) * 1e6
    text += (
        f"\nModel arithmetic: {fl / 1e6:.3g} MFLOP per step for the batch (weight "
        f"layers, 2 flops per multiply-add, plus ~10 per neuron). At the matrix-product "
        f"rates measured in the same process ({m['gflops_float32']:.0f} GFLOP/s float32, "
        f"{m['gflops_float64']:.0f} GFLOP/s float64, 1024^2 operands) that is "
        f"{f32:.3g} us (float32) or {f64:.3g} us (float64) per step, against "
        f"{p['call'] / steps * 1e6:.3g} us per step for the whole call. Host copy "
        f"bandwidth: {m['gbps']:.0f} GB/s.\n"
    )
    if "hlo" in p:
        h = p["hlo"]
        text += (
            f"\nCompiled program (whole batch): {h['instructions']} HLO instructions, "
            f"{h['fusions']} fusions, {h['while_loops']} while loops, {h['scatters']} "
            "scatters (counted in the optimised HLO text; a while loop is one scan or "
            "one binary search).\n"
        )
    for k in ("hlo_error", "no_spike_lists_error"):
        if k in p:
            text += f"\n({k}: {p[k]})\n"
    return text


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: batch 8, 3 timed runs, euler only, no profile",
    )
    ap.add_argument(
        "--device",
        action="store_true",
        help="print the jax (and torch) device the benchmark uses, and exit",
    )
    ap.add_argument("--repeats", type=int, default=None, help="timed runs (>= 3)")
    ap.add_argument("--graphs", nargs="+", default=["braille", "cnn"], choices=list(SPEC))
    ap.add_argument("--batches", nargs="+", type=int, default=None)
    ap.add_argument(
        "--torch-compile",
        action="store_true",
        help="also time snnTorch with torch.compile of its step (5-40 s of "
        "compilation per batch size on 2 cores, depending on the load)",
    )
    ap.add_argument("--no-peers", action="store_true", help="nirsim only")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--rule-json", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--caps-json", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.repeats is not None:
        args.repeats = max(3, args.repeats)
    elif args.quick:
        args.repeats = 3
    if args.batches is None:
        args.batches = [8] if args.quick else [64, 256]
    args.rule = json.loads(args.rule_json) if args.rule_json else None
    args.max_spikes = json.loads(args.caps_json) if args.caps_json else {}
    if args.quick and args.rule is None:
        args.rule = {g: RULES[g][0] for g in SPEC}
    args.profile = not (args.quick or args.no_profile)
    args.profile_graphs = args.graphs

    if args.device:
        import jax

        line = f"jax {jax.__version__}: {jax.devices()[0]} ({jax.devices()[0].platform})"
        try:
            import torch

            line += f"; torch {torch.__version__}: {_torch_device()}"
        except ImportError:
            line += "; torch not installed"
        print(line)
        return line
    if args.worker:
        worker(args)
        return None

    t0 = time.perf_counter()
    try:
        args.load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        args.load = "?"
    common = ["--graphs", *args.graphs, "--batches", *map(str, args.batches)]
    if args.repeats is not None:
        common += ["--repeats", str(args.repeats)]
    if args.quick:
        common.append("--quick")
    if args.no_peers:
        common.append("--no-peers")
    if args.no_profile or args.quick:
        common.append("--no-profile")
    if args.torch_compile:
        common.append("--torch-compile")
    if args.rule is not None:
        common += ["--rule-json", json.dumps(args.rule)]
    rows = run_worker(True, common)
    # float32 worker: nirsim with the fastest rule of the float64 run, and Spyx
    fastest, caps = {}, {}
    for graph in args.graphs:
        best = [r for r in rows if r["kind"] == "fastest" and r["graph"] == graph]
        fastest[graph] = best[0]["rule"] if best else RULES[graph][0]
        if best:
            caps[graph] = best[0]["max_spikes"]
    extra = [c for c in common if c != "--torch-compile"]
    if "--rule-json" in extra:
        i = extra.index("--rule-json")
        del extra[i : i + 2]
    extra += [
        "--rule-json",
        json.dumps(fastest),
        "--caps-json",
        json.dumps(caps),
        "--no-profile",
    ]
    rows += run_worker(False, extra)
    versions = _versions(
        [
            "nirsim",
            "jax",
            "jaxlib",
            "numpy",
            "torch",
            "snntorch",
            "norse",
            "spyx",
            "flax",
            "sinabs",
            "nirtorch",
            "nir",
        ]
    )
    text = render(rows, args, versions, time.perf_counter() - t0)
    print(text)
    return text


if __name__ == "__main__":
    main()
