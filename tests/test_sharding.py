"""A batch sharded over a device mesh stays sharded and gives the unsharded result.

Runs in a subprocess that forces 4 CPU devices (``XLA_FLAGS`` must be set before jax
starts), on a graph with a gridded input and a spike input.
"""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import numpy as np
    import jax
    import nir
    import nirsim
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

    assert len(jax.devices()) == 4, jax.devices()
    nodes = {
        "x": nir.Input(np.array([2])),
        "s": nir.Input(np.array([2])),
        "fc": nir.Affine(np.array([[1.0, 0.5], [0.2, 1.0], [0.3, -0.4]]), np.zeros(3)),
        "fs": nir.Linear(np.array([[0.3, 0.0], [0.0, 0.4], [0.2, 0.2]])),
        "lif": nir.CubaLIF(
            tau_syn=np.full(3, 5e-3), tau_mem=np.full(3, 1e-2), r=np.ones(3),
            v_leak=np.zeros(3), v_threshold=np.full(3, 0.2), v_reset=np.zeros(3),
            w_in=np.full(3, 5e-3),
        ),
        "out": nir.Output(np.array([3])),
    }
    edges = [("x", "fc"), ("s", "fs"), ("fc", "lif"), ("fs", "lif"), ("lif", "out")]
    net = nirsim.load(nir.NIRGraph(nodes=nodes, edges=edges))
    rng = np.random.default_rng(0)
    batch, steps, n_ev = 8, 50, 30
    x = rng.uniform(0, 3, size=(batch, steps, 2))
    t = np.sort(rng.uniform(0, 0.05, size=(batch, n_ev)), axis=-1)
    i = rng.integers(0, 2, size=(batch, n_ev))
    mesh = Mesh(np.array(jax.devices()), ("batch",))
    sharded = NamedSharding(mesh, P("batch"))

    def inputs(put):
        return {
            "x": nirsim.Current(put(x), 1e-3),
            "s": nirsim.Spikes(put(t), put(i)),
        }

    kw = dict(t_end=0.05, save_dt=1e-3, solver="euler", dt=1e-3)
    ref = nirsim.simulate(net, inputs(lambda a: a), **kw)
    out = nirsim.simulate(net, inputs(lambda a: jax.device_put(a, sharded)), **kw)
    for arr in (out.states["lif"]["v"], out.spikes["lif"].counts, out.result):
        assert arr.sharding.is_equivalent_to(sharded, arr.ndim), arr.sharding
        assert len(arr.sharding.device_set) == 4
    np.testing.assert_allclose(out.states["lif"]["v"], ref.states["lif"]["v"],
                               rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(out.spikes["lif"].times, ref.spikes["lif"].times)
    np.testing.assert_array_equal(out.spikes["lif"].indices, ref.spikes["lif"].indices)
    assert int(np.sum(np.asarray(out.spikes["lif"].indices) >= 0)) > 0
    print("OK")
    """
)


def test_sharded_batch_equals_unsharded_and_stays_sharded():
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    ).strip()
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("OK")
