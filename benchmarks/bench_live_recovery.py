"""Cost of live recovery: CPU per recovery, and what the mechanism's handlers cost a fleet that never
recovers anything.

1. Recoveries: one site of 32 domains x 16 hosts, one vault, ``--vms`` database VMs (500 GiB disks,
   weekly fulls from t = 0) among 4,000; at day 1, ``--recover`` of them are recovered at once by
   ``recover`` operations (live: mount, boot, background restore sharing the vault's read rate,
   carry-over, switchover). Reported: CPU seconds and events of the run with the operations against
   the same run without them, per recovery.
2. Handlers: the same fleet for ``--days`` with host crashes (MTBF 1.8 y) and no backups, with the
   registry as shipped against the registry without live recovery: what its ``vm_stopped`` and
   ``no_room`` handlers and its host subscription add when it recovers nothing.

Run: ``.venv/bin/python benchmarks/bench_live_recovery.py [--vms 1000] [--recover 100] [--days 365]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, not installed

from _fleet import east, simulation  # noqa: E402

from sim.mechanisms.live_recovery import LiveRecovery  # noqa: E402
from sim.mechanisms.registry import MECHANISMS, Registry, config_models  # noqa: E402


def fleet(vms: int, days: float, backed_up: bool, recover: int) -> dict:
    sc = {
        "name": "bench-live-recovery", "seed": 1, "duration": f"{days}d", "sample_interval": "1d",
        "infrastructure": east(32),
        "workloads": [{"name": "web", "count": 4000 - vms, "vm": {"vcpus": 4, "memory": "16GiB", "disk": "100GiB"}},
                      {"name": "db", "count": vms, "vm": {"vcpus": 4, "memory": "16GiB", "disk": "500GiB"}}],
        "faults": [{"kind": "host_crash", "mtbf": "1.8y", "repair": "4h"}],
    }
    if backed_up:
        sc["mechanisms"] = {
            "workload_manager": {"max_concurrent": 16, "policies": [
                {"workloads": ["db"], "full_every": "7d", "incremental_every": "7d", "retention": 2}]},
            "live_recovery": {"target_hosts": ["*"]}}
        sc["operations"] = [{"kind": "recover", "at": "1d", "vm": f"db-{i:03d}"} for i in range(recover)]
    return sc


def run(data: dict, tmp: Path, name: str, registry: Registry) -> tuple[float, int, dict]:
    sim = simulation(data, tmp, name, registry)
    c0 = time.process_time()
    out = sim.run()
    return time.process_time() - c0, out.events, out.metrics


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vms", type=int, default=1000)
    ap.add_argument("--recover", type=int, default=100)
    ap.add_argument("--days", type=float, default=365.0)
    ap.add_argument("--skip-handlers", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    shipped = config_models()
    base_s, base_ev, _ = run(fleet(args.vms, 2, True, 0), tmp, "base", shipped)
    rec_s, rec_ev, m = run(fleet(args.vms, 2, True, args.recover), tmp, "recover", shipped)
    n = int(m["recovery.count"])
    print(f"2 days, backups only:       {base_s:.2f} s CPU, {base_ev:,} events")
    print(f"with {args.recover} recover operations: {rec_s:.2f} s CPU, {rec_ev:,} events, {n} completed, "
          f"time to service {m.get('recovery.time_to_service_s_mean', float('nan')):.0f} s, restore "
          f"{m.get('recovery.restore_time_s_mean', float('nan')):.0f} s, lost {m['recovery.data_lost_bytes_total']:g} B")
    if n:
        print(f"per recovery:               {1e3 * (rec_s - base_s) / n:.2f} ms CPU, {(rec_ev - base_ev) / n:.1f} events")
    if args.skip_handlers:
        return
    without = Registry(tuple(c for c in MECHANISMS if c is not LiveRecovery))
    a_s, a_ev, _ = run(fleet(args.vms, args.days, False, 0), tmp, "without", without)
    b_s, b_ev, mb = run(fleet(args.vms, args.days, False, 0), tmp, "shipped", shipped)
    print(f"{args.days:g} days, no backups, registry without live_recovery: {a_s:.2f} s CPU, {a_ev:,} events")
    print(f"{args.days:g} days, no backups, registry as shipped:           {b_s:.2f} s CPU, {b_ev:,} events "
          f"({b_s - a_s:+.2f} s, {mb.get('incidents.count', 0):g} incidents)")


if __name__ == "__main__":
    main()
