"""Shared pieces of the framework presets (see :mod:`nirsim.solvers.presets`)."""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import nir
import numpy as np

from nirsim._custom_types import Array, Shape
from nirsim._errors import GraphError
from nirsim.primitives import LI, LIF, AbstractStateless, CubaLIF, Threshold

from ..discrete.base import (
    AbstractDiscrete,
    GridAsCurrent,
    OneStep,
    checked_dt,
)
from ..discrete.rules import Exceeds, NeuronRule, ThresholdRule
from ..surrogate import AbstractSurrogate, FastSigmoid


def _lif_decay(a, b, c, v_threshold, v_reset, dt) -> LIF:
    """The Euler LIF whose step is ``v+ = a v + b x + c`` (``a < 1``)."""
    k = 1.0 - a
    return LIF(tau=dt / k, r=b / k, v_leak=c / k, v_threshold=v_threshold, v_reset=v_reset)


def _li_decay(a, b, dt) -> LI:
    """The Euler LI whose step is ``v+ = a v + b x``."""
    k = 1.0 - a
    return LI(tau=dt / k, r=b / k, v_leak=jnp.zeros_like(k))


def _cuba_decay(a_s, b_s, a_m, b_m, c_m, v_threshold, v_reset, dt) -> CubaLIF:
    """The Euler CubaLIF (new current) whose step is ``I+ = a_s I + b_s x``,
    ``v+ = a_m v + b_m I+ + c_m``."""
    ks = 1.0 - a_s
    km = 1.0 - a_m
    return CubaLIF(
        tau_syn=dt / ks,
        tau_mem=dt / km,
        r=b_m / km,
        v_leak=c_m / km,
        v_threshold=v_threshold,
        v_reset=v_reset,
        w_in=b_s / ks,
    )


def _ones(x):
    return jnp.ones_like(x)


def _refuse(framework: str, name: str, prim, reason: str):
    raise GraphError(f"{framework} preset: node '{name}' ({prim.nir_type}): {reason}")


def _values(x) -> np.ndarray:
    return np.asarray(x, dtype=float)


def _check_types(framework, network, allowed, extra: str = ""):
    for n in network.order:
        prim = network.nodes[n]
        if not isinstance(prim, allowed):
            names = ", ".join(sorted(c.nir_type for c in allowed))
            _refuse(
                framework,
                n,
                prim,
                f"{framework}'s NIR importer has no mapping for {prim.nir_type} "
                f"(it maps {names}){extra}",
            )


def cycle_nodes(network) -> set[str]:
    """Nodes that lie on a directed cycle of the graph."""
    out = set()
    for n in network.order:
        stack, seen = list(network.successors(n)), set()
        while stack:
            m = stack.pop()
            if m == n:
                out.add(n)
                break
            if m in seen:
                continue
            seen.add(m)
            stack.extend(network.successors(m))
    return out


def _zero_padding(framework, name, prim):
    pad = np.asarray(prim.padding)
    if pad.size and np.any(pad != 0):
        _refuse(
            framework,
            name,
            prim,
            f"padding {tuple(pad.tolist())} is ignored by {framework}'s importer, "
            "which changes the output shape; use padding 0",
        )


def _unique(framework, name, prim, field, values):
    if np.unique(_values(values)).size != 1:
        _refuse(
            framework,
            name,
            prim,
            f"'{field}' must be the same for all neurons of a layer (the importer "
            f"asserts it), got {np.unique(_values(values))[:4].tolist()}...",
        )


class ChannelsLastFlatten(AbstractStateless):
    """Spyx's ``Flatten`` of a ``(C, H, W)`` signal held channels-last: the features
    leave in ``(h, w, c)`` order, so the next Affine sees them permuted relative to
    NIR's ``(c, h, w)`` (a Spyx quirk on convolutional graphs)."""

    nir_type = "Flatten"
    input_shape: Shape = eqx.field(static=True)

    @property
    def in_shape(self) -> Shape:
        return self.input_shape

    @property
    def out_shape(self) -> Shape:
        return (math.prod(self.input_shape),)

    @classmethod
    def from_nir(cls, node, in_shape):
        raise GraphError("ChannelsLastFlatten is an emulation detail, not a NIR node")

    def to_nir(self) -> nir.Flatten:
        return nir.Flatten(
            input_type={"input": np.array(self.input_shape)}, start_dim=0, end_dim=-1
        )

    def linear(self, x: Array) -> Array:
        return jnp.moveaxis(x, 0, -1).reshape(self.out_shape)


class AbstractPreset(AbstractDiscrete):
    """A framework's reading of a NIR graph, as a discrete solver.

    Shared by every preset (what every framework does, unlike the ideal model): a
    spike, and an input event, is the value 1 held for one step (area ``dt``;
    ``spike_area`` is ignored); a gridded input's value ``x[n]`` is the step's input
    (``grid_as`` is ignored); the framework's dtype (float32) unless ``dtype`` says
    otherwise.
    """

    dt: float = eqx.field(static=True, converter=checked_dt)
    surrogate: AbstractSurrogate = FastSigmoid()
    dtype: Any = eqx.field(static=True, default=None)

    spike_unit = OneStep()
    grid_reading = GridAsCurrent()
    default_dtype = jnp.float32

    def neuron_rule(self, network, name, primitive) -> NeuronRule:
        """The rule of neuron ``name`` (subclasses)."""
        raise NotImplementedError

    #: the Threshold node's test
    threshold_test = Exceeds()

    def rule(self, network, name, primitive):
        if isinstance(primitive, Threshold):
            return ThresholdRule(test=self.threshold_test, surrogate=self.surrogate)
        return self.neuron_rule(network, name, primitive)


def recurrent_weight(network, name: str) -> str | None:
    """The weight node of a recurrent layer around ``name`` (``name -> w -> name``,
    ``w`` an Affine or Linear whose one input and one output are ``name``: snnTorch's
    ``RSynaptic``, Spyx's ``RCuBaLIF``), else None."""
    from nirsim.primitives import Affine, Linear

    for w in network.successors(name):
        p = network.nodes[w]
        if (
            isinstance(p, Affine | Linear)
            and tuple(network.successors(w)) == (name,)
            and tuple(network.predecessors(w)) == (name,)
        ):
            return w
    return None


def recurrent_layers(network, kind) -> dict[str, str]:
    """``{weight node: layer}`` for every recurrent layer of neurons of type ``kind``
    (see :func:`recurrent_weight`)."""
    out = {}
    for n in sorted(cycle_nodes(network)):
        if isinstance(network.nodes[n], kind):
            w = recurrent_weight(network, n)
            if w is not None:
                out[w] = n
    return out


def refuse_other_cycles(framework, network, layers: dict[str, str], what: str):
    """Refuse every node on a cycle that is not one of ``layers``."""
    for n in sorted(cycle_nodes(network)):
        if n in layers or n in layers.values():
            continue
        _refuse(framework, n, network.nodes[n], what)
