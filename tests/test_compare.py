"""dcsim compare: paired seeds, compare.parquet, and the expected sign on a mechanism switched off."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import write_yaml
from typer.testing import CliRunner

from sim.cli import app
from sim.experiments.compare import compare_design, default_folder, run_compare
from sim.experiments.stats import paired_table

COLUMNS = ["metric", "a_mean", "b_mean", "diff_mean", "diff_ci95_low", "diff_ci95_high", "n", "flag"]


def memory_fleet() -> dict:
    """16 hosts, 80 VMs, error-prone DIMMs with 60x the field uncorrectable rate: ~10 errors in 90 days."""
    return {
        "name": "mem-small", "seed": 3, "duration": "90d",
        "infrastructure": {
            "host_profiles": {"std": {"cores": 64, "memory": "512GiB", "dimms": 16, "nic": "25Gbps",
                                      "reserved_memory": "16GiB", "boot_time": "3m"}},
            "sites": [{"name": "east", "broadcast_domains": [
                {"name": "bd1", "hosts": 8, "profile": "std", "uplink": "100Gbps"},
                {"name": "bd2", "hosts": 8, "profile": "std", "uplink": "100Gbps"}]}],
        },
        "clusters": [{"name": "c1", "hosts": ["east/*"], "image": {"base": "8.0.2"}}],
        "workloads": [{"name": "web", "count": 80, "vm": {"vcpus": 4, "memory": "16GiB", "disk": "100GiB",
                                                          "dirty_rate": "40MB/s", "working_set": "2GiB"}}],
        "faults": [{"kind": "dimm_errors", "error_prone_fraction": 0.5, "correctable_per_dimm_year": 4,
                    "uncorrectable_per_dimm_year": 0.05, "uncorrectable_after_correctable": 10}],
        "mechanisms": {"live_migration": {"mode": "precopy"},
                       "memory_error_evacuation": {"guest_crash_probability": 0.5, "target_hosts": "same_cluster"}},
    }


@pytest.fixture(scope="module")
def evacuation_off(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cmp")
    path = write_yaml(tmp / "mem.yaml", memory_fleet())
    r = CliRunner().invoke(app, ["compare", str(path), "--set", "mechanisms.memory_error_evacuation.enabled=false",
                                 "--replications", "4", "--out", str(tmp / "out"), "--workers", "1"])
    assert r.exit_code == 0, r.output
    return tmp / "out", r.output


def test_evacuation_off_crashes_more_vms(evacuation_off):
    out, printed = evacuation_off
    table = pd.read_parquet(out / "compare.parquet")
    assert list(table.columns) == COLUMNS
    row = table.set_index("metric").loc["memory_errors.vms_crashed"]
    assert row["n"] == 4
    assert row["diff_mean"] == pytest.approx(row["b_mean"] - row["a_mean"])
    assert row["diff_ci95_low"] > 0  # B (evacuation off) crashes more VMs; the interval excludes 0
    evac = table.set_index("metric").loc["memory_errors.vms_evacuated"]
    assert evac["b_mean"] == 0 and evac["diff_ci95_high"] < 0
    assert "memory_errors.vms_crashed" in printed and "B − A" in printed


def test_compare_folder_pairs_seeds(evacuation_off):
    out, _ = evacuation_off
    runs = pd.read_parquet(out / "runs.parquet")
    assert list(runs["run_id"]) == [f"p000{p}-r0{r}" for p in (0, 1) for r in range(4)]
    a = runs[runs["point_id"] == "p0000"].set_index("seed")
    b = runs[runs["point_id"] == "p0001"].set_index("seed")
    assert list(a.index) == list(b.index) == [3, 4, 5, 6]
    # the DIMM error streams are the mechanism's neighbours, not its own: the same errors on both sides
    assert (a["memory_errors.uncorrectable"] == b["memory_errors.uncorrectable"]).all()
    assert list(runs["mechanisms.memory_error_evacuation.enabled"]) == [True] * 4 + [False] * 4
    # by hand: the paired interval of the crashed VMs
    d = (b["memory_errors.vms_crashed"] - a["memory_errors.vms_crashed"]).to_numpy()
    half = 3.182446305284263 * d.std(ddof=1) / math.sqrt(4)  # t(0.975, df=3)
    row = pd.read_parquet(out / "compare.parquet").set_index("metric").loc["memory_errors.vms_crashed"]
    assert row["diff_ci95_low"] == pytest.approx(d.mean() - half)
    assert row["diff_ci95_high"] == pytest.approx(d.mean() + half)


def test_paired_table_with_missing_metric():
    a = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [np.nan, 1.0, 1.0]}, index=[0, 1, 2])
    b = pd.DataFrame({"x": [2.0, 4.0, 6.0], "y": [1.0, 1.0, 1.0]}, index=[0, 1, 2])
    t = paired_table(a, b, ["x", "y", "z"]).set_index("metric")
    assert t.loc["x", "diff_mean"] == 2.0 and t.loc["x", "n"] == 3
    # y: both seeds differ by exactly 0: flagged, no [0, 0] interval that would look certain
    assert t.loc["y", "n"] == 2 and t.loc["y", "flag"] == "all_equal"
    assert np.isnan(t.loc["y", "diff_ci95_low"]) and np.isnan(t.loc["y", "diff_ci95_high"])
    assert t.loc["z", "n"] == 0 and math.isnan(t.loc["z", "diff_mean"])


def test_default_folder_under_results(tmp_path):
    path = write_yaml(tmp_path / "s.yaml", {**memory_fleet(), "duration": "5d"})
    design = compare_design(path, ["workloads.0.count=40"], replications=1)
    result, table = run_compare(design, root=tmp_path / "results", workers=1)
    assert result.path.parent == tmp_path / "results" / "mem-small"
    assert result.path.name.startswith("compare-") and (result.path / "compare.parquet").is_file()
    assert table.set_index("metric").loc["vms.count", "diff_mean"] == -40
    assert default_folder("mem-small", tmp_path / "results") != result.path
