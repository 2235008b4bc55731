"""The passive datacenter model: sites, broadcast domains, hosts, DIMMs, disks, storage, VMs.

Components hold state and offer small, O(1) operations (allocate, release, reserve);
they never decide failures (``sim.faults`` does) and never aggregate metrics (they
emit records). Memory is the one resource placement never overcommits: a host gives
VMs ``memory - reserved_memory`` bytes, counting VMs running or booting there and
reservations held by incoming migrations. vCPUs are recorded but may be
overcommitted, as hypervisors allow; VM disks live on replicated site storage
(docs/model.md, "Where a VM's disk lives"), so a host's disk capacity does not limit placement.

Host states: ``up`` (serving), ``maintenance`` (up, takes no new VMs), ``down``
(failed: crash, outage, disk failure), ``repair`` (taken out by a mechanism). A host
hit by overlapping faults comes back only when the last one is repaired.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from sim.core.causes import Cause
from sim.infra import events as ev
from sim.infra.events import FailureBus
from sim.infra.placement import Placement

if TYPE_CHECKING:
    import simpy

    from sim.core.context import Context
    from sim.infra.network import Network
    from sim.infra.transfer import Transfers
    from sim.metrics.recorder import Incident

UP, MAINTENANCE, DOWN, REPAIR = "up", "maintenance", "down", "repair"
RUNNING, BOOTING, STOPPED, PAUSED, LOST = "running", "booting", "stopped", "paused", "lost"
_NAME = attrgetter("name")  # VMs stopped in name order


@dataclass(eq=False, slots=True)
class VMSpec:
    vcpus: int
    memory: float
    disk: float
    dirty_rate: float
    working_set: float
    boot_time: float


@dataclass(eq=False)
class VM:
    """A virtual machine. ``host`` is the one host it runs on (None while stopped)."""

    name: str
    workload: str
    spec: VMSpec
    service: str
    allowed: tuple[str, ...]  # host names its placement selector matches
    spread: str = "broadcast_domain"
    rule: Any = None  # its interned placement rule (sim.infra.placement.Rule), set at build
    owner: str | None = None  # the mechanism that created it handles its failures alone
    # A mechanism's VM may fail on its own (its owner's ``mtbf``): injected by sim.faults.
    mtbf: float | None = None
    repair: float | None = None  # mean of its exponential repair
    host: Host | None = None
    last_host: Host | None = None  # where it ran before it stopped
    state: str = STOPPED
    epoch: int = 0  # bumped at every stop: stale recovery processes compare and give up
    # Set and read by the Datacenter only: mechanisms say outcomes through its API (pause, resume, settle).
    incident: Incident | None = None  # the open incident of its current outage or pause
    out: bool = False  # stopped and not serving again yet: ``vm down`` published, ``vm up`` not yet
    settled: str | None = None  # outcome its open incident closes with, decided before it serves again
    migrating: bool = False

    @property
    def memory(self) -> float:
        return self.spec.memory

    def __repr__(self) -> str:
        return f"VM({self.name}@{self.host.name if self.host else None}, {self.state})"


@dataclass(eq=False)
class Host:
    name: str
    site: Site
    domain: Domain
    index: int
    profile: str
    cores: int
    memory: float
    reserved_memory: float
    dimms: int
    nic: float
    disk_capacity: float
    disk_read: float
    disk_write: float
    boot_time: float
    state: str = UP
    vms: dict[str, VM] = field(default_factory=dict)
    used_memory: float = 0.0  # VMs placed here (running, booting, paused)
    reserved: float = 0.0  # held for incoming migrations
    used_vcpus: int = 0
    faults: int = 0  # active faults keeping it down
    holders: dict[str, None] = field(default_factory=dict)  # who holds it in maintenance
    # VMs running elsewhere whose memory still lives here (a post-copy pull): lost if it fails.
    dependents: dict[str, VM] = field(default_factory=dict)
    # The running image, flat: {"base": "8.0.2", "addon": ..., "<component>": "<version>"} (drifts).
    image: dict[str, str] = field(default_factory=dict)

    @property
    def capacity(self) -> float:
        """Memory VMs may use: physical memory less the hypervisor's share."""
        return self.memory - self.reserved_memory

    @property
    def free_memory(self) -> float:
        return self.capacity - self.used_memory - self.reserved

    @property
    def available(self) -> bool:
        """Up and accepting new VMs."""
        return self.state == UP

    def fits(self, vm: VM) -> bool:
        return self.state == UP and self.free_memory >= vm.spec.memory

    def __repr__(self) -> str:
        return f"Host({self.name}, {self.state})"


