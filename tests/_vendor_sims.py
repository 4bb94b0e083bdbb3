"""The chip vendors' own simulators, for cross-checks (``tests/test_vendor_sims.py``)
and the speed comparison (``benchmarks/hardware.py``); nothing here is imported by
nirsim. Each loader returns ``None`` when the package is missing.

* **xylosim** (PyPI, SynSense's C++ model of the Xylo SNN core): ``xylosim.v1`` and
  ``xylosim.v2`` ``XyloLayer``;
* **Rockpool's Xylo simulator**: ``rockpool.devices.xylo.syns61201.XyloSim`` (Xylo
  Audio 2, a v2 core), which runs xylosim's ``v2.XyloLayer``. Rockpool 3.1's
  ``rockpool.devices.xylo`` package imports ``samna`` (the hardware driver) in its
  ``__init__``; the simulator modules do not need it, so they are loaded here
  without that ``__init__`` when samna is absent;
* **Sinabs' Speck model**: sinabs' ``IAFSqueeze`` layers with the integer weights
  and thresholds of the chip (what sinabs' dynapcnn back-end builds after
  ``discretize``), stepped by sinabs on the same rasters.

Xylo networks here are the NIR graphs nirsim's :class:`~nirsim.hardware_models.Xylo`
holds: Input -> Linear -> hidden CubaLIF (with a recurrent Linear) -> Linear ->
output CubaLIF -> Output; ``Xylo.specification`` gives the chip's integers.
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

import nir
import numpy as np
from _peers import quiet  # tests/ is on sys.path (pytest, or benchmarks/hardware.py)


# ------------------------------------------------------------------ loaders
def xylosim(version: int):
    """``xylosim.v1`` or ``xylosim.v2``, or None."""
    try:
        return importlib.import_module(f"xylosim.v{version}")
    except Exception:  # noqa: BLE001  (a broken install counts as absent)
        return None


def rockpool_xylo_sim():
    """Rockpool's ``XyloSim`` for Xylo Audio 2 (syns61201), or None."""
    try:
        with quiet():
            import rockpool
            import rockpool.devices  # noqa: F401

            try:
                import samna  # noqa: F401
            except ImportError:
                base = Path(rockpool.__file__).parent / "devices" / "xylo"
                for name, sub in (
                    ("rockpool.devices.xylo", base),
                    ("rockpool.devices.xylo.syns61300", base / "syns61300"),
                    ("rockpool.devices.xylo.syns61201", base / "syns61201"),
                ):
                    if name not in sys.modules:
                        module = types.ModuleType(name)
                        module.__path__ = [str(sub)]
                        sys.modules[name] = module
            return importlib.import_module(
                "rockpool.devices.xylo.syns61201.xylo_sim"
            ).XyloSim
    except Exception:  # noqa: BLE001
        return None


def sinabs():
    try:
        with quiet():
            return importlib.import_module("sinabs")
    except Exception:  # noqa: BLE001
        return None


# ------------------------------------------------------------------ Xylo
def random_xylo_graph(seed: int, n_in=4, n_hidden=12, n_out=3, dt=1e-3, bias=False):
    """A random NIR graph Xylo holds: time constants ``dt 2^k`` (so ``dash = k``
    exactly, 1..4 per neuron), Gaussian weights, thresholds that keep the hidden
    population active without driving ``i_syn`` or ``v`` to the int16 limits (where
    nirsim's one saturating add per step departs from the chip's add per event, a
    documented deviation); with ``bias`` a random ``v_leak`` (a v2 core's bias)."""
    rng = np.random.default_rng(seed)

    def cuba(n):
        return nir.CubaLIF(
            tau_syn=dt * 2.0 ** rng.integers(1, 5, n),
            tau_mem=dt * 2.0 ** rng.integers(1, 5, n),
            r=np.ones(n),
            v_leak=rng.normal(0, 0.05, n) if bias else np.zeros(n),
            v_threshold=rng.uniform(3.0, 15.0, n),
            v_reset=np.zeros(n),
            w_in=np.ones(n),
        )

    nodes = {
        "input": nir.Input(input_type=np.array([n_in])),
        "w_in": nir.Linear(weight=rng.normal(0.6, 0.5, (n_hidden, n_in))),
        "hidden": cuba(n_hidden),
        "w_rec": nir.Linear(weight=rng.normal(-0.05, 0.3, (n_hidden, n_hidden))),
        "w_out": nir.Linear(weight=rng.normal(0.3, 0.4, (n_out, n_hidden))),
        "readout": cuba(n_out),
        "output": nir.Output(output_type=np.array([n_out])),
    }
    edges = [
        ("input", "w_in"), ("w_in", "hidden"), ("hidden", "w_rec"), ("w_rec", "hidden"),
        ("hidden", "w_out"), ("w_out", "readout"), ("readout", "output"),
    ]  # fmt: skip
    return nir.NIRGraph(nodes=nodes, edges=edges)


