"""The throughput benchmark behind ``dcsim bench`` (docs/performance.md).

``run_bench`` loads the fleet scenario (``scenarios/fleet.yaml`` next to the package),
optionally scaled down to ``hosts`` hosts and shortened to ``duration``, then times three
phases of one run: building the ``Simulation`` (``build_s``), its event loop (``run_s``:
the SimPy clock from 0 to the duration, ``events`` = SimPy events processed, counted as
``sim.runner`` counts them) and writing the result folder with ``sim.results`` to a
temporary directory (``write_s``). Turning the tables into metrics after the loop is
timed on its own (``summarize_s``). Each phase also reports its CPU time
(``*_cpu_s``, ``time.process_time``): on a busy shared machine the wall time includes
waiting for a core, the CPU time does not. In the same process it then runs a bare SimPy loop,
one process yielding ``env.timeout(1)`` a million times, and reports the fleet's events/s
over the bare loop's as ``ratio``: both share the interpreter, the machine and its
noise, so the ratio moves far less than wall times do on a shared machine.

Scaling rule (``scale_fleet``): keep the file's sites and its hosts per broadcast domain
(the first domain's count, 100 in fleet.yaml); the number of domains becomes
``max(sites, ceil(N / per_domain))``, dealt over the sites in file order (site i gets
``d // sites`` domains, one more for the first ``d % sites``), each keeping the first
entries of its site's list; the N hosts are dealt over those domains as evenly as
possible (the first ``N % d`` domains get one more). So 1,000 hosts are 2 x 5 domains
of 100, and 250 hosts are east 2 x (84, 83) and west 1 x 83. Every workload's count becomes
``round(count * N / H)`` (H the file's hosts), at least 1 for a non-empty workload, and
each mechanism section is what its class's ``scale(section, N / H)`` returns (each scales
its own VM populations, and offered load with them, like the workloads).
Fault rates are per target, so they need no scaling. N above the file's hosts is an
input error (the benchmark scales down only), and so is N below the number of sites.

Nothing here is asserted by tests as a time; tests check the shape of the result.
"""

from __future__ import annotations

import copy
import math
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import simpy

import sim
from sim.core.clock import processed_events
from sim.core.errors import InputError, Problem, show
from sim.core.units import UnitError, parse_duration

FLEET = Path(sim.__file__).resolve().parents[1] / "scenarios" / "fleet.yaml"
"""The fleet scenario of the source tree the package runs from."""

BARE_EVENTS = 1_000_000
"""Timeouts of the bare SimPy loop (one event per step)."""

KEYS = ("hosts", "vms", "duration_s", "fleet", "bare", "ratio", "wall_s", "peak_rss_mib", "versions")
FLEET_KEYS = ("events", "build_s", "run_s", "write_s", "events_per_s")
BARE_KEYS = ("events", "wall_s", "events_per_s")


# --------------------------------------------------------------------------- the scenario
def file_hosts(data: dict[str, Any]) -> int:
    """Hosts of a raw scenario mapping (its broadcast domains' ``hosts`` summed)."""
    return sum(int(d.get("hosts", 0)) for s in data["infrastructure"]["sites"] for d in s["broadcast_domains"])


def scale_fleet(data: dict[str, Any], hosts: int, source: str = "fleet.yaml") -> dict[str, Any]:
    """A copy of the raw scenario mapping with ``hosts`` hosts and VM counts scaled alike (module doc)."""
    total = file_hosts(data)
    sites = data["infrastructure"]["sites"]
    if hosts < len(sites):
        raise InputError("--hosts", [Problem(
            "", f"expected at least {len(sites)} hosts (one per site of {source}), got {hosts}")])
    if hosts > total:
        raise InputError("--hosts", [Problem(
            "", f"expected at most the {total} hosts of {source} (the benchmark scales down only), got {hosts}")])
    out = copy.deepcopy(data)
    sites = out["infrastructure"]["sites"]
    per_domain = int(sites[0]["broadcast_domains"][0]["hosts"]) or 1
    n_sites = len(sites)
    domains = max(n_sites, math.ceil(hosts / per_domain))
    kept: list[dict[str, Any]] = []
    for i, site in enumerate(sites):
        want = domains // n_sites + (1 if i < domains % n_sites else 0)
        have = site["broadcast_domains"]
        if want > len(have):
            raise InputError(source, [Problem(
                f"infrastructure.sites.{i}.broadcast_domains",
                f"expected at least {want} domains to scale to {hosts} hosts, got {len(have)}")])
        site["broadcast_domains"] = [dict(d) for d in have[:want]]
        kept.extend(site["broadcast_domains"])
    for j, dom in enumerate(kept):
        dom["hosts"] = hosts // len(kept) + (1 if j < hosts % len(kept) else 0)
    for w in out.get("workloads") or []:
        count = int(w.get("count", 0))
        if count > 0:
            w["count"] = max(1, round(count * hosts / total))
    from sim.mechanisms.registry import REGISTRY

    mechanisms = out.get("mechanisms") or {}
    for key, cls in REGISTRY.classes.items():  # each mechanism scales its own populations
        section = mechanisms.get(key)
        if isinstance(section, dict):
            mechanisms[key] = cls.scale(section, hosts / total)
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
    if hosts is not None:
        try:
            data = scale_fleet(data, int(hosts), source)
        except (KeyError, TypeError, ValueError):
            pass  # a malformed file: validation below says what is wrong
    return validate_scenario(data, source, (), config_models())


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


def run_bench(hosts: int | None = None, duration: str | float | None = None, scenario: str | Path | None = None,
              bare_events: int = BARE_EVENTS, progress: Callable[[float], None] | None = None) -> dict[str, Any]:
    """Build, run and write the fleet, then the bare loop; the figures ``dcsim bench`` reports."""
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

    def on_chunk(now: float) -> None:
        if now >= duration_s:
            loop_end.extend((time.perf_counter(), time.process_time()))  # the last chunk: the loop is done
        if progress is not None:
            progress(now)

    t0, c0 = time.perf_counter(), time.process_time()
    output = simulation.run(on_chunk)
    t_done = time.perf_counter()
    loop_stop, loop_cpu = loop_end if loop_end else (t_done, time.process_time())
    run_s, run_cpu_s = loop_stop - t0, loop_cpu - c0
    summarize_s = t_done - loop_stop

    t0, c0 = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory(prefix="dcsim-bench-") as tmp:
        results.write_run(Path(tmp), output.tables, output.summary(), dump_resolved(sc))
    write_s, write_cpu_s = time.perf_counter() - t0, time.process_time() - c0

    bare = bare_loop(bare_events)
    fleet_eps = output.events / run_s if run_s > 0 else math.inf
    ratio = fleet_eps / bare["events_per_s"] if bare["events_per_s"] > 0 else math.nan
    return {
        "hosts": len(simulation.dc.hosts),
        "vms": sum(w.count for w in sc.workloads),
        "duration_s": duration_s,
        "fleet": {"events": int(output.events), "build_s": build_s, "run_s": run_s, "write_s": write_s,
                  "events_per_s": fleet_eps, "summarize_s": summarize_s,
                  "build_cpu_s": build_cpu_s, "run_cpu_s": run_cpu_s, "write_cpu_s": write_cpu_s},
        "bare": bare,
        "ratio": ratio,
        "wall_s": time.perf_counter() - t_start,
        "peak_rss_mib": peak_rss_mib(),
        "versions": versions(),
        "scenario": source,
    }
