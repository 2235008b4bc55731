"""Replica replacement: where the copies of a primary's data are (issue 12 regressions: a disk
failure destroys the copy left on it), the placement rule the mechanism keeps for its VMs, a
promotion mid-rebuild, and heartbeat phases keyed per node."""

from __future__ import annotations

import pytest
from conftest import run
from test_replication import HB, M, built_hosts, scenario

HOUR = 3600.0


def test_a_disk_failure_destroys_the_copy_a_lost_primary_waits_for(tmp_path):
    """Regression (issue 12 §1.2). One primary, no replica, on host H; H crashes at 1 h (repair 2 h) and
    its disk fails at 90 min (repair 4 h: H is back at 5.5 h). By hand:
    - 3,600 s: the primary stops; its data (every write up to 3,600 s) stays on H's disk. Detected
      after d in (I(M−1), IM] = (2, 3] s: no live replica, so it is lost and waits for H.
    - 5,400 s: H's disk fails: the only copy is gone, nothing is worth waiting for. It restarts at
      once on another eligible host with nothing (data as of 0), boots 60 s: serving at 5,460 s.
    data_loss_s = head − data = 3,600 − 0 = 3,600 s; unavailable_s = 5,460 − 3,600 = 1,860 s.
    The old code kept waiting for H (5.5 h + boot) and reported 0 lost."""
    sc = scenario([{"name": "a", "primaries": 1, "replicas": 0}], duration="8h")
    host = built_hosts(run(sc, tmp_path), "a-p")["a-p000"]
    sc["faults"] = [{"kind": "host_crash", "at": "1h", "target": host, "repair": "2h"},
                    {"kind": "disk_failure", "at": "90m", "target": host}]
    out = run(sc, tmp_path)
    r = out.tables["replacements"].set_index("kind")
    lost, restart = r.loc["lost"], r.loc["restart"]
    assert HB * (M - 1) < lost["detection_s"] <= HB * M
    assert restart["to_host"] != host
    assert restart["data_loss_s"] == pytest.approx(3600.0)
    assert restart["unavailable_s"] == pytest.approx(1860.0)
    assert restart["end_s"] == pytest.approx(5460.0)
    assert out.metrics["replication.restart_data_loss_s_total"] == pytest.approx(3600.0)


def mechanism(sim, key="replication"):
    return next(m for m in sim.mechanisms if m.key == key)


def hosts_of(rule) -> set[str]:
    return {h.name for h in rule}


ALL = {f"east/bd{d}/h{i:02d}" for d in (1, 2, 3) for i in range(4)}


@pytest.mark.parametrize("placement", ["distinct_domains", "same_domain", "random"])
def test_the_placement_rule_keeps_copies_apart_given_where_they_are_now(tmp_path, placement):
    """Three domains of 4 hosts, one primary with 2 replicas. By the contract: ``distinct_domains``:
    a copy may go to the hosts outside the domains of the two other copies (the third domain's 4 hosts);
    ``same_domain``: the primary's domain minus the hosts of the other copies (4 − 2 = 2 hosts; for the
    primary, its domain minus the 2 replicas' hosts); ``random``: every host but the other copies' two
    (10). When a replica's host is down (the replica has no host), it no longer constrains the others:
    distinct_domains then allows 2 domains (8 hosts), same_domain 3 hosts, random 11."""
    from conftest import load

    from sim.core.causes import HostDown
    from sim.runner import Simulation

    sc = scenario([{"name": "a", "primaries": 1, "replicas": 2, "placement": placement}])
    sim = Simulation(load(sc, tmp_path))
    mech = mechanism(sim)
    vms = {n: sim.dc.vms[n] for n in ("a-p000", "a-p000-r1", "a-p000-r2")}
    where = {n: vm.host for n, vm in vms.items()}

    def expected(name, gone=()):
        others = [h for n, h in where.items() if n != name and n not in gone]
        if placement == "distinct_domains":
            return {h for h in ALL if h.rsplit("/", 1)[0] not in {o.domain.name for o in others}}
        if placement == "same_domain":
            dom = where["a-p000"].domain.name
            return {h for h in ALL if h.startswith(dom + "/")} - {o.name for o in others}
        return ALL - {o.name for o in others}

    sizes = {"distinct_domains": 4, "same_domain": 2, "random": 10}
    for name, vm in vms.items():
        got = hosts_of(mech.placement_rule(vm))
        assert got == expected(name) and len(got) == sizes[placement]
        assert not got & {h.name for n, h in where.items() if n != name}  # never another copy's host
    # r2's host fails: r2 has no host, so it constrains neither the primary nor r1
    sim.dc.host_down(where["a-p000-r2"], HostDown(at=0.0, host=where["a-p000-r2"].name))
    for name in ("a-p000", "a-p000-r1"):
        got = hosts_of(mech.placement_rule(vms[name]))
        assert got == expected(name, gone=("a-p000-r2",))
        assert len(got) == {"distinct_domains": 8, "same_domain": 3, "random": 11}[placement]


