"""The benchmark (docs/performance.md): the arithmetic of its figures on injected timings, the
scaling rule up and down with hand numbers, the CPU attribution, the command.

Never a wall time: the machine is shared and timings are the benchmark's output, not a property.
"""

from __future__ import annotations

import json
import math
import os
import time
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from sim.bench import (
    BARE_KEYS,
    FLEET,
    FLEET_KEYS,
    KEYS,
    CpuSampler,
    count_facts,
    fact_costs,
    file_hosts,
    load_fleet,
    owner_of,
    run_bench,
    scale_fleet,
    time_ratio,
)
from sim.cli import app
from sim.core.errors import InputError
from sim.core.units import parse_rate, parse_size
from sim.faults.injector import GENERIC_KINDS
from sim.mechanisms.registry import REGISTRY

DAYS_30 = 30 * 86400.0
FAKE_BARE = {"events": 1_000_002, "wall_s": 0.5, "cpu_s": 0.25, "events_per_s": 2_000_004.0}


@pytest.fixture(scope="module")
def raw():
    return yaml.safe_load(FLEET.read_text())


@pytest.fixture(scope="module")
def figures():
    """200 hosts for 30 days, with a bare loop that 'took' 0.5 s of wall and 0.25 s of CPU time."""
    return run_bench(hosts=200, duration="30d", bare=lambda n: dict(FAKE_BARE))


# --------------------------------------------------------------------------- the figures
def test_figures_have_the_documented_keys(figures):
    assert set(KEYS) <= set(figures)
    assert set(FLEET_KEYS) <= set(figures["fleet"])
    assert set(BARE_KEYS) <= set(figures["bare"])
    assert set(figures["versions"]) >= {"dcsim", "simpy", "python"}
    json.dumps(figures)  # serialisable as it is


def test_ratio_is_the_fleet_time_over_the_injected_bare_time(figures):
    """ratio = (build_s + run_s) / bare wall 0.5 s; ratio_cpu = (build CPU + run CPU) / 0.25 s: the two
    measured times of the run and nothing else (no event rates)."""
    f = figures["fleet"]
    assert figures["ratio"] == pytest.approx((f["build_s"] + f["run_s"]) / 0.5, rel=1e-12)
    assert figures["ratio_cpu"] == pytest.approx((f["build_cpu_s"] + f["run_cpu_s"]) / 0.25, rel=1e-12)
    assert figures["bare"] == FAKE_BARE


def test_time_ratio_by_hand():
    """54 s of fleet over a 0.6 s bare loop is 90 bare loops; a zero bare time has no ratio."""
    assert time_ratio(54.0, 0.6) == pytest.approx(90.0)
    assert math.isnan(time_ratio(1.0, 0.0))


def test_figures_are_the_requested_fleet(figures):
    assert figures["hosts"] == 200
    assert figures["vms"] == 2000  # the workloads' 100,000 x 200 / 10,000
    assert figures["vms_total"] >= figures["vms"]  # plus the mechanisms' own VMs
    assert figures["duration_s"] == DAYS_30
    assert figures["fleet"]["events"] > 0
    assert figures["facts"]["engine"] == {"fact": "event", "count": figures["fleet"]["events"]}


def test_the_profile_charges_all_of_the_loops_cpu_time(figures):
    """The sampler charges every CPU second between its start and stop to some owner: the owners' sum
    is the event loop's CPU time up to the few calls between the sampler's ends and the loop's."""
    prof = figures["profile"]
    if not CpuSampler.available:
        assert prof is None
        return
    assert prof["cpu_s"] == pytest.approx(figures["fleet"]["run_cpu_s"], rel=0.05, abs=0.02)
    assert sum(r["share"] for r in prof["owners"]) == pytest.approx(1.0)
    assert {r["owner"] for r in prof["owners"]} <= set(figures["facts"]) | {"transfers", "platform", "other"}


def test_no_profile_when_asked_not_to():
    f = run_bench(hosts=20, duration="1d", profile=False, bare=lambda n: dict(FAKE_BARE))
    assert f["profile"] is None


# --------------------------------------------------------------------------- cost per fact
def test_fact_costs_by_hand():
    """restarts 0.3 CPU s over 1,000 restarts = 300 µs each; the bare loop at 0.5 µs per event makes
    that 600 bare events. engine 0.1 s / 50,000 events = 2 µs = 4 bare events. transfers has no
    facts: no cost per fact. Shares: 0.3 / 0.5, 0.1 / 0.5, 0.1 / 0.5; most CPU first, ties by name."""
    rows = fact_costs({"transfers": 0.1, "restarts": 0.3, "engine": 0.1},
                      {"restarts": ("restart", 1000), "engine": ("event", 50_000)}, 0.5e-6)
    assert [r["owner"] for r in rows] == ["restarts", "engine", "transfers"]
    r, e, t = rows
    assert (r["us_per_fact"], r["bare_events_per_fact"], r["share"]) == pytest.approx((300.0, 600.0, 0.6))
    assert (e["us_per_fact"], e["bare_events_per_fact"], e["share"]) == pytest.approx((2.0, 4.0, 0.2))
    assert t["us_per_fact"] is None and t["bare_events_per_fact"] is None and t["facts"] == 0


