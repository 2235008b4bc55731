"""Roaming data segments, a moving-target store (``mechanisms.roaming_storage``; docs/operations.md).

Each file of ``files`` (``count`` copies named ``<name>-NNN``) is acquired at time 0 by a VM
drawn uniformly from the workloads' VMs (stream ``roaming_storage/acquire``) and shredded into
``segments`` equal segments. Each segment is wrapped with its itinerary (the destinations it will
visit, drawn at shredding from the stream ``roaming_storage/itinerary/<file>``: at every step the
file's segments get pairwise distinct locations when there are as many locations as segments),
a pointer to the next segment and a timer. The segments go at once from the acquiring VM's host
to their first locations. Then each roams on its own: when its timer fires (``roam_interval``
x (1 + ``jitter`` x U(-1, 1)), stream ``roaming_storage/timer/<file>``) it moves, through the
fluid model (``dc.transfers``), to the next location of its itinerary, or, when that location
holds (or is receiving) another segment of its file, to one drawn uniformly among those that
hold none; with no such location it stays where it is until its next timer.

A retrieval (Poisson, ``retrieval_rate`` per file, stream ``roaming_storage/retrieval/<file>``)
is made by the acquiring VM: it follows the chain from the first segment by the pointers, waits
for a segment in flight to land, fetches each segment to the VM's host in turn and reassembles
the file there (handed over, not stored). While a retrieval runs, the file's segments hold
still: a timer that fires meanwhile moves its segment when the retrieval ends.

Exposure: a file's exposure at a moment is the largest fraction of it stored at one location
(stored segments only; a segment in flight counts at its source), counted from the moment all
its segments are stored at their first locations until the end of the run or its loss.

Failures: a move or a fetch whose endpoint host is down, or whose path has a failed link, or
whose storage system is under outage, stalls and waits (the segment stays at its source). A disk
failure destroys the segments stored on that disk (the bus's ``disk`` topic), those in flight
from it included: a shredded file keeps no redundancy, so the file is lost (``roaming_files``
outcome ``lost``); its other segments stop roaming and are forgotten, and its later retrievals
fail with ``lost``. A move to a disk that fails is abandoned (the segment stays at its source).

Disabled: each file is acquired the same way and stored whole at its first location (one
segment of the whole size), where it stays; its exposure is exactly 1.
"""

from __future__ import annotations

import math
from functools import partial
from typing import TYPE_CHECKING, Annotated, Literal

import simpy
from pydantic import AfterValidator, BeforeValidator

from sim import format as fmt
from sim.core.errors import OperationFailed, Problem
from sim.infra import events as ev
from sim.infra.network import Endpoint
from sim.infra.transfer import STALL, TransferFailed
from sim.mechanisms.base import Mechanism, MechanismConfig, Need, scaled
from sim.metrics.meta import Metric
from sim.metrics.summary import count, stats
from sim.metrics.tables import table
from sim.scenario.names import pattern
from sim.scenario.schema import Model, OperationBase
from sim.scenario.types import EventRate, Globs, Name, PositiveDuration, PositiveInt, PositiveSize

if TYPE_CHECKING:
    from sim.core.context import Context
    from sim.infra.datacenter import VM, Datacenter
    from sim.metrics.summary import RunInfo, Tables

KEY = "roaming_storage"
GiB = 1024.0**3
DAY = 86400.0

PLACE, ROAM = "place", "roam"
COMPLETED, FAILED, DESTROYED = "completed", "failed", "destroyed"
KEPT, LOST = "kept", "lost"
NO_REQUESTER = "no_requester"

# One row per segment move (``place``: from the acquiring VM's host to its first location; ``roam``).
# bytes: delivered (the segment size for a completed move; what had arrived for one that failed or
# whose segment was destroyed). outcome: completed | failed | destroyed.
SEGMENT_MOVES = table("segment_moves", "time_s", "file:str", "segment:i8", "kind:str", "from_location:str",
                      "to_location:str", "bytes", "outcome:str", "end_s", "duration_s")
