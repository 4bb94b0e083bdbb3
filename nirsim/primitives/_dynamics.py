"""The mathematics shared by the neuron primitives: leaky, integrating and
current-based dynamics, their vector fields and exact propagators."""

import jax.numpy as jnp

from .._custom_types import Array
from ._exp import log1p_ratio, phi1


def leaky_field(v, drive, tau, r, v_leak):
    """``dv/dt = (v_leak - v + r * drive) / tau``."""
    return (v_leak - v + r * drive) / tau


def leaky_crossing(v, drive, tau, r, v_leak, v_threshold) -> Array:
    """The ``h > 0`` where :func:`leaky_propagate` reaches ``v_threshold`` from below:
    ``h = tau log1p((v - v_threshold) / (v_threshold - v_inf))`` (nan where it does
    not, i.e. unless ``v < v_threshold < v_inf``)."""
    v_inf = v_leak + r * drive
    gap = v_threshold - v_inf
    ratio = (v - v_threshold) / jnp.where(gap < 0, gap, -1.0)
    return jnp.where((gap < 0) & (v < v_threshold), tau * jnp.log1p(ratio), jnp.nan)


def integrator_crossing(v, drive, r, v_threshold) -> Array:
    """The ``h > 0`` where ``v + r drive h`` reaches ``v_threshold`` from below (nan
    where it does not)."""
    rate = r * drive
    ok = (rate > 0) & (v < v_threshold)
    return jnp.where(ok, (v_threshold - v) / jnp.where(ok, rate, 1.0), jnp.nan)


def leaky_propagate(v, drive, tau, r, v_leak, h):
    """Exact ``v(h)`` of :func:`leaky_field` for a constant drive."""
    v_inf = v_leak + r * drive
    return v_inf + (v - v_inf) * jnp.exp(-h / tau)


def cuba_field(i_syn, v, drive, tau_syn, tau_mem, r, v_leak, w_in):
    """``tau_syn di/dt = -i + w_in*drive``, ``tau_mem dv/dt = v_leak - v + r*i``."""
    di = (w_in * drive - i_syn) / tau_syn
    dv = (v_leak - v + r * i_syn) / tau_mem
    return di, dv


def cuba_propagate(i_syn, v, drive, tau_syn, tau_mem, r, v_leak, w_in, h):
    """Exact ``(i(h), v(h))`` of :func:`cuba_field` for a constant drive.

    With ``a = 1/tau_syn``, ``b = 1/tau_mem``, ``D = i(0) - w_in*drive``:
    ``v(h) = v_inf + (v0 - v_inf) e^{-bh} + r D b (e^{-ah} - e^{-bh}) / (b - a)``,
    written as ``r D b h e^{-ah} phi1((b - a) h)`` so that ``tau_syn == tau_mem``
    (where it becomes ``r D b h e^{-bh}``) is exact too.
    """
    a = 1.0 / tau_syn
    b = 1.0 / tau_mem
    i_inf = w_in * drive
    d = i_syn - i_inf
    v_inf = v_leak + r * i_inf
    ea = jnp.exp(-a * h)
    i_new = i_inf + d * ea
    v_new = v_inf + (v - v_inf) * jnp.exp(-b * h) + r * d * b * h * ea * phi1((b - a) * h)
    return i_new, v_new


def cuba_extremum(i_syn, v, drive, tau_syn, tau_mem, r, v_leak, w_in) -> Array:
    """The one ``h > 0`` where ``dv/dt = 0`` along :func:`cuba_propagate` (or inf).

    Setting ``v'(h) = 0`` gives ``e^{(b-a)h} = 1 + (b-a) K`` with
    ``K = (1 - (v0 - v_inf)/(r D)) / a``; so ``h = log1p((b-a)K)/(b-a)``.
    """
    a = 1.0 / tau_syn
    b = 1.0 / tau_mem
    i_inf = w_in * drive
    rd = r * (i_syn - i_inf)
    v_inf = v_leak + r * i_inf
    safe_rd = jnp.where(rd == 0, 1.0, rd)
    k = (1.0 - (v - v_inf) / safe_rd) / a
    h = log1p_ratio(b - a, k)
    ok = (rd != 0) & jnp.isfinite(h) & (h > 0)
    return jnp.where(ok, h, jnp.inf)


def _quadratic_root_near(p2, p1, p0, x_a, x_b) -> Array:
    """The real root of ``p2 x^2 + p1 x + p0`` nearest the interval between ``x_a``
    and ``x_b`` (both roots by the cancellation-free formulas; a negative
    discriminant, a rounding of a double root, is taken as 0)."""
    disc = jnp.maximum(p1 * p1 - 4.0 * p2 * p0, 0.0)
    sq = jnp.sqrt(disc)
    q = -0.5 * (p1 + jnp.where(p1 >= 0, sq, -sq))
    r1 = q / jnp.where(p2 == 0, jnp.nan, p2)
    r2 = p0 / jnp.where(q == 0, jnp.nan, q)
    lo, hi = jnp.minimum(x_a, x_b), jnp.maximum(x_a, x_b)

    def dist(x):
        return jnp.where(
            jnp.isfinite(x), jnp.maximum(jnp.maximum(lo - x, x - hi), 0.0), jnp.inf
        )

    return jnp.where(dist(r1) <= dist(r2), r1, r2)


def cuba_crossing(
    i_syn, v, drive, tau_syn, tau_mem, r, v_leak, w_in, v_threshold, lo, hi
) -> Array:
    """Closed-form ``h`` in ``[lo, hi]`` where :func:`cuba_propagate` reaches
    ``v_threshold``, for neurons whose time constants are in ratio 2 (either way);
    nan for the others (they need a numerical search).

    With ``tau_mem = 2 tau_syn`` and ``x = e^{-h/tau_mem}`` (so ``e^{-h/tau_syn} =
    x^2``), ``v(h) - v_threshold = (v_inf - v_threshold) + (u + rD) x - rD x^2`` where
    ``u = v0 - v_inf``, ``D = i(0) - w_in drive``; with ``tau_syn = 2 tau_mem`` and
    ``x = e^{-h/tau_syn}`` it is ``(v_inf - v_threshold) + 2rD x + (u - 2rD) x^2``
    (the setting of Goeltz et al. 2021, "Fast and energy-efficient neuromorphic deep
    learning with first-spike times"). ``[lo, hi]`` must bracket one crossing, on a
    monotone piece of ``v``: the root nearest it is taken."""
    eps = jnp.finfo(jnp.result_type(tau_mem, float)).eps
    mem2 = jnp.abs(tau_mem - 2.0 * tau_syn) <= 8 * eps * tau_mem
    syn2 = jnp.abs(tau_syn - 2.0 * tau_mem) <= 8 * eps * tau_syn
    i_inf = w_in * drive
    rd = r * (i_syn - i_inf)
    v_inf = v_leak + r * i_inf
    u = v - v_inf
    k = jnp.where(mem2, 1.0 / tau_mem, 1.0 / tau_syn)
    p2 = jnp.where(mem2, -rd, u - 2.0 * rd)
    p1 = jnp.where(mem2, u + rd, 2.0 * rd)
    x = _quadratic_root_near(
        p2, p1, v_inf - v_threshold, jnp.exp(-k * lo), jnp.exp(-k * hi)
    )
    ok = (mem2 | syn2) & (x > 0)
    return jnp.where(ok, -jnp.log(jnp.where(ok, x, 1.0)) / k, jnp.nan)
