r"""SpiNNaker2 as py-spinnaker2's NIR importer (``s2_nir.py``) maps a graph and its
``lif_no_delay`` / ``lif_curr_exp_no_delay`` neurons step it. Sources and
confidence: ``../shared/HARDWARE.md`` (``convert_LIF``, ``convert_CubaLIF``,
``convert_IF``, ``create_projection``; the paper's ``lif_spinnaker2.py``).

**The mapping** (per neuron node, ``dt`` the chip's step):

* ``integrator``: :class:`Forward` (``alpha = 1 - dt/tau``, ``r_factor = r dt/tau``,
  ``v_leak_factor = dt/tau``) or :class:`Exponential` (``alpha = exp(-dt/tau)``,
  ``r_factor = r (1 - exp(-dt/tau))``, ``v_leak_factor = 1 - exp(-dt/tau)``);
* ``w_scale = 127 / max|W_in|`` over the weight nodes feeding the neuron when
  ``scale_weights=True``, else 1; weights ``trunc(W w_scale)`` (Python's ``int``,
  toward zero; **[read]** for Conv2d's ``astype(int8)``), clipped to ``[-127, 127]``;
* LIF: ``scale = w_scale / r_factor``, ``threshold = v_threshold scale``,
  ``i_offset = v_leak_factor v_leak scale + bias w_scale`` (``bias``: the summed
  biases of the Affines feeding the neuron);
* CubaLIF: also ``exc_decay = 1 - dt/tau_syn`` (or ``exp``), ``I_scale =
  1/w_in_factor``, ``scale = w_scale I_scale / r_factor``, ``i_offset =
  v_leak_factor v_leak scale + bias w_in I_scale w_scale``;
* IF: ``alpha = 1``, ``scale = w_scale / r``, ``i_offset = bias w_scale``;
* ``v_reset`` is ignored (reset to 0, or by subtraction of the threshold).

The parameters are computed in float32 from the graph's parameters, as the
importer computes them from NIR's float32 arrays.

**The step** (float32 state; ``dtype="float64"`` gives float64 state with the same
float32 parameters, as py-spinnaker2's Brian2 back-end that produced the paper's
trace): ``v[t] = alpha v[t-1] + i_offset + sum_j w_ij s_j[t-1-conn_delay]``
(CubaLIF: ``I = exc_decay I + sum w s``, ``v = alpha v + I + i_offset``); spike
where ``v > threshold``; reset in the same step (the recorded ``v`` is after
reset). Every projection (Affine, Linear) delivers one step late: an input spike at
step ``t`` shows in ``v`` at ``t + 1``; ``conn_delay`` adds whole steps. On the NIR
paper's LIF graph the neuron fires in steps 461, 511, 711 and 761; the paper's script
(``lif_spinnaker2.py``) saves ``voltages[0][1:]`` and ``spikes[1:]``, so the row
``k`` of its CSV is step ``k + 1`` and its published bins read 460, 510, 710, 760.

**Open questions, as options**: ``test=Reaches()`` for ``v >= threshold``
(default :class:`~nirsim.solvers.Exceeds`, identical on the published trace);
``new_current=False`` for a CubaLIF membrane fed the previous step's ``I``
(default: the new one).

**Refused** (before running): node types other than Input, Output, Affine,
Linear, LIF, CubaLIF, IF; two weight layers in a row; a neuron fed other than
through a projection (Affine or Linear); a weight node feeding anything but one
neuron node.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from nirsim._custom_types import Array
from nirsim._errors import InputError
from nirsim.primitives import IF, LIF, Affine, CubaLIF, Input, Linear, Output
from nirsim.solvers.discrete.base import (
    AbstractStepRule,
    Drive,
    cast_floats,
    checked_dt,
    float_dtype,
)
from nirsim.solvers.discrete.rules import (
    AbstractReset,
    AbstractThresholdTest,
    BySubtraction,
    Exceeds,
    ToZero,
)
from nirsim.solvers.surrogate import AbstractSurrogate, FastSigmoid

from . import fixed_point as fp
from .base import AbstractHardwareModel, MappingReport, entry, ignored

WEIGHTS = (Affine, Linear)


class AbstractIntegrator(eqx.Module):
    """How ``s2_nir`` turns a time constant into a decay and an input factor."""

    @abc.abstractmethod
    def decay(self, dt, tau) -> Array: ...

    @abc.abstractmethod
    def factor(self, dt, tau) -> Array: ...


class Forward(AbstractIntegrator):
    """``IntegratorMethod.FORWARD``: decay ``1 - dt/tau``, factor ``dt/tau``."""

    def decay(self, dt, tau):
        return 1 - dt / tau

    def factor(self, dt, tau):
        return dt / tau


class Exponential(AbstractIntegrator):
    """``IntegratorMethod.EXPONENTIAL``: decay ``exp(-dt/tau)``, factor
    ``1 - exp(-dt/tau)``."""

    def decay(self, dt, tau):
        return jnp.exp(-dt / tau)

    def factor(self, dt, tau):
        return 1 - jnp.exp(-dt / tau)


class S2Params(eqx.Module):
    alpha: Array
    syn_decay: Array
    threshold: Array
    i_offset: Array
    v_scale: Array
    i_scale: Array
    kind: str = eqx.field(static=True)


class S2State(eqx.Module):
    i_syn: Array
    v: Array
    pending: Array  # (conn_delay, *shape): inputs still on their way


def _f32(x):
    return jnp.asarray(x).astype(jnp.float32)


def neuron_numbers(p, dt: float, integ: AbstractIntegrator, w_scale, bias) -> dict:
    """The importer's parameters of neuron ``p`` (float32)."""
    w_scale = _f32(w_scale)
    bias = _f32(bias)
    if isinstance(p, IF):
        r = _f32(p.r)
        scale = w_scale / r
        one = jnp.ones_like(r)
        return {
            "alpha": one,
            "syn_decay": 0 * one,
            "threshold": _f32(p.v_threshold) * scale,
            "i_offset": bias * w_scale,
            "v_scale": scale,
            "i_scale": one,
        }
    tau = _f32(p.tau if isinstance(p, LIF) else p.tau_mem)
    r = _f32(p.r)
    r_factor = integ.factor(dt, tau) * r
    leak = integ.factor(dt, tau)
    alpha = integ.decay(dt, tau)
    if isinstance(p, LIF):
        scale = (1.0 / r_factor) * w_scale
        return {
            "alpha": alpha,
            "syn_decay": 0 * alpha,
            "threshold": _f32(p.v_threshold) * scale,
            "i_offset": leak * _f32(p.v_leak) * scale + bias * w_scale,
            "v_scale": scale,
            "i_scale": jnp.ones_like(alpha),
        }
    tau_syn, w_in = _f32(p.tau_syn), _f32(p.w_in)
    w_in_factor = integ.factor(dt, tau_syn) * w_in
    i_scale = 1.0 / w_in_factor
    scale = (1.0 / r_factor) * i_scale * w_scale
    return {
        "alpha": alpha,
        "syn_decay": integ.decay(dt, tau_syn),
        "threshold": _f32(p.v_threshold) * scale,
        "i_offset": leak * _f32(p.v_leak) * scale + bias * w_in * i_scale * w_scale,
        "v_scale": scale,
        "i_scale": i_scale * w_scale,
    }


