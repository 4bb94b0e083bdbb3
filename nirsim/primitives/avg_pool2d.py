"""2-D average pooling (NIR ``AvgPool2d``)."""

import math

import equinox as eqx

from .._custom_types import Array, Shape
from ._conv import pool_sum
from ._pool import AbstractPool2d


class AvgPool2d(AbstractPool2d):
    """Mean over windows ``kernel_size`` moved by ``stride``; padded zeros count in the
    mean (torch's default ``count_include_pad=True``); dimensionless."""

    nir_type = "AvgPool2d"
    input_shape: Shape = eqx.field(static=True)
    kernel_size: Shape = eqx.field(static=True)
    stride: Shape = eqx.field(static=True)
    padding: Shape = eqx.field(static=True)

    def linear(self, x: Array) -> Array:
        return pool_sum(x, self.kernel_size, self.stride, self.padding) / math.prod(
            self.kernel_size
        )
