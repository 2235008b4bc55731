"""Memory-error evacuation (docs/migration.md): micro-scenarios with injected errors, hand-derived.

Errors are injected at chosen times through ``DimmInjector.uncorrectable`` so that each
story is deterministic; the stochastic injector has its own tests (test_dimm*.py).
"""

from __future__ import annotations

import pytest

from sim.runner import Simulation
from sim.scenario.loader import validate_scenario

GiB = 1024.0**3
GbE = 125e6
H0 = "east/bd1/h00"


def scenario(*, vms=3, memory=4 * GiB, dirty=0.0, reserved=0, host_memory=64 * GiB, nic="1Gbps",
             evacuation=None, migration=None, hosts=4, domains=1, placement=("*",), **extra) -> dict:
    """``vms`` VMs packed first fit by host name, so on east/bd1/h00 while they fit there (allowed
    anywhere, for restarts and evacuation)."""
    sc = {
        "name": "memerr", "seed": 3, "duration": "1d",
        "infrastructure": {
            "host_profiles": {"p": {"cores": 32, "memory": host_memory, "reserved_memory": reserved, "dimms": 8,
                                    "nic": nic}},
            "detection": "30s", "repair": "4h",
            "sites": [{"name": "east", "broadcast_domains": [
                {"name": f"bd{d + 1}", "hosts": hosts, "profile": "p"} for d in range(domains)]}],
        },
        "workloads": [{"name": "vm", "count": vms,
                       "vm": {"vcpus": 2, "memory": memory, "disk": "10GiB", "dirty_rate": dirty, "boot_time": "60s"},
                       "placement": {"hosts": list(placement), "spread": "pack"}}],
        "mechanisms": {"live_migration": migration or {"device_state": 0, "switchover": 0}},
    }
    if evacuation is not False:
        sc["mechanisms"]["memory_error_evacuation"] = evacuation or {}
    sc.update(extra)
    return sc


def run_with_errors(data: dict, errors: list[tuple[float, str]]):
    """Runs the scenario with uncorrectable errors injected at ``(time, host)``."""
    sim = Simulation(validate_scenario(data))
    env = sim.ctx.env

    def inject(at, host):
        yield env.timeout(at)
        sim.dimms.uncorrectable(sim.dc.hosts[host], dimm=2)

    for at, host in errors:
        env.process(inject(at, host))
    out = sim.run()
    return sim, out


def uncorrectable_rows(out):
    me = out.tables["memory_errors"]
    return me[me["kind"] == "uncorrectable"].sort_values("time_s").reset_index(drop=True)


def test_evacuation_moves_every_vm_then_repairs_the_host(tmp_path):
    """Three idle 4 GiB VMs at 1 GbE, guest crashes impossible (probability 0), no hypervisor share
    (reserved 0): the error at 100 s is signalled at 101 s; the three migrations leave together and
    share the source NIC, each taking 3 x 4 GiB / R; then the host goes to repair for 4 h."""
    data = scenario(evacuation={"guest_crash_probability": 0.0, "target_hosts": "same_domain"})
    sim, out = run_with_errors(data, [(100.0, H0)])
    m = out.tables["migrations"]
    assert len(m) == 3
    assert (m["outcome"] == "completed").all()
    assert (m["trigger"] == "memory_error").all()
    assert m["time_s"].tolist() == pytest.approx([101.0] * 3)
    done = 101.0 + 3 * 4 * GiB / GbE
    assert m["end_s"].tolist() == pytest.approx([done] * 3)
    assert all(t.startswith("east/bd1/") and t != H0 for t in m["target"])
    row = uncorrectable_rows(out).iloc[0]
    assert row["action"] == "evacuated"
    assert row["owner"] in ("vm", "free")
    assert row["containment"] in ("page_lost", "page_retired")
    assert row["vms_evacuated"] == 3 and row["vms_crashed"] == 0
    assert row["end_s"] == pytest.approx(done)
    faults = out.tables["faults"]
    assert faults["kind"].tolist() == ["dimm_errors"]
    assert faults["time_s"].iloc[0] == pytest.approx(done)
    assert faults["repair_s"].iloc[0] == pytest.approx(4 * 3600)
    assert sim.dc.hosts[H0].state == "up"  # back after the repair, with fresh DIMMs
    inc = out.tables["incidents"]
    assert set(inc["cause"]) == {"migration"}
    assert set(inc["mechanism"]) == {"memory_error_evacuation"}
    assert out.metrics["memory_errors.vms_evacuated"] == 3
    assert out.metrics["memory_errors.vms_crashed"] == 0
    assert out.metrics["memory_errors.host_crashes"] == 0
    assert out.metrics["memory_errors.uncorrectable"] == 1
    assert out.metrics["memory_errors.vm_downtime_s_total"] == pytest.approx(inc["downtime_s"].sum())


