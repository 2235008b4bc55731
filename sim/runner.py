"""Build → wire → start → run → summarise one scenario.

``Simulation(scenario)`` elaborates everything before time 0 (datacenter, placement,
mechanisms, fault injectors, scheduled operations); a placement that cannot fit is an
``InputError``. ``run()`` advances the SimPy clock to ``duration`` in fixed chunks (the
same chunks with or without a progress display, so nothing observable depends on it)
and returns the tables and metrics. Sweeps (local processes or Dask) build on ``run_one``.
"""

from __future__ import annotations

import contextlib
import gc
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import simpy

import sim
from sim.core.clock import processed_events
from sim.core.context import Context
from sim.core.errors import InputError, OperationFailed, Problem
from sim.core.streams import Streams
from sim.faults.dimm import DimmInjector
from sim.faults.injector import FaultInjector
from sim.faults.recovery import DefaultRecovery
from sim.infra.build import Builder, build_datacenter
from sim.mechanisms.base import Mechanism
from sim.mechanisms.registry import REGISTRY, Registry, WiringError
from sim.metrics.recorder import Recorder
from sim.metrics.summary import RunInfo, summarize
from sim.metrics.tables import CORE_TABLES, EVENTS

PROGRESS_CHUNKS = 100
YOUNG_COLLECTION = 50_000  # allocations between collections of the youngest generation while the clock runs


@dataclass
class RunOutput:
    tables: dict[str, pd.DataFrame]
    metrics: dict[str, float]
    events: int
    wall_s: float
    seed: int
    scenario: Any

    def summary(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario.name,
            "seed": self.seed,
            "duration_s": float(self.scenario.duration),
            "wall_s": self.wall_s,
            "events": self.events,
            "versions": versions(),
            "metrics": self.metrics,
        }


def versions() -> dict[str, str]:
    return {"dcsim": sim.__version__, "simpy": simpy.__version__, "python": platform.python_version(),
            "numpy": np.__version__}


