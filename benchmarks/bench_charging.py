"""Wall cost of one charging evaluation over a fleet of 100,000 VMs (issue 14: vectorised, not a
Python loop per VM).

Fleet: two sites in two pricing regions (us-east, eu-west), each of ``--hosts``/2 hosts of 256 GiB
in domains of 40, ``--vms`` VMs of 2 vCPUs / 8 GiB in 1,000 services (names ``svcNNN-MMMM``),
placed ``spread: broadcast_domain`` over both sites; ``policy: report``, evaluated every 12 h over
two days (the first evaluation records every proposal; the later ones find the same figures and
record nothing: the steady state of a daily evaluation). Reported: the wall time of each
``Charging.evaluate`` (locating every VM, the charges before and after, the proposals recorded with
their redundancy score), of its kernels alone (``locate``, ``redundancy`` from scratch over the fleet,
``Scorer.score`` for 100 rows and for every VM, ``evaluate_moves``), and of the redundancy score written
as the pairwise
Python loop it replaces, over the first ``--loop`` VMs (it is O(VMs^2): scaled to the fleet).

Run: ``.venv/bin/python benchmarks/bench_charging.py [--vms 100000] [--hosts 3400] [--loop 2000]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, not installed

from sim.mechanisms import charging  # noqa: E402
from sim.mechanisms.registry import config_models  # noqa: E402
from sim.runner import run_scenario  # noqa: E402
from sim.scenario.loader import load_scenario  # noqa: E402


def scenario(vms: int, hosts: int) -> dict:
    per_site = hosts // 2
    doms = [{"name": f"bd{k}", "hosts": 40, "profile": "std", "uplink": "100Gbps"} for k in range(per_site // 40)]
    services = 1000
    per = vms // services
    return {
        "name": "bench-charging", "seed": 1, "duration": "2d",
        "infrastructure": {
            "host_profiles": {"std": {"cores": 64, "memory": "256GiB", "dimms": 8, "nic": "25Gbps",
                                      "disk": {"capacity": "4TiB", "read": "2GB/s", "write": "1GB/s"},
                                      "boot_time": "3m", "reserved_memory": "16GiB"}},
            "sites": [{"name": "east", "region": "us-east", "broadcast_domains": doms},
                      {"name": "west", "region": "eu-west", "broadcast_domains": doms}],
            "wan": [{"sites": ["east", "west"], "bandwidth": "100Gbps", "latency": "35ms"}],
        },
        "workloads": [{"name": f"svc{s:03d}", "count": per, "vm": {"vcpus": 2, "memory": "8GiB", "disk": "40GiB"},
                       "placement": {"hosts": ["*"]}} for s in range(services)],
        "mechanisms": {"charging": {"evaluate_every": "12h", "policy": "report", "prices": {
            "us-east": {"vcpu_hour": 0.040, "gib_hour": 0.005, "egress_gb": 0.02},
            "eu-west": {"vcpu_hour": 0.032, "gib_hour": 0.004, "egress_gb": 0.02}}}},
    }


def loop_redundancy(service, shape, stem, dom) -> np.ndarray:
    """The score as a pairwise Python loop (what the vectorised kernel replaces)."""
    n = len(service)
    out = np.zeros(n)
    for i in range(n):
        best = 0.0
        for j in range(n):
            if i == j:
                continue
            base = 0.4 * (service[i] == service[j]) + 0.2 * (shape[i] == shape[j]) + 0.2 * (stem[i] == stem[j])
            best = max(best, base + (0.2 if base > 0 and dom[i] != dom[j] else 0.0))
        out[i] = best
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vms", type=int, default=100_000)
    ap.add_argument("--hosts", type=int, default=3400)
    ap.add_argument("--loop", type=int, default=2000)
    a = ap.parse_args()
    timings: list[float] = []
    mech: list = []
    original = charging.Charging.evaluate

    def timed(self, now):
        mech.append(self)
        t0 = time.perf_counter()
        original(self, now)
        timings.append(time.perf_counter() - t0)

    charging.Charging.evaluate = timed
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(yaml.safe_dump(scenario(a.vms, a.hosts), sort_keys=False))
        t0 = time.perf_counter()
        out = run_scenario(load_scenario(str(path), [], config_models()))
        total = time.perf_counter() - t0
    m = mech[0]
    t0 = time.perf_counter()
    site, dom, running = m.locate()
    t_loc = time.perf_counter() - t0
    t0 = time.perf_counter()
    charging.redundancy(m.service, m.shape, m.stem, dom)
    t_red = time.perf_counter() - t0
    t0 = time.perf_counter()
    m.scorer.score(dom, np.arange(100))
    t_rows = time.perf_counter() - t0
    t0 = time.perf_counter()
    m.scorer.score(dom, np.arange(len(dom)))
    t_all = time.perf_counter() - t0
    t0 = time.perf_counter()
    charging.evaluate_moves(m.rate, m.p_egress, m.move_bytes, m.service, site, running, m.allowed, m.best)
    t_mov = time.perf_counter() - t0
    k = min(a.loop, len(m.service))
    t0 = time.perf_counter()
    loop_redundancy(m.service[:k], m.shape[:k], m.stem[:k], dom[:k])
    t_loop = time.perf_counter() - t0
    print(f"VMs {len(m.vms):,}, hosts {a.hosts:,}; run of 2 days {total:.1f} s; proposals "
          f"{out.metrics['charging.proposals']:.0f}")
    print("evaluate (wall s): " + ", ".join(f"{t:.3f}" for t in timings))
    print(f"kernels: locate {t_loc:.4f} s, redundancy {t_red:.3f} s, Scorer.score 100 rows {t_rows:.4f} s, "
          f"every VM {t_all:.4f} s, evaluate_moves {t_mov:.4f} s")
    print(f"pairwise loop over {k:,} VMs: {t_loop:.2f} s (x{(len(m.vms) / k) ** 2:,.0f} for the fleet: "
          f"~{t_loop * (len(m.vms) / k) ** 2:,.0f} s)")


if __name__ == "__main__":
    main()
