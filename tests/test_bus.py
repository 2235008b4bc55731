"""The failure bus: watches (a process's own failures, processes not started yet) and dispatch while
subscribers change during a publish."""

from __future__ import annotations

import pytest
import simpy
from conftest import base_scenario, load

from sim.core.causes import HostDown
from sim.infra import events as ev
from sim.infra.events import FailureBus
from sim.runner import Simulation

H1, H2 = "east/bd1/h00", "east/bd1/h01"


def make(tmp_path):
    sim = Simulation(load(base_scenario(), tmp_path))
    return sim.ctx.env, sim.dc


def crash(dc, name):
    dc.host_down(dc.hosts[name], HostDown(at=dc.env.now, host=name))


def test_a_failure_the_watched_process_causes_itself_does_not_use_its_watch_up(tmp_path):
    """A process watches h00 and h01, takes h00 down itself at 1 s, then waits 10 s; h01 crashes at
    5 s: it is interrupted at 5 s by h01's crash (before: its own failure cancelled the whole watch
    silently, so h01's crash went unheard and it finished at 11 s)."""
    env, dc = make(tmp_path)
    log = []

    def worker():
        try:
            yield env.timeout(1)
            crash(dc, H1)
            yield env.timeout(10)
            log.append(("finished", env.now))
        except simpy.Interrupt as irq:
            log.append(("interrupted", env.now, irq.cause.host))

    proc = env.process(worker())
    dc.bus.watch(proc, ((ev.HOST, H1), (ev.HOST, H2)))

    def other():
        yield env.timeout(5)
        crash(dc, H2)
    env.process(other())
    env.run(until=20)
    assert log == [("interrupted", 5.0, H2)]


def test_a_process_watched_before_its_first_step_is_interrupted_right_after_it(tmp_path):
    """At 2 s a process is created and watched, and h00 fails in the same instant before it has run:
    it runs its first step (SimPy starts it first), then takes the interrupt at its first wait, at
    2 s, with the crash as cause."""
    env, dc = make(tmp_path)
    log = []

    def worker():
        log.append(("started", env.now))
        try:
            yield env.timeout(10)
            log.append(("finished", env.now))
        except simpy.Interrupt as irq:
            log.append(("interrupted", env.now, irq.cause.host))

    def spawn():
        yield env.timeout(2)
        proc = env.process(worker())
        dc.bus.watch(proc, ((ev.HOST, H1),))
        crash(dc, H1)
    env.process(spawn())
    env.run(until=20)
    assert log == [("started", 2.0), ("interrupted", 2.0, H1)]


def test_a_watch_on_a_finished_process_does_nothing(tmp_path):
    env, dc = make(tmp_path)

    def quick():
        yield env.timeout(1)
    proc = env.process(quick())
    w = dc.bus.watch(proc, ((ev.HOST, H1),))
    env.run(until=2)
    crash(dc, H1)
    assert not w.subs


# ------------------------------------------------------------------------- dispatch while subscribers change
def test_a_subscriber_cancelled_during_a_publish_is_not_called_and_one_added_waits_for_the_next():
    """Subscribers a, b, c of one subject. a cancels b and subscribes d: in this publish c runs and
    neither b (cancelled before its turn) nor d (added during it) does; in the next, a, c, d run."""
    bus = FailureBus(simpy.Environment())
    calls = []
    subs = {}

    def a(f):
        calls.append("a")
        if "d" not in subs:
            subs["b"].cancel()
            subs["d"] = bus.subscribe(ev.HOST, lambda f: calls.append("d"), H1)
    subs["a"] = bus.subscribe(ev.HOST, a, H1)
    subs["b"] = bus.subscribe(ev.HOST, lambda f: calls.append("b"), H1)
    subs["c"] = bus.subscribe(ev.HOST, lambda f: calls.append("c"), H1)
    bus.down(ev.HOST, H1, None)
    assert calls == ["a", "c"]
    calls.clear()
    bus.down(ev.HOST, H1, None)
    assert calls == ["a", "c", "d"]


def test_a_subscriber_cancelling_itself_and_the_topic_wide_ones_during_a_publish():
    """A subject subscriber that cancels itself and the only topic-wide subscriber: the topic-wide one
    is not called; both tables are left empty (a later publish calls nobody)."""
    bus = FailureBus(simpy.Environment())
    calls = []
    subs = {}

    def first(f):
        calls.append("first")
        subs["first"].cancel()
        subs["every"].cancel()
    subs["first"] = bus.subscribe(ev.HOST, first, H1)
    subs["every"] = bus.subscribe(ev.HOST, lambda f: calls.append("every"))
    bus.down(ev.HOST, H1, None)
    bus.down(ev.HOST, H1, None)
    assert calls == ["first"]


def test_an_unknown_phase_is_refused():
    bus = FailureBus(simpy.Environment())
    with pytest.raises(ValueError, match="unknown phase"):
        bus.subscribe(ev.HOST, print, H1, "sideways")


def test_a_nested_publish_of_the_same_subscribers_sees_the_same_order_and_cancellations():
    """Topic-wide ``vm down`` subscribers x, y, z. x's first call publishes a second ``down`` (another
    VM, as a callback stopping another VM does) and then cancels z: the nested publish runs x, y, z
    (z still live then); back in the outer one, y runs and z, cancelled since, does not."""
    bus = FailureBus(simpy.Environment())
    calls = []
    subs = {}

    def x(f):
        calls.append(("x", f.subject))
        if f.subject == "vm-a":
            bus.down(ev.VM, "vm-b", None)
            subs["z"].cancel()
    subs["x"] = bus.subscribe(ev.VM, x)
    subs["y"] = bus.subscribe(ev.VM, lambda f: calls.append(("y", f.subject)))
    subs["z"] = bus.subscribe(ev.VM, lambda f: calls.append(("z", f.subject)))
    bus.down(ev.VM, "vm-a", None)
    assert calls == [("x", "vm-a"), ("x", "vm-b"), ("y", "vm-b"), ("z", "vm-b"), ("y", "vm-a")]


def test_cancelled_subscriptions_are_freed():
    """1,000 subscriptions to one subject, cancelled in every order while others come and go: at the
    end nothing is held for the subject (no table entry), and one kept subscription still hears."""
    bus = FailureBus(simpy.Environment())
    heard = []
    keep = bus.subscribe(ev.HOST, heard.append, H2)
    subs = [bus.subscribe(ev.HOST, heard.append, H1) for _ in range(1000)]
    for s in subs[::2] + subs[1::2]:
        s.cancel()
        s.cancel()  # twice is once
    assert (ev.HOST, ev.DOWN, H1) not in bus._subs
    assert len(bus._subs[(ev.HOST, ev.DOWN, H2)].subs) == 1
    bus.down(ev.HOST, H1, None)
    bus.down(ev.HOST, H2, None)
    assert [f.subject for f in heard] == [H2]
    keep.cancel()
    assert not bus._subs
