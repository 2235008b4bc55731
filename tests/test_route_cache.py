"""The per-pair route caches are bounded: past ``PAIR_CACHE`` pairs they start over, and a route
or transfer path computed again is the same (same resources, latency, links and watcher sets)."""

import random

from sim.infra import network as net
from sim.infra import transfer as tr
from sim.infra.network import Endpoint


def _dc():
    from sim.bench import load_fleet
    from sim.runner import Simulation

    return Simulation(load_fleet(None, 200, "1d")).dc


def test_routes_recomputed_after_the_cache_starts_over_are_identical(monkeypatch):
    """Reference: the same pairs' routes from a datacenter with the default (unbounded here)
    cache. 40 random disk and NIC pairs, asked twice, never hold more than 8 entries."""
    bounded, reference = _dc(), _dc()
    hosts = sorted(bounded.hosts)
    rng = random.Random(7)
    pairs = [(getattr(Endpoint, k)(rng.choice(hosts)), getattr(Endpoint, k)(rng.choice(hosts)))
             for k in ("disk", "nic") for _ in range(20)]
    expected = {(s, d): (reference.network.route(s, d), reference.network.links_on(s, d)) for s, d in pairs}
    monkeypatch.setattr(net, "PAIR_CACHE", 8)
    monkeypatch.setattr(tr, "PAIR_CACHE", 8)
    for _ in range(2):
        for src, dst in pairs:
            assert (bounded.network.route(src, dst), bounded.network.links_on(src, dst)) == expected[(src, dst)]
            assert len(bounded.network._routes) <= 8
    assert len(set(pairs)) > 8  # the cache did start over
    t = bounded.transfers
    first = {(s, d): t._path(s, d) for s, d in pairs[:3]}
    for src, dst in pairs:
        t.start(src, dst, 1e6).abort()
        assert len(t._paths) <= 8
    for (src, dst), (route, watched, sets) in first.items():
        again = t._path(src, dst)
        assert again[0] == route and again[1] == watched
        assert all(a is b for a, b in zip(again[2], sets, strict=True))  # the same watcher sets, not copies


def test_live_migrations_route_cache_is_bounded_too(monkeypatch):
    """The engine's per host pair route cache starts over past ``PAIR_CACHE`` like the network's;
    reference: the network's route between the two NICs, for 40 random pairs asked twice."""
    from sim.bench import load_fleet
    from sim.mechanisms import live_migration as lm
    from sim.runner import Simulation

    sim = Simulation(load_fleet(None, 200, "1d"))
    engine = sim.ctx.services["live_migration"]
    hosts = sim.dc.host_list
    rng = random.Random(11)
    pairs = [(rng.choice(hosts), rng.choice(hosts)) for _ in range(40)]
    monkeypatch.setattr(lm, "PAIR_CACHE", 8, raising=False)
    for _ in range(2):
        for s, d in pairs:
            assert engine._route(s, d) == sim.dc.network.route(Endpoint.nic(s.name), Endpoint.nic(d.name))
            assert len(engine._routes) <= 8
    assert len({(s.name, d.name) for s, d in pairs}) > 8  # the cache did start over
