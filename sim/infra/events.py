"""One subscription API for the start and end of every failure, and for who takes what.

Topics (the ``topic`` of a ``Failure``): ``host``, ``vm``, ``domain``, ``site``, ``link``,
``storage``, ``disk``. The infrastructure publishes ``down`` when a subject fails (the
first of overlapping faults: a host hit by two faults is down once) and ``up`` when it
serves again. ``sim.faults`` decides failures; ``Datacenter`` and ``Network`` publish them.
The ``vm`` topic's contract: one ``down`` per stop of a VM in service (a VM already
stopped or booting that stops again is not published again), one ``up`` when it serves
again (it is running then), strictly alternating per VM, starting with ``down``. A VM's
own failure being repaired (it may boot again, it does not serve yet) is the third phase,
``repaired``, for its owner.

- ``subscribe(topic, fn, subject=None, phase=DOWN)``: ``fn(failure)`` for every failure of
  ``subject`` (or of every subject of the topic), in subscription order, subject
  subscribers first. Returns a ``Subscription`` to ``cancel()``.
- ``watch(proc, (topic, subject), ...)``: interrupt the SimPy process ``proc`` with the
  failure's cause at the first ``down`` of any of them (one shot: every watch of the
  group is cancelled then). What a process waits on while it needs hosts alive.
- ``handle(topic, fn)`` / ``offer(topic, subject, what) -> bool``: a claim chain. Handlers are
  asked in registration order; the first to return True takes ``what``. Topics offered:
  ``vm_stopped`` (a stopped workload VM: enabled mechanisms in sorted registry order,
  then the default recovery), ``memory_error`` (an uncorrectable DRAM error: a mechanism
  may contain it, else the host crashes), ``no_room`` (a stopped VM finds no host with
  room: a mechanism may take it, else it waits).
- ``own(owner, fn)``: ``fn(vm, cause)`` hears every stop of a VM ``owner`` created, alone:
  ``offer(vm_stopped, ..., owner=owner)`` hands it there and never down the chain.

Dispatch is O(subscribers of the subject + subscribers of the whole topic): nothing scans
hosts or VMs. Callbacks run synchronously, at the instant of the failure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import simpy

    from sim.core.causes import Cause

HOST, VM, DOMAIN, SITE, LINK, STORAGE, DISK = "host", "vm", "domain", "site", "link", "storage", "disk"
TOPICS = (HOST, VM, DOMAIN, SITE, LINK, STORAGE, DISK)
DOWN, UP, REPAIRED = "down", "up", "repaired"
PHASES = (DOWN, UP, REPAIRED)
VM_STOPPED, MEMORY_ERROR, NO_ROOM = "vm_stopped", "memory_error", "no_room"


@dataclass(frozen=True, slots=True)
class Failure:
    """The start (``down``) or end (``up``) of a failure of ``subject`` (a name in ``topic``), or a
    VM's own failure repaired (``repaired``)."""

    topic: str
    subject: str
    phase: str
    cause: Cause | None
    at: float


class _Group:
    """The subscriptions of one (topic, phase, subject) in subscription order. A publish walks the
    list as it was when it began, without copying it: a subscription cancelled meanwhile is skipped
    (it is marked dead), one added meanwhile is appended past the end of the walk. Dead entries are
    dropped when no publish is walking the list and all of them are dead, or at least 16 and half
    of them are, so a cancel costs O(1) amortised and a list holds at most 16 dead entries or as
    many as live ones."""

    __slots__ = ("table", "key", "subs", "dead", "busy")

    def __init__(self, table: dict, key: Any):
        self.table = table
        self.key = key
        self.subs: list[Subscription] = []
        self.dead = 0
        self.busy = 0  # publishes walking it now (they nest: a callback may publish again)

    def tidy(self) -> None:
        dead = self.dead
        if self.busy or (dead < 16 or 2 * dead < len(self.subs)) and dead < len(self.subs):
            return
        if dead == len(self.subs):
            if self.table.get(self.key) is self:
                del self.table[self.key]
            self.subs = []
        else:
            self.subs = [s for s in self.subs if s.live]
        self.dead = 0


class Subscription:
    __slots__ = ("_group", "fn", "live")

    def __init__(self, group: _Group, fn: Callable[[Failure], Any]):
        self._group = group
        self.fn = fn
        self.live = True

    def cancel(self) -> None:
        if self.live:
            self.live = False
            group = self._group
            group.dead += 1
            group.tidy()


