"""Session clusters with 1:1 and N:K redundancy (docs/availability.md, part I).

A cluster is ``active`` (N) session VMs, each taking ``capacity`` concurrent sessions,
plus backups: a "1:1" cluster pairs every active with a hot backup that holds its
session state; an "N:K" cluster has K spare VMs. The VMs are real VMs owned by this
mechanism (``<cluster>-NNN``: the N actives first, then the backups, a 1:1 backup
``<cluster>-(N+i)`` being the pair of active i), placed on the cluster's hosts through
the shared placement; a 1:1 backup never shares its active's host (nor, where it can,
its broadcast domain). Session types arrive as Poisson streams and hold for exponential
times; among the clusters of the required class the least loaded (sessions on serving
VMs / their capacity, ties by file order) takes a session, on its least-loaded serving
VM (ties to the lowest position); with no free slot anywhere the session is blocked.

Failures (``sim.faults``: ``vm_mtbf`` crashes with an exponential ``repair``; host,
domain and site faults) reach ``vm_stopped``. Enabled, an active's failure makes its
*position* stop serving at once; then 1:1: its backup takes over after
``failover_time`` with the sessions kept (if the backup is down too, the sessions are
dropped and the position stays short); N:K: the failed VM's sessions are dropped and
a free spare takes over after ``failover_time``, else the position stays short. A VM
comes back after its exponential repair (in place) or, when its host failed, is
restarted on another allowed host after ``infrastructure.detection`` + its boot (where
``placement_rule`` lets it: a 1:1 VM never on its partner's host, and outside its domain
while a host there has room; a waiting VM chooses again when its partner leaves its host);
back, it rejoins as a backup, or takes a short position (after ``failover_time``), also
when its partner stops before completing the takeover. Disabled (``enabled: false``): only the N actives
exist; a failed VM's sessions are dropped and it restarts after detection + boot (in
place when it kept its host), serving again at once.

Sessions are simulated one by one, but not as SimPy events: each class ("1:1",
"N:K") has a private calendar (``_Pool``) of arrivals (drawn in numpy batches from the
streams ``sessions/<type>`` and ``sessions/<type>/holding``) and departures, sorted per
window, that is advanced lazily to ``env.now`` whenever something outside can change
or observe it (a failure, a takeover, a VM back, a sample, the end of the run). Between
those moments nothing outside touches sessions, so this is exact.

Records: ``sessions`` (one row per cluster with ``session_type`` "" holding the
cluster's failovers, VM failures and shortfall, then one row per (cluster, session
type) holding offered, carried, blocked, dropped and active at the end; every column
summed over the table is the total, nothing counted twice), levels
``sessions/<cluster>`` ``vms_serving`` (at each change) and ``sessions_active`` (at
each sample and the end), and an incident per VM outage (mechanism ``sessions``), closed
``failed_over`` when another VM took over its position, ``restarted`` when the VM itself
came back first. docs/availability.md states the model, its choices and its validation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from heapq import heappop, heappush
from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
from pydantic import AfterValidator, Field, model_validator

from sim import format as fmt
from sim.core.causes import VmCrash
from sim.core.errors import Problem
from sim.infra import events as ev
from sim.infra.datacenter import BOOTING, RUNNING, VMSpec
from sim.mechanisms.base import Mechanism, MechanismConfig, Need, scaled
from sim.metrics.meta import Metric
from sim.metrics.tables import table
from sim.scenario.limits import plausible
from sim.scenario.names import pattern, vm_name
from sim.scenario.schema import Model, VmSpec
from sim.scenario.types import (
    Duration,
    EventRate,
    FieldError,
    Globs,
    Interval,
    Name,
    NonNegInt,
    PositiveDuration,
    PositiveInt,
)
from sim.scenario.validate import Namespaces, glob_problems, unique_problems

if TYPE_CHECKING:
    from sim.core.causes import Cause
    from sim.core.context import Context
    from sim.infra.build import Builder
    from sim.infra.datacenter import VM, Datacenter
    from sim.metrics.summary import RunInfo, Tables

KEY = "sessions"
GiB = 1024.0**3
ONE_TO_ONE, N_TO_K = "1:1", "N:K"
CLASSES = (ONE_TO_ONE, N_TO_K)
_METRIC_CLASS = {ONE_TO_ONE: "one_to_one", N_TO_K: "n_to_k"}


# --------------------------------------------------------------------------- config
def _default_vm() -> VmSpec:
    # The default shape of a session VM (docs/availability.md).
    return VmSpec(vcpus=4, memory=8 * GiB, disk=40 * GiB)


class ClusterSpec(Model):
    """One session cluster: ``mechanisms.sessions.clusters.<i>``."""

    name: Name
    redundancy: Literal["1:1", "N:K"]
    active: PositiveInt
    # K spares of an N:K cluster (required there; a 1:1 cluster has one backup per active).
    backup: NonNegInt | None = None
    # Concurrent sessions per active VM: 100 (the project's example and its validation case,
    # docs/availability.md).
    capacity: Annotated[PositiveInt, AfterValidator(plausible(
        "session_capacity", "sessions", "a million: beyond any one VM's connection table"))] = 100
    hosts: Globs = ("*",)  # every host, as a workload's placement default (docs/model.md)
    # VRRPv2 Master_Down_Interval with 1 s advertisements and priority 100: 3 x 1 + 156/256 =
    # 3.609 s (RFC 3768 §6.1). BFD (RFC 5880, 3 x 50 ms = 150 ms) is the fast
    # alternative a scenario may give.
    failover_time: Duration = 3.609
    vm_mtbf: Interval | None = None  # exponential mean time between a VM's own failures; None: never
    # Mean of the exponential repair of a VM's own failure; None: infrastructure.repair (4 h,
    # the default repair time wherever a fault or mechanism gives none, docs/model.md).
    repair: Duration | None = None
    vm: VmSpec = Field(default_factory=_default_vm)

    @model_validator(mode="after")
    def _backup(self) -> ClusterSpec:
        if self.redundancy == N_TO_K and self.backup is None:
            raise FieldError("backup", "expected the number of backup VMs K of an N:K cluster, got nothing")
        if self.redundancy == ONE_TO_ONE and self.backup is not None:
            raise FieldError("backup", "expected no backup for a 1:1 cluster (every active VM has its own hot "
                                       f"backup), got {self.backup}")
        return self


class SessionType(Model):
    """One Poisson stream of sessions: ``mechanisms.sessions.session_types.<i>``."""

    name: Name
    rate: EventRate  # arrivals per second (>= 0; the unit parser refuses negatives)
    mean_holding: PositiveDuration  # mean of the exponential holding time
    require: Literal["1:1", "N:K"]


class Config(MechanismConfig):
    """``mechanisms.sessions``."""

    clusters: tuple[ClusterSpec, ...] = ()
    session_types: tuple[SessionType, ...] = ()

    def check_references(self, scenario, path: str) -> list[Problem]:
        """Unique names, host selectors that match, classes that exist, and the run's budgets."""
        ns = Namespaces(scenario)
        out = unique_problems([c.name for c in self.clusters], f"{path}.clusters.{{}}.name", "cluster name")
        for i, c in enumerate(self.clusters):
            where = f"{path}.clusters.{i}"
            if c.name in ns.workloads:
                out.append(Problem(f"{where}.name", f"expected a name no workload has (its VMs are named "
                                                    f"{c.name}-NNN), got {c.name!r}"))
            missing = glob_problems(c.hosts, ns.hosts, f"{where}.hosts", "host")
            out += missing
            if not missing and c.redundancy == ONE_TO_ONE:
                match = pattern(c.hosts).match
                if sum(1 for h in ns.hosts if match(h)) < 2:
                    out.append(Problem(f"{where}.hosts", f"expected at least two hosts for a 1:1 cluster (a backup "
                                                         f"never shares its active's host), got {list(c.hosts)}"))
        have = {c.redundancy for c in self.clusters}
        out += unique_problems([t.name for t in self.session_types], f"{path}.session_types.{{}}.name",
                               "session type name")
        for i, t in enumerate(self.session_types):
            where = f"{path}.session_types.{i}"
            if t.require not in have:
                out.append(Problem(f"{where}.require", f'expected a class some cluster has ({_listed(have)}), '
                                                       f'got "{t.require}"'))
        return out


