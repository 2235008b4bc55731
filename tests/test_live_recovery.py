"""Live recovery from backup: time to service = mount latency + boot, far below a traditional restore
plus boot; the background restore moves the disk's bytes once; retained writes carried over (none
lost) under random writes and faults; the no_room trigger; failures mid-recovery; bad input.

The scenario of every test (``scenario``): one site ``east`` of two domains x 4 hosts (NIC 10 Gbps =
1.25 GB/s, host disk write 1 GB/s), one VM ``db-000`` pinned to ``east/bd1/h00`` (16 GiB memory,
``boot_time`` 60 s, disk 100 GB unless given), a weekly/daily policy (its full of 100 GB starts at
t = 0 and takes 100 / 0.5 = 200 s: the vault writes at 0.5 GB/s), one storage system ``vault`` read at
1 GB/s, and ``live_recovery`` with target hosts ``east/bd2/*``, mount latency 30 s, switchover 2 s.
A restore from the vault to a target host's disk runs at min(1 GB/s read, 1.25 GB/s NIC, 1 GB/s
disk write) = 1 GB/s. Detection is the platform's 30 s.
"""

from __future__ import annotations

import pytest
from conftest import base_scenario, refused, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

GB = 1e9
MB = 1e6
T_OP = 3600.0  # the recover operation
MOUNT, BOOT, SWITCH, DETECT = 30.0, 60.0, 2.0, 30.0


def scenario(disk="100GB", dirty="20MB/s", ops=(), faults=(), enabled=True, duration="3h", policies=True, **lr):
    sc = base_scenario(
        duration=duration, faults=list(faults), operations=list(ops),
        workloads=[{"name": "db", "count": 1, "placement": {"hosts": ["east/bd1/h00"]},
                    "vm": {"vcpus": 4, "memory": "16GiB", "disk": disk, "dirty_rate": dirty, "boot_time": "1m"}}],
        mechanisms={"live_recovery": {"enabled": enabled, "target_hosts": ["east/bd2/*"], **lr}})
    if policies:
        sc["mechanisms"]["workload_manager"] = {"policies": [{"workloads": ["db"], "full_every": "7d",
                                                              "incremental_every": "1d"}]}
    sc["infrastructure"]["storage"] = [{"name": "vault", "site": "east", "capacity": "1PiB", "read": "1GB/s",
                                        "write": "0.5GB/s"}]
    return sc


def recover(at=T_OP):
    return {"kind": "recover", "at": at, "vm": "db-000"}


def one(out):
    r = out.tables["recoveries"]
    assert len(r) == 1, r
    return r.iloc[0]


def test_a_recover_operation_serves_after_mount_plus_boot_then_restores_carries_and_switches(tmp_path):
    """Recover at 3600 s (the point of t = 0, restorable from 200 s: RPO 3600 s). The VM is stopped
    then (lost at 3600) and placed on a target host: it serves at 3600 + 30 (mount) + 60 (boot) =
    3690, time to service 90 s. The background restore moves 100 GB at 1 GB/s: 3690 -> 3790, 100 s.
    Writes retained meanwhile: 20 MB/s x 100 s = 2 GB, carried over at 1 GB/s in 2 s (3790 -> 3792);
    the 20 MB/s x 2 s = 40 MB written during the carry-over are mirrored: written = carried =
    2.04 GB, nothing lost. Degraded 100 + 2 = 102 s, then the 2 s switchover: done at 3794. Two
    incidents: the loss (cause operation, 90 s, recovered) and the switchover (2 s)."""
    out = run(scenario(ops=[recover()]), tmp_path)
    r = one(out)
    assert r["outcome"] == "completed" and r["mode"] == "live" and r["trigger"] == "operation"
    assert r["host"].startswith("east/bd2/")
    assert r["time_s"] == T_OP and r["point_s"] == 0.0 and r["rpo_s"] == T_OP
    assert r["time_to_service_s"] == pytest.approx(MOUNT + BOOT)
    assert r["restore_time_s"] == pytest.approx(100.0)
    assert r["restored_bytes"] == pytest.approx(100 * GB, rel=1e-12)
    assert r["written_bytes"] == pytest.approx(2.04 * GB)
    assert r["carried_bytes"] == pytest.approx(2.04 * GB)
    assert r["degraded_s"] == pytest.approx(102.0)
    assert r["switchover_downtime_s"] == pytest.approx(SWITCH)
    assert r["end_s"] == pytest.approx(3794.0)
    m = out.metrics
    assert m["recovery.count"] == 1 and m["recovery.open"] == 0
    assert m["recovery.time_to_service_s_mean"] == pytest.approx(90.0)
    assert m["recovery.restore_time_s_mean"] == pytest.approx(100.0)
    assert m["recovery.degraded_s_mean"] == pytest.approx(102.0)
    assert m["recovery.switchover_downtime_s_mean"] == pytest.approx(SWITCH)
    assert m["recovery.data_lost_bytes_total"] == 0.0
    inc = out.tables["incidents"]
    assert list(inc["cause"]) == ["operation", "migration"]
    assert list(inc["outcome"]) == ["recovered", "migrated"]
    assert list(inc["downtime_s"]) == pytest.approx([90.0, 2.0])