class S2Rule(AbstractStepRule):
    """One SpiNNaker2 population (see the module docstring)."""

    integrator: AbstractIntegrator
    test: AbstractThresholdTest
    reset: AbstractReset
    w_scale: Array
    bias: Array
    surrogate: AbstractSurrogate
    conn_delay: int = eqx.field(static=True, default=0)
    new_current: bool = eqx.field(static=True, default=True)
    raw: bool = eqx.field(static=True, default=False)

    def interpret(self, primitive, dt, options):
        # computed in float32, then held in the run's dtype (float64 state: Brian2)
        num = neuron_numbers(primitive, dt, self.integrator, self.w_scale, self.bias)
        params = S2Params(**num, kind=type(primitive).__name__)
        return cast_floats(params, float_dtype(primitive))

    def init(self, params, dt):
        dtype = params.alpha.dtype
        z = jnp.zeros(params.alpha.shape, dtype)
        return S2State(z, z, jnp.zeros((self.conn_delay,) + z.shape, dtype))

    def step(self, params, state, drive: Drive, dt):
        p = params
        x = drive.current + drive.impulse
        pending = state.pending
        if self.conn_delay:
            pending = jnp.concatenate([pending[1:], x[None]], axis=0)
            x = state.pending[0]
        i_syn = state.i_syn
        if p.kind == "CubaLIF":
            new_i = p.syn_decay * i_syn + x
            v = p.alpha * state.v + (new_i if self.new_current else i_syn) + p.i_offset
            i_syn = new_i
        else:
            v = p.alpha * state.v + x + p.i_offset
        z = self.test(v - p.threshold, self.surrogate)
        v = self.reset(v, p.threshold, 0.0 * v, z, None)
        return S2State(i_syn, v, pending), z

    def observe(self, params, state):
        cuba = params.kind == "CubaLIF"
        if self.raw:
            return {"i_syn": state.i_syn, "v": state.v} if cuba else {"v": state.v}
        v = state.v / params.v_scale
        return {"i_syn": state.i_syn / params.i_scale, "v": v} if cuba else {"v": v}


