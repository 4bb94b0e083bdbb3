"""An example training loop: minibatches, a progress bar, metrics per epoch,
checkpoints, and resuming an interrupted run."""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._errors import InputError
from .._network import Network
from ._checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from ._step import Trainer, TrainState


class FitResult(NamedTuple):
    """What :func:`fit` returns: the final state, the trained Network and one dict of
    metrics per finished epoch (``epoch``, ``seconds``, the train metrics averaged over
    the epoch's batches, and ``eval_*`` metrics when evaluation data were given)."""

    state: TrainState
    network: Network
    history: list[dict[str, Any]]


def batch_indices(n: int, batch_size: int, step: int, seed: int) -> np.ndarray:
    """The samples of global step ``step``: epoch ``e = step // (n // batch_size)``
    shuffles ``range(n)`` with ``numpy.random.default_rng([seed, e])`` and takes the
    step's slice (the last incomplete batch of an epoch is dropped, so every batch has
    one shape and the step compiles once). A function of the step alone, so a resumed
    run sees the batches an uninterrupted one would."""
    per_epoch = n // batch_size
    epoch, k = divmod(step, per_epoch)
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    return perm[k * batch_size : (k + 1) * batch_size]


def fit(
    trainer: Trainer,
    data,
    *,
    epochs: int,
    batch_size: int,
    seed: int = 0,
    eval_data=None,
    checkpoint_dir: str | None = None,
    checkpoint_every: int | None = None,
    max_steps: int | None = None,
    progress: bool = True,
    state: TrainState | None = None,
) -> FitResult:
    """Train for ``epochs`` passes over ``data``.

    Args:
        trainer: the :class:`Trainer` (network, loss, optimiser, parameter filter).
        data: a pytree of arrays with the samples on the leading axis (e.g.
            ``(features, labels)``); a batch is the same pytree with ``batch_size``
            rows, passed to the loss as is.
        epochs, batch_size, seed: the schedule (see :func:`batch_indices`).
        eval_data: evaluated (one batch, :meth:`Trainer.evaluate`) after each epoch.
        checkpoint_dir: where to write checkpoints (after each epoch, every
            ``checkpoint_every`` steps, and at the end); if it already holds one, the
            run resumes from it.
        max_steps: stop after this global step (an interruption, for tests).
        progress: show a tqdm bar with the running loss and metrics.
        state: start from this state instead of ``trainer.init()``.

    Returns:
        :class:`FitResult`.
    """
    leaves = jax.tree.leaves(data)
    n = int(np.shape(leaves[0])[0])
    if batch_size < 1 or n < batch_size:
        raise InputError(f"batch_size must be in [1, {n}] for {n} samples: {batch_size}")
    per_epoch = n // batch_size
    total = epochs * per_epoch
    state = trainer.init() if state is None else state
    history: list[dict[str, Any]] = []
    if checkpoint_dir is not None and latest_checkpoint(checkpoint_dir) is not None:
        state, _, meta = load_checkpoint(checkpoint_dir, state)
        history = list(meta.get("history", []))
    start = int(state.step)
    stop = total if max_steps is None else min(total, int(max_steps))

    def save():
        if checkpoint_dir is not None:
            meta = {"history": history, "epoch": int(state.step) // per_epoch}
            save_checkpoint(checkpoint_dir, trainer.network(state), state, meta=meta)

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=start, unit="step", desc="training")
    sums: dict[str, float] = {}
    count = 0
    t0 = time.perf_counter()
    try:
        for step in range(start, stop):
            idx = batch_indices(n, batch_size, step, seed)
            batch = jax.tree.map(lambda a, i=idx: jnp.asarray(np.asarray(a)[i]), data)
            state, metrics = trainer.step(state, batch)
            values = {k: float(v) for k, v in metrics.items()}
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix({k: f"{v:.4g}" for k, v in values.items()}, refresh=False)
            done = step + 1
            if done % per_epoch == 0:
                record = {"epoch": done // per_epoch, "seconds": time.perf_counter() - t0}
                record.update({k: v / count for k, v in sums.items()})
                if eval_data is not None:
                    ev = trainer.evaluate(state, jax.tree.map(jnp.asarray, eval_data))
                    record.update({f"eval_{k}": float(v) for k, v in ev.items()})
                history.append(record)
                if bar is not None:
                    bar.write(
                        " ".join(
                            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                            for k, v in record.items()
                        )
                    )
                sums, count = {}, 0
                save()
                t0 = time.perf_counter()
            elif checkpoint_every and done % checkpoint_every == 0:
                save()
        if stop > start and stop % per_epoch != 0:
            save()
    finally:
        if bar is not None:
            bar.close()
    return FitResult(state, trainer.network(state), history)
