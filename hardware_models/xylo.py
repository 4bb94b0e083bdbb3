r"""SynSense Xylo as Rockpool maps a NIR graph onto it and its SNN core steps it.
Sources and confidence: ``../shared/HARDWARE.md`` (rockpool 3.1
``nn/modules/torch/nir.py``, ``devices/xylo/.../xylo_mapper.py``,
``transform/quantize_methods.py``; xylosim 0.1.3 ``XyloLayer.cpp``,
``XyloIAFNeuron.cpp``).

**The graph Xylo holds**: Input -> weights -> hidden CubaLIF layers (hidden ->
hidden weights, recurrent or feed-forward, allowed) -> weights -> output CubaLIF
layer -> Output. Weights are Linear or Affine with zero bias; the input weights come
from the graph inputs only, the output neurons are the CubaLIF nodes that feed an
Output node and receive only from hidden neurons.

**The mapping** (per node; :meth:`Xylo.report` lists each change):

* ``dash_syn = round(log2(tau_syn/dt))``, ``dash_mem = round(log2(tau_mem/dt))``
  (halves to even; ``tau <= dt`` is refused, values above 15 are clipped): the
  decay per step is ``1 - 2^-dash`` (tau 2.5 ms at dt 0.1 ms gives 0.96875, not
  ``exp(-0.04)``);
* weights ``round(w s)`` (halves to even) with ``s = 127 / max|W|``: per target
  neuron over all the weights it receives (``quantisation=PerChannel()``, Rockpool's
  ``channel_quantize``, the default as in the paper) or one ``s`` for the hidden
  population and one for the output population (``Global()``, Rockpool's
  ``global_quantize``; that the output layer gets its own scale is **[doc]**);
  thresholds ``round(v_threshold s)`` and the bias ``round(v_leak s)`` get the same
  scale (a bias needs a v2 core);
* ``r`` and ``w_in`` are ignored, ``v_reset`` too (reset by subtraction); the
  second synapse per hidden neuron is unused (NIR has one).

In the graph's units ``v = v_chip / s`` and ``i_syn = i_chip / s``.

**The step** (int16 saturating state, integers throughout):

1. input events of this step, their count clipped to 15 per channel, add
   ``w << shift`` to ``i_syn``; hidden spikes of the **previous** step add to hidden
   and output ``i_syn`` (input -> hidden has no delay; hidden -> hidden and
   hidden -> output one step);
2. ``i_syn -= decay(i_syn, dash_syn)`` with ``decay(x, d) = x >> d`` but at least
   1 in magnitude where ``x != 0`` (a fresh input is decayed once before it reaches
   ``v``; ``dash_syn = 0`` erases input);
3. v1 core: ``v -= decay(v, dash_mem)``, then ``v += i_syn``; v2 cores (Xylo Audio 2,
   IMU, Audio 3): ``dv = -decay(v, dash_mem) + i_syn + bias``, ``v += dv``; every
   add saturates to int16;
4. while ``v >= thr`` and fewer than ``max`` spikes: emit, ``v -= thr`` (``max`` = 31
   for hidden, 1 for output neurons).

Gradients (quantisation-aware training): the forward pass is the chip's, bit for
bit; backward, the mapping's roundings and the step's shifts pass straight through
(identity), clips and int16 saturations are masked identities (1 inside the range,
0 outside), and each spike count has the ``surrogate``'s derivative of
``(v - thr) / s`` (:func:`relaxed_step`). The weight scale ``s`` is a function of
the weights and is differentiated as such. With ``raw=True`` the recorded chip
integers carry no gradient.

Deviation from xylosim: the step's weighted input is added to ``i_syn`` as one
saturating sum, whereas the chip saturates after each event. They differ only when
partial sums of mixed-sign events cross ``+-2^15`` within one step.

**Sizes** (``core``): :class:`XyloV1` and :class:`XyloAudio2` 16 inputs, 1000
hidden, 8 outputs; :class:`XyloIMU` 16 inputs, 496 hidden, 16 outputs;
:class:`XyloAudio3` 16 inputs, 992 hidden, 32 outputs (input counts of IMU and
Audio 3 **[doc]**). A larger graph is refused with the limit named, as are LIF
(not mappable), LI (its output-synapse mapping is not modelled here), other node
types, a bias on a v1 core, thresholds that quantise to 0 and a weight layer with a
non-zero bias.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from nirsim._custom_types import Array, Shape
from nirsim._errors import GraphError, InputError
from nirsim.primitives import AbstractStateless, Affine, CubaLIF, Input, Linear, Output
from nirsim.solvers.discrete.base import AbstractStepRule, Drive, checked_dt, float_dtype
from nirsim.solvers.surrogate import AbstractSurrogate, FastSigmoid, heaviside

from . import fixed_point as fp
from .base import AbstractHardwareModel, MappingReport, entry, ignored

WEIGHTS = (Affine, Linear)
I16 = (-(1 << 15), (1 << 15) - 1)


# ------------------------------------------------------------------ cores and options
class AbstractCore(eqx.Module):
    """A Xylo SNN core: its sizes and its membrane update."""

    n_inputs: ClassVar[int] = 16
    n_hidden: ClassVar[int]
    n_outputs: ClassVar[int]
    v2: ClassVar[bool] = True


class XyloV1(AbstractCore):
    """The first Xylo SNN core (membrane decays then adds ``i_syn``; no bias)."""

    n_hidden: ClassVar[int] = 1000
    n_outputs: ClassVar[int] = 8
    v2: ClassVar[bool] = False


class XyloAudio2(AbstractCore):
    n_hidden: ClassVar[int] = 1000
    n_outputs: ClassVar[int] = 8


class XyloIMU(AbstractCore):
    n_hidden: ClassVar[int] = 496
    n_outputs: ClassVar[int] = 16


class XyloAudio3(AbstractCore):
    n_hidden: ClassVar[int] = 992
    n_outputs: ClassVar[int] = 32


class AbstractQuantisation(eqx.Module):
    """How the weight scale ``s`` is chosen."""

    @abc.abstractmethod
    def scale(self, max_abs_per_neuron: Array, population_max: Array) -> Array: ...


class PerChannel(AbstractQuantisation):
    """``s_i = 127 / max|W[i, :]|`` per target neuron (``channel_quantize``)."""

    def scale(self, max_abs_per_neuron, population_max):
        return per_max(max_abs_per_neuron)


class Global(AbstractQuantisation):
    """One ``s = 127 / max|W|`` per population, hidden or output
    (``global_quantize``)."""

    def scale(self, max_abs_per_neuron, population_max):
        return jnp.broadcast_to(per_max(population_max), max_abs_per_neuron.shape)


def per_max(m: Array) -> Array:
    """``127 / m``: ``inf`` where ``m = 0`` (a neuron with no non-zero input weight),
    with a finite gradient there (0) rather than ``0 * inf``."""
    safe = jnp.where(m > 0, m, 1.0)
    return jnp.where(m > 0, 127.0 / safe, jnp.inf)


# ------------------------------------------------------------------ integer helpers
def decay(x: Array, dash: Array) -> Array:
    """``x >> dash``, but at least 1 in magnitude where ``x != 0``."""
    d = fp.shift_right(x, dash)
    return jnp.where((x != 0) & (d == 0), jnp.sign(x), d)


def sat(x: Array) -> Array:
    return fp.saturate(x, *I16)


class XyloDense(AbstractStateless):
    """A Xylo weight layer: ``(w << shift) @ clip(n, 0, max_count)`` on event counts
    (``max_count`` 15 for the input layer, none for hidden spikes, which a hidden
    neuron emits at most 31 per step)."""

    nir_type = "Linear"
    param_names = ("weight",)
    weight: Array
    shift: int = eqx.field(static=True, default=0)
    max_count: int | None = eqx.field(static=True, default=None)

    @property
    def in_shape(self) -> Shape:
        return (self.weight.shape[-1],)

    @property
    def out_shape(self) -> Shape:
        return (self.weight.shape[0],)

    @classmethod
    def from_nir(cls, node, in_shape):
        raise GraphError("XyloDense is a chip detail, not a NIR node")

    def to_nir(self):
        raise GraphError("XyloDense is a chip detail, not a NIR node")

    def linear(self, x):
        if self.max_count is not None:
            x = jnp.clip(x, 0, self.max_count)
        return (self.weight * 2.0**self.shift) @ x


# ------------------------------------------------------------------ the step rule
class XyloParams(eqx.Module):
    """A population's chip numbers (``int32`` for :func:`step`; in
    :class:`XyloRule`, floats holding the same integers, with straight-through
    gradients) and its weight scale ``s`` (chip units per graph unit)."""

    dash_syn: Array
    dash_mem: Array
    thr: Array
    bias: Array
    scale: Array


class XyloState(eqx.Module):
    i_syn: Array
    v: Array


class XyloRule(AbstractStepRule):
    """One population of Xylo LIF neurons (see the module docstring).

    As :class:`~nirsim.hardware_models.loihi2.LoihiRule`: the chip's integer
    :func:`step` gives the values, :func:`relaxed_step` on floats holding the same
    integers gives the gradient."""

    scale: Array
    v2: bool = eqx.field(static=True, default=True)
    max_spikes: int = eqx.field(static=True, default=31)
    raw: bool = eqx.field(static=True, default=False)
    surrogate: AbstractSurrogate = FastSigmoid()

    @property
    def spikes_per_step(self):
        return self.max_spikes

    def interpret(self, primitive, dt, options):
        num = neuron_numbers(primitive, dt, self.scale)
        dtype = float_dtype(primitive)
        return XyloParams(
            dash_syn=num["dash_syn"].astype(dtype),
            dash_mem=num["dash_mem"].astype(dtype),
            thr=num["thr"].astype(dtype),
            bias=num["bias"].astype(dtype),
            scale=num["scale"].astype(dtype),
        )

    def init(self, params, dt):
        z = jnp.zeros(params.thr.shape, params.scale.dtype)
        return XyloState(z, z)

    def step(self, params, state, drive: Drive, dt):
        x = drive.current + drive.impulse
        ints = XyloParams(
            *(fp.as_int(p) for p in (params.dash_syn, params.dash_mem)),
            *(fp.as_int(p) for p in (params.thr, params.bias)),
            params.scale,
        )
        held = XyloState(fp.as_int(state.i_syn), fp.as_int(state.v))
        chip, n = step(ints, held, fp.as_int(x), self.v2, self.max_spikes)
        return relaxed_step(params, state, x, chip, n, self.v2, self.surrogate)

    def observe(self, params, state):
        if self.raw:
            return {"i_syn": fp.as_int(state.i_syn), "v": fp.as_int(state.v)}
        return {"i_syn": state.i_syn / params.scale, "v": state.v / params.scale}


def step(params: XyloParams, state: XyloState, x: Array, v2: bool, max_spikes: int):
    """One Xylo step on integers (``x``: the summed weighted input events)."""
    i = sat(state.i_syn + x)
    i = i - decay(i, params.dash_syn)
    if v2:
        dv = sat(-decay(state.v, params.dash_mem) + i)
        dv = sat(dv + params.bias)
        v = sat(state.v + dv)
    else:
        v = sat(state.v - decay(state.v, params.dash_mem))
        v = sat(v + i)
    thr = jnp.maximum(params.thr, 1)
    n = jnp.where(v >= thr, jnp.minimum(v // thr, max_spikes), 0)
    return XyloState(i, v - n * thr), n


def relaxed_step(
    params: XyloParams,
    state: XyloState,
    x: Array,
    chip: XyloState,
    n: Array,
    v2: bool,
    surrogate: AbstractSurrogate,
):
    """The chip's step ``chip, n`` (from :func:`step`) with the gradient of the step
    on floats (``params``, ``state``: floats holding the chip's integers; ``x``: the
    weighted input as a float, whose gradient reaches the Network).

    Straight through: the decay ``x >> dash`` (at least 1) as ``x 2^-dash`` (so the
    gradient reaches ``dash`` and, through its rounding, ``tau``); every int16
    saturation as a masked identity (:func:`fixed_point.clip`); the spike count as
    the chip's count ``n`` times the 0/1 decision ``v >= thr``, whose derivative is
    the surrogate's of ``(v - thr) / s`` (graph units; ``n`` itself carries none, as
    the engine's multi-spike rules); the reset as ``v - n thr``. The values returned
    are the chip's, bit for bit."""
    lo, hi = I16
    i = fp.clip(state.i_syn + x, lo, hi)
    i = i - i * 2.0**-params.dash_syn
    leak = state.v * 2.0**-params.dash_mem
    if v2:
        v = fp.clip(state.v + fp.clip(-leak + i + params.bias, lo, hi), lo, hi)
    else:
        v = fp.clip(state.v - leak + i, lo, hi)
    thr = jnp.maximum(params.thr, 1.0)
    z = heaviside((v - thr) / params.scale, surrogate, False)
    z = fp.straight_through(z, n >= 1)
    spikes = z * jnp.maximum(n, 1).astype(z.dtype)
    v = v - spikes * thr
    new = XyloState(fp.straight_through(i, chip.i_syn), fp.straight_through(v, chip.v))
    return new, spikes


