"""The transfers' index: one bus subscription per watched subject, and per subject the live
transfers that watch it. A failure must reach exactly the transfers over the failed resource, the
same ones a brute-force scan of every transfer's endpoints and path finds, whatever the sequence of
overlapping failures and repairs, at equal timestamps too; and an owner's ``on_end`` is called once
per transfer that ends after ``start`` returned, ``done`` telling the same outcome.

Topology: conftest's base scenario (two domains of four hosts, disks read 2 GB/s, NICs 1.25 GB/s)
plus a vault writing 1 GB/s. Sizes are whole GB and faults fall on whole seconds, so many last
bytes arrive exactly as a failure begins (the completion wins: docs/model.md, "Equal timestamps").
"""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_transfer import make

from sim.core.causes import HostDown, LinkDown, StorageDown
from sim.infra import events as ev
from sim.infra.network import DISK, NIC, STORAGE, Endpoint
from sim.infra.transfer import FAIL, STALL

GB = 1e9
HOSTS = [f"east/bd{d}/h0{i}" for d in (1, 2) for i in range(4)]
LINKS = ["east/bd1", "east/bd2"]

transfer_st = st.tuples(
    st.integers(0, 12),  # start time, s
    st.integers(0, 7), st.sampled_from(["disk", "nic"]),  # source host and end
    st.integers(-1, 7), st.sampled_from(["disk", "nic"]),  # destination host (-1: the vault) and end
    st.integers(1, 12),  # GB
    st.sampled_from([FAIL, STALL]), st.sampled_from([FAIL, STALL]), st.sampled_from([FAIL, STALL]),
    st.booleans(),  # the owner passes on_end
)
fault_st = st.tuples(st.integers(0, 14), st.sampled_from(["host", "disk", "storage", "link"]), st.integers(0, 7),
                     st.integers(1, 6))  # at, what, which, lasting


def keys_of(dc, src: Endpoint, dst: Endpoint) -> set[tuple[str, str]]:
    """Brute force: the (topic, subject) pairs a transfer from src to dst is over."""
    out = set()
    for e in (src, dst):
        if e.kind in (NIC, DISK):
            out.add((ev.HOST, e.name))
        if e.kind == DISK:
            out.add((ev.DISK, e.name))
        if e.kind == STORAGE:
            out.add((ev.STORAGE, e.name))
    out.update((ev.LINK, name) for name in dc.network.links_on(src, dst))
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(transfers=st.lists(transfer_st, min_size=1, max_size=12), faults=st.lists(fault_st, max_size=10))
# Found by the property: a transfer from h0's disk stalled by its host's crash, then the disk lost
# at the same instant: the disk's loss fails it (the oracle once expected it left stalled).
@example(transfers=[(0, 0, "disk", 1, "disk", 1, STALL, FAIL, FAIL, False)],
         faults=[(0, "host", 0, 1), (0, "disk", 0, 1)])