def _listed(classes) -> str:
    return ", ".join(f'"{c}"' for c in CLASSES if c in classes) or "none: no cluster is defined"


# --------------------------------------------------------------------------- records
# One row per cluster (session_type "") with the cluster's own figures, and one per (cluster,
# session type of its class) with the session counts; columns a row does not own are 0, so a
# column summed over the table is the total. offered = carried + blocked; dropped counts carried
# sessions cut by a failure; active_at_end the carried sessions still held when the run ended.
SESSIONS = table(
    "sessions", "time_s", "cluster:str", "session_type:str", "redundancy:str",
    "offered:i8", "carried:i8", "blocked:i8", "dropped:i8", "active_at_end:i8",
    "failovers:i8", "vm_failures:i8", "capacity_shortfall_s", "capacity_shortfall_vm_s",
)


def session_metrics(t: Tables, info: RunInfo) -> dict[str, float]:
    """``sessions.*`` from the ``sessions`` table (zeros when it is empty; blocking omitted when
    nothing was offered), plus the same per class (``sessions.one_to_one.*``, ``sessions.n_to_k.*``)."""
    s = t["sessions"]
    out: dict[str, float] = {}

    def add(prefix: str, rows) -> None:
        offered = int(rows["offered"].sum())
        blocked = int(rows["blocked"].sum())
        out[f"{prefix}.offered"] = offered
        out[f"{prefix}.carried"] = int(rows["carried"].sum())
        out[f"{prefix}.blocked"] = blocked
        if offered > 0:
            out[f"{prefix}.blocking_probability"] = blocked / offered
        out[f"{prefix}.dropped"] = int(rows["dropped"].sum())
        out[f"{prefix}.failovers"] = int(rows["failovers"].sum())
        out[f"{prefix}.capacity_shortfall_s_total"] = float(rows["capacity_shortfall_s"].sum())

    add("sessions", s)
    out["sessions.vm_failures"] = int(s["vm_failures"].sum())
    for cls in CLASSES:
        add(f"sessions.{_METRIC_CLASS[cls]}", s[s["redundancy"] == cls])
    return out


def _session_metrics(prefix: str, who: str) -> tuple[Metric, ...]:
    return (
        Metric(f"{prefix}.offered", "count", f"sessions offered to {who}"),
        Metric(f"{prefix}.carried", "count", f"sessions carried by {who}"),
        Metric(f"{prefix}.blocked", "count", f"sessions blocked by {who} (no capacity)", False),
        Metric(f"{prefix}.blocking_probability", "probability", f"share of sessions offered to {who} blocked",
               False, headline=prefix == "sessions"),
        Metric(f"{prefix}.dropped", "count", f"carried sessions of {who} cut by a failure", False),
        Metric(f"{prefix}.failovers", "count", f"failovers of {who}"),
        Metric(f"{prefix}.capacity_shortfall_s_total", "s", f"time {who} ran short of capacity, summed", False),
    )


# Every metric ``session_metrics`` can produce (units: sim.metrics.meta).
METRICS = (
    *_session_metrics("sessions", "all clusters"),
    Metric("sessions.vm_failures", "count", "failures of the clusters' VMs", False),
    *(m for cls in CLASSES for m in _session_metrics(f"sessions.{_METRIC_CLASS[cls]}", f"{cls} clusters")),
)


