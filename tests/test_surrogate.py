"""Surrogate gradients through discrete spikes.

Oracle: the surrogate gradient at parameters ``p0`` is the exact gradient of the
smoothed model in which each spike decision ``H(x_k)`` is replaced by
``H(x*_k) + S(x_k) - S(x*_k)`` (``x*_k`` the values visited at ``p0``, ``S`` the
antiderivative of the surrogate, written here independently of nirsim). That model
is smooth in the parameters, equals the hard model at ``p0``, and is differentiated
by central finite differences.
"""

import math

import jax
import jax.numpy as jnp
import nir
import numpy as np
import pytest

import nirsim
from nirsim import Current
from nirsim.solvers import Arctan, Discrete, FastSigmoid, Triangle, heaviside

DT = 1e-3
STEPS = 30
X = np.random.default_rng(3).uniform(0.5, 3.0, size=STEPS)


def _smooth_step(kind, slope):
    """Antiderivatives, from the formulas in the module docstring."""
    if kind == "fast_sigmoid":
        return lambda x: x / (1 + slope * np.abs(x)) + 1 / slope
    if kind == "arctan":
        return lambda x: 0.5 + np.arctan(np.pi * slope * x / 2) / np.pi

    def tri(x):
        xc = np.clip(x, -1 / slope, 1 / slope)
        return np.where(
            xc < 0,
            0.5 * slope * (xc + 1 / slope) ** 2,
            0.5 / slope + xc - 0.5 * slope * xc**2,
        )

    return tri


SURROGATES = [
    ("fast_sigmoid", FastSigmoid(slope=3.0)),
    ("arctan", Arctan(slope=2.0)),
    ("triangle", Triangle(slope=2.0)),
]


@pytest.mark.parametrize("kind,sur", SURROGATES, ids=[k for k, _ in SURROGATES])
def test_heaviside_forward_is_exact_and_derivative_is_the_surrogate(kind, sur):
    x = jnp.array([-1.0, -0.1, 0.0, 0.2, 2.0])
    np.testing.assert_array_equal(heaviside(x, sur, False), [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(heaviside(x, sur, True), [0, 0, 0, 1, 1])
    grid = jnp.linspace(-1.3, 1.3, 27)
    d = jax.vmap(jax.grad(lambda y: heaviside(y, sur, False)))(grid)
    # The derivative used is the derivative of the documented antiderivative.
    s = _smooth_step(kind, sur.slope)
    fd = (s(np.asarray(grid) + 1e-6) - s(np.asarray(grid) - 1e-6)) / 2e-6
    # Central differences, step 1e-6: error <= slope * 1e-6 at the cusps (x = 0 for
    # fast sigmoid and triangle, x = +-1/slope for triangle), far less elsewhere.
    np.testing.assert_allclose(d, fd, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(sur.antiderivative(grid), s(np.asarray(grid)), atol=1e-14)


def _net(w, tau):
    nodes = {
        "input": nir.Input(np.array([1])),
        "fc": nir.Affine(np.array([[w]]), np.zeros(1)),
        "lif": nir.LIF(
            tau=np.array([tau]),
            r=np.ones(1),
            v_leak=np.zeros(1),
            v_threshold=np.ones(1),
            v_reset=np.zeros(1),
        ),
        "output": nir.Output(np.array([1])),
    }
    edges = [("input", "fc"), ("fc", "lif"), ("lif", "output")]
    return nirsim.load(nir.NIRGraph(nodes=nodes, edges=edges))


def _smoothed_loss(w, tau, s, visited=None):
    """Euler LIF (r = 1, v_leak = 0, threshold 1, reset by subtraction), the loss
    sum(v^2) + sum(z); with ``visited`` the spikes are smoothed around it."""
    v, loss, xs = 0.0, 0.0, []
    for k in range(STEPS):
        v = v + DT / tau * (-v + w * X[k])
        x = v - 1.0
        xs.append(x)
        if visited is None:
            z = float(x >= 0)
        else:
            z = float(visited[k] >= 0) + s(x) - s(visited[k])
        v = v - z * 1.0
        loss += v**2 + z
    return loss, np.array(xs)


@pytest.mark.parametrize("kind,sur", SURROGATES, ids=[k for k, _ in SURROGATES])
def test_surrogate_gradient_matches_finite_differences_of_smoothed_model(kind, sur):
    w0, tau0 = 1.7, 0.01
    s = _smooth_step(kind, sur.slope)
    hard_loss, visited = _smoothed_loss(w0, tau0, s)
    assert np.sum(visited >= 0) >= 3  # several spikes
    if kind == "triangle":  # some decisions fall inside the triangle's support
        assert np.any(np.abs(visited) < 1 / sur.slope)
    solver = Discrete(DT, surrogate=sur, label="euler")

    def loss(net):
        tr = nirsim.simulate(
            net,
            Current(X[:, None], DT),
            t_end=STEPS * DT,
            save_dt=DT,
            reset="subtract",
            solver=solver,
        )  # throw=True: the result check is skipped while jax.grad traces
        return jnp.sum(tr.states["lif"]["v"] ** 2) + jnp.sum(
            tr.states["lif"]["spike_count"]
        )

    net = _net(w0, tau0)
    value, grad = jax.value_and_grad(loss)(net)
    assert float(value) == pytest.approx(hard_loss, rel=1e-12)
    g_w = float(grad.nodes["fc"].weight[0, 0])
    g_tau = float(grad.nodes["lif"].tau[0])
    assert math.isfinite(g_w) and math.isfinite(g_tau)
    for g, (dw, dtau) in ((g_w, (1e-6 * w0, 0.0)), (g_tau, (0.0, 1e-6 * tau0))):
        up = _smoothed_loss(w0 + dw, tau0 + dtau, s, visited)[0]
        down = _smoothed_loss(w0 - dw, tau0 - dtau, s, visited)[0]
        fd = (up - down) / (2 * (dw + dtau))
        # Central differences with a relative step of 1e-6: truncation ~1e-12,
        # round-off ~1e-16/1e-6 relative to the loss (O(10)): 1e-6 is ample.
        assert g == pytest.approx(fd, rel=1e-6, abs=1e-6), (kind, g, fd)
