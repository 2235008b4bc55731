"""Replica replacement across broadcast domains (docs/availability.md, part II): ``mechanisms.replication``.

A managed virtual network overlays the substrate. Each of its ``primaries`` is a node
VM owned by this mechanism with ``replicas`` replica node VMs; the primary's virtual
address never changes. Names: primary ``<network>-pNNN`` (the virtual name; numbered
like workload VMs), replicas ``<network>-pNNN-rK`` (K from 1). Placement of a
primary's copies: ``distinct_domains`` (pairwise distinct broadcast domains),
``same_domain`` (the primary's domain, distinct hosts) or ``random`` (uniform over
the eligible hosts with room, never a host of another copy).

Trigger: a node VM stops (host crash, domain or site outage, disk failure, memory error;
``vm_stopped``). Detection: the overlay controller hears a heartbeat from every node
every ``heartbeat_interval`` I at the node's phase (drawn once per node, when first needed, from
the stream ``replication/heartbeat/<node VM name>``: no node's phase depends on build order or
on another node) and declares it failed ``missed_heartbeats`` M
intervals after the last heartbeat received: the last beat at or before the failure
is computed from the phase (no event per heartbeat), so detection comes
I·(M−1) < d ≤ I·M after the failure.

Promotion (a primary detected failed): the most up-to-date live replica is promoted.
The virtual address moves to it after ``mapping_update``; the primary is unavailable
from its failure to the end of the mapping update. In the model the primary VM takes
the promoted replica's place on its host (``placements`` reason ``move``) and the
replica VM, now empty, is rebuilt. Data: a live in-sync replica holds the primary's
writes up to ``replication_lag`` behind; a replica being rebuilt holds data as of its
copy's start; a promotion loses the writes between the primary's last write (its
failure) and what the promoted replica had received (``data_loss_s``), measured from
these states, never assumed.

Rebuild (after a promotion, or a replica detected failed): once the primary serves,
the replica is placed on an eligible host that keeps the placement rule (the placement
service; with no room it waits there, or for the group to change) and the node disk is
copied from the primary's host disk through the fluid model (``dc.transfers``). A copy
whose source fails waits for the next primary; whose target fails is rebuilt again.

Lost: a primary detected failed with no live replica is lost: it restarts when one of
the hosts holding a copy of its data (its own or a failed replica's) comes back, boots
there (the node's ``boot_time``), and its replicas are then rebuilt. It is unavailable
until it runs again.

Disabled: only the primaries are built; a failed primary restarts on an eligible host
after ``infrastructure.detection`` + its boot, like the default recovery (its disk on
site storage: no data loss).

Records: ``replacements`` (one row per promotion, rebuild, restart, lost primary, and
``open`` for a primary still unavailable at the end), ``replication_networks`` (one row
per network, at time 0), an incident per primary outage (subject the primary's virtual
name, outcome ``failed_over``, ``restarted`` or ``lost``) and per replica node outage
(outcome ``restarted`` when it is in sync again). docs/availability.md (part II) has the details.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Literal

import simpy
from pydantic import AfterValidator, Field

from sim import format as fmt
from sim.core.errors import Problem
from sim.infra import events as ev
from sim.infra.datacenter import BOOTING, RUNNING, STOPPED, VMSpec
from sim.infra.network import Endpoint
from sim.infra.transfer import FAIL, STALL, TransferFailed
from sim.mechanisms.base import Mechanism, MechanismConfig, Need, scaled
from sim.metrics.meta import Metric
from sim.metrics.summary import count, stats
from sim.metrics.tables import table
from sim.scenario.limits import plausible
from sim.scenario.names import VM_DIGITS, pattern
from sim.scenario.schema import Model
from sim.scenario.types import (
    Duration,
    Globs,
    Interval,
    Name,
    NonNegInt,
    PositiveInt,
    PositiveSize,
    Size,
)

if TYPE_CHECKING:
    from sim.core.causes import Cause
    from sim.core.context import Context
    from sim.infra.build import Builder
    from sim.infra.datacenter import VM, Datacenter, Host
    from sim.metrics.summary import RunInfo, Tables

KEY = "replication"
GiB = 1024.0**3

PROMOTION, REBUILD, RESTART, LOST, OPEN = "promotion", "rebuild", "restart", "lost", "open"
SYNC, COPY, DOWN, EMPTY = "sync", "copy", "down", "empty"  # node states

# time_s: when the fact began (the primary's failure; for a rebuild, when it was needed).
# node: the VM promoted, rebuilt or restarted. detection_s: failure to detection (0 when no
# failure started it). unavailable_s: the primary's outage, on the row that ends it
# (promotion, restart, open). data_loss_s: writes (in seconds of the stream) lost.
# bytes: copied. waited_s: waiting for room or for the primary to serve. end_s: done.
# missing_bytes: on a promotion, the bytes of the node disk the promoted copy had not received
# (a replica promoted mid-rebuild; 0 when it was in sync), which data_loss_s does not count.
REPLACEMENTS = table(
    "replacements", "time_s", "network:str", "primary:str", "kind:str", "node:str", "cause:str",
    "from_host:str", "to_host:str", "detection_s", "unavailable_s", "data_loss_s", "bytes", "waited_s", "end_s",
    "missing_bytes",
)
NETWORKS = table("replication_networks", "time_s", "network:str", "primaries:i8", "replicas:i8",
                 "placement:str", "enabled:bool")


class Node(Model):
    """The shape of every node VM of a network."""

    vcpus: PositiveInt = 2  # the project's example node (docs/availability.md)
    memory: PositiveSize = 4 * GiB  # the example node
    disk: Size = 50 * GiB  # the example node; copied at each rebuild
    # The VM default, 1m; Linux VMs boot in ~30-100 s (Mao & Humphrey, "A performance study on the
    # VM startup time in the cloud", IEEE CLOUD 2012). Paid by a restart (disabled, or a lost
    # primary), not by a promotion.
    boot_time: Duration = 60.0


class NetworkSpec(Model):
    name: Name
    primaries: NonNegInt
    replicas: NonNegInt = 1  # the example network: one replica per primary
    placement: Literal["distinct_domains", "same_domain", "random"] = "distinct_domains"  # survives a domain outage
    hosts: Globs = ("*",)  # every host, like a workload's placement
    node: Node = Field(default_factory=Node)


class Config(MechanismConfig):
    """``mechanisms.replication``. Detection defaults: VRRP's Master_Down_Interval is 3 x the 1 s
    advertisement interval (RFC 3768 / RFC 5798; 3.609 s with the skew);
    corosync's token timeout was 1 s (RHEL 7); BFD detects after Detect Mult (3) x interval."""

    networks: tuple[NetworkSpec, ...] = ()
    # VRRP Advertisement_Interval default 1 s (RFC 3768); at least 1 ms, at most a day (docs/limits.md)
    heartbeat_interval: Annotated[Interval, AfterValidator(plausible(
        "heartbeat_s", "s", "a day: no failure detector waits longer"))] = 1.0
    # VRRP: 3 x advertisement; BFD Detect Mult 3 (RFC 5880 §6.8.4); at most 1,000 (docs/limits.md)
    missed_heartbeats: Annotated[PositiveInt, AfterValidator(plausible(
        "missed_heartbeats", "heartbeats", "detectors declare a failure after a handful"))] = 3
    # The overlay controller pushes the new mapping (a VRRP backup
    # takes over after the skew, 0.609 s at priority 100; a GARP burst follows at once, keepalived).
    mapping_update: Duration = 0.2
    # Asynchronous replication shipping writes ~100 ms behind.
    replication_lag: Duration = 0.1

    def check_references(self, scenario, path: str) -> list[Problem]:
        """Host selectors that match nothing; a network name used twice; ``distinct_domains`` with
        fewer eligible domains than 1 + replicas; ``same_domain`` with no domain of 1 + replicas hosts."""
        from sim.scenario.names import all_host_names
        from sim.scenario.validate import glob_problems, unique_problems

        hosts = all_host_names(scenario.infrastructure)
        out = unique_problems([n.name for n in self.networks], f"{path}.networks.{{}}.name", "network name")
        for i, net in enumerate(self.networks):
            where = f"{path}.networks.{i}"
            missing = glob_problems(net.hosts, hosts, f"{where}.hosts", "host")
            out += missing
            bad = bool(missing)
            if bad or net.primaries == 0:
                continue
            match = pattern(net.hosts).match
            per_domain: dict[str, int] = {}
            for h in hosts:
                if match(h):
                    d = h.rsplit("/", 1)[0]
                    per_domain[d] = per_domain.get(d, 0) + 1
            if not per_domain:
                out.append(Problem(f"{where}.hosts", f"expected selectors matching at least one host, got "
                                                     f"{list(net.hosts)}"))
                continue
            copies = 1 + net.replicas
            if net.placement == "distinct_domains" and len(per_domain) < copies:
                out.append(Problem(
                    f"{where}.replicas",
                    f"expected at most {len(per_domain) - 1} replicas with placement distinct_domains (hosts "
                    f"{list(net.hosts)} span {len(per_domain)} broadcast domains, and a primary and each of its "
                    f"replicas need one each), got {net.replicas}"))
            elif net.placement == "same_domain" and max(per_domain.values()) < copies:
                out.append(Problem(
                    f"{where}.replicas",
                    f"expected at most {max(per_domain.values()) - 1} replicas with placement same_domain (the "
                    f"largest broadcast domain of hosts {list(net.hosts)} has {max(per_domain.values())} hosts, "
                    f"one per copy), got {net.replicas}"))
            elif net.placement == "random" and sum(per_domain.values()) < copies:
                out.append(Problem(
                    f"{where}.replicas",
                    f"expected at most {sum(per_domain.values()) - 1} replicas with placement random (hosts "
                    f"{list(net.hosts)} are {sum(per_domain.values())}, one per copy), got {net.replicas}"))
        return out


