"""Run the NIR paper graphs in the peer frameworks (snnTorch, Norse, Spyx, Sinabs,
Rockpool) with each framework's own NIR importer, and in nirsim's preset of that
framework, on the same seeded inputs; rasters ``(batch, steps, neurons)`` of spike
counts per step for cell-by-cell comparison (``tests/test_peers.py``).

Inputs are 0/1 rasters: each framework receives the step's value ``x[n]`` (a spike is
the value 1 for one step); nirsim receives ``Current(x, dt)``, which every preset reads
as the step's input. Nothing here is imported by nirsim.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import io
import math
import warnings
from pathlib import Path

import h5py
import nir
import numpy as np

#: per paper graph: file, steps, grid step, input shape, output spiking node, batch
GRAPHS = {
    "lif": dict(file="lif_norse.nir", steps=1000, dt=1e-4, shape=(1,), out="1", batch=1),
    "braille_zero": dict(
        file="braille_noDelay_bias_zero.nir", steps=256, dt=1e-4, shape=(12,),
        out="lif2", batch=4,
    ),
    "braille_subtract": dict(
        file="braille_noDelay_noBias_subtract.nir", steps=256, dt=1e-4, shape=(12,),
        out="lif2", batch=4,
    ),
    "braille_zero_subgraph": dict(
        file="braille_noDelay_bias_zero_subgraph.nir", steps=256, dt=1e-4,
        shape=(12,), out="lif2", batch=4,
    ),
    "braille_subtract_subgraph": dict(
        file="braille_noDelay_noBias_subtract_subgraph.nir", steps=256, dt=1e-4,
        shape=(12,), out="lif2", batch=4,
    ),
    "cnn": dict(file="cnn_sinabs.nir", steps=30, dt=1e-3, shape=(2, 34, 34), out="12",
                batch=2),
}  # fmt: skip

#: the paper's LIF input (README of the NIR paper files): 100 values, each followed
#: by nine zeros
LIF_PATTERN = (
    "0000001000000000000000100001000110010100110111111111110000000000000111111111111"
    "000001100000000000000"
)

FRAMEWORKS = ("snntorch", "norse", "spyx", "sinabs", "rockpool")
MODULE = {"snntorch": "snntorch", "norse": "norse", "spyx": "spyx", "sinabs": "sinabs",
          "rockpool": "rockpool"}  # fmt: skip


def available(fw: str) -> bool:
    try:
        with quiet():
            importlib.import_module(MODULE[fw])
            if fw == "rockpool":
                importlib.import_module("rockpool.nn.modules")
        return True
    except Exception:  # noqa: BLE001  (a broken install counts as absent)
        return False


@contextlib.contextmanager
def quiet():
    """Silence the frameworks' prints and warnings."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


# ------------------------------------------------------------------ graphs and inputs
def _node_from_dict(d: dict) -> nir.NIRNode:
    """A node of a published subgraph file, repaired: Input/Output ``shape`` ->
    ``input_type``/``output_type``; inner edges naming ``lif`` -> ``lif1``."""
    t = d["type"]
    if t == "NIRGraph":
        nodes = {k: _node_from_dict(v) for k, v in d["nodes"].items()}
        edges = []
        for a, b in d["edges"]:
            a, b = (e.decode() if isinstance(e, bytes) else str(e) for e in (a, b))
            a, b = (e if e in nodes else "lif1" if e == "lif" else e for e in (a, b))
            edges.append((a, b))
        return nir.NIRGraph(nodes=nodes, edges=edges)
    if t == "Input":
        return nir.Input(input_type=np.asarray(d.get("shape", d.get("input_type"))))
    if t == "Output":
        return nir.Output(output_type=np.asarray(d.get("shape", d.get("output_type"))))
    d = {k: v for k, v in d.items() if k not in ("input_type", "output_type")}
    return nir.dict2NIRNode(d)


