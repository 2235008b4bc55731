"""Host image remediation (desired state): derived standalone images, compliance scans from the
phase, the rolling cluster schedule and its migration downtime, standalone suspend and shutdown
downtime, waiting without room, defined ends on failures, the disabled counterfactual, bad input."""

from __future__ import annotations

import math

from conftest import base_scenario, run, write_yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from sim.cli import app
from sim.mechanisms.remediation import derive

GiB = 1024.0**3
MiB = 1024.0**2
S, INST, B = 600.0, 900.0, 180.0  # stage, install (the defaults), the profile's boot_time (3m)
DEV, SW = 1 * MiB, 0.02  # live migration's device_state and switchover (defaults)
R = 10e9 / 8  # the base profile's NIC, 10 Gbps, in bytes/s
IMAGE = {"base": "8.0.2", "addon": "oem-8.0.2", "components": {"vsan": "8.0.2", "ha-agent": "8.0.2", "nic": "1.4.0"}}
NEW = {"base": "8.0.3", "components": {"vsan": "8.0.3"}}


def scenario(cluster_hosts=("east/bd1/*",), standalone=(), workloads=(), faults=(), operations=(),
             duration="1d", profile=None, **mech):
    sc = base_scenario(workloads=list(workloads), faults=list(faults), operations=list(operations),
                       duration=duration, clusters=[{"name": "prod", "hosts": list(cluster_hosts), "image": IMAGE}],
                       standalone_hosts=list(standalone), mechanisms={"remediation": mech})
    if profile:
        sc["infrastructure"]["host_profiles"]["std"].update(profile)
    return sc


def vms(name, count, memory, hosts, **vm):
    return {"name": name, "count": count, "placement": {"hosts": list(hosts)},
            "vm": {"vcpus": 2, "memory": memory, "disk": "10GiB", "dirty_rate": "0MB/s", **vm}}


def publish(at="30m"):
    return {"kind": "publish_image", "at": at, "cluster": "prod", "image": NEW}


# -- desired images ---------------------------------------------------------------------------------
names = st.text(alphabet="abcdefghij-", min_size=1, max_size=6)
versions = st.text(alphabet="0123456789.", min_size=1, max_size=5)


@given(st.dictionaries(names, versions, max_size=8), st.lists(names, max_size=5),
       st.dictionaries(names, versions, max_size=4), versions, st.one_of(st.none(), versions))
def test_a_derived_standalone_image_never_contains_a_cluster_only_component(components, only, own, base, addon):
    """Property: whatever the cluster's components, the cluster-only list and the host's own
    components, the derived image has no cluster-only component, keeps the cluster's base and
    add-on, and has every other component of the cluster and of the host."""
    cluster = {"base": base, **({"addon": addon} if addon else {}), **components}
    out = derive(cluster, only, own)
    assert not set(out) & (set(only) - {"base", "addon"})
    assert out["base"] == base and out.get("addon") == addon
    for k, v in own.items():
        if k not in only:
            assert out[k] == v
    for k in components:
        if k not in only and k not in own:
            assert out[k] == components[k]


def test_publish_regenerates_the_standalone_image_without_cluster_only_components(tmp_path):
    """The standalone host's desired image after the publish is the new cluster base, the old add-on,
    the cluster's nic 1.4.0 (vsan and ha-agent are cluster-only) and its own raid 2.1.0."""
    sc = scenario(standalone=[{"host": "east/bd2/h00", "derive_from": "prod", "components": {"raid": "2.1.0"}}],
                  operations=[publish()])
    out = run(sc, tmp_path)
    r = out.tables["remediations"]
    row = r[r["host"] == "east/bd2/h00"].iloc[0]
    assert row["desired_image"] == "base=8.0.3;addon=oem-8.0.2;nic=1.4.0;raid=2.1.0"
    assert row["running_image"] == row["desired_image"] and row["outcome"] == "compliant"
    cluster = r[r["host"] == "east/bd1/h00"].iloc[0]
    assert cluster["desired_image"] == "base=8.0.3;addon=oem-8.0.2;ha-agent=8.0.2;nic=1.4.0;vsan=8.0.3"


