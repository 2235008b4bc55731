"""mechanisms.remediation: hosts kept at a desired image (vSphere Lifecycle Manager-like).

Desired state. Each cluster has a desired image (base, optional add-on, components); a
standalone host's desired image is generated from the cluster it derives from: the
cluster's base and add-on and its components minus ``cluster_only``, plus the host's own
components. Publishing a cluster image (the ``publish_image`` operation) regenerates the
desired images of its standalone hosts. The running image of a host is ``host.image``
(set at build, changed by the ``image_drift`` fault and by remediation).

Compliance scans run every ``scan_interval`` at ``k x scan_interval``; they are computed
from the phase (docs/operations.md): a scan of unchanged hosts costs nothing, and a drift
or a publish arms one timeout at the next scan instant (``sim.core.schedule``), where the
hosts changed since are compared. ``remediation.scans`` counts the scan instants of the run.

Cluster remediation (rolling): a detected host queues in its cluster; at most
``max_concurrent`` hosts of a cluster are remediated at once. Each enters maintenance,
live-migrates its VMs to other hosts of its cluster with room (where each VM's owner lets it
go, ``Datacenter.rule_for``, and within ``live_migration.scope``), stages, installs,
reboots (its profile's ``boot_time``) and exits maintenance. A host whose VMs find no room
leaves maintenance (keeping its slot) and tries again after ``RETRY_DELAY`` (doubling up to
``RETRY_MAX``): nothing is overcommitted, and hosts waiting on each other make progress.
Standalone remediation: the host stages while its VMs run, then suspends them (their memory
written to the host's disk and read back after the reboot, by transfers at disk speed) or
shuts them down (each boots after the reboot); the VMs' pause is an incident of cause
``remediation``.

Defined ends (``outcome``): ``compliant``; ``host_failed`` (the host failed before the
reboot ended: it keeps its old image and is scanned again when it is back up);
``migration_failed`` (a migration failed: the host leaves maintenance and is detected again
at the next scan); ``manual`` rows are disabled fixes; ``open`` rows are hosts still
noncompliant at the end of the run.

Disabled (the naive behaviour): nothing scans; a drifted host is fixed by hand
``manual_fix_after`` later (no VM downtime modelled); a publish is recorded as failed.
"""

from __future__ import annotations

from collections import deque
from functools import partial
from operator import attrgetter
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
import simpy

from sim.core.errors import Problem
from sim.core.schedule import every
from sim.infra import events as ev
from sim.infra.datacenter import MAINTENANCE, PAUSED, RUNNING, UP
from sim.infra.network import Endpoint
from sim.infra.transfer import FAIL, STALL
from sim.mechanisms.base import Mechanism, MechanismConfig, Need
from sim.metrics.meta import Metric
from sim.metrics.summary import count, stats
from sim.metrics.tables import table
from sim.scenario.names import select
from sim.scenario.schema import Image, OperationBase
from sim.scenario.types import Duration, PositiveDuration, PositiveInt

if TYPE_CHECKING:
    from sim.core.context import Context
    from sim.infra.datacenter import VM, Datacenter, Host
    from sim.metrics.summary import RunInfo, Tables

KEY = "remediation"
DAY = 86400.0
# vLCM / VCF SDDC Manager retry policy: a retry delay of 300-3600 s, the UI's default 5 min.
# A host that cannot evacuate (no room) retries after 5 min, doubling up to the API's 1 h cap.
RETRY_DELAY = 300.0
RETRY_MAX = 3600.0

_index = attrgetter("index")

COMPLIANT, HOST_FAILED, MIGRATION_FAILED, OPEN = "compliant", "host_failed", "migration_failed", "open"


