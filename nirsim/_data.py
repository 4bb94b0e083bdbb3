"""Simulation inputs: piecewise-constant currents and impulse (spike) lists.

Both hold an optional batch: leading axes before the time/event axis. Conversion to
and from NIRData follows DESIGN.md section 5: ``n_neurons`` is the node's shape
flattened in C order, and EventData indices count the same way.
"""

from __future__ import annotations

import functools
import math

import equinox as eqx
import jax.numpy as jnp
import nir
import numpy as np

from ._custom_types import Array, Shape
from ._errors import InputError, positive_number


class Current(eqx.Module):
    """A piecewise-constant input current.

    ``values[..., n, *shape]`` is the current on ``[n dt, (n+1) dt)`` (the input
    node's unit); it is 0 after the last bin. Leading axes before the step axis are a
    batch. ``dt`` is in the graph's time unit (seconds for published graphs).

    Example: ``Current(np.eye(1)[None].repeat(3, 0)[..., 0], dt=1e-4)`` is a current
    of 1 for three bins of 0.1 ms on a one-neuron input.
    """

    values: Array
    dt: float = eqx.field(static=True)

    def __init__(self, values, dt):
        self.values = _real_array(values, "Current values")
        self.dt = positive_number(dt, "Current dt")
        if self.values.ndim < 1:
            raise InputError("Current values need a time axis")
        if self.values.size == 0:
            raise InputError(
                f"Current values have shape {tuple(self.values.shape)}, with no entries: "
                "a current needs at least one time step (and a non-empty batch)"
            )

    def __check_init__(self):
        try:
            arr = np.asarray(self.values)
        except Exception:
            return
        if not np.all(np.isfinite(arr)):
            raise InputError("Current values contain NaN or infinity")

    def n_steps(self, shape: Shape) -> int:
        return int(self.values.shape[self.values.ndim - len(shape) - 1])

    def batch_shape(self, shape: Shape) -> Shape:
        return tuple(self.values.shape[: self.values.ndim - len(shape) - 1])

    @classmethod
    def from_nir(cls, data: nir.TimeGriddedData, shape: Shape | None = None) -> Current:
        """From ``nir.TimeGriddedData`` (``(samples, steps, n_neurons)``); the sample
        axis becomes the batch axis; columns are reshaped to ``shape`` (C order)."""
        arr = np.asarray(_real_array(data.data, "TimeGriddedData data"))
        if arr.ndim != 3:
            raise InputError(
                f"TimeGriddedData data has shape {arr.shape}; expected "
                "(samples, steps, n_neurons)"
            )
        if shape is not None:
            if arr.shape[-1] != math.prod(shape):
                raise InputError(
                    f"TimeGriddedData has {arr.shape[-1]} columns, the input node has "
                    f"shape {tuple(shape)} ({math.prod(shape)} values)"
                )
            arr = arr.reshape(arr.shape[:2] + tuple(shape))
        return cls(arr, data.dt)

    def to_nir(self, shape: Shape) -> nir.TimeGriddedData:
        """As ``nir.TimeGriddedData``; an unbatched current becomes one sample."""
        arr = np.asarray(self.values)
        steps = self.n_steps(shape)
        return nir.TimeGriddedData(arr.reshape(-1, steps, math.prod(shape)), self.dt)

    def save(self, path, node: str = "input", shape: Shape | None = None) -> None:
        """Write this current as ``IN.h5`` for ``nirsim run``: the ``current`` of
        Input ``node``, whose shape is ``shape`` (default: the last axis of
        ``values``, i.e. values ``(steps, n)`` or ``(batch, steps, n)``)."""
        from ._input_file import save_inputs

        save_inputs(path, {node: (self, shape) if shape is not None else self})


