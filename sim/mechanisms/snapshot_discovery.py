"""Snapshot-capability tagging: ``mechanisms.snapshot_discovery`` (docs/data_protection.md).

Resources (databases, file systems, volumes) live on hosts and carry attributes:
``storage``, ``filesystem``, ``volume_manager`` (values, not references),
``free_fraction`` and ``created_at``. A resource entry's ``count`` is the total, dealt
round-robin over the hosts its selector matches, in file order; resources are named
``<kind>-NNN`` (numbered per kind across entries, in file order).

Discovery: every ``discovery_interval`` I each host evaluates the rules on its resources (a
resource matching any rule is snapshot capable) and reports identifiers and tags to the
backup server. The hosts' agents are not synchronised: host h discovers at ``phase_h + k x I``,
its phase drawn once, uniformly in [0, I), from the stream ``snapshot_discovery/discovery/<host>``
when first needed. Discoveries are computed from the phase, never simulated one event per
host: a capable resource is tagged from the first discovery of its host at or after its
creation (so 0 to I after it; at equal timestamps a discovery counts before a backup). A
resource there when the run starts (``created_at`` 0) is in the server's inventory already. A
host down or in repair at a discovery reports nothing (one failing at that instant is down,
one repaired then reports): its outages are heard on the bus (O(1) per host failure) and the
first discovery it was up for is found when a backup needs it. Once reported, a resource
stays tagged: attributes never change during a run, so the rules are evaluated once,
vectorised over the resources.

Backups: every ``backup_every`` (``k x backup_every``, through ``sim.core.schedule``) the
server backs up every resource created by then to the ``storage`` target through
``dc.transfers`` (the host disk's read rate, the network and the target's write rate, shared
max-min fairly by all the copies running). A tagged resource is snapshotted: its app is
quiesced for ``quiesce_time`` (impact), then the copy streams from the snapshot with no
impact. An untagged one is streamed live: its app is impacted from the backup's start to the
copy's end. A host crash or a storage outage fails a copy (recorded ``failed``; the next
backup takes the resource again); a link failure stalls it.

Decisions: a resource whose host is down or in repair at backup time is skipped and recorded
(``skipped``, cause ``host down``): its app is not running, so nothing is impacted, and the
next backup takes it. A resource whose previous copy is still running is skipped
(``previous copy running``) rather than copied twice. A copy still running at the end of the
run is recorded ``open``, its impact and window counted up to the end.

Disabled (``enabled: false`` with resources): the same resources and backups, all streamed
live, nothing tagged.

Table ``snapshot_backups``: one row per resource per backup. Metrics ``snapshot.*``.
docs/data_protection.md (section ``snapshot_discovery``) has the details.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from pydantic import BeforeValidator, Field, WithJsonSchema

from sim import format as fmt
from sim.core.errors import Problem
from sim.core.schedule import every
from sim.infra import events as ev
from sim.infra.datacenter import DOWN, REPAIR
from sim.infra.network import Endpoint
from sim.infra.transfer import FAIL, STALL
from sim.mechanisms.base import Mechanism, MechanismConfig, Need, scaled, with_first_storage
from sim.metrics.meta import Metric
from sim.metrics.summary import count, stats
from sim.metrics.tables import table
from sim.scenario.schema import Model
from sim.scenario.types import Duration, Fraction, Globs, Name, PositiveDuration, PositiveInt, PositiveSize

if TYPE_CHECKING:
    from sim.core.context import Context
    from sim.infra.datacenter import Datacenter
    from sim.infra.transfer import Transfer
    from sim.metrics.summary import RunInfo, Tables

KEY = "snapshot_discovery"
GiB = 1024.0**3
ATTRIBUTES = ("storage", "filesystem", "volume_manager")  # the attribute values a rule can name
SNAPSHOT, LIVE, SKIPPED = "snapshot", "live", "skipped"  # modes
COMPLETED, FAILED, OPEN = "completed", "failed", "open"  # outcomes (and SKIPPED)

# time_s: the backup's start. reported_s: when the resource's host first reported it snapshot
# capable (NaN while it has not; 0 for a resource there at the start). mode: snapshot, live or
# skipped. bytes: sent (the size when completed). impact_s: the app's impact (quiesce, or the
# whole live copy). window_s: from the backup's start to the copy's end (0 when skipped).
# end_s: the copy's end (the run's for open).
BACKUPS = table("snapshot_backups", "time_s", "resource:str", "kind:str", "host:str", "tagged:bool", "reported_s",
                "mode:str", "outcome:str", "cause:str", "bytes", "impact_s", "window_s", "end_s")


def _values(value: Any) -> Any:
    """One value is a one-item list."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError("expected a value like \"zfs\" or a non-empty list of them")


