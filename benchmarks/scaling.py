"""How the fleet year scales with the number of hosts (docs/performance.md).

Runs ``dcsim bench --hosts N`` for each size in a fresh subprocess (so each size's peak memory
is its own), smallest first; VMs and every mechanism's population scale with the hosts
(``sim.bench.scale_fleet``), everything the fleet file switches on stays on. Prints one row
per size (hosts, VMs, events, build/run/write seconds, CPU seconds, peak memory, events/s,
the fleet's time over the bare loop's, and the growth of time over the previous size next to
the growth of hosts), and writes:

- ``--json`` (default ``scaling.json``): every size's full ``dcsim bench`` figures and the table;
- ``--csv`` (default ``scaling.csv``): the table;
- ``--png`` (default ``docs/img/scaling.png``): time and peak memory against hosts, log-log,
  with a linear reference line through the smallest size (``--no-plot`` skips it).

The files are rewritten after every size, so an interrupted run keeps the sizes it finished;
``--merge`` first reads the sizes already in ``--json`` and replaces only those it runs again
(run 100,000 hosts on its own, then plot all of them). ``--plot-only`` redraws from ``--json``.

    .venv/bin/python benchmarks/scaling.py                              # 1k, 3k, 10k, 30k, 100k hosts
    .venv/bin/python benchmarks/scaling.py --sizes 1000,3000,10000
    nohup .venv/bin/python benchmarks/scaling.py --sizes 100000 --merge &   # add the largest later
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = "1000,3000,10000,30000,100000"
COLUMNS = ("hosts", "vms", "vms_total", "events", "build_s", "run_s", "write_s", "time_s", "cpu_s", "peak_rss_mib",
           "events_per_s", "events_per_cpu_s", "ratio", "ratio_cpu", "wall_s", "host_growth", "time_growth", "cpu_growth")


def run_size(hosts: int, duration: str | None, scenario: str | None) -> dict:
    """One ``dcsim bench`` in a subprocess; its JSON figures."""
    with tempfile.TemporaryDirectory(prefix="dcsim-scaling-") as tmp:
        out = Path(tmp) / "bench.json"
        cmd = [sys.executable, "-m", "sim.cli", "bench", "--hosts", str(hosts), "--quiet", "--json", str(out)]
        if duration:
            cmd += ["--duration", duration]
        if scenario:
            cmd += ["--scenario", scenario]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))))
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise SystemExit(f"dcsim bench --hosts {hosts} failed ({proc.returncode}):\n{proc.stderr}")
        return json.loads(out.read_text())


def rows(runs: list[dict]) -> list[dict]:
    """The table: one row per size, smallest first, with the growth over the previous size.
    time_s = build + run + write (wall), cpu_s = the same phases' CPU time."""
    out = []
    prev = None
    for r in sorted(runs, key=lambda r: r["hosts"]):
        f = r["fleet"]
        row = {
            "hosts": r["hosts"], "vms": r["vms"], "vms_total": r.get("vms_total", r["vms"]), "events": f["events"],
            "build_s": f["build_s"], "run_s": f["run_s"], "write_s": f["write_s"],
            "time_s": f["build_s"] + f["run_s"] + f["write_s"],
            "cpu_s": f["build_cpu_s"] + f["run_cpu_s"] + f["write_cpu_s"],
            "peak_rss_mib": r["peak_rss_mib"], "events_per_s": f["events_per_s"],
            "events_per_cpu_s": f["events"] / f["run_cpu_s"] if f["run_cpu_s"] > 0 else None,
            "ratio": r["ratio"], "ratio_cpu": r.get("ratio_cpu"), "wall_s": r["wall_s"],
            "host_growth": None, "time_growth": None, "cpu_growth": None,
        }
        if prev is not None:
            row["host_growth"] = row["hosts"] / prev["hosts"]
            row["time_growth"] = row["time_s"] / prev["time_s"] if prev["time_s"] > 0 else None
            row["cpu_growth"] = row["cpu_s"] / prev["cpu_s"] if prev["cpu_s"] > 0 else None
        out.append(row)
        prev = row
    return out


