"""The benchmark (docs/performance.md): the shape of its figures, the scaling rule, the command.

Never a wall time: the machine is shared and timings are the benchmark's output, not a property.
"""

from __future__ import annotations

import json
import math

import pytest
import yaml
from typer.testing import CliRunner

from sim.bench import BARE_KEYS, FLEET, FLEET_KEYS, KEYS, file_hosts, load_fleet, run_bench, scale_fleet
from sim.cli import app
from sim.faults.injector import GENERIC_KINDS

DAYS_30 = 30 * 86400.0


@pytest.fixture(scope="module")
def raw():
    return yaml.safe_load(FLEET.read_text())


@pytest.fixture(scope="module")
def figures():
    return run_bench(hosts=200, duration="30d", bare_events=100_000)


def test_figures_have_the_documented_keys(figures):
    assert set(KEYS) <= set(figures)
    assert set(FLEET_KEYS) <= set(figures["fleet"])
    assert set(BARE_KEYS) <= set(figures["bare"])
    assert set(figures["versions"]) >= {"dcsim", "simpy", "python"}


def test_figures_are_positive_and_finite(figures):
    assert figures["hosts"] == 200
    assert figures["vms"] == 2000
    assert figures["duration_s"] == DAYS_30
    assert figures["fleet"]["events"] > 0
    assert figures["bare"]["events"] >= 100_000  # one per timeout, plus the process's start and end
    for value in (*figures["fleet"].values(), *figures["bare"].values(), figures["wall_s"], figures["peak_rss_mib"]):
        assert math.isfinite(value) and value >= 0
    assert math.isfinite(figures["ratio"]) and figures["ratio"] > 0
    assert figures["ratio"] == pytest.approx(figures["fleet"]["events_per_s"] / figures["bare"]["events_per_s"])
    json.dumps(figures)  # serialisable as it is


def test_fleet_file_is_the_documented_fleet(raw):
    """2 sites x 50 domains x 100 hosts, 100,000 VMs, a year, and every fault kind but site outages
    (image drift with remediation, which measures and fixes it)."""
    sites = raw["infrastructure"]["sites"]
    assert len(sites) == 2 and all(len(s["broadcast_domains"]) == 50 for s in sites)
    assert {d["hosts"] for s in sites for d in s["broadcast_domains"]} == {100}
    assert file_hosts(raw) == 10_000
    assert sum(w["count"] for w in raw["workloads"]) == 100_000
    kinds = {f["kind"] for f in raw["faults"]}
    assert kinds == (set(GENERIC_KINDS) - {"site_outage"}) | {"dimm_errors"}
    assert set(raw["mechanisms"]) >= {"memory_error_evacuation", "live_migration", "remediation", "charging",
                                      "roaming_storage"}
    sc = load_fleet()  # validates as it is, at full size
    assert sc.duration == 365 * 86400.0


@pytest.mark.parametrize("hosts", [2, 200, 250, 1000, 3000, 9999, 10_000])
def test_scaling_keeps_domains_of_100_and_vms_proportional(raw, hosts):
    scaled = scale_fleet(raw, hosts)
    assert file_hosts(scaled) == hosts
    sites = scaled["infrastructure"]["sites"]
    assert [s["name"] for s in sites] == ["east", "west"]
    domains = [d for s in sites for d in s["broadcast_domains"]]
    assert len(domains) == max(2, math.ceil(hosts / 100))
    assert max(d["hosts"] for d in domains) - min(d["hosts"] for d in domains) <= 1
    if hosts % 200 == 0:  # whole domains of 100, split evenly over the sites
        assert {d["hosts"] for d in domains} == {100}
        assert len(sites[0]["broadcast_domains"]) == len(sites[1]["broadcast_domains"])
    for before, after in zip(raw["workloads"], scaled["workloads"], strict=True):
        assert after["count"] == max(1, round(before["count"] * hosts / 10_000))
    assert file_hosts(raw) == 10_000  # the input is not modified


@pytest.mark.parametrize("hosts,concurrent,files", [(1000, 1, 1), (3000, 3, 2), (5000, 5, 2), (10_000, 10, 5)])
def test_scaling_scales_the_remediation_roll_and_the_roaming_files(raw, hosts, concurrent, files):
    """The east cluster grows with the fleet, so max_concurrent does (10 x N / 10,000, at least 1: the
    roll keeps its ~500 waves); roaming files scale like the workloads (round(5 x N / 10,000), at least
    1; Python rounds half to even: 1.5 -> 2, 2.5 -> 2); charging's prices and period do not scale."""
    scaled = scale_fleet(raw, hosts)["mechanisms"]
    assert scaled["remediation"]["max_concurrent"] == concurrent
    assert [f["count"] for f in scaled["roaming_storage"]["files"]] == [files]
    assert scaled["charging"] == raw["mechanisms"]["charging"]


def test_scaled_scenario_loads_with_the_requested_size():
    sc = load_fleet(hosts=1000, duration="7d")
    assert sum(d.hosts for s in sc.infrastructure.sites for d in s.broadcast_domains) == 1000
    assert sum(w.count for w in sc.workloads) == 10_000
    assert sc.duration == 7 * 86400.0


def test_bench_command_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    r = CliRunner().invoke(app, ["bench", "--hosts", "200", "--duration", "30d", "--json", str(out)])
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    assert set(KEYS) <= set(data)
    assert data["hosts"] == 200 and data["fleet"]["events"] > 0
    assert "ratio" in r.output
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically: no temp file left


@pytest.mark.parametrize("args, where", [
    (["--hosts", "20000"], "--hosts"),
    (["--hosts", "1"], "--hosts"),
    (["--duration", "soon"], "--duration"),
    (["--scenario", "/nonexistent/fleet.yaml"], "/nonexistent/fleet.yaml"),
])
def test_bench_input_errors_exit_2_in_one_line(args, where):
    r = CliRunner().invoke(app, ["bench", "--quiet", *args])
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(where + ":"), lines
    assert "Traceback" not in r.output
