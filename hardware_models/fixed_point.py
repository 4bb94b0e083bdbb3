r"""Fixed-point arithmetic shared by the chip models.

Two kinds of functions:

* **roundings of real numbers** (used by the mappings, which turn a Network's float
  parameters into chip integers): :func:`round_toward_zero`, :func:`round_half_away`,
  :func:`round_half_even`, :func:`round_floor`. They return floats holding integers,
  with a **straight-through** gradient (the derivative of the identity), so
  ``jax.grad`` of a loss through a chip model reaches the Network's parameters the
  way quantisation-aware training expects;
* **clipping** to a chip's range, :func:`clip`: a *masked* identity (gradient 1
  inside the range, 0 outside), as ``jnp.clip``: a parameter pinned at the chip's
  limit does not move the chip's number, and its gradient says so;
* **integer operations** of a chip's step (on ``int32`` arrays, no gradient):
  :func:`shift_right` (arithmetic, i.e. floor), :func:`shift`, :func:`mul_shift_trunc0`
  (``trunc0(x * m / 2^k)`` without 64-bit integers), :func:`saturate`, :func:`wrap`.

``trunc0`` rounds toward zero; ``x >> k`` is the arithmetic shift (floor), as in
``../shared/HARDWARE.md``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from nirsim._custom_types import Array


def straight_through(x: Array, q: Array) -> Array:
    """``q`` in the forward pass, bit for bit, and the gradient of ``x`` in the
    backward pass (``d/dx = 1``), for finite ``x``.

    Written ``q + (x - stop_gradient(x))`` rather than ``x + stop_gradient(q - x)``:
    the second form rounds ``q - x`` and can miss ``q`` by an ulp, the first adds an
    exact zero. Where ``x`` is not finite (a degenerate mapping, e.g. a neuron whose
    input weights are all 0 gets an infinite scale) the zero is taken as is and the
    gradient there is 0, so the value is still ``q``. ``q`` is cast to ``x``'s dtype
    (an integer ``q`` of a chip's step is exact in float32 up to ``2^24``)."""
    x = jnp.asarray(x)
    q = jnp.asarray(q).astype(x.dtype)
    finite = jnp.isfinite(jax.lax.stop_gradient(x))
    safe = jnp.where(finite, x, 0.0)
    return q + (safe - jax.lax.stop_gradient(safe))


def round_toward_zero(x: Array) -> Array:
    """``trunc(x)`` (C's ``(int)x``, Python's ``int(x)``, numpy's ``astype(int)``)."""
    return straight_through(x, jnp.trunc(x))


def round_half_away(x: Array) -> Array:
    """Nearest integer, halves away from zero (``2.5 -> 3``, ``-2.5 -> -3``)."""
    return straight_through(x, jnp.sign(x) * jnp.floor(jnp.abs(x) + 0.5))


def round_half_even(x: Array) -> Array:
    """Nearest integer, halves to even (numpy's and torch's ``round``)."""
    return straight_through(x, jnp.round(x))


def round_floor(x: Array) -> Array:
    """``floor(x)``."""
    return straight_through(x, jnp.floor(x))


def clip(x: Array, lo, hi) -> Array:
    """``x`` clipped to ``[lo, hi]`` (gradient 1 inside, 0 outside)."""
    return jnp.clip(x, lo, hi)


# ------------------------------------------------------------------ integer operations
def as_int(x: Array) -> Array:
    """A float holding integers as ``int32`` (rounded to nearest first, so float
    sums of integer weights that picked up rounding error land on the integer)."""
    return jnp.round(jax.lax.stop_gradient(x)).astype(jnp.int32)


def shift_right(x: Array, k) -> Array:
    """``x >> k``: arithmetic shift, i.e. ``floor(x / 2^k)`` (``-3 >> 1 = -2``)."""
    return jnp.right_shift(x, jnp.asarray(k, x.dtype))


def shift(x: Array, k) -> Array:
    """``x << k`` for ``k >= 0``, ``x >> -k`` (floor) for ``k < 0``."""
    k = jnp.asarray(k, x.dtype)
    return jnp.where(k >= 0, jnp.left_shift(x, jnp.maximum(k, 0)), shift_right(x, -k))


def mul_shift_trunc0(x: Array, m, k: int) -> Array:
    """``trunc0(x * m / 2^k)`` for ``int32`` ``x`` with ``|x| < 2^31`` and
    ``0 <= m <= 2^k``, ``k <= 12``, computed without 64-bit integers:
    ``|x| = a 2^k + b`` gives ``|x| m >> k = a m + (b m >> k)`` exactly (``a m 2^k``
    is a multiple of ``2^k``), and every product fits in 32 bits when
    ``|x| < 2^23``."""
    m = jnp.asarray(m, jnp.int32)
    mag = jnp.abs(x)
    hi = jnp.right_shift(mag, k)
    lo = jnp.bitwise_and(mag, (1 << k) - 1)
    out = hi * m + jnp.right_shift(lo * m, k)
    return jnp.sign(x) * out


def saturate(x: Array, lo: int, hi: int) -> Array:
    """``x`` clipped to ``[lo, hi]`` (a saturating register)."""
    return jnp.clip(x, lo, hi)


def saturating_add(x: Array, y: Array, bits: int) -> Array:
    """``x + y`` saturated to the signed ``bits``-bit range (no overflow of the
    ``int32`` sum for ``bits <= 30``)."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return saturate(x + y, lo, hi)


def wrap(x: Array, bits: int) -> Array:
    """``x`` wrapped into the signed ``bits``-bit two's complement range
    ``[-2^(bits-1), 2^(bits-1) - 1]``."""
    half = 1 << (bits - 1)
    return jnp.bitwise_and(x + half, (1 << bits) - 1) - half
