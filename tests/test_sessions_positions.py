"""Session clusters: who serves a position after overlapping failures (regressions of issue 12),
the placement rule the mechanism keeps for its VMs, and the exact least-loaded choice."""

from __future__ import annotations

import pytest
from conftest import base_scenario, load
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_sessions import arrivals, rows

from sim.runner import Simulation

HOUR = 3600.0


def three_hosts(**overrides) -> dict:
    """Three domains of one host each (east/bd1/h00, east/bd2/h00, east/bd3/h00), no workload."""
    sc = base_scenario(workloads=[], **overrides)
    sc["infrastructure"]["sites"][0]["broadcast_domains"] = [
        {"name": f"bd{i}", "hosts": 1, "profile": "std", "uplink": "100Gbps"} for i in (1, 2, 3)]
    return sc


def one_pair(faults, *, duration="6h", failover="600s") -> dict:
    sc = three_hosts(duration=duration, faults=list(faults))
    sc["mechanisms"] = {"sessions": {"clusters": [
        {"name": "voice", "redundancy": "1:1", "active": 1, "capacity": 100_000, "hosts": ["east/*"],
         "failover_time": failover}],
        "session_types": [{"name": "calls", "rate": 1, "mean_holding": "60s", "require": "1:1"}]}}
    return sc


def test_a_returned_vm_takes_over_when_its_partner_stops_during_the_takeover(tmp_path):
    """Regression (issue 12 §1.1): the other VM of a 1:1 pair, back and idle, must take a short position.

    voice-000 (active) on east/bd1/h00, voice-001 (its backup) on east/bd2/h00 (another domain),
    east/bd3/h00 empty; failover_time 600 s, detection 30 s, boot 60 s, repair 4 h.
    - 3,600 s: bd1/h00 crashes. The position stops serving; voice-001 starts its takeover (due at
      4,200 s). voice-000 restarts after detection: placed at 3,630 s on the only host up that is not
      its partner's (bd3/h00), running at 3,690 s; the takeover is under way, so it waits as backup.
    - 3,900 s: bd2/h00 crashes before voice-001's takeover completes. voice-000 is up and idle, so it
      takes over at once: serving from 3,900 + 600 = 4,500 s.
    Shortfall = 4,500 − 3,600 = 900 s (one position, never serving in between). The old code left the
    position short until voice-001 came back: bd1/h00 repaired at 3,600 + 14,400 = 18,000 s, boot to
    18,060 s, takeover to 18,660 s: 15,060 s. Sessions: the takeover window drops what was held at
    3,900 s; every arrival in [3,600, 4,500] is blocked (recomputed from the named streams); the one
    completed takeover is voice-000's."""
    sc = one_pair([{"kind": "host_crash", "at": "1h", "target": "east/bd1/h00"},
                   {"kind": "host_crash", "at": "3900s", "target": "east/bd2/h00"}])
    sim = Simulation(load(sc, tmp_path))
    assert sim.dc.vms["voice-000"].host.name == "east/bd1/h00"
    assert sim.dc.vms["voice-001"].host.name == "east/bd2/h00"
    out = sim.run()
    c = rows(out, "voice", "").iloc[0]
    assert c["capacity_shortfall_s"] == pytest.approx(900.0, abs=1e-6)
    assert (c["failovers"], c["vm_failures"]) == (1, 2)
    t, _ = arrivals(1, "calls", 1, 60)
    r = rows(out, "voice", "calls").iloc[0]
    assert r["blocked"] == int(((t >= HOUR) & (t <= 4500.0)).sum())
    assert sim.dc.vms["voice-000"].host.name == "east/bd3/h00"


def mechanism(sim):
    return next(m for m in sim.mechanisms if m.key == "sessions")


def test_the_placement_rule_keeps_a_1to1_vm_off_its_partners_host_and_domain_where_it_can(tmp_path):
    """Two domains of 4 hosts (the base scenario), one 1:1 pair: voice-000 in bd1, voice-001 in bd2.
    By the contract, each may go outside its partner's domain while a host there has room: the 4 hosts
    of its own domain. When no host outside the partner's domain has room (bd1's other hosts down, and
    the VM's own host is the one a mover leaves), the rule falls back to every host but the partner's
    (7). A VM whose partner has no host, an N:K VM, and a workload VM get None."""
    from sim.core.causes import HostDown

    sc = base_scenario(duration="1h")
    sc["mechanisms"] = {"sessions": {"clusters": [
        {"name": "voice", "redundancy": "1:1", "active": 1, "hosts": ["east/*"]},
        {"name": "data", "redundancy": "N:K", "active": 1, "backup": 1, "hosts": ["east/*"]}]}}
    sim = Simulation(load(sc, tmp_path))
    mech = mechanism(sim)
    a, b = sim.dc.vms["voice-000"], sim.dc.vms["voice-001"]
    assert a.host.domain.name == "east/bd1" and b.host.domain.name == "east/bd2"
    bd = {d: {f"east/{d}/h{i:02d}" for i in range(4)} for d in ("bd1", "bd2")}
    assert {h.name for h in mech.placement_rule(a)} == bd["bd1"]
    assert {h.name for h in mech.placement_rule(b)} == bd["bd2"]
    for vm in ("data-000", "data-001", "web-000"):
        assert mech.placement_rule(sim.dc.vms[vm]) is None
    # the other three bd1 hosts down: voice-000's only room outside bd2 is its own host
    for h in sim.dc.domains["east/bd1"].hosts:
        if h is not a.host:
            sim.dc.host_down(h, HostDown(at=0.0, host=h.name))
    got = {h.name for h in mech.placement_rule(a)}
    assert got == (bd["bd1"] | bd["bd2"]) - {b.host.name} and len(got) == 7
    # voice-001's host fails: voice-000's partner has no host, nothing constrains it
    sim.dc.host_down(b.host, HostDown(at=0.0, host=b.host.name))
    assert mech.placement_rule(a) is None