# One row per retrieval request. latency_s: request to reassembly (NaN unless completed). waited_s:
# waiting for the file's first placement and for segments in flight. outcome: completed | lost |
# no_requester (the acquiring VM was not running).
RETRIEVALS = table("retrievals", "time_s", "file:str", "vm:str", "requester_host:str", "segments:i8", "bytes",
                   "waited_s", "latency_s", "outcome:str", "end_s")
# One row per file at the end of the run (time_s: acquisition). exposure_max: the largest fraction of
# it at one location while counted; exposure_s: the time integral of its exposure over counted_s
# (from all segments first stored to the end or its loss). outcome: kept | lost (lost_s when).
ROAMING_FILES = table("roaming_files", "time_s", "file:str", "vm:str", "segments:i8", "size_bytes", "placed_s",
                      "counted_s", "exposure_s", "exposure_max", "outcome:str", "lost_s")


def _segments(value: int) -> int:
    if value < 2:
        raise ValueError("expected at least 2 segments (a file in one piece does not roam; disable the "
                         "mechanism for that)")
    return value


def _jitter(value: float) -> float:
    if not (0.0 <= value < 1.0):
        raise ValueError("expected a jitter from 0 up to (not including) 1, a fraction of roam_interval")
    return value


def _not_bool(value):
    if isinstance(value, bool):
        raise ValueError("expected a number")
    return value


Segments = Annotated[int, BeforeValidator(_not_bool), AfterValidator(_segments)]
Jitter = Annotated[float, BeforeValidator(_not_bool), AfterValidator(_jitter)]


class FileSpec(Model):
    name: Name
    size: PositiveSize = 10 * GiB  # a choice (docs/operations.md)
    segments: Segments = 8  # a choice (docs/operations.md)
    count: PositiveInt = 1


class Config(MechanismConfig):
    """``mechanisms.roaming_storage``. No published defaults exist for roaming segments (docs/operations.md
    names the nearest: Tahoe-LAFS shares, moving-target defense models); the values are the example's."""

    files: tuple[FileSpec, ...] = ()
    locations: Globs = ("*",)  # host names (their disks) or storage names; every host by default
    roam_interval: PositiveDuration = 3600.0  # a choice: hourly roaming (docs/operations.md)
    jitter: Jitter = 0.2  # a choice (docs/operations.md)
    retrieval_rate: EventRate = 2.0 / DAY  # a choice: two retrievals a day per file (docs/operations.md)

    def check_references(self, scenario, path: str) -> list[Problem]:
        from sim.scenario.validate import Namespaces, glob_problems, unique_problems

        ns = Namespaces(scenario)
        out = glob_problems(self.locations, [*ns.hosts, *ns.storage], f"{path}.locations",
                            "host or storage system")
        out += unique_problems([f.name for f in self.files], f"{path}.files.{{}}.name", "file name")
        if self.files and not ns.vms:
            out.append(Problem(f"{path}.files", "expected a workload VM to acquire the files, got none "
                                                "(the scenario has no workloads)"))
        return out


def locations_of(config: Config, scenario) -> list[tuple[str, str]]:
    """(kind, name) of every location, hosts (``disk``) then storage systems, in file order."""
    from sim.scenario.validate import Namespaces

    ns = Namespaces(scenario)
    match = pattern(tuple(config.locations)).match
    return [("disk", h) for h in ns.hosts if match(h)] + [("storage", s) for s in ns.storage if match(s)]


# --------------------------------------------------------------------------- summaries
def roaming_metrics(t: Tables, info: RunInfo) -> dict[str, float]:
    moves, r, f = t["segment_moves"], t["retrievals"], t["roaming_files"]
    done = r[r["outcome"] == COMPLETED]
    out: dict[str, float] = {
        "roaming.retrievals": count(done),
        "roaming.retrievals_failed": count(r) - count(done),
        "roaming.moves": count(moves, (moves["kind"] == ROAM) & (moves["outcome"] == COMPLETED)),
        "roaming.bytes_moved_total": float(moves["bytes"].sum()),
        "roaming.lost_files": count(f, f["outcome"] == LOST),
    }
    out.update(stats("roaming.retrieval_s", done["latency_s"]))
    counted = f[f["counted_s"] > 0]
    exp_max = f["exposure_max"].dropna()
    if len(exp_max):
        out["roaming.exposure_max"] = float(exp_max.max())
    if len(counted):
        out["roaming.exposure_time_weighted"] = float(counted["exposure_s"].sum() / counted["counted_s"].sum())
    return out