Values = Annotated[tuple[str, ...], BeforeValidator(_values), WithJsonSchema(
    {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}],
     "description": "a value or a list of values"})]


class Rule(Model):
    """A resource matches when each attribute the rule names has one of the listed values and, with
    ``min_free_fraction``, its ``free_fraction`` is at least that (a resource without
    ``free_fraction`` does not match such a rule: its free space is unknown)."""

    storage: Values | None = None
    filesystem: Values | None = None
    volume_manager: Values | None = None
    min_free_fraction: Fraction | None = None


class Resource(Model):
    kind: Name
    hosts: Globs
    count: PositiveInt = 1
    size: PositiveSize
    storage: str | None = None
    filesystem: str | None = None
    volume_manager: str | None = None
    free_fraction: Fraction | None = None
    created_at: Duration = 0.0


def _default_rules() -> tuple[Rule, ...]:
    # Default rules: array-based snapshots, copy-on-write file systems, and LVM
    # snapshots, which need free extents in the volume group (LVM's snapshot volumes are allocated
    # from the group's free space; 10 % is a chosen threshold).
    return (Rule(storage=("array",)), Rule(filesystem=("zfs", "btrfs")),
            Rule(volume_manager=("lvm",), min_free_fraction=0.1))


class Config(MechanismConfig):
    """``mechanisms.snapshot_discovery``. Defaults (choices, docs/data_protection.md): discovery
    hourly, nightly backups, a 5 s quiesce (VSS holds writes for at most 10 s while the shadow copy
    is made, Microsoft "Volume Shadow Copy Service"; typical freezes last a few seconds)."""

    discovery_interval: PositiveDuration = 3600.0
    backup_every: PositiveDuration = 86400.0
    quiesce_time: Duration = 5.0
    storage: str | None = None  # None: the scenario's first storage system (resolve)
    rules: tuple[Rule, ...] = Field(default_factory=_default_rules)
    resources: tuple[Resource, ...] = ()

    def check_references(self, scenario, path: str) -> list[Problem]:
        from sim.scenario.names import all_host_names
        from sim.scenario.validate import expected_name, glob_problems

        out: list[Problem] = []
        names = [s.name for s in scenario.infrastructure.storage]
        if self.storage is not None and self.storage not in names:
            out.append(Problem(f"{path}.storage", expected_name("storage system", names, self.storage)))
        elif self.storage is None and self.resources:
            out.append(Problem(f"{path}.storage", "expected a storage system to back up to (infrastructure.storage "
                                                  "has none), got none"))
        hosts = all_host_names(scenario.infrastructure)
        for i, r in enumerate(self.resources):
            out += glob_problems(r.hosts, hosts, f"{path}.resources.{i}.hosts", "host")
        return out


