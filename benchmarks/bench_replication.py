"""Wall cost of the replication mechanism on a fleet: a replicated network of 1,000 primaries
(one replica each, distinct domains) over a simulated year with host crashes and domain outages,
against the same fleet with the mechanism's section absent.

Fleet: one site of 32 broadcast domains x 16 hosts (512 hosts, 240 GiB for VMs each), a 4,000-VM
workload; host crashes at MTBF 1.8 y with a 4 h repair and rack (domain) outages at MTBF 2.25 y with
a 3 h repair (Dean, LADIS 2009: ~1,000 machine failures and ~20 rack failures a year in an
1,800-machine cluster of ~45 racks). Reported: build and run wall time of each variant, events, and
the replication figures.

Run: ``.venv/bin/python benchmarks/bench_replication.py [--primaries 1000] [--years 1]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, not installed

from _fleet import east, simulation  # noqa: E402


def fleet(primaries: int, years: float, replicated: bool) -> dict:
    sc = {
        "name": "bench-replication", "seed": 1, "duration": f"{years}y", "sample_interval": "1d",
        "infrastructure": east(32, storage=()),
        "workloads": [{"name": "web", "count": 4000, "vm": {"vcpus": 4, "memory": "16GiB", "disk": "100GiB"}}],
        "faults": [{"kind": "host_crash", "mtbf": "1.8y", "repair": "4h"},
                   {"kind": "broadcast_domain_outage", "mtbf": "2.25y", "repair": "3h"}],
    }
    if replicated:
        sc["mechanisms"] = {"replication": {"networks": [{"name": "net", "primaries": primaries, "replicas": 1}]}}
    return sc


def one(primaries: int, years: float, replicated: bool, tmp: Path) -> dict:
    t0 = time.perf_counter()
    sim = simulation(fleet(primaries, years, replicated), tmp, f"bench-{replicated}")
    t1 = time.perf_counter()
    out = sim.run()
    t2 = time.perf_counter()
    m = {k: v for k, v in out.metrics.items() if k.startswith("replication.") and not k.endswith(("_p50", "_p95"))}
    return {"build_s": t1 - t0, "run_s": t2 - t1, "events": out.events, **m}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--primaries", type=int, default=1000)
    ap.add_argument("--years", type=float, default=1.0)
    args = ap.parse_args()
    import tempfile

    tmp = Path(tempfile.mkdtemp())
    base = one(args.primaries, args.years, False, tmp)
    repl = one(args.primaries, args.years, True, tmp)
    print(f"absent:     build {base['build_s']:.2f} s, run {base['run_s']:.2f} s, {base['events']} events")
    print(f"replicated: build {repl['build_s']:.2f} s, run {repl['run_s']:.2f} s, {repl['events']} events")
    print(f"added:      build {repl['build_s'] - base['build_s']:+.2f} s, run {repl['run_s'] - base['run_s']:+.2f} s")
    for k, v in repl.items():
        if k.startswith("replication."):
            print(f"  {k} = {v:.6g}")


if __name__ == "__main__":
    main()
