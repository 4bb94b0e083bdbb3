"""A jit-compiled optax train step on a Network's trainable parameters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from .._network import Network
from ._params import ParameterFilter, apply_params, init_params

LossFn = Callable[[Network, Any], tuple[jax.Array, dict[str, jax.Array]]]


class TrainState(eqx.Module):
    """What changes during training: the raw trainable parameters
    (:func:`~nirsim.training.init_params`), the optimiser's state and the number of
    steps taken."""

    params: dict[str, dict[str, jax.Array]]
    opt_state: Any
    step: jax.Array


class Trainer(eqx.Module):
    """Trains ``network``'s parameters chosen by ``filter`` with ``optimizer``.

    ``loss_fn(network, batch) -> (loss, metrics)`` is any differentiable function of
    the Network (typically: simulate, read the trace out with
    :mod:`nirsim.training`'s readouts, compare with the batch's labels); ``metrics``
    is a dict of scalars reported with the loss. The solver is chosen inside
    ``loss_fn``, so the same Trainer trains with surrogate gradients (a discrete
    solver) or exact ones (the ideal solver, issue 9).

    :meth:`step` is one ``jax.jit``-compiled update (compiled once per batch shape)::

        trainer = Trainer(net, loss_fn, optax.adam(1e-2))
        state = trainer.init()
        state, metrics = trainer.step(state, batch)
        trained = trainer.network(state)
    """

    template: Network
    loss_fn: LossFn = eqx.field(static=True)
    optimizer: optax.GradientTransformation = eqx.field(static=True)
    filter: ParameterFilter = eqx.field(static=True)

    def __init__(
        self,
        network: Network,
        loss_fn: LossFn,
        optimizer: optax.GradientTransformation,
        filter: ParameterFilter | None = None,
    ):
        self.template = network
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.filter = ParameterFilter() if filter is None else filter

    def init(self) -> TrainState:
        """The starting state: the template's parameters, a fresh optimiser state."""
        params = init_params(self.template, self.filter)
        return TrainState(params, self.optimizer.init(params), jnp.asarray(0))

    def network(self, state: TrainState) -> Network:
        """The Network with ``state``'s parameters (constrained values)."""
        return apply_params(self.template, state.params)

    def loss(self, params, batch):
        return self.loss_fn(apply_params(self.template, params), batch)

    @eqx.filter_jit
    def step(self, state: TrainState, batch) -> tuple[TrainState, dict[str, jax.Array]]:
        """One optimiser update on ``batch``; returns the new state and the batch's
        ``{"loss": ..., **metrics}`` (before the update)."""
        (loss, metrics), grads = jax.value_and_grad(self.loss, has_aux=True)(
            state.params, batch
        )
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return TrainState(params, opt_state, state.step + 1), {"loss": loss, **metrics}

    @eqx.filter_jit
    def evaluate(self, state: TrainState, batch) -> dict[str, jax.Array]:
        """``{"loss": ..., **metrics}`` on ``batch`` without updating."""
        loss, metrics = self.loss(state.params, batch)
        return {"loss": loss, **metrics}