# --------------------------------------------------------------------------- summaries
def replication_metrics(t: Tables, info: RunInfo) -> dict[str, float]:
    r = t["replacements"]
    kind = r["kind"]
    ends = r[kind.isin((PROMOTION, RESTART, OPEN))]  # each primary outage ends in exactly one of these
    promos = r[kind == PROMOTION]
    unavailable = float(ends["unavailable_s"].sum())
    out: dict[str, float] = {
        "replication.failures": count(ends),
        "replication.replacements": count(promos),
        "replication.rebuilds": count(r, kind == REBUILD),
        "replication.lost": count(r, kind == LOST),
        "replication.unavailable_s_total": unavailable,
        "replication.data_loss_s_total": float(promos["data_loss_s"].sum()),
        "replication.restart_data_loss_s_total": float(r.loc[kind == RESTART, "data_loss_s"].sum()),
        "replication.rebuild_bytes_total": float(r.loc[kind == REBUILD, "bytes"].sum()),
    }
    primaries = sum(n.primaries for n in info.configs[KEY].networks)  # built enabled or not
    out["replication.primaries"] = primaries
    if primaries > 0 and info.duration_s > 0:
        out["replication.availability"] = 1.0 - unavailable / (primaries * info.duration_s)
    out.update(stats("replication.unavailable_s", ends["unavailable_s"]))
    out.update(stats("replication.detection_s", r.loc[kind.isin((PROMOTION, LOST)), "detection_s"]))
    return out


