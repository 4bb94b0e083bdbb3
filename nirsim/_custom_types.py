"""Shape-annotated array types used across nirsim (jaxtyping)."""

from typing import TypeAlias

import numpy as np
from jaxtyping import Array, Bool, Float, Int

Shape: TypeAlias = tuple[int, ...]
ArrayLike: TypeAlias = Array | np.ndarray | float

#: Per-neuron values of a node, in the node's own shape.
NeuronArray: TypeAlias = Float[Array, "*neurons"]
BoolNeurons: TypeAlias = Bool[Array, "*neurons"]
SpikeTimes: TypeAlias = Float[Array, "*batch events"]
SpikeIndices: TypeAlias = Int[Array, "*batch events"]

__all__ = [
    "Array",
    "ArrayLike",
    "BoolNeurons",
    "NeuronArray",
    "Shape",
    "SpikeIndices",
    "SpikeTimes",
]
