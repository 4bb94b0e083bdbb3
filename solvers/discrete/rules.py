r"""Step rules built on the primitives' own mathematics, and their strategies.

:class:`NeuronRule` steps any neuron with the primitive's ``vector_field``
(:class:`EulerIntegrator`) or ``propagate`` (:class:`ExponentialIntegrator`), then
decides spikes and resets with small strategy objects, each chosen once:

* threshold test: :class:`Reaches` (``v >= v_threshold``, NIR's "reaches") or
  :class:`Exceeds` (``v > v_threshold``: snnTorch, Norse, Spyx, Lava);
* reset: :class:`ResetFromOptions` (:func:`nirsim.simulate`'s ``reset``),
  :class:`ToVReset`, :class:`ToZero`, :class:`BySubtraction`;
* when it fires and resets (``S`` the state carried into the step, ``U`` the state
  after the step's update, ``H`` the threshold test):

  ================  ===============  ===================================================
  fire_on_carried   reset_next_step  one step
  ================  ===============  ===================================================
  False             False            ``U = step(S)``, ``z = H(U)``, ``S' = reset(U, z)``
                                     (default; the recorded state is after reset)
  False             True             ``U = step(reset(S, H(S)))``, ``z = H(U)``,
                                     ``S' = U`` (the recorded state stays above
                                     threshold for a step: snnTorch's RSynaptic)
  True              False            ``z = H(S)``, ``S' = reset(step(S), z)`` (Spyx
                                     LIF/IF: ``V = beta V + x - z th``)
  True              True             ``z = H(S)``, ``S' = step(reset(S, z))`` (Spyx
                                     CuBaLIF: ``V = beta (V - z th) + I``)
  ================  ===============  ===================================================

  With ``reset_next_step`` and ``reset_after_update``, the reset decided on the
  carried state applies to the updated one: ``U = reset(step(S), H(S))``,
  ``z = H(U)``, ``S' = U`` (snnTorch's ``RSynaptic``: the whole new value is zeroed
  in the step after a spike, that step's input included).
* ``feedback``: a matrix ``W`` whose product with the spikes decided on the carried
  state is added to the neuron's own input in the same step (needs
  ``fire_on_carried``; Spyx's ``RCuBaLIF``: ``I = alpha I + x + z W_rec``);
* ``max_spikes_per_step``: 1 (default) or a cap ``K > 1`` (``None``: no cap):
  ``n = 1 + floor((v - v_th)/(v_th - v_reset))`` spikes, clipped to ``[1, K]``; a
  subtractive reset removes ``n (v_th - v_reset)``;
* ``spikes_by_division``: with several spikes per step, ``n = trunc(v / v_threshold)``
  for ``v > 0`` (one division in the run's dtype, as Sinabs counts; a spike whenever
  ``n >= 1``), instead of ``1 + floor((v - v_th)/(v_th - v_reset))`` after the
  threshold test; the two differ by rounding (in float32, ``v = 1``,
  ``v_th = 0.1`` gives 10 spikes by division, 9 in float64);
* ``input_at_start``: the step's whole input ``c dt + a`` jumps at the start of the
  step and the state then evolves freely (Rockpool's ``I = e (I + x)``);
* ``floor_at_minus_threshold``: ``v >= -v_threshold`` after each step (Sinabs' IAF).

A framework's reading of the parameters is an :class:`AbstractReading`: the
primitive that is stepped (``v+ = a v + b x + c`` is the Euler LIF with
``tau = dt/(1 - a)``, ``r = b/(1 - a)``, ``v_leak = c/(1 - a)``), a constant added
to the drive, and the initial state.
"""

from __future__ import annotations

import abc
import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp

from nirsim._custom_types import Array
from nirsim._errors import InputError
from nirsim.primitives import AbstractPrimitive, AbstractSpikingNeuron, CubaState

from ..base import SimOptions
from ..surrogate import AbstractSurrogate, FastSigmoid, heaviside
from .base import AbstractStepRule, Drive, cast_floats, float_dtype


# ------------------------------------------------------------------ threshold tests
class AbstractThresholdTest(eqx.Module):
    """The spike decision ``H(x)`` (with the surrogate's derivative)."""

    @abc.abstractmethod
    def __call__(self, x: Array, surrogate: AbstractSurrogate) -> Array: ...


class Reaches(AbstractThresholdTest):
    """``x >= 0``: fires when the membrane reaches the threshold (NIR)."""

    def __call__(self, x, surrogate):
        return heaviside(x, surrogate, False)


class Exceeds(AbstractThresholdTest):
    """``x > 0``: fires when the membrane exceeds the threshold."""

    def __call__(self, x, surrogate):
        return heaviside(x, surrogate, True)