METRICS = (
    Metric("roaming.retrievals", "count", "file retrievals completed (segments fetched and reassembled)"),
    Metric("roaming.retrievals_failed", "count", "retrievals that failed (the file was lost, or its VM was "
                                                 "not running)", higher_is_better=False),
    Metric("roaming.retrieval_s_*", "s", "request to reassembly of a completed retrieval, waits for "
                                         "segments in flight included", higher_is_better=False),
    Metric("roaming.moves", "count", "segment moves completed after the first placement"),
    Metric("roaming.bytes_moved_total", "bytes", "bytes of segments delivered by moves (first placement and "
                                                 "roaming; retrieval fetches not included)"),
    Metric("roaming.exposure_max", "fraction", "largest fraction of any file stored at one location at any "
                                               "moment", higher_is_better=False, headline=True),
    Metric("roaming.exposure_time_weighted", "fraction", "the files' largest fraction at one location, "
                                                         "averaged over the time each was counted",
           higher_is_better=False),
    Metric("roaming.lost_files", "count", "files lost because a disk failure destroyed one of their segments",
           higher_is_better=False, headline=True),
)


# --------------------------------------------------------------------------- state
class _Seg:
    __slots__ = ("file", "index", "loc", "step", "move", "landed", "proc", "tag", "dest", "wake", "roamed")

    def __init__(self, file: _File, index: int):
        self.file = file
        self.index = index
        self.loc: int | None = None  # where it is stored (None before its first placement)
        self.step = 0  # itinerary steps taken
        self.move = None  # the transfer in flight (a move is in flight exactly while it is set), or None
        # fires when the move in flight ends; made only when a retrieval waits for it (no event per move)
        self.landed: simpy.Event | None = None
        self.proc = None
        self.tag = f"segment {file.name}/{index}"  # its transfers' tag
        self.dest = -1  # where the move in flight goes
        self.wake = None  # the callbacks of its roaming (bound once, not one closure per event)
        self.roamed = None


class _File:
    __slots__ = ("name", "vm", "size", "nseg", "seg_size", "segs", "count", "taken", "steps", "rng", "timer_rng",
                 "placed", "placed_s", "holds", "released", "lost_s", "exposure_s", "exposure_max", "since",
                 "current", "acquired_s")

    def __init__(self, name: str, vm: VM, size: float, nseg: int, rng, timer_rng, now: float):
        self.name = name
        self.vm = vm
        self.size = size
        self.nseg = nseg
        self.seg_size = size / nseg
        self.segs = [_Seg(self, i) for i in range(nseg)]
        self.count: dict[int, int] = {}  # location -> segments stored there (in flight: at the source)
        self.taken: dict[int, int] = {}  # location -> segments there or bound there (no other may come)
        self.steps: dict[int, list] = {}  # itinerary step -> [destinations, segments yet to use it]
        self.rng = rng
        self.timer_rng = timer_rng
        self.placed = 0
        self.placed_s: float | None = None
        self.holds = 0  # retrievals under way
        self.released: simpy.Event | None = None
        self.lost_s: float | None = None
        self.exposure_s = 0.0
        self.exposure_max = math.nan
        self.since = 0.0  # last change of exposure, while counted
        self.current = 0.0  # exposure now, while counted
        self.acquired_s = now


def _inc(d: dict[int, int], k: int) -> None:
    d[k] = d.get(k, 0) + 1


def _dec(d: dict[int, int], k: int) -> None:
    n = d[k] - 1
    if n:
        d[k] = n
    else:
        del d[k]


class RetrieveFile(OperationBase):
    """``{kind: retrieve_file, at, file}``: one retrieval of a file (``<name>-NNN``) by its VM, as a
    Poisson arrival would make it (micro-scenarios; the ``retrievals`` row records it)."""

    kind: Literal["retrieve_file"]
    file: str

    @property
    def subject(self) -> str:
        return self.file


