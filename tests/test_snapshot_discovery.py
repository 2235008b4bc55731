"""Snapshot-capability tagging: rule matching per attribute combination, app
impact and backup windows derived by hand from bytes / bottleneck rate, the resource created
between discoveries, a host down at backup time, tagging never impacting apps more than live
streaming, invariants under random faults, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import base_scenario, refused, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.core.streams import Streams
from sim.mechanisms.snapshot_discovery import ATTRIBUTES, Rule, capable

GiB = 1024.0**3
R = 500e6  # the vault's write rate (bytes/s): the bottleneck (disk read 2 GB/s, NIC 1.25 GB/s)
Q = 5.0  # quiesce_time default
KEY = "snapshot_discovery"


def scenario(resources, faults=(), duration="1d", seed=1, **mech):
    sc = base_scenario(workloads=[], faults=list(faults), duration=duration, seed=seed,
                       mechanisms={KEY: {"resources": list(resources), **mech}})
    sc["infrastructure"]["storage"] = [{"name": "vault", "site": "east", "capacity": "1PiB", "read": "1GB/s",
                                        "write": "500MB/s"},
                                       {"name": "attic", "site": "east", "capacity": "1PiB", "read": "1GB/s",
                                        "write": "500MB/s"}]
    return sc


def rows(out):
    return out.tables["snapshot_backups"].sort_values(["time_s", "resource"]).reset_index(drop=True)


# --------------------------------------------------------------------------- rule matching
DEFAULT = (Rule(storage="array"), Rule(filesystem=["zfs", "btrfs"]),
           Rule(volume_manager="lvm", min_free_fraction=0.1))
NAN = math.nan

# (storage, filesystem, volume_manager, free_fraction) -> capable under the default rules, each by hand
CASES = [
    (("array", None, None, NAN), True),       # rule 1
    (("array", "ext4", "md", 0.0), True),     # rule 1, whatever else
    (("local", "ext4", None, NAN), False),    # no rule names local/ext4
    (("local", "zfs", None, NAN), True),      # rule 2
    (("local", "btrfs", None, NAN), True),    # rule 2, second value
    (("local", "xfs", "lvm", 0.5), True),     # rule 3
    (("local", "ext4", "lvm", 0.1), True),    # rule 3 at its bound (>=)
    (("local", "ext4", "lvm", 0.09), False),  # rule 3, too little free space
    (("local", "ext4", "lvm", NAN), False),   # rule 3, free space unknown
    (("local", "ext4", "md", 0.5), False),    # free space but not LVM
    ((None, None, None, NAN), False),         # no attributes
    (("ARRAY", None, None, NAN), False),      # values are exact (case counts)
]


@pytest.mark.parametrize(("attrs", "expected"), CASES)
def test_rule_matching_per_attribute_combination(attrs, expected):
    s, f, v, free = attrs
    assert capable(DEFAULT, [s], [f], [v], [free]).tolist() == [expected]


@pytest.mark.parametrize(("attrs", "expected"), [
    (("local", "xfs", None, NAN), True),     # both attributes hold
    (("local", "ext4", None, NAN), False),   # filesystem does not
    (("array", "xfs", None, NAN), False),    # storage does not
])
def test_a_rule_naming_two_attributes_needs_both(attrs, expected):
    s, f, v, free = attrs
    assert capable([Rule(storage="local", filesystem="xfs")], [s], [f], [v], [free]).tolist() == [expected]


def test_no_rules_tag_nothing_and_an_empty_rule_tags_everything():
    args = (["array", None], ["zfs", None], [None, "lvm"], [NAN, 0.5])
    assert capable([], *args).tolist() == [False, False]
    assert capable([Rule()], *args).tolist() == [True, True]


def reference(rules, res) -> bool:
    """The rule predicate written plainly, one resource at a time."""
    for rule in rules:
        ok = all(getattr(rule, a) is None or res[a] in getattr(rule, a) for a in ATTRIBUTES)
        if rule.min_free_fraction is not None:
            ok = ok and res["free"] is not None and res["free"] >= rule.min_free_fraction
        if ok:
            return True
    return False


VALUES = st.sampled_from(["a", "b", "c"])
rule_st = st.builds(Rule, storage=st.none() | st.lists(VALUES, min_size=1, max_size=2),
                    filesystem=st.none() | st.lists(VALUES, min_size=1, max_size=2),
                    volume_manager=st.none() | st.lists(VALUES, min_size=1, max_size=2),
                    min_free_fraction=st.none() | st.sampled_from([0.0, 0.1, 0.5, 1.0]))
res_st = st.fixed_dictionaries({"storage": st.none() | VALUES, "filesystem": st.none() | VALUES,
                                "volume_manager": st.none() | VALUES,
                                "free": st.none() | st.sampled_from([0.0, 0.05, 0.1, 0.5, 1.0])})


@settings(max_examples=300, deadline=None)
@given(st.lists(rule_st, max_size=4), st.lists(res_st, min_size=1, max_size=8))
def test_vectorised_matching_equals_the_reference_predicate(rules, resources):
    got = capable(rules, [r["storage"] for r in resources], [r["filesystem"] for r in resources],
                  [r["volume_manager"] for r in resources],
                  [NAN if r["free"] is None else r["free"] for r in resources])
    assert got.tolist() == [reference(rules, r) for r in resources]


def test_a_run_tags_exactly_the_resources_the_rules_match(tmp_path):
    """Default rules; entries from the table above (2 resources each): capable are array, zfs and
    lvm with 0.2 free, not ext4 nor lvm with 0.05 free. Tagged at the backup at 0 (a discovery at
    the same instant counts first): 3 entries x 2 = 6 of 10."""
    res = [{"kind": "db", "hosts": "east/bd1/*", "count": 2, "size": "1GiB", "storage": "array"},
           {"kind": "zfs", "hosts": "east/bd1/*", "count": 2, "size": "1GiB", "storage": "local", "filesystem": "zfs"},
           {"kind": "ext", "hosts": "east/bd2/*", "count": 2, "size": "1GiB", "storage": "local", "filesystem": "ext4"},
           {"kind": "lvm", "hosts": "east/bd2/*", "count": 2, "size": "1GiB", "volume_manager": "lvm",
            "free_fraction": 0.2},
           {"kind": "full", "hosts": "east/bd2/*", "count": 2, "size": "1GiB", "volume_manager": "lvm",
            "free_fraction": 0.05}]
    out = run(scenario(res, duration="1h"), tmp_path)
    b = rows(out)
    assert len(b) == 10
    assert sorted(b.loc[b["tagged"], "kind"]) == ["db", "db", "lvm", "lvm", "zfs", "zfs"]
    assert (b.loc[b["tagged"], "mode"] == "snapshot").all() and (b.loc[~b["tagged"], "mode"] == "live").all()
    assert out.metrics["snapshot.tagged"] == 6 and out.metrics["snapshot.snapshots"] == 6
    assert out.metrics["snapshot.resources"] == 10
    # dealt round-robin over the 4 hosts of the selector
    assert b.loc[b["kind"] == "db", "host"].tolist() == ["east/bd1/h00", "east/bd1/h01"]


# --------------------------------------------------------------------------- hand-derived durations
def test_one_snapshot_backup_impacts_for_the_quiesce_and_lasts_quiesce_plus_bytes_over_rate(tmp_path):
    """One 100 GiB array database: quiesced 5 s, then its copy streams alone at the bottleneck,
    the vault's 500 MB/s (disk 2 GB/s, NIC 1.25 GB/s): window = 5 + 100 GiB / 500 MB/s
    = 5 + 214.748... s; impact 5 s. Backups at 0 and 1 d over 2 days."""
    out = run(scenario([{"kind": "db", "hosts": "east/bd1/h00", "size": "100GiB", "storage": "array"}],
                       duration="2d"), tmp_path)
    b = rows(out)
    assert b["time_s"].tolist() == [0.0, 86400.0]
    assert (b["mode"] == "snapshot").all() and (b["outcome"] == "completed").all()
    assert np.allclose(b["impact_s"], Q)
    assert np.allclose(b["window_s"], Q + 100 * GiB / R)
    assert np.allclose(b["bytes"], 100 * GiB)
    assert out.metrics["snapshot.app_impact_s_total"] == pytest.approx(2 * Q)
    assert out.metrics["snapshot.backup_window_s_max"] == pytest.approx(Q + 100 * GiB / R)


def test_one_live_backup_impacts_for_the_whole_copy(tmp_path):
    """The same resource on ext4 (untagged): impact = window = 100 GiB / 500 MB/s = 214.748... s.
    Disabled, the array database streams live just the same."""
    res = {"kind": "fs", "hosts": "east/bd1/h00", "size": "100GiB", "storage": "local", "filesystem": "ext4"}
    for extra, r in (({}, res), ({"enabled": False}, dict(res, storage="array"))):
        b = rows(run(scenario([r], duration="1h", **extra), tmp_path))
        assert b["mode"].tolist() == ["live"]
        assert b["impact_s"].iloc[0] == pytest.approx(100 * GiB / R)
        assert b["window_s"].iloc[0] == pytest.approx(100 * GiB / R)


def test_a_snapshot_and_a_live_copy_share_the_vault(tmp_path):
    """A tagged and an untagged resource of S = 100 GiB each on two hosts, one vault (R = 500 MB/s).
    The live copy runs alone for the quiesce (q R bytes), then both get R/2, then the snapshot copy
    runs alone: the vault is busy at R throughout, so the round ends at 2S/R (the snapshot's
    window); the live copy ends when its remaining S - qR has gone at R/2 after q:
    q + 2(S - qR)/R = 2S/R - q, its impact."""
    S = 100 * GiB
    out = run(scenario([{"kind": "db", "hosts": "east/bd1/h00", "size": "100GiB", "storage": "array"},
                        {"kind": "fs", "hosts": "east/bd2/h00", "size": "100GiB", "filesystem": "ext4"}],
                       duration="1h"), tmp_path)
    b = rows(out).set_index("kind")
    assert b.loc["db", "window_s"] == pytest.approx(2 * S / R)
    assert b.loc["db", "impact_s"] == pytest.approx(Q)
    assert b.loc["fs", "impact_s"] == pytest.approx(2 * S / R - Q)
    assert out.metrics["snapshot.app_impact_s_total"] == pytest.approx(2 * S / R)
    assert out.metrics["snapshot.backup_window_s_max"] == pytest.approx(2 * S / R)


def phase(host: str, interval: float, seed: int = 1) -> float:
    """A host's discovery phase, drawn as documented: uniform in [0, I) from its own stream."""
    return float(Streams(seed).get(f"{KEY}/discovery/{host}").random()) * interval


