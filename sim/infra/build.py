"""Build the datacenter of a resolved scenario: topology, hosts, storage, VMs placed.

All of it happens before time 0 (desmod's elaborate-then-run): a workload that
cannot be placed is an input error reported with its dotted path, before the run.
Mechanisms then create the VMs they own through a ``Builder`` (same placement, same
rule: a VM that does not fit is an input error with the mechanism's dotted path).
``shape_problems`` is the one check of a VM's shape against the hosts it may use (vCPUs
above every such host's cores, a disk larger than every such host's disk, a working set
larger than its memory), applied to every VM, a workload's or a mechanism's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from sim.core.errors import Problem
from sim.infra.datacenter import RUNNING, VM, Datacenter, Host, VMSpec
from sim.infra.network import Network
from sim.infra.solver import FlowSolver
from sim.infra.transfer import Transfers
from sim.scenario.names import host_name, select, vm_name

if TYPE_CHECKING:
    from sim.core.context import Context


def _size(n: float) -> str:
    for unit, scale in (("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if n >= scale:
            return f"{n / scale:g}{unit}"
    return f"{n:g}B"


def shape_problems(spec: VMSpec, hosts: Iterable[Host], path: str, what: str = "",
                   fields: bool = False) -> list[Problem]:
    """Problems of a VM shape against the hosts it may be placed on (empty when none).

    ``fields``: each problem's path is ``path.vcpus`` / ``.disk`` / ``.working_set`` (a workload's
    ``vm``); else ``path`` itself, with ``what`` (the VM's name) in the message (a mechanism's VM)."""
    cores = disk = 0.0
    for h in hosts:
        cores = max(cores, h.cores)
        disk = max(disk, h.disk_capacity)
    of = f" for {what}" if what else ""
    out: list[Problem] = []

    def add(field: str, message: str) -> None:
        out.append(Problem(f"{path}.{field}" if fields else path, message))

    if cores and spec.vcpus > cores:
        add("vcpus", f"expected at most {cores:g} vCPUs (the most cores of any host its placement allows), "
                     f"got {spec.vcpus}{of}")
    if disk and spec.disk > disk:
        add("disk", f"expected a disk of at most {_size(disk)} (the largest disk of any host its placement "
                    f"allows), got {_size(spec.disk)}{of}")
    if spec.working_set > spec.memory:
        add("working_set", f"expected a working set of at most the VM's memory ({_size(spec.memory)}), got "
                           f"{_size(spec.working_set)}{of}")
    return out


def build_datacenter(ctx: Context) -> tuple[Datacenter, list[Problem]]:
    """The datacenter of ``ctx.scenario``, and the placement problems found (empty when all fit)."""
    sc = ctx.scenario
    infra = sc.infrastructure
    solver = FlowSolver(ctx.env)
    dc = Datacenter(ctx, Network(ctx.env, solver))
    dc.transfers = Transfers(dc)
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

    _images(sc, dc)
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
        shape = shape_problems(spec, (dc.hosts[n] for n in allowed), f"workloads.{w_index}.vm", fields=True)
        if shape:
            problems += shape
            continue
        vms = [
            dc.add_vm(VM(vm_name(w.name, i, w.count), w.name, spec, w.service or w.name, allowed,
                         w.placement.spread, rule=rule))
            for i in range(w.count)
        ]
        rng = ctx.streams.get(f"placement/{w.name}")
        unplaced = dc.placement.deal(vms, rule, lambda vm, host: dc.place(vm, host, RUNNING, reason="initial"), rng)
        if unplaced:
            problems.append(Problem(
                f"workloads.{w_index}.count",
                f"expected VMs that fit in the memory of hosts {list(w.placement.hosts)}, "
                f"got {w.count} VMs of which {len(unplaced)} do not fit",
            ))
    return dc, problems


def _images(sc, dc: Datacenter) -> None:
    """Each cluster host runs its cluster's image at time 0; a standalone host runs the base and
    add-on of the cluster it derives from plus its own components (a standalone host's desired image derives from a cluster's)."""
    names = list(dc.hosts)
    by_cluster = {}
    for c in sc.clusters:
        flat = {"base": c.image.base, **({"addon": c.image.addon} if c.image.addon else {}), **c.image.components}
        by_cluster[c.name] = c.image
        for n in select(c.hosts, names):
            dc.hosts[n].image = dict(flat)
    for sh in sc.standalone_hosts:
        img = by_cluster.get(sh.derive_from)
        if sh.host in dc.hosts and img is not None:
            dc.hosts[sh.host].image = {"base": img.base, **({"addon": img.addon} if img.addon else {}),
                                       **sh.components}


class Builder:
    """What a mechanism's ``build`` step uses to create the VMs it owns, before time 0.

    ``vm(...)`` creates one VM owned by the mechanism and places it through the shared
    placement (the rule of its ``hosts`` selector and ``spread``), avoiding the given
    hosts (two VMs that stand in for each other never share a host) and, where it can, their
    broadcast domains. A VM that does not fit is recorded as a problem at ``path`` and
    None is returned; the run then stops with every problem, exit 2.
    """

    def __init__(self, ctx: Context, dc: Datacenter, problems: list[Problem]):
        self.ctx = ctx
        self.dc = dc
        self.problems = problems
        self._names = list(dc.hosts)
        self._selected: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._shapes: dict[tuple[str, VMSpec, tuple[str, ...]], bool] = {}  # (path, shape, hosts) -> fits

    def hosts(self, globs: Sequence[str]) -> tuple[str, ...]:
        """Host names a selector matches (resolved once per distinct selector)."""
        key = tuple(globs)
        hit = self._selected.get(key)
        if hit is None:
            hit = self._selected[key] = tuple(select(list(globs), self._names))
        return hit

    def vm(self, owner: str, name: str, spec: VMSpec, hosts: Sequence[str], path: str, *,
           group: str | None = None, service: str | None = None, spread: str = "broadcast_domain",
           avoid: Iterable[Host] = (), mtbf: float | None = None, repair: float | None = None) -> VM | None:
        """Create VM ``name`` owned by mechanism ``owner`` and place it (running); None if it does not fit.

        ``group`` plays the part of a workload for spreading (default: ``owner``); ``mtbf`` and
        ``repair`` make ``sim.faults`` fail and repair it (exponential times)."""
        dc = self.dc
        if name in dc.vms:
            self.problems.append(Problem(path, f"expected a VM name not used yet, got {name!r} twice"))
            return None
        allowed = self.hosts(hosts)
        key = (path, spec, tuple(hosts))
        fits = self._shapes.get(key)
        if fits is None:  # once per shape, selector and path: O(hosts) each, one problem each
            shape = shape_problems(spec, (dc.hosts[n] for n in allowed), path, name)
            self.problems.extend(shape)
            fits = self._shapes[key] = not shape
        if not fits:
            return None
        group = group or owner
        place = dc.placement
        rule = place.rule(allowed, spread)
        vm = VM(name, group, spec, service or group, allowed, spread, rule=rule, owner=owner, mtbf=mtbf,
                repair=repair)
        avoid = [h for h in avoid if h is not None]
        rng = self.ctx.streams.get(f"placement/{owner}/{group}")
        host = None
        if avoid:
            # Apart from the avoided hosts' domains where it can, else apart from the hosts: derived
            # rules (O(hosts left out)), released at once.
            for away in ({"domains": {h.domain for h in avoid}}, {"hosts": avoid}):
                apart = place.without(rule, **away)
                if len(apart):
                    host = place.choose(vm, apart, rng=rng)
                place.release(apart)
                if host is not None:
                    break
        else:
            host = place.choose(vm, rule, rng=rng)
        if host is None:
            self.problems.append(Problem(path, f"expected a VM of {spec.memory / 2**30:g} GiB that fits in the "
                                               f"free memory of hosts {list(hosts)}, got no host with room for {name}"))
            return None
        dc.add_vm(vm)
        dc.place(vm, host, RUNNING, reason="build")
        return vm