def test_error_in_a_vm_page_crashes_that_guest(tmp_path):
    """The VMs fill the host's memory exactly (4 x 16 GiB = 64 GiB, no hypervisor share), so the error
    lands in a VM; with guest_crash_probability 1 that VM crashes (cause memory_error) and restarts
    after detection 30 s + boot 60 s, while the other three are evacuated."""
    data = scenario(vms=4, memory=16 * GiB, nic="10Gbps", evacuation={"guest_crash_probability": 1.0})
    _, out = run_with_errors(data, [(100.0, H0)])
    row = uncorrectable_rows(out).iloc[0]
    assert row["owner"] == "vm"
    assert row["containment"] == "guest_crash"
    assert row["vms_crashed"] == 1 and row["vms_evacuated"] == 3
    inc = out.tables["incidents"]
    crash = inc[inc["cause"] == "memory_error"]
    assert crash["subject"].tolist() == [row["vm"]]
    assert crash["downtime_s"].tolist() == pytest.approx([90.0])
    assert crash["start_s"].tolist() == pytest.approx([101.0])
    assert out.metrics["memory_errors.vm_downtime_s_total"] == pytest.approx(inc["downtime_s"].sum())
    restarts = out.tables["restarts"]
    assert restarts["to_host"].iloc[0] != H0  # the failing host takes no new VMs


def test_error_in_hypervisor_memory_crashes_the_host(tmp_path):
    """127/128 of the host's memory is the hypervisor's and no VM runs there, so an error lands in
    hypervisor memory (else in free memory); where it does, the host crashes at signal time, 1 s
    after the error. Over ten seeds at least one lands there (all ten miss with (1/128)^10)."""
    seen = 0
    for seed in range(10):
        data = scenario(vms=1, memory=GiB / 2, host_memory=128 * GiB, reserved=127 * GiB, seed=seed)
        data["workloads"][0]["placement"]["hosts"] = ["east/bd1/h01"]
        sim, out = run_with_errors(data, [(100.0, H0)])
        row = uncorrectable_rows(out).iloc[0]
        if row["owner"] != "hypervisor":
            assert row["owner"] == "free" and row["action"] == "evacuated"
            continue
        seen += 1
        assert row["action"] == "host_crash"
        assert row["end_s"] == pytest.approx(101.0)
        assert out.metrics["memory_errors.host_crashes"] == 1
        assert out.tables["faults"]["time_s"].tolist() == pytest.approx([101.0])
    assert seen > 0


def test_second_error_during_evacuation_crashes_the_host(tmp_path):
    """Four 16 GiB VMs at 1 GbE with max_per_host 1: they leave one after another (137 s each).
    A second error 200 s after the first crashes the host: the VM in flight and the two still
    waiting are stopped (cause memory_error) and restart; one VM got away."""
    data = scenario(vms=4, memory=16 * GiB, evacuation={"guest_crash_probability": 0.0},
                    migration={"device_state": 0, "switchover": 0, "max_per_host": 1})
    _, out = run_with_errors(data, [(100.0, H0), (300.0, H0)])
    rows = uncorrectable_rows(out)
    assert rows["action"].tolist() == ["interrupted", "host_crash"]
    assert rows["vms_evacuated"].tolist() == [1, 0]
    assert rows["vms_crashed"].tolist() == [0, 3]
    assert rows["end_s"].tolist() == pytest.approx([300.0, 300.0])
    m = out.tables["migrations"].sort_values("vm")
    assert m["outcome"].tolist() == ["completed", "failed", "failed", "failed"]
    inc = out.tables["incidents"]
    crashed = inc[inc["cause"] == "memory_error"]
    assert len(crashed) == 3
    assert (crashed["outcome"] == "restarted").all()
    assert out.metrics["memory_errors.vms_crashed"] == 3
    assert out.metrics["memory_errors.host_crashes"] == 1
    assert out.metrics["memory_errors.uncorrectable"] == 2
    assert len(out.tables["faults"]) == 1  # one outage, one repair


