"""Checkpoints: the current ``.nir`` graph plus the optimiser state, written so that
an interrupted run resumes exactly.

A checkpoint folder holds one sub-folder per saved step, ``step-00000042/`` with

* ``network.nir``: the trained graph (``Network.to_nir()`` via ``nir.write``), ready
  to deploy, readable by ``nirsim.load`` and ``nir.read``;
* ``state.npz``: every array leaf of the :class:`~nirsim.training.TrainState` (raw
  parameters, optimiser state, step), bit for bit, so a resumed run continues exactly
  as an uninterrupted one (the ``.nir`` file alone would lose the raw values'
  last bits through ``exp``/``log``);
* ``meta.json``: the step and whatever the caller adds (epoch, metrics).

Each step folder is written under a temporary name and renamed into place, then the
file ``latest`` (the name of the newest step folder) is replaced with
``os.replace``; both are atomic, so a run killed at any instant leaves ``latest``
naming a complete checkpoint. Older step folders beyond ``keep`` are removed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import jax
import nir
import numpy as np

from .._errors import InputError
from .._network import Network, load
from ._step import TrainState


def save_checkpoint(
    folder: str | os.PathLike,
    network: Network,
    state: TrainState,
    *,
    meta: dict | None = None,
    keep: int = 2,
) -> str:
    """Write a checkpoint of ``state`` (and ``network``, the graph it describes) into
    ``folder``; returns the new step folder's path."""
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    step = int(state.step)
    name = f"step-{step:08d}"
    final = os.path.join(folder, name)
    tmp = tempfile.mkdtemp(prefix=f".{name}.", dir=folder)
    try:
        nir.write(os.path.join(tmp, "network.nir"), network.to_nir())
        leaves = jax.tree.leaves(state)
        np.savez(
            os.path.join(tmp, "state.npz"),
            **{f"leaf{k:05d}": np.asarray(x) for k, x in enumerate(leaves)},
        )
        with open(os.path.join(tmp, "meta.json"), "w") as f:
            json.dump({"step": step, **(meta or {})}, f)
        if os.path.exists(final):  # the same step saved again: replace it
            shutil.rmtree(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fd, ptr = tempfile.mkstemp(prefix=".latest.", dir=folder)
    with os.fdopen(fd, "w") as f:
        f.write(name)
    os.replace(ptr, os.path.join(folder, "latest"))
    steps = sorted(d for d in os.listdir(folder) if d.startswith("step-"))
    for old in steps[: max(0, len(steps) - keep)]:
        if old != name:
            shutil.rmtree(os.path.join(folder, old), ignore_errors=True)
    return final


def latest_checkpoint(folder: str | os.PathLike) -> str | None:
    """The newest complete step folder in ``folder``, or None."""
    ptr = os.path.join(os.fspath(folder), "latest")
    if not os.path.exists(ptr):
        return None
    with open(ptr) as f:
        return os.path.join(os.fspath(folder), f.read().strip())


def load_checkpoint(
    path: str | os.PathLike, like: TrainState
) -> tuple[TrainState, Network, dict]:
    """Read a step folder (or a checkpoint folder: its ``latest``) back.

    ``like`` is a state of the same structure (``trainer.init()``): it gives the
    pytree the saved leaves fill. Returns ``(state, network, meta)``.
    """
    path = os.fspath(path)
    if os.path.exists(os.path.join(path, "latest")):
        path = latest_checkpoint(path)
    if not os.path.exists(os.path.join(path, "state.npz")):
        raise InputError(f"no checkpoint at {path!r} (expected state.npz inside)")
    leaves, treedef = jax.tree.flatten(like)
    with np.load(os.path.join(path, "state.npz")) as z:
        saved = [z[f"leaf{k:05d}"] for k in range(len(z.files))]
    if len(saved) != len(leaves) or any(
        np.shape(a) != np.shape(b) for a, b in zip(saved, leaves, strict=True)
    ):
        raise InputError(
            f"checkpoint {path!r} does not match this trainer's parameters and optimiser"
        )
    typed = [
        jax.numpy.asarray(a, dtype=np.asarray(b).dtype)
        for a, b in zip(saved, leaves, strict=True)
    ]
    state = jax.tree.unflatten(treedef, typed)
    with open(os.path.join(path, "meta.json")) as f:
        meta = json.load(f)
    return state, load(os.path.join(path, "network.nir")), meta