def random_raster(seed: int, steps: int, n_in: int, rate=0.2, max_count=3):
    """Input event counts ``(steps, n_in)``: Bernoulli(rate) cells with 1..max_count
    events."""
    rng = np.random.default_rng(seed)
    on = rng.random((steps, n_in)) < rate
    return (on * rng.integers(1, max_count + 1, (steps, n_in))).astype(np.int64)


def _synapses(module, w: np.ndarray):
    """xylosim synapse lists: per presynaptic row, (target, synapse 0, weight)."""
    return [
        [
            module.XyloSynapse(int(post), 0, int(w[pre, post]))
            for post in np.flatnonzero(row)
        ]
        for pre, row in enumerate(w)
    ]


class XylosimLayer:
    """A xylosim ``XyloLayer`` and its synapse objects: the layer keeps references to
    them, not copies, so they must outlive it (Rockpool keeps them on its module)."""

    def __init__(self, module, spec: dict):
        self.kwargs = _layer_kwargs(module, spec)
        self.layer = module.XyloLayer(**self.kwargs)


def _layer_kwargs(module, spec: dict) -> dict:
    """``XyloLayer`` arguments of ``xylosim.v1`` or ``.v2`` from
    ``Xylo.specification``."""
    n_hid = spec["weights_rec"].shape[0]
    common = dict(
        synapses_in=_synapses(module, spec["weights_in"]),
        synapses_rec=_synapses(module, spec["weights_rec"]),
        synapses_out=_synapses(module, spec["weights_out"]),
        aliases=[[] for _ in range(n_hid)],
        threshold=spec["threshold"].tolist(),
        threshold_out=spec["threshold_out"].tolist(),
        weight_shift_inp=spec["weight_shift_in"],
        weight_shift_rec=spec["weight_shift_rec"],
        weight_shift_out=spec["weight_shift_out"],
        dash_mem=spec["dash_mem"].tolist(),
        dash_mem_out=spec["dash_mem_out"].tolist(),
        dash_syns=[[int(d), 0] for d in spec["dash_syn"]],
        dash_syns_out=[[int(d)] for d in spec["dash_syn_out"]],
        name="nirsim-cross-check",
    )
    if module.__name__.endswith("v2"):
        has_bias = bool(np.any(spec["bias"]) or np.any(spec["bias_out"]))
        common |= dict(
            has_bias=has_bias,
            bias=spec["bias"].tolist(),
            bias_out=spec["bias_out"].tolist(),
        )
    return common


def run_xylosim(held: XylosimLayer, raster: np.ndarray) -> dict[str, np.ndarray]:
    """Evolve the layer from rest on ``raster (steps, inputs)``: hidden and output
    spike counts, hidden and output ``v`` and ``i_syn``, each ``(steps, n)``."""
    layer = held.layer
    layer.reset_all()
    out = np.asarray(layer.evolve(raster.tolist()))
    return {
        "output": out,
        "hidden": np.asarray(layer.rec_recurrent_spikes),
        "v": np.asarray(layer.rec_v_mem).T,
        "i_syn": np.asarray(layer.rec_i_syn).T,
        "v_out": np.asarray(layer.rec_v_mem_out).T,
        "i_syn_out": np.asarray(layer.rec_i_syn_out).T,
    }