# ------------------------------------------------------------------ resets
class AbstractReset(eqx.Module):
    """What a spike does to the membrane: ``v`` after ``n`` spikes (``z`` the 0/1
    decision carrying the surrogate gradient)."""

    @abc.abstractmethod
    def __call__(self, v, threshold, v_reset, z, n) -> Array: ...

    def resolve(self, options: SimOptions) -> AbstractReset:
        return self


class ToVReset(AbstractReset):
    """``v <- v_reset`` (NIR's definition)."""

    def __call__(self, v, threshold, v_reset, z, n):
        return v - z * (v - v_reset)


class ToZero(AbstractReset):
    """``v <- 0`` (snnTorch, Norse's LIF, Lava)."""

    def __call__(self, v, threshold, v_reset, z, n):
        return v - z * v


class BySubtraction(AbstractReset):
    """``v <- v - n (v_threshold - v_reset)``."""

    def __call__(self, v, threshold, v_reset, z, n):
        amount = threshold - v_reset
        return v - z * (amount if n is None else n * amount)


class ResetFromOptions(AbstractReset):
    """As :func:`nirsim.simulate`'s ``reset`` says (the default)."""

    def __call__(self, v, threshold, v_reset, z, n):
        raise TypeError("ResetFromOptions is resolved before stepping")

    def resolve(self, options):
        return BySubtraction() if options.subtract else ToVReset()


# ------------------------------------------------------------------ integrators
class AbstractIntegrator(eqx.Module):
    """One step of a neuron's linear dynamics (no threshold, no reset)."""

    @abc.abstractmethod
    def advance(self, prim, state, current, area, dt): ...


class EulerIntegrator(AbstractIntegrator):
    """``s+ = s + dt f(s, x)`` with ``x = c + a/dt`` (the Euler step is affine in
    ``x``, so this is the step without impulse followed by the primitive's impulse
    jump). ``new_current``: a Cuba membrane uses the updated current ``i+`` (impulses
    included), as snnTorch, Norse, Spyx, Rockpool and Lava do; plain Euler uses the
    old one."""

    new_current: bool = eqx.field(static=True, default=False)

    def advance(self, prim, state, current, area, dt):
        x = current + area / dt
        f = prim.vector_field(state, x)
        new = jax.tree.map(lambda s, d: s + dt * d, state, f)
        if self.new_current and isinstance(state, CubaState):
            g = prim.vector_field(dataclasses.replace(state, i_syn=new.i_syn), x)
            new = dataclasses.replace(new, v=state.v + dt * g.v)
        return new


class ExponentialIntegrator(AbstractIntegrator):
    """``s+ = propagate(s, c, dt)`` (exact for a drive held constant over the step),
    then the impulse jump of area ``a``."""

    def advance(self, prim, state, current, area, dt):
        return prim.impulse(prim.propagate(state, current, dt), area)


# ------------------------------------------------------------------ readings
class AbstractReading(eqx.Module):
    """How a framework reads a neuron's parameters: the primitive stepped, a constant
    drive offset and the initial state (default: the graph as written)."""

    def primitive(self, prim: AbstractPrimitive, dt: float) -> AbstractPrimitive:
        return prim

    def drive_offset(self, prim: AbstractPrimitive, dt: float) -> Array | None:
        return None

    def init_state(self, prim: AbstractPrimitive):
        return prim.init_state()


class AsWritten(AbstractReading):
    """Every node and parameter as in the graph, nirsim's initial state."""


class NeuronParams(eqx.Module):
    """What :meth:`NeuronRule.interpret` returns: the stepped primitive, the resolved
    reset and the drive offset."""

    primitive: AbstractPrimitive
    reset: AbstractReset
    offset: Array | None
    init_state: eqx.Module


