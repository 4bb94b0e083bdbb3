r"""Intel Loihi 2 as Lava's bit-accurate models execute it (``PyLifModelBitAcc``,
``PyDenseModelBitAcc``), with the NIR paper converter's mapping for LIF and
lava-dl's for CubaLIF. Sources and confidence: ``../shared/HARDWARE.md``
(lava-nc 0.10 ``lava/proc/lif/models.py``, ``lava/proc/dense/models.py``,
``lava/utils/weightutils.py``; the paper's ``nir_to_lava.py``).

**The step** of a neuron (integers; ``trunc0`` rounds toward zero):

1. ``u = trunc0(u (4096 - (du + 1)) / 4096) + (a_in << 6)``: ``du = 4095`` clears
   ``u`` every step; ``u`` then wraps as Lava wraps it: above ``2^23`` it loses
   ``2^24``, at or below ``-2^23`` it gains ``2^24`` (so ``u`` lies in
   ``(-2^23, 2^23]``);
2. ``v = trunc0(v (4096 - dv) / 4096) + u + bias`` with
   ``bias = bias_mant << bias_exp`` (``>>`` for a negative exponent), saturated
   to ``[-(2^23 - 1), 2^23 - 1]`` (no wrap);
3. spike where ``v > vth << 6`` (strict), then ``v = 0``; ``u`` is not reset, no
   refractory period, one spike per step.

``a_in`` is the sum of the integer weights of the events that reached the neuron,
shifted by ``weight_exp`` (``<<`` for positive, ``>>``, i.e. floor, for negative).

**Synapses** (every Affine and Linear is a Dense): integer weights are clipped by
sign mode (all ``>= 0``: ``[0, 255]``; all ``<= 0``: ``[-255, 0]``; mixed:
``[-256, 255]``), and in mixed mode the lowest bit is lost by flooring
(``(w >> 1) << 1``). Each Dense adds **one step** of delay: it emits in step ``n``
what it received in step ``n - 1``.

**Mappings** (the vendor's; :meth:`Loihi2.report` lists each change):

* NIR ``LIF`` (the paper's ``nir_to_lava.py``, fixed point): ``dv =
  trunc(4095 dt/tau)``, ``du = 4095`` (no current), ``vth = trunc(v_threshold
  131071) >> 9``; the converter puts a Dense of weight ``trunc(256 dt/tau)`` before
  each LIF and maps an Affine's weights to ``trunc(256 W)``. Loihi chains no two
  Dense with graded values, and the published traces have **one Dense between input
  and neuron**, so here the Affine or Linear feeding a LIF is that one Dense, of
  weight ``trunc(256 W dt/tau)`` (``W = 1`` gives the paper's 10); ``r``,
  ``v_leak`` and ``v_reset`` are ignored (reset is to 0). In the graph's units
  ``v = v_chip / (64 * 131071 / 512)``.
* NIR ``CubaLIF`` (lava-dl's CUBA neuron): ``du = round(4096 dt/tau_syn)``,
  ``dv = round(4096 dt/tau_mem)`` (clipped to 4095), ``vth = trunc(64
  v_threshold)``, weights ``round(64 W w_in dt/tau_syn)`` (halves to even, as
  torch rounds; **[doc]**), then the Dense's sign-mode rule; ``v_reset`` is
  ignored; in the graph's units ``v = v_chip / 4096`` and ``i_syn = u / 4096``.

**Refused** (before running, naming the node): node types other than Input, Output,
Affine, Linear, LIF, CubaLIF; an Affine with a non-zero bias (the converter
asserts); a neuron fed other than through Dense synapses; a Dense that does not feed
exactly one neuron node; CubaLIF with ``v_leak != 0`` or ``r != tau_mem/dt``
(lava-dl refuses); ``v_threshold`` outside the 17-bit ``vth`` (``0 < vth <=
131071``); a negative ``weight_exp`` on a neuron fed by several Dense (the shift
would be applied to their sum).

Neither mapping gives a neuron a bias (the converter sets ``bias_mant = bias_exp =
0`` and refuses Affine biases); the step rule still carries the bias mantissa and
exponent for a mapping that sets them.

Options: ``weight_exp`` (the Dense's exponent, default 0); ``probe=True``: the
recorded ``v`` reads 128 (chip units) in the step of a spike, as the on-chip probe
of the published traces does (the dynamics carry on from 0); ``raw=True``: the
Trace holds the chip integers ``u`` and ``v``.

Gradients (quantisation-aware training): ``jax.grad`` through ``Loihi2`` reaches the
Network's weights, time constants and thresholds. The forward pass is the chip's,
bit for bit; backward, every rounding of the mapping and of the step (truncations,
shifts, the mixed-mode lost bit) is the identity (straight-through), every clip and
saturation a masked identity (1 inside the range, 0 outside), the current's wrap the
identity, and each spike the ``surrogate``'s derivative of ``(v - vth << 6)`` in the
graph's units (:func:`relaxed_step`). With ``raw=True`` the recorded chip integers
carry no gradient.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from nirsim._custom_types import Array
from nirsim.primitives import LIF, Affine, CubaLIF, Input, Linear, Output
from nirsim.solvers.discrete.base import AbstractStepRule, Drive, checked_dt, float_dtype
from nirsim.solvers.surrogate import AbstractSurrogate, FastSigmoid, heaviside

from . import fixed_point as fp
from .base import AbstractHardwareModel, MappingReport, entry, ignored

#: ``v`` and ``u`` are 24-bit: Lava's ``max_uv_val``
MAX_UV = 1 << 23
#: chip units of ``v`` per graph unit under the paper's LIF mapping
#: (``vth = v_th 131071 >> 9``, compared as ``vth << 6``)
PAPER_V_UNIT = 64 * 131071 / 512
#: chip units of ``v`` and ``u`` per graph unit under lava-dl's CUBA mapping
LAVADL_V_UNIT = 4096.0


def lava_wrap(u: Array) -> Array:
    """Lava's wrap of the 24-bit current: ``u > 2^23`` loses ``2^24``,
    ``u <= -2^23`` gains ``2^24``."""
    u = jnp.where(u > MAX_UV, u - 2 * MAX_UV, u)
    return jnp.where(u <= -MAX_UV, u + 2 * MAX_UV, u)


def dense_weights(w: Array) -> Array:
    """Lava's Dense weights from integers (floats holding integers): clipped by sign
    mode, the lowest bit lost (floor) in mixed mode. Straight-through gradient."""
    lo_all, hi_all = jnp.min(w), jnp.max(w)
    mixed = (lo_all < 0) & (hi_all > 0)
    inhibitory = hi_all <= 0
    lo = jnp.where(mixed, -256.0, jnp.where(inhibitory, -255.0, 0.0))
    hi = jnp.where(inhibitory & ~mixed, 0.0, 255.0)
    c = jnp.clip(w, lo, hi)
    return jnp.where(mixed, fp.straight_through(c, 2.0 * jnp.floor(c / 2.0)), c)


def sign_mode(w) -> str:
    w = np.asarray(w)
    if w.min() >= 0:
        return "excitatory"
    if w.max() <= 0:
        return "inhibitory"
    return "mixed"


# ------------------------------------------------------------------ the mappings
class LoihiParams(eqx.Module):
    """A neuron population's chip numbers and its unit conversion: ``int32`` for
    :func:`step`; in :class:`LoihiRule`, floats holding the same integers (with
    straight-through gradients)."""

    du: Array
    dv: Array
    vth: Array
    bias_mant: Array
    bias_exp: Array
    v_unit: Array
    cuba: bool = eqx.field(static=True)


def paper_lif(p: LIF, dt: float) -> dict[str, Array]:
    """The paper converter's LIF numbers (floats holding integers, unclipped)."""
    return {
        "dv": fp.round_toward_zero(4095.0 * dt / p.tau),
        "du": jnp.full(p.tau.shape, 4095.0),
        "vth": jnp.floor(fp.round_toward_zero(p.v_threshold * 131071.0) / 512.0),
        "w_factor": 256.0 * dt / p.tau,
        "v_unit": jnp.full(p.tau.shape, PAPER_V_UNIT),
    }


