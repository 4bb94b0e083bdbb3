"""Cross-checks of the chip models against the vendors' own simulators, on random
small networks, bit for bit: every spike count, and for Xylo every ``v`` and
``i_syn``, step by step.

* Xylo v2 (Xylo Audio 2) against Rockpool's ``XyloSim`` and against ``xylosim.v2``
  directly; Xylo v1 against ``xylosim.v1`` (Rockpool's v1 module needs samna to
  build its configuration). nirsim's Xylo gives the chip's integers
  (``Xylo.specification``), both simulators run them.
* Speck against Sinabs' discretised model (``IAF`` layers with the chip's integer
  weights and thresholds), which sinabs' dynapcnn back-end is.

Loihi 2 (lava-nc), SpiNNaker2 (py-spinnaker2) and BrainScaleS-2 (hxtorch) have no
simulator installable here; their models are checked by hand-derived sequences in
``test_hardware_models.py`` and ``test_brainscales2.py``.

Marked ``peers``; each test is skipped when its package is missing::

    pip install xylosim rockpool sinabs
    pytest -m peers tests/test_vendor_sims.py
"""

from __future__ import annotations

import _vendor_sims as V  # tests/ is on sys.path under pytest
import numpy as np
import pytest

import nirsim
from nirsim.hardware_models import Speck, Xylo, XyloV1

pytestmark = pytest.mark.peers

SEEDS = range(10)
DT = 1e-3  # s
STEPS = 200
I16 = 2**15 - 1


def _need(module, name):
    if module is None:
        pytest.skip(f"{name} is not installed")
    return module


def _compare(got, ref, what):
    """Every field equal, or a documented deviation: nirsim adds a step's weighted
    input events to ``i_syn`` in one saturating sum, the chip saturates after each
    event, so they can part only once an ``i_syn`` has reached the int16 limit."""
    for k in got:
        if np.array_equal(got[k], ref[k]):
            continue
        first = int(np.argwhere(got[k] != ref[k])[0, 0])
        saturated = max(
            np.abs(ref["i_syn"][: first + 1]).max(),
            np.abs(ref["i_syn_out"][: first + 1]).max(),
        )
        assert saturated >= I16, (
            f"{what}: {k} differs from step {first} on, without int16 saturation of i_syn"
        )
        return False
    return True


@pytest.mark.parametrize("bias", [False, True], ids=["no-bias", "bias"])
def test_xylo_v2_against_rockpool_and_xylosim(bias):
    XyloSim = _need(V.rockpool_xylo_sim(), "rockpool's Xylo simulator (with xylosim)")
    v2 = _need(V.xylosim(2), "xylosim")
    exact = outputs = 0
    for seed in SEEDS:
        net = nirsim.load(V.random_xylo_graph(seed, bias=bias))
        model = Xylo(DT, raw=True)
        spec = model.specification(net)
        x = V.random_raster(seed, STEPS, 4)
        got = V.run_nirsim_xylo(net, model, x)
        rock = V.run_rockpool(V.rockpool_module(XyloSim, spec, DT), x)
        core = V.run_xylosim(V.XylosimLayer(v2, spec), x)
        for k in rock:  # Rockpool's simulator is xylosim's v2 core
            np.testing.assert_array_equal(rock[k], core[k])
        assert got["hidden"].sum() > 0, "no hidden spike: an empty check"
        outputs += got["output"].sum()
        exact += _compare(got, rock, f"seed {seed}")
    assert outputs > 0
    assert exact >= len(SEEDS) - 2  # saturation is rare in these networks


def test_xylo_v1_against_xylosim():
    v1 = _need(V.xylosim(1), "xylosim")
    exact = 0
    for seed in SEEDS:
        net = nirsim.load(V.random_xylo_graph(seed))
        model = Xylo(DT, core=XyloV1(), raw=True)
        x = V.random_raster(seed, STEPS, 4)
        got = V.run_nirsim_xylo(net, model, x)
        ref = V.run_xylosim(V.XylosimLayer(v1, model.specification(net)), x)
        assert got["hidden"].sum() > 0, "an empty check"
        exact += _compare(got, ref, f"seed {seed}")
    assert exact >= len(SEEDS) - 2


def test_speck_against_sinabs():
    _need(V.sinabs(), "sinabs")
    for seed in range(4):
        net = nirsim.load(V.random_speck_graph(seed))
        model = Speck(DT)
        rng = np.random.default_rng(seed)
        x = (rng.random((2, 30, 2, 16, 16)) < 0.1).astype(float)  # batch of two
        got = V.run_nirsim_speck(net, model, x)
        ref = V.sinabs_speck(net, model)(x)
        assert set(got) == set(ref) == {"if1", "if2", "if3"}
        assert ref["if3"].sum() > 0, "no output spike: an empty check"
        for k in got:
            np.testing.assert_array_equal(got[k], ref[k], err_msg=f"seed {seed}, {k}")
