"""DRAM error injection: the ``dimm_errors`` fault kind (docs/migration.md).

Each DIMM of each host an entry selects (``hosts`` globs) is error-prone with
probability ``error_prone_fraction``. Only error-prone DIMMs log correctable errors
(CE), at ``correctable_per_dimm_year / error_prone_fraction`` per DIMM-year, so the
fleet mean is ``correctable_per_dimm_year``. Every DIMM has an uncorrectable-error
(UE) rate of ``uncorrectable_per_dimm_year`` that is multiplied by
``uncorrectable_after_correctable`` from the DIMM's first CE on (a CE predicts a UE:
Schroeder et al. SIGMETRICS 2009; Sridharan et al. ASPLOS 2015; Meza et al. DSN 2015).
Defaults and their sources are in ``sim.scenario.schema.DimmErrors``.

Cost: per DIMM only two clocks, each an exponential draw (the first CE and the next
UE); a clock whose time falls after the run is never scheduled, so a fleet of
thousands of DIMMs costs a handful of events a year. Only a DIMM's *first* CE is an
event; its later CEs are Poisson counts over the time its host was up, drawn at every
sample (``sample_interval``), at replacement and at the end (rows of ``memory_errors``
with their ``count``), never one event each; a sample and a host's stop or start touch only
the DIMMs that had a first CE (the others accrue nothing). Errors happen only while the host runs
(up or in maintenance): a clock that fires on a host that is down is redrawn from then
(memoryless, so the process is simply switched off while the host is down).

Every error is offered on the ``memory_error`` claim chain of the failure bus, where a
memory-error mechanism records it (its ``memory_errors`` table) and decides what a UE
does: ``CorrectableErrors`` (a DIMM's first CE, then the later counts) and
``UncorrectableError``. A UE carries ``take_down(cause, state)``, the one way a memory
error takes a host down: it records the ``faults`` row and schedules the repair (the
entry's ``repair``, default ``infrastructure.repair``) and the DIMM replacement (fresh
DIMMs, error-proneness drawn afresh). When no handler takes a UE (no memory-error
mechanism registered) the host crashes at once (``HostDown`` kind ``memory_error``)
and its VMs restart elsewhere through the default recovery. The injector offers no
service and writes no table but ``faults``.

Streams: ``faults/dimm_errors.<k>/<host>`` per host (proneness and clocks of its
DIMMs), ``faults/dimm_errors.<k>/correctable`` for the CE counts (k: the entry's
ordinal among ``dimm_errors`` entries).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.core.causes import Cause, HostDown
from sim.infra import events as ev
from sim.infra.datacenter import DOWN, MAINTENANCE, UP
from sim.scenario.names import select

if TYPE_CHECKING:
    from sim.core.context import Context
    from sim.infra.datacenter import Datacenter, Host

YEAR = 365 * 86400.0  # 1y = 365 d (sim.core.units); rates are per DIMM-year
_CE, _UE = 0, 1


@dataclass(frozen=True)
class UncorrectableError:
    """An uncorrectable error on a DIMM of ``host``, offered on the ``memory_error`` claim chain.
    ``take_down(cause, state)`` takes the host down (``state`` down or repair) and brings it
    back after ``repair`` with fresh DIMMs."""

    at: float
    host: str
    dimm: int
    repair: float  # how long the host's repair (DIMM replacement) takes
    take_down: Callable[[Cause, str], None] = field(compare=False, repr=False)


@dataclass(frozen=True)
class CorrectableErrors:
    """``count`` correctable errors of a DIMM of ``host``, offered on the ``memory_error`` claim chain
    to be recorded: ``first`` for a DIMM's first (an event), else the later ones counted since."""

    at: float
    host: str
    dimm: int
    count: int
    first: bool


