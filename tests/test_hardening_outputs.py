"""Issue 18, files a user or the system loses: every output flag is checked before any work.

``run --out`` (with and without ``--force``), ``sweep --out``, ``compare --out``, ``report --out``
and ``bench --json`` pointed at a device, a FIFO, a symlink or a user's folder exit 2 and leave
it byte for byte as it was; ``--force`` replaces only a folder whose ``summary.json`` carries the
run marker; ``--resume`` refuses damaged sweep folders naming the path and never deletes through
a symlink; the workers of a two-worker sweep die with it after ``kill -9``; a killed ``compare``
continues with ``--resume``.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import base_scenario, write_yaml
from typer.testing import CliRunner

from sim.cli import app
from sim.results import SUMMARY

RUN_KIND = "dcsim run"

ROOT = Path(__file__).resolve().parents[1]


def cli(*args):
    r = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    return r


def snapshot(path: Path) -> dict:
    """Everything observable about what is at ``path``: type, device number, and for a folder each
    entry's type and bytes (symlinks not followed)."""
    def one(p: Path):
        st = os.lstat(p)
        kind = stat.S_IFMT(st.st_mode)
        if stat.S_ISREG(st.st_mode):
            return (kind, p.read_bytes())
        if stat.S_ISLNK(st.st_mode):
            return (kind, os.readlink(p))
        return (kind, st.st_rdev)
    if not os.path.lexists(path):
        return {}
    out = {".": one(path)}
    if path.is_dir() and not path.is_symlink():
        for p in sorted(path.rglob("*")):
            out[str(p.relative_to(path))] = one(p)
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A scenario, a finished run folder (for report), and a sweep file over it."""
    tmp = tmp_path_factory.mktemp("world")
    sc = write_yaml(tmp / "s.yaml", base_scenario(duration="2d"))
    run_dir = tmp / "run"
    assert cli("run", sc, "--out", run_dir, "--quiet").exit_code == 0
    sweep = write_yaml(tmp / "sweep.yaml", {"name": "w", "scenario": "s.yaml", "replications": 1,
                                            "grid": {"workloads.0.count": [4, 8]}})
    return {"scenario": sc, "run": run_dir, "sweep": sweep}


def targets(tmp: Path) -> dict[str, Path]:
    """A device (a copy of /dev/null's numbers made in tmp), a FIFO, a user's folder holding only
    their own Parquet file and notes, and a symlink to a user's file."""
    out = {}
    fifo = tmp / "pipe"
    os.mkfifo(fifo)
    out["fifo"] = fifo
    if os.geteuid() == 0:
        dev = tmp / "dev-null"
        os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        out["device"] = dev
    folder = tmp / "mine"
    folder.mkdir()
    pd.DataFrame({"x": [1, 2]}).to_parquet(folder / "data.parquet")
    (folder / "notes.txt").write_text("keep me")
    out["folder"] = folder
    user_file = tmp / "mine.json"
    user_file.write_text('{"mine": true}')
    link = tmp / "link.json"
    link.symlink_to(user_file)
    out["symlink"] = link
    return out


def commands(world, target: Path) -> list[list]:
    return [
        ["run", world["scenario"], "--out", target, "--quiet"],
        ["run", world["scenario"], "--out", target, "--force", "--quiet"],
        ["sweep", world["sweep"], "--out", target, "--workers", "1", "--quiet"],
        ["compare", world["scenario"], "--set", "workloads.0.count=4", "--replications", "1", "--out", target,
         "--workers", "1", "--quiet"],
        ["report", world["run"], "--out", target, "--quiet"],
        ["bench", "--json", target, "--hosts", "4", "--duration", "1d", "--quiet"],
    ]


@pytest.mark.parametrize("kind", ["fifo", "device", "folder", "symlink"])
def test_every_output_flag_leaves_devices_fifos_and_user_folders_unchanged(tmp_path, world, kind):
    """Each of the six output flags pointed at the target: exit 2, one line naming the target, and
    the target (and everything in it) exactly as before. A folder is a valid place for ``--out``
    of a run only when empty, and never a place for ``--json``."""
    found = targets(tmp_path)
    if kind not in found:
        pytest.skip("making a device file needs root")
    target = found[kind]
    before = snapshot(target)
    for args in commands(world, target):
        if kind == "symlink" and args[0] != "bench":
            continue  # a symlink to a file is "not a folder" for the folder flags (covered by fifo/device)
        r = cli(*args)
        assert r.exit_code == 2, (args, r.output)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"{target}: expected"), (args, r.stderr)
        assert snapshot(target) == before, args
    if kind == "symlink":
        assert (tmp_path / "mine.json").read_text() == '{"mine": true}'


