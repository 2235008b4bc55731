"""Transfers: the one way every bulk copy moves bytes (memory copies between hosts, disk
copies between hosts, copies into and out of storage systems, WAN copies).

``Transfers.start(src, dst, size, ...)`` starts a flow in the bandwidth solver and
watches, on the failure bus, both endpoints (the hosts of NIC and disk endpoints, a
disk's own failure, storage systems) and every failable link on the path. A transfer
ends ``completed`` (``done`` succeeds with the transfer), ``failed`` (``done`` fails with
``TransferFailed`` and its cause; defused, so nobody has to wait on it) or ``aborted``
by its owner (``abort()``: ``done`` never fires).

The owner chooses per failure kind what a failure does: ``on_host`` (an endpoint host),
``on_storage`` (an endpoint storage system) and ``on_link`` (a link on the path), each
``"fail"`` or ``"stall"``. A disk failure at a disk endpoint always fails the transfer: it
destroys the source's bytes, or those already written to the destination, so nothing is
left to resume (a host crash keeps its disk: ``on_host`` decides). Defaults: hosts and storage fail (a
``storage_outage`` fails the storage system's flows), links stall (their flows stall
until repair). A stalled transfer keeps the bytes it has sent, holds no bandwidth, and
resumes with the rest when every failure that stalled it has ended (the path latency is
paid once, at the start). A transfer started while an endpoint is down or a link on its
path has failed fails at once, or starts stalled, by the same choice: no byte moves from
a crashed host's disk or into a storage system under outage.

Cost: a few bus subscriptions per transfer (its endpoints and the links on its path),
cancelled when it ends; nothing per byte or per rate change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.core.causes import Cause, HostDown, LinkDown, StorageDown
from sim.infra import events as ev
from sim.infra.datacenter import DOWN, REPAIR
from sim.infra.network import DISK, NIC, STORAGE, Endpoint
from sim.infra.solver import FlowFailed

if TYPE_CHECKING:
    import simpy

    from sim.infra.datacenter import Datacenter
    from sim.infra.events import Failure, Subscription
    from sim.infra.solver import Flow

FAIL, STALL = "fail", "stall"
COMPLETED, FAILED, ABORTED, RUNNING = "completed", "failed", "aborted", "running"

__all__ = ["Transfers", "Transfer", "TransferFailed", "FAIL", "STALL"]


class TransferFailed(Exception):
    """Thrown into a waiter of ``transfer.done``: ``cause`` is the failure's typed cause."""

    def __init__(self, transfer: Transfer, cause: object):
        super().__init__(transfer, cause)
        self.transfer = transfer
        self.cause = cause

    def __str__(self) -> str:
        return f"{self.transfer.tag or 'transfer'} failed: {self.cause!r}"


class Transfer:
    """One bulk copy of ``size`` bytes. Read ``sent()``, ``outcome``, ``cause``; wait on ``done``."""

    __slots__ = ("_t", "src", "dst", "size", "cap", "tag", "policy", "done", "outcome", "cause", "_flow",
                 "_sent", "_stalls", "_subs", "start_s", "end_s", "_route")

    def __init__(self, owner: Transfers, src: Endpoint, dst: Endpoint, size: float, cap: float | None,
                 tag: object, policy: dict[str, str], route: tuple[tuple[int, ...], float]):
        self._t = owner
        self._route = route  # (resources, latency) from src to dst: routes are fixed
        self.src = src
        self.dst = dst
        self.size = float(size)
        self.cap = cap
        self.tag = tag
        self.policy = policy
        self.done: simpy.Event = owner.env.event()
        self.outcome = RUNNING
        self.cause: object = None
        self._flow: Flow | None = None
        self._sent = 0.0  # bytes sent by flows that ended (stalls)
        self._stalls: dict[tuple[str, str], None] = {}
        self._subs: list[Subscription] = []
        self.start_s = owner.env.now
        self.end_s: float | None = None

    # -- reading ---------------------------------------------------------------------------------
    def sent(self) -> float:
        """Bytes delivered so far."""
        flow = self._flow
        if flow is None:
            return self._sent if self.outcome != COMPLETED else self.size
        return self._sent + self._t.solver.sent(flow)

    @property
    def stalled(self) -> bool:
        return bool(self._stalls)

    @property
    def live(self) -> bool:
        return self.outcome == RUNNING

    def rate(self) -> float:
        return self._t.solver.rate(self._flow) if self._flow is not None else 0.0

    # -- the owner gives up ---------------------------------------------------------------------------
    def abort(self) -> float:
        """Stop now; ``done`` never fires. Returns the bytes sent."""
        if self.outcome != RUNNING:
            return self.sent()
        if self._flow is not None:
            self._sent += self._t.solver.abort(self._flow)
            self._flow = None
        self._end(ABORTED)
        return self._sent

    # -- internals --------------------------------------------------------------------------------------
    def _go(self, latency: float) -> None:
        """Start (or resume) the flow of the bytes left."""
        t = self._t
        left = self.size - self._sent
        if left < 0.0:
            left = 0.0
        flow = t.solver.start(self._route[0], left, self.cap, latency, self.tag)
        self._flow = flow
        flow.done.callbacks.append(self._flow_done)

    def _flow_done(self, event: simpy.Event) -> None:
        flow = event.value if event.ok else getattr(event.value, "flow", None)
        if flow is not self._flow or self.outcome != RUNNING:
            return  # a flow this transfer left (stall, abort)
        self._flow = None
        if event.ok:
            self._sent = self.size
            self._end(COMPLETED)
            self.done.succeed(self)
        else:
            event.defused = True
            exc = event.value
            self._fail(exc.cause if isinstance(exc, FlowFailed) else exc)

    def _arrived(self) -> bool:
        """The rule for equal timestamps: if the last byte arrives now, the transfer completes now
        (before the failure heard at this instant acts). True if it did."""
        flow = self._flow
        if flow is None or not self._t.solver.finish_if_due(flow):
            return False
        self._flow = None  # its ``done`` callback finds the transfer already completed
        self._sent = self.size
        self._end(COMPLETED)
        self.done.succeed(self)
        return True

    def _on_down(self, failure: Failure) -> None:
        if self.outcome != RUNNING or self._arrived():
            return
        what = _KIND[failure.topic]
        if failure.topic == ev.DISK or self.policy[what] == FAIL:  # a failed disk kept nothing to resume
            self._fail(failure.cause)
            return
        key = (failure.topic, failure.subject)
        if key in self._stalls:
            return
        if failure.topic != ev.LINK and self._flow is not None:  # a failed link already holds it at rate 0
            self._sent += self._t.solver.abort(self._flow)
            self._flow = None
        self._stalls[key] = None
        self._subs.append(self._t.bus.subscribe(failure.topic, self._on_up, failure.subject, ev.UP))

    def _on_up(self, failure: Failure) -> None:
        if self.outcome != RUNNING:
            return
        self._stalls.pop((failure.topic, failure.subject), None)
        if not self._stalls and self._flow is None:
            self._go(0.0)

    def _fail(self, cause: object) -> None:
        if self._arrived():
            return
        if self._flow is not None:
            self._sent += self._t.solver.abort(self._flow)
            self._flow = None
        self.cause = cause
        self._end(FAILED)
        self.done.defused = True
        self.done.fail(TransferFailed(self, cause))

    def _end(self, outcome: str) -> None:
        self.outcome = outcome
        self.end_s = self._t.env.now
        for s in self._subs:
            s.cancel()
        self._subs.clear()
        self._stalls.clear()