class _Population:
    """The DIMMs of one ``dimm_errors`` entry, in flat arrays (host j owns slots offset[j]..+n)."""

    def __init__(self, k: int, spec: Any, hosts: list[Host], repair: float):
        self.k = k
        self.hosts = hosts
        self.repair = repair
        self.p = float(spec.error_prone_fraction)
        c = float(spec.correctable_per_dimm_year)
        self.ce_rate_prone = (c / self.p) / YEAR if self.p > 0 else 0.0  # per second, prone DIMMs
        self.ue_base = float(spec.uncorrectable_per_dimm_year) / YEAR
        self.ue_mult = float(spec.uncorrectable_after_correctable)
        sizes = [h.dimms for h in hosts]
        self.offset = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        n = int(self.offset[-1])
        self.owner = np.repeat(np.arange(len(hosts)), sizes)
        self.prone = np.zeros(n, dtype=bool)
        self.ce_rate = np.zeros(n)
        self.ue_rate = np.zeros(n)
        self.first_ce = np.full(n, np.nan)
        self.version = np.zeros((n, 2), dtype=np.int64)
        self.since = np.full(n, np.nan)  # later CEs accrue from here while the host is up
        self.acc = np.zeros(n)  # accrued exposure (s) not yet drawn
        self.count = np.zeros(n, dtype=np.int64)  # later CEs drawn, not yet written
        # Which DIMMs can accrue later CEs: those with a first CE (``since`` or ``acc`` is set only
        # for them). ``lit[j]``: host j has one (since its DIMMs were fitted); ``seen``: the slots
        # whose DIMM ever had one, sorted (a superset of those that have one now: a replaced DIMM's
        # slot stays and contributes nothing). A host without one has nothing to accrue at a stop
        # or start, and a sample draws over ``seen`` only: the same draws in the same order.
        self.lit = [False] * len(hosts)
        self.ever = np.zeros(n, dtype=bool)  # had a first CE
        self.seen = np.zeros(0, dtype=np.int64)  # flatnonzero(ever), refreshed when it grew
        self.new: list[int] = []  # DIMMs with a first CE not yet in ``seen``
        self.rngs: list[np.random.Generator] = []  # host j's stream, made at start

    def lit_dimms(self) -> np.ndarray:
        """The sorted indices of every DIMM that had a first CE (a superset of those accruing)."""
        if self.new:
            self.ever[self.new] = True
            self.seen = np.flatnonzero(self.ever)
            self.new.clear()
        return self.seen


