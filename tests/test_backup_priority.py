"""Prioritized-block backup: the send order of a disk's class ranges, time to usable from the
usable prefix over the bottleneck rate, the same time to usable for disks ten times apart with one
working set, the disabled counterfactual (usable at the restore's end), restores under outages,
and bad input."""

from __future__ import annotations

import math

import pytest
from conftest import base_scenario, refused, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.mechanisms.backup_priority import DEFAULT_CLASSES, UNCLASSIFIED, BlockClass, order

GB = 1e9
DISK = 100 * GB
RATE = 0.5 * GB  # the vault's read (and write) rate: the smallest on the route
PROV = 60.0
AT = 3600.0  # the restore operation


def scenario(workloads=None, duration="2h", faults=(), operations=None, bp=None):
    """One site of two domains x 4 hosts (NIC 1.25 GB/s, disk write 1 GB/s), one storage system
    ``vault`` reading and writing at 0.5 GB/s (the bottleneck of every backup and restore), daily
    backups of the ``db`` workload (the full at 0), a restore of ``db`` at 1 h. ``bp``: the
    backup_priority section (None: absent)."""
    wl = workloads or [{"name": "db", "count": 1, "vm": {"vcpus": 4, "memory": "16GiB", "disk": "100GB"}}]
    ops = operations if operations is not None else [{"kind": "restore", "at": AT, "workload": "db"}]
    mech = {"workload_manager": {"policies": [{"workloads": [w["name"] for w in wl]}]}}
    if bp is not None:
        mech["backup_priority"] = bp
    sc = base_scenario(duration=duration, faults=list(faults), operations=ops, workloads=wl, mechanisms=mech)
    sc["infrastructure"]["storage"] = [{"name": "vault", "site": "east", "capacity": "1PiB",
                                        "read": "0.5GB/s", "write": "0.5GB/s"}]
    return sc


# -- the send order ---------------------------------------------------------------------------------
def test_the_default_classes_go_in_priority_order_by_share():
    """Defaults on a 100 GB disk: boot 2 % (priority 0), system 8 % (1), hot 20 % (2), cold 70 % (3):
    2, 8, 20 and 70 GB in that order."""
    got = order(DEFAULT_CLASSES, DISK)
    assert [(n, p) for n, p, _ in got] == [("boot", 0), ("system", 1), ("hot", 2), ("cold", 3)]
    assert [b for _, _, b in got] == pytest.approx([2 * GB, 8 * GB, 20 * GB, 70 * GB])


def test_order_follows_priority_not_the_order_written_with_sizes_and_the_rest():
    """Written cold (the rest), hot (share 0.2, recently accessed), boot (size 1 GB, boot critical),
    libs (share 0.1, executable and recently accessed: the most urgent flag, 1), logs (share 0.05,
    no flag: 3). On 100 GB: boot 1 GB, libs 10 GB, hot 20 GB, then the two of priority 3 in the
    order written: cold takes the rest, 100 - 20 - 1 - 10 - 5 = 64 GB, then logs 5 GB."""
    classes = (BlockClass(name="cold"), BlockClass(name="hot", share=0.2, recently_accessed=True),
               BlockClass(name="boot", size=GB, boot_critical=True),
               BlockClass(name="libs", share=0.1, executable=True, recently_accessed=True),
               BlockClass(name="logs", share=0.05))
    got = order(classes, DISK)
    assert [(n, p) for n, p, _ in got] == [("boot", 0), ("libs", 1), ("hot", 2), ("cold", 3), ("logs", 3)]
    assert [b for _, _, b in got] == pytest.approx([GB, 10 * GB, 20 * GB, 64 * GB, 5 * GB])


def test_sizes_are_clipped_to_the_disk_and_an_uncovered_rest_is_unclassified():
    """A 1.5 GB disk with boot size 1 GB and system size 1 GB: boot 1 GB, system what is left
    (0.5 GB), nothing for the rest class. Shares 0.3 + 0.2 with no rest class on 10 GB: 3 GB,
    2 GB and 5 GB unclassified (priority 3)."""
    classes = (BlockClass(name="boot", size=GB, boot_critical=True), BlockClass(name="sys", size=GB, executable=True),
               BlockClass(name="rest"))
    got = order(classes, 1.5 * GB)
    assert got == [("boot", 0, GB), ("sys", 1, 0.5 * GB)]
    got = order((BlockClass(name="a", share=0.3, executable=True), BlockClass(name="b", share=0.2)), 10 * GB)
    assert [(n, p) for n, p, _ in got] == [("a", 1), ("b", 3), (UNCLASSIFIED, 3)]
    assert [b for *_, b in got] == pytest.approx([3 * GB, 2 * GB, 5 * GB])


