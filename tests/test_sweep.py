"""Sweeps: design expansion (grid, Latin hypercube), seeds and common random numbers, execution
(sequential = parallel = Dask, bit for bit), resume after a kill, error rows, Student-t columns."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import base_scenario, write_yaml

from sim.experiments.design import Distribution, draw_samples, load_sweep, parse_quantity, run_id
from sim.experiments.execute import run_sweep

ROOT = Path(__file__).resolve().parents[1]


def small_scenario(**extra) -> dict:
    """Eight hosts under host and VM crashes for 20 days: random incidents, ~0.1 s a run."""
    return base_scenario(duration="20d", seed=11, faults=[
        {"kind": "host_crash", "mtbf": "60d", "repair": "4h"}, {"kind": "vm_crash", "mtbf": "30d"}], **extra)


def make_sweep(tmp_path: Path, sweep: dict, scenario: dict | None = None) -> Path:
    write_yaml(tmp_path / "scenario.yaml", scenario or small_scenario())
    return write_yaml(tmp_path / "sweep.yaml", {"name": "t-sweep", "scenario": "scenario.yaml", **sweep})


GRID = {"replications": 2, "grid": {"infrastructure.detection": ["30s", "5m"],
                                    "workloads.0.count": [4, 8]}}


# --------------------------------------------------------------------------- design
def test_grid_full_factorial_ids_and_seeds(tmp_path):
    design = load_sweep(make_sweep(tmp_path, {"replications": 3, "grid": {
        "infrastructure.detection": ["30s", "2m", "5m"], "mechanisms.live_migration.mode": ["precopy", "postcopy"]}}))
    assert len(design.points) == 6 and len(design.runs) == 18
    # the last path varies fastest; resolved values in base units
    assert design.columns["infrastructure.detection"] == [30.0, 30.0, 120.0, 120.0, 300.0, 300.0]
    assert design.columns["mechanisms.live_migration.mode"] == ["precopy", "postcopy"] * 3
    assert [r.run_id for r in design.runs[:4]] == ["p0000-r00", "p0000-r01", "p0000-r02", "p0001-r00"]
    # common random numbers: replication r of every point runs with seed base + r
    assert {(r.replication, r.seed) for r in design.runs} == {(0, 11), (1, 12), (2, 13)}
    assert run_id(7, 2, 10, 3) == "p0007-r02" and run_id(12345, 3, 20000, 120) == "p12345-r003"


def test_latin_hypercube_bounds_and_stratification():
    params = {"a": Distribution("uniform", 10.0, 20.0), "b": Distribution("loguniform", 1.0, 1000.0),
              "c": Distribution("integer", 3, 7), "d": Distribution("choice", options=("x", "y"))}
    n = 40
    pts = draw_samples(params, n, "latin_hypercube", seed=5)
    assert len(pts) == n
    a = np.array([p["a"] for p in pts])
    b = np.array([p["b"] for p in pts])
    assert ((a >= 10) & (a < 20)).all() and ((b >= 1) & (b < 1000)).all()
    # one sample in each of the n equal strata of every parameter (on the unit scale)
    assert sorted(np.floor((a - 10) / 10 * n).astype(int)) == list(range(n))
    assert sorted(np.floor(np.log(b) / np.log(1000) * n).astype(int)) == list(range(n))
    assert {p["c"] for p in pts} == {3, 4, 5, 6, 7} and all(isinstance(p["c"], int) for p in pts)
    assert [p["c"] for p in pts].count(3) == 8  # integer strata are balanced too (40 / 5)
    assert {p["d"] for p in pts} == {"x", "y"}
    assert draw_samples(params, n, "latin_hypercube", seed=5) == pts  # the design is reproducible
    rnd = draw_samples(params, 200, "random", seed=1)
    assert all(10 <= p["a"] < 20 for p in rnd)


def test_sample_ranges_with_units_become_base_units(tmp_path):
    assert parse_quantity("180d") == (180 * 86400.0, "duration")
    assert parse_quantity("800MB/s") == (8e8, "rate")
    assert parse_quantity("16GiB") == (16 * 1024.0**3, "size")
    assert parse_quantity("4/h") == (4 / 3600, "event_rate")
    design = load_sweep(make_sweep(tmp_path, {"samples": {"n": 8, "method": "latin_hypercube", "params": {
        "faults.0.mtbf": {"uniform": ["180d", "5y"]}, "workloads.0.count": {"integer": [2, 9]}}}}))
    mtbf = design.columns["faults.0.mtbf"]
    assert len(design.points) == 8
    assert all(180 * 86400 <= v < 5 * 365 * 86400 for v in mtbf)
    assert len(set(np.floor((np.array(mtbf) - 180 * 86400) / (5 * 365 * 86400 - 180 * 86400) * 8))) == 8


def test_grid_crossed_with_samples(tmp_path):
    design = load_sweep(make_sweep(tmp_path, {"grid": {"workloads.0.count": [4, 8]}, "samples": {
        "n": 3, "params": {"infrastructure.detection": {"uniform": ["10s", "1m"]}}}}))
    assert len(design.points) == 6
    assert design.columns["workloads.0.count"] == [4, 4, 4, 8, 8, 8]
    det = design.columns["infrastructure.detection"]
    assert det[:3] == det[3:]  # the same samples under every grid point


# --------------------------------------------------------------------------- execution
@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seq")
    design = load_sweep(make_sweep(tmp, GRID))
    return design, run_sweep(design, tmp / "out", workers=1)


def _files_equal(a: Path, b: Path, run: str) -> None:
    for name in ("incidents", "faults", "restarts", "placements", "levels"):
        pd.testing.assert_frame_equal(pd.read_parquet(a / "runs" / run / f"{name}.parquet"),
                                      pd.read_parquet(b / "runs" / run / f"{name}.parquet"))


def test_sweep_folder_and_tables(sequential):
    design, res = sequential
    runs = pd.read_parquet(res.path / "runs.parquet")
    assert list(runs.columns[:8]) == ["run_id", "point_id", "replication", "seed", "status", "error",
                                      "infrastructure.detection", "workloads.0.count"]
    assert list(runs["run_id"]) == sorted(runs["run_id"]) and len(runs) == 8
    assert (runs["status"] == "ok").all() and "vm.availability" in runs.columns
    assert all((res.path / "runs" / r / "summary.json").is_file() for r in runs["run_id"])
    points = pd.read_parquet(res.path / "points.parquet")
    assert list(points.columns[:3]) == ["point_id", "infrastructure.detection", "workloads.0.count"]
    for suffix in ("mean", "std", "ci95_low", "ci95_high", "n"):
        assert f"incidents.count_{suffix}" in points.columns
    assert (res.path / "sweep.json").is_file()


def test_common_random_numbers(sequential):
    """Detection time does not touch the failure streams: replication r of both detection points
    sees the same host crashes at the same times."""
    _, res = sequential
    a = pd.read_parquet(res.path / "runs" / "p0001-r01" / "faults.parquet")  # detection 30s, 8 VMs
    b = pd.read_parquet(res.path / "runs" / "p0003-r01" / "faults.parquet")  # detection 5m, 8 VMs
    assert len(a) > 0
    pd.testing.assert_frame_equal(a, b)
    other = pd.read_parquet(res.path / "runs" / "p0001-r00" / "faults.parquet")
    assert not other.equals(a)  # another replication, another seed


def test_parallel_equals_sequential(sequential, tmp_path):
    design, seq = sequential
    par = run_sweep(design, tmp_path / "par", workers=2)
    pd.testing.assert_frame_equal(pd.read_parquet(seq.path / "runs.parquet"), pd.read_parquet(par.path / "runs.parquet"))
    pd.testing.assert_frame_equal(pd.read_parquet(seq.path / "points.parquet"),
                                  pd.read_parquet(par.path / "points.parquet"))
    _files_equal(seq.path, par.path, "p0002-r01")


def test_dask_equals_local(sequential, tmp_path):
    """A LocalCluster (in-process, one worker: light) writes the same tables; an address (the
    remote path, tables sent back to the client) too."""
    from distributed import LocalCluster

    design, seq = sequential
    local = run_sweep(design, tmp_path / "dask", scheduler="local",
                      dask_options={"processes": False, "n_workers": 1})
    pd.testing.assert_frame_equal(pd.read_parquet(seq.path / "runs.parquet"),
                                  pd.read_parquet(local.path / "runs.parquet"))
    with LocalCluster(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster:
        remote = run_sweep(design, tmp_path / "remote", scheduler=cluster.scheduler_address)
    pd.testing.assert_frame_equal(pd.read_parquet(seq.path / "runs.parquet"),
                                  pd.read_parquet(remote.path / "runs.parquet"))
    pd.testing.assert_frame_equal(pd.read_parquet(seq.path / "points.parquet"),
                                  pd.read_parquet(remote.path / "points.parquet"))
    _files_equal(seq.path, remote.path, "p0003-r00")


def test_resume_after_kill_matches_uninterrupted(tmp_path):
    sweep = make_sweep(tmp_path, {"replications": 4, "grid": {"infrastructure.detection": ["30s", "1m", "2m",
                                                                                           "5m"]}})
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "sim.cli", "sweep", str(sweep), "--out", str(out),
                             "--workers", "1", "--quiet"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(out.glob("runs/*/summary.json"))) < 3:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(out.glob("runs/*/summary.json")))
    assert 3 <= done < 16, done
    design = load_sweep(sweep)
    resumed = run_sweep(design, out, workers=1, resume=True)
    assert resumed.ran == 16 - done
    whole = run_sweep(design, tmp_path / "whole", workers=1)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "runs.parquet"), pd.read_parquet(whole.path / "runs.parquet"))
    pd.testing.assert_frame_equal(pd.read_parquet(out / "points.parquet"),
                                  pd.read_parquet(whole.path / "points.parquet"))
    # without --resume the folder is refused; with it and nothing left, nothing runs
    from sim.core.errors import InputError

    with pytest.raises(InputError):
        run_sweep(design, out, workers=1)
    assert run_sweep(design, out, workers=1, resume=True).ran == 0


def test_resume_refuses_another_design(tmp_path, sequential):
    design, seq = sequential
    other = load_sweep(make_sweep(tmp_path, {"grid": {"workloads.0.count": [4, 6]}}))
    from sim.core.errors import InputError

    with pytest.raises(InputError, match="different"):
        run_sweep(other, seq.path, workers=1, resume=True)


def test_a_run_that_raises_is_an_error_row(tmp_path, monkeypatch):
    import sim.runner

    real = sim.runner.run_scenario

    def flaky(scenario, **kw):
        if scenario.seed == 12 and scenario.workloads[0].count == 8:
            raise RuntimeError("disk on fire\nsecond line")
        return real(scenario, **kw)

    monkeypatch.setattr(sim.runner, "run_scenario", flaky)
    design = load_sweep(make_sweep(tmp_path, {"replications": 3, "grid": {"workloads.0.count": [4, 8]}}))
    res = run_sweep(design, tmp_path / "out", workers=1)
    runs = res.runs.set_index("run_id")
    assert runs.loc["p0001-r01", "status"] == "error"
    assert runs.loc["p0001-r01", "error"] == "RuntimeError: disk on fire second line"
    assert math.isnan(runs.loc["p0001-r01", "incidents.count"])
    assert (runs.drop("p0001-r01")["status"] == "ok").all()
    assert not (res.path / "runs" / "p0001-r01" / "summary.json").exists()
    pts = res.points.set_index("point_id")
    assert pts.loc["p0001", "incidents.count_n"] == 2 and pts.loc["p0000", "incidents.count_n"] == 3
    # a placement that cannot fit is an error row too (found when the run is built)
    monkeypatch.setattr(sim.runner, "run_scenario", real)
    design = load_sweep(make_sweep(tmp_path, {"grid": {"workloads.0.count": [4, 2000]}}))
    res = run_sweep(design, tmp_path / "out2", workers=1)
    assert list(res.runs["status"]) == ["ok", "error"] and "InputError" in res.runs["error"].iloc[1]


def test_confidence_interval_columns_by_hand(sequential):
    _, res = sequential
    runs, points = res.runs, res.points.set_index("point_id")
    for metric in ("incidents.count", "vm.downtime_s_total"):
        x = runs.loc[runs["point_id"] == "p0001", metric].to_numpy()
        n = len(x)
        mean = sum(x) / n
        std = math.sqrt(sum((v - mean) ** 2 for v in x) / (n - 1))
        half = 12.706204736174698 * std / math.sqrt(n)  # t(0.975, df=1), from tables
        assert points.loc["p0001", f"{metric}_n"] == n == 2
        assert points.loc["p0001", f"{metric}_mean"] == pytest.approx(mean)
        assert points.loc["p0001", f"{metric}_std"] == pytest.approx(std)
        assert points.loc["p0001", f"{metric}_ci95_low"] == pytest.approx(mean - half)
        assert points.loc["p0001", f"{metric}_ci95_high"] == pytest.approx(mean + half)


def test_t_interval_three_values():
    from sim.experiments.stats import t_interval

    x = np.array([3.0, 5.0, 10.0])
    low, high = t_interval(np.array([x.mean()]), np.array([x.std(ddof=1)]), np.array([3]))
    half = 4.302652729911275 * x.std(ddof=1) / math.sqrt(3)  # t(0.975, df=2)
    assert low[0] == pytest.approx(6 - half) and high[0] == pytest.approx(6 + half)
    low, high = t_interval(np.array([2.0, 2.0]), np.array([0.0, np.nan]), np.array([4, 1]))
    assert (low[0], high[0]) == (2.0, 2.0) and math.isnan(low[1])


def test_load_sweep_for_notebooks(sequential):
    from sim.results import load_sweep as load

    _, res = sequential
    sw = load(res.path)
    assert sw.paths == ["infrastructure.detection", "workloads.0.count"]
    assert "vm.availability" in sw.metrics and set(sw) >= {"runs", "points"}
    summary = json.loads((res.path / "runs" / "p0000-r00" / "summary.json").read_text())
    assert sw.run("p0000-r00").metrics == summary["metrics"]
    assert sw["runs"].set_index("run_id").loc["p0000-r00", "vm.availability"] == summary["metrics"]["vm.availability"]


def test_shipped_sweeps_expand():
    for path in sorted((ROOT / "scenarios" / "sweeps").glob("*.yaml")):
        design = load_sweep(path)
        assert design.runs, path