def test_a_failure_reaches_exactly_the_transfers_over_its_subject(tmp_path_factory, transfers, faults):
    sim, env, dc = make(tmp_path_factory.mktemp("idx"))
    started: list = []  # (transfer, its keys, policy)
    ends: dict = {}  # transfer -> on_end calls
    checked = [0]

    def end_of(kind, i):
        return Endpoint.disk(HOSTS[i]) if kind == "disk" else Endpoint.nic(HOSTS[i])

    def launch(spec):
        at, si, sk, di, dk, gb, oh, os_, ol, cb = spec
        yield env.timeout(at)
        src = end_of(sk, si)
        dst = Endpoint.storage("vault") if di < 0 else end_of(dk, di)
        if di >= 0 and dst.name == src.name:
            return
        kw = {"on_host": oh, "on_storage": os_, "on_link": ol}
        if cb:
            kw["on_end"] = lambda t: ends.__setitem__(t, ends.get(t, 0) + 1)
        t = dc.transfers.start(src, dst, gb * GB, **kw)
        started.append((t, keys_of(dc, src, dst), {"host": oh, "storage": os_, "link": ol}, cb, t.live))

    def failing(topic, subject, act):
        """Check the index against the scan, act (publishing ``down`` of the subject, and for a disk
        its host's), then check exactly the transfers over it were reached."""
        reached = {ev.DISK: [(ev.DISK, subject), (ev.HOST, subject)]}.get(topic, [(topic, subject)])
        before = {t: (t.outcome, t.stalled) for t, *_ in started}
        over = set()
        for key in reached:
            scan = [t for t, keys, *_ in started if t.live and key in keys]
            assert dc.transfers.watchers(*key) == scan  # same transfers, in start order
            over.update(scan)
        up = {ev.HOST: lambda: dc.hosts[subject].state == "up", ev.DISK: lambda: dc.hosts[subject].state == "up",
              ev.STORAGE: lambda: dc.storage[subject].state == "up",
              ev.LINK: lambda: not dc.network.is_failed(subject)}[topic]()
        act()
        for t, keys, policy, *_ in started:
            # A disk's loss is published whatever its host's state (what it stores is gone): a
            # transfer over the disk is reached even while the host is already down.
            lost_disk = topic == ev.DISK and (ev.DISK, subject) in keys
            if t not in over or not (up or lost_disk):  # not over it, or nothing published (the subject
                # was down): as it was, or completed by its last byte arriving now (the re-solve a link's loss triggers)
                assert (t.outcome, t.stalled) == before[t] or (t.outcome == "completed" and t.end_s == env.now)
                continue
            kind = {ev.HOST: "host", ev.DISK: "host", ev.STORAGE: "storage", ev.LINK: "link"}[topic]
            if topic == ev.DISK and (ev.DISK, subject) in keys or policy[kind] == FAIL:
                assert t.outcome in ("failed", "completed")
            else:
                assert t.outcome == "completed" or t.stalled
        checked[0] += 1

    def fault(spec):
        at, what, i, lasting = spec
        yield env.timeout(at)
        if what in ("host", "disk"):
            h = dc.hosts[HOSTS[i]]
            if what == "host":
                failing(ev.HOST, h.name, lambda: dc.host_down(h, HostDown(at=env.now, host=h.name)))
            else:
                failing(ev.DISK, h.name, lambda: dc.disk_failed(h, HostDown(at=env.now, host=h.name, kind="disk_failure")))
            yield env.timeout(lasting)
            dc.host_repaired(h)
        elif what == "storage":
            s = dc.storage["vault"]
            failing(ev.STORAGE, "vault", lambda: dc.storage_down(s, StorageDown(at=env.now, storage="vault")))
            yield env.timeout(lasting)
            dc.storage_up(s)
        else:
            name = LINKS[i % 2]
            failing(ev.LINK, name, lambda: dc.link_down(name, LinkDown(at=env.now, link=name)))
            yield env.timeout(lasting)
            dc.link_up(name)

    for spec in transfers:
        env.process(launch(spec))
    for spec in faults:
        env.process(fault(spec))
    env.run(until=10_000)
    # every failure repaired: every transfer ended, once, and the index holds nothing
    for t, keys, _policy, cb, live_at_start in started:
        assert t.outcome in ("completed", "failed")
        assert t.done.triggered and t.done.ok == (t.outcome == "completed")
        if t.outcome == "completed":
            assert abs(t.sent() - t.size) <= 1e-6 * t.size
        if cb:
            assert ends.get(t, 0) == (1 if live_at_start else 0)  # never for a failure inside start
        for key in keys:
            assert dc.transfers.watchers(*key) == []
    assert checked[0] == len(faults)


def test_the_solver_calls_on_end_when_done_would_fire():
    """One resource of 1 GB/s, flows of 1 GB and 3 GB from t = 0 (on_end) and 2 GB with ``done``:
    1/3 GB/s each, so the 1 GB flow ends at 3 s; then 0.5 GB/s each, the 2 GB flow has 1 GB left
    (ends at 5 s) and the 3 GB flow 2 GB; then it is alone at 1 GB/s from 5 s with 1 GB left: 6 s.
    A fourth flow (on_end) of 5 GB over another resource, started at 1 s, is failed at 2 s by
    ``fail_resource``: on_end gets a ``FlowFailed`` at 2 s and there is no ``done`` event to fire."""
    import simpy

    from sim.infra.solver import FlowFailed, FlowSolver

    env = simpy.Environment()
    s = FlowSolver(env)
    r = s.add_resource("r", 1 * GB)
    r2 = s.add_resource("r2", 1 * GB)
    seen = []

    def on_end(flow, exc):
        seen.append((flow.tag, env.now, type(exc).__name__ if exc is not None else None))

    s.start([r], 1 * GB, tag="a", on_end=on_end)
    b = s.start([r], 3 * GB, tag="b", on_end=on_end)
    c = s.start([r], 2 * GB, tag="c")
    c.done.callbacks.append(lambda e: seen.append(("c", env.now, None)))
    assert b.done is None

    def later():
        yield env.timeout(1)
        d = s.start([r2], 5 * GB, tag="d", on_end=on_end)
        yield env.timeout(1)
        s.fail_resource(r2, "outage")
        assert d.done is None
    env.process(later())
    env.run()
    assert [(t, round(at, 9), e) for t, at, e in seen] == [
        ("d", 2.0, FlowFailed.__name__), ("a", 3.0, None), ("c", 5.0, None), ("b", 6.0, None)]
