"""Issue 18: the experiment commands under hostile input. Each case is the reproducer as the issue
gives it; each ends in exit 2 with one line naming what is wrong (or exit 0 with warnings where
the rest can still be used), never a traceback, and before any run where it can be known."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
from pathlib import Path

import pandas as pd
import pytest
from conftest import base_scenario, write_yaml
from typer.testing import CliRunner

from sim.cli import app


def cli(*args):
    r = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    return r


def one_line(r) -> str:
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1, (r.exit_code, r.stderr)
    return lines[0]


@pytest.fixture
def scenario(tmp_path):
    return write_yaml(tmp_path / "s.yaml", base_scenario(duration="2d", faults=[
        {"kind": "host_crash", "mtbf": "60d", "repair": "4h"}]))


def sweep_file(tmp_path, **body) -> Path:
    return write_yaml(tmp_path / "sweep.yaml", {"name": "h", "scenario": "s.yaml", **body})


def refused_before_any_run(tmp_path, r) -> str:
    line = one_line(r)
    assert not list(tmp_path.rglob("summary.json")), "a run started"
    return line


# --------------------------------------------------------------------------- seeds and caps
def test_seed_beyond_64_bits_in_a_sweep(tmp_path, scenario):
    """2^63 = 9,223,372,036,854,775,808 is one past int64; before: every run ran, then OverflowError."""
    sw = sweep_file(tmp_path, set={"seed": 2**63}, replications=2)
    line = refused_before_any_run(tmp_path, cli("sweep", sw, "--out", tmp_path / "o", "--workers", "1", "--quiet"))
    assert line == (f"{sw}: set.seed: expected a seed of at most 9,223,372,036,854,775,806 (replication r runs with "
                    "seed + r, a 64-bit integer; 2 replications), got 9,223,372,036,854,775,808")


def test_compare_seed_at_the_top_of_int64(tmp_path, scenario):
    """Seed 2^63 − 1 with R = 2 makes seed 2^63 for replication 1: refused on --seed."""
    r = cli("compare", scenario, "--set", "workloads.0.count=4", "--seed", "9223372036854775807", "--replications", "2",
            "--out", tmp_path / "o", "--workers", "1", "--quiet")
    assert refused_before_any_run(tmp_path, r) == (
        "--seed: expected a seed of at most 9,223,372,036,854,775,806 (replication r runs with seed + r, a 64-bit "
        "integer; 2 replications), got 9,223,372,036,854,775,807")


def test_compare_set_seed_is_refused(tmp_path, scenario):
    """Before: every run ran, then duplicate ``seed`` columns crashed the table."""
    r = cli("compare", scenario, "--set", "seed=5", "--replications", "1", "--out", tmp_path / "o", "--quiet")
    assert refused_before_any_run(tmp_path, r) == (
        "--set: seed: expected a path other than the seed (both sides run on the same seeds; use --seed N for the "
        "base seed), got seed=5")


def test_grid_cap_checked_from_the_product_of_axis_sizes(tmp_path, scenario):
    """8 paths x 10 values = 10^8 points: refused from the sizes, without building the points."""
    paths = ["infrastructure.detection", "faults.0.mtbf", "faults.0.repair", "workloads.0.count",
             "workloads.0.vm.vcpus", "workloads.0.vm.boot_time", "workloads.0.vm.dirty_rate", "duration"]
    sw = sweep_file(tmp_path, grid={p: [f"{k}" for k in range(1, 11)] for p in paths})
    line = refused_before_any_run(tmp_path, cli("sweep", sw, "--out", tmp_path / "o", "--quiet"))
    assert line == (f"{sw}: expected at most 1,000,000 runs (points x replications; set DCSIM_MAX_SWEEP_RUNS to "
                    "raise the limit), got 100,000,000 (10 x 10 x 10 x 10 x 10 x 10 x 10 x 10 points x 1 replication)")


def test_samples_cap_checked_before_drawing(tmp_path, scenario, monkeypatch):
    import sim.experiments.design as design

    monkeypatch.setattr(design, "draw_samples", lambda *a, **k: pytest.fail("drew 10^9 samples"))
    sw = sweep_file(tmp_path, samples={"n": 10**9, "params": {"faults.0.mtbf": {"uniform": ["30d", "90d"]}}})
    line = refused_before_any_run(tmp_path, cli("sweep", sw, "--out", tmp_path / "o", "--quiet"))
    assert "got 1,000,000,000 (1,000,000,000 points x 1 replication)" in line


def test_compare_replications_capped(tmp_path, scenario):
    """R = 10^9 is 2 x 10^9 runs; before, 2,000,002 runs started for R = 1,000,001."""
    r = cli("compare", scenario, "--set", "workloads.0.count=4", "--replications", "1000001", "--quiet")
    assert refused_before_any_run(tmp_path, r) == (
        "--replications: expected at most 500,000 (two runs per seed; set DCSIM_MAX_SWEEP_RUNS to raise the limit "
        "of 1,000,000 runs), got 1,000,001")


@pytest.mark.parametrize(("args", "expected"), [
    (["sweep", "SWEEP", "--workers", "abc"], '--workers: expected an integer of at least 1, got "abc"'),
    (["compare", "SC", "--set", "duration=1d", "--replications", "1e9"],
     '--replications: expected an integer of at least 1, got "1e9"'),
    (["compare", "SC", "--set", "duration=1d", "--workers", "0"], "--workers: expected an integer of at least 1, got 0"),
    (["bench", "--hosts", "abc"], '--hosts: expected an integer of at least 1, got "abc"'),
    (["sweep", "SWEEP", "--connect-timeout", "soon"],
     '--connect-timeout: expected seconds above 0 and at most a day, like 5 or 30s, got "soon"'),
])
def test_counts_echo_the_value(tmp_path, scenario, args, expected):
    sw = sweep_file(tmp_path)
    args = [str(sw) if a == "SWEEP" else str(scenario) if a == "SC" else a for a in args]
    assert one_line(cli(*args, "--quiet")) == expected


# --------------------------------------------------------------------------- schedulers
def _server(answer: bytes | None):
    """A TCP server on a free port that answers every connection with ``answer`` (None: never)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    held = []

    def serve():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            held.append(conn)
            if answer is not None:
                conn.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    return srv, srv.getsockname()[1]


