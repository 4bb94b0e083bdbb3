"""The ``nirsim`` command line: ``info``, ``run`` and ``compare``.

Bad input gives one or two plain sentences on standard error and exit code 2; a
traceback only with ``--debug``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nirsim",
        description="Reference simulator for NIR graphs: inspect, simulate, compare.",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="nodes, shapes, parameters and validation verdict")
    info.add_argument("graph", help="a .nir file")
    info.add_argument(
        "--backend", default=None, help="a hardware model: print its mapping report"
    )
    info.add_argument("--dt", type=float, default=None, help="the chip's step (s)")
    info.set_defaults(module="_cli_info")

    run = sub.add_parser("run", help="simulate a graph on an input file")
    run.add_argument("graph", help="a .nir file")
    run.add_argument("--input", required=True, help="NIRGraphData file (IN.h5)")
    run.add_argument("--t-end", type=float, required=True, help="end time (s)")
    run.add_argument("--save-dt", type=float, default=None, help="state sampling step (s)")
    run.add_argument(
        "--backend",
        default="ideal",
        help="ideal (default), a discrete rule or a framework preset",
    )
    run.add_argument(
        "--dt", type=float, default=None, help="step of a discrete backend (s)"
    )
    run.add_argument("--reset", choices=("to-v-reset", "subtract"), default="to-v-reset")
    run.add_argument(
        "--spike-area",
        type=float,
        default=1.0,
        help="area of each spike impulse (dt of the export for graphs "
        "from discrete-time frameworks)",
    )
    run.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        default=None,
        help="what a discrete backend computes in (default: a preset's framework dtype, "
        "float32; float64 for euler/exponential)",
    )
    run.add_argument("--max-events", type=int, default=100_000, help="(ideal backends)")
    run.add_argument(
        "--max-spikes",
        type=int,
        default=10_000,
        help="spikes kept per node (ideal backends; discrete ones keep every spike)",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("-o", "--output", required=True, help="result file (OUT.h5)")
    run.set_defaults(module="_cli_run")

    cmp = sub.add_parser("compare", help="divergence between two result files")
    cmp.add_argument("reference", help="REF.h5")
    cmp.add_argument("other", help="OTHER.h5")
    cmp.add_argument("--json", action="store_true", help="print JSON instead of a table")
    cmp.add_argument("--plot", default=None, help="write a comparison figure (PNG)")
    cmp.add_argument(
        "--tolerance", type=float, default=None, help="spike matching tolerance (s)"
    )
    cmp.add_argument("--tau", type=float, default=None, help="van Rossum tau (s)")
    cmp.add_argument(
        "--graph",
        default=None,
        help="the .nir graph both files come from: membrane errors are normalised by "
        "each node's |v_threshold|, as compare(..., network=) does in Python",
    )
    cmp.set_defaults(module="_cli_compare")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from ._errors import NirsimError

    try:
        module = importlib.import_module(f"nirsim.{args.module}")
        return int(module.main(args) or 0)
    except NirsimError as e:
        if args.debug:
            traceback.print_exc()
        print(f"nirsim {args.command}: {e}", file=sys.stderr)
        return 2
    except (OSError, KeyError) as e:
        if args.debug:
            traceback.print_exc()
        print(f"nirsim {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
