"""What a solver returns: a :class:`Solution`, with its :class:`RESULTS` item and the
advice that goes with each failure."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp

from nirsim._custom_types import Array


class RESULTS(eqx.Enumeration):
    """How a simulation ended; each failure's message says what to change. The
    index of an item (``Trace.result``) is its integer code: 0 is success."""

    successful = ""
    max_events = "event budget exhausted before t_end: raise `max_events`"
    spike_buffer_full = "a spike buffer is full: raise `max_spikes` (spikes per node)"
    zeno = (
        "runaway cascade (Zeno): more than `max_cascade` firing rounds at one instant, "
        "as when v_reset >= v_threshold under drive; lower v_reset below v_threshold "
        "(or raise `max_cascade` if the cascade is finite)"
    )
    nonfinite = "a state became NaN or infinite: check parameters and inputs"
    delay_buffer_full = "a Delay node's event queue is full: raise `max_spikes`"


_NAMES = (
    "successful",
    "max_events",
    "spike_buffer_full",
    "zeno",
    "nonfinite",
    "delay_buffer_full",
)

# Integer codes, for loops that keep the code in their carry (the item's index).
SUCCESSFUL, MAX_EVENTS, SPIKE_BUFFER_FULL, ZENO, NONFINITE, DELAY_BUFFER_FULL = (
    int(getattr(RESULTS, n)._value) for n in _NAMES
)

#: code -> message, for failures
MESSAGES = {
    int(getattr(RESULTS, n)._value): RESULTS[getattr(RESULTS, n)] for n in _NAMES[1:]
}


def from_code(code: Array):
    """The :class:`RESULTS` item of an integer code (traceable)."""
    item = RESULTS.successful
    for name in _NAMES[1:]:
        value = getattr(RESULTS, name)
        item = RESULTS.where(jnp.asarray(code) == value._value, value, item)
    return item


def code_of(item) -> Array:
    """The integer code (index) of a :class:`RESULTS` item."""
    return item._value


class Solution(eqx.Module):
    """What :meth:`AbstractSolver.solve` returns for one sample.

    * ``spikes``: per spiking node, ``(times, indices)`` padded with ``inf``/``-1``
      (exact back-ends) or a count raster ``(steps, *shape)`` (discrete back-ends);
    * ``states``: node -> field -> array ``(len(ts), *shape)``;
    * ``result``: a :class:`RESULTS` item;
    * ``failure_time``, ``failure_node``: where an event-driven solve failed (time in
      the graph's unit; index into ``Network.spiking``), or None;
    * ``n_grazing``: spikes whose time derivative was clipped (exact back-ends), or
      None.
    """

    spikes: dict
    states: dict
    result: RESULTS
    failure_time: Array | None = None
    failure_node: Array | None = None
    n_grazing: Array | None = None
