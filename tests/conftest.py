"""Shared test helpers: scenarios from Python dicts, run through the real loader and runner."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml


def base_scenario(**overrides) -> dict:
    """A small two-domain site; tests change what they need."""
    sc = {
        "name": "t",
        "seed": 1,
        "duration": "1d",
        "infrastructure": {
            "host_profiles": {
                "std": {"cores": 32, "memory": "256GiB", "dimms": 8, "nic": "10Gbps",
                        "disk": {"capacity": "4TiB", "read": "2GB/s", "write": "1GB/s"},
                        "boot_time": "3m", "reserved_memory": "16GiB"},
            },
            "sites": [{"name": "east", "region": "us-east", "core": "400Gbps", "broadcast_domains": [
                {"name": "bd1", "hosts": 4, "profile": "std", "uplink": "100Gbps"},
                {"name": "bd2", "hosts": 4, "profile": "std", "uplink": "100Gbps"},
            ]}],
        },
        "workloads": [{"name": "web", "count": 8, "vm": {"vcpus": 4, "memory": "16GiB", "disk": "100GiB"}}],
    }
    sc.update(copy.deepcopy(overrides))
    return sc


def write_yaml(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def scenario_file(tmp_path):
    def make(data: dict, name: str = "scenario.yaml") -> Path:
        return write_yaml(tmp_path / name, data)
    return make


def load(data: dict, tmp_path: Path, overrides=()):
    from sim.mechanisms.registry import config_models
    from sim.scenario.loader import load_scenario

    path = write_yaml(tmp_path / "scenario.yaml", data)
    return load_scenario(str(path), list(overrides), config_models())


def run(data: dict, tmp_path: Path, overrides=(), trace=False):
    from sim.runner import run_scenario

    return run_scenario(load(data, tmp_path, overrides), trace=trace)


def refused(tmp_path: Path, data: dict, name: str = "bad.yaml") -> list[str]:
    """``dcsim check`` on ``data``: it must exit 2 with no traceback; returns its non-blank lines."""
    from typer.testing import CliRunner

    from sim.cli import app

    path = write_yaml(tmp_path / name, data)
    r = CliRunner().invoke(app, ["check", str(path)])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    return [ln for ln in r.output.splitlines() if ln.strip()]


def fleet_of(hosts: int, duration: str, fault: dict) -> dict:
    """``hosts`` hosts split over the base scenario's two domains, no workload VMs, one fault entry."""
    sc = base_scenario(duration=duration, faults=[fault])
    dom = sc["infrastructure"]["sites"][0]["broadcast_domains"]
    dom[0]["hosts"] = hosts // 2
    dom[1]["hosts"] = hosts - hosts // 2
    sc["workloads"][0]["count"] = 0
    return sc