def read_graph(folder: Path, key: str) -> nir.NIRGraph:
    """The paper graph ``key`` as a ``nir.NIRGraph``; the ``*_subgraph`` files are
    broken as published (edge to ``lif``, node ``lif1``; Input ``shape``) and are
    repaired in memory, keeping the nested form."""
    path = Path(folder) / GRAPHS[key]["file"]
    if key.endswith("_subgraph"):
        from nir.serialization import hdf2dict

        with h5py.File(path, "r") as f:
            return _node_from_dict(hdf2dict(f["node"]))
    return nir.read(path)


def inputs(key: str, seed: int = 0) -> np.ndarray:
    """Seeded 0/1 float32 inputs ``(batch, steps, *shape)``: the paper's pattern for
    the LIF, Bernoulli(0.1) spikes otherwise (N-MNIST-like for the CNN)."""
    s = GRAPHS[key]
    if key == "lif":
        x = np.zeros((1, s["steps"], 1), np.float32)
        x[0, ::10, 0] = [int(c) for c in LIF_PATTERN]
        return x
    rng = np.random.default_rng(seed)
    p = 0.1 if key.startswith("braille") else 0.05
    return (rng.random((s["batch"], s["steps"]) + s["shape"]) < p).astype(np.float32)


# ------------------------------------------------------------------ nirsim
def run_nirsim(preset: str, graph: nir.NIRGraph, x: np.ndarray, key: str, **kw):
    """nirsim's preset on ``x``: raster ``(batch, steps, n)`` of the output node, from
    ``trace.spike_trains`` binned by ``round(t/dt)``."""
    import jax.numpy as jnp

    import nirsim

    s = GRAPHS[key]
    dt, steps = s["dt"], s["steps"]
    # the framework's float32 (every preset's default; said here to be explicit)
    args = dict(t_end=steps * dt, solver=preset, dt=dt, dtype=jnp.float32, **kw)
    with quiet():
        net = nirsim.load(graph)
        node = _output_node(net, s["out"])
        n = math.prod(net.shape(node))
        out = np.zeros((x.shape[0], steps, n), np.int64)
        tr = nirsim.simulate(net, nirsim.Current(x, dt), **args)
        for b, trains in enumerate(tr.spike_trains(node)):
            for j, times in enumerate(trains):
                for t in np.asarray(times, float):
                    out[b, int(round(t / dt)), j] += 1
    return out


def _output_node(net, name):
    if name in net.nodes:
        return name
    (m,) = [k for k in net.nodes if k.endswith("." + name) or k.split(".")[0] == name]
    return m


# ------------------------------------------------------------------ frameworks
def _torch_loop(model, x, reset_hidden=None):
    """Step a stateful torch model through time: ``x`` is ``(batch, steps, ...)``."""
    import torch

    xt = torch.as_tensor(np.ascontiguousarray(np.swapaxes(x, 0, 1)), dtype=torch.float32)
    outs = []
    with torch.no_grad(), quiet():
        state = None
        for t in range(xt.shape[0]):
            out, state = model(xt[t], state)
            outs.append(out)
    return torch.stack(outs, 1).numpy()


def run_norse(graph, x, key):
    import norse.torch as nt
    import torch

    with quiet():
        model = nt.from_nir(graph, dt=GRAPHS[key]["dt"])
    for m in model.modules():  # Norse's Flatten(0) drops the batch axis: keep it
        if isinstance(m, torch.nn.Flatten) and m.start_dim == 0:
            m.start_dim = 1
    return _torch_loop(model, x)


def run_snntorch(graph, x, key):
    import snntorch.import_nir as sn
    import torch

    with quiet():
        model = sn.import_from_nir(graph)
    xt = torch.as_tensor(np.ascontiguousarray(np.swapaxes(x, 0, 1)), dtype=torch.float32)
    outs = []
    with torch.no_grad(), quiet():
        state = None
        for t in range(xt.shape[0]):
            out, state = model(xt[t], state)
            outs.append(out)
    return torch.stack(outs, 1).numpy()