class NeuronRule(AbstractStepRule):
    """A neuron stepped with its primitive's own mathematics (see the module
    docstring for the strategies)."""

    integrator: AbstractIntegrator = EulerIntegrator()
    test: AbstractThresholdTest = Reaches()
    reset: AbstractReset = ResetFromOptions()
    fire_on_carried: bool = eqx.field(static=True, default=False)
    reset_next_step: bool = eqx.field(static=True, default=False)
    reset_after_update: bool = eqx.field(static=True, default=False)
    feedback: Array | None = None
    max_spikes_per_step: int | None = eqx.field(static=True, default=1)
    spikes_by_division: bool = eqx.field(static=True, default=False)
    input_at_start: bool = eqx.field(static=True, default=False)
    floor_at_minus_threshold: bool = eqx.field(static=True, default=False)
    reading: AbstractReading = AsWritten()
    surrogate: AbstractSurrogate = FastSigmoid()

    def __check_init__(self):
        k = self.max_spikes_per_step
        if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 1):
            raise InputError(
                f"max_spikes_per_step must be an integer >= 1 or None, got {k!r}"
            )
        if self.reset_after_update and not self.reset_next_step:
            raise InputError("reset_after_update applies to reset_next_step=True")
        if self.feedback is not None and not self.fire_on_carried:
            raise InputError("a same-step feedback needs fire_on_carried=True")
        if self.spikes_by_division and self.max_spikes_per_step == 1:
            raise InputError("spikes_by_division counts several spikes per step")

    @property
    def spikes_per_step(self) -> int | None:
        return self.max_spikes_per_step

    def interpret(self, primitive, dt, options):
        # a reading builds new primitives (float64 parameters): back to the run's dtype
        dtype = float_dtype(primitive)
        prim = cast_floats(self.reading.primitive(primitive, dt), dtype)
        return NeuronParams(
            primitive=prim,
            reset=self.reset.resolve(options),
            offset=cast_floats(self.reading.drive_offset(primitive, dt), dtype),
            init_state=cast_floats(self.reading.init_state(prim), dtype),
        )

    def init(self, params, dt):
        return params.init_state

    def output(self, params, state):
        prim = params.primitive
        if isinstance(prim, AbstractSpikingNeuron):
            return None
        return prim.output(state)

    def step(self, params, state, drive: Drive, dt):
        prim = params.primitive
        current = drive.current
        if params.offset is not None:
            current = current + params.offset
        if not isinstance(prim, AbstractSpikingNeuron):
            new = self._advance(prim, state, current, drive.impulse, dt)
            return new, jnp.zeros(prim.shape, current.dtype)
        if self.fire_on_carried or self.reset_next_step:
            zc, nc = self._fire(prim, state)
        if self.reset_next_step and not self.reset_after_update:
            state = self._reset(params, state, zc, nc)
        area = drive.impulse
        if self.feedback is not None:
            zf = zc if nc is None else zc * nc
            fed = self.feedback.astype(zf.dtype) @ zf.reshape(-1)
            area = area + fed.reshape(zf.shape) * drive.unit
        new = self._advance(prim, state, current, area, dt)
        if self.reset_after_update:
            new = self._reset(params, new, zc, nc)
        if self.fire_on_carried:
            z, n = zc, nc
        else:
            z, n = self._fire(prim, new)
        if not self.reset_next_step:
            new = self._reset(params, new, z, n)
        if self.floor_at_minus_threshold:
            new = dataclasses.replace(new, v=jnp.maximum(new.v, -prim.threshold()))
        return new, (z if n is None else z * n)

    def _advance(self, prim, state, current, area, dt):
        if self.input_at_start:
            state = prim.impulse(state, current * dt + area)
            current = jnp.zeros_like(current)
            area = jnp.zeros_like(area)
        return self.integrator.advance(prim, state, current, area, dt)

    def _fire(self, prim, state):
        """``(z, n)``: the 0/1 decision (with surrogate) and the spike count (None
        for one spike per step)."""
        th = prim.threshold()
        v = prim.membrane(state)
        z = self.test(v - th, self.surrogate)
        k = self.max_spikes_per_step
        if k == 1:
            return z, None
        if self.spikes_by_division:
            vs = jax.lax.stop_gradient(v)
            n = jnp.where(vs > 0, jnp.trunc(vs / th), 0.0)
            n = n if k is None else jnp.minimum(n, float(k))
            sz = jax.lax.stop_gradient(z)
            # the count decides; the surrogate of the threshold test carries the gradient
            return jnp.where(n >= 1, 1.0, 0.0).astype(z.dtype) + (
                z - sz
            ), jax.lax.stop_gradient(jnp.maximum(n, 1.0))
        step = th - prim.reset_value()
        safe = jnp.where(step > 0, step, 1.0)
        n = 1.0 + jnp.floor(jax.lax.stop_gradient((v - th) / safe))
        n = jnp.where(step > 0, n, 1.0)
        n = jnp.maximum(n, 1.0) if k is None else jnp.clip(n, 1.0, float(k))
        return z, jax.lax.stop_gradient(n)

    def _reset(self, params, state, z, n):
        prim = params.primitive
        v = params.reset(prim.membrane(state), prim.threshold(), prim.reset_value(), z, n)
        return dataclasses.replace(state, v=v)


class ThresholdParams(eqx.Module):
    threshold: Array


class ThresholdRule(AbstractStepRule):
    """A ``Threshold`` node: emits when its continuous input passes the test in a step
    and did not in the step before (at rest before ``t = 0``: the engine gives the
    resting input to :meth:`init` through ``params``)."""

    test: AbstractThresholdTest = Reaches()
    surrogate: AbstractSurrogate = FastSigmoid()

    def interpret(self, primitive, dt, options):
        return ThresholdParams(primitive.threshold)

    def init(self, params, dt):
        return jnp.zeros(params.threshold.shape, params.threshold.dtype)

    def init_at_rest(self, params, dt, rest: Drive):
        return self.above(params, rest.current)

    def above(self, params, x):
        return self.test(x - params.threshold, self.surrogate)

    def step(self, params, state, drive, dt):
        up = self.above(params, drive.current)
        return up, up * (1.0 - state)

    def observe(self, params, state):
        return {}