def test_written_bytes_are_capped_at_the_disk(tmp_path):
    """dirty_rate 2 GB/s: 2 GB/s x 100 s = 200 GB written over a 100 GB disk: unique bytes 100 GB.
    Their carry-over takes 100 s at 1 GB/s (mirrored writes add nothing: the disk is all written),
    so degraded = 100 + 100 = 200 s; written = carried = 100 GB."""
    r = one(run(scenario(dirty="2GB/s", ops=[recover()]), tmp_path))
    assert r["written_bytes"] == pytest.approx(100 * GB) and r["carried_bytes"] == pytest.approx(100 * GB)
    assert r["degraded_s"] == pytest.approx(200.0) and r["data_lost_bytes"] == 0.0


def test_time_to_service_is_far_below_a_traditional_restore_plus_boot(tmp_path):
    """The no_room path. A 1 TB disk (its full: 1e12 / 0.5e9 = 2000 s). Its only host crashes at 1 h
    (repair 4 h): after detection (30 s) there is no room for it, a restorable point exists, a
    target host has room.
    Live: serving at 30 + 30 (mount) + 60 (boot) = 120 s after the loss.
    Traditional (disabled): 30 + 1e12 / 1e9 (restore) + 60 (boot) = 1090 s, 9x longer.
    Both restore the whole disk once in 1000 s; the incident closes ``recovered`` either way."""
    fault = [{"kind": "host_crash", "at": "1h", "target": "east/bd1/h00", "repair": "4h"}]
    live = run(scenario(disk="1TB", faults=fault), tmp_path)
    trad = run(scenario(disk="1TB", faults=fault, enabled=False), tmp_path)
    a, b = one(live), one(trad)
    assert a["trigger"] == b["trigger"] == "no_room"
    assert (a["mode"], b["mode"]) == ("live", "traditional")
    assert a["time_to_service_s"] == pytest.approx(DETECT + MOUNT + BOOT)
    assert b["time_to_service_s"] == pytest.approx(DETECT + 1000.0 + BOOT)
    assert a["restored_bytes"] == pytest.approx(1e12, rel=1e-12) and b["restored_bytes"] == pytest.approx(1e12)
    assert a["restore_time_s"] == pytest.approx(1000.0) and b["restore_time_s"] == pytest.approx(1000.0)
    assert b["degraded_s"] == 0.0 and b["switchover_downtime_s"] == 0.0
    for out, expect in ((live, 120.0), (trad, 1090.0)):
        inc = out.tables["incidents"].iloc[0]
        assert inc["cause"] == "host_crash" and inc["outcome"] == "recovered"
        assert inc["downtime_s"] == pytest.approx(expect)
        assert out.metrics["recovery.time_to_service_s_mean"] == pytest.approx(expect)


