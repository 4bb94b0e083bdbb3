r"""SynSense Speck (DYNAP-CNN) as sinabs' dynapcnn back-end maps a NIR graph and its
discretised, time-binned software model steps it. Sources and confidence:
``../shared/HARDWARE.md`` (sinabs 3.1 ``nir.py``, ``backend/dynapcnn/discretize.py``,
``chips/dynapcnn.py``, ``layers/functional/lif.py``). The discretised model is
confirmed **[run]** there; the chip itself is asynchronous and event-driven, which
this time-binned model does not reproduce **[doc]**.

**The graph Speck holds**: a chain of layers, each a weight node (Conv2d, or an
Affine/Linear after a Flatten, which sinabs turns into a convolution covering the
whole map, or after a flat IF layer, a 1x1 convolution) -> IF -> optional SumPool2d
or AvgPool2d (and Flatten); at most 9 layers. LIF, LI and every other neuron type
are refused.

**The mapping** (per layer; :meth:`Speck.report` lists each change):

* one scale ``s = min(s_weights, s_bias, s_threshold)`` with ``s_x =
  min(hi / max x, lo / min x)`` over the positive and negative sides (``hi =
  2^(b-1) - 1``, ``lo = -2^(b-1)``: ``127/max|x|``, or ``128/|min x|`` when the
  negative side dominates, so -128 occurs); 8-bit weights, 16-bit biases **[doc]**
  and the 16-bit threshold pair ``(v_threshold, -v_threshold)``; every value
  ``round(x s)`` (halves to even);
* an AvgPool2d becomes a SumPool2d and the next layer's weights are scaled by
  ``1/k^2`` before quantisation;
* NIR ``r`` and ``v_reset`` are ignored (a spike moves ``v`` by its weight; reset by
  subtraction); a lower clamp ``v >= -v_threshold`` is added; one threshold per layer
  (a heterogeneous one is refused).

In the graph's units ``v = v_chip / s``.

**The step** (integers): ``v += conv(x) + bias``; ``n = trunc(v / thr)`` spikes
where ``v > 0`` (no cap); ``v -= n thr``; ``v = max(v, -thr)``; spike counts pass to
the next layer in the same step. 16-bit overflow of the state is not modelled
(**[open]** on the chip): the state is held in 32 bits.

**Gradients** (quantisation-aware training): the forward pass is the chip's, bit for
bit; backward, the roundings pass straight through (identity), the clips are masked
identities, and each spike count has the ``surrogate``'s derivative of
``(v - thr) / s`` (:func:`relaxed_step`). With ``raw=True`` the recorded chip
integers carry no gradient.

**Limits** (refused before running, naming node and limit): kernels square and
smaller than 16, stride 1, 2, 4 or 8, padding 0..7, dilation 1, groups 1; pooling
kernels 1, 2 or 4 (square, stride equal to the kernel, no padding); at most 1024
channels and 64x64 feature maps per layer input; at most 9 layers; a weight layer
must feed one IF node.
"""

from __future__ import annotations

import math
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from nirsim._custom_types import Array
from nirsim._errors import GraphError
from nirsim.primitives import (
    IF,
    Affine,
    AvgPool2d,
    Conv2d,
    Flatten,
    Input,
    Linear,
    Output,
    SumPool2d,
)
from nirsim.solvers.discrete.base import AbstractStepRule, Drive, checked_dt, float_dtype
from nirsim.solvers.surrogate import AbstractSurrogate, FastSigmoid, heaviside

from . import fixed_point as fp
from .base import AbstractHardwareModel, MappingReport, entry, ignored

WEIGHTS = (Conv2d, Affine, Linear)
POOLS = (SumPool2d, AvgPool2d)


def side_scale(x: Array, bits: int) -> Array:
    """``min(hi / max x, lo / min x)`` over the sides ``x`` has (``inf`` if none)."""
    hi, lo = 2.0 ** (bits - 1) - 1, -(2.0 ** (bits - 1))
    mx, mn = jnp.max(x), jnp.min(x)
    s_hi = jnp.where(mx > 0, hi / jnp.where(mx > 0, mx, 1.0), jnp.inf)
    s_lo = jnp.where(mn < 0, lo / jnp.where(mn < 0, mn, -1.0), jnp.inf)
    return jnp.minimum(s_hi, s_lo)


# ------------------------------------------------------------------ the step rule
class SpeckParams(eqx.Module):
    """A layer's threshold (``int32`` for :func:`step`; in :class:`SpeckRule`, a
    float holding the same integer, with a straight-through gradient) and its scale
    ``s`` (chip units per graph unit)."""

    thr: Array
    scale: Array


