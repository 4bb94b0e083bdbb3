r"""Framework presets: a NIR graph stepped the way each framework's importer reads it.

Each preset is a configured :class:`~nirsim.solvers.Discrete`: a set of
:class:`~nirsim.solvers.DiscreteRules` and an interpretation that refuses what the
framework refuses and rewrites the graph's parameters into what the framework
computes, as a nirsim primitive stepped by forward Euler. A framework update
``v+ = a v + b x + c`` is the Euler LIF with ``tau = dt/(1 - a)``,
``r = b/(1 - a)``, ``v_leak = c/(1 - a)`` (``dt`` the grid step); the CubaLIF
analogue maps ``I+ = a_s I + b_s x`` to ``tau_syn = dt/(1 - a_s)``,
``w_in = b_s/(1 - a_s)``. So the framework's arithmetic is reproduced exactly (to
rounding), and the recorded states are the framework's own variables.

Shared by every preset (what every framework does, unlike the ideal model):

* a spike, and an input event, is the value 1 held for one step (``spike_unit=
  "step"``: area ``dt``; ``spike_area`` is ignored); a gridded input's value ``x[n]``
  is the step's input (``grid_as`` is ignored);
* one update per step, layers in graph order, a spike reaching the next layer in the
  step it is emitted; a recurrent edge carries the previous step's output;
* time constants are turned into decay factors once (``1 - dt/tau``, ``exp(-dt/tau)``
  or, for Sinabs, ``exp(-1/tau)``), so the spikes and states differ from the ideal
  solution by ``O(dt)`` or more (see each preset).

The sources read are snnTorch 1.0.0 ``import_nir.py``, Norse 1.1.0
``utils/import_nir.py``, Spyx 1.0.0 ``nir.py``/``nn.py``, Sinabs 3.1.3 ``nir.py``,
Rockpool 3.1.0 ``nn/modules/torch/nir.py``/``lif_torch.py``, the NIR paper's
``nir_to_lava.py`` with Lava's floating-point LIF process (see FRAMEWORKS.md and
HARDWARE.md in the project notes).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import nir
import numpy as np

from nirsim._custom_types import Array, Shape
from nirsim._errors import GraphError, InputError
from nirsim.primitives import (
    IF,
    LI,
    LIF,
    AbstractStateless,
    Affine,
    AvgPool2d,
    Conv1d,
    Conv2d,
    CubaLIF,
    CubaState,
    Flatten,
    Input,
    Linear,
    MembraneState,
    Output,
    SumPool2d,
)
from nirsim.primitives.base import is_concrete

from . import registry
from .discrete import AbstractInterpretation, Discrete, DiscreteRules
from .surrogate import AbstractSurrogate, FastSigmoid

# ------------------------------------------------------------------ helpers


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


def _concrete(prim) -> bool:
    """True when the node's parameters hold values (not tracers, e.g. under
    ``jax.grad``): value checks are made once, on concrete parameters."""
    return all(is_concrete(x) for x in jax.tree.leaves(prim))


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


# ------------------------------------------------------------------ snnTorch


class SnnTorch(AbstractInterpretation):
    r"""snnTorch 1.0.0's ``import_from_nir``.

    Changes relative to the ideal model:

    * ``dt`` is hard-coded to ``import_dt = 1e-4`` inside the importer: decays are
      ``beta = clip(1 - 1e-4/tau, 0, 1)`` whatever the grid step (with another
      ``dt`` each grid step is still one snnTorch step);
    * LIF (``Leaky``): ``m+ = beta m + x`` with the threshold divided by
      ``w = r 1e-4/tau`` (unless ``w`` is close to 1): exactly Euler in units of
      ``v = w m``; with neurons of different ``w`` the smallest ``w`` is used for all
      (``np.unique(w)[0]``); reset to zero (``v_reset`` ignored);
    * CubaLIF (``Synaptic``): ``s+ = alpha s + x``, ``m+ = beta m + s+`` (the new
      current), threshold divided by ``w = w_in 1e-4/tau_syn``: Euler in units of
      ``w s``, ``w m`` with ``r`` taken as exactly ``tau_mem/1e-4``; reset to zero;
    * IF becomes ``Leaky(beta=0.9)`` with reset by subtraction: a leak that is not in
      the graph (``v+ = 0.9 v + x``);
    * spike test ``v > v_threshold``; one spike per step; initial state 0.

    Refused (the importer asserts): LIF or CubaLIF with ``v_leak != 0``; CubaLIF with
    ``r`` not close to ``tau_mem/1e-4``; IF with ``r != 1``; layers whose (scaled)
    threshold or IF ``r`` differs between neurons; recurrent graphs (the importer
    wraps a recurrent LIF/CubaLIF into a subgraph it then cannot map; build
    ``RLeaky``/``RSynaptic`` by hand); node types other than Affine, Linear, Conv2d,
    Flatten, AvgPool2d, IF, LIF, CubaLIF and those nirtorch maps by default (Conv1d,
    SumPool2d, the latter only without padding, which nirtorch ignores). Not
    modelled: snnTorch's double-reset guard (``do_reset = spk - reset``), which only
    matters when an IF's membrane is still above threshold after a subtraction.
    """

    label: ClassVar[str] = "snntorch"
    import_dt: float = eqx.field(static=True, default=1e-4)

    def check(self, network, dt):
        fw = "snntorch"
        allowed = (Input, Output, Affine, Linear, Conv1d, Conv2d, Flatten, AvgPool2d)
        _check_types(fw, network, allowed + (SumPool2d, IF, LIF, CubaLIF))
        for n in network.names_of(SumPool2d):
            _zero_padding(fw, n, network.nodes[n])
        cyc = cycle_nodes(network)
        if cyc:
            n = sorted(cyc)[0]
            _refuse(
                fw,
                n,
                network.nodes[n],
                "snnTorch 1.0's importer cannot import recurrent graphs (a recurrent "
                "layer becomes a subgraph with no mapping); build RLeaky/RSynaptic by "
                "hand",
            )
        d0 = self.import_dt
        for n in network.order:
            p = network.nodes[n]
            if not _concrete(p):
                continue
            if isinstance(p, IF):
                _unique(fw, n, p, "v_threshold", p.v_threshold)
                _unique(fw, n, p, "r", p.r)
                if not np.all(_values(p.r) == 1):
                    _refuse(fw, n, p, "r != 1 is not supported by snnTorch's IF")
            elif isinstance(p, LIF):
                if not np.allclose(_values(p.v_leak), 0.0):
                    _refuse(fw, n, p, "v_leak != 0 is not supported by snnTorch")
                _unique(fw, n, p, "v_threshold", p.v_threshold)
            elif isinstance(p, CubaLIF):
                if not np.allclose(_values(p.v_leak), 0.0):
                    _refuse(fw, n, p, "v_leak != 0 is not supported by snnTorch")
                if not np.allclose(_values(p.r), _values(p.tau_mem) / d0):
                    _refuse(
                        fw,
                        n,
                        p,
                        f"snnTorch requires r = tau_mem/dt with its dt = {d0} "
                        f"(r ignored otherwise); got r = {_values(p.r).ravel()[0]!r}, "
                        f"tau_mem/dt = {_values(p.tau_mem).ravel()[0] / d0!r}",
                    )
                w = _values(p.w_in) * d0 / _values(p.tau_syn)
                th = _values(p.v_threshold)
                scaled = th if np.allclose(w, 1.0) else th / w
                _unique(fw, n, p, "v_threshold / (w_in dt/tau_syn)", scaled)

    def node(self, network, name, p, dt):
        d0 = self.import_dt
        if isinstance(p, LIF):
            beta = jnp.clip(1.0 - d0 / p.tau, 0.0, 1.0)
            w = p.r * d0 / p.tau
            w0 = jnp.where(jnp.all(jnp.isclose(w, 1.0)), 1.0, jnp.min(w))
            return _lif_decay(beta, w0 * _ones(w), 0.0 * w, p.v_threshold, 0.0 * w, dt)
        if isinstance(p, CubaLIF):
            alpha = jnp.clip(1.0 - d0 / p.tau_syn, 0.0, 1.0)
            beta = jnp.clip(1.0 - d0 / p.tau_mem, 0.0, 1.0)
            w = p.w_in * d0 / p.tau_syn
            ws = jnp.where(jnp.all(jnp.isclose(w, 1.0)), _ones(w), w)
            z = 0.0 * w
            return _cuba_decay(alpha, ws, beta, _ones(w), z, p.v_threshold, z, dt)
        if isinstance(p, IF):
            one = _ones(p.r)
            return _lif_decay(0.9 * one, one, 0.0 * one, p.v_threshold, 0.0 * one, dt)
        return p

    def rules(self, network, name, prim, base):
        if isinstance(prim, IF):
            return dataclasses.replace(base, reset="subtract")
        return base


# ------------------------------------------------------------------ Norse


class Norse(AbstractInterpretation):
    r"""Norse 1.1.0's ``norse.torch.from_nir(graph, dt=...)`` (Norse's default ``dt``
    is 1e-3; the preset uses the step it is given).

    Changes relative to the ideal model:

    * LIF (``LIFBoxCell``): ``v += dt/tau (x + v_leak - v)``: forward Euler with ``r``
      ignored (taken as 1, Norse warns) and reset to 0 (``v_reset`` ignored);
    * CubaLIF: ``I += dt/tau_syn (v_leak - I + w_in x)`` (the leak voltage also leaks
      the current), ``v += dt/tau_mem (v_leak - v + r I+)`` (the new current); reset
      to 0 by value, or ``v <- v - v_threshold`` with ``reset="subtract"`` (Norse's
      ``reset_method``); initial state ``I = v = v_leak``;
    * IF (``IAFCell``): ``v += x``: ``r`` and ``v_reset`` ignored (reset to 0);
    * spike test ``v > v_threshold``; one spike per step;
    * a recurrent edge delivers the previous step's output, and in step 0 nothing,
      not even the bias of the recurrent layer;
    * Norse's ``Flatten`` flattens from dimension 0, which breaks batches larger
      than one; nirsim simulates one sample at a time, so that failure is not
      reproduced.

    Refused: node types Norse's importer does not map (it maps Affine, Linear,
    Conv2d, Flatten, SumPool2d, IF, LIF, CubaLIF; LI, I, CubaLI, Conv1d, AvgPool2d,
    Scale, Delay and Threshold are not); SumPool2d with padding (ignored by Norse,
    which changes the shape); a CubaLIF with ``w_in = 0`` and ``v_leak != 0`` (its
    current leak cannot be expressed here).
    """

    label: ClassVar[str] = "norse"

    def check(self, network, dt):
        fw = "norse"
        allowed = (Input, Output, Affine, Linear, Conv2d, Flatten, SumPool2d, IF, LIF)
        _check_types(fw, network, allowed + (CubaLIF,))
        for n in network.order:
            p = network.nodes[n]
            if isinstance(p, SumPool2d):
                _zero_padding(fw, n, p)
            if isinstance(p, CubaLIF) and _concrete(p):
                bad = (_values(p.w_in) == 0) & (_values(p.v_leak) != 0)
                if np.any(bad):
                    _refuse(
                        fw,
                        n,
                        p,
                        "w_in = 0 with v_leak != 0: Norse's current leak towards "
                        "v_leak cannot be expressed for it",
                    )

    def node(self, network, name, p, dt):
        if isinstance(p, LIF):
            return LIF(p.tau, _ones(p.r), p.v_leak, p.v_threshold, 0.0 * p.v_reset)
        if isinstance(p, CubaLIF):
            return CubaLIF(
                p.tau_syn,
                p.tau_mem,
                p.r,
                p.v_leak,
                p.v_threshold,
                0.0 * p.v_reset,
                p.w_in,
            )
        if isinstance(p, IF):
            return IF(_ones(p.r) / dt, p.v_threshold, 0.0 * p.v_reset)
        return p

    def drive_offset(self, network, name, p, dt):
        if isinstance(p, CubaLIF):
            nz = p.w_in != 0
            return jnp.where(nz, p.v_leak / jnp.where(nz, p.w_in, 1.0), 0.0)
        return None

    def init_state(self, network, name, p):
        if isinstance(p, CubaLIF):
            return CubaState(i_syn=p.v_leak, v=p.v_leak)
        return p.init_state()

    def rules(self, network, name, prim, base):
        if isinstance(prim, CubaLIF):
            return dataclasses.replace(base, reset="options")
        return base


# ------------------------------------------------------------------ Spyx


class Spyx(AbstractInterpretation):
    r"""Spyx 1.0.0's ``spyx.nir.from_nir(graph, dt=...)`` (Spyx's default ``dt`` is 1;
    the preset uses the step it is given).

    Changes relative to the ideal model:

    * every spiking layer decides ``z = V > th`` on the membrane carried into the
      step (``fire_on="carried"``): one step of latency per spiking layer, and the
      spike is stamped in the step it leaves;
    * LIF: ``V = beta V + x - z th``, ``beta = clip(1 - dt/tau, 0, 1)``; no
      ``r dt/tau`` input factor; ``r``, ``v_leak``, ``v_reset`` ignored;
    * CubaLIF (``CuBaLIF``): ``V <- V - z th``, ``I = alpha I + x``,
      ``V = beta V + I+`` (the subtraction comes before the decay here, unlike LIF);
      ``w_in``, ``r``, ``v_leak``, ``v_reset`` ignored;
    * IF: ``V = V + x - z th``; reset always by subtraction; initial state 0;
    * ``Flatten`` after a convolution flattens channels-last data, so the next
      Affine sees the features in ``(h, w, c)`` order instead of ``(c, h, w)``.

    Refused: graphs that are not one chain from a node named ``input`` to a node
    named ``output`` (the importer follows the first edge out of ``"input"`` until
    ``"output"`` and drops the rest), recurrent layers (Spyx feeds ``z W`` of the
    current step back, which this stepper does not express), node types other than
    Affine, Linear, Conv2d, SumPool2d, Flatten, IF, LIF, CubaLIF (an LI is only read
    as the membrane of a PSU_LIF, not emulated), SumPool2d with padding (Spyx
    switches to ``SAME``).
    """

    label: ClassVar[str] = "spyx"

    def check(self, network, dt):
        fw = "spyx"
        allowed = (Input, Output, Affine, Linear, Conv2d, SumPool2d, Flatten, IF, LIF)
        _check_types(fw, network, allowed + (CubaLIF,))
        cyc = cycle_nodes(network)
        if cyc:
            n = sorted(cyc)[0]
            _refuse(fw, n, network.nodes[n], "recurrent layers are not emulated")
        for n in network.order:
            p = network.nodes[n]
            if isinstance(p, SumPool2d):
                _zero_padding(fw, n, p)
            if len(network.successors(n)) > 1 or len(network.predecessors(n)) > 1:
                _refuse(
                    fw,
                    n,
                    p,
                    "Spyx imports a graph as one chain from 'input' to 'output'; this "
                    "node branches or merges",
                )
        if network.inputs != ("input",) or network.outputs != ("output",):
            raise GraphError(
                "spyx preset: Spyx's importer follows edges from a node named 'input' "
                f"to one named 'output'; this graph has inputs {network.inputs} and "
                f"outputs {network.outputs}"
            )

    def node(self, network, name, p, dt):
        if isinstance(p, LIF):
            beta = jnp.clip(1.0 - dt / p.tau, 0.0, 1.0)
            z = 0.0 * beta
            return _lif_decay(beta, _ones(beta), z, p.v_threshold, z, dt)
        if isinstance(p, CubaLIF):
            alpha = jnp.clip(1.0 - dt / p.tau_syn, 0.0, 1.0)
            beta = jnp.clip(1.0 - dt / p.tau_mem, 0.0, 1.0)
            one = _ones(beta)
            return _cuba_decay(alpha, one, beta, one, 0.0 * one, p.v_threshold, 0 * one, dt)
        if isinstance(p, IF):
            return IF(_ones(p.r) / dt, p.v_threshold, 0.0 * p.r)
        if isinstance(p, Flatten) and len(p.input_shape) == 3:
            return ChannelsLastFlatten(input_shape=p.input_shape)
        return p

    def rules(self, network, name, prim, base):
        if isinstance(prim, CubaLIF):
            return dataclasses.replace(base, reset_timing="next_step")
        return base


# ------------------------------------------------------------------ Sinabs


class Sinabs(AbstractInterpretation):
    r"""Sinabs 3.1.3's ``sinabs.from_nir`` (the software model of Speck).

    Changes relative to the ideal model:

    * time constants are read **in steps**: a LIF or LI decays by ``exp(-1/tau)``
      per step whatever ``dt`` (``tau = 2.5e-3`` forgets everything each step); the
      grid step only stamps spikes and samples;
    * LIF: ``v = exp(-1/tau) v + x``; LI (``ExpLeak``): the same without spikes;
      ``r``, ``v_reset`` ignored;
    * IF (``IAF``): ``v += x``; ``r``, ``v_reset`` ignored; ``v`` clamped to
      ``>= -v_threshold`` after each step;
    * several spikes per step: ``n = trunc(v/th)`` when ``v > 0`` (fires at
      ``v >= th``), ``v -= n th`` (reset by subtraction); initial state 0.

    Refused: CubaLIF (Sinabs has none), Linear, I, CubaLI, AvgPool2d, Scale, Delay,
    Threshold (no mapping in the importer), LIF or LI with ``v_leak != 0``, LI with
    ``r != 1``, SumPool2d with padding (ignored by Sinabs).
    """

    label: ClassVar[str] = "sinabs"

    def check(self, network, dt):
        fw = "sinabs"
        allowed = (Input, Output, Affine, Conv1d, Conv2d, SumPool2d, Flatten, IF, LIF)
        extra = "; Sinabs has no CubaLIF" if network.names_of(CubaLIF) else ""
        _check_types(fw, network, allowed + (LI,), extra)
        for n in network.order:
            p = network.nodes[n]
            if isinstance(p, SumPool2d):
                _zero_padding(fw, n, p)
            if not _concrete(p):
                continue
            if isinstance(p, LIF | LI) and np.any(_values(p.v_leak) != 0):
                _refuse(fw, n, p, "`v_leak` must be 0 (Sinabs refuses it)")
            if isinstance(p, LI) and np.any(_values(p.r) != 1):
                _refuse(fw, n, p, "`r` must be 1 (Sinabs refuses it)")

    def node(self, network, name, p, dt):
        if isinstance(p, LIF):
            a = jnp.exp(-1.0 / p.tau)
            return _lif_decay(a, _ones(a), 0.0 * a, p.v_threshold, 0.0 * a, dt)
        if isinstance(p, LI):
            a = jnp.exp(-1.0 / p.tau)
            return _li_decay(a, _ones(a), dt)
        if isinstance(p, IF):
            return IF(_ones(p.r) / dt, p.v_threshold, 0.0 * p.r)
        return p

    def rules(self, network, name, prim, base):
        if isinstance(prim, IF):
            return dataclasses.replace(base, floor_at_minus_threshold=True)
        return base


# ------------------------------------------------------------------ Rockpool


class Rockpool(AbstractInterpretation):
    r"""Rockpool 3.1.0's ``nn.modules.from_nir`` (the software model of Xylo).

    Changes relative to the ideal model:

    * each CubaLIF layer infers its own step ``dt_l = min(tau_mem/(1 + r))`` (not the
      user's ``dt``) and computes ``I = exp(-dt_l/tau_syn) (I + x)`` (the input is
      decayed in the step it arrives), ``V = exp(-dt_l/tau_mem) V + I + v_leak``;
      ``w_in`` and ``r`` ignored (except in ``dt_l``);
    * several spikes per step: ``n = floor(V/th)`` when ``V >= th`` (at most 2^16),
      ``V -= n th``; initial state ``I = V = 0``;
    * LI (``ExpSynTorch``): ``tau`` truncated to an integer (``tau.int()``, so 0 for
      any ``tau < 1``, which zeroes the output), ``v = exp(-dt_l/tau_int) (v + x)``,
      ``dt_l = min(tau/(1 + r))``; ``v_leak`` ignored;
    * a recurrent Affine's bias is dropped (Rockpool warns); the recurrent input is
      the previous step's spikes. Rockpool maps the nested-subgraph form of a
      recurrent layer; the flat form loses the recurrence silently in Rockpool, which
      is not reproduced (nirsim flattens subgraphs, so both forms look alike here).

    Refused: LIF (the importer reads ``node.tau_mem``, which ``nir.LIF`` lacks, and
    fails), IF, I, CubaLI, Conv, pooling, Flatten, Scale, Delay, Threshold.
    """

    label: ClassVar[str] = "rockpool"

    def check(self, network, dt):
        fw = "rockpool"
        for n in network.order:
            p = network.nodes[n]
            if isinstance(p, LIF):
                _refuse(
                    fw,
                    n,
                    p,
                    "Rockpool 3.1's importer fails on LIF (it reads node.tau_mem, "
                    "which nir.LIF does not have)",
                )
        _check_types(fw, network, (Input, Output, Affine, Linear, CubaLIF, LI))
        for n in network.order:
            p = network.nodes[n]
            if isinstance(p, CubaLIF | LI) and _concrete(p):
                tau = _values(p.tau_mem if isinstance(p, CubaLIF) else p.tau)
                if np.min(tau / (1.0 + _values(p.r))) <= 0 or np.any(_values(p.r) <= -1):
                    _refuse(fw, n, p, "the inferred step min(tau/(1 + r)) must be > 0")

    def node(self, network, name, p, dt):
        if isinstance(p, CubaLIF):
            dt_l = jnp.min(p.tau_mem / (1.0 + p.r))
            e_s = jnp.exp(-dt_l / p.tau_syn)
            e_m = jnp.exp(-dt_l / p.tau_mem)
            one = _ones(e_m)
            return _cuba_decay(e_s, one, e_m, one, p.v_leak, p.v_threshold, 0 * one, dt)
        if isinstance(p, LI):
            dt_l = jnp.min(p.tau / (1.0 + p.r))
            tau_int = jnp.trunc(p.tau)
            pos = tau_int > 0
            e = jnp.where(pos, jnp.exp(-dt_l / jnp.where(pos, tau_int, 1.0)), 0.0)
            return _li_decay(e, _ones(e), dt)
        if isinstance(p, Affine) and name in cycle_nodes(network):
            return Affine(p.weight, 0.0 * p.bias)
        return p

    def init_state(self, network, name, p):
        if isinstance(p, CubaLIF):
            return CubaState(i_syn=0.0 * p.v_leak, v=0.0 * p.v_leak)
        return MembraneState(v=0.0 * p.v_leak)


# ------------------------------------------------------------------ Lava


class LavaFloat(AbstractInterpretation):
    r"""Lava's floating-point LIF process (``PyLifModelFloat``) behind the NIR paper's
    converter (``nir_to_lava.py``, ``fixed_pt=False``; CubaLIF as lava-dl maps it).

    One step: ``u = u (1 - du) + a_in``, ``v = v (1 - dv) + u + bias``, spike
    ``v > vth``, then ``v = 0``; ``a_in`` is what the Dense processes sent, and every
    Dense (Affine, Linear) emits in step ``n`` what it received in step ``n - 1``: one
    step of delay per weight layer.

    Changes relative to the ideal model:

    * LIF: ``du = 1`` (no current state), ``dv = dt/tau``, input scaled by ``dt/tau``:
      forward Euler with ``r`` ignored (taken as 1), ``v_leak`` ignored (bias 0),
      reset to 0 (``v_reset`` ignored); the paper's converter puts a 1x1 Dense of
      weight ``dt/tau`` before each LIF, folded here into the neuron without an extra
      delay (as in the published traces, where one Dense sits between input and
      neuron: an input in step ``i`` shows in ``v`` at step ``i + 1``);
    * CubaLIF: ``du = dt/tau_syn``, ``dv = dt/tau_mem``, input scaled by
      ``w_in dt/tau_syn``: Euler with the new current, ``r = tau_mem/dt``;
    * initial state ``u = v = 0``; one spike per step.

    Refused: Affine with a non-zero bias (the converter asserts), LIF-family nodes
    with parameters lava-dl refuses (CubaLIF with ``v_leak != 0`` or
    ``r != tau_mem/dt``), node types other than Affine, Linear, LIF, CubaLIF.
    """

    label: ClassVar[str] = "lava-float"

    def check(self, network, dt):
        fw = "lava-float"
        _check_types(fw, network, (Input, Output, Affine, Linear, LIF, CubaLIF))
        for n in network.order:
            p = network.nodes[n]
            if not _concrete(p):
                continue
            if isinstance(p, Affine) and not np.allclose(_values(p.bias), 0.0):
                _refuse(fw, n, p, "non-zero bias is not supported by Lava's Dense")
            if isinstance(p, CubaLIF):
                if not np.allclose(_values(p.v_leak), 0.0):
                    _refuse(fw, n, p, "v_leak != 0 is not supported (lava-dl refuses)")
                if not np.allclose(_values(p.r), _values(p.tau_mem) / dt):
                    _refuse(fw, n, p, f"lava-dl requires r = tau_mem/dt (dt = {dt!r})")

    def node(self, network, name, p, dt):
        if isinstance(p, LIF):
            z = 0.0 * p.v_leak
            return LIF(p.tau, _ones(p.r), z, p.v_threshold, z)
        if isinstance(p, CubaLIF):
            z = 0.0 * p.v_leak
            return CubaLIF(
                p.tau_syn, p.tau_mem, p.tau_mem / dt, z, p.v_threshold, z, p.w_in
            )
        return p


class NirEuler(AbstractInterpretation):
    r"""The NIR repository's reference reading: forward Euler, every parameter as in
    the graph (``r``, ``w_in``, ``v_leak``, ``v_reset``), nirsim's initial state.

    ``I+ = I + dt/tau_syn (-I + w_in x)``, ``v+ = v + dt/tau_mem (v_leak - v + r I)``
    with the **old** current, spike ``v+ > v_th``, reset as ``simulate`` says; a
    spike is the value 1 for one step. Each CubaLIF layer therefore lags the
    frameworks (which use the new current) by one step. Every node type runs.
    """

    label: ClassVar[str] = "nir-euler"


# ------------------------------------------------------------------ factories

_FRAMEWORK = dict(grid="current", spike_unit="step")


def snntorch(dt: float = 1e-4, *, surrogate: AbstractSurrogate = FastSigmoid()):
    """snnTorch preset (see :class:`SnnTorch`). Its importer hard-codes
    ``dt = 1e-4``; another ``dt`` only changes the grid (a warning says so)."""
    interp = SnnTorch()
    if not math.isclose(float(dt), interp.import_dt, rel_tol=1e-9):
        warnings.warn(
            f"snntorch preset: snnTorch's importer hard-codes dt = {interp.import_dt}; "
            f"its decays use that value, and each step of dt = {dt} is one snnTorch "
            "step (time constants are effectively scaled by dt/1e-4)",
            UserWarning,
            stacklevel=2,
        )
    rules = DiscreteRules(
        threshold_test=">", reset="zero", membrane_current="new", **_FRAMEWORK
    )
    return Discrete(dt, rules, interp, surrogate, label="snntorch")


def norse(dt: float = 1e-3, *, surrogate: AbstractSurrogate = FastSigmoid()):
    """Norse preset (see :class:`Norse`)."""
    rules = DiscreteRules(
        threshold_test=">",
        reset="v_reset",
        membrane_current="new",
        initial_feedback="zero",
        **_FRAMEWORK,
    )
    return Discrete(dt, rules, Norse(), surrogate, label="norse")


def spyx(dt: float, *, surrogate: AbstractSurrogate = FastSigmoid()):
    """Spyx preset (see :class:`Spyx`)."""
    rules = DiscreteRules(
        threshold_test=">",
        reset="subtract",
        fire_on="carried",
        membrane_current="new",
        **_FRAMEWORK,
    )
    return Discrete(dt, rules, Spyx(), surrogate, label="spyx")


def sinabs(dt: float, *, surrogate: AbstractSurrogate = FastSigmoid()):
    """Sinabs preset (see :class:`Sinabs`); ``dt`` only sets the grid."""
    rules = DiscreteRules(
        threshold_test=">=", reset="subtract", max_spikes_per_step=None, **_FRAMEWORK
    )
    return Discrete(dt, rules, Sinabs(), surrogate, label="sinabs")


def rockpool(dt: float, *, surrogate: AbstractSurrogate = FastSigmoid()):
    """Rockpool preset (see :class:`Rockpool`); ``dt`` only sets the grid."""
    rules = DiscreteRules(
        threshold_test=">=",
        reset="subtract",
        max_spikes_per_step=2**16,
        membrane_current="new",
        input_at="start",
        **_FRAMEWORK,
    )
    return Discrete(dt, rules, Rockpool(), surrogate, label="rockpool")


def lava_float(dt: float = 1e-4, *, surrogate: AbstractSurrogate = FastSigmoid()):
    """Lava floating-point preset (see :class:`LavaFloat`)."""
    rules = DiscreteRules(
        threshold_test=">",
        reset="zero",
        membrane_current="new",
        dense_delay=True,
        **_FRAMEWORK,
    )
    return Discrete(dt, rules, LavaFloat(), surrogate, label="lava-float")


def nir_euler(dt: float, *, surrogate: AbstractSurrogate = FastSigmoid()):
    """The NIR repository's Euler reference (see :class:`NirEuler`)."""
    rules = DiscreteRules(threshold_test=">", reset="options", **_FRAMEWORK)
    return Discrete(dt, rules, NirEuler(), surrogate, label="nir-euler")


PRESETS = {
    "snntorch": snntorch,
    "norse": norse,
    "spyx": spyx,
    "sinabs": sinabs,
    "rockpool": rockpool,
    "lava-float": lava_float,
    "nir-euler": nir_euler,
}


def preset(name: str, dt: float, *, surrogate: AbstractSurrogate = FastSigmoid()):
    """The framework preset called ``name`` (one of :data:`PRESETS`) with step ``dt``."""
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name](dt, surrogate=surrogate)


for _name, _factory in PRESETS.items():
    registry.register(_name, _factory, needs_dt=True)