# Every metric ``replication_metrics`` can produce (units: sim.metrics.meta).
METRICS = (
    Metric("replication.failures", "count", "outages of a replicated primary", False),
    Metric("replication.replacements", "count", "primaries replaced by promoting a replica"),
    Metric("replication.rebuilds", "count", "replica copies rebuilt on another host"),
    Metric("replication.lost", "count", "primaries lost with no replica left to promote", False),
    Metric("replication.unavailable_s_total", "s", "time replicated primaries were unavailable, summed", False),
    Metric("replication.data_loss_s_total", "s", "writes lost at promotions (seconds of lag), summed", False),
    Metric("replication.restart_data_loss_s_total", "s",
           "writes lost when a primary restarted from an older copy (seconds), summed", False),
    Metric("replication.rebuild_bytes_total", "bytes", "bytes copied to rebuild replicas"),
    Metric("replication.primaries", "count", "replicated primaries"),
    Metric("replication.availability", "availability", "fraction of primary-time the primaries were available",
           True, headline=True),
    Metric("replication.unavailable_s_*", "s", "unavailability of one primary outage", False),
    Metric("replication.detection_s_*", "s", "time to detect a failed primary", False),
)


# --------------------------------------------------------------------------- runtime state
class _Net:
    """One network at run time: its spec, eligible hosts and their placement rule."""

    def __init__(self, index: int, spec: NetworkSpec, hosts: list[Host], rule):
        self.index = index
        self.spec = spec
        self.name = spec.name
        self.hosts = hosts
        self.rule = rule  # the eligible hosts, spread random (placement random) or by domain; held for the run


class _Node:
    """A node VM and the state of the data it holds."""

    __slots__ = ("vm", "group", "index", "phase", "state", "base", "data", "failed_at", "cause", "gen", "proc",
                 "transfer", "got", "rule", "rule_key")

    def __init__(self, vm: VM, group: _Group, index: int, phase: float | None = None):
        self.vm = vm
        self.group = group
        self.index = index  # 0 the primary, K for replica rK
        self.phase = phase
        self.state = SYNC
        self.base = 0.0  # SYNC: data it had when it became in sync; COPY: its copy's start
        self.data = 0.0  # DOWN: data frozen at its failure; primary: data while not serving
        self.failed_at = 0.0
        self.cause = ""  # kind of its last failure
        self.gen = 0  # bumped whenever what it does is cancelled (stale processes give up)
        self.proc: simpy.Process | None = None
        self.transfer = None
        self.got = 0.0  # COPY: bytes of the disk received when its copy's source failed
        self.rule = None  # where it may go given where the other copies were when last asked (one use held)
        self.rule_key: object = None  # what that rule was made from


class _Group:
    """A primary (the virtual address) and its replicas."""

    __slots__ = ("net", "primary", "replicas", "serving", "head", "down_since", "cause", "detection",
                 "changed", "moved", "stale", "lost")

    def __init__(self, net: _Net):
        self.net = net
        self.primary: _Node = None  # type: ignore[assignment]
        self.replicas: list[_Node] = []
        self.serving = True
        self.head = 0.0  # the primary's last write, while it does not serve
        self.down_since: float | None = None  # start of the current outage
        self.cause = ""
        self.detection = 0.0
        self.changed: simpy.Event | None = None  # fires when the primary serves again
        # fires when a copy leaves its host or a disk destroys one: a lost primary waiting for a host
        # holding a copy re-chooses (a replica waiting for room follows its owner's rule instead)
        self.moved: simpy.Event | None = None
        self.stale: dict[Host, float] = {}  # host -> data a failed node left on its disk
        self.lost = False

    @property
    def name(self) -> str:
        return self.primary.vm.name