def test_the_placement_rule_is_none_for_vms_it_does_not_own_or_when_disabled(tmp_path):
    from conftest import load

    from sim.runner import Simulation

    sc = scenario([{"name": "a", "primaries": 1, "replicas": 1}])
    sc["workloads"] = [{"name": "web", "count": 1, "vm": {"vcpus": 1, "memory": "1GiB", "disk": "1GiB"}}]
    sim = Simulation(load(sc, tmp_path))
    assert mechanism(sim).placement_rule(sim.dc.vms["web-000"]) is None
    sc["mechanisms"]["replication"]["enabled"] = False
    sim = Simulation(load(sc, tmp_path))
    assert mechanism(sim).placement_rule(sim.dc.vms["a-p000"]) is None


def test_heartbeat_phases_are_keyed_per_node_name(tmp_path):
    """Issue 12 §5: a node's heartbeat phase is its own stream's first draw × I (the named stream
    ``replication/heartbeat/<node>``, recomputed here), so changing ``replicas`` of network b leaves
    every node of network a, and b's primaries, with the same phase; and the detection of a failure of
    a-p000's host at 1 h is the same in both runs: last beat φ + I⌊(t − φ)/I⌋, plus M·I, minus t."""
    import math

    from conftest import load

    from sim.core.streams import Streams
    from sim.runner import Simulation

    def build(b_replicas):
        sc = scenario([{"name": "a", "primaries": 3, "replicas": 1},
                       {"name": "b", "primaries": 3, "replicas": b_replicas}], heartbeat_interval="10s")
        sim = Simulation(load(sc, tmp_path))
        return sim, mechanism(sim)

    one, m1 = build(1)
    two, m2 = build(2)
    assert len(m2.nodes) == len(m1.nodes) + 3
    for name, node in m1.nodes.items():
        want = Streams(1).get(f"replication/heartbeat/{name}").random() * 10.0
        assert m1.phase(node) == m2.phase(m2.nodes[name]) == pytest.approx(want, abs=1e-12)
    phi = m1.phase(m1.nodes["a-p000"])
    expected = phi + 10.0 * math.floor((HOUR - phi) / 10.0) + 3 * 10.0 - HOUR
    dets = []
    for b in (1, 2):
        sc = scenario([{"name": "a", "primaries": 3, "replicas": 1},
                       {"name": "b", "primaries": 3, "replicas": b}], heartbeat_interval="10s", duration="2h")
        host = one.dc.vms["a-p000"].host.name if b == 1 else two.dc.vms["a-p000"].host.name
        sc["faults"] = [{"kind": "host_crash", "at": "1h", "target": host, "repair": "10m"}]
        r = run(sc, tmp_path).tables["replacements"]
        dets.append(float(r[(r["primary"] == "a-p000") & (r["kind"] == "promotion")]["detection_s"].iloc[0]))
    assert dets[0] == dets[1] == pytest.approx(expected, abs=1e-9)


def test_a_replica_promoted_mid_rebuild_is_missing_the_bytes_its_copy_had_not_delivered(tmp_path):
    """What a promotion mid-rebuild costs (docs/availability.md). The scenario of
    test_replication.test_a_replica_promoted_mid_rebuild_loses_back_to_its_copy_start: r1 is promoted
    after bd1 fails at 3,600 s (detection d1), mapping done at s = 3,600 + d1 + 0.2, and rebuilt at once
    into bd3: 50 GiB at min(2 GB/s disk read, 1.25 GB/s NIC, 1 GB/s disk write) = 1 GB/s, no latency
    inside a site. bd2 (the copy's source) fails at 3,630 s: the copy has delivered 10^9 × (3,630 − s)
    bytes and is promoted as the only live copy. Charged: data_loss_s = 3,630 − s (the writes after the
    copy began). Not charged, and recorded: missing_bytes = 50 GiB − 10^9 × (3,630 − s), here
    53.69 GB − 27.3 ± 0.5 GB ≈ 26.4 GB, about half the disk. The in-sync promotion misses nothing."""
    sc = scenario([{"name": "a", "primaries": 1, "replicas": 1}], duration="2h",
                  faults=[{"kind": "broadcast_domain_outage", "at": "1h", "target": "east/bd1", "repair": "1d"},
                          {"kind": "broadcast_domain_outage", "at": 3630, "target": "east/bd2", "repair": "1d"}])
    out = run(sc, tmp_path)
    r = out.tables["replacements"]
    first, second = r[r["kind"] == "promotion"].sort_values("time_s").to_dict("records")
    s = 3600 + first["detection_s"] + 0.2
    assert first["missing_bytes"] == 0.0
    assert second["data_loss_s"] == pytest.approx(3630 - s)
    assert second["missing_bytes"] == pytest.approx(50 * 1024**3 - 1e9 * (3630 - s), rel=1e-9)
    assert 25.9e9 < second["missing_bytes"] < 26.9e9


