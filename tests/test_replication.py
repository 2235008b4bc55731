"""Replica replacement across broadcast domains (docs/availability.md, part II): detection windows from the
heartbeat phase, promotions and losses under a domain outage, data loss measured from the
replication stream, the disabled counterfactual, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import base_scenario, refused, run

HB, M, MAP, LAG = 1.0, 3, 0.2, 0.1  # the defaults (VRRP 3 x 1 s advertisements; mapping 0.2 s, lag 0.1 s)


def domains(*sizes: int) -> list[dict]:
    return [{"name": f"bd{i + 1}", "hosts": n, "profile": "std", "uplink": "100Gbps"} for i, n in enumerate(sizes)]


def scenario(networks, faults=(), duration="1d", sizes=(4, 4, 4), seed=1, **mech):
    sc = base_scenario(workloads=[], faults=list(faults), duration=duration, seed=seed,
                       mechanisms={"replication": {"networks": list(networks), **mech}})
    sc["infrastructure"]["sites"][0]["broadcast_domains"] = domains(*sizes)
    return sc


def built_hosts(out, prefix: str) -> dict[str, str]:
    """Where each VM whose name starts with ``prefix`` was placed at build (from ``placements``)."""
    p = out.tables["placements"]
    p = p[(p["reason"] == "build") & p["vm"].str.startswith(prefix)]
    return dict(zip(p["vm"], p["host"], strict=True))


def test_a_domain_outage_with_distinct_domains_fails_over_every_primary_in_it_and_loses_none(tmp_path):
    """60 primaries with one replica each over 3 domains of 4 hosts; bd1 goes down at 1 h for 30 min.

    Independent numbers: the primaries hit are those the build placed in bd1 (``placements``);
    each is detected M missed heartbeats after its last beat, so its unavailability is
    detection + mapping_update in (I(M-1) + m, IM + m] = (2.2, 3.2] s; the phases are uniform, so
    the detection delays are uniform on (2, 3]: mean 2.5, sd 1/sqrt(12), and their sample mean lies
    within 4 standard errors of 2.5. An in-sync replica lags the primary by replication_lag, so
    each promotion loses exactly 0.1 s of writes."""
    sc = scenario([{"name": "a", "primaries": 60, "replicas": 1}],
                  faults=[{"kind": "broadcast_domain_outage", "at": "1h", "target": "east/bd1", "repair": "30m"}])
    out = run(sc, tmp_path)
    placed = built_hosts(out, "a-p")
    primaries = {vm for vm in placed if "-r" not in vm}
    replicas = {vm: h for vm, h in placed.items() if "-r" in vm}
    for vm in primaries:  # distinct domains at build
        assert placed[vm].rsplit("/", 1)[0] != replicas[f"{vm}-r1"].rsplit("/", 1)[0]
    hit = sorted(vm for vm in primaries if placed[vm].startswith("east/bd1/"))
    assert len(hit) == 20  # spread evenly over the 3 domains

    r = out.tables["replacements"]
    promos = r[r["kind"] == "promotion"]
    assert sorted(promos["primary"]) == hit
    assert (r["kind"] == "lost").sum() == 0 and out.metrics["replication.lost"] == 0
    assert out.metrics["replication.replacements"] == 20 == out.metrics["replication.failures"]
    assert (promos["time_s"] == 3600.0).all()
    det = promos["detection_s"].to_numpy()
    assert (det > HB * (M - 1)).all() and (det <= HB * M).all()
    assert np.allclose(promos["unavailable_s"], det + MAP)
    assert abs(det.mean() - 2.5) < 4 * (1 / math.sqrt(12)) / math.sqrt(len(det))
    assert np.allclose(promos["data_loss_s"], LAG)
    assert out.metrics["replication.data_loss_s_total"] == pytest.approx(20 * LAG)
    # each promoted replica took over in another domain; the virtual name's incident ends at the mapping
    assert not promos["to_host"].str.startswith("east/bd1/").any()
    inc = out.tables["incidents"].set_index("subject")
    for _, row in promos.iterrows():
        assert inc.loc[row["primary"], "outcome"] == "failed_over"
        assert inc.loc[row["primary"], "downtime_s"] == pytest.approx(row["unavailable_s"])
    total = promos["unavailable_s"].sum()
    assert out.metrics["replication.unavailable_s_total"] == pytest.approx(total)
    assert out.metrics["replication.availability"] == pytest.approx(1 - total / (60 * 86400.0))
    # every replica lost (20 promoted, 20 in bd1) is rebuilt in a domain apart from its primary's
    rebuilds = r[r["kind"] == "rebuild"]
    assert len(rebuilds) == 40
    for _, row in rebuilds.iterrows():
        assert row["from_host"].rsplit("/", 1)[0] != row["to_host"].rsplit("/", 1)[0]
        assert row["bytes"] == 50 * 2**30


def test_a_domain_outage_with_same_domain_loses_every_primary_in_it(tmp_path):
    """The same outage with ``same_domain``: a primary in bd1 has its replica in bd1 too, so no live
    copy survives: lost = primaries built in bd1. Each restarts when its host returns (30 min) and
    boots (1 min): unavailable 1860 s; the replica primaries elsewhere are untouched."""
    sc = scenario([{"name": "b", "primaries": 30, "replicas": 1, "placement": "same_domain"}],
                  faults=[{"kind": "broadcast_domain_outage", "at": "1h", "target": "east/bd1", "repair": "30m"}])
    out = run(sc, tmp_path)
    placed = built_hosts(out, "b-p")
    for vm, host in placed.items():
        if "-r" not in vm:
            rh = placed[f"{vm}-r1"]
            assert rh != host and rh.rsplit("/", 1)[0] == host.rsplit("/", 1)[0]
    hit = sorted(vm for vm, h in placed.items() if "-r" not in vm and h.startswith("east/bd1/"))
    assert len(hit) == 10
    r = out.tables["replacements"]
    assert sorted(r.loc[r["kind"] == "lost", "primary"]) == hit
    assert out.metrics["replication.lost"] == len(hit)
    assert out.metrics["replication.replacements"] == 0
    restarts = r[r["kind"] == "restart"]
    assert sorted(restarts["primary"]) == hit
    assert np.allclose(restarts["unavailable_s"], 1800 + 60)
    assert (restarts["data_loss_s"] == 0).all()  # each came back on its own host's disk
    inc = out.tables["incidents"].set_index("subject")
    assert set(inc.loc[hit, "outcome"]) == {"lost"}


def test_a_replica_promoted_mid_rebuild_loses_back_to_its_copy_start(tmp_path):
    """Hand-derived. One primary p on bd1, its replica r1 on bd2 (3 domains). bd1 fails at 3600 s:
    r1 is promoted at 3600 + d1 + 0.2 (d1 its detection); r1 is rebuilt at once in bd3 (bd2 holds the
    primary, bd1 is down): 50 GiB from a disk read at 2 GB/s through 10 Gbps NICs into a disk
    written at 1 GB/s takes 53.7 s. bd2 fails at 3630 s, mid-copy: the copy's source is gone, and the
    only live copy is the replica being rebuilt, whose data is as of its copy's start. It is promoted
    and the writes lost are 3630 - (3600 + d1 + 0.2) = 29.8 - d1, in [26.8, 27.8)."""
    sc = scenario([{"name": "a", "primaries": 1, "replicas": 1}], duration="2h",
                  faults=[{"kind": "broadcast_domain_outage", "at": "1h", "target": "east/bd1", "repair": "1d"},
                          {"kind": "broadcast_domain_outage", "at": 3630, "target": "east/bd2", "repair": "1d"}])
    out = run(sc, tmp_path)
    placed = built_hosts(out, "a-p")
    assert placed["a-p000"].startswith("east/bd1/") and placed["a-p000-r1"].startswith("east/bd2/")
    r = out.tables["replacements"]
    first, second = r[r["kind"] == "promotion"].sort_values("time_s").to_dict("records")
    d1 = first["detection_s"]
    assert first["data_loss_s"] == pytest.approx(LAG)
    assert second["time_s"] == 3630.0 and second["to_host"].startswith("east/bd3/")
    assert second["data_loss_s"] == pytest.approx(3630 - (3600 + d1 + MAP))
    assert 26.8 <= second["data_loss_s"] < 27.8
    assert out.metrics["replication.data_loss_s_total"] == pytest.approx(LAG + 29.8 - d1)
    assert (r["kind"] == "rebuild").sum() == 0  # the copy never finished; nowhere left to rebuild
    assert out.metrics["replication.lost"] == 0


def test_disabled_builds_only_primaries_and_restarts_them_after_detection_and_boot(tmp_path):
    """``enabled: false``: no replicas; a host crash stops the primaries on it, each restarts on
    another eligible host after infrastructure.detection (30 s) + boot (60 s) = 90 s unavailable."""
    sc = scenario([{"name": "a", "primaries": 6, "replicas": 1}], enabled=False,
                  faults=[{"kind": "host_crash", "at": "1h", "target": "east/bd1/h00", "repair": "4h"}])
    out = run(sc, tmp_path)
    placed = built_hosts(out, "a-")
    assert not any("-r" in vm for vm in placed)
    hit = sorted(vm for vm, h in placed.items() if h == "east/bd1/h00")
    assert hit
    r = out.tables["replacements"]
    assert list(r["kind"].unique()) == ["restart"]
    assert sorted(r["primary"]) == hit
    assert np.allclose(r["unavailable_s"], 90.0)
    assert (r["to_host"] != "east/bd1/h00").all()
    m = out.metrics
    assert m["replication.failures"] == len(hit) and m["replication.replacements"] == 0
    assert m["replication.lost"] == 0 and m["replication.data_loss_s_total"] == 0
    assert m["replication.availability"] == pytest.approx(1 - 90 * len(hit) / (6 * 86400))
    assert set(out.tables["incidents"]["outcome"]) == {"restarted"}


def test_absent_section_writes_the_table_and_every_metric(tmp_path):
    out = run(base_scenario(), tmp_path)
    assert list(out.tables["replacements"].columns)[:5] == ["time_s", "network", "primary", "kind", "node"]
    m = out.metrics
    for name in ("failures", "replacements", "unavailable_s_total", "lost", "data_loss_s_total"):
        assert m[f"replication.{name}"] == 0
    assert "replication.availability" not in m  # no primaries: nothing to divide by


def test_more_replicas_do_not_lower_mean_availability(tmp_path):
    """Metamorphic, paired seeds: the same host crashes and domain outages (streams keyed by target)
    against 0, 1 and 2 replicas per primary; mean availability never goes down with more replicas."""
    means = []
    for replicas in (0, 1, 2):
        avail = []
        for seed in range(1, 5):
            sc = scenario([{"name": "a", "primaries": 12, "replicas": replicas}], duration="20d", seed=seed,
                          faults=[{"kind": "host_crash", "mtbf": "3d", "repair": "4h"},
                                  {"kind": "broadcast_domain_outage", "mtbf": "10d", "repair": "1h"}])
            avail.append(run(sc, tmp_path).metrics["replication.availability"])
        means.append(float(np.mean(avail)))
    assert means[0] <= means[1] <= means[2], means
    assert means[0] < means[1]


# --------------------------------------------------------------------------- bad input
# bad input: `dcsim check` exits 2 (conftest.refused)
check = refused


def test_distinct_domains_with_too_few_domains_is_an_input_error(tmp_path):
    lines = check(tmp_path, scenario([{"name": "a", "primaries": 2, "replicas": 2, "hosts": ["east/bd1/*",
                                                                                           "east/bd2/*"]}]))
    assert len(lines) == 1
    assert "mechanisms.replication.networks.0.replicas: expected at most 1 replicas with placement " \
           "distinct_domains" in lines[0]


def test_network_vms_that_do_not_fit_are_an_input_error(tmp_path):
    # primaries that fit nowhere
    lines = check(tmp_path, scenario([{"name": "a", "primaries": 1, "node": {"memory": "1TiB"}}]))
    assert any("mechanisms.replication.networks.0.primaries: expected a VM of 1024 GiB" in ln for ln in lines)
    # primaries that fit, a replica that does not: hosts of 240 GiB take one 200 GiB node each; bd2 has
    # one host, taken by the first replica, so the second primary's replica has no domain apart from it
    lines = check(tmp_path, scenario([{"name": "a", "primaries": 2, "node": {"memory": "200GiB"}}], sizes=(4, 1)))
    assert len(lines) == 1
    assert "mechanisms.replication.networks.0.replicas: expected room for a-p001-r1 in a broadcast domain " \
           "apart from its other copies" in lines[0]


@pytest.mark.parametrize("field,value,path", [
    ("hosts", ["west/*"], "networks.0.hosts"),
    ("primaries", -1, "networks.0.primaries"),
    ("heartbeat_interval", 0, "heartbeat_interval"),
    ("missed_heartbeats", 0, "missed_heartbeats"),
    ("mapping_update", "-1s", "mapping_update"),
])
def test_meaningless_values_and_unknown_selectors_name_their_path(tmp_path, field, value, path):
    net = {"name": "a", "primaries": 2}
    mech = {}
    if path.startswith("networks"):
        net[field] = value
    else:
        mech[field] = value
    lines = check(tmp_path, scenario([net], **mech))
    assert any(f"mechanisms.replication.{path}:" in ln for ln in lines), lines