def first_discovery(t: float, host: str, interval: float, seed: int = 1) -> float:
    """The host's first discovery at or after ``t`` (phase + k I)."""
    p = phase(host, interval, seed)
    return p + math.ceil((t - p) / interval) * interval


def test_a_resource_created_between_discoveries_is_backed_up_live_until_discovered(tmp_path):
    """Discovery every I = 4 h, backups hourly, a 1 GiB zfs file system created at 0:30 on h00 (one
    run) or at 4:00 on h01 (another). Each is reported at its host's first discovery at or after its creation,
    d = phase + ceil((c - phase) / I) I (the phase recomputed here from the host's stream), so
    0 to 4 h later; backups before d stream it live (impact 1 GiB / 500 MB/s = 2.147... s),
    from d on (a discovery at a backup's instant counts first) they snapshot it (impact 5 s).
    Neither exists at the backup at 0."""
    interval = 4 * 3600.0
    for host, created in (("east/bd1/h00", 1800.0), ("east/bd1/h01", 14400.0)):  # one run each: alone
        res = [{"kind": "fs", "hosts": host, "size": "1GiB", "filesystem": "zfs", "created_at": f"{created}s"}]
        r = rows(run(scenario(res, duration="10h", discovery_interval="4h", backup_every="1h"), tmp_path))
        d = first_discovery(created, host, interval)
        assert created <= d < created + interval
        times = [h * 3600.0 for h in range(10) if h * 3600.0 >= created]
        assert r["time_s"].tolist() == times
        assert r["mode"].tolist() == ["snapshot" if t >= d else "live" for t in times]
        live = r["mode"] == "live"
        assert np.allclose(r.loc[live, "impact_s"], GiB / R)
        assert np.allclose(r.loc[~live, "impact_s"], Q)
        assert np.allclose(r.loc[~live, "reported_s"], d)
        assert r.loc[live, "reported_s"].isna().all()