@st.composite
def class_sets(draw):
    n = draw(st.integers(1, 6))
    rest_at = draw(st.one_of(st.none(), st.integers(0, n - 1)))
    left = 1.0
    out = []
    for i in range(n):
        flags = draw(st.tuples(st.booleans(), st.booleans(), st.booleans()))
        kw = dict(zip(("boot_critical", "executable", "recently_accessed"), flags, strict=True))
        if i == rest_at:
            out.append(BlockClass(name=f"c{i}", **kw))
        elif draw(st.booleans()):
            share = draw(st.floats(0.0, left))
            left -= share
            out.append(BlockClass(name=f"c{i}", share=share, **kw))
        else:
            out.append(BlockClass(name=f"c{i}", size=draw(st.floats(0.0, 1e12)), **kw))
    return tuple(out)


@settings(max_examples=300, deadline=None)
@given(classes=class_sets(), disk=st.floats(0.0, 1e13), usable=st.integers(0, 3))
def test_ranges_sum_to_the_disk_in_priority_order(classes, disk, usable):
    """Whatever the classes (shares summing to at most 1, sizes, at most one rest class) and the disk:
    the ranges are positive, sum to the disk, come in non-decreasing priority, keep the written
    order within a priority, and the usable prefix (priority <= usable_priority) is a prefix."""
    from sim.mechanisms.backup_priority import BackupPriority, Config

    got = order(classes, disk)
    assert all(b > 0 for *_, b in got)
    assert sum(b for *_, b in got) == pytest.approx(disk, rel=1e-12, abs=0)  # to an ulp or two
    prios = [p for _, p, _ in got]
    assert prios == sorted(prios)
    pos = {c.name: i for i, c in enumerate(classes)}
    pos[UNCLASSIFIED] = len(classes)
    for (a, pa, _), (b, pb, _) in zip(got, got[1:], strict=False):
        assert pa < pb or pos[a] < pos[b]
    mech = BackupPriority.__new__(BackupPriority)
    mech.config = Config(classes=classes, usable_priority=usable)
    k = sum(p <= usable for p in prios)
    assert all(p <= usable for p in prios[:k])
    assert mech.usable_bytes(None, disk) == pytest.approx(math.fsum(b for *_, b in got[:k]), rel=1e-12, abs=1e-9)
    assert mech.ranges(None, disk) == got


# -- time to usable ------------------------------------------------------------------------------------
def test_time_to_usable_is_provisioning_plus_the_usable_prefix_over_the_bottleneck(tmp_path):
    """Default classes, usable_priority 1: the usable prefix of a 100 GB disk is boot 2 GB + system
    8 GB = 10 GB. Restore at 1 h from the vault (0.5 GB/s, the smallest on the route): usable at
    60 + 10 / 0.5 = 80 s, the last byte at 60 + 100 / 0.5 = 260 s (the prefix and the rest are
    consecutive transfers on one route: no gap, no latency inside a site)."""
    out = run(scenario(bp={}), tmp_path)
    r = out.tables["restores"]
    assert list(r["outcome"]) == ["completed"]
    assert r["usable_bytes"].iloc[0] == pytest.approx(10 * GB)
    assert r["usable_end_s"].iloc[0] == pytest.approx(AT + 80.0)
    assert out.metrics["restore.time_to_usable_s_mean"] == pytest.approx(PROV + 10 * GB / RATE)
    assert out.metrics["restore.time_s_mean"] == pytest.approx(PROV + DISK / RATE)