def test_facts_are_counted_from_the_tables():
    """3 restart rows, sessions offered 5 + 7 = 12, 2 migrations, 100 events; a table absent from the
    run counts 0; a mechanism without an entry in FACTS counts its declared tables' rows."""
    tables = {"restarts": pd.DataFrame({"vm": ["a", "b", "c"]}),
              "sessions": pd.DataFrame({"offered": [5, 7]}),
              "migrations": pd.DataFrame({"vm": ["a", "b"]})}
    facts = count_facts(tables, 100)
    assert facts["restarts"] == ("restart", 3)
    assert facts["sessions"] == ("session offered", 12)
    assert facts["live_migration"] == ("migration", 2)
    assert facts["engine"] == ("event", 100)
    assert facts["workload_manager"] == ("backup stream", 0)
    assert set(REGISTRY.classes) <= set(facts)


def _stack(*modules):
    """Fake frames, innermost first: what the sampler walks (f_code, f_globals, f_back)."""
    frame = None
    for module in reversed(modules):
        frame = SimpleNamespace(f_code=object(), f_globals={"__name__": module}, f_back=frame)
    return frame


@pytest.mark.parametrize("stack, owner", [
    # a session arrival's placement choice, reached from a fault through the bus: the mechanism's
    (("simpy.events", "sim.infra.placement", "sim.mechanisms.sessions", "sim.infra.events",
      "sim.faults.injector", "simpy.core", "sim.runner"), "sessions"),
    # a restart's placement: the default recovery's, even though a fault started it
    (("sim.infra.placement", "sim.faults.recovery", "sim.infra.events", "sim.faults.injector", "sim.runner"),
     "restarts"),
    # an evacuation calling the live migration service: the migration's
    (("sim.infra.transfer", "sim.mechanisms.live_migration", "sim.mechanisms.memory_error_evacuation",
      "sim.faults.dimm"), "live_migration"),
    # the solver from its own timer, inside numpy: transfers (no owner on the stack)
    (("numpy.core", "sim.infra.solver", "simpy.core", "sim.runner"), "transfers"),
    (("simpy.core", "sim.runner"), "engine"),
    (("sim.metrics.recorder", "sim.runner"), "platform"),
    (("sim.mechanisms.base", "sim.runner"), "platform"),
    (("json.encoder",), "other"),
])
def test_owner_is_the_innermost_owner_on_the_stack(stack, owner):
    assert CpuSampler().owner(_stack(*stack)) == owner


def test_owner_of_modules():
    assert owner_of("sim.mechanisms.workload_manager") == (True, "workload_manager")
    assert owner_of("sim.faults.recovery") == (True, "restarts")
    assert owner_of("sim.faults.dimm") == (True, "dimm_errors")
    assert owner_of("sim.faults.injector") == (True, "faults")
    assert owner_of("sim.infra.solver") == (False, "transfers")
    assert owner_of("simpy.core") == (False, "engine")
    assert owner_of("sim.infra.placement") == (False, "platform")
    assert owner_of("pandas.core.frame") is None


@pytest.mark.skipif(not CpuSampler.available, reason="no SIGPROF timer here")
def test_sampler_charges_busy_code_to_its_module():
    """0.3 s of CPU spent in code whose module is ``sim.mechanisms.probe``: (nearly) all of the sampled
    CPU time is the probe's (the test's own frames around it own nothing)."""
    namespace = {"__name__": "sim.mechanisms.probe", "time": time}
    exec("def busy(seconds):\n    end = time.process_time() + seconds\n    n = 0\n"
         "    while time.process_time() < end:\n        n += 1\n    return n\n", namespace)
    sampler = CpuSampler()
    sampler.start()
    try:
        namespace["busy"](0.3)
    finally:
        sampler.stop()
    total = sum(sampler.cpu_s.values())
    assert total >= 0.29
    assert sampler.cpu_s.get("probe", 0.0) / total > 0.9


# --------------------------------------------------------------------------- the scenario
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


def _domains(scaled):
    return [(s["name"], d) for s in scaled["infrastructure"]["sites"] for d in s["broadcast_domains"]]


