"""Cost of prioritized-block restores: one restore of ``--vms`` VMs at once (after their nightly full),
with ``backup_priority`` absent (one transfer per VM) and enabled (the usable prefix, then the rest:
two transfers per VM). Every VM's copy shares one storage target, so each transfer's start and end
recomputes the rates of the copies running. Reported: events and CPU seconds of each run and what
the prioritised order adds per restored VM; the backups before the restore are the same in both.

Run: ``.venv/bin/python benchmarks/bench_backup_priority.py [--vms 1000]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, not installed

from _fleet import east, simulation  # noqa: E402


def scenario(vms: int, prioritised: bool) -> dict:
    mech = {"workload_manager": {"max_concurrent": 64, "policies": [{"workloads": ["db"]}]}}
    if prioritised:
        mech["backup_priority"] = {}
    return {
        "name": "bench-backup-priority", "seed": 1, "duration": "1d", "sample_interval": "1d",
        "infrastructure": east(16),
        "workloads": [{"name": "db", "count": vms, "vm": {"vcpus": 4, "memory": "16GiB", "disk": "100GiB"}}],
        "mechanisms": mech,
        "operations": [{"kind": "restore", "at": "12h", "workload": "db"}],
    }


def measure(vms: int, prioritised: bool, tmp: Path) -> tuple[int, float, dict]:
    sim = simulation(scenario(vms, prioritised), tmp, f"s{int(prioritised)}")
    t0 = time.process_time()
    out = sim.run()
    return out.events, time.process_time() - t0, out.metrics


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vms", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        e0, c0, m0 = measure(args.vms, False, tmp)
        e1, c1, m1 = measure(args.vms, True, tmp)
    print(f"{args.vms} VMs restored at once from one vault")
    print(f"  disk order:   {e0:>9,} events  {c0:7.2f} s CPU  time to usable {m0['restore.time_to_usable_s_max']:8.1f} s")
    print(f"  prioritised:  {e1:>9,} events  {c1:7.2f} s CPU  time to usable {m1['restore.time_to_usable_s_max']:8.1f} s")
    print(f"  added: {e1 - e0:,} events, {1e6 * (c1 - c0) / args.vms:.0f} us CPU per restored VM")


if __name__ == "__main__":
    main()