def test_without_a_backup_point_no_room_is_left_to_the_default(tmp_path):
    """No policy: nothing to recover from, the VM waits for its host (repair 1 h: back at 2 h, then
    boot 60 s). Metrics: counts 0, means omitted."""
    sc = scenario(faults=[{"kind": "host_crash", "at": "1h", "target": "east/bd1/h00", "repair": "1h"}],
                  policies=False, enabled=False)
    del sc["mechanisms"]["live_recovery"]
    out = run(sc, tmp_path)
    assert len(out.tables["recoveries"]) == 0
    assert out.metrics["recovery.count"] == 0 and out.metrics["recovery.data_lost_bytes_total"] == 0.0
    assert not any(k.startswith("recovery.time_to_service") for k in out.metrics)
    inc = out.tables["incidents"].iloc[0]
    assert inc["outcome"] == "restarted" and inc["downtime_s"] == pytest.approx(3600.0 + BOOT)


def test_a_storage_outage_while_degraded_pauses_the_vm_and_stalls_the_restore(tmp_path):
    """Serving at 3690; the vault fails at 3740 (50 GB restored) for 100 s. The VM pauses (it reads
    from the backup), the restore stalls, writes stop: back at 3840, the restore ends at 3890
    (restore_time 200 s). Written while serving: 20 MB/s x (50 + 50) s = 2 GB, carried in 2 s;
    degraded 102 s (paused time excluded); done at 3890 + 2 + 2 = 3894. Incidents: the loss (90 s),
    the outage (100 s, resumed), the switchover (2 s)."""
    out = run(scenario(ops=[recover()], faults=[{"kind": "storage_outage", "at": 3740, "target": "vault",
                                                "repair": "100s"}]), tmp_path)
    r = one(out)
    assert r["outcome"] == "completed" and r["time_to_service_s"] == pytest.approx(90.0)
    assert r["restore_time_s"] == pytest.approx(200.0) and r["restored_bytes"] == pytest.approx(100 * GB)
    assert r["degraded_s"] == pytest.approx(102.0) and r["written_bytes"] == pytest.approx(2.04 * GB)
    assert r["end_s"] == pytest.approx(3894.0) and r["data_lost_bytes"] == 0.0
    inc = out.tables["incidents"]
    assert list(inc["cause"]) == ["operation", "storage_outage", "migration"]
    assert list(inc["downtime_s"]) == pytest.approx([90.0, 100.0, 2.0])


def test_a_storage_outage_at_the_instant_the_boot_ends_pauses_a_serving_vm(tmp_path):
    """The vault fails at 3690, the instant the boot ends: the boot has ended (a completion at t wins
    over a failure at t), the VM serves (time to service 90 s) and pauses at once for the 100 s
    outage. The restore then runs 3790 -> 3890; written 20 MB/s x 100 s = 2 GB; degraded 102 s."""
    out = run(scenario(ops=[recover()], faults=[{"kind": "storage_outage", "at": 3690, "target": "vault",
                                                "repair": "100s"}]), tmp_path)
    r = one(out)
    assert r["time_to_service_s"] == pytest.approx(90.0) and r["restore_end_s"] == pytest.approx(3890.0)
    assert r["degraded_s"] == pytest.approx(102.0) and r["data_lost_bytes"] == 0.0
    assert list(out.tables["incidents"]["downtime_s"]) == pytest.approx([90.0, 100.0, 2.0])


def test_a_storage_outage_during_the_mount_restarts_it_when_the_storage_is_back(tmp_path):
    """The vault fails at 3650 (mid-mount) for 10 min: the mount and boot restart at 4250 and the
    VM serves at 4250 + 90 = 4340: time to service 740 s."""
    r = one(run(scenario(ops=[recover()], faults=[{"kind": "storage_outage", "at": 3650, "target": "vault",
                                                   "repair": "10m"}]), tmp_path))
    assert r["time_to_service_s"] == pytest.approx(740.0) and r["outcome"] == "completed"