class Config(MechanismConfig):
    # Scans: vLCM checks compliance on demand and on a schedule; hourly is the model's default.
    scan_interval: PositiveDuration = 3600.0
    # No published durations exist for vLCM staging and installation (docs/operations.md):
    # 10 min and 15 min are configurable defaults, not validated figures.
    stage_time: Duration = 600.0
    install_time: Duration = 900.0
    # vSAN clusters enter maintenance one host at a time (vSphere Lifecycle Manager docs).
    max_concurrent: PositiveInt = 1
    # Components only a cluster runs (vSAN, the HA agent): never in a standalone host's image.
    cluster_only: tuple[str, ...] = ("vsan", "ha-agent")
    # Standalone hosts cannot vMotion: their VMs are suspended or powered off (vLCM settings).
    standalone_vm_action: Literal["suspend", "shutdown"] = "suspend"
    manual_fix_after: PositiveDuration = 30 * DAY  # without it: a monthly maintenance window


class PublishImage(OperationBase):
    """Publish a new desired image for a cluster: the fields given replace the cluster's (the base,
    the add-on when given, each component given); standalone hosts deriving from it follow."""

    refs: ClassVar[dict[str, str]] = {"cluster": "cluster"}
    kind: Literal["publish_image"]
    cluster: str
    image: Image


REMEDIATIONS = table(
    "remediations", "time_s", "host:str", "cluster:str", "kind:str", "outcome:str",
    "noncompliant_since_s", "detected_s", "maintenance_s", "vms:i8", "migrations:i8", "waits:i8",
    "vm_downtime_s", "desired_image:str", "running_image:str",
)


def flat(image: Image) -> dict[str, str]:
    """An image as the flat mapping hosts run: ``{"base": ..., "addon": ..., component: version}``."""
    out = {"base": image.base}
    if image.addon:
        out["addon"] = image.addon
    out.update(image.components)
    return out


def derive(cluster_image: dict[str, str], cluster_only, components: dict[str, str]) -> dict[str, str]:
    """A standalone host's desired image from its cluster's (flat): the cluster's base, add-on and
    components minus the ``cluster_only`` ones, plus the host's own components (a cluster-only one
    among them is left out too: a standalone host cannot run it)."""
    drop = set(cluster_only) - {"base", "addon"}
    out = {k: v for k, v in cluster_image.items() if k not in drop}
    out.update({k: v for k, v in components.items() if k not in drop})
    return out


def show_image(image: dict[str, str]) -> str:
    """``base=8.0.2;addon=oem;nic=1.4.0``: base and add-on first, then components by name."""
    keys = [k for k in ("base", "addon") if k in image] + sorted(k for k in image if k not in ("base", "addon"))
    return ";".join(f"{k}={image[k]}" for k in keys)


def remediation_metrics(t: Tables, info: RunInfo) -> dict[str, float]:
    cfg = info.configs.get(KEY)
    r = t[REMEDIATIONS.name]
    scans = 0
    if cfg is not None and cfg.enabled:
        scans = int(np.ceil(info.duration_s / cfg.scan_interval))  # instants k x interval in [0, duration)
    out: dict[str, float] = {"remediation.scans": scans}
    done = r[r["outcome"] == COMPLIANT] if len(r) else r
    out["remediation.hosts_remediated"] = count(done)
    ttc = (done["time_s"] - done["noncompliant_since_s"]).to_numpy() if len(done) else []
    out.update(stats("remediation.time_to_compliance_s", ttc))
    nc = 0.0
    if len(r):
        spans = r[r["outcome"].isin([COMPLIANT, OPEN])]
        nc = float((spans["time_s"] - spans["noncompliant_since_s"]).sum())
    out["remediation.noncompliant_host_s_total"] = nc
    out["remediation.vm_downtime_s_total"] = float(r["vm_downtime_s"].sum()) if len(r) else 0.0
    return out


METRICS = (
    Metric("remediation.scans", "count", "compliance scan instants (every scan_interval; 0 when disabled)"),
    Metric("remediation.hosts_remediated", "count",
           "hosts brought back to their desired image (disabled: fixed by hand)", True),
    Metric("remediation.time_to_compliance_s_*", "s",
           "from a host's image leaving its desired image (drift, publish) to compliance again", False),
    Metric("remediation.noncompliant_host_s_total", "s",
           "host-seconds running an image other than the desired one, summed", False, headline=True),
    Metric("remediation.vm_downtime_s_total", "s",
           "VM downtime caused by remediation (migration pauses, suspends, shutdowns), summed", False),
)


