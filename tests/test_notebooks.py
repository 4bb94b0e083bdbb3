"""The notebooks in ``notebooks/`` run end to end and compute what they claim.

Each notebook is executed once per test session at small size: a cell ``SMALL = True``
is injected after its ``parameters`` cell, and a probe cell appended at the end prints
the notebook's results as JSON (neither is in the committed files). The kernel is
ipykernel's ``python3`` (found even when no kernelspec is registered, as long as
ipykernel is installed: it is in the ``test`` extra), matplotlib draws with Agg, and the
working directory is ``notebooks/``, as when a user opens them.

Oracles: the NIR paper's published spike bins of the LIF experiment (``lif_exact.csv``
and Norse's ``lif_norse.csv``: 460, 510, 710, 760), the documented refusals of the
frameworks' importers, convergence of fixed-step solvers as ``dt`` shrinks, and, for
the training notebook, a falling loss, an exact export round trip and the comparator's
counts against the traces' own.

The committed notebooks must carry no outputs and no execution counts.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from conftest import shared_data_dir  # the same lookup as the fixtures
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = (
    "01_reference_outputs.ipynb",
    "02_hardware_model_error.ipynb",
    "03_training.ipynb",
)
#: Spike bins (floor(t / 1e-4)) of the NIR paper's LIF experiment, in both its exact
#: reference (lif_exact.csv) and its Norse run (lif_norse.csv).
PAPER_BINS = [460, 510, 710, 760]
#: Exact (ideal) back-ends: the notebooks compare everything else against them.
IDEAL = {"ideal", "closed_form", "diffrax"}
CELL_TIMEOUT = 300  # s per cell; the whole notebook takes well under a minute
PROBE = "NIRSIM_PROBE "

PROBES = {
    NAMES[0]: """
import json as _json
print("NIRSIM_PROBE " + _json.dumps({
    "small": SMALL,
    "max_err_before_first_spike": max_err_before_first_spike,
    "round_trip_exact": round_trip_exact,
    "braille": None if braille_counts is None
    else {k: int(v.sum()) for k, v in braille_counts.items()},
}))
""",
    NAMES[1]: """
import json as _json
print("NIRSIM_PROBE " + _json.dumps({
    "small": SMALL,
    "backends": [name for name, _ in BACKENDS],
    "lif_bins": {"ideal": spike_bins(lif_ideal),
                 **{name: spike_bins(tr) for name, tr in lif_traces.items()}},
    "lif_refused": lif_refused,
    "cuba_ran": sorted(cuba_traces),
    "cuba_refused": cuba_refused,
    "sweep": [[solver, dt, errors] for (solver, dt), errors in sweep.items()],
    "sweep_dts": SWEEP_DTS,
    "bss2": bss2,
    "bits_sweep": [[bits, s] for bits, s in bits_sweep.items()],
    "xylo_sweep": [[dt, s] for dt, s in xylo_sweep.items()],
}))
""",
    NAMES[2]: """
import json as _json
print("NIRSIM_PROBE " + _json.dumps({
    "small": SMALL,
    "n_test": N_TEST,
    "tolerance": TOLERANCE,
    **results,
}))
""",
}


def _parameters_index(nb) -> int:
    found = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])
    ]
    assert len(found) == 1, "a notebook needs exactly one cell tagged 'parameters'"
    return found[0]


def _stdout(nb) -> list[str]:
    """Text of every stream output, cell by cell."""
    out = []
    for c in nb.cells:
        if c.cell_type == "code":
            out.append(
                "".join(o.get("text", "") for o in c.outputs if o.output_type == "stream")
            )
    return out


def _line_value(nb, prefix: str):
    """The Python literal after ``prefix`` on the first output line starting with it."""
    for text in _stdout(nb):
        for line in text.splitlines():
            if line.startswith(prefix):
                return ast.literal_eval(line[len(prefix) :].strip())
    raise AssertionError(f"no output line starts with {prefix!r}")


_EXECUTED: dict[str, tuple | BaseException] = {}


def _run(name: str) -> tuple:
    """Execute notebook ``name`` at small size; returns ``(notebook with outputs,
    probe dict)``."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nb.cells.insert(_parameters_index(nb) + 1, nbformat.v4.new_code_cell("SMALL = True"))
    nb.cells.append(nbformat.v4.new_code_cell(PROBES[name].strip()))
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    # Own event loop, closed afterwards (this runs in a worker thread): raises
    # CellExecutionError on the first failing cell.
    asyncio.run(client.async_execute())
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "error"
    ]
    assert not errors, f"{name}: a cell raised {errors[0].ename}: {errors[0].evalue}"
    probe = None
    for text in _stdout(nb):
        for line in text.splitlines():
            if line.startswith(PROBE):
                probe = json.loads(line[len(PROBE) :])
    assert probe is not None, f"{name}: the probe cell printed nothing"
    assert probe["small"] is True, "SMALL = True was not picked up"
    return nb, probe