def lavadl_cuba(p: CubaLIF, dt: float) -> dict[str, Array]:
    """lava-dl's CUBA numbers for a CubaLIF (floats holding integers, unclipped)."""
    return {
        "du": fp.round_half_even(4096.0 * dt / p.tau_syn),
        "dv": fp.round_half_even(4096.0 * dt / p.tau_mem),
        "vth": fp.round_toward_zero(64.0 * p.v_threshold),
        "w_factor": 64.0 * p.w_in * dt / p.tau_syn,
        "v_unit": jnp.full(p.tau_mem.shape, LAVADL_V_UNIT),
    }


def neuron_numbers(p, dt):
    return paper_lif(p, dt) if isinstance(p, LIF) else lavadl_cuba(p, dt)


def dense_from(w: Array, target, dt: float) -> tuple[Array, Array]:
    """``(before, after)``: a Dense's weights feeding neuron ``target`` as the
    mapping rounds them, and after the Dense's sign-mode rule."""
    factor = neuron_numbers(target, dt)["w_factor"].reshape(-1)[:, None]
    if isinstance(target, LIF):
        before = fp.round_toward_zero(w * factor)
    else:
        before = fp.round_half_even(w * factor)
    return before, dense_weights(before)


# ------------------------------------------------------------------ the step rule
class LoihiState(eqx.Module):
    u: Array
    v: Array
    spiked: Array


