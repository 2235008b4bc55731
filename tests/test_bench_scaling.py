"""benchmarks/scaling.py's table and files from injected bench figures (no run, no wall time)."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _scaling():
    spec = importlib.util.spec_from_file_location("scaling", ROOT / "benchmarks" / "scaling.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _figures(hosts, build, run, write, cpu, rss):
    return {"hosts": hosts, "vms": 10 * hosts, "vms_total": 10 * hosts + 5, "duration_s": 86400.0,
            "fleet": {"events": 100 * hosts, "build_s": build, "run_s": run, "write_s": write,
                      "build_cpu_s": cpu[0], "run_cpu_s": cpu[1], "write_cpu_s": cpu[2],
                      "events_per_s": 100 * hosts / run},
            "ratio": (build + run) / 0.5, "ratio_cpu": (cpu[0] + cpu[1]) / 0.5, "peak_rss_mib": rss, "wall_s": 0.0,
            "versions": {"python": "3", "simpy": "4"}}


def test_rows_by_hand():
    """1,000 hosts: time 1 + 8 + 1 = 10 s, CPU 0.5 + 4 + 0.5 = 5 s. 10,000 hosts: time 10 + 85 + 5 =
    100 s (10x), CPU 5 + 40 + 5 = 50 s (10x), hosts 10x; rows sorted by hosts whatever the input order."""
    s = _scaling()
    table = s.rows([_figures(10_000, 10, 85, 5, (5, 40, 5), 900), _figures(1000, 1, 8, 1, (0.5, 4, 0.5), 300)])
    small, big = table
    assert (small["hosts"], small["time_s"], small["cpu_s"], small["host_growth"]) == (1000, 10, 5, None)
    assert (big["time_s"], big["cpu_s"]) == (100, 50)
    assert (big["host_growth"], big["time_growth"], big["cpu_growth"]) == pytest.approx((10, 10, 10))
    assert big["events_per_s"] == pytest.approx(1_000_000 / 85)


def test_plot_only_writes_the_table_and_the_plot_from_saved_runs(tmp_path):
    """--plot-only reads --json and writes the CSV (one row per size, smallest first) and a PNG."""
    s = _scaling()
    runs = [_figures(3000, 3, 20, 1, (2, 12, 1), 400), _figures(1000, 1, 8, 1, (0.5, 4, 0.5), 300)]
    (tmp_path / "s.json").write_text(json.dumps({"runs": runs}))
    s.main(["--plot-only", "--json", str(tmp_path / "s.json"), "--csv", str(tmp_path / "s.csv"),
            "--png", str(tmp_path / "s.png")])
    with open(tmp_path / "s.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["hosts"]) for r in rows] == [1000, 3000]
    assert float(rows[1]["cpu_s"]) == pytest.approx(15.0)
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