# --------------------------------------------------------------------------- the private calendar
_WINDOW_ARRIVALS = 4096  # expected arrivals per window of a class (numpy batch size)
_SCAN_MAX = 128  # clusters of at most this many positions find the least-loaded one by a scan


class _Arrivals:
    """One session type's Poisson arrivals and their holding times, generated ahead in batches.

    Arrival j always gets holding draw j (both streams are drawn in equal chunks), and times
    are one running sum from 0, so the sequence does not depend on the batch size."""

    __slots__ = ("scale", "hold", "rng_a", "rng_h", "chunk", "last", "t", "h")

    def __init__(self, rate: float, hold: float, rng_a, rng_h, chunk: int):
        self.scale = 1.0 / rate
        self.hold = hold
        self.rng_a = rng_a
        self.rng_h = rng_h
        self.chunk = chunk
        self.last = 0.0
        self.t = np.empty(0)
        self.h = np.empty(0)

    def take(self, w1: float) -> tuple[np.ndarray, np.ndarray]:
        """Arrival times < ``w1`` not taken yet, and their holding times."""
        while self.last < w1:
            gaps = self.rng_a.exponential(self.scale, self.chunk)
            holds = self.rng_h.exponential(self.hold, self.chunk)
            times = np.cumsum(np.concatenate(([self.last], gaps)))[1:]
            self.last = float(times[-1])
            self.t = np.concatenate((self.t, times))
            self.h = np.concatenate((self.h, holds))
        cut = int(np.searchsorted(self.t, w1, "left"))
        t, h = self.t[:cut], self.h[:cut]
        self.t, self.h = self.t[cut:], self.h[cut:]
        return t, h