@pytest.mark.parametrize(("kind", "restored", "restore_end"), [
    # crash: the 50 GB restored live on the site's replicated storage; the other 50 GB after re-serving
    ("host_crash", 100 * GB, 3740.0 + MOUNT + BOOT + 50.0),
    # disk failure: the blocks restored on that disk are gone: 100 GB again
    ("disk_failure", 150 * GB, 3740.0 + MOUNT + BOOT + 100.0),
])
def test_a_failure_of_the_target_host_mid_restore_moves_the_recovery(tmp_path, kind, restored, restore_end):
    """Serving at 3690 on a target host; it fails at 3740 (50 GB restored). The VM stops (an incident
    of ``kind``) and the recovery goes to another target host: mount + boot again (serving at 3830),
    then the rest of the restore. Writes retained on the vault survive: written = 20 MB/s x serving
    time (50 s + the rest), all carried over. Time to service stays the first one (90 s)."""
    ops = [recover()]
    first = one(run(scenario(ops=ops, duration="1h1m"), tmp_path))["host"]  # where it goes (still restoring)
    out = run(scenario(ops=ops, faults=[{"kind": kind, "at": 3740, "target": first, "repair": "4h"}]), tmp_path)
    r = one(out)
    assert r["outcome"] == "completed" and r["host"] != first and r["attempts"] == 2 and r["interruptions"] == 1
    assert r["time_to_service_s"] == pytest.approx(90.0)
    assert r["restored_bytes"] == pytest.approx(restored)
    assert r["restore_end_s"] == pytest.approx(restore_end)
    serving = 50.0 + (restore_end - 3830.0)
    w0 = 20 * MB * serving
    assert r["degraded_s"] == pytest.approx(serving + w0 / GB)
    assert r["written_bytes"] == pytest.approx(20 * MB * (serving + w0 / GB))
    assert r["carried_bytes"] == pytest.approx(r["written_bytes"]) and r["data_lost_bytes"] == 0.0
    inc = out.tables["incidents"]
    assert list(inc["cause"][:2]) == ["operation", kind]
    assert list(inc["outcome"][:2]) == ["recovered", "recovered"]
    assert inc["downtime_s"].iloc[1] == pytest.approx(MOUNT + BOOT)


def test_the_block_order_service_sends_ranges_in_its_order(tmp_path):
    """A probe mechanism offers ``block_order`` with three ranges (2 %, 8 %, 90 % of the disk): the
    restore moves them one after the other over the same 1 GB/s route (no latency inside a site),
    so the restore still takes 100 s and moves the disk's bytes exactly once; the service was asked
    once, for db-000's 100 GB."""
    from sim.mechanisms.base import Mechanism, MechanismConfig
    from sim.mechanisms.registry import MECHANISMS, Registry
    from sim.runner import run_scenario
    from sim.scenario.loader import load_scenario

    calls = []

    class Order(Mechanism):
        key = "probe_order"
        Config = MechanismConfig
        offers = ("block_order",)

        def wire(self):
            self.ctx.services["block_order"] = self

        def ranges(self, vm, disk_bytes):
            calls.append((vm.name, disk_bytes))
            return [("boot", 0, 0.02 * disk_bytes), ("system", 1, 0.08 * disk_bytes), ("rest", 3, 0.9 * disk_bytes)]

    from conftest import write_yaml
    sc = scenario(ops=[recover()])
    sc["mechanisms"]["probe_order"] = {}
    registry = Registry((*MECHANISMS, Order))
    out = run_scenario(load_scenario(str(write_yaml(tmp_path / "s.yaml", sc)), [], registry), registry=registry)
    r = one(out)
    assert calls == [("db-000", 100 * GB)]
    assert r["restored_bytes"] == pytest.approx(100 * GB, rel=1e-12)
    assert r["restore_time_s"] == pytest.approx(100.0)


