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
which restarts in place (its memory stays reserved on its host through detection and
reboot); ``image_drift`` changes one random component of a host's running image (it stays
until something remediates it); ``dimm_errors`` are drawn by ``sim.faults.dimm``. Every
occurrence is a row of ``faults``. Effects go through the ``Datacenter``, which publishes
them on its failure bus (``sim.infra.events``); nothing here reads a mechanism.

Mechanism-created VMs with an ``mtbf`` (sessions' ``vm_mtbf``) fail here too, through the
same path: exponential times to failure while the VM runs (stream ``faults/vm/<vm>``), an
exponential repair of mean ``vm.repair`` (mechanisms' repairs are exponential, MECHANISMS.md
"Fault effects"), then ``vm`` ``up`` on the bus: its owner decides what the repaired VM does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from sim.core.causes import Cause, HostDown, LinkDown, StorageDown, VmCrash
from sim.infra import events as ev
from sim.infra.datacenter import RUNNING, Datacenter
from sim.scenario.names import select

if TYPE_CHECKING:
    import numpy as np

    from sim.core.context import Context


@dataclass(frozen=True, slots=True)
class _Renewal:
    kind: str
    target: str
    mtbf: float
    repair: float
    rng: np.random.Generator

# Kinds injected here; the others are handled by their mechanisms' injectors.
GENERIC_KINDS = (
    "host_crash", "broadcast_domain_outage", "link_failure", "site_outage", "disk_failure",
    "storage_outage", "vm_crash", "image_drift",
)
ONE_SHOT = ("vm_crash", "image_drift")  # nothing to undo at a fixed repair time


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
            case "host_crash" | "disk_failure" | "image_drift":
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
                return [n for n, vm in dc.vms.items() if vm.owner is None]
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
            repair = getattr(spec, "repair", None)
            repair = repair if repair is not None else self.default_repair
            targets = self._match(kind, spec.target)
            if spec.at is not None:
                if spec.at <= self.duration:
                    self.env.process(self._scheduled(kind, targets, spec.at, repair))
            else:
                for t in targets:
                    rng = self.ctx.streams.get(f"faults/{kind}.{k}/{t}")
                    self._renew(_Renewal(kind, t, spec.mtbf, repair, rng))
        for vm in self.dc.vms.values():
            if vm.mtbf is not None:
                self._vm_renew(vm, self.ctx.streams.get(f"faults/vm/{vm.name}"))

    def _at(self, delay: float, callback) -> None:
        """``callback(event)`` after ``delay``; nothing at all when that is after the run (it never happens)."""
        if self.env.now + delay <= self.duration:
            self.env.timeout(delay).callbacks.append(callback)

    def _scheduled(self, kind: str, targets: list[str], at: float, repair: float):
        """Waits until ``at``, applies the fault to each target, waits ``repair``, undoes it."""
        yield self.env.timeout(at)
        undo = [self.apply(kind, t, repair) for t in targets]
        if kind in ONE_SHOT:
            return
        yield self.env.timeout(repair)
        for u in undo:
            if u is not None:
                u()

    # An alternating renewal per target, driven by timeout callbacks (no process per target: a
    # fleet has hundreds of thousands): exponential time to failure (mean ``mtbf``), the fault,
    # its fixed ``repair``, the next time to failure. The draws are those of a loop that draws
    # a time to failure, applies the fault and waits its repair.
    def _renew(self, r: _Renewal) -> None:
        self._at(float(r.rng.exponential(r.mtbf)), partial(self._fail, r))

    def _fail(self, r: _Renewal, _event) -> None:
        undo = self.apply(r.kind, r.target, r.repair, r.rng)
        if undo is None:
            self._renew(r)
            return
        self._at(r.repair, partial(self._repaired, r, undo))

    def _repaired(self, r: _Renewal, undo: Callable[[], None], _event) -> None:
        undo()
        self._renew(r)

    def _vm_renew(self, vm, rng) -> None:
        """A mechanism's VM: exponential time to failure (mean ``vm.mtbf``) while it runs, then an
        exponential repair (mean ``vm.repair``), then ``vm up`` on the bus for its owner."""
        self._at(float(rng.exponential(vm.mtbf)), partial(self._vm_fail, vm, rng))

    def _vm_fail(self, vm, rng, _event) -> None:
        if vm.state != RUNNING:
            self._vm_renew(vm, rng)  # not running: nothing to fail (a renewal from now, memoryless)
            return
        repair = float(rng.exponential(vm.repair)) if vm.repair else 0.0
        now = self.env.now
        self.ctx.recorder.record("faults", kind="vm_crash", target=vm.name, repair_s=repair, end_s=now + repair)
        self.ctx.recorder.trace("faults", "vm_crash", vm.name)
        self.dc.stop_vm(vm, VmCrash(at=now, vm=vm.name), keep_host=True)
        self._at(repair, partial(self._vm_repaired, vm, rng))

    def _vm_repaired(self, vm, rng, _event) -> None:
        self.dc.vm_repaired(vm)  # its owner brings it back
        self._vm_renew(vm, rng)

    # -- effects -----------------------------------------------------------------------------------------
    def apply(self, kind: str, target: str, repair: float, rng=None) -> Callable[[], None] | None:
        """Applies one fault now; returns what undoes it at repair (None if nothing to undo)."""
        dc = self.dc
        now = self.env.now
        if kind == "vm_crash" and dc.vms[target].state != RUNNING:
            return None  # a guest that is not running cannot crash
        if kind == "image_drift" and not dc.hosts[target].image:
            return None  # a host with no image (in no cluster) has nothing to drift
        end = now if kind in ONE_SHOT else now + repair
        self.ctx.recorder.record("faults", kind=kind, target=target, repair_s=end - now, end_s=end)
        self.ctx.recorder.trace("faults", kind, target)
        match kind:
            case "host_crash":
                host = dc.hosts[target]
                dc.host_down(host, HostDown(at=now, host=target, kind=kind))
                return lambda: dc.host_repaired(host)
            case "disk_failure":
                host = dc.hosts[target]
                dc.disk_failed(host, HostDown(at=now, host=target, kind=kind))
                return lambda: dc.disk_repaired(host)
            case "broadcast_domain_outage" | "site_outage":
                if kind == "broadcast_domain_outage":
                    topic, hosts = ev.DOMAIN, dc.domains[target].hosts
                else:
                    topic, hosts = ev.SITE, dc.sites[target].hosts

                def cause(name: str, kind=kind) -> Cause:
                    return HostDown(at=now, host=name, kind=kind)

                dc.group_down(topic, target, hosts, cause)
                return lambda: dc.group_up(topic, target, hosts)
            case "link_failure":
                dc.link_down(target, LinkDown(at=now, link=target))
                return lambda: dc.link_up(target)
            case "storage_outage":
                st = dc.storage[target]
                dc.storage_down(st, StorageDown(at=now, storage=target))
                return lambda: dc.storage_up(st)
            case "vm_crash":
                # A guest may crash mid-migration too: the engine sees the stop and aborts.
                dc.stop_vm(dc.vms[target], VmCrash(at=now, vm=target), keep_host=True)
                return None
            case "image_drift":
                image = dc.hosts[target].image
                r = rng if rng is not None else self.ctx.streams.get(f"faults/image_drift/{target}")
                component = sorted(image)[int(r.integers(len(image)))]
                image[component] = f"{image[component]}+drift{int(r.integers(1, 1_000_000))}"
                return None
        raise ValueError(kind)