@pytest.mark.parametrize(("answer", "why"), [
    (b"\xff" * 64, "not a Dask scheduler: its first bytes are not a Dask handshake"),
    (b"HTTP/1.1 200 OK\r\n\r\n", "not a Dask scheduler: its first bytes are not a Dask handshake"),
    (None, "no answer within 0.5 s"),
])
def test_scheduler_that_answers_garbage_or_nothing(tmp_path, scenario, answer, why):
    srv, port = _server(answer)
    try:
        r = cli("sweep", sweep_file(tmp_path), "--out", tmp_path / "o", "--scheduler", f"tcp://127.0.0.1:{port}",
                "--connect-timeout", "0.5", "--quiet")
    finally:
        srv.close()
    assert refused_before_any_run(tmp_path, r) == (
        f'--scheduler: expected the address of a running Dask scheduler like tcp://HOST:8786 or local, got '
        f'"tcp://127.0.0.1:{port}" ({why})')
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------- accepted nonsense
@pytest.mark.parametrize(("path", "bounds", "expected"), [
    ("faults.0.mtbf", ["1GiB", "2GiB"], 'expected a duration like "30s", got "1GiB"'),
    ("infrastructure.detection", ["1Gbps", "2Gbps"], 'expected a duration like "30s", got "1Gbps"'),
    ("workloads.0.vm.memory", ["1h", "2h"], 'expected a size like "16GiB", got "1h"'),
])
def test_sample_bounds_of_another_dimension(tmp_path, scenario, path, bounds, expected):
    sw = sweep_file(tmp_path, samples={"n": 2, "params": {path: {"uniform": bounds}}})
    r = cli("sweep", sw, "--out", tmp_path / "o", "--quiet")
    assert r.exit_code == 2
    assert r.stderr.splitlines()[0] == (f"{sw}: samples.params.{path}.uniform.0: {expected} (a bound of {path}: its "
                                        "unit must suit the path)")


