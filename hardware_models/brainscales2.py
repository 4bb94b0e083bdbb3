r"""BrainScaleS-2 as hxtorch maps a NIR graph onto it: an analog, continuous-time chip
emulated by the exact CUBA LIF solution with the chip's weights, a seeded model of its
fixed-pattern mismatch and trial noise, and its 8-bit membrane read-out. Sources and
confidence: ``../shared/HARDWARE.md`` (hxtorch ``spiking/utils/from_nir.py``,
``functional/aelif.py``, ``modules/synapse.py``; jaxsnn ``event/utils/from_nir.py``),
all **[read]**: no BrainScaleS-2 system or bit-accurate simulator was available.

**The graph BrainScaleS-2 holds** (hxtorch's importer): one Input, one Output,
``Linear`` synapses, ``CubaLIF`` and ``CubaLI`` neuron layers. A neuron receives
only through ``Linear`` nodes; a ``Linear`` reads the Input or a ``CubaLIF`` and
feeds one neuron node; a ``CubaLI`` (its membrane is read, it does not spike) feeds
only the Output. Recurrent edges are kept (the chip routes spikes back on chip;
whether hxtorch's importer, which walks the edges in order, maps them is **[open]**).

**The mapping** (:meth:`BrainScaleS2.report` lists each change):

* weights: ``clip(round(64 w), -63, 63)`` with halves away from zero, 6-bit
  magnitudes on excitatory and inhibitory synapse rows (hxtorch's
  ``linear_saturating`` with ``weight_scale = 64``); in the graph's units the weight
  becomes ``w_chip / 64``. ``weight_scale=None`` is the better mapping (one scale
  per ``Linear``, ``(2^bits - 1) / max|W|``); ``weight_bits`` other than 6 is for
  studies of the bit width, not the chip;
* every parameter of a layer must be one value (hxtorch refuses heterogeneous
  ``tau_mem``, ``tau_syn``, ``v_leak``, ``v_reset``, ``v_threshold``, ``r`` of a
  ``CubaLIF``; ``tau_mem``, ``tau_syn``, ``v_leak`` of a ``CubaLI``);
* time constants are multiplied by ``1e-3``: the chip runs 1000 times faster than
  the graph's time (``speedup``). The emulation is exact in either time, so the
  Trace stays in the graph's time; the report gives the chip's time constants in
  hardware seconds and :meth:`BrainScaleS2.chip_time` the wall-clock time of a run;
* ``w_in`` is ignored: an event adds its weight ``w`` to the synaptic current
  (as ``w_in = tau_syn`` with events of area 1 in NIR's equation
  ``dI = w_in a w / tau_syn``). Every other parameter is kept as written.

**The emulation.** One event, a spike or an input event of value 1, has area 1
whatever ``spike_area`` says (as on every chip model); a gridded input's value
``x[n]`` is the number of events at ``n dt`` (``grid_as`` is ignored); the reset is
always to ``v_reset`` (``reset="subtract"`` is ignored). The graph, with these
weights and the parameters below, is solved exactly by :class:`nirsim.solvers.Ideal`.
hxtorch's software stand-in (forward Euler, one step of synaptic delay, a refractory
period) is not what is modelled: the chip integrates in continuous time; its
refractory period (a chip setting NIR does not have) is taken as 0 **[open]**.

**Mismatch and noise** (:class:`Mismatch`, :class:`Noise`). The analog circuits
differ from neuron to neuron after calibration, and from trial to trial:

* fixed-pattern mismatch, drawn once per neuron from ``seed`` (the same chip for
  the same seed): ``tau_mem``, ``tau_syn`` and the synaptic ``gain`` are multiplied
  by ``exp(sigma z)`` (``sigma`` relative), ``v_leak``, ``v_threshold``,
  ``v_reset`` shifted by ``sigma z`` read-out codes (``z`` standard normal);
* trial noise, drawn per call from ``trial`` and per sample of the batch:
  ``v_leak`` and ``v_threshold`` shifted per neuron by ``sigma z`` codes for the
  whole trial (a stand-in for the membrane's temporal noise, which an exact solver
  of an ordinary differential equation cannot carry), and ``sigma z`` codes of
  read-out noise on every membrane sample.

The defaults (:class:`Mismatch`: 5 % on time constants and gain, 2 codes on
voltages; :class:`Noise`: 1 code on ``v_leak``, ``v_threshold`` and the read-out)
are assumptions of the order of the residual spread that published BrainScaleS-2
calibrations leave, not measured values **[open]**: set them for a given chip, or
to ``Mismatch.none()`` / ``Noise.none()``. With both at zero the emulation is
exactly the ideal solution of the graph with the chip's weights.

**The read-out** (``readout=True``): the membrane ``v`` of every neuron is sampled
through the chip's 8-bit CADC: ``code = clip(round(leak_code + (v - v_leak) /
lsb), 0, 255)`` with ``v_leak`` the layer's nominal value and ``lsb = (v_threshold
- v_leak) / (threshold_code - leak_code)`` for a ``CubaLIF`` (hxtorch's importer
calibrates the leak to CADC 80 and the threshold to 150, ``MixedHXModelParameter``),
``lsb = 1 / 50`` graph units for a ``CubaLI`` (hxtorch's ``trace_scale = 1/50``).
The Trace holds ``v_leak + (code - leak_code) lsb`` (graph units) or, with
``raw=True``, the codes. The synaptic current ``i_syn`` is not read out on the chip;
the Trace holds the exact value. Round to nearest and the code range 0..255 are
**[doc]**.

**Limits** (refused before running, naming node and limit): node types other than
Input, Output, Linear, CubaLIF, CubaLI (an ``Affine``: hxtorch maps ``Linear``
only); other than one Input and one Output; heterogeneous layers; more than 512
neurons (the 512 neuron circuits of one chip **[doc]**); the structure above.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from nirsim._custom_types import Array
from nirsim._errors import GraphError, InputError, positive_number
from nirsim.primitives import CubaLI, CubaLIF, Input, Linear, Output
from nirsim.solvers.base import SimOptions, batch_index
from nirsim.solvers.ideal import Ideal

from . import fixed_point as fp
from .base import AbstractChipModel, MappingReport, entry, ignored

NEURONS = (CubaLIF, CubaLI)
#: neuron circuits of one BrainScaleS-2 chip (HICANN-X) **[doc]**
N_NEURONS = 512
#: what hxtorch requires to be one value per layer
HOMOGENEOUS = {
    CubaLIF: ("tau_mem", "tau_syn", "v_leak", "v_reset", "v_threshold", "r"),
    CubaLI: ("tau_mem", "tau_syn", "v_leak"),
}


def _sigma(x) -> Array:
    """A standard deviation: a finite number >= 0, held as an array (traced, so
    models that differ only in magnitudes share one compiled program)."""
    if isinstance(x, jax.Array) and not isinstance(x, jax.core.Tracer) and x.ndim == 0:
        x = float(x)
    if isinstance(x, jax.core.Tracer):
        return x
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise InputError(f"a standard deviation must be a number, got {x!r}") from None
    if not (np.isfinite(v) and v >= 0):
        raise InputError(f"a standard deviation must be finite and >= 0, got {x!r}")
    return jnp.asarray(v)


class CADC(eqx.Module):
    """The chip's membrane read-out and the voltage scale of mismatch and noise:
    ``bits``-bit codes; a ``CubaLIF``'s ``v_leak`` reads ``leak_code`` and its
    ``v_threshold`` reads ``threshold_code``; a ``CubaLI``'s ``v_leak`` reads
    ``leak_code`` and one graph unit is ``codes_per_unit`` codes (hxtorch's importer:
    80, 150 and ``1/trace_scale = 50``)."""

    bits: int = eqx.field(static=True, default=8)
    leak_code: float = eqx.field(static=True, default=80.0)
    threshold_code: float = eqx.field(static=True, default=150.0)
    codes_per_unit: float = eqx.field(static=True, default=50.0)

    def __check_init__(self):
        if not isinstance(self.bits, int) or not 1 <= self.bits <= 16:
            raise InputError(f"CADC bits must be an integer 1..16, got {self.bits!r}")
        top = 2**self.bits - 1
        if not 0 <= self.leak_code < self.threshold_code <= top:
            raise InputError(
                f"CADC codes need 0 <= leak_code < threshold_code <= {top}, got "
                f"{self.leak_code!r} and {self.threshold_code!r}"
            )
        positive_number(self.codes_per_unit, "codes_per_unit")

    def lsb(self, prim) -> Array:
        """One code in the graph's units, per neuron of ``prim`` (a ``CubaLIF``
        whose threshold is not above its leak falls back to ``1/codes_per_unit``)."""
        unit = jnp.full(prim.v_leak.shape, 1.0 / self.codes_per_unit)
        if isinstance(prim, CubaLIF):
            span = prim.v_threshold - prim.v_leak
            per = span / (self.threshold_code - self.leak_code)
            unit = jnp.where(span > 0, per, unit)
        return unit

    def codes(self, v, v_leak, lsb, noise=0.0) -> Array:
        """The codes read for membrane ``v`` (straight-through rounding)."""
        x = self.leak_code + (v - v_leak) / lsb + noise
        return jnp.clip(fp.round_half_even(x), 0, 2**self.bits - 1)


class Mismatch(eqx.Module):
    """Fixed-pattern mismatch, drawn once per neuron from the model's ``seed``
    (standard deviations): ``tau_mem``, ``tau_syn``, ``gain`` relative (the value
    is multiplied by ``exp(sigma z)``); ``v_leak``, ``v_threshold``, ``v_reset`` in
    read-out codes (:class:`CADC`). Defaults are assumptions **[open]** (see the
    module docstring)."""

    tau_mem: Array = eqx.field(converter=_sigma, default=0.05)
    tau_syn: Array = eqx.field(converter=_sigma, default=0.05)
    gain: Array = eqx.field(converter=_sigma, default=0.05)
    v_leak: Array = eqx.field(converter=_sigma, default=2.0)
    v_threshold: Array = eqx.field(converter=_sigma, default=2.0)
    v_reset: Array = eqx.field(converter=_sigma, default=2.0)

    @classmethod
    def none(cls) -> Mismatch:
        return cls(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


class Noise(eqx.Module):
    """Trial noise, drawn per call from the model's ``trial`` and per sample of the
    batch (standard deviations in read-out codes): ``v_leak`` and ``v_threshold``
    shifted per neuron for the whole trial, ``readout`` added to every membrane
    sample before the CADC rounds it. Defaults are assumptions **[open]**."""

    v_leak: Array = eqx.field(converter=_sigma, default=1.0)
    v_threshold: Array = eqx.field(converter=_sigma, default=1.0)
    readout: Array = eqx.field(converter=_sigma, default=1.0)

    @classmethod
    def none(cls) -> Noise:
        return cls(0.0, 0.0, 0.0)


def _seed(x) -> Array:
    if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jnp.integer):
        return x.astype(jnp.uint32)
    if isinstance(x, bool) or not isinstance(x, int | np.integer) or x < 0:
        raise InputError(f"a seed must be an integer >= 0, got {x!r}")
    return jnp.asarray(x, jnp.uint32)


def _bits(x) -> Array:
    """A weight bit width 1..16 as an array (a traced value, so a sweep over bit
    widths compiles once)."""
    if isinstance(x, jax.Array) and x.ndim == 0 and jnp.issubdtype(x.dtype, jnp.integer):
        return x.astype(jnp.int32)
    if isinstance(x, bool) or not isinstance(x, int | np.integer) or not 1 <= x <= 16:
        raise InputError(f"weight_bits must be an integer 1..16, got {x!r}")
    return jnp.asarray(x, jnp.int32)


def _flag(x) -> Array:
    """A switch held as a boolean array (traced: both settings share one program)."""
    if isinstance(x, jax.core.Tracer):
        return x
    if not isinstance(x, bool | np.bool_) and not (
        isinstance(x, jax.Array) and x.ndim == 0 and x.dtype == jnp.bool_
    ):
        raise InputError(f"readout must be True or False, got {x!r}")
    return jnp.asarray(bool(x))


def quantise_weights(w: Array, scale, bits=6) -> Array:
    """The chip's integer weights ``clip(round(scale w), -(2^bits - 1), 2^bits - 1)``,
    halves away from zero (straight-through gradient inside the range)."""
    top = (2 ** jnp.asarray(bits, jnp.int32) - 1).astype(w.dtype)
    return jnp.clip(fp.round_half_away(w * scale), -top, top)


# ------------------------------------------------------------------ the model
class BrainScaleS2(AbstractChipModel):
    """BrainScaleS-2 (see :mod:`nirsim.hardware_models.brainscales2`).

    * ``seed``: the chip (its fixed-pattern mismatch); ``trial``: the trial noise
      of a call (each sample of a batch draws its own from it);
    * ``mismatch``, ``noise``: their magnitudes (:class:`Mismatch`, :class:`Noise`);
    * ``weight_scale``: chip weight per graph unit (64, hxtorch's; ``None``: per
      ``Linear`` ``(2^weight_bits - 1) / max|W|``); ``weight_bits``: 6 on the chip;
    * ``readout``: membrane samples through the 8-bit CADC (``cadc``); ``raw``:
      the Trace holds the codes (with ``readout=False``, ``v`` unrounded in the
      graph's units either way); magnitudes, seeds, ``weight_bits`` and
      ``readout`` are traced, so models that differ only in them share one compiled
      program;
    * ``speedup``: chip time is graph time divided by it (1000);
    * ``checkpoints``: reverse-mode checkpoints of the exact solve
      (:class:`nirsim.solvers.Ideal`), for training through the chip model
      (quantisation-aware, with exact spike-time gradients; straight through every
      rounding); ``max_events`` is the most a run uses. Forward values do not depend
      on it.
    """

    seed: Array = eqx.field(converter=_seed, default=0)
    trial: Array = eqx.field(converter=_seed, default=0)
    mismatch: Mismatch = Mismatch()
    noise: Noise = Noise()
    weight_scale: float | None = eqx.field(static=True, default=64.0)
    weight_bits: Array = eqx.field(converter=_bits, default=6)
    readout: Array = eqx.field(converter=_flag, default=True)
    cadc: CADC = CADC()
    raw: bool = eqx.field(static=True, default=False)
    speedup: float = eqx.field(static=True, default=1000.0)
    checkpoints: int | None = eqx.field(static=True, default=None)

    name: ClassVar[str] = "brainscales2"
    supported: ClassVar[tuple[type, ...]] = (Input, Output, Linear, CubaLIF, CubaLI)

    def __check_init__(self):
        if self.weight_scale is not None:
            positive_number(self.weight_scale, "weight_scale")
        positive_number(self.speedup, "speedup")
        Ideal(checkpoints=self.checkpoints)  # refuses a bad count

    def chip_time(self, t) -> float:
        """Hardware seconds the chip takes for ``t`` seconds of the graph's time."""
        return float(t) / self.speedup

    # -- the mapping
    def scale(self, prim: Linear) -> Array:
        """Chip weight per graph unit of weight node ``prim``."""
        if self.weight_scale is not None:
            return jnp.asarray(self.weight_scale)
        top = jnp.max(jnp.abs(prim.weight))
        return jnp.where(top > 0, (2**self.weight_bits - 1) / top, 1.0)

    def chip_weights(self, prim: Linear) -> Array:
        return quantise_weights(prim.weight, self.scale(prim), self.weight_bits)

    def _draw(self, key, index: int, prim, sig) -> dict[str, Array]:
        """Standard-normal draws per neuron of node number ``index`` times ``sig``
        (field -> sigma; exactly 0 where sigma is 0)."""
        key = jax.random.fold_in(key, index)
        dtype = prim.v_leak.dtype
        out = {}
        for k, (field, sigma) in enumerate(sig.items()):
            z = jax.random.normal(jax.random.fold_in(key, k), prim.v_leak.shape, dtype)
            out[field] = jnp.where(sigma > 0, sigma * z, 0.0).astype(dtype)
        return out

    def chip_network(self, network, trial_key=None):
        """The Network the chip runs: chip weights, ``w_in = tau_syn`` (an event adds
        its weight to ``I``), this chip's fixed-pattern mismatch and, given
        ``trial_key``, one trial's noise."""
        m = self.mismatch
        fixed = jax.random.key(self.seed)
        nodes = dict(network.nodes)
        for index, name in enumerate(network.order):
            prim = nodes[name]
            if isinstance(prim, Linear):
                w = self.chip_weights(prim) / self.scale(prim)
                nodes[name] = eqx.tree_at(
                    lambda p: p.weight, prim, w.astype(prim.weight.dtype)
                )
            elif isinstance(prim, NEURONS):
                lsb = self.cadc.lsb(prim)
                fields = {
                    "tau_mem": m.tau_mem,
                    "tau_syn": m.tau_syn,
                    "gain": m.gain,
                    "v_leak": m.v_leak,
                }
                if isinstance(prim, CubaLIF):
                    fields |= {"v_threshold": m.v_threshold, "v_reset": m.v_reset}
                d = self._draw(fixed, index, prim, fields)
                if trial_key is not None:
                    t = self._draw(trial_key, index, prim, {"v_leak": self.noise.v_leak})
                    d["v_leak"] = d["v_leak"] + t["v_leak"]
                    if isinstance(prim, CubaLIF):
                        t = self._draw(
                            trial_key,
                            index + len(network.order),
                            prim,
                            {"v_threshold": self.noise.v_threshold},
                        )
                        d["v_threshold"] = d["v_threshold"] + t["v_threshold"]
                tau_syn = prim.tau_syn * jnp.exp(d["tau_syn"])
                new = {
                    "tau_mem": prim.tau_mem * jnp.exp(d["tau_mem"]),
                    "tau_syn": tau_syn,
                    "w_in": tau_syn * jnp.exp(d["gain"]),
                    "v_leak": prim.v_leak + d["v_leak"] * lsb,
                }
                if isinstance(prim, CubaLIF):
                    new["v_threshold"] = prim.v_threshold + d["v_threshold"] * lsb
                    new["v_reset"] = prim.v_reset + d["v_reset"] * lsb
                names = tuple(new)
                nodes[name] = eqx.tree_at(
                    lambda p, names=names: [getattr(p, f) for f in names],
                    prim,
                    [new[f].astype(getattr(prim, f).dtype) for f in names],
                )
        return eqx.tree_at(lambda n: n.nodes, network, nodes)

    # -- the solver
    def check(self, network) -> None:
        super().check(network)
        Ideal().check(network)

    def solve(self, network, inputs, ts, t_end, options: SimOptions):
        trial_key = jax.random.fold_in(jax.random.key(self.trial), batch_index())
        chip = self.chip_network(network, trial_key)
        options = dataclasses.replace(
            options,
            spike_area=jnp.ones_like(options.spike_area),
            impulse_grid=True,
            subtract=False,
        )
        sol = Ideal(checkpoints=self.checkpoints).solve(chip, inputs, ts, t_end, options)
        read_key = jax.random.fold_in(trial_key, 2**31 - 1)
        states = dict(sol.states)
        for index, name in enumerate(network.order):
            prim = network.nodes[name]
            if not isinstance(prim, NEURONS) or "v" not in states.get(name, {}):
                continue
            fields = dict(states[name])
            v = fields["v"]
            lsb = self.cadc.lsb(prim)
            k = jax.random.fold_in(read_key, index)
            z = jax.random.normal(k, v.shape, v.dtype)
            noise = jnp.where(self.noise.readout > 0, self.noise.readout * z, 0.0)
            codes = self.cadc.codes(v, prim.v_leak, lsb, noise)
            read = codes if self.raw else prim.v_leak + (codes - self.cadc.leak_code) * lsb
            fields["v"] = jnp.where(self.readout, read, v)
            states[name] = fields
        return dataclasses.replace(sol, states=states)

    # -- what the chip refuses
    def limits(self, network) -> None:
        for kind, what in ((Input, "Input"), (Output, "Output")):
            found = network.names_of(kind)
            if len(found) != 1:
                raise GraphError(
                    f"brainscales2: the graph has {len(found)} {what} nodes "
                    f"({', '.join(found) or 'none'}); hxtorch's importer takes exactly one"
                )
        total = 0
        for n in network.order:
            p = network.nodes[n]
            preds, succs = network.predecessors(n), network.successors(n)
            if isinstance(p, Linear):
                if p.weight.ndim != 2:
                    self.refuse(n, p, f"weight must be 2-D, got shape {p.weight.shape}")
                if len(succs) != 1 or not isinstance(network.nodes[succs[0]], NEURONS):
                    self.refuse(
                        n, p, "a Linear must feed exactly one CubaLIF or CubaLI node"
                    )
                if len(preds) != 1 or not isinstance(
                    network.nodes[preds[0]], Input | CubaLIF
                ):
                    self.refuse(n, p, "a Linear must read one Input or CubaLIF node")
            if isinstance(p, NEURONS):
                total += int(np.prod(network.shape(n)))
                for q in preds:
                    if not isinstance(network.nodes[q], Linear):
                        self.refuse(
                            n, p, f"input only through Linear synapses; '{q}' feeds it"
                        )
                for f in HOMOGENEOUS[type(p)]:
                    x = np.asarray(getattr(p, f)).reshape(-1)
                    if np.any(x != x[0]):
                        self.refuse(
                            n,
                            p,
                            f"heterogeneous layer: {f} takes {np.unique(x).size} values "
                            f"({x.min():g} .. {x.max():g}); hxtorch needs one per layer",
                        )
            if isinstance(p, CubaLI):
                for q in succs:
                    if not isinstance(network.nodes[q], Output):
                        self.refuse(
                            n,
                            p,
                            f"a CubaLI does not spike: it feeds only the Output, not '{q}'",
                        )
        if total > N_NEURONS:
            raise GraphError(
                f"brainscales2: {total} neurons, more than the chip holds ({N_NEURONS})"
            )

    # -- the mapping report
    def report(self, network) -> MappingReport:
        out = []
        fixed = self.chip_network(network)
        for n in network.order:
            p = network.nodes[n]
            if isinstance(p, Linear):
                s = self.scale(p)
                bits = int(self.weight_bits)
                top = 2**bits - 1
                out.append(
                    entry(
                        n,
                        "weight",
                        p.weight,
                        self.chip_weights(p),
                        unit=s,
                        note=f"{bits}-bit signed, clip(round("
                        f"{float(s):.6g} w), -{top}, {top}), halves away from zero",
                    )
                )
            elif isinstance(p, NEURONS):
                q = fixed.nodes[n]
                for f in ("tau_mem", "tau_syn"):
                    out.append(
                        entry(
                            n,
                            f,
                            getattr(p, f),
                            getattr(p, f) / self.speedup,
                            unit=1 / self.speedup,
                            action="scale",
                            note="chip time constant in hardware s (graph time / "
                            f"{self.speedup:g})",
                        )
                    )
                out.append(
                    ignored(
                        n,
                        "w_in",
                        p.w_in,
                        p.tau_syn,
                        "an event adds its weight to I (w_in = tau_syn at area 1)",
                    )
                )
                fields = ["tau_mem", "tau_syn", "v_leak"]
                if isinstance(p, CubaLIF):
                    fields += ["v_threshold", "v_reset"]
                for f in fields:
                    e = entry(
                        n,
                        f"{f} (chip)",
                        getattr(p, f),
                        getattr(q, f),
                        note="fixed-pattern mismatch of this chip (seed)",
                    )
                    if e.rel_change:
                        out.append(dataclasses.replace(e, action="changed"))
                if float(self.mismatch.gain) > 0:
                    out.append(
                        entry(
                            n,
                            "synaptic gain (chip)",
                            1.0,
                            q.w_in / q.tau_syn,
                            action="changed",
                            note="fixed-pattern mismatch of the synaptic input",
                        )
                    )
                if bool(self.readout):
                    lsb = self.cadc.lsb(p)
                    out.append(
                        entry(
                            n,
                            "v read-out step",
                            lsb,
                            1.0,
                            unit=1 / lsb,
                            action="rounded",
                            note=f"{self.cadc.bits}-bit CADC: one code in graph units, "
                            f"v_leak at code {self.cadc.leak_code:g}",
                        )
                    )
        return MappingReport(self.name, None, tuple(out))