# -- the rolling schedule -----------------------------------------------------------------------------
def test_after_a_publish_every_host_is_compliant_within_the_scan_and_the_rolling_schedule(tmp_path):
    """4 cluster hosts in one domain, one 16 GiB VM each (dirty rate 0), max_concurrent 2; publish at
    30 min, scans hourly: detected at the scan of 1 h (3,600 s).

    Wave 1 (h00, h01 enter maintenance at 3,600 s): each VM goes to the least-used host of the
    cluster with room, h00's to h02 and h01's to h03 (distinct NICs): round 0 takes M/R, the
    stop-and-copy round (nothing dirtied) sends the device state, DEV/R, then switchover SW.
    T1 = M/R + DEV/R + SW. Then stage + install + reboot = S + I + B.
    Wave 2 (h02, h03, two VMs each, to the emptied h00 and h01): four flows, each NIC carrying two,
    so each gets R/2: T2 = 2M/R + 2 DEV/R + SW.
    The last host is compliant at 3,600 + 2 (S + I + B) + T1 + T2; each VM's downtime is its
    stop-and-copy + switchover: 2 x (DEV/R + SW) + 4 x (2 DEV/R + SW) in all, sub-second each."""
    M = 16 * GiB
    sc = scenario(cluster_hosts=["east/bd1/*"], workloads=[vms("w", 4, "16GiB", ["east/bd1/*"])],
                  operations=[publish()], max_concurrent=2)
    out = run(sc, tmp_path)
    r = out.tables["remediations"].sort_values("time_s")
    assert list(r["outcome"]) == ["compliant"] * 4
    t1 = M / R + DEV / R + SW
    t2 = 2 * M / R + 2 * DEV / R + SW
    assert math.isclose(r["time_s"].max(), 3600 + 2 * (S + INST + B) + t1 + t2, abs_tol=1e-6)
    assert math.isclose(r["time_s"].iloc[0], 3600 + t1 + S + INST + B, abs_tol=1e-6)
    assert (r["detected_s"] == 3600).all() and (r["noncompliant_since_s"] == 1800).all()
    down = 2 * (DEV / R + SW) + 4 * (2 * DEV / R + SW)
    assert math.isclose(out.metrics["remediation.vm_downtime_s_total"], down, rel_tol=1e-9)
    inc = out.tables["incidents"]
    assert set(inc["cause"]) == {"migration"} and (inc["end_s"] - inc["start_s"]).max() < 1.0
    assert out.metrics["remediation.hosts_remediated"] == 4
    assert out.metrics["remediation.scans"] == 24  # scan instants 0, 1 h, ..., 23 h of a day
    ttc = (r["time_s"] - 1800).to_numpy()
    assert math.isclose(out.metrics["remediation.noncompliant_host_s_total"], ttc.sum(), rel_tol=1e-12)


def test_hosts_without_vms_roll_in_waves_of_max_concurrent(tmp_path):
    """8 hosts with no VMs, max_concurrent 3, publish at 2 h (a scan instant: detected then): waves
    of 3, 3, 2 hosts, each wave S + I + B = 1,680 s; the hosts end at 2 h + k x 1,680 s, k = 1, 2, 3."""
    sc = scenario(cluster_hosts=["east/*"], operations=[publish("2h")], max_concurrent=3)
    out = run(sc, tmp_path)
    ends = sorted(out.tables["remediations"]["time_s"])
    assert ends == [7200 + k * 1680.0 for k in (1, 1, 1, 2, 2, 2, 3, 3)]


# -- standalone hosts ----------------------------------------------------------------------------------
STANDALONE = [{"host": "east/bd2/h00", "derive_from": "prod", "components": {"raid": "2.1.0"}}]
FAST_NIC = {"nic": "100Gbps"}  # memory is copied to and from the disk: the disk is the bottleneck


