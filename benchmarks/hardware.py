"""Benchmark of nirsim's chip models against the vendors' own simulators.

Prints a Markdown table of samples per second of each chip model on a graph it can
hold, at batch 1 and 64 (median of repeated calls after a warm-up call; the first
call, compile included, beside it), and of the vendor's simulator on the same graph
and inputs in the same run where it is installed, with a bit-for-bit check of the
outputs:

* a random recurrent CubaLIF network, 16 inputs -> 64 hidden (recurrent) -> 8
  outputs, dt = 1 ms, 200 steps, Bernoulli(0.05) input events, with parameters
  every chip of this kind can hold (tau_syn = 4 dt, tau_mem = 8 dt, ``r =
  tau_mem/dt``, ``w_in = tau_syn/dt``, one value per layer): ``loihi2``,
  ``spinnaker2``, ``xylo`` (against Rockpool's ``XyloSim`` and ``xylosim.v2``
  directly, both single-sample: a batch is a loop) and ``brainscales2`` (events at
  the grid times, exact solver; default mismatch, noise and read-out);
* a random spiking CNN, 2x16x16 input -> Conv 3x3 (4) -> IF -> SumPool 2 -> Conv
  3x3 (4) -> IF -> SumPool 2 -> Linear (5) -> IF, 30 steps, Bernoulli(0.1) input:
  ``speck`` against Sinabs' Speck model (sinabs ``IAF`` layers with the chip's
  integers, batched by torch).

Lava (Loihi 2), py-spinnaker2 and hxtorch (BrainScaleS-2) do not install here:
those rows have no vendor column.

nirsim runs with jax's x64 mode on (its default; the digital chips compute in int32
and the read-out in float64 either way). The vendor simulators run as their users
run them: torch on its default threads, xylosim single-threaded C++.

Run: ``python benchmarks/hardware.py [--quick]`` (about two minutes on 2 idle
cores; ``--quick``: 3 calls per cell, batch 1 and 8) with ``pip install -e
".[peers]"`` for the vendor simulators (one that is not installed is left out with
a note). Results go in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
from _common import machine, table  # noqa: E402

DT = 1e-3  # s
STEPS = 200
CNN_STEPS = 30


def cuba_graph(seed=0, n_in=16, n_hidden=64, n_out=8):
    """The recurrent CubaLIF graph every CubaLIF chip here can hold."""
    import nir

    rng = np.random.default_rng(seed)

    def cuba(n):
        tau_syn, tau_mem = 4 * DT, 8 * DT
        return nir.CubaLIF(
            tau_syn=np.full(n, tau_syn), tau_mem=np.full(n, tau_mem),
            r=np.full(n, tau_mem / DT), v_leak=np.zeros(n), v_threshold=np.ones(n),
            v_reset=np.zeros(n), w_in=np.full(n, tau_syn / DT),
        )  # fmt: skip

    nodes = {
        "input": nir.Input(input_type=np.array([n_in])),
        "w_in": nir.Linear(weight=rng.normal(0.05, 0.05, (n_hidden, n_in))),
        "hidden": cuba(n_hidden),
        "w_rec": nir.Linear(weight=rng.normal(-0.005, 0.03, (n_hidden, n_hidden))),
        "w_out": nir.Linear(weight=rng.normal(0.03, 0.03, (n_out, n_hidden))),
        "readout": cuba(n_out),
        "output": nir.Output(output_type=np.array([n_out])),
    }
    edges = [
        ("input", "w_in"), ("w_in", "hidden"), ("hidden", "w_rec"), ("w_rec", "hidden"),
        ("hidden", "w_out"), ("w_out", "readout"), ("readout", "output"),
    ]  # fmt: skip
    return nir.NIRGraph(nodes=nodes, edges=edges)


def median_time(fn, repeats, budget=20.0):
    """(first call s, median of ``repeats`` calls s); ``fn`` returns host arrays.
    Slow cells get fewer calls (at least 2), about ``budget`` seconds in all."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    fn()
    times = [time.perf_counter() - t0]
    for _ in range(min(repeats, max(2, int(budget / times[0]))) - 1):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return first, statistics.median(times)


