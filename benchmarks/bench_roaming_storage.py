"""CPU cost of roaming segments per segment move, as the number of files and the number of
locations grow: the work per move should stay flat (a timer, a transfer and a few dictionary
updates per landing; nothing per location or per host).

Fleet: one site of ``domains`` broadcast domains x 16 hosts (25 Gbps NICs), 64 web VMs, every
host disk a location; ``files`` files of 10 GiB in 8 segments roaming every hour (+-20 %), two
retrievals a day each, for ``days`` days. Reported per variant: CPU seconds, events, segment moves,
microseconds of CPU per move, and the roaming figures.

Run: ``.venv/bin/python benchmarks/bench_roaming_storage.py [--days 7]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, not installed

from _fleet import east, simulation  # noqa: E402


def fleet(files: int, domains: int, days: float) -> dict:
    return {
        "name": "bench-roaming", "seed": 1, "duration": f"{days}d", "sample_interval": "1d",
        "infrastructure": east(domains, storage=()),
        "workloads": [{"name": "web", "count": 64, "vm": {"vcpus": 4, "memory": "16GiB", "disk": "100GiB"}}],
        "mechanisms": {"roaming_storage": {"files": [{"name": "f", "size": "10GiB", "segments": 8, "count": files}],
                                           "locations": ["east/*"], "roam_interval": "1h", "jitter": 0.2,
                                           "retrieval_rate": "2/d"}},
    }


def one(files: int, domains: int, days: float, tmp: Path) -> dict:
    sim = simulation(fleet(files, domains, days), tmp, f"bench-{files}-{domains}")
    t0 = time.process_time()
    out = sim.run()
    cpu = time.process_time() - t0
    moves = len(out.tables["segment_moves"])
    return {"files": files, "hosts": 16 * domains, "cpu_s": cpu, "events": out.events, "moves": moves,
            "us_per_move": 1e6 * cpu / max(moves, 1),
            "exposure_max": out.metrics.get("roaming.exposure_max"),
            "retrieval_s_mean": out.metrics.get("roaming.retrieval_s_mean")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=7.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        for files, domains in ((10, 4), (40, 4), (40, 16)):
            r = one(files, domains, args.days, Path(d))
            print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()))


if __name__ == "__main__":
    main()