class DimmInjector:
    """Draws DIMM errors for every ``dimm_errors`` entry; built before time 0, ``start()`` at 0."""

    def __init__(self, ctx: Context, dc: Datacenter):
        self.ctx = ctx
        self.dc = dc
        self.env = ctx.env
        self.duration = float(ctx.scenario.duration)
        self.default_repair = default_repair = float(ctx.scenario.infrastructure.repair)
        names = [h.name for h in dc.host_list]
        self.pops: list[_Population] = []
        k = 0
        for spec in ctx.scenario.faults:
            if spec.kind != "dimm_errors":
                continue
            hosts = [dc.hosts[n] for n in select(spec.hosts, names)]
            repair = float(spec.repair) if getattr(spec, "repair", None) is not None else default_repair
            self.pops.append(_Population(k, spec, hosts, repair))
            k += 1
        self._where: dict[str, list[tuple[_Population, int]]] = {}  # host -> (population, host index)
        for pop in self.pops:
            for j, h in enumerate(pop.hosts):
                self._where.setdefault(h.name, []).append((pop, j))
        self.first_ces = 0
        self.later_ces = 0

    # -- start ----------------------------------------------------------------------------------
    def start(self) -> None:
        if not self.pops:
            return
        for pop in self.pops:
            # Each host's stream, made for all hosts at once.
            pop.rngs = self.ctx.streams.get_many([f"faults/dimm_errors.{pop.k}/{h.name}" for h in pop.hosts])
            self._fresh_all(pop)
        self.dc.bus.subscribe(ev.HOST, self._host_down, phase=ev.DOWN)
        self.dc.bus.subscribe(ev.HOST, self._host_up, phase=ev.UP)
        self.ctx.samplers.append(self.sample)
        self.ctx.finalizers.append(self.finish)
        self._level()

    def _rng(self, pop: _Population, j: int) -> np.random.Generator:
        """Host j's stream ``faults/dimm_errors.<k>/<host>``."""
        return pop.rngs[j]

    def _fresh_all(self, pop: _Population) -> None:
        """``_fresh`` of every host at once (at time 0): each host's draws from its own stream, as
        ``_fresh`` draws them, then the clocks inside the run scheduled in DIMM order."""
        n = len(pop.prone)
        if n == 0:
            return
        u, t_ce, t_ue = np.empty(n), np.empty(n), np.empty(n)
        off = pop.offset.tolist()
        for j, rng in enumerate(pop.rngs):
            lo, hi = off[j], off[j + 1]
            if hi > lo:
                u[lo:hi] = rng.random(hi - lo)
                t_ce[lo:hi] = rng.exponential(1.0, hi - lo)
                t_ue[lo:hi] = rng.exponential(1.0, hi - lo)
        self._new_dimms(pop, 0, n, u, t_ce, t_ue)

    def _fresh(self, pop: _Population, j: int) -> None:
        """New DIMMs in host j's slots: proneness and both clocks drawn afresh."""
        lo, hi = pop.offset[j], pop.offset[j + 1]
        n = hi - lo
        if n == 0:
            return
        rng = self._rng(pop, j)
        u = rng.random(n)
        t_ce = rng.exponential(1.0, n)
        t_ue = rng.exponential(1.0, n)
        pop.lit[j] = False
        self._new_dimms(pop, lo, hi, u, t_ce, t_ue)

    def _new_dimms(self, pop: _Population, lo: int, hi: int, u: np.ndarray, t_ce: np.ndarray,
                   t_ue: np.ndarray) -> None:
        """New DIMMs in slots ``lo:hi`` from their draws (``u`` uniform: prone when below ``p``; ``t_ce``,
        ``t_ue`` unit exponentials): their state reset, then each DIMM's clocks (CE then UE, DIMM by
        DIMM) that fall inside the run scheduled."""
        now = self.env.now
        prone = u < pop.p
        pop.prone[lo:hi] = prone
        pop.ce_rate[lo:hi] = np.where(prone, pop.ce_rate_prone, 0.0)
        pop.ue_rate[lo:hi] = pop.ue_base
        pop.first_ce[lo:hi] = np.nan
        pop.since[lo:hi] = np.nan
        pop.acc[lo:hi] = 0.0
        pop.count[lo:hi] = 0
        pop.version[lo:hi] += 1
        n, end = hi - lo, self.duration
        ce = (prone & (now + t_ce / pop.ce_rate_prone < end)) if pop.ce_rate_prone > 0 else np.zeros(n, bool)
        ue = (now + t_ue / pop.ue_base < end) if pop.ue_base > 0 else np.zeros(n, bool)
        for i in np.flatnonzero(ce | ue).tolist():
            if ce[i]:
                self._schedule(pop, lo + i, _CE, now + t_ce[i] / pop.ce_rate_prone)
            if ue[i]:
                self._schedule(pop, lo + i, _UE, now + t_ue[i] / pop.ue_base)

    def _schedule(self, pop: _Population, idx: int, kind: int, at: float) -> None:
        if at >= self.duration or not math.isfinite(at):
            return  # after the run: never happens
        ev = self.env.timeout(at - self.env.now)
        ev.callbacks.append(partial(self._fire, pop, idx, kind, int(pop.version[idx, kind])))

    def _redraw(self, pop: _Population, idx: int, kind: int) -> None:
        """The next time of a DIMM's clock, from now at its current rate."""
        pop.version[idx, kind] += 1
        rate = pop.ce_rate[idx] if kind == _CE else pop.ue_rate[idx]
        if rate <= 0:
            return
        rng = self._rng(pop, int(pop.owner[idx]))
        self._schedule(pop, idx, kind, self.env.now + rng.exponential(1.0 / rate))

    # -- events ---------------------------------------------------------------------------------
    def _fire(self, pop: _Population, idx: int, kind: int, version: int, _event) -> None:
        if pop.version[idx, kind] != version:
            return  # the DIMM was replaced or its rate changed since
        j = int(pop.owner[idx])
        host = pop.hosts[j]
        if host.state not in (UP, MAINTENANCE):
            self._redraw(pop, idx, kind)  # powered off: no error now
            return
        dimm = int(idx - pop.offset[j])
        now = self.env.now
        if kind == _CE:
            pop.version[idx, _CE] += 1  # only the first CE is an event
            pop.first_ce[idx] = now
            pop.since[idx] = now
            pop.lit[j] = True
            pop.new.append(idx)
            self.first_ces += 1
            self.dc.bus.offer(ev.MEMORY_ERROR, host.name, CorrectableErrors(now, host.name, dimm, 1, True))
            self.ctx.recorder.trace("dimm_errors", "correctable", host.name, f"dimm {dimm}")
            pop.ue_rate[idx] = pop.ue_base * pop.ue_mult
            self._redraw(pop, idx, _UE)
            return
        self._redraw(pop, idx, _UE)  # the DIMM stays until the host is repaired
        self.uncorrectable(host, dimm, pop.repair)

    def uncorrectable(self, host: Host, dimm: int = 0, repair: float | None = None) -> None:
        """An uncorrectable error on ``host`` now: the handlers take it, or the host crashes.

        Called by the DIMM clocks; public so that tests and scheduled what-ifs can inject one.
        A host that is not running (down or in repair) has no error.
        """
        if host.state not in (UP, MAINTENANCE):
            return
        self.ctx.recorder.trace("dimm_errors", "uncorrectable", host.name, f"dimm {dimm}")
        repair = self.default_repair if repair is None else float(repair)
        err = UncorrectableError(at=self.env.now, host=host.name, dimm=dimm, repair=repair,
                                 take_down=partial(self.take_down, host, repair=repair))
        if not self.dc.bus.offer(ev.MEMORY_ERROR, host.name, err):
            # No memory-error mechanism: the host crashes at the first uncorrectable error.
            self.take_down(host, HostDown(at=self.env.now, host=host.name, kind="memory_error"), DOWN, repair)

    # -- repair -----------------------------------------------------------------------------------
    def take_down(self, host: Host, cause: Cause, state: str, repair: float) -> None:
        """A memory error takes ``host`` down (``state`` down or repair); it returns with fresh DIMMs."""
        now = self.env.now
        self.ctx.recorder.record("faults", kind="dimm_errors", target=host.name, repair_s=repair,
                                 end_s=now + repair)
        self.dc.host_down(host, cause, state)
        self.env.process(self._repair(host, repair))

    def _repair(self, host: Host, repair: float):
        """Waits ``repair``, replaces the host's DIMMs, then brings it back (if nothing else holds it)."""
        yield self.env.timeout(repair)
        for pop, j in self._where.get(host.name, ()):
            self._flush(pop, slice(pop.offset[j], pop.offset[j + 1]), rows=True)
            self._fresh(pop, j)
        self.dc.host_repaired(host)

    # -- exposure of later correctable errors -----------------------------------------------------------
    def _host_down(self, failure: ev.Failure) -> None:
        host = self.dc.hosts[failure.subject]
        now = self.env.now
        for pop, j in self._where.get(host.name, ()):
            if not pop.lit[j]:
                continue  # no DIMM with a first CE: nothing accrues (``since`` is unset)
            sl = slice(pop.offset[j], pop.offset[j + 1])
            since = pop.since[sl]
            on = ~np.isnan(since)
            pop.acc[sl] += np.where(on, now - np.where(on, since, now), 0.0)
            pop.since[sl] = np.nan

    def _host_up(self, failure: ev.Failure) -> None:
        host = self.dc.hosts[failure.subject]
        now = self.env.now
        for pop, j in self._where.get(host.name, ()):
            if not pop.lit[j]:
                continue  # no DIMM with a first CE: ``since`` stays unset
            sl = slice(pop.offset[j], pop.offset[j + 1])
            pop.since[sl] = np.where(np.isnan(pop.first_ce[sl]), np.nan, now)

    def _flush(self, pop: _Population, sl: slice, rows: bool) -> None:
        """Draws the later CEs accrued in ``sl``; with ``rows`` writes each DIMM's count and resets it."""
        now = self.env.now
        self._accrue(pop, np.arange(sl.start, sl.stop))
        if rows:
            base = sl.start
            for i in np.flatnonzero(pop.count[sl] > 0):
                idx = base + int(i)
                j = int(pop.owner[idx])
                name = pop.hosts[j].name
                self.dc.bus.offer(ev.MEMORY_ERROR, name, CorrectableErrors(
                    now, name, int(idx - pop.offset[j]), int(pop.count[idx]), False))
                pop.count[idx] = 0

    def _level(self) -> None:
        self.ctx.recorder.level("fleet", "correctable_errors", self.first_ces + self.later_ces)

    def sample(self, now: float) -> None:
        """Every ``sample_interval``: later CEs accrued so far are drawn and added to the gauge.
        Only DIMMs that had a first CE can have accrued any: the draw runs over them (in index
        order, as over the whole population: the others have nothing to draw)."""
        for pop in self.pops:
            self._accrue(pop, pop.lit_dimms())
        self._level()

    def _accrue(self, pop: _Population, idx: np.ndarray) -> None:
        """The later CEs accrued by the DIMMs ``idx`` (sorted) drawn and counted (``_flush`` writes
        their rows)."""
        if not len(idx):
            return
        now = self.env.now
        since = pop.since[idx]
        on = ~np.isnan(since)
        exposure = pop.acc[idx] + np.where(on, now - np.where(on, since, now), 0.0)
        pop.acc[idx] = 0.0
        pop.since[idx] = np.where(on, now, np.nan)
        lam = pop.ce_rate[idx] * exposure
        hit = np.flatnonzero(lam > 0)
        if hit.size:
            rng = self.ctx.streams.get(f"faults/dimm_errors.{pop.k}/correctable")
            draws = rng.poisson(lam[hit])
            pop.count[idx[hit]] += draws
            self.later_ces += int(draws.sum())

    def finish(self, now: float) -> None:
        """At the end of the run: the last counts, and one row per DIMM with later CEs."""
        for pop in self.pops:
            self._flush(pop, slice(0, len(pop.prone)), rows=True)
        self._level()
