"""Chip models: the same Network under a chip's number formats and step rules.

Each digital chip's model is a discrete solver (``nirsim.simulate(net, x,
solver=Loihi2(dt=1e-4))`` or ``solver="loihi2", dt=1e-4``); BrainScaleS-2, an analog
chip, runs in continuous time (``solver="brainscales2"``, no ``dt``). Each has a
mapping report (:meth:`report`, printed by
``nirsim info GRAPH --backend NAME --dt DT``). See :mod:`.base` for the contract and
each model's module for its rules and sources.
"""

from nirsim.solvers import registry

from . import fixed_point as fixed_point
from .base import (
    AbstractChipModel as AbstractChipModel,
    AbstractHardwareModel as AbstractHardwareModel,
    MappingEntry as MappingEntry,
    MappingReport as MappingReport,
    OneEvent as OneEvent,
)
from .brainscales2 import (
    CADC as CADC,
    BrainScaleS2 as BrainScaleS2,
    Mismatch as Mismatch,
    Noise as Noise,
)
from .loihi2 import Loihi2 as Loihi2
from .speck import Speck as Speck
from .spinnaker2 import (
    Exponential as Exponential,
    Forward as Forward,
    SpiNNaker2 as SpiNNaker2,
)
from .xylo import (
    Global as Global,
    PerChannel as PerChannel,
    Xylo as Xylo,
    XyloAudio2 as XyloAudio2,
    XyloAudio3 as XyloAudio3,
    XyloIMU as XyloIMU,
    XyloV1 as XyloV1,
)

MODELS = {"loihi2": Loihi2, "spinnaker2": SpiNNaker2, "xylo": Xylo, "speck": Speck}

for _name, _cls in MODELS.items():
    registry.register(_name, lambda dt, _c=_cls: _c(dt), needs_dt=True)

# continuous time: no step
MODELS["brainscales2"] = BrainScaleS2
registry.register("brainscales2", lambda dt: BrainScaleS2(), needs_dt=False)
