"""Fault injection: scheduled (``at`` + ``target``) and stochastic (``mtbf`` per target).

Each fault entry becomes SimPy processes. A stochastic entry runs one alternating
renewal process per target: an exponential time to failure with mean ``mtbf``
(from the stream ``faults/<kind>.<k>/<target>``, k the entry's ordinal among entries
of its kind, so other entries never shift its draws), the fault, its fixed
``repair`` (default ``infrastructure.repair``), then the next time to failure.
A scheduled entry applies its fault once at ``at`` to each target its selector
matches. Faults after the scenario's duration never happen.

Effects (MECHANISMS.md, Fault effects): ``host_crash`` stops a host and its VMs;
``broadcast_domain_outage`` and ``site_outage`` stop every host in them;
``link_failure`` sets a link's capacity to 0 (its flows stall until repair);
``disk_failure`` destroys what the host's disk stores and sends the host to repair;
``storage_outage`` fails every flow of the storage system; ``vm_crash`` stops one VM,
which restarts in place. ``dimm_errors`` and ``image_drift`` are driven by their
mechanisms' injectors. Every occurrence is a row of ``faults``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sim.core.causes import HostDown, StorageDown, VmCrash
from sim.infra.datacenter import DOWN, RUNNING, UP, Datacenter
from sim.scenario.names import select

if TYPE_CHECKING:
    from sim.core.context import Context

# Kinds injected here; the others are handled by their mechanisms' injectors.
GENERIC_KINDS = (
    "host_crash", "broadcast_domain_outage", "link_failure", "site_outage", "disk_failure",
    "storage_outage", "vm_crash",
)


class FaultInjector:
    def __init__(self, ctx: Context, dc: Datacenter):
        self.ctx = ctx
        self.dc = dc
        self.env = ctx.env
        self.duration = ctx.scenario.duration
        self.default_repair = ctx.scenario.infrastructure.repair

    # -- targets ------------------------------------------------------------------------------------
    def targets(self, kind: str) -> list[str]:
        dc = self.dc
        match kind:
            case "host_crash" | "disk_failure":
                return list(dc.hosts)
            case "broadcast_domain_outage":
                return list(dc.domains)
            case "site_outage":
                return list(dc.sites)
            case "link_failure":
                return dc.network.link_names()
            case "storage_outage":
                return list(dc.storage)
            case "vm_crash":
                return list(dc.vms)
        raise ValueError(kind)

    def _match(self, kind: str, target) -> list[str]:
        names = self.targets(kind)
        if target is None:
            return names
        globs = [target] if isinstance(target, str) else list(target)
        return select(globs, names)

    # -- wiring ---------------------------------------------------------------------------------------
    def start(self) -> None:
        ordinal: dict[str, int] = {}
        for spec in self.ctx.scenario.faults:
            kind = spec.kind
            k = ordinal.get(kind, 0)
            ordinal[kind] = k + 1
            if kind not in GENERIC_KINDS:
                continue
            repair = spec.repair if spec.repair is not None else self.default_repair
            targets = self._match(kind, spec.target)
            if spec.at is not None:
                if spec.at <= self.duration:
                    self.env.process(self._scheduled(kind, targets, spec.at, repair))
            else:
                for t in targets:
                    rng = self.ctx.streams.get(f"faults/{kind}.{k}/{t}")
                    self.env.process(self._stochastic(kind, t, spec.mtbf, repair, rng))

    def _scheduled(self, kind: str, targets: list[str], at: float, repair: float):
        """Waits until ``at``, applies the fault to each target, waits ``repair``, undoes it."""
        yield self.env.timeout(at)
        undo = [self.apply(kind, t, repair) for t in targets]
        if kind == "vm_crash":
            return
        yield self.env.timeout(repair)
        for u in undo:
            if u is not None:
                u()

    def _stochastic(self, kind: str, target: str, mtbf: float, repair: float, rng):
        """Alternating renewal: exponential time to failure (mean ``mtbf``), then ``repair``."""
        while True:
            yield self.env.timeout(float(rng.exponential(mtbf)))
            undo = self.apply(kind, target, repair)
            if kind == "vm_crash" or undo is None:
                continue
            yield self.env.timeout(repair)
            undo()

    # -- effects -----------------------------------------------------------------------------------------
    def apply(self, kind: str, target: str, repair: float) -> Callable[[], None] | None:
        """Applies one fault now; returns what undoes it at repair (None if nothing to undo)."""
        dc = self.dc
        now = self.env.now
        if kind == "vm_crash" and dc.vms[target].state != RUNNING:
            return None  # a guest that is not running cannot crash
        end = now if kind == "vm_crash" else now + repair
        self.ctx.recorder.record("faults", kind=kind, target=target, repair_s=end - now, end_s=end)
        self.ctx.recorder.trace("faults", kind, target)
        match kind:
            case "host_crash" | "disk_failure":
                host = dc.hosts[target]
                cause = HostDown(at=now, host=target, kind=kind)
                if kind == "disk_failure":
                    for listener in dc.disk_loss_listeners:
                        listener(host, cause)
                dc.host_down(host, cause, DOWN)
                return lambda: dc.host_repaired(host)
            case "broadcast_domain_outage" | "site_outage":
                hosts = dc.domains[target].hosts if kind == "broadcast_domain_outage" else dc.sites[target].hosts
                for host in hosts:
                    dc.host_down(host, HostDown(at=now, host=host.name, kind=kind), DOWN)

                def undo(hosts=hosts):
                    for h in hosts:
                        dc.host_repaired(h)
                return undo
            case "link_failure":
                dc.network.fail_link(target)
                return lambda: dc.network.repair_link(target)
            case "storage_outage":
                st = dc.storage[target]
                st.state = DOWN
                cause = StorageDown(at=now, storage=target)
                for rid in dc.network.storage_resources(target):
                    dc.network.solver.fail_resource(rid, cause)

                def undo_storage(st=st):
                    st.state = UP
                return undo_storage
            case "vm_crash":
                # A guest may crash mid-migration too: the engine sees the stop and aborts.
                dc.stop_vm(dc.vms[target], VmCrash(at=now, vm=target))
                return None
        raise ValueError(kind)