# --------------------------------------------------------------------------- rules
def capable(rules, storage, filesystem, volume_manager, free_fraction) -> np.ndarray:
    """Which resources match any rule (vectorised): the attribute arrays hold one value per
    resource (None when absent; ``free_fraction`` NaN when absent)."""
    attrs = {"storage": np.asarray(storage, dtype=object), "filesystem": np.asarray(filesystem, dtype=object),
             "volume_manager": np.asarray(volume_manager, dtype=object)}
    free = np.asarray(free_fraction, dtype=float)
    n = len(free)
    out = np.zeros(n, dtype=bool)
    for rule in rules:
        m = np.ones(n, dtype=bool)
        for a in ATTRIBUTES:
            wanted = getattr(rule, a)
            if wanted is not None:
                m &= np.isin(attrs[a], np.asarray(wanted, dtype=object))
        if rule.min_free_fraction is not None:
            with np.errstate(invalid="ignore"):
                m &= free >= rule.min_free_fraction  # NaN (unknown) never matches
        out |= m
    return out


def next_discovery(t: float, phase: float, interval: float) -> float:
    """The first discovery at or after ``t`` of a host discovering at ``phase + k x interval``."""
    return phase + math.ceil((t - phase) / interval) * interval


# --------------------------------------------------------------------------- summaries
def snapshot_metrics(t: Tables, info: RunInfo) -> dict[str, float]:
    b = t["snapshot_backups"]
    resources = [r for r in info.configs[KEY].resources if r.created_at < info.duration_s]
    out: dict[str, float] = {
        "snapshot.resources": sum(r.count for r in resources),
        "snapshot.tagged": int(b.loc[b["tagged"], "resource"].nunique()),
        "snapshot.snapshots": count(b, b["mode"] == SNAPSHOT),
        "snapshot.app_impact_s_total": float(b["impact_s"].sum()),
    }
    last_end = b[b["mode"] != SKIPPED].groupby("time_s")["end_s"].max()  # per round: its last copy's end
    out.update(stats("snapshot.backup_window_s", last_end.to_numpy(dtype=float) - last_end.index.to_numpy(float)))
    return out


METRICS = (
    Metric("snapshot.resources", "count", "resources on hosts that backups cover (created before the end)"),
    Metric("snapshot.tagged", "count", "resources the backup server knew as snapshot capable at a backup of the run"),
    Metric("snapshot.snapshots", "count", "backups taken from a snapshot (the app quiesced only)"),
    Metric("snapshot.app_impact_s_total", "s",
           "time apps were impacted by backups (quiesce, or the whole live copy), summed over backups", False,
           headline=True),
    Metric("snapshot.backup_window_s_*", "s", "one backup round: from its start to the end of its last copy",
           False),
)