def test_a_recover_operation_without_a_point_fails(tmp_path):
    """At 100 s the first full (0 -> 200 s) is not restorable yet: the operation fails, the VM serves on."""
    out = run(scenario(ops=[recover(at=100)], duration="1h"), tmp_path)
    ops = out.tables["operations"]
    assert ops["outcome"].iloc[0] == "failed" and "no restorable backup point" in ops["detail"].iloc[0]
    assert len(out.tables["recoveries"]) == 0 and len(out.tables["incidents"]) == 0


def test_same_seed_same_table(tmp_path):
    sc = scenario(ops=[recover()], duration="1d",
                  faults=[{"kind": "storage_outage", "mtbf": "2h", "repair": "5m"},
                          {"kind": "host_crash", "mtbf": "6h", "target": "east/bd2/*", "repair": "1h"}])
    a = run(sc, tmp_path).tables["recoveries"]
    b = run(sc, tmp_path).tables["recoveries"]
    assert a.equals(b)


# -- invariants under random writes and faults --------------------------------------------------------
_TARGETS = ["east/bd2/h00", "east/bd2/h01", "east/bd2/h02"]
_fault = st.tuples(st.sampled_from(["storage_outage", "host_crash", "disk_failure", "vm_crash"]),
                   st.integers(0, 40), st.integers(0, 2), st.sampled_from([10, 60, 300]))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dirty=st.sampled_from([0, 1, 20, 300, 2000]), disk=st.sampled_from([10, 100]),
       faults=st.lists(_fault, max_size=5))
def test_no_written_byte_is_lost_and_each_block_is_restored_once(tmp_path, dirty, disk, faults):
    """Random dirty rates (MB/s), disks (GB) and faults during the degraded period (times on a 10 s
    grid from 3690 s, the serving time, so that many coincide with each other and with the ends of
    mounts and copies). Whatever happens: no run fails; every recovery ends completed (every repair is over by then), having carried over every byte written (data lost 0); unique written bytes =
    min(disk, dirty x serving time); with no disk failure the restore moved exactly the disk's bytes
    (a crash keeps the blocks on the site's replicated storage), with one at least the disk."""
    fs = []
    for kind, slot, target, repair in faults:
        at = 3690 + 10 * slot
        name = {"storage_outage": "vault", "vm_crash": "db-000"}.get(kind, _TARGETS[target])
        fs.append({"kind": kind, "at": at, "target": name, "repair": f"{repair}s"})
    out = run(scenario(disk=f"{disk}GB", dirty=f"{dirty}MB/s", ops=[recover()], faults=fs,
                       target_hosts=_TARGETS), tmp_path)
    r = one(out)
    assert r["outcome"] == "completed"  # every repair is over long before the end (3 h)
    d = disk * GB
    assert r["written_bytes"] == pytest.approx(min(d, dirty * MB * r["degraded_s"]), rel=1e-9, abs=1.0)
    assert r["carried_bytes"] == pytest.approx(r["written_bytes"], rel=1e-9, abs=1.0)
    assert abs(r["data_lost_bytes"]) <= 1.0
    if not any(f["kind"] == "disk_failure" for f in fs):
        assert r["restored_bytes"] == pytest.approx(d, rel=1e-9)
    else:
        assert r["restored_bytes"] >= d * (1 - 1e-9)
    if all(f["at"] > 3690 or f["kind"] == "storage_outage" for f in fs):
        assert r["time_to_service_s"] == pytest.approx(MOUNT + BOOT)  # every fault comes after it serves
    else:  # a stop at the instant its boot ends may stop it booting (a boot is not a transfer)
        assert r["time_to_service_s"] >= MOUNT + BOOT - 1e-9
    assert abs(out.metrics["recovery.data_lost_bytes_total"]) <= 1.0


# -- bad input ----------------------------------------------------------------------------------------
def test_recover_of_a_vm_without_a_backup_policy_is_refused(tmp_path):
    sc = scenario(ops=[recover()])
    sc["workloads"].append({"name": "web", "count": 1, "vm": {"vcpus": 2, "memory": "4GiB", "disk": "10GB"}})
    sc["operations"] = [{"kind": "recover", "at": "1h", "vm": "web-000"}]
    lines = refused(tmp_path, sc)
    assert any("operations.0.vm" in ln and "no backup policy" in ln and "web-000" in ln for ln in lines), lines


