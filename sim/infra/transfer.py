"""Transfers: the one way every bulk copy moves bytes (memory copies between hosts, disk
copies between hosts, copies into and out of storage systems, WAN copies).

``Transfers.start(src, dst, size, ...)`` starts a flow in the bandwidth solver and
watches, through the failure bus, both endpoints (the hosts of NIC and disk endpoints, a
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

Cost: no bus subscription per transfer: ``Transfers`` subscribes once per watched subject and
keeps, per subject, the paths (endpoint pairs) over it, and per path its live transfers (a
transfer enters and leaves one dict, whatever the number of subjects it watches); the
solver reports a flow's end by a call, not an event; with ``on_end`` the owner is called the same
way and no ``done`` event is made. Nothing per byte or per rate change, unless the owner asks for
the rate changes (``on_rate``): then one call per change, for that transfer only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sim.core.causes import Cause, HostDown, LinkDown, StorageDown
from sim.infra import events as ev
from sim.infra.datacenter import DOWN, REPAIR
from sim.infra.network import DISK, NIC, PAIR_CACHE, STORAGE, Endpoint
from sim.infra.solver import FlowFailed

if TYPE_CHECKING:
    import simpy

    from sim.infra.datacenter import Datacenter
    from sim.infra.events import Failure
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

    __slots__ = ("_t", "src", "dst", "size", "cap", "tag", "policy", "_done", "outcome", "cause", "_flow",
                 "_sent", "_stalls", "_live", "_seq", "start_s", "end_s", "_route", "_on_end", "_on_rate")

    def __init__(self, owner: Transfers, src: Endpoint, dst: Endpoint, size: float, cap: float | None,
                 tag: object, policy: dict[str, str], route: tuple[tuple[int, ...], float],
                 on_end: Callable[[Transfer], Any] | None,
                 on_rate: Callable[[Transfer, float], Any] | None = None):
        self._t = owner
        self._route = route  # (resources, latency) from src to dst: routes are fixed
        self.src = src
        self.dst = dst
        self.size = float(size)
        self.cap = cap
        self.tag = tag
        self.policy = policy
        self._on_end: Callable[[Transfer], Any] | None = None  # set by ``start`` once it has started
        self._on_rate = on_rate
        # the ``done`` event: made now without ``on_end``, else only if somebody asks for it (or to
        # call ``on_end`` after a failure, at the point in the instant where ``done`` would fire)
        self._done: simpy.Event | None = owner.env.event() if on_end is None else None
        self.outcome = RUNNING
        self.cause: object = None
        self._flow: Flow | None = None
        self._sent = 0.0  # bytes sent by flows that ended (stalls)
        self._stalls: dict[tuple[str, str], None] | None = None  # made at its first stall
        self._live: dict[Transfer, None] | None = None  # its path's live transfers, while it is one of them
        self._seq = 0  # its place in start order (``Transfers``)
        self.start_s = owner.env.now
        self.end_s: float | None = None

    # -- reading ---------------------------------------------------------------------------------
    @property
    def done(self) -> simpy.Event:
        """Succeeds with the transfer when it completes, fails (defused) with ``TransferFailed`` when
        it fails, never fires when aborted."""
        d = self._done
        if d is None:
            d = self._done = self._t.env.event()
            if self.outcome == COMPLETED:
                d.succeed(self)
            elif self.outcome == FAILED:
                d.defused = True
                d.fail(TransferFailed(self, self.cause))
        return d

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
        left = self.size - self._sent
        if left < 0.0:
            left = 0.0
        self._flow = self._t.solver.start(self._route[0], left, self.cap, latency, self.tag, self._flow_ended,
                                          None if self._on_rate is None else self._flow_rate, True)

    def _flow_rate(self, flow: Flow, rate: float) -> None:
        """The solver gave the flow a new rate: tell the owner (``on_rate``)."""
        if flow is self._flow and self.outcome == RUNNING:
            self._on_rate(self, rate)

    def _flow_ended(self, flow: Flow, exc: FlowFailed | None) -> None:
        """The solver's word on the flow: its last byte arrived (``exc`` None) or the solver failed it."""
        if flow is not self._flow or self.outcome != RUNNING:
            return  # a flow this transfer left (stall, abort)
        self._flow = None
        if exc is None:
            self._completed(True)
        else:
            self._fail(exc.cause)

    def _completed(self, now: bool) -> None:
        """The last byte arrived. ``on_end`` is called at once when the solver says so (``now``), else
        (a completion found while a failure is heard) where ``done`` fires, after the failure."""
        self._sent = self.size
        self._end(COMPLETED)
        if self._done is not None:
            self._done.succeed(self)
        on_end = self._on_end
        if on_end is not None:
            if now:
                self._on_end = None  # called once; and no reference cycle through the owner's callback
                on_end(self)
            else:
                self.done.callbacks.append(self._call_on_end)

    def _call_on_end(self, _event: simpy.Event) -> None:
        on_end, self._on_end = self._on_end, None
        on_end(self)

    def _arrived(self) -> bool:
        """The rule for equal timestamps: if the last byte arrives now, the transfer completes now
        (before the failure heard at this instant acts). True if it did."""
        flow = self._flow
        if flow is None:
            return False
        self._flow = None  # the solver's callback, if it completes the flow now, finds it left
        if not self._t.solver.finish_if_due(flow):
            self._flow = flow
            return False
        self._completed(False)
        return True

    def _on_down(self, failure: Failure) -> None:
        if self.outcome != RUNNING or self._arrived():
            return
        what = _KIND[failure.topic]
        if failure.topic == ev.DISK or self.policy[what] == FAIL:  # a failed disk kept nothing to resume
            self._fail(failure.cause)
            return
        key = (failure.topic, failure.subject)
        stalls = self._stalls
        if stalls is None:
            stalls = self._stalls = {}
        elif key in stalls:
            return
        stalls[key] = None
        self._t._waiting_up(key)[self] = None
        if failure.topic != ev.LINK and self._flow is not None:  # a failed link already holds it at rate 0
            self._sent += self._t.solver.abort(self._flow)
            self._flow = None
            if self._on_rate is not None:
                self._on_rate(self, 0.0)  # it holds no bandwidth until the failure ends

    def _on_up(self, failure: Failure) -> None:
        if self.outcome != RUNNING:
            return
        stalls = self._stalls
        if stalls:
            stalls.pop((failure.topic, failure.subject), None)
        if not stalls and self._flow is None:
            self._go(0.0)

    def _fail(self, cause: object) -> None:
        if self._arrived():
            return
        if self._flow is not None:
            self._sent += self._t.solver.abort(self._flow)
            self._flow = None
        self.cause = cause
        self._end(FAILED)
        done = self._done
        if done is not None:
            done.defused = True
            done.fail(TransferFailed(self, cause))
        if self._on_end is not None:
            self.done.callbacks.append(self._call_on_end)  # ``done`` made (failed) now if nobody asked

    def _end(self, outcome: str) -> None:
        self.outcome = outcome
        self.end_s = self._t.env.now
        live = self._live
        if live is not None:
            del live[self]
            self._live = None
        if self._stalls:
            up = self._t._up
            for key in self._stalls:
                up[key].pop(self, None)
            self._stalls.clear()