def test_standalone_suspend_downtime_is_disk_write_install_reboot_disk_read(tmp_path):
    """Two 16 GiB VMs on the standalone host; disk write 1 GB/s, read 2 GB/s. Publish at 30 min,
    detected at 1 h, staged for S while the VMs run; then both pause, 32 GiB are written to the
    disk (W = 32 GiB / 1e9 B/s), the host installs and reboots (I + B), reads them back (32 GiB /
    2e9 B/s) and the VMs resume. Each VM is down W + I + B + Rd; both incidents have cause
    ``remediation`` and outcome ``resumed``."""
    mem = 32 * GiB
    sc = scenario(standalone=STANDALONE, workloads=[vms("s", 2, "16GiB", ["east/bd2/h00"])],
                  operations=[publish()], profile=FAST_NIC)
    out = run(sc, tmp_path)
    down = mem / 1e9 + INST + B + mem / 2e9
    inc = out.tables["incidents"]
    assert list(inc["cause"]) == ["remediation"] * 2 and set(inc["outcome"]) == {"resumed"}
    assert ((inc["end_s"] - inc["start_s"]) - down).abs().max() < 1e-6
    assert (inc["start_s"] == 3600 + S).all()
    assert math.isclose(out.metrics["remediation.vm_downtime_s_total"], 2 * down, rel_tol=1e-9)
    r = out.tables["remediations"]
    row = r[r["host"] == "east/bd2/h00"].iloc[0]
    assert math.isclose(row["time_s"], 3600 + S + down, abs_tol=1e-6) and row["kind"] == "standalone"


def test_standalone_shutdown_downtime_is_install_reboot_and_the_vm_boot(tmp_path):
    """With ``shutdown``, each VM is down from the end of staging for I + B + its own boot_time
    (1 min and 3 min here): 1,140 s and 1,260 s."""
    sc = scenario(standalone=STANDALONE, operations=[publish()], standalone_vm_action="shutdown",
                  workloads=[vms("a", 1, "16GiB", ["east/bd2/h00"], boot_time="1m"),
                             vms("b", 1, "16GiB", ["east/bd2/h00"], boot_time="3m")])
    out = run(sc, tmp_path)
    inc = out.tables["incidents"].set_index("subject")
    got = (inc["end_s"] - inc["start_s"]).to_dict()
    assert math.isclose(got["a-000"], INST + B + 60, abs_tol=1e-9) and math.isclose(got["b-000"], INST + B + 180, abs_tol=1e-9)


# -- no room ------------------------------------------------------------------------------------------
def test_a_cluster_without_room_waits_and_never_overcommits(tmp_path):
    """Two cluster hosts (240 GiB for VMs each), each full with two 100 GiB VMs: no VM of the first
    host fits on the second. Detected at 1 h, h00 (max_concurrent 1) retries after 300 s doubling to
    3,600 s: tries at 3,600, 3,900, 4,500, 5,700, then 8,100 + 3,600 j for j = 0..21 (< 1 d): 26
    waits, no migration, both hosts still noncompliant at the end (open rows)."""
    sc = scenario(cluster_hosts=["east/bd1/h00", "east/bd1/h01"],
                  workloads=[vms("big", 4, "100GiB", ["east/bd1/h00", "east/bd1/h01"])], operations=[publish()])
    out = run(sc, tmp_path)
    r = out.tables["remediations"].set_index("host")
    assert len(out.tables["migrations"]) == 0
    assert set(r["outcome"]) == {"open"}
    assert r.loc["east/bd1/h00", "waits"] == 26 and r.loc["east/bd1/h01", "waits"] == 0
    assert out.metrics["remediation.hosts_remediated"] == 0
    assert math.isclose(out.metrics["remediation.noncompliant_host_s_total"], 2 * (86400 - 1800))