def rockpool_module(XyloSim, spec: dict, dt: float):
    """Rockpool's ``XyloSim.from_specification`` on ``Xylo.specification``."""
    keys = ("weights_in", "weights_rec", "weights_out", "dash_mem", "dash_syn",
            "threshold", "bias", "dash_mem_out", "dash_syn_out", "threshold_out",
            "bias_out")  # fmt: skip
    args = {k: spec[k] for k in keys}
    args["weight_shift_in"] = spec["weight_shift_in"]
    args["weight_shift_rec"] = spec["weight_shift_rec"]
    args["weight_shift_out"] = spec["weight_shift_out"]
    with quiet():
        return XyloSim.from_specification(**args, dt=dt)


def run_rockpool(module, raster: np.ndarray) -> dict[str, np.ndarray]:
    """Rockpool's ``XyloSim`` on ``raster``: output and hidden spike counts, ``v``,
    ``i_syn``."""
    module.reset_state()
    with quiet():
        out, _, rec = module(raster, record=True)
    return {
        "output": np.asarray(out),
        "hidden": np.asarray(rec["Spikes"]),
        "v": np.asarray(rec["Vmem"]),
        "i_syn": np.asarray(rec["Isyn"]),
        "v_out": np.asarray(rec["Vmem_out"]),
        "i_syn_out": np.asarray(rec["Isyn_out"]),
    }


def run_nirsim_xylo(net, model, raster: np.ndarray) -> dict[str, np.ndarray]:
    """nirsim's Xylo model (``raw=True``) on ``raster``, in the same layout (nodes
    concatenated in network order; rasters ``(steps, n)`` or ``(batch, steps, n)``)."""
    import nirsim

    dt = float(model.dt)
    steps = raster.shape[-2]
    tr = nirsim.simulate(
        net, nirsim.Current(raster.astype(float), dt), t_end=steps * dt, save_dt=dt,
        solver=model,
    )  # fmt: skip
    outs = model.outputs(net)
    hid = [n for n in net.order if n in tr.spikes and n not in outs]
    out = [n for n in net.order if n in outs]
    cat = lambda xs: np.concatenate([np.asarray(x) for x in xs], axis=-1)
    return {
        "output": cat(tr.spikes[n].counts for n in out),
        "hidden": cat(tr.spikes[n].counts for n in hid),
        "v": cat(tr.states[n]["v"] for n in hid),
        "i_syn": cat(tr.states[n]["i_syn"] for n in hid),
        "v_out": cat(tr.states[n]["v"] for n in out),
        "i_syn_out": cat(tr.states[n]["i_syn"] for n in out),
    }