_KIND = {ev.HOST: "host", ev.DISK: "host", ev.STORAGE: "storage", ev.LINK: "link"}


class Transfers:
    """The transfer helper of one run (``dc.transfers``)."""

    def __init__(self, dc: Datacenter):
        self.dc = dc
        self.env = dc.env
        self.network = dc.network
        self.solver = dc.network.solver
        self.bus = dc.bus
        # per (src, dst): the route and the (topic, subject) pairs a transfer watches (both fixed)
        self._paths: dict[tuple[Endpoint, Endpoint], tuple[tuple[tuple[int, ...], float], tuple]] = {}
        self._policies: dict[tuple[str, str, str], dict[str, str]] = {}  # one dict per failure choice

    def start(self, src: Endpoint, dst: Endpoint, size: float, *, cap: float | None = None, tag: object = None,
              on_host: str = FAIL, on_storage: str = FAIL, on_link: str = STALL) -> Transfer:
        """Move ``size`` bytes from ``src`` to ``dst`` (at most ``cap`` bytes/s); wait on ``.done``."""
        policy = self._policies.get((on_host, on_storage, on_link))
        if policy is None:
            for choice in (on_host, on_storage, on_link):
                if choice not in (FAIL, STALL):
                    raise ValueError(f"a failure choice is {FAIL!r} or {STALL!r}, got {choice!r}")
            policy = self._policies[(on_host, on_storage, on_link)] = {
                "host": on_host, "storage": on_storage, "link": on_link}
        path = self._paths.get((src, dst))
        if path is None:
            path = self._paths[(src, dst)] = (self.network.route(src, dst), tuple(self._watched(src, dst)))
        route, watched = path
        t = Transfer(self, src, dst, size, cap, tag, policy, route)
        subscribe = self.bus.subscribe
        on_down = t._on_down
        subs = t._subs
        is_down = self._is_down
        down_now = None
        for topic, subject in watched:
            subs.append(subscribe(topic, on_down, subject))
            if is_down(topic, subject):
                if down_now is None:
                    down_now = []
                down_now.append((topic, subject))
        if down_now is not None:
            for topic, subject in down_now:
                failure = ev.Failure(topic, subject, ev.DOWN, _ongoing(self.env.now, topic, subject), self.env.now)
                t._on_down(failure)
                if t.outcome != RUNNING:
                    return t
        if not t._stalls:
            t._go(route[1])
        return t

    def bottleneck(self, src: Endpoint, dst: Endpoint) -> float:
        """The rate (bytes/s) a transfer from ``src`` to ``dst`` would get alone: the smallest capacity
        on its route (0 while a link on it has failed)."""
        return self.network.bottleneck(src, dst)

    def _watched(self, src: Endpoint, dst: Endpoint) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for e in (src, dst):
            if e.kind in (NIC, DISK):
                item = (ev.HOST, e.name)
                if item not in out:
                    out.append(item)
                if e.kind == DISK:
                    out.append((ev.DISK, e.name))
            elif e.kind == STORAGE and (ev.STORAGE, e.name) not in out:
                out.append((ev.STORAGE, e.name))
        out.extend((ev.LINK, name) for name in self.network.links_on(src, dst))
        return out

    def _is_down(self, topic: str, subject: str) -> bool:
        dc = self.dc
        if topic == ev.HOST:
            return dc.hosts[subject].state in (DOWN, REPAIR)
        if topic == ev.STORAGE:
            return dc.storage[subject].state == DOWN
        if topic == ev.LINK:
            return self.network.is_failed(subject)
        return False  # a disk that failed took its host down: the host says it


def _ongoing(at: float, topic: str, subject: str) -> Cause:
    """The cause of a failure already under way when a transfer starts."""
    if topic == ev.STORAGE:
        return StorageDown(at=at, storage=subject)
    if topic == ev.LINK:
        return LinkDown(at=at, link=subject)
    return HostDown(at=at, host=subject)