def test_force_refuses_a_folder_of_the_users_own_parquet_files(tmp_path, world):
    """The issue's case: a folder holding only ``data.parquet`` looks like run output by name, but
    has no summary.json with the run marker, so ``--force`` refuses it and names what is there."""
    folder = tmp_path / "mine"
    folder.mkdir()
    pd.DataFrame({"x": [1]}).to_parquet(folder / "data.parquet")
    before = snapshot(folder)
    r = cli("run", world["scenario"], "--out", folder, "--force", "--quiet")
    assert r.exit_code == 2
    assert r.stderr.strip() == (f'{folder}: expected a previous dcsim run to replace (--force: its summary.json with '
                                f'"kind": "dcsim run"), got a folder without one holding "data.parquet"; move them '
                                'or choose another --out')
    assert snapshot(folder) == before
    # a summary.json someone else wrote (no marker) is not a run either
    (folder / SUMMARY).write_text(json.dumps({"metrics": {}}))
    before = snapshot(folder)
    assert cli("run", world["scenario"], "--out", folder, "--force", "--quiet").exit_code == 2
    assert snapshot(folder) == before


def test_force_replaces_a_marked_run(tmp_path, world):
    out = tmp_path / "r"
    assert cli("run", world["scenario"], "--out", out, "--quiet").exit_code == 0
    summary = json.loads((out / SUMMARY).read_text())
    assert summary["kind"] == RUN_KIND
    assert cli("run", world["scenario"], "--out", out, "--force", "--seed", "5", "--quiet").exit_code == 0
    assert json.loads((out / SUMMARY).read_text())["seed"] == 5


def test_report_out_refuses_empty_and_source_folders(tmp_path, world, monkeypatch):
    """``report --out ''`` once wrote into the current folder over the user's report.html;
    ``--out docs`` (a folder with other files) wrote five files there. Both refused; an earlier
    report folder (PNG and HTML only) is replaced."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "report.html").write_text("mine")
    r = cli("report", world["run"], "--out", "", "--quiet")
    assert r.exit_code == 2 and r.stderr.strip() == '--out: expected a folder path, got ""'
    assert (tmp_path / "report.html").read_text() == "mine"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "model.md").write_text("# model")
    r = cli("report", world["run"], "--out", docs, "--quiet")
    assert r.exit_code == 2
    assert r.stderr.strip() == (f'{docs}: expected an empty folder or an earlier report to replace, got a folder '
                                'holding "model.md"; choose another --out')
    assert sorted(os.listdir(docs)) == ["model.md"]
    fresh = tmp_path / "rep"
    assert cli("report", world["run"], "--out", fresh, "--quiet").exit_code == 0
    assert cli("report", world["run"], "--out", fresh, "--quiet").exit_code == 0  # its own report: replaced


@pytest.mark.parametrize("case", ["empty", "folder", "under_a_file", "proc", "no_folder"])
def test_bench_json_bad_paths_refused_before_the_benchmark(tmp_path, case, monkeypatch):
    """Refused before any timing: run_bench is replaced by a function that fails the test."""
    import sim.bench

    monkeypatch.setattr(sim.bench, "run_bench", lambda *a, **k: pytest.fail("the benchmark ran"))
    f = tmp_path / "f.txt"
    f.write_text("x")
    path = {"empty": "", "folder": str(tmp_path), "under_a_file": str(f / "out.json"),
            "proc": "/proc/dcsim-bench.json", "no_folder": str(tmp_path / "nope" / "b.json")}[case]
    r = cli("bench", "--json", path, "--quiet")
    assert r.exit_code == 2, r.output
    expected = {"empty": '--json: expected a file path, got ""',
                "folder": f"{tmp_path}: expected a regular file or a new file name, got a folder",
                "under_a_file": f"{f / 'out.json'}: expected a regular file or a new file name, got a path under "
                                "a file",
                "no_folder": f'{tmp_path / "nope" / "b.json"}: expected a file in an existing folder, got no folder '
                             f'"{tmp_path / "nope"}"'}
    if case in expected:
        assert r.stderr.strip() == expected[case]
    else:
        assert r.stderr.strip().startswith("/proc/dcsim-bench.json: expected a file that can be written")
    assert f.read_text() == "x"


# --------------------------------------------------------------------------- sweeps: resume
@pytest.fixture
def swept(tmp_path, world):
    out = tmp_path / "sw"
    assert cli("sweep", world["sweep"], "--out", out, "--workers", "1", "--quiet").exit_code == 0
    return out


@pytest.mark.parametrize("damage", ["runs_parquet_dir", "runs_file", "run_file", "run_symlink", "sweep_json_dir"])
def test_resume_on_damaged_folders_names_the_path(tmp_path, world, swept, damage):
    """Each damage is one line naming the damaged path, exit 2; nothing is deleted (a run folder
    that is a symlink is never followed by rmtree: the folder it points at stays)."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("keep")
    run0 = swept / "runs" / "p0000-r00"
    if damage == "runs_parquet_dir":
        bad = swept / "runs.parquet"
        bad.unlink()
        bad.mkdir()
    elif damage == "runs_file":
        bad = swept / "runs"
        import shutil

        shutil.rmtree(bad)
        bad.write_text("x")
    elif damage == "run_file":
        import shutil

        bad = run0
        shutil.rmtree(bad)
        bad.write_text("x")
    elif damage == "run_symlink":
        import shutil

        bad = run0
        shutil.rmtree(bad)
        bad.symlink_to(victim)
    else:
        bad = swept / "sweep.json"
        bad.unlink()
        bad.mkdir()
    before = snapshot(swept)
    r = cli("sweep", world["sweep"], "--out", swept, "--resume", "--workers", "1", "--quiet")
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{bad}: expected"), r.stderr
    assert snapshot(swept) == before
    assert (victim / "keep.txt").read_text() == "keep"