def test_evacuation_targets_are_the_cluster_hosts_in_the_migration_scope(tmp_path):
    """A cluster of east/bd1/h00 (two 16 GiB VMs, pinned there by nothing but the placement) and
    east/bd2/h00. Live migration's default scope is the broadcast domain: h00 of bd1 has no other
    cluster host in its domain, so it waits (26 tries in the day, as in the test above) and nothing
    moves, and so does bd2/h00 behind it (max_concurrent 1); with ``scope: site`` its VMs move to
    bd2/h00 and both hosts end compliant. (The evacuation groups the cluster's hosts once by scope.)"""
    hosts = ["east/bd1/h00", "east/bd2/h00"]
    sc = scenario(cluster_hosts=hosts, workloads=[vms("web", 2, "16GiB", ["east/bd1/h00"])], operations=[publish()])
    sc["workloads"][0]["placement"]["hosts"] = hosts
    sc["workloads"][0]["placement"]["spread"] = "pack"
    (tmp_path / "domain").mkdir()
    (tmp_path / "site").mkdir()
    out = run(sc, tmp_path / "domain")
    r = out.tables["remediations"].set_index("host")
    assert len(out.tables["migrations"]) == 0 and set(r["outcome"]) == {"open"}
    assert r.loc["east/bd1/h00", "waits"] == 26
    sc["mechanisms"]["live_migration"] = {"scope": "site"}
    out = run(sc, tmp_path / "site")
    r = out.tables["remediations"].set_index("host")
    m = out.tables["migrations"]
    assert set(r["outcome"]) == {"compliant"}
    first = m[m["time_s"] < r.loc["east/bd1/h00", "time_s"]]
    assert len(first) == 2 and set(first["target"]) == {"east/bd2/h00"}


def test_hosts_waiting_on_each_other_leave_maintenance_and_all_end_compliant(tmp_path):
    """max_concurrent 4 on a 4-host cluster, one 16 GiB VM each: at 1 h all four enter maintenance.
    h00 evacuates first and finds every other host in maintenance: it leaves maintenance (keeping
    its slot) and waits 300 s. h01-h03 then send their VMs to h00, the only up host: three flows
    into its NIC, each at R/3, done after 3M/R + 3 DEV/R + SW; they are compliant at
    3,600 + 3M/R + 3 DEV/R + SW + 1,680 = 5,321.25 s. h00 tries again at 3,900 and 4,500 (others
    still in maintenance) and at 5,700 sends its four VMs out over its NIC (R/4 each): compliant at
    5,700 + 4M/R + 4 DEV/R + SW + 1,680 s, after 3 waits.
    Regression: a host used to wait in maintenance, so all four waited forever (4 open rows)."""
    M = 16 * GiB
    sc = scenario(cluster_hosts=["east/bd1/*"], workloads=[vms("w", 4, "16GiB", ["east/bd1/*"])],
                  operations=[publish()], max_concurrent=4)
    out = run(sc, tmp_path)
    r = out.tables["remediations"].set_index("host")
    assert list(r["outcome"]) == ["compliant"] * 4
    for h in ("h01", "h02", "h03"):
        assert math.isclose(r.loc[f"east/bd1/{h}", "time_s"], 3600 + 3 * M / R + 3 * DEV / R + SW + 1680, abs_tol=1e-6)
    assert math.isclose(r.loc["east/bd1/h00", "time_s"], 5700 + 4 * M / R + 4 * DEV / R + SW + 1680, abs_tol=1e-6)
    assert r.loc["east/bd1/h00", "waits"] == 3 and r["waits"].sum() == 3


# -- defined ends -------------------------------------------------------------------------------------
def test_a_host_failure_during_remediation_ends_it_and_the_host_is_rescanned_when_back(tmp_path):
    """h00 (no VMs) starts at 3,600 s and crashes at 3,700 s (staging): the row says host_failed and
    it keeps the old image. It is back at 3,700 + 1 h = 7,300 s, found at the scan of 3 h (10,800 s)
    and compliant 1,680 s later, at 12,480 s."""
    sc = scenario(cluster_hosts=["east/bd1/h00"], operations=[publish()],
                  faults=[{"kind": "host_crash", "at": 3700, "target": "east/bd1/h00", "repair": "1h"}])
    out = run(sc, tmp_path)
    r = out.tables["remediations"].sort_values("time_s")
    assert list(r["outcome"]) == ["host_failed", "compliant"]
    assert r["time_s"].tolist() == [3700.0, 12480.0]
    assert r["running_image"].iloc[0] == "base=8.0.2;addon=oem-8.0.2;ha-agent=8.0.2;nic=1.4.0;vsan=8.0.2"
    assert r["detected_s"].tolist() == [3600.0, 10800.0]


