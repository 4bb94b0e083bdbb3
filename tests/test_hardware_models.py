"""Hardware models: each chip rule against integer sequences derived by hand from
the rules in ../shared/HARDWARE.md, the NIR paper's LIF experiment, every refusal
and the mapping reports."""

import jax.numpy as jnp
import nir
import numpy as np

import nirsim
from nirsim import Current
from nirsim.hardware_models import fixed_point as fp

PATTERN = (
    "00000010000000000000001000010001100101001101111111111100000000000001"
    "11111111111000001100000000000000"
)


def _a(*x):
    return np.asarray(x, dtype=np.float32)


def _chain(*layers, n_in=1):
    """Input -> layer -> ... -> Output (layers are (name, nir node))."""
    nodes = {"input": nir.Input(input_type=np.array([n_in]))}
    order = ["input"]
    for name, node in layers:
        nodes[name] = node
        order.append(name)
    last = layers[-1][1]
    size = last.weight.shape[0] if hasattr(last, "weight") else np.size(_shape_of(last))
    nodes["output"] = nir.Output(output_type=np.array([size]))
    order.append("output")
    edges = list(zip(order[:-1], order[1:], strict=True))
    return nirsim.load(nir.NIRGraph(nodes=nodes, edges=edges))


def _shape_of(node):
    for f in ("tau", "tau_mem", "r"):
        if hasattr(node, f):
            return getattr(node, f)
    raise AssertionError(node)


def _lif(tau=2.5e-3, vth=0.1, r=1.0, v_leak=0.0, v_reset=0.0):
    return nir.LIF(
        tau=_a(tau), r=_a(r), v_leak=_a(v_leak), v_threshold=_a(vth), v_reset=_a(v_reset)
    )


def _steps(trace, node):
    return np.flatnonzero(np.asarray(trace.spikes[node].counts)[:, 0]).tolist()


def _pulses(steps, n, dt=1e-4):
    x = np.zeros((n, 1))
    x[list(steps), 0] = 1.0
    return Current(x, dt)


# ------------------------------------------------------------------ fixed point
def test_roundings_and_integer_operations():
    x = jnp.asarray([2.5, -2.5, 1.7, -1.7, 0.5])
    assert fp.round_toward_zero(x).tolist() == [2, -2, 1, -1, 0]
    assert fp.round_half_away(x).tolist() == [3, -3, 2, -2, 1]
    assert fp.round_half_even(x).tolist() == [2, -2, 2, -2, 0]
    assert fp.round_floor(x).tolist() == [2, -3, 1, -2, 0]
    i = jnp.asarray([-3, 3, -8, 7], jnp.int32)
    assert fp.shift_right(i, 1).tolist() == [-2, 1, -4, 3]  # floor
    assert fp.shift(i, 2).tolist() == [-12, 12, -32, 28]
    assert fp.shift(i, -1).tolist() == [-2, 1, -4, 3]
    # trunc0(x * m / 4096): -1000 * 3933 / 4096 = -960.2 -> -960 (floor: -961);
    # (2^23 - 1) * 3933 / 4096 = 8054783.04 (the product needs 35 bits)
    big = jnp.asarray([-1000, 1000, 8388607, -8388607], jnp.int32)
    assert fp.mul_shift_trunc0(big, 3933, 12).tolist() == [-960, 960, 8054783, -8054783]
    assert fp.wrap(jnp.asarray([127, 128, -129, 300], jnp.int32), 8).tolist() == [
        127,
        -128,
        127,
        44,
    ]
    assert fp.saturating_add(
        jnp.asarray([32000, -32000], jnp.int32), jnp.asarray([1000, -1000], jnp.int32), 16
    ).tolist() == [32767, -32768]