def run_sinabs(graph, x, key):
    import sinabs
    import torch

    b, steps = x.shape[:2]
    with quiet():
        model = sinabs.from_nir(graph, batch_size=b)
        sinabs.reset_states(model)
        xt = torch.as_tensor(x.reshape((b * steps,) + x.shape[2:]), dtype=torch.float32)
        with torch.no_grad():
            out = model(xt)
    out = out[0] if isinstance(out, tuple) else out
    return out.reshape((b, steps) + tuple(out.shape[1:])).numpy()


def run_spyx(graph, x, key):
    import jax
    import jax.numpy as jnp
    import spyx
    import spyx.nir

    xt = np.swapaxes(x, 0, 1).astype(np.float32)
    if xt.ndim == 5:  # (T, B, C, H, W) -> channels-last
        xt = np.moveaxis(xt, 2, -1)
    # Spyx runs as its users run it: JAX's default float32 (the tests turn x64 on)
    with quiet(), jax.enable_x64(False):
        xt = jnp.asarray(xt)
        model, _ = spyx.nir.from_nir(graph, xt[:1, :1], dt=GRAPHS[key]["dt"])
        out, _ = spyx.nn.run(model, xt)
        out = np.asarray(jax.device_get(out))
    return np.swapaxes(out, 0, 1)


def run_rockpool(graph, x, key):
    import torch
    from rockpool.nn.modules import from_nir

    with quiet():
        model = from_nir(graph)
        with torch.no_grad():
            out = model(torch.as_tensor(x, dtype=torch.float32))
    out = out[0] if isinstance(out, tuple) else out
    return out.detach().numpy()


def run_snntorch_layers(graph, x, key):
    """snnTorch's importer fails on the Braille graphs (nirtorch cannot build the
    recurrent subgraph it makes): its own mapping of each node
    (``_nir_to_snntorch_module``: Linear, ``RSynaptic``, ``Synaptic``), chained by hand
    as a user must (benchmarks/discrete.py does the same)."""
    import torch
    from snntorch.import_nir import _nir_to_snntorch_module

    n = graph.nodes
    rec = [k for k in n if k.endswith("w_rec")]
    if not rec or "fc1" not in n:
        raise ValueError("not a flat Braille graph")
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
    with quiet():
        fc1, lif1 = _nir_to_snntorch_module(n["fc1"]), _nir_to_snntorch_module(sub)
        fc2, lif2 = _nir_to_snntorch_module(n["fc2"]), _nir_to_snntorch_module(n["lif2"])
    xt = torch.as_tensor(np.ascontiguousarray(np.swapaxes(x, 0, 1)), dtype=torch.float32)
    b, o = xt.shape[1], n["lif2"].v_threshold.shape[0]
    outs = []
    with torch.no_grad(), quiet():
        spk1, syn1, mem1 = (torch.zeros(b, h) for _ in range(3))
        syn2, mem2 = torch.zeros(b, o), torch.zeros(b, o)
        for t in range(xt.shape[0]):
            spk1, syn1, mem1 = lif1(fc1(xt[t]), spk1, syn1, mem1)
            spk2, syn2, mem2 = lif2(fc2(spk1), syn2, mem2)
            outs.append(spk2)
    return torch.stack(outs, 1).numpy()


RUN = {"snntorch": run_snntorch, "snntorch_layers": run_snntorch_layers,
       "norse": run_norse, "spyx": run_spyx, "sinabs": run_sinabs,
       "rockpool": run_rockpool}  # fmt: skip


def run_framework(fw: str, graph: nir.NIRGraph, x: np.ndarray, key: str) -> np.ndarray:
    """The framework's output raster ``(batch, steps, n)`` (spike counts per step)."""
    # importers rewrite the graph in place (Spyx and snnTorch fold recurrent layers
    # into subgraphs): give them a copy
    out = np.asarray(RUN[fw](copy.deepcopy(graph), x, key))
    b, steps = x.shape[:2]
    return np.rint(out.reshape(b, steps, -1)).astype(np.int64)


def agreement(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(% of identical raster cells, % of spikes common to both over their union)."""
    cells = 100.0 * float(np.mean(a == b))
    common = np.minimum(a, b).sum()
    union = np.maximum(a, b).sum()
    return cells, 100.0 * float(common / union) if union else 100.0
