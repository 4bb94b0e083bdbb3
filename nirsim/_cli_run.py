"""``nirsim run GRAPH.nir --input IN.h5 --t-end T --save-dt DT -o OUT.h5``."""

from __future__ import annotations

import os
import sys
import time

import nir

from ._errors import InputError
from ._hdf5 import probe
from ._network import load
from ._simulate import simulate


def main(args) -> int:
    net = load(args.graph)
    if not os.path.exists(args.input):
        raise InputError(f"{args.input}: no such input file")
    probe(args.input, InputError)  # a corrupted file may crash libhdf5: look first
    try:
        data = nir.read_data(args.input)
    except Exception as e:  # h5py/nir errors on a malformed file
        raise InputError(f"{args.input}: not a NIRGraphData file ({e})") from None
    out_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(out_dir):
        raise InputError(f"{args.output}: folder {out_dir} does not exist")
    progress = (not args.no_progress) and sys.stderr.isatty()
    start = time.perf_counter()
    if progress:
        print(
            f"nirsim run: simulating {args.graph} to t = {args.t_end} s ...",
            file=sys.stderr,
            end="",
            flush=True,
        )
    trace = simulate(
        net,
        data,
        t_end=args.t_end,
        save_dt=args.save_dt,
        reset=args.reset.replace("-", "_"),
        spike_area=args.spike_area,
        solver=args.backend,
        dt=args.dt,
        max_events=args.max_events,
        max_spikes=args.max_spikes,
        dtype=args.dtype,
        progress=progress and args.backend in ("ideal", "closed_form", "diffrax"),
    )
    trace.save(args.output)
    if progress:
        print(f"simulated in {time.perf_counter() - start:.2f} s", file=sys.stderr)
    counts = {n: int(trace.spikes[n].count().sum()) for n in trace.spikes}
    summary = ", ".join(f"{n}: {c}" for n, c in counts.items()) or "no spiking nodes"
    print(f"wrote {args.output} ({trace.backend}; spikes {summary})")
    return 0
