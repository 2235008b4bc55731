"""Sweep leftovers: validation progress on large grids, Ctrl-C during a sweep, raising
``replications`` and resuming, and every validation stage reported together."""

from __future__ import annotations

from pathlib import Path

from conftest import base_scenario, write_yaml


def _sweep(tmp_path: Path, grid: dict, **body) -> Path:
    write_yaml(tmp_path / "s.yaml", base_scenario(duration="2d", faults=[
        {"kind": "host_crash", "mtbf": "60d", "repair": "4h"}]))
    return write_yaml(tmp_path / "sweep.yaml", {"name": "h", "scenario": "s.yaml", "grid": grid, **body})


# --------------------------------------------------------------------------- validation progress
GRID = {"infrastructure.detection": ["30s", "1m", "2m"], "workloads.0.count": [1, 2, 3, 4],
        "mechanisms.live_migration.max_per_host": [1, 2, 3, 4, 5]}


def test_validation_progress_counts_every_point(tmp_path):
    """A small grid validates each of its 3 x 4 x 5 = 60 points once: progress goes 1..60 of 60."""
    from sim.experiments.design import load_sweep

    calls = []
    load_sweep(_sweep(tmp_path, GRID), progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 60) for i in range(1, 61)]


def test_validation_progress_of_a_large_grid_counts_values_and_pairs(tmp_path, monkeypatch):
    """Checked by axes (threshold 0): each value alone (3 + 4 + 5 = 12) and each pair of values
    that occur together (3x4 + 3x5 + 4x5 = 47), 59 validations, none confirming (all valid):
    progress ends at 59 of 59 and never goes back."""
    import sim.experiments.design as design

    monkeypatch.setattr(design, "FULL_CHECK_POINTS", 0)
    calls = []
    design.load_sweep(_sweep(tmp_path, GRID), progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (59, 59)
    assert [d for d, _ in calls] == list(range(1, 60))
    assert all(t == 59 for _, t in calls)


def test_no_validation_progress_off_a_terminal(tmp_path):
    """Under the test runner stderr is not a terminal: nothing but the summary line is printed."""
    from typer.testing import CliRunner

    from sim.cli import app

    path = _sweep(tmp_path, {"workloads.0.count": [1, 2]}, replications=1)
    r = CliRunner().invoke(app, ["sweep", str(path), "--out", str(tmp_path / "out"), "--workers", "1"])
    assert r.exit_code == 0, r.output
    assert "validating" not in r.output
    assert len([ln for ln in r.output.splitlines() if ln.strip()]) == 1


# --------------------------------------------------------------------------- Ctrl-C
def _cli(*args: str, **kw):
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.Popen([sys.executable, "-m", "sim.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_ctrl_c_during_a_sweep_prints_one_line_naming_resume(tmp_path):
    """SIGINT to the sweep's process group (what Ctrl-C on a terminal sends: the parent and both
    workers) once the first run is complete: exit 130, one line on stderr naming --resume and the
    folder, no traceback from the parent or a worker; resuming then completes every run."""
    import os
    import signal
    import time

    path = _sweep(tmp_path, {"workloads.0.count": [4, 8]}, replications=15)
    out = tmp_path / "out"
    proc = _cli("sweep", str(path), "--workers", "2", "--out", str(out), "--quiet", start_new_session=True)
    try:
        for _ in range(1200):
            if list(out.glob("runs/*/summary.json")) or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the sweep ended before it could be interrupted"
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "--resume" in lines[0] and str(out) in lines[0]
    done = len(list(out.glob("runs/*/summary.json")))
    assert 1 <= done < 30
    again = _cli("sweep", str(path), "--workers", "2", "--out", str(out), "--resume")
    text, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    assert f"30 runs over 2 points (30 ok, 0 errors, {done} kept from before)" in text


# --------------------------------------------------------------------------- more replications
def _sweep_cli(*args):
    from typer.testing import CliRunner

    from sim.cli import app

    r = CliRunner().invoke(app, ["sweep", *map(str, args)])
    assert r.exit_code == 0, r.output
    return r.output


def _summaries(out: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in out.glob("runs/*/summary.json")}


def test_raising_replications_and_resuming_runs_only_the_new_ones(tmp_path):
    """2 points x 2 replications, then the file says 3: the resume runs 2 x (3 - 2) = 2 runs, keeps
    the 4 (their summary.json untouched), and the 6 rows equal a fresh 3-replication sweep's."""
    import yaml

    from sim.results import load_sweep

    path = _sweep(tmp_path, {"workloads.0.count": [4, 8]}, replications=2)
    out = tmp_path / "out"
    _sweep_cli(path, "--out", out, "--workers", "1", "--quiet")
    before = _summaries(out)
    assert len(before) == 4
    data = yaml.safe_load(path.read_text())
    data["replications"] = 3
    path.write_text(yaml.safe_dump(data))
    text = _sweep_cli(path, "--out", out, "--workers", "1", "--resume")
    assert "6 runs over 2 points (6 ok, 0 errors, 4 kept from before)" in text
    after = _summaries(out)
    assert len(after) == 6 and all(after[k] == v for k, v in before.items())
    _sweep_cli(path, "--out", tmp_path / "fresh", "--workers", "1", "--quiet")
    resumed, fresh = load_sweep(out), load_sweep(tmp_path / "fresh")
    cols = ["run_id", "seed", *[m for m in fresh.metrics if "wall" not in m and not m.endswith("_s_cpu")]]
    assert len(cols) > 10
    a = resumed["runs"].sort_values("run_id")[cols].reset_index(drop=True)
    b = fresh["runs"].sort_values("run_id")[cols].reset_index(drop=True)
    assert a.equals(b), (a.compare(b) if a.shape == b.shape else (a.shape, b.shape))


def test_more_replications_past_99_keep_the_old_runs_under_their_new_ids(tmp_path):
    """1 point x 2 replications (p0000-r00, -r01), then 101: ids widen to r000 .. r100; the two
    runs are renamed and kept, 99 run."""
    import yaml

    write_yaml(tmp_path / "s.yaml", base_scenario(duration="1h", workloads=[]))
    path = write_yaml(tmp_path / "sweep.yaml", {"name": "h", "scenario": "s.yaml",
                                                "grid": {"duration": ["1h"]},
                                                "replications": 2})
    out = tmp_path / "out"
    _sweep_cli(path, "--out", out, "--workers", "1", "--quiet")
    before = _summaries(out)
    assert set(before) == {"p0000-r00", "p0000-r01"}
    data = yaml.safe_load(path.read_text())
    data["replications"] = 101
    path.write_text(yaml.safe_dump(data))
    text = _sweep_cli(path, "--out", out, "--workers", "1", "--resume")
    assert "101 runs over 1 points (101 ok, 0 errors, 2 kept from before)" in text
    after = _summaries(out)
    assert after["p0000-r000"] == before["p0000-r00"] and after["p0000-r001"] == before["p0000-r01"]
    assert len(after) == 101


def test_a_changed_point_is_still_refused_on_resume(tmp_path):
    """Only the number of replications may grow: another value on an axis is another sweep."""
    import yaml
    from typer.testing import CliRunner

    from sim.cli import app

    path = _sweep(tmp_path, {"workloads.0.count": [4, 8]}, replications=1)
    out = tmp_path / "out"
    _sweep_cli(path, "--out", out, "--workers", "1", "--quiet")
    data = yaml.safe_load(path.read_text())
    data["grid"]["workloads.0.count"] = [4, 6]
    data["replications"] = 2
    path.write_text(yaml.safe_dump(data))
    r = CliRunner().invoke(app, ["sweep", str(path), "--out", str(out), "--resume"])
    assert r.exit_code == 2
    assert "expected the sweep that made this folder, got a different one" in r.output


# --------------------------------------------------------------------------- every stage together
def _check_lines(tmp_path, data) -> list[str]:
    from typer.testing import CliRunner

    from sim.cli import app

    path = write_yaml(tmp_path / "s.yaml", data)
    r = CliRunner().invoke(app, ["check", str(path)])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    return [ln.removeprefix(f"{path}: ") for ln in r.output.splitlines() if ln.strip()]


def test_schema_and_reference_problems_are_reported_together(tmp_path):
    """A schema problem (faults.0.mtbf) and reference problems in parts that validated: a
    placement glob matching no host and a second fault's target (its index is the file's, 1,
    though fault 0 was left out to check the rest)."""
    sc = base_scenario(faults=[{"kind": "host_crash", "mtbf": "soon"},
                               {"kind": "host_crash", "mtbf": "30d", "target": "east/bd9/*"}])
    sc["workloads"][0]["placement"] = {"hosts": ["west/*"]}
    lines = _check_lines(tmp_path, sc)
    assert lines[0] == 'faults.0.mtbf: expected a duration like "30s", got "soon"'
    assert lines[1].startswith('workloads.0.placement.hosts: expected a glob matching at least one host')
    assert lines[2].startswith('faults.1.target: expected a glob matching at least one host')
    assert len(lines) == 3


def test_references_that_may_depend_on_an_invalid_part_are_not_checked(tmp_path):
    """An invalid workload (vcpus "four") is left out; an operation naming its VM would then be a
    false "no such VM", so operations are not cross-checked: only the schema problem shows, plus
    a cluster problem (clusters do not depend on workloads)."""
    sc = base_scenario(operations=[{"kind": "migrate", "at": "1h", "vm": "web-000", "to": "east/bd2/h00"}],
                       clusters=[{"name": "c", "hosts": ["north/*"], "image": {"base": "1"}}])
    sc["workloads"][0]["vm"]["vcpus"] = "four"
    lines = _check_lines(tmp_path, sc)
    assert lines[0] == 'workloads.0.vm.vcpus: expected an integer, got "four"'
    assert lines[1].startswith("clusters.0.hosts: expected a glob matching at least one host")
    assert len(lines) == 2