def test_target_hosts_matching_no_host_is_refused(tmp_path):
    lines = refused(tmp_path, scenario(target_hosts=["west/*"]))
    assert any("mechanisms.live_recovery.target_hosts" in ln and "west/*" in ln for ln in lines), lines


def test_live_recovery_without_the_catalog_is_refused(tmp_path):
    """Live recovery needs the catalog (the workload manager): enabled without it is an input error."""
    sc = scenario()
    sc["mechanisms"]["workload_manager"]["enabled"] = False
    lines = refused(tmp_path, sc)
    assert any("mechanisms.workload_manager.enabled" in ln for ln in lines), lines


def test_a_recover_operation_takes_a_vm_still_waiting_for_its_restart(tmp_path):
    """Its host crashes at 3590; at 3600 (detection would end at 3620) the operation takes it: the
    loss is the crash (3590), it serves at 3600 + 90 = 3690: time to service 100 s; the default
    recovery's stale restart does nothing (one incident, closed recovered after 100 s)."""
    out = run(scenario(ops=[recover()], faults=[{"kind": "host_crash", "at": 3590, "target": "east/bd1/h00",
                                                "repair": "4h"}]), tmp_path)
    r = one(out)
    assert r["trigger"] == "operation" and r["time_s"] == 3590.0 and r["rpo_s"] == 3590.0
    assert r["time_to_service_s"] == pytest.approx(100.0) and r["outcome"] == "completed"
    inc = out.tables["incidents"]
    assert list(inc["cause"]) == ["host_crash", "migration"] and inc["downtime_s"].iloc[0] == pytest.approx(100.0)
    assert len(out.tables["restarts"]) == 0


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(faults=st.lists(_fault, max_size=4))
def test_a_traditional_restore_under_faults_restores_the_disk_and_boots(tmp_path, faults):
    """Disabled, the no_room path restores the traditional way (100 GB in 100 s, then the
    boot). Its only host crashes at 1 h (4 h repair); random faults on the vault and the target
    hosts from 3630 s (detection ends then) on a 10 s grid. Every recovery completes (a target host
    failing after the VM serves there starts another); with no disk failure each moved exactly the
    disk; time to service >= 30 + 100 + 60 s, exactly that with no
    fault at all; nothing is written while it does not serve."""
    fs = [{"kind": "host_crash", "at": 3600, "target": "east/bd1/h00", "repair": "4h"}]
    for kind, slot, target, repair in faults:
        if kind == "vm_crash":
            continue
        name = "vault" if kind == "storage_outage" else _TARGETS[target]
        fs.append({"kind": kind, "at": 3630 + 10 * slot, "target": name, "repair": f"{repair}s"})
    rows = run(scenario(faults=fs, enabled=False, target_hosts=_TARGETS), tmp_path).tables["recoveries"]
    # a target host failing after the VM serves there stops it again: no room, a new restore
    assert (rows["outcome"] == "completed").all() and (rows["mode"] == "traditional").all()
    assert (rows["written_bytes"] == 0.0).all() and (rows["data_lost_bytes"] == 0.0).all()
    if not any(f["kind"] == "disk_failure" for f in fs):
        assert list(rows["restored_bytes"]) == pytest.approx([100 * GB] * len(rows), rel=1e-9)
    r = rows.iloc[0]
    assert r["time_to_service_s"] >= DETECT + 100.0 + BOOT - 1e-9
    if len(fs) == 1:
        assert r["time_to_service_s"] == pytest.approx(DETECT + 100.0 + BOOT)


