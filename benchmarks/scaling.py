"""How the fleet benchmark scales with the number of hosts.

Runs ``dcsim bench --hosts N`` for each size in a fresh subprocess (so each size's peak
memory is its own), smallest first, and prints one row per size: hosts, VMs, events,
build/run/write seconds, total wall time, peak RSS, the fleet/bare ``ratio``, and, from
the second size on, the growth of wall time and of CPU time over the previous size next
to the host growth
(the target: 10x the hosts costs at most 12x the time, docs/performance.md).

    .venv/bin/python benchmarks/scaling.py                          # 1,000, 3,000, 10,000 hosts
    .venv/bin/python benchmarks/scaling.py --sizes 1000,3000 --json scaling.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_size(hosts: int, duration: str | None, scenario: str | None) -> dict:
    """One ``dcsim bench`` in a subprocess; its JSON figures."""
    with tempfile.TemporaryDirectory(prefix="dcsim-scaling-") as tmp:
        out = Path(tmp) / "bench.json"
        cmd = [sys.executable, "-m", "sim.cli", "bench", "--hosts", str(hosts), "--quiet", "--json", str(out)]
        if duration:
            cmd += ["--duration", duration]
        if scenario:
            cmd += ["--scenario", scenario]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"dcsim bench --hosts {hosts} failed ({proc.returncode}):\n{proc.stderr}")
        return json.loads(out.read_text())


def rows(runs: list[dict]) -> list[dict]:
    """The table: one row per size, with the growth over the previous size."""
    out = []
    prev = None
    for r in runs:
        f = r["fleet"]
        time_s = f["build_s"] + f["run_s"] + f["write_s"]
        row = {
            "hosts": r["hosts"], "vms": r["vms"], "events": f["events"], "build_s": f["build_s"],
            "run_s": f["run_s"], "write_s": f["write_s"], "wall_s": r["wall_s"],
            "peak_rss_mib": r["peak_rss_mib"], "ratio": r["ratio"], "time_s": time_s,
            "cpu_s": f["build_cpu_s"] + f["run_cpu_s"] + f["write_cpu_s"],
            "host_growth": None, "time_growth": None, "cpu_growth": None,
        }
        if prev is not None:
            row["host_growth"] = r["hosts"] / prev["hosts"]
            row["time_growth"] = time_s / prev["time_s"] if prev["time_s"] > 0 else None
            row["cpu_growth"] = row["cpu_s"] / prev["cpu_s"] if prev["cpu_s"] > 0 else None
        out.append(row)
        prev = row
    return out


def show(table: list[dict]) -> None:
    head = (f"{'hosts':>7} {'VMs':>8} {'events':>10} {'build_s':>8} {'run_s':>8} {'write_s':>8} "
            f"{'wall_s':>8} {'cpu_s':>8} {'rss_MiB':>8} {'ratio':>7}  growth: time, cpu vs hosts")
    print(head)
    for r in table:
        growth = ""
        if r["host_growth"] is not None and r["time_growth"] is not None:
            growth = f"{r['time_growth']:.1f}x, {r['cpu_growth']:.1f}x vs {r['host_growth']:.1f}x"
        print(f"{r['hosts']:>7} {r['vms']:>8} {r['events']:>10} {r['build_s']:>8.2f} {r['run_s']:>8.2f} "
              f"{r['write_s']:>8.2f} {r['wall_s']:>8.2f} {r['cpu_s']:>8.2f} {r['peak_rss_mib']:>8.0f} {r['ratio']:>7.3f}  {growth}")
    print("time = build_s + run_s + write_s (wall); cpu = the same phases' CPU time; "
          "target: 10x hosts costs <= 12x time")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,3000,10000", help="host counts, comma-separated")
    ap.add_argument("--duration", default=None, help="simulated time (default: the file's, 1y)")
    ap.add_argument("--scenario", default=None, help="fleet scenario (default scenarios/fleet.yaml)")
    ap.add_argument("--json", default=None, help="also write the runs and the table to this file")
    args = ap.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(",") if s.strip())
    runs = []
    for n in sizes:
        print(f"running {n} hosts ...", file=sys.stderr, flush=True)
        runs.append(run_size(n, args.duration, args.scenario))
    table = rows(runs)
    show(table)
    if args.json:
        path = Path(args.json)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"runs": runs, "table": table}, indent=2) + "\n")
        os.replace(tmp, path)


if __name__ == "__main__":
    main()