class Watch:
    """A one-shot group of subscriptions that interrupts one process at the first failure.

    A process created in this instant that has not run yet is interrupted right after its
    first step (SimPy runs its start before the interrupt). A failure the watched process
    causes itself (it is the running process: it takes a host it watches down) does not
    interrupt it, as SimPy forbids, and does not use the watch up: it goes on watching."""

    __slots__ = ("proc", "subs")

    def __init__(self, proc: simpy.Process):
        self.proc = proc
        self.subs: dict[tuple[str, str], Subscription] = {}

    def fire(self, failure: Failure) -> None:
        proc = self.proc
        if proc is proc.env.active_process:
            return  # its own doing: it knows, and keeps watching the rest
        self.cancel()
        if proc.is_alive:
            proc.interrupt(failure.cause)

    def add(self, key: tuple[str, str], sub: Subscription) -> None:
        self.subs[key] = sub

    def drop(self, topic: str, subject: str) -> None:
        """Stop watching one subject (the rest of the group stays)."""
        sub = self.subs.pop((topic, subject), None)
        if sub is not None:
            sub.cancel()

    def cancel(self) -> None:
        for s in self.subs.values():
            s.cancel()
        self.subs.clear()


class FailureBus:
    def __init__(self, env: simpy.Environment):
        self.env = env
        # (topic, phase, subject) -> its subscriptions in order; subject None = every subject
        self._subs: dict[tuple[str, str, str | None], _Group] = {}
        self._handlers: dict[str, list[Callable[..., bool]]] = {}
        self._owners: dict[str, Callable[..., None]] = {}

    # -- notifications ----------------------------------------------------------------------------
    def subscribe(self, topic: str, fn: Callable[[Failure], Any], subject: str | None = None,
                  phase: str = DOWN) -> Subscription:
        if topic not in TOPICS:
            raise ValueError(f"unknown topic {topic!r}; topics are {TOPICS}")
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}; phases are {PHASES}")
        key = (topic, phase, subject)
        group = self._subs.get(key)
        if group is None:
            group = self._subs[key] = _Group(self._subs, key)
        sub = Subscription(group, fn)
        group.subs.append(sub)
        return sub

    def watch(self, proc: simpy.Process, targets: Iterable[tuple[str, str]]) -> Watch:
        """Interrupt ``proc`` (with the cause) at the first failure of any ``(topic, subject)``."""
        w = Watch(proc)
        for topic, subject in targets:
            if (topic, subject) not in w.subs:
                w.add((topic, subject), self.subscribe(topic, w.fire, subject))
        return w

    def publish(self, topic: str, subject: str, phase: str, cause: Cause | None = None) -> None:
        subs = self._subs
        first = subs.get((topic, phase, subject))
        every = subs.get((topic, phase, None))
        if first is None and every is None:
            return
        failure = Failure(topic, subject, phase, cause, self.env.now)
        for group in (first, every):
            if group is not None:
                subs = group.subs
                group.busy += 1
                try:
                    for sub in islice(subs, len(subs)):  # the subscriptions there when the walk began
                        if sub.live:
                            sub.fn(failure)
                finally:
                    group.busy -= 1
                    if group.dead:  # nothing to tidy without a dead entry
                        group.tidy()

    def down(self, topic: str, subject: str, cause: Cause) -> None:
        self.publish(topic, subject, DOWN, cause)

    def up(self, topic: str, subject: str) -> None:
        self.publish(topic, subject, UP, None)

    # -- claim chains ------------------------------------------------------------------------------
    def handle(self, topic: str, fn: Callable[..., bool]) -> None:
        """Add ``fn(subject, what) -> bool`` to the end of ``topic``'s claim chain."""
        self._handlers.setdefault(topic, []).append(fn)

    def own(self, owner: str, fn: Callable[..., None]) -> None:
        """``fn(vm, cause)`` hears every stop of a VM that ``owner`` created, and nobody else does."""
        if owner in self._owners:
            raise ValueError(f"owner {owner!r} already has its handler")
        self._owners[owner] = fn

    def offer(self, topic: str, subject: str, what: Any, owner: str | None = None) -> bool:
        """Ask ``topic``'s handlers in order; True once one takes ``what``. With ``owner`` (a stopped
        VM a mechanism created: ``what`` is ``(vm, cause)``) only that owner's handler hears it."""
        if owner is not None:
            self._owners[owner](*what)
            return True
        for fn in self._handlers.get(topic, ()):
            if fn(subject, what):
                return True
        return False
