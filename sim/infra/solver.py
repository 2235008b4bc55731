"""Fluid bandwidth solver: flows share capacity resources by max-min fairness.

Model (SimGrid's flow-level model; docs/model.md, "Bandwidth: the fluid model"). A *resource* is a
capacity in bytes/s: one direction of a link, a NIC direction, a disk's read or
write bandwidth, a switching core. A *flow* moves ``size`` bytes across a set of
distinct resources. Concurrent flows share by max-min fairness, computed by
progressive filling: raise every rate together; a resource whose capacity runs out
freezes the flows crossing it; repeat with the rest. A per-flow ``cap`` acts as a
private resource of that capacity. Path ``latency`` is paid once, at the start:
the flow joins the sharing ``latency`` seconds after ``start`` (a lone flow of
size S at rate R completes at latency + S/R); a zero-size flow completes after its
latency. Whenever a flow joins or leaves, or a capacity changes, rates are
recomputed and the completion schedule updated. A resource of capacity 0 (a failed
link) stalls its flows at rate 0; they have no completion until it is restored.

Guarantees. No resource carries more than its capacity (up to a relative 1e-9);
every flow has a bottleneck: a saturated resource on which no flow gets more, or
its own cap (up to a relative 1e-8, ``CHK``). Results are deterministic: arrays
are indexed by slot in operation order, nothing iterates a hash-ordered set, and
flows finishing at the same instant complete in flow id order.

How it runs (the solver is a hot path, updated on every flow event). Per-flow state (rate, bytes remaining at the
time of the last rate change, completion time) lives in numpy arrays indexed by a
compact slot; a Python list mirrors the rates for the incremental paths. Per-resource state
is kept by resource id; an idle resource rests at load 0 and costs nothing: the incremental
paths visit only the resources of the flows they change, and a full solve numbers the
*active* ones (crossed by a moving flow) densely for its arrays. One
SimPy timer, for the earliest completion, drives every completion; a timer re-armed
since it was scheduled is stale and ignored, and the flow it was armed for completes
by that fact, never by testing ``remaining <= 0``. An update tries, cheapest first:
the level shift (one flow joins or leaves a saturated resource of at most ``SMALL``
flows: the flows held there take the new level, and saturated resources they also
cross re-level in turn; it marks the flows it changes with a per-attempt stamp and moves
loads in place, undone if it gives up); the general incremental solve (re-solve a small,
growing set of flows on the capacity the others leave, holding the others fixed, then
check the max-min condition on the resources whose load changed); and, when the change
spreads past a few dozen flows or reaches a big saturated resource, a full numpy solve,
which freezes, in each round, every resource whose fair share is a local minimum among
the resources its flows cross (a handful of rounds instead of one per distinct rate).
Where every change spreads (16 streams into one target beside saturated NICs, at a few
hundred hosts), both cheap paths would fail on nearly every update; so once updates keyed
on the same saturated resource end in a full solve ``BACKOFF_AFTER`` times in a row, they
skip the cheap paths for a growing run of updates (1, 3, 7, ... at most ``MAX_SKIP``), and
a success ends the backoff. Which path runs never changes the rates beyond the tolerances.

Batching (``_update``): the changes of one instant are solved once, by a flush event at its end
(below SimPy's NORMAL priority; a rate query flushes first), and before the paths above the batch
tries the swap (``_swap``): as many flows join as leave, each joiner held where a leaver was (a
backup stream ends and the queue's next one starts), so only the joiners' rates are written.

Limits. Rates are exact only up to the tolerances above. A flow may not cross the
same resource twice. Each flow with a latency costs one SimPy timeout at its start.
Resource ids are opaque small integers (id 0 is reserved).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from heapq import heapify, heappop, heappush

import numpy as np
import simpy

__all__ = ["Flow", "FlowFailed", "FlowSolver", "horizon"]

EPS = 1e-9  # relative: rates this close are the same rate (ties, "unchanged")
CHK = 1e-8  # relative: tolerance of the max-min checks (saturation, largest rate)
_INF = math.inf

_PENDING, _ACTIVE, _DONE, _ABORTED, _FAILED = range(5)
_FLUSH_PRIORITY = 2  # after SimPy's URGENT (0) and NORMAL (1) events of the same instant (``_update``)


class FlowFailed(Exception):
    """Thrown into a waiter of ``flow.done`` when the solver fails the flow; ``cause`` says why."""

    def __init__(self, flow: Flow, cause: object):
        super().__init__(flow, cause)  # SimPy re-creates it from args for each waiter
        self.flow = flow
        self.cause = cause

    def __str__(self) -> str:
        return f"flow {self.flow.id} failed: {self.cause!r}"


def horizon(now: float) -> float:
    """Completion times up to this one are "now": the float rounding of ``now + left / rate``
    (the solver's rule, also used by those that plan byte counts from a flow's rate)."""
    return now + 1e-12 * max(1.0, abs(now))


class Flow:
    """One transfer. Public attributes are read-only; ask the solver for rate and progress.

    ``done`` succeeds with the flow as value when the last byte arrives, fails with
    :class:`FlowFailed` if the solver fails it, and never fires if it is aborted. A flow started
    with ``on_end`` has no ``done`` (None): the solver calls ``on_end(flow, None)`` at its last
    byte or ``on_end(flow, FlowFailed)`` when it fails it, at once (no SimPy event).
    A flow started with ``on_rate`` has ``on_rate(flow, rate)`` called whenever the solver gives it
    a new rate while it moves (``FlowSolver.start``).
    """

    __slots__ = ("id", "size", "resources", "cap", "tag", "start_time", "end_time", "latency", "done",
                 "_slot", "_state", "_capf", "_left", "_mark", "_new", "_on_end", "_on_rate")

    def __init__(self, fid: int, size: float, resources: tuple[int, ...], cap: float | None, tag: object,
                 start_time: float, latency: float, done: simpy.Event | None, on_end=None, on_rate=None):
        self.id = fid
        self.size = size
        self.resources = resources
        self.cap = cap
        self.tag = tag
        self.start_time = start_time
        self.end_time: float | None = None
        self.latency = latency
        self.done = done
        self._slot = -1
        self._state = _PENDING
        self._capf = _INF if cap is None else cap
        self._left = size  # bytes left, once the flow is no longer in the sharing
        self._mark = 0  # the solver's shift stamp when the level shift last gave it a new rate ...
        self._new = 0.0  # ... and that rate (meaningful only while _mark is the current stamp)
        self._on_end = on_end  # called instead of ``done`` firing
        self._on_rate = on_rate  # called with each new rate while it moves

    def __repr__(self) -> str:
        return f"Flow({self.id}, size={self.size:g}, resources={self.resources}, tag={self.tag!r})"


class _Subproblem:
    """State of one incremental update: a set S of flows re-solved with every other flow held fixed.

    Resources are ids (see :class:`FlowSolver`). Built afresh for each update that
    reaches the general incremental path; nothing in it outlives the update.
    """

    __slots__ = ("flows", "members", "base", "last", "on", "used", "was_saturated", "concerned",
                 "big_delta", "touched", "gone")

    def __init__(self, gone: dict[int, float]):
        self.flows: list[Flow] = []  # S, in the order flows joined it
        self.members: set[Flow] = set()  # S again, for membership tests
        self.base: dict[Flow, float] = {}  # rate of each flow of S before this update
        self.last: dict[Flow, float] = {}  # rate of each flow of S at the last check
        self.on: dict[int, list[Flow]] = {}  # resource -> flows of S crossing it
        self.used: dict[int, float] = {}  # resource -> load of the flows not in S
        self.was_saturated: dict[int, bool] = {}  # resource -> saturated before this update
        self.concerned: set[Flow] = set()  # flows outside S whose bottleneck was checked
        self.big_delta: dict[int, float] = {}  # big resource -> its load change so far
        self.touched: dict[int, None] = dict.fromkeys(gone)  # resources whose load changed since the last check
        self.gone = gone  # resource -> rate that left with the removed flows


class FlowSolver:
    """Max-min fair sharing of capacity resources among flows, in simulated time.

    Build resources with :meth:`add_resource`, then :meth:`start` flows; every method
    acts at ``env.now`` and returns at once (nothing here yields).

    Resources are numbered by their permanent *id* (``add_resource``), and every per-resource
    list is indexed by it. A resource crossed by at least one moving flow is *active*; an idle
    one holds the resting state (load 0, largest rate 0, saturated only if its capacity is 0),
    which its last flow's leaving restores at the next update (``_take_pending``), so a flow
    joining an idle resource writes nothing for it, and nothing is looked up or renumbered per
    flow. The incremental paths only ever visit the resources of the flows they touch, and a
    full solve numbers the active resources densely for its numpy arrays (``_solve_full``), so
    a fleet's ~60k resources cost nothing while idle. Bookkeeping of a resource ``r``:
    ``_load[r]`` is the sum of its flows' rates (recomputed from rates for small resources; a
    big one's is adjusted by the change and recomputed by every full solve), ``_saturated[r]``
    whether the load reaches the capacity, and ``_max_rate[r]`` the largest rate on it, exact
    for every small resource and every saturated one (the only places it is read).
    """

    SMALL = 32  # a resource crossed by more flows is "big": the incremental path never scans it
    MAX_SET = 40  # largest set of flows the incremental path re-solves before giving up
    MAX_ROUNDS = 8  # growth rounds of the incremental path before giving up
    REFRESH = 4096  # a full solve after this many incremental updates wipes any float drift

    def __init__(self, env: simpy.Environment, *, incremental: bool = True, batch: bool | None = None):
        """``incremental=False`` re-solves every flow on every change (a reference for tests).
        ``batch`` (default: ``incremental``) gathers the changes of one instant into one update
        (``_update``); ``batch=False`` re-solves at each change."""
        self.env = env
        self._use_incremental = incremental
        self._batch = incremental if batch is None else batch
        # changes not solved yet (batching): flows that joined, flows that left with their rate, and
        # resources whose last flow left (reset at the update, not before: see ``_detach``)
        self._added: list[Flow] = []
        self._removed: list[tuple[Flow, float]] = []
        self._idled: list[int] = []
        self._flush_armed = False
        # rate hooks (``start(on_rate=...)``): moving flows that have one, and those given a new rate
        # by the update in progress (called at its end, ``_tell``)
        self._rate_watched: dict[Flow, None] = {}
        self._told: dict[Flow, None] = {}
        self._routes_ok: set[tuple[int, ...]] = set()  # resource tuples ``start`` has checked (ids never go away)
        # every resource, by id
        self._names: list[str] = ["(none)"]
        self._index: dict[str, int] = {}
        # per resource, by id; id 0 (capacity inf) pads the routes of short flows
        self._capacity: list[float] = [_INF]
        self._capacity_arr = np.full(16, _INF)  # the same, for the full solve
        self._load: list[float] = [0.0]
        self._max_rate: list[float] = [0.0]
        self._saturated: list[bool] = [False]
        self._flows_on: list[dict[Flow, None]] = [{}]  # moving flows crossing it, in join order
        # moving flows, by slot (0 .. _n-1, swap-removed)
        self._n = 0
        self._flows: list[Flow] = []
        self._rate_list: list[float] = []  # rates as Python floats, for the incremental paths
        # resource id by (slot, position), 0 pads: a flow's route is one contiguous row
        self._route_matrix = np.zeros((64, 8), dtype=np.intp)
        self._flow_cap = np.full(64, _INF)
        self._rate = np.zeros(64)
        self._remaining = np.zeros(64)  # bytes remaining at time _marked
        self._marked = np.zeros(64)  # time of the flow's last rate change
        self._end = np.full(64, _INF)  # completion time at the current rate
        self._route_lengths = [0] * 9  # moving flows by number of resources crossed
        self._width = 1  # longest route among moving flows (columns of _route_matrix in use)
        self._pending: dict[Flow, None] = {}
        self._next_id = 0
        self._timer: simpy.Event | None = None
        self._timer_t = _INF
        self._timer_flow: Flow | None = None
        self._since_full = 0
        self._stamp = 0  # one per level-shift attempt: marks the flows and resources it changed
        # memo of the updates that ended in a full solve, by the public id of their trigger resource
        # (see ``_update``): consecutive failures, and updates still to send straight to the full solve
        self._fail_streak: list[int] = [0]
        self._skip_left: list[int] = [0]
        # updates solved each way (diagnostics); "shift" counts the incremental updates
        # that took the one-bottleneck fast path
        self.stats = {"incremental": 0, "full": 0, "shift": 0, "swap": 0}

    # ------------------------------------------------------------------ resources
    def add_resource(self, name: str, capacity: float) -> int:
        """A new resource of ``capacity`` bytes/s; returns its id."""
        if name in self._index:
            raise ValueError(f"resource {name!r} already exists")
        capacity = self._check_capacity(capacity)
        rid = len(self._names)
        self._names.append(name)
        self._index[name] = rid
        self._capacity.append(capacity)
        if rid == self._capacity_arr.shape[0]:
            arr = np.full(2 * rid, _INF)
            arr[:rid] = self._capacity_arr
            self._capacity_arr = arr
        self._capacity_arr[rid] = capacity
        self._load.append(0.0)
        self._max_rate.append(0.0)
        self._saturated.append(capacity <= 0.0)  # the resting state of an idle resource
        self._flows_on.append({})
        self._fail_streak.append(0)
        self._skip_left.append(0)
        return rid

    def resource_id(self, name: str) -> int:
        return self._index[name]

    def resource_name(self, rid: int) -> str:
        return self._names[rid]

    def capacity(self, rid: int) -> float:
        """Capacity of ``rid`` in bytes/s."""
        self._check_rid(rid)
        return self._capacity[rid]

    def set_capacity(self, rid: int, capacity: float) -> None:
        """Change a capacity now (0 = failed: its flows stall at rate 0); rates are recomputed."""
        self.set_capacities({rid: capacity})

    def set_capacities(self, changes: dict[int, float]) -> None:
        """Several capacity changes at once, with a single re-solve. A flow whose last byte arrives
        now completes first (completion at t wins over a change at t), whatever the new capacity."""
        checked = {}
        for rid, capacity in changes.items():
            self._check_rid(rid)
            checked[rid] = self._check_capacity(capacity)
        self._complete(self._due())
        self._take_pending()  # the full solve below covers the changes not solved yet
        for rid, capacity in checked.items():
            self._capacity[rid] = capacity
            self._capacity_arr[rid] = capacity
            self._fail_streak[rid] = self._skip_left[rid] = 0  # its updates may take the cheap paths again
            if not self._flows_on[rid]:
                self._saturated[rid] = capacity <= 0.0  # idle: its resting state (the full solve does the rest)
        self._solve_full()
        self._arm()
        if self._told:
            self._tell()

    # ------------------------------------------------------------------ flows
    def start(self, resources: Iterable[int], size: float, cap: float | None = None, latency: float = 0.0,
              tag: object = None, on_end=None, on_rate=None, route_checked: bool = False) -> Flow:
        """Start moving ``size`` bytes across ``resources`` (distinct ids), at most ``cap`` bytes/s.

        The flow joins the sharing after ``latency`` seconds; ``flow.done`` fires when
        the last byte arrives. With ``on_end``, no ``done`` event: ``on_end(flow, None)`` is called
        when the last byte arrives and ``on_end(flow, FlowFailed)`` if the solver fails the flow,
        synchronously, after the solver's state is updated (the callback may start, abort or query
        flows).

        With ``on_rate``, ``on_rate(flow, rate)`` is called whenever the solver gives the moving flow
        a new rate (bytes/s): its first rate when it joins the sharing (unless that is 0, a failed
        link on its route), and every later change (another flow joins or leaves a resource it
        shares, a capacity changes; 0 when a link on its route fails), at the instant of the
        change, once per update, after the update is solved and the completion timer re-armed; not
        when it leaves (its end, ``abort`` or failure say so). Between two calls the rate is
        constant, so ``sent(flow)`` grows linearly and the time a byte count is reached can be
        computed exactly. The callback may query the solver (``sent``, ``remaining``, ``rate``) and
        schedule events; it must not start, abort or fail flows (do that from an event it
        schedules). Cost: nothing for flows started without it; O(1) per rate given to one with it.

        ``route_checked``: ``resources`` and ``latency`` are what ``check_route`` returned for them:
        neither is checked again (the transfers check each path's route once). ``size`` and ``cap``
        still are.
        """
        if route_checked:
            res = resources
        else:
            if type(resources) is tuple and resources in self._routes_ok:
                res = resources  # a route checked before (routes from the network repeat)
            else:
                res = self._resources(resources)
            latency = _latency(latency)
        size = float(size)
        if not 0.0 <= size < _INF:  # NaN fails every comparison
            raise ValueError(f"flow size must be a finite number of bytes >= 0, got {size}")
        if cap is not None:
            cap = float(cap)
            if not cap >= 0.0:
                raise ValueError(f"flow cap must be >= 0 bytes/s, got {cap}")
        env = self.env
        now = env.now
        flow = Flow(self._next_id, size, res, cap, tag, now, latency, env.event() if on_end is None else None,
                    on_end, on_rate)
        self._next_id += 1
        instant = size == 0.0 or (not res and cap is None)
        if latency > 0.0 or instant:
            self._pending[flow] = None
            ev = env.timeout(latency)
            ev.callbacks.append(self._finish_instant if instant else self._on_join)
            ev.flow = flow  # type: ignore[attr-defined]
        else:
            self._join(flow, now)
        return flow

    def check_route(self, resources: Iterable[int], latency: float = 0.0) -> tuple[tuple[int, ...], float]:
        """A route checked (ValueError if not): ``resources`` as a tuple of known ids, each at most once,
        and ``latency`` as a float >= 0; for ``start(..., route_checked=True)``."""
        return self._resources(resources), _latency(latency)

    def _resources(self, resources: Iterable[int]) -> tuple[int, ...]:
        res = tuple(map(int, resources))
        nres = len(self._names)
        if res and not (min(res) > 0 and max(res) < nres):
            bad = next(r for r in res if not 0 < r < nres)
            raise ValueError(f"unknown resource id {bad}")
        if len(set(res)) != len(res):
            raise ValueError(f"a flow crosses each resource at most once, got {res}")
        if len(self._routes_ok) < 65536:
            self._routes_ok.add(res)
        return res

    def abort(self, flow: Flow) -> float:
        """The owner gives up: the flow leaves now and ``done`` never fires. Returns bytes sent."""
        state = flow._state
        if state == _PENDING:
            del self._pending[flow]
            flow._state = _ABORTED
            flow.end_time = self.env.now
            return 0.0
        if state != _ACTIVE:
            return flow.size - flow._left
        old = self._detach(flow, _ABORTED, self.env.now)
        self._update((), [(flow, old)])
        return flow.size - flow._left

    def fail(self, flow: Flow, cause: object) -> None:
        """The flow fails now: it leaves and ``done`` fails with :class:`FlowFailed` (defused)."""
        self._fail_many([flow], cause)

    def fail_resource(self, rid: int, cause: object) -> None:
        """Fail every flow crossing ``rid``, waiting for its latency or moving (a storage outage)."""
        self._check_rid(rid)
        victims = [f for f in self._pending if rid in f.resources]
        victims.extend(self._flows_on[rid])
        self._fail_many(victims, cause)

    def _fail_many(self, flows: list[Flow], cause: object) -> None:
        due = [f for f in flows if self.due(f)]  # completion at t wins over a failure at t
        self._complete([f for f in due if f._state == _ACTIVE])
        for f in due:
            if f._state == _PENDING:
                self._finish_pending(f)
        removed = []
        failed = []
        now = self.env.now
        for flow in sorted(flows, key=_by_id):
            if flow._state == _PENDING:
                del self._pending[flow]
                flow._state = _FAILED
                flow.end_time = self.env.now
            elif flow._state == _ACTIVE:
                removed.append((flow, self._detach(flow, _FAILED, now)))
            else:
                continue
            failed.append(flow)
        if removed:
            self._update((), removed)
        for flow in failed:
            if flow._on_end is not None:
                flow._on_end(flow, FlowFailed(flow, cause))
            else:
                flow.done.defused = True
                flow.done.fail(FlowFailed(flow, cause))

    # ------------------------------------------------------------------ queries
    def rate(self, flow: Flow) -> float:
        """Current rate of ``flow`` in bytes/s (0 while it waits for its latency or after it left)."""
        if self._added or self._removed:
            self._flush()
        return self._rate_list[flow._slot] if flow._state == _ACTIVE else 0.0

    def remaining(self, flow: Flow) -> float:
        """Bytes still to send, now."""
        if flow._state != _ACTIVE:
            return flow._left
        i = flow._slot
        left = float(self._remaining[i]) - self._rate_list[i] * (self.env.now - float(self._marked[i]))
        return left if left > 0.0 else 0.0

    def sent(self, flow: Flow) -> float:
        """Bytes sent so far."""
        return flow.size - self.remaining(flow)

    def due(self, flow: Flow) -> bool:
        """Whether ``flow``'s last byte arrives now: it is moving and its completion falls at this
        instant (the completion timer may not have run yet). A zero-size flow due now counts too."""
        state = flow._state
        if state == _ACTIVE:
            return float(self._end[flow._slot]) <= self._horizon()
        return state == _PENDING and flow.size == 0.0 and flow.start_time + flow.latency <= self._horizon()

    def finish_if_due(self, flow: Flow) -> bool:
        """The rule for equal timestamps: a completion at t wins over anything else at t. If ``flow``
        is due now it completes now (``done`` succeeds); True if it has completed, now or before."""
        if flow._state == _DONE:
            return True
        if not self.due(flow):
            return False
        if flow._state == _PENDING:
            self._finish_pending(flow)
        else:
            self._complete([flow])
        return True

    def flows_on(self, rid: int) -> list[Flow]:
        """Live flows crossing ``rid`` (moving, or waiting for their latency), by id."""
        self._check_rid(rid)
        flows = list(self._flows_on[rid])
        flows.extend(f for f in self._pending if rid in f.resources)
        flows.sort(key=_by_id)
        return flows

    def load(self, rid: int) -> float:
        """Sum of the current rates of the flows crossing ``rid``, bytes/s."""
        self._check_rid(rid)
        if self._added or self._removed:
            self._flush()
        rates = self._rate_list
        return sum(rates[f._slot] for f in self._flows_on[rid])

    @property
    def n_flows(self) -> int:
        """Live flows: moving or waiting for their latency."""
        return self._n + len(self._pending)

    # ------------------------------------------------------------------ joining and leaving
    def _on_join(self, ev: simpy.Event) -> None:
        flow = ev.flow  # type: ignore[attr-defined]
        if flow._state == _PENDING:
            del self._pending[flow]
            self._join(flow, self.env.now)

    def _finish_instant(self, ev: simpy.Event) -> None:
        flow = ev.flow  # type: ignore[attr-defined]
        if flow._state == _PENDING:
            self._finish_pending(flow)

    def _finish_pending(self, flow: Flow) -> None:
        del self._pending[flow]
        flow._state = _DONE
        flow._left = 0.0
        flow.end_time = self.env.now
        if flow._on_end is not None:
            flow._on_end(flow, None)
        else:
            flow.done.succeed(flow)

    def _join(self, flow: Flow, now: float) -> None:
        """Enter the sharing now (``now``) with rate 0, then re-solve. An idle resource it crosses is
        in its resting state already: nothing to write for it."""
        i = self._n
        if i == self._rate.shape[0]:
            self._grow_slots()
        res = flow.resources
        k = len(res)
        if k > self._route_matrix.shape[1]:
            self._grow_width(k)
        routes = self._route_matrix
        routes[i] = res + (0,) * (routes.shape[1] - k)
        self._flow_cap[i] = flow._capf
        self._rate[i] = 0.0
        self._remaining[i] = flow.size
        self._marked[i] = now
        self._end[i] = _INF
        self._flows.append(flow)
        self._rate_list.append(0.0)
        self._n = i + 1
        flow._slot = i
        flow._state = _ACTIVE
        self._route_lengths[k] += 1
        if k > self._width:
            self._width = k
        flows_on = self._flows_on
        for d in res:
            flows_on[d][flow] = None
        if flow._on_rate is not None:
            self._rate_watched[flow] = None
        self._update((flow,), ())

    def _detach(self, flow: Flow, state: int, now: float) -> float:
        """Take an active flow out of the arrays (swap-remove) at ``now``; returns its rate. No re-solve."""
        i = flow._slot
        old = self._rate_list[i]
        left = float(self._remaining[i]) - old * (now - float(self._marked[i]))
        flow._left = left if left > 0.0 else 0.0
        flow._state = state
        flow.end_time = now
        j = self._n - 1
        flows = self._flows
        if i != j:
            g = flows[j]
            flows[i] = g
            g._slot = i
            self._route_matrix[i] = self._route_matrix[j]
            for arr in (self._flow_cap, self._rate, self._remaining, self._marked, self._end):
                arr[i] = arr[j]
            self._rate_list[i] = self._rate_list[j]
        flows.pop()
        self._rate_list.pop()
        self._n = j
        flow._slot = -1
        k = len(flow.resources)
        lengths = self._route_lengths
        lengths[k] -= 1
        if k == self._width and lengths[k] == 0:
            w = k
            while w > 1 and lengths[w] == 0:
                w -= 1
            self._width = w
        flows_on = self._flows_on
        for d in flow.resources:
            on = flows_on[d]
            del on[flow]
            if not on:  # reset at the update: a flow joining before it takes ``d`` back as it is
                self._idled.append(d)
        if self._timer_flow is flow:
            self._timer_flow = None
        if flow._on_rate is not None:
            del self._rate_watched[flow]
            self._told.pop(flow, None)
        return old

    def _on_timer(self, ev: simpy.Event) -> None:
        """The earliest completion is due: complete it and every flow due at the same instant."""
        if ev is not self._timer:
            return  # stale: rates changed after it was armed
        self._timer = None
        self._timer_t = _INF
        armed = self._timer_flow
        self._timer_flow = None
        finished = dict.fromkeys(self._due())
        if armed is not None:
            finished[armed] = None
        if finished:
            self._complete(list(finished))
        else:
            self._arm()

    def _due(self) -> list[Flow]:
        """Moving flows whose last byte arrives now (up to the timer's rounding), by id."""
        n = self._n
        if n == 0:
            return []
        due = np.flatnonzero(self._end[:n] <= self._horizon())
        flows = self._flows
        return sorted((flows[i] for i in due.tolist()), key=_by_id)

    def _horizon(self) -> float:
        """Completion times up to this one are "now" (``horizon``)."""
        return horizon(self.env.now)

    def _complete(self, flows: list[Flow]) -> None:
        """Complete moving flows now, in id order, with one re-solve; ``done`` succeeds for each."""
        if not flows:
            return
        done = sorted(flows, key=_by_id)
        removed = []
        now = self.env.now
        for flow in done:
            removed.append((flow, self._detach(flow, _DONE, now)))
            flow._left = 0.0
        self._update((), removed)
        for flow in done:
            if flow._on_end is not None:
                flow._on_end(flow, None)
            else:
                flow.done.succeed(flow)

    # ------------------------------------------------------------------ solving
    def _update(self, added: tuple[Flow, ...], removed: list[tuple[Flow, float]]) -> None:
        """Note flows that joined or left; re-solve now, or (batching) once at the end of this instant.

        Batching: the first change of an instant schedules one *flush* event at this time with a
        priority below SimPy's ``NORMAL``, so it runs after every ordinary event of the instant
        (a completion, the callbacks that start the next transfer, failures heard now) and solves
        all their changes at once; a query of rates (``rate``, ``load``) flushes first. Until
        then rates and completion times are those of the last solve, which is exact for every
        byte count (no time passes within an instant: ``remaining`` and ``sent`` use the old
        rates up to now) and for ``due`` (a flow due now has no bytes left whatever its new
        rate). So batching changes the cost, never the rates or the completion times beyond
        the tolerances. A stream that ends and the next one that starts at the same instant
        (a queue of backups into one target) become one *swap* (``_swap``): O(route), not
        O(flows on the target).
        """
        if added:
            self._added.extend(added)
        if removed:
            self._removed.extend(removed)
        if not self._batch:
            self._flush()
        elif not self._flush_armed:
            self._flush_armed = True
            ev = simpy.Event(self.env)
            ev._ok = True
            ev._value = None
            ev.callbacks.append(self._on_flush)
            self.env.schedule(ev, _FLUSH_PRIORITY)

    def _on_flush(self, _ev: simpy.Event) -> None:
        self._flush_armed = False
        self._flush()

    def _take_pending(self) -> tuple[tuple[Flow, ...], list[tuple[Flow, float]]]:
        """The changes not solved yet (joined flows still moving, left flows and their rates), after
        putting the resources their flows left idle back in the resting state."""
        if self._idled:
            flows_on, load, tops, sat, capacity = (self._flows_on, self._load, self._max_rate, self._saturated,
                                                   self._capacity)
            for d in self._idled:
                if not flows_on[d]:  # still idle (a flow that joined since took it back as it was): the resting state
                    load[d] = 0.0
                    tops[d] = 0.0
                    sat[d] = capacity[d] <= 0.0
            self._idled = []
        added = tuple(f for f in self._added if f._state == _ACTIVE) if self._added else ()
        removed = self._removed
        self._added = []
        self._removed = []
        return added, removed

    def _flush(self) -> None:
        added, removed = self._take_pending()
        if added or removed:
            self._resolve(added, removed)
            if self._told:
                self._tell()

    def _tell(self) -> None:
        """Call the rate hooks of the flows the update just solved gave a new rate (``start``)."""
        told = self._told
        self._told = {}
        rates = self._rate_list
        for f in told:
            if f._state == _ACTIVE:
                f._on_rate(f, rates[f._slot])

    def _resolve(self, added: tuple[Flow, ...], removed: list[tuple[Flow, float]]) -> None:
        """Re-solve after flows joined or left, then re-arm the completion timer.

        Cheapest first: the one-bottleneck shift, the general incremental path, a full solve.
        An update of one flow has a *trigger*: the small saturated resource the shift would
        re-level (``_shift_target``). When ``BACKOFF_AFTER`` updates in a row with the same
        trigger end in a full solve (16 streams into one target, in traffic where every
        rate change spreads far), the cheap paths are skipped for the next 1, 3, 7, ... up
        to ``MAX_SKIP`` updates with that trigger (after each skip run one update tries
        again), so failing attempts cost little on average; a success ends the backoff.
        Where failures only come in short bursts, a skip now and then sends to the full
        solve an update the cheap paths would have solved. Any path gives the same rates,
        so this only changes the cost.
        """
        if not self._use_incremental or self._since_full >= self.REFRESH:
            self._solve_full()
            self._arm()
            return
        if added and len(added) == len(removed) and self._swap(added, removed):
            self._arm()
            return
        target = self._shift_target(added, removed)
        key = 0
        if target is not None:
            b = target[0]
            if len(self._flows_on[b]) <= self.SMALL:  # a big one fails the shift at once: no key
                key = b
        if key and self._skip_left[key]:
            self._skip_left[key] -= 1
            self._solve_full()
        elif (target is not None and self._shift_level(*target)) or self._incremental(added, removed):
            if key:
                self._fail_streak[key] = 0
        else:
            if key:
                k = self._fail_streak[key] + 1
                self._fail_streak[key] = k
                if k >= self.BACKOFF_AFTER:
                    k -= self.BACKOFF_AFTER
                    self._skip_left[key] = min((2 << k) - 1, self.MAX_SKIP) if k < 16 else self.MAX_SKIP
            self._solve_full()
        self._arm()

    def _solve_full(self) -> None:
        """Progressive filling over all flows in numpy, over the active resources only.

        Freezes every locally minimal resource per round; then recomputes the load, largest
        rate and saturation of every active resource from the rates. The active resources are
        numbered 1..m-1 for the arrays (0 stays the pad): the results do not depend on the
        numbering (every sum runs over the routes in slot order).
        """
        self._since_full = 0
        self.stats["full"] += 1
        n = self._n
        if n == 0:
            return  # every resource is idle; each was reset when its last flow left
        width = self._width
        ids, dense = np.unique(np.concatenate((_PAD, self._route_matrix[:n, :width].T.ravel())), return_inverse=True)
        routes = dense[1:].reshape(width, n)
        m = ids.shape[0]
        cap = self._capacity_arr[ids]
        with np.errstate(divide="ignore", invalid="ignore"):
            new = _progressive_filling(routes, self._flow_cap[:n], cap)

        rate = self._rate[:n]
        changed = np.abs(new - rate) > EPS * np.maximum(new, rate)
        if changed.any():
            ch = np.flatnonzero(changed)
            now = self.env.now
            rem = self._remaining[ch] - rate[ch] * (now - self._marked[ch])
            np.maximum(rem, 0.0, out=rem)
            nrate = new[ch]
            self._remaining[ch] = rem
            self._marked[ch] = now
            rate[ch] = nrate
            moving = nrate > 0.0
            self._end[ch] = np.where(moving, now + rem / np.where(moving, nrate, 1.0), _INF)
            if self._rate_watched:
                told = self._told
                for f in self._rate_watched:
                    if changed[f._slot]:
                        told[f] = None
        self._rate_list = rate.tolist()
        weights = np.concatenate((rate,) * width)
        flat = routes.ravel()
        load = np.bincount(flat, weights=weights, minlength=m)
        max_rate = np.zeros(m)
        np.maximum.at(max_rate, flat, weights)
        saturated = cap - load <= CHK * cap
        loads, tops, sats = self._load, self._max_rate, self._saturated
        for r, x, top, sat in zip(ids[1:].tolist(), load[1:].tolist(), max_rate[1:].tolist(), saturated[1:].tolist(),
                                  strict=True):
            loads[r] = x
            tops[r] = top
            sats[r] = sat

    # ------------------------------------------------------------------ the swap
    def _swap(self, added: tuple[Flow, ...], removed: list[tuple[Flow, float]]) -> bool:
        """As many flows joined as left, in one update: each joiner takes the place of a leaver held
        at the same resource (at its rate); False (nothing changed) if that is not the max-min
        allocation.

        It is when every leaver (rate > 0) was at the top of exactly one saturated resource (its
        ``b``), every joiner crosses exactly one of those resources and each of them gets as many
        joiners as leavers, each joiner's cap is at least the rate it takes, and every other
        resource whose load changes is unsaturated and stays so. Then each ``b`` keeps its load
        (the same rates leave and join) and its top level, every joiner is held at its ``b``, and
        no other flow's rate or bottleneck changes. O(routes): one rate per joiner written, loads
        moved in place (a resource whose load would change by a rounding error while saturated
        gives up too: a slower path, never a wrong rate). Streams ending and starting at one
        instant at several storage targets are one swap.
        """
        sat = self._saturated
        max_rate = self._max_rate
        flows_on = self._flows_on
        floor = 1.0 - CHK
        places: dict[int, list[float]] = {}  # b -> rates its leavers left, in order
        delta: dict[int, float] = {}
        for f, x in removed:
            if x <= 0.0:
                return False
            held = 0
            for d in f.resources:
                if flows_on[d]:  # one left idle was reset at this update: nothing to move
                    if sat[d] and x >= max_rate[d] * floor:
                        if held:
                            return False  # at the top of two saturated resources
                        held = d
                    else:
                        delta[d] = delta.get(d, 0.0) - x
            if not held:
                return False
            lst = places.get(held)
            if lst is None:
                places[held] = [x]
            else:
                lst.append(x)
        rates: list[float] = []
        for f in added:
            b = 0
            for d in f.resources:
                if d in places:
                    if b:
                        return False  # crosses two of them
                    b = d
            if not b:
                return False
            lst = places[b]
            if not lst:
                return False  # more joiners than leavers there
            x = lst.pop(0) if len(lst) > 1 else lst.pop()
            if f._capf < x:
                return False
            rates.append(x)
            for d in f.resources:
                if d != b:
                    delta[d] = delta.get(d, 0.0) + x
        load = self._load
        capacity = self._capacity
        for d, v in delta.items():
            if v != 0.0:
                if sat[d]:
                    return False  # held there, or its flows held there would move
                c = capacity[d]
                if v > 0.0 and c - (load[d] + v) <= CHK * c:
                    return False  # it would saturate: the general path decides who is held there
        for d, v in delta.items():
            load[d] += v
        self._set_rates([f._slot for f in added], rates)
        self._since_full += 1
        stats = self.stats
        stats["incremental"] += 1
        stats["swap"] += 1
        return True

    # ------------------------------------------------------------------ the one-bottleneck shift
    MAX_SHIFT = 16  # saturated resources the shift may re-level before giving up
    BACKOFF_AFTER = 4  # consecutive full solves of updates with one trigger before the backoff starts
    MAX_SKIP = 31  # longest run of updates sent straight to the full solve by the backoff (``_update``)

    def _shift_target(self, added: tuple[Flow, ...], removed: list[tuple[Flow, float]]
                      ) -> tuple[int, Flow, Flow | None, float] | None:
        """(b, flow, joined, old rate) if one flow joins or leaves saturated resource ``b``; else None.

        A joining flow will be held where the level is lowest: ``b`` is the saturated
        resource on its route with the lowest top. A leaving flow must be at the top of
        exactly one saturated resource (none: nothing it leaves is re-levelled; two: not a
        simple shift).
        """
        if added:
            if removed or len(added) != 1:
                return None
            flow = added[0]
            if flow._capf == 0.0:
                return None
            sat = self._saturated
            max_rate = self._max_rate
            b = 0
            lowest = _INF
            for d in flow.resources:
                if sat[d] and max_rate[d] < lowest:
                    lowest = max_rate[d]
                    b = d
            return (b, flow, flow, 0.0) if b else None
        if len(removed) != 1:
            return None
        flow, old = removed[0]
        if old == 0.0:
            return None
        sat = self._saturated
        max_rate = self._max_rate
        b = 0
        for d in flow.resources:
            if sat[d] and max_rate[d] * (1.0 - CHK) <= old:
                if b:
                    return None
                b = d
        return (b, flow, None, old) if b else None

    def _shift_level(self, b: int, flow: Flow, joined: Flow | None, old: float) -> bool:
        """One flow joins or leaves saturated small resource ``b``: shift levels; False if not that case.

        The flows at the top of ``b`` (those held there, at its largest rate) share what the
        flows below them leave, now with one more or one fewer: all get the new level. A
        changed rate frees or takes capacity on the flows' other resources. On an
        unsaturated one nothing else changes as long as it stays unsaturated. On a
        saturated one (a *satellite*, e.g. a host NIC that a memory copy fills beside a
        stream into a storage target), where the changed flow is below the top, the flows at its top absorb the
        change the same way, and so on along a tree of saturated resources
        (``_shift_resource``). Every flow then still has a bottleneck, so the result is the
        max-min allocation. Anything else (a flow at the top of two saturated resources, a
        resource reached twice, a big resource to scan, a resource that would saturate, a
        cap that would bind, a level reaching the flows below it, more than ``MAX_SHIFT``
        resources) returns False with nothing changed, and the general path takes over.

        Costs O(changed flows x route length), with no numpy call but the commit's, and no
        per-update dict of flows: a changed flow carries the attempt's stamp and its new
        rate (``Flow._mark``, ``Flow._new``). The loads the changed rates move are written
        in place as they move, the old ones kept to undo a failed attempt; an unsaturated
        resource is checked each time its load grows (a rise later offset by a fall gives
        up too, which costs a slower path, never a wrong rate).
        """
        self._stamp = stamp = self._stamp + 1
        slots: list[int] = []  # slots of the flows whose rate changes (by more than EPS), in order ...
        values: list[float] = []  # ... and their new rates
        saved: dict[int, float] = {}  # resource whose load the shift moved -> its load before
        done: dict[int, tuple[float, float]] = {}  # saturated resource re-levelled -> its new load, top rate
        queue: list[int] = []  # satellites still to re-level
        load = self._load
        left: list[int] = []  # resources the leaving flow frees, but b and those it left idle (already reset)
        if joined is None:
            flows_on = self._flows_on
            for d in flow.resources:
                if d != b and flows_on[d]:
                    left.append(d)
                    saved[d] = load[d]
                    load[d] -= old  # first, so that the rates shifted up meet the freed room
        ok = self._shift_resource(b, joined, stamp, slots, values, saved, done, queue)
        if ok and left:
            sat = self._saturated
            for d in left:
                if sat[d] and d not in queue:
                    queue.append(d)
        i = 0
        while ok and i < len(queue):
            ok = len(done) < self.MAX_SHIFT and self._shift_resource(queue[i], None, stamp, slots, values, saved,
                                                                     done, queue)
            i += 1
        if not ok:
            for d, was in saved.items():
                load[d] = was
            return False
        self._commit_shift(slots, values, done)
        return True

    def _shift_resource(self, d: int, joined: Flow | None, stamp: int, slots: list[int], values: list[float],
                        saved: dict[int, float], done: dict[int, tuple[float, float]], queue: list[int]) -> bool:
        """Re-level saturated ``d``: its top flows (and ``joined``) share what the others leave.

        The others count at their new rates. Stamps the top flows with their new rate and
        appends those it changes by more than ``EPS`` to ``slots`` and ``values`` (the
        others keep their old rate: ties stay exact), moves the loads of their other resources (the old load
        of each first into ``saved``), and queues the saturated ones. False if that is not
        a simple shift (see ``_shift_level``), or an unsaturated resource would saturate;
        the caller undoes the loads.
        """
        on_d = self._flows_on[d]
        if len(on_d) > self.SMALL:
            return False
        c = self._capacity[d]
        if c <= 0.0:
            return False
        rates = self._rate_list
        floor = 1.0 - CHK
        top_d = self._max_rate[d] * floor
        top: list[Flow] = []
        fixed = 0.0  # load of the flows not at the top (changed ones at their new rate)
        below = 0.0  # the largest of their rates
        for g in on_d:
            if g._mark == stamp:
                if rates[g._slot] >= top_d:
                    return False  # a changed flow is held here too
                y = g._new
            else:
                y = rates[g._slot]
                if y >= top_d or g is joined:
                    top.append(g)
                    continue
            fixed += y
            if y > below:
                below = y
        if not top:
            return False
        level = (c - fixed) / len(top)
        if level * floor <= below:
            return False  # the flows below would reach the level
        sat = self._saturated
        max_rate = self._max_rate
        load = self._load
        capacity = self._capacity
        done[d] = (fixed + level * len(top), level)
        eps = EPS * level
        for h in top:
            i = h._slot
            x = rates[i]
            h._mark = stamp
            h._new = level
            dx = level - x
            rising = dx > 0.0
            if rising and level >= h._capf * floor:
                return False  # its cap would bind
            if dx > eps if rising else -dx > EPS * x:
                slots.append(i)
                values.append(level)
            for e in h.resources:
                if e != d:
                    v = load[e]
                    if e not in saved:
                        saved[e] = v
                    load[e] = v = v + dx
                    if sat[e]:
                        if e in done or x >= max_rate[e] * floor:
                            return False  # reached twice, or held at e too
                        if e not in queue:
                            queue.append(e)
                    elif rising:
                        c = capacity[e]
                        if c - v <= CHK * c:
                            return False  # would saturate: the general path decides who is held there
        return True

    def _commit_shift(self, slots: list[int], values: list[float], done: dict[int, tuple[float, float]]) -> None:
        """Write the shifted rates, and the load and largest rate of the re-levelled resources.

        A re-levelled resource stays saturated, its load the flows below plus the level
        times the flows at the top, its largest rate the level (up to the ``EPS`` a flow
        keeps its old rate within). The loads of the other resources were moved in place
        by the shift; they stay unsaturated, so only their load matters (their largest
        rate is read only while saturated). Float drift is wiped by the periodic full solve.
        """
        self._set_rates(slots, values)
        load = self._load
        max_rate = self._max_rate
        for d, (x, top) in done.items():
            load[d] = x
            max_rate[d] = top
        self._since_full += 1
        stats = self.stats
        stats["incremental"] += 1
        stats["shift"] += 1

    def _set_rates(self, slots: list[int], values: list[float]) -> None:
        """Commit new rates ``values`` of the flows in ``slots``: bytes left at the old rate until now,
        rate, completion time.

        Scalar writes for a few flows; one vectorised pass for more (coupled traffic).
        """
        now = self.env.now
        rates = self._rate_list
        rate = self._rate
        remaining = self._remaining
        marked = self._marked
        end = self._end
        if self._rate_watched:
            flows = self._flows
            told = self._told
            for i in slots:
                f = flows[i]
                if f._on_rate is not None:
                    told[f] = None
        if len(slots) >= 8:
            for i, x in zip(slots, values, strict=True):
                rates[i] = x
            idx = np.array(slots, dtype=np.intp)
            new = np.array(values)
            rem = remaining[idx] - rate[idx] * (now - marked[idx])
            np.maximum(rem, 0.0, out=rem)
            remaining[idx] = rem
            marked[idx] = now
            rate[idx] = new
            if min(values) > 0.0:
                rem /= new
                rem += now
                end[idx] = rem
            else:
                moving = new > 0.0
                end[idx] = np.where(moving, now + rem / np.where(moving, new, 1.0), _INF)
            return
        for i, x in zip(slots, values, strict=True):
            rem = remaining.item(i) - rate.item(i) * (now - marked.item(i))
            if rem < 0.0:
                rem = 0.0
            rates[i] = x
            remaining[i] = rem
            marked[i] = now
            rate[i] = x
            end[i] = now + rem / x if x > 0.0 else _INF

    # ------------------------------------------------------------------ the general incremental path
    def _incremental(self, added: tuple[Flow, ...], removed: list[tuple[Flow, float]]) -> bool:
        """Re-solve only the flows coupled to the change; False (nothing committed) if it spreads.

        The flows of a set S (at first, those that joined) are re-solved by progressive
        filling on the capacity the other flows leave them. The result is the max-min
        allocation if every flow of S still has a bottleneck, and so does every other flow
        crossing a resource that was saturated before and whose load changed; a flow that
        lost its bottleneck joins S (for a flow of S, the faster flows sharing its
        saturated resources join instead) and S is solved again. A "big" resource (more
        than ``SMALL`` flows) is never scanned: a change that would alter its saturation,
        or the rates on it while saturated, sends the update to the full solve.

        Steps, each a method: the removed load (``_removed_load``), big bottlenecks joined
        (``_joins_big_bottleneck``), then rounds of grow S (``_grow``), re-fill S
        (``_refill``), find the touched resources (``_touched``), check max-min
        (``_check_max_min``); finally ``_commit``. Until the commit, only the rate list and
        the per-resource lists change, and a full solve rebuilds those.
        """
        gone = self._removed_load(removed)
        if gone is None or self._joins_big_bottleneck(added):
            return False
        sub = _Subproblem(gone)
        new: Iterable[Flow] = added
        for _ in range(self.MAX_ROUNDS):
            self._grow(sub, new)
            if len(sub.flows) > self.MAX_SET:
                return False
            self._refill(sub)
            check = self._touched(sub)
            if check is None:
                return False
            grow = self._check_max_min(sub, check)
            if grow is None:
                return False
            if not grow:
                break
            new = grow
        else:
            return False
        self._commit(sub)
        return True

    def _removed_load(self, removed: list[tuple[Flow, float]]) -> dict[int, float] | None:
        """Resource -> rate that left with the removed flows; None if a big bottleneck frees capacity."""
        small = self.SMALL
        sat = self._saturated
        flows_on = self._flows_on
        gone: dict[int, float] = {}
        for f, x in removed:
            if x != 0.0:
                for r in f.resources:
                    if sat[r] and len(flows_on[r]) > small:
                        return None  # every flow on it speeds up
                    gone[r] = gone.get(r, 0.0) + x
        return gone

    def _joins_big_bottleneck(self, added: tuple[Flow, ...]) -> bool:
        """Whether a flow that can move joins a saturated big resource (every flow on it slows down)."""
        small = self.SMALL
        sat = self._saturated
        capacity = self._capacity
        flows_on = self._flows_on
        for f in added:
            if f._capf > 0.0 and all(capacity[r] > 0.0 for r in f.resources):
                for r in f.resources:
                    if sat[r] and len(flows_on[r]) > small:
                        return True
        return False

    def _grow(self, sub: _Subproblem, new: Iterable[Flow]) -> None:
        """Add ``new`` flows to S: note their rates and, per resource, the load of the flows outside S."""
        small = self.SMALL
        flows_on = self._flows_on
        rates = self._rate_list
        load = self._load
        S = sub.flows
        members = sub.members
        base = sub.base
        last = sub.last
        on = sub.on
        used = sub.used
        gone = sub.gone
        concerned = sub.concerned
        for f in new:
            b = rates[f._slot]  # 0 for a flow that just joined
            S.append(f)
            members.add(f)
            base[f] = last[f] = b
            concerned.discard(f)
            for r in f.resources:
                lst = on.get(r)
                if lst is None:
                    on[r] = [f]
                    fl = flows_on[r]
                    if len(fl) <= small:
                        u = 0.0
                        for g in fl:
                            if g not in members:
                                u += rates[g._slot]
                    else:
                        u = load[r] - gone.get(r, 0.0) - b
                    used[r] = u
                else:
                    lst.append(f)
                    used[r] -= b

    def _refill(self, sub: _Subproblem) -> None:
        """Progressive filling of the flows of S on what the other flows leave; writes their rates.

        Exact global-minimum order with a heap of resource shares (stale entries skipped),
        so each flow freezes once. A rate within ``EPS`` of the flow's old rate keeps the old one.
        """
        capacity = self._capacity
        rates = self._rate_list
        S = sub.flows
        on = sub.on
        used = sub.used
        base = sub.base
        resid: dict[int, float] = {}
        cnt: dict[int, int] = {}
        share: dict[int, float] = {}
        heap: list[tuple[float, int]] = []
        for r, lst in on.items():
            left = capacity[r] - used[r]
            if left < 0.0:
                left = 0.0
            k = len(lst)
            resid[r] = left
            cnt[r] = k
            share[r] = s = left / k
            heap.append((s, r))
        for k, f in enumerate(S):
            if f._capf != _INF:
                heap.append((f._capf, -1 - k))
        heapify(heap)
        frozen: set[Flow] = set()
        left_to_freeze = len(S)
        while left_to_freeze:
            s, r = heappop(heap)
            if r < 0:
                f = S[-1 - r]
                if f in frozen:
                    continue
                todo: Iterable[Flow] = (f,)
            else:
                if cnt[r] == 0 or share[r] != s:
                    continue  # stale entry, or every flow on r is frozen
                todo = on[r]
            for f in todo:
                if f in frozen:
                    continue
                frozen.add(f)
                left_to_freeze -= 1
                b = base[f]
                rates[f._slot] = b if abs(s - b) <= EPS * (s if s > b else b) else s
                for r2 in f.resources:
                    k = cnt[r2] - 1
                    cnt[r2] = k
                    v = resid[r2] - s
                    if v < 0.0:
                        v = 0.0
                    resid[r2] = v
                    if k and r2 != r:
                        share[r2] = v = v / k
                        heappush(heap, (v, r2))

    def _touched(self, sub: _Subproblem) -> dict[Flow, None] | None:
        """Re-count the resources whose load changed since the last check; the outside flows to check.

        A small resource gets its load, largest rate and saturation from its flows' rates;
        its flows outside S are to be checked if it was saturated before the update (or
        they were checked before). A big one is only followed by its load change; None if
        it is saturated and its rates changed, or would become saturated.
        """
        small = self.SMALL
        flows_on = self._flows_on
        rates = self._rate_list
        capacity = self._capacity
        sat = self._saturated
        load = self._load
        max_rate = self._max_rate
        members = sub.members
        last = sub.last
        touched = sub.touched
        was_saturated = sub.was_saturated
        concerned = sub.concerned
        gone = sub.gone
        for f in sub.flows:
            x = rates[f._slot]
            if x != last[f]:
                last[f] = x
                for r in f.resources:
                    touched[r] = None
        check: dict[Flow, None] = {}
        for r in touched:
            fl = flows_on[r]
            if len(fl) <= small:
                tot = 0.0
                mx = 0.0
                for g in fl:
                    x = rates[g._slot]
                    tot += x
                    if x > mx:
                        mx = x
                c = capacity[r]
                was = was_saturated.get(r)
                if was is None:
                    was = was_saturated[r] = sat[r]
                sat[r] = c - tot <= CHK * c
                load[r] = tot
                max_rate[r] = mx
                for g in fl:
                    if g not in members and (was or g in concerned):
                        check[g] = None
            else:
                moved = r in gone
                d = -gone.get(r, 0.0)
                base = sub.base
                for g in sub.on.get(r, ()):
                    x = rates[g._slot] - base[g]
                    if x != 0.0:
                        moved = True
                        d += x
                if not moved:
                    sub.big_delta.pop(r, None)
                    continue
                if sat[r]:
                    return None  # the rates on a big bottleneck changed
                c = capacity[r]
                if c - (load[r] + d) <= CHK * c:
                    return None  # a big resource becomes a bottleneck
                sub.big_delta[r] = d
        sub.touched = {}
        return check

    def _check_max_min(self, sub: _Subproblem, check: dict[Flow, None]) -> dict[Flow, None] | None:
        """Flows that lost their bottleneck and must join S (empty: max-min holds); None to give up.

        A flow of S without a bottleneck brings in the faster flows on its saturated
        resources (None if one of those is big, or there are none); a checked flow outside
        S without one joins S itself.
        """
        small = self.SMALL
        flows_on = self._flows_on
        rates = self._rate_list
        sat = self._saturated
        max_rate = self._max_rate
        members = sub.members
        floor = 1.0 - CHK
        ceil = 1.0 + CHK
        grow: dict[Flow, None] = {}
        for f in sub.flows:
            x = rates[f._slot]
            if x >= f._capf * floor:
                continue
            for r in f.resources:
                if sat[r] and x >= max_rate[r] * floor:
                    break
            else:
                found = False
                lim = x * ceil
                for r in f.resources:
                    if sat[r]:
                        fl = flows_on[r]
                        if len(fl) > small:
                            return None
                        for g in fl:
                            if g not in members and rates[g._slot] > lim:
                                grow[g] = None
                                found = True
                if not found:
                    return None
        concerned = sub.concerned
        for g in check:
            concerned.add(g)
            x = rates[g._slot]
            if x >= g._capf * floor:
                continue
            for r in g.resources:
                if sat[r] and x >= max_rate[r] * floor:
                    break
            else:
                grow[g] = None
        return grow

    def _commit(self, sub: _Subproblem) -> None:
        """Make the re-solved rates of S current: big loads, bytes left, completion times."""
        load = self._load
        for r, d in sub.big_delta.items():
            load[r] += d
        rates = self._rate_list
        base = sub.base
        slots = [f._slot for f in sub.flows if rates[f._slot] != base[f]]
        self._set_rates(slots, [rates[i] for i in slots])
        self._since_full += 1
        self.stats["incremental"] += 1

    # ------------------------------------------------------------------ the completion timer
    def _arm(self) -> None:
        """Point the one completion timer at the earliest completion (a new timeout only if it moved)."""
        n = self._n
        if n == 0:
            self._timer = None
            self._timer_t = _INF
            self._timer_flow = None
            return
        i = int(self._end[:n].argmin())
        t = float(self._end[i])
        if t == _INF:
            self._timer = None
            self._timer_t = _INF
            self._timer_flow = None
            return
        self._timer_flow = self._flows[i]
        if self._timer is not None and t == self._timer_t:
            return
        now = self.env.now
        ev = self.env.timeout(t - now if t > now else 0.0)
        ev.callbacks.append(self._on_timer)
        self._timer = ev
        self._timer_t = t

    # ------------------------------------------------------------------ helpers
    def _grow_slots(self) -> None:
        size = 2 * self._rate.shape[0]
        routes = np.zeros((size, self._route_matrix.shape[1]), dtype=np.intp)
        routes[: self._route_matrix.shape[0]] = self._route_matrix
        self._route_matrix = routes
        for attr, fill in (("_flow_cap", _INF), ("_rate", 0.0), ("_remaining", 0.0), ("_marked", 0.0),
                           ("_end", _INF)):
            old = getattr(self, attr)
            new = np.full(size, fill)
            new[: old.shape[0]] = old
            setattr(self, attr, new)

    def _grow_width(self, width: int) -> None:
        routes = np.zeros((self._route_matrix.shape[0], width), dtype=np.intp)
        routes[:, : self._route_matrix.shape[1]] = self._route_matrix
        self._route_matrix = routes
        self._route_lengths.extend([0] * (width + 1 - len(self._route_lengths)))

    def _check_rid(self, rid: int) -> None:
        if not 0 < rid < len(self._names):
            raise ValueError(f"unknown resource id {rid}")

    @staticmethod
    def _check_capacity(capacity: float) -> float:
        capacity = float(capacity)
        if not (capacity >= -1e-3 and math.isfinite(capacity)):
            raise ValueError(f"capacity must be a finite number of bytes/s >= 0, got {capacity}")
        return capacity if capacity > 0.0 else 0.0  # a slightly negative capacity (rounding) is 0


def _progressive_filling(routes: np.ndarray, flow_cap: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Max-min rates of the flows whose resources are the columns of ``routes`` (0 pads), capped by ``flow_cap``.

    Each round computes every resource's fair share of what is left, each flow's least
    share (or its cap), and freezes every flow crossing a resource that is a local
    minimum: no flow on it is held lower elsewhere (ties within ``EPS``). Such a
    resource's share is final, as every share only grows while the filling goes on,
    and the smallest share is always a local minimum, so every round makes progress.
    """
    m = cap.shape[0]
    n = routes.shape[1]
    new = np.empty(n)
    room = cap.copy()
    capped = bool(np.isfinite(flow_cap).any())
    floor = 1.0 - EPS
    routes_left = routes
    cap_left = flow_cap
    slots_left = None
    for _ in range(n):
        flat = routes_left.ravel()
        share = room / np.bincount(flat, minlength=m)  # unused resources: inf or nan, never read
        shares = share.take(routes_left)  # pads (resource 0) have an infinite share
        least = shares.min(axis=0)
        if capped:
            np.minimum(least, cap_left, out=least)
        if slots_left is None:
            new[:] = least
        else:
            new[slots_left] = least  # final for the flows frozen now; rewritten later for the others
        shares *= floor
        # pads are always "held lower elsewhere", so resource 0 is never good
        good = np.bincount(flat, weights=(least < shares).ravel(), minlength=m) == 0
        frozen = good.take(routes_left).any(axis=0)
        if capped:
            frozen |= cap_left * floor <= least
        if frozen.all():
            np.maximum(new, 0.0, out=new)  # rounding may leave a failed resource a hair below 0
            return new
        least *= frozen
        room -= np.bincount(flat, weights=np.concatenate((least,) * routes_left.shape[0]), minlength=m)
        keep = ~frozen
        routes_left = routes_left[:, keep]
        if capped:
            cap_left = cap_left[keep]
        slots_left = np.flatnonzero(keep) if slots_left is None else slots_left[keep]
    raise RuntimeError("progressive filling made no progress")  # pragma: no cover


def _latency(latency: float) -> float:
    latency = float(latency)
    if not 0.0 <= latency < _INF:
        raise ValueError(f"latency must be >= 0 s, got {latency}")
    return latency


_PAD = np.zeros(1, dtype=np.intp)  # resource 0, put first in a full solve's numbering


def _by_id(flow: Flow) -> int:
    return flow.id
