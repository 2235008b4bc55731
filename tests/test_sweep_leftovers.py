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
