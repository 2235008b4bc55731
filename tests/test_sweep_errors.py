"""Bad sweep, compare and report input: exit 2, one line per problem naming the file and the
dotted path, no traceback, nothing run."""

from __future__ import annotations

import socket
import time

from conftest import write_yaml
from test_sweep import make_sweep, small_scenario
from typer.testing import CliRunner

from sim.cli import app


def invoke(args):
    return CliRunner().invoke(app, args)


def bad(args, *must):
    r = invoke(args)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    text = "\n".join(lines)
    for piece in must:
        assert piece in text, text
    return lines


def sweep_lines(tmp_path, sweep, *must, scenario=None):
    path = make_sweep(tmp_path, sweep, scenario)
    lines = bad(["sweep", str(path), "--out", str(tmp_path / "out"), "--workers", "1"], *must)
    assert not (tmp_path / "out").exists()  # nothing ran, no folder made
    return lines


def test_grid_path_the_schema_does_not_allow(tmp_path):
    lines = sweep_lines(tmp_path, {"grid": {"faults.0.mtbff": ["1y"]}},
                        "grid.faults.0.mtbff: unknown key \"mtbff\" (did you mean \"mtbf\"?)")
    assert len(lines) == 1 and lines[0].startswith(str(tmp_path / "sweep.yaml"))


def test_samples_path_the_schema_does_not_allow(tmp_path):
    sweep_lines(tmp_path, {"samples": {"n": 3, "params": {"infrastructure.detectoin": {"uniform": ["1s", "5s"]}}}},
                "sweep.yaml: samples.params.infrastructure.detectoin: unknown key")


def test_value_failing_at_one_point_names_the_point(tmp_path):
    lines = sweep_lines(tmp_path, {"grid": {"workloads.0.count": [4, 8], "faults.0.mtbf": ["30d", "soon"]}},
                        "sweep.yaml: grid.faults.0.mtbf: expected a duration", 'got "soon"', "at point p0001")
    assert len(lines) == 1 and "and 1 more point" in lines[0]


def test_empty_value_list(tmp_path):
    sweep_lines(tmp_path, {"grid": {"workloads.0.count": []}},
                "sweep.yaml: grid.workloads.0.count: expected at least one value, got an empty list")


def test_replications_below_one(tmp_path):
    sweep_lines(tmp_path, {"replications": 0}, "sweep.yaml: replications: expected an integer of at least 1, got 0")


def test_range_low_above_high(tmp_path):
    sweep_lines(tmp_path, {"samples": {"n": 4, "params": {"faults.0.mtbf": {"uniform": ["5y", "180d"]}}}},
                "sweep.yaml: samples.params.faults.0.mtbf.uniform: expected low <= high, got [5y, 180d]")


def test_range_bound_without_units_that_parse(tmp_path):
    sweep_lines(tmp_path, {"samples": {"n": 4, "params": {"faults.0.mtbf": {"uniform": ["soon", "5y"]}}}},
                "samples.params.faults.0.mtbf.uniform.0: expected a number or a quantity", 'got "soon"')


def test_missing_scenario_file(tmp_path):
    path = write_yaml(tmp_path / "sweep.yaml", {"name": "x", "scenario": "nope.yaml", "grid": {"seed": [1]}})
    lines = bad(["sweep", str(path), "--out", str(tmp_path / "out")],
                "sweep.yaml: scenario: expected an existing scenario file", '"nope.yaml"')
    assert len(lines) == 2 and "grid.seed" in lines[1]  # every problem at once


def test_unknown_sweep_key_and_sample_method(tmp_path):
    sweep_lines(tmp_path, {"replication": 3, "samples": {"n": 2, "method": "sobol", "params": {
        "faults.0.mtbf": {"uniform": ["1d", "2d"]}}}},
                'sweep.yaml: replication: unknown key "replication" (did you mean "replications"?)',
                "sweep.yaml: samples.method: expected one of latin_hypercube, random, got \"sobol\"")


def test_a_folder_with_files_needs_resume(tmp_path):
    path = make_sweep(tmp_path, {"grid": {"workloads.0.count": [4]}})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("x")
    bad(["sweep", str(path), "--out", str(tmp_path / "out")], "use --resume")
    bad(["sweep", str(path), "--out", str(tmp_path / "out"), "--resume"], "expected a sweep folder to resume")


def test_scheduler_where_nothing_answers(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = make_sweep(tmp_path, {"grid": {"workloads.0.count": [4]}})
    t0 = time.monotonic()
    lines = bad(["sweep", str(path), "--out", str(tmp_path / "out"), "--scheduler", f"tcp://127.0.0.1:{port}"],
                f'--scheduler: expected the address of a running Dask scheduler like tcp://HOST:8786 or local, '
                f'got "tcp://127.0.0.1:{port}"')
    assert time.monotonic() - t0 < 20
    assert len(lines) == 1 and not (tmp_path / "out").exists()


def test_compare_set_path_that_does_not_exist(tmp_path):
    path = write_yaml(tmp_path / "s.yaml", small_scenario())
    lines = bad(["compare", str(path), "--set", "mechanisms.memory_error_evacuaton.enabled=false",
                 "--out", str(tmp_path / "out")], "--set: mechanisms.memory_error_evacuaton.enabled: unknown key")
    assert len(lines) == 1
    bad(["compare", str(path), "--set", "faults.0.mtbf=soon", "--out", str(tmp_path / "out")],
        '--set: faults.0.mtbf: expected a duration like "30s", got "soon" (at point p0001')
    bad(["compare", str(path), "--set", "seed=2", "--replications", "0"], "--replications: expected an integer of "
                                                                         "at least 1, got 0")
    bad(["compare", str(tmp_path / "missing.yaml"), "--set", "seed=2"], "missing.yaml")
    assert not (tmp_path / "out").exists()


def test_report_on_a_folder_that_is_neither(tmp_path):
    (tmp_path / "junk").mkdir()
    bad(["report", str(tmp_path / "junk")], f"{tmp_path / 'junk'}: expected a run folder (with summary.json) or "
                                            "a sweep folder (with runs.parquet), got a folder with neither")
    bad(["report", str(tmp_path / "nothing")], "got no such folder")
