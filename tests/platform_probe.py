"""A small mechanism written only through the contract (``sim.mechanisms.base``), for platform tests.

``probe`` owns ``vms`` VMs (built through the shared placement), records every stop,
repair and ping in its own ``probes`` table, sums them in ``probe.events_total``,
carries out a ``ping`` operation, and optionally takes workload VMs that find no room.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from sim.infra import events as ev
from sim.infra.datacenter import RUNNING, VMSpec
from sim.mechanisms.base import Mechanism, MechanismConfig
from sim.metrics.meta import Metric
from sim.metrics.summary import count
from sim.metrics.tables import table
from sim.scenario.schema import OperationBase
from sim.scenario.types import Duration, Globs, Size

GiB = 1024.0**3

PROBES = table("probes", "time_s", "vm:str", "event:str", "host:str")


def probe_metrics(t, info):
    p = t["probes"]
    return {"probe.events_total": count(p), "probe.stops": count(p, p["event"] == "stopped")}


class Ping(OperationBase):
    refs: ClassVar[dict[str, str]] = {"vm": "vm"}
    kind: Literal["ping"]
    vm: str


class Config(MechanismConfig):
    vms: int = 2
    memory: Size = 8 * GiB
    hosts: Globs = ("*",)
    vm_mtbf: Duration | None = None
    repair: Duration = 3600.0
    take_no_room: bool = False


class Probe(Mechanism):
    key = "probe"
    Config = Config
    tables = (PROBES,)
    summaries = (probe_metrics,)
    metrics = (Metric("probe.events_total", "count", "probe records"),
               Metric("probe.stops", "count", "probe VMs stopped", False))
    operations = {"ping": Ping}
    offers = ("probing",)

    def build(self, builder):  # runs only when enabled (no naive behaviour): no guard
        spec = VMSpec(vcpus=1, memory=self.config.memory, disk=GiB, dirty_rate=0.0, working_set=0.0, boot_time=60.0)
        for i in range(self.config.vms):
            builder.vm(self.key, f"probe-{i:03d}", spec, self.config.hosts, "mechanisms.probe.vms",
                       mtbf=self.config.vm_mtbf, repair=self.config.repair)

    def wire(self):
        for vm in self.dc.vms.values():
            if vm.owner == self.key:
                self.dc.bus.subscribe(ev.VM, self._repaired, vm.name, phase=ev.UP)
        if self.config.take_no_room:
            self.dc.bus.handle(ev.NO_ROOM, self._take)

    def _note(self, vm, event):
        self.ctx.recorder.record("probes", vm=vm.name, event=event, host=vm.host.name if vm.host else "")

    def vm_stopped(self, vm, cause):
        self._note(vm, "stopped")

    def _repaired(self, failure):
        vm = self.dc.vms[failure.subject]
        if vm.host is not None and vm.state != RUNNING:
            self.dc.set_state(vm, RUNNING)
            self.dc.resume(vm, "restarted")
            self._note(vm, "repaired")

    def _take(self, name, what):
        vm, _cause = what
        self._note(vm, "took")
        return True

    def carry_out(self, op):
        self._note(self.dc.vms[op.vm], "ping")
        return "pong"
        yield  # a generator, as the contract requires


class Needy(Mechanism):
    """Needs a service: the platform refuses to wire it without one."""

    key = "needy"
    Config = MechanismConfig
    needs = ("live_migration",)


class Orphan(Mechanism):
    key = "orphan"
    Config = MechanismConfig
    needs = ("nobody_offers_this",)


class Greedy(Mechanism):
    """Claims ``ping`` too."""

    key = "greedy"
    Config = MechanismConfig
    operations = {"ping": Ping}