def test_a_failed_migration_ends_the_remediation_and_the_next_scan_retries(tmp_path):
    """h00's only VM (16 GiB) migrates to h01 from 3,600 s (round 0 lasts 13.7 s); h01 crashes at
    3,605 s: the migration fails, the row says migration_failed at 3,605 s, h00 leaves maintenance
    with its VM and old image. h01 is back at 3,905 s; the next scan (2 h) finds h00 (and h01,
    noncompliant too) again, and both end compliant."""
    sc = scenario(cluster_hosts=["east/bd1/h00", "east/bd1/h01"],
                  workloads=[vms("w", 1, "16GiB", ["east/bd1/h00", "east/bd1/h01"])], operations=[publish()],
                  faults=[{"kind": "host_crash", "at": 3605, "target": "east/bd1/h01", "repair": "5m"}])
    out = run(sc, tmp_path)
    r = out.tables["remediations"].sort_values("time_s")
    first = r.iloc[0]
    assert (first["host"], first["outcome"], first["time_s"]) == ("east/bd1/h00", "migration_failed", 3605.0)
    assert set(r[r["time_s"] > 7200]["outcome"]) == {"compliant"} and len(r) == 3
    m = out.tables["migrations"]
    assert (m["outcome"] == "failed").sum() == 1


# -- the disabled counterfactual -------------------------------------------------------------------
def test_disabled_drift_stays_until_the_manual_fix(tmp_path):
    """A drift on h00 at 5 h; disabled, nothing scans (0 scans) and the host is fixed by hand 30 d
    later: one row, noncompliant for exactly 30 d. Enabled, the scan at 5 h finds it at once and it
    is compliant 1,680 s later (no VMs)."""
    drift = [{"kind": "image_drift", "at": "5h", "target": "east/bd1/h00"}]
    sc = scenario(cluster_hosts=["east/bd1/h00"], faults=drift, duration="40d", enabled=False)
    out = run(sc, tmp_path)
    assert out.metrics["remediation.scans"] == 0
    assert out.metrics["remediation.noncompliant_host_s_total"] == 30 * 86400
    r = out.tables["remediations"]
    assert list(r["kind"]) == ["manual"] and r["time_s"].iloc[0] == 5 * 3600 + 30 * 86400
    sc = scenario(cluster_hosts=["east/bd1/h00"], faults=drift, duration="40d")
    (tmp_path / "on").mkdir()
    out = run(sc, tmp_path / "on")
    assert out.metrics["remediation.noncompliant_host_s_total"] == 1680.0
    assert out.metrics["remediation.scans"] == 960


# -- properties ---------------------------------------------------------------------------------------
events = st.lists(st.tuples(st.sampled_from(["image_drift", "host_crash", "publish"]),
                            st.integers(0, 12), st.integers(0, 7)), max_size=8)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events, st.integers(1, 3))
