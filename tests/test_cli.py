"""The command line: malformed input of every kind exits 2 with one line per problem, no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from conftest import base_scenario, write_yaml
from typer.testing import CliRunner

from sim.cli import app


def invoke(args):
    return CliRunner().invoke(app, args)


def _bad(tmp_path, data, *extra):
    path = write_yaml(tmp_path / "bad.yaml", data) if not isinstance(data, str) else tmp_path / "bad.yaml"
    if isinstance(data, str):
        path.write_text(data)
    r = invoke(["check", str(path), *extra])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert all(ln.startswith(str(path)) or ln.startswith("--set") for ln in lines), lines
    return lines


def test_check_prints_resolved(tmp_path):
    path = write_yaml(tmp_path / "ok.yaml", base_scenario())
    r = invoke(["check", str(path)])
    assert r.exit_code == 0, r.output
    resolved = yaml.safe_load(r.output)
    assert resolved["infrastructure"]["detection"] == 30.0
    assert resolved["workloads"][0]["vm"]["boot_time"] == 60.0


def test_bad_yaml(tmp_path):
    lines = _bad(tmp_path, "name: x\nduration: [1d\n")
    assert len(lines) == 1 and "line" in lines[0] and "column" in lines[0]


def test_unknown_key_wrong_unit_unknown_fault_together(tmp_path):
    sc = base_scenario(faults=[{"kind": "host_crash", "mtbf": "soon"}, {"kind": "hostcrash", "at": "1h"}])
    sc["duraton"] = "1d"
    lines = _bad(tmp_path, sc)
    text = "\n".join(lines)
    assert "duraton" in text and 'did you mean "duration"' in text
    assert "faults.0.mtbf" in text and '"soon"' in text
    assert "faults.1" in text and "host_crash" in text


def test_selector_matching_nothing(tmp_path):
    sc = base_scenario()
    sc["workloads"][0]["placement"] = {"hosts": ["west/*"]}
    assert any("workloads.0.placement.hosts" in ln for ln in _bad(tmp_path, sc))


def test_vm_that_cannot_be_placed(tmp_path):
    sc = base_scenario()
    sc["workloads"][0]["count"] = 1000
    assert any("workloads.0.count" in ln for ln in _bad(tmp_path, sc))


def test_missing_vm_reference(tmp_path):
    sc = base_scenario(operations=[{"kind": "migrate", "at": "1h", "vm": "web-999", "to": "east/bd1/h01"}])
    assert any("operations.0.vm" in ln for ln in _bad(tmp_path, sc))


def test_negative_count(tmp_path):
    sc = base_scenario()
    sc["workloads"][0]["count"] = -3
    assert any("workloads.0.count" in ln for ln in _bad(tmp_path, sc))


def test_non_mapping_file(tmp_path):
    assert len(_bad(tmp_path, "- a\n- b\n")) == 1


def test_missing_file(tmp_path):
    r = invoke(["run", str(tmp_path / "nope.yaml")])
    assert r.exit_code == 2
    assert "Traceback" not in r.output


def test_bad_set_path(tmp_path):
    path = write_yaml(tmp_path / "ok.yaml", base_scenario())
    r = invoke(["check", str(path), "--set", "infrastructure.nonsense=3"])
    assert r.exit_code == 2
    assert "infrastructure.nonsense" in r.output


def test_set_on_absent_key_wins(tmp_path):
    path = write_yaml(tmp_path / "ok.yaml", base_scenario())
    r = invoke(["check", str(path), "--set", "mechanisms.live_migration.downtime_target=500ms",
                "--set", "infrastructure.detection=1m"])
    assert r.exit_code == 0, r.output
    resolved = yaml.safe_load(r.output)
    assert resolved["mechanisms"]["live_migration"]["downtime_target"] == pytest.approx(0.5)
    assert resolved["infrastructure"]["detection"] == 60.0


def test_console_script_exit_code(tmp_path):
    """The installed entry point, in a subprocess: exit 2 and no traceback on stderr."""
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\n")
    proc = subprocess.run([sys.executable, "-m", "sim.cli", "check", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "duration" in proc.stderr
