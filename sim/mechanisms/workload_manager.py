"""mechanisms.workload_manager: backup policies per workload, a catalog of point-in-time copies,
and the ``instantiate``, ``restore`` and ``migrate_workload`` operations.

Model (docs/data_protection.md, "workload_manager"):

- A policy backs up its workloads' VMs, VM by VM, to a storage target: a full backup every
  ``full_every`` (the first at t = 0) and an incremental every ``incremental_every`` in between
  (a firing that falls on a full's time is the full). Each scheduled run is one
  ``sim.core.schedule.every`` firing; it queues one job per VM.
- A job is a transfer from the disk of the host that runs the VM (``Endpoint.disk(host)``, read at
  that disk's read rate) to the storage target: at most ``max_concurrent`` run at once per target,
  sharing its write rate through the fluid model; the rest wait in policy order (then the order
  they were queued). A full moves the VM's disk; an incremental moves ``change_rate`` x disk per
  day since the VM's previous point (at most the disk).
- A storage outage, a crash of the source host or a disk failure there fails a running backup:
  no point is recorded and the job waits until the storage serves again and the VM runs again,
  then queues again (a new attempt, a new point time). A link failure stalls it.
- A point's ``time_s`` is its backup's start (the data as of then); it is restorable from its
  backup's end. Incrementals chain back to their full through every point in between.
  ``retention: N`` keeps each VM's newest N points and every point their chains need.
- At every stop of a VM of a workload a policy names (the ``vm`` topic's ``down``), the RPO is
  the age of the VM's newest restorable point (its time since time 0 when it has none).

Cost: two schedule timeouts per policy firing, then per VM job one transfer (its flow's start and
end in the solver) and O(1) bookkeeping: a VM's job is made once and keeps its transfer path, its
points and its ``on_end``, and its rows are appended as tuples (``Recorder.appender``); one
callback per VM stop.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import Field

from sim.core.errors import OperationFailed, Problem
from sim.core.schedule import every
from sim.infra import events as ev
from sim.infra.datacenter import DOWN
from sim.infra.network import Endpoint
from sim.infra.transfer import FAIL, STALL
from sim.mechanisms.base import Mechanism, MechanismConfig, Need, with_first_storage
from sim.metrics.meta import Metric
from sim.metrics.summary import count, stats
from sim.metrics.tables import table
from sim.scenario.schema import Instantiate, MigrateWorkload, Model, Restore
from sim.scenario.types import Duration, Fraction, PositiveDuration, PositiveInt
from sim.scenario.validate import Namespaces, expected_name

if TYPE_CHECKING:
    import pandas as pd

    from sim.infra.datacenter import VM
    from sim.infra.transfer import Transfer
    from sim.metrics.summary import RunInfo

KEY = "workload_manager"
DAY = 86400.0
FULL, INCREMENTAL = "full", "incremental"
COMPLETED, FAILED = "completed", "failed"


class Policy(Model):
    """One backup policy: which workloads, how often, how many points kept, how fast disks change."""

    workloads: tuple[str, ...] = Field(min_length=1)
    full_every: PositiveDuration = 7 * DAY  # weekly fulls, the common GFS default (Veeam, Commvault)
    incremental_every: PositiveDuration = DAY  # daily incrementals (ibid.)
    retention: PositiveInt = 14  # points kept per VM: two weeks of dailies (dcsim's choice; docs/data_protection.md)
    # daily change of a VM disk: 5 % (Veeam's sizing guideline uses 5-10 % daily change)
    change_rate: Fraction = 0.05
    storage: str | None = None  # None: the mechanism's ``storage``


class Config(MechanismConfig):
    storage: str | None = None  # None: the scenario's first storage system
    # backup streams at once per storage target (a repository's concurrent-task limit, as in Veeam's
    # "Limit maximum concurrent tasks"); 16 for a large target is dcsim's choice (docs/data_protection.md)
    max_concurrent: PositiveInt = 16
    # time to create the VMs and networks of a realised point before data moves: 60 s (VM start
    # times of 30-100 s for Linux, Mao & Humphrey, IEEE CLOUD 2012)
    provisioning_time: Duration = 60.0
    policies: tuple[Policy, ...] = ()

    def check_references(self, scenario, path: str) -> list[Problem]:
        names = Namespaces(scenario)
        out: list[Problem] = []
        if self.storage is not None and self.storage not in names.storage:
            out.append(Problem(f"{path}.storage", expected_name("storage system", names.storage, self.storage)))
        for i, p in enumerate(self.policies):
            at = f"{path}.policies.{i}"
            for j, w in enumerate(p.workloads):
                if w not in names.workloads:
                    out.append(Problem(f"{at}.workloads.{j}", expected_name("workload", names.workloads, w)))
            if p.storage is not None and p.storage not in names.storage:
                out.append(Problem(f"{at}.storage", expected_name("storage system", names.storage, p.storage)))
            if p.storage is None and self.storage is None:
                out.append(Problem(f"{at}.storage", "expected a storage system to back up to (the scenario "
                                                    "defines none; add one under infrastructure.storage), got none"))
            if p.incremental_every > p.full_every:
                out.append(Problem(f"{at}.incremental_every",
                                   f"expected at most full_every ({p.full_every:g} s), got {p.incremental_every:g} s"))
        return out


BACKUPS = table("backups", "time_s", "vm:str", "workload:str", "policy:i8", "kind:str", "run_s", "bytes",
                "end_s", "duration_s", "storage:str", "host:str", "outcome:str", "cause:str")
CATALOG = table("catalog", "time_s", "vm:str", "workload:str", "kind:str", "run_s", "bytes", "end_s",
                "location:str", "full_s", "parent_s", "kept:bool", "expired_s")
RESTORES = table("restores", "time_s", "op:i8", "kind:str", "workload:str", "vm:str", "point_s", "bytes",
                 "storage:str", "site:str", "host:str", "provisioning_s", "end_s", "duration_s", "outcome:str",
                 "usable_bytes", "usable_end_s")
RPO = table("backup_rpo", "time_s", "vm:str", "workload:str", "point_s", "rpo_s")


def workload_manager_metrics(t: dict[str, pd.DataFrame], info: RunInfo) -> dict[str, float]:
    b, c, r, rpo = t["backups"], t["catalog"], t["restores"], t["backup_rpo"]
    kept = c[c["kept"].astype(bool)] if len(c) else c
    ok = b[b["outcome"] == COMPLETED] if len(b) else b
    out: dict[str, float] = {
        "catalog.points": count(kept),
        "catalog.bytes": float(kept["bytes"].sum()) if len(kept) else 0.0,
        "backup.count": count(ok),
        "backup.failed": count(b, b["outcome"] == FAILED) if len(b) else 0,
        "backup.bytes_total": float(ok["bytes"].sum()) if len(ok) else 0.0,
    }
    out.update(stats("backup.duration_s", ok["duration_s"] if len(ok) else []))
    out.update(stats("backup.rpo_s", rpo["rpo_s"] if len(rpo) else []))
    for kind in ("restore", "instantiate", "migrate_workload"):
        rows = r[(r["kind"] == kind) & (r["outcome"] == COMPLETED)] if len(r) else r
        per_op = rows.groupby("op")["end_s"].max() - rows.groupby("op")["time_s"].min() if len(rows) else []
        out.update(stats(f"{kind}.time_s", per_op))
    return out


_new_pt = tuple.__new__


class Pt(NamedTuple):
    """One point in time of one VM. A tuple of numbers and strings: the chain is kept as times
    (``full_s``, ``parent_s``), not references, so the garbage collector stops tracking a point
    (a year of the fleet's database tier keeps ~20,000 and makes 365,000)."""

    time_s: float
    vm: str
    workload: str
    kind: str
    run_s: float
    bytes: float
    end_s: float
    location: str
    full_s: float  # the time of the full it chains back to (its own for a full)
    parent_s: float  # the time of the point it is an increment on (NaN for a full)
    full_bytes: float  # its full's bytes: the VM's disk

    @property
    def restore_bytes(self) -> float:
        """Bytes a restore of this point moves: the VM's disk (its full's bytes), each block once in
        its newest version."""
        return self.full_bytes


@dataclass(slots=True)
class Job:
    """A VM's backup job: one per VM for the whole run, reused by each scheduled run that queues it
    (nothing allocated per backup for the garbage collector to follow)."""

    vm: VM
    policy: int
    kind: str
    run_s: float
    storage: str
    seq: int
    transfer: Transfer | None = None
    host: str = ""
    bytes: float = 0.0
    tag: tuple[str, str] = ("", "")  # its transfers' tag, ("backup", VM name): made once per VM
    points: deque = field(default_factory=deque)  # the VM's points (``WorkloadManager.points[vm]``)
    disk: float = 0.0  # the VM's disk, bytes
    # the transfer path last used: from ``src`` (a host's disk) to the storage system ``dst``
    src: Endpoint | None = None
    dst: str = ""
    path: object = None
    busy: bool = False  # not finished with its run yet: queued, running, parked or waiting
    target: Target | None = None  # where its run goes
    on_end: Any = None  # its transfers' ``on_end``: ``WorkloadManager._ended`` bound to it, made once


@dataclass
class Target:
    name: str
    limit: int
    active: int = 0
    queue: list = field(default_factory=list)  # heap of (policy, seq, job); seq is unique, so jobs never compare
    parked: list = field(default_factory=list)  # jobs waiting for the storage to serve again
    system: Any = None  # the storage system (its ``state``), set at wire time
    endpoint: Endpoint = field(init=False)

    def __post_init__(self) -> None:
        self.endpoint = Endpoint.storage(self.name)


def retain(points: deque, n: int) -> list[Pt]:
    """Drop from the front of one VM's points (oldest first, strictly increasing times) those no
    kept point needs: the newest ``n`` are kept, and every point from the full the oldest of them
    chains back to. Returns the points dropped."""
    if len(points) <= n:
        return []
    full_s = points[len(points) - n].full_s
    dropped = []
    while points[0].time_s < full_s:
        dropped.append(points.popleft())
    return dropped


class WorkloadManager(Mechanism):
    key = KEY
    Config = Config
    tables = (BACKUPS, CATALOG, RESTORES, RPO)
    summaries = (workload_manager_metrics,)
    offers = ("catalog",)
    metrics = (
        Metric("catalog.points", "count", "backup points in the catalog at the end of the run"),
        Metric("catalog.bytes", "bytes", "bytes stored by the catalog's points at the end of the run"),
        Metric("backup.count", "count", "backups completed (one point each)"),
        Metric("backup.failed", "count", "backup attempts failed by an outage (each retried)", False),
        Metric("backup.bytes_total", "bytes", "bytes written by completed backups"),
        Metric("backup.duration_s_*", "s", "time from a backup's start to its last byte", False),
        Metric("backup.rpo_s_*", "s", "at a VM's stop, the age of its newest restorable point", False,
               headline=True),
        Metric("restore.time_s_*", "s", "from a restore operation to its last byte restored", False),
        Metric("instantiate.time_s_*", "s", "from an instantiate operation to its last byte", False),
        Metric("migrate_workload.time_s_*", "s", "from a migrate_workload operation to its last byte", False),
    )
    operations = {"instantiate": Instantiate, "restore": Restore, "migrate_workload": MigrateWorkload}
    naive = True  # disabled: no backups, but the RPO at every VM stop is still measured

    # -- before the run ------------------------------------------------------------------------------
    @classmethod
    def resolve(cls, config: Config, scenario) -> Config:
        return with_first_storage(config, scenario)

    @classmethod
    def budget(cls, config: Config, scenario) -> list[Need]:
        sizes = {w.name: w.count for w in scenario.workloads}
        out = []
        for i, p in enumerate(config.policies):
            vms = sum(sizes.get(w, 0) for w in p.workloads)
            runs = float(scenario.duration) / p.incremental_every + 1
            out.append(Need("events", f"policies.{i}.incremental_every", 4.0 * vms * runs,
                            "back up less often, fewer workloads, or shorten duration"))
        return out

    @classmethod
    def advisories(cls, config: Config | None, scenario) -> list[Problem]:
        if config is not None and config.enabled and not config.policies:
            return [Problem(f"mechanisms.{KEY}.policies", "no backup policy: nothing is backed up")]
        return []

    @classmethod
    def scale(cls, section: dict[str, Any], factor: float) -> dict[str, Any]:
        """Policies name workloads, which the bench scales itself. Growing the fleet (``factor`` > 1)
        the bench multiplies every storage system's rates by ``factor``: a target then stands for
        ``factor`` appliances of the file's, each with its own task limit, so ``max_concurrent``
        grows alike (rounded) and each stream keeps the file's share of its target's rate.
        Shrinking keeps the file's rates, so the streams per target stay as configured."""
        if factor <= 1:
            return section
        n = section.get("max_concurrent", Config.model_fields["max_concurrent"].default)
        if type(n) is not int or n < 1:
            return section  # validation reports it
        return dict(section, max_concurrent=max(n, round(n * factor)))

    # -- life cycle ----------------------------------------------------------------------------------
    def build(self, builder) -> None:
        # the workloads a policy names: their VMs' RPO is measured (with no backups when disabled)
        self.covered = {w for p in self.config.policies for w in p.workloads}
        self.points: dict[str, deque] = {}  # vm -> its kept points, oldest first
        # the points retention dropped, and when (flat lists of tuples and floats: nothing here for
        # the garbage collector to track)
        self.expired: list[Pt] = []
        self.expired_at: list[float] = []
        self.ops = 0

    def wire(self) -> None:
        bus = self.dc.bus
        bus.subscribe(ev.VM, self._vm_down)
        if not self.enabled:
            return
        self.ctx.services["catalog"] = self
        self.targets: dict[str, Target] = {}
        self.waiting: dict[str, Job] = {}  # vm -> its job waiting for the VM to run again
        self.jobs: dict[str, Job] = {}  # vm -> its job object, reused run after run
        self.seq = 0
        policies = self.config.policies
        self._change_rates = [p.change_rate for p in policies]  # per policy, read once per backup
        self._retention = [p.retention for p in policies]
        self._backup_row = self.ctx.recorder.appender("backups", *BACKUPS.names)  # one tuple per backup
        for p in self.config.policies:
            name = p.storage or self.config.storage
            if name not in self.targets:
                self.targets[name] = Target(name, self.config.max_concurrent, system=self.dc.storage[name])
                bus.subscribe(ev.STORAGE, self._storage_up, name, ev.UP)
        bus.subscribe(ev.VM, self._vm_up, phase=ev.UP)

    def start(self) -> None:
        self.ctx.finalizers.append(self._finish)
        if not self.enabled:
            return
        for i, p in enumerate(self.config.policies):
            every(self.env, p.full_every, lambda now, i=i: self._run(i, FULL, now))
            every(self.env, p.incremental_every, lambda now, i=i: self._run(i, INCREMENTAL, now))

    # -- scheduled runs -----------------------------------------------------------------------------
    def _run(self, i: int, kind: str, now: float) -> None:
        p = self.config.policies[i]
        if kind == INCREMENTAL and _on_grid(now, p.full_every):
            return  # the full's firing at this instant is the run
        storage = p.storage or self.config.storage
        target = self.targets[storage]
        jobs, queue, seq = self.jobs, target.queue, self.seq
        push = heapq.heappush
        for w in p.workloads:
            for vm in self.dc.workloads.get(w, ()):
                name = vm.name
                job = jobs.get(name)
                if job is not None and job.busy:  # an earlier run's: a full due before it starts upgrades it
                    if kind == FULL and job.transfer is None:
                        job.kind = FULL
                    continue
                seq += 1
                if job is None:
                    job = jobs[name] = Job(vm, i, kind, now, storage, seq, tag=("backup", name), disk=vm.spec.disk)
                    pts = self.points.get(name)
                    if pts is None:
                        pts = self.points[name] = deque()
                    job.points = pts
                    job.on_end = partial(self._ended, job)
                else:
                    job.vm, job.policy, job.kind, job.run_s, job.storage, job.seq = vm, i, kind, now, storage, seq
                job.busy = True
                job.target = target
                push(queue, (i, seq, job))
        self.seq = seq
        self._pump(target)

    def _pump(self, target: Target) -> None:
        """Start queued jobs while the target has room: each a transfer from its VM's host disk."""
        st = target.system
        queue = target.queue
        transfers = self.dc.transfers
        start = transfers.start
        while target.active < target.limit and queue:
            if st.state == DOWN:
                while queue:
                    target.parked.append(heapq.heappop(queue)[2])
                return
            job = heapq.heappop(queue)[2]
            vm = job.vm
            host = vm.host
            if vm.out or host is None:  # stopped: wait until it serves again
                self.waiting[vm.name] = job
                continue
            disk = job.disk
            if job.kind == FULL:
                size = disk
            else:
                pts = job.points
                if not pts:  # no point yet: the first backup of a VM is a full
                    job.kind = FULL
                    size = disk
                else:
                    size = self._change_rates[job.policy] * disk * (self.env.now - pts[-1].time_s) / DAY
                    if size > disk:
                        size = disk
            job.bytes = size
            job.host = host = host.name
            target.active += 1
            src = job.src
            if src is None or src.name != host or job.dst != target.name:  # a new host (or target): its path
                src = job.src = Endpoint.disk(host)
                job.dst = target.name
                job.path = transfers.path(src, target.endpoint)
            t = start(src, target.endpoint, size, on_host=FAIL, on_storage=FAIL, on_link=STALL, tag=job.tag,
                      on_end=job.on_end, path=job.path)
            job.transfer = t
            if t.outcome != "running":  # failed at once (an endpoint already down)
                self._ended(job, t)
                return  # ``_ended`` pumped the rest

    def _ended(self, job: Job, t: Transfer) -> None:
        """The transfer ``t`` of ``job`` completed or failed: its ``on_end`` (bound to the job once,
        nothing allocated per backup), or called at once by ``_pump`` when it failed inside ``start``."""
        target = job.target
        target.active -= 1
        vm = job.vm
        ok = t.outcome == "completed"
        start_s, end_s = t.start_s, t.end_s
        self._backup_row((start_s, vm.name, vm.workload, job.policy, job.kind, job.run_s, job.bytes, end_s,
                          end_s - start_s, target.name, job.host, COMPLETED if ok else FAILED,
                          "" if ok else type(t.cause).__name__))
        if ok:
            self._add_point(job, start_s, end_s)
            job.transfer = None
            job.busy = False
        else:
            job.transfer = None
            if target.system.state == DOWN:
                target.parked.append(job)
            elif vm.out or vm.host is None or vm.host.name == job.host:
                # its source host failed: the VM stops (now, or at this instant after the host's own
                # ``down``) and the job waits until it runs again
                self.waiting[vm.name] = job
            else:  # the VM had moved off the failed host and runs elsewhere
                heapq.heappush(target.queue, (job.policy, job.seq, job))
        self._pump(target)

    def _add_point(self, job: Job, start_s: float, end_s: float) -> None:
        vm = job.vm
        name = vm.name
        pts = job.points
        kind = job.kind
        # ``_new_pt(Pt, values)`` is ``Pt(*values)`` without the namedtuple's Python-level ``__new__``
        if kind == INCREMENTAL and pts:
            parent = pts[-1]
            pts.append(_new_pt(Pt, (start_s, name, vm.workload, kind, job.run_s, job.bytes, end_s, job.storage,
                                    parent.full_s, parent.time_s, parent.full_bytes)))
        else:
            size = job.bytes
            pts.append(_new_pt(Pt, (start_s, name, vm.workload, kind, job.run_s, size, end_s, job.storage,
                                    start_s, math.nan, size)))
        n = self._retention[job.policy]
        # retention drops points only when the oldest of the newest n chains back to a full newer
        # than the oldest point (O(1) test; ``retain`` pops what goes)
        if len(pts) > n and pts[0].time_s < pts[-n].full_s:
            dropped = retain(pts, n)
            self.expired += dropped
            self.expired_at += [self.env.now] * len(dropped)

    # -- the bus --------------------------------------------------------------------------------------
    def _storage_up(self, failure) -> None:
        target = self.targets[failure.subject]
        for job in target.parked:
            heapq.heappush(target.queue, (job.policy, job.seq, job))
        target.parked.clear()
        self._pump(target)

    def _vm_up(self, failure) -> None:
        job = self.waiting.pop(failure.subject, None)
        if job is not None:
            target = job.target
            heapq.heappush(target.queue, (job.policy, job.seq, job))
            self._pump(target)

    def _vm_down(self, failure) -> None:
        vm = self.dc.vms.get(failure.subject)
        if vm is None or vm.owner is not None or vm.workload not in self.covered:
            return
        p = self.newest(vm.name)
        now = self.env.now
        self.ctx.recorder.record("backup_rpo", vm=vm.name, workload=vm.workload,
                                 point_s=math.nan if p is None else p.time_s,
                                 rpo_s=now if p is None else now - p.time_s)

    # -- the catalog service --------------------------------------------------------------------------
    def newest(self, vm: str, at: float | None = None) -> Pt | None:
        """The VM's newest point restorable at ``at`` (default now), or None."""
        at = self.env.now if at is None else at
        for p in reversed(self.points.get(vm, ())):
            if p.end_s <= at:
                return p
        return None

    def workload_point(self, workload: str, point: Any = "latest") -> list[Pt] | None:
        """The points of one complete workload point in time (one per VM, all from one scheduled
        run, all restorable now): the newest for ``latest``, else the newest at or before the
        time given. None when there is none."""
        vms = self.dc.workloads.get(workload, ())
        if not vms:
            return None
        now = self.env.now
        runs: dict[float, list[Pt]] = {}
        for vm in vms:
            for p in self.points.get(vm.name, ()):
                if p.end_s <= now and (point == "latest" or p.run_s <= float(point)):
                    runs.setdefault(p.run_s, []).append(p)
        for run_s in sorted(runs, reverse=True):
            pts = runs[run_s]
            if len({p.vm for p in pts}) == len(vms):
                newest = {}
                for p in pts:  # a VM backed up twice in one run (a retry after a merge): its newest
                    if p.vm not in newest or p.time_s > newest[p.vm].time_s:
                        newest[p.vm] = p
                return [newest[vm.name] for vm in vms]
        return None

    # -- operations --------------------------------------------------------------------------------------
    def carry_out(self, op):
        pts = self.workload_point(op.workload, getattr(op, "point", "latest"))
        if pts is None:
            raise OperationFailed(f"workload {op.workload!r} has no complete backup point")
        self.ops += 1
        opno, start = self.ops, self.env.now
        if op.kind == "restore":
            dests = [(vm.host or vm.last_host) for vm in self.dc.workloads[op.workload]]
            if any(h is None for h in dests):
                raise OperationFailed(f"a VM of workload {op.workload!r} has never run: nowhere to restore it")
            site = dests[0].site.name
        else:
            site = op.site if op.kind == "instantiate" else op.to
            hosts = sorted(self.dc.sites[site].hosts, key=lambda h: h.name)
            if not hosts:
                raise OperationFailed(f"site {site!r} has no host to realise the workload on")
            dests = [hosts[i % len(hosts)] for i in range(len(pts))]
        yield self.env.timeout(self.config.provisioning_time)
        # a restore sends the usable prefix first when blocks are prioritised (backup_priority); without
        # that service, disk order: usable when the last byte arrives
        order = self.ctx.services.get("block_order") if op.kind == "restore" else None
        transfers = []
        for p, host in zip(pts, dests, strict=True):
            size = p.restore_bytes
            usable = size if order is None else order.usable_bytes(self.dc.vms.get(p.vm), size)
            transfers.append((p, host, size, _Copy(self, op.kind, p, host.name, size, usable)))
        failed = 0
        for p, host, size, c in transfers:
            yield c.done
            t = c.transfer
            outcome = COMPLETED if t.outcome == "completed" else FAILED
            failed += outcome == FAILED
            self.ctx.recorder.record("restores", time_s=start, op=opno, kind=op.kind, workload=op.workload,
                                     vm=p.vm, point_s=p.time_s, bytes=size, storage=p.location, site=site,
                                     host=host.name, provisioning_s=self.config.provisioning_time,
                                     end_s=t.end_s, duration_s=t.end_s - start, outcome=outcome,
                                     usable_bytes=c.usable, usable_end_s=c.usable_end_s)
        if failed:
            raise OperationFailed(f"{failed} of {len(transfers)} copies failed")
        return f"{len(transfers)} VMs, {sum(x[2] for x in transfers):.0f} bytes"

    # -- the end ----------------------------------------------------------------------------------------
    def _finish(self, now: float) -> None:
        if not self.enabled:
            return
        # a catalog row is the point's first ten fields (time_s .. parent_s, CATALOG's order) + kept, expired_s
        add = self.ctx.recorder.appender("catalog", *CATALOG.names)
        kept = (True, math.nan)
        for pts in self.points.values():
            for p in pts:
                add(p[:10] + kept)
        for p, expired_s in zip(self.expired, self.expired_at, strict=True):
            add(p[:10] + (False, expired_s))


class _Copy:
    """One VM's copy of a realised point: the usable prefix (``usable`` bytes), then the rest, as
    consecutive transfers from the point's location to the host's disk (one transfer when the
    prefix is the whole disk or empty). ``done`` fires when the copy ends, completed or failed
    (``transfer`` is the last one started); ``usable_end_s`` is when the prefix had arrived (NaN
    if it never did)."""

    __slots__ = ("wm", "kind", "vm", "src", "dst", "usable", "parts", "done", "transfer", "usable_end_s", "first")

    def __init__(self, wm: WorkloadManager, kind: str, p: Pt, host: str, size: float, usable: float):
        self.wm, self.kind, self.vm = wm, kind, p.vm
        self.src, self.dst = Endpoint.storage(p.location), Endpoint.disk(host)
        if size - usable <= 1e-9 * size:  # the prefix is the whole disk (up to rounding)
            usable = size
        self.usable = usable
        self.parts = [b for b in (usable, size - usable) if b > 0.0] or [size]
        self.first = usable > 0.0  # the first part is the prefix; with none, usable at once
        self.usable_end_s = math.nan if self.first else wm.env.now
        self.done = wm.env.event()
        self._next()

    def _next(self) -> None:
        t = self.wm.dc.transfers.start(self.src, self.dst, self.parts.pop(0), on_host=FAIL, on_storage=FAIL,
                                       on_link=STALL, tag=(self.kind, self.vm))
        self.transfer = t
        if t.live:
            t.done.callbacks.append(self._ended)
        else:  # failed at once (an endpoint already down)
            self._ended(t.done)

    def _ended(self, _event) -> None:
        if self.transfer.outcome == "completed":
            if self.first:
                self.first = False
                self.usable_end_s = self.transfer.end_s
            if self.parts:
                self._next()
                return
        self.done.succeed()


def _on_grid(now: float, period: float) -> bool:
    k = round(now / period)
    return abs(now - k * period) <= 1e-9 * max(1.0, abs(now))
