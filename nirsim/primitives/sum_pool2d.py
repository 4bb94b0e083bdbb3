"""2-D sum pooling (NIR ``SumPool2d``)."""

import equinox as eqx

from .._custom_types import Array, Shape
from ._conv import pool_sum
from ._pool import AbstractPool2d


class SumPool2d(AbstractPool2d):
    """Sum over windows ``kernel_size`` moved by ``stride`` on zero-padded ``(C, H, W)``
    input; dimensionless."""

    nir_type = "SumPool2d"
    input_shape: Shape = eqx.field(static=True)
    kernel_size: Shape = eqx.field(static=True)
    stride: Shape = eqx.field(static=True)
    padding: Shape = eqx.field(static=True)

    def linear(self, x: Array) -> Array:
        return pool_sum(x, self.kernel_size, self.stride, self.padding)