def test_the_share_discovered_by_the_next_backup_is_the_gap_over_the_interval(tmp_path):
    """400 zfs file systems, one per host, created at 23:00; discovery every 4 h at independent
    uniform phases; the backup at 24:00 finds a file system tagged when its host's first
    discovery after 23:00 fell by 24:00: probability 1 h / 4 h = 1/4. The count tagged is
    Binomial(400, 1/4): mean 100, sd sqrt(400 x 1/4 x 3/4) = 8.66; allowed 4 sd."""
    sc = scenario([{"kind": "fs", "hosts": "east/*", "count": 400, "size": "1GiB", "filesystem": "zfs",
                    "created_at": "23h"}], duration="25h", discovery_interval="4h")
    sc["infrastructure"]["sites"][0]["broadcast_domains"] = [
        {"name": f"bd{i + 1}", "hosts": 100, "profile": "std", "uplink": "100Gbps"} for i in range(4)]
    b = run(sc, tmp_path).tables["snapshot_backups"]
    assert len(b) == 400 and (b["time_s"] == 86400.0).all()
    tagged = int(b["tagged"].sum())
    assert abs(tagged - 100) <= 4 * math.sqrt(400 * 0.25 * 0.75), tagged


def test_a_host_down_at_a_discovery_reports_at_the_next_one(tmp_path):
    """A zfs file system created at 1 h on h00, which crashes at that instant for 4 h (= I, the
    discovery interval): every discovery of h00 in the outage is missed, so it is reported at
    h00's first discovery at or after its return (the faults table's end_s), d; hourly backups
    skip it while the host is down, stream it live from its return until d, then snapshot it."""
    interval = 4 * 3600.0
    res = [{"kind": "late", "hosts": "east/bd1/h00", "size": "1GiB", "filesystem": "zfs", "created_at": "1h"}]
    out = run(scenario(res, faults=[{"kind": "host_crash", "at": "1h", "target": "east/bd1/h00", "repair": "4h"}],
                       duration="14h", discovery_interval="4h", backup_every="1h"), tmp_path)
    up = float(out.tables["faults"]["end_s"].iloc[0])
    d = first_discovery(up, "east/bd1/h00", interval)
    assert up <= d < up + interval
    b = rows(out)
    times = [h * 3600.0 for h in range(1, 14)]
    assert b["time_s"].tolist() == times
    assert b["mode"].tolist() == ["skipped" if t < up else "snapshot" if t >= d else "live" for t in times]
    assert b["tagged"].tolist() == [t >= d for t in times]


