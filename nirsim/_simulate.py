"""``nirsim.simulate``: one entry point for every back-end."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import nir
import numpy as np

from . import _progress
from ._data import Current, SpikeRaster, Spikes
from ._errors import InputError, NirsimError, SimulationError, positive_number
from ._network import Network, load
from ._trace import Trace
from .solvers import registry, results
from .solvers.base import BATCH_AXIS, SimOptions as SimOptions_
from .solvers.discrete.base import AbstractDiscrete

RESETS = ("to_v_reset", "subtract")


def resolve_inputs(network: Network, inputs) -> dict[str, Current | Spikes]:
    """Map every Input node of ``network`` to a :class:`Current` or :class:`Spikes`.

    Accepts a single Current/Spikes (graphs with one Input), a dict keyed by Input
    name (values Current, Spikes, nir.TimeGriddedData, nir.EventData), or a
    ``nir.NIRGraphData`` with one entry per Input node and one observable,
    ``current`` or ``spikes`` (docs/semantics.md, section 2).
    """
    names = network.inputs
    if isinstance(inputs, nir.NIRGraphData):
        out = {}
        for name, nd in inputs.nodes.items():
            if name not in names:
                raise InputError(
                    f"input data names node '{name}', which is not an Input of the "
                    f"graph (Inputs: {', '.join(names)})"
                )
            obs = getattr(nd, "observables", {})
            if len(obs) != 1 or next(iter(obs)) not in ("current", "spikes"):
                raise InputError(
                    f"input data of node '{name}' must hold one observable, 'current' "
                    f"or 'spikes', got {sorted(obs)}"
                )
            kind, value = next(iter(obs.items()))
            out[name] = _convert(network, name, value, as_spikes=(kind == "spikes"))
        inputs = out
    elif isinstance(inputs, Current | Spikes | nir.TimeGriddedData | nir.EventData):
        if len(names) != 1:
            raise InputError(
                f"the graph has {len(names)} Input nodes ({', '.join(names)}): pass a "
                "dict keyed by Input name"
            )
        inputs = {names[0]: inputs}
    if not isinstance(inputs, Mapping):
        raise InputError(
            "inputs must be Current, Spikes, a dict of them keyed by Input name, or "
            f"nir.NIRGraphData, not {type(inputs).__name__}"
        )
    out = {}
    for name, value in inputs.items():
        if name not in names:
            raise InputError(
                f"'{name}' is not an Input node of the graph (Inputs: {', '.join(names)})"
            )
        out[name] = _convert(network, name, value, as_spikes=None)
    missing = [name for name in names if name not in out]
    if missing:
        raise InputError(
            f"no input for Input node{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(m) for m in missing)} (Inputs: {', '.join(names)}); pass "
            "one for every Input (nirsim.Spikes([], []) for none)"
        )
    return out


def _convert(network, name, value, as_spikes):
    try:
        return _convert_one(network, name, value, as_spikes)
    except InputError as e:
        if f"'{name}'" in str(e):
            raise
        raise InputError(f"input '{name}': {e}") from None


def _convert_one(network, name, value, as_spikes):
    shape = network.shape(name)
    n = math.prod(shape)
    if isinstance(value, nir.TimeGriddedData):
        if as_spikes or value.data.dtype == bool:
            value = Spikes.from_nir(value)
        else:
            value = Current.from_nir(value, shape)
    elif isinstance(value, nir.EventData):
        value = Spikes.from_nir(value)
    if isinstance(value, Current):
        vs = value.values.shape
        if tuple(vs[len(vs) - len(shape) :]) != shape or len(vs) < len(shape) + 1:
            raise InputError(
                f"Current for Input '{name}' has shape {tuple(vs)}; expected "
                f"(*batch, steps, {', '.join(map(str, shape))})"
            )
        if value.n_steps(shape) < 1:
            raise InputError(f"Current for Input '{name}' has no time step")
        return value
    if isinstance(value, Spikes):
        # traced indices (spikes built inside a jitted training step) are not checked
        idx = value.indices
        idx = np.zeros(0) if isinstance(idx, jax.core.Tracer) else np.asarray(idx)
        if idx.size and idx.max() >= n:
            raise InputError(
                f"spike index {int(idx.max())} out of range for Input '{name}' of shape "
                f"{shape} ({n} neurons)"
            )
        if value.n_neurons is not None and value.n_neurons != n:
            raise InputError(
                f"spikes for Input '{name}' have n_neurons={value.n_neurons}, the node "
                f"has {n}"
            )
        if value.n_neurons != n or value.t_max is not None:
            # the same static fields whatever the source (a file's t_max, a list's
            # missing n_neurons): one jit program for one graph and input shape
            value = Spikes(
                value.times, value.indices, value.values, n_neurons=n, check=False
            )
        return value
    raise InputError(
        f"input for '{name}' must be Current or Spikes, not {type(value).__name__}"
    )


def _batch_shape(network, inputs) -> tuple[int, ...]:
    shapes = {}
    for name, v in inputs.items():
        if isinstance(v, Current):
            shapes[name] = v.batch_shape(network.shape(name))
        elif v.times.shape[-1] > 0 or v.times.ndim > 1:
            shapes[name] = v.batch_shape
    distinct = {s for s in shapes.values() if s}
    if len(distinct) > 1:
        raise InputError(f"inputs disagree on the batch shape: {shapes}")
    return distinct.pop() if distinct else ()


def _keep_sharding(s: Spikes, like) -> Spikes:
    """Put sorted spikes back on the devices ``like`` (the caller's times) was sharded
    over, so a batch sharded over a mesh stays sharded."""
    sharding = getattr(like, "sharding", None)
    if sharding is None or sharding.is_fully_replicated or like.shape != s.times.shape:
        return s
    return _map_arrays(s, lambda a: jax.device_put(a, sharding))


def _map_arrays(s: Spikes, fn) -> Spikes:
    """``s`` with ``fn`` applied to its times, indices and values (unchecked)."""
    f = lambda a: None if a is None else fn(a)
    return Spikes(
        f(s.times), f(s.indices), f(s.values), n_neurons=s.n_neurons, t_max=s.t_max,
        check=False,
    )  # fmt: skip


def _sorted_spikes(s: Spikes, batch: tuple[int, ...]) -> Spikes:
    """Sort events by time (padding last) and broadcast to the batch shape (with
    jax where the times are traced: inputs encoded inside a jitted training step)."""
    traced = any(isinstance(a, jax.core.Tracer) for a in (s.times, s.indices, s.values))
    xp = jnp if traced else np
    t = xp.asarray(s.times, dtype=float)
    i = xp.asarray(s.indices)
    v = xp.ones_like(t) if s.values is None else xp.asarray(s.values, dtype=float)
    t = xp.where(i >= 0, t, xp.inf)
    # (on the host, already sorted: skip)
    if traced or (t.shape[-1] > 1 and not np.all(t[..., 1:] >= t[..., :-1])):
        # jnp.argsort is stable
        order = jnp.argsort(t, axis=-1) if traced else np.argsort(t, axis=-1, kind="stable")
        t, i, v = (xp.take_along_axis(a, order, -1) for a in (t, i, v))
    if t.shape[:-1] != batch:
        t, i, v = (xp.broadcast_to(a, batch + a.shape[-1:]) for a in (t, i, v))
    return Spikes(t, i, v, n_neurons=s.n_neurons, t_max=s.t_max, check=False)


#: Most sample rows (``t_end / save_dt`` or ``len(save_at)``) and discrete steps
#: (``t_end / dt``) one simulation may ask for; more is refused with the sizes, not
#: left to fail in an allocation (or run for days).
MAX_SAMPLES = 10**8
MAX_STEPS = 10**9


def sample_times(t_end: float, save_dt, save_at) -> tuple[np.ndarray, float | None]:
    if save_dt is not None and save_at is not None:
        raise InputError("give save_dt or save_at, not both")
    if save_at is not None:
        try:
            ts = np.asarray(save_at).reshape(-1)
            if ts.dtype.kind not in "biuf":
                raise TypeError(f"dtype {ts.dtype}")
            ts = ts.astype(float)
        except (TypeError, ValueError) as e:
            raise InputError(f"save_at must be an array of real times ({e})") from None
        if ts.size > MAX_SAMPLES:
            raise InputError(
                f"save_at has {ts.size} times, more than MAX_SAMPLES = {MAX_SAMPLES:.0e}"
            )
        if np.any(~np.isfinite(ts)) or np.any(ts < 0) or np.any(ts > t_end):
            raise InputError("save_at times must lie in [0, t_end]")
        if np.any(np.diff(ts) <= 0):
            raise InputError("save_at times must be strictly increasing")
        return ts, None
    if save_dt is None:
        return np.zeros(0), None
    save_dt = positive_number(save_dt, "save_dt")
    n = math.floor(t_end / save_dt * (1 + 1e-12))
    if n > MAX_SAMPLES:
        raise InputError(
            f"save_dt={save_dt:g} with t_end={t_end:g} asks for {n:.3g} sample rows per "
            f"state, more than MAX_SAMPLES = {MAX_SAMPLES:.0e} (nirsim._simulate); "
            "raise save_dt or sample at chosen times with save_at"
        )
    # the last sample may round past t_end: it is t_end
    return np.minimum((np.arange(n) + 1) * save_dt, t_end), save_dt


def _broadcast_spikes(s: Spikes, batch: tuple[int, ...]) -> Spikes:
    """Spikes with the batch shape (no host copy, no sorting)."""
    if s.times.shape[:-1] == batch:
        return s
    return _map_arrays(s, lambda a: jnp.broadcast_to(a, batch + a.shape[-1:]))


def _tolerance(x, name: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {x!r}") from None
    if not (math.isfinite(v) and v >= 0):
        raise InputError(f"{name} must be finite and >= 0, got {v!r}")
    return v


def _is_int_at_least(value, lo: int) -> bool:
    if isinstance(value, bool) or not isinstance(
        value, int | float | np.integer | np.floating
    ):
        return False
    return math.isfinite(value) and int(value) == value and value >= lo


def _with_dtype(solver, dtype):
    if dtype is None:
        return solver
    try:
        dt_ = jnp.dtype(dtype)
    except TypeError:
        raise InputError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dt_ not in (jnp.float32, jnp.float64):
        raise InputError(f"dtype must be float32 or float64, got {dtype!r}")
    if isinstance(solver, AbstractDiscrete):
        # by name: numpy dtypes compare equal to None, which would confuse caches
        solver = dataclasses.replace(solver, dtype=dt_.name)
        solver.compute_dtype()  # refuses float64 without x64
        return solver
    if dt_ != jnp.dtype(float):
        raise InputError(
            f"the {solver.name} solver computes in {jnp.dtype(float)}; dtype applies to "
            "discrete back-ends"
        )
    return solver


def make_solver(solver, dt=None):
    return registry.get_solver(solver, dt)


def simulate(
    network,
    inputs,
    *,
    t_end: float,
    save_dt: float | None = None,
    save_at: Sequence[float] | None = None,
    reset: str = "to_v_reset",
    spike_area: float = 1.0,
    solver=None,
    dt: float | None = None,
    grid_as: str = "current",
    max_events: int = 100_000,
    max_spikes: int = 10_000,
    max_cascade: int = 1_000,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    throw: bool = True,
    progress: bool = False,
    dtype=None,
) -> Trace:
    """Simulate a NIR graph.

    Args:
        network: a :class:`Network`, a ``nir.NIRGraph`` or a path to a ``.nir`` file.
        inputs: :class:`Current` (piecewise-constant, value ``x[n]`` on
            ``[n dt, (n+1) dt)``) or :class:`Spikes` (impulses), one per Input node
            (dict keyed by name), or ``nir.NIRGraphData``. Leading axes before the
            time/event axis are a batch, simulated with ``jax.vmap``.
        t_end: end of the simulation, in the graph's time unit (seconds).
        save_dt: sample states every ``save_dt`` (row ``n`` at ``(n+1)*save_dt``).
        save_at: or sample at these increasing times.
        reset: ``"to_v_reset"`` (NIR's definition) or ``"subtract"``
            (``v <- v - (v_threshold - v_reset)``).
        spike_area: area ``A`` of each spike impulse (1 in NIR's formalism; ``dt`` of
            the export for graphs from discrete-time frameworks, e.g. 1e-4 for the
            Braille graphs).
        solver: ``None`` or ``"ideal"`` (exact, event-driven; closed-form where the
            graph allows, else diffrax), ``"closed_form"``, ``"diffrax"``, a solver
            instance (e.g. ``nirsim.solvers.Diffrax(solver=diffrax.Tsit5())``), or a
            discrete rule / framework preset (see the README).
        dt: step of a discrete solver given by name (``solver="euler", dt=1e-4``).
        grid_as: how gridded (Current) inputs are read: ``"current"`` or ``"impulse"``
            (one impulse of area ``x[n] * spike_area`` at ``n dt``).
        max_events: bound on solver events (ideal back-ends).
        max_spikes: capacity of each spiking node's spike buffer.
        max_cascade: bound on firing rounds at one instant (Zeno guard).
        rtol, atol: tolerances of adaptive (diffrax) solves.
        throw: raise :class:`SimulationError` with advice on failure; with
            ``False`` the failure is returned as ``trace.result`` (0 = success).
        progress: show a progress bar of simulated time (ideal back-ends; it costs
            a host callback per event, so it is meant for long command-line runs).
        dtype: ``jnp.float32`` or ``jnp.float64`` (or their names): what a discrete
            back-end computes in. Default: the framework's for a preset (float32),
            float64 for ``euler``/``exponential`` (when jax's x64 mode is on). The
            ideal back-ends compute in float64.

    Returns:
        A :class:`Trace`.
    """
    key = _call_key(
        network, solver, dt, dtype, t_end, save_dt, save_at, reset, spike_area,
        grid_as, max_events, max_spikes, max_cascade, rtol, atol, progress,
    )  # fmt: skip
    plan = _PLANS.get(key) if key is not None else None
    if plan is None or plan.network is not network:
        plan = _plan(
            network, solver, dt, dtype, t_end, save_dt, save_at, reset, spike_area,
            grid_as, max_events, max_spikes, max_cascade, rtol, atol, progress,
        )  # fmt: skip
        if key is not None and not _traced(plan.network):
            _PLANS[key] = plan
            while len(_PLANS) > 64:  # keep the newest plans
                del _PLANS[next(iter(_PLANS))]
    network, solver, discrete, ts = plan.network, plan.solver, plan.discrete, plan.ts
    shapes = plan.shapes
    t_end = plan.t_end
    regular_dt = plan.regular_dt
    resolved = resolve_inputs(network, inputs)
    batch = _batch_shape(network, resolved)
    prepared = {}
    for name, v in resolved.items():
        if isinstance(v, Spikes) and discrete:  # binned on the device, in any order
            prepared[name] = _broadcast_spikes(v, batch)
        elif isinstance(v, Spikes):
            prepared[name] = _keep_sharding(_sorted_spikes(v, batch), v.times)
        elif v.batch_shape(shapes[name]) != batch:
            vals = jnp.broadcast_to(v.values, batch + v.values.shape)
            prepared[name] = Current(vals, v.dt)
        else:
            prepared[name] = v
    with _progress.bar(t_end, progress):
        sol, (valid, t_valid) = _run(plan, prepared, batch)
    spikes, states = sol.spikes, sol.states
    result = results.code_of(sol.result)
    fail_t, fail_node, n_grazing = sol.failure_time, sol.failure_node, sol.n_grazing
    dt = solver.grid_dt()
    if discrete:
        spikes = {
            n: SpikeRaster(r, dt=dt, shape=shapes[n], t_max=t_end)
            for n, r in spikes.items()
        }
    else:
        spikes = {
            n: Spikes(t, i, n_neurons=math.prod(shapes[n]), t_max=t_end, check=False)
            for n, (t, i) in spikes.items()
        }
    trace = Trace(
        spikes=spikes,
        states=states,
        ts=ts,
        result=result,
        t_end=t_end,
        save_dt=regular_dt,
        dt=dt,
        backend=solver.name,
        shapes=tuple(shapes.items()),
        n_grazing=n_grazing,
        valid=valid,
        t_valid=t_valid,
    )
    if throw and not isinstance(result, jax.core.Tracer):  # under jax.grad: no check
        codes = np.asarray(result)
        if np.any(codes != 0):
            first = np.argwhere(codes.reshape(-1) != 0)[0, 0]
            code = int(codes.reshape(-1)[first])
            where = ""
            if fail_t is not None:
                t_fail = float(np.asarray(fail_t).reshape(-1)[first])
                k = int(np.asarray(fail_node).reshape(-1)[first])
                spiking = [n for n in network.spiking]
                node = f" in node '{spiking[k]}'" if 0 <= k < len(spiking) else ""
                where = f" at t = {t_fail:.9g} s{node}"
            sample = f" (batch element {first})" if codes.ndim else ""
            bound = {
                results.ZENO: f" (max_cascade={max_cascade})",
                results.MAX_EVENTS: f" (max_events={max_events})",
                results.SPIKE_BUFFER_FULL: f" (max_spikes={max_spikes})",
            }.get(code, "")
            raise SimulationError(
                f"simulation failed ({solver.name}){where}{sample}{bound}: "
                f"{results.MESSAGES.get(code, code)}",
                code,
            )
    return trace


class _CallPlan(NamedTuple):
    """What a simulate call needs besides its inputs, built once per (network,
    solver, options) and reused: the checked network and solver, sample times and
    the solver's options."""

    network: Network
    solver: object
    discrete: bool
    ts: jax.Array
    regular_dt: float | None
    options: object
    t_end: float
    compiled: dict  # batch rank -> (jitted function, array leaves)
    shapes: dict  # node -> shape, in the network's order


def _traced(tree) -> bool:
    return any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(tree))


_PLANS: dict = {}


def _call_key(network, solver, *rest):
    """A hashable key of a simulate call's set-up, or None (no caching: the network
    is a path or a graph to load, or an argument cannot be hashed, or a value is
    traced)."""
    if not isinstance(network, Network):
        return None
    try:
        key = (id(network), solver, *(tuple(r) if isinstance(r, list) else r for r in rest))
        hash(key)
    except TypeError:
        return None
    return key


def _plan(
    network, solver, dt, dtype, t_end, save_dt, save_at, reset, spike_area, grid_as,
    max_events, max_spikes, max_cascade, rtol, atol, progress,
) -> _CallPlan:  # fmt: skip
    network = load(network)
    if reset not in RESETS:
        raise InputError(f"reset must be one of {RESETS}, got {reset!r}")
    if grid_as not in ("current", "impulse"):
        raise InputError(f"grid_as must be 'current' or 'impulse', got {grid_as!r}")
    t_end = positive_number(t_end, "t_end")
    for name, value, lo in (
        ("max_events", max_events, 1),
        ("max_spikes", max_spikes, 1),
        ("max_cascade", max_cascade, 1),
    ):
        if not _is_int_at_least(value, lo):
            raise InputError(f"{name} must be an integer >= {lo}, got {value!r}")
    if not isinstance(spike_area, jax.Array):  # a traced area (grad) is not checked
        positive_number(spike_area, "spike_area")
    rtol, atol = _tolerance(rtol, "rtol"), _tolerance(atol, "atol")
    if rtol == 0 and atol == 0:
        raise InputError("rtol and atol are both 0: give at least one > 0")
    if dt is not None:
        dt = positive_number(dt, "dt")
    solver = make_solver(solver, dt)
    solver = _with_dtype(solver, dtype)
    discrete = isinstance(solver, AbstractDiscrete)
    grid = solver.grid_dt()
    if grid is not None and t_end / grid > MAX_STEPS:
        raise InputError(
            f"dt={grid:g} with t_end={t_end:g} is {t_end / grid:.3g} steps, more than "
            f"MAX_STEPS = {MAX_STEPS:.0e} (nirsim._simulate); raise dt"
        )
    solver.check(network)
    ts, regular_dt = sample_times(t_end, save_dt, save_at)
    solver.check_times(ts, t_end)
    options = SimOptions_(
        spike_area=jnp.asarray(spike_area, dtype=float),
        subtract=(reset == "subtract"),
        impulse_grid=(grid_as == "impulse"),
        max_events=int(max_events),
        max_spikes=int(max_spikes),
        max_cascade=int(max_cascade),
        rtol=float(rtol),
        atol=float(atol),
        progress=bool(progress),
    )
    shapes = {n: network.shape(n) for n in network.order}
    return _CallPlan(
        network, solver, discrete, jnp.asarray(ts), regular_dt, options, t_end, {}, shapes
    )


def _valid_rows(states, ts, result, fail_t, t_end):
    """``Trace.valid`` (rows holding the answer: every row of a successful batch
    element; after a failure, the finite rows sampled before it) and ``Trace.t_valid``
    (t_end, or the failure time; 0 where the back-end does not report it)."""
    ok = jnp.asarray(result) == 0
    failed_at = jnp.zeros_like(ok, dtype=float) if fail_t is None else fail_t
    t_valid = jnp.where(ok, t_end, failed_at)
    finite = jnp.ones(ok.shape + ts.shape, dtype=bool)
    for fields in states.values():
        for a in fields.values():
            rest = tuple(range(ok.ndim + 1, jnp.ndim(a)))
            finite = finite & jnp.all(jnp.isfinite(a), axis=rest)
    valid = ok[..., None] | (finite & (ts <= t_valid[..., None]))
    return valid, t_valid


def _run(plan: _CallPlan, inputs, batch):
    rank = len(batch)
    if rank not in plan.compiled:
        plan.compiled[rank] = _compiled(plan, rank)
    fn, leaves = plan.compiled[rank]
    try:
        return fn(leaves, inputs, plan.ts)
    except NirsimError:
        raise
    except eqx.EquinoxRuntimeError as e:  # eqx.error_if at run time
        raise SimulationError(str(e).split("\n")[0]) from None


_JITTED: dict = {}


def _compiled(plan: _CallPlan, rank: int):
    """``(fn, leaves)``: the jitted simulation and the array leaves of the solver,
    network and options it takes. One jitted function per static structure (pytree
    definition, static fields, ``t_end``, batch rank), so a new Network of the same
    structure (a training step) reuses it, and jit's own cache handles shapes."""
    dyn, static = eqx.partition((plan.solver, plan.network, plan.options), eqx.is_array)
    leaves, treedef = jax.tree.flatten(dyn)
    t_end = plan.t_end
    static_leaves, static_def = jax.tree.flatten(static)
    try:
        key = (treedef, static_def, tuple(static_leaves), t_end, rank)
        hash(key)
    except TypeError:
        key = None
    fn = _JITTED.get(key) if key is not None else None
    if fn is None:

        def run(leaves, inputs, ts):
            solver, network, options = eqx.combine(
                jax.tree.unflatten(treedef, leaves), static
            )

            def one(inputs):
                return solver.solve(network, inputs, ts, t_end, options)

            batched = getattr(solver, "solve_batch", None)
            if rank and batched is not None:
                # one batch axis, run by the solver itself (no vmap lockstep)
                shape = jax.tree_util.tree_leaves(inputs)[0].shape[:rank]
                size = math.prod(shape)
                flat = jax.tree_util.tree_map(
                    lambda a: a.reshape((size,) + a.shape[rank:]), inputs
                )
                sol = batched(network, flat, ts, t_end, options)
                sol = jax.tree_util.tree_map(lambda a: a.reshape(shape + a.shape[1:]), sol)
            else:
                for k in range(rank):  # named, so a solver can tell samples apart
                    one = jax.vmap(one, axis_name=BATCH_AXIS.format(k))
                sol = one(inputs)
            code = results.code_of(sol.result)
            valid = _valid_rows(sol.states, ts, code, sol.failure_time, t_end)
            return sol, valid

        fn = jax.jit(run)
        if key is not None:
            _JITTED[key] = fn
    return fn, leaves