@pytest.mark.parametrize("hosts", [2, 200, 250, 1000, 3000, 9999, 10_000, 12_345, 30_000, 100_000])
def test_scaling_keeps_domains_of_100_and_vms_proportional(raw, hosts):
    scaled = scale_fleet(raw, hosts)
    assert file_hosts(scaled) == hosts
    sites = scaled["infrastructure"]["sites"]
    assert [s["name"] for s in sites] == ["east", "west"]
    domains = [d for _, d in _domains(scaled)]
    assert len(domains) == max(2, math.ceil(hosts / 100))
    assert max(d["hosts"] for d in domains) - min(d["hosts"] for d in domains) <= 1
    for s in sites:
        names = [d["name"] for d in s["broadcast_domains"]]
        assert len(set(names)) == len(names)
    if hosts % 200 == 0:  # whole domains of 100, split evenly over the sites
        assert {d["hosts"] for d in domains} == {100}
        assert len(sites[0]["broadcast_domains"]) == len(sites[1]["broadcast_domains"])
    for before, after in zip(raw["workloads"], scaled["workloads"], strict=True):
        assert after["count"] == max(1, round(before["count"] * hosts / 10_000))
    for key, section in (raw.get("mechanisms") or {}).items():  # every mechanism by its own hook
        assert scaled["mechanisms"][key] == REGISTRY.classes[key].scale(section, hosts / 10_000)
    assert file_hosts(raw) == 10_000  # the input is not modified


@pytest.mark.parametrize("hosts,concurrent,files", [(1000, 10, 1), (3000, 10, 2), (5000, 10, 2), (10_000, 10, 5),
                                                    (30_000, 10, 15)])
