"""Wall cost of snapshot-capability tagging: nightly backups of ``--resources`` resources (half
of them snapshot capable) over ``--days`` days, with host crashes, against the same fleet with
the mechanism's section absent. Reported: build and run wall time of each variant, events, and
the wall time per resource backup (each is one transfer: start, end and its share of the round's
quiesce).

Fleet: one site of 16 broadcast domains x 16 hosts, one backup vault (3 GB/s write); host crashes
at MTBF 1.8 y with a 4 h repair (Dean, LADIS 2009).

Run: ``.venv/bin/python benchmarks/bench_snapshot_discovery.py [--resources 2000] [--days 30]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, not installed

from _fleet import VAULT, east, simulation  # noqa: E402


def fleet(resources: int, days: float, tagging: bool) -> dict:
    sc = {
        "name": "bench-snapshot", "seed": 1, "duration": f"{days}d", "sample_interval": "1d",
        "infrastructure": east(16, storage=({**VAULT, "capacity": "4PiB", "read": "4GB/s", "write": "3GB/s"},)),
        "workloads": [],
        "faults": [{"kind": "host_crash", "mtbf": "1.8y", "repair": "4h"}],
    }
    if tagging:
        half = resources // 2
        sc["mechanisms"] = {"snapshot_discovery": {"resources": [
            {"kind": "db", "hosts": "east/*", "count": half, "size": "20GiB", "storage": "array"},
            {"kind": "fs", "hosts": "east/*", "count": resources - half, "size": "20GiB", "filesystem": "ext4",
             "created_at": "36h"}]}}
    return sc


def one(resources: int, days: float, tagging: bool, tmp: Path) -> dict:
    t0 = time.perf_counter()
    sim = simulation(fleet(resources, days, tagging), tmp, f"bench-{tagging}")
    t1 = time.perf_counter()
    out = sim.run()
    t2 = time.perf_counter()
    m = {k: v for k, v in out.metrics.items() if k.startswith("snapshot.") and not k.endswith(("_p50", "_p95"))}
    rows = len(out.tables["snapshot_backups"])
    return {"build_s": t1 - t0, "run_s": t2 - t1, "events": out.events, "rows": rows, **m}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--resources", type=int, default=2000)
    ap.add_argument("--days", type=float, default=30.0)
    args = ap.parse_args()
    import tempfile

    tmp = Path(tempfile.mkdtemp())
    base = one(args.resources, args.days, False, tmp)
    snap = one(args.resources, args.days, True, tmp)
    print(f"absent:  build {base['build_s']:.2f} s, run {base['run_s']:.2f} s, {base['events']} events")
    print(f"tagging: build {snap['build_s']:.2f} s, run {snap['run_s']:.2f} s, {snap['events']} events, "
          f"{snap['rows']} resource backups")
    added = snap["run_s"] - base["run_s"]
    print(f"added:   run {added:+.2f} s, {1e6 * added / max(snap['rows'], 1):.1f} us per resource backup")
    for k, v in snap.items():
        if k.startswith("snapshot."):
            print(f"  {k} = {v:.6g}")


if __name__ == "__main__":
    main()