def test_second_error_during_postcopy_pull_loses_the_vm(tmp_path):
    """Post-copy evacuation: the VM runs on the target at once, but its memory is pulled from the
    failing host for 4 GiB / R = 34 s; a second error 10 s in loses it."""
    data = scenario(vms=1, evacuation={"guest_crash_probability": 0.0},
                    migration={"mode": "postcopy", "device_state": 0, "switchover": 0})
    _, out = run_with_errors(data, [(100.0, H0), (111.0, H0)])
    rows = uncorrectable_rows(out)
    assert rows["action"].tolist() == ["interrupted", "host_crash"]
    assert rows["vms_crashed"].tolist() == [0, 1]
    m = out.tables["migrations"].iloc[0]
    assert m["outcome"] == "failed" and "lost" in m["reason"]
    inc = out.tables["incidents"]
    assert inc[inc["cause"] == "memory_error"]["outcome"].tolist() == ["restarted"]


def test_no_room_elsewhere_vms_are_shut_down_by_the_repair(tmp_path):
    """target_hosts same_domain in a one-host domain: nowhere to go, so the VMs stay and stop when the
    host goes to repair (counted as crashed)."""
    data = scenario(vms=2, hosts=1, domains=2, evacuation={"guest_crash_probability": 0.0,
                                                              "target_hosts": "same_domain"})
    _, out = run_with_errors(data, [(100.0, H0)])
    row = uncorrectable_rows(out).iloc[0]
    assert row["vms_evacuated"] == 0 and row["vms_crashed"] == 2
    assert len(out.tables["migrations"]) == 0
    inc = out.tables["incidents"]
    assert (inc["cause"] == "memory_error").sum() == 2


def test_same_cluster_targets(tmp_path):
    """target_hosts same_cluster keeps the VMs inside the failing host's cluster (scope any)."""
    data = scenario(vms=3, domains=2, evacuation={"guest_crash_probability": 0.0},
                    migration={"device_state": 0, "switchover": 0, "scope": "any"},
                    clusters=[{"name": "c", "hosts": ["east/bd1/h00", "east/bd2/*"], "image": {"base": "1"}}])
    _, out = run_with_errors(data, [(100.0, H0)])
    targets = out.tables["migrations"]["target"]
    assert len(targets) == 3
    assert all(t.startswith("east/bd2/") for t in targets)


def test_without_evacuation_the_host_crashes_at_the_error(tmp_path):
    """Disabled: the host crashes at 100 s, its three VMs restart elsewhere after 30 s + 60 s each;
    the same table and metrics are written."""
    for evacuation in (False, {"enabled": False}):
        _, out = run_with_errors(scenario(evacuation=evacuation), [(100.0, H0)])
        row = uncorrectable_rows(out).iloc[0]
        assert row["action"] == "host_crash"
        assert row["vms_crashed"] == 3
        assert row["end_s"] == pytest.approx(100.0)
        inc = out.tables["incidents"]
        assert inc["cause"].tolist() == ["memory_error"] * 3
        assert inc["downtime_s"].tolist() == pytest.approx([90.0] * 3)
        m = out.metrics
        assert m["memory_errors.vms_crashed"] == 3
        assert m["memory_errors.vms_evacuated"] == 0
        assert m["memory_errors.host_crashes"] == 1
        assert m["memory_errors.vm_downtime_s_total"] == pytest.approx(270.0)
        assert len(out.tables["migrations"]) == 0


def test_evacuation_pauses_are_short(tmp_path):
    """Evacuation blackouts of typical VMs stay under a second: Google Compute Engine reports a
    live-migration blackout usually under 1 s, Azure a pause typically no more than 5 s.
    Typical VMs: 8 GiB dirtying 100 MB/s over 10 GbE with QEMU's 300 ms target."""
    data = scenario(vms=6, memory=8 * GiB, dirty=100e6, nic="10Gbps",
                    evacuation={"guest_crash_probability": 0.0}, migration={})
    _, out = run_with_errors(data, [(100.0, H0)])
    d = out.tables["migrations"]["downtime_s"]
    assert len(d) == 6
    assert d.median() < 1.0
    assert d.max() < 5.0
