"""Which parameters of a Network train, and how they stay valid.

A :class:`ParameterFilter` picks parameters by kind; :func:`init_params` reads them out
of a :class:`~nirsim.Network` as an unconstrained pytree ``{node: {field: raw}}`` (what
optax updates), and :func:`apply_params` writes them back, so a loss is a function of
``raw`` through ``apply_params(network, raw)``. The reparameterisation, by field:

* **weights** (``weight`` of Affine, Linear, Conv1d, Conv2d) and **biases** (``bias``
  of Affine and Conv): identity, ``value = raw``;
* **time constants** (a neuron's positive parameters: ``tau`` of LI and LIF,
  ``tau_mem`` and ``tau_syn`` of CubaLI and CubaLIF): ``value = exp(raw)``,
  ``raw = log(value)``; a step changes ``tau`` by a factor, and ``tau > 0`` always;
* **thresholds** (``v_threshold`` of LIF, CubaLIF, IF): ``value = v_reset +
  exp(raw)``, ``raw = log(v_threshold - v_reset)``; the threshold stays above the reset
  value (``v_reset >= v_threshold`` would fire without end). A threshold at or below its
  reset is refused when the filter asks for thresholds.

Every other field (``r``, ``v_leak``, ``w_in``, delays, ...) stays as in the Network.
The trained values are ordinary Network fields, so ``apply_params(...).to_nir()``
exports them as they are.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._errors import InputError
from .._network import Network
from ..primitives import AbstractNeuron, AbstractSpikingNeuron
from ..primitives.base import is_concrete

WEIGHT_TYPES = ("Affine", "Linear", "Conv1d", "Conv2d")
BIAS_TYPES = ("Affine", "Conv1d", "Conv2d")


class ParameterFilter(eqx.Module):
    """Which parameters train (weights only by default).

    Attributes:
        weights: ``weight`` of Affine, Linear and Conv nodes (identity).
        biases: ``bias`` of Affine and Conv nodes (identity).
        time_constants: neurons' time constants (log-parameterised).
        thresholds: spiking neurons' ``v_threshold`` (``v_reset + exp(raw)``).
        nodes: only these node names (``None``: every node).
    """

    weights: bool = eqx.field(static=True, default=True)
    biases: bool = eqx.field(static=True, default=False)
    time_constants: bool = eqx.field(static=True, default=False)
    thresholds: bool = eqx.field(static=True, default=False)
    nodes: tuple[str, ...] | None = eqx.field(static=True, default=None)

    def fields(self, network: Network) -> dict[str, tuple[str, ...]]:
        """``{node: (field, ...)}`` of the parameters this filter trains."""
        if self.nodes is not None:
            unknown = [n for n in self.nodes if n not in network.nodes]
            if unknown:
                raise InputError(
                    f"ParameterFilter names nodes not in the network: {unknown} "
                    f"(nodes: {', '.join(network.order)})"
                )
        out = {}
        for name in network.order:
            if self.nodes is not None and name not in self.nodes:
                continue
            prim = network.nodes[name]
            chosen = []
            if self.weights and prim.nir_type in WEIGHT_TYPES:
                chosen.append("weight")
            if self.biases and prim.nir_type in BIAS_TYPES:
                chosen.append("bias")
            if self.time_constants and isinstance(prim, AbstractNeuron):
                chosen.extend(prim.positive_params)
            if self.thresholds and isinstance(prim, AbstractSpikingNeuron):
                chosen.append("v_threshold")
            if chosen:
                out[name] = tuple(chosen)
        return out


def _is_time_constant(prim, field: str) -> bool:
    return isinstance(prim, AbstractNeuron) and field in prim.positive_params


def to_raw(prim, field: str, value):
    """The unconstrained value of ``prim.field`` (see the module docstring)."""
    if _is_time_constant(prim, field):
        return jnp.log(value)
    if field == "v_threshold":
        gap = value - prim.v_reset
        if is_concrete(gap) and np.any(np.asarray(gap) <= 0):
            raise InputError(
                f"cannot train thresholds of a {prim.nir_type} with v_threshold <= "
                "v_reset (they are parameterised as v_reset + exp(raw))"
            )
        return jnp.log(gap)
    return value


def from_raw(prim, field: str, raw):
    """The parameter value for ``raw`` (inverse of :func:`to_raw`)."""
    if _is_time_constant(prim, field):
        return jnp.exp(raw)
    if field == "v_threshold":
        return prim.v_reset + jnp.exp(raw)
    return raw


def init_params(
    network: Network, filter: ParameterFilter | None = None
) -> dict[str, dict[str, jnp.ndarray]]:
    """The trainable parameters of ``network`` as raw (unconstrained) arrays,
    ``{node: {field: raw}}``."""
    filter = ParameterFilter() if filter is None else filter
    chosen = filter.fields(network)
    if not chosen:
        raise InputError(f"no parameter of the network matches {filter}")
    return {
        n: {f: to_raw(network.nodes[n], f, getattr(network.nodes[n], f)) for f in fs}
        for n, fs in chosen.items()
    }


def apply_params(network: Network, params: dict[str, dict[str, jnp.ndarray]]) -> Network:
    """``network`` with the parameters in ``params`` (raw, from :func:`init_params`)
    put in place, constrained; differentiable in ``params``."""
    items = [(n, f, r) for n, fields in params.items() for f, r in fields.items()]
    if not items:
        return network
    values = [from_raw(network.nodes[n], f, r) for n, f, r in items]

    def where(net):
        return [getattr(net.nodes[n], f) for n, f, _ in items]

    return eqx.tree_at(where, network, values)