def _execute(name: str) -> tuple:
    """The executed notebook ``name`` and its probe, run once per session.

    In a plain pytest run both notebooks are executed at once, in two kernels (their
    run time is mostly jax compilation, one core each); a pytest-xdist worker runs
    only the notebook its test needs, as the other test may be on another worker."""
    if name not in _EXECUTED:
        todo = [name] if os.environ.get("PYTEST_XDIST_WORKER") else list(NAMES)
        todo = [n for n in todo if n not in _EXECUTED]

        def run(n):
            try:
                return _run(n)
            except BaseException as e:  # re-raised by the test of that notebook
                return e

        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("MPLBACKEND", "Agg")  # inherited by the kernels
            with ThreadPoolExecutor(len(todo)) as pool:
                _EXECUTED.update(zip(todo, pool.map(run, todo), strict=True))
    got = _EXECUTED[name]
    if isinstance(got, BaseException):
        raise got
    return got


def _images(nb) -> int:
    return sum(
        "image/png" in o.get("data", {})
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type in ("display_data", "execute_result")
    )


# ------------------------------------------------------------- committed files
@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_is_clean(name):
    """Valid nbformat, a python3 kernel, a 'parameters' cell with SMALL = False, and no
    outputs or execution counts (run the notebook, then clear it before committing:
    ``jupyter nbconvert --clear-output --inplace notebooks/*.ipynb``)."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    params = nb.cells[_parameters_index(nb)]
    assert "SMALL = False" in params.source
    for i, c in enumerate(nb.cells):
        if c.cell_type != "code":
            continue
        assert c.outputs == [], f"{name}: cell {i} has outputs committed"
        assert c.execution_count is None, f"{name}: cell {i} has an execution count"


# ------------------------------------------------------------- 01: reference outputs
def test_reference_outputs_notebook():
    nb, probe = _execute(NAMES[0])
    # The printed ideal spike bins are the paper's exact reference.
    assert _line_value(nb, "ideal spike bins:") == PAPER_BINS
    # Before the first spike the membrane follows the closed-form per-bin recursion;
    # both are float64 evaluations of the same exponentials (about 500 steps).
    assert probe["max_err_before_first_spike"] < 1e-12
    assert probe["round_trip_exact"] is True
    # Braille runs exactly when the paper's files are present.
    braille = (shared_data_dir() / "braille_noDelay_bias_zero.nir").is_file()
    assert (probe["braille"] is not None) == braille
    if braille:
        assert set(probe["braille"]) == {"lif1.lif", "lif2"}
    assert _images(nb) >= 2 + braille


# ------------------------------------------------------------- 02: model error
def test_hardware_model_error_notebook():
    nb, probe = _execute(NAMES[1])
    from nirsim.solvers import registry

    # Every non-ideal back-end of the registry is in the comparison.
    assert set(probe["backends"]) == set(registry.names()) - IDEAL

    # LIF: the exact reference and the Euler steppers at dt = 1e-4 land in the paper's
    # bins (its exact CSV and its Norse CSV).
    bins = probe["lif_bins"]
    assert bins["ideal"] == PAPER_BINS
    for name in ("euler", "norse"):
        assert bins[name] == PAPER_BINS, name
    # Rockpool's importer cannot read nir.LIF; the refusal is shown, not raised.
    assert "rockpool" in probe["lif_refused"]
    assert "LIF" in probe["lif_refused"]["rockpool"]
    # Recurrent CubaLIF graph: Sinabs has no CubaLIF; snnTorch and Spyx run the
    # recurrent layer as their RSynaptic / RCuBaLIF; Euler as written runs.
    refused = probe["cuba_refused"]
    assert "sinabs" in refused and "CubaLIF" in refused["sinabs"]
    ran = set(probe["cuba_ran"])
    assert {"euler", "exponential", "nir-euler", "snntorch", "spyx"} <= ran
    assert set(probe["cuba_ran"]) | set(refused) == set(probe["backends"])

    # Every back-end has a row in both summary tables (ran or refused).
    tables = [t for t in _stdout(nb) if "back-end" in t and "van Rossum" in t]
    assert len(tables) == 2
    for table in tables:
        rows = {line.split()[0] for line in table.splitlines() if line.strip()}
        assert set(probe["backends"]) <= rows

    # Error against dt: both fixed-step solvers converge as dt shrinks.
    sweep = {(s, d): e for s, d, e in probe["sweep"]}
    coarse, fine = max(probe["sweep_dts"]), min(probe["sweep_dts"])
    for solver in ("euler", "exponential"):
        a, b = sweep[solver, coarse], sweep[solver, fine]
        assert b["v_rms_before_first_spike"] < a["v_rms_before_first_spike"], solver
        if a["mean_abs_dt"] is not None:
            assert b["mean_abs_dt"] < a["mean_abs_dt"], solver
        # At the finest dt every ideal spike is found, within one step (spikes are
        # stamped at the start of their step).
        assert b["f1"] == 1.0, solver
        assert b["mean_abs_dt"] <= fine * (1 + 1e-9), solver
    # Chip models: Loihi 2 and SpiNNaker2 hold the LIF and fire one step after the
    # ideal bins (each Dense / projection delivers a step late: the bins of the
    # paper's Loihi trace and of py-spinnaker2's Brian2 trace); Xylo and BrainScaleS-2
    # map CubaLIF only and Speck IF only.
    for name in ("loihi2", "spinnaker2"):
        assert bins[name] == [b + 1 for b in PAPER_BINS], name
        assert {(name, d) for d in probe["sweep_dts"]} <= set(sweep), name
    for name in ("xylo", "speck", "brainscales2"):
        assert name in probe["lif_refused"], name
    assert "CubaLIF" in refused["speck"]
    assert {"loihi2", "spinnaker2", "xylo", "brainscales2"} <= ran
    assert [dt for dt, _ in probe["xylo_sweep"]] == probe["sweep_dts"]
    # BrainScaleS-2: each source of error is switched on in turn; mismatch adds to the
    # membrane error of the weights alone, and two trials of one chip differ.
    bss2 = probe["bss2"]
    assert bss2["+ mismatch"]["v_rms"] > bss2["weights only"]["v_rms"]
    assert bss2["+ trial noise"] != bss2["+ trial noise (trial 1)"]
    # Weight bit width: more bits, smaller membrane error.
    bits = dict((b, s) for b, s in probe["bits_sweep"])
    assert bits[max(bits)]["v_rms"] < bits[min(bits)]["v_rms"]
    # The paper's figure, the rasters, the overview, the error-vs-dt figure and the
    # error-vs-bits figure.
    assert _images(nb) >= 5


# ------------------------------------------------------------- 03: training
def test_training_notebook():
    nb, probe = _execute(NAMES[2])
    # Training lowers the loss (epoch means), and the exported file behaves exactly
    # like the network that was written (identical spike rasters).
    losses = probe["train_losses"]
    assert len(losses) >= 2 and losses[-1] < losses[0]
    assert probe["round_trip_identical"] is True
    # The file ran on the ideal solver, the rule it was trained with and two chips;
    # the chip form's readout never reached its threshold anywhere.
    backends = {"ideal", "exponential", "loihi2", "spinnaker2"}
    assert set(probe["accuracy"]) == set(probe["tuned_accuracy"]) == backends
    assert all(v == 0 for v in probe["readout_spikes"].values())
    # The comparator's reference is the ideal hidden layer: its count is the trace's.
    for name in backends - {"ideal"}:
        assert probe["ref_spikes"][name] == probe["hidden_spikes"]["ideal"], name
        assert 0.0 <= probe["f1"][name] <= 1.0
    # The printed table has a row per back-end.
    table = next(t for t in _stdout(nb) if "F1 vs ideal" in t)
    rows = {line.split()[0] for line in table.splitlines() if line.strip()}
    assert backends <= rows
    # Loihi 2 diverges from the ideal (8-bit weights, a step of delay per Dense), and
    # fine-tuning through the chip model raises the accuracy measured on the chip.
    assert probe["f1"]["loihi2"] < 1.0
    assert probe["tuned_accuracy"]["loihi2"] > probe["accuracy"]["loihi2"]
    assert _images(nb) >= 1