def show(table: list[dict]) -> None:
    print(f"{'hosts':>7} {'VMs':>9} {'events':>10} {'build_s':>8} {'run_s':>8} {'write_s':>8} {'cpu_s':>8} "
          f"{'rss_MiB':>8} {'events/s':>9} {'ev/CPU-s':>9} {'ratio':>6}  growth: time, cpu vs hosts")
    for r in table:
        growth = ""
        if r["host_growth"] is not None and r["time_growth"] is not None and r["cpu_growth"] is not None:
            growth = f"{r['time_growth']:.1f}x, {r['cpu_growth']:.1f}x vs {r['host_growth']:.1f}x"
        print(f"{r['hosts']:>7} {r['vms']:>9} {r['events']:>10} {r['build_s']:>8.2f} {r['run_s']:>8.2f} "
              f"{r['write_s']:>8.2f} {r['cpu_s']:>8.2f} {r['peak_rss_mib']:>8.0f} {r['events_per_s']:>9.0f} "
              f"{r['events_per_cpu_s'] or 0:>9.0f} {r['ratio']:>6.1f}  {growth}")
    print("time = build + run + write (wall), cpu = the same phases' CPU time; ratio = (build + run) wall time "
          "over the bare loop's")


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_csv(path: Path, table: list[dict]) -> None:
    with tempfile.NamedTemporaryFile("w", newline="", dir=path.parent or ".", delete=False, suffix=".tmp") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(table)
    os.replace(fh.name, path)


def plot(table: list[dict], path: Path, title: str) -> None:
    """Time (wall and CPU of build + run + write) and peak memory against hosts, log-log, each with
    a dashed line proportional to hosts through the smallest size's point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    hosts = [r["hosts"] for r in table]
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(10, 4.2), constrained_layout=True)
    for ax, series, ref, ylabel in (
        (ax_t, (("time_s", "wall s", "o-"), ("cpu_s", "CPU s", "s-")), "cpu_s", "seconds (build + run + write)"),
        (ax_m, (("peak_rss_mib", "peak RSS", "o-"),), "peak_rss_mib", "peak memory (MiB)"),
    ):
        for key, label, style in series:
            ax.plot(hosts, [r[key] for r in table], style, label=label)
        first = table[0][ref]
        ax.plot(hosts, [first * h / hosts[0] for h in hosts], "k--", lw=1,
                label=f"linear in hosts from the smallest {'CPU s' if ref == 'cpu_s' else 'size'}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1000:g}k" if x >= 1000 else f"{x:g}"))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda y, _: ""))
        ax.set_xlabel("hosts (10 VMs each)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    for r in table:
        if r["events_per_cpu_s"]:
            ax_t.annotate(f"{r['events_per_cpu_s'] / 1000:.0f}k events/CPU s", (r["hosts"], r["cpu_s"]),
                          textcoords="offset points", xytext=(6, -10), fontsize=7)
    fig.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=SIZES, help=f"host counts, comma-separated (default {SIZES})")
    ap.add_argument("--duration", default=None, help="simulated time (default: the file's, 1y)")
    ap.add_argument("--scenario", default=None, help="fleet scenario (default scenarios/fleet.yaml)")
    ap.add_argument("--json", default="scaling.json", help="every size's figures and the table")
    ap.add_argument("--csv", default="scaling.csv", help="the table")
    ap.add_argument("--png", default=str(ROOT / "docs" / "img" / "scaling.png"), help="the plot")
    ap.add_argument("--no-plot", action="store_true", help="do not draw the plot")
    ap.add_argument("--merge", action="store_true", help="keep the sizes already in --json that are not rerun")
    ap.add_argument("--plot-only", action="store_true", help="redraw the table and plot from --json, run nothing")
    args = ap.parse_args(argv)
    json_path, csv_path, png_path = Path(args.json), Path(args.csv), Path(args.png)

    runs: dict[int, dict] = {}
    if (args.merge or args.plot_only) and json_path.exists():
        runs = {r["hosts"]: r for r in json.loads(json_path.read_text())["runs"]}
    sizes = [] if args.plot_only else sorted({int(s) for s in args.sizes.split(",") if s.strip()})

    def save() -> list[dict]:
        table = rows(list(runs.values()))
        _atomic_write(json_path, json.dumps({"runs": [runs[h] for h in sorted(runs)], "table": table}, indent=2) + "\n")
        write_csv(csv_path, table)
        return table

    for n in sizes:
        print(f"running {n} hosts ...", file=sys.stderr, flush=True)
        runs[n] = run_size(n, args.duration, args.scenario)
        save()
    if not runs:
        raise SystemExit(f"no sizes to show (ran none, and {json_path} has none)")
    table = save()
    show(table)
    if not args.no_plot:
        first = runs[min(runs)]
        v = first.get("versions", {})
        title = (f"dcsim fleet year, {first['duration_s'] / 86400:.0f} simulated days, one process per size "
                 f"(python {v.get('python', '?')}, simpy {v.get('simpy', '?')})")
        plot(table, png_path, title)
        print(f"plot: {png_path}")


if __name__ == "__main__":
    main()