class LoihiRule(AbstractStepRule):
    """One Loihi 2 LIF population (see the module docstring).

    The rule runs the chip's integer :func:`step` and, beside it, the same step on
    floats with every quantisation passed straight through (:func:`relaxed_step`),
    which gives the gradient only: its parameters and state are floats holding the
    chip's integers (forward values exactly those of :func:`step`), each new value is
    ``straight_through(relaxed, chip)`` and each spike the chip's decision with the
    surrogate's derivative."""

    weight_exp: int = eqx.field(static=True, default=0)
    probe: bool = eqx.field(static=True, default=False)
    raw: bool = eqx.field(static=True, default=False)
    surrogate: AbstractSurrogate = FastSigmoid()

    def interpret(self, primitive, dt, options):
        # floats holding the chip's integers, gradients straight through the mapping
        num = neuron_numbers(primitive, dt)
        dtype = float_dtype(primitive)
        zero = jnp.zeros(num["dv"].shape, dtype)
        return LoihiParams(
            du=fp.clip(num["du"], 0, 4095).astype(dtype),
            dv=fp.clip(num["dv"], 0, 4095).astype(dtype),
            vth=fp.clip(num["vth"], 0, 131071).astype(dtype),
            bias_mant=zero,
            bias_exp=zero,
            v_unit=num["v_unit"].astype(dtype),
            cuba=isinstance(primitive, CubaLIF),
        )

    def init(self, params, dt):
        zero = jnp.zeros(params.dv.shape, params.v_unit.dtype)
        return LoihiState(zero, zero, jnp.zeros(params.dv.shape, bool))

    def step(self, params, state, drive: Drive, dt):
        a_in = drive.current + drive.impulse
        ints = LoihiParams(
            *(fp.as_int(x) for x in (params.du, params.dv, params.vth)),
            *(fp.as_int(x) for x in (params.bias_mant, params.bias_exp)),
            params.v_unit,
            params.cuba,
        )
        held = LoihiState(fp.as_int(state.u), fp.as_int(state.v), state.spiked)
        chip, spiked = step(ints, held, fp.as_int(a_in), self.weight_exp)
        return relaxed_step(
            params, state, a_in, chip, spiked, self.weight_exp, self.surrogate
        )

    def observe(self, params, state):
        v = jnp.where(state.spiked, 128.0, state.v) if self.probe else state.v
        if self.raw:
            return {"u": fp.as_int(state.u), "v": fp.as_int(v)}
        unit = params.v_unit
        out = {"v": v / unit}
        if params.cuba:
            out = {"i_syn": state.u / unit, "v": v / unit}
        return out