_KIND = {ev.HOST: "host", ev.DISK: "host", ev.STORAGE: "storage", ev.LINK: "link"}
_HOST, _STORAGE, _LINK, _DISK = range(4)  # how ``start`` checks whether a watched subject is down now


class Transfers:
    """The transfer helper of one run (``dc.transfers``).

    The index: per path (an endpoint pair, ``_Path``), its live transfers in start order; per
    watched (topic, subject), the paths over it, with one bus subscription for its ``down``, made
    at the first path that watches it and kept; per stalled (topic, subject), the transfers
    waiting for its ``up``, likewise. A failure reaches exactly the live transfers of its
    subject's paths, in start order. A path without live transfers leaves the subjects' sets when
    the path cache starts over (``PAIR_CACHE``), and enters them again at its next transfer."""

    def __init__(self, dc: Datacenter):
        self.dc = dc
        self.env = dc.env
        self.network = dc.network
        self.solver = dc.network.solver
        self.bus = dc.bus
        self._paths: dict[tuple[str, str, str, str], _Path] = {}  # per (src, dst) as strings
        self._policies: dict[tuple[str, str, str], dict[str, str]] = {}  # one dict per failure choice
        self._down: dict[tuple[str, str], dict[_Path, None]] = {}  # (topic, subject) -> the paths over it
        self._started = 0  # transfers started: each one's place in start order
        self._failed_links = dc.network.failed_links  # live: empty while no link has failed
        self._up: dict[tuple[str, str], dict[Transfer, None]] = {}  # (topic, subject) -> stalled by it

    def start(self, src: Endpoint, dst: Endpoint, size: float, *, cap: float | None = None, tag: object = None,
              on_host: str = FAIL, on_storage: str = FAIL, on_link: str = STALL,
              on_end: Callable[[Transfer], Any] | None = None,
              on_rate: Callable[[Transfer, float], Any] | None = None, path: _Path | None = None) -> Transfer:
        """Move ``size`` bytes from ``src`` to ``dst`` (at most ``cap`` bytes/s); wait on ``.done``.

        ``on_end(transfer)``, if given, is called when the transfer completes or fails (not when
        aborted) in place of a ``done`` event: at once when its last byte arrives, and where
        ``done`` would fire after a failure. Not for a transfer that fails inside ``start`` (an
        endpoint already down): its ``outcome`` says so on return. ``done`` still works.

        ``on_rate(transfer, rate)``, if given, is called whenever the transfer's rate (bytes/s)
        changes while it is live: its first rate once its bytes start moving (after the path
        latency; not if that rate is 0), each re-rating by the solver (a flow joins or leaves a
        resource it shares, a capacity changes), 0 when a failure stalls it, and its new rate when
        it resumes. Not at its end (``on_end``/``done``) or abort. Between two calls the rate is
        constant, so the owner can compute exactly when ``sent()`` reaches a byte count
        (``sent() + rate x dt``) and re-plan at the next call, instead of cutting its bytes into
        several transfers. Called synchronously inside the solver's update (or the failure's
        notice): it may read the transfer (``sent``, ``rate``) and schedule events, not start,
        abort or fail transfers. Transfers started without it pay nothing.

        ``path``, if given, is ``self.path(src, dst)`` for these same endpoints, kept by an owner
        that starts many transfers between them (a VM's nightly backups): it skips the lookup."""
        policy = self._policies.get((on_host, on_storage, on_link))
        if policy is None:
            for choice in (on_host, on_storage, on_link):
                if choice not in (FAIL, STALL):
                    raise ValueError(f"a failure choice is {FAIL!r} or {STALL!r}, got {choice!r}")
            policy = self._policies[(on_host, on_storage, on_link)] = {
                "host": on_host, "storage": on_storage, "link": on_link}
        if path is None:
            key = (src.kind, src.name, dst.kind, dst.name)  # strings hash and compare in C, Endpoints do not
            path = self._paths.get(key)
            if path is None:
                path = self._new_path(key, src, dst)
        if not path.indexed:
            self._index(path)
        route = path.route
        t = Transfer(self, src, dst, size, cap, tag, policy, route, on_end, on_rate)
        self._started = t._seq = self._started + 1
        live = t._live = path.live
        live[t] = None
        # is a subject it watches down now? Its hosts' and storage systems' states, and its links only
        # while some link has failed (rarely); if so, which ones, in ``watched`` order
        down = bool(self._failed_links) and bool(path.links)
        for h in path.hosts:
            if h.state in _HOST_DOWN:
                down = True
        for st in path.stores:
            if st.state == DOWN:
                down = True
        if down:
            for topic, subject in self._down_now(path):
                failure = ev.Failure(topic, subject, ev.DOWN, _ongoing(self.env.now, topic, subject), self.env.now)
                t._on_down(failure)
                if t.outcome != RUNNING:
                    return t
        t._on_end = on_end
        if not t._stalls:
            t._go(route[1])
        return t

    def _down_now(self, path: _Path) -> list[tuple[str, str]]:
        """The subjects ``path`` watches that are down now, in ``watched`` order."""
        return [(topic, subject) for topic, subject, how, obj in path.watched
                if how == _HOST and obj.state in _HOST_DOWN or how == _STORAGE and obj.state == DOWN
                or how == _LINK and subject in obj]

    def bottleneck(self, src: Endpoint, dst: Endpoint) -> float:
        """The rate (bytes/s) a transfer from ``src`` to ``dst`` would get alone: the smallest capacity
        on its route (0 while a link on it has failed)."""
        return self.network.bottleneck(src, dst)

    def path(self, src: Endpoint, dst: Endpoint) -> _Path:
        """An opaque handle on what a transfer from ``src`` to ``dst`` needs (its route, the subjects
        it watches, its live transfers), for ``start(..., path=...)``. Valid for the whole run
        (routes are fixed), whether the path cache still holds it or not."""
        key = (src.kind, src.name, dst.kind, dst.name)
        path = self._paths.get(key)
        if path is None:
            path = self._new_path(key, src, dst)
        return path

    def watchers(self, topic: str, subject: str) -> list[Transfer]:
        """The live transfers a ``down`` of ``subject`` reaches, in start order."""
        return self._over(self._down.get((topic, subject), {}))

    @staticmethod
    def _over(paths: dict[_Path, None]) -> list[Transfer]:
        """The live transfers of ``paths``, in start order (each path's are, in its own)."""
        out = [t for p in paths for t in p.live]
        if len(paths) > 1:
            out.sort(key=_start_order)
        return out

    def _new_path(self, key: tuple[str, str, str, str], src: Endpoint, dst: Endpoint) -> _Path:
        """The path from ``src`` to ``dst``, into the cache (started over when full: bounded like the
        network's route cache; the paths without live transfers then leave the subjects' sets)."""
        paths = self._paths
        if len(paths) >= PAIR_CACHE:
            paths.clear()
            for over in self._down.values():
                for p in [p for p in over if not p.live]:
                    del over[p]
                    p.indexed = False
        path = paths[key] = self._path(src, dst)
        return path

    def _index(self, path: _Path) -> None:
        """Enter ``path`` in the set of every subject it watches."""
        for topic, subject in path.keys:
            self._watching(topic, subject)[path] = None
        path.indexed = True

    def _path(self, src: Endpoint, dst: Endpoint) -> _Path:
        dc = self.dc
        watched: list[tuple[str, str, int, Any]] = []
        keys = []
        for topic, subject in self._watched(src, dst):
            if topic == ev.HOST:
                how, obj = _HOST, dc.hosts[subject]
            elif topic == ev.STORAGE:
                how, obj = _STORAGE, dc.storage[subject]
            elif topic == ev.LINK:
                how, obj = _LINK, self.network.failed_links
            else:
                how, obj = _DISK, None
            if how != _DISK:  # a disk that failed took its host down: the host says it
                watched.append((topic, subject, how, obj))
            keys.append((topic, subject))
        return _Path(self.solver.check_route(*self.network.route(src, dst)), tuple(watched), tuple(keys),
                     tuple(obj for _, _, how, obj in watched if how == _HOST),
                     tuple(obj for _, _, how, obj in watched if how == _STORAGE),
                     tuple(subject for _, subject, how, _ in watched if how == _LINK))

    def _watching(self, topic: str, subject: str) -> dict[_Path, None]:
        """The paths over ``(topic, subject)``, subscribed to its ``down`` at first use."""
        key = (topic, subject)
        watchers = self._down.get(key)
        if watchers is None:
            watchers = self._down[key] = {}
            self.bus.subscribe(topic, self._heard_down, subject)
        return watchers

    def _waiting_up(self, key: tuple[str, str]) -> dict[Transfer, None]:
        """The transfers stalled by ``key``, subscribed to its ``up`` at first use."""
        waiting = self._up.get(key)
        if waiting is None:
            waiting = self._up[key] = {}
            self.bus.subscribe(key[0], self._heard_up, key[1], ev.UP)
        return waiting

    def _heard_down(self, failure: Failure) -> None:
        for t in self._over(self._down[(failure.topic, failure.subject)]):  # those live when it was heard
            t._on_down(failure)

    def _heard_up(self, failure: Failure) -> None:
        waiting = self._up[(failure.topic, failure.subject)]
        if waiting:
            ts = list(waiting)
            waiting.clear()
            for t in ts:
                t._on_up(failure)

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


