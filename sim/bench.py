"""The throughput benchmark behind ``dcsim bench`` (docs/performance.md).

``run_bench`` loads the fleet scenario (``scenarios/fleet.yaml`` next to the package),
optionally scaled to ``hosts`` hosts (up or down) and shortened to ``duration``, then times
three phases of one run: building the ``Simulation`` (``build_s``), its event loop (``run_s``:
the SimPy clock from 0 to the duration, ``events`` = SimPy events processed, counted as
``sim.runner`` counts them) and writing the result folder with ``sim.results`` to a
temporary directory (``write_s``). Turning the tables into metrics after the loop is
timed on its own (``summarize_s``). Each phase also reports its CPU time
(``*_cpu_s``, ``time.process_time``): on a busy shared machine the wall time includes
waiting for a core, the CPU time does not.

In the same process it then runs a bare SimPy loop, one process yielding ``env.timeout(1)``
a million times, and reports the fleet year's build + run time over the bare loop's time as
``ratio`` (wall) and ``ratio_cpu`` (CPU): how many bare million-timeout loops the fleet year
costs. Both share the interpreter, the machine and its noise, so the ratio moves far less
than wall times do on a shared machine; lower is better. (It replaces a ratio of event
rates, which rewarded cheap events: removing them lowered it while the fleet got faster.)

Cost per simulated fact (``profile``, on unless ``profile=False``): during the event loop a
CPU-time sampler (``CpuSampler``: ``SIGPROF`` every millisecond of CPU, where the OS has it)
charges the CPU time since its last sample to the *owner* of the interrupted code: the
innermost frame on the stack that belongs to a mechanism module (``sim.mechanisms.<key>``),
to the default recovery (``restarts``), to the DIMM error model (``dimm_errors``) or to the
fault injectors (``faults``); with none on
the stack, the innermost area (``engine`` for SimPy itself, ``transfers`` for the bandwidth
solver and transfers, ``platform`` for the rest of ``sim``). Shared services (placement,
the bus, the recorder, live migration called by an evacuation) are so charged to the owner
that called them. Each owner's facts are counted from the result tables (``FACTS``: rows of
``restarts``, ``migrations``, ``backups``, sessions offered, ...), and its cost per fact is
its CPU seconds over that count, also expressed in bare-loop timeouts (machine-independent).

Scaling rule (``scale_fleet``): keep the file's sites and its hosts per broadcast domain
(the first domain's count, 100 in fleet.yaml); the number of domains becomes
``max(sites, ceil(N / per_domain))``, dealt over the sites in file order (site i gets
``d // sites`` domains, one more for the first ``d % sites``). A site keeps the first entries
of its list; a site that needs more domains than its file gives adds copies of its last one,
named by counting on from that one's number (``bd50`` -> ``bd51``, ``bd52``, ...). The N
hosts are dealt over those domains as evenly as possible (the first ``N % d`` domains get one
more). So 1,000 hosts are 2 x 5 domains of 100, 250 hosts are east 2 x (84, 83) and west 1 x
83, and 100,000 hosts are 2 x 500 domains of 100. Every workload's count becomes
``round(count * N / H)`` (H the file's hosts), at least 1 for a non-empty workload, and each
mechanism section is what its class's ``scale(section, N / H)`` returns (each scales its own
populations, and offered load with them, like the workloads). Growing past the file
(N > H), the capacities the whole fleet shares grow with it, so each host's share stays the
file's: every site's core, every WAN link's bandwidth and every storage system's capacity,
read and write rates are multiplied by N / H; shrinking keeps them as the file gives them
(never scarcer per host than in the file). Fault rates are per target, so they need no
scaling. N below the number of sites is an input error. The run budgets the loader checks
(hosts, VMs, DIMMs and expected events in total; ``sim.scenario.limits``) grow by N / H with
the fleet while it is validated (``run_budgets``): the size was asked for.

Nothing here is asserted by tests as a time; tests check the arithmetic on injected timings.
"""

from __future__ import annotations

import copy
import math
import os
import re
import resource
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import simpy

import sim
from sim.core.clock import processed_events
from sim.core.errors import InputError, Problem, show
from sim.core.units import UnitError, parse_duration, parse_rate, parse_size
from sim.scenario.limits import LIMITS, limit

