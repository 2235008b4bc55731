"""Fluid bandwidth solver: flows share capacity resources by max-min fairness.

Model (SimGrid's flow-level model, MECHANISMS.md "Bandwidth"). A *resource* is a
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

How it runs (STYLE.md, "Hot paths"). Per-flow state (rate, bytes remaining at the
time of the last rate change, completion time) lives in numpy arrays indexed by a
compact slot; a Python list mirrors the rates for the incremental path. One SimPy
timer, for the earliest completion, drives every completion; a timer re-armed
since it was scheduled is stale and ignored, and the flow it was armed for
completes by that fact, never by testing ``remaining <= 0``. An update first tries
an incremental solve: re-solve a small, growing set of flows on the capacity the
others leave, holding the others fixed, then check the max-min condition on the
resources whose load changed; it falls back to a full numpy solve when the set or a
changed saturated resource grows past a few dozen flows. The full solve freezes, in
each round, every resource whose fair share is a local minimum among the resources
its flows cross (a handful of rounds instead of one per distinct rate).

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

__all__ = ["Flow", "FlowFailed", "FlowSolver"]

EPS = 1e-9  # relative: rates this close are the same rate (ties, "unchanged")
CHK = 1e-8  # relative: tolerance of the max-min checks (saturation, largest rate)
_INF = math.inf

_PENDING, _ACTIVE, _DONE, _ABORTED, _FAILED = range(5)


class FlowFailed(Exception):
    """Thrown into a waiter of ``flow.done`` when the solver fails the flow; ``cause`` says why."""

    def __init__(self, flow: Flow, cause: object):
        super().__init__(flow, cause)  # SimPy re-creates it from args for each waiter
        self.flow = flow
        self.cause = cause

    def __str__(self) -> str:
        return f"flow {self.flow.id} failed: {self.cause!r}"


class Flow:
    """One transfer. Public attributes are read-only; ask the solver for rate and progress.

    ``done`` succeeds with the flow as value when the last byte arrives, fails with
    :class:`FlowFailed` if the solver fails it, and never fires if it is aborted.
    """

    __slots__ = ("id", "size", "resources", "cap", "tag", "start_time", "end_time", "latency", "done",
                 "_slot", "_state", "_capf", "_left")

    def __init__(self, fid: int, size: float, resources: tuple[int, ...], cap: float | None, tag: object,
                 start_time: float, latency: float, done: simpy.Event):
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

    def __repr__(self) -> str:
        return f"Flow({self.id}, size={self.size:g}, resources={self.resources}, tag={self.tag!r})"


class FlowSolver:
    """Max-min fair sharing of capacity resources among flows, in simulated time.

    Build resources with :meth:`add_resource`, then :meth:`start` flows; every method
    acts at ``env.now`` and returns at once (nothing here yields).
    """

    SMALL = 32  # a resource crossed by more flows is "big": the incremental path never scans it
    MAX_SET = 40  # largest set of flows the incremental path re-solves before giving up
    MAX_ROUNDS = 8  # growth rounds of the incremental path before giving up
    REFRESH = 4096  # a full solve after this many incremental updates wipes any float drift

    def __init__(self, env: simpy.Environment, *, incremental: bool = True):
        """``incremental=False`` re-solves every flow on every change (a reference for tests)."""
        self.env = env
        self._use_incremental = incremental
        self._names: list[str] = ["(none)"]
        self._index: dict[str, int] = {}
        self._capl: list[float] = [_INF]
        self._cap = np.full(16, _INF)
        self._load = np.zeros(16)
        self._rmax = np.zeros(16)
        self._satl: list[bool] = [False]
        self._rflows: list[dict[Flow, None]] = [{}]
        # per slot
        self._n = 0
        self._flows: list[Flow] = []
        self._rl: list[float] = []
        self._F = np.zeros((8, 64), dtype=np.intp)  # resource ids by (position, slot); 0 pads
        self._fcap = np.full(64, _INF)
        self._rate = np.zeros(64)
        self._rem = np.zeros(64)  # bytes remaining at time _tat
        self._tat = np.zeros(64)
        self._tend = np.full(64, _INF)
        self._lencount = [0] * 9
        self._width = 1
        self._pending: dict[Flow, None] = {}
        self._next_id = 0
        self._timer: simpy.Event | None = None
        self._timer_t = _INF
        self._timer_flow: Flow | None = None
        self._since_full = 0
        self.stats = {"incremental": 0, "full": 0}  # updates solved each way (diagnostics)

    # ------------------------------------------------------------------ resources
    def add_resource(self, name: str, capacity: float) -> int:
        """A new resource of ``capacity`` bytes/s; returns its id."""
        if name in self._index:
            raise ValueError(f"resource {name!r} already exists")
        capacity = self._check_capacity(capacity)
        rid = len(self._names)
        if rid >= self._cap.shape[0]:
            size = 2 * self._cap.shape[0]
            for attr, fill in (("_cap", _INF), ("_load", 0.0), ("_rmax", 0.0)):
                old = getattr(self, attr)
                new = np.full(size, fill)
                new[: old.shape[0]] = old
                setattr(self, attr, new)
        self._names.append(name)
        self._index[name] = rid
        self._capl.append(capacity)
        self._cap[rid] = capacity
        self._load[rid] = 0.0
        self._rmax[rid] = 0.0
        self._satl.append(capacity == 0.0)
        self._rflows.append({})
        return rid

    def resource_id(self, name: str) -> int:
        return self._index[name]

    def resource_name(self, rid: int) -> str:
        return self._names[rid]

    def capacity(self, rid: int) -> float:
        """Capacity of ``rid`` in bytes/s."""
        self._check_rid(rid)
        return self._capl[rid]

    def set_capacity(self, rid: int, capacity: float) -> None:
        """Change a capacity now (0 = failed: its flows stall at rate 0); rates are recomputed."""
        self.set_capacities({rid: capacity})

    def set_capacities(self, changes: dict[int, float]) -> None:
        """Several capacity changes at once, with a single re-solve."""
        for rid, capacity in changes.items():
            self._check_rid(rid)
            capacity = self._check_capacity(capacity)
            self._capl[rid] = capacity
            self._cap[rid] = capacity
        self._solve_full()
        self._arm()

    # ------------------------------------------------------------------ flows
    def start(self, resources: Iterable[int], size: float, cap: float | None = None, latency: float = 0.0,
              tag: object = None) -> Flow:
        """Start moving ``size`` bytes across ``resources`` (distinct ids), at most ``cap`` bytes/s.

        The flow joins the sharing after ``latency`` seconds; ``flow.done`` fires when
        the last byte arrives.
        """
        res = tuple(int(r) for r in resources)
        nres = len(self._names)
        for r in res:
            if not 0 < r < nres:
                raise ValueError(f"unknown resource id {r}")
        if len(set(res)) != len(res):
            raise ValueError(f"a flow crosses each resource at most once, got {res}")
        size = float(size)
        if not (size >= 0.0 and math.isfinite(size)):
            raise ValueError(f"flow size must be a finite number of bytes >= 0, got {size}")
        if cap is not None:
            cap = float(cap)
            if not cap >= 0.0:
                raise ValueError(f"flow cap must be >= 0 bytes/s, got {cap}")
        latency = float(latency)
        if not (latency >= 0.0 and math.isfinite(latency)):
            raise ValueError(f"latency must be >= 0 s, got {latency}")
        env = self.env
        flow = Flow(self._next_id, size, res, cap, tag, env.now, latency, env.event())
        self._next_id += 1
        instant = size == 0.0 or (not res and cap is None)
        if latency > 0.0 or instant:
            self._pending[flow] = None
            ev = env.timeout(latency)
            ev.callbacks.append(self._finish_instant if instant else self._on_join)
            ev.flow = flow  # type: ignore[attr-defined]
        else:
            self._join(flow)
        return flow

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
        old = self._detach(flow, _ABORTED)
        self._update((), [(flow, old)])
        return flow.size - flow._left

    def fail(self, flow: Flow, cause: object) -> None:
        """The flow fails now: it leaves and ``done`` fails with :class:`FlowFailed` (defused)."""
        self._fail_many([flow], cause)

    def fail_resource(self, rid: int, cause: object) -> None:
        """Fail every flow crossing ``rid``, waiting for its latency or moving (a storage outage)."""
        self._check_rid(rid)
        victims = [f for f in self._pending if rid in f.resources]
        victims.extend(self._rflows[rid])
        self._fail_many(victims, cause)

    def _fail_many(self, flows: list[Flow], cause: object) -> None:
        removed = []
        failed = []
        for flow in sorted(flows, key=_by_id):
            if flow._state == _PENDING:
                del self._pending[flow]
                flow._state = _FAILED
                flow.end_time = self.env.now
            elif flow._state == _ACTIVE:
                removed.append((flow, self._detach(flow, _FAILED)))
            else:
                continue
            failed.append(flow)
        if removed:
            self._update((), removed)
        for flow in failed:
            flow.done.defused = True
            flow.done.fail(FlowFailed(flow, cause))

    # ------------------------------------------------------------------ queries
    def rate(self, flow: Flow) -> float:
        """Current rate of ``flow`` in bytes/s (0 while it waits for its latency or after it left)."""
        return self._rl[flow._slot] if flow._state == _ACTIVE else 0.0

    def remaining(self, flow: Flow) -> float:
        """Bytes still to send, now."""
        if flow._state != _ACTIVE:
            return flow._left
        i = flow._slot
        left = float(self._rem[i]) - self._rl[i] * (self.env.now - float(self._tat[i]))
        return left if left > 0.0 else 0.0

    def sent(self, flow: Flow) -> float:
        """Bytes sent so far."""
        return flow.size - self.remaining(flow)

    def flows_on(self, rid: int) -> list[Flow]:
        """Live flows crossing ``rid`` (moving, or waiting for their latency), by id."""
        self._check_rid(rid)
        flows = list(self._rflows[rid])
        flows.extend(f for f in self._pending if rid in f.resources)
        flows.sort(key=_by_id)
        return flows

    def load(self, rid: int) -> float:
        """Sum of the current rates of the flows crossing ``rid``, bytes/s."""
        self._check_rid(rid)
        rl = self._rl
        return sum(rl[f._slot] for f in self._rflows[rid])

    @property
    def n_flows(self) -> int:
        """Live flows: moving or waiting for their latency."""
        return self._n + len(self._pending)

    # ------------------------------------------------------------------ joining and leaving
    def _on_join(self, ev: simpy.Event) -> None:
        flow = ev.flow  # type: ignore[attr-defined]
        if flow._state == _PENDING:
            del self._pending[flow]
            self._join(flow)

    def _finish_instant(self, ev: simpy.Event) -> None:
        flow = ev.flow  # type: ignore[attr-defined]
        if flow._state == _PENDING:
            del self._pending[flow]
            flow._state = _DONE
            flow._left = 0.0
            flow.end_time = self.env.now
            flow.done.succeed(flow)

    def _join(self, flow: Flow) -> None:
        """Enter the sharing now with rate 0, then re-solve."""
        i = self._n
        if i == self._rate.shape[0]:
            self._grow_slots()
        res = flow.resources
        k = len(res)
        if k > self._F.shape[0]:
            self._grow_width(k)
        F = self._F
        F[:, i] = 0
        if k:
            F[:k, i] = res
        self._fcap[i] = flow._capf
        self._rate[i] = 0.0
        self._rem[i] = flow.size
        self._tat[i] = self.env.now
        self._tend[i] = _INF
        self._flows.append(flow)
        self._rl.append(0.0)
        self._n = i + 1
        flow._slot = i
        flow._state = _ACTIVE
        self._lencount[k] += 1
        if k > self._width:
            self._width = k
        rflows = self._rflows
        for r in res:
            rflows[r][flow] = None
        self._update((flow,), ())

    def _detach(self, flow: Flow, state: int) -> float:
        """Take an active flow out of the arrays (swap-remove); returns its rate. No re-solve."""
        now = self.env.now
        i = flow._slot
        old = self._rl[i]
        left = float(self._rem[i]) - old * (now - float(self._tat[i]))
        flow._left = left if left > 0.0 else 0.0
        flow._state = state
        flow.end_time = now
        j = self._n - 1
        flows = self._flows
        if i != j:
            g = flows[j]
            flows[i] = g
            g._slot = i
            self._F[:, i] = self._F[:, j]
            for arr in (self._fcap, self._rate, self._rem, self._tat, self._tend):
                arr[i] = arr[j]
            self._rl[i] = self._rl[j]
        flows.pop()
        self._rl.pop()
        self._n = j
        flow._slot = -1
        k = len(flow.resources)
        lc = self._lencount
        lc[k] -= 1
        if k == self._width and lc[k] == 0:
            w = k
            while w > 1 and lc[w] == 0:
                w -= 1
            self._width = w
        rflows = self._rflows
        for r in flow.resources:
            del rflows[r][flow]
        if self._timer_flow is flow:
            self._timer_flow = None
        return old

    def _on_timer(self, ev: simpy.Event) -> None:
        """The earliest completion is due: complete it and every flow due at the same instant."""
        if ev is not self._timer:
            return  # stale: rates changed after it was armed
        self._timer = None
        self._timer_t = _INF
        armed = self._timer_flow
        self._timer_flow = None
        now = self.env.now
        n = self._n
        due = np.flatnonzero(self._tend[:n] <= now + 1e-12 * max(1.0, abs(now)))
        flows = self._flows
        finished = {flows[i] for i in due.tolist()}
        if armed is not None:
            finished.add(armed)
        done = sorted(finished, key=_by_id)
        removed = []
        for flow in done:
            removed.append((flow, self._detach(flow, _DONE)))
            flow._left = 0.0
        self._update((), removed)
        for flow in done:
            flow.done.succeed(flow)

    # ------------------------------------------------------------------ solving
    def _update(self, added: tuple[Flow, ...], removed: list[tuple[Flow, float]]) -> None:
        """Re-solve after flows joined or left, then re-arm the completion timer."""
        if not self._use_incremental or self._since_full >= self.REFRESH or not self._incremental(added, removed):
            self._solve_full()
        self._arm()

    def _solve_full(self) -> None:
        """Progressive filling over all flows in numpy; freezes every locally minimal resource per round."""
        self._since_full = 0
        self.stats["full"] += 1
        n = self._n
        nr = len(self._names)
        cap = self._cap[:nr]
        load = self._load[:nr]
        rmax = self._rmax[:nr]
        if n == 0:
            load[:] = 0.0
            rmax[:] = 0.0
            sat = cap <= 0.0
            sat[0] = False
            self._satl = sat.tolist()
            return
        W = self._width
        E = np.ascontiguousarray(self._F[:W, :n])
        with np.errstate(divide="ignore", invalid="ignore"):
            new = _progressive_filling(E, self._fcap[:n], cap)

        rate = self._rate[:n]
        changed = np.abs(new - rate) > EPS * np.maximum(new, rate)
        if changed.any():
            ch = np.flatnonzero(changed)
            now = self.env.now
            rem = self._rem[ch] - rate[ch] * (now - self._tat[ch])
            np.maximum(rem, 0.0, out=rem)
            nrate = new[ch]
            self._rem[ch] = rem
            self._tat[ch] = now
            rate[ch] = nrate
            moving = nrate > 0.0
            self._tend[ch] = np.where(moving, now + rem / np.where(moving, nrate, 1.0), _INF)
        self._rl = rate.tolist()
        w = np.concatenate((rate,) * W)
        flat = E.ravel()
        load[:] = np.bincount(flat, weights=w, minlength=nr)
        rmax[:] = 0.0
        np.maximum.at(rmax, flat, w)
        sat = cap - load <= CHK * cap
        sat[0] = False
        self._satl = sat.tolist()

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
        """
        small = self.SMALL
        rflows = self._rflows
        rl = self._rl
        capl = self._capl
        satl = self._satl
        load = self._load
        rmax = self._rmax
        floor = 1.0 - CHK
        ceil = 1.0 + CHK
        gone: dict[int, float] = {}  # resource -> rate that left with the removed flows
        for f, x in removed:
            if x != 0.0:
                for r in f.resources:
                    if satl[r] and len(rflows[r]) > small:
                        return False  # a big bottleneck frees capacity: every flow on it speeds up
                    gone[r] = gone.get(r, 0.0) + x
        for f in added:
            if f._capf > 0.0 and all(capl[r] > 0.0 for r in f.resources):
                for r in f.resources:
                    if satl[r] and len(rflows[r]) > small:
                        return False  # joins a big bottleneck: every flow on it slows down
        S: list[Flow] = []
        inS: set[Flow] = set()
        base: dict[Flow, float] = {}  # rate of each flow of S before this update
        last: dict[Flow, float] = {}  # rate of each flow of S at the last check
        on: dict[int, list[Flow]] = {}  # resource -> flows of S crossing it
        used: dict[int, float] = {}  # resource -> load of the flows not in S
        orig_sat: dict[int, bool] = {}
        concerned: set[Flow] = set()  # flows outside S whose bottleneck was checked
        big_delta: dict[int, float] = {}
        touched = dict.fromkeys(gone)
        new = list(added)
        for _ in range(self.MAX_ROUNDS):
            # -- grow S
            for f in new:
                b = rl[f._slot]  # 0 for a flow that just joined
                S.append(f)
                inS.add(f)
                base[f] = last[f] = b
                concerned.discard(f)
                for r in f.resources:
                    lst = on.get(r)
                    if lst is None:
                        on[r] = [f]
                        fl = rflows[r]
                        if len(fl) <= small:
                            u = 0.0
                            for g in fl:
                                if g not in inS:
                                    u += rl[g._slot]
                        else:
                            u = float(load[r]) - gone.get(r, 0.0) - b
                        used[r] = u
                    else:
                        lst.append(f)
                        used[r] -= b
            if len(S) > self.MAX_SET:
                return False
            self._fill(S, on, used, base)
            # -- resources whose load changed since the last check
            for f in S:
                x = rl[f._slot]
                if x != last[f]:
                    last[f] = x
                    for r in f.resources:
                        touched[r] = None
            check: dict[Flow, None] = {}
            for r in touched:
                fl = rflows[r]
                if len(fl) <= small:
                    tot = 0.0
                    mx = 0.0
                    for g in fl:
                        x = rl[g._slot]
                        tot += x
                        if x > mx:
                            mx = x
                    c = capl[r]
                    was = orig_sat.get(r)
                    if was is None:
                        was = orig_sat[r] = satl[r]
                    satl[r] = c - tot <= CHK * c
                    load[r] = tot
                    rmax[r] = mx
                    for g in fl:
                        if g not in inS and (was or g in concerned):
                            check[g] = None
                else:
                    moved = r in gone
                    d = -gone.get(r, 0.0)
                    for g in on.get(r, ()):
                        x = rl[g._slot] - base[g]
                        if x != 0.0:
                            moved = True
                            d += x
                    if not moved:
                        big_delta.pop(r, None)
                        continue
                    if satl[r]:
                        return False  # the rates on a big bottleneck changed
                    c = capl[r]
                    if c - (float(load[r]) + d) <= CHK * c:
                        return False  # a big resource becomes a bottleneck
                    big_delta[r] = d
            touched = {}
            # -- max-min check: every flow concerned has a bottleneck
            grow: dict[Flow, None] = {}
            for f in S:
                x = rl[f._slot]
                if x >= f._capf * floor:
                    continue
                for r in f.resources:
                    if satl[r] and x >= rmax[r] * floor:
                        break
                else:
                    found = False
                    lim = x * ceil
                    for r in f.resources:
                        if satl[r]:
                            fl = rflows[r]
                            if len(fl) > small:
                                return False
                            for g in fl:
                                if g not in inS and rl[g._slot] > lim:
                                    grow[g] = None
                                    found = True
                    if not found:
                        return False
            for g in check:
                concerned.add(g)
                x = rl[g._slot]
                if x >= g._capf * floor:
                    continue
                for r in g.resources:
                    if satl[r] and x >= rmax[r] * floor:
                        break
                else:
                    grow[g] = None
            if not grow:
                break
            new = list(grow)
        else:
            return False
        # -- commit
        for r, d in big_delta.items():
            load[r] += d
        now = self.env.now
        rate = self._rate
        remv = self._rem
        tat = self._tat
        tend = self._tend
        for f in S:
            i = f._slot
            x = rl[i]
            if x != base[f]:
                rem = float(remv[i]) - float(rate[i]) * (now - float(tat[i]))
                if rem < 0.0:
                    rem = 0.0
                remv[i] = rem
                tat[i] = now
                rate[i] = x
                tend[i] = now + rem / x if x > 0.0 else _INF
        self._since_full += 1
        self.stats["incremental"] += 1
        return True

    def _fill(self, S: list[Flow], on: dict[int, list[Flow]], used: dict[int, float],
              base: dict[Flow, float]) -> None:
        """Progressive filling of the flows of S on what the other flows leave; writes their rates.

        Exact global-minimum order with a heap of resource shares (stale entries skipped),
        so each flow freezes once. A rate within ``EPS`` of the flow's old rate keeps the old one.
        """
        capl = self._capl
        rl = self._rl
        resid: dict[int, float] = {}
        cnt: dict[int, int] = {}
        share: dict[int, float] = {}
        heap: list[tuple[float, int]] = []
        for r, lst in on.items():
            left = capl[r] - used[r]
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
                rl[f._slot] = b if abs(s - b) <= EPS * (s if s > b else b) else s
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

    def _arm(self) -> None:
        """Point the one completion timer at the earliest completion (a new timeout only if it moved)."""
        n = self._n
        if n == 0:
            self._timer = None
            self._timer_t = _INF
            self._timer_flow = None
            return
        i = int(self._tend[:n].argmin())
        t = float(self._tend[i])
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
        F = np.zeros((self._F.shape[0], size), dtype=np.intp)
        F[:, : self._F.shape[1]] = self._F
        self._F = F
        for attr, fill in (("_fcap", _INF), ("_rate", 0.0), ("_rem", 0.0), ("_tat", 0.0), ("_tend", _INF)):
            old = getattr(self, attr)
            new = np.full(size, fill)
            new[: old.shape[0]] = old
            setattr(self, attr, new)

    def _grow_width(self, width: int) -> None:
        F = np.zeros((width, self._F.shape[1]), dtype=np.intp)
        F[: self._F.shape[0]] = self._F
        self._F = F
        self._lencount.extend([0] * (width + 1 - len(self._lencount)))

    def _check_rid(self, rid: int) -> None:
        if not 0 < rid < len(self._names):
            raise ValueError(f"unknown resource id {rid}")

    @staticmethod
    def _check_capacity(capacity: float) -> float:
        capacity = float(capacity)
        if not (capacity >= -1e-3 and math.isfinite(capacity)):
            raise ValueError(f"capacity must be a finite number of bytes/s >= 0, got {capacity}")
        return capacity if capacity > 0.0 else 0.0  # a slightly negative capacity (rounding) is 0


