"""The platform: a mechanism added through the contract alone, wiring checks, ownership,
the build phase, the no-room hook, reservations that hold, and where VMs ran."""

from __future__ import annotations

import pytest
from conftest import base_scenario, write_yaml
from platform_probe import Greedy, Needy, Orphan, Probe
from test_memory_errors import run_with_errors, scenario

from sim.core.errors import InputError
from sim.mechanisms.registry import MECHANISMS, Registry, WiringError
from sim.runner import Simulation
from sim.scenario.loader import load_scenario

WITH_PROBE = Registry((*MECHANISMS, Probe))


def load(data, tmp_path, registry=WITH_PROBE):
    return load_scenario(str(write_yaml(tmp_path / "s.yaml", data)), [], registry)


def run(data, tmp_path, registry=WITH_PROBE):
    return Simulation(load(data, tmp_path, registry), registry=registry).run()


def test_a_mechanism_adds_its_table_metric_and_operation_through_the_contract(tmp_path):
    """``probe`` lives in tests/ only: its table, metric and operation kind reach the schema, the
    recorder, the summary and the dispatch without any other file knowing it."""
    sc = base_scenario(mechanisms={"probe": {"vms": 2}},
                       operations=[{"kind": "ping", "at": "1h", "vm": "web-001"}])
    out = run(sc, tmp_path)
    probes = out.tables["probes"]
    assert list(probes["event"]) == ["ping"]
    assert probes.iloc[0]["time_s"] == 3600.0
    assert out.metrics["probe.events_total"] == 1
    ops = out.tables["operations"]
    assert list(ops["outcome"]) == ["done"] and list(ops["detail"]) == ["pong"]
    # its VMs were placed at build time, through the shared placement, and recorded
    placed = out.tables["placements"]
    assert set(placed.loc[placed["reason"] == "build", "vm"]) == {"probe-000", "probe-001"}
    # and they are not workload VMs: availability is over the 8 web VMs
    assert out.metrics["vms.count"] == 8


def test_the_operation_kind_is_validated_like_the_contract_ones(tmp_path):
    sc = base_scenario(mechanisms={"probe": {}}, operations=[{"kind": "ping", "at": "1h", "vm": "nope"}])
    with pytest.raises(InputError) as err:
        load(sc, tmp_path)
    assert any("operations.0.vm" in line for line in err.value.lines())
    # without the mechanism registered, the kind is unknown
    sc = base_scenario(operations=[{"kind": "ping", "at": "1h", "vm": "web-000"}])
    with pytest.raises(InputError):
        load(sc, tmp_path, Registry(MECHANISMS))


def test_two_mechanisms_claiming_one_operation_kind_are_refused_at_wiring():
    with pytest.raises(WiringError, match="both claim operation kind 'ping'"):
        Registry((*MECHANISMS, Probe, Greedy))


def test_a_needed_service_from_a_disabled_mechanism_is_an_input_error(tmp_path):
    reg = Registry((*MECHANISMS, Needy))
    sc = base_scenario(mechanisms={"needy": {}, "live_migration": {"enabled": False}})
    with pytest.raises(InputError) as err:
        Simulation(load(sc, tmp_path, reg), registry=reg, source="s.yaml")
    assert err.value.lines() == [
        "s.yaml: mechanisms.live_migration.enabled: expected true (mechanisms.needy needs its "
        "live_migration service), got false"]
    # enabled, it wires
    sc = base_scenario(mechanisms={"needy": {}})
    Simulation(load(sc, tmp_path, reg), registry=reg)


def test_a_service_nobody_offers_is_a_wiring_error(tmp_path):
    reg = Registry((*MECHANISMS, Orphan))
    with pytest.raises(WiringError, match="nobody_offers_this"):
        Simulation(load(base_scenario(mechanisms={"orphan": {}}), tmp_path, reg), registry=reg)


def test_a_mechanism_vm_that_cannot_be_placed_is_an_input_error_naming_its_path(tmp_path):
    sc = base_scenario(mechanisms={"probe": {"vms": 1, "memory": "1TiB"}})
    with pytest.raises(InputError) as err:
        Simulation(load(sc, tmp_path), registry=WITH_PROBE, source="s.yaml")
    (line,) = err.value.lines()
    assert line.startswith("s.yaml: mechanisms.probe.vms: expected a VM of 1024 GiB that fits")
    assert line.endswith("got no host with room for probe-000")


