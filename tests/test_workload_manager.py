"""The workload manager (point-in-time catalog): backup and restore durations from the fluid model,
incremental sizes, streams per target, retention that keeps every chain, RPO at VM stops, outages
that fail backups, the operations, the disabled counterfactual and bad input."""

from __future__ import annotations

import copy
import math
from collections import deque

import pytest
from conftest import base_scenario, refused, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.mechanisms.workload_manager import FULL, INCREMENTAL, Pt, retain

GB = 1e9
DISK = 100 * GB
DAY = 86400.0


def scenario(count=1, policies=None, storage_read="1GB/s", storage_write="0.5GB/s", faults=(), operations=(),
             duration="3d", disk_read="2GB/s", **mech):
    """One site of two domains x 4 hosts (disk read 2 GB/s, NIC 10 Gbps = 1.25 GB/s), ``count`` db VMs
    of 100 GB disks, one storage system ``vault`` (read 1 GB/s, write 0.5 GB/s)."""
    pol = policies if policies is not None else [{"workloads": ["db"], "full_every": "7d",
                                                  "incremental_every": "1d", "retention": 14, "change_rate": 0.05}]
    sc = base_scenario(duration=duration, faults=list(faults), operations=list(operations),
                       workloads=[{"name": "db", "count": count,
                                   "vm": {"vcpus": 4, "memory": "16GiB", "disk": "100GB"}}],
                       mechanisms={"workload_manager": {"policies": pol, **mech}})
    sc["infrastructure"]["storage"] = [{"name": "vault", "site": "east", "capacity": "1PiB",
                                        "read": storage_read, "write": storage_write}]
    sc["infrastructure"]["host_profiles"]["std"]["disk"]["read"] = disk_read
    return sc


@pytest.mark.parametrize(("storage_write", "disk_read", "rate"), [
    ("0.5GB/s", "2GB/s", 0.5 * GB),   # the storage's write rate is the smallest
    ("3GB/s", "2GB/s", 1.25 * GB),    # the host NIC (10 Gbps) is
    ("3GB/s", "0.4GB/s", 0.4 * GB),   # the host disk's read rate is
])
def test_a_backup_takes_bytes_over_the_bottleneck_rate(tmp_path, storage_write, disk_read, rate):
    """One VM, one full at t = 0 of its 100 GB disk, alone on the route: duration = 100 GB / rate,
    rate the smallest of storage write, NIC and disk read. The catalog's point is as of 0 and
    restorable from that end."""
    out = run(scenario(storage_write=storage_write, disk_read=disk_read, duration="1h"), tmp_path)
    b = out.tables["backups"]
    assert len(b) == 1 and b["kind"].iloc[0] == FULL
    assert b["duration_s"].iloc[0] == pytest.approx(DISK / rate)
    assert out.metrics["backup.duration_s_mean"] == pytest.approx(DISK / rate)
    c = out.tables["catalog"]
    assert c["time_s"].iloc[0] == 0.0 and c["end_s"].iloc[0] == pytest.approx(DISK / rate)
    assert out.metrics["catalog.points"] == 1 and out.metrics["catalog.bytes"] == DISK


def test_a_restore_takes_provisioning_plus_bytes_over_the_storage_read_rate(tmp_path):
    """Full at 0 (200 s at 0.5 GB/s). Restore at 1 h: provisioning 60 s, then 100 GB from storage read
    at 1 GB/s (smaller than NIC 1.25 and disk write 1 GB/s... both 1 GB/s): 60 + 100 = 160 s. Same with
    provisioning_time 10 s: 110 s. The restore with no prioritisation is usable at its last byte."""
    for prov, expect in ((None, 160.0), ("10s", 110.0)):
        extra = {} if prov is None else {"provisioning_time": prov}
        out = run(scenario(duration="2h", operations=[{"kind": "restore", "at": "1h", "workload": "db"}], **extra),
                  tmp_path)
        r = out.tables["restores"]
        assert len(r) == 1 and r["outcome"].iloc[0] == "completed" and r["bytes"].iloc[0] == DISK
        assert out.metrics["restore.time_s_mean"] == pytest.approx(expect)
        assert out.metrics["restore.time_to_usable_s_mean"] == pytest.approx(expect)


