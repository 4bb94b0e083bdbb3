"""Writing ``IN.h5``: simulation inputs as a NIRGraphData file for ``nirsim run``.

The file holds one entry per Input node with one observable, ``current``
(``nir.TimeGriddedData``) or ``spikes`` (``nir.EventData``); see
``docs/semantics.md``, "Data files".
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import nir
import numpy as np

from ._errors import InputError


def save_inputs(path: str | os.PathLike, inputs: Mapping, *, t_max=None) -> None:
    """Write ``{input_node: Current | Spikes}`` to ``path`` (``IN.h5``).

    A :class:`~nirsim.Current` with values ``(steps, n)`` (or ``(batch, steps, n)``)
    is written for an Input of shape ``(n,)``; give ``(current, shape)`` for an Input
    of another shape. :class:`~nirsim.Spikes` need ``n_neurons`` (the Input's size,
    from the Spikes or given as ``(spikes, n_neurons)``); ``t_max`` defaults to the
    Spikes' own, else their last time.
    """
    from ._data import Current, Spikes

    if not isinstance(inputs, Mapping) or not inputs:
        raise InputError("save_inputs takes a non-empty dict {input_node: Current|Spikes}")
    nodes = {}
    for name, value in inputs.items():
        extra = None
        if isinstance(value, tuple) and len(value) == 2:
            value, extra = value
        if isinstance(value, Current):
            shape = tuple(extra) if extra is not None else tuple(value.values.shape[-1:])
            vs = tuple(value.values.shape)
            if (
                not (len(shape) + 1 <= len(vs) <= len(shape) + 2)
                or vs[-len(shape) :] != shape
            ):
                raise InputError(
                    f"input '{name}': Current values {tuple(value.values.shape)} do not "
                    f"fit (steps, *{shape}) or (batch, steps, *{shape})"
                )
            nodes[name] = nir.NIRNodeData({"current": value.to_nir(shape)})
        elif isinstance(value, Spikes):
            n = extra if extra is not None else value.n_neurons
            if n is None:
                idx = np.asarray(value.indices)
                n = int(idx.max()) + 1 if idx.size and idx.max() >= 0 else 1
            tm = t_max if t_max is not None else value.t_max
            if tm is None:
                t = np.asarray(value.times)
                finite = t[np.isfinite(t)]
                tm = float(finite.max()) if finite.size else 0.0
            nodes[name] = nir.NIRNodeData({"spikes": value.to_nir(int(n), float(tm))})
        else:
            raise InputError(
                f"input '{name}': expected nirsim.Current or nirsim.Spikes, not "
                f"{type(value).__name__}"
            )
    nir.write_data(os.fspath(path), nir.NIRGraphData(nodes))
