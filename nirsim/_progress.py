"""A progress bar for long simulations (``nirsim run``), fed from inside jit.

The event loop calls :func:`tick` with the simulated time through
``jax.debug.callback``; the bar shows the least advanced batch element.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np

_bar = None
_last = 0.0


def tick(t) -> None:
    global _last
    if _bar is None:
        return
    now = time.monotonic()
    if now - _last < 0.1:
        return
    _last = now
    value = float(np.min(np.asarray(t)))
    _bar.n = min(value, _bar.total)
    _bar.refresh()


@contextlib.contextmanager
def bar(t_end: float, enabled: bool):
    """Show a tqdm bar from 0 to ``t_end`` seconds of model time while active."""
    global _bar
    if not enabled:
        yield
        return
    from tqdm import tqdm

    _bar = tqdm(
        total=float(t_end),
        unit="s",
        desc="model time",
        leave=False,
        bar_format="{l_bar}{bar}| {n:.4g}/{total:.4g} s [{elapsed}]",
    )
    try:
        yield
    finally:
        _bar.close()
        _bar = None