class _Pool:
    """The sessions of one class: its clusters' positions, arrivals and departures.

    Positions (active slots of the clusters, flat, cluster by cluster) hold ``load``
    sessions; ``eff[p]`` is the load of a serving position and -1 otherwise (a position
    in a failover window keeps its sessions but takes none). Per cluster, ``cnt[c][l]``
    counts serving positions with load l and ``m[c]`` is the least load (``cap`` when
    nothing serves or all are full: blocked). A window of ``W`` seconds is one batch: its
    arrivals, and every departure due in it, sorted by time (arrivals first at a tie);
    ``pos[s]`` is where session s went (a position, or a code: blocked in cluster c,
    dropped from cluster c, not arrived yet). ``advance(T)`` runs the events up to T.
    """

    def __init__(self, caps: Sequence[int], sizes: Sequence[int], types: Sequence[_Arrivals | None]):
        C = len(caps)
        self.C = C
        self.caps = list(caps)
        self.lo: list[int] = []
        self.hi: list[int] = []
        cof: list[int] = []
        for c, n in enumerate(sizes):
            self.lo.append(len(cof))
            cof.extend([c] * n)
            self.hi.append(len(cof))
        npos = len(cof)
        self.npos = npos
        self.cof = cof
        self.unseen = npos + 2 * C  # pos code of an arrival not processed yet
        self.load = [0] * (npos + 2 * C + 1)
        self.eff = [-1] * (npos + 2 * C + 1)
        self.cnt = [[0] * (min(cap, 62) + 2) for cap in caps]
        # per cluster and load l, a min-heap of the positions that entered load l while serving (lazy:
        # an entry whose position has left l since is skipped when popped, and a heap is compacted
        # when it holds more than twice its live entries), so the least-loaded lowest position is a
        # heap pop, O(log positions), not a scan
        # (a cluster of at most _SCAN_MAX positions scans instead: ``list.index`` over a few dozen
        # entries costs less than the heap pushes, measured in benchmarks/bench_sessions.py)
        self.hp: list[list[list[int]]] = [[[] for _ in cnt] for cnt in self.cnt]
        self.heaped = [n > _SCAN_MAX for n in sizes]
        self.m = list(caps)
        self.srv = [0] * C
        self.stot = [0] * C  # sessions on serving positions (the multi-cluster choice only)
        # code -> cluster, and code -> blocked?, for counting a window with numpy
        self._cl_of = np.array(cof + list(range(C)) * 2 + [-1], dtype=np.int64)
        self._blk = np.array([False] * npos + [True] * C + [False] * (C + 1))
        self.types = list(types)
        self.nt = len(types)
        live = [a for a in types if a is not None]
        total_rate = sum(1.0 / a.scale for a in live)
        self.W = _WINDOW_ARRIVALS / total_rate if live else float("inf")
        self.carried = np.zeros((C, self.nt), dtype=np.int64)
        self.blocked = np.zeros((C, self.nt), dtype=np.int64)
        self.dropped = np.zeros((C, self.nt), dtype=np.int64)
        # the open window
        self.w1 = 0.0
        self.t = np.empty(0)
        self.d = np.empty(0)
        self.k = np.empty(0, dtype=np.int64)
        self.b = 0
        self.pos: list[int] = []
        self.dall = np.empty(0)
        self.kall = np.empty(0, dtype=np.int64)
        self.etimes = np.empty(0)
        self.codes: list[int] = []
        self.ei = 0
        self.opened = False
        # sessions carried over from earlier windows (admitted, not departed by the window's end)
        self.cd = np.empty(0)
        self.cp: list[int] = []
        self.ck = np.empty(0, dtype=np.int64)
        self.now = 0.0

    # -- the calendar ------------------------------------------------------------------------------
    def advance(self, T: float) -> None:
        """Run every arrival and departure up to ``T`` (inclusive)."""
        if T < self.now:
            return
        self.now = T
        if not self.opened:
            self._open()
        while True:
            stop = int(np.searchsorted(self.etimes, T, "right"))
            if stop > self.ei:
                codes = self.codes[self.ei:stop]
                if self.C == 1:
                    if self.heaped[0]:
                        self._run_one(codes)
                    else:
                        self._run_one_scan(codes)
                else:
                    self._run_many(codes)
                self.ei = stop
            if T < self.w1:
                return
            self._close()
            self._open()

    def _open(self) -> None:
        """The next window: its arrivals (all types merged by time) and the departures due in it."""
        self.opened = True
        w0 = self.w1
        w1 = w0 + self.W
        parts = [(k, *a.take(w1)) for k, a in enumerate(self.types) if a is not None]
        if len(parts) == 1:
            k0, t, h = parts[0]
            kinds = np.full(len(t), k0, dtype=np.int64)
        elif parts:
            t = np.concatenate([p[1] for p in parts])
            h = np.concatenate([p[2] for p in parts])
            kinds = np.concatenate([np.full(len(p[1]), p[0], dtype=np.int64) for p in parts])
            order = np.argsort(t, kind="stable")
            t, h, kinds = t[order], h[order], kinds[order]
        else:
            t, h, kinds = np.empty(0), np.empty(0), np.empty(0, dtype=np.int64)
        b = len(t)
        d = t + h
        sel = np.flatnonzero(d <= w1)
        csel = np.flatnonzero(self.cd <= w1)
        etimes = np.concatenate((t, d[sel], self.cd[csel]))
        codes = np.concatenate((np.arange(b), ~sel, ~(csel + b)))
        order = np.argsort(etimes, kind="stable")  # arrivals first at a tie
        self.w1 = w1
        self.t, self.d, self.k, self.b = t, d, kinds, b
        self.etimes = etimes[order]
        self.codes = codes[order].tolist()
        self.ei = 0
        self.pos = [self.unseen] * b + self.cp
        self.dall = np.concatenate((d, self.cd))
        self.kall = np.concatenate((kinds, self.ck))

    def _count(self, n: int) -> None:
        """Count the window's first ``n`` arrivals (all processed): carried or blocked, by cluster."""
        if n == 0 or self.nt == 0:
            return
        codes = np.asarray(self.pos[:n], dtype=np.int64)
        cl = self._cl_of[codes]
        key = cl * self.nt + self.k[:n]
        blk = self._blk[codes]
        size = self.C * self.nt
        self.blocked += np.bincount(key[blk], minlength=size).reshape(self.C, self.nt)
        self.carried += np.bincount(key[~blk], minlength=size).reshape(self.C, self.nt)

    def _close(self) -> None:
        """The window is over: count its arrivals; carry the sessions still held."""
        self._count(self.b)
        parr = np.asarray(self.pos, dtype=np.int64)
        keep = (parr < self.npos) & (self.dall > self.w1)
        self.cd = self.dall[keep]
        self.cp = parr[keep].tolist()
        self.ck = self.kall[keep]

    def finish(self, T: float) -> np.ndarray:
        """Advance to the end, count the open window's arrivals; sessions held at T by (cluster, type)."""
        self.advance(T)
        n = int(np.searchsorted(self.t, T, "right"))
        self._count(n)
        held = np.zeros((self.C, self.nt), dtype=np.int64)
        if self.pos:
            parr = np.asarray(self.pos, dtype=np.int64)
            live = (parr < self.npos) & (self.dall > T)
            if live.any():
                key = self._cl_of[parr[live]] * self.nt + self.kall[live]
                held += np.bincount(key, minlength=self.C * self.nt).reshape(self.C, self.nt)
        return held

    # -- the hot loops (one Python step per arrival and per departure, nothing else) ---------------
    def _run_one(self, codes: list[int]) -> None:
        load, eff, pos = self.load, self.eff, self.pos
        cnt = self.cnt[0]
        hp = self.hp[0]
        m = self.m[0]
        cap = self.caps[0]
        blocked = self.npos  # the code "blocked in cluster 0"
        for code in codes:
            if code >= 0:  # an arrival
                if m < cap:
                    h = hp[m]
                    p = heappop(h)  # least-loaded serving position, lowest first
                    while eff[p] != m:
                        p = heappop(h)
                    eff[p] = m + 1
                    load[p] += 1
                    h = hp[m + 1]
                    heappush(h, p)
                    if len(h) > 2 * cnt[m + 1] + 32:
                        self._compact(h, m + 1)
                    cnt[m] -= 1
                    cnt[m + 1] += 1
                    if not cnt[m]:
                        m += 1
                        if m + 2 > len(cnt):
                            hp.extend([] for _ in range(len(cnt)))
                            cnt.extend([0] * len(cnt))
                    pos[code] = p
                else:
                    pos[code] = blocked
            else:  # a departure
                p = pos[~code]
                lv = load[p] - 1
                load[p] = lv
                if eff[p] >= 0:
                    eff[p] = lv
                    h = hp[lv]
                    heappush(h, p)
                    if len(h) > 2 * cnt[lv] + 32:
                        self._compact(h, lv)
                    cnt[lv + 1] -= 1
                    cnt[lv] += 1
                    if lv < m:
                        m = lv
        self.m[0] = m

    def _run_one_scan(self, codes: list[int]) -> None:
        """``_run_one`` for a small cluster: the least-loaded position by a scan, no heaps."""
        load, eff, pos = self.load, self.eff, self.pos
        cnt = self.cnt[0]
        m = self.m[0]
        cap = self.caps[0]
        blocked = self.npos
        for code in codes:
            if code >= 0:
                if m < cap:
                    p = eff.index(m)  # least-loaded serving position, lowest first (others hold -1)
                    eff[p] = m + 1
                    load[p] += 1
                    cnt[m] -= 1
                    cnt[m + 1] += 1
                    if not cnt[m]:
                        m += 1
                        if m + 2 > len(cnt):
                            self.hp[0].extend([] for _ in range(len(cnt)))
                            cnt.extend([0] * len(cnt))
                    pos[code] = p
                else:
                    pos[code] = blocked
            else:
                p = pos[~code]
                lv = load[p] - 1
                load[p] = lv
                if eff[p] >= 0:
                    eff[p] = lv
                    cnt[lv + 1] -= 1
                    cnt[lv] += 1
                    if lv < m:
                        m = lv
        self.m[0] = m

    def _compact(self, h: list[int], level: int) -> None:
        """Keep only the live entries of the heap of ``level`` (each position once); a sorted list is a heap."""
        eff = self.eff
        h[:] = sorted({p for p in h if eff[p] == level})

    def _run_many(self, codes: list[int]) -> None:
        load, eff, pos, cof = self.load, self.eff, self.pos, self.cof
        cnts, mm, caps, srv, stot, hps = self.cnt, self.m, self.caps, self.srv, self.stot, self.hp
        heaped, lo, hi = self.heaped, self.lo, self.hi
        crange = range(self.C)
        npos = self.npos
        for code in codes:
            if code >= 0:
                best = -1
                bo = 2.0
                for c in crange:
                    s = srv[c]
                    if s and mm[c] < caps[c]:
                        o = stot[c] / (s * caps[c])
                        if o < bo:
                            bo = o
                            best = c
                if best < 0:
                    pos[code] = npos  # blocked, counted against the class's first cluster
                    continue
                c = best
                m = mm[c]
                cnt = cnts[c]
                hp = hps[c]
                if heaped[c]:
                    h = hp[m]
                    p = heappop(h)
                    while eff[p] != m:
                        p = heappop(h)
                    eff[p] = m + 1
                    h = hp[m + 1]
                    heappush(h, p)
                    if len(h) > 2 * cnt[m + 1] + 32:
                        self._compact(h, m + 1)
                else:
                    p = eff.index(m, lo[c], hi[c])
                    eff[p] = m + 1
                load[p] += 1
                stot[c] += 1
                cnt[m] -= 1
                cnt[m + 1] += 1
                if not cnt[m]:
                    mm[c] = m + 1
                    if m + 3 > len(cnt):
                        hp.extend([] for _ in range(len(cnt)))
                        cnt.extend([0] * len(cnt))
                pos[code] = p
            else:
                p = pos[~code]
                lv = load[p] - 1
                load[p] = lv
                if eff[p] >= 0:
                    c = cof[p]
                    cnt = cnts[c]
                    eff[p] = lv
                    stot[c] -= 1
                    if heaped[c]:
                        h = hps[c][lv]
                        heappush(h, p)
                        if len(h) > 2 * cnt[lv] + 32:
                            self._compact(h, lv)
                    cnt[lv + 1] -= 1
                    cnt[lv] += 1
                    if lv < mm[c]:
                        mm[c] = lv

    # -- changes from outside (at the instant the pool was advanced to) ----------------------------
    def serve(self, p: int, on: bool) -> None:
        """Position ``p`` starts (on) or stops (off) taking sessions; it keeps those it holds."""
        c = self.cof[p]
        cnt = self.cnt[c]
        lv = self.load[p]
        if on == (self.eff[p] >= 0):
            return
        if on:
            self.eff[p] = lv
            if self.heaped[c]:
                h = self.hp[c][lv]
                heappush(h, p)
                if len(h) > 2 * cnt[lv] + 32:
                    self._compact(h, lv)
            cnt[lv] += 1
            self.srv[c] += 1
            self.stot[c] += lv
            if lv < self.m[c]:
                self.m[c] = lv
        else:
            self.eff[p] = -1
            cnt[lv] -= 1
            self.srv[c] -= 1
            self.stot[c] -= lv
            if lv == self.m[c] and not cnt[lv]:
                cap = self.caps[c]
                self.m[c] = next((x for x in range(lv, min(len(cnt), cap + 1)) if cnt[x]), cap)

    def drop(self, p: int) -> int:
        """Cut every session held by the (not serving) position ``p``; returns how many."""
        if self.load[p] == 0:
            return 0
        if self.eff[p] >= 0:
            raise RuntimeError(f"position {p} still serves: stop it before dropping its sessions")
        c = self.cof[p]
        parr = np.asarray(self.pos, dtype=np.int64)
        idx = np.flatnonzero((parr == p) & (self.dall > self.now))
        code = self.npos + self.C + c
        pos = self.pos
        for s in idx.tolist():
            pos[s] = code
        self.dropped[c] += np.bincount(self.kall[idx], minlength=self.nt)
        n = len(idx)
        if n != self.load[p]:
            raise RuntimeError(f"position {p} held {self.load[p]} sessions, found {n}")
        self.load[p] = 0
        return n

    def held(self, c: int) -> int:
        return sum(self.load[self.lo[c]:self.hi[c]])