class RoamingStorage(Mechanism):
    key = KEY
    Config = Config
    tables = (SEGMENT_MOVES, RETRIEVALS, ROAMING_FILES)
    summaries = (roaming_metrics,)
    metrics = METRICS
    operations = {"retrieve_file": RetrieveFile}
    naive = True  # disabled: files are stored whole where first placed

    @classmethod
    def said(cls, metrics, info):
        """The largest share of a file ever at one place against the counterfactual (each file whole
        at one location: 100 %), the moves, the retrievals and the files lost."""
        if "roaming.exposure_max" not in metrics and not metrics.get("roaming.moves"):
            return None
        text = f"exposure {fmt.percent(metrics.get('roaming.exposure_max', 0))} (100 % without)"
        lost = metrics.get("roaming.lost_files", 0)
        text += f", {fmt.number(lost)} file{'s' if lost != 1 else ''} lost" if lost else ""
        return (text + f", {fmt.number(metrics.get('roaming.retrievals', 0))} retrievals, "
                f"{fmt.number(metrics.get('roaming.moves', 0))} moves")

    @classmethod
    def budget(cls, config: Config, scenario) -> list[Need]:
        """Expected events: about 6 per segment per roam interval (a timer, a transfer and its flow,
        measured 5.3 by benchmarks/bench_roaming_storage.py) and per segment fetched by a retrieval."""
        d = float(scenario.duration)
        return [Need("events", f"files.{i}.count",
                     f.count * (f.segments * 6 * d / config.roam_interval + 6 * f.segments * d * config.retrieval_rate),
                     "fewer files or segments, or a longer roam_interval")
                for i, f in enumerate(config.files)]

    @classmethod
    def scale(cls, section: dict, factor: float) -> dict:
        """File counts scale like the workloads' VMs."""
        files = [dict(f, count=scaled(int(f.get("count", 1)), factor)) if isinstance(f, dict) else f
                 for f in section.get("files") or []]
        return dict(section, files=files) if files else section

    @classmethod
    def advisories(cls, config: Config | None, scenario) -> list[Problem]:
        if config is None or not config.enabled or not config.files:
            return []
        n = len(locations_of(config, scenario))
        most = max(f.segments for f in config.files)
        if n < 2 * most:
            return [Problem(f"mechanisms.{KEY}.locations", (
                f"{n} locations for files of up to {most} segments: a segment needs a location free of the "
                f"other segments of its file (and of those moving) to roam, so some will share a location "
                f"or stay put; {2 * most} or more keep every file spread"))]
        return []

    def __init__(self, ctx: Context, dc: Datacenter, config: Config | None):
        super().__init__(ctx, dc, config)
        self.files: list[_File] = []
        self.locs: list[tuple[str, str]] = []
        self.ends: list[Endpoint] = []
        self.at_host: dict[str, int] = {}  # host name -> its location index
        self.stored: dict[int, dict[_Seg, None]] = {}  # location -> segments stored there

    # -- start -----------------------------------------------------------------------------------
    def wire(self) -> None:
        cfg = self.config
        if not cfg.files:
            return
        self.locs = locations_of(cfg, self.ctx.scenario)
        self.ends = [Endpoint.disk(n) if k == "disk" else Endpoint.storage(n) for k, n in self.locs]
        self.at_host = {n: i for i, (k, n) in enumerate(self.locs) if k == "disk"}
        self.dc.bus.subscribe(ev.DISK, self._disk_failed)

    def start(self) -> None:
        cfg = self.config
        if not cfg.files:
            return
        self.ctx.finalizers.append(self._finish)
        streams = self.ctx.streams
        vms = sorted((vm for vm in self.dc.vms.values() if vm.owner is None and vm.host is not None),
                     key=lambda v: v.name)
        if not vms:
            return
        pick = streams.get(f"{KEY}/acquire")
        for spec in cfg.files:
            for i in range(spec.count):
                name = f"{spec.name}-{i:03d}"
                vm = vms[int(pick.integers(len(vms)))]
                nseg = spec.segments if self.enabled else 1
                f = _File(name, vm, spec.size, nseg, streams.get(f"{KEY}/itinerary/{name}"),
                          streams.get(f"{KEY}/timer/{name}"), self.env.now)
                self.files.append(f)
                for seg in f.segs:
                    seg.proc = self.env.process(self._segment(seg, Endpoint.nic(vm.host.name), vm.host.name))
                if cfg.retrieval_rate > 0:
                    self.env.process(self._arrivals(f, streams.get(f"{KEY}/retrieval/{name}")))

    # -- the itinerary ---------------------------------------------------------------------------------
    def _next_destination(self, seg: _Seg, first: bool = False) -> int | None:
        """The next location of ``seg``'s itinerary, or a free one drawn uniformly when that one holds
        or receives another segment of its file; None when no location is free."""
        f = seg.file
        k = seg.step
        seg.step += 1
        entry = f.steps.get(k)
        if entry is None:
            n = len(self.locs)
            if n >= f.nseg:
                dests = f.rng.choice(n, size=f.nseg, replace=False)
            else:
                dests = f.rng.permutation(n)[[j % n for j in range(f.nseg)]]
            entry = f.steps[k] = [dests, f.nseg]
        dest = int(entry[0][seg.index])
        entry[1] -= 1
        if entry[1] == 0:
            del f.steps[k]
        if first or (dest not in f.taken and dest != seg.loc):  # the first step: as drawn
            return dest
        return self._free(f, seg.loc)

    def _free(self, f: _File, here: int | None) -> int | None:
        n = len(self.locs)
        free = n - len(f.taken) - (1 if here is not None and here not in f.taken else 0)
        if free <= 0:
            return None
        if 2 * free >= n:  # rejection: fewer than 2 draws expected
            while True:
                d = int(f.rng.integers(n))
                if d not in f.taken and d != here:
                    return d
        options = [i for i in range(n) if i not in f.taken and i != here]
        return options[int(f.rng.integers(len(options)))]

    def _interval(self, f: _File) -> float:
        j = self.config.jitter
        base = self.config.roam_interval
        return base * (1.0 + j * (2.0 * f.timer_rng.random() - 1.0)) if j > 0 else base

    # -- a segment's life ----------------------------------------------------------------------------------
    def _segment(self, seg: _Seg, src: Endpoint, src_name: str):
        f = seg.file
        dest = self._next_destination(seg, first=True)
        ok = yield from self._move(seg, src, src_name, dest, PLACE)
        if not ok:
            if f.lost_s is None:
                self._lose(f)
            return
        f.placed += 1
        if f.placed == f.nseg:
            f.placed_s = self.env.now
            f.since = self.env.now
            f.current = max(f.count.values()) / f.nseg
            f.exposure_max = f.current
        if not self.enabled:
            return
        if f.lost_s is None:  # roaming goes on by callbacks (``_roam``): no process resumed per move
            seg.wake = partial(self._roam, seg)
            seg.roamed = partial(self._roamed, seg)
            self._arm(seg)

    # The roaming loop, one callback per event it waits for (the timer, the end of the retrievals
    # holding the file, the move's ``done``), in the order a process would resume on them:
    #   timer -> (wait while retrievals hold the file) -> next destination (none: timer again)
    #   -> move -> its record -> timer, until the file is lost.
    def _arm(self, seg: _Seg) -> None:
        self.env.timeout(self._interval(seg.file)).callbacks.append(seg.wake)

    def _roam(self, seg: _Seg, _event) -> None:
        """The timer fired (or the retrievals holding the file ended): move on, unless held or lost."""
        f = seg.file
        if f.lost_s is not None:
            return
        if f.holds:  # a retrieval holds the file: ``released`` exists until the last one ends
            f.released.callbacks.append(seg.wake)
            return
        dest = self._next_destination(seg)
        if dest is None:
            self._arm(seg)
            return
        self._begin(seg, self.ends[seg.loc], dest).done.callbacks.append(seg.roamed)

    def _roamed(self, seg: _Seg, event) -> None:
        """The roaming move's ``done`` fired (completed, or failed: ``TransferFailed``, defused)."""
        t = seg.move
        self._end(seg, t, event.ok, self.locs[seg.loc][1], seg.dest, ROAM)
        if seg.file.lost_s is None:
            self._arm(seg)

    def _move(self, seg: _Seg, src: Endpoint, src_name: str, dest: int, kind: str):
        """Move ``seg`` to location ``dest``; True when it landed there."""
        t = self._begin(seg, src, dest)
        try:
            yield t.done
        except TransferFailed:
            return self._end(seg, t, False, src_name, dest, kind)
        return self._end(seg, t, True, src_name, dest, kind)

    def _begin(self, seg: _Seg, src: Endpoint, dest: int):
        """Start the transfer moving ``seg`` from ``src`` to location ``dest``."""
        f = seg.file
        _inc(f.taken, dest)
        seg.dest = dest
        t = self.dc.transfers.start(src, self.ends[dest], f.seg_size, on_host=STALL, on_storage=STALL,
                                    on_link=STALL, tag=seg.tag)
        seg.move = t
        return t

    def _end(self, seg: _Seg, t, ok: bool, src_name: str, dest: int, kind: str) -> bool:
        """The move's transfer ended (``ok``: completed): settle it and record it; True when it landed."""
        f = seg.file
        start = t.start_s
        outcome = COMPLETED if ok else (DESTROYED if f.lost_s is not None else FAILED)
        sent = t.sent() if outcome != COMPLETED else f.seg_size
        seg.move = None
        if f.lost_s is not None and outcome == COMPLETED:  # the file was lost while this one landed
            outcome = DESTROYED
        if f.lost_s is None or outcome != DESTROYED:
            _dec(f.taken, dest)
        if outcome == COMPLETED:
            self._land(seg, dest)
        self.ctx.recorder.record("segment_moves", time_s=start, file=f.name, segment=seg.index, kind=kind,
                                 from_location=src_name, to_location=self.locs[dest][1], bytes=sent,
                                 outcome=outcome, end_s=self.env.now, duration_s=self.env.now - start)
        self._landed(seg)
        return outcome == COMPLETED

    def _land(self, seg: _Seg, dest: int) -> None:
        f = seg.file
        old = seg.loc
        counted = f.placed_s is not None
        if counted:
            self._accrue(f)
        if old is not None:
            _dec(f.count, old)
            _dec(f.taken, old)
            self.stored[old].pop(seg, None)
        seg.loc = dest
        _inc(f.count, dest)
        _inc(f.taken, dest)
        self.stored.setdefault(dest, {})[seg] = None
        if counted:
            f.current = max(f.count.values()) / f.nseg
            if f.current > f.exposure_max:
                f.exposure_max = f.current

    def _accrue(self, f: _File) -> None:
        now = self.env.now
        f.exposure_s += f.current * (now - f.since)
        f.since = now

    # -- failures ------------------------------------------------------------------------------------------
    def _disk_failed(self, failure) -> None:
        """A disk failed: every segment stored on it (in flight from it included) is destroyed and its
        file is lost."""
        loc = self.at_host.get(failure.subject)
        if loc is None:
            return
        hit = {seg.file: None for seg in self.stored.pop(loc, {})}
        for f in hit:
            self._lose(f)

    def _lose(self, f: _File) -> None:
        if f.lost_s is not None:
            return
        if f.placed_s is not None:
            self._accrue(f)
        f.lost_s = self.env.now
        for seg in f.segs:
            if seg.loc is not None:
                self.stored.get(seg.loc, {}).pop(seg, None)
            if seg.move is not None and seg.move.live:
                seg.move.abort()
        for seg in f.segs:
            t = seg.move
            if t is not None and t.outcome == "aborted":
                self._abandon(seg)
        if f.released is not None:
            ev_, f.released = f.released, None
            ev_.succeed()

    def _abandon(self, seg: _Seg) -> None:
        """The move in flight of a segment of a lost file was aborted: close it now (its process waits forever)."""
        f = seg.file
        t = seg.move
        seg.move = None
        self.ctx.recorder.record("segment_moves", time_s=t.start_s, file=f.name, segment=seg.index,
                                 kind=PLACE if seg.loc is None else ROAM,
                                 from_location=self.locs[seg.loc][1] if seg.loc is not None else
                                 (f.vm.host.name if f.vm.host is not None else ""),
                                 to_location=t.dst.name, bytes=t.sent(), outcome=DESTROYED, end_s=self.env.now,
                                 duration_s=self.env.now - t.start_s)
        self._landed(seg)

    @staticmethod
    def _landed(seg: _Seg) -> None:
        """The move in flight of ``seg`` ended (``seg.move`` cleared): wake the retrieval waiting for it, if any."""
        landed, seg.landed = seg.landed, None
        if landed is not None:
            landed.succeed()

    def carry_out(self, op: RetrieveFile):
        f = next((f for f in self.files if f.name == op.file), None)
        if f is None:
            names = [f.name for f in self.files]
            raise OperationFailed(f"no file {op.file!r} (files: {', '.join(names[:3]) or 'none'})")
        outcome = yield self.env.process(self._retrieve(f))
        if outcome != COMPLETED:
            raise OperationFailed(f"retrieval {outcome}")
        return "retrieved"

    # -- retrievals ----------------------------------------------------------------------------------------
    def _arrivals(self, f: _File, rng):
        rate = self.config.retrieval_rate
        while True:
            yield self.env.timeout(float(rng.exponential(1.0 / rate)))
            self.env.process(self._retrieve(f))

    def _retrieve(self, f: _File):
        t0 = self.env.now
        vm = f.vm
        host = vm.host
        waited = 0.0
        fetched = 0
        got = 0.0

        def row(outcome: str) -> None:
            self.ctx.recorder.record("retrievals", time_s=t0, file=f.name, vm=vm.name,
                                     requester_host=host.name if host is not None else "", segments=fetched,
                                     bytes=got, waited_s=waited,
                                     latency_s=self.env.now - t0 if outcome == COMPLETED else math.nan,
                                     outcome=outcome, end_s=self.env.now)

        if f.lost_s is not None:
            row(LOST)
            return LOST
        if host is None:
            row(NO_REQUESTER)
            return NO_REQUESTER
        dst = Endpoint.nic(host.name)
        f.holds += 1
        if f.released is None:
            f.released = self.env.event()
        try:
            for seg in f.segs:  # the chain: segment 0, then each one's pointer to the next
                while seg.move is not None and f.lost_s is None:  # in flight (its first placement too)
                    w0 = self.env.now
                    if seg.landed is None:
                        seg.landed = self.env.event()
                    yield seg.landed
                    waited += self.env.now - w0
                if f.lost_s is not None:
                    row(LOST)
                    return LOST
                t = self.dc.transfers.start(self.ends[seg.loc], dst, f.seg_size, on_host=STALL, on_storage=STALL,
                                            on_link=STALL, tag=f"retrieve {f.name}/{seg.index}")
                try:
                    yield t.done
                except TransferFailed:
                    got += t.sent()
                    if f.lost_s is None:
                        self._lose(f)
                    row(LOST)
                    return LOST
                fetched += 1
                got += f.seg_size
            row(COMPLETED)
            return COMPLETED
        finally:
            f.holds -= 1
            if f.holds == 0 and f.released is not None:
                ev_, f.released = f.released, None
                ev_.succeed()

    # -- the end ---------------------------------------------------------------------------------------------
    def _finish(self, now: float) -> None:
        rec = self.ctx.recorder
        for f in self.files:
            if f.placed_s is not None and f.lost_s is None:
                self._accrue(f)
            counted = 0.0 if f.placed_s is None else (f.lost_s if f.lost_s is not None else now) - f.placed_s
            rec.record("roaming_files", time_s=f.acquired_s, file=f.name, vm=f.vm.name, segments=f.nseg,
                       size_bytes=f.size, placed_s=f.placed_s if f.placed_s is not None else math.nan,
                       counted_s=counted, exposure_s=f.exposure_s, exposure_max=f.exposure_max,
                       outcome=LOST if f.lost_s is not None else KEPT,
                       lost_s=f.lost_s if f.lost_s is not None else math.nan)


__all__ = ["RoamingStorage", "Config", "FileSpec"]
