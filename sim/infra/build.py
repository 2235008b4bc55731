"""Build the datacenter of a resolved scenario: topology, hosts, storage, VMs placed.

All of it happens before time 0 (desmod's elaborate-then-run): a workload that
cannot be placed is an input error reported with its dotted path, before the run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.core.errors import Problem
from sim.infra.datacenter import RUNNING, VM, Datacenter, VMSpec
from sim.infra.network import Network
from sim.infra.solver import FlowSolver
from sim.scenario.names import host_name, select, vm_name

if TYPE_CHECKING:
    from sim.core.context import Context


def build_datacenter(ctx: Context) -> tuple[Datacenter, list[Problem]]:
    """The datacenter of ``ctx.scenario``, and the placement problems found (empty when all fit)."""
    sc = ctx.scenario
    infra = sc.infrastructure
    solver = FlowSolver(ctx.env)
    dc = Datacenter(ctx, Network(ctx.env, solver))
    for site_spec in infra.sites:
        site = dc.add_site(site_spec.name, site_spec.region, site_spec.core)
        for dom_spec in site_spec.broadcast_domains:
            dom = dc.add_domain(site, dom_spec.name, dom_spec.uplink, dom_spec.latency)
            profile = infra.host_profiles[dom_spec.profile]
            for i in range(dom_spec.hosts):
                dc.add_host(dom, host_name(site.name, dom_spec.name, i, dom_spec.hosts), dom_spec.profile, profile)
    for wan in infra.wan:
        dc.network.add_wan(wan.sites[0], wan.sites[1], wan.bandwidth, wan.latency)
    for st in infra.storage:
        dc.add_storage(st.name, dc.sites[st.site], st.capacity, st.read, st.write)

    problems: list[Problem] = []
    all_hosts = list(dc.hosts)
    for w_index, w in enumerate(sc.workloads):
        allowed = tuple(select(w.placement.hosts, all_hosts))
        rule = dc.placement.rule(allowed, w.placement.spread)
        spec = VMSpec(
            vcpus=w.vm.vcpus, memory=w.vm.memory, disk=w.vm.disk, dirty_rate=w.vm.dirty_rate,
            working_set=w.vm.working_set if w.vm.working_set is not None else w.vm.memory,
            boot_time=w.vm.boot_time,
        )
        vms = [
            dc.add_vm(VM(vm_name(w.name, i, w.count), w.name, spec, w.service or w.name, allowed,
                         w.placement.spread, rule=rule))
            for i in range(w.count)
        ]
        rng = ctx.streams.get(f"placement/{w.name}")
        unplaced = dc.placement.deal(vms, rule, lambda vm, host: dc.place(vm, host, RUNNING), rng)
        if unplaced:
            problems.append(Problem(
                f"workloads.{w_index}.count",
                f"expected VMs that fit in the memory of hosts {list(w.placement.hosts)}, "
                f"got {w.count} VMs of which {len(unplaced)} do not fit",
            ))
    return dc, problems