# ------------------------------------------------------------------ Speck
def random_speck_graph(seed: int, channels=(2, 4, 4), hw=16, n_out=5):
    """A random NIR graph Speck holds: Conv2d(3x3, pad 1) -> IF -> SumPool2d(2) ->
    Conv2d(3x3, pad 1) -> IF -> SumPool2d(2) -> Flatten -> Linear -> IF."""
    rng = np.random.default_rng(seed)
    c0, c1, c2 = channels

    def conv(cin, cout, size):
        return nir.Conv2d(
            input_shape=(size, size), weight=rng.normal(0.1, 0.3, (cout, cin, 3, 3)),
            stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(cout),
        )  # fmt: skip

    def if_(shape, vth):
        return nir.IF(r=np.ones(shape), v_threshold=np.full(shape, vth))

    flat = c2 * (hw // 4) ** 2
    nodes = {
        "input": nir.Input(input_type=np.array([c0, hw, hw])),
        "conv1": conv(c0, c1, hw),
        "if1": if_((c1, hw, hw), 1.0),
        "pool1": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                               padding=np.array([0, 0])),
        "conv2": conv(c1, c2, hw // 2),
        "if2": if_((c2, hw // 2, hw // 2), 1.0),
        "pool2": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                               padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([c2, hw // 4, hw // 4])},
                            start_dim=0, end_dim=-1),
        "fc": nir.Linear(weight=rng.normal(0.05, 0.1, (n_out, flat))),
        "if3": if_((n_out,), 1.0),
        "output": nir.Output(output_type=np.array([n_out])),
    }  # fmt: skip
    order = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(order[:-1], order[1:], strict=True)))


def sinabs_speck(net, model):
    """Sinabs' Speck model of ``net``: torch layers with the chip's integer weights
    and biases (``model.rewrite``) and sinabs ``IAF`` layers with the integer
    thresholds, multi-spike, reset by subtraction and the lower clamp at
    ``-threshold`` (what sinabs' dynapcnn back-end builds after ``discretize``).
    Returns ``f(raster (batch, steps, *input)) -> {IF node: counts (batch, steps,
    *shape)}``."""
    import torch
    from sinabs.layers import IAF, SumPool2d

    from nirsim.primitives import (
        IF,
        Conv2d,
        Flatten,
        Input,
        Linear,
        Output,
        SumPool2d as NSumPool2d,
    )

    layers = []  # (node, torch module or None, is IF)
    for name in net.order:
        p = net.nodes[name]
        if isinstance(p, Input | Output):
            continue
        q = model.rewrite(net, name, p)
        if isinstance(q, Conv2d):
            w = torch.tensor(np.asarray(q.weight), dtype=torch.float64)
            conv = torch.nn.Conv2d(
                w.shape[1], w.shape[0], w.shape[2:], stride=tuple(q.stride),
                padding=tuple(q.padding), bias=True, dtype=torch.float64,
            )  # fmt: skip
            conv.weight.data = w
            conv.bias.data = torch.tensor(np.asarray(q.bias), dtype=torch.float64)
            layers.append((name, conv, False))
        elif isinstance(q, Linear):
            w = torch.tensor(np.asarray(q.weight), dtype=torch.float64)
            lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=False, dtype=torch.float64)
            lin.weight.data = w
            layers.append((name, lin, False))
        elif isinstance(q, NSumPool2d):
            layers.append((name, SumPool2d(tuple(int(k) for k in q.kernel_size)), False))
        elif isinstance(q, Flatten):
            layers.append((name, torch.nn.Flatten(), False))
        elif isinstance(q, IF):
            thr = float(
                np.round(np.asarray(p.v_threshold).reshape(-1)[0] * model.scale(net, name))
            )
            thr = min(max(thr, 1.0), 32767.0)
            layers.append((name, IAF(spike_threshold=thr, min_v_mem=-thr), True))
        else:
            raise TypeError(f"no sinabs layer for {type(q).__name__}")

    def run(raster: np.ndarray) -> dict[str, np.ndarray]:
        x = torch.tensor(raster, dtype=torch.float64)
        b, t = x.shape[:2]
        out = {}
        with torch.no_grad(), quiet():
            for name, layer, spiking in layers:
                if spiking:
                    layer.reset_states()
                    x = layer(x).double()  # IAF steps over the time axis
                    out[name] = x.numpy().copy()
                else:
                    y = layer(x.reshape((b * t,) + tuple(x.shape[2:])))
                    x = y.reshape((b, t) + tuple(y.shape[1:]))
        return out

    return run


def run_nirsim_speck(net, model, raster: np.ndarray) -> dict[str, np.ndarray]:
    """nirsim's Speck model on ``raster (batch, steps, *input)``: spike counts per IF
    node."""
    import nirsim

    dt = float(model.dt)
    steps = raster.shape[1]
    tr = nirsim.simulate(
        net, nirsim.Current(raster.astype(float), dt), t_end=steps * dt, solver=model
    )
    return {n: np.asarray(tr.spikes[n].counts) for n in tr.spikes}