def test_migrate_workload_moves_the_disk_over_the_wan(tmp_path):
    """A second site ``west`` joined by a 1 Gbps WAN (0.125 GB/s, the smallest on the route):
    migrate_workload at 1 h = 60 s provisioning + 100 GB / 0.125 GB/s = 860 s (the WAN latency,
    10 ms, is paid once: 860.01 s)."""
    sc = scenario(duration="2h", operations=[{"kind": "migrate_workload", "at": "1h", "workload": "db", "to": "west"}])
    west = copy.deepcopy(sc["infrastructure"]["sites"][0])
    west["name"] = "west"
    sc["infrastructure"]["sites"].append(west)
    sc["infrastructure"]["wan"] = [{"sites": ["east", "west"], "bandwidth": "1Gbps", "latency": "10ms"}]
    sc["workloads"][0]["placement"] = {"hosts": ["east/*"]}
    out = run(sc, tmp_path)
    r = out.tables["restores"]
    assert r["host"].iloc[0].startswith("west/")
    assert out.metrics["migrate_workload.time_s_mean"] == pytest.approx(860.01, abs=1e-6)


def test_incremental_sizes_follow_the_change_rate(tmp_path):
    """change_rate 0.1 a day, incrementals every 12 h, fulls every 2 d, over 3 d: the points at
    12 h, 1 d, 36 h are incrementals of 0.1 x 100 GB x 0.5 d = 5 GB (each 10 s at 0.5 GB/s), the one
    at 2 d a full (100 GB) and the one at 60 h 5 GB again."""
    out = run(scenario(policies=[{"workloads": ["db"], "full_every": "2d", "incremental_every": "12h",
                                  "retention": 20, "change_rate": 0.1}]), tmp_path)
    b = out.tables["backups"]
    assert list(b["time_s"]) == [k * 43200.0 for k in range(6)]
    assert list(b["kind"]) == [FULL, INCREMENTAL, INCREMENTAL, INCREMENTAL, FULL, INCREMENTAL]
    assert list(b["bytes"]) == pytest.approx([DISK, 5 * GB, 5 * GB, 5 * GB, DISK, 5 * GB])
    assert list(b["duration_s"]) == pytest.approx([200, 10, 10, 10, 200, 10])


def test_max_concurrent_streams_share_the_write_rate_and_the_rest_queue(tmp_path):
    """5 VMs, max_concurrent 2, storage write 0.5 GB/s the bottleneck (each VM on its own host: NIC
    and disk are not shared). Max-min fair: two streams at 0.25 GB/s each end at 400 s; the next two
    start at 400 and end at 800; the fifth runs alone at 0.5 GB/s from 800 to 1000."""
    out = run(scenario(count=5, duration="1h", max_concurrent=2), tmp_path)
    b = out.tables["backups"].sort_values(["time_s", "vm"])
    assert list(b["vm"]) == [f"db-{i:03d}" for i in range(5)]  # queued in policy (then VM) order
    assert list(b["time_s"]) == pytest.approx([0, 0, 400, 400, 800])
    assert list(b["end_s"]) == pytest.approx([400, 400, 800, 800, 1000])


def test_rpo_at_a_failure_is_the_age_of_the_newest_restorable_point(tmp_path):
    """Daily backups (full at 0, incremental at 1 d: 5 GB, 10 s). db-000 crashes at 30 h: its newest
    point is as of 1 d, so RPO = 30 h - 24 h = 21,600 s. A crash at 86,405 s (mid-incremental, not
    restorable until 86,410) sees the full of 0: RPO 86,405 s."""
    faults = [{"kind": "vm_crash", "at": "30h", "target": "db-000", "repair": "1m"},
              {"kind": "vm_crash", "at": 86405, "target": "db-000", "repair": "1s"},
              {"kind": "vm_crash", "at": "30h", "target": "web-000", "repair": "1m"}]  # no policy: not counted
    sc = scenario(duration="2d", faults=faults)
    sc["workloads"].append({"name": "web", "count": 1, "vm": {"vcpus": 4, "memory": "16GiB", "disk": "100GB"}})
    out = run(sc, tmp_path)
    assert set(out.tables["incidents"]["subject"]) == {"db-000", "web-000"}
    rpo = out.tables["backup_rpo"].sort_values("time_s")
    assert list(rpo["rpo_s"]) == pytest.approx([86405.0, 21600.0])
    assert list(rpo["point_s"]) == [0.0, 86400.0]
    assert out.metrics["backup.rpo_s_max"] == pytest.approx(86405.0)


