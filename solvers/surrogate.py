"""Spikes with a gradient: the exact step forward, a chosen surrogate backward.

A discrete solver decides a spike with ``z = H(x)``, ``x = v - v_threshold`` (in the
graph's voltage unit). ``H`` has zero derivative almost everywhere, so
:func:`heaviside` keeps the exact step in the forward pass and replaces ``dH/dx`` by a
smooth surrogate ``sigma(x)`` in every derivative (``jax.grad``, ``jax.jvp``). The
surrogate gradient is then the exact gradient of the model in which ``H`` is replaced,
around the trajectory actually visited, by ``x -> H(x_0) + S(x) - S(x_0)`` with
``S' = sigma`` (:meth:`AbstractSurrogate.antiderivative` gives ``S``); the tests check
it against finite differences of that smoothed model.

The surrogates (``slope`` in 1/voltage):

* :class:`FastSigmoid` (SuperSpike, Zenke & Ganguli 2018; snnTorch's
  ``fast_sigmoid``): ``sigma(x) = 1 / (1 + slope |x|)^2``, ``S(x) = x/(1 + slope|x|)
  + 1/slope`` (rises by ``2/slope``), default ``slope = 25``;
* :class:`Arctan` (snnTorch's ``atan``, Fang et al. 2021):
  ``sigma(x) = (slope/2) / (1 + (pi slope x / 2)^2)``,
  ``S(x) = 1/2 + arctan(pi slope x / 2) / pi`` (rises by 1), default ``slope = 2``;
* :class:`Triangle` (Esser et al. 2016; Bellec et al. 2018):
  ``sigma(x) = max(0, 1 - slope |x|)``, ``S`` its piecewise-quadratic integral from
  ``-1/slope`` (rises by ``1/slope``), default ``slope = 1``.
"""

from __future__ import annotations

import abc
import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp

from nirsim._custom_types import Array
from nirsim._errors import InputError


class AbstractSurrogate(eqx.Module):
    """A surrogate derivative ``sigma(x)`` of the Heaviside step and its
    antiderivative ``S`` (``S(-inf) = 0``). Subclasses are final; ``slope`` is static
    (it selects a compiled function, it is not trained)."""

    slope: eqx.AbstractVar[float]

    def __check_init__(self):
        if not (isinstance(self.slope, int | float) and math.isfinite(self.slope)):
            raise InputError(f"surrogate slope must be a finite number, got {self.slope!r}")
        if self.slope <= 0:
            raise InputError(f"surrogate slope must be > 0, got {self.slope!r}")

    @abc.abstractmethod
    def derivative(self, x: Array) -> Array:
        """``sigma(x)``, used in place of ``dH/dx``."""

    @abc.abstractmethod
    def antiderivative(self, x: Array) -> Array:
        """``S(x)`` with ``S' = sigma`` and ``S(-inf) = 0``."""


class FastSigmoid(AbstractSurrogate):
    """``sigma(x) = 1/(1 + slope |x|)^2`` (SuperSpike; snnTorch ``fast_sigmoid``)."""

    slope: float = eqx.field(static=True, default=25.0)

    def derivative(self, x):
        return 1.0 / (1.0 + self.slope * jnp.abs(x)) ** 2

    def antiderivative(self, x):
        return x / (1.0 + self.slope * jnp.abs(x)) + 1.0 / self.slope


class Arctan(AbstractSurrogate):
    """``sigma(x) = (slope/2) / (1 + (pi slope x/2)^2)`` (snnTorch ``atan``)."""

    slope: float = eqx.field(static=True, default=2.0)

    def derivative(self, x):
        return (self.slope / 2) / (1.0 + (math.pi * self.slope * x / 2) ** 2)

    def antiderivative(self, x):
        return 0.5 + jnp.arctan(math.pi * self.slope * x / 2) / math.pi


class Triangle(AbstractSurrogate):
    """``sigma(x) = max(0, 1 - slope |x|)``."""

    slope: float = eqx.field(static=True, default=1.0)

    def derivative(self, x):
        return jnp.maximum(0.0, 1.0 - self.slope * jnp.abs(x))

    def antiderivative(self, x):
        s = self.slope
        xc = jnp.clip(x, -1.0 / s, 1.0 / s)
        left = 0.5 * s * (xc + 1.0 / s) ** 2
        right = 0.5 / s + xc - 0.5 * s * xc**2
        return jnp.where(xc < 0, left, right)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2))
def heaviside(x: Array, surrogate: AbstractSurrogate, strict: bool = False) -> Array:
    """The spike decision ``H(x)``: 1 where ``x > 0`` (``strict``) or ``x >= 0``,
    else 0, in ``x``'s dtype; its derivative is ``surrogate.derivative(x)``."""
    fired = x > 0 if strict else x >= 0
    return jnp.where(fired, 1.0, 0.0).astype(x.dtype)


@heaviside.defjvp
def _heaviside_jvp(surrogate, strict, primals, tangents):
    (x,), (dx,) = primals, tangents
    return heaviside(x, surrogate, strict), surrogate.derivative(x) * dx


SURROGATES: dict[str, type[AbstractSurrogate]] = {
    "fast_sigmoid": FastSigmoid,
    "superspike": FastSigmoid,
    "arctan": Arctan,
    "triangle": Triangle,
}
