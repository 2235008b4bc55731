"""The terminal after ``dcsim run``: short, in human units, only what ran, and the next command."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from conftest import base_scenario, write_yaml
from typer.testing import CliRunner

from sim import format as fmt
from sim.cli import app

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "scenarios" / "quickstart.yaml"


def _run(args, cwd, monkeypatch):
    monkeypatch.chdir(cwd)
    r = CliRunner().invoke(app, ["run", *args])
    assert r.exit_code == 0, r.output
    return r.output.splitlines()


def test_demo_fits_80_columns_and_40_lines_and_names_the_next_command(tmp_path, monkeypatch):
    """`dcsim run scenarios/quickstart.yaml` with the default folder (`make demo` runs the showcase the same
    way: tests/test_showcase.py)."""
    lines = _run([str(QUICKSTART)], tmp_path, monkeypatch)
    assert len(lines) <= 40, "\n".join(lines)
    assert max(len(ln) for ln in lines) <= 80, max(lines, key=len)
    folder = next((tmp_path / "results" / "quickstart").glob("2*"))
    rel = str(folder.relative_to(tmp_path))
    assert lines[-1] == f"Report:  dcsim report {rel}"
    assert any(ln.startswith(f"Results in {rel}") for ln in lines)
    summary = json.loads((folder / "summary.json").read_text())
    m = summary["metrics"]
    # availability as a percentage with its downtime per year, from the file's base-unit number
    assert f"VM availability  {fmt.availability_long(m['vm.availability'])} over 112 VMs" in lines
    assert "e+" not in "\n".join(lines) and "e-0" not in "\n".join(lines)
    # downtime by cause: recomputed from incidents.parquet, formatted by hand-checked rules
    inc = pd.read_parquet(folder / "incidents.parquet")
    by = inc.groupby("cause")["downtime_s"].agg(["count", "sum"])
    for cause, row in by.iterrows():
        line = next(ln for ln in lines if ln.strip().startswith(cause + " "))
        assert line.split()[1:3] == [str(int(row["count"])), *fmt.duration(row["sum"]).split()[:1]]
    # mechanisms that are off (replication, sessions, memory-error evacuation) are not shown
    text = "\n".join(lines)
    for off in ("replication", "sessions", "memory_error"):
        assert off not in text


def test_verbose_lists_every_metric_of_what_ran_only(tmp_path, monkeypatch):
    lines = _run([str(QUICKSTART), "--verbose", "--out", str(tmp_path / "o")], tmp_path, monkeypatch)
    m = json.loads((tmp_path / "o" / "summary.json").read_text())["metrics"]
    listed = {ln.split()[0] for ln in lines if ln[:1].isalpha() and "." in ln.split()[0]}
    # quickstart enables no mechanism section: only the always-on engine's metrics are shown
    from sim.mechanisms.registry import REGISTRY

    off = tuple({f"{x.name.split('.')[0]}." for c in REGISTRY.classes.values() if not c.always_on for x in c.metrics})
    shown = {n for n in m if not n.startswith(off)}
    assert shown <= listed
    assert not any(n.startswith(off) for n in listed)
    row = next(ln for ln in lines if ln.startswith("migration.bytes_total "))
    assert fmt.size(m["migration.bytes_total"]) in row and "bytes sent by live migrations" in row


def test_summary_of_a_run_without_incidents(tmp_path, monkeypatch):
    """No incidents: no empty sections, availability reads 100 % with no downtime."""
    path = write_yaml(tmp_path / "calm.yaml", base_scenario())
    lines = _run([str(path), "--out", str(tmp_path / "o")], tmp_path, monkeypatch)
    assert "VM availability  100 % (0 s/year down) over 8 VMs" in lines
    assert "VM downtime      0 s, the workloads' VMs summed" in lines
    assert "Incidents        0, 0 s of downtime (every subject)" in lines
    assert not any("Downtime by cause" in ln or "Longest incidents" in ln for ln in lines)


def test_run_on_a_sweep_file_says_use_sweep(tmp_path):
    sweep = ROOT / "scenarios" / "sweeps" / "migration_downtime.yaml"
    r = CliRunner().invoke(app, ["run", str(sweep)])
    assert r.exit_code == 2
    assert r.output.strip() == f"{sweep}: this is a sweep file: use dcsim sweep {sweep}"