def test_a_host_crash_fails_the_copy_and_a_down_host_is_skipped(tmp_path):
    """A 10 GiB ext4 volume on h00, backed up hourly (live, 21.47 s alone). h00 crashes at 10 s
    for 2 h: the copy at 0 fails after 10 s x 500 MB/s = 5 GB (impact 10 s); at 1 h and 2 h the
    host is down: skipped, no impact; it is back at 2:00:10, and the backup at 3 h completes."""
    out = run(scenario([{"kind": "fs", "hosts": "east/bd1/h00", "size": "10GiB", "filesystem": "ext4"}],
                       faults=[{"kind": "host_crash", "at": "10s", "target": "east/bd1/h00", "repair": "2h"}],
                       duration="4h", backup_every="1h"), tmp_path)
    b = rows(out)
    assert b["outcome"].tolist() == ["failed", "skipped", "skipped", "completed"]
    assert b.loc[0, "bytes"] == pytest.approx(10 * R)
    assert b.loc[0, "impact_s"] == pytest.approx(10.0)
    assert b.loc[1:2, "cause"].tolist() == ["host down", "host down"]
    assert (b.loc[1:2, "impact_s"] == 0).all()
    assert b.loc[3, "impact_s"] == pytest.approx(10 * GiB / R)
    assert out.metrics["snapshot.app_impact_s_total"] == pytest.approx(10.0 + 10 * GiB / R)


# --------------------------------------------------------------------------- metamorphic
MIXED = [{"kind": "db", "hosts": "east/bd1/*", "count": 6, "size": "200GiB", "storage": "array"},
         {"kind": "fs", "hosts": "east/bd2/*", "count": 5, "size": "80GiB", "filesystem": "ext4"},
         {"kind": "vol", "hosts": "east/*", "count": 4, "size": "50GiB", "volume_manager": "lvm",
          "free_fraction": 0.3}]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_tagging_never_impacts_apps_more_than_streaming_everything_live(tmp_path, seed):
    """Paired runs (same seed, same host crashes): with tagging on, the app impact summed over
    backups is at most that of the disabled run, where everything streams live (every tagged
    copy here takes far longer than the 5 s quiesce), and strictly less since 10 of 15 are tagged."""
    faults = [{"kind": "host_crash", "mtbf": "5d", "repair": "2h"}]
    on = run(scenario(MIXED, faults, duration="7d", seed=seed), tmp_path).metrics
    off = run(scenario(MIXED, faults, duration="7d", seed=seed, enabled=False), tmp_path).metrics
    assert off["snapshot.snapshots"] == 0 and off["snapshot.tagged"] == 0
    assert on["snapshot.tagged"] == 10
    assert on["snapshot.app_impact_s_total"] < off["snapshot.app_impact_s_total"]


