"""Result codes of a simulation and the advice that goes with each."""

SUCCESSFUL = 0
MAX_EVENTS = 1
SPIKE_BUFFER_FULL = 2
ZENO = 3
NONFINITE = 4
DELAY_BUFFER_FULL = 5

MESSAGES = {
    MAX_EVENTS: "event budget exhausted before t_end: raise `max_events`",
    SPIKE_BUFFER_FULL: "a spike buffer is full: raise `max_spikes` (spikes per node)",
    ZENO: (
        "runaway cascade (Zeno): more than `max_cascade` firing rounds at one instant, "
        "as when v_reset >= v_threshold under drive; lower v_reset below v_threshold "
        "(or raise `max_cascade` if the cascade is finite)"
    ),
    NONFINITE: "a state became NaN or infinite: check parameters and inputs",
    DELAY_BUFFER_FULL: "a Delay node's event queue is full: raise `max_spikes`",
}
