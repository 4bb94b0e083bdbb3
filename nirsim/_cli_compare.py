"""``nirsim compare REF.h5 OTHER.h5 [--graph GRAPH.nir] [--json] [--plot FILE.png]
[--tolerance T] [--tau TAU]``: the divergence table (or JSON) between two result
files."""

from __future__ import annotations

from ._compare import compare
from ._errors import InputError
from ._network import load


def main(args) -> int:
    """Compare ``args.reference`` with ``args.other`` (NIRGraphData files) and print
    the report's table, or its JSON with ``--json``; ``--graph GRAPH.nir`` normalises
    membrane errors by each node's ``|v_threshold|``; ``--plot FILE`` also writes
    :func:`nirsim.plot.overview`. Mismatched files raise :class:`InputError`."""
    network = load(args.graph) if getattr(args, "graph", None) else None
    report = compare(
        args.reference, args.other, tolerance=args.tolerance, tau=args.tau, network=network
    )
    if args.plot:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            raise InputError("--plot needs matplotlib: pip install nirsim[plot]") from None
        fig = report.plot()
        try:
            fig.savefig(args.plot, dpi=120)
        finally:
            plt.close(fig)
    print(report.to_json() if args.json else report.table())
    return 0
