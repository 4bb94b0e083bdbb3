"""Cross-checks against the real frameworks: each framework's own NIR importer runs a
NIR paper graph on seeded inputs, nirsim's preset of that framework runs the same
graph and inputs, and the output spike rasters must agree cell by cell (step index
``round(t/dt)``, never float times).

Marked ``peers``; skipped when the framework is not importable or the NIR paper files
are absent. Run them with::

    pip install -e ".[test,peers]"   # sinabs: see the note on the peers extra
    pytest -m peers tests/test_peers.py

A case the framework itself cannot load (its importer raises) is skipped with the
framework's error. Cases where the current preset is known to differ from the
framework are strict xfails (``KNOWN``) whose reason names the rule the preset lacks;
fixing the preset turns them into failures that ask for the mark to be removed.

nirsim runs in float32, the frameworks' dtype (``simulate(..., dtype=jnp.float32)``,
every preset's default).
"""

from __future__ import annotations

import _peers as P  # tests/ is on sys.path under pytest
import numpy as np
import pytest

pytestmark = pytest.mark.peers

#: (framework, graph) -> why the current preset differs (a strict xfail); empty since
#: the presets were fixed (see the git log): the Sinabs LIF needed float32 (trunc(v/th)
#: of v = 1, th = f32(0.1) is 10 in float32, 9 in float64)
KNOWN: dict[tuple[str, str], str] = {}

#: the graphs each framework is tried on (its importer may still refuse one: skip)
CASES = [
    ("norse", k) for k in P.GRAPHS
] + [
    ("snntorch", "lif"), ("snntorch", "cnn"),
    ("snntorch_layers", "braille_zero"), ("snntorch_layers", "braille_subtract"),
    ("spyx", "lif"), ("spyx", "cnn"),
    ("spyx", "braille_zero"), ("spyx", "braille_subtract"),
    ("spyx", "braille_zero_subgraph"), ("spyx", "braille_subtract_subgraph"),
    ("sinabs", "lif"), ("sinabs", "cnn"),
    ("rockpool", "braille_zero"), ("rockpool", "braille_subtract"),
    ("rockpool", "braille_zero_subgraph"), ("rockpool", "braille_subtract_subgraph"),
]  # fmt: skip


def _param(fw, key):
    marks = []
    if (fw, key) in KNOWN:
        marks.append(pytest.mark.xfail(strict=True, reason=KNOWN[(fw, key)]))
    return pytest.param(fw, key, marks=marks, id=f"{fw}-{key}")


def _preset(fw: str) -> str:
    return "snntorch" if fw == "snntorch_layers" else fw


@pytest.mark.parametrize(("fw", "key"), [_param(*c) for c in CASES])
def test_preset_reproduces_framework(shared_data, fw, key):
    module = "snntorch" if fw == "snntorch_layers" else fw
    if not P.available(module):
        pytest.skip(f"{module} is not installed (pip install -e '.[peers]')")
    graph = P.read_graph(shared_data, key)
    x = P.inputs(key)
    try:
        ref = P.run_framework(fw, graph, x, key)
    except Exception as e:  # noqa: BLE001  the framework's own importer refuses it
        pytest.skip(f"{fw} cannot run {key}: {type(e).__name__}: {str(e)[:200]}")
    got = P.run_nirsim(_preset(fw), graph, x, key)
    cells, spikes = P.agreement(ref, got)
    assert ref.sum() > 0, "the input drives no output spike: the check is empty"
    assert np.array_equal(ref, got), (
        f"{fw} on {key}: {cells:.3f} % of raster cells and {spikes:.3f} % of spikes "
        f"agree ({int(ref.sum())} spikes in {fw}, {int(got.sum())} in nirsim)"
    )