def relaxed_step(
    params: LoihiParams,
    state: LoihiState,
    a_in: Array,
    chip: LoihiState,
    spiked: Array,
    weight_exp: int,
    surrogate: AbstractSurrogate,
):
    """The chip's step ``chip, spiked`` (from :func:`step`) with the gradient of the
    step on floats: ``params`` and ``state`` are floats holding the chip's integers,
    ``a_in`` the summed weights as a float (their gradient reaches the Network).

    Each quantisation of :func:`step` passes the gradient straight through: the
    truncated decays ``trunc0(x m / 4096)`` as ``x m / 4096``, the shifts as
    multiplications by ``2^k``, the current's wrap (derivative 1 wherever it is
    defined) as the identity; the saturation of ``v`` as a masked identity
    (:func:`fixed_point.clip`); the spike ``v > vth << 6`` as the surrogate's
    derivative of ``(v - 64 vth) / v_unit`` (graph units); the reset to 0 as
    ``v - z v`` (the surrogate spike ``z`` carrying gradient, as the engine's
    :class:`~nirsim.solvers.ToZero`). The values returned are the chip's, bit for
    bit."""
    a = a_in * 2.0**weight_exp
    u = state.u * (4096.0 - (params.du + 1.0)) / 4096.0 + 64.0 * a
    bias = params.bias_mant * 2.0**params.bias_exp
    v = state.v * (4096.0 - params.dv) / 4096.0 + u + bias
    v = fp.clip(v, -(MAX_UV - 1), MAX_UV - 1)
    z = heaviside((v - 64.0 * params.vth) / params.v_unit, surrogate, True)
    z = fp.straight_through(z, spiked)
    v = v - z * v
    new = LoihiState(
        fp.straight_through(u, chip.u), fp.straight_through(v, chip.v), chip.spiked
    )
    return new, z


def step(params: LoihiParams, state: LoihiState, a_in: Array, weight_exp: int = 0):
    """One Loihi 2 step on integers (``a_in``: the summed integer weights)."""
    a_in = fp.shift(a_in, weight_exp)
    u = fp.mul_shift_trunc0(state.u, 4096 - (params.du + 1), 12)
    u = lava_wrap(u + jnp.left_shift(a_in, 6))
    bias = fp.shift(params.bias_mant, params.bias_exp)
    v = fp.mul_shift_trunc0(state.v, 4096 - params.dv, 12) + u + bias
    v = fp.saturate(v, -(MAX_UV - 1), MAX_UV - 1)
    spiked = v > jnp.left_shift(params.vth, 6)
    v = jnp.where(spiked, 0, v)
    dtype = params.v_unit.dtype
    return LoihiState(u, v, spiked), spiked.astype(dtype)


