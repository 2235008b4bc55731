"""The migration queue (``max_per_host``) grants in the order the former whole-queue scan did.

``_Slots`` keeps one FIFO per host; ``Scan`` below is the former algorithm, kept as the
reference: every request and grant scanned the whole queue. Driven by the same random
sequences of requests, ends (releases) and withdrawals, with equal timestamps throughout
(nothing here advances a clock), both must grant the same requests in the same order.
"""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from sim.mechanisms.live_migration import _Slots


class _Event:
    def __init__(self, log, label):
        self.log, self.label = log, label

    def succeed(self):
        self.log.append(self.label)


class Scan:
    """The former queue: a request goes at once if no waiting request uses its hosts and both have
    a free slot; every release and withdrawal rescans the queue in order, granting each request
    whose hosts are free and not used by an earlier request still waiting."""

    def __init__(self, limit):
        self.limit = limit
        self.slots = {}
        self.queue = []

    def free(self, h):
        return self.slots.get(h.name, 0) < self.limit

    def take(self, s, t):
        for h in (s, t):
            self.slots[h.name] = self.slots.get(h.name, 0) + 1

    def request(self, s, t, event):
        busy = {h for w in self.queue for h in (w.source.name, w.target.name)}
        if s.name not in busy and t.name not in busy and self.free(s) and self.free(t):
            self.take(s, t)
            return None
        w = SimpleNamespace(source=s, target=t, event=event, granted=False)
        self.queue.append(w)
        return w

    def release(self, s, t):
        for h in (s, t):
            n = self.slots.get(h.name, 0) - 1
            if n <= 0:
                self.slots.pop(h.name, None)
            else:
                self.slots[h.name] = n
        self.grant()

    def grant(self):
        blocked, keep = set(), []
        for w in self.queue:
            names = (w.source.name, w.target.name)
            if not blocked.intersection(names) and self.free(w.source) and self.free(w.target):
                self.take(w.source, w.target)
                w.granted = True
                w.event.succeed()
            else:
                blocked.update(names)
                keep.append(w)
        self.queue = keep

    def withdraw(self, w):
        if w in self.queue:
            self.queue.remove(w)
            self.grant()


ops = st.lists(st.tuples(st.sampled_from(["request", "request", "request", "end", "withdraw"]),
                         st.integers(0, 5), st.integers(0, 5), st.integers(0, 10_000)), max_size=120)


@settings(max_examples=300, deadline=None)
@given(limit=st.integers(1, 3), hosts=st.integers(2, 6), ops=ops)
def test_grant_order_equals_the_former_scan(limit, hosts, ops):
    names = [SimpleNamespace(name=f"h{i}") for i in range(hosts)]
    new_log, old_log = [], []
    label = iter(range(10**6))
    labels = []
    new = _Slots(limit, lambda: _Event(new_log, labels[-1]))
    old = Scan(limit)
    running = []  # (label, source, target): granted, not yet ended
    waiting = []  # (label, new waiter, old waiter, source, target)
    for kind, a, b, c in ops:
        if kind == "request":
            s, t = names[a % hosts], names[b % hosts]
            if s is t:
                continue
            labels.append(next(label))
            w_new = new.request(s, t)
            w_old = old.request(s, t, _Event(old_log, labels[-1]))
            assert (w_new is None) == (w_old is None)
            if w_new is None:
                running.append((labels[-1], s, t))
            else:
                waiting.append((labels[-1], w_new, w_old, s, t))
        elif kind == "end" and running:
            _, s, t = running.pop(c % len(running))
            new.release(s, t)
            old.release(s, t)
        elif kind == "withdraw" and waiting:
            _, w_new, w_old, _, _ = waiting.pop(c % len(waiting))
            new.withdraw(w_new)
            old.withdraw(w_old)
        assert new_log == old_log
        for entry in [e for e in waiting if e[1].granted]:
            assert entry[2].granted
            waiting.remove(entry)
            running.append((entry[0], entry[3], entry[4]))
        assert new.used == old.slots
        assert new.waiting() == len(old.queue) == len(waiting)


def test_a_request_waits_only_behind_earlier_ones_sharing_a_host():
    """One slot per host. A->B runs; C->B waits (B is full); C->D waits too (C is used by the
    earlier waiting C->B: no overtaking); E->F goes at once (shares nothing). A->B ends: C->B
    takes B and C, so C->D still waits (C is full); C->B ends: C->D goes."""
    log = []
    slots = _Slots(1, lambda: _Event(log, len(log)))
    a, b, c, d, e, f = (SimpleNamespace(name=n) for n in "ABCDEF")
    assert slots.request(a, b) is None
    cb = slots.request(c, b)
    cd = slots.request(c, d)
    assert cb is not None and cd is not None
    assert slots.request(e, f) is None
    slots.release(a, b)
    assert cb.granted and not cd.granted
    slots.release(c, b)
    assert cd.granted and slots.waiting() == 0