FLEET = Path(sim.__file__).resolve().parents[1] / "scenarios" / "fleet.yaml"
"""The fleet scenario of the source tree the package runs from."""

BARE_EVENTS = 1_000_000
"""Timeouts of the bare SimPy loop (one event per step)."""

KEYS = ("hosts", "vms", "vms_total", "duration_s", "fleet", "bare", "ratio", "ratio_cpu", "facts", "profile", "wall_s",
        "peak_rss_mib", "versions")
FLEET_KEYS = ("events", "build_s", "run_s", "write_s", "events_per_s")
BARE_KEYS = ("events", "wall_s", "events_per_s", "cpu_s")


# --------------------------------------------------------------------------- the scenario
def file_hosts(data: dict[str, Any]) -> int:
    """Hosts of a raw scenario mapping (its broadcast domains' ``hosts`` summed)."""
    return sum(int(d.get("hosts", 0)) for s in data["infrastructure"]["sites"] for d in s["broadcast_domains"])


def _domain_names(last: str, taken: set[str]):
    """Names for added domains: count on from ``last``'s trailing number at its width (``bd50`` ->
    ``bd51``, ``bd52``, ...), else ``last-2``, ``last-3``, ...; skipping names already ``taken``."""
    m = re.fullmatch(r"(.*?)(\d+)", last)
    prefix, k, digits = (m.group(1), int(m.group(2)), len(m.group(2))) if m else (f"{last}-", 1, 1)
    while True:
        k += 1
        name = f"{prefix}{k:0{digits}d}"
        if name not in taken:
            taken.add(name)
            yield name


def _grown(value: Any, factor: float, parse: Callable[[Any], float]) -> Any:
    """A quantity of the raw file times ``factor``, in base units (unchanged when it does not parse:
    validation reports it)."""
    try:
        return parse(value) * factor
    except (UnitError, TypeError, ValueError):
        return value


def scale_fleet(data: dict[str, Any], hosts: int, source: str = "fleet.yaml") -> dict[str, Any]:
    """A copy of the raw scenario mapping with ``hosts`` hosts, its VMs and every mechanism's
    populations scaled alike, and its shared capacities grown when the fleet grows (module doc)."""
    total = file_hosts(data)
    sites = data["infrastructure"]["sites"]
    if hosts < len(sites):
        raise InputError("--hosts", [Problem(
            "", f"expected at least {len(sites)} hosts (one per site of {source}), got {hosts}")])
    if total <= 0:
        raise InputError(source, [Problem(
            "infrastructure.sites", "expected at least one host to scale from, got 0")])
    factor = hosts / total
    out = copy.deepcopy(data)
    infra = out["infrastructure"]
    sites = infra["sites"]
    per_domain = int(sites[0]["broadcast_domains"][0]["hosts"]) or 1
    n_sites = len(sites)
    domains = max(n_sites, math.ceil(hosts / per_domain))
    kept: list[dict[str, Any]] = []
    for i, site in enumerate(sites):
        want = domains // n_sites + (1 if i < domains % n_sites else 0)
        have = site["broadcast_domains"]
        if not have:
            raise InputError(source, [Problem(
                f"infrastructure.sites.{i}.broadcast_domains", "expected at least one domain to copy, got none")])
        doms = [dict(d) for d in have[:want]]
        if want > len(doms):
            names = _domain_names(str(have[-1]["name"]), {str(d["name"]) for d in have})
            doms += [dict(have[-1], name=next(names)) for _ in range(want - len(doms))]
        site["broadcast_domains"] = doms
        kept.extend(doms)
    for j, dom in enumerate(kept):
        dom["hosts"] = hosts // len(kept) + (1 if j < hosts % len(kept) else 0)
    if factor > 1:  # shared capacities grow with the fleet: each host's share stays the file's
        for site in sites:
            if "core" in site:
                site["core"] = _grown(site["core"], factor, parse_rate)
        for link in infra.get("wan") or []:
            if "bandwidth" in link:
                link["bandwidth"] = _grown(link["bandwidth"], factor, parse_rate)
        for store in infra.get("storage") or []:
            for key, parse in (("capacity", parse_size), ("read", parse_rate), ("write", parse_rate)):
                if key in store:
                    store[key] = _grown(store[key], factor, parse)
    for w in out.get("workloads") or []:
        count = int(w.get("count", 0))
        if count > 0:
            w["count"] = max(1, round(count * factor))
    from sim.mechanisms.registry import REGISTRY

    mechanisms = out.get("mechanisms") or {}
    for key, cls in REGISTRY.classes.items():  # each mechanism scales its own populations
        section = mechanisms.get(key)
        if isinstance(section, dict):
            mechanisms[key] = cls.scale(section, factor)
    return out


