"""Default recovery: the naive behaviour every mechanism is compared against.

A stopped workload VM that no mechanism takes (the last handler of the ``vm_stopped``
claim chain) is restarted after ``infrastructure.detection`` (the HA heartbeat notices)
plus the VM's ``boot_time``. A guest crash keeps its memory reserved on its host, and it
reboots there; otherwise it restarts on another host its placement selector allows,
chosen by its placement rule. With no room anywhere it is first offered on the ``no_room``
claim chain (a mechanism may take it), else it waits in the placement service's
queue of its rule (``dc.placement``) until room that fits it appears. The
interruption is an incident closed ``restarted``; each restart is a row of ``restarts``.
A stale restart (the VM stopped again meanwhile) gives up by epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from sim.core.causes import Cause
from sim.infra import events as ev
from sim.infra.datacenter import BOOTING, VM, Datacenter, Host

if TYPE_CHECKING:
    from sim.core.context import Context


@dataclass(slots=True, eq=False)
class _Restart:
    """One restart in progress (a chain of timeout callbacks, no process: restarts are hot)."""

    vm: VM
    cause: Cause
    epoch: int
    last: Host | None
    stopped: float  # when the outage began
    waited_from: float = 0.0
    waited: float = 0.0
    host: Host | None = None


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
        """Waits detection, then for room, then the VM's boot (timeouts and placement waits)."""
        vm, cause = what
        # One continuous outage: a VM stopped again while it booted keeps its first stop time.
        stopped = self.dc.outage_start(vm)
        if stopped is None:
            stopped = self.env.now
        r = _Restart(vm, cause, vm.epoch, vm.last_host, stopped)
        self.env.timeout(self.detection).callbacks.append(partial(self._detected, r))
        return True

    def find_host(self, vm: VM) -> Host | None:
        return self.dc.placement.choose(vm)

    def _detected(self, r: _Restart, _event) -> None:
        vm = r.vm
        if vm.epoch != r.epoch:
            return  # stale: stopped again meanwhile
        r.waited_from = self.env.now
        host = vm.host  # a crashed guest kept its memory on its host: it reboots there
        if host is not None:
            self.dc.reboot(vm)
            self._boot(r, host)
            return
        host = self.find_host(vm)
        if host is not None:
            self._boot_on(r, host)
        elif not self.dc.bus.offer(ev.NO_ROOM, vm.name, (vm, r.cause)):  # a mechanism may take it
            self._wait(r)

    def _wait(self, r: _Restart) -> None:
        self.dc.placement.wait(r.vm).callbacks.append(partial(self._woken, r))

    def _woken(self, r: _Restart, _event) -> None:
        if r.vm.epoch != r.epoch:
            self.dc.placement.cancel(r.vm)
            return
        host = self.find_host(r.vm)
        if host is None:
            self._wait(r)
        else:
            self._boot_on(r, host)

    def _boot_on(self, r: _Restart, host: Host) -> None:
        self.dc.place(r.vm, host, BOOTING, reason="restart")
        self._boot(r, host)

    def _boot(self, r: _Restart, host: Host) -> None:
        r.host = host
        r.waited = self.env.now - r.waited_from
        self.env.timeout(r.vm.spec.boot_time).callbacks.append(partial(self._booted, r))

    def _booted(self, r: _Restart, _event) -> None:
        vm, host = r.vm, r.host
        if vm.epoch != r.epoch:
            return
        self.dc.resume(vm, "restarted", mechanism="default")
        self.ctx.recorder.trace("default", "restarted", vm.name, host.name)
        self.ctx.recorder.record(
            "restarts", vm=vm.name, cause=r.cause.kind, from_host=r.last.name if r.last else "",
            to_host=host.name, waited_s=r.waited, downtime_s=self.env.now - r.stopped, time_s=r.stopped,
        )
