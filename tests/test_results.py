"""Result folders: files, atomicity rules, refusal without --force, load()."""

from __future__ import annotations

import json

import pytest
from conftest import base_scenario, write_yaml
from typer.testing import CliRunner

from sim.cli import app
from sim.results import load

REQUIRED = {"summary.json", "incidents.parquet", "levels.parquet", "scenario.resolved.yaml",
            "migrations.parquet", "memory_errors.parquet", "faults.parquet", "restarts.parquet"}


def _run(args):
    return CliRunner().invoke(app, args, catch_exceptions=False)


def test_run_writes_every_file(tmp_path):
    sc = write_yaml(tmp_path / "s.yaml", base_scenario(
        faults=[{"kind": "host_crash", "at": "1h", "target": "east/bd1/h00"}]))
    out = tmp_path / "out"
    r = _run(["run", str(sc), "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    names = {p.name for p in out.iterdir()}
    assert REQUIRED <= names
    assert "events.parquet" not in names
    assert not [n for n in names if n.endswith(".tmp")]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"kind", "scenario", "seed", "duration_s", "wall_s", "events", "versions", "metrics", "code"}
    assert summary["scenario"] == "t" and summary["seed"] == 1 and summary["duration_s"] == 86400.0
    assert set(summary["versions"]) >= {"dcsim", "simpy", "python"}
    assert summary["metrics"]["incidents.count"] == 1
    res = load(out)
    assert list(res["incidents"].columns) == ["subject", "cause", "mechanism", "start_s", "end_s",
                                              "downtime_s", "outcome"]
    assert len(res["incidents"]) == 1
    assert res.metrics == summary["metrics"]


def test_empty_tables_keep_their_columns(tmp_path):
    sc = write_yaml(tmp_path / "s.yaml", base_scenario())
    out = tmp_path / "out"
    assert _run(["run", str(sc), "--out", str(out), "--quiet"]).exit_code == 0
    res = load(out)
    assert len(res["migrations"]) == 0
    assert "downtime_s" in res["migrations"].columns
    assert res.metrics["incidents.count"] == 0
    assert "incidents.downtime_s_mean" not in res.metrics  # nothing to aggregate: omitted, not NaN


def test_refuses_non_empty_folder_without_force(tmp_path):
    sc = write_yaml(tmp_path / "s.yaml", base_scenario())
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    r = CliRunner().invoke(app, ["run", str(sc), "--out", str(out), "--quiet"])
    assert r.exit_code == 2
    assert "--force" in r.output
    assert (out / "notes.txt").read_text() == "mine"
    # --force replaces a previous run, never a folder with other files (issue 9: data loss).
    r = CliRunner().invoke(app, ["run", str(sc), "--out", str(out), "--quiet", "--force"])
    assert r.exit_code == 2
    assert "notes.txt" in r.output
    assert (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()
    assert _run(["run", str(sc), "--out", str(out), "--quiet"]).exit_code == 0
    r = _run(["run", str(sc), "--out", str(out), "--quiet", "--force"])
    assert r.exit_code == 0
    assert (out / "summary.json").exists()


def test_trace_writes_events(tmp_path):
    sc = write_yaml(tmp_path / "s.yaml", base_scenario(
        faults=[{"kind": "host_crash", "at": "1h", "target": "east/bd1/h00"}]))
    out = tmp_path / "out"
    assert _run(["run", str(sc), "--out", str(out), "--quiet", "--trace"]).exit_code == 0
    ev = load(out)["events"]
    assert list(ev.columns) == ["time_s", "mechanism", "kind", "subject", "detail"]
    # The crash at 1 h stops web-000 (one VM per host); it restarts after detection 30 s + boot 60 s.
    story = list(ev[["time_s", "mechanism", "kind", "subject"]].itertuples(index=False, name=None))
    assert story == [(3600.0, "faults", "host_crash", "east/bd1/h00"),
                     (3600.0, "infra", "vm_stopped", "web-000"),
                     (3690.0, "default", "restarted", "web-000")]


def test_default_folder_and_latest(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_yaml(tmp_path / "s.yaml", base_scenario())
    assert _run(["run", "s.yaml", "--quiet"]).exit_code == 0
    latest = tmp_path / "results" / "t" / "latest"
    assert latest.is_symlink()
    assert (latest / "summary.json").exists()
    assert load(tmp_path / "results" / "t").summary["scenario"] == "t"


def test_resolved_scenario_reloads_to_the_same_run(tmp_path):
    """scenario.resolved.yaml is a complete scenario: running it gives the same metrics."""
    sc = write_yaml(tmp_path / "s.yaml", base_scenario(
        duration="30d", faults=[{"kind": "host_crash", "mtbf": "20d"}]))
    a, b = tmp_path / "a", tmp_path / "b"
    assert _run(["run", str(sc), "--out", str(a), "--quiet"]).exit_code == 0
    assert _run(["run", str(a / "scenario.resolved.yaml"), "--out", str(b), "--quiet"]).exit_code == 0
    assert load(a).metrics == load(b).metrics


@pytest.mark.parametrize("flag", [["--seed", "5"], ["--set", "seed=5"]])
def test_seed_flag(tmp_path, flag):
    sc = write_yaml(tmp_path / "s.yaml", base_scenario())
    out = tmp_path / "o"
    assert _run(["run", str(sc), "--out", str(out), "--quiet", *flag]).exit_code == 0
    assert load(out).summary["seed"] == 5


def test_recorder_frames_equal_pandas_inference_and_retyping():
    """``to_frame`` builds each column from a numpy array of the schema's dtype; the reference is
    pandas' own path (``from_records`` then ``astype`` per column). Same values, dtypes and index,
    a missing text value included (NaN in both), ints widened to floats, and an empty table."""
    import numpy as np
    import pandas as pd

    from sim.metrics.recorder import _DTYPES, to_frame
    from sim.metrics.tables import table

    schema = table("t", "time_s", "vm:str", "rounds:i8", "kept:bool", "bytes")
    rows = [(0.0, "a", 1, True, 5), (1.5, None, 2, False, 2.5e9), (3, "c", 3, True, float("nan"))]
    ref = pd.DataFrame.from_records(rows, columns=list(schema.names))
    for col, dtype in schema.columns:
        ref[col] = ref[col].astype(_DTYPES[dtype])
    got = to_frame(schema, rows, pd)
    pd.testing.assert_frame_equal(got, ref, check_exact=True)
    assert got["vm"].dtype == object and np.isnan(got["vm"][1])
    assert list(got.dtypes.astype(str)) == ["float64", "object", "int64", "bool", "float64"]
    empty = to_frame(schema, [], pd)
    assert len(empty) == 0 and list(empty.columns) == list(schema.names)
    assert list(empty.dtypes.astype(str)) == ["float64", "object", "int64", "bool", "float64"]