def nirsim_runner(net, model, inputs, steps, out_node):
    """A function running ``model`` on ``inputs`` for ``steps`` steps of ``DT`` and
    returning the output node's spike counts per step (host numpy; per neuron for
    the continuous-time BrainScaleS-2)."""
    import nirsim

    def run():
        tr = nirsim.simulate(net, inputs, t_end=steps * DT, solver=model)
        if tr.dt is None:
            return tr.spike_counts(out_node)
        return np.asarray(tr.spikes[out_node].counts)

    return run


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 calls, batch 1 and 8")
    args = ap.parse_args(argv)
    repeats = 3 if args.quick else 7
    batches = (1, 8) if args.quick else (1, 64)

    import _vendor_sims as V

    import nirsim
    from nirsim.hardware_models import BrainScaleS2, Loihi2, Speck, SpiNNaker2, Xylo

    notes = []
    rows = []
    cuba = nirsim.load(cuba_graph())
    cnn = nirsim.load(V.random_speck_graph(0))
    rng = np.random.default_rng(1)
    B = max(batches)
    raster = (rng.random((B, STEPS, 16)) < 0.05).astype(np.int64)
    image = (rng.random((B, CNN_STEPS, 2, 16, 16)) < 0.1).astype(np.float64)

    XyloSim = V.rockpool_xylo_sim()
    v2 = V.xylosim(2)
    sin = V.sinabs()
    for name, mod in (("Rockpool's XyloSim", XyloSim), ("xylosim", v2), ("sinabs", sin)):
        if mod is None:
            notes.append(f"{name} is not installed: its column is empty")

    def cell(rate):
        return f"{rate:,.0f}"

    chips = [
        ("loihi2", Loihi2(DT), cuba, "readout", None),
        ("spinnaker2", SpiNNaker2(DT, scale_weights=True), cuba, "readout", None),
        ("xylo", Xylo(DT), cuba, "readout", "xylo"),
        ("brainscales2", BrainScaleS2(), cuba, "readout", None),
        ("speck", Speck(DT), cnn, "if3", "speck"),
    ]
    for chip, model, net, out, vendor in chips:
        for b in batches:
            if chip == "speck":
                x = image[:b]
                inputs = nirsim.Current(x if b > 1 else x[0], DT)
                steps = CNN_STEPS
            elif chip == "brainscales2":
                x = raster[:b]
                ev = [np.argwhere(r) for r in x]
                k = max(len(e) for e in ev)
                times = np.full((b, k), np.inf)
                idx = np.full((b, k), -1)
                for i, e in enumerate(ev):
                    times[i, : len(e)] = e[:, 0] * DT
                    idx[i, : len(e)] = e[:, 1]
                inputs = nirsim.Spikes(
                    times if b > 1 else times[0], idx if b > 1 else idx[0], n_neurons=16
                )
                steps = STEPS
            else:
                x = raster[:b]
                inputs = nirsim.Current((x if b > 1 else x[0]).astype(float), DT)
                steps = STEPS
            run = nirsim_runner(net, model, inputs, steps, out)
            first, med = median_time(run, repeats)
            got = run()
            spikes = int(got.sum())
            row = [chip, b, cell(b / med), f"{first:.2f}", spikes]
            vendor_cells = ["-", "-", "-"]
            if vendor == "xylo":
                spec = Xylo(DT, raw=True).specification(net)
                xs = [x[i] for i in range(b)]
                for j, (label, mod) in enumerate(
                    (("Rockpool XyloSim", XyloSim), ("xylosim.v2", v2))
                ):
                    if mod is None:
                        continue
                    if label.startswith("Rockpool"):
                        sim = V.rockpool_module(XyloSim, spec, DT)
                        one = lambda r, sim=sim: V.run_rockpool(sim, r)["output"]
                    else:
                        held = V.XylosimLayer(v2, spec)
                        one = lambda r, held=held: V.run_xylosim(held, r)["output"]
                    vfirst, vmed = median_time(
                        lambda one=one, xs=xs: [one(r) for r in xs], repeats
                    )
                    ref = np.stack([one(r) for r in xs])
                    same = np.array_equal(ref.reshape(got.shape), got)
                    vendor_cells[j] = f"{label}: {cell(b / vmed)} ({vmed / med:.2g}x)"
                    vendor_cells[2] = (
                        "yes" if same and vendor_cells[2] in ("-", "yes") else "NO"
                    )
            elif vendor == "speck" and sin is not None:
                ref_run = V.sinabs_speck(net, Speck(DT))
                xx = x if x.ndim == 5 else x[None]
                vfirst, vmed = median_time(lambda f=ref_run, a=xx: f(a), repeats)
                ref = ref_run(xx)["if3"]
                same = np.array_equal(ref.reshape(got.shape), got)
                vendor_cells[0] = f"Sinabs IAF: {cell(b / vmed)} ({vmed / med:.2g}x)"
                vendor_cells[2] = "yes" if same else "NO"
            rows.append(row + vendor_cells)
            print("  ", rows[-1], flush=True)

    header = [
        "chip model", "batch", "nirsim samples/s", "first call (s)", "output spikes",
        "vendor simulator samples/s (nirsim speed-up)", "second vendor simulator",
        "bit for bit",
    ]  # fmt: skip
    print()
    print(f"machine: {machine()}")
    for n in notes:
        print(f"note: {n}")
    print()
    print(table(f"Chip models, {STEPS} steps (CNN: {CNN_STEPS})", header, rows))


if __name__ == "__main__":
    main()
