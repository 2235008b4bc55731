"""Wall cost of loading a large failure trace onto the fleet (docs/failures.md, "Cost").

Builds the benchmark fleet (``scenarios/fleet.yaml``) at 10,000 hosts, writes a trace of
1,000,000 ``host_crash`` records on random hosts (uniform starts over a year, lognormal
lengths of median 8 h, numpy seed 1) as Parquet and CSV, and times ``sim.faults.trace.load``
(read, check, merge, drop) on each. Also reports the outages after merging and the timeouts
queued when replay starts (one per host with outages, nothing per record).

Run: ``.venv/bin/python benchmarks/bench_trace_load.py [--hosts 10000] [--records 1000000]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, not installed

from sim.bench import load_fleet  # noqa: E402
from sim.faults import trace  # noqa: E402
from sim.runner import Simulation  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    sc = load_fleet(None, args.hosts, "365d")
    sim = Simulation(sc, source="scenarios/fleet.yaml")
    hosts = np.array(sorted(sim.dc.hosts), dtype=object)
    rng = np.random.default_rng(1)
    n = args.records
    start = rng.uniform(0, float(sc.duration), n)
    df = pd.DataFrame({"node": hosts[rng.integers(0, len(hosts), n)], "start": start,
                       "end": start + rng.lognormal(np.log(8 * 3600.0), 1.0, n), "kind": "host_crash"})
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in ("parquet", "csv"):
            path = Path(tmp) / f"trace.{suffix}"
            df.to_parquet(path) if suffix == "parquet" else df.to_csv(path, index=False)
            spec = SimpleNamespace(path=str(path), origin=None, scale=1.0, offset=0.0, repeat=1, period=None,
                                   hosts=("*",))
            t0 = time.perf_counter()
            replay = trace.load(spec, 0, "fleet.yaml", float(sc.duration), sim.faults._selected)
            wall = time.perf_counter() - t0
            print(f"{suffix:8s} {n:,} records on {len(hosts):,} hosts: load {wall:.2f} s, "
                  f"{replay.outages:,} outages after merging, {replay.dropped} dropped")
        queued = len(sim.ctx.env._queue)
        sim.faults.replays[0] = replay
        sim.faults._replay(0, replay)
        print(f"timeouts queued by the replay at start: {len(sim.ctx.env._queue) - queued:,} "
              f"(hosts with outages: {len(np.unique(replay.kinds['host_crash'].node)):,})")


if __name__ == "__main__":
    main()