# --------------------------------------------------------------------------- clusters at run time
SERVING, PENDING, SHORT = "serving", "pending", "short"


@dataclass(eq=False)
class _Member:
    """One cluster VM at run time."""

    vm: VM
    cluster: _Cluster
    home: int | None  # its position (actives; a 1:1 backup: its pair's), None for an N:K spare
    pos: int | None = None  # the position it serves or is taking over
    down: bool = False
    repairing: bool = False  # its own failure's repair (sim.faults) is under way
    # 1:1: where it may go given where its partner was when last asked (``placement_rule``): the partner's
    # host and migration target, and the two rules made from them (one use of each held)
    rule_key: tuple = ()
    rules: tuple = ()


@dataclass(eq=False)
class _Cluster:
    spec: ClusterSpec
    index: int  # in its pool
    pool: _Pool
    n: int
    members: list[_Member] = field(default_factory=list)
    pairs: list[list[_Member]] = field(default_factory=list)  # 1:1: the two VMs of each position
    spares: list[_Member] = field(default_factory=list)  # N:K: free spares, in the order they came
    state: list[str] = field(default_factory=list)
    holder: list[_Member | None] = field(default_factory=list)  # serving or taking over
    failed: list[_Member | None] = field(default_factory=list)  # whose stop took the position down
    token: list[int] = field(default_factory=list)
    serving: int = 0
    failovers: int = 0
    vm_failures: int = 0
    shortfall_s: float = 0.0
    shortfall_vm_s: float = 0.0
    since: float = 0.0

    @property
    def name(self) -> str:
        return self.spec.name

    def gp(self, p: int) -> int:
        return self.pool.lo[self.index] + p