def test_a_storage_outage_fails_running_backups_which_retry_after_repair(tmp_path):
    """2 VMs; incrementals at 1 d of 5 GB each sharing 0.5 GB/s (20 s). The storage fails at
    86,410 s (mid-backup) for 2 h: both fail, no point; both retry at repair, 93,610 s, now
    covering 93,610 s of change: 0.05 x 100 GB x 93,610 / 86,400 = 5.4173 GB each, ending after
    2 x 5.4173 / 0.5 = 21.669 s. db-000 crashes at 90,000 s (during the outage): its newest point
    is still the full of 0, RPO 90,000 s (21,600 s had the incremental completed at 86,420)."""
    faults = [{"kind": "storage_outage", "at": 86410, "target": "vault", "repair": "2h"},
              {"kind": "vm_crash", "at": 90000, "target": "db-000", "repair": "1m"}]
    out = run(scenario(count=2, duration="2d", faults=faults), tmp_path)
    b = out.tables["backups"]
    failed = b[b["outcome"] == "failed"]
    assert sorted(failed["vm"]) == ["db-000", "db-001"] and (failed["time_s"] == DAY).all()
    assert (failed["end_s"] == 86410).all() and set(failed["cause"]) == {"StorageDown"}
    retry = b[(b["outcome"] == "completed") & (b["time_s"] > DAY)]
    inc = 0.05 * DISK * 93610 / DAY
    assert list(retry["time_s"]) == [93610.0, 93610.0]
    assert list(retry["bytes"]) == pytest.approx([inc, inc])
    assert list(retry["end_s"]) == pytest.approx([93610 + 2 * inc / (0.5 * GB)] * 2)
    c = out.tables["catalog"]
    assert sorted(c["time_s"]) == [0.0, 0.0, 93610.0, 93610.0]  # no point from a failed backup
    rpo = out.tables["backup_rpo"]
    assert list(rpo["rpo_s"]) == [90000.0]
    assert out.metrics["backup.failed"] == 2 and out.metrics["backup.count"] == 4


@pytest.mark.parametrize("kind", ["disk_failure", "host_crash"])
def test_a_disk_failure_or_crash_of_the_source_host_mid_backup_fails_it(tmp_path, kind):
    """One VM; its full (100 GB, 200 s) starts at 0 on its host. That host's disk fails (or the host
    crashes) at 100 s: the backup fails, no point; the VM restarts elsewhere after detection 30 s + boot 60 s (up at 190 s)
    and the full runs again from 190 s on the new host, ending at 390 s."""
    sc = scenario(duration="1h")
    out0 = run(sc, tmp_path)
    host = out0.tables["backups"]["host"].iloc[0]
    sc["faults"] = [{"kind": kind, "at": 100, "target": host, "repair": "1d"}]
    out = run(sc, tmp_path)
    b = out.tables["backups"]
    assert list(b["outcome"]) == ["failed", "completed"]
    assert b["end_s"].iloc[0] == 100.0
    assert b["time_s"].iloc[1] == pytest.approx(190.0) and b["end_s"].iloc[1] == pytest.approx(390.0)
    assert b["host"].iloc[1] != host
    assert list(out.tables["catalog"]["time_s"]) == pytest.approx([190.0])