def test_set_value_an_axis_would_replace(tmp_path, scenario):
    sw = sweep_file(tmp_path, set={"faults.0.mtbf": "2y"}, grid={"faults.0.mtbf": ["30d", "60d"]})
    assert one_line(cli("sweep", sw, "--out", tmp_path / "o", "--quiet")) == (
        f'{sw}: set.faults.0.mtbf: expected a path the sweep does not vary (grid.faults.0.mtbf replaces its value at '
        'every point), got "faults.0.mtbf"')


def test_two_axes_over_one_path(tmp_path, scenario):
    sw = sweep_file(tmp_path, grid={"faults.0.mtbf": ["30d"], "faults.00.mtbf": ["60d"]})
    assert one_line(cli("sweep", sw, "--out", tmp_path / "o", "--quiet")) == (
        f'{sw}: grid.faults.00.mtbf: expected one axis per path, got "faults.00.mtbf" over the same path as '
        'grid.faults.0.mtbf')
    sw = sweep_file(tmp_path, grid={"workloads.0.vm": [{"vcpus": 2, "memory": "4GiB", "disk": "10GiB"}]},
                    samples={"n": 2, "params": {"workloads.0.vm.vcpus": {"integer": [1, 4]}}})
    assert one_line(cli("sweep", sw, "--out", tmp_path / "o", "--quiet")) == (
        f'{sw}: samples.params.workloads.0.vm.vcpus: expected one axis per path, got "workloads.0.vm.vcpus" over the '
        'same path as grid.workloads.0.vm')


def test_compare_that_changes_nothing_warns(tmp_path, scenario):
    """``duration=2d`` is the file's own value: B = A, every difference 0."""
    r = cli("compare", scenario, "--set", "duration=2d", "--replications", "1", "--out", tmp_path / "o",
            "--workers", "1", "--quiet")
    assert r.exit_code == 0
    assert r.stderr.strip() == (f"warning: --set: duration=2d changes nothing in {scenario} (B = A): every difference "
                                "will be 0")
    r = cli("compare", scenario, "--set", "duration=1d", "--replications", "1", "--out", tmp_path / "o2",
            "--workers", "1", "--quiet")
    assert r.exit_code == 0 and "warning" not in r.stderr


# --------------------------------------------------------------------------- damaged report folders
@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("damaged")
    sc = write_yaml(tmp / "s.yaml", base_scenario(duration="2d", faults=[
        {"kind": "host_crash", "mtbf": "5d", "repair": "4h"}]))
    assert cli("run", sc, "--out", tmp / "run", "--quiet").exit_code == 0
    assert cli("compare", sc, "--set", "workloads.0.count=4", "--replications", "2", "--out", tmp / "cmp",
               "--workers", "1", "--quiet").exit_code == 0
    return tmp


def _garbage(p: Path) -> None:
    p.write_bytes(b"PAR1 this is not parquet")


def _drop_column(p: Path, col: str) -> None:
    pd.read_parquet(p).drop(columns=[col]).to_parquet(p)


