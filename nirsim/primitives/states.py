"""State containers of the stateful primitives (one small typed container each)."""

import equinox as eqx

from .._custom_types import NeuronArray


class MembraneState(eqx.Module):
    """State of LI, LIF, I and IF: the membrane ``v`` (graph's voltage unit)."""

    v: NeuronArray


class CubaState(eqx.Module):
    """State of CubaLI and CubaLIF: synaptic current ``i_syn`` and membrane ``v``."""

    i_syn: NeuronArray
    v: NeuronArray