def test_disabled_takes_no_backups_and_rpo_counts_from_time_zero(tmp_path):
    """Without it: no backups, operations fail, and a crash at 30 h has nothing to restore: RPO
    108,000 s (all data since time 0)."""
    sc = scenario(duration="2d", faults=[{"kind": "vm_crash", "at": "30h", "target": "db-000", "repair": "1m"}],
                  operations=[{"kind": "restore", "at": "1d", "workload": "db"}])
    sc["mechanisms"]["workload_manager"]["enabled"] = False
    out = run(sc, tmp_path)
    assert len(out.tables["backups"]) == 0 and out.metrics["backup.count"] == 0
    assert out.metrics["catalog.points"] == 0
    assert list(out.tables["backup_rpo"]["rpo_s"]) == [108000.0]
    assert list(out.tables["operations"]["outcome"]) == ["failed"]


def test_same_seed_same_tables(tmp_path):
    sc = scenario(count=6, duration="4d", max_concurrent=2,
                  faults=[{"kind": "storage_outage", "mtbf": "1d", "repair": "1h"},
                          {"kind": "host_crash", "mtbf": "3d", "repair": "1h"}])
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = run(sc, tmp_path / "a"), run(sc, tmp_path / "b")
    assert len(a.tables["backups"]) > 10
    for name in ("backups", "catalog", "backup_rpo"):
        assert a.tables[name].equals(b.tables[name])


# -- retention ------------------------------------------------------------------------------------
def _chain_ok(kept: list[Pt]) -> bool:
    times = {p.time_s for p in kept}
    return all(p.full_s in times and (math.isnan(p.parent_s) or p.parent_s in times) for p in kept)


@given(kinds=st.lists(st.sampled_from([FULL, INCREMENTAL]), min_size=1, max_size=60), n=st.integers(1, 10))
def test_retention_keeps_the_newest_n_and_every_chain_they_need(kinds, n):
    """Whatever the order of fulls and incrementals: after each new point, the newest n points are
    kept and every kept point's parent and full are kept (nothing kept is unrestorable); what is
    dropped is only older than the oldest kept point's full."""
    pts: deque = deque()
    made = []
    for i, kind in enumerate([FULL, *kinds[1:]]):
        t = float(i)
        parent = pts[-1] if kind == INCREMENTAL else None
        if parent is None:
            p = Pt(t, "v", "w", kind, t, 1.0, t, "s", t, math.nan, 1.0)
        else:
            p = Pt(t, "v", "w", kind, t, 1.0, t, "s", parent.full_s, parent.time_s, parent.full_bytes)
        pts.append(p)
        made.append(p)
        retain(pts, n)
        kept = list(pts)
        assert kept[-min(n, len(made)):] == made[-min(n, len(made)):]
        assert _chain_ok(kept)
        assert kept[0].kind == FULL


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(outages=st.lists(st.tuples(st.integers(0, 10 * 24), st.integers(1, 30)), max_size=4),
       crashes=st.lists(st.tuples(st.integers(0, 10 * 24), st.integers(0, 1)), max_size=4),
       n=st.integers(1, 4))
def test_retention_never_leaves_an_unrestorable_point_under_faults(tmp_path_factory, outages, crashes, n):
    """Random storage outages and VM crashes (hours, possibly at equal times) over 10 days of
    12-hourly incrementals and 3-day fulls: in the final catalog every kept point's parent and full
    are kept, and each VM keeps at least min(n, its completed backups) points."""
    faults = [{"kind": "storage_outage", "at": h * 3600, "target": "vault", "repair": f"{m}m"} for h, m in outages]
    faults += [{"kind": "vm_crash", "at": h * 3600, "target": f"db-{v:03d}", "repair": "1m"} for h, v in crashes]
    sc = scenario(count=2, duration="10d", faults=faults,
                  policies=[{"workloads": ["db"], "full_every": "3d", "incremental_every": "12h", "retention": n}])
    out = run(sc, tmp_path_factory.mktemp("r"))
    c = out.tables["catalog"]
    for vm, rows in c.groupby("vm"):
        kept = rows[rows["kept"]]
        times = set(kept["time_s"])
        assert set(kept["full_s"]) <= times
        assert set(kept["parent_s"].dropna()) <= times
        done = out.tables["backups"]
        assert len(kept) >= min(n, int(((done["vm"] == vm) & (done["outcome"] == "completed")).sum()))
    assert out.metrics["catalog.points"] == int(c["kept"].sum())