class Spikes(eqx.Module):
    """A list of impulses (spikes): ``sum_k a_k delta(t - times[k])`` on neuron
    ``indices[k]`` (flat C-order index into the node's shape).

    ``values`` scales each impulse's area (default 1; the simulator multiplies by
    ``spike_area``). Leading axes are a batch; missing events are padded with
    ``time = inf`` and ``index = -1``, as in ``nir.EventData``. Times are in the graph's
    time unit.
    """

    times: Array
    indices: Array
    values: Array | None = None
    n_neurons: int | None = eqx.field(static=True, default=None)
    t_max: float | None = eqx.field(static=True, default=None)

    def __init__(
        self, times, indices, values=None, *, n_neurons=None, t_max=None, check=True
    ):
        t = _real_array(times, "spike times", np)
        i = _index_array(indices) if check else indices
        if not isinstance(i, jnp.ndarray):
            i = np.asarray(i)
        if t.shape != i.shape:
            raise InputError(
                f"spike times {tuple(t.shape)} and indices {tuple(i.shape)} differ in shape"
            )
        if t.ndim == 0:
            raise InputError("spike times need an event axis")
        self.times = jnp.asarray(t, dtype=float)
        self.indices = jnp.asarray(i).astype(jnp.int32)
        if values is not None:
            v = _real_array(values, "spike values")
            if v.shape != self.times.shape:
                raise InputError(
                    f"spike values {tuple(v.shape)} differ in shape from times "
                    f"{tuple(self.times.shape)}"
                )
            values = v
        self.values = values
        self.n_neurons = None if n_neurons is None else int(n_neurons)
        self.t_max = None if t_max is None else float(t_max)
        if check:  # solvers' own outputs skip this host round trip (check=False)
            self._validate()

    def _validate(self):
        try:
            t = np.asarray(self.times)
            i = np.asarray(self.indices)
        except Exception:  # tracers: nothing to look at
            return
        valid = i >= 0
        if np.any(np.isnan(t)) or np.any(t[valid] < 0) or np.any(~np.isfinite(t[valid])):
            k = _first(np.isnan(t) | (valid & ~((t >= 0) & np.isfinite(t))))
            raise InputError(
                f"spike times must be finite and >= 0 (padding: inf, -1); event {k} "
                f"has time {float(t[k])!r} for index {int(i[k])}"
            )
        pad = i < 0
        if np.any(i < -1) or np.any(pad & np.isfinite(t)):
            k = _first((i < -1) | (pad & np.isfinite(t)))
            raise InputError(
                f"spike index {int(i[k])} at time {float(t[k])!r} (event {k}): indices "
                "are >= 0, and the only padding is index -1 at time inf"
            )
        if self.values is not None:
            try:
                v = np.asarray(self.values)
            except Exception:
                return
            if not np.all(np.isfinite(v[valid])):
                k = _first(valid & ~np.isfinite(v))
                raise InputError(
                    f"spike values must be finite; event {k} (time {float(t[k])!r}, "
                    f"index {int(i[k])}) has value {float(v[k])!r}"
                )
        if self.n_neurons is not None and np.any(i >= self.n_neurons):
            raise InputError(
                f"spike index {int(i.max())} out of range for {self.n_neurons} neurons"
            )

    @property
    def batch_shape(self) -> Shape:
        return tuple(self.times.shape[:-1])

    def count(self) -> Array:
        """Number of spikes (per batch element)."""
        return jnp.sum(self.indices >= 0, axis=-1)

    def counts_per_neuron(self, n_neurons: int | None = None) -> np.ndarray:
        """Spike count per neuron, shape ``(*batch, n_neurons)`` (numpy)."""
        n = n_neurons or self.n_neurons
        if n is None:
            raise InputError("counts_per_neuron needs n_neurons")
        idx = np.asarray(self.indices).reshape(-1, self.indices.shape[-1])
        out = np.zeros((idx.shape[0], n), dtype=np.int64)
        for b in range(idx.shape[0]):
            valid = idx[b][idx[b] >= 0]
            np.add.at(out[b], valid, 1)
        return out.reshape(self.batch_shape + (n,))

    def trains(self, n_neurons: int | None = None) -> list:
        """Sorted spike times per neuron: a list over neurons (nested lists for a
        batch) of numpy arrays."""
        n = n_neurons or self.n_neurons
        if n is None:
            raise InputError("trains needs n_neurons")
        t = np.asarray(self.times).reshape(-1, self.times.shape[-1])
        idx = np.asarray(self.indices).reshape(-1, self.indices.shape[-1])
        out = []
        for b in range(t.shape[0]):
            out.append([np.sort(t[b][idx[b] == k]) for k in range(n)])
        if not self.batch_shape:
            return out[0]
        return out

    @classmethod
    def from_grid(cls, grid, dt: float, *, t_offset: float = 0.0) -> Spikes:
        """From a gridded raster ``grid[..., step, neuron]`` (flat C-order neuron axis;
        bool, or counts/areas):
        one impulse per non-zero bin at ``step * dt + t_offset`` (bin start, NIRData's
        convention); non-boolean entries become the impulse values."""
        dt = positive_number(dt, "dt")
        g = np.asarray(grid)
        return _spikes_from_raster(g, dt, t_offset, g.dtype != bool)

    @classmethod
    def from_nir(
        cls, data: nir.EventData | nir.TimeGriddedData, n_neurons: int | None = None
    ) -> Spikes:
        """From ``nir.EventData``, ``nir.ValuedEventData`` or a boolean (or count)
        ``nir.TimeGriddedData``; the sample axis becomes the batch axis."""
        if isinstance(data, nir.TimeGriddedData):
            s = cls.from_grid(data.data, data.dt)
            return cls(
                s.times, s.indices, s.values, n_neurons=data.n_neurons, t_max=data.t_max
            )
        if isinstance(data, nir.EventData):
            values = getattr(data, "value", None)
            idx = np.asarray(data.idx)
            t = np.where(idx >= 0, np.asarray(data.time, dtype=float), np.inf)
            return cls(t, idx, values, n_neurons=data.n_neurons, t_max=data.t_max)
        raise InputError(f"cannot read spikes from {type(data).__name__}")

    def to_nir(
        self, n_neurons: int | None = None, t_max: float | None = None
    ) -> nir.EventData:
        """As ``nir.EventData`` (``ValuedEventData`` when values are set); an
        unbatched list becomes one sample. Events are sorted by time."""
        n = n_neurons or self.n_neurons
        tm = t_max if t_max is not None else self.t_max
        if n is None or tm is None:
            raise InputError("to_nir needs n_neurons and t_max")
        rows = (math.prod(self.batch_shape), self.times.shape[-1])  # (1, 0) if empty
        t = np.asarray(self.times).reshape(rows)
        idx = np.asarray(self.indices).reshape(rows)
        t = np.where(idx >= 0, t, np.inf)
        order = np.argsort(t, axis=-1, kind="stable")
        t = np.take_along_axis(t, order, -1)
        idx = np.take_along_axis(idx, order, -1).astype(np.int64)
        if self.values is not None:
            v = np.take_along_axis(np.asarray(self.values).reshape(t.shape), order, -1)
            return nir.ValuedEventData(idx, t, int(n), float(tm), v)
        return nir.EventData(idx, t, int(n), float(tm))

    def save(
        self, path, node: str = "input", n_neurons: int | None = None, t_max=None
    ) -> None:
        """Write these spikes as ``IN.h5`` for ``nirsim run``: the ``spikes`` of
        Input ``node`` with ``n_neurons`` neurons (default: ``self.n_neurons``, else
        the largest index + 1) up to ``t_max`` (default: ``self.t_max``, else the
        last spike time)."""
        from ._input_file import save_inputs

        save_inputs(path, {node: (self, n_neurons) if n_neurons else self}, t_max=t_max)


