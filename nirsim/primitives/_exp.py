"""Numerically stable exponential helpers for the closed-form propagators."""

import jax.numpy as jnp

from .._custom_types import Array


def phi1(x: Array) -> Array:
    """``(1 - exp(-x)) / x``, equal to 1 at ``x = 0`` and accurate near it."""
    small = jnp.abs(x) < 1e-6
    xs = jnp.where(small, 1.0, x)
    return jnp.where(small, 1.0 - x / 2 + x * x / 6, -jnp.expm1(-xs) / xs)


def log1p_ratio(x: Array, k: Array) -> Array:
    """``log1p(x * k) / x``, equal to ``k`` at ``x = 0`` (nan where ``1 + x k <= 0``)."""
    small = jnp.abs(x * k) < 1e-8
    xs = jnp.where(small, 1.0, x)
    arg = 1.0 + xs * k
    safe = jnp.where(arg > 0, arg, 1.0)
    return jnp.where(
        small, k * (1.0 - x * k / 2), jnp.where(arg > 0, jnp.log(safe) / xs, jnp.nan)
    )