def _progressive_filling(E: np.ndarray, fcap: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Max-min rates of the flows whose resources are the columns of ``E`` (0 pads), capped by ``fcap``.

    Each round computes every resource's fair share of what is left, each flow's least
    share (or its cap), and freezes every flow crossing a resource that is a local
    minimum: no flow on it is held lower elsewhere (ties within ``EPS``). Such a
    resource's share is final, as every share only grows while the filling goes on,
    and the smallest share is always a local minimum, so every round makes progress.
    """
    nr = cap.shape[0]
    n = E.shape[1]
    new = np.empty(n)
    remcap = cap.copy()
    capped = bool(np.isfinite(fcap).any())
    floor = 1.0 - EPS
    Eu = E
    fcu = fcap
    iu = None
    for _ in range(n):
        flat = Eu.ravel()
        share = remcap / np.bincount(flat, minlength=nr)  # unused resources: inf or nan, never read
        sh = share.take(Eu)  # pads (resource 0) have an infinite share
        fmin = sh.min(axis=0)
        if capped:
            np.minimum(fmin, fcu, out=fmin)
        if iu is None:
            new[:] = fmin
        else:
            new[iu] = fmin  # final for the flows frozen now; rewritten later for the others
        sh *= floor
        # pads are always "held lower elsewhere", so resource 0 is never good
        good = np.bincount(flat, weights=(fmin < sh).ravel(), minlength=nr) == 0
        fr = good.take(Eu).any(axis=0)
        if capped:
            fr |= fcu * floor <= fmin
        if fr.all():
            np.maximum(new, 0.0, out=new)  # rounding may leave a failed resource a hair below 0
            return new
        fmin *= fr
        remcap -= np.bincount(flat, weights=np.concatenate((fmin,) * Eu.shape[0]), minlength=nr)
        keep = ~fr
        Eu = Eu[:, keep]
        if capped:
            fcu = fcu[keep]
        iu = np.flatnonzero(keep) if iu is None else iu[keep]
    raise RuntimeError("progressive filling made no progress")  # pragma: no cover


def _by_id(flow: Flow) -> int:
    return flow.id