class SpikeRaster(eqx.Module):
    """Spikes on a step grid, as a discrete back-end computes them: ``counts[...,
    n, *shape]`` is the number of spikes of each neuron in step ``n`` (``[n dt,
    (n+1) dt)``), in a small integer dtype (bool for one spike per step). Leading axes
    are a batch.

    It offers the same views as :class:`Spikes`, derived on demand: ``times`` and
    ``indices`` (padded event lists, a spike of step ``n`` stamped ``n dt``, NIRData's
    convention; several spikes in one step are repeated events), :meth:`count`,
    :meth:`counts_per_neuron`, :meth:`trains`, and :meth:`to_nir` (``nir.EventData``),
    so code that reads spikes needs no special case. :meth:`raster` gives the counts
    with a flat neuron axis.
    """

    counts: Array
    dt: float = eqx.field(static=True)
    shape: Shape = eqx.field(static=True)
    t_max: float | None = eqx.field(static=True, default=None)

    values = None

    @property
    def n_neurons(self) -> int:
        return math.prod(self.shape)

    @property
    def batch_shape(self) -> Shape:
        return tuple(self.counts.shape[: self.counts.ndim - len(self.shape) - 1])

    @property
    def n_steps(self) -> int:
        return int(self.counts.shape[len(self.batch_shape)])

    def raster(self) -> np.ndarray:
        """Counts as numpy, shape ``(*batch, steps, n_neurons)`` (flat C order)."""
        c = np.asarray(self.counts)
        return c.reshape(self.batch_shape + (self.n_steps, self.n_neurons))

    @functools.cached_property
    def _events(self) -> tuple[np.ndarray, np.ndarray]:
        r = self.raster().astype(np.int64)
        flat = r.reshape((-1,) + r.shape[-2:])
        n_ev = int(flat.sum(axis=(1, 2)).max()) if flat.size else 0
        times = np.full((flat.shape[0], n_ev), np.inf)
        idx = np.full((flat.shape[0], n_ev), -1, dtype=np.int64)
        for b, f in enumerate(flat):
            step, neuron = np.nonzero(f)  # row-major: sorted by step, then neuron
            reps = f[step, neuron]
            step = np.repeat(step, reps)
            neuron = np.repeat(neuron, reps)
            times[b, : len(step)] = step * self.dt
            idx[b, : len(step)] = neuron
        shape = self.batch_shape + (n_ev,)
        return times.reshape(shape), idx.reshape(shape)

    @property
    def times(self) -> np.ndarray:
        """Padded spike times (``inf`` padding), sorted; step ``n`` is ``n dt``."""
        return self._events[0]

    @property
    def indices(self) -> np.ndarray:
        """Flat neuron index of each event (``-1`` padding)."""
        return self._events[1]

    def count(self) -> Array:
        """Number of spikes (per batch element)."""
        axes = tuple(range(len(self.batch_shape), self.counts.ndim))
        return jnp.sum(self.counts.astype(jnp.int32), axis=axes)

    def counts_per_neuron(self, n_neurons: int | None = None) -> np.ndarray:
        """Spike count per neuron, shape ``(*batch, n_neurons)`` (numpy)."""
        return self.raster().astype(np.int64).sum(axis=-2)

    def trains(self, n_neurons: int | None = None) -> list:
        """Spike times per neuron (nested lists for a batch) of numpy arrays."""
        r = self.raster()
        flat = r.reshape((-1,) + r.shape[-2:])
        out = []
        for f in flat:
            steps = np.arange(f.shape[0])
            out.append([np.repeat(steps, f[:, k]) * self.dt for k in range(f.shape[1])])
        return out if self.batch_shape else out[0]

    def to_nir(
        self, n_neurons: int | None = None, t_max: float | None = None
    ) -> nir.EventData:
        """As ``nir.EventData`` (a spike of step ``n`` at ``n dt``); an unbatched
        raster becomes one sample."""
        tm = t_max if t_max is not None else self.t_max
        if tm is None:
            raise InputError("to_nir needs t_max")
        t, i = self.times, self.indices
        samples = math.prod(self.batch_shape)  # also when there is no event
        t = t.reshape(samples, t.shape[-1])
        i = i.reshape(samples, i.shape[-1])
        return nir.EventData(i, t, int(self.n_neurons), float(tm))