def test_time_to_usable_follows_the_working_set_not_the_disk(tmp_path):
    """Two workloads with the same working set (boot 0.5 GB and system 1.5 GB given as sizes) and
    disks 10x apart (20 GB and 200 GB), each restored alone (at 1 h and 2 h). Usable after
    60 + 2 / 0.5 = 64 s for both (equal within 5 %), while the data part of the full restore is
    20 / 0.5 = 40 s against 200 / 0.5 = 400 s: ten times (full restores 100 s and 460 s). The
    speed-up at the large disk is 460 / 64 = 7.2 (S/W = 100 for the data alone)."""
    wl = [{"name": "small", "count": 1, "vm": {"vcpus": 4, "memory": "16GiB", "disk": "20GB"}},
          {"name": "big", "count": 1, "vm": {"vcpus": 4, "memory": "16GiB", "disk": "200GB"}}]
    bp = {"classes": [{"name": "boot", "size": "0.5GB", "boot_critical": True},
                      {"name": "system", "size": "1.5GB", "executable": True},
                      {"name": "hot", "share": 0.1, "recently_accessed": True},
                      {"name": "cold"}]}
    ops = [{"kind": "restore", "at": "1h", "workload": "small"}, {"kind": "restore", "at": "2h", "workload": "big"}]
    out = run(scenario(workloads=wl, operations=ops, duration="3h", bp=bp), tmp_path)
    r = out.tables["restores"].set_index("workload")
    usable = r["usable_end_s"] - r["time_s"]
    full = r["end_s"] - r["time_s"]
    assert usable["small"] == pytest.approx(64.0) and usable["big"] == pytest.approx(64.0)
    assert abs(usable["big"] / usable["small"] - 1) <= 0.05
    assert list(full[["small", "big"]]) == pytest.approx([100.0, 460.0])
    assert (full["big"] - PROV) / (full["small"] - PROV) == pytest.approx(10.0)
    assert out.metrics["restore.time_to_usable_s_max"] == pytest.approx(64.0)


@pytest.mark.parametrize("bp", [None, {"enabled": False}, {"usable_priority": 3}])
def test_without_prioritisation_time_to_usable_is_the_full_restore_time(tmp_path, bp):
    """Absent, disabled, or every priority needed (usable_priority 3): the VM is usable when its last
    byte arrives: 60 + 100 / 0.5 = 260 s for both metrics, usable_end_s = end_s, usable_bytes = the
    disk."""
    out = run(scenario(bp=bp), tmp_path)
    r = out.tables["restores"]
    assert r["usable_end_s"].iloc[0] == r["end_s"].iloc[0]
    assert r["usable_bytes"].iloc[0] == pytest.approx(DISK)
    assert out.metrics["restore.time_to_usable_s_mean"] == pytest.approx(PROV + DISK / RATE)
    assert out.metrics["restore.time_to_usable_s_mean"] == out.metrics["restore.time_s_mean"]


def test_backups_store_the_class_map(tmp_path):
    """The VM backed up stores its map: boot [0, 2 GB), system [2, 10), hot [10, 30), cold [30, 100) GB
    in send order, the first two usable. With no backup (no policy) nothing is stored."""
    out = run(scenario(bp={}), tmp_path)
    m = out.tables["block_classes"]
    assert list(m["vm"]) == ["db-000"] * 4
    assert list(m["class_name"]) == ["boot", "system", "hot", "cold"]
    assert list(m["offset_bytes"]) == pytest.approx([0, 2 * GB, 10 * GB, 30 * GB])
    assert list(m["bytes"]) == pytest.approx([2 * GB, 8 * GB, 20 * GB, 70 * GB])
    assert list(m["usable"]) == [True, True, False, False]
    sc = scenario(bp={}, operations=[])
    sc["mechanisms"]["workload_manager"]["policies"] = []
    assert len(run(sc, tmp_path).tables["block_classes"]) == 0


# -- outages mid-restore ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("at", "usable_end", "end"), [
    (AT + 70, math.nan, AT + 70),      # mid-prefix (it ends at AT + 80): never usable
    (AT + 80, AT + 80, AT + 80),       # at the very instant the prefix arrives: usable, then fails
    (AT + 110, AT + 80, AT + 110),     # mid-rest: usable at AT + 80, the copy fails at AT + 110
])
def test_a_storage_outage_mid_restore_fails_it_and_records_when_it_was_usable(tmp_path, at, usable_end, end):
    """Restore at 1 h: prefix (10 GB) from AT + 60 to AT + 80, the rest to AT + 260. A storage outage
    fails the copy where it is: the row is failed with its end at the outage, usable_end_s the
    prefix's arrival if it came before (a last byte arriving at the failure's instant counts), and
    the operation fails, so no restore metric is measured."""
    out = run(scenario(bp={}, faults=[{"kind": "storage_outage", "at": at, "target": "vault", "repair": "1m"}]),
              tmp_path)
    r = out.tables["restores"]
    assert list(r["outcome"]) == ["failed"]
    assert r["end_s"].iloc[0] == pytest.approx(end)
    if math.isnan(usable_end):
        assert math.isnan(r["usable_end_s"].iloc[0])
    else:
        assert r["usable_end_s"].iloc[0] == pytest.approx(usable_end)
    ops = out.tables["operations"]
    assert list(ops.loc[ops["kind"] == "restore", "outcome"]) == ["failed"]
    assert "restore.time_to_usable_s_mean" not in out.metrics