def load_fleet(path: str | Path | None = None, hosts: int | None = None, duration: str | float | None = None):
    """The validated fleet scenario, scaled to ``hosts`` and run for ``duration`` when given."""
    from sim.mechanisms.registry import config_models
    from sim.scenario.loader import read_yaml, validate_scenario

    path = Path(path) if path is not None else FLEET
    source = str(path)
    data = read_yaml(path, source)
    if not isinstance(data, dict) or not isinstance(data.get("infrastructure"), dict):
        return validate_scenario(data, source, (), config_models())  # reports what is wrong
    if duration is not None:
        try:
            seconds = parse_duration(duration)
        except UnitError as exc:
            raise InputError("--duration", [Problem("", f"{exc}, got {show(duration)}")]) from None
        if seconds <= 0:
            raise InputError("--duration", [Problem("", f"expected a positive duration, got {show(duration)}")])
        data = dict(data, duration=seconds)
    factor = 1.0
    if hosts is not None:
        try:
            total = file_hosts(data)
            data = scale_fleet(data, int(hosts), source)
            factor = int(hosts) / total
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            pass  # a malformed file: validation below says what is wrong
    with run_budgets(factor):
        return validate_scenario(data, source, (), config_models())


RUN_BUDGETS = ("hosts", "vms", "dimms", "events")
"""The run budgets (``sim.scenario.limits``) that grow with the fleet when the bench grows it."""


@contextmanager
def run_budgets(factor: float):
    """While validating a fleet grown ``factor`` times by ``--hosts``, the run budgets (hosts, VMs,
    DIMMs, expected events; their environment variables, else their defaults) are ``factor`` times
    larger: the size was asked for, and the budget per host stays the file's. Restored after."""
    if factor <= 1:
        yield
        return
    saved = {LIMITS[k].env: os.environ.get(LIMITS[k].env) for k in RUN_BUDGETS}
    grown = {LIMITS[k].env: repr(limit(k) * factor) for k in RUN_BUDGETS}  # a bad variable fails here
    try:
        os.environ.update(grown)
        yield
    finally:
        for env, value in saved.items():
            if value is None:
                os.environ.pop(env, None)
            else:
                os.environ[env] = value