def _spikes_from_raster(g: np.ndarray, dt: float, t_offset: float, valued: bool):
    # g: (*batch, steps, neurons)
    if g.ndim < 2:
        raise InputError("a spike raster needs a step axis and a neuron axis")
    flat = g
    batch = flat.shape[:-2]
    flat = flat.reshape((-1,) + flat.shape[-2:])
    per = [np.nonzero(f) for f in flat]
    n_ev = max((len(p[0]) for p in per), default=0)
    times = np.full((flat.shape[0], n_ev), np.inf)
    idx = np.full((flat.shape[0], n_ev), -1, dtype=np.int64)
    vals = np.zeros((flat.shape[0], n_ev)) if valued else None
    for b, (step, neuron) in enumerate(per):
        order = np.lexsort((neuron, step))
        k = len(step)
        times[b, :k] = step[order] * dt + t_offset
        idx[b, :k] = neuron[order]
        if valued:
            vals[b, :k] = flat[b][step[order], neuron[order]]
    shape = batch + (n_ev,)
    return Spikes(
        times.reshape(shape),
        idx.reshape(shape),
        None if vals is None else vals.reshape(shape),
        n_neurons=flat.shape[-1],
    )


def _first(mask: np.ndarray):
    """The index (a tuple for several axes, else an int) of the first True in mask."""
    k = tuple(int(x) for x in np.argwhere(mask)[0])
    return k[0] if len(k) == 1 else k