def test_a_link_failure_mid_prefix_delays_usable_by_its_length(tmp_path):
    """The restored VM's domain uplink fails at AT + 70 (10 s into the prefix: 5 GB sent) for 100 s:
    the prefix stalls and resumes at AT + 170, arriving at AT + 180; the rest ends at AT + 360.
    Time to usable 180 s, restore 360 s."""
    host = run(scenario(bp={}), tmp_path).tables["restores"]["host"].iloc[0]
    link = {"kind": "link_failure", "at": AT + 70, "target": host.rsplit("/", 1)[0], "repair": "100s"}
    out = run(scenario(bp={}, faults=[link]), tmp_path)
    r = out.tables["restores"]
    assert list(r["outcome"]) == ["completed"]
    assert out.metrics["restore.time_to_usable_s_mean"] == pytest.approx(180.0)
    assert out.metrics["restore.time_s_mean"] == pytest.approx(360.0)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(faults=st.lists(st.tuples(st.sampled_from(["storage_outage", "link_failure", "host_crash"]),
                                 st.sampled_from([AT + 60, AT + 70, AT + 80, AT + 80, AT + 150, AT + 260]),
                                 st.integers(1, 300)), max_size=4),
       usable=st.integers(0, 3), count=st.integers(1, 3))
def test_restore_rows_stay_consistent_under_outages(tmp_path_factory, faults, usable, count):
    """Random storage outages, uplink failures and host crashes around the restore, equal times
    allowed: every row's usable moment is after provisioning plus its prefix at the bottleneck and
    at or before its end, or NaN for a copy that failed before it; a completed copy spends at least
    (bytes - usable) / rate after it; the metric never exceeds the restore time."""
    wl = [{"name": "db", "count": count, "vm": {"vcpus": 4, "memory": "16GiB", "disk": "100GB"}}]
    fl = []
    for kind, at, length in faults:
        target = {"storage_outage": "vault", "link_failure": "east/bd1", "host_crash": "east/bd1/h00"}[kind]
        fl.append({"kind": kind, "at": at, "target": target, "repair": f"{length}s"})
    out = run(scenario(workloads=wl, faults=fl, bp={"usable_priority": usable}), tmp_path_factory.mktemp("p"))
    r = out.tables["restores"]
    assert len(r) == count
    eps = 1e-6
    for row in r.itertuples():
        if math.isnan(row.usable_end_s):
            assert row.outcome == "failed"
            continue
        assert row.time_s + PROV + row.usable_bytes / RATE - eps <= row.usable_end_s <= row.end_s + eps
        if row.outcome == "completed":
            assert row.end_s - row.usable_end_s >= (row.bytes - row.usable_bytes) / RATE - eps
    if "restore.time_s_mean" in out.metrics:
        assert out.metrics["restore.time_to_usable_s_max"] <= out.metrics["restore.time_s_max"] + eps


def test_same_seed_same_restores(tmp_path):
    sc = scenario(bp={}, workloads=[{"name": "db", "count": 3, "vm": {"vcpus": 4, "memory": "16GiB", "disk": "100GB"}}],
                  faults=[{"kind": "storage_outage", "mtbf": "2h", "repair": "1m"}])
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = run(sc, tmp_path / "a"), run(sc, tmp_path / "b")
    for name in ("restores", "block_classes"):
        assert a.tables[name].equals(b.tables[name])


# -- bad input (``dcsim check``: exit 2, dotted path) ---------------------------------------------------------
P = "mechanisms.backup_priority"


@pytest.mark.parametrize(("classes", "path", "text"), [
    ([{"name": "a", "share": 0.7}, {"name": "b", "share": 0.5}], f"{P}.classes", "at most 1, got 1.2"),
    ([{"name": "a"}, {"name": "b", "share": 0.5}, {"name": "c"}], f"{P}.classes.2", "got neither"),
    ([{"name": "a", "share": 0.5}, {"name": "a"}], f"{P}.classes.1.name", "unique class name"),
    ([{"name": "a", "share": -0.1}, {"name": "b"}], f"{P}.classes.0.share", "0 to 1"),
    ([{"name": "a", "share": 0.1, "size": "1GB"}, {"name": "b"}], f"{P}.classes.0", "not both"),
    ([{"name": "a", "size": "-1GB"}, {"name": "b"}], f"{P}.classes.0.size", ""),
    ([{"name": "a", "share": 0.1, "hot": True}], f"{P}.classes.0.hot", ""),
])
def test_bad_classes_are_input_errors_naming_the_dotted_path(tmp_path, classes, path, text):
    lines = refused(tmp_path, scenario(bp={"classes": classes}))
    hit = [ln for ln in lines if f": {path}: " in ln]
    assert hit and text in hit[0], lines