# ------------------------------------------------------------------ the model
class Loihi2(AbstractHardwareModel):
    """Loihi 2 (see :mod:`nirsim.hardware_models.loihi2`)."""

    dt: float = eqx.field(static=True, converter=checked_dt)
    weight_exp: int = eqx.field(static=True, default=0)
    probe: bool = eqx.field(static=True, default=False)
    raw: bool = eqx.field(static=True, default=False)
    surrogate: AbstractSurrogate = FastSigmoid()
    dtype: object = eqx.field(static=True, default=None)

    name: ClassVar[str] = "loihi2"
    supported: ClassVar[tuple[type, ...]] = (Input, Output, Affine, Linear, LIF, CubaLIF)
    dense_delay = True

    def rule(self, network, name, primitive):
        return LoihiRule(
            weight_exp=self.weight_exp,
            probe=self.probe,
            raw=self.raw,
            surrogate=self.surrogate,
        )

    def rewrite(self, network, name, primitive):
        if not isinstance(primitive, Affine | Linear):
            return primitive
        target = network.nodes[network.successors(name)[0]]
        _, w = dense_from(primitive.weight, target, float(self.dt))
        return Linear(w)

    def limits(self, network):
        dt = float(self.dt)
        for n in network.order:
            p = network.nodes[n]
            if isinstance(p, Affine | Linear):
                succ = network.successors(n)
                if len(succ) != 1 or not isinstance(network.nodes[succ[0]], LIF | CubaLIF):
                    self.refuse(
                        n,
                        p,
                        "a Dense must feed exactly one LIF or CubaLIF node (it feeds "
                        f"{', '.join(succ) or 'nothing'})",
                    )
                if isinstance(p, Affine) and np.any(np.asarray(p.bias) != 0):
                    self.refuse(
                        n, p, "non-zero bias is not supported (the paper converter asserts)"
                    )
            if isinstance(p, LIF | CubaLIF):
                preds = network.predecessors(n)
                direct = [
                    q for q in preds if not isinstance(network.nodes[q], Affine | Linear)
                ]
                if direct:
                    self.refuse(
                        n,
                        p,
                        "Loihi 2 neurons receive input only through Dense synapses "
                        f"(Affine or Linear); '{direct[0]}' feeds it directly",
                    )
                if self.weight_exp < 0 and len(preds) > 1:
                    self.refuse(
                        n, p, "a negative weight_exp needs exactly one Dense per neuron"
                    )
                vth = np.asarray(neuron_numbers(p, dt)["vth"])
                if np.any(vth <= 0) or np.any(vth > 131071):
                    self.refuse(
                        n,
                        p,
                        f"v_threshold maps to vth = {vth.min():g}..{vth.max():g}, outside "
                        "the unsigned 17-bit range 1..131071",
                    )
            if isinstance(p, CubaLIF):
                if np.any(np.asarray(p.v_leak) != 0):
                    self.refuse(n, p, "v_leak != 0 is not supported (lava-dl refuses)")
                if not np.allclose(np.asarray(p.r), np.asarray(p.tau_mem) / dt, rtol=1e-5):
                    self.refuse(n, p, f"lava-dl requires r = tau_mem/dt (dt = {dt!r})")

    def report(self, network) -> MappingReport:
        dt = float(self.dt)
        out = []
        for n in network.order:
            p = network.nodes[n]
            if isinstance(p, LIF):
                num = paper_lif(p, dt)
                dv = np.clip(np.asarray(num["dv"]), 0, 4095)
                out.append(
                    entry(
                        n,
                        "tau -> dv",
                        dt / p.tau,
                        dv,
                        unit=4096.0,
                        note="decay per step dt/tau vs dv/4096, dv = trunc(4095 dt/tau)",
                    )  # fmt: skip
                )
                out.append(
                    entry(
                        n,
                        "v_threshold -> vth",
                        p.v_threshold,
                        num["vth"],
                        unit=PAPER_V_UNIT / 64,
                        note="vth = trunc(v_th 131071) >> 9",
                    )  # fmt: skip
                )
                out.append(ignored(n, "r", p.r, 1.0, "input weight is dt/tau (r = 1)"))
                out.append(ignored(n, "v_leak", p.v_leak, 0.0, "no bias"))
                out.append(ignored(n, "v_reset", p.v_reset, 0.0, "reset to 0"))
            elif isinstance(p, CubaLIF):
                num = lavadl_cuba(p, dt)
                du = np.clip(np.asarray(num["du"]), 0, 4095)
                dv = np.clip(np.asarray(num["dv"]), 0, 4095)
                out.append(
                    entry(
                        n,
                        "tau_syn -> du",
                        dt / p.tau_syn,
                        du + 1,
                        unit=4096.0,
                        note="decay dt/tau_syn vs (du + 1)/4096",
                    )  # fmt: skip
                )
                out.append(
                    entry(
                        n,
                        "tau_mem -> dv",
                        dt / p.tau_mem,
                        dv,
                        unit=4096.0,
                        note="decay dt/tau_mem vs dv/4096",
                    )  # fmt: skip
                )
                out.append(
                    entry(
                        n,
                        "v_threshold -> vth",
                        p.v_threshold,
                        num["vth"],
                        unit=64.0,
                        note="vth = trunc(64 v_th)",
                    )  # fmt: skip
                )
                out.append(ignored(n, "v_reset", p.v_reset, 0.0, "reset to 0"))
            elif isinstance(p, Affine | Linear):
                succ = network.successors(n)
                target = network.nodes[succ[0]] if succ else None
                if not isinstance(target, LIF | CubaLIF):
                    continue
                before, w = dense_from(p.weight, target, dt)
                num = neuron_numbers(target, dt)
                # the jump per event the graph means (Euler): W dt/tau, W w_in dt/tau_syn
                per = num["w_factor"] / (256.0 if isinstance(target, LIF) else 64.0)
                ideal = p.weight * per.reshape(-1)[:, None]
                b = np.asarray(before)
                lo, hi = {"excitatory": (0, 255), "inhibitory": (-255, 0)}.get(
                    sign_mode(b), (-256, 255)
                )
                clipped = bool(np.any((b < lo) | (b > hi)))
                unit = (num["v_unit"] / 64).reshape(-1)[:, None]
                out.append(
                    entry(
                        n,
                        "weight",
                        ideal,
                        w,
                        unit=unit,
                        action="clipped" if clipped else None,
                        note=f"8-bit Dense, {sign_mode(before)} sign mode, weight_exp "
                        f"{self.weight_exp}; per-event jump of the target's state",
                    )  # fmt: skip
                )
                if isinstance(p, Affine):
                    b = np.asarray(p.bias)
                    out.append(
                        entry(
                            n,
                            "bias",
                            b,
                            0.0,
                            action="exact" if np.all(b == 0) else "refused",
                        )  # fmt: skip
                    )
        return MappingReport(self.name, dt, tuple(out))
