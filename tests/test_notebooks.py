"""Every notebook executes top to bottom (nbclient) as on a fresh clone: an empty results root and no
DCSIM_RESULTS, so each one (quickstart included) makes its own results."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _execute(nb_path: Path, results_root: Path, monkeypatch) -> list[dict]:
    monkeypatch.delenv("DCSIM_RESULTS", raising=False)
    monkeypatch.setenv("DCSIM_RESULTS_ROOT", str(results_root))
    nb = nbformat.read(nb_path, as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(nb_path.parent)}}).execute()
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(nb_path, monkeypatch, tmp_path):
    outputs = _execute(nb_path, tmp_path / "results", monkeypatch)
    assert not [o for o in outputs if o.get("output_type") == "error"]
    # Each notebook shows at least one figure, drawn from the run's tables.
    assert any("image/png" in o.get("data", {}) for o in outputs)


def test_quickstart_makes_its_own_results(monkeypatch, tmp_path):
    """From a fresh clone (no `make demo`, no DCSIM_RESULTS): the notebook runs the scenario itself,
    and its run folder is the quickstart scenario's (30 days, seed 7)."""
    import json

    outputs = _execute(ROOT / "notebooks" / "quickstart.ipynb", tmp_path / "results", monkeypatch)
    assert not [o for o in outputs if o.get("output_type") == "error"]
    summary = json.loads((tmp_path / "results" / "quickstart" / "notebook" / "summary.json").read_text())
    assert (summary["scenario"], summary["seed"], summary["duration_s"]) == ("quickstart", 7, 30 * 86400.0)
    text = "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "VM availability" in text and " %" in text  # the run's summary and availability in percent