def test_usable_priority_above_three_is_refused(tmp_path):
    lines = refused(tmp_path, scenario(bp={"usable_priority": 4}))
    assert any(f": {P}.usable_priority: expected a priority from 0 to 3, got 4" in ln for ln in lines), lines


def test_the_shipped_scenario_shows_the_closed_forms(tmp_path):
    """scenarios/prioritized_restore.yaml: 8 VMs per restore share the vault's 2 GB/s read (max-min:
    equal copies run at 0.25 GB/s each and end together). Usable prefix per VM 300 MiB + 1.2 GiB =
    1,603,062,988.8 bytes, so both restores are usable after 60 + 8 x 1.603 GB / 2 GB/s = 66.41 s;
    the last bytes arrive after 60 + 8 x 40 GiB / 2 GB/s = 231.80 s (app) and 60 + 8 x 400 GiB /
    2 GB/s = 1,777.99 s (archive). Disabled, time to usable equals those restore times."""
    from pathlib import Path

    import yaml

    sc = yaml.safe_load((Path(__file__).parent.parent / "scenarios" / "prioritized_restore.yaml").read_text())
    usable = PROV + 8 * (300 * 2**20 + 1.2 * 2**30) / 2e9
    full = {"app": PROV + 8 * 40 * 2**30 / 2e9, "archive": PROV + 8 * 400 * 2**30 / 2e9}
    out = run(sc, tmp_path)
    r = out.tables["restores"].groupby("workload")
    assert dict(r["usable_end_s"].max() - r["time_s"].min()) == pytest.approx({"app": usable, "archive": usable})
    assert dict(r["end_s"].max() - r["time_s"].min()) == pytest.approx(full)
    sc["mechanisms"]["backup_priority"]["enabled"] = False
    out = run(sc, tmp_path)
    assert out.metrics["restore.time_to_usable_s_max"] == pytest.approx(full["archive"])
    assert out.metrics["restore.time_to_usable_s_mean"] == pytest.approx((full["app"] + full["archive"]) / 2)


def test_usable_priority_three_is_warned_about(tmp_path):
    """Every block has a priority of at most 3, so with usable_priority 3 nothing is gained: valid
    (exit 0) but warned about at the dotted path."""
    from conftest import write_yaml
    from typer.testing import CliRunner

    from sim.cli import app

    r = CliRunner().invoke(app, ["check", str(write_yaml(tmp_path / "w.yaml", scenario(bp={"usable_priority": 3})))])
    assert r.exit_code == 0, r.output
    assert f"warning: {tmp_path / 'w.yaml'}: {P}.usable_priority: every block" in r.output


def test_instantiate_is_not_reordered_and_not_counted_as_a_restore(tmp_path):
    """An instantiate at 1 h copies the whole 100 GB disk as one transfer (60 + 100 / 0.5 = 260 s):
    its row's usable bytes are the disk, usable at its end, and no restore metric is measured."""
    out = run(scenario(bp={}, operations=[{"kind": "instantiate", "at": AT, "workload": "db", "site": "east"}]),
              tmp_path)
    r = out.tables["restores"]
    assert list(r["kind"]) == ["instantiate"] and r["usable_bytes"].iloc[0] == DISK
    assert r["usable_end_s"].iloc[0] == r["end_s"].iloc[0] == pytest.approx(AT + 260.0)
    assert out.metrics["instantiate.time_s_mean"] == pytest.approx(260.0)
    assert not any(k.startswith("restore.") for k in out.metrics)


def test_sizes_above_a_workloads_disk_are_warned_about(tmp_path):
    """Sizes of 60 + 50 GB exceed db's 100 GB disks: valid (clipped) but warned about."""
    from conftest import write_yaml
    from typer.testing import CliRunner

    from sim.cli import app

    bp = {"classes": [{"name": "a", "size": "60GB", "boot_critical": True}, {"name": "b", "size": "50GB"}]}
    r = CliRunner().invoke(app, ["check", str(write_yaml(tmp_path / "w.yaml", scenario(bp=bp)))])
    assert r.exit_code == 0, r.output
    assert f"{P}.classes: the sizes add up to 1.1e+11 bytes, more than workload 'db'" in r.output