def test_scaling_scales_the_remediation_roll_and_the_roaming_files(raw, hosts, concurrent, files):
    """The east cluster grows with the fleet and max_concurrent stays 10 (the same share of a broadcast
    domain in maintenance at any size: the roll's work per host stays, its length grows); roaming files scale like the workloads (round(5 x N / 10,000), at least
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


def test_scaling_up_to_100000_hosts_by_hand(raw):
    """100,000 hosts: 1,000 domains of 100, 500 per site, east bd01..bd50 from the file then bd51..bd500
    (copies of bd50: profile std, 800 Gbps uplink); web 50,000, app 30,000, db 9,000, batch 10,000 and
    the two database-tier halves of 500 each, x 10 = 1,000,000 VMs. Shared capacities x 10: cores 25,600 -> 256,000 Gbps, the WAN 400 -> 4,000 Gbps, each
    vault 20 -> 200 PiB, 40 -> 400 GB/s read, 30 -> 300 GB/s write."""
    scaled = scale_fleet(raw, 100_000)
    east, west = scaled["infrastructure"]["sites"]
    assert [d["name"] for d in east["broadcast_domains"]] == [f"bd{k:02d}" for k in range(1, 501)]
    assert [d["name"] for d in west["broadcast_domains"]][-1] == "bd500"
    assert {(d["hosts"], d["profile"], d["uplink"]) for _, d in _domains(scaled)} == {(100, "std", "800Gbps")}
    assert [w["count"] for w in scaled["workloads"]] == [500_000, 300_000, 90_000, 100_000, 5_000, 5_000]
    assert east["core"] == pytest.approx(256_000e9 / 8)
    assert scaled["infrastructure"]["wan"][0]["bandwidth"] == pytest.approx(4_000e9 / 8)
    vault = scaled["infrastructure"]["storage"][0]
    assert vault["capacity"] == pytest.approx(200 * 2**50)
    assert (vault["read"], vault["write"]) == pytest.approx((400e9, 300e9))


def test_scaling_to_12345_hosts_by_hand(raw):
    """12,345 hosts: ceil(123.45) = 124 domains, 62 per site; 12,345 = 124 x 99 + 69, so the first 69
    domains (east's 62 and west's first 7) hold 100 and the other 55 hold 99. VMs x 1.2345, rounded
    half to even (Python's round): web 61,725, app 37,035, db 11,110 (11,110.5), batch 12,345, each tier half 617 (617.25)."""
    scaled = scale_fleet(raw, 12_345)
    east, west = scaled["infrastructure"]["sites"]
    assert len(east["broadcast_domains"]) == len(west["broadcast_domains"]) == 62
    assert [d["hosts"] for d in east["broadcast_domains"]] == [100] * 62
    assert [d["hosts"] for d in west["broadcast_domains"]] == [100] * 7 + [99] * 55
    assert [w["count"] for w in scaled["workloads"]] == [61_725, 37_035, 11_110, 12_345, 617, 617]
    assert east["core"] == pytest.approx(parse_rate("25600Gbps") * 1.2345)


def test_scaling_down_keeps_the_shared_capacities(raw):
    """250 hosts: east 2 x (84, 83), west 1 x 83; web 1,250, app 750, db 225, batch 250, each tier half
    12 (12.5, rounded half to even); cores, WAN and vaults as
    in the file (a smaller fleet is never scarcer per host than the file)."""
    scaled = scale_fleet(raw, 250)
    east, west = scaled["infrastructure"]["sites"]
    assert [d["hosts"] for d in east["broadcast_domains"]] == [84, 83]
    assert [d["hosts"] for d in west["broadcast_domains"]] == [83]
    assert [w["count"] for w in scaled["workloads"]] == [1250, 750, 225, 250, 12, 12]
    assert east["core"] == "25600Gbps"
    assert scaled["infrastructure"]["storage"][0]["capacity"] == "20PiB"
    assert parse_size(scaled["infrastructure"]["storage"][0]["capacity"]) == 20 * 2**50


def test_scaling_up_scales_every_mechanisms_population(raw):
    """At 25,000 hosts (factor 2.5): replication 1,000 primaries -> 2,500; sessions 20 active -> 50,
    40 active + 4 backup -> 100 + 10, offered 0.1/s -> 0.25/s (the load per VM stays)."""
    data = dict(raw, mechanisms={
        "replication": {"networks": [{"name": "n", "primaries": 1000}]},
        "sessions": {"clusters": [{"name": "a", "redundancy": "1:1", "active": 20, "capacity": 100},
                                  {"name": "b", "redundancy": "N:K", "active": 40, "backup": 4, "capacity": 100}],
                     "session_types": [{"name": "r", "rate": 0.1, "mean_holding": "180s", "require": "N:K"}]}})
    out = scale_fleet(data, 25_000)["mechanisms"]
    assert out["replication"]["networks"][0]["primaries"] == 2500
    a, b = out["sessions"]["clusters"]
    assert (a["active"], b["active"], b["backup"]) == (50, 100, 10)
    assert out["sessions"]["session_types"][0]["rate"] == pytest.approx(0.25)


def test_added_domain_names_skip_names_taken(raw):
    """A site whose last domain is rack9 and which already has rack10 counts on to rack11."""
    data = dict(raw, infrastructure=dict(raw["infrastructure"], sites=[
        {"name": "a", "broadcast_domains": [{"name": "rack10", "hosts": 100, "profile": "std"},
                                            {"name": "rack9", "hosts": 100, "profile": "std"}]},
        {"name": "b", "broadcast_domains": [{"name": "core", "hosts": 100, "profile": "std"}]}]))
    scaled = scale_fleet(data, 800)
    a, b = scaled["infrastructure"]["sites"]
    assert [d["name"] for d in a["broadcast_domains"]] == ["rack10", "rack9", "rack11", "rack12"]
    assert [d["name"] for d in b["broadcast_domains"]] == ["core", "core-2", "core-3", "core-4"]


def test_more_hosts_than_the_file_load():
    """--hosts above the file's 10,000 is a fleet, not an input error: 20,000 hosts, 200,000 VMs."""
    sc = load_fleet(hosts=20_000, duration="1d")
    assert sum(d.hosts for s in sc.infrastructure.sites for d in s.broadcast_domains) == 20_000
    assert sum(w.count for w in sc.workloads) == 200_000


# --------------------------------------------------------------------------- the command
def test_bench_command_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    r = CliRunner().invoke(app, ["bench", "--hosts", "200", "--duration", "30d", "--json", str(out)])
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    assert set(KEYS) <= set(data)
    assert data["hosts"] == 200 and data["fleet"]["events"] > 0
    assert "ratio" in r.output
    if CpuSampler.available:
        assert "µs per fact" in r.output
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically: no temp file left


@pytest.mark.parametrize("args, where", [
    (["--hosts", "1"], "--hosts"),
    (["--hosts", "0"], "--hosts"),
    (["--duration", "soon"], "--duration"),
    (["--scenario", "/nonexistent/fleet.yaml"], "/nonexistent/fleet.yaml"),
])
def test_bench_input_errors_exit_2_in_one_line(args, where):
    r = CliRunner().invoke(app, ["bench", "--quiet", *args])
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(where + ":"), lines
    assert "Traceback" not in r.output


def test_run_budgets_grow_with_the_fleet_while_it_is_validated(monkeypatch):
    """DCSIM_MAX_VMS=150,000 admits the file's fleet (100,000 workload VMs and the mechanisms' few
    thousand) and would refuse 20,000 hosts (200,000 workload VMs); the bench grows the budget by
    20,000 / 10,000 = 2 while it validates the grown fleet (300,000), then puts it back."""
    monkeypatch.setenv("DCSIM_MAX_VMS", "150000")
    sc = load_fleet(hosts=20_000, duration="1d")
    assert sum(w.count for w in sc.workloads) == 200_000
    assert os.environ["DCSIM_MAX_VMS"] == "150000"
    monkeypatch.setenv("DCSIM_MAX_VMS", "50000")  # below the file's own fleet: still refused, budget x 2 or not
    with pytest.raises(InputError):
        load_fleet(hosts=20_000, duration="1d")
    assert os.environ["DCSIM_MAX_VMS"] == "50000"