def test_never_more_than_max_concurrent_hosts_in_maintenance(tmp_path, evs, m):
    """Property: random drifts, crashes and publishes at half-hour multiples (so at scan instants and
    at equal timestamps): for every cluster, the remediation intervals [maintenance, end) never
    overlap more than ``max_concurrent`` deep, every row ends in a defined outcome, and memory is
    never overcommitted (the datacenter refuses it outright)."""
    faults, ops = [], []
    for kind, half_hours, h in evs:
        target = f"east/bd{1 + h // 4}/h{h % 4:02d}"
        if kind == "publish":
            ops.append({"kind": "publish_image", "at": half_hours * 1800, "cluster": "prod",
                        "image": {"base": f"9.{half_hours}"}})
        else:
            faults.append({"kind": kind, "at": half_hours * 1800, "target": target,
                           **({"repair": "30m"} if kind == "host_crash" else {})})
    sc = scenario(cluster_hosts=["east/*"], workloads=[vms("w", 16, "16GiB", ["east/*"], dirty_rate="20MB/s")],
                  faults=faults, operations=ops, duration="12h", max_concurrent=m, scan_interval="30m")
    out = run(sc, tmp_path)
    r = out.tables["remediations"]
    assert set(r["outcome"]) <= {"compliant", "host_failed", "migration_failed", "open"}
    c = r[(r["kind"] == "cluster")]
    starts = c["maintenance_s"].to_numpy()
    ends = c["time_s"].to_numpy()
    for t in starts:
        assert ((starts <= t) & (ends > t)).sum() <= m
    for h in out.tables["placements"]["host"].unique():
        assert h.startswith("east/")


# -- input -------------------------------------------------------------------------------------------
def check(tmp_path, sc):
    path = write_yaml(tmp_path / "s.yaml", sc)
    r = CliRunner().invoke(app, ["check", str(path)])
    return r.exit_code, r.output


def test_bad_input_names_the_dotted_path(tmp_path):
    sc = scenario(standalone=[{"host": "east/bd1/h00", "derive_from": "prod"}])
    code, text = check(tmp_path, sc)
    assert code == 2 and "s.yaml: standalone_hosts.0.host: expected a host outside every cluster" in text
    sc = scenario(standalone=[{"host": "east/bd2/h00", "derive_from": "prd"}])
    code, text = check(tmp_path, sc)
    assert code == 2 and "s.yaml: standalone_hosts.0.derive_from: expected an existing cluster" in text
    sc = scenario(operations=[{"kind": "publish_image", "at": "1h", "cluster": "prd", "image": NEW}])
    code, text = check(tmp_path, sc)
    assert code == 2 and "s.yaml: operations.0.cluster: expected an existing cluster" in text
    sc = scenario()
    sc["clusters"].append({"name": "dev", "hosts": ["east/bd1/h00"], "image": IMAGE})
    code, text = check(tmp_path, sc)
    assert code == 2 and "s.yaml: clusters.1.hosts: expected hosts of no other cluster" in text
    assert "Traceback" not in text


def test_image_drift_is_warned_about_only_when_remediation_is_off(tmp_path):
    drift = [{"kind": "image_drift", "mtbf": "30d"}]
    code, text = check(tmp_path, scenario(faults=drift, enabled=False))
    assert code == 0 and "s.yaml: faults.0: image_drift changes running images" in text
    code, text = check(tmp_path, scenario(faults=drift))
    assert code == 0 and "warning" not in text


def test_the_shipped_scenario_is_deterministic_and_rolls_the_cluster_one_host_at_a_time(tmp_path):
    """scenarios/remediation.yaml twice with its seed: identical remediations tables. The publish at
    2 d falls on a scan instant, so the 8 cluster hosts are found at 172,800 s and, max_concurrent
    being 1, each enters maintenance exactly when the previous one leaves it."""
    from pathlib import Path

    from sim.mechanisms.registry import config_models
    from sim.runner import run_scenario
    from sim.scenario.loader import load_scenario

    path = Path(__file__).resolve().parents[1] / "scenarios" / "remediation.yaml"
    a = run_scenario(load_scenario(str(path), [], config_models())).tables["remediations"]
    b = run_scenario(load_scenario(str(path), [], config_models())).tables["remediations"]
    assert a.equals(b)
    roll = a[(a["kind"] == "cluster") & (a["detected_s"] == 172800.0)].sort_values("maintenance_s")
    assert len(roll) == 8 and roll["maintenance_s"].iloc[0] == 172800.0
    assert (roll["maintenance_s"].to_numpy()[1:] == roll["time_s"].to_numpy()[:-1]).all()
