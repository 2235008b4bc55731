"""Memory-error evacuation moves a mechanism's VM only where its owner lets it (``dc.rule_for``).

The owner is ``tests/owner_probe.Pair``: a ``primary`` and a ``copy`` that must never share a
host. Before the owner's rule was asked, evacuation used the copy's own rule and put it on its
primary's host, so one later host crash lost both.
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st
from owner_probe import Pair
from test_memory_errors import scenario

from sim.core.causes import HostDown
from sim.mechanisms.registry import MECHANISMS, Registry
from sim.runner import Simulation
from sim.scenario.loader import validate_scenario

WITH_PAIR = Registry((*MECHANISMS, Pair))
H0, H1, H2 = "east/bd1/h00", "east/bd1/h01", "east/bd1/h02"


def run_pair(errors, crashes, **kw):
    """One domain of three 64 GiB hosts; the three 4 GiB workload VMs packed on h00."""
    data = scenario(hosts=3, evacuation={"guest_crash_probability": 0.0, "target_hosts": "same_domain"}, **kw)
    data["mechanisms"]["pair"] = {}
    sim = Simulation(validate_scenario(data, registry=WITH_PAIR), registry=WITH_PAIR)
    env = sim.ctx.env

    def at(t, fn):
        yield env.timeout(t)
        fn()

    for t, host in errors:
        env.process(at(t, lambda h=host: sim.dimms.uncorrectable(sim.dc.hosts[h], dimm=2)))
    for t, host in crashes:
        env.process(at(t, lambda h=host, t=t: sim.dc.host_down(sim.dc.hosts[h], HostDown(at=t, host=h))))
    return sim, sim.run()


def test_evacuation_keeps_a_copy_off_its_primarys_host():
    """Build (pack by host order): the workload's three VMs and ``primary`` on h00 (13 of 64 GiB),
    ``copy`` kept off h00 so on h01. An uncorrectable error on h01 at 100 s evacuates it (signal
    at 101 s) within the domain: the pool is {h00, h02} (h01 is failing). The copy's own rule
    (pack, every host) would take h00, the first fit; its owner allows every host but the
    primary's, so the copy goes to h02. A crash of h00 at 1 h then stops ``primary`` alone: the
    copy keeps running on h02 (before the fix both stopped)."""
    sim, out = run_pair([(100.0, H1)], [(3600.0, H0)])
    m = out.tables["migrations"]
    assert m["vm"].tolist() == ["copy"]
    assert m["target"].tolist() == [H2]
    assert m["outcome"].tolist() == ["completed"]
    stops = out.tables["pair_stops"]
    assert stops["vm"].tolist() == ["primary"]
    assert sim.dc.vms["copy"].host.name == H2 and sim.dc.vms["copy"].state == "running"


def test_the_migration_engine_refuses_a_target_the_owner_forbids():
    """The engine asks the owner too (the ``migrate`` operation names workload VMs only; every
    other mover calls the engine): ``copy`` (on h01) to h00, where ``primary`` runs, is refused at
    once with the owner's reason; to h02 it completes."""
    sim, _ = run_pair([], [], duration="1s")
    engine = sim.ctx.services["live_migration"]
    env = sim.ctx.env
    copy = sim.dc.vms["copy"]
    results = []

    def go():
        for target in (H0, H2):
            results.append((yield engine.migrate(copy, sim.dc.hosts[target], "test")))

    env.process(go())
    env.run(until=3600)
    assert [r.outcome for r in results] == ["failed", "completed"]
    assert results[0].reason == f"{H0} is not a host pair lets copy use now"
    assert results[0].total_time_s == 0.0
    assert copy.host.name == H2


events = st.lists(st.tuples(st.sampled_from(["error", "crash"]), st.integers(0, 40), st.integers(0, 2)),
                  max_size=8)


@settings(max_examples=25, deadline=None)
@given(events=events)
@example(events=[("error", 0, 0), ("error", 0, 1)])
def test_a_copy_and_its_primary_never_share_a_host(events):
    """Uncorrectable errors and host crashes at random times (on a 10 s grid, so several land at
    one instant) on three hosts: after every SimPy event, ``primary`` and ``copy`` are never on
    one host (nothing moves them but the evacuation, which asks their owner). The example: both
    their hosts fail at one instant; the primary leaves for h02 first, so the copy, whose owner
    keeps it off the primary's host and off the host it is moving to, has nowhere to go (it
    would otherwise have followed the primary to h02)."""
    data = scenario(hosts=3, duration="2h", evacuation={"guest_crash_probability": 0.5,
                                                        "target_hosts": "same_domain"})
    data["mechanisms"]["pair"] = {}
    sim = Simulation(validate_scenario(data, registry=WITH_PAIR), registry=WITH_PAIR)
    env = sim.ctx.env
    hosts = sim.dc.host_list

    def at(t, fn):
        yield env.timeout(t)
        fn()

    for kind, t, h in events:
        host = hosts[h]
        if kind == "error":
            env.process(at(10.0 * t + 1, lambda host=host: sim.dimms.uncorrectable(host, dimm=2)))
        else:
            env.process(at(10.0 * t + 1, lambda host=host, t=t: sim.dc.host_down(
                host, HostDown(at=10.0 * t + 1, host=host.name))))
    sim.start()
    p, c = sim.dc.vms["primary"], sim.dc.vms["copy"]
    while env.peek() < 7200:
        env.step()
        assert p.host is None or p.host is not c.host