RUN_DAMAGE = {
    # name: (damage, "exit 2" line start | warning fragment)
    "summary_not_json": (lambda d: (d / "summary.json").write_text("{oops"), "summary.json: expected a run's summary"),
    "summary_empty": (lambda d: (d / "summary.json").write_text(""), "summary.json: expected a run's summary"),
    "summary_a_list": (lambda d: (d / "summary.json").write_text("[1, 2]"), "summary.json: expected a run's summary"),
    "summary_a_string": (lambda d: (d / "summary.json").write_text('"x"'), "summary.json: expected a run's summary"),
    "metrics_not_a_mapping": (lambda d: _edit(d, lambda s: s.update(metrics=[1])), "metrics: expected a mapping"),
    "metric_not_a_number": (lambda d: _edit(d, lambda s: s["metrics"].update({"faults.count": "many"})),
                            'metrics.faults.count: expected a number, got "many"'),
    "metric_null": (lambda d: _edit(d, lambda s: s["metrics"].update({"vm.availability": None})),
                    "metrics.vm.availability: expected a number, got nothing"),
    "incidents_empty_file": (lambda d: (d / "incidents.parquet").write_bytes(b""), "incidents.parquet: expected"),
    "incidents_garbage": (lambda d: _garbage(d / "incidents.parquet"), "incidents.parquet: expected"),
    "incidents_missing_column": (lambda d: _drop_column(d / "incidents.parquet", "downtime_s"),
                                 "got a table without the column downtime_s"),
    "levels_garbage": (lambda d: _garbage(d / "levels.parquet"), "levels.parquet: expected"),
    "faults_missing_column": (lambda d: _drop_column(d / "faults.parquet", "kind"), "faults.parquet: expected"),
    "table_is_a_folder": (lambda d: ((d / "faults.parquet").unlink(), (d / "faults.parquet").mkdir()),
                          "faults.parquet: expected a faults table, got something that is not a file"),
}
SWEEP_DAMAGE = {
    "runs_empty": (lambda d: (d / "runs.parquet").write_bytes(b""), "runs.parquet: expected the sweep's runs table"),
    "runs_garbage": (lambda d: _garbage(d / "runs.parquet"), "runs.parquet: expected the sweep's runs table"),
    "runs_missing_status": (lambda d: _drop_column(d / "runs.parquet", "status"),
                            "runs.parquet: expected the sweep's runs table, got a table without the column status"),
    "runs_metric_strings": (lambda d: _retype(d / "runs.parquet", "faults.count"),
                            "runs.parquet: faults.count: expected a metric (numbers)"),
    "points_garbage": (lambda d: _garbage(d / "points.parquet"), "points.parquet: expected a points table"),
    "points_missing_id": (lambda d: _drop_column(d / "points.parquet", "point_id"), "points.parquet: expected"),
    "compare_garbage": (lambda d: _garbage(d / "compare.parquet"), "compare.parquet: expected a compare table"),
    "sweep_json_garbage": (lambda d: (d / "sweep.json").write_text("{"), "sweep.json: expected the sweep's"),
    "sweep_json_a_list": (lambda d: (d / "sweep.json").write_text("[]"), "sweep.json: expected the sweep's"),
}


def _edit(d: Path, change) -> None:
    s = json.loads((d / "summary.json").read_text())
    change(s)
    (d / "summary.json").write_text(json.dumps(s))


def _retype(p: Path, col: str) -> None:
    df = pd.read_parquet(p)
    df[col] = df[col].astype(str)
    df.to_parquet(p)


def _files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*"))
            if p.is_file() and "report" not in p.relative_to(d).parts}


@pytest.mark.parametrize("case", [*RUN_DAMAGE, *SWEEP_DAMAGE])
def test_report_on_a_damaged_folder(tmp_path, folders, case):
    """22 damages. A run folder without a readable summary, or a sweep without a readable runs
    table, is exit 2 naming the file; any other damaged file is skipped with a warning naming it
    and the report of the rest is written. The folder's own files are never changed."""
    source = folders / ("run" if case in RUN_DAMAGE else "cmp")
    damage, fragment = (RUN_DAMAGE | SWEEP_DAMAGE)[case]
    d = tmp_path / "d"
    shutil.copytree(source, d)
    damage(d)
    before = _files(d)
    r = cli("report", d, "--quiet")
    assert _files(d) == before
    if r.exit_code == 2:
        line = one_line(r)
        assert line.startswith(str(d)) and fragment in line, line
        fatal = {"summary_not_json", "summary_empty", "summary_a_list", "summary_a_string", "runs_empty",
                 "runs_garbage", "runs_missing_status"}
        assert case in fatal, line
    else:
        assert r.exit_code == 0, r.output
        warnings = r.stderr.strip().splitlines()
        assert warnings and all(w.startswith(f"warning: {d}") for w in warnings), r.stderr
        assert any(fragment in w for w in warnings), r.stderr
        assert (d / "report" / "report.html").stat().st_size > 0
    assert os.path.isdir(d)


# --------------------------------------------------------------------------- large grids
def _design(tmp_path, grid, samples=None):
    from sim.experiments.design import load_sweep

    body = {"grid": grid} | ({"samples": samples} if samples else {})
    return load_sweep(sweep_file(tmp_path, **body))


