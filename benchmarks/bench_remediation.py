"""CPU cost of a rolling remediation: one cluster of 500 hosts with 10 VMs each (5,000 live
migrations and more: a VM can move more than once while the cluster rolls), ``max_concurrent``
10, a new image published at 1 h, against the same fleet with no publish (the migrations and
remediation steps are the difference).

Fleet: one site of 25 broadcast domains x 20 hosts (256 GiB, 240 GiB for VMs; 25 Gbps NICs), a
5,000-VM workload of 16 GiB VMs (dirty rate 20 MB/s, working set 2 GiB) spread over the domains;
live migration stays inside a broadcast domain (its default scope), so each host evacuates to the
other 19 hosts of its domain. Reported: build and run CPU seconds (``time.process_time``) of each
variant, events, migrations, and the remediation figures.

Run: ``.venv/bin/python benchmarks/bench_remediation.py [--hosts 500] [--vms-per-host 10]
[--max-concurrent 10]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, not installed

from _fleet import east, simulation  # noqa: E402

PER_DOMAIN = 20


def fleet(hosts: int, per_host: int, m: int, publish: bool) -> dict:
    domains = max(1, hosts // PER_DOMAIN)
    sc = {
        "name": "bench-remediation", "seed": 1, "duration": "2d", "sample_interval": "1h",
        "infrastructure": east(domains, hosts=PER_DOMAIN, storage=(), boot_time="3m"),
        "clusters": [{"name": "prod", "hosts": ["east/*"],
                      "image": {"base": "8.0.2", "components": {"vsan": "8.0.2", "nic": "1.4.0"}}}],
        "workloads": [{"name": "web", "count": domains * PER_DOMAIN * per_host,
                       "vm": {"vcpus": 4, "memory": "16GiB", "disk": "100GiB", "working_set": "2GiB"}}],
        "mechanisms": {"remediation": {"max_concurrent": m}},
        "operations": [],
    }
    if publish:
        sc["operations"] = [{"kind": "publish_image", "at": "1h", "cluster": "prod",
                             "image": {"base": "8.0.3", "components": {"vsan": "8.0.3"}}}]
    return sc


def one(hosts: int, per_host: int, m: int, publish: bool, tmp: Path) -> dict:
    t0 = time.process_time()
    sim = simulation(fleet(hosts, per_host, m, publish), tmp, f"bench-{publish}")
    t1 = time.process_time()
    out = sim.run()
    t2 = time.process_time()
    mig = out.tables["migrations"]
    m = {k: v for k, v in out.metrics.items() if k.startswith("remediation.") and not k.endswith(("_p50", "_p95"))}
    return {"build_s": t1 - t0, "run_s": t2 - t1, "events": out.events, "migrations": len(mig),
            "migration_downtime_max_s": float(mig["downtime_s"].max()) if len(mig) else 0.0, **m}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=500)
    ap.add_argument("--vms-per-host", type=int, default=10)
    ap.add_argument("--max-concurrent", type=int, default=10)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    base = one(args.hosts, args.vms_per_host, args.max_concurrent, False, tmp)
    roll = one(args.hosts, args.vms_per_host, args.max_concurrent, True, tmp)
    print(f"no publish: build {base['build_s']:.2f} CPU s, run {base['run_s']:.2f} CPU s, {base['events']} events")
    print(f"rolling:    build {roll['build_s']:.2f} CPU s, run {roll['run_s']:.2f} CPU s, {roll['events']} events, "
          f"{roll['migrations']} migrations")
    added = roll["run_s"] - base["run_s"]
    print(f"added:      run {added:+.2f} CPU s, {roll['events'] - base['events']:+d} events "
          f"({1e3 * added / max(1, roll['migrations']):.3f} CPU ms per migration)")
    for k, v in roll.items():
        if k.startswith(("remediation.", "migration_")):
            print(f"  {k} = {v:.6g}")


if __name__ == "__main__":
    main()
