"""Issue 12 §5, honest experiments: resuming is tied to the code that made the runs, and a metric
whose replications are all equal gets no interval that looks certain (counts of nothing get the
rule of three)."""

from __future__ import annotations

import hashlib
import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import base_scenario, write_yaml
from typer.testing import CliRunner

from sim.cli import app
from sim.experiments.stats import ALL_EQUAL, NO_EVENTS, is_count, paired_table, points_table
from sim.results import code_fingerprint, tree_sha256


# --------------------------------------------------------------------------- zero variance, rule of three
def _runs(values: dict[str, list[float]], point: str = "p0000") -> pd.DataFrame:
    n = len(next(iter(values.values())))
    return pd.DataFrame({"run_id": [f"{point}-r{i:02d}" for i in range(n)], "point_id": point, "replication": range(n),
                         "seed": range(n), "status": "ok", "error": "", **values})


def test_points_flag_equal_values_and_bound_counts_of_nothing():
    """Ten runs of one point.

    - ``faults.count`` 0 in all ten: no events; rule of three gives [0, 3/10] = [0, 0.3].
    - ``vm.availability`` 1.0 in all ten: all equal; no interval (NaN), not [1, 1].
    - ``incidents.downtime_s_total`` 0 in all ten: all equal but not a count (seconds): NaN.
    - ``migration.count`` 1..10: mean 5.5, s² = Σ(k − 5.5)²/9 = 82.5/9, t(0.975, 9) = 2.262157
      (tables), half-width 2.262157·√(82.5/9)/√10 = 2.16585: [3.33415, 7.66585], no flag.
    """
    runs = _runs({"faults.count": [0.0] * 10, "vm.availability": [1.0] * 10,
                  "incidents.downtime_s_total": [0.0] * 10, "migration.count": [float(k) for k in range(1, 11)]})
    metrics = ["faults.count", "vm.availability", "incidents.downtime_s_total", "migration.count"]
    pts = points_table(runs, [], metrics, pd.DataFrame({"point_id": ["p0000"]})).iloc[0]
    assert pts["faults.count_flag"] == NO_EVENTS
    assert pts["faults.count_ci95_low"] == 0.0 and pts["faults.count_ci95_high"] == pytest.approx(0.3)
    for m in ("vm.availability", "incidents.downtime_s_total"):
        assert pts[f"{m}_flag"] == ALL_EQUAL
        assert math.isnan(pts[f"{m}_ci95_low"]) and math.isnan(pts[f"{m}_ci95_high"])
    half = 2.262157 * math.sqrt(82.5 / 9) / math.sqrt(10)
    assert pts["migration.count_flag"] == ""
    assert pts["migration.count_ci95_low"] == pytest.approx(5.5 - half, rel=1e-6)
    assert pts["migration.count_ci95_high"] == pytest.approx(5.5 + half, rel=1e-6)


def test_rule_of_three_is_the_95_percent_poisson_bound():
    """With 0 events in n runs, a per-run rate λ = 3/n would give that outcome with probability
    e^(−3) = 0.0498 < 5 %, so 3/n bounds λ at 95 %; one run: [0, 3]."""
    pts = points_table(_runs({"operations.failed": [0.0]}), [], ["operations.failed"],
                       pd.DataFrame({"point_id": ["p0000"]})).iloc[0]
    assert pts["operations.failed_flag"] == NO_EVENTS and pts["operations.failed_ci95_high"] == 3.0
    assert math.exp(-3.0) < 0.05 < math.exp(-2.9)


def test_is_count_reads_the_metric_names():
    assert all(map(is_count, ["faults.count", "migration.failed", "sessions.n_to_k.dropped", "replication.lost"]))
    assert not any(map(is_count, ["vm.availability", "incidents.downtime_s_total", "migration.downtime_s_p95",
                                  "migration.bytes_total", "restarts.waited_s_mean"]))


def test_compare_flags_equal_differences_and_no_events():
    """Four seeds. ``faults.count`` 0 on both sides: no_events. ``hosts.count`` 8 on both sides:
    every difference 0, all_equal. ``x.count`` differs by 1, 2, 3, 4: a real interval
    2.5 ± t(0.975, 3)·s/2 with s² = 5/3, t = 3.182446: [0.4457, 4.5543]."""
    a = pd.DataFrame({"faults.count": [0.0] * 4, "hosts.count": [8.0] * 4, "x.count": [0.0] * 4})
    b = pd.DataFrame({"faults.count": [0.0] * 4, "hosts.count": [8.0] * 4, "x.count": [1.0, 2.0, 3.0, 4.0]})
    t = paired_table(a, b, ["faults.count", "hosts.count", "x.count"]).set_index("metric")
    assert t.loc["faults.count", "flag"] == NO_EVENTS and math.isnan(t.loc["faults.count", "diff_ci95_low"])
    assert t.loc["hosts.count", "flag"] == ALL_EQUAL and math.isnan(t.loc["hosts.count", "diff_ci95_high"])
    half = 3.182446 * math.sqrt(5 / 3) / 2
    assert t.loc["x.count", "flag"] == ""
    assert t.loc["x.count", "diff_ci95_low"] == pytest.approx(2.5 - half, rel=1e-6)


