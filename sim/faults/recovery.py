"""Default recovery: the naive behaviour every mechanism is compared against.

A stopped workload VM that no mechanism takes (the last handler of the ``vm_stopped``
claim chain) is restarted after ``infrastructure.detection`` (the HA heartbeat notices)
plus the VM's ``boot_time``. A guest crash keeps its memory reserved on its host, and it
reboots there; otherwise it restarts on another host its placement selector allows,
chosen by its placement rule. With no room anywhere it is first offered on the ``no_room``
claim chain (live recovery may take it), else it waits in the placement service's
queue of its rule (``dc.placement``) until room that fits it appears. The
interruption is an incident closed ``restarted``; each restart is a row of ``restarts``.
A stale restart (the VM stopped again meanwhile) gives up by epoch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.core.causes import Cause
from sim.infra import events as ev
from sim.infra.datacenter import BOOTING, RUNNING, VM, Datacenter, Host

if TYPE_CHECKING:
    from sim.core.context import Context


class DefaultRecovery:
    def __init__(self, ctx: Context, dc: Datacenter):
        self.ctx = ctx
        self.dc = dc
        self.env = ctx.env
        self.detection = ctx.scenario.infrastructure.detection

    def wire(self) -> None:
        """Last in the ``vm_stopped`` chain: after every enabled mechanism."""
        self.dc.bus.handle(ev.VM_STOPPED, self.take)

    def take(self, name: str, what: tuple[VM, Cause]) -> bool:
        vm, cause = what
        self.env.process(self.restart(vm, cause, vm.epoch, vm.last_host))
        return True

    def find_host(self, vm: VM) -> Host | None:
        return self.dc.placement.choose(vm)

    def restart(self, vm: VM, cause: Cause, epoch: int, last: Host | None):
        """Waits detection, then for room, then the VM's boot; yields timeouts and placement waits."""
        # One continuous outage: a VM stopped again while it booted keeps its first stop time.
        stopped = vm.incident.start_s if vm.incident is not None else self.env.now
        yield self.env.timeout(self.detection)
        if vm.epoch != epoch:
            return
        waited_from = self.env.now
        host = vm.host  # a crashed guest kept its memory on its host: it reboots there
        if host is not None:
            self.dc.set_state(vm, BOOTING)
            self.ctx.recorder.record("placements", vm=vm.name, host=host.name, reason="restart")
        else:
            host = self.find_host(vm)
            if host is None and self.dc.bus.offer(ev.NO_ROOM, vm.name, (vm, cause)):
                return  # a mechanism took it (live recovery)
            while host is None:
                yield self.dc.placement.wait(vm)
                if vm.epoch != epoch:
                    self.dc.placement.cancel(vm)
                    return
                host = self.find_host(vm)
            self.dc.place(vm, host, BOOTING, reason="restart")
        waited = self.env.now - waited_from
        yield self.env.timeout(vm.spec.boot_time)
        if vm.epoch != epoch:
            return
        self.dc.set_state(vm, RUNNING)
        if vm.incident is not None:
            vm.incident.mechanism = "default"
        self.dc.resume(vm, "restarted")
        self.ctx.recorder.trace("default", "restarted", vm.name, host.name)
        self.ctx.recorder.record(
            "restarts", vm=vm.name, cause=cause.kind, from_host=last.name if last else "",
            to_host=host.name, waited_s=waited, downtime_s=self.env.now - stopped, time_s=stopped,
        )
