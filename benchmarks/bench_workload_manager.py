"""Cost of the workload manager: the solver's cost per backup stream start and end, and a fleet year
of 1,000 VMs backed up daily, against the same fleet with the mechanism's section absent.

1. Streams: one site of 32 domains x 16 hosts and one storage target; ``--streams`` backups run at
   once (each from its own host's disk into the target), and every completion starts the next one
   (from the transfer's ``on_end``, as the workload manager does), ``--jobs`` in all. Reported: CPU
   microseconds per ``dc.transfers.start`` call (the transfer, its entries in the transfers' index
   and the flow's join; the solver re-solves the rates once at the end of each instant, so that
   cost is in the next figure) and per start + end pair (the whole run's CPU over the jobs:
   transfer, solver updates, completion timer and SimPy events).
2. Fleet year: the same hosts, a 4,000-VM fleet of which ``--vms`` database VMs (500 GiB disks) are
   backed up by one policy (weekly fulls, daily incrementals at 5 %, 14 points, 16 streams per
   target), host crashes at MTBF 1.8 y (4 h repair) and storage outages at MTBF 2 y (1 h repair).
   Reported: events and CPU seconds of each variant and what the mechanism adds.

With ``--solver``, step 1 also reports the CPU spent inside the solver's entry points (``start``,
its completion timer, the end-of-instant flush, ``abort`` and queries; each timed once at the
outermost call, so a figure includes about 1 µs of timer overhead per call) per start + end, and
skips step 2.

Run: ``.venv/bin/python benchmarks/bench_workload_manager.py [--vms 1000] [--years 1] [--solver]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, not installed

from _fleet import east, simulation  # noqa: E402

from sim.infra.network import Endpoint  # noqa: E402


def fleet(vms: int, years: float, backed_up: bool) -> dict:
    sc = {
        "name": "bench-workload-manager", "seed": 1, "duration": f"{years}y", "sample_interval": "1d",
        "infrastructure": east(32),
        "workloads": [{"name": "web", "count": 4000 - vms, "vm": {"vcpus": 4, "memory": "16GiB", "disk": "100GiB"}},
                      {"name": "db", "count": vms, "vm": {"vcpus": 4, "memory": "16GiB", "disk": "500GiB"}}],
        "faults": [{"kind": "host_crash", "mtbf": "1.8y", "repair": "4h"},
                   {"kind": "storage_outage", "mtbf": "2y", "repair": "1h"}],
    }
    if backed_up:
        sc["mechanisms"] = {"workload_manager": {"max_concurrent": 16, "policies": [
            {"workloads": ["db"], "full_every": "7d", "incremental_every": "1d", "retention": 14,
             "change_rate": 0.05}]}}
    return sc


def streams(n_streams: int, jobs: int, tmp: Path) -> tuple[float, float]:
    """(CPU µs per start, CPU µs per start + end) with ``n_streams`` backups running at once."""
    sim = simulation(fleet(1, 1.0, False), tmp, "streams")
    dc = sim.dc
    env = sim.ctx.env
    hosts = [h.name for h in dc.host_list]
    dst = Endpoint.storage("vault")
    started = [0]
    start_cpu = [0.0]

    def launch(_t=None) -> None:
        if started[0] >= jobs:
            return
        src = Endpoint.disk(hosts[started[0] % len(hosts)])
        started[0] += 1
        c0 = time.process_time()
        dc.transfers.start(src, dst, 50e9 * (1 + (started[0] % 7) / 7), tag="bench", on_end=launch)
        start_cpu[0] += time.process_time() - c0

    c0 = time.process_time()
    for _ in range(n_streams):
        launch()
    env.run()
    total = time.process_time() - c0
    return 1e6 * start_cpu[0] / jobs, 1e6 * total / jobs


def time_solver() -> list[float]:
    """Wrap the solver's entry points so that the CPU spent in them accumulates in the list returned."""
    from sim.infra.solver import FlowSolver
    from sim.infra.transfer import Transfer

    spent = [0.0]
    inside = [False]
    since = [0.0]

    def wrap(name: str) -> None:
        f = getattr(FlowSolver, name)

        def timed(self, *args, **kwargs):
            if inside[0]:
                return f(self, *args, **kwargs)
            inside[0] = True
            since[0] = time.process_time()
            try:
                return f(self, *args, **kwargs)
            finally:
                spent[0] += time.process_time() - since[0]
                inside[0] = False

        setattr(FlowSolver, name, timed)

    for name in ("start", "_on_timer", "_on_join", "_on_flush", "abort", "rate", "sent", "remaining", "due",
                 "finish_if_due"):
        if hasattr(FlowSolver, name):
            wrap(name)

    # the solver calls a transfer back at its flow's end (and the owner's on_end from there): that
    # time is not the solver's, so the clock stops while the call runs
    ended = Transfer._flow_ended

    def outside(self, *args):
        if not inside[0]:
            return ended(self, *args)
        spent[0] += time.process_time() - since[0]
        inside[0] = False
        try:
            return ended(self, *args)
        finally:
            inside[0] = True
            since[0] = time.process_time()

    Transfer._flow_ended = outside
    return spent


def year(vms: int, years: float, backed_up: bool, tmp: Path) -> dict:
    c0 = time.process_time()
    sim = simulation(fleet(vms, years, backed_up), tmp, f"year-{backed_up}")
    c1 = time.process_time()
    out = sim.run()
    c2 = time.process_time()
    m = {k: v for k, v in out.metrics.items() if k.split(".")[0] in ("backup", "catalog") and "_p" not in k}
    return {"build_s": c1 - c0, "run_s": c2 - c1, "events": out.events, **m}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vms", type=int, default=1000)
    ap.add_argument("--years", type=float, default=1.0)
    ap.add_argument("--streams", type=int, default=16)
    ap.add_argument("--jobs", type=int, default=20000)
    ap.add_argument("--skip-year", action="store_true")
    ap.add_argument("--solver", action="store_true", help="also the CPU inside the solver per start + end")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    spent = time_solver() if args.solver else None
    for k in sorted({1, args.streams, 4 * args.streams}):
        if spent is not None:
            spent[0] = 0.0
        per_start, per_pair = streams(k, args.jobs, tmp)
        solver = f", {1e6 * spent[0] / args.jobs:7.1f} µs of it in the solver" if spent is not None else ""
        print(f"streams at once {k:4d}: {per_start:7.1f} µs CPU per start call, {per_pair:7.1f} µs per start + end "
              f"(everything){solver}")
    if args.skip_year or spent is not None:
        return
    base = year(args.vms, args.years, False, tmp)
    bk = year(args.vms, args.years, True, tmp)
    print(f"absent:    build {base['build_s']:.2f} s, run {base['run_s']:.2f} s CPU, {base['events']:,} events")
    print(f"backed up: build {bk['build_s']:.2f} s, run {bk['run_s']:.2f} s CPU, {bk['events']:,} events")
    print(f"added:     run {bk['run_s'] - base['run_s']:+.2f} s CPU, {bk['events'] - base['events']:+,} events")
    for k, v in bk.items():
        if "." in k:
            print(f"  {k} = {v:.6g}")


if __name__ == "__main__":
    main()