class _Cancel(Exception):
    """Ends a rebuild or restart that the node's next failure made stale."""


class Replication(Mechanism):
    key = KEY
    Config = Config
    tables = (REPLACEMENTS, NETWORKS)
    summaries = (replication_metrics,)
    metrics = METRICS
    naive = True  # disabled, its phases carry out the naive behaviour

    @classmethod
    def said(cls, metrics, info):
        """Primaries taken over by a replica, how long each was unavailable, none or some lost, and the
        writes lost at promotions."""
        if not metrics.get("replication.failures"):
            return None
        text = f"{fmt.number(metrics.get('replication.replacements', 0))} failovers"
        if "replication.unavailable_s_mean" in metrics:
            text += f" in {fmt.duration(metrics['replication.unavailable_s_mean'])} (mean)"
        return (text + f", {fmt.number(metrics.get('replication.lost', 0))} lost, "
                f"{fmt.duration(metrics.get('replication.data_loss_s_total', 0))} of writes lost")

    @classmethod
    def budget(cls, config: Config, scenario) -> list[Need]:
        """Its VMs, a primary and its replicas per node (built enabled or not: disabled, the
        primaries alone; the bound counts both)."""
        return [Need("vms", f"networks.{i}.primaries", n.primaries * (1 + n.replicas), "fewer primaries or replicas")
                for i, n in enumerate(config.networks)]

    @classmethod
    def scale(cls, section: dict, factor: float) -> dict:
        """Primaries scale like the workloads' VMs."""
        nets = [dict(n, primaries=scaled(int(n.get("primaries", 0)), factor)) if isinstance(n, dict) else n
                for n in section.get("networks") or []]
        return dict(section, networks=nets) if nets else section

    def __init__(self, ctx: Context, dc: Datacenter, config: Config | None):
        super().__init__(ctx, dc, config)
        self.nodes: dict[str, _Node] = {}
        self.groups: list[_Group] = []
        self.stale_at: dict[Host, dict[_Group, None]] = {}  # host -> groups with a copy left on its disk
        self.down: dict[_Group, None] = {}  # groups whose primary is unavailable
        cfg = self.config  # the defaults, disabled, when the section is absent
        self.interval = cfg.heartbeat_interval
        self.window = cfg.heartbeat_interval * cfg.missed_heartbeats
        self.mapping = cfg.mapping_update
        self.lag = cfg.replication_lag
        self.engine = None  # the live migration engine, for where a copy is moving (start)
        self.detection = ctx.scenario.infrastructure.detection

    # -- build -----------------------------------------------------------------------------------
    def build(self, builder: Builder) -> None:
        dc = self.dc
        rec = self.ctx.recorder
        path = f"mechanisms.{KEY}.networks"
        for ni, spec in enumerate(self.config.networks):
            rec.record("replication_networks", network=spec.name, primaries=spec.primaries,
                       replicas=spec.replicas if self.enabled else 0, placement=spec.placement,
                       enabled=self.enabled)
            hosts = [dc.hosts[n] for n in builder.hosts(spec.hosts)]
            spread = "random" if spec.placement == "random" else "broadcast_domain"
            net = _Net(ni, spec, hosts, dc.placement.rule(hosts, spread))
            n = spec.node
            shape = VMSpec(vcpus=n.vcpus, memory=n.memory, disk=n.disk, dirty_rate=0.0, working_set=n.memory,
                           boot_time=n.boot_time)
            self._build_network(builder, net, shape, f"{path}.{ni}")

    def _build_network(self, builder: Builder, net: _Net, shape: VMSpec, path: str) -> None:
        """Primaries, then each primary's replicas; stops at the first node that does not fit (a problem)."""
        spec = net.spec
        for i in range(spec.primaries):
            pname = f"{spec.name}-p{i:0{VM_DIGITS}d}"  # like a VM name: never depends on the count
            vm = builder.vm(KEY, pname, shape, spec.hosts, f"{path}.primaries", group=spec.name)
            if vm is None:
                return
            g = _Group(net)
            g.primary = self._node(vm, g, 0)
            self.groups.append(g)
            if not self.enabled:
                continue
            for k in range(1, spec.replicas + 1):
                rvm = self._build_replica(builder, net, g, k, f"{pname}-r{k}", shape, f"{path}.replicas")
                if rvm is None:
                    return
                g.replicas.append(self._node(rvm, g, k))

    def _node(self, vm: VM, g: _Group, index: int) -> _Node:
        node = _Node(vm, g, index)
        self.nodes[vm.name] = node
        return node

    def _build_replica(self, builder: Builder, net: _Net, g: _Group, k: int, name: str, shape: VMSpec,
                       path: str) -> VM | None:
        """Replica ``k`` of ``g``, placed by the network's rule. Primaries and each rank of replicas spread
        over domains as groups of their own (``<network>``, ``<network>-rK``), so primaries alternate
        domains rather than all landing where their replicas are not."""
        taken = [g.primary.vm.host, *(r.vm.host for r in g.replicas)]
        spec = net.spec
        group = f"{spec.name}-r{k}"
        if spec.placement == "distinct_domains":
            vm = builder.vm(KEY, name, shape, spec.hosts, path, group=group, avoid=taken)
            if vm is not None and vm.host.domain in {h.domain for h in taken}:
                builder.problems.append(Problem(path, (
                    f"expected room for {name} in a broadcast domain apart from its other copies "
                    f"(placement distinct_domains, hosts {list(spec.hosts)}), got none")))
                return None
            return vm
        if spec.placement == "same_domain":
            domain = g.primary.vm.host.domain
            eligible = set(net.hosts)
            names = tuple(h.name for h in domain.hosts if h in eligible)
            return builder.vm(KEY, name, shape, names, path, group=group, avoid=taken)
        vm = builder.vm(KEY, name, shape, spec.hosts, path, group=group, spread="random")
        if vm is not None and vm.host in taken:  # random never puts two copies on one host
            host = self._choose(g, None, vm, net)
            if host is None:
                builder.problems.append(Problem(path, f"expected room for {name} on a host apart from its other "
                                                      f"copies (hosts {list(spec.hosts)}), got none"))
                return None
            self.dc.move(vm, host, 0.0, reason="build")
        return vm

    # -- wiring ------------------------------------------------------------------------------------
    def wire(self) -> None:
        if self.enabled and self.groups:
            self.dc.bus.subscribe(ev.DISK, self._disk_failed)

    def start(self) -> None:
        self.engine = self.ctx.services.get("live_migration")
        self.ctx.finalizers.append(self._finish)

    def _finish(self, now: float) -> None:
        """Primaries still unavailable at the end: one ``open`` row each (their outage so far)."""
        for g in self.down:
            self._row(g, OPEN, g.primary.vm, g.cause, "", "", g.detection, now - g.down_since, float("nan"), 0.0,
                      0.0, now, time_s=g.down_since)

    # -- placement rules -------------------------------------------------------------------------------
    def _away(self, g: _Group, node: _Node | None) -> list[Host]:
        """The hosts of the group's copies other than ``node`` (those with a host), and the hosts they are
        migrating to: two moves at one instant never pick one host for two copies."""
        engine = self.engine
        out = []
        for n in (g.primary, *g.replicas):
            host = n.vm.host
            if n is node or host is None:
                continue
            out.append(host)
            target = engine.target_of(n.vm) if engine is not None else None
            if target is not None:
                out.append(target)
        return out

    def _rule(self, node: _Node):
        """Where ``node`` may go now (the placement service's rule, kept on the node with one use until
        the other copies move): the network's eligible hosts (``_Net.rule``) that its placement
        allows given the other copies' hosts and migration targets (``_away``): ``distinct_domains``
        outside their domains; ``same_domain`` the primary's domain off their hosts; ``random`` (or
        ``same_domain`` with the primary nowhere) off their hosts."""
        g = node.group
        kind = g.net.spec.placement
        away = self._away(g, node)
        primary = g.primary.vm.host
        if kind == "distinct_domains":
            key: object = frozenset(h.domain for h in away)
        elif kind == "same_domain" and primary is not None:
            key = (primary.domain, frozenset(away))
        else:
            key = frozenset(away)
        if node.rule is not None and node.rule_key == key:
            return node.rule
        place = self.dc.placement
        own = g.net.rule
        if kind == "distinct_domains":
            rule = place.without(own, domains=key)  # type: ignore[arg-type]
        elif isinstance(key, tuple):
            domain = place.within(own, primary.domain.hosts)
            rule = place.without(domain, hosts=away)
            place.release(domain)
        else:
            rule = place.without(own, hosts=away)
        if node.rule is not None:
            place.release(node.rule)
        node.rule, node.rule_key = rule, key
        return rule

    def placement_rule(self, vm: VM):
        """Where a node VM of this mechanism may go now (every mover asks; None = its own rule): the
        eligible hosts its network's placement allows given where the other copies of its group are
        now and where they are migrating to (``_rule``). Never a host holding or receiving another copy."""
        node = self.nodes.get(vm.name)
        if node is None or not self.enabled:
            return None
        return self._rule(node)

    def _choose(self, g: _Group, node: _Node | None, vm: VM, net: _Net) -> Host | None:
        """A host for ``vm`` (``node``, or a replica being built when None) by the placement service."""
        place = self.dc.placement
        if net.spec.placement != "random":
            rule = self._rule(node)  # type: ignore[arg-type]  # built by the builder, chosen here only at run time
            return place.choose(vm, rule) if len(rule) else None
        rule = net.rule
        others = set(self._away(g, node))
        rng = self.ctx.streams.get(f"placement/{KEY}/{net.name}")
        for _ in range(64):  # rejection: uniform over the fitting hosts that hold no other copy
            host = place.choose(vm, rule, rng=rng)
            if host is None or host not in others:
                return host
        apart = place.without(rule, hosts=others)  # rare: nearly all fitting hosts taken
        host = place.choose(vm, apart, rng=rng)
        place.release(apart)
        return host

    def _follow(self, g: _Group, node: _Node) -> None:
        """``node`` left its host: every other replica waiting for room waits under its owner's rule as it
        is now (``Placement.follow``: the host left may be allowed now), keeping its place in the queue.
        A primary waits only as a lost primary, for a host holding a copy (``_when_moved``)."""
        place = self.dc.placement
        for r in g.replicas:
            if r is not node:
                place.follow(r.vm)

    # -- failures -----------------------------------------------------------------------------------------
    def vm_stopped(self, vm: VM, cause: Cause) -> None:
        node = self.nodes.get(vm.name)
        if node is None:
            return
        now = self.env.now
        if vm.host is not None:  # a guest crash keeps its memory: this mechanism moves it anyway
            self.dc.unplace(vm, STOPPED)
        g = node.group
        if not self.enabled:
            self._outage(g, cause)
            self.env.process(self._restart_disabled(g, vm.epoch))
            return
        self._cancel(node)
        host = vm.last_host
        if node is g.primary:
            data = now if g.serving else node.data
            if g.serving:
                g.head = now
                g.serving = False
            node.data = data
            self._outage(g, cause)
        else:
            data = self._recv(node)
            if data is None:
                data = float("nan")
            node.data = data
        node.state = DOWN
        node.failed_at = now
        node.cause = cause.kind
        if host is not None:  # the copy it leaves on its host's disk (a failed disk keeps nothing)
            if cause.kind == "disk_failure" or data != data:
                g.stale.pop(host, None)
            else:
                g.stale[host] = max(data, g.stale.get(host, -math.inf))
                self.stale_at.setdefault(host, {})[g] = None
            self._moved(g)
            self._follow(g, node)
        gen = node.gen
        delay = self._detection_delay(node, now)
        node.proc = self.env.process(self._detected(node, gen, delay))

    def _disk_failed(self, failure) -> None:
        """``disk down`` (published before the host goes down): every copy left on that disk is gone.
        A lost primary waiting for that host re-chooses (another copy, or anywhere with nothing)."""
        host = self.dc.hosts[failure.subject]
        for g in self.stale_at.pop(host, {}):
            if g.stale.pop(host, None) is not None:
                self._moved(g)

    def _moved(self, g: _Group) -> None:
        moved, g.moved = g.moved, None
        if moved is not None:
            moved.succeed()

    def _when_moved(self, g: _Group) -> simpy.Event:
        if g.moved is None:
            g.moved = self.env.event()
        return g.moved

    def _outage(self, g: _Group, cause: Cause) -> None:
        if g.down_since is None:
            g.down_since = self.env.now
            g.cause = cause.kind
            g.detection = float("nan")
            self.down[g] = None

    def phase(self, node: _Node) -> float:
        """The node's heartbeat phase in [0, I): one draw from its own stream, made the first time it is
        needed (only failed nodes need one)."""
        if node.phase is None:
            rng = self.ctx.streams.get(f"replication/heartbeat/{node.vm.name}")
            node.phase = float(rng.random()) * self.interval
        return node.phase

    def _detection_delay(self, node: _Node, t: float) -> float:
        """From the failure at ``t`` to detection: the last heartbeat at or before ``t`` (from the node's
        phase) plus ``missed_heartbeats`` intervals. In (I·(M−1), I·M]."""
        interval = self.interval
        phase = self.phase(node)
        last = phase + interval * math.floor((t - phase) / interval)
        return last + self.window - t

    def _recv(self, node: _Node) -> float | None:
        """What a live replica holds of the primary's writes now (the time its data is as of)."""
        g = node.group
        if node.state == SYNC:
            head = self.env.now if g.serving else g.head
            return max(node.base, head - self.lag)
        if node.state == COPY:
            return node.base
        return None

    def _cancel(self, node: _Node) -> None:
        """Stop whatever process works on ``node`` (its detection, rebuild or copy)."""
        node.gen += 1
        t = node.transfer
        if t is not None:
            t.abort()
            node.transfer = None
        proc = node.proc
        node.proc = None
        if proc is not None and proc.is_alive and proc is not self.env.active_process:
            proc.interrupt(_Cancel())
        self.dc.placement.cancel(node.vm)

    def _detected(self, node: _Node, gen: int, delay: float):
        """Waits the detection delay, then promotes (primary) or rebuilds (replica)."""
        try:
            yield self.env.timeout(delay)
        except simpy.Interrupt:
            return
        if node.gen != gen:
            return
        node.proc = None
        g = node.group
        if node is g.primary:
            g.detection = delay
            self._failover(g)
        else:
            self._start_rebuild(node, node.failed_at, delay, node.cause)

    # -- promotion ------------------------------------------------------------------------------------
    def _failover(self, g: _Group) -> None:
        """At detection of the primary's failure: promote the most up-to-date live replica, or the
        primary is lost."""
        now = self.env.now
        best, best_data = None, -math.inf
        for r in g.replicas:
            if r.vm.host is None:
                continue
            data = self._recv(r)
            if data is not None and data > best_data:
                best, best_data = r, data
        p = g.primary
        if best is None:
            if not g.lost:  # one row per outage, however many times its restart is cut short
                self._row(g, LOST, p.vm, g.cause, p.vm.last_host.name if p.vm.last_host else "", "", g.detection,
                          0.0, float("nan"), 0.0, 0.0, now, time_s=g.down_since)
            g.lost = True
            p.proc = self.env.process(self._restore(g, p.gen))
            return
        missing = self._missing(best)
        self._cancel(best)
        host = best.vm.host
        self.dc.unplace(best.vm, STOPPED)
        best.state = EMPTY
        self.dc.place(p.vm, host, BOOTING, reason="move")
        p.data = best_data
        p.proc = self.env.process(self._map(g, best, p.gen, best_data, missing))

    def _missing(self, node: _Node) -> float:
        """Bytes of the node disk a live replica lacks: 0 in sync; mid-rebuild, the size minus what its
        copy delivered (so far, or until its source failed)."""
        if node.state != COPY:
            return 0.0
        t = node.transfer
        got = t.sent() if t is not None else node.got
        return max(0.0, node.vm.spec.disk - got)

    def _map(self, g: _Group, promoted: _Node, gen: int, data: float, missing: float):
        """The overlay maps the virtual address to the promoted copy after ``mapping_update``."""
        p = g.primary
        source = p.vm.last_host
        try:
            yield self.env.timeout(self.mapping)
        except simpy.Interrupt:
            return
        if p.gen != gen:
            return
        p.proc = None
        loss = max(0.0, g.head - data)
        now = self.env.now
        self._row(g, PROMOTION, promoted.vm, g.cause, source.name if source else "", p.vm.host.name, g.detection,
                  now - g.down_since, loss, 0.0, 0.0, now, time_s=g.down_since, missing=missing)
        self._serve(g, "failed_over")

    def _serve(self, g: _Group, outcome: str) -> None:
        """The primary serves again: its incident closes, waiting rebuilds go on, empty replicas rebuild."""
        p = g.primary
        self.dc.set_state(p.vm, RUNNING)
        self.dc.resume(p.vm, outcome)
        g.serving = True
        g.down_since = None
        g.lost = False
        self.down.pop(g, None)
        p.state = SYNC
        self._whole(g)
        changed, g.changed = g.changed, None
        if changed is not None:
            changed.succeed()
        now = self.env.now
        for r in g.replicas:
            if r.state == EMPTY and r.proc is None:
                self._start_rebuild(r, now, 0.0, cause=PROMOTION)

    def _whole(self, g: _Group) -> None:
        """Every copy live and in sync again: what failed nodes left on other disks is discarded."""
        if g.stale and all(r.state == SYNC for r in g.replicas):
            for h in g.stale:
                self.stale_at.get(h, {}).pop(g, None)
            g.stale.clear()

    def _when_serving(self, g: _Group) -> simpy.Event:
        if g.changed is None:
            g.changed = self.env.event()
        return g.changed

    # -- rebuild --------------------------------------------------------------------------------------
    def _start_rebuild(self, node: _Node, since: float, detection: float, cause: str) -> None:
        if node.state == DOWN:
            node.state = EMPTY
        node.proc = self.env.process(self._rebuild(node, node.gen, since, detection, cause))

    def _rebuild(self, node: _Node, gen: int, since: float, detection: float, cause: str):
        """Waits for the primary to serve and for room on a host its placement allows, then copies the
        node disk from the primary's host; yields placement waits, group changes and the copy."""
        g = node.group
        net = g.net
        vm = node.vm
        place = self.dc.placement
        waited = 0.0
        try:
            while True:
                if not g.serving:
                    t0 = self.env.now
                    yield self._when_serving(g)
                    waited += self.env.now - t0
                    continue
                if vm.host is None:
                    host = self._choose(g, node, vm, net)
                    if host is None:
                        t0 = self.env.now
                        # under its owner's rule (``rule_for``), which ``_follow`` keeps current
                        yield self.env.any_of([self._when_serving(g), place.wait(vm)])
                        place.cancel(vm)  # a promise not taken (or a wait no longer needed) goes back
                        waited += self.env.now - t0
                        continue
                    self.dc.place(vm, host, RUNNING, reason="restart")
                    node.state = COPY
                    node.base = self.env.now
                source = g.primary.vm.host
                start = self.env.now
                node.state = COPY
                node.base = start
                t = self.dc.transfers.start(Endpoint.disk(source.name), Endpoint.disk(vm.host.name), vm.spec.disk,
                                            tag=f"replica {vm.name}", on_host=FAIL, on_storage=FAIL, on_link=STALL)
                node.transfer = t
                try:
                    yield t.done
                except TransferFailed:
                    node.transfer = None
                    node.got = t.sent()
                    if node.gen != gen or vm.host is None:
                        return
                    continue  # the source failed: wait for the next primary, keep data as of ``start``
                node.transfer = None
                node.state = SYNC
                node.base = start
                node.proc = None
                self._whole(g)
                now = self.env.now
                self._row(g, REBUILD, vm, cause, source.name, vm.host.name, detection, 0.0, 0.0, t.size, waited,
                          now, time_s=since)
                self.dc.resume(vm, "restarted")
                return
        except simpy.Interrupt:
            place.cancel(vm)
            return

    # -- lost primaries -------------------------------------------------------------------------------
    def _restore(self, g: _Group, gen: int):
        """A lost primary restarts on the first host holding a copy of its data to come back (the most
        recent copy among them), boots, and serves; yields placement waits and the boot."""
        p = g.primary
        vm = p.vm
        place = self.dc.placement
        t0 = self.env.now
        try:
            while True:
                if g.stale:  # the most recent copy among the hosts up with room (``prefer``: that host if it fits)
                    ranked = sorted(g.stale.items(), key=lambda kv: (-kv[1], kv[0].index))
                    rule = place.rule([h for h, _ in ranked], "pack")
                    host = next((h for h, _ in ranked if place.choose(vm, rule, prefer=h) is h), None)
                    room = place.wait(vm, rule) if host is None else None
                    place.release(rule)
                else:  # every copy's disk was destroyed: anywhere eligible, with nothing
                    rule = place.rule_of(vm)
                    host = place.choose(vm, rule)
                    room = place.wait(vm, rule) if host is None else None
                if host is not None:
                    break
                yield self.env.any_of([room, self._when_moved(g)])
                place.cancel(vm)
                if p.gen != gen:
                    return
        except simpy.Interrupt:
            place.cancel(vm)
            return
        data = g.stale.get(host, 0.0)
        self.dc.place(vm, host, BOOTING, reason="restart")
        waited = self.env.now - t0
        try:
            yield self.env.timeout(vm.spec.boot_time)
        except simpy.Interrupt:
            return
        if p.gen != gen:
            return
        p.proc = None
        now = self.env.now
        self._row(g, RESTART, vm, g.cause, vm.last_host.name if vm.last_host else "", host.name, g.detection,
                  now - g.down_since, max(0.0, g.head - data), 0.0, waited, now, time_s=g.down_since)
        self._serve(g, "lost")

    # -- disabled: the naive restart ---------------------------------------------------------------------
    def _restart_disabled(self, g: _Group, epoch: int):
        """Detection (``infrastructure.detection``), room on an eligible host, boot; then it serves."""
        vm = g.primary.vm
        last = vm.last_host
        yield self.env.timeout(self.detection)
        if vm.epoch != epoch:
            return
        t0 = self.env.now
        place = self.dc.placement
        host = place.choose(vm)
        while host is None:
            yield place.wait(vm)
            if vm.epoch != epoch:
                place.cancel(vm)
                return
            host = place.choose(vm)
        self.dc.place(vm, host, BOOTING, reason="restart")
        waited = self.env.now - t0
        yield self.env.timeout(vm.spec.boot_time)
        if vm.epoch != epoch:
            return
        now = self.env.now
        self._row(g, RESTART, vm, g.cause, last.name if last else "", host.name, self.detection,
                  now - g.down_since, 0.0, 0.0, waited, now, time_s=g.down_since)
        self.dc.set_state(vm, RUNNING)
        self.dc.resume(vm, "restarted")
        g.down_since = None
        self.down.pop(g, None)

    # -- records ---------------------------------------------------------------------------------------------
    def _row(self, g: _Group, kind: str, node_vm: VM, cause: str, from_host: str, to_host: str, detection: float,
             unavailable: float, loss: float, nbytes: float, waited: float, end: float, *, time_s: float,
             missing: float = 0.0) -> None:
        self.ctx.recorder.record(
            "replacements", time_s=time_s, network=g.net.name, primary=g.primary.vm.name, kind=kind,
            node=node_vm.name, cause=cause, from_host=from_host, to_host=to_host, detection_s=detection,
            unavailable_s=unavailable, data_loss_s=loss, bytes=nbytes, waited_s=waited, end_s=end,
            missing_bytes=missing)
        self.ctx.recorder.trace(KEY, kind, g.primary.vm.name, node_vm.name)
