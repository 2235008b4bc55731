"""Issue 9, output side: result folders are checked before the run and never lose a complete run.

``--out`` that is empty, a file, a FIFO, under a file, a symlink loop, unwritable or
too long a name is an input error (exit 2) before anything is deleted; ``--force``
writes beside the previous run and swaps only when complete (a killed run leaves the
previous one intact); the default folder's name is a slug inside ``results/``; files
follow the umask.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import base_scenario, write_yaml
from typer.testing import CliRunner

from sim.cli import app
from sim.results import slug


def run(*args):
    r = CliRunner().invoke(app, ["run", *[str(a) for a in args], "--quiet"])
    assert "Traceback" not in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    return r


@pytest.fixture
def scenario(tmp_path):
    return write_yaml(tmp_path / "s.yaml", base_scenario())


def test_empty_out_is_refused_and_deletes_nothing(tmp_path, scenario, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "summary.json").write_text("mine")
    r = run(scenario, "--out", "", "--force")
    assert r.exit_code == 2
    assert r.stderr.strip() == '--out: expected a folder path, got ""'
    assert (tmp_path / "summary.json").read_text() == "mine"


def test_out_that_is_a_file(tmp_path, scenario):
    f = tmp_path / "f.txt"
    f.write_text("keep")
    r = run(scenario, "--out", f, "--force")
    assert r.exit_code == 2
    assert r.stderr.strip() == f"{f}: expected a folder for results, got a file"
    assert f.read_text() == "keep"


def test_out_under_a_file(tmp_path, scenario):
    f = tmp_path / "f.txt"
    f.write_text("keep")
    r = run(scenario, "--out", f / "sub")
    assert r.exit_code == 2
    assert r.stderr.strip() == f"{f / 'sub'}: expected a folder for results, got a path under a file"


def test_out_that_is_a_fifo(tmp_path, scenario):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    r = run(scenario, "--out", fifo)
    assert r.exit_code == 2
    assert r.stderr.strip() == f"{fifo}: expected a folder for results, got a FIFO"


def test_out_that_is_a_symlink_loop(tmp_path, scenario):
    loop = tmp_path / "loop"
    loop.symlink_to("loop")
    r = run(scenario, "--out", loop)
    assert r.exit_code == 2
    assert r.stderr.strip() == f"{loop}: expected a folder that can be used, got an error (Too many levels of " \
                               "symbolic links)"


def test_out_name_too_long(tmp_path, scenario):
    r = run(scenario, "--out", tmp_path / ("x" * 300))
    assert r.exit_code == 2
    assert "File name too long" in r.stderr


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anywhere")
def test_out_that_cannot_be_written(tmp_path, scenario):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        r = run(scenario, "--out", ro)
        assert r.exit_code == 2
        assert "expected a folder that can be written" in r.stderr
    finally:
        ro.chmod(0o700)


def test_force_refuses_a_folder_with_other_files(tmp_path, scenario):
    out = tmp_path / "out"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    r = run(scenario, "--out", out, "--force")
    assert r.exit_code == 2
    assert '"thesis.tex"' in r.stderr
    assert (out / "thesis.tex").read_text() == "years of work"


def test_force_replaces_a_previous_run_and_leaves_no_staging(tmp_path, scenario):
    out = tmp_path / "out"
    assert run(scenario, "--out", out).exit_code == 0
    assert run(scenario, "--out", out, "--seed", "9", "--force").exit_code == 0
    assert json.loads((out / "summary.json").read_text())["seed"] == 9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "s.yaml"]


def test_killed_force_run_leaves_the_previous_run_intact(tmp_path):
    """SIGKILL a --force run part-way: the previous complete run is still there, byte for byte."""
    quick = write_yaml(tmp_path / "quick.yaml", base_scenario())
    out = tmp_path / "out"
    assert run(quick, "--out", out).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    # Long enough to be killed mid-run: a VM crash a minute on every VM for 60 days (~700k crashes).
    slow = write_yaml(tmp_path / "slow.yaml", base_scenario(duration="60d", faults=[
        {"kind": "vm_crash", "mtbf": "1m"}]))
    proc = subprocess.Popen([sys.executable, "-m", "sim.cli", "run", str(slow), "--out", str(out), "--force",
                             "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".out.new-*")):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_default_folder_stays_inside_results(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_yaml(tmp_path / "s.yaml", base_scenario(name=".."))
    assert run("s.yaml").exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results", "s.yaml"]
    assert (tmp_path / "results" / "scenario" / "latest" / "summary.json").exists()


@pytest.mark.parametrize(("name", "expected"), [
    ("..", "scenario"), (".", "scenario"), ("memory-errors", "memory-errors"), ("a b\\c", "a-b-c"),
    (".hidden", "hidden"), ("x" * 300, "x" * 100), ("été 2024", "t-2024"),
])
def test_slug(name, expected):
    assert slug(name) == expected


def test_files_follow_the_umask(tmp_path, scenario):
    old = os.umask(0o002)
    try:
        assert run(scenario, "--out", tmp_path / "out").exit_code == 0
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in Path(tmp_path / "out").iterdir()}
    assert set(modes.values()) == {0o664}, modes