# --------------------------------------------------------------------------- code fingerprint
def test_tree_hash_is_sha256_of_paths_and_bytes(tmp_path):
    """Computed by hand over two files (sorted by path, each ``path NUL bytes NUL``); changing one
    byte or adding a file changes it; __pycache__ does not count."""
    (tmp_path / "b").mkdir()
    (tmp_path / "a.py").write_bytes(b"x = 1\n")
    (tmp_path / "b" / "c.py").write_bytes(b"y = 2\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "z.py").write_bytes(b"ignored")
    expected = hashlib.sha256(b"a.py\0x = 1\n\0b/c.py\0y = 2\n\0").hexdigest()
    assert tree_sha256(tmp_path) == expected
    (tmp_path / "a.py").write_bytes(b"x = 2\n")
    assert tree_sha256(tmp_path) != expected


@pytest.fixture
def sweep_folder(tmp_path):
    write_yaml(tmp_path / "s.yaml", base_scenario(duration="2d"))
    sweep = write_yaml(tmp_path / "sweep.yaml", {"name": "fp", "scenario": "s.yaml", "replications": 2})
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["sweep", str(sweep), "--out", str(out), "--workers", "1", "--quiet"])
    assert r.exit_code == 0, r.output
    return sweep, out


def test_sweep_and_runs_record_the_same_code_fingerprint(sweep_folder):
    _, out = sweep_folder
    code = code_fingerprint()
    assert json.loads((out / "sweep.json").read_text())["code"] == code
    for run in ("p0000-r00", "p0000-r01"):
        assert json.loads((out / "runs" / run / "summary.json").read_text())["code"] == code
    import sim

    assert code["version"] == sim.__version__


@pytest.mark.parametrize("old", ["other", "missing"])
def test_resume_after_a_code_change_is_refused_unless_allowed(sweep_folder, old):
    """The folder's sweep.json says other code made it (another hash, or none: an older dcsim):
    --resume is refused naming both; --allow-code-change resumes (nothing left to run)."""
    sweep, out = sweep_folder
    info = json.loads((out / "sweep.json").read_text())
    if old == "other":
        info["code"] = {"version": "0.0.9", "sim_sha256": "ab" * 32}
        was = "dcsim 0.0.9, sim/ abababababab"
    else:
        del info["code"]
        was = "unknown code (no fingerprint)"
    (out / "sweep.json").write_text(json.dumps(info))
    shutil.rmtree(out / "runs" / "p0000-r01")
    now = code_fingerprint()
    r = CliRunner().invoke(app, ["sweep", str(sweep), "--out", str(out), "--resume", "--workers", "1", "--quiet"])
    assert r.exit_code == 2
    assert r.stderr.strip() == (f"{out}: expected the code that made this folder ({was}), got dcsim {now['version']}, "
                                f"sim/ {now['sim_sha256'][:12]}: the code changed, so kept and new runs could "
                                "differ; use a new --out, or --allow-code-change to mix them")
    assert not (out / "runs" / "p0000-r01").exists()
    r = CliRunner().invoke(app, ["sweep", str(sweep), "--out", str(out), "--resume", "--allow-code-change",
                                 "--workers", "1", "--quiet"])
    assert r.exit_code == 0, r.output
    assert len(pd.read_parquet(out / "runs.parquet")) == 2
    assert (out / "runs" / "p0000-r01" / "summary.json").is_file()


def test_corrupt_sweep_json_says_corrupt(sweep_folder):
    sweep, out = sweep_folder
    (out / "sweep.json").write_text("{not json")
    r = CliRunner().invoke(app, ["sweep", str(sweep), "--out", str(out), "--resume", "--workers", "1", "--quiet"])
    assert r.exit_code == 2
    assert r.stderr.strip() == (f"{out / 'sweep.json'}: expected the sweep's description, got a corrupt file "
                                "(not JSON); use a new --out")


def test_no_flag_when_values_vary():
    runs = _runs({"faults.count": [0.0, 1.0, 0.0]})
    pts = points_table(runs, [], ["faults.count"], pd.DataFrame({"point_id": ["p0000"]})).iloc[0]
    assert pts["faults.count_flag"] == "" and pts["faults.count_ci95_low"] < 0 < pts["faults.count_ci95_high"]
    assert np.isfinite(pts["faults.count_ci95_high"])
