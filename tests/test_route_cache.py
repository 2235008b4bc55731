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
    subjects = {}
    for src, dst in pairs:
        t.start(src, dst, 1e6).abort()
        assert len(t._paths) <= 8
        for key in t.path(src, dst).keys:
            subjects.setdefault(key, t._down[key])
    for (src, dst), p in first.items():
        again = t.path(src, dst)
        assert (again.route, again.watched, again.keys) == (p.route, p.watched, p.keys)
    # each subject keeps one set of paths (and its one bus subscription) however often the cache starts
    # over, and holds only the paths that were cached or had live transfers when it last did
    for key, over in subjects.items():
        assert t._down[key] is over
        assert all(p.indexed and (p.live or p in t._paths.values()) for p in over)


def test_live_migrations_route_cache_is_bounded_too(monkeypatch):
    """The engine's per host pair path cache starts over past ``PAIR_CACHE`` like the network's;
    reference: the network's route between the two NICs, for 40 random pairs asked twice."""
    from sim.bench import load_fleet
    from sim.mechanisms import live_migration as lm
    from sim.runner import Simulation

    sim = Simulation(load_fleet(None, 200, "1d"))
    engine = sim.ctx.services["live_migration"]
    hosts = sim.dc.host_list
    rng = random.Random(11)
    pairs = [(rng.choice(hosts), rng.choice(hosts)) for _ in range(40)]
    monkeypatch.setattr(lm, "PAIR_CACHE", 8)
    for _ in range(2):
        for s, d in pairs:
            assert engine._route(s, d) == sim.dc.network.route(Endpoint.nic(s.name), Endpoint.nic(d.name))
            assert len(engine._paths) <= 8
    assert len({(s.name, d.name) for s, d in pairs}) > 8  # the cache did start over


def test_a_path_handle_kept_across_the_cache_starting_over_still_reaches_its_failures(tmp_path, monkeypatch):
    """An owner keeps ``transfers.path(src, dst)`` (a VM's backups do) while other pairs fill the
    cache past ``PAIR_CACHE`` (8 here) twice: the kept path, with no live transfer, leaves the
    subjects' sets. A transfer started on it afterwards must enter them again: h00's crash at 1 s
    fails it (1 GB/s into the vault for 1 s: 1 GB of 10 GB sent), and h00 and the vault list it."""
    from test_transfer import make

    from sim.core.causes import HostDown
    from sim.infra import events as ev

    monkeypatch.setattr(tr, "PAIR_CACHE", 8)
    sim, env, dc = make(tmp_path)
    t = dc.transfers
    hosts = sorted(dc.hosts)
    src, vault = Endpoint.disk(hosts[0]), Endpoint.storage("vault")
    kept = t.path(src, vault)
    for a in hosts:
        for b in hosts:
            if a != b:
                t.start(Endpoint.nic(a), Endpoint.nic(b), 1e6).abort()
    assert kept not in t._paths.values() and not kept.indexed  # dropped from the cache and the sets
    x = t.start(src, vault, 10e9, path=kept)
    assert t.watchers(ev.HOST, hosts[0]) == [x] and t.watchers(ev.STORAGE, "vault") == [x]

    def crash():
        yield env.timeout(1.0)
        h = dc.hosts[hosts[0]]
        dc.host_down(h, HostDown(at=env.now, host=h.name))

    env.process(crash())
    env.run(until=5.0)
    assert x.outcome == "failed" and abs(x.sent() - 1e9) <= 1e-6 * 1e9
    assert t.watchers(ev.HOST, hosts[0]) == []