class SpiNNaker2(AbstractHardwareModel):
    """SpiNNaker2 (see :mod:`nirsim.hardware_models.spinnaker2`)."""

    dt: float = eqx.field(static=True, converter=checked_dt)
    integrator: AbstractIntegrator = Forward()
    scale_weights: bool = eqx.field(static=True, default=False)
    reset: AbstractReset = ToZero()
    test: AbstractThresholdTest = Exceeds()
    conn_delay: int = eqx.field(static=True, default=0)
    new_current: bool = eqx.field(static=True, default=True)
    raw: bool = eqx.field(static=True, default=False)
    surrogate: AbstractSurrogate = FastSigmoid()
    dtype: object = eqx.field(static=True, default=None)

    name: ClassVar[str] = "spinnaker2"
    supported: ClassVar[tuple[type, ...]] = (
        Input,
        Output,
        Affine,
        Linear,
        LIF,
        CubaLIF,
        IF,
    )
    dense_delay = True
    default_dtype = jnp.float32

    def __check_init__(self):
        if not isinstance(self.reset, ToZero | BySubtraction):
            raise InputError("SpiNNaker2 resets to zero (ToZero) or by subtraction")
        if not isinstance(self.conn_delay, int) or self.conn_delay < 0:
            raise InputError(f"conn_delay must be an integer >= 0, got {self.conn_delay!r}")

    # -- mapping helpers
    def w_scale(self, network, name):
        """``127 / max|W_in|`` over the weight nodes feeding ``name`` (or 1)."""
        if not self.scale_weights:
            return jnp.ones(())
        m = jnp.zeros(())
        for q in network.predecessors(name):
            p = network.nodes[q]
            if isinstance(p, WEIGHTS):
                m = jnp.maximum(m, jnp.max(jnp.abs(p.weight)))
        return 127.0 / m

    def bias(self, network, name):
        shape = network.shape(name)
        b = jnp.zeros(shape, jnp.float32)
        for q in network.predecessors(name):
            p = network.nodes[q]
            if isinstance(p, Affine):
                b = b + _f32(p.bias).reshape(shape)
        return b

    def chip_weights(self, network, name, prim):
        target = network.successors(name)[0]
        w = _f32(prim.weight) * _f32(self.w_scale(network, target))
        return jnp.clip(fp.round_toward_zero(w), -127.0, 127.0)

    # -- the discrete solver
    def rule(self, network, name, primitive):
        return S2Rule(
            integrator=self.integrator,
            test=self.test,
            reset=self.reset,
            w_scale=self.w_scale(network, name),
            bias=self.bias(network, name),
            surrogate=self.surrogate,
            conn_delay=self.conn_delay,
            new_current=self.new_current,
            raw=self.raw,
        )

    def rewrite(self, network, name, primitive):
        if isinstance(primitive, WEIGHTS):
            return Linear(self.chip_weights(network, name, primitive))
        return primitive

    def limits(self, network):
        neurons = (LIF, CubaLIF, IF)
        for n in network.order:
            p = network.nodes[n]
            if isinstance(p, WEIGHTS):
                succ = network.successors(n)
                for s in succ:
                    if isinstance(network.nodes[s], WEIGHTS):
                        self.refuse(
                            n, p, f"two successive layers with weights ('{n}' -> '{s}')"
                        )
                if len(succ) != 1 or not isinstance(network.nodes[succ[0]], neurons):
                    self.refuse(
                        n,
                        p,
                        "a projection must feed exactly one neuron node (it feeds "
                        f"{', '.join(succ) or 'nothing'})",
                    )
            if isinstance(p, neurons):
                for q in network.predecessors(n):
                    if not isinstance(network.nodes[q], WEIGHTS):
                        self.refuse(
                            n,
                            p,
                            "SpiNNaker2 populations receive input only through "
                            f"projections (Affine or Linear); '{q}' feeds it directly",
                        )

    def report(self, network) -> MappingReport:
        dt = float(self.dt)
        out = []
        for n in network.order:
            p = network.nodes[n]
            if isinstance(p, LIF | CubaLIF | IF):
                num = neuron_numbers(
                    p, dt, self.integrator, self.w_scale(network, n), self.bias(network, n)
                )
                sc = num["v_scale"]
                if not isinstance(p, IF):
                    tau = p.tau if isinstance(p, LIF) else p.tau_mem
                    field = "tau" if isinstance(p, LIF) else "tau_mem"
                    out.append(
                        entry(
                            n,
                            f"{field} -> alpha",
                            jnp.exp(-dt / tau),
                            num["alpha"],
                            note="decay per step vs exp(-dt/tau)",
                        )  # fmt: skip
                    )
                if isinstance(p, CubaLIF):
                    out.append(
                        entry(
                            n,
                            "tau_syn -> exc_decay",
                            jnp.exp(-dt / p.tau_syn),
                            num["syn_decay"],
                            note="decay per step vs exp(-dt/tau_syn)",
                        )  # fmt: skip
                    )
                out.append(
                    entry(
                        n,
                        "v_threshold",
                        p.v_threshold,
                        num["threshold"],
                        unit=sc,
                        note="threshold = v_threshold * scale (float32)",
                    )  # fmt: skip
                )
                out.append(
                    entry(n, "scale", 1.0, sc, action="scale", note="chip v per graph v")
                )
                out.append(ignored(n, "v_reset", p.v_reset, 0.0, "reset to 0 or subtract"))
            elif isinstance(p, WEIGHTS):
                succ = network.successors(n)
                if len(succ) != 1:
                    continue
                ws = self.w_scale(network, succ[0])
                w = self.chip_weights(network, n, p)
                raw = np.asarray(p.weight) * float(ws)
                clipped = bool(np.any(np.abs(np.trunc(raw)) > 127))
                out.append(
                    entry(
                        n,
                        "weight",
                        p.weight,
                        w,
                        unit=ws,
                        action="clipped" if clipped else None,
                        note=f"int in [-127, 127], w_scale = {float(ws):.6g}",
                    )  # fmt: skip
                )
                if isinstance(p, Affine):
                    out.append(
                        entry(
                            n,
                            "bias",
                            p.bias,
                            p.bias,
                            action="changed",
                            note=f"moved into i_offset of '{succ[0]}'",
                        )  # fmt: skip
                    )
        return MappingReport(self.name, dt, tuple(out))