class _Img(dict):
    """A host's running image that tells the mechanism when something changes one of its entries
    (the ``image_drift`` fault writes ``image[component] = ...``)."""

    __slots__ = ("hook",)

    def __setitem__(self, key, value) -> None:
        dict.__setitem__(self, key, value)
        self.hook()


class Remediation(Mechanism):
    key = KEY
    Config = Config
    tables = (REMEDIATIONS,)
    summaries = (remediation_metrics,)
    metrics = METRICS
    operations = {"publish_image": PublishImage}
    needs = ("live_migration",)
    reads = ("images",)
    naive = True  # disabled: drift stays until a manual fix

    @classmethod
    def budget(cls, config: Config, scenario) -> list[Need]:
        """Events: at most one scan timeout per interval, plus a few per remediation of each host
        with an image per drift (bounded by the faults' own budget)."""
        return [Need("events", "scan_interval", float(scenario.duration) / config.scan_interval,
                     "a longer scan_interval")]

    @classmethod
    def scale(cls, section: dict, factor: float) -> dict:
        """Nothing to scale: clusters grow with the fleet through their host globs, and
        ``max_concurrent`` stays as written. A roll takes hosts in name order, so its concurrent hosts
        share one broadcast domain; scaling the concurrency with the fleet (tried: 10 -> 30 at 30,000
        hosts) put more of a domain in maintenance at once and pushed the same VMs through more
        evacuations (10.4 -> 12.7 migrations per host), a superlinear fleet. Kept, a larger cluster
        takes a longer roll with the same work per host."""
        return section

    @classmethod
    def advisories(cls, config: Config | None, scenario) -> list[Problem]:
        if config is not None and config.enabled and not scenario.clusters:
            return [Problem(f"mechanisms.{KEY}", "the scenario has no clusters: no host has a desired image, "
                                                 "nothing is scanned or remediated")]
        return []

    def __init__(self, ctx: Context, dc: Datacenter, config: Config | None):
        super().__init__(ctx, dc, config)
        self.cluster_of: dict[str, str] = {}  # host -> its cluster (members)
        self.members: dict[str, list[Host]] = {}
        self.derived: dict[str, list[tuple[str, dict[str, str]]]] = {}  # cluster -> (standalone host, components)
        self.images: dict[str, dict[str, str]] = {}  # cluster -> desired (flat)
        self.desired: dict[str, dict[str, str]] = {}  # host -> desired (flat)
        self.origin: dict[str, str] = {}  # host -> the cluster its desired image comes from
        self.since: dict[str, float] = {}  # host -> noncompliant since
        self.dirty: dict[str, None] = {}  # hosts changed since the last scan
        self.pending: dict[str, float] = {}  # host -> detected at (queued or being remediated)
        self.queues: dict[str, deque[Host]] = {}
        self.active: dict[str, int] = {}
        self.fix_at: dict[str, object] = {}  # disabled: host -> its pending manual fix
        self.attempts: dict[str, _Attempt] = {}  # host -> its remediation under way
        self.scan = None
        self.reach: dict[str, dict[object, list[Host]]] = {}  # cluster -> scope group -> its members

    # -- set-up ------------------------------------------------------------------------------
    def wire(self) -> None:
        sc = self.ctx.scenario
        names = list(self.dc.hosts)
        for c in sc.clusters:
            self.images[c.name] = flat(c.image)
            self.members[c.name] = [self.dc.hosts[n] for n in sorted(select(c.hosts, names))]
            self.queues[c.name] = deque()
            self.active[c.name] = 0
            for h in self.members[c.name]:
                self.cluster_of[h.name] = c.name
                self.origin[h.name] = c.name
                self.desired[h.name] = dict(self.images[c.name])
        for s in sc.standalone_hosts:
            self.derived.setdefault(s.derive_from, []).append((s.host, dict(s.components)))
            self.origin[s.host] = s.derive_from
            self.desired[s.host] = derive(self.images[s.derive_from], self.config.cluster_only, s.components)
            # It runs its generated image at time 0 (the build gives it the base, add-on and its own
            # components; the generated image also keeps the cluster's non-cluster-only components).
            self.dc.hosts[s.host].image = dict(self.desired[s.host])
        for name in self.desired:
            host = self.dc.hosts[name]
            img = _Img(host.image)
            img.hook = partial(self._changed, host)
            host.image = img
            if dict(host.image) != self.desired[name]:  # built with another image: noncompliant at 0
                self._changed(host)
        if self.enabled:
            self.dc.bus.subscribe(ev.HOST, self._host_up, phase=ev.UP)
        self.ctx.finalizers.append(self._finish)

    def compliant(self, name: str) -> bool:
        return dict.__eq__(self.dc.hosts[name].image, self.desired[name])

    # -- noncompliance ------------------------------------------------------------------------
    def _changed(self, host: Host) -> None:
        """A host's running or desired image changed now."""
        name = host.name
        if self.compliant(name):
            return
        now = self.env.now
        if name not in self.since:
            self.since[name] = now
        if not self.enabled:
            if name not in self.fix_at:
                t = self.env.timeout(self.config.manual_fix_after)
                t.callbacks.append(partial(self._manual_fix, host))
                self.fix_at[name] = t
            return
        self.dirty[name] = None
        if self.scan is None:
            self.scan = every(self.env, self.config.scan_interval, self._scan, start=now)

    def _host_up(self, failure) -> None:
        name = failure.subject
        if name in self.desired and name not in self.pending and not self.compliant(name):
            self._changed(self.dc.hosts[name])

    def _scan(self, now: float) -> None:
        """The scan at ``now``: the hosts changed since the last one are compared (the others are
        unchanged, hence as compliant as they were)."""
        dirty, self.dirty = self.dirty, {}
        self.scan.cancel()
        self.scan = None
        for name in sorted(dirty):
            if name in self.pending or self.compliant(name):
                continue
            host = self.dc.hosts[name]
            if host.state not in (UP, MAINTENANCE):
                continue  # scanned again when it is back up
            self.pending[name] = now
            cluster = self.cluster_of.get(name)
            if cluster is None:
                self.env.process(self._standalone(host))
            else:
                self.queues[cluster].append(host)
        for cluster in self.queues:
            self._pump(cluster)

    def _pump(self, cluster: str) -> None:
        q = self.queues[cluster]
        while q and self.active[cluster] < self.config.max_concurrent:
            host = q.popleft()
            if host.state not in (UP, MAINTENANCE) or self.compliant(host.name):
                self.pending.pop(host.name, None)  # down: scanned when back up; compliant: nothing to do
                continue
            self.active[cluster] += 1
            # In maintenance now, before any host of this instant evacuates: no VM is moved onto a
            # host about to be remediated.
            self.dc.enter_maintenance(host, KEY)
            self.attempts[host.name] = _Attempt(host, cluster, "cluster", self.pending[host.name])
            self.env.process(self._rolling(host, cluster))

    # -- publish --------------------------------------------------------------------------------
    def carry_out(self, op: PublishImage):
        img = self.images[op.cluster]
        new = dict(img)
        new["base"] = op.image.base
        if op.image.addon is not None:
            new["addon"] = op.image.addon
        new.update(op.image.components)
        self.images[op.cluster] = new
        changed = []
        for h in self.members[op.cluster]:
            self.desired[h.name] = dict(new)
            changed.append(h)
        for name, components in self.derived.get(op.cluster, ()):
            self.desired[name] = derive(new, self.config.cluster_only, components)
            changed.append(self.dc.hosts[name])
        for h in changed:
            self._changed(h)
        yield self.env.timeout(0)
        return f"{op.cluster}: {show_image(new)}; {sum(not self.compliant(h.name) for h in changed)} hosts to remediate"

    # -- rolling cluster remediation ---------------------------------------------------------
    def _rolling(self, host: Host, cluster: str):
        proc = self.env.active_process
        watch = self.dc.bus.watch(proc, [(ev.HOST, host.name)])
        rec = self.attempts[host.name]
        outcome = COMPLIANT
        try:
            rec.maintenance = self.env.now
            outcome = yield from self._evacuate(host, cluster, rec)
            if outcome == COMPLIANT:
                yield from self._update(host)
        except simpy.Interrupt:
            outcome = HOST_FAILED
        watch.cancel()
        self.dc.exit_maintenance(host, KEY)
        self._end(rec, outcome)
        self.active[cluster] -= 1
        self._pump(cluster)

    def _update(self, host: Host):
        """Stage, install, reboot; the new image runs from the end of the reboot."""
        c = self.config
        yield self.env.timeout(c.stage_time + c.install_time + host.boot_time)
        img = host.image
        dict.clear(img)
        dict.update(img, self.desired[host.name])

    def _evacuate(self, host: Host, cluster: str, rec: _Attempt):
        """Live-migrate every VM off ``host`` to other hosts of ``cluster`` with room; a VM with no
        room waits (retried after a delay that doubles up to RETRY_MAX)."""
        engine = self.ctx.services["live_migration"]
        candidates = [h for h in self._reach(cluster, host) if h is not host]
        placement = self.dc.placement
        delay = RETRY_DELAY
        while True:
            left = [vm for vm in sorted(host.vms.values(), key=lambda v: v.name) if vm.host is host]
            if not left:
                return COMPLIANT
            # Hosts already at their desired image first (a VM put there is not moved again when
            # the rest of the cluster rolls), then hosts no remediation holds. Only when every host
            # in reach is under remediation, hosts waiting for room (out of maintenance meanwhile):
            # otherwise waiting hosts would pass VMs back and forth.
            idle = [h for h in candidates if h.name not in self.attempts]
            tiers = ([h for h in idle if self.compliant(h.name)], idle) if idle else (candidates,)
            tiers = [t for t in tiers if t]  # an empty tier has nothing to choose from
            # Each tier's hosts where the VM's rule lets it go are found when a VM first needs them
            # (O(tier); the second tier is seldom needed once hosts of the domain are compliant).
            rules: dict[int, list] = {}
            built: list = []  # rules built for the choice of a general rule (released below)
            procs = []
            for vm in left:
                if vm.state != RUNNING or vm.migrating:
                    continue
                base = self.dc.rule_for(vm)
                mine = rules.setdefault(id(base), [])
                for k, tier in enumerate(tiers):
                    if k == len(mine):
                        mine.append(_Tier(placement, base, tier))
                    target = mine[k].choose(vm, host, built)
                    if target is not None:
                        procs.append(engine.migrate(vm, target, "remediation", mechanism=KEY))
                        break
            for rule in built:
                placement.release(rule)
            if procs:
                results = yield simpy.AllOf(self.env, procs)
                failed = False
                for p in procs:
                    res = results[p]
                    rec.migrations += 1
                    if res.completed:
                        rec.vms += 1
                        rec.downtime += res.downtime_s
                    else:
                        failed = True
                if failed:
                    return MIGRATION_FAILED
                delay = RETRY_DELAY
            else:  # no room: leave maintenance while waiting (keeping the slot), so that the hosts it
                # waits on may evacuate into it, and try again (vLCM: enter maintenance failed, retry)
                rec.waits += 1
                self.dc.exit_maintenance(host, KEY)
                yield self.env.timeout(delay)
                self.dc.enter_maintenance(host, KEY)
                delay = min(2 * delay, RETRY_MAX)

    def _reach(self, cluster: str, host: Host) -> list[Host]:
        """The members of ``cluster`` a VM on ``host`` may live-migrate to (``host`` included): the
        members in its scope group (its broadcast domain, its site, or all), grouped once per cluster
        so an evacuation costs O(group), not O(cluster)."""
        scope_of = self.ctx.services["live_migration"].scope_of
        groups = self.reach.get(cluster)
        if groups is None:
            groups = self.reach[cluster] = {}
            for h in self.members[cluster]:
                groups.setdefault(scope_of(h), []).append(h)
        return groups.get(scope_of(host), [])

    # -- standalone remediation ----------------------------------------------------------------
    def _standalone(self, host: Host):
        proc = self.env.active_process
        watch = self.dc.bus.watch(proc, [(ev.HOST, host.name)])
        rec = self.attempts[host.name] = _Attempt(host, self.origin[host.name], "standalone", self.pending[host.name])
        c = self.config
        paused: dict[VM, float] = {}  # VM -> when it paused
        transfer = None
        outcome = COMPLIANT
        try:
            self.dc.enter_maintenance(host, KEY)
            rec.maintenance = self.env.now
            yield self.env.timeout(c.stage_time)
            for vm in sorted(host.vms.values(), key=lambda v: v.name):
                if vm.host is host and vm.state == RUNNING:
                    self.dc.pause(vm, KEY, cause=KEY)
                    paused[vm] = self.env.now
            memory = sum(vm.spec.memory for vm in paused)
            suspend = c.standalone_vm_action == "suspend" and memory > 0
            if suspend:  # memory written to the host's disk at its write rate
                transfer = self.dc.transfers.start(Endpoint.nic(host.name), Endpoint.disk(host.name), memory,
                                                   tag=f"suspend {host.name}", on_host=FAIL, on_link=STALL)
                yield transfer.done
                transfer = None
            yield self.env.timeout(c.install_time + host.boot_time)
            img = host.image
            dict.clear(img)
            dict.update(img, self.desired[host.name])
            if suspend:  # read back at the disk's read rate
                transfer = self.dc.transfers.start(Endpoint.disk(host.name), Endpoint.nic(host.name), memory,
                                                   tag=f"resume {host.name}", on_host=FAIL, on_link=STALL)
                yield transfer.done
                transfer = None
                self._resume(paused, list(paused), rec)
            else:  # shut down: each VM boots after the host's reboot
                end = self.env.now
                for boot in sorted({vm.spec.boot_time for vm in paused}):
                    wait = end + boot - self.env.now
                    if wait > 0:
                        yield self.env.timeout(wait)
                    self._resume(paused, [vm for vm in paused if vm.spec.boot_time == boot], rec)
        except simpy.Interrupt:
            outcome = HOST_FAILED
            if transfer is not None and transfer.live:
                transfer.abort()
            now = self.env.now
            rec.downtime += sum(now - t0 for t0 in paused.values())  # the failure's from here on
            rec.vms += len(paused)
        watch.cancel()
        self.dc.exit_maintenance(host, KEY)
        self._end(rec, outcome)

    def _resume(self, paused: dict, vms: list, rec: _Attempt) -> None:
        """``vms`` serve again now; a VM stopped meanwhile (its own crash) is its owner's."""
        now = self.env.now
        for vm in vms:
            t0 = paused.pop(vm)
            if vm.state != PAUSED:
                continue
            self.dc.resume(vm, "resumed", KEY)
            rec.vms += 1
            rec.downtime += now - t0

    # -- records -------------------------------------------------------------------------------
    def _end(self, rec: _Attempt, outcome: str) -> None:
        name = rec.host.name
        self.pending.pop(name, None)
        self.attempts.pop(name, None)
        since = self.since.get(name, rec.detected)
        if outcome == COMPLIANT:
            self.since.pop(name, None)
        self._row(rec.host, rec.cluster, rec.kind, outcome, since, rec.detected, rec.maintenance, rec.vms,
                  rec.migrations, rec.waits, rec.downtime)
        if outcome != COMPLIANT and rec.host.state in (UP, MAINTENANCE):
            self._changed(rec.host)  # detected again at the next scan

    def _manual_fix(self, host: Host, _event) -> None:
        name = host.name
        self.fix_at.pop(name, None)
        img = host.image
        dict.clear(img)
        dict.update(img, self.desired[name])
        since = self.since.pop(name, self.env.now)
        self._row(host, self.origin[name], "manual", COMPLIANT, since, float("nan"), float("nan"), 0, 0, 0, 0.0)

    def _row(self, host, cluster, kind, outcome, since, detected, maintenance, vms, migrations, waits, downtime):
        self.ctx.recorder.record(
            REMEDIATIONS.name, host=host.name, cluster=cluster, kind=kind, outcome=outcome,
            noncompliant_since_s=since, detected_s=detected, maintenance_s=maintenance, vms=vms,
            migrations=migrations, waits=waits, vm_downtime_s=downtime,
            desired_image=show_image(self.desired[host.name]), running_image=show_image(host.image),
        )

    def _finish(self, now: float) -> None:
        """Hosts still noncompliant at the end: one ``open`` row each (their time counts to the end),
        with what a remediation under way has done so far (waits for room, VMs moved)."""
        for name in sorted(self.since):
            host = self.dc.hosts[name]
            rec = self.attempts.get(name)
            if rec is None:
                self._row(host, self.origin[name], "open", OPEN, self.since[name], self.pending.get(name, float("nan")),
                          float("nan"), 0, 0, 0, 0.0)
            else:
                self._row(host, rec.cluster, rec.kind, OPEN, self.since[name], rec.detected, rec.maintenance,
                          rec.vms, rec.migrations, rec.waits, rec.downtime)