class SpeckRule(AbstractStepRule):
    """One Speck IF layer (see the module docstring). As
    :class:`~nirsim.hardware_models.loihi2.LoihiRule`: the chip's integer
    :func:`step` gives the values, :func:`relaxed_step` the gradient; the state is a
    float holding the chip's integer ``v``."""

    scale: Array
    raw: bool = eqx.field(static=True, default=False)
    surrogate: AbstractSurrogate = FastSigmoid()

    @property
    def spikes_per_step(self):
        return None

    def interpret(self, primitive, dt, options):
        thr = fp.round_half_even(primitive.v_threshold * self.scale)
        dtype = float_dtype(primitive)
        return SpeckParams(
            thr=fp.clip(thr, 1, 32767).astype(dtype),
            scale=jnp.broadcast_to(self.scale, thr.shape).astype(dtype),
        )

    def init(self, params, dt):
        return jnp.zeros(params.thr.shape, params.scale.dtype)

    def step(self, params, state, drive: Drive, dt):
        x = drive.current + drive.impulse
        v, n = step(fp.as_int(params.thr), fp.as_int(state), fp.as_int(x))
        return relaxed_step(params, state, x, v, n, self.surrogate)

    def observe(self, params, state):
        return {"v": fp.as_int(state) if self.raw else state / params.scale}


