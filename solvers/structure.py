"""What kind of signal travels where in a graph (decided once, in plain Python)."""

from __future__ import annotations

from nirsim._errors import GraphError
from nirsim.primitives import (
    AbstractNeuron,
    AbstractSpikingNeuron,
    AbstractStateless,
    Delay,
    Input,
    Output,
    Threshold,
)


def reached(network, name: str) -> set[str]:
    """Non-stateless nodes that a signal leaving ``name`` reaches at the same instant
    (through stateless nodes only)."""
    out, stack, seen = set(), [name], set()
    while stack:
        n = stack.pop()
        for m in network.successors(n):
            if m in seen:
                continue
            seen.add(m)  # ``name`` itself counts when a loop leads back to it
            node = network.nodes[m]
            if isinstance(node, AbstractStateless) and not isinstance(node, Output):
                stack.append(m)
            else:
                out.add(m)
    return out


def continuous_sources_of(network, name: str) -> set[str]:
    """Nodes whose continuous output reaches ``name`` through stateless nodes."""
    return {
        src
        for src in network.order
        if _has_continuous_output(network, src) and name in reached(network, src)
    }


def _has_continuous_output(network, name) -> bool:
    node = network.nodes[name]
    if isinstance(node, AbstractSpikingNeuron | Threshold):
        return False
    return isinstance(node, AbstractNeuron | Input | Delay)


def continuous_delays(network) -> tuple[str, ...]:
    """Delay nodes that carry a continuous signal (from a graph input)."""
    return tuple(d for d in network.names_of(Delay) if continuous_sources_of(network, d))


def coupling_report(network) -> list[str]:
    """Reasons the closed-form solver does not apply (empty when it does)."""
    problems = []
    for n in network.order:
        node = network.nodes[n]
        if isinstance(node, AbstractNeuron) and not isinstance(node, AbstractSpikingNeuron):
            for m in sorted(reached(network, n)):
                if not isinstance(network.nodes[m], Output):
                    problems.append(
                        f"the continuous output of '{n}' ({node.nir_type}) drives "
                        f"'{m}' ({network.nodes[m].nir_type})"
                    )
    return problems


MAX_DELAY_NESTING = 8


def _delay_nesting(network, d: str, path: tuple[str, ...]) -> int:
    if d in path:
        raise GraphError(
            f"node '{d}' (Delay) feeds its own continuous input through "
            + " -> ".join(f"'{p}'" for p in path[path.index(d) :] + (d,))
            + ": a delay differential equation, which the ideal solvers do not support"
        )
    ups = [
        e for e in continuous_sources_of(network, d) if isinstance(network.nodes[e], Delay)
    ]
    return 1 + max((_delay_nesting(network, e, path + (d,)) for e in ups), default=0)


def check_delays_and_thresholds(network) -> None:
    """Refuse what no event-driven solver here can do: a continuous signal from a
    neuron through a Delay (a delay differential equation) or into a Threshold."""
    _refuse_neuron_sources(
        network,
        Delay,
        "delays the continuous output of {src}: that is a delay differential equation, "
        "which nirsim's ideal solvers do not support",
    )
    for d in continuous_delays(network):
        depth = _delay_nesting(network, d, ())
        if depth > MAX_DELAY_NESTING:
            raise GraphError(
                f"node '{d}' (Delay) sits behind {depth} continuous Delays in a row; "
                f"the ideal solvers support at most {MAX_DELAY_NESTING}"
            )
    _refuse_neuron_sources(
        network,
        Threshold,
        "watches the continuous output of {src}; the ideal solvers support "
        "Thresholds on graph inputs only",
    )


def _refuse_neuron_sources(network, kind: type, reason: str) -> None:
    """Refuse a node of ``kind`` whose continuous input comes from a neuron."""
    for name in network.names_of(kind):
        for src in continuous_sources_of(network, name):
            node = network.nodes[src]
            if isinstance(node, AbstractNeuron):
                what = f"'{src}' ({node.nir_type})"
                raise GraphError(
                    f"node '{name}' ({kind.__name__}) " + reason.format(src=what)
                )