def dash(tau, dt):
    """``round(log2(tau/dt))`` (halves to even), clipped to 0..15."""
    return jnp.clip(fp.round_half_even(jnp.log2(tau / dt)), 0, 15)


def neuron_numbers(p: CubaLIF, dt: float, scale: Array) -> dict[str, Array]:
    return {
        "dash_syn": dash(p.tau_syn, dt),
        "dash_mem": dash(p.tau_mem, dt),
        "thr": jnp.clip(fp.round_half_even(p.v_threshold * scale), 0, I16[1]),
        "bias": jnp.clip(fp.round_half_even(p.v_leak * scale), *I16),
        "scale": scale,
    }


# ------------------------------------------------------------------ the model
class Xylo(AbstractHardwareModel):
    """Xylo (see :mod:`nirsim.hardware_models.xylo`)."""

    dt: float = eqx.field(static=True, converter=checked_dt)
    core: AbstractCore = XyloAudio2()
    quantisation: AbstractQuantisation = PerChannel()
    shifts: tuple[int, int, int] = eqx.field(static=True, default=(0, 0, 0))
    raw: bool = eqx.field(static=True, default=False)
    surrogate: AbstractSurrogate = FastSigmoid()
    dtype: object = eqx.field(static=True, default=None)

    name: ClassVar[str] = "xylo"
    supported: ClassVar[tuple[type, ...]] = (Input, Output, Affine, Linear, CubaLIF)

    def __check_init__(self):
        s = self.shifts
        if len(s) != 3 or any(not isinstance(k, int) or not 0 <= k <= 7 for k in s):
            raise InputError(
                f"shifts must be three integers 0..7 (in, rec, out), got {s!r}"
            )

    # -- structure
    def outputs(self, network) -> set[str]:
        return {
            n
            for n in network.order
            if isinstance(network.nodes[n], CubaLIF)
            and any(isinstance(network.nodes[s], Output) for s in network.successors(n))
        }

    def population(self, network, name) -> tuple[str, ...]:
        """The neuron nodes of ``name``'s population (hidden or output)."""
        outs = self.outputs(network)
        want = name in outs
        return tuple(
            n
            for n in network.order
            if isinstance(network.nodes[n], CubaLIF) and (n in outs) == want
        )

    def scale(self, network, name) -> Array:
        """The weight scale of each neuron of node ``name``."""

        def row_max(n):
            m = jnp.zeros(network.shape(n))
            for q in network.predecessors(n):
                p = network.nodes[q]
                if isinstance(p, WEIGHTS):
                    m = jnp.maximum(m, jnp.max(jnp.abs(p.weight), axis=1))
            return m

        mine = row_max(name)
        pop = jnp.max(
            jnp.stack([jnp.max(row_max(n)) for n in self.population(network, name)])
        )
        return self.quantisation.scale(mine, pop)

    # -- the discrete solver
    def rule(self, network, name, primitive):
        out = name in self.outputs(network)
        return XyloRule(
            scale=self.scale(network, name),
            v2=self.core.v2,
            max_spikes=1 if out else 31,
            raw=self.raw,
            surrogate=self.surrogate,
        )

    def delivers_late(self, network, name):
        return True  # hidden spikes reach hidden and output neurons a step later

    def chip_weights(self, network, name, prim) -> Array:
        target = network.successors(name)[0]
        s = self.scale(network, target)[:, None]
        # a row of zeros (scale inf) maps to zeros, not to 0 * inf
        scaled = jnp.where(
            jnp.isfinite(s), prim.weight * jnp.where(jnp.isfinite(s), s, 1.0), 0.0
        )
        return jnp.clip(fp.round_half_even(scaled), -128, 127)

    def rewrite(self, network, name, primitive):
        if not isinstance(primitive, WEIGHTS):
            return primitive
        src = network.predecessors(name)[0]
        from_input = isinstance(network.nodes[src], Input)
        target = network.successors(name)[0]
        shift = self.shifts[
            0 if from_input else 2 if target in self.outputs(network) else 1
        ]
        return XyloDense(
            self.chip_weights(network, name, primitive),
            shift=shift,
            max_count=15 if from_input else None,
        )

    def limits(self, network):
        dt = float(self.dt)
        outs = self.outputs(network)
        core = self.core
        for n in network.order:
            p = network.nodes[n]
            if isinstance(p, WEIGHTS):
                preds, succ = network.predecessors(n), network.successors(n)
                if len(succ) != 1 or not isinstance(network.nodes[succ[0]], CubaLIF):
                    self.refuse(n, p, "a weight layer must feed exactly one CubaLIF node")
                if len(preds) != 1 or not isinstance(
                    network.nodes[preds[0]], Input | CubaLIF
                ):
                    self.refuse(n, p, "a weight layer must read one Input or CubaLIF node")
                if preds[0] in outs:
                    self.refuse(n, p, f"output neurons ('{preds[0]}') do not project")
                if isinstance(network.nodes[preds[0]], Input) and succ[0] in outs:
                    self.refuse(n, p, "the inputs reach output neurons only through hidden")
                if isinstance(p, Affine) and np.any(np.asarray(p.bias) != 0):
                    self.refuse(n, p, "Xylo's weight layers have no bias (use Linear)")
            if isinstance(p, CubaLIF):
                for q in network.predecessors(n):
                    if not isinstance(network.nodes[q], WEIGHTS):
                        self.refuse(n, p, f"input only through weights; '{q}' feeds it")
                for f in ("tau_syn", "tau_mem"):
                    tau = np.asarray(getattr(p, f))
                    if np.any(tau <= dt * (1 + 1e-9)):
                        self.refuse(
                            n,
                            p,
                            f"{f} = {tau.min():g} <= dt = {dt:g} (Xylo needs tau > dt)",
                        )
                if not core.v2 and np.any(np.asarray(p.v_leak) != 0):
                    self.refuse(n, p, "v_leak becomes a bias, which the v1 core lacks")
                thr = np.asarray(neuron_numbers(p, dt, self.scale(network, n))["thr"])
                if np.any(thr <= 0):
                    self.refuse(n, p, "v_threshold quantises to 0 (it must be > 0)")
        n_in = sum(int(np.prod(network.shape(n))) for n in network.inputs)
        hidden = [n for n in network.order if isinstance(network.nodes[n], CubaLIF)]
        n_hid = sum(int(np.prod(network.shape(n))) for n in hidden if n not in outs)
        n_out = sum(int(np.prod(network.shape(n))) for n in outs)
        where = type(core).__name__
        for what, got, lim in (
            ("input channels", n_in, core.n_inputs),
            ("hidden neurons", n_hid, core.n_hidden),
            ("output neurons", n_out, core.n_outputs),
        ):
            if got > lim:
                raise GraphError(f"xylo: {got} {what}, more than {where} holds ({lim})")
        if n_hid == 0 or n_out == 0:
            raise GraphError(
                "xylo: the graph needs hidden CubaLIF neurons and output CubaLIF "
                "neurons (a CubaLIF node feeding an Output node)"
            )

    def specification(self, network) -> dict:
        """The chip's integer configuration of ``network`` (concrete, checked), in
        the layout of Rockpool's ``XyloSim.from_specification`` (xylosim's
        ``XyloLayer``): ``weights_in (inputs, hidden)``, ``weights_rec (hidden,
        hidden)``, ``weights_out (hidden, outputs)``, per-neuron ``dash_mem``,
        ``dash_syn``, ``threshold``, ``bias`` and their ``*_out`` versions, and the
        three weight shifts. Neurons are numbered node by node in the network's
        order; the vendor's simulator run on it gives the raster of this model."""
        self.check(network)
        dt = float(self.dt)
        outs = self.outputs(network)
        hidden = [
            n
            for n in network.order
            if isinstance(network.nodes[n], CubaLIF) and n not in outs
        ]
        output = [n for n in network.order if n in outs]

        def offsets(names):
            out, k = {}, 0
            for n in names:
                out[n] = k
                k += int(np.prod(network.shape(n)))
            return out, k

        at_in, n_in = offsets(network.inputs)
        at_hid, n_hid = offsets(hidden)
        at_out, n_out = offsets(output)
        w_in = np.zeros((n_in, n_hid), np.int64)
        w_rec = np.zeros((n_hid, n_hid), np.int64)
        w_out = np.zeros((n_hid, n_out), np.int64)
        for n in network.order:
            p = network.nodes[n]
            if not isinstance(p, WEIGHTS):
                continue
            src, dst = network.predecessors(n)[0], network.successors(n)[0]
            w = np.asarray(self.chip_weights(network, n, p), np.int64).T  # (pre, post)
            if src in at_in:
                block, i, j = w_in, at_in[src], at_hid[dst]
            elif dst in at_out:
                block, i, j = w_out, at_hid[src], at_out[dst]
            else:
                block, i, j = w_rec, at_hid[src], at_hid[dst]
            block[i : i + w.shape[0], j : j + w.shape[1]] += w

        def numbers(names):
            got = [
                neuron_numbers(network.nodes[n], dt, self.scale(network, n)) for n in names
            ]
            return {
                k: np.concatenate([np.asarray(g[k]).reshape(-1) for g in got]).astype(
                    np.int64
                )
                for k in ("dash_mem", "dash_syn", "thr", "bias")
            }

        hid, out = numbers(hidden), numbers(output)
        return {
            "weights_in": w_in,
            "weights_rec": w_rec,
            "weights_out": w_out,
            "dash_mem": hid["dash_mem"],
            "dash_syn": hid["dash_syn"],
            "threshold": hid["thr"],
            "bias": hid["bias"],
            "dash_mem_out": out["dash_mem"],
            "dash_syn_out": out["dash_syn"],
            "threshold_out": out["thr"],
            "bias_out": out["bias"],
            "weight_shift_in": self.shifts[0],
            "weight_shift_rec": self.shifts[1],
            "weight_shift_out": self.shifts[2],
        }

    def report(self, network) -> MappingReport:
        dt = float(self.dt)
        out = []
        for n in network.order:
            p = network.nodes[n]
            if isinstance(p, CubaLIF):
                s = self.scale(network, n)
                num = neuron_numbers(p, dt, s)
                for f, d in (("tau_syn", "dash_syn"), ("tau_mem", "dash_mem")):
                    tau = getattr(p, f)
                    out.append(
                        entry(
                            n,
                            f"{f} -> {d}",
                            jnp.exp(-dt / tau),
                            1 - 2.0 ** -num[d],
                            note=f"decay 1 - 2^-{d} vs exp(-dt/{f}); {d} = "
                            f"{int(np.asarray(num[d]).reshape(-1)[0])}",
                        )  # fmt: skip
                    )
                out.append(
                    entry(
                        n,
                        "v_threshold",
                        p.v_threshold,
                        num["thr"],
                        unit=s,
                        note="16-bit, same scale as the weights",
                    )  # fmt: skip
                )
                out.append(entry(n, "v_leak -> bias", p.v_leak, num["bias"], unit=s))
                out.append(
                    entry(n, "scale", 1.0, s, action="scale", note="chip per graph unit")
                )
                out.append(ignored(n, "r", p.r, 1.0, "Rockpool adds i_syn to v"))
                out.append(ignored(n, "w_in", p.w_in, 1.0, "weights add to i_syn"))
                out.append(ignored(n, "v_reset", p.v_reset, 0.0, "reset by subtraction"))
            elif isinstance(p, WEIGHTS) and len(network.successors(n)) == 1:
                target = network.successors(n)[0]
                if not isinstance(network.nodes[target], CubaLIF):
                    continue
                s = self.scale(network, target)[:, None]
                out.append(
                    entry(
                        n,
                        "weight",
                        p.weight,
                        self.chip_weights(network, n, p),
                        unit=s,
                        note="int8, round half to even",
                    )  # fmt: skip
                )
        return MappingReport(self.name, dt, tuple(out))
