"""Simulation results: spike times per spiking node and sampled states."""

from __future__ import annotations

import glob
import io
import math
import os
import signal
import threading

import equinox as eqx
import h5py
import jax.numpy as jnp
import nir
import numpy as np

from ._custom_types import Array, Shape
from ._data import Spikes
from ._errors import InputError
from ._hdf5 import probe


class Trace(eqx.Module):
    """What a simulation computed, the same type for every back-end.

    * ``spikes[node]``: a :class:`Spikes` per spiking node (times in the graph's time
      unit, flat C-order neuron indices, padded with ``inf``/``-1``, sorted by time).
      Ideal back-ends give exact times; discrete ones stamp a spike of step ``n`` at
      ``n * dt`` (NIRData's convention).
    * ``states[node][field]``: sampled state (``"v"``, and ``"i_syn"`` for Cuba
      primitives), shape ``(*batch, len(ts), *node_shape)``; row ``k`` is the value at
      ``ts[k]``, after any reset at that instant.
    * ``ts``: sample times; ``save_dt`` their spacing when regular
      (``ts = (n+1) * save_dt``).
    * ``result``: integer code per batch element, 0 on success (see
      :func:`nirsim.simulate`'s ``throw``).
    * ``n_grazing``: closed-form ideal solves, per batch element, how many spikes
      crossed threshold with ``dv/dt`` so small that their spike-time derivative
      was clipped (see :mod:`nirsim.readout`); ``None`` for other back-ends.
    * ``valid``: which sampled rows hold the simulation's answer, boolean
      ``(*batch, len(ts))``; ``False`` where a failed batch element (``result != 0``,
      with ``throw=False``) left NaN. ``None`` (traces read from files) means every row.
    * ``t_valid``: per batch element, the time up to which spikes are the answer:
      ``t_end`` on success, the failure time otherwise (0 where the back-end does
      not report it).
    """

    spikes: dict[str, Spikes]
    states: dict[str, dict[str, Array]]
    ts: Array
    result: Array
    t_end: float = eqx.field(static=True)
    save_dt: float | None = eqx.field(static=True, default=None)
    dt: float | None = eqx.field(static=True, default=None)
    backend: str = eqx.field(static=True, default="ideal")
    shapes: tuple[tuple[str, Shape], ...] = eqx.field(static=True, default=())
    n_grazing: Array | None = None
    valid: Array | None = None
    t_valid: Array | None = None

    @property
    def batch_shape(self) -> Shape:
        return tuple(np.shape(self.result))

    def shape(self, node: str) -> Shape:
        return dict(self.shapes)[node]

    def spike_trains(self, node: str) -> list:
        """Sorted spike times per neuron of ``node`` (nested lists for a batch)."""
        return self.spikes[node].trains(math.prod(self.shape(node)))

    def spike_counts(self, node: str) -> np.ndarray:
        """Spikes per neuron, shape ``(*batch, *node_shape)``."""
        n = math.prod(self.shape(node))
        c = self.spikes[node].counts_per_neuron(n)
        return c.reshape(self.batch_shape + self.shape(node))

    # ------------------------------------------------------------- NIRData / HDF5
    def to_nir_data(self) -> nir.NIRGraphData:
        """As ``nir.NIRGraphData``: ``spikes`` (EventData) and sampled states
        (TimeGriddedData with ``dt = save_dt``, row ``n`` at ``(n+1)*save_dt``); an
        unbatched trace becomes one sample."""
        nodes: dict[str, nir.NIRNodeData] = {}
        names = dict(self.shapes)
        for name in names:
            obs = {}
            n = math.prod(names[name])
            if name in self.spikes:
                obs["spikes"] = self.spikes[name].to_nir(n, self.t_end)
            for field, arr in self.states.get(name, {}).items():
                if np.shape(self.ts)[0] == 0:
                    continue  # nothing sampled (no save_dt): the file holds spikes only
                if self.save_dt is None:
                    raise InputError(
                        "states sampled at irregular times (save_at) cannot be written "
                        "as NIR TimeGriddedData; sample with save_dt"
                    )
                a = np.asarray(arr)
                steps = a.shape[len(self.batch_shape)]
                obs[field] = nir.TimeGriddedData(a.reshape(-1, steps, n), self.save_dt)
            if obs:
                nodes[name] = nir.NIRNodeData(obs)
        return nir.NIRGraphData(nodes)

    def save(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_nir_data` with ``nir.write_data``, atomically: the file is
        built in memory, written to ``PATH.<pid>.h5.tmp`` beside ``path`` and renamed.
        The result has the permissions of any new file (``0o666`` less the umask).
        SIGINT, SIGTERM and SIGHUP arriving during the write are held until the file
        is complete (then they act as usual), so an interrupted save leaves either the
        old file or the new one and no temporary file; a temporary file left by a
        killed process (SIGKILL) is removed by the next save to the same path."""
        path = os.fspath(path)
        data = self.to_nir_data()
        buf = io.BytesIO()
        nir.write_data(buf, data)
        with h5py.File(buf, "a") as f:
            f.attrs["nirsim_t_end"] = self.t_end
            f.attrs["nirsim_backend"] = self.backend
            f.attrs["nirsim_batched"] = bool(self.batch_shape)
            if self.dt is not None:
                f.attrs["nirsim_dt"] = self.dt
            for name, shape in self.shapes:
                f.attrs[f"nirsim_shape:{name}"] = np.array(shape, dtype=np.int64)
        _atomic_write(path, buf.getbuffer())


def trace_from_nir_data(
    data: nir.NIRGraphData,
    *,
    t_end: float | None = None,
    batched: bool = True,
    backend: str = "file",
    dt: float | None = None,
    shapes: dict | None = None,
) -> Trace:
    """A :class:`Trace` from ``nir.NIRGraphData`` recorded by nirsim or elsewhere (a
    chip, another simulator). Nested graph data is flattened to qualified names."""
    flat: dict[str, nir.NIRNodeData] = {}

    def walk(d, prefix):
        for k, v in d.nodes.items():
            if isinstance(v, nir.NIRGraphData):
                walk(v, prefix + k + ".")
            else:
                flat[prefix + k] = v

    walk(data, "")
    spikes, states, out_shapes = {}, {}, {}
    save_dt, ts, t_max, n_samples = None, None, 0.0, None
    for name, nd in flat.items():
        for field, obs in nd.observables.items():
            if isinstance(obs, nir.EventData):
                s = Spikes.from_nir(obs)
                spikes[name] = s if batched else _unbatch_spikes(s)
                t_max = max(t_max, float(obs.t_max))
                n_samples = obs.n_samples
                out_shapes.setdefault(name, (int(obs.n_neurons),))
            elif isinstance(obs, nir.TimeGriddedData):
                if save_dt is not None and not math.isclose(obs.dt, save_dt):
                    raise InputError(
                        f"node '{name}' observable '{field}' has dt={obs.dt}, others "
                        f"{save_dt}: one file must use one sampling step"
                    )
                save_dt = float(obs.dt)
                a = jnp.asarray(obs.data)
                states.setdefault(name, {})[field] = a if batched else a[0]
                ts = (np.arange(obs.n_time_steps) + 1) * save_dt
                t_max = max(t_max, obs.t_max)
                n_samples = obs.n_samples
                out_shapes.setdefault(name, (int(obs.n_neurons),))
    if shapes:
        for name, shape in shapes.items():
            if name in out_shapes and math.prod(shape) == out_shapes[name][0]:
                out_shapes[name] = tuple(shape)
                for f, a in states.get(name, {}).items():
                    states[name][f] = a.reshape(a.shape[:-1] + tuple(shape))
    n_samples = n_samples or 1
    result = jnp.zeros((n_samples,) if batched else (), dtype=jnp.int32)
    return Trace(
        spikes=spikes,
        states=states,
        ts=jnp.asarray(ts if ts is not None else np.zeros(0)),
        result=result,
        t_end=float(t_end if t_end is not None else t_max),
        save_dt=save_dt,
        dt=dt,
        backend=backend,
        shapes=tuple(out_shapes.items()),
    )


def _unbatch_spikes(s: Spikes) -> Spikes:
    return Spikes(
        s.times[0],
        s.indices[0],
        None if s.values is None else s.values[0],
        n_neurons=s.n_neurons,
        t_max=s.t_max,
    )


def load_trace(path: str | os.PathLike) -> Trace:
    """Read a :class:`Trace` written by :meth:`Trace.save` (or any NIRGraphData file,
    whose samples then form the batch axis)."""
    path = os.fspath(path)
    if os.path.isfile(path):
        probe(path, InputError)  # a corrupted file may crash libhdf5: look first
    try:
        data = nir.read_data(path)
        with h5py.File(path, "r") as f:
            attrs = dict(f.attrs)
    except (OSError, KeyError, ValueError) as e:
        raise InputError(f"{path}: not a readable NIRGraphData file ({e})") from None
    shapes = {
        k.split(":", 1)[1]: tuple(int(x) for x in v)
        for k, v in attrs.items()
        if k.startswith("nirsim_shape:")
    }
    return trace_from_nir_data(
        data,
        t_end=attrs.get("nirsim_t_end"),
        batched=bool(attrs.get("nirsim_batched", True)),
        backend=str(attrs.get("nirsim_backend", "file")),
        dt=float(attrs["nirsim_dt"]) if "nirsim_dt" in attrs else None,
        shapes=shapes,
    )


_HELD_SIGNALS = tuple(
    getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n)
)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def _remove_stale(path: str) -> None:
    """Remove ``PATH.<pid>.h5.tmp`` files whose writer no longer runs."""
    for tmp in glob.glob(glob.escape(path) + ".*.h5.tmp"):
        pid = tmp[len(path) + 1 : -len(".h5.tmp")]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            try:
                os.remove(tmp)
            except OSError:
                pass


def _atomic_write(path: str, payload) -> None:
    """Write ``payload`` (bytes) to ``path`` through ``PATH.<pid>.h5.tmp`` and a
    rename, holding SIGINT/SIGTERM/SIGHUP (main thread only) until it is done."""
    _remove_stale(path)
    tmp = f"{path}.{os.getpid()}.h5.tmp"
    held: list = []
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in _HELD_SIGNALS:
            try:
                previous[sig] = signal.signal(sig, lambda s, _f: held.append(s))
            except (ValueError, OSError):
                pass
    try:
        # os.open's mode is filtered by the umask: the permissions of any new file
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        for sig in dict.fromkeys(held):  # act on held signals as they would have
            signal.raise_signal(sig)
