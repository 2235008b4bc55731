"""A small mechanism that owns a pair of VMs and keeps where they may go, for owner-rule tests.

``pair`` builds a ``primary`` and a ``copy`` (1 GiB each, ``pack`` by host order, the copy
never on the primary's host) and answers ``placement_rule``: the copy may go to any host of
its rule but the primary's current host and the host it is migrating to, and the primary to
any but the copy's. It records
every stop of its VMs in ``pair_stops`` and does nothing else (a stopped VM stays stopped).
"""

from __future__ import annotations

from sim.infra.datacenter import VMSpec
from sim.mechanisms.base import Mechanism, MechanismConfig
from sim.metrics.tables import table
from sim.scenario.types import Globs

GiB = 1024.0**3

PAIR_STOPS = table("pair_stops", "time_s", "vm:str", "cause:str")


class Config(MechanismConfig):
    hosts: Globs = ("*",)
    memory: float = GiB


class Pair(Mechanism):
    key = "pair"
    Config = Config
    tables = (PAIR_STOPS,)

    def __init__(self, ctx, dc, config):
        super().__init__(ctx, dc, config)
        self.partner = {}
        self._rules = {}  # (vm name, host kept away from) -> rule

    def build(self, builder):
        if self.config is None:
            return
        spec = VMSpec(vcpus=1, memory=self.config.memory, disk=GiB, dirty_rate=0.0, working_set=0.0, boot_time=60.0)
        primary = builder.vm(self.key, "primary", spec, self.config.hosts, "mechanisms.pair", spread="pack")
        copy = builder.vm(self.key, "copy", spec, self.config.hosts, "mechanisms.pair", spread="pack",
                          avoid=(primary.host,))
        self.partner = {"primary": copy, "copy": primary}

    def placement_rule(self, vm):
        partner = self.partner[vm.name]
        away = tuple(h for h in (partner.host, self.ctx.services["live_migration"].target_of(partner))
                     if h is not None)
        if not away:
            return None
        key = (vm.name, away)
        rule = self._rules.get(key)
        if rule is None:
            rule = self._rules[key] = self.dc.placement.without(vm.rule, hosts=away)
        return rule

    def vm_stopped(self, vm, cause):
        self.ctx.recorder.record("pair_stops", vm=vm.name, cause=cause.kind)