_HOST_DOWN = (DOWN, REPAIR)


class _Path:
    """What the transfers from one endpoint to another share: the route (resources, latency), the
    subjects they watch (``keys``) with how to test each now (``watched``: hosts, storage systems
    and links; a disk's failure takes its host down, so the host says it), and the live transfers
    over it, in start order. ``indexed``: entered in every watched subject's set of paths."""

    __slots__ = ("route", "watched", "keys", "hosts", "stores", "links", "live", "indexed")

    def __init__(self, route: tuple[tuple[int, ...], float], watched: tuple, keys: tuple[tuple[str, str], ...],
                 hosts: tuple, stores: tuple, links: tuple[str, ...]):
        self.route = route
        self.watched = watched
        self.keys = keys
        self.hosts, self.stores, self.links = hosts, stores, links  # ``watched`` by kind, for ``start``
        self.live: dict[Transfer, None] = {}
        self.indexed = False


def _start_order(t: Transfer) -> int:
    return t._seq


def _ongoing(at: float, topic: str, subject: str) -> Cause:
    """The cause of a failure already under way when a transfer starts."""
    if topic == ev.STORAGE:
        return StorageDown(at=at, storage=subject)
    if topic == ev.LINK:
        return LinkDown(at=at, link=subject)
    return HostDown(at=at, host=subject)
