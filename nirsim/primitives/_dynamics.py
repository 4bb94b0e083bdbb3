"""The mathematics shared by the neuron primitives: leaky, integrating and
current-based dynamics, their vector fields and exact propagators."""

import jax.numpy as jnp

from .._custom_types import Array
from ._exp import log1p_ratio, phi1


def leaky_field(v, drive, tau, r, v_leak):
    """``dv/dt = (v_leak - v + r * drive) / tau``."""
    return (v_leak - v + r * drive) / tau


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
