"""nirsim: the differentiable reference simulator for NIR graphs.

Importing nirsim turns on jax's float64 mode: the ideal reference is computed in
float64 (set ``JAX_ENABLE_X64=0`` before import and pass float32 inputs to opt out).
"""

import os as _os

import jax as _jax

if _os.environ.get("JAX_ENABLE_X64", "1").lower() not in ("0", "false"):
    _jax.config.update("jax_enable_x64", True)

from . import (
    hardware_models as hardware_models,
    primitives as primitives,
    readout as readout,
    solvers as solvers,
)
from ._compare import DivergenceReport as DivergenceReport, compare as compare
from ._data import Current as Current, SpikeRaster as SpikeRaster, Spikes as Spikes
from ._errors import (
    GraphError as GraphError,
    InputError as InputError,
    NirsimError as NirsimError,
    SimulationError as SimulationError,
)
from ._graph import GraphWarning as GraphWarning
from ._input_file import save_inputs as save_inputs
from ._network import Network as Network, load as load
from ._simulate import simulate as simulate
from ._trace import Trace as Trace, load_trace as load_trace

__version__ = "0.1.0"
