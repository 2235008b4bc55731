"""mechanisms.live_recovery: a lost VM serves again from its backup at once (temp mount), while its
disk is restored in the background, then switches over to its restored disk.

Model (docs/data_protection.md, "live_recovery"):

- Triggers: a ``recover`` operation (the VM is stopped if it serves: it is lost at that instant;
  its newest restorable point is used), and a stopped VM that finds no room (the ``no_room``
  claim chain) when it has a restorable point and a target host has room now.
- The recovery VM is the lost VM itself, placed (``Datacenter.place``) on a host of
  ``target_hosts`` chosen by the placement service (``Placement.choose`` with the interned rule of
  the target hosts; with no room it waits in the placement queue of that rule): its memory is
  reserved there and its virtual disks start empty.
- Live: after ``mount_latency`` (the backup exported and mounted as a datastore) and the VM's
  ``boot_time`` (its boot reads, served from the backup, are taken as its boot time) it serves:
  its incident closes ``recovered``. While degraded it reads from the backup and its writes are
  kept on ``storage`` (the mount's write cache), at its ``dirty_rate``, unique bytes at most the
  disk. The background restore copies the point's disk from the point's storage to the target
  host's disk through ``dc.transfers``, range by range: the ranges of the ``block_order``
  service (priority order) when it is offered, else one range of the whole disk. Then the
  retained writes are carried over (one transfer from ``storage``); writes made meanwhile are
  mirrored to both copies (IO mirroring). Then the VM pauses for ``switchover`` and serves from
  its restored disk. ``data_lost_bytes`` = written - carried over, measured.
- Disabled (the naive behaviour): a VM that finds no room and has a restorable point gets a
  traditional restore on a target host: the whole disk copied, then the VM boots.
- Failures during a recovery, each a row's ``interruptions`` and ``cause`` (never the end of
  the recovery): a storage outage before the VM serves restarts the mount when the storage is
  back; while it serves from the backup, the VM pauses until the storage is back (an incident
  ``storage_outage`` closed ``resumed``) and the copies stall. A stop of the VM (its host crashed,
  its domain or site went down, its disk failed, the guest crashed) sends the recovery back to
  placement on another target host: the retained writes survive on ``storage``; the blocks
  restored so far survive on the site's replicated storage when the new host is in the same
  site, except after a disk failure of the target host (the transfer layer's rule: a failed disk
  kept nothing); the carry-over is redone in full.

Cost: per recovery one process, one transfer per block range plus one carry-over, O(1) work per
event; one callback per storage outage and repair over the recoveries in progress.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import simpy

from sim import format as fmt
from sim.core.causes import Lost
from sim.core.errors import OperationFailed, Problem
from sim.infra import events as ev
from sim.infra.datacenter import BOOTING, DOWN, PAUSED, RUNNING, STOPPED
from sim.infra.network import Endpoint
from sim.infra.transfer import FAILED, STALL, TransferFailed
from sim.mechanisms.base import Mechanism, MechanismConfig, with_first_storage
from sim.metrics.meta import Metric
from sim.metrics.summary import count, stats
from sim.metrics.tables import table
from sim.scenario.names import select, vm_names
from sim.scenario.schema import OperationBase
from sim.scenario.types import Duration
from sim.scenario.validate import Namespaces, expected_name, glob_problems

if TYPE_CHECKING:
    import pandas as pd

    from sim.infra.datacenter import VM, Host, Site
    from sim.infra.transfer import Transfer
    from sim.metrics.summary import RunInfo

KEY = "live_recovery"
PLACE, MOUNT, RESTORE, BOOT, CARRY, SWITCH, DONE = "placing", "mounting", "restoring", "booting", "carrying", \
    "switching", "done"
LIVE, TRADITIONAL = "live", "traditional"
OPERATION, NO_ROOM = "operation", "no_room"
COMPLETED, OPEN = "completed", "open"


class Config(MechanismConfig):
    # the storage system that exports the backups and keeps the temp VM's writes; None: the first
    storage: str | None = None
    target_hosts: tuple[str, ...] = ("*",)  # where recovery VMs go (globs); the example's ``west/*`` is a selector
    # backup exported over NFS, mounted as a datastore, VM registered (Commvault Live Recovery, Veeam
    # Instant VM Recovery with vPower NFS): no published timings; 30 s is dcsim's choice
    # (docs/data_protection.md, "live_recovery")
    mount_latency: Duration = 30.0
    # the last step of a storage migration with IO mirroring only hands over the VM's state
    # (Mashtizadeh et al., USENIX ATC 2011); 2 s is dcsim's choice (docs/data_protection.md)
    switchover: Duration = 2.0

    def check_references(self, scenario, path: str) -> list[Problem]:
        names = Namespaces(scenario)
        out: list[Problem] = []
        if self.storage is None:
            out.append(Problem(f"{path}.storage", "expected a storage system to recover from (the scenario "
                                                  "defines none; add one under infrastructure.storage), got none"))
        elif self.storage not in names.storage:
            out.append(Problem(f"{path}.storage", expected_name("storage system", names.storage, self.storage)))
        out += glob_problems(self.target_hosts, names.hosts, f"{path}.target_hosts", "host")
        wm = scenario.mechanisms.get("workload_manager")
        covered = {w for p in wm.policies for w in p.workloads} if wm is not None and wm.enabled else set()
        workload_of = {n: w.name for w in scenario.workloads for n in vm_names(w.name, w.count)}
        for i, op in enumerate(scenario.operations):
            if op.kind != "recover" or op.vm not in workload_of:
                continue
            w = workload_of[op.vm]
            if w not in covered:
                out.append(Problem(f"operations.{i}.vm", f"expected a VM whose workload a backup policy covers "
                                                         f"(mechanisms.workload_manager.policies), got {op.vm!r} "
                                                         f"(workload {w!r} has no backup policy)"))
        return out


class Recover(OperationBase):
    """Live recovery of one VM from its newest restorable backup point."""

    refs: ClassVar[dict[str, str]] = {"vm": "vm"}
    kind: Literal["recover"]
    vm: str


RECOVERIES = table(
    "recoveries", "time_s", "vm:str", "workload:str", "trigger:str", "mode:str", "point_s", "rpo_s", "storage:str",
    "host:str", "disk_bytes", "start_s", "serving_s", "time_to_service_s", "restore_start_s", "restore_end_s",
    "restore_time_s", "restored_bytes", "written_bytes", "carried_bytes", "data_lost_bytes", "degraded_s",
    "switchover_downtime_s", "end_s", "attempts:i8", "interruptions:i8", "cause:str", "stage:str", "outcome:str")


def live_recovery_metrics(t: dict[str, pd.DataFrame], info: RunInfo) -> dict[str, float]:
    r = t["recoveries"]
    done = r[r["outcome"] == COMPLETED] if len(r) else r
    out: dict[str, float] = {
        "recovery.count": count(done),
        "recovery.open": count(r, r["outcome"] == OPEN) if len(r) else 0,
        "recovery.data_lost_bytes_total": float(done["data_lost_bytes"].sum()) if len(done) else 0.0,
    }
    out.update(stats("recovery.time_to_service_s", r["time_to_service_s"] if len(r) else []))
    for name in ("restore_time_s", "degraded_s", "switchover_downtime_s"):
        out.update(stats(f"recovery.{name}", done[name] if len(done) else []))
    return out


@dataclass(eq=False)
class _Rec:
    """One recovery in progress."""

    vm: VM
    point: Any  # the catalog's point (``time_s``, ``location``, ``restore_bytes``)
    trigger: str
    live: bool
    lost_s: float
    start_s: float
    ranges: list  # [(class, priority, bytes)] in send order
    first: Host | None = None  # the host found when it was taken (no_room)
    host: Host | None = None
    site: Site | None = None  # where the blocks restored so far live (the site's replicated storage)
    stage: str = PLACE
    proc: simpy.Process | None = None
    transfer: Transfer | None = None
    idx: int = 0  # the range being restored
    off: float = 0.0  # bytes of it restored
    restored: float = 0.0  # bytes moved by restore transfers, every attempt
    restore_start: float = math.nan
    restore_end: float = math.nan
    written: float = 0.0  # unique bytes written while serving from the backup (at most the disk)
    running_from: float | None = None  # serving from the backup since
    degraded: float = 0.0
    w0: float = 0.0  # retained bytes the carry-over in progress moves
    carried: float = 0.0
    serving_s: float = math.nan
    switchover: float = 0.0
    end_s: float = math.nan
    held: bool = False  # paused while its storage is down
    attempts: int = 0
    interruptions: int = 0
    cause: str = ""


class LiveRecovery(Mechanism):
    key = KEY
    Config = Config
    tables = (RECOVERIES,)
    summaries = (live_recovery_metrics,)
    needs = ("catalog",)
    metrics = (
        Metric("recovery.count", "count", "recoveries from backup completed (serving from the restored disk)"),
        Metric("recovery.open", "count", "recoveries still under way at the end of the run", False),
        Metric("recovery.time_to_service_s_*", "s", "from a VM's loss to its serving again (its RTO)", False,
               headline=True),
        Metric("recovery.restore_time_s_*", "s", "the background copy of a recovered disk alone, start to end",
               False),
        Metric("recovery.degraded_s_*", "s", "time a recovered VM served from its backup copy", False),
        Metric("recovery.switchover_downtime_s_*", "s", "pause switching a recovered VM to its restored disk",
               False),
        Metric("recovery.data_lost_bytes_total", "bytes",
               "bytes written while serving from the backup and not carried over (must be 0)", False),
    )
    operations = {"recover": Recover}
    naive = True  # disabled: a VM that finds no room is restored the traditional way, then boots

    @classmethod
    def said(cls, metrics, info):
        """Recoveries, how soon the VMs served again, how long they served from the backup, and the bytes
        lost (0 by design)."""
        n = metrics.get("recovery.count", 0) + metrics.get("recovery.open", 0)
        if not n:
            return None
        text = f"{fmt.number(n)} recover{'y' if n == 1 else 'ies'}"
        if "recovery.time_to_service_s_max" in metrics:
            text += f", serving after {fmt.duration(metrics['recovery.time_to_service_s_max'])}"
        text += f", {fmt.size(metrics.get('recovery.data_lost_bytes_total', 0))} lost"
        if "recovery.degraded_s_max" in metrics:
            text += f", {fmt.duration(metrics['recovery.degraded_s_max'])} on the backup"
        return text

    # -- before the run ------------------------------------------------------------------------------
    @classmethod
    def resolve(cls, config: Config, scenario) -> Config:
        return with_first_storage(config, scenario)

    @classmethod
    def advisories(cls, config: Config | None, scenario) -> list[Problem]:
        if config is None or not config.enabled:
            return []
        wm = scenario.mechanisms.get("workload_manager")
        if wm is None or not wm.enabled or not wm.policies:
            return [Problem(f"mechanisms.{KEY}", "no backup policy (mechanisms.workload_manager.policies): "
                                                 "no VM has a point to recover from")]
        return []

    # -- life cycle ----------------------------------------------------------------------------------
    def wire(self) -> None:
        dc = self.dc
        self.active: dict[str, _Rec] = {}
        self.hosts = select(self.config.target_hosts, list(dc.hosts))
        self.rule = None  # the placement rule of the target hosts, interned at the first recovery
        dc.bus.handle(ev.VM_STOPPED, self._stopped)
        dc.bus.handle(ev.NO_ROOM, self._no_room)
        dc.bus.subscribe(ev.HOST, self._host_down)
        if self.enabled:
            dc.bus.subscribe(ev.STORAGE, self._storage_down)
            dc.bus.subscribe(ev.STORAGE, self._storage_up, phase=ev.UP)

    def start(self) -> None:
        self.ctx.finalizers.append(self._finish)

    # -- triggers ------------------------------------------------------------------------------------
    def carry_out(self, op: Recover):
        vm = self.dc.vms[op.vm]
        if vm.owner is not None:
            raise OperationFailed(f"{vm.name} belongs to mechanism {vm.owner!r}, which handles its failures")
        if vm.name in self.active:
            raise OperationFailed(f"{vm.name} is already being recovered")
        if self._target_rule() is None:
            raise OperationFailed("no target host")
        catalog = self.ctx.services.get("catalog")
        point = catalog.newest(vm.name) if catalog is not None else None
        if point is None:
            raise OperationFailed(f"{vm.name} has no restorable backup point")
        now = self.env.now
        lost = self.dc.outage_start(vm) if vm.out else None
        r = self._new(vm, point, OPERATION, now if lost is None else lost)
        self.dc.placement.cancel(vm)  # it may be waiting for room: it is ours now
        self.dc.stop_vm(vm, Lost(at=now, subject=vm.name))  # our handler takes it (it is active)
        r.proc = self.env.process(self._run(r))
        yield self.env.timeout(0)
        return f"from the point of {point.time_s:g} s on {point.location}"

    def _no_room(self, name: str, what: tuple[VM, Any]) -> bool:
        vm, _cause = what
        if vm.owner is not None or name in self.active:
            return False
        catalog = self.ctx.services.get("catalog")
        point = catalog.newest(name) if catalog is not None else None
        if point is None or self._target_rule() is None:
            return False
        host = self.dc.placement.choose(vm, self.rule)
        if host is None:
            return False  # no target host has room either: it waits for its own hosts
        lost = self.dc.outage_start(vm)
        r = self._new(vm, point, NO_ROOM, self.env.now if lost is None else lost)
        r.first = host
        r.proc = self.env.process(self._run(r))
        return True

    def _target_rule(self):
        if self.rule is None and self.hosts:
            self.rule = self.dc.placement.rule(self.hosts)
        return self.rule

    def _new(self, vm: VM, point: Any, trigger: str, lost: float) -> _Rec:
        size = float(point.restore_bytes)
        order = self.ctx.services.get("block_order")
        ranges = list(order.ranges(vm, size)) if order is not None else [("disk", 0, size)]
        r = _Rec(vm, point, trigger, self.enabled, lost, self.env.now, ranges)
        self.active[vm.name] = r
        return r

    def _stopped(self, name: str, what: tuple[VM, Any]) -> bool:
        r = self.active.get(name)
        if r is None:
            return False
        p = r.proc
        if p is not None and p.is_alive and p is not self.env.active_process:
            p.interrupt(what[1])
        return True

    # -- one recovery ------------------------------------------------------------------------------------
    def _run(self, r: _Rec):
        steps = {PLACE: self._place, MOUNT: self._mount, RESTORE: self._restore, BOOT: self._boot,
                 CARRY: self._carry, SWITCH: self._switch}
        while r.stage != DONE:
            try:
                yield from steps[r.stage](r)
            except simpy.Interrupt as i:
                self._interrupted(r, i.cause)
            except TransferFailed as exc:  # its destination disk failed: the VM's stop follows
                self._interrupted(r, exc.cause)
        del self.active[r.vm.name]
        self._record(r, COMPLETED)

    def _place(self, r: _Rec):
        vm, place = r.vm, self.dc.placement
        host = r.first if r.first is not None and r.first.fits(vm) else place.choose(vm, self.rule)
        r.first = None
        while host is None:
            yield place.wait(vm, self.rule)
            host = place.choose(vm, self.rule)
        self.dc.place(vm, host, BOOTING, reason="restart")
        r.host = host
        r.attempts += 1
        if r.site is not host.site:  # the blocks restored so far live on another site's storage
            r.site, r.idx, r.off = host.site, 0, 0.0
        r.stage = MOUNT if r.live else RESTORE

    def _mount(self, r: _Rec):
        """Mount the backup and boot from it (both storage systems serving throughout), then serve."""
        names = self._storages(r)
        while any(self.dc.storage[n].state == DOWN for n in names):
            yield from self._until_up(names)
        end = self.env.now + self.config.mount_latency + r.vm.spec.boot_time
        watch = self.dc.bus.watch(self.env.active_process, [(ev.STORAGE, n) for n in names])
        try:
            yield self.env.timeout(end - self.env.now)
        except simpy.Interrupt:
            # a boot that ends at the instant of a storage outage has ended (a completion at t wins)
            if r.vm.state == STOPPED or self.env.now < end - 1e-12 * max(1.0, end):
                raise
        finally:
            watch.cancel()
        if math.isnan(r.serving_s):
            r.serving_s = self.env.now
        self.dc.resume(r.vm, "recovered", mechanism=KEY)
        r.running_from = self.env.now
        r.stage = RESTORE
        if any(self.dc.storage[n].state == DOWN for n in names):  # it failed at this very instant
            self._hold(r)

    def _restore(self, r: _Rec):
        """The ranges left, each one transfer from the point's storage to the target host's disk."""
        if math.isnan(r.restore_start):
            r.restore_start = self.env.now
        while r.idx < len(r.ranges):
            size = float(r.ranges[r.idx][2])
            left = size - r.off
            if left <= 1e-6 * max(1.0, size):
                r.idx, r.off = r.idx + 1, 0.0
                continue
            t = r.transfer
            if t is None:
                self._follow(r)
                size = float(r.ranges[r.idx][2])
                left = size - r.off
                t = r.transfer = self.dc.transfers.start(
                    Endpoint.storage(r.point.location), Endpoint.disk(r.host.name), left,
                    on_host=STALL, on_storage=STALL, on_link=STALL, tag=("recovery", r.vm.name))
            if t.live:
                yield t.done
            if t.outcome == FAILED:
                raise TransferFailed(t, t.cause)
            r.transfer = None
            r.restored += t.size
            r.idx, r.off = r.idx + 1, 0.0
        r.restore_end = self.env.now
        r.stage = CARRY if r.live else BOOT

    def _boot(self, r: _Rec):
        """Traditional: the disk is restored, the VM boots from it."""
        yield self.env.timeout(r.vm.spec.boot_time)
        r.serving_s = self.env.now
        self.dc.resume(r.vm, "recovered", mechanism=KEY)
        r.end_s = self.env.now
        r.stage = DONE

    def _carry(self, r: _Rec):
        """The writes retained so far go to the restored disk; those made meanwhile are mirrored."""
        t = r.transfer
        if t is None:
            self._follow(r)
            self._accrue(r)
            r.w0 = r.written
            if r.w0 > 0.0:
                t = r.transfer = self.dc.transfers.start(
                    Endpoint.storage(self.config.storage), Endpoint.disk(r.host.name), r.w0,
                    on_host=STALL, on_storage=STALL, on_link=STALL, tag=("carry_over", r.vm.name))
        if t is not None:
            if t.live:
                yield t.done
            if t.outcome == FAILED:
                raise TransferFailed(t, t.cause)
        self._accrue(r)
        r.carried = (t.sent() if t is not None else 0.0) + (r.written - r.w0)
        r.transfer = None
        r.stage = SWITCH

    def _switch(self, r: _Rec):
        vm = r.vm
        self._accrue(r)
        r.running_from = None
        r.held = False  # a pause for its storage (the carry-over ended meanwhile) becomes the switchover
        start = self.env.now
        if vm.state == RUNNING:
            self.dc.pause(vm, KEY, cause="migration")
        yield self.env.timeout(self.config.switchover)
        r.switchover = self.env.now - start
        self.dc.resume(vm, "migrated", mechanism=KEY)
        r.end_s = self.env.now
        r.stage = DONE

    def _interrupted(self, r: _Rec, cause: Any) -> None:
        """A stop of the VM sends the recovery back to placement; anything else (a storage outage
        during the mount, a stop heard twice at one instant) lets the stage go on."""
        vm = r.vm
        stopped = vm.state == STOPPED
        t = r.transfer
        moved = vm.host is not None and vm.host is not r.host  # another mechanism migrated it
        if t is not None and (stopped or moved or t.outcome == FAILED):
            sent = t.abort() if t.live else t.sent()
            if r.stage == RESTORE:
                r.restored += sent
                r.off += sent
                if t.outcome == FAILED:  # the target's disk failed: the blocks restored there are gone
                    r.site, r.idx, r.off = None, 0, 0.0
            r.transfer = None  # a carry-over is redone in full
        if not stopped:
            return
        r.interruptions += 1
        r.cause = getattr(cause, "kind", type(cause).__name__)
        self._accrue(r)
        r.running_from = None
        r.held = False
        if vm.host is not None:  # a guest crash kept its memory there: it boots again where placement says
            self.dc.unplace(vm)
        r.host = None
        r.stage = PLACE

    def _follow(self, r: _Rec) -> None:
        """Copies go to the disk of the host the VM runs on: another mechanism may have migrated it
        (the blocks restored so far stay on the site's replicated storage, not across sites)."""
        host = r.vm.host
        if host is not None and host is not r.host:
            r.host = host
            if r.site is not host.site:
                r.site, r.idx, r.off = host.site, 0, 0.0

    def _host_down(self, failure) -> None:
        """A host that a copy still writes to failed after the VM left it: the copy moves with the VM."""
        for r in list(self.active.values()):
            h, p = r.host, r.proc
            if h is not None and h.name == failure.subject and r.vm.host is not None and r.vm.host is not h \
                    and r.transfer is not None and p is not None and p.is_alive and p is not self.env.active_process:
                p.interrupt(failure.cause)

    # -- writes while serving from the backup ----------------------------------------------------------
    def _accrue(self, r: _Rec) -> None:
        if r.running_from is not None:
            now = self.env.now
            dt = now - r.running_from
            r.degraded += dt
            r.written = min(float(r.point.restore_bytes), r.written + r.vm.spec.dirty_rate * dt)
            r.running_from = now

    # -- storage outages -------------------------------------------------------------------------------
    def _storages(self, r: _Rec) -> tuple[str, ...]:
        loc, own = r.point.location, self.config.storage
        return (loc,) if loc == own else (loc, own)

    def _until_up(self, names: tuple[str, ...]):
        event = self.env.event()

        def up(_failure) -> None:
            if not event.triggered and all(self.dc.storage[n].state != DOWN for n in names):
                event.succeed()

        subs = [self.dc.bus.subscribe(ev.STORAGE, up, n, ev.UP) for n in names]
        try:
            yield event
        finally:
            for s in subs:
                s.cancel()

    def _storage_down(self, failure) -> None:
        for r in list(self.active.values()):
            if r.stage in (RESTORE, CARRY) and r.live and r.vm.state == RUNNING and failure.subject in \
                    self._storages(r):
                self._hold(r)

    def _hold(self, r: _Rec) -> None:
        """The VM reads from its backup: it pauses while the storage is down, writing nothing."""
        self._accrue(r)
        r.running_from = None
        r.held = True
        self.dc.pause(r.vm, KEY, cause="storage_outage")

    def _storage_up(self, failure) -> None:
        for r in list(self.active.values()):
            if r.held and r.vm.state == PAUSED and all(self.dc.storage[n].state != DOWN for n in self._storages(r)):
                r.held = False
                self.dc.resume(r.vm, "resumed", mechanism=KEY)
                r.running_from = self.env.now

    # -- records ---------------------------------------------------------------------------------------
    def _record(self, r: _Rec, outcome: str) -> None:
        self._accrue(r)
        vm, p = r.vm, r.point
        done = outcome == COMPLETED
        self.ctx.recorder.record(
            "recoveries", time_s=r.lost_s, vm=vm.name, workload=vm.workload, trigger=r.trigger,
            mode=LIVE if r.live else TRADITIONAL, point_s=p.time_s, rpo_s=r.lost_s - p.time_s,
            storage=p.location, host=(vm.host or r.host).name if (vm.host or r.host) is not None else "", disk_bytes=float(p.restore_bytes),
            start_s=r.start_s, serving_s=r.serving_s, time_to_service_s=r.serving_s - r.lost_s,
            restore_start_s=r.restore_start, restore_end_s=r.restore_end,
            restore_time_s=r.restore_end - r.restore_start, restored_bytes=r.restored, written_bytes=r.written,
            carried_bytes=r.carried if done else math.nan,
            data_lost_bytes=r.written - r.carried if done else math.nan, degraded_s=r.degraded,
            switchover_downtime_s=r.switchover, end_s=r.end_s, attempts=r.attempts,
            interruptions=r.interruptions, cause=r.cause, stage=r.stage, outcome=outcome)

    def _finish(self, now: float) -> None:
        for r in self.active.values():
            t = r.transfer
            if t is not None and r.stage == RESTORE:
                r.restored += t.sent()
            self._record(r, OPEN)
