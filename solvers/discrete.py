r"""Fixed-step solvers: forward Euler and exponential integration of a NIR graph.

Time advances in steps of ``dt``; step ``n`` goes from ``t_n = n dt`` to
``t_{n+1}``. Within a step every node is updated once, in a topological order of the
graph (a recurrent edge, which closes a cycle, carries the previous step's value).
The whole simulation is one ``jax.lax.scan`` over steps whose body is a straight-line
function of the graph (the Python loop over nodes runs once, while tracing).

**A neuron's step** uses only the primitive's own mathematics (``vector_field``,
``propagate``, ``impulse``, ``threshold``/``reset_value``):

* Euler: ``s+ = s + dt * f(s, x)`` with ``x = c + a/dt`` the step's input: ``c`` the
  continuous drive (a graph input's value for the step, biases, the output of an LI
  or a Delay), ``a`` the area of the impulses arriving in the step (spikes, input
  events). Since the Euler step is affine in ``x``, this is exactly the step with no
  impulse followed by the primitive's ``impulse`` jump of area ``a``.
* exponential: ``s+ = propagate(s, c, dt)`` (the exact solution for a drive held
  constant over the step, so exact for piecewise-constant input on the step grid),
  then the ``impulse`` jump of area ``a``.

**Spikes.** A spiking neuron fires when ``v - v_threshold`` passes the threshold test;
the decision is :func:`~nirsim.solvers.surrogate.heaviside`, so gradients flow
through spikes by the chosen surrogate. A spike leaves its node as an impulse of area
``A`` (``spike_area``, or ``dt`` with ``spike_unit="step"``). A ``Threshold`` node
emits when its continuous input passes the test in a step and did not in the step
before (at rest before ``t = 0``). A ``Delay`` of ``d`` is rounded to
``round(d/dt)`` whole steps; it keeps the history of its input (memory: steps x size).

**Trace.** A spike decided in step ``n`` is stamped ``n dt`` (several spikes of one
neuron in one step are repeated events). States are returned at the requested times,
which must lie on the step grid: the sample at ``t = k dt`` is the state after step
``k - 1`` (``t = 0``: the initial state), after any reset in that step. Every spiking
node also gets a state field ``"spike_count"``: the number of spikes in
``(ts[k-1], ts[k]]`` as a float that carries the surrogate gradient, so losses on
spike counts can be differentiated. Spike times themselves are grid stamps and carry
no gradient.

Every choice that distinguishes real implementations is a field of
:class:`DiscreteRules`, with one default; a framework's reading of the graph's
parameters is an :class:`AbstractInterpretation` (see ``solvers/presets.py``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from nirsim._custom_types import Array
from nirsim._data import Current, Spikes
from nirsim._errors import GraphError, InputError, positive_number
from nirsim.primitives import (
    AbstractNeuron,
    AbstractPrimitive,
    AbstractSpikingNeuron,
    AbstractStateless,
    Affine,
    Conv1d,
    Conv2d,
    CubaState,
    Delay,
    Input,
    Linear,
    Output,
    Threshold,
)

from . import registry, results
from .base import AbstractSolver, SimOptions
from .surrogate import AbstractSurrogate, FastSigmoid, heaviside

#: Relative tolerance with which a time counts as lying on the step grid.
GRID_RTOL = 1e-9

_CHOICES = {
    "integrator": ("euler", "exponential"),
    "threshold_test": (">=", ">"),
    "reset": ("options", "v_reset", "zero", "subtract"),
    "reset_timing": ("same_step", "next_step"),
    "fire_on": ("updated", "carried"),
    "membrane_current": ("old", "new"),
    "spike_delivery": ("same_step", "next_step"),
    "grid": ("options", "current", "impulse"),
    "input_at": ("end", "start"),
    "spike_unit": ("area", "step"),
    "initial_feedback": ("rest", "zero"),
}


class DiscreteRules(eqx.Module):
    r"""The choices that distinguish discrete-time implementations (all static).

    * ``integrator``: ``"euler"`` (default; ``s + dt f(s, x)``) or ``"exponential"``
      (``propagate(s, c, dt)``: exact for input held constant over the step).
    * ``threshold_test``: ``">="`` (default; NIR's "reaches") or ``">"`` (snnTorch,
      Norse, Spyx, Lava): a spike when ``v - v_threshold`` passes it.
    * ``reset``: ``"options"`` (default: :func:`nirsim.simulate`'s ``reset``, i.e.
      ``v <- v_reset`` or ``v <- v - (v_threshold - v_reset)``), ``"v_reset"``,
      ``"zero"`` (``v <- 0``) or ``"subtract"``.
    * ``reset_timing`` and ``fire_on`` (``S`` the state carried into the step,
      ``U`` the state after the step's update):

      =========  ===========  =====================================================
      fire_on    reset_timing one step
      =========  ===========  =====================================================
      updated    same_step    ``U = step(S)``, ``z = H(U)``, ``S' = reset(U, z)``
                              (default; the recorded state is after reset)
      updated    next_step    ``U = step(reset(S, H(S)))``, ``z = H(U)``, ``S' = U``
                              (the recorded state stays above threshold for a step;
                              snnTorch's ``reset_delay=True`` with reset to zero)
      carried    same_step    ``z = H(S)``, ``S' = reset(step(S), z)`` (Spyx LIF/IF:
                              ``V = beta V + x - z th``)
      carried    next_step    ``z = H(S)``, ``S' = step(reset(S, z))`` (Spyx CuBaLIF:
                              ``V = beta (V - z th) + I``)
      =========  ===========  =====================================================

      With ``fire_on="carried"`` the spike leaves in the step after the state crossed,
      so each spiking layer adds one step of latency.
    * ``max_spikes_per_step``: 1 (default) or a cap ``K > 1`` (``None``: no cap):
      ``n = 1 + floor((v - v_th)/(v_th - v_reset))`` spikes, clipped to ``[1, K]``
      (``floor(v/v_th)`` when ``v_reset = 0``; Sinabs, Rockpool); a subtractive reset
      removes ``n (v_th - v_reset)``.
    * ``membrane_current``: Euler for CubaLIF/CubaLI: ``"old"`` (default, plain Euler:
      ``v+`` uses ``i``) or ``"new"`` (``v+`` uses ``i+``, impulses included: snnTorch,
      Norse, Spyx, Rockpool, Lava). Not defined for the exponential integrator.
    * ``spike_delivery``: a spike reaches the nodes downstream ``"same_step"``
      (default) or ``"next_step"``; along a recurrent edge always the next step.
    * ``grid``: how a gridded input (:class:`~nirsim.Current`) is read:
      ``"options"`` (default: ``simulate``'s ``grid_as``), ``"current"`` (value held
      over the step; a bin that does not match the step is averaged over it) or
      ``"impulse"`` (one impulse of area ``x[b] * A`` in the step holding ``b dt_in``).
    * ``input_at``: ``"end"`` (default: the drive is integrated over the step and
      impulses jump at its end) or ``"start"`` (the step's whole input, ``c dt + a``,
      jumps at its start and the state then evolves freely: Rockpool's
      ``I = e (I + x)``).
    * ``spike_unit``: ``"area"`` (default: a spike is an impulse of area
      ``spike_area``, and so is an input event of value 1) or ``"step"`` (a spike is
      the value 1 held for one step, area ``dt``, as every framework feeds spikes to
      the next layer; ``spike_area`` is ignored).
    * ``dense_delay``: each weight node (Affine, Linear, Conv) emits in step ``n`` what
      it received in step ``n - 1`` (Loihi's Dense); default ``False``.
    * ``initial_feedback``: what a recurrent edge carries in step 0: ``"rest"``
      (default: the graph at rest, e.g. the recurrent layer's bias) or ``"zero"``
      (Norse: nothing arrives, not even the bias).
    * ``floor_at_minus_threshold``: clamp ``v >= -v_threshold`` after each step
      (Sinabs's IAF); default ``False``.
    """

    integrator: str = eqx.field(static=True, default="euler")
    threshold_test: str = eqx.field(static=True, default=">=")
    reset: str = eqx.field(static=True, default="options")
    reset_timing: str = eqx.field(static=True, default="same_step")
    fire_on: str = eqx.field(static=True, default="updated")
    max_spikes_per_step: int | None = eqx.field(static=True, default=1)
    membrane_current: str = eqx.field(static=True, default="old")
    spike_delivery: str = eqx.field(static=True, default="same_step")
    grid: str = eqx.field(static=True, default="options")
    input_at: str = eqx.field(static=True, default="end")
    spike_unit: str = eqx.field(static=True, default="area")
    dense_delay: bool = eqx.field(static=True, default=False)
    initial_feedback: str = eqx.field(static=True, default="rest")
    floor_at_minus_threshold: bool = eqx.field(static=True, default=False)

    def __check_init__(self):
        for field, allowed in _CHOICES.items():
            value = getattr(self, field)
            if value not in allowed:
                raise InputError(
                    f"DiscreteRules.{field} must be one of {allowed}, got {value!r}"
                )
        k = self.max_spikes_per_step
        if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 1):
            raise InputError(
                f"DiscreteRules.max_spikes_per_step must be an integer >= 1 or None, "
                f"got {k!r}"
            )
        if self.integrator == "exponential" and self.membrane_current == "new":
            raise InputError(
                "membrane_current='new' is an Euler variant; the exponential integrator "
                "propagates i_syn and v together exactly"
            )
        for field in ("dense_delay", "floor_at_minus_threshold"):
            if not isinstance(getattr(self, field), bool):
                raise InputError(f"DiscreteRules.{field} must be True or False")


class AbstractInterpretation(eqx.Module):
    """How a simulator reads a NIR graph: which nodes it refuses, which parameters it
    changes or ignores, its initial state and per-node rules.

    :class:`Discrete` steps the primitives returned by :meth:`node` with the
    generic rules, so a framework's arithmetic is written as a parameter mapping
    onto nirsim's own primitives (for example ``v+ = beta v + x`` is the Euler LIF
    with ``tau = dt/(1 - beta)``, ``r = tau/dt``). Subclasses are final. Methods
    other than :meth:`check` may be traced (their array arguments may be tracers).
    """

    label: ClassVar[str] = "graph"

    def check(self, network, dt: float) -> None:  # noqa: B027 (optional hook)
        """Refuse, with a GraphError naming node and reason, what cannot be read."""

    def node(self, network, name: str, prim: AbstractPrimitive, dt: float):
        """The primitive that is stepped for node ``name`` (default: unchanged)."""
        return prim

    def drive_offset(self, network, name: str, prim, dt: float) -> Array | None:
        """A constant added to the continuous drive of neuron ``name`` (default none)."""
        return None

    def init_state(self, network, name: str, prim):
        """Initial state of neuron ``name`` (``prim`` is the mapped primitive)."""
        return prim.init_state()

    def rules(self, network, name: str, prim, base: DiscreteRules) -> DiscreteRules:
        """Rules of neuron or Threshold ``name`` (default: the solver's rules).

        Only the per-neuron fields are read per node (threshold_test, reset,
        reset_timing, fire_on, max_spikes_per_step, membrane_current, input_at,
        spike_delivery, floor_at_minus_threshold); the others are global."""
        return base


class AsGraph(AbstractInterpretation):
    """The graph as written: every node, every parameter, nirsim's initial state."""

    label: ClassVar[str] = "graph"


class Discrete(AbstractSolver):
    r"""A fixed-step solver.

    Args:
        dt: the step, in the graph's time unit (> 0).
        rules: the :class:`DiscreteRules` (default: Euler, ``>=``, reset as
            ``simulate`` says, in the same step, one spike per step, old current,
            same-step delivery, impulses of area ``spike_area``).
        interpretation: how the graph's parameters are read (default
            :class:`AsGraph`; framework presets use their own).
        surrogate: the derivative used for spikes (default ``FastSigmoid(25)``).
        label: the back-end name recorded in the Trace.

    ``nirsim.simulate(net, x, t_end=..., save_dt=..., solver="euler", dt=1e-4)``
    selects it by name (``"euler"``, ``"exponential"`` or a preset).
    """

    dt: float = eqx.field(static=True, converter=lambda x: positive_number(x, "dt"))
    rules: DiscreteRules = DiscreteRules()
    interpretation: AbstractInterpretation = AsGraph()
    surrogate: AbstractSurrogate = FastSigmoid()
    label: str = eqx.field(static=True, default="discrete")

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.label

    def grid_dt(self) -> float:
        return float(self.dt)

    def check(self, network) -> None:
        for n in network.order:
            prim = network.nodes[n]
            if not isinstance(prim, AbstractStateless | AbstractNeuron | Delay | Threshold):
                raise GraphError(
                    f"node '{n}' ({prim.nir_type}): the discrete solver cannot step it"
                )
        self.interpretation.check(network, float(self.dt))

    def check_times(self, ts, t_end: float) -> None:
        """Refuse sample times off the step grid (they must be multiples of dt)."""
        ts = np.asarray(ts, dtype=float).reshape(-1)
        k = ts / self.dt
        off = np.abs(k - np.round(k)) > GRID_RTOL * np.maximum(1.0, np.abs(k))
        if np.any(off):
            bad = float(ts[np.flatnonzero(off)[0]])
            raise InputError(
                f"sample time {bad!r} is not on the step grid of the {self.name} solver "
                f"(dt={self.dt!r}): sample at multiples of dt (e.g. save_dt=k*dt)"
            )

    # ------------------------------------------------------------------ solve
    def solve(self, network, inputs, ts, t_end, options: SimOptions):
        dt = float(self.dt)
        n_steps = max(1, math.ceil(float(t_end) / dt * (1 - GRID_RTOL)))
        interp = self.interpretation
        base = self.rules
        unit = dt if base.spike_unit == "step" else options.spike_area
        grid = base.grid
        if grid == "options":
            grid = "impulse" if options.impulse_grid else "current"

        prims = {n: interp.node(network, n, network.nodes[n], dt) for n in network.order}
        plan = _Plan(network, prims, interp, base, inputs, grid)

        seqs = {
            n: _input_sequences(inputs[n], network.shape(n), n_steps, dt, unit, grid)
            for n in network.inputs
        }
        offsets = {}
        for n in plan.neurons:
            off = interp.drive_offset(network, n, prims[n], dt)
            if off is not None:
                offsets[n] = off
        init_states = {n: interp.init_state(network, n, prims[n]) for n in plan.neurons}
        rest = plan.rest_outputs(prims, init_states)
        if base.initial_feedback == "zero":
            prev0 = {p: _zeros_like_signal(rest[p]) for p in plan.carried}
        else:
            prev0 = {p: rest[p] for p in plan.carried}
        bufs0 = {
            n: tuple(
                None if part is None else jnp.zeros((n_steps,) + part.shape, part.dtype)
                for part in _zeros_like_signal(rest[n])
            )
            for n in plan.delays
        }
        above0 = {}
        for n in plan.thresholds:
            c_rest = plan.gather(n, rest, rest)[0]
            c_rest = jnp.zeros(prims[n].shape) if c_rest is None else c_rest
            above0[n] = self._above(prims[n], c_rest, plan.rules[n])
        delays = {n: jnp.round(prims[n].delay / dt).astype(jnp.int32) for n in plan.delays}

        rows = jnp.round(ts / dt).astype(jnp.int32) - 1
        n_ts = ts.shape[0]
        # slot[step]: which sample the state after ``step`` is (n_ts: none).
        slot = jnp.full((n_steps,), n_ts, jnp.int32)
        slot = slot.at[jnp.where(rows >= 0, rows, n_steps)].set(
            jnp.arange(n_ts, dtype=jnp.int32), mode="drop"
        )
        samples0 = {
            n: jax.tree.map(lambda x: jnp.zeros((n_ts,) + x.shape, x.dtype), init_states[n])
            for n in plan.neurons
        }
        counts0 = {n: jnp.zeros(prims[n].shape) for n in plan.spiking}
        counted0 = {n: jnp.zeros((n_ts,) + prims[n].shape) for n in plan.spiking}

        def record(buf, value, k):
            if n_ts == 0:
                return buf
            return buf.at[k].set(value, mode="drop")

        def body(carry, x):
            states, prev, bufs, above, samples, counts, counted = carry
            step, k, ins = x
            now: dict = {}
            new_states, new_bufs, new_above, zs = {}, {}, {}, {}
            for n in plan.order:
                kind = plan.kind[n]
                if kind == "input":
                    now[n] = ins[n]
                    continue
                if kind == "output":
                    continue
                c, a = plan.gather(n, now, prev)
                prim = prims[n]
                if kind == "stateless":
                    now[n] = _stateless(prim, c, a, plan.has_bias[n])
                elif kind == "delay":
                    now[n], new_bufs[n] = _delay_step(delays[n], bufs[n], (c, a), step)
                elif kind == "threshold":
                    cc = jnp.zeros(prim.shape) if c is None else c
                    up = self._above(prim, cc, plan.rules[n])
                    z = up * (1.0 - above[n])
                    new_above[n] = up
                    zs[n] = z
                    now[n] = (None, z * unit)
                else:
                    drive = jnp.zeros(prim.shape) if c is None else c
                    if n in offsets:
                        drive = drive + offsets[n]
                    if kind == "spiking":
                        z, s = self._spiking_step(
                            prim, states[n], drive, a, plan.rules[n], dt, options
                        )
                        zs[n] = z
                        now[n] = (None, z * unit)
                    else:
                        s = _advance(prim, states[n], drive, a, plan.rules[n], dt)
                        now[n] = (prim.output(s), None)
                    new_states[n] = s
            new_prev = {p: now[p] for p in plan.carried}
            new_samples = {
                n: jax.tree.map(lambda b, v: record(b, v, k), samples[n], new_states[n])
                for n in plan.neurons
            }
            new_counts = {n: counts[n] + zs[n] for n in plan.spiking}
            new_counted = {n: record(counted[n], new_counts[n], k) for n in plan.spiking}
            raster = {n: _compact(zs[n], plan.rules[n]) for n in plan.spiking}
            carry = (
                new_states,
                new_prev,
                new_bufs,
                new_above,
                new_samples,
                new_counts,
                new_counted,
            )
            return carry, raster

        xs = (jnp.arange(n_steps, dtype=jnp.int32), slot, seqs)
        carry0 = (init_states, prev0, bufs0, above0, samples0, counts0, counted0)
        final, rasters = jax.lax.scan(body, carry0, xs, length=n_steps)
        samples, counted = final[4], final[6]

        states = {}
        for n in plan.neurons:
            fields = {}
            for f in dataclasses.fields(samples[n]):
                seq = getattr(samples[n], f.name)
                init = getattr(init_states[n], f.name)
                sel = rows.reshape(rows.shape + (1,) * (seq.ndim - 1)) < 0
                fields[f.name] = jnp.where(sel, init, seq)
            states[n] = fields
        spikes = {}
        code = jnp.asarray(results.SUCCESSFUL, dtype=jnp.int32)
        full = jnp.asarray(False)
        for n in plan.spiking:
            at = counted[n]
            sel = rows.reshape(rows.shape + (1,) * (at.ndim - 1)) < 0
            at = jnp.where(sel, 0.0, at)
            binned = jnp.diff(at, axis=0, prepend=jnp.zeros((1,) + at.shape[1:], at.dtype))
            states.setdefault(n, {})["spike_count"] = binned
            times, idx, over = _events(rasters[n], dt, options.max_spikes)
            spikes[n] = (times, idx)
            full = full | over
        finite = jnp.asarray(True)
        for leaf in jax.tree.leaves(final[0]):
            finite = finite & jnp.all(jnp.isfinite(leaf))
        code = jnp.where(full, results.SPIKE_BUFFER_FULL, code)
        code = jnp.where(finite, code, results.NONFINITE).astype(jnp.int32)
        return spikes, states, code

    # ------------------------------------------------------------------ pieces
    def _above(self, prim, x, rules: DiscreteRules):
        th = prim.threshold() if not isinstance(prim, Threshold) else prim.threshold
        return heaviside(x - th, self.surrogate, rules.threshold_test == ">")

    def _fire(self, prim, state, rules: DiscreteRules):
        """``(z, n)``: the 0/1 spike decision (with surrogate) and the spike count."""
        th = prim.threshold()
        v = prim.membrane(state)
        z = heaviside(v - th, self.surrogate, rules.threshold_test == ">")
        k = rules.max_spikes_per_step
        if k == 1:
            return z, None
        step = th - prim.reset_value()
        safe = jnp.where(step > 0, step, 1.0)
        n = 1.0 + jnp.floor(jax.lax.stop_gradient((v - th) / safe))
        n = jnp.where(step > 0, n, 1.0)
        n = jnp.maximum(n, 1.0) if k is None else jnp.clip(n, 1.0, float(k))
        return z, jax.lax.stop_gradient(n)

    def _reset(self, prim, state, z, n, rules: DiscreteRules, options: SimOptions):
        kind = rules.reset
        if kind == "options":
            kind = "subtract" if options.subtract else "v_reset"
        v = prim.membrane(state)
        if kind == "v_reset":
            v = v - z * (v - prim.reset_value())
        elif kind == "zero":
            v = v - z * v
        else:
            amount = prim.threshold() - prim.reset_value()
            v = v - z * (amount if n is None else n * amount)
        return dataclasses.replace(state, v=v)

    def _spiking_step(self, prim, state, drive, area, rules, dt, options):
        carried = rules.fire_on == "carried"
        if carried or rules.reset_timing == "next_step":
            zc, nc = self._fire(prim, state, rules)
        if rules.reset_timing == "next_step":
            state = self._reset(prim, state, zc, nc, rules, options)
        new = _advance(prim, state, drive, area, rules, dt)
        if carried:
            z, n = zc, nc
        else:
            z, n = self._fire(prim, new, rules)
        if rules.reset_timing == "same_step":
            new = self._reset(prim, new, z, n, rules, options)
        if rules.floor_at_minus_threshold:
            new = dataclasses.replace(new, v=jnp.maximum(new.v, -prim.threshold()))
        return (z if n is None else z * n), new


# ---------------------------------------------------------------------- helpers
def _advance(prim, state, drive, area, rules: DiscreteRules, dt: float):
    """One step of a neuron's linear dynamics (no threshold, no reset)."""
    if rules.input_at == "start":
        total = drive * dt if area is None else drive * dt + area
        state = prim.impulse(state, total)
        drive = jnp.zeros_like(drive)
        area = None
    if rules.integrator == "euler":
        x = drive if area is None else drive + area / dt
        f = prim.vector_field(state, x)
        new = jax.tree.map(lambda s, d: s + dt * d, state, f)
        if rules.membrane_current == "new" and isinstance(state, CubaState):
            g = prim.vector_field(dataclasses.replace(state, i_syn=new.i_syn), x)
            new = dataclasses.replace(new, v=state.v + dt * g.v)
        return new
    new = prim.propagate(state, drive, dt)
    if area is not None:
        new = prim.impulse(new, area)
    return new


def _stateless(prim, c, a, has_bias: bool):
    out_c = None
    if c is not None:
        out_c = prim.linear(c)
    if has_bias:
        out_c = prim.offset() if out_c is None else out_c + prim.offset()
    out_a = None if a is None else prim.linear(a)
    return (out_c, out_a)


def _delay_step(d, bufs, signal, step):
    out, new = [], []
    for part, hist in zip(signal, bufs, strict=True):
        if hist is None:
            out.append(None)
            new.append(None)
            continue
        src = step - d
        idx = jnp.clip(src, 0, hist.shape[0] - 1)
        past = jnp.take_along_axis(hist, idx[None], axis=0)[0]
        past = jnp.where(src >= 0, past, 0.0)
        value = jnp.where(d == 0, part, past)
        out.append(value)
        new.append(hist.at[step].set(part))
    return tuple(out), tuple(new)


def _zeros_like_signal(sig):
    return tuple(None if p is None else jnp.zeros_like(p) for p in sig)


def _add(x, y):
    if x is None:
        return y
    if y is None:
        return x
    return x + y


def _compact(z, rules: DiscreteRules):
    """Spike counts of one step as a small integer raster (bool for one spike)."""
    z = jax.lax.stop_gradient(z)
    if rules.max_spikes_per_step == 1:
        return z > 0.5
    return jnp.round(z).astype(jnp.int32)


def _events(raster, dt: float, max_spikes: int, method: str | None = None):
    """Padded ``(times, indices)`` from a raster of spike counts ``raster[step, ...]``
    (several spikes of a neuron in one step are repeated events), and whether more
    than ``max_spikes`` occurred.

    ``method``: ``"search"`` (binary search of each event slot in the cumulative
    counts), ``"scatter"`` (each cell's first event slot scattered, then a running
    maximum; linear work) or None (on CPU the cheaper of the two by operation count,
    on other platforms scatter).
    """
    cells_total = max(math.prod(raster.shape), 1)
    if raster.dtype == jnp.bool_ and max_spikes > cells_total:
        # at most one spike per cell: fill only as many slots as there are cells
        t, i, over = _events(raster, dt, cells_total, method)
        pad = max_spikes - cells_total
        return (
            jnp.concatenate([t, jnp.full((pad,), jnp.inf, t.dtype)]),
            jnp.concatenate([i, jnp.full((pad,), -1, i.dtype)]),
            over,
        )
    if method is None and jax.default_backend() == "cpu":
        cheap_search = max_spikes * math.log2(cells_total + 1) < 3 * cells_total
        method = "search" if cheap_search else "scatter"
    steps = raster.shape[0]
    width = max(int(np.prod(raster.shape[1:], dtype=np.int64)), 1)
    counts = raster.astype(jnp.int32).reshape(-1)
    cells = counts.shape[0]
    csum = jnp.cumsum(counts)
    total = csum[-1] if cells else jnp.asarray(0, jnp.int32)

    def search(csum):
        k = jnp.arange(max_spikes, dtype=jnp.int32)
        return jnp.searchsorted(csum, k, side="right").astype(jnp.int32)

    def scatter(csum):
        start = csum - counts
        slot = jnp.where((counts > 0) & (start < max_spikes), start, max_spikes)
        marks = jnp.zeros((max_spikes,), jnp.int32)
        marks = marks.at[slot].set(jnp.arange(1, cells + 1, dtype=jnp.int32), mode="drop")
        return jax.lax.cummax(marks, axis=0) - 1

    if method == "search":
        cell = search(csum)
    elif method == "scatter":
        cell = scatter(csum)
    else:
        cell = jax.lax.platform_dependent(csum, cpu=search, default=scatter)
    cell = jnp.clip(cell, 0, max(steps * width - 1, 0))
    valid = jnp.arange(max_spikes) < total
    step = (cell // width).astype(jnp.result_type(float))  # float32 when x64 is off
    times = jnp.where(valid, step * dt, jnp.inf)
    indices = jnp.where(valid, cell % width, -1).astype(jnp.int32)
    return times, indices, total > max_spikes


def _input_sequences(value, shape, n_steps, dt, unit, grid):
    """``(c, a)``: per-step drive and impulse areas of one graph input, each
    ``(n_steps, *shape)`` or None."""
    if isinstance(value, Current):
        vals = value.values
        if grid == "current":
            return (_bin_average(vals, value.dt, n_steps, dt), None)
        bins = vals.shape[0]
        step = jnp.floor(jnp.arange(bins) * value.dt / dt + GRID_RTOL).astype(jnp.int32)
        area = jnp.zeros((n_steps,) + tuple(shape), vals.dtype)
        return (None, area.at[step].add(vals * unit, mode="drop"))
    assert isinstance(value, Spikes)
    width = math.prod(shape)
    t = value.times
    idx = value.indices
    ok = (idx >= 0) & jnp.isfinite(t)
    step = jnp.floor(jnp.where(ok, t, 0.0) / dt + GRID_RTOL).astype(jnp.int32)
    step = jnp.where(ok, step, n_steps)
    vals = jnp.ones_like(t) if value.values is None else value.values
    raster = jnp.zeros((n_steps, width), t.dtype)
    raster = raster.at[step, jnp.where(ok, idx, 0)].add(vals * unit, mode="drop")
    return (None, raster.reshape((n_steps,) + tuple(shape)))


def _bin_average(vals, bin_dt, n_steps, dt):
    """Average over each step of a piecewise-constant signal (0 after its bins)."""
    bins = vals.shape[0]
    ratio = bin_dt / dt
    k = round(ratio)
    if k >= 1 and abs(ratio - k) <= GRID_RTOL * ratio:
        rep = jnp.repeat(vals, k, axis=0) if k > 1 else vals
        if rep.shape[0] >= n_steps:
            return rep[:n_steps]
        pad = jnp.zeros((n_steps - rep.shape[0],) + rep.shape[1:], rep.dtype)
        return jnp.concatenate([rep, pad], axis=0)
    tail = (1,) * (vals.ndim - 1)
    cum = jnp.concatenate(
        [jnp.zeros((1,) + vals.shape[1:], vals.dtype), jnp.cumsum(vals * bin_dt, axis=0)]
    )
    padded = jnp.concatenate([vals, jnp.zeros((1,) + vals.shape[1:], vals.dtype)])
    edges = jnp.arange(n_steps + 1) * dt
    b = jnp.clip(jnp.floor(edges / bin_dt), 0, bins).astype(jnp.int32)
    frac = (edges - b * bin_dt).reshape((-1,) + tail)
    integral = cum[b] + padded[b] * frac
    return (integral[1:] - integral[:-1]) / dt


def step_order(network) -> tuple[str, ...]:
    """A topological order of all edges but those that close a cycle (reverse
    post-order of a depth-first search from the graph inputs)."""
    succ = {n: network.successors(n) for n in network.order}
    seen: set[str] = set()
    post: list[str] = []
    for root in tuple(network.inputs) + tuple(network.order):
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(succ[root]))]
        while stack:
            n, it = stack[-1]
            for m in it:
                if m not in seen:
                    seen.add(m)
                    stack.append((m, iter(succ[m])))
                    break
            else:
                stack.pop()
                post.append(n)
    return tuple(reversed(post))


_WEIGHTS = (Affine, Linear, Conv1d, Conv2d)


class _Plan:
    """The static structure of one step (built once per trace, in plain Python)."""

    def __init__(self, network, prims, interp, base, inputs, grid):
        self.order = step_order(network)
        pos = {n: i for i, n in enumerate(self.order)}
        self.kind: dict[str, str] = {}
        for n in self.order:
            prim = network.nodes[n]
            if isinstance(prim, Input):
                kind = "input"
            elif isinstance(prim, Output):
                kind = "output"
            elif isinstance(prim, AbstractStateless):
                kind = "stateless"
            elif isinstance(prim, Delay):
                kind = "delay"
            elif isinstance(prim, Threshold):
                kind = "threshold"
            elif isinstance(prim, AbstractSpikingNeuron):
                kind = "spiking"
            else:
                kind = "neuron"
            self.kind[n] = kind
        self.neurons = tuple(n for n in self.order if self.kind[n] in ("neuron", "spiking"))
        self.spiking = tuple(
            n for n in self.order if self.kind[n] in ("spiking", "threshold")
        )
        self.delays = tuple(n for n in self.order if self.kind[n] == "delay")
        self.thresholds = tuple(n for n in self.order if self.kind[n] == "threshold")
        self.rules = {
            n: interp.rules(network, n, network.nodes[n], base)
            for n in self.neurons + self.thresholds
        }
        self.has_bias = {
            n: "bias" in type(prims[n]).param_names
            for n in self.order
            if self.kind[n] == "stateless"
        }

        def delayed_emitter(p):
            if p in self.rules and self.rules[p].spike_delivery == "next_step":
                return self.kind[p] in ("spiking", "threshold")
            return base.dense_delay and isinstance(network.nodes[p], _WEIGHTS)

        self.reads: dict[str, tuple[tuple[str, bool], ...]] = {}
        carried = set()
        for n in self.order:
            reads = []
            for p in network.predecessors(n):
                if self.kind[p] == "output":
                    continue
                use_prev = pos[p] >= pos[n] or delayed_emitter(p)
                if use_prev:
                    carried.add(p)
                reads.append((p, use_prev))
            self.reads[n] = tuple(reads)
        self.carried = tuple(n for n in self.order if n in carried)

        # Which signal parts (continuous, impulse) exist where: a fixed point.
        has = {}
        for n in self.order:
            k = self.kind[n]
            if k == "input":
                cur = isinstance(inputs[n], Current)
                has[n] = (cur and grid == "current", not (cur and grid == "current"))
            elif k == "neuron":
                has[n] = (True, False)
            elif k in ("spiking", "threshold"):
                has[n] = (False, True)
            else:
                has[n] = (False, False)
        changed = True
        while changed:
            changed = False
            for n in self.order:
                k = self.kind[n]
                if k not in ("stateless", "delay"):
                    continue
                c = any(has[p][0] for p, _ in self.reads[n])
                a = any(has[p][1] for p, _ in self.reads[n])
                if k == "stateless" and self.has_bias[n]:
                    c = True
                if (c, a) != has[n]:
                    has[n] = (c or has[n][0], a or has[n][1])
                    changed = True
        self.has = has
        self.shapes = {n: tuple(network.shape(n)) for n in self.order}

    def gather(self, n, now, prev):
        c = a = None
        for p, use_prev in self.reads[n]:
            sig = (prev if use_prev else now).get(p)
            if sig is None:
                continue
            c = _add(c, sig[0])
            a = _add(a, sig[1])
        return c, a

    def rest_outputs(self, prims, init_states):
        """Every node's outgoing signal at rest (before t = 0), with the static
        presence of each part."""
        rest = {}
        for n in self.order:
            k = self.kind[n]
            has_c, has_a = self.has[n]
            shape = self.shapes[n]
            zero = jnp.zeros(shape)
            if k == "stateless":
                out_c = None
                if has_c:
                    c = self.gather(n, rest, rest)[0]
                    x = None if c is None else prims[n].linear(c)
                    if self.has_bias[n]:
                        x = prims[n].offset() if x is None else x + prims[n].offset()
                    out_c = zero if x is None else x
                rest[n] = (out_c, zero if has_a else None)
            elif k == "neuron":
                rest[n] = (prims[n].output(init_states[n]), None)
            else:
                rest[n] = (zero if has_c else None, zero if has_a else None)
        return rest


def euler(dt: float) -> Discrete:
    """Forward Euler with the default :class:`DiscreteRules` (order 1 in ``dt``)."""
    return Discrete(dt=dt, rules=DiscreteRules(integrator="euler"), label="euler")


def exponential(dt: float) -> Discrete:
    """Exponential integration (exact for input constant over each step)."""
    return Discrete(
        dt=dt, rules=DiscreteRules(integrator="exponential"), label="exponential"
    )


registry.register("euler", euler, needs_dt=True)
registry.register("exponential", exponential, needs_dt=True)
