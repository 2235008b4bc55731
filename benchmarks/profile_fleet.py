"""Profile the fleet scenario's build and event loop with cProfile.

Prints the top functions by cumulative and by total (own) time, then the own time summed per
source file (which module's code the time is spent in; ``dcsim bench``'s sampler instead charges
shared code to the mechanism that called it), and can save the raw profile for snakeviz or
pstats. cProfile's overhead is per call, so call-heavy code looks dearer than it is: read the
proportions, and the unprofiled times from ``dcsim bench``.

    .venv/bin/python benchmarks/profile_fleet.py --hosts 1000              # a year of 1,000 hosts
    .venv/bin/python benchmarks/profile_fleet.py --hosts 10000 --top 30 --out fleet.prof
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time
from collections import defaultdict
from pathlib import Path

from sim.bench import load_fleet
from sim.runner import Simulation


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--duration", default=None, help="simulated time (default: the file's, 1y)")
    ap.add_argument("--scenario", default=None)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--out", default=None, help="also dump the raw profile here")
    args = ap.parse_args(argv)

    sc = load_fleet(args.scenario, args.hosts, args.duration)
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    output = Simulation(sc).run()
    prof.disable()
    wall = time.perf_counter() - t0
    print(f"{args.hosts} hosts, {sum(w.count for w in sc.workloads)} VMs, {sc.duration / 86400:.0f} days: "
          f"{output.events} events, {wall:.1f} s under the profiler (build + run + summarise)")
    if args.out:
        prof.dump_stats(args.out)
    for key, title in (("cumulative", "cumulative time"), ("tottime", "total (own) time")):
        buf = io.StringIO()
        stats = pstats.Stats(prof, stream=buf).strip_dirs().sort_stats(key)
        stats.print_stats(args.top)
        print(f"\n=== top {args.top} by {title} ===")
        lines = buf.getvalue().splitlines()
        start = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls")), 0)
        print("\n".join(lines[start:]))
    print(f"\n=== own time by source file (top {args.top}) ===")
    for share, seconds, name in by_file(prof)[: args.top]:
        print(f"{seconds:9.3f} s {share:6.1%}  {name}")


def by_file(prof: cProfile.Profile) -> list[tuple[float, float, str]]:
    """(share, own seconds, file) per source file, most first: files under ``sim/`` by their path in
    the repository, others (SimPy, numpy, built-ins) by their last two path parts."""
    stats = pstats.Stats(prof).stats  # (file, line, function) -> (cc, nc, tottime, cumtime, callers)
    own: dict[str, float] = defaultdict(float)
    for (filename, _line, _func), (_cc, _nc, tottime, _cum, _callers) in stats.items():
        parts = Path(filename).parts
        if "sim" in parts:
            name = "/".join(parts[len(parts) - 1 - parts[::-1].index("sim"):])
        elif filename == "~":
            name = "built-ins"
        else:
            name = "/".join(parts[-2:])
        own[name] += tottime
    total = sum(own.values()) or 1.0
    return sorted(((s / total, s, n) for n, s in own.items()), reverse=True)


if __name__ == "__main__":
    main()