def test_sweep_out_empty_is_refused(tmp_path, world, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.txt").write_text("x")
    for resume in ([], ["--resume"]):
        r = cli("sweep", world["sweep"], "--out", "", *resume, "--quiet")
        assert r.exit_code == 2 and r.stderr.strip() == '--out: expected a folder path, got ""'
    assert sorted(os.listdir(tmp_path)) == ["mine.txt"]


def test_killed_compare_continues_with_resume(tmp_path, world):
    """A compare of R = 2 (4 runs) that lost one run (its summary.json gone, as after a kill) and its
    tables: ``compare --resume`` runs only that one and gives the uninterrupted compare's table."""
    args = ["compare", world["scenario"], "--set", "workloads.0.count=4", "--replications", "2", "--workers", "1",
            "--quiet"]
    whole = tmp_path / "whole"
    assert cli(*args, "--out", whole).exit_code == 0
    part = tmp_path / "part"
    assert cli(*args, "--out", part).exit_code == 0
    (part / "runs" / "p0001-r01" / SUMMARY).unlink()
    for name in ("runs.parquet", "points.parquet", "compare.parquet"):
        (part / name).unlink()
    kept = (part / "runs" / "p0000-r00" / SUMMARY).stat().st_mtime_ns
    r = cli(*args, "--out", part)
    assert r.exit_code == 2 and "use --resume" in r.stderr
    assert cli(*args, "--out", part, "--resume").exit_code == 0
    assert (part / "runs" / "p0000-r00" / SUMMARY).stat().st_mtime_ns == kept
    pd.testing.assert_frame_equal(pd.read_parquet(part / "compare.parquet"), pd.read_parquet(whole / "compare.parquet"))


# --------------------------------------------------------------------------- workers die with their parent
def _descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    out, frontier = set(), {pid}
    while frontier:
        children = {c for c, p in parents.items() if p in frontier and c not in out}
        out |= children
        frontier = children
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
@pytest.mark.parametrize("extra", [[], pytest.param(["--scheduler", "local"], marks=pytest.mark.slow)],
                         ids=["processes", "dask-local"])
def test_sigkill_of_a_two_worker_sweep_leaves_no_worker(tmp_path, extra):
    """``kill -9`` of ``dcsim sweep --workers 2`` while both workers run long runs: 5 s later no
    process the sweep started is alive (before: both workers went on for minutes). The same for
    a Dask LocalCluster's nanny-managed workers."""
    write_yaml(tmp_path / "s.yaml", base_scenario(duration="3000d", faults=[
        {"kind": "host_crash", "mtbf": "5d", "repair": "1h"}, {"kind": "vm_crash", "mtbf": "2d"}]))
    sweep = write_yaml(tmp_path / "sweep.yaml", {"name": "k", "scenario": "s.yaml", "replications": 4})
    proc = subprocess.Popen([sys.executable, "-m", "sim.cli", "sweep", str(sweep), "--out", str(tmp_path / "o"),
                             "--workers", "2", "--quiet", *extra], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 60
    workers: set[int] = set()
    while time.monotonic() < deadline:
        workers = _descendants(proc.pid)
        if len(workers) >= 2 and (tmp_path / "o" / "sweep.json").exists():
            break
        time.sleep(0.05)
    time.sleep(0.5)
    workers = _descendants(proc.pid)
    assert len(workers) >= 2, workers
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(5)
    alive = [p for p in workers if _alive(p)]
    for p in alive:  # do not leave them behind on failure
        os.kill(p, signal.SIGKILL)
    assert alive == []