@dataclass(eq=False)
class Domain:
    name: str  # "site/domain"
    short: str
    site: Site
    uplink: float
    latency: float
    hosts: list[Host] = field(default_factory=list)
    placed: dict[str, int] = field(default_factory=dict)  # workload -> VMs placed in this domain


@dataclass(eq=False)
class Site:
    name: str
    region: str
    core: float
    domains: list[Domain] = field(default_factory=list)

    @property
    def hosts(self) -> list[Host]:
        return [h for d in self.domains for h in d.hosts]


@dataclass(eq=False)
class Storage:
    name: str
    site: Site
    capacity: float
    read: float
    write: float
    used: float = 0.0
    state: str = UP
    outages: int = 0  # overlapping outages not yet over (they nest)


def _attach(host: Host, vm: VM) -> None:
    placed = host.domain.placed
    placed[vm.workload] = placed.get(vm.workload, 0) + 1
    host.vms[vm.name] = vm
    host.used_memory += vm.spec.memory
    host.used_vcpus += vm.spec.vcpus
    vm.host = host


def _detach(host: Host, vm: VM) -> None:
    host.domain.placed[vm.workload] -= 1
    del host.vms[vm.name]
    host.used_memory -= vm.spec.memory
    host.used_vcpus -= vm.spec.vcpus
    if not host.vms:
        host.used_memory = 0.0  # no float drift on an empty host
    vm.host = None


