"""Sweep throughput: one 40-run sweep on 1 worker, on 2 local worker processes and on a 2-worker
Dask LocalCluster; prints wall times, runs/s and the ratios, and checks the three runs.parquet
are identical. A benchmark, not a test (tests never assert timings).

    .venv/bin/python benchmarks/sweep_throughput.py [--replications 10] [--duration 365d] [--json FILE]

The sweep: scenarios/memory_errors.yaml (256 hosts, 1,600 VMs) at 12x and 25x the field
uncorrectable DIMM error rate, evacuation on and off, 10 replications: 4 points x 10 = 40 runs,
each a few hundred evacuations' worth of live migrations (about a second of work).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim.experiments.design import load_sweep  # noqa: E402
from sim.experiments.execute import run_sweep  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replications", type=int, default=10)
    ap.add_argument("--duration", default="365d")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="dcsim-sweep-bench-") as tmp:
        tmp = Path(tmp)
        sweep = tmp / "bench.yaml"
        sweep.write_text(yaml.safe_dump({
            "name": "sweep-throughput", "scenario": str(ROOT / "scenarios" / "memory_errors.yaml"),
            "replications": args.replications, "set": {"duration": args.duration},
            "grid": {"faults.0.uncorrectable_per_dimm_year": [0.01, 0.02],
                     "mechanisms.memory_error_evacuation.enabled": [True, False]}}))
        design = load_sweep(sweep)
        n = len(design.runs)
        figures: dict[str, float] = {"runs": n, "cores": os.cpu_count() or 1}
        tables = {}
        for label, options in (("1 worker", {"workers": 1}),
                               (f"{args.workers} local processes", {"workers": args.workers}),
                               (f"Dask LocalCluster, {args.workers} workers",
                                {"workers": args.workers, "scheduler": "local"})):
            t0 = time.perf_counter()
            res = run_sweep(design, tmp / label.replace(" ", "_").replace(",", ""), **options)
            wall = time.perf_counter() - t0
            tables[label] = pd.read_parquet(res.path / "runs.parquet")
            figures[f"{label} wall_s"] = round(wall, 2)
            print(f"{label:>32}: {wall:7.2f} s  ({n / wall:5.2f} runs/s)", flush=True)
        one, local, dask = (figures[k] for k in figures if k.endswith("wall_s"))
        figures["speedup_local"] = round(one / local, 3)
        figures["dask_over_local"] = round(dask / local, 3)
        first = next(iter(tables.values()))
        figures["identical"] = all(t.equals(first) for t in tables.values())
        print(f"speed-up of {args.workers} local workers over 1: {figures['speedup_local']:.2f}x; "
              f"Dask / local wall time: {figures['dask_over_local']:.2f}; runs.parquet identical: "
              f"{figures['identical']}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