def test_large_designs_are_checked_by_axes_with_the_same_result(tmp_path, scenario, monkeypatch):
    """The same design checked point by point and by axes (the threshold set to 0): the same
    points, runs, seeds and resolved columns."""
    import sim.experiments.design as design

    grid = {"infrastructure.detection": ["30s", "1m", "2m"], "workloads.0.count": [2, 4, 8],
            "mechanisms.live_migration.mode": ["precopy", "postcopy"]}
    samples = {"n": 60, "params": {"faults.0.mtbf": {"uniform": ["30d", "1y"]}}}
    full = _design(tmp_path, grid, samples)
    monkeypatch.setattr(design, "FULL_CHECK_POINTS", 0)
    fast = _design(tmp_path, grid, samples)
    assert fast.points == full.points and fast.runs == full.runs
    assert fast.columns == full.columns
    assert len(fast.points) == 3 * 3 * 2 * 60


def test_large_design_reports_a_bad_value_and_a_bad_pair(tmp_path, scenario, monkeypatch):
    """A value bad alone (vcpus 0) and a pair bad together (33 vCPUs on 32-core hosts; 33 is fine
    with 64 cores, though the base scenario has 32): each named once, at the first whole point
    that shows it. Grid order: cores (2) x vcpus (3) x count (200), the last fastest, so point
    200 is (32, 0, 1) and point 400 is (32, 33, 1); no point with 64 cores is named."""
    import sim.experiments.design as design
    from sim.core.errors import InputError

    monkeypatch.setattr(design, "FULL_CHECK_POINTS", 100)
    grid = {"infrastructure.host_profiles.std.cores": [32, 64], "workloads.0.vm.vcpus": [4, 0, 33],
            "workloads.0.count": list(range(1, 201))}
    with pytest.raises(InputError) as err:
        _design(tmp_path, grid)
    sw = tmp_path / "sweep.yaml"
    assert err.value.lines() == [
        f"{sw}: grid.workloads.0.vm.vcpus: expected an integer of at least 1, got 0 (at point p0200: "
        "infrastructure.host_profiles.std.cores=32, workloads.0.vm.vcpus=0, workloads.0.count=1)",
        f"{sw}: grid.workloads.0.vm.vcpus: expected at most 32 vCPUs (the most cores of any host its placement "
        "allows), got 33 (at point p0400: infrastructure.host_profiles.std.cores=32, workloads.0.vm.vcpus=33, "
        "workloads.0.count=1)"]
    # only 64-core hosts: 33 vCPUs fit everywhere, though the base scenario's hosts have 32 cores
    grid["infrastructure.host_profiles.std.cores"] = [64]
    grid["workloads.0.vm.vcpus"] = [4, 33]
    assert len(_design(tmp_path, grid).points) == 400


def test_twenty_thousand_points_validate_by_axes(tmp_path, scenario, monkeypatch):
    """20,000 points (10 x 10 x 10 x 20) are checked with 50 single values and 900 pairs, not
    20,000 validations: count the validations."""
    import sim.experiments.design as design
    import sim.scenario.loader as loader

    calls = []
    real = loader.validate_scenario
    monkeypatch.setattr(loader, "validate_scenario", lambda *a, **k: calls.append(1) or real(*a, **k))
    grid = {"faults.0.mtbf": [f"{k}y" for k in range(1, 11)], "infrastructure.detection": [f"{k}s" for k in range(1, 11)],
            "workloads.0.count": list(range(1, 11)), "workloads.0.vm.vcpus": list(range(1, 21))}
    d = _design(tmp_path, grid)
    assert len(d.points) == 20_000 and len(d.runs) == 20_000
    assert len(calls) == 1 + 50 + (100 + 100 + 200 + 100 + 200 + 200)  # the base, the values, the pairs
    assert d.columns["workloads.0.vm.vcpus"][:3] == [1, 2, 3] and d.columns["faults.0.mtbf"][0] == 365 * 86400.0
    assert design.FULL_CHECK_POINTS < 20_000
