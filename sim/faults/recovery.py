"""Default recovery: the naive behaviour every mechanism is compared against.

A stopped VM that no mechanism takes is restarted after ``infrastructure.detection``
(the HA heartbeat notices) plus the VM's ``boot_time``: on its own host if that host is
up with room (a guest crash), else on another host its placement selector allows,
chosen by its placement rule (``dc.placement``). With no room anywhere it waits in the
placement service's queue of its rule until room that fits it appears.
The interruption is an incident closed ``restarted``; each restart is a row of
``restarts``. A stale restart (the VM stopped again meanwhile) gives up by epoch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.core.causes import Cause, VmCrash
from sim.infra.datacenter import BOOTING, RUNNING, VM, Datacenter, Host

if TYPE_CHECKING:
    from sim.core.context import Context


class DefaultRecovery:
    def __init__(self, ctx: Context, dc: Datacenter):
        self.ctx = ctx
        self.dc = dc
        self.env = ctx.env
        self.detection = ctx.scenario.infrastructure.detection

    def handle(self, vm: VM, cause: Cause) -> bool:
        last = vm.last_host
        self.env.process(self.restart(vm, cause, vm.epoch, last))
        return True

    def find_host(self, vm: VM, prefer: Host | None) -> Host | None:
        return self.dc.placement.choose(vm, prefer=prefer)

    def restart(self, vm: VM, cause: Cause, epoch: int, last: Host | None):
        """Waits detection, then for room, then the VM's boot; yields timeouts and placement waits."""
        # One continuous outage: a VM stopped again while it booted keeps its first stop time.
        stopped = vm.incident.start_s if vm.incident is not None else self.env.now
        yield self.env.timeout(self.detection)
        if vm.epoch != epoch:
            return
        prefer = last if isinstance(cause, VmCrash) else None
        waited_from = self.env.now
        host = self.find_host(vm, prefer)
        while host is None:
            yield self.dc.placement.wait(vm)
            if vm.epoch != epoch:
                return
            host = self.find_host(vm, prefer)
        waited = self.env.now - waited_from
        self.dc.place(vm, host, BOOTING)
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
