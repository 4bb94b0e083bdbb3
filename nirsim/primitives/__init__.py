"""The NIR primitives, one equinox Module each (see ``base.py`` for the contract)."""

from .affine import Affine as Affine
from .avg_pool2d import AvgPool2d as AvgPool2d
from .base import (
    AbstractNeuron as AbstractNeuron,
    AbstractPrimitive as AbstractPrimitive,
    AbstractSpikingNeuron as AbstractSpikingNeuron,
    AbstractStateless as AbstractStateless,
)
from .conv1d import Conv1d as Conv1d
from .conv2d import Conv2d as Conv2d
from .cuba_li import CubaLI as CubaLI
from .cuba_lif import CubaLIF as CubaLIF
from .delay import Delay as Delay
from .flatten import Flatten as Flatten
from .i import I as I
from .if_ import IF as IF
from .input import Input as Input
from .li import LI as LI
from .lif import LIF as LIF
from .linear import Linear as Linear
from .output import Output as Output
from .scale import Scale as Scale
from .states import CubaState as CubaState, MembraneState as MembraneState
from .sum_pool2d import SumPool2d as SumPool2d
from .threshold import Threshold as Threshold

#: NIR class name -> nirsim primitive.
PRIMITIVES: dict[str, type[AbstractPrimitive]] = {
    cls.nir_type: cls
    for cls in (
        Input,
        Output,
        Affine,
        Linear,
        Conv1d,
        Conv2d,
        SumPool2d,
        AvgPool2d,
        Flatten,
        Scale,
        Delay,
        Threshold,
        I,
        IF,
        LI,
        LIF,
        CubaLI,
        CubaLIF,
    )
}