def _real_array(x, what: str, xp=jnp):
    """``x`` as a float array (``xp``: jax.numpy or numpy), or an :class:`InputError`
    naming ``what`` when it holds complex numbers, strings or other non-numbers (a
    cast would drop the imaginary part or fail inside jax)."""
    if isinstance(x, jnp.ndarray) and not isinstance(x, np.ndarray):
        kind = np.dtype(x.dtype).kind
        arr = x
        xp = jnp  # a jax array stays on its devices (a sharded batch stays sharded)
    else:
        try:
            arr = np.asarray(x)
        except Exception as e:
            raise InputError(f"{what} are not an array of numbers ({e})") from None
        kind = arr.dtype.kind
    if kind == "c":
        raise InputError(f"{what} are complex ({arr.dtype}); nirsim takes real numbers")
    if kind not in "biuf":
        raise InputError(f"{what} must be numbers, got dtype {arr.dtype}")
    return xp.asarray(arr, dtype=float)


def _index_array(x) -> np.ndarray | jnp.ndarray:
    """Spike indices as integers, or an :class:`InputError`: a fractional, complex,
    boolean or non-numeric index is refused rather than truncated."""
    if isinstance(x, jnp.ndarray) and not isinstance(x, np.ndarray):
        kind = np.dtype(x.dtype).kind
        if kind in "iu":
            return x
        try:
            x = np.asarray(x)
        except Exception:  # a traced index: jax casts it
            return x
    try:
        arr = np.asarray(x)
    except Exception as e:
        raise InputError(f"spike indices are not an array of numbers ({e})") from None
    if arr.dtype.kind in "iu":
        return arr
    if arr.dtype.kind == "f":
        whole = np.isfinite(arr) & (arr == np.round(arr))
        if np.all(whole):
            return arr.astype(np.int64)
        k = _first(~whole)
        raise InputError(
            f"spike index {float(arr[k])!r} (event {k}) is not a whole number; indices are "
            "flat C-order neuron numbers, -1 for padding"
        )
    raise InputError(f"spike indices must be integers, got dtype {arr.dtype}")