class _Tier:
    """The hosts of one evacuation tier where a rule lets a VM go, and the choice among them.

    What ``placement.choose(vm, placement.within(rule, tier), exclude=host)`` returns, without
    building and indexing a rule per tier and evacuation (most of remediation's cost per host): when
    those hosts lie in one broadcast domain (always, under the default ``broadcast_domain`` scope)
    and the rule spreads by ``broadcast_domain`` or ``pack``, the placement service's choice is, by
    its definition, the least-used host offering the VM's memory (by usage, then host index) or the
    first such host in index order. Both read the room the placement index keeps per host (free
    memory less what it promised to woken VMs; none while a host is not up). Any other case (a
    ``random`` rule, a tier spanning domains, a VM holding a promise of room) asks the placement
    service through the built rule, as before."""

    __slots__ = ("placement", "base", "tier", "hosts", "fast", "rule")

    def __init__(self, placement, base, tier: list[Host]):
        self.placement = placement
        self.base = base
        self.tier = tier
        self.hosts = hosts = sorted((h for h in tier if h in base), key=_index)  # the rule's order
        self.fast = base.spread in ("broadcast_domain", "pack") and len({h.domain for h in hosts}) <= 1
        self.rule = None

    def choose(self, vm: VM, exclude: Host, built: list) -> Host | None:
        placement = self.placement
        if not self.fast or (placement._promise_of and vm in placement._promise_of):
            if self.rule is None:
                self.rule = placement.within(self.base, self.tier)
                built.append(self.rule)
            return placement.choose(vm, self.rule, exclude=exclude)
        need = vm.spec.memory
        room = placement._value
        if self.base.spread == "pack":
            for h in self.hosts:
                if room[h.index] >= need and h is not exclude:
                    return h
            return None
        best, least = None, 0.0
        for h in self.hosts:  # in index order: of equally used hosts the first stays
            if room[h.index] >= need and h is not exclude:
                c = h.memory - h.reserved_memory  # the index's usage (``Host.capacity``)
                used = (h.used_memory + h.reserved) / c if c > 0 else 1.0
                if best is None or used < least:
                    best, least = h, used
        return best


class _Attempt:
    __slots__ = ("host", "cluster", "kind", "detected", "maintenance", "vms", "migrations", "waits", "downtime")

    def __init__(self, host: Host, cluster: str, kind: str, detected: float):
        self.host = host
        self.cluster = cluster
        self.kind = kind
        self.detected = detected
        self.maintenance = float("nan")
        self.vms = 0
        self.migrations = 0
        self.waits = 0
        self.downtime = 0.0