def test_a_vm_waiting_for_room_takes_a_host_its_partner_has_left(tmp_path):
    """Suspected in issue 12 §1 (confirmed): a 1:1 VM waiting for room by a rule built from its partner's
    host is not woken when that host becomes allowed. Three hosts A = bd1/h00, B = bd2/h00,
    C = bd3/h00; voice-000 (X) on A, voice-001 (Y) on B; failover 600 s, detection 30 s, boot 60 s.
    - 3,600 s: B and C crash (repair 10 h). Y restarts after detection (3,630 s): every host but A is
      down, so it waits (rule: not A, X's host).
    - 5,400 s: X crashes on its own (its repair, driven here as sim.faults would, ends at 23,400 s),
      keeping its memory on A: the position is short.
    - 7,200 s: A crashes (repair 1 h): X, off A now, waits for its own repair.
    - 10,800 s: A is back with room, and X is no longer on it: Y may use it. Y is placed on A at once,
      boots 60 s, takes the short position after 600 s: serving at 11,460 s.
    Shortfall = 11,460 − 5,400 = 6,060 s. With a rule never re-chosen, Y sleeps until X's repair ends
    (23,400 s), X boots on A (23,460 s) and takes over at 24,060 s: 18,660 s."""
    from sim.core.causes import VmCrash
    from sim.infra import events as ev

    sc = one_pair([{"kind": "host_crash", "at": "1h", "target": "east/bd2/h00", "repair": "10h"},
                   {"kind": "host_crash", "at": "1h", "target": "east/bd3/h00", "repair": "10h"},
                   {"kind": "host_crash", "at": "2h", "target": "east/bd1/h00", "repair": "1h"}],
                  duration="8h")
    sim = Simulation(load(sc, tmp_path))
    env, dc = sim.ctx.env, sim.dc
    x = dc.vms["voice-000"]

    def own_failure():  # what sim.faults does for a vm_mtbf failure with a 5 h repair
        yield env.timeout(5400.0)
        dc.stop_vm(x, VmCrash(at=env.now, vm=x.name), keep_host=True)
        yield env.timeout(18000.0)
        dc.bus.up(ev.VM, x.name)

    env.process(own_failure())
    out = sim.run()
    c = rows(out, "voice", "").iloc[0]
    assert c["capacity_shortfall_s"] == pytest.approx(6060.0, abs=1e-6)
    assert dc.vms["voice-001"].host.name == "east/bd1/h00"

HOSTS6 = [f"east/bd{d}/h{i:02d}" for d in (1, 2, 3) for i in range(2)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(faults=st.lists(st.tuples(st.integers(0, 40), st.sampled_from(HOSTS6), st.integers(1, 30)),
                       min_size=1, max_size=12))
def test_a_1to1_pair_never_shares_a_host_and_positions_are_served_by_one_vm(tmp_path, faults):
    """Invariants over random host crashes (minutes, equal timestamps allowed) on 3 domains of 2 hosts
    with two 1:1 pairs of 4 VMs' room: no VM is ever placed on the host its partner runs on; at the end
    every position is held by at most one VM, and a position serves only if a VM of its pair is up and
    holds it; failovers never exceed VM failures."""
    sc = base_scenario(workloads=[], duration="3h",
                       faults=[{"kind": "host_crash", "at": f"{t}m", "target": h, "repair": f"{r}m"}
                               for t, h, r in faults])
    sc["infrastructure"]["sites"][0]["broadcast_domains"] = [
        {"name": f"bd{i}", "hosts": 2, "profile": "std", "uplink": "100Gbps"} for i in (1, 2, 3)]
    sc["mechanisms"] = {"sessions": {"clusters": [
        {"name": "voice", "redundancy": "1:1", "active": 2, "capacity": 10, "hosts": ["east/*"],
         "failover_time": "20s"}],
        "session_types": [{"name": "c", "rate": 0.5, "mean_holding": "60s", "require": "1:1"}]}}
    sim = Simulation(load(sc, tmp_path))
    mech = mechanism(sim)
    partner = {}
    for cl in mech.clusters:
        for a, b in cl.pairs:
            partner[a.vm.name], partner[b.vm.name] = b.vm, a.vm
    bad = []
    place = sim.dc.place

    def checked(vm, host, *args, **kw):
        if host is partner[vm.name].host:
            bad.append((sim.ctx.env.now, vm.name, host.name))
        return place(vm, host, *args, **kw)

    sim.dc.place = checked
    out = sim.run()
    assert not bad
    cl = mech.clusters[0]
    for p in range(cl.n):
        holders = [m for m in cl.members if m.pos == p]
        assert len(holders) <= 1
        if cl.state[p] == "serving":
            assert holders and not holders[0].down and holders[0].vm.host is not None
    c = rows(out, "voice", "").iloc[0]
    assert c["failovers"] <= c["vm_failures"]