# bad input: `dcsim check` exits 2 (conftest.refused)
check = refused


@pytest.mark.parametrize(("change", "path", "text"), [
    ({"workloads": ["dbx"]}, "mechanisms.workload_manager.policies.0.workloads.0", "workload"),
    ({"storage": "vaultx"}, "mechanisms.workload_manager.policies.0.storage", "storage system"),
    ({"retention": 0}, "mechanisms.workload_manager.policies.0.retention", "0"),
    ({"incremental_every": "8d"}, "mechanisms.workload_manager.policies.0.incremental_every", "at most full_every"),
])
def test_bad_policies_are_input_errors_naming_the_dotted_path(tmp_path, change, path, text):
    pol = {"workloads": ["db"], "full_every": "7d", "incremental_every": "1d", "retention": 14, **change}
    lines = check(tmp_path, scenario(policies=[pol]))
    hit = [ln for ln in lines if f": {path}: " in ln]
    assert hit and text in hit[0], lines


def test_a_link_failure_stalls_a_backup_which_resumes_at_repair(tmp_path):
    """One VM's full (100 GB at 0.5 GB/s, 200 s) crosses its domain's uplink. The uplink fails at
    100 s for 100 s: 50 GB sent, the flow stalls, resumes at 200 s with 50 GB left, ends at 300 s;
    one attempt, completed, no failure."""
    sc = scenario(duration="1h")
    host = run(sc, tmp_path).tables["backups"]["host"].iloc[0]
    sc["faults"] = [{"kind": "link_failure", "at": 100, "target": host.rsplit("/", 1)[0], "repair": "100s"}]
    out = run(sc, tmp_path)
    b = out.tables["backups"]
    assert list(b["outcome"]) == ["completed"]
    assert b["end_s"].iloc[0] == pytest.approx(300.0) and out.metrics["backup.failed"] == 0


def test_the_catalog_service_gives_the_newest_point_and_a_complete_workload_point(tmp_path):
    """Through ``ctx.services["catalog"]`` after 2 days of daily backups of 2 VMs (full 0: both
    share 0.5 GB/s, 400 s; incrementals at 1 d and 2 d, 5 GB each, 20 s): db-000's newest point is
    as of 2 d, an incremental whose restore moves its full's 100 GB from ``vault``; the workload's
    latest complete point is the run of 2 d, and the newest at or before 1.5 d is the run of 1 d."""
    from conftest import load

    from sim.runner import Simulation

    sim = Simulation(load(scenario(count=2, duration="2d1h"), tmp_path))
    sim.start()
    sim.ctx.env.run(until=2 * DAY + 3600)
    cat = sim.ctx.services["catalog"]
    p = cat.newest("db-000")
    assert (p.time_s, p.kind, p.location, p.restore_bytes) == (2 * DAY, INCREMENTAL, "vault", DISK)
    assert p.bytes == pytest.approx(5 * GB)
    assert cat.newest("db-000", at=DAY + 10).time_s == 0.0  # the incremental of 1 d ends at 1 d + 20 s
    assert {q.run_s for q in cat.workload_point("db")} == {2 * DAY}
    assert {q.run_s for q in cat.workload_point("db", 1.5 * DAY)} == {DAY}


def test_a_restore_before_any_point_is_restorable_fails(tmp_path):
    """The first full runs from 0 to 200 s: a restore at 100 s finds no restorable point and fails;
    one at 201 s succeeds, ending at 201 + 60 + 100 = 361 s."""
    out = run(scenario(duration="1h", operations=[{"kind": "restore", "at": 100, "workload": "db"},
                                                  {"kind": "restore", "at": 201, "workload": "db"}]), tmp_path)
    ops = out.tables["operations"].sort_values("time_s")
    assert list(ops["outcome"]) == ["failed", "done"]
    assert "no complete backup point" in ops["detail"].iloc[0]
    assert out.tables["restores"]["end_s"].iloc[0] == pytest.approx(361.0)