def test_a_mechanism_vm_is_handled_by_its_owner_only(tmp_path):
    """probe-000 runs on a host that crashes at 1 h (never repaired in the run), and both probe VMs
    fail on their own (vm_mtbf 2 h, exponential repair): every stop goes to the probe, none to the
    default recovery (no row of ``restarts`` names a probe VM), and each injected VM failure is a
    row of ``faults`` matched by one stop in ``probes``."""
    sc = base_scenario(mechanisms={"probe": {"vms": 2, "vm_mtbf": "2h", "repair": "10m",
                                             "hosts": ["east/bd1/h00", "east/bd2/h00"]}},
                       faults=[{"kind": "host_crash", "at": "1h", "target": "east/bd1/h00", "repair": "2d"}])
    sc["duration"] = "3d"
    out = run(sc, tmp_path)
    restarts = out.tables["restarts"]
    assert not restarts["vm"].str.startswith("probe").any()
    probes = out.tables["probes"]
    faults = out.tables["faults"]
    vm_failures = faults[(faults["kind"] == "vm_crash") & faults["target"].str.startswith("probe")]
    host_stops = probes[(probes["event"] == "stopped") & (probes["host"] == "")]
    assert (probes["event"] == "stopped").sum() == len(vm_failures) + len(host_stops)
    assert len(host_stops) == 1  # probe-000, when its host crashed (it is off its host then)
    # probe-001 never loses its host: an alternating renewal of Exp(2 h) up and Exp(10 min) repair.
    # Over t = 72 h its failure count has mean t/mu and variance t sigma^2/mu^3 (renewal CLT), with
    # mu = 130 min and sigma^2 = 120^2 + 10^2 min^2: mean 33.2, sd 5.3; 99.9 % band = mean +- 3.29 sd.
    t, mu, var = 72 * 60.0, 130.0, 120.0**2 + 10.0**2
    mean, sd = t / mu, (t * var / mu**3) ** 0.5
    n1 = int((vm_failures["target"] == "probe-001").sum())
    assert mean - 3.29 * sd < n1 < mean + 3.29 * sd
    repaired1 = int(((probes["event"] == "repaired") & (probes["vm"] == "probe-001")).sum())
    assert repaired1 in (n1 - 1, n1)  # every failure repaired, but perhaps the last


def test_the_no_room_hook_takes_a_waiting_vm(tmp_path):
    """db-000 may only run on east/bd1/h00, which crashes: with no room anywhere, the restart offers
    it on the no_room chain, the probe takes it, and the default recovery never restarts it."""
    sc = base_scenario(
        workloads=[{"name": "db", "count": 1, "vm": {"vcpus": 4, "memory": "16GiB", "disk": "100GiB"},
                    "placement": {"hosts": ["east/bd1/h00"]}}],
        faults=[{"kind": "host_crash", "at": "10m", "target": "east/bd1/h00", "repair": "1h"}],
        mechanisms={"probe": {"vms": 0, "take_no_room": True}},
    )
    out = run(sc, tmp_path)
    probes = out.tables["probes"]
    assert list(probes["event"]) == ["took"] and list(probes["vm"]) == ["db-000"]
    assert probes.iloc[0]["time_s"] == 630.0  # crash + detection 30 s
    assert len(out.tables["restarts"]) == 0
    # without the hook it waits for the repair and restarts
    sc["mechanisms"] = {}
    out = run(sc, tmp_path)
    assert list(out.tables["restarts"]["vm"]) == ["db-000"]


def test_n_vms_evacuated_at_once_to_n_hosts_with_room_for_one_each_all_succeed():
    """8 VMs of 7 GiB on h00; h01..h08 each hold a 52 GiB filler VM and so have 12 GiB free: room
    for exactly one of them. An uncorrectable error on h00 evacuates all 8 at the same instant;
    each migrate() reserves its target before it returns, so the 8 choices land on 8 distinct
    hosts and all 8 migrations complete (before: 6 failed on targets already taken)."""
    GiB = 1024.0**3
    sc = scenario(vms=8, memory=7 * GiB, hosts=9, evacuation={"target_hosts": "same_domain",
                                                               "guest_crash_probability": 0.0})
    sc["workloads"].append({"name": "filler", "count": 8,
                            "vm": {"vcpus": 2, "memory": 52 * GiB, "disk": "10GiB", "dirty_rate": 0},
                            "placement": {"hosts": [f"east/bd1/h{i:02d}" for i in range(1, 9)], "spread": "pack"}})
    sim, out = run_with_errors(sc, [(3600.0, "east/bd1/h00")])
    mig = out.tables["migrations"]
    assert len(mig) == 8
    assert (mig["outcome"] == "completed").all(), mig[["vm", "target", "reason"]]
    assert sorted(mig["target"]) == [f"east/bd1/h{i:02d}" for i in range(1, 9)]
    me = out.tables["memory_errors"]
    assert int(me["vms_evacuated"].sum()) == 8


