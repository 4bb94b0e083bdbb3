"""Integrator (NIR ``I``)."""

from __future__ import annotations

import equinox as eqx

from .._custom_types import NeuronArray, Shape
from ._families import AbstractIntegrator
from .base import as_param


class I(AbstractIntegrator):  # noqa: E742
    r"""Integrator.

    ``dv/dt = r x(t)``; an impulse of area ``a`` makes ``v`` jump by ``r a``.

    * ``r``: resistance (voltage per unit of input per unit of time).

    No threshold; the outgoing signal is the continuous ``v(t)``; ``v(0) = 0``.
    """

    nir_type = "I"
    param_names = ("r",)

    r: NeuronArray
    shape: Shape = eqx.field(static=True)

    def __init__(self, r, *, source_dtypes=()):
        self.r = as_param(r, "r")
        self.shape = tuple(self.r.shape)
        self.source_dtypes = source_dtypes
