"""Live migration engine: pre-copy and post-copy, as a service other mechanisms call.

Trigger: a ``migrate`` operation, or another mechanism (memory-error evacuation,
remediation, charging) calling ``ctx.services["live_migration"].migrate(vm, target,
trigger)``, which returns a SimPy process whose value is a ``MigrationResult``.

Pre-copy (Clark et al. NSDI 2005; docs/migration.md): round 0 sends the
VM's memory M; round i sends ``min(working_set, dirty_rate x T(i-1))``, T(i-1) being
the previous round's measured duration. Before each round, if its bytes would take
<= ``downtime_target`` at the current rate (the previous round's achieved average
rate; for round 0 the bottleneck rate of the route), or it would be the
``max_rounds``-th round, or the total sent would pass ``max_factor x M``, it becomes
the stop-and-copy round: the VM is paused, those bytes plus ``device_state`` are sent,
the VM switches to the target, and ``switchover`` passes (the pause is the downtime).
Every round's bytes go through the bandwidth solver, so concurrent migrations, backups and
restores share links by max-min fairness. On a route without latency (inside a broadcast
domain, the default scope) all the rounds of a migration ride one transfer: the engine keeps
the current round's bytes left as the solver keeps a flow's, hears every change of the
transfer's rate (``on_rate``) and plans the round's end from it, so each round ends exactly
where a transfer of its own would have (docs/migration.md, "Cost"). A route with a latency
takes one transfer per round (each round pays the latency). Nothing here evaluates the
geometric series: the closed form lives in the tests.

Post-copy (Hines & Gopalan, VEE 2009): pause, send ``device_state``, switch, resume on
the target after ``switchover``, then pull the memory in one background flow (every
byte moved once). A failure of either host before the pull ends loses the VM's state:
it is stopped and handed to the stop handlers (the default recovery restarts it).

Guarantees: memory is reserved on the target synchronously, before ``migrate`` returns
(concurrent callers never take the same slot), to the end (never overcommitted); a VM is on exactly one host at every instant (``Datacenter.move`` is
atomic); at most ``max_per_host`` migrations send from or arrive at a host at once,
the rest wait in FIFO order; ``scope`` is enforced, and a VM a mechanism owns goes only
where its owner lets it (``Datacenter.rule_for``; a workload VM's explicit target is the
caller's choice); if the source or the target fails
mid-way the migration aborts cleanly (pre-copy: the VM stays on the source; a pause in
progress ends and the VM resumes there).

Records: one row of ``migrations`` per request (completed or failed), an incident for
every pause (cause ``migration``, outcome ``migrated``, downtime = the pause).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count as counter
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import simpy
from pydantic import model_validator

from sim import format as fmt
from sim.core.causes import Cause, Lost
from sim.core.errors import OperationFailed
from sim.infra import events as ev
from sim.infra.datacenter import MAINTENANCE, RUNNING, UP
from sim.infra.network import PAIR_CACHE, Endpoint
from sim.infra.solver import horizon
from sim.infra.transfer import FAIL, STALL, TransferFailed
from sim.infra.transfer import FAILED as TRANSFER_FAILED
from sim.mechanisms.base import Mechanism, MechanismConfig
from sim.metrics.meta import Metric
from sim.metrics.summary import count, stats
from sim.metrics.tables import table
from sim.scenario.schema import OperationBase
from sim.scenario.types import Duration, FieldError, NonNegFloat, PositiveInt, PositiveRate, Size

if TYPE_CHECKING:
    from sim.core.context import Context
    from sim.infra.datacenter import VM, Datacenter, Host
    from sim.metrics.summary import RunInfo, Tables

KEY = "live_migration"

MiB = 1024.0**2

COMPLETED, FAILED = "completed", "failed"


class Migrate(OperationBase):
    """``migrate`` operation: live-migrate one VM to a host."""

    refs: ClassVar[dict[str, str]] = {"vm": "vm", "to": "host"}
    kind: Literal["migrate"]
    vm: str
    to: str  # a host name


class Config(MechanismConfig):
    """``mechanisms.live_migration``; always available with these defaults."""

    mode: Literal["precopy", "postcopy"] = "precopy"  # QEMU/KVM, Xen and vMotion default to pre-copy
    # QEMU DEFAULT_MIGRATE_SET_DOWNTIME = 300 ms (migration/options.c).
    downtime_target: Duration = 0.3
    # Xen tools/libxc/xc_domain_save.c: DEF_MAX_ITERS = 29, "limit us to 30 times round loop".
    max_rounds: PositiveInt = 30
    # Xen tools/libxc/xc_domain_save.c: DEF_MAX_FACTOR = 3, "never send more than 3x".
    max_factor: NonNegFloat = 3.0
    # A choice. vCPU registers and emulated-device state are hundreds of KiB to a few MiB; a post-copy
    # pause moves only CPU and device state, tens of ms (Hines, Deshpande & Gopalan 2009).
    device_state: Size = 1 * MiB
    # A choice. Clark et al. (NSDI 2005) measured 9 ms (SPECweb99) to 40 ms (Quake 3) between
    # the last byte and the VM running on the target.
    switchover: Duration = 0.02
    bandwidth_limit: PositiveRate | None = None  # no cap (QEMU's max-bandwidth is a knob, not a default here)
    # A VM keeps its IP only inside its broadcast domain unless an overlay spans domains.
    scope: Literal["broadcast_domain", "site", "any"] = "broadcast_domain"
    # vSphere: 8 concurrent vMotions per host on 10 GbE ("Limits on Simultaneous Migrations").
    max_per_host: PositiveInt = 8

    @model_validator(mode="after")
    def _factor(self) -> Config:
        if self.max_factor <= 0:
            raise FieldError("max_factor", f"expected a number greater than zero, got {self.max_factor}")
        return self


@dataclass
class MigrationResult:
    """What a migration did. ``outcome`` is ``completed`` or ``failed`` (with ``reason``)."""

    vm: str
    source: str
    target: str
    mode: str
    trigger: str
    outcome: str = FAILED
    reason: str = ""
    requested_s: float = 0.0
    start_s: float = float("nan")  # start of round 0 (after any wait for a slot)
    end_s: float = float("nan")
    rounds: int = 0
    bytes: float = 0.0
    downtime_s: float = 0.0

    @property
    def completed(self) -> bool:
        return self.outcome == COMPLETED

    @property
    def queued_s(self) -> float:
        start = self.start_s if self.start_s == self.start_s else self.end_s
        return start - self.requested_s

    @property
    def total_time_s(self) -> float:
        if self.start_s != self.start_s:  # never started
            return 0.0
        return self.end_s - self.start_s


class _Abort(Exception):
    """Raised inside a migration when it must stop: the reason is recorded."""

    def __init__(self, reason: str, cause: Cause | None = None):
        super().__init__(reason)
        self.reason = reason
        self.cause = cause


@dataclass(eq=False)
class _Waiter:
    source: Host
    target: Host
    event: simpy.Event
    seq: int = 0  # arrival order (FIFO)
    granted: bool = False  # slots taken on the waiter's behalf (it may not have resumed yet)
    withdrawn: bool = False  # gave up waiting (left in its hosts' queues, skipped when reached)


class _Slots:
    """``max_per_host`` slots per host, and the FIFO of requests waiting for them.

    The rule (what the former scan of the whole queue did, kept exactly): a request takes
    both its hosts' slots at once; it is granted when both hosts have a free slot and no
    earlier request still waiting needs either host; grants are made in arrival order.
    So a request waits behind every earlier waiting request that shares a host with it
    (never overtaking it), and does not wait for ones that do not.

    Kept as one FIFO queue per host (the waiting requests that use it, in arrival order) and
    a global arrival number: a request may go only when it heads the queues of both its
    hosts. Only a release (a slot frees) or a departure (a head is granted or withdraws)
    changes who may go, and only at the heads of the hosts involved, so each looks at those
    heads alone, in arrival order (a heap): O(log n) per request, grant and withdrawal, so
    O(n log n) for n requests, where rescanning the queue at every event was O(n^2).
    """

    def __init__(self, limit: int, event: Callable[[], simpy.Event]):
        self.limit = limit
        self._event = event
        self.used: dict[str, int] = {}  # host name -> migrations sending from or arriving at it
        self._queues: dict[str, deque[_Waiter]] = {}  # host name -> waiting requests using it
        self._seq = counter()

    def _free(self, name: str) -> bool:
        return self.used.get(name, 0) < self.limit

    def _take(self, source: Host, target: Host) -> None:
        used = self.used
        for name in (source.name, target.name):
            used[name] = used.get(name, 0) + 1

    def _head(self, name: str) -> _Waiter | None:
        queue = self._queues.get(name)
        while queue and (queue[0].withdrawn or queue[0].granted):
            queue.popleft()
        if not queue:
            self._queues.pop(name, None)
            return None
        return queue[0]

    def request(self, source: Host, target: Host) -> _Waiter | None:
        """Take both hosts' slots now (None) or join the queue (the waiter's event fires on grant)."""
        s, t = source.name, target.name
        if self._head(s) is None and self._head(t) is None and self._free(s) and self._free(t):
            self._take(source, target)
            return None
        waiter = _Waiter(source, target, self._event(), next(self._seq))
        for name in (s, t):
            self._queues.setdefault(name, deque()).append(waiter)
        return waiter

    def release(self, source: Host, target: Host) -> None:
        used = self.used
        for name in (source.name, target.name):
            n = used.get(name, 0) - 1
            if n <= 0:
                used.pop(name, None)
            else:
                used[name] = n
        if self._queues:  # nobody waits: nothing to grant
            self._grant((source.name, target.name))

    def withdraw(self, waiter: _Waiter) -> None:
        if waiter.granted or waiter.withdrawn:
            return
        waiter.withdrawn = True
        self._grant((waiter.source.name, waiter.target.name))

    def waiting(self) -> int:
        """Requests waiting (a test and debugging aid: O(hosts with a queue))."""
        return len({id(w) for q in self._queues.values() for w in q if not (w.withdrawn or w.granted)})

    def _grant(self, names: tuple[str, ...]) -> None:
        """Grant, in arrival order, every request heading both its queues with both hosts free,
        starting from the heads of ``names`` (the only requests whose chance changed)."""
        heap: list[tuple[int, _Waiter]] = []
        for name in names:
            w = self._head(name)
            if w is not None:
                heapq.heappush(heap, (w.seq, w))
        seen = set()
        while heap:
            seq, w = heapq.heappop(heap)
            if seq in seen:
                continue
            seen.add(seq)
            s, t = w.source.name, w.target.name
            if self._head(s) is not w or self._head(t) is not w or not (self._free(s) and self._free(t)):
                continue
            self._take(w.source, w.target)
            w.granted = True
            w.event.succeed()
            for name in (s, t):
                nxt = self._head(name)
                if nxt is not None:
                    heapq.heappush(heap, (nxt.seq, nxt))


class _Bounds:
    """The planned ends of the fused pre-copy rounds of every migration, on one timer.

    A round's end is planned at ``at`` (``plan``; a later plan of the same migration makes the
    earlier one stale). The timer fires at the earliest; every end due then, up to the solver's
    rounding rule (``at <= horizon(now)``, ``sim.infra.solver.horizon``), is taken in the
    order the rounds started: what the solver does with one flow per round (its flows due at one
    instant complete in id order, ids given at each round's start), so ties between identical
    migrations resolve as they did.
    """

    def __init__(self, env: simpy.Environment):
        self.env = env
        self._heap: list[tuple[float, int, int, _Migration]] = []
        self._seq = counter()
        self._timer: simpy.Event | None = None
        self._timer_at = float("inf")

    def plan(self, run: _Migration, at: float) -> int:
        token = next(self._seq)
        heapq.heappush(self._heap, (at, run._order, token, run))
        if at < self._timer_at:
            self._arm(at)
        return token

    def _arm(self, at: float) -> None:
        now = self.env.now
        timer = self.env.timeout(at - now if at > now else 0.0)
        timer.callbacks.append(self._fire)
        self._timer = timer
        self._timer_at = at

    def _fire(self, timer: simpy.Event) -> None:
        if timer is self._timer:
            self._timer = None
            self._timer_at = float("inf")
            self.run_due()

    def run_due(self) -> None:
        """Take every round end due now, in round start order; re-arm for the next one."""
        heap = self._heap
        now = self.env.now
        until = horizon(now)
        due = []
        while heap and heap[0][0] <= until:
            at, order, token, run = heapq.heappop(heap)
            if run._token == token:
                due.append((order, token, run))
        if len(due) > 1:
            due.sort()
        for _, token, run in due:
            if run._token == token:
                run._boundary()
        while heap and heap[0][3]._token != heap[0][2]:
            heapq.heappop(heap)  # stale: re-planned since, or ended
        if heap:
            at = heap[0][0]
            if at != self._timer_at:
                self._arm(at)
        elif self._timer is not None:
            self._timer = None
            self._timer_at = float("inf")


MIGRATIONS = table(
    "migrations",
    "time_s", "vm:str", "source:str", "target:str", "mode:str", "trigger:str",
    "memory_bytes", "dirty_rate_bytes_per_s", "rounds:i8", "bytes", "queued_s", "total_time_s",
    "downtime_s", "end_s", "outcome:str", "reason:str",
)


def migration_metrics(t: Tables, info: RunInfo) -> dict[str, float]:
    """``migration.*``: ``count`` completed migrations, ``failed`` failed requests; times,
    downtimes and rounds over completed ones; ``bytes_total`` every byte sent, aborted flows too."""
    m = t["migrations"]
    done = m[m["outcome"] == "completed"]
    out: dict[str, float] = {
        "migration.count": count(done),
        "migration.failed": count(m, m["outcome"] == "failed"),
        "migration.bytes_total": float(m["bytes"].sum()),
    }
    out.update(stats("migration.total_time_s", done["total_time_s"]))
    out.update(stats("migration.downtime_s", done["downtime_s"]))
    if len(done):
        out["migration.rounds_mean"] = float(done["rounds"].mean())
    return out


# Every metric ``migration_metrics`` can produce (units: sim.metrics.meta).
METRICS = (
    Metric("migration.count", "count", "live migrations completed"),
    Metric("migration.failed", "count", "live migration requests that failed or were refused", False),
    Metric("migration.bytes_total", "bytes", "bytes sent by live migrations, aborted ones included", False),
    Metric("migration.total_time_s_*", "s", "time from request to completion of one live migration", False),
    Metric("migration.downtime_s_*", "s", "stop-and-copy pause of one live migration", False, headline=True),
    Metric("migration.rounds_mean", "1", "pre-copy rounds per completed live migration (mean)"),
)



class LiveMigration(Mechanism):
    """The engine, offered as ``ctx.services["live_migration"]``."""

    key = KEY
    Config = Config
    tables = (MIGRATIONS,)
    summaries = (migration_metrics,)
    metrics = METRICS
    operations = {"migrate": Migrate}
    offers = (KEY,)
    always_on = True

    @classmethod
    def said(cls, metrics, info):
        """Migrations completed, their pause (mean and longest), the bytes sent, the failed ones."""
        n = metrics.get("migration.count", 0)
        failed = metrics.get("migration.failed", 0)
        if not n and not failed:
            return None
        text = f"{fmt.number(n)} migration{'s' if n != 1 else ''}"
        if "migration.downtime_s_mean" in metrics:
            text += (f", pause {fmt.duration(metrics['migration.downtime_s_mean'])} mean"
                     f" / {fmt.duration(metrics['migration.downtime_s_max'])} max")
        text += f", {fmt.size(metrics.get('migration.bytes_total', 0))} sent"
        return text + (f", {fmt.number(failed)} failed" if failed else "")

    def __init__(self, ctx: Context, dc: Datacenter, config: Config | None):
        super().__init__(ctx, dc, config)
        self._slots = _Slots(self.config.max_per_host, self.env.event)  # always on: config is set
        self._moving: dict[str, _Migration] = {}  # VM name -> its migration in flight
        self._nics: dict[str, Endpoint] = {}  # host name -> its NIC endpoint (built once per host)
        self._bounds = _Bounds(self.env)  # planned ends of fused pre-copy rounds
        self._order = counter()  # round starts, in order (ties at a boundary go in this order)
        self._paths: dict[tuple[str, str], object] = {}  # host pair -> its transfer path (``Transfers.path``)

    def in_scope(self, source: Host, target: Host, scope: str | None = None) -> bool:
        """Whether a VM on ``source`` may live-migrate to ``target`` (keeps its IP): both in one group
        (``scope_of``)."""
        return self.scope_of(source, scope) is self.scope_of(target, scope)

    def scope_of(self, host: Host, scope: str | None = None):
        """The group ``host`` shares with the hosts its VMs may live-migrate to (``in_scope``): its
        broadcast domain, its site, or None (``any``: one group)."""
        scope = scope or self.config.scope
        return host.domain if scope == "broadcast_domain" else host.site if scope == "site" else None

    def target_of(self, vm: VM) -> Host | None:
        """The host ``vm`` is migrating to (memory held there), or None. An owner keeping two VMs
        apart keeps each off the other's target too (``Mechanism.placement_rule``)."""
        run = self._moving.get(vm.name)
        return run.target if run is not None else None

    def migrate(self, vm: VM, target: Host, trigger: str = "operation", *, mechanism: str | None = None,
                scope: str | None = None, mode: str | None = None) -> simpy.Process:
        """Start migrating ``vm`` to ``target``; the process's value is a ``MigrationResult``.

        ``mechanism`` names the mechanism on whose behalf it runs (incidents), ``scope``
        overrides ``live_migration.scope`` (charging, replica nodes), ``mode`` the mode.
        The request is refused or the target memory reserved before this returns, so
        concurrent callers never take the same slot.
        """
        run = _Migration(self, vm, target, trigger, mechanism or KEY, scope, mode or self.config.mode)
        reason = run.refuse()
        if not reason:
            run.hold()
        proc = self.env.process(run.run(reason))
        if not reason:
            run.watch(proc)
        return proc

    # -- the migrate operation ------------------------------------------------------------------
    def carry_out(self, op):
        """Carries out ``{kind: migrate, vm, to}``; fails the operation when the migration fails."""
        vm = self.dc.vms[op.vm]
        target = self.dc.hosts[op.to]
        result = yield self.migrate(vm, target, "operation")
        if not result.completed:
            raise OperationFailed(result.reason)
        return (f"{result.source} -> {result.target}: {result.rounds} rounds, "
                f"{result.total_time_s:.3f} s, downtime {result.downtime_s:.3f} s")

    # -- per-host concurrency (max_per_host), FIFO (``_Slots`` states the rule) -------------------
    def release(self, source: Host, target: Host) -> None:
        self._slots.release(source, target)

    def _request(self, source: Host, target: Host) -> _Waiter | None:
        """Take both hosts' slots now (None) or join the queue (the waiter's event fires on grant)."""
        return self._slots.request(source, target)

    def _withdraw(self, waiter: _Waiter) -> None:
        self._slots.withdraw(waiter)

    # -- flows --------------------------------------------------------------------------------
    def route_rate(self, source: Host, target: Host) -> float:
        """Bottleneck capacity of the NIC-to-NIC route (capped by ``bandwidth_limit``): round 0's rate.
        The network's ``bottleneck`` (the smallest current capacity on the route), over the route
        the engine keeps per host pair (``_route``)."""
        rate = self.dc.network.bottleneck_of(self._route(source, target)[0])
        cap = self.config.bandwidth_limit
        return min(rate, cap) if cap is not None else rate

    def start_flow(self, source: Host, target: Host, size: float, tag: str):
        """A memory copy: fails if either host fails, stalls while a link on its path is down."""
        return self.dc.transfers.start(self.nic(source), self.nic(target), size, cap=self.config.bandwidth_limit,
                                       tag=tag, on_host=FAIL, on_link=STALL, path=self._path(source, target))

    def fusable(self, source: Host, target: Host) -> bool:
        """Whether the pre-copy rounds from ``source`` to ``target`` go in one transfer: the route has
        no latency (a round pays it, so with one it takes a transfer of its own)."""
        return self._route(source, target)[1] == 0.0

    def _route(self, source: Host, target: Host) -> tuple[tuple[int, ...], float]:
        """The network's route between the two hosts' NICs (resources, latency): its transfer path's."""
        return self._path(source, target).route

    def _path(self, source: Host, target: Host) -> Any:
        """The transfer path between the two hosts' NICs (``Transfers.path``), kept per host pair: a
        route never changes during a run (a failed link changes capacities, not routes), and the
        pair's names are cheaper keys than the two endpoints."""
        key = (source.name, target.name)
        hit = self._paths.get(key)
        if hit is None:
            if len(self._paths) >= PAIR_CACHE:
                self._paths.clear()  # bounded like the transfers' own path cache
            hit = self._paths[key] = self.dc.transfers.path(self.nic(source), self.nic(target))
        return hit

    def nic(self, host: Host) -> Endpoint:
        """``host``'s NIC endpoint, built once per host (every round of every migration needs two)."""
        e = self._nics.get(host.name)
        if e is None:
            e = self._nics[host.name] = Endpoint.nic(host.name)
        return e


class _Migration:
    """One migration from request to end; every exit path goes through ``_finish``."""

    __slots__ = ("engine", "env", "dc", "ctx", "cfg", "vm", "source", "target", "mechanism", "scope", "mode",
                 "result", "reserved_target", "reserved_source", "slots", "waiter", "flow", "_fused", "_at",
                 "_left", "_mark", "_between", "_token", "_end", "_final", "watching", "paused_at", "pulling",
                 "epoch", "proc", "flagged", "_i", "_sent", "_rate", "_wake", "_to_send", "_t0", "_order")

    def __init__(self, engine: Mechanism, vm: VM, target: Host, trigger: str, mechanism: str,
                 scope: str | None, mode: str):
        self.engine = engine
        self.env = engine.env
        self.dc = engine.dc
        self.ctx = engine.ctx
        self.cfg: Config = engine.config
        self.vm = vm
        self.source: Host | None = vm.host
        self.target = target
        self.mechanism = mechanism
        self.scope = scope
        self.mode = mode
        self.result = MigrationResult(vm.name, vm.host.name if vm.host else "", target.name, mode, trigger,
                                      requested_s=self.env.now)
        self.reserved_target = 0.0
        self.reserved_source = 0.0  # post-copy: the source holds the pages until the pull ends
        self.slots = False
        self.waiter: _Waiter | None = None
        self.flow = None
        # the fused rounds (``_rounds_fused``): ``flow`` carries every round; its rate as the solver
        # last gave it, the current round's bytes left at ``_mark``, its planned end in
        # ``engine._bounds`` (token -1: none), whether it is the stop-and-copy round
        self._fused = False
        self._at = 0.0
        self._left = 0.0
        self._mark = 0.0
        self._between = True
        self._token = -1
        self._end = 0.0
        self._final = False
        self.watching = None
        self.paused_at: float | None = None
        self.pulling = False
        self.epoch = vm.epoch
        self.proc: simpy.Process | None = None
        self.flagged = False  # this request set vm.migrating

    # -- refusal ---------------------------------------------------------------------------------
    def refuse(self) -> str:
        vm, source, target = self.vm, self.source, self.target
        if not self.engine.enabled:
            return "live migration is disabled"
        if source is None or vm.state != RUNNING:
            return f"{vm.name} is not running"
        if vm.migrating:
            return f"{vm.name} is already migrating"
        if target is source:
            return f"{vm.name} is already on {target.name}"
        if source.state not in (UP, MAINTENANCE):
            return f"source {source.name} is {source.state}"
        if target.state != UP:
            return f"target {target.name} is {target.state}"
        if not self.engine.in_scope(source, target, self.scope):
            return f"{target.name} is outside the {self.scope or self.cfg.scope} scope of {source.name}"
        if target.free_memory < vm.spec.memory - 1e-6:
            return f"target {target.name} has no room ({target.free_memory:.0f} B free)"
        if vm.owner is not None and target not in self.dc.rule_for(vm):
            # A mechanism's VM goes only where its owner lets it (a copy never joins another copy).
            return f"{target.name} is not a host {vm.owner} lets {vm.name} use now"
        return ""

    # -- the process ------------------------------------------------------------------------------
    def hold(self) -> None:
        """Reserve the target's memory and flag the VM, synchronously (before ``migrate`` returns)."""
        vm = self.vm
        self.dc.reserve(self.target, vm.spec.memory)
        self.reserved_target = vm.spec.memory
        vm.migrating = self.flagged = True
        self.engine._moving[vm.name] = self

    def watch(self, proc: simpy.Process) -> None:
        """Interrupt ``proc`` when the source, the target or the VM fails (a guest crash ends it at once)."""
        self.proc = proc
        self.watching = self.dc.bus.watch(proc, ((ev.HOST, self.source.name), (ev.HOST, self.target.name),
                                                 (ev.VM, self.vm.name)))

    def run(self, refused: str):
        """Waits for slots, then rounds of flows, pause, switchover; yields flow and timeout events."""
        if refused:
            return self._finish(FAILED, refused)
        vm, source, target = self.vm, self.source, self.target
        try:
            self.waiter = self.engine._request(source, target)
            if self.waiter is not None:
                yield self.waiter.event
                self.waiter = None
            self.slots = True
            self._check()
            self.result.start_s = self.env.now
            if source.site is not target.site:
                # VM disks live on site storage: a cross-site move carries the disk (one pass, writes mirrored).
                yield from self._send(vm.spec.disk, "disk")
            if self.mode == "postcopy":
                yield from self._postcopy()
            else:
                yield from self._precopy()
        except simpy.Interrupt as irq:
            return self._abort(irq.cause)
        except _Abort as exc:
            return self._abort(exc.cause, exc.reason)
        return self._finish(COMPLETED, "")

    def _last(self, to_send: float, rate: float, i: int, sent: float) -> bool:
        """Whether round ``i`` of ``to_send`` bytes, after ``sent`` bytes, is the stop-and-copy round."""
        cfg = self.cfg
        return (to_send <= rate * cfg.downtime_target or i == cfg.max_rounds - 1
                or sent + to_send > cfg.max_factor * self.vm.spec.memory)

    def _precopy(self):
        cfg, vm = self.cfg, self.vm
        memory = vm.spec.memory
        rate = self.engine.route_rate(self.source, self.target)
        fused = False
        if self._last(memory, rate, 0, 0.0):
            i, to_send = 0, memory
        elif self.engine.fusable(self.source, self.target):
            fused = True
            i, to_send = yield from self._rounds_fused(rate)
        else:
            i, to_send = yield from self._rounds(rate)
        # Stop-and-copy: round i (it counts as a round even when it carries no memory).
        self._pause()
        self.result.rounds = i + 1
        if fused:
            yield from self._last_fused(to_send + cfg.device_state)
        else:
            yield from self._send(to_send + cfg.device_state, f"round {i} (stop-and-copy)")
        self._switch()
        yield self.env.timeout(cfg.switchover)
        self._resume()

    def _rounds(self, rate: float):
        """The pre-copy rounds before stop-and-copy, one transfer each (a route with a latency, paid
        per round); returns (i, bytes) of the stop-and-copy round."""
        to_send = self.vm.spec.memory
        sent = 0.0
        i = 0
        while not self._last(to_send, rate, i, sent):
            t0 = self.env.now
            yield from self._send(to_send, f"round {i}")
            duration = self.env.now - t0
            sent += to_send
            self._check()
            rate, to_send = self._next_round(to_send, duration, rate)
            i += 1
            self.result.rounds = i
        return i, to_send

    def _next_round(self, to_send: float, duration: float, rate: float) -> tuple[float, float]:
        """After a round of ``to_send`` bytes that took ``duration`` s: the rate it measured (``rate``
        kept if it took no time) and the next round's bytes (those dirtied meanwhile, at most W)."""
        if duration > 0:
            rate = to_send / duration
        spec = self.vm.spec
        return rate, min(spec.working_set, spec.dirty_rate * duration)

    def _rounds_fused(self, rate: float):
        """The same rounds carried by one transfer (a route without latency, so a round's end and the
        next one's start leave the sharing as it was). The bytes a round has left are kept as the
        solver keeps a flow's: at each new rate the solver gives the transfer (``on_rate``), the
        bytes sent at the old rate since the last change come off (``_left``, ``_mark``) and the
        round's end is planned again at ``_mark + _left / rate``, so every boundary falls where a
        transfer of the round's own bytes would have ended. Each boundary makes the per-round
        decision (``_boundary``); the process wakes once, when the next round is the stop-and-copy
        round, and gets (i, bytes) of it."""
        cfg, vm = self.cfg, self.vm
        memory = vm.spec.memory
        self._i = 0
        self._sent = 0.0
        self._rate = rate
        self._wake = self.env.event()
        self._start_round(memory)
        # never completes: the rounds before stop-and-copy send at most max_factor x M, the
        # stop-and-copy round at most W + device state
        self._fused = True  # (its first rate may be told inside ``start``, with a solver that does not batch)
        self.flow = flow = self.dc.transfers.start(
            self.engine.nic(self.source), self.engine.nic(self.target),
            (cfg.max_factor + 1.0) * memory + vm.spec.working_set + cfg.device_state, cap=cfg.bandwidth_limit,
            tag=f"migration {vm.name} pre-copy", on_host=FAIL, on_link=STALL, on_end=self._fused_end,
            on_rate=self._fused_rate, path=self.engine._path(self.source, self.target))
        if not flow.live:  # an endpoint already down
            self._fused_end(flow)
        return (yield from self._wait_fused())

    def _start_round(self, size: float) -> None:
        """A round of ``size`` bytes starts now on the fused transfer (planned at its current rate)."""
        now = self.env.now
        self._to_send = self._left = size
        self._t0 = self._mark = now
        self._order = next(self.engine._order)  # ties between round ends go in this order (``_Bounds``)
        self._between = False
        self._plan()

    def _last_fused(self, size: float):
        """The stop-and-copy round's ``size`` bytes, on the pre-copy rounds' transfer; then it ends."""
        if size > 0:
            self._final = True
            self._wake = self.env.event()
            self._start_round(size)
            yield from self._wait_fused()
        flow, self.flow = self.flow, None
        self._fused = False
        flow.abort()  # its bytes are counted round by round (exactly the rounds' sizes)

    def _wait_fused(self):
        """Wait for ``_wake``; a failure of the transfer ends the migration as a round's failure would."""
        try:
            return (yield self._wake)
        except TransferFailed as exc:
            self.result.bytes += self._partial()
            self.flow = None
            self._fused = False
            raise _Abort(f"transfer failed: {exc}", exc.cause) from None

    def _partial(self) -> float:
        """Bytes of the current round sent so far (a transfer of its own would report them)."""
        if self._between:
            return 0.0
        left = self._left - self._at * (self.env.now - self._mark)
        return self._to_send - (left if left > 0.0 else 0.0)

    def _fused_rate(self, flow, rate: float) -> None:
        """The solver re-rated the fused transfer: bytes sent at the old rate come off, and the end of
        the current round is planned again."""
        if not self._fused:
            return  # the migration has left it (a transfer tells no rate after its abort anyway)
        now = self.env.now
        if self._token >= 0 and self._end <= horizon(now):
            # the round's last byte arrives now: it ends first (as a round's transfer completes
            # before a change at the same instant), and the next round starts at the new rate
            self._at = rate
            self.engine._bounds.run_due()
            return
        self._left -= self._at * (now - self._mark)
        self._mark = now
        self._at = rate
        if not self._between:
            self._plan()

    def _plan(self) -> None:
        """Plan the current round's end at the transfer's current rate (none at rate 0)."""
        rate = self._at
        if rate <= 0.0:
            self._token = -1
            return
        left = self._left
        self._end = at = self._mark + left / rate if left > 0.0 else self._mark
        self._token = self.engine._bounds.plan(self, at)

    def _boundary(self) -> None:
        """Round i's last byte: the per-round loop's step (``_rounds``), without a new transfer."""
        self._token = -1
        if not self._fused:
            return
        now = self.env.now
        to_send = self._to_send
        duration = now - self._t0
        self._sent += to_send
        self.result.bytes += to_send
        self._between = True  # until the next round starts
        self._mark = now
        self._left = 0.0
        if self._final:
            self._wake.succeed()
            return
        if self.vm.epoch != self.epoch:
            self._wake.fail(_Abort(f"{self.vm.name} stopped during migration"))
            return
        self._rate, to_send = self._next_round(to_send, duration, self._rate)
        i = self._i = self._i + 1
        self.result.rounds = i
        if self._last(to_send, self._rate, i, self._sent):
            self._wake.succeed((i, to_send))
            return
        self._start_round(to_send)

    def _fused_end(self, flow) -> None:
        """The fused transfer failed (a host): the process gets it as a round's failure would."""
        if flow is self.flow and flow.outcome == TRANSFER_FAILED and not self._wake.triggered:
            self._token = -1
            self._wake.fail(TransferFailed(flow, flow.cause))

    def _postcopy(self):
        cfg, vm = self.cfg, self.vm
        self._pause()
        yield from self._send(cfg.device_state, "device state")
        self._switch()
        yield self.env.timeout(cfg.switchover)
        self._resume()
        self.result.rounds = 1
        yield from self._send(vm.spec.memory, "post-copy pull")  # background: every page once
        self._end_pull()

    # -- steps -------------------------------------------------------------------------------------
    def _send(self, size: float, what: str):
        """One transfer of ``size`` bytes from the source NIC to the target NIC; waits for its last byte."""
        if size <= 0:
            return
        self.flow = self.engine.start_flow(self.source, self.target, size, f"migration {self.vm.name} {what}")
        try:
            yield self.flow.done
        except TransferFailed as exc:
            self.result.bytes += self.flow.sent()
            self.flow = None
            raise _Abort(f"transfer failed: {exc}", exc.cause) from None
        self.flow = None
        self.result.bytes += size

    def _check(self) -> None:
        """Gives up when the VM was stopped by something else while its memory was in flight."""
        if self.vm.epoch != self.epoch:
            raise _Abort(f"{self.vm.name} stopped during migration")

    def _pause(self) -> None:
        self._check()
        self.paused_at = self.env.now
        self.dc.pause(self.vm, self.mechanism)

    def _switch(self) -> None:
        """The VM moves to the target (atomically). Pre-copy: all its state is there, so the source
        no longer matters. Post-copy: its memory stays on the source until pulled; the source keeps
        the pages reserved, and a failure of either host loses the VM."""
        self.dc.move(self.vm, self.target, self.reserved_target)
        self.reserved_target = 0.0
        if self.mode == "postcopy":
            self.dc.reserve(self.source, self.vm.spec.memory)
            self.reserved_source = self.vm.spec.memory
            self.pulling = True
            self.dc.depend(self.vm, self.source)
        elif self.watching is not None:
            self.watching.drop(ev.HOST, self.source.name)

    def _resume(self) -> None:
        self.dc.set_state(self.vm, RUNNING)
        self.dc.resume(self.vm, "migrated")
        self.result.downtime_s = self.env.now - self.paused_at
        self.paused_at = None

    def _end_pull(self) -> None:
        if self.reserved_source:
            self.dc.unreserve(self.source, self.reserved_source)
            self.reserved_source = 0.0
        if self.pulling:
            self.pulling = False
            self.dc.undepend(self.vm, self.source)

    # -- ends ---------------------------------------------------------------------------------------
    def _abort(self, cause: Cause | None, reason: str = ""):
        """Undo what is held, synchronously (no yield: a second interrupt must find us finished)."""
        vm, target = self.vm, self.target
        self._token = -1
        if self.flow is not None:
            if self._fused:
                self.result.bytes += self._partial()
                self.flow.abort()
                self._fused = False
            else:
                self.result.bytes += self.flow.abort()
            self.flow = None
        if self.waiter is not None:
            if self.waiter.granted:
                self.slots = True  # granted in the same instant it was interrupted: give them back
            else:
                self.engine._withdraw(self.waiter)
            self.waiter = None
        if not reason:
            if getattr(cause, "host", ""):
                reason = f"{cause.host} failed"
            elif getattr(cause, "vm", ""):
                reason = f"{cause.vm} crashed"
            else:
                reason = f"interrupted ({cause!r})"
        if self.pulling:
            # Post-copy: part of the memory is still on the source; the VM's state is lost.
            self._end_pull()
            if vm.host is target and vm.epoch == self.epoch:
                self.dc.stop_vm(vm, cause if cause is not None else Lost(self.env.now, vm.name))
            reason = f"VM lost: {reason} during the post-copy pull"
        if self.paused_at is not None:
            if vm.epoch == self.epoch and vm.host is not None:
                # Pre-copy, the target failed: the pause ends and the VM runs on where it is.
                self.dc.set_state(vm, RUNNING)
                self.dc.resume(vm, "resumed")
            # else the failure stopped the VM during its pause: the datacenter carries the pause's
            # incident on as the failure's outage (one continuous outage; its restart closes it)
            self.result.downtime_s = self.env.now - self.paused_at
            self.paused_at = None
        return self._finish(FAILED, reason)

    def _finish(self, outcome: str, reason: str) -> MigrationResult:
        r = self.result
        vm = self.vm
        if self.reserved_target:
            self.dc.unreserve(self.target, self.reserved_target)
            self.reserved_target = 0.0
        self._end_pull()
        if self.slots:
            self.slots = False
            self.engine.release(self.source, self.target)
        if self.watching is not None:
            self.watching.cancel()
            self.watching = None
        if self.flagged and (outcome == COMPLETED or vm.epoch == self.epoch):
            vm.migrating = False  # a restarted VM may be migrating again under another request
        if self.engine._moving.get(vm.name) is self:
            del self.engine._moving[vm.name]
        r.outcome = outcome
        r.reason = reason
        r.end_s = self.env.now
        self.ctx.recorder.record(
            "migrations", time_s=r.requested_s, vm=r.vm, source=r.source, target=r.target, mode=r.mode,
            trigger=r.trigger, memory_bytes=vm.spec.memory, dirty_rate_bytes_per_s=vm.spec.dirty_rate,
            rounds=r.rounds, bytes=r.bytes, queued_s=r.queued_s, total_time_s=r.total_time_s,
            downtime_s=r.downtime_s, end_s=r.end_s, outcome=outcome, reason=reason,
        )
        self.ctx.recorder.trace(KEY, f"migration_{outcome}", vm.name, reason)
        return r