# --------------------------------------------------------------------------- measuring
def peak_rss_mib() -> float:
    """Peak resident set of this process so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0


def bare_loop(n: int = BARE_EVENTS) -> dict[str, float]:
    """One SimPy process yielding ``env.timeout(1)`` ``n`` times: events processed and events/s."""
    env = simpy.Environment()

    def ticker(env):
        timeout = env.timeout
        for _ in range(n):
            yield timeout(1)

    env.process(ticker(env))
    t0, c0 = time.perf_counter(), time.process_time()
    env.run()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    events = processed_events(env)  # as sim.runner counts
    return {"events": int(events), "wall_s": wall, "events_per_s": events / wall if wall > 0 else math.inf,
            "cpu_s": cpu}


class CpuSampler:
    """Charges the process's CPU time to owners of the running code while started (module doc).

    ``SIGPROF`` fires after every ``interval`` seconds of CPU; its handler (run by the interpreter
    between bytecodes, in the main thread) charges the CPU time since its previous call to the
    owner of the interrupted frame's stack, so a signal delayed by a long C call (numpy) still
    charges all of that call's time. O(stack depth) per sample with an owner cached per code
    object; nothing per event. ``available`` is false where the OS has no ``setitimer``."""

    available = hasattr(signal, "setitimer") and hasattr(signal, "SIGPROF")

    def __init__(self, interval: float = 0.001):
        self.interval = interval
        self.cpu_s: dict[str, float] = {}
        self.samples = 0
        self._owners: dict[Any, tuple[bool, str] | None] = {}
        self._last = 0.0
        self._previous: Any = None

    def start(self) -> None:
        self._last = time.process_time()
        self._previous = signal.signal(signal.SIGPROF, self._sample)
        signal.setitimer(signal.ITIMER_PROF, self.interval, self.interval)

    def stop(self) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0.0, 0.0)
        signal.signal(signal.SIGPROF, self._previous if self._previous is not None else signal.SIG_DFL)
        self._sample(signal.SIGPROF, None)  # the time since the last sample: the caller's (``other``)

    def _sample(self, _signum: int, frame: Any) -> None:
        now = time.process_time()
        owner = self.owner(frame)
        self.cpu_s[owner] = self.cpu_s.get(owner, 0.0) + (now - self._last)
        self._last = now
        self.samples += 1

    def owner(self, frame: Any) -> str:
        """The innermost owner on the stack, else the innermost area, else ``other``."""
        area = None
        owners = self._owners
        while frame is not None:
            code = frame.f_code
            try:
                found = owners[code]
            except KeyError:
                found = owners[code] = owner_of(frame.f_globals.get("__name__", ""))
            if found is not None:
                if found[0]:
                    return found[1]
                if area is None:
                    area = found[1]
            frame = frame.f_back
        return area or "other"


def owner_of(module: str) -> tuple[bool, str] | None:
    """``(True, owner)`` for code that owns the work it does, ``(False, area)`` for code that
    serves others (charged to its caller's owner, else to its area), ``None`` for the rest."""
    if module.startswith("sim.mechanisms.") and module not in ("sim.mechanisms.base", "sim.mechanisms.registry"):
        return True, module.rsplit(".", 1)[1]
    if module == "sim.faults.recovery":
        return True, "restarts"
    if module == "sim.faults.dimm":
        return True, "dimm_errors"
    if module.startswith("sim.faults."):
        return True, "faults"
    if module.startswith(("sim.infra.solver", "sim.infra.transfer", "sim.infra.network")):
        return False, "transfers"
    if module == "simpy" or module.startswith("simpy."):
        return False, "engine"
    if module == "sim" or module.startswith("sim."):
        return False, "platform"
    return None


def _rows(name: str) -> Callable[[dict[str, Any]], int]:
    return lambda tables: len(tables[name]) if name in tables else 0


def _sessions(tables: dict[str, Any]) -> int:
    t = tables.get("sessions")
    return int(t["offered"].sum()) if t is not None and len(t) else 0


FACTS: dict[str, tuple[str, Callable[[dict[str, Any]], int]]] = {
    "restarts": ("restart", _rows("restarts")),
    "faults": ("fault injected", _rows("faults")),
    "dimm_errors": ("memory error", _rows("memory_errors")),
    "live_migration": ("migration", _rows("migrations")),
    "memory_error_evacuation": ("memory error", _rows("memory_errors")),
    "workload_manager": ("backup stream", _rows("backups")),
    "sessions": ("session offered", _sessions),
    "replication": ("replacement", _rows("replacements")),
    "remediation": ("remediation", _rows("remediations")),
    "charging": ("metered interval", _rows("metered")),
    "roaming_storage": ("segment move", _rows("segment_moves")),
    "snapshot_discovery": ("snapshot backup", _rows("snapshot_backups")),
}
"""Owner -> (its fact, how many the tables hold). A mechanism not listed counts the rows of its
declared tables."""


def count_facts(tables: dict[str, Any], events: int) -> dict[str, tuple[str, int]]:
    """Each owner's facts from a run's tables (``engine``: the SimPy events processed)."""
    from sim.mechanisms.registry import REGISTRY

    out = {"engine": ("event", int(events))}
    for owner, (label, count) in FACTS.items():
        out[owner] = (label, int(count(tables)))
    for key, cls in REGISTRY.classes.items():
        if key not in out:
            out[key] = ("table row", sum(len(tables[t.name]) for t in cls.tables if t.name in tables))
    return out


def fact_costs(cpu_s: dict[str, float], facts: dict[str, tuple[str, int]], bare_cpu_s_per_event: float
               ) -> list[dict[str, Any]]:
    """One row per owner that took CPU time, most first: its CPU seconds, share, facts, µs per
    fact and the same in bare-loop timeouts (``us_per_fact`` over the bare loop's µs per event)."""
    total = sum(cpu_s.values())
    rows = []
    for owner, seconds in sorted(cpu_s.items(), key=lambda kv: (-kv[1], kv[0])):
        label, n = facts.get(owner, ("", 0))
        us = seconds / n * 1e6 if n > 0 else None
        bare_us = bare_cpu_s_per_event * 1e6
        rows.append({"owner": owner, "cpu_s": seconds, "share": seconds / total if total > 0 else 0.0,
                     "fact": label, "facts": n, "us_per_fact": us,
                     "bare_events_per_fact": us / bare_us if us is not None and bare_us > 0 else None})
    return rows


def time_ratio(fleet_s: float, bare_s: float) -> float:
    """The fleet year's (build + run) time over the bare loop's: how many bare loops it costs."""
    return fleet_s / bare_s if bare_s > 0 else math.nan


def run_bench(hosts: int | None = None, duration: str | float | None = None, scenario: str | Path | None = None,
              bare_events: int = BARE_EVENTS, progress: Callable[[float], None] | None = None,
              profile: bool = True, bare: Callable[[int], dict[str, float]] = bare_loop) -> dict[str, Any]:
    """Build, run and write the fleet, then the bare loop (``bare``, replaceable by tests); the
    figures ``dcsim bench`` reports. ``profile``: sample the event loop's CPU time by owner
    (where the OS allows) for the cost per fact."""
    from sim import results
    from sim.runner import Simulation, versions
    from sim.scenario.loader import dump_resolved

    t_start = time.perf_counter()
    sc = load_fleet(scenario, hosts, duration)
    source = str(scenario) if scenario is not None else str(FLEET)

    t0, c0 = time.perf_counter(), time.process_time()
    simulation = Simulation(sc, source=source)
    build_s, build_cpu_s = time.perf_counter() - t0, time.process_time() - c0

    duration_s = float(sc.duration)
    loop_end: list[float] = []
    sampler = CpuSampler() if profile and CpuSampler.available else None

    def on_chunk(now: float) -> None:
        if now >= duration_s and not loop_end:
            loop_end.extend((time.perf_counter(), time.process_time()))  # the last chunk: the loop is done
            if sampler is not None:
                sampler.stop()
        if progress is not None:
            progress(now)

    t0, c0 = time.perf_counter(), time.process_time()
    if sampler is not None:
        sampler.start()
    try:
        output = simulation.run(on_chunk)
    finally:
        if sampler is not None and not loop_end:
            sampler.stop()
    t_done = time.perf_counter()
    loop_stop, loop_cpu = loop_end if loop_end else (t_done, time.process_time())
    run_s, run_cpu_s = loop_stop - t0, loop_cpu - c0
    summarize_s = t_done - loop_stop

    t0, c0 = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory(prefix="dcsim-bench-") as tmp:
        results.write_run(Path(tmp), output.tables, output.summary(), dump_resolved(sc))
    write_s, write_cpu_s = time.perf_counter() - t0, time.process_time() - c0

    bare_figures = bare(bare_events)
    fleet_eps = output.events / run_s if run_s > 0 else math.inf
    facts = count_facts(output.tables, output.events)
    bare_cpu_per_event = bare_figures["cpu_s"] / bare_figures["events"] if bare_figures["events"] else 0.0
    prof = None
    if sampler is not None:
        prof = {"interval_s": sampler.interval, "samples": sampler.samples, "cpu_s": sum(sampler.cpu_s.values()),
                "owners": fact_costs(sampler.cpu_s, facts, bare_cpu_per_event)}
    return {
        "hosts": len(simulation.dc.hosts),
        "vms": sum(w.count for w in sc.workloads),
        "vms_total": len(simulation.dc.vms),
        "duration_s": duration_s,
        "fleet": {"events": int(output.events), "build_s": build_s, "run_s": run_s, "write_s": write_s,
                  "events_per_s": fleet_eps, "summarize_s": summarize_s,
                  "build_cpu_s": build_cpu_s, "run_cpu_s": run_cpu_s, "write_cpu_s": write_cpu_s},
        "bare": bare_figures,
        "ratio": time_ratio(build_s + run_s, bare_figures["wall_s"]),
        "ratio_cpu": time_ratio(build_cpu_s + run_cpu_s, bare_figures["cpu_s"]),
        "facts": {owner: {"fact": label, "count": n} for owner, (label, n) in facts.items()},
        "profile": prof,
        "wall_s": time.perf_counter() - t_start,
        "peak_rss_mib": peak_rss_mib(),
        "versions": versions(),
        "scenario": source,
    }
