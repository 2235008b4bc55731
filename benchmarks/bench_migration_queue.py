"""Wall cost of the live-migration queue (``max_per_host``) in a mass evacuation (issue 12 §4).

A site's rolling remediation evacuates many hosts at once: here 5,000 VMs leave 500 source
hosts (10 each) for T target hosts (VM i goes from source i mod 500 to target 7i mod T; T =
500 and 250), every request made at the same instant, with the default ``max_per_host`` of 8. Only the
engine's queue is timed: each request asks for both hosts' slots (granted at once or queued),
then migrations end one at a time, each time a running one drawn at random (seeded), each
releasing its
slots and granting whoever may go next, until all 5,000 have run. No flow is simulated (the
bandwidth solver has its own benchmark, ``bench_solver.py``). The engine comes from a real
``Simulation`` of 1,000 hosts, so the figure is the engine's own code path.

Reported: requests queued at once, total wall seconds of the requests and of the ends, and
the grant order's checksum (equal before and after: the order is the same FIFO).

Run: ``.venv/bin/python benchmarks/bench_migration_queue.py [--vms 5000] [--sources 500]``.
"""

from __future__ import annotations

import argparse
import sys
import time
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, not installed

from sim.runner import Simulation  # noqa: E402
from sim.scenario.loader import validate_scenario  # noqa: E402


def scenario(hosts: int) -> dict:
    return {
        "name": "mass-evacuation", "seed": 1, "duration": "1h",
        "infrastructure": {
            "host_profiles": {"p": {"cores": 64, "memory": "512GiB", "dimms": 16, "nic": "25Gbps"}},
            "sites": [{"name": "s", "broadcast_domains": [
                {"name": f"bd{d:02d}", "hosts": 50, "profile": "p"} for d in range(hosts // 50)]}],
        },
        "workloads": [],
    }


def run(vms: int, sources: int, targets: int) -> tuple[int, float, float, int]:
    sim = Simulation(validate_scenario(scenario(sources + targets)))
    engine = sim.ctx.services["live_migration"]
    env = sim.ctx.env
    hosts = sim.dc.host_list
    running: list = []
    rng = np.random.default_rng(1)
    order = []

    def started(pair):
        running.append(pair)
        order.append(pair[2])

    t0 = time.perf_counter()
    queued = 0
    for i in range(vms):
        pair = (hosts[i % sources], hosts[sources + (7 * i) % targets], i)
        waiter = engine._request(pair[0], pair[1])
        if waiter is None:
            started(pair)
        else:
            queued += 1
            waiter.event.callbacks.append(lambda _ev, pair=pair: started(pair))
    requests_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    while running:
        k = int(rng.integers(len(running)))
        running[k], running[-1] = running[-1], running[k]
        source, target, _ = running.pop()
        engine.release(source, target)
        env.run()  # the grants' events: their callbacks start the next migrations
    ends_s = time.perf_counter() - t0
    assert len(order) == vms
    return queued, requests_s, ends_s, zlib.crc32(repr(order).encode())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vms", type=int, default=5000)
    ap.add_argument("--sources", type=int, default=500)
    ap.add_argument("--targets", type=int, nargs="+", default=[500, 250])
    args = ap.parse_args()
    for targets in args.targets:
        queued, requests_s, ends_s, checksum = run(args.vms, args.sources, targets)
        print(f"{args.vms} VMs from {args.sources} hosts to {targets}: {queued} queued; requests"
              f" {requests_s:.3f} s, ends {ends_s:.3f} s, total {requests_s + ends_s:.3f} s;"
              f" grant order crc32 {checksum:08x}", flush=True)


if __name__ == "__main__":
    main()