@contextlib.contextmanager
def _collector_paused():
    """The cyclic garbage collector off for a block. The objects built before time 0 (hosts, VMs,
    streams, timers) live to the end of the run; the collector scanning them again and again while
    they were made grew the build faster than the fleet (30,000 hosts: 5.5 -> 3.7 CPU s without it).
    ``Simulation.run`` also freezes them (``gc.freeze``) while the clock runs."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class Simulation:
    """One run of one resolved scenario. ``source`` names the file in input errors; ``registry``
    the mechanisms (default: ``sim.mechanisms.registry.REGISTRY``; tests pass their own)."""

    def __init__(self, scenario: Any, *, trace: bool = False, source: str = "scenario",
                 registry: Registry | None = None):
        with _collector_paused():
            self._build(scenario, trace, source, registry)

    def _build(self, scenario: Any, trace: bool, source: str, registry: Registry | None) -> None:
        self.scenario = scenario
        self.registry = registry = REGISTRY if registry is None else registry
        env = simpy.Environment()
        tables = {t.name: t for t in (*CORE_TABLES, EVENTS, *registry.tables())}
        self.ctx = Context(env=env, streams=Streams(scenario.seed),
                           recorder=Recorder(env, tables=tables, trace=trace), scenario=scenario)
        dc, problems = build_datacenter(self.ctx)
        self.dc = dc
        self.mechanisms: list[Mechanism] = [
            cls(self.ctx, dc, scenario.mechanisms.get(key)) for key, cls in registry.classes.items()
        ]
        # Absent, disabled, enabled (sim.mechanisms.base): phases run on the enabled and the naive.
        self.active: list[Mechanism] = [m for m in self.mechanisms if m.enabled or m.naive]
        if not problems:
            builder = Builder(self.ctx, dc, problems)
            for mech in self.active:
                mech.build(builder)
        if problems:
            raise InputError(source, problems)
        self._wire(source)
        # trace paths are relative to the file the scenario was read from
        self.faults = FaultInjector(self.ctx, dc, getattr(scenario, "_source", None) or source)
        self.dimms = DimmInjector(self.ctx, dc)

    def _wire(self, source: str) -> None:
        """Services, owners, handlers and operation dispatch, before time 0; the default recovery last."""
        ctx, dc = self.ctx, self.dc
        offered: dict[str, Mechanism] = {}
        for mech in self.mechanisms:
            if mech.enabled:
                for name in mech.offers:
                    offered[name] = mech
                    ctx.services[name] = mech
        problems = []
        for mech in self.mechanisms:
            if not mech.enabled:
                continue
            for name in mech.needs:
                if name in offered:
                    continue
                givers = [c.key for c in self.registry.classes.values() if name in c.offers]
                if not givers:
                    raise WiringError(f"mechanism {mech.key!r} needs service {name!r}, which no mechanism offers")
                problems.append(Problem(
                    f"mechanisms.{givers[0]}.enabled",
                    f"expected true (mechanisms.{mech.key} needs its {name} service), got false"))
        if problems:
            raise InputError(source, problems)
        for mech in self.mechanisms:
            dc.bus.own(mech.key, mech.vm_stopped)
        for mech in self.active:
            mech.wire()
        for mech in self.mechanisms:  # movers ask the owner where its VMs may go (dc.rule_for)
            dc.placement.owner_rules[mech.key] = mech.placement_rule
        self.recovery = DefaultRecovery(ctx, dc)
        self.recovery.wire()
        self.handlers: dict[str, Callable] = {}
        for kind, cls in self.registry.kinds.items():
            mech = next(m for m in self.mechanisms if m.key == cls.key)
            if mech.enabled or mech.always_on:  # an always-on mechanism, disabled, refuses itself
                self.handlers[kind] = mech.carry_out

    def start(self) -> None:
        env = self.ctx.env
        rec = self.ctx.recorder
        rec.level("fleet", "hosts_up", self.dc.hosts_up())
        rec.level("fleet", "vms_running", self.dc.running())
        for mech in self.active:
            mech.start()
        self.faults.start()
        self.dimms.start()
        ops = sorted(enumerate(self.scenario.operations), key=lambda p: (p[1].at, p[0]))
        for _, op in ops:
            if op.at <= self.scenario.duration:
                env.process(self._operation(op))
        if self.ctx.samplers:
            env.process(self._sample(self.ctx.samplers))

    def _operation(self, op):
        """Waits until the operation's time, then runs its handler (a generator)."""
        env = self.ctx.env
        yield env.timeout(op.at)
        subject = op.subject
        handler = self.handlers.get(op.kind)
        if handler is None:
            self.ctx.recorder.record("operations", kind=op.kind, subject=subject, outcome="failed",
                                     detail=f"no enabled mechanism carries out {op.kind}")
            return
        start = env.now
        try:
            detail = yield from handler(op)
        except OperationFailed as exc:
            self.ctx.recorder.record("operations", kind=op.kind, subject=subject, outcome="failed",
                                     detail=str(exc), time_s=start)
            return
        self.ctx.recorder.record("operations", kind=op.kind, subject=subject, outcome="done",
                                 detail=str(detail or ""), time_s=start)

    def _sample(self, samplers):
        """Calls each sampler every ``sample_interval`` (gauges computed from the phase)."""
        env = self.ctx.env
        interval = self.scenario.sample_interval
        while True:
            yield env.timeout(interval)
            for fn in samplers:
                fn(env.now)

    def run(self, progress: Callable[[float], None] | None = None) -> RunOutput:
        t0 = time.perf_counter()
        with _collector_paused():
            self.start()
        env = self.ctx.env
        duration = float(self.scenario.duration)
        # What exists at time 0 lives to the end: the collector skips it while the clock runs. The
        # youngest generation is collected every 50,000 allocations instead of 700: an event loop
        # allocates millions of short-lived objects, few in cycles (the fleet year at 3,000 hosts:
        # 2,388 -> 319 young collections, 10-15 % less CPU). Both are undone when the clock stops.
        gc.freeze()
        threshold = gc.get_threshold()
        gc.set_threshold(YOUNG_COLLECTION, *threshold[1:])
        try:
            for i in range(1, PROGRESS_CHUNKS + 1):
                env.run(until=duration * i / PROGRESS_CHUNKS)
                if progress is not None:
                    progress(env.now)
        finally:
            gc.set_threshold(*threshold)
            gc.unfreeze()
        for fn in self.ctx.finalizers:
            fn(env.now)
        events = processed_events(env)
        tables = self.ctx.recorder.frames(duration)
        info = RunInfo(duration_s=duration, hosts=len(self.dc.hosts),
                       vm_names=frozenset(v.name for v in self.dc.vms.values() if v.owner is None),
                       configs={m.key: m.config for m in self.mechanisms})
        metrics = summarize(tables, info, self.registry.summaries())
        return RunOutput(tables, metrics, int(events), time.perf_counter() - t0, int(self.scenario.seed),
                         self.scenario)


def run_scenario(scenario: Any, *, trace: bool = False, source: str = "scenario",
                 progress: Callable[[float], None] | None = None, registry: Registry | None = None) -> RunOutput:
    """Build and run one scenario; returns its tables and metrics."""
    return Simulation(scenario, trace=trace, source=source, registry=registry).run(progress)