# --------------------------------------------------------------------------- the mechanism
class SnapshotDiscovery(Mechanism):
    key = KEY
    Config = Config
    tables = (BACKUPS,)
    summaries = (snapshot_metrics,)
    metrics = METRICS
    naive = True  # disabled, its resources are still backed up, all streamed live

    @classmethod
    def said(cls, metrics, info):
        """Resources tagged snapshot capable, backups taken from snapshots, and the time the apps
        were impacted by backups (quiesces plus live streams)."""
        resources = metrics.get("snapshot.resources", 0)
        if not resources:
            return None
        return (f"{fmt.number(metrics.get('snapshot.tagged', 0))} of {fmt.number(resources)} tagged, "
                f"{fmt.number(metrics.get('snapshot.snapshots', 0))} snapshots, "
                f"app impact {fmt.duration(metrics.get('snapshot.app_impact_s_total', 0))}")

    @classmethod
    def resolve(cls, config: Config, scenario) -> Config:
        return with_first_storage(config, scenario)

    @classmethod
    def budget(cls, config: Config, scenario) -> list[Need]:
        """Events: about three per resource per backup (the copy's start, its end, the quiesce)."""
        backups = float(scenario.duration) / config.backup_every
        return [Need("events", f"resources.{i}.count", 3.0 * r.count * backups,
                     "fewer resources, a longer backup_every or a shorter duration")
                for i, r in enumerate(config.resources)]

    @classmethod
    def scale(cls, section: dict, factor: float) -> dict:
        """Resource counts scale like the workloads' VMs."""
        rs = [dict(r, count=scaled(int(r.get("count", 1)), factor)) if isinstance(r, dict) else r
              for r in section.get("resources") or []]
        return dict(section, resources=rs) if rs else section

    def __init__(self, ctx: Context, dc: Datacenter, config: Config):
        super().__init__(ctx, dc, config)
        self.running: dict[int, Transfer] = {}  # resource index -> its copy in progress
        self.rows: dict[int, dict] = {}  # resource index -> the row of its copy in progress
        self.down_since: dict[str, float] = {}  # host -> when it went down (while down)
        self.downs: dict[str, list[tuple[float, float]]] = {}  # host -> its past [down, up) intervals

    def build(self, builder) -> None:
        from sim.scenario.names import all_host_names, select

        hosts = all_host_names(self.ctx.scenario.infrastructure)
        names, kinds, on, sizes, created = [], [], [], [], []
        attrs: dict[str, list] = {a: [] for a in ATTRIBUTES}
        free = []
        numbers: dict[str, int] = {}
        for r in self.config.resources:
            matched = select(r.hosts, hosts)
            for i in range(r.count):
                k = numbers.get(r.kind, 0)
                numbers[r.kind] = k + 1
                names.append(f"{r.kind}-{k:03d}")
                kinds.append(r.kind)
                on.append(matched[i % len(matched)])
                sizes.append(r.size)
                created.append(r.created_at)
                for a in ATTRIBUTES:
                    attrs[a].append(getattr(r, a))
                free.append(math.nan if r.free_fraction is None else r.free_fraction)
        self.names, self.kinds, self.hosts = names, kinds, on
        self.sizes = np.asarray(sizes, dtype=float)
        self.created = np.asarray(created, dtype=float)
        self.discovered = np.zeros(len(names), dtype=bool)  # reported by its host (stays: attributes are static)
        self.reported = np.full(len(names), math.nan)  # when its host first reported it capable
        self.phases: dict[str, float] = {}  # host -> its discovery phase
        if self.enabled:
            self.capable = capable(self.config.rules, attrs["storage"], attrs["filesystem"],
                                   attrs["volume_manager"], free)
        else:
            self.capable = np.zeros(len(names), dtype=bool)

    def wire(self) -> None:
        if not self.enabled:
            return  # nothing is discovered: everything streams live
        bus = self.dc.bus
        for h in dict.fromkeys(self.hosts):
            bus.subscribe(ev.HOST, self._host_down, h, ev.DOWN)
            bus.subscribe(ev.HOST, self._host_up, h, ev.UP)

    def _host_down(self, failure) -> None:
        self.down_since.setdefault(failure.subject, self.env.now)

    def _host_up(self, failure) -> None:
        since = self.down_since.pop(failure.subject, None)
        if since is not None:
            self.downs.setdefault(failure.subject, []).append((since, self.env.now))

    def start(self) -> None:
        if not self.names:
            return
        self.target = Endpoint.storage(self.config.storage)
        self.schedule = every(self.env, self.config.backup_every, self.backup)
        self.ctx.finalizers.append(self.finish)

    # -- one backup round ------------------------------------------------------------------------
    def backup(self, now: float) -> None:
        self._discover(now)
        tagged = self.capable & self.discovered
        exists = self.created <= now
        snap: list[int] = []
        for i in np.flatnonzero(exists).tolist():
            busy = i in self.rows  # quiescing or copying since an earlier backup
            host_down = self.dc.hosts[self.hosts[i]].state in (DOWN, REPAIR)
            row = self._row(i, now, bool(tagged[i]))
            if busy or host_down:
                row.update(mode=SKIPPED, outcome=SKIPPED, cause="previous copy running" if busy else "host down")
                self.ctx.recorder.record("snapshot_backups", **row)
            elif tagged[i]:
                row.update(mode=SNAPSHOT, impact_s=self.config.quiesce_time)
                self.rows[i] = row
                snap.append(i)
            else:
                row["mode"] = LIVE
                self._copy(i, row)
        if snap:
            if self.config.quiesce_time > 0:
                self.env.timeout(self.config.quiesce_time).callbacks.append(lambda _ev: self._after_quiesce(snap))
            else:
                self._after_quiesce(snap)

    def _discover(self, now: float) -> None:
        """Mark the capable resources some discovery up to ``now`` has reported: the first discovery
        at or after a resource's creation at which its host was up (a host down at a discovery
        reports nothing; one that fails at that instant is down, one repaired then reports)."""
        interval = self.config.discovery_interval
        pending = self.capable & ~self.discovered & (self.created <= now)
        for i in np.flatnonzero(pending).tolist():
            host = self.hosts[i]
            created = float(self.created[i])
            if created <= 0.0:  # there when the run starts: in the inventory already
                self.discovered[i] = True
                self.reported[i] = 0.0
                continue
            phase = self._phase(host)
            d = next_discovery(created, phase, interval)
            for a, b in self.downs.get(host, ()):  # past outages, in time order
                if a <= d < b:
                    d = next_discovery(b, phase, interval)
            since = self.down_since.get(host)
            if since is not None and d >= since:
                continue  # down since before that discovery: not reported yet
            if d <= now:
                self.discovered[i] = True
                self.reported[i] = d

    def _phase(self, host: str) -> float:
        """The host's discovery phase in [0, interval): one draw from its own stream, made the first
        time it is needed (the agents are not synchronised)."""
        phase = self.phases.get(host)
        if phase is None:
            phase = float(self.ctx.streams.get(f"{KEY}/discovery/{host}").random()) * self.config.discovery_interval
            self.phases[host] = phase
        return phase

    def _row(self, i: int, now: float, tagged: bool) -> dict:
        return {"time_s": now, "resource": self.names[i], "kind": self.kinds[i], "host": self.hosts[i],
                "tagged": tagged, "reported_s": float(self.reported[i]), "mode": "", "outcome": "", "cause": "",
                "bytes": 0.0, "impact_s": 0.0, "window_s": 0.0, "end_s": now}

    def _after_quiesce(self, snap: list[int]) -> None:
        """The snapshots are taken: their copies stream from them."""
        for i in snap:
            self._copy(i, self.rows[i])

    def _copy(self, i: int, row: dict) -> None:
        self.rows[i] = row
        t = self.dc.transfers.start(Endpoint.disk(self.hosts[i]), self.target, float(self.sizes[i]),
                                    tag=(KEY, self.names[i]), on_host=FAIL, on_storage=FAIL, on_link=STALL)
        if not t.live:  # an endpoint already down: failed at once
            self._end(i, t)
            return
        self.running[i] = t
        t.done.callbacks.append(lambda _ev, i=i, t=t: self._end(i, t))

    def _end(self, i: int, t: Transfer, outcome: str | None = None) -> None:
        self.running.pop(i, None)
        row = self.rows.pop(i)
        now = self.env.now
        row["outcome"] = outcome or (COMPLETED if t.outcome == "completed" else FAILED)
        row["cause"] = "" if row["outcome"] != FAILED else type(t.cause).__name__
        row["bytes"] = t.sent()
        row["end_s"] = now
        row["window_s"] = now - row["time_s"]
        if row["mode"] == LIVE:
            row["impact_s"] = now - row["time_s"]
        self.ctx.recorder.record("snapshot_backups", **row)

    def finish(self, now: float) -> None:
        """Copies still running at the end: recorded ``open``, counted up to the end."""
        for i, t in sorted(self.running.items()):
            self._end(i, t, OPEN)
        for i in sorted(self.rows):  # quiescing at the end: the copy never started
            row = self.rows.pop(i)
            row["cause"] = "quiescing at the end"
            row.update(outcome=OPEN, end_s=now, window_s=now - row["time_s"],
                       impact_s=min(row["impact_s"], now - row["time_s"]))
            self.ctx.recorder.record("snapshot_backups", **row)