def step(thr: Array, v: Array, x: Array):
    """One Speck step on integers: integrate, multi-spike by subtraction, clamp."""
    v = v + x
    n = jnp.where(v > 0, v // thr, 0)
    v = v - n * thr
    return jnp.maximum(v, -thr), n


def relaxed_step(params: SpeckParams, v, x, chip_v, n, surrogate: AbstractSurrogate):
    """The chip's step ``chip_v, n`` (from :func:`step`) with the gradient of the
    step on floats: the count is the chip's ``n`` times the 0/1 decision
    ``v >= thr`` with the surrogate's derivative of ``(v - thr) / s`` (graph units),
    the reset ``v - n thr``, the lower clamp a masked identity. The values returned
    are the chip's, bit for bit."""
    v = v + x
    z = heaviside((v - params.thr) / params.scale, surrogate, False)
    z = fp.straight_through(z, n >= 1)
    spikes = z * jnp.maximum(n, 1).astype(z.dtype)
    v = jnp.maximum(v - spikes * params.thr, -params.thr)
    return fp.straight_through(v, chip_v), spikes


# ------------------------------------------------------------------ the model
class Speck(AbstractHardwareModel):
    """Speck (see :mod:`nirsim.hardware_models.speck`)."""

    dt: float = eqx.field(static=True, converter=checked_dt)
    raw: bool = eqx.field(static=True, default=False)
    surrogate: AbstractSurrogate = FastSigmoid()
    dtype: object = eqx.field(static=True, default=None)

    name: ClassVar[str] = "speck"
    supported: ClassVar[tuple[type, ...]] = (
        Input,
        Output,
        Conv2d,
        Affine,
        Linear,
        IF,
        SumPool2d,
        AvgPool2d,
        Flatten,
    )

    # -- the layers
    def weight_of(self, network, if_name) -> str:
        return network.predecessors(if_name)[0]

    def pool_factor(self, network, weight_name) -> float:
        """``1/k^2`` for each AvgPool2d between the previous layer and
        ``weight_name``."""
        f = 1.0
        node = weight_name
        while True:
            preds = network.predecessors(node)
            if len(preds) != 1:
                return f
            node = preds[0]
            p = network.nodes[node]
            if isinstance(p, AvgPool2d):
                f /= math.prod(p.kernel_size)
            elif not isinstance(p, POOLS + (Flatten,)):
                return f

    def layer_weights(self, network, weight_name):
        p = network.nodes[weight_name]
        w = p.weight * self.pool_factor(network, weight_name)
        b = p.bias if isinstance(p, Conv2d | Affine) else None
        return w, b

    def scale(self, network, if_name) -> Array:
        w, b = self.layer_weights(network, self.weight_of(network, if_name))
        thr = network.nodes[if_name].v_threshold
        s = jnp.minimum(side_scale(w, 8), side_scale(jnp.stack([thr, -thr]), 16))
        if b is not None:
            s = jnp.minimum(s, side_scale(b, 16))
        return s

    # -- the discrete solver
    def rule(self, network, name, primitive):
        return SpeckRule(
            scale=self.scale(network, name), raw=self.raw, surrogate=self.surrogate
        )

    def rewrite(self, network, name, primitive):
        if isinstance(primitive, AvgPool2d):
            return SumPool2d(
                input_shape=primitive.input_shape,
                kernel_size=primitive.kernel_size,
                stride=primitive.stride,
                padding=primitive.padding,
            )
        if not isinstance(primitive, WEIGHTS):
            return primitive
        s = self.scale(network, network.successors(name)[0])
        w, b = self.layer_weights(network, name)
        out = eqx.tree_at(lambda p: p.weight, primitive, fp.round_half_even(w * s))
        if b is not None:
            out = eqx.tree_at(lambda p: p.bias, out, fp.round_half_even(b * s))
        return out

    def limits(self, network):
        layers = [n for n in network.order if isinstance(network.nodes[n], IF)]
        if len(layers) > 9:
            raise GraphError(f"speck: {len(layers)} layers (IF nodes), more than 9")
        for n in network.order:
            p = network.nodes[n]
            if isinstance(p, WEIGHTS):
                succ = network.successors(n)
                if len(succ) != 1 or not isinstance(network.nodes[succ[0]], IF):
                    self.refuse(n, p, "a weight layer must feed exactly one IF node")
                if isinstance(p, Conv2d):
                    self._conv_limits(n, p)
                else:
                    self._dense_limits(network, n, p)
            if isinstance(p, IF):
                preds = network.predecessors(n)
                if len(preds) != 1 or not isinstance(network.nodes[preds[0]], WEIGHTS):
                    self.refuse(n, p, "an IF layer must be fed by exactly one weight node")
                if np.unique(np.asarray(p.v_threshold)).size != 1:
                    self.refuse(n, p, "one v_threshold per layer (Speck has one per layer)")
                if np.any(np.asarray(p.v_threshold) <= 0):
                    self.refuse(n, p, "v_threshold must be > 0")
            if isinstance(p, POOLS):
                k, st, pad = tuple(p.kernel_size), tuple(p.stride), tuple(p.padding)
                if k[0] != k[1] or k[0] not in (1, 2, 4) or st != k or any(pad):
                    self.refuse(
                        n, p, f"pooling {k} stride {st} padding {pad}: Speck pools 1, 2 "
                        "or 4 (square, stride = kernel, no padding)",
                    )  # fmt: skip

    def _conv_limits(self, n, p):
        k = tuple(p.weight.shape[-2:])
        if k[0] != k[1] or k[0] >= 16:
            self.refuse(n, p, f"kernel {k}: Speck's kernels are square and smaller than 16")
        st = tuple(p.stride)
        if st[0] != st[1] or st[0] not in (1, 2, 4, 8):
            self.refuse(n, p, f"stride {st}: Speck strides are 1, 2, 4 or 8")
        pad = p.padding
        if isinstance(pad, str) or any(not 0 <= q <= 7 for q in pad):
            self.refuse(n, p, f"padding {pad!r}: Speck pads 0..7")
        if tuple(p.dilation) != (1, 1) or p.groups != 1:
            self.refuse(n, p, "dilation and groups must be 1")
        c_in, c_out = p.in_shape[0], p.out_shape[0]
        if max(c_in, c_out) > 1024:
            self.refuse(n, p, f"{max(c_in, c_out)} channels, more than 1024")
        if max(p.in_shape[1:]) > 64:
            self.refuse(n, p, f"input map {tuple(p.in_shape[1:])}, larger than 64x64")

    def _dense_limits(self, network, n, p):
        preds = network.predecessors(n)
        src = network.nodes[preds[0]] if len(preds) == 1 else None
        if isinstance(src, Flatten) and len(src.input_shape) == 3:
            c, h, w = src.input_shape  # a convolution covering the map
        elif isinstance(src, IF) and len(src.shape) == 1:
            c, h, w = src.shape[0], 1, 1  # a 1x1 convolution over a flat layer
        else:
            self.refuse(
                n, p, "a dense layer must follow a Flatten of a (C, H, W) map or a "
                "flat IF layer",
            )  # fmt: skip
        if h >= 16 or w >= 16 or c > 1024 or p.out_shape[0] > 1024:
            self.refuse(
                n, p, f"as a convolution over the ({c}, {h}, {w}) map it needs a kernel "
                f"{(h, w)} (< 16) and at most 1024 channels",
            )  # fmt: skip

    def report(self, network) -> MappingReport:
        dt = float(self.dt)
        out = []
        for n in network.order:
            p = network.nodes[n]
            if not isinstance(p, IF):
                continue
            wname = self.weight_of(network, n)
            s = self.scale(network, n)
            w, b = self.layer_weights(network, wname)
            out.append(
                entry(
                    wname,
                    "weight",
                    w,
                    fp.round_half_even(w * s),
                    unit=s,
                    note=f"8-bit; pooling factor {self.pool_factor(network, wname):g}",
                )  # fmt: skip
            )
            if b is not None:
                out.append(entry(wname, "bias", b, fp.round_half_even(b * s), unit=s))
            thr = jnp.clip(fp.round_half_even(p.v_threshold * s), 1, 32767)
            out.append(entry(n, "v_threshold", p.v_threshold, thr, unit=s, note="16-bit"))
            out.append(entry(n, "scale", 1.0, s, action="scale", note="one per layer"))
            out.append(ignored(n, "r", p.r, 1.0, "a spike moves v by its weight"))
            out.append(ignored(n, "v_reset", p.v_reset, 0.0, "reset by subtraction"))
            out.append(
                entry(
                    n,
                    "lower clamp",
                    -p.v_threshold,
                    -thr,
                    unit=s,
                    action="changed",
                    note="added: v >= -v_threshold",
                )  # fmt: skip
            )
        return MappingReport(self.name, dt, tuple(out))