# --------------------------------------------------------------------------- invariants under faults
fault_st = st.lists(
    st.tuples(st.sampled_from(["host_crash", "storage_outage"]),
              st.sampled_from([0, 10, 3600, 7200, 7205, 10800]) | st.integers(0, 6 * 3600),
              st.sampled_from(["east/bd1/h00", "east/bd1/h01", "east/bd2/h00"]),
              st.sampled_from([60, 1800, 3600, 7200])),
    max_size=5)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fault_st)
def test_every_existing_resource_has_one_row_per_backup_and_rows_are_consistent(tmp_path, faults):
    """Random host crashes and storage outages, some at backup instants (multiples of 1 h) and at
    equal timestamps: one row per existing resource per backup; a completed copy moved its size,
    a failed one less; the window is end - start; a snapshot's impact is the quiesce, a live
    copy's its window; skipped rows impact nothing."""
    fs = [{"kind": k, "at": f"{at}s", "target": "vault" if k == "storage_outage" else host, "repair": f"{rep}s"}
          for k, at, host, rep in faults]
    res = [{"kind": "db", "hosts": ["east/bd1/h00", "east/bd1/h01"], "count": 2, "size": "20GiB",
            "storage": "array"},
           {"kind": "fs", "hosts": "east/bd2/h00", "size": "30GiB", "filesystem": "ext4", "created_at": "90m"}]
    out = run(scenario(res, fs, duration="6h", backup_every="1h", discovery_interval="2h"), tmp_path)
    b = out.tables["snapshot_backups"]
    expected = sum(2 + (h * 3600 >= 5400) for h in range(6))
    assert len(b) == expected
    assert not b.duplicated(["time_s", "resource"]).any()
    size = b["kind"].map({"db": 20 * GiB, "fs": 30 * GiB})
    done = b["outcome"] == "completed"
    assert np.allclose(b.loc[done, "bytes"], size[done])
    assert (b.loc[b["outcome"] == "failed", "bytes"] < size[b["outcome"] == "failed"]).all()
    assert np.allclose(b["window_s"], b["end_s"] - b["time_s"])
    snap = (b["mode"] == "snapshot") & (b["outcome"] != "open")
    assert np.allclose(b.loc[snap, "impact_s"], Q)
    live = b["mode"] == "live"
    assert np.allclose(b.loc[live, "impact_s"], b.loc[live, "window_s"])
    skipped = b["mode"] == "skipped"
    assert (b.loc[skipped, "impact_s"] == 0).all() and (b.loc[skipped, "outcome"] == "skipped").all()
    assert set(b.loc[b["kind"] == "fs", "mode"]) <= {"live", "skipped"}  # ext4: never tagged
    for _, r in b.sort_values("time_s").groupby("resource"):  # once reported, tagged for good
        tags = r["tagged"].tolist()
        assert tags == sorted(tags)


def test_same_seed_same_table(tmp_path):
    sc = scenario(MIXED, [{"kind": "host_crash", "mtbf": "2d", "repair": "2h"}], duration="3d", seed=7)
    a = run(sc, tmp_path).tables["snapshot_backups"]
    b = run(sc, tmp_path).tables["snapshot_backups"]
    assert a.equals(b)


# --------------------------------------------------------------------------- bad input
# bad input: `dcsim check` exits 2 (conftest.refused)
check = refused


def test_a_rule_on_an_unknown_attribute_is_an_input_error(tmp_path):
    lines = check(tmp_path, scenario([], rules=[{"storage": "array"}, {"colour": "red"}]))
    assert len(lines) == 1
    assert "mechanisms.snapshot_discovery.rules.1.colour" in lines[0]


def test_an_unknown_storage_target_is_an_input_error(tmp_path):
    lines = check(tmp_path, scenario([{"kind": "db", "hosts": "east/bd1/*", "size": "1GiB"}], storage="vualt"))
    assert len(lines) == 1
    assert "mechanisms.snapshot_discovery.storage: expected an existing storage system" in lines[0]
    assert '"vualt"' in lines[0]


def test_a_resource_selector_matching_no_host_is_an_input_error(tmp_path):
    lines = check(tmp_path, scenario([{"kind": "db", "hosts": "west/*", "size": "1GiB"}]))
    assert len(lines) == 1
    assert "mechanisms.snapshot_discovery.resources.0.hosts" in lines[0]