# --------------------------------------------------------------------------- the mechanism
class Sessions(Mechanism):
    key = KEY
    Config = Config
    tables = (SESSIONS,)
    summaries = (session_metrics,)
    metrics = METRICS
    naive = True  # disabled, its phases carry out the naive behaviour

    @classmethod
    def said(cls, metrics, info):
        """Sessions offered, the share blocked, those cut by a failure and the failovers."""
        offered = metrics.get("sessions.offered", 0)
        if not offered:
            return None
        return (f"{fmt.number(offered)} sessions, {fmt.percent(metrics.get('sessions.blocking_probability', 0))} "
                f"blocked, {fmt.number(metrics.get('sessions.dropped', 0))} dropped, "
                f"{fmt.number(metrics.get('sessions.failovers', 0))} failovers")

    @classmethod
    def budget(cls, config: Config, scenario) -> list[Need]:
        """Cluster VMs count with the workloads' VMs; the expected session arrivals and VM failures
        with the event budget (docs/limits.md, docs/availability.md)."""
        duration = float(scenario.duration)
        out = []
        for i, c in enumerate(config.clusters):
            vms = 2 * c.active if c.redundancy == ONE_TO_ONE else c.active + (c.backup or 0)
            out.append(Need("vms", f"clusters.{i}.active", vms, "fewer or smaller clusters"))
            if c.vm_mtbf:
                out.append(Need("events", f"clusters.{i}.vm_mtbf", vms * duration / c.vm_mtbf,
                                "raise vm_mtbf or shorten duration"))
        out += [Need("events", f"session_types.{i}.rate", t.rate * duration, "lower the rates or shorten duration")
                for i, t in enumerate(config.session_types)]
        return out

    @classmethod
    def scale(cls, section: dict, factor: float) -> dict:
        """Active and backup VMs scale like the workloads' VMs, and the offered rates with them (the
        load per VM stays)."""
        from sim.core.units import parse_event_rate

        clusters = [dict(c, **{k: scaled(int(c[k]), factor) for k in ("active", "backup") if c.get(k) is not None})
                    for c in section.get("clusters") or []]
        types = [dict(t, rate=parse_event_rate(t["rate"]) * factor) if "rate" in t else t
                 for t in section.get("session_types") or []]
        return dict(section, clusters=clusters, session_types=types)

    def __init__(self, ctx: Context, dc: Datacenter, config: Config | None):
        super().__init__(ctx, dc, config)
        self.clusters: list[_Cluster] = []
        self.pools: dict[str, _Pool] = {}
        self._members: dict[str, _Member] = {}
        self._types: dict[str, list[SessionType]] = {}
        self.engine = None  # the live migration engine, for where a partner is moving (start)
        self.detection = ctx.scenario.infrastructure.detection

    # -- build ---------------------------------------------------------------------------------------
    def build(self, builder: Builder) -> None:
        cfg = self.config
        default_repair = self.ctx.scenario.infrastructure.repair
        for cls in CLASSES:
            specs = [(i, c) for i, c in enumerate(cfg.clusters) if c.redundancy == cls]
            types = [t for t in cfg.session_types if t.require == cls]
            self._types[cls] = types
            if not specs:
                continue
            arrivals = []
            for t in types:
                if t.rate > 0:
                    chunk = _WINDOW_ARRIVALS + 16
                    arrivals.append(_Arrivals(t.rate, t.mean_holding, self.ctx.streams.get(f"sessions/{t.name}"),
                                              self.ctx.streams.get(f"sessions/{t.name}/holding"), chunk))
                else:
                    arrivals.append(None)
            pool = _Pool([c.capacity for _, c in specs], [c.active for _, c in specs], arrivals)
            self.pools[cls] = pool
            for c_index, (i, spec) in enumerate(specs):
                cl = _Cluster(spec, c_index, pool, spec.active)
                if not self._build_cluster(builder, cl, f"mechanisms.{KEY}.clusters.{i}",
                                           spec.repair if spec.repair is not None else default_repair):
                    return
                self.clusters.append(cl)
        self.clusters.sort(key=lambda c: [s.name for s in cfg.clusters].index(c.name))

    def _build_cluster(self, builder: Builder, cl: _Cluster, path: str, repair: float) -> bool:
        spec = cl.spec
        n = spec.active
        k = 0 if not self.enabled else (n if spec.redundancy == ONE_TO_ONE else spec.backup or 0)
        v = spec.vm
        shape = VMSpec(vcpus=v.vcpus, memory=v.memory, disk=v.disk, dirty_rate=v.dirty_rate,
                       working_set=v.working_set if v.working_set is not None else v.memory, boot_time=v.boot_time)
        for j in range(n + k):
            avoid = ()
            if j >= n and spec.redundancy == ONE_TO_ONE:
                avoid = (cl.members[j - n].vm.host,)
            where = f"{path}.active" if j < n or spec.redundancy == ONE_TO_ONE else f"{path}.backup"
            vm = builder.vm(KEY, vm_name(spec.name, j, n + k), shape, spec.hosts, where, group=spec.name,
                            service=spec.name, avoid=avoid, mtbf=spec.vm_mtbf, repair=repair)
            if vm is None:
                return False  # one problem per cluster is enough
            home = j if j < n else (j - n if spec.redundancy == ONE_TO_ONE else None)
            mem = _Member(vm, cl, home)
            cl.members.append(mem)
            self._members[vm.name] = mem
        cl.state = [SERVING] * n
        cl.holder = [cl.members[p] for p in range(n)]
        cl.failed = [None] * n
        cl.token = [0] * n
        if spec.redundancy == ONE_TO_ONE and k:
            cl.pairs = [[cl.members[p], cl.members[n + p]] for p in range(n)]
        cl.spares = list(cl.members[n:]) if spec.redundancy == N_TO_K else []
        for p in range(n):
            cl.members[p].pos = p
        return True

    # -- wire and start --------------------------------------------------------------------------------
    def wire(self) -> None:
        if not self.clusters:
            return
        for name in self._members:
            self.dc.bus.subscribe(ev.VM, self._repaired, name, phase=ev.REPAIRED)
        self.ctx.samplers.append(self._sample)
        self.ctx.finalizers.append(self._finish)

    def start(self) -> None:
        self.engine = self.ctx.services.get("live_migration")
        for cl in self.clusters:
            for p in range(cl.n):
                cl.pool.serve(cl.gp(p), True)
            cl.serving = cl.n
            self.ctx.recorder.level(f"sessions/{cl.name}", "vms_serving", cl.n)

    # -- shortfall and serving -------------------------------------------------------------------------
    def _serve(self, cl: _Cluster, p: int, on: bool) -> None:
        now = self.env.now
        dt = now - cl.since
        cl.shortfall_vm_s += (cl.n - cl.serving) * dt
        if cl.serving < cl.n:
            cl.shortfall_s += dt
        cl.since = now
        cl.pool.serve(cl.gp(p), on)
        cl.serving += 1 if on else -1
        self.ctx.recorder.level(f"sessions/{cl.name}", "vms_serving", cl.serving)

    # -- failures --------------------------------------------------------------------------------------
    def vm_stopped(self, vm: VM, cause: Cause) -> None:
        """One of the cluster VMs stopped: its position stops serving, a backup may take over."""
        mem = self._members[vm.name]
        cl = mem.cluster
        cl.pool.advance(self.env.now)
        if vm.host is None:
            self._moved(mem)
        if not mem.down:
            cl.vm_failures += 1
        mem.down = True
        if self.enabled and isinstance(cause, VmCrash):
            mem.repairing = True
        p = mem.pos
        if p is not None:
            mem.pos = None
            if cl.state[p] == SERVING:
                self._lose(cl, p, mem)
            else:
                self._abort(cl, p, mem)
        elif mem in cl.spares:
            cl.spares.remove(mem)
        if not self.enabled or not mem.repairing:
            # restarted after detection + boot: in place if it kept its host (a guest crash from a
            # memory error), else elsewhere
            self.env.process(self._restart(mem, vm.epoch, self.detection))
        # else: its own failure, which sim.faults repairs (``vm up``, see _repaired)

    def _lose(self, cl: _Cluster, p: int, mem: _Member) -> None:
        """The VM serving position ``p`` stopped."""
        self._serve(cl, p, False)
        cl.failed[p] = mem
        cl.holder[p] = None
        cl.state[p] = SHORT
        cl.token[p] += 1
        if not self.enabled:
            cl.pool.drop(cl.gp(p))
            return
        if cl.spec.redundancy == ONE_TO_ONE:
            partner = next(m for m in cl.pairs[p] if m is not mem)
            if not partner.down and partner.pos is None:
                self._take(cl, p, partner)  # sessions kept: the hot backup holds their state
                return
            cl.pool.drop(cl.gp(p))
            return
        cl.pool.drop(cl.gp(p))
        if cl.spares:
            self._take(cl, p, cl.spares.pop(0))

    def _abort(self, cl: _Cluster, p: int, mem: _Member) -> None:
        """``mem``, taking over position ``p``, stopped before the takeover completed. The sessions
        are dropped (the taker held their state); an idle VM that can serve the position takes it
        over at once: the other VM of a 1:1 pair if it is back, else the first free N:K spare."""
        cl.holder[p] = None
        cl.state[p] = SHORT
        cl.token[p] += 1
        cl.pool.drop(cl.gp(p))
        if cl.spec.redundancy == ONE_TO_ONE:
            partner = next(m for m in cl.pairs[p] if m is not mem)
            if not partner.down and partner.pos is None:
                self._take(cl, p, partner)
        elif cl.spares:
            self._take(cl, p, cl.spares.pop(0))

    def _take(self, cl: _Cluster, p: int, mem: _Member) -> None:
        """``mem`` takes over position ``p`` after ``failover_time``."""
        cl.state[p] = PENDING
        cl.holder[p] = mem
        mem.pos = p
        cl.token[p] += 1
        timer = self.env.timeout(cl.spec.failover_time)
        timer.callbacks.append(partial(self._taken, cl, p, cl.token[p]))

    def _taken(self, cl: _Cluster, p: int, token: int, _event=None) -> None:
        if cl.token[p] != token or cl.state[p] != PENDING:
            return  # the taker stopped meanwhile
        cl.pool.advance(self.env.now)
        cl.state[p] = SERVING
        cl.failovers += 1
        self._serve(cl, p, True)
        failed = cl.failed[p]
        cl.failed[p] = None
        if failed is not None and failed.down:
            self.dc.settle(failed.vm, "failed_over")  # its incident closes so when it serves again
        self.ctx.recorder.trace(KEY, "failed_over", cl.holder[p].vm.name, f"position {p}")

    # -- coming back -----------------------------------------------------------------------------------
    def _repaired(self, failure) -> None:
        """``vm up`` from sim.faults: a VM's own failure is repaired (memory still on its host)."""
        mem = self._members[failure.subject]
        if not mem.repairing:
            return  # our own announcement, or a repair the restart already overtook
        mem.repairing = False
        vm = mem.vm
        if vm.host is not None:
            self._back(mem)
        else:  # its host failed during the repair: start it elsewhere (detection already passed)
            self.env.process(self._restart(mem, vm.epoch, 0.0))

    def _restart(self, mem: _Member, epoch: int, delay: float):
        """Waits ``delay`` (detection), then for a host with room (in place if it kept its host; a
        1:1 VM never on its partner's host), then the VM's boot; yields timeouts and placement waits."""
        vm = mem.vm
        yield self.env.timeout(delay)
        if vm.epoch != epoch:
            return
        host = vm.host
        if host is not None:
            self.dc.reboot(vm)
        else:
            place = self.dc.placement
            host = place.choose(vm)  # where its owner lets it go now (``rule_for``: ``placement_rule``)
            while host is None:
                yield place.wait(vm)  # ``_moved`` makes it follow its partner
                place.cancel(vm)  # a promise is given back and chosen again below
                if vm.epoch != epoch:
                    return
                host = place.choose(vm)
            self.dc.place(vm, host, BOOTING, reason="restart")
        yield self.env.timeout(vm.spec.boot_time)
        if vm.epoch != epoch:
            return
        self._back(mem)

    def placement_rule(self, vm: VM):
        """Where a VM of this mechanism may go now (every mover asks; None = its own rule). A 1:1 VM whose
        partner runs on a host: never that host nor the one the partner is migrating to, and outside
        their broadcast domains while a host there has room for it (other than the one it is on); else
        anywhere in its own rule but those hosts. Other VMs (N:K, disabled, a partner with no host): None."""
        mem = self._members.get(vm.name)
        if mem is None or mem.home is None or not mem.cluster.pairs:
            return None
        partner = next(m for m in mem.cluster.pairs[mem.home] if m is not mem)
        away = partner.vm.host
        if away is None:
            return None
        engine = self.engine
        target = engine.target_of(partner.vm) if engine is not None else None
        key = (away, target)
        place = self.dc.placement
        if mem.rule_key != key:
            own = place.rule_of(vm)
            hosts = (away,) if target is None else (away, target)
            rules = (place.without(own, domains={h.domain for h in hosts}), place.without(own, hosts=hosts))
            for old in mem.rules:
                place.release(old)
            mem.rule_key, mem.rules = key, rules
        strict, loose = mem.rules
        if len(strict) and place.choose(vm, strict, exclude=vm.host) is not None:
            return strict
        return loose

    def _moved(self, mem: _Member) -> None:
        """``mem`` left its host: its 1:1 partner, if it waits for room, waits under its owner's rule as it
        is now (``Placement.follow``: the host left may be allowed now), keeping its place in the queue."""
        cl = mem.cluster
        if mem.home is None or not cl.pairs:
            return
        partner = next(m for m in cl.pairs[mem.home] if m is not mem)
        self.dc.placement.follow(partner.vm)

    def _back(self, mem: _Member) -> None:
        """A VM runs again: it rejoins as a backup, or takes a short position."""
        vm = mem.vm
        cl = mem.cluster
        cl.pool.advance(self.env.now)
        mem.down = False
        mem.repairing = False
        self.dc.set_state(vm, RUNNING)
        self.dc.resume(vm, "restarted")
        if not self.enabled:
            p = mem.home
            mem.pos = p
            cl.holder[p] = mem
            cl.state[p] = SERVING
            cl.failed[p] = None
            self._serve(cl, p, True)
            return
        if cl.spec.redundancy == ONE_TO_ONE:
            p = mem.home
            if cl.state[p] == SHORT:
                self._take(cl, p, mem)
            return
        short = next((p for p in range(cl.n) if cl.state[p] == SHORT), None)
        if short is not None:
            self._take(cl, short, mem)
        else:
            cl.spares.append(mem)

    # -- observation -----------------------------------------------------------------------------------
    def _sample(self, now: float) -> None:
        for pool in self.pools.values():
            pool.advance(now)
        for cl in self.clusters:
            self.ctx.recorder.level(f"sessions/{cl.name}", "sessions_active", cl.pool.held(cl.index))

    def _finish(self, end: float) -> None:
        held = {cls: pool.finish(end) for cls, pool in self.pools.items()}
        rec = self.ctx.recorder
        for cl in self.clusters:
            dt = end - cl.since
            cl.shortfall_vm_s += (cl.n - cl.serving) * dt
            if cl.serving < cl.n:
                cl.shortfall_s += dt
            cl.since = end
            cls = cl.spec.redundancy
            pool = cl.pool
            c = cl.index
            rec.level(f"sessions/{cl.name}", "sessions_active", pool.held(c))
            rec.record(KEY, time_s=end, cluster=cl.name, session_type="", redundancy=cls, offered=0, carried=0,
                       blocked=0, dropped=0, active_at_end=0, failovers=cl.failovers, vm_failures=cl.vm_failures,
                       capacity_shortfall_s=cl.shortfall_s, capacity_shortfall_vm_s=cl.shortfall_vm_s)
            for k, t in enumerate(self._types.get(cls, ())):
                carried = int(pool.carried[c, k])
                blocked = int(pool.blocked[c, k])
                rec.record(KEY, time_s=end, cluster=cl.name, session_type=t.name, redundancy=cls,
                           offered=carried + blocked, carried=carried, blocked=blocked,
                           dropped=int(pool.dropped[c, k]), active_at_end=int(held[cls][c, k]), failovers=0,
                           vm_failures=0, capacity_shortfall_s=0.0, capacity_shortfall_vm_s=0.0)


__all__ = ["Sessions", "Config", "ClusterSpec", "SessionType", "SESSIONS", "session_metrics"]
