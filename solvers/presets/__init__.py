"""Framework presets: a NIR graph stepped the way each framework's importer reads
it, one file per framework (see each module's docstring for its quirks).

Each preset is a discrete solver (:class:`~nirsim.solvers.AbstractDiscrete`): it
refuses what the framework refuses, reads the graph's parameters as the framework
does, and steps them with the framework's rules; its default dtype is the
framework's (float32).
"""

from __future__ import annotations

from nirsim._errors import InputError

from .. import registry
from ..surrogate import AbstractSurrogate, FastSigmoid
from ._common import AbstractPreset as AbstractPreset
from .lava_float import LavaFloat as LavaFloat
from .nir_euler import NirEuler as NirEuler
from .norse import Norse as Norse
from .rockpool import Rockpool as Rockpool
from .sinabs import Sinabs as Sinabs
from .snntorch import SnnTorch as SnnTorch
from .spyx import Spyx as Spyx

PRESETS = {
    "snntorch": SnnTorch,
    "norse": Norse,
    "spyx": Spyx,
    "sinabs": Sinabs,
    "rockpool": Rockpool,
    "lava-float": LavaFloat,
    "nir-euler": NirEuler,
}


def preset(
    name: str, dt: float, *, surrogate: AbstractSurrogate = FastSigmoid(), dtype=None
) -> AbstractPreset:
    """The framework preset called ``name`` (one of :data:`PRESETS`) with step ``dt``
    (graph time unit); ``dtype`` overrides the framework's float32."""
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name](dt, surrogate=surrogate, dtype=dtype)


for _name in PRESETS:
    registry.register(_name, lambda dt, _n=_name: preset(_n, dt), needs_dt=True)
