"""Every notebook executes top to bottom (nbclient): quickstart against a fresh run's results, the
others generating their own small results into an empty results root."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def quickstart_results(tmp_path_factory):
    from sim.mechanisms.registry import config_models
    from sim.results import write_run
    from sim.runner import run_scenario
    from sim.scenario.loader import dump_resolved, load_scenario

    sc = load_scenario(str(ROOT / "scenarios" / "quickstart.yaml"), ["duration=10d"], config_models())
    out = run_scenario(sc)
    path = tmp_path_factory.mktemp("quickstart")
    write_run(path, out.tables, out.summary(), dump_resolved(sc))
    return path


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(nb_path, quickstart_results, monkeypatch, tmp_path):
    monkeypatch.setenv("DCSIM_RESULTS", str(quickstart_results))
    # The analysis notebooks find no results under an empty root and make their own small ones,
    # as on a fresh clone.
    monkeypatch.setenv("DCSIM_RESULTS_ROOT", str(tmp_path / "results"))
    nb = nbformat.read(nb_path, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(nb_path.parent)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    # Each notebook shows at least one figure, drawn from the run's tables.
    assert any("image/png" in o.get("data", {}) for o in outputs)
