"""dcsim report: non-empty PNGs and one self-contained report.html, for a run and for a sweep."""

from __future__ import annotations

import base64
import re

from conftest import write_yaml
from test_sweep import make_sweep, small_scenario
from typer.testing import CliRunner

from sim.cli import app
from sim.results import prepare_dir

PNG = b"\x89PNG\r\n\x1a\n"


def check_report(folder, expect: set[str]):
    r = CliRunner().invoke(app, ["report", str(folder)])
    assert r.exit_code == 0, r.output
    out = folder / "report"
    pngs = {p.name: p.read_bytes() for p in out.glob("*.png")}
    assert expect <= set(pngs), sorted(pngs)
    assert all(data.startswith(PNG) and len(data) > 2000 for data in pngs.values())
    html = (out / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == len(pngs)
    assert all(base64.b64decode(i).startswith(PNG) for i in images)
    assert not re.search(r'(src|href)="(?!data:)', html)  # nothing to fetch: opens with no server
    return html


def test_run_report(tmp_path):
    scenario = write_yaml(tmp_path / "s.yaml", small_scenario())
    r = CliRunner().invoke(app, ["run", str(scenario), "--out", str(tmp_path / "run"), "--quiet"])
    assert r.exit_code == 0, r.output
    html = check_report(tmp_path / "run", {"incident_timeline.png", "downtime_per_cause.png",
                                           "gauges_over_time.png", "records_per_table.png"})
    assert "Key metrics" in html and "vm.availability" in html and "Top incidents" in html
    # the report folder does not stop the run folder from being replaced with --force
    assert prepare_dir(tmp_path / "run", "t", force=True).replacing


def test_sweep_report(tmp_path):
    sweep = make_sweep(tmp_path, {"replications": 2, "grid": {"infrastructure.detection": ["30s", "10m"],
                                                               "mechanisms.live_migration.mode": ["precopy"]}})
    r = CliRunner().invoke(app, ["sweep", str(sweep), "--out", str(tmp_path / "sw"), "--workers", "1", "--quiet"])
    assert r.exit_code == 0, r.output
    html = check_report(tmp_path / "sw", {"against_infrastructure.detection.png"})
    assert "Points (means)" in html and "p0001" in html