def test_a_guest_crash_keeps_its_memory_on_its_host_through_the_reboot(tmp_path):
    """web-000 crashes at 1 h on a host that a 200 GiB VM wants a few seconds later: the crashed
    guest keeps its 16 GiB reserved, so the newcomer (hosts allow only that host) does not fit and
    the guest reboots in place after detection + boot (90 s)."""
    sc = base_scenario(
        workloads=[{"name": "web", "count": 1, "vm": {"vcpus": 4, "memory": "16GiB", "disk": "10GiB"},
                    "placement": {"hosts": ["east/bd1/h00"]}},
                   {"name": "big", "count": 1, "vm": {"vcpus": 4, "memory": "200GiB", "disk": "10GiB"},
                    "placement": {"hosts": ["east/bd1/h01"]}}],
        faults=[{"kind": "vm_crash", "at": "1h", "target": "web-000"}],
    )
    sim = Simulation(load(sc, tmp_path), registry=WITH_PROBE)
    env = sim.ctx.env
    host = sim.dc.hosts["east/bd1/h00"]
    seen = []

    def look():
        yield env.timeout(3600 + 10)
        seen.append((sim.dc.vms["web-000"].host, host.free_memory))

    env.process(look())
    out = sim.run()
    assert seen[0][0] is host
    assert seen[0][1] == pytest.approx(host.capacity - 16 * 1024.0**3)
    r = out.tables["restarts"].iloc[0]
    assert (r["from_host"], r["to_host"], r["downtime_s"]) == ("east/bd1/h00", "east/bd1/h00", 90.0)


def test_placements_record_where_each_vm_ran(tmp_path):
    """Initial placement of 8 VMs, then a host crash restarts one: 9 rows, the last a restart."""
    sc = base_scenario(faults=[{"kind": "host_crash", "at": "1h", "target": "east/bd1/h00", "repair": "2h"}])
    out = run(sc, tmp_path, Registry(MECHANISMS))
    p = out.tables["placements"]
    assert list(p.columns) == ["time_s", "vm", "host", "reason"]
    assert (p["reason"] == "initial").sum() == 8
    last = p.iloc[-1]
    assert (last["vm"], last["reason"], last["time_s"]) == ("web-000", "restart", 3600.0 + 30.0)
    assert last["host"] != "east/bd1/h00"
    assert out.metrics["placements.count"] == 9


def test_levels_hold_one_row_per_gauge_at_time_zero(tmp_path):
    out = run(base_scenario(), tmp_path, Registry(MECHANISMS))
    lv = out.tables["levels"]
    at0 = lv[lv["time_s"] == 0.0]
    assert not at0.duplicated(["entity", "metric"]).any()
    assert at0.loc[at0["metric"] == "vms_running", "value"].tolist() == [8.0]


def test_image_drift_is_driven_by_faults_without_any_mechanism(tmp_path):
    """Cluster hosts start on the cluster's image; a scheduled drift at 1 h changes exactly one
    component of each targeted host's running image (remediation is not needed for that), and
    hosts in no cluster have no image to drift."""
    sc = base_scenario(clusters=[{"name": "prod", "hosts": ["east/bd1/*"],
                                  "image": {"base": "8.0.2", "components": {"vsan": "8.0.2", "nic": "1.4"}}}],
                       faults=[{"kind": "image_drift", "at": "1h", "target": ["east/bd1/h00", "east/bd2/h00"]}])
    sim = Simulation(load(sc, tmp_path), registry=WITH_PROBE)
    before = dict(sim.dc.hosts["east/bd1/h00"].image)
    assert before == {"base": "8.0.2", "vsan": "8.0.2", "nic": "1.4"}
    out = sim.run()
    after = sim.dc.hosts["east/bd1/h00"].image
    changed = [k for k in before if before[k] != after[k]]
    assert len(changed) == 1 and "+drift" in after[changed[0]]
    assert sim.dc.hosts["east/bd2/h00"].image == {}
    assert list(out.tables["faults"]["target"]) == ["east/bd1/h00"]