def test_an_evacuated_replica_never_joins_its_primary_so_a_later_crash_is_a_promotion(tmp_path):
    """Issue 12 §1.3, end to end: every mover asks the owner (``Datacenter.rule_for``). One domain of 3
    hosts (256 GiB, nothing reserved), ``same_domain``: a-p000 (4 GiB) on h00, its replica on h01, a
    100 GiB workload VM on h02. An uncorrectable error on h01 at 100 s (no guest crash, no hypervisor
    memory) evacuates the replica in its domain. By the VM's own rule the least-used host is h00 (4 of
    256 GiB used, against 100 on h02): the primary's host. The owner's rule (off the other copies'
    hosts) leaves h02. Then h00 crashes at t = 3,600 s: the replica on h02 is promoted. By hand: the
    primary's heartbeat phase φ is the first draw of the stream ``replication/heartbeat/a-p000`` (seed
    1) × I (I = 1 s, M = 3); its last beat at or before t is b = φ + I⌊(t − φ)/I⌋, detection is
    b + M·I − t, and the address moves after mapping_update (0.2 s): unavailable = b + 3 + 0.2 − t, in
    (2.2, 3.2] s whatever φ. Here φ = 0.49373 s, b = 3,599.49373 s: detection 2.49373 s, unavailable
    2.69373 s; it loses replication_lag (0.1 s) of writes; nothing is lost.
    (With the replica on h00, both copies would stop: a loss and a restart after the 1 h repair,
    3,660 s unavailable; checked by hand with the hook removed.)"""
    import math

    from conftest import load

    from sim.core.streams import Streams
    from sim.runner import Simulation

    sc = scenario([{"name": "a", "primaries": 1, "replicas": 1, "placement": "same_domain"}], sizes=(3,),
                  duration="3h", faults=[{"kind": "host_crash", "at": "1h", "target": "east/bd1/h00", "repair": "1h"}])
    sc["infrastructure"]["host_profiles"]["std"]["reserved_memory"] = 0
    sc["workloads"] = [{"name": "web", "count": 1, "vm": {"vcpus": 4, "memory": "100GiB", "disk": "10GiB"},
                        "placement": {"hosts": ["east/bd1/h02"]}}]
    sc["mechanisms"]["memory_error_evacuation"] = {"guest_crash_probability": 0.0, "target_hosts": "same_domain"}
    sim = Simulation(load(sc, tmp_path))
    assert [sim.dc.vms[v].host.name for v in ("a-p000", "a-p000-r1", "web-000")] == [
        "east/bd1/h00", "east/bd1/h01", "east/bd1/h02"]
    env = sim.ctx.env

    def inject():
        yield env.timeout(100.0)
        sim.dimms.uncorrectable(sim.dc.hosts["east/bd1/h01"], dimm=2)

    env.process(inject())
    out = sim.run()
    moved = out.tables["migrations"]
    moved = moved[moved["vm"] == "a-p000-r1"]
    assert list(moved["target"]) == ["east/bd1/h02"] and list(moved["outcome"]) == ["completed"]
    r = out.tables["replacements"]
    promo = r[r["kind"] == "promotion"]
    assert len(promo) == 1 and out.metrics["replication.lost"] == 0
    assert promo["node"].iloc[0] == "a-p000-r1" and promo["to_host"].iloc[0] == "east/bd1/h02"
    phi = Streams(1).get("replication/heartbeat/a-p000").random() * HB
    t = HOUR
    last = phi + HB * math.floor((t - phi) / HB)
    assert promo["detection_s"].iloc[0] == pytest.approx(last + M * HB - t, abs=1e-9)
    assert promo["unavailable_s"].iloc[0] == pytest.approx(last + M * HB + 0.2 - t, abs=1e-9)
    assert HB * (M - 1) + 0.2 < promo["unavailable_s"].iloc[0] <= HB * M + 0.2
    assert promo["data_loss_s"].iloc[0] == pytest.approx(0.1)
