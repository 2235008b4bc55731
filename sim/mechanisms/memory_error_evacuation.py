"""Live migration on uncorrectable memory errors (docs/migration.md).

Trigger: an uncorrectable DRAM error drawn by ``sim.faults.dimm`` on a host. Story:
the hypervisor is signalled after ``signal_latency`` (the machine check is handled
and reported to the management plane); it maps the faulty physical address to its
owner, in proportion to use: the hypervisor's reserved memory, a VM's memory, or free
memory. An error in hypervisor memory crashes the host. Otherwise the page is retired
(Linux hwpoison: the page is never used again, kernel docs mm/hwpoison); a
VM whose page held the error crashes with ``guest_crash_probability`` (the poisoned
page held guest-kernel or otherwise fatal data) and restarts through the default
recovery, else it loses the page and keeps running. The host enters maintenance (no
new VMs) and every VM still running on it is live-migrated through the migration
engine (``ctx.services["live_migration"]``, its mode, scope and per-host limits) to a
healthy host chosen by ``target_hosts`` and where the VM may go (``dc.rule_for``: its
owner's rule for a mechanism's VM, else its own placement rule); a migration that
fails is retried on another target (up to ``_ATTEMPTS`` times). When the last one
ends, the host goes to repair and returns with fresh DIMMs (the error's ``take_down``).
A second uncorrectable error on the host before the evacuation ends crashes it:
VMs still there (and post-copy VMs still pulling from it) are stopped.

Guarantee: a VM is stopped by the error only if it owned the page and crashed, the
host crashed, or no healthy host had room for it (it is shut down when the host goes
to repair). Disabled (or absent), the naive behaviour: the host crashes at the first
uncorrectable error and every VM restarts elsewhere. Enabled or not, the mechanism takes
every error on the ``memory_error`` claim chain and records it in ``memory_errors``.

Records: one row of ``memory_errors`` per uncorrectable error (owner, containment,
``vms_evacuated``, ``vms_crashed``, ``end_s`` = when the host went down), migrations
with trigger ``memory_error`` (their pauses are incidents with cause ``migration`` and
mechanism ``memory_error_evacuation``), guest crashes as incidents with cause
``memory_error``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import simpy

from sim import format as fmt
from sim.core.causes import HostDown, MemoryErrorCause
from sim.faults.dimm import CorrectableErrors
from sim.infra import events as ev
from sim.infra.datacenter import DOWN, REPAIR, RUNNING
from sim.mechanisms.base import Mechanism, MechanismConfig
from sim.metrics.meta import Metric
from sim.metrics.summary import count
from sim.metrics.tables import table
from sim.scenario.names import select
from sim.scenario.types import Duration, Fraction

if TYPE_CHECKING:
    from sim.core.context import Context
    from sim.infra.datacenter import VM, Datacenter, Host
    from sim.metrics.summary import RunInfo, Tables

KEY = "memory_error_evacuation"

_ATTEMPTS = 3  # migration attempts per VM (a failed target is replaced by another)


class Config(MechanismConfig):
    """``mechanisms.memory_error_evacuation``."""

    # A choice (docs/sources.md). A UE raises a machine check at once; the 1 s covers the hypervisor's
    # handler and the report to the management plane (GCE gives VMs a 60 s notice for *predicted*
    # failures, GCE live-migration docs; an uncorrectable error is handled reactively, well within that).
    signal_latency: Duration = 1.0
    # A choice (docs/sources.md). Linux hwpoison kills the processes mapping a poisoned user page and
    # the guest survives, but a poisoned guest-kernel page panics it (kernel docs mm/hwpoison);
    # with no published split, an even chance.
    guest_crash_probability: Fraction = 0.5
    # Default: the hosts of the failing host's cluster (vSphere HA/DRS evacuate within
    # the cluster). A host in no cluster falls back to its broadcast domain.
    target_hosts: Literal["same_cluster", "same_domain", "any"] = "same_cluster"


# DRAM errors, recorded here with the mechanism enabled or not: kind "correctable" (count = errors in the row: 1 for a DIMM's first, the
# later ones as Poisson counts per DIMM at replacement and at the end) or "uncorrectable"
# (count 1). owner: where the error landed ("vm", "free", "hypervisor"; "" when not mapped);
# containment: "guest_crash", "page_lost", "page_retired" or ""; action: "logged" (a DIMM's
# first CE, an event), "counted" (later CEs), "evacuated", "interrupted" (the host failed
# during the evacuation) or "host_crash"; end_s: when the host went down (crash or repair).
MEMORY_ERRORS = table(
    "memory_errors",
    "time_s", "host:str", "dimm:i8", "kind:str", "count:i8", "owner:str", "vm:str", "containment:str",
    "action:str", "vms_evacuated:i8", "vms_crashed:i8", "end_s",
)


@dataclass
class _Tally:
    evacuated: int = 0
    crashed: int = 0


def memory_error_metrics(t: Tables, info: RunInfo) -> dict[str, float]:
    """``memory_errors.*`` from ``memory_errors`` and ``incidents``; the same names with evacuation off.

    ``vm_downtime_s_total``: incidents caused by memory errors (guest and host crashes, post-copy
    losses) plus the pauses of evacuation migrations.
    """
    me = t["memory_errors"]
    inc = t["incidents"]
    from_errors = (inc["cause"] == "memory_error") | (
        (inc["cause"] == "migration") & (inc["mechanism"] == "memory_error_evacuation"))
    return {
        "memory_errors.correctable": int(me.loc[me["kind"] == "correctable", "count"].sum()),
        "memory_errors.uncorrectable": int(me.loc[me["kind"] == "uncorrectable", "count"].sum()),
        "memory_errors.vms_evacuated": int(me["vms_evacuated"].sum()),
        "memory_errors.vms_crashed": int(me["vms_crashed"].sum()),
        "memory_errors.vm_downtime_s_total": float(inc.loc[from_errors, "downtime_s"].sum()),
        "memory_errors.host_crashes": count(me, me["action"] == "host_crash"),
    }


# Every metric ``memory_error_metrics`` can produce (units: sim.metrics.meta).
METRICS = (
    Metric("memory_errors.correctable", "count", "corrected DRAM errors"),
    Metric("memory_errors.uncorrectable", "count", "uncorrectable DRAM errors", False),
    Metric("memory_errors.vms_evacuated", "count", "VMs live-migrated off a host after a memory error",
           headline=True),
    Metric("memory_errors.vms_crashed", "count", "VMs crashed by a memory error", False, headline=True),
    Metric("memory_errors.vm_downtime_s_total", "s",
           "VM downtime caused by memory errors, evacuation pauses included", False),
    Metric("memory_errors.host_crashes", "count", "hosts crashed by a memory error in the hypervisor", False),
)



class MemoryErrorEvacuation(Mechanism):
    key = KEY
    Config = Config
    tables = (MEMORY_ERRORS,)
    summaries = (memory_error_metrics,)
    metrics = METRICS
    naive = True  # disabled, its phases carry out the naive behaviour
    needs = ("live_migration",)

    @classmethod
    def said(cls, metrics, info):
        """VMs moved off failing DIMMs and VMs crashed, and the restarts that saved against the
        counterfactual (the host crashes at its first uncorrectable error and every VM on it restarts):
        about (evacuated + crashed) x the run's mean restart downtime, minus what the errors cost. A
        rough estimate (the run's mean restart mixes every workload's boot time); ``dcsim compare
        --set mechanisms.memory_error_evacuation.enabled=false`` measures it (the showcase for 14 days
        with its bad DIMM batch at 0.5 uncorrectable errors per DIMM-year: ~31.9 min estimated,
        24.5 min measured)."""
        evacuated = metrics.get("memory_errors.vms_evacuated", 0)
        crashed = metrics.get("memory_errors.vms_crashed", 0)
        errors = metrics.get("memory_errors.uncorrectable", 0)
        if not errors:
            return f"{fmt.number(metrics.get('memory_errors.correctable', 0))} correctable errors, no uncorrectable"
        text = f"{fmt.number(evacuated)} VMs evacuated"
        restart = metrics.get("restarts.downtime_s_mean")
        if evacuated and restart:
            saved = (evacuated + crashed) * restart - metrics.get("memory_errors.vm_downtime_s_total", 0.0)
            text += f", saving ~{fmt.duration(saved)} down"
        return text + f", {fmt.number(crashed)} crashed, {fmt.number(errors)} uncorrectable errors"

    def __init__(self, ctx: Context, dc: Datacenter, config: Config | None):
        super().__init__(ctx, dc, config)
        self._evacuating: dict[str, simpy.Process] = {}
        self._cluster_of: dict[str, list[str]] = {}
        self._pools: dict[tuple, tuple[Host, ...]] = {}  # (pool, scope) of a failing host -> its targets
        self._scope_index: dict[tuple, tuple] = {}  # (id(host list), scope) -> (the list, its scope groups)

    def wire(self) -> None:
        self.dc.bus.handle(ev.MEMORY_ERROR, self.handle)  # records every error; disabled, a UE crashes the host
        if not self.enabled:
            return
        names = [h.name for h in self.dc.host_list]
        for cluster in getattr(self.ctx.scenario, "clusters", ()):
            members = select(cluster.hosts, names)
            for n in members:
                self._cluster_of.setdefault(n, members)

    # -- services used ----------------------------------------------------------------------------
    @property
    def engine(self) -> Any:
        return self.ctx.services["live_migration"]

    # -- the handler --------------------------------------------------------------------------------
    def handle(self, host_name: str, err) -> bool:
        """Takes every memory error: records correctable ones; an uncorrectable one evacuates the host,
        or crashes it if an evacuation is under way or the mechanism is disabled (the naive behaviour)."""
        host = self.dc.hosts[err.host]
        if isinstance(err, CorrectableErrors):
            self.ctx.recorder.record(
                "memory_errors", time_s=err.at, host=err.host, dimm=err.dimm, kind="correctable", count=err.count,
                owner="", vm="", containment="", action="logged" if err.first else "counted", vms_evacuated=0,
                vms_crashed=0, end_s=err.at)
            return True
        if not self.enabled or host.name in self._evacuating:
            self._crash(host, err, owner="")
            return True
        self._evacuating[host.name] = self.env.process(self._evacuate(host, err))
        return True

    def _crash(self, host: Host, err, owner: str, vm: str = "") -> None:
        crashed = len(host.vms) + len(host.dependents)
        self.ctx.recorder.record(
            "memory_errors", time_s=err.at, host=host.name, dimm=err.dimm, kind="uncorrectable", count=1,
            owner=owner, vm=vm, containment="", action="host_crash", vms_evacuated=0, vms_crashed=crashed,
            end_s=self.env.now,
        )
        if self.enabled:
            self.ctx.recorder.trace(KEY, "host_crash", host.name, owner or "second error")
        err.take_down(HostDown(at=self.env.now, host=host.name, kind="memory_error"), DOWN)

    def _evacuate(self, host: Host, err):
        """Waits ``signal_latency``, contains the error, migrates every VM away, sends the host to repair.

        Yields the signal timeout and the VMs' migration processes; interrupted (as a host
        watcher) when the host fails meanwhile.
        """
        me = self.env.active_process
        watch = self.dc.bus.watch(me, ((ev.HOST, host.name),))
        rng = self.ctx.streams.get(f"evacuation/{host.name}")
        tally = _Tally()
        owner, vm_name, containment, action = "", "", "", "evacuated"
        try:
            yield self.env.timeout(self.config.signal_latency)
            owner, vm = self._owner(host, float(rng.random()))
            if owner == "hypervisor":
                watch.cancel()
                del self._evacuating[host.name]
                self._crash(host, err, owner="hypervisor")
                return
            self.dc.enter_maintenance(host, KEY)  # up, but takes no new VMs (restarts go elsewhere)
            if vm is not None:
                vm_name = vm.name
                if rng.random() < self.config.guest_crash_probability:
                    containment = "guest_crash"
                    tally.crashed += 1
                    self.dc.stop_vm(vm, MemoryErrorCause(at=self.env.now, host=host.name))
                else:
                    containment = "page_lost"
            else:
                containment = "page_retired"
            self.ctx.recorder.trace(KEY, "evacuate", host.name, f"{owner} {vm_name} {containment}")
            movers = [self.env.process(self._move(host, v, rng, tally))
                      for v in sorted(host.vms.values(), key=lambda v: v.name)
                      if v.state == RUNNING and not v.migrating]
            if movers:
                yield self.env.all_of(movers)
            # VMs with nowhere to go (or booting here) are shut down by the repair.
            tally.crashed += len(host.vms) + len(host.dependents)
            watch.cancel()
            del self._evacuating[host.name]
            err.take_down(HostDown(at=self.env.now, host=host.name, kind="memory_error"), REPAIR)
            self.dc.exit_maintenance(host, KEY)
        except simpy.Interrupt:
            # The host failed during the evacuation: a second uncorrectable error (its own row says
            # host_crash) or another fault. VMs still on it were stopped by that failure.
            action = "interrupted"
            self.dc.exit_maintenance(host, KEY)
            if self._evacuating.get(host.name) is me:
                del self._evacuating[host.name]
        if owner == "hypervisor":
            return
        self.ctx.recorder.record(
            "memory_errors", time_s=err.at, host=host.name, dimm=err.dimm, kind="uncorrectable", count=1,
            owner=owner, vm=vm_name, containment=containment, action=action,
            vms_evacuated=tally.evacuated, vms_crashed=tally.crashed, end_s=self.env.now,
        )

    def _owner(self, host: Host, u: float) -> tuple[str, VM | None]:
        """Where a uniformly placed physical address falls: hypervisor, a VM (by name order) or free."""
        x = u * host.memory
        if x < host.reserved_memory:
            return "hypervisor", None
        x -= host.reserved_memory
        for vm in sorted(host.vms.values(), key=lambda v: v.name):
            if x < vm.spec.memory:
                return "vm", vm
            x -= vm.spec.memory
        return "free", None

    def _move(self, host: Host, vm: VM, rng, tally: _Tally):
        """Migrates one VM off ``host``, trying another target when one fails; yields migrations."""
        failed = None  # a retry never picks the target that just failed
        for _ in range(_ATTEMPTS):
            if vm.host is not host or vm.state != RUNNING or vm.migrating or host.state in (DOWN, REPAIR):
                return
            target = self._target(host, vm, rng, failed)
            if target is None:
                return
            result = yield self.engine.migrate(vm, target, "memory_error", mechanism=KEY)
            if result.completed:
                tally.evacuated += 1
                return
            failed = target

    def _scoped(self, hosts: list, host: Host, scope: str) -> list[Host]:
        """Those of ``hosts`` (host names or hosts) in ``host``'s domain or site as ``scope`` says,
        in their order: from an index built once per list, so a pool costs its own size, not the
        cluster's (a site-wide cluster of 50,000 hosts scanned once per domain was quadratic)."""
        scope_of = self.engine.scope_of
        index = self._scope_index.get((id(hosts), scope))
        if index is None:
            groups: dict[object, list[Host]] = {}
            for h in hosts:
                h = self.dc.hosts[h] if isinstance(h, str) else h
                groups.setdefault(scope_of(h, scope), []).append(h)
            index = self._scope_index[(id(hosts), scope)] = (hosts, groups)
        return index[1].get(scope_of(host, scope), [])

    def _target(self, host: Host, vm: VM, rng, failed: Host | None = None) -> Host | None:
        """A healthy host with room: in the ``target_hosts`` pool and the migration scope, and where
        the VM's owner lets it go (``dc.rule_for``: a mechanism's VM keeps its owner's constraints).

        The pool depends only on the failing host's cluster (or domain) and its place in the
        scope (domain, site or none), and is computed once per distinct pair. The failing host is in maintenance (never chosen);
        ``failed``, the target that just failed, is excluded.
        """
        placement = self.dc.placement
        names = self._cluster_of.get(host.name) if self.config.target_hosts == "same_cluster" else None
        scope = self.engine.config.scope
        key = (id(names) if names else (host.domain if self.config.target_hosts != "any" else None),
               self.engine.scope_of(host))
        pool = self._pools.get(key)
        if pool is None:
            match self.config.target_hosts:
                case "same_cluster":
                    hosts = self._scoped(names, host, scope) if names else host.domain.hosts
                case "same_domain":
                    hosts = host.domain.hosts
                case _:
                    hosts = self._scoped(self.dc.host_list, host, scope)
            pool = self._pools[key] = tuple(hosts)  # each list above holds hosts in the scope only
        rule = placement.within(self.dc.rule_for(vm), pool)
        target = placement.choose(vm, rule, exclude=failed or host, rng=rng)
        placement.release(rule)
        return target