class Datacenter:
    """All infrastructure of one run, with the network, its bandwidth solver and the failure bus.

    Failures are decided in ``sim.faults`` and applied here, which publishes them on
    ``bus`` (``sim.infra.events``). A stopped VM goes to its owner: a mechanism's own
    VM to the handler its owner registered with ``bus.own`` alone; a workload VM is offered
    on the ``vm_stopped`` claim chain (enabled mechanisms in sorted registry order, then the
    default recovery). Incidents are opened and closed here only: one per continuous outage
    of a VM (from its stop, or from the pause it stopped in, to its return to service), or
    per pause; mechanisms say the outcome (``resume``, ``settle``).
    ``placement`` chooses hosts and queues VMs waiting for room; every change of a host's
    free memory or state is reported to it (``host_changed``) before anyone hears of it.
    """

    def __init__(self, ctx: Context, network: Network):
        self.ctx = ctx
        self.env: simpy.Environment = ctx.env
        self.network = network
        self.bus = FailureBus(ctx.env)
        self.transfers: Transfers = None  # type: ignore[assignment]  # set by build_datacenter
        self.sites: dict[str, Site] = {}
        self.domains: dict[str, Domain] = {}
        self.hosts: dict[str, Host] = {}
        self.host_list: list[Host] = []
        self.storage: dict[str, Storage] = {}
        self.vms: dict[str, VM] = {}
        self.workloads: dict[str, list[VM]] = {}
        self.placement = Placement(self.env, ctx.streams.get)
        self._running = 0
        self._hosts_up = 0
        self.stopped = 0  # VMs stopped so far (a caller counts what one failure stopped)
        self.moved: list[Callable[[VM], None]] = []  # called with a VM after ``move`` switched its host

    # -- building -----------------------------------------------------------------------------
    def add_site(self, name: str, region: str, core: float) -> Site:
        site = Site(name, region, core)
        self.sites[name] = site
        self.network.add_site(name, core)
        return site

    def add_domain(self, site: Site, short: str, uplink: float, latency: float) -> Domain:
        dom = Domain(f"{site.name}/{short}", short, site, uplink, latency)
        site.domains.append(dom)
        self.domains[dom.name] = dom
        self.network.add_domain(site.name, short, uplink, latency)
        return dom

    def add_host(self, domain: Domain, name: str, profile_name: str, profile: Any) -> Host:
        host = Host(
            name=name, site=domain.site, domain=domain, index=len(self.host_list), profile=profile_name,
            cores=profile.cores, memory=profile.memory, reserved_memory=profile.reserved_memory,
            dimms=profile.dimms, nic=profile.nic, disk_capacity=profile.disk.capacity,
            disk_read=profile.disk.read, disk_write=profile.disk.write, boot_time=profile.boot_time,
        )
        domain.hosts.append(host)
        self.hosts[name] = host
        self.host_list.append(host)
        self._hosts_up += 1
        self.placement.add_host(host)
        self.network.add_host(name, domain.site.name, domain.short, profile.nic, profile.disk.read,
                              profile.disk.write)
        return host

    def add_storage(self, name: str, site: Site, capacity: float, read: float, write: float) -> Storage:
        st = Storage(name, site, capacity, read, write)
        self.storage[name] = st
        self.network.add_storage(name, site.name, read, write)
        return st

    def add_vm(self, vm: VM) -> VM:
        self.vms[vm.name] = vm
        self.workloads.setdefault(vm.workload, []).append(vm)
        return vm

    # -- memory accounting (never overcommit) ----------------------------------------------------
    def place(self, vm: VM, host: Host, state: str = RUNNING, reason: str = "restart") -> None:
        """Put a stopped VM on ``host`` (running or booting). The caller checked ``host.fits``.
        ``reason`` is the ``placements`` row's: initial, restart, build, move."""
        if vm.host is not None:
            raise RuntimeError(f"{vm.name} is already on {vm.host.name}")
        if host.free_memory < vm.spec.memory - 1e-6:
            raise RuntimeError(f"{host.name} has no room for {vm.name}")
        _attach(host, vm)
        self.placement.host_changed(host, vm.workload)
        self.set_state(vm, state)
        self.ctx.recorder.record("placements", vm=vm.name, host=host.name, reason=reason)

    def reboot(self, vm: VM) -> Host:
        """A stopped VM that kept its memory on its host (a guest crash) boots there again."""
        host = vm.host
        if host is None:
            raise RuntimeError(f"{vm.name} has no host to reboot on")
        self.set_state(vm, BOOTING)
        self.ctx.recorder.record("placements", vm=vm.name, host=host.name, reason="restart")
        return host

    def unplace(self, vm: VM, state: str = STOPPED) -> Host | None:
        """Take a VM off its host, freeing its memory."""
        host = vm.host
        if host is not None:
            _detach(host, vm)
            vm.last_host = host
            self.placement.host_changed(host, vm.workload)
        self.set_state(vm, state)
        return host

    def reserve(self, host: Host, amount: float) -> None:
        if host.free_memory < amount - 1e-6:
            raise RuntimeError(f"{host.name} cannot reserve {amount} bytes")
        host.reserved += amount
        self.placement.host_changed(host)

    def unreserve(self, host: Host, amount: float) -> None:
        host.reserved -= amount
        if host.reserved < 1e-6:
            host.reserved = 0.0
        self.placement.host_changed(host)

    def move(self, vm: VM, target: Host, reserved: float, reason: str = "migration") -> None:
        """Switch a VM to ``target``, turning the target's reservation into use (a migration ends)."""
        source = vm.host
        if source is not None:
            vm.last_host = source
            _detach(source, vm)
            self.placement.host_changed(source, vm.workload)
        target.reserved -= reserved
        if target.reserved < 1e-6:
            target.reserved = 0.0
        _attach(target, vm)
        self.placement.host_changed(target, vm.workload)
        self.ctx.recorder.record("placements", vm=vm.name, host=target.name, reason=reason)
        for fn in self.moved:
            fn(vm)

    def rule_for(self, vm: VM) -> Any:
        """Where ``vm`` may go now (a ``Rule``): its owner's rule if the owner gives one, else its own.
        Every mover chooses through it (``Placement.rule_for``)."""
        return self.placement.rule_for(vm)

    def set_state(self, vm: VM, state: str) -> None:
        was = vm.state == RUNNING
        vm.state = state
        now = state == RUNNING
        if was != now:
            self._running += 1 if now else -1
            self.ctx.recorder.level("fleet", "vms_running", self._running)

    def depend(self, vm: VM, host: Host) -> None:
        """``vm``'s memory still lives on ``host`` (a post-copy pull): it is lost if ``host`` fails."""
        host.dependents[vm.name] = vm

    def undepend(self, vm: VM, host: Host) -> None:
        host.dependents.pop(vm.name, None)

    # -- failures (decided by sim.faults and mechanisms, applied and published here) ---------------
    def host_down(self, host: Host, cause: Cause, state: str = DOWN) -> int:
        """A host fails: published on the bus, its VMs (and VMs whose memory it still holds) stop
        and go to their owners. Overlapping faults nest. Returns the number of VMs it stopped."""
        host.faults += 1
        if host.state in (DOWN, REPAIR):
            return 0
        if host.state in (UP, MAINTENANCE):
            self._hosts_up -= 1
            self.ctx.recorder.level("fleet", "hosts_up", self._hosts_up)
        host.state = state
        self.placement.host_changed(host)
        before = self.stopped
        self.bus.down(ev.HOST, host.name, cause)
        for vm in sorted(host.vms.values(), key=_NAME):
            if vm.host is host:
                self.stop_vm(vm, cause)
        for vm in sorted(host.dependents.values(), key=_NAME):
            if vm.host is not None:
                self.stop_vm(vm, cause)
        host.dependents.clear()
        return self.stopped - before

    def enter_maintenance(self, host: Host, holder: str) -> bool:
        """``holder`` takes an up host out of placement (it keeps its VMs). False if it is not up."""
        if host.state not in (UP, MAINTENANCE):
            return False
        host.holders[holder] = None
        host.state = MAINTENANCE
        self.placement.host_changed(host)
        return True

    def exit_maintenance(self, host: Host, holder: str) -> None:
        """``holder`` lets go; the host takes VMs again when nobody holds it and it is not down."""
        host.holders.pop(holder, None)
        if not host.holders and host.state == MAINTENANCE:
            host.state = UP
            self.placement.host_changed(host)

    def host_repaired(self, host: Host) -> None:
        """One fault on the host is repaired; it comes up when none is left (in maintenance if held)."""
        host.faults = max(0, host.faults - 1)
        if host.faults == 0 and host.state in (DOWN, REPAIR):
            host.state = MAINTENANCE if host.holders else UP
            self.placement.host_changed(host)
            self._hosts_up += 1
            self.ctx.recorder.level("fleet", "hosts_up", self._hosts_up)
            self.bus.up(ev.HOST, host.name)

    def group_down(self, topic: str, name: str, hosts: list[Host], cause: Callable[[str], Cause]) -> int:
        """A broadcast domain (``topic`` domain) or a site goes down: published with ``cause(name)``,
        then each host with ``cause(host name)``. Returns the VMs stopped."""
        self.bus.down(topic, name, cause(name))
        n = 0
        for host in hosts:
            n += self.host_down(host, cause(host.name), DOWN)
        return n

    def group_up(self, topic: str, name: str, hosts: list[Host]) -> None:
        for host in hosts:
            self.host_repaired(host)
        self.bus.up(topic, name)

    def disk_failed(self, host: Host, cause: Cause) -> None:
        """A host's disk fails: what it stores is lost (``disk`` subscribers), and the host goes down."""
        self.bus.down(ev.DISK, host.name, cause)
        self.host_down(host, cause, DOWN)

    def disk_repaired(self, host: Host) -> None:
        self.host_repaired(host)
        self.bus.up(ev.DISK, host.name)

    def storage_down(self, st: Storage, cause: Cause) -> None:
        """A storage system stops serving; overlapping outages nest (it returns at the last repair)."""
        st.outages += 1
        if st.outages == 1:
            st.state = DOWN
            self.bus.down(ev.STORAGE, st.name, cause)

    def storage_up(self, st: Storage) -> None:
        if st.outages == 0:
            return
        st.outages -= 1
        if st.outages == 0:
            st.state = UP
            self.bus.up(ev.STORAGE, st.name)

    def link_down(self, name: str, cause: Cause) -> None:
        """A link (domain uplink, site core, WAN) fails: capacity 0, its flows stall; failures nest."""
        first = not self.network.is_failed(name)
        self.network.fail_link(name)
        if first:
            self.bus.down(ev.LINK, name, cause)

    def link_up(self, name: str) -> None:
        self.network.repair_link(name)
        if not self.network.is_failed(name):
            self.bus.up(ev.LINK, name)

    def stop_vm(self, vm: VM, cause: Cause, keep_host: bool = False) -> None:
        """A VM stops (its host failed, it crashed, an error hit it): published, then handed to its
        owner. ``keep_host``: the guest crashed, its memory stays reserved on its host for the reboot.

        A VM in service (running, or paused) starts an outage: its incident opens (a pause's
        incident goes on, now the failure's) and ``vm down`` is published. A VM already out of
        service (stopped, booting) that stops again stays in the same outage: no new incident, no
        second ``down``; its owner hears the stop all the same (what it was doing is stale)."""
        vm.epoch += 1
        self.stopped += 1
        vm.migrating = False
        if keep_host and vm.host is not None:
            vm.last_host = vm.host
            self.set_state(vm, STOPPED)
        else:
            self.unplace(vm, STOPPED)
        self.ctx.recorder.trace("infra", "vm_stopped", vm.name, cause.kind)
        if not vm.out:
            vm.out = True
            if vm.incident is None:
                vm.incident = self.ctx.recorder.open(vm.name, cause.kind, vm.owner or "default")
            else:  # stopped during a pause: one continuous outage, now the failure's
                vm.incident.cause = cause.kind
            self.bus.down(ev.VM, vm.name, cause)
        self.bus.offer(ev.VM_STOPPED, vm.name, (vm, cause), vm.owner)

    def pause(self, vm: VM, mechanism: str, cause: str = "migration") -> None:
        """A running VM pauses on ``mechanism``'s behalf (a migration's stop-and-copy, a host's
        remediation): an incident (``cause``, default ``migration``) opens; nothing is published, a
        pause is not a stop. ``resume`` ends it."""
        if vm.incident is None:
            vm.incident = self.ctx.recorder.open(vm.name, cause, mechanism)
        self.set_state(vm, PAUSED)

    def settle(self, vm: VM, outcome: str) -> None:
        """The outcome of ``vm``'s current outage is decided before it serves again (another VM took
        over its work): its incident closes with ``outcome`` when it does, whatever ``resume`` says."""
        if vm.incident is not None:
            vm.settled = outcome

    def resume(self, vm: VM, outcome: str, mechanism: str | None = None) -> None:
        """A stopped or paused VM serves again (it is running from now): its incident closes with
        ``outcome`` (or the one ``settle`` gave), credited to ``mechanism`` if given; ``vm up`` is
        published if ``vm down`` was."""
        self.set_state(vm, RUNNING)
        inc = vm.incident
        if inc is not None:
            if mechanism is not None:
                inc.mechanism = mechanism
            self.ctx.recorder.close(inc, vm.settled or outcome)
            vm.incident = None
            vm.settled = None
        if vm.out:
            vm.out = False
            self.bus.up(ev.VM, vm.name)

    def outage_start(self, vm: VM) -> float | None:
        """When ``vm``'s current outage (or pause) began; None while it serves."""
        return vm.incident.start_s if vm.incident is not None else None

    def vm_repaired(self, vm: VM) -> None:
        """A VM's own failure is repaired (its guest may boot again): ``repaired`` on the ``vm`` topic,
        for its owner. It does not serve yet: ``up`` comes when its owner resumes it."""
        self.bus.publish(ev.VM, vm.name, ev.REPAIRED)

    def hosts_up(self) -> int:
        return self._hosts_up

    def running(self) -> int:
        return self._running