def test_copies_follow_a_vm_another_mechanism_migrates(tmp_path):
    """An operator migrates the recovering VM at 3700 s (degraded, 10 GB restored) from its target
    host to east/bd2/h03; the first target host then crashes at 3750 s (4 h repair). The copies
    move with the VM: the recovery still completes within minutes (not after the repair), the
    disk's bytes are restored exactly once (the blocks already restored live on the site's
    replicated storage), every write is carried over, and the row names the VM's host."""
    first = one(run(scenario(ops=[recover()], duration="1h1m"), tmp_path))["host"]
    assert first != "east/bd2/h03"
    out = run(scenario(ops=[recover(), {"kind": "migrate", "at": 3700, "vm": "db-000", "to": "east/bd2/h03"}],
                       faults=[{"kind": "host_crash", "at": 3750, "target": first, "repair": "4h"}]), tmp_path)
    r = one(out)
    assert r["outcome"] == "completed" and r["host"] == "east/bd2/h03" and r["interruptions"] == 0
    assert r["end_s"] < 3750 + 600
    assert r["restored_bytes"] == pytest.approx(100 * GB, rel=1e-9)
    assert r["carried_bytes"] == pytest.approx(r["written_bytes"]) and r["data_lost_bytes"] == 0.0
    assert out.tables["operations"]["outcome"].tolist() == ["done", "done"]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dirty=st.tuples(st.sampled_from([0, 5, 50, 800]), st.sampled_from([0, 5, 50, 800])),
       ops=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 6)), min_size=1, max_size=4),
       faults=st.lists(_fault, max_size=4))
def test_concurrent_recoveries_lose_nothing(tmp_path, dirty, ops, faults):
    """Two workloads (db x 2, app x 2, 20 GB disks, their own random dirty rates) recovered by
    operations at random times on a 30 s grid from 3600 s (several at one instant, some while
    another recovery of the same VM runs: those fail), sharing the vault; random faults on a 10 s
    grid from 3690 s. Every recovery completes; each row's unique writes = min(disk, dirty x
    degraded time); every write is carried over; with no disk failure each restore moved exactly
    the disk."""
    sc = scenario(disk="20GB", dirty=f"{dirty[0]}MB/s", duration="4h", target_hosts=_TARGETS)
    sc["workloads"][0]["count"] = 2
    sc["workloads"][0]["placement"] = {"hosts": ["east/bd1/*"]}
    app = {"name": "app", "count": 2, "placement": {"hosts": ["east/bd1/*"]},
           "vm": {"vcpus": 2, "memory": "8GiB", "disk": "20GB", "dirty_rate": f"{dirty[1]}MB/s", "boot_time": "1m"}}
    sc["workloads"].append(app)
    sc["mechanisms"]["workload_manager"]["policies"][0]["workloads"] = ["db", "app"]
    names = ["db-000", "db-001", "app-000", "app-001"]
    sc["operations"] = [{"kind": "recover", "at": 3600 + 30 * slot, "vm": names[i]} for i, slot in ops]
    for kind, slot, target, repair in faults:
        name = {"storage_outage": "vault", "vm_crash": names[target]}.get(kind, _TARGETS[target])
        sc["faults"].append({"kind": kind, "at": 3690 + 10 * slot, "target": name, "repair": f"{repair}s"})
    out = run(sc, tmp_path)
    rows = out.tables["recoveries"]
    assert len(rows) >= 1 and (rows["outcome"] == "completed").all()
    for _, r in rows.iterrows():
        rate = (dirty[0] if r["workload"] == "db" else dirty[1]) * MB
        assert r["written_bytes"] == pytest.approx(min(20 * GB, rate * r["degraded_s"]), rel=1e-9, abs=1.0)
        assert r["carried_bytes"] == pytest.approx(r["written_bytes"], rel=1e-9, abs=1.0)
        if not any(f["kind"] == "disk_failure" for f in sc["faults"]):
            assert r["restored_bytes"] == pytest.approx(20 * GB, rel=1e-9)
    assert abs(out.metrics["recovery.data_lost_bytes_total"]) <= 4.0
    done = out.tables["operations"]
    assert len(rows) == int((done["outcome"] == "done").sum())
