"""The figures of scenarios/backup_catalog.yaml, pinned: the closed forms that hold for its schedule,
and the run's exact figures as the reference for work on the workload manager's hot path (the
per-stream bookkeeping may change; the numbers may not).

The scenario: 12 db VMs (2 TiB disks, policy 0, change 5 %) and 60 web VMs (100 GiB, policy 1,
change 2 %) backed up to one vault (write 3 GB/s, 16 streams) for 30 days, weekly fulls and daily
incrementals, retention 14; the vault is down from 8d 00:05 to 8d 02:05, db-003 crashes at 8d 01:00.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sim.runner import run_scenario
from sim.scenario.loader import load_scenario

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "backup_catalog.yaml"
GIB, TIB = 2**30, 2**40
DAY = 86400.0


@pytest.fixture(scope="module")
def out():
    return run_scenario(load_scenario(str(SCENARIO)))


def digest(backups) -> str:
    """The backups table in its row order (the order backups ended), rounded to 1e-6 s and 1e-3
    bytes: it changes if any backup starts, ends or moves a different number of bytes."""
    h = hashlib.sha256()
    for r in backups[["vm", "kind", "time_s", "end_s", "bytes", "outcome"]].itertuples(index=False):
        h.update(f"{r.vm}|{r.kind}|{r.time_s:.6f}|{r.end_s:.6f}|{r.bytes:.3f}|{r.outcome};".encode())
    return h.hexdigest()[:16]


def test_counts_follow_the_schedule_and_retention(out):
    """One point per VM per day: 72 x 30 = 2,160 completed backups and catalog rows. At the end each
    VM keeps its newest 14 points (days 16-29) and the chain they need back to the day-14 full:
    16 points, 72 x 16 = 1,152 kept."""
    m = out.metrics
    assert m["backup.count"] == 72 * 30
    assert len(out.tables["catalog"]) == 72 * 30
    assert m["catalog.points"] == 72 * 16


def test_the_first_night_runs_in_policy_order_then_vm_order(out):
    """At t = 0 the 16 streams go to policy 0's 12 db VMs, then the first 4 web VMs (policy 1);
    each web full moves 100 GiB at the vault's 3 GB/s / 16: 100 x 2^30 / 1.875e9 = 572.662 s."""
    b = out.tables["backups"]
    first = b[b["time_s"] == 0.0]
    assert sorted(first["vm"]) == [f"db-{i:03d}" for i in range(12)] + [f"web-{i:03d}" for i in range(4)]
    web0 = b[(b["vm"] == "web-000") & (b["time_s"] == 0.0)].iloc[0]
    assert web0["end_s"] == pytest.approx(100 * GIB / (3e9 / 16), rel=1e-9)


def test_the_outage_fails_the_db_incrementals_running_and_rpo_grows(out):
    """Day 8's run queues the 12 db incrementals first (policy 0): they run when the vault fails at
    8d 00:05, 300 s in, and fail (12 failed rows, none recorded as points). db-003 crashes at
    8d 01:00, before the retry at the repair: its newest point is day 7's full, RPO = 8d 1h - 7d
    = 90,000 s exactly."""
    b = out.tables["backups"]
    failed = b[b["outcome"] == "failed"]
    assert out.metrics["backup.failed"] == 12
    assert sorted(failed["vm"]) == [f"db-{i:03d}" for i in range(12)]
    assert (failed["time_s"] == 8 * DAY).all() and (failed["duration_s"] == 300.0).all()
    assert (failed["cause"] == "StorageDown").all()
    rpo = out.tables["backup_rpo"]
    at = rpo[(rpo["vm"] == "db-003") & (rpo["time_s"] == 8 * DAY + 3600)].iloc[0]
    assert at["point_s"] == 7 * DAY and at["rpo_s"] == 90000.0


def test_the_runs_figures_are_pinned(out):
    """The exact figures of this run (seed 11), computed before the hot path was reworked (commit
    bcd5e77). Incremental sizes depend on each VM's start time in the queue, restore times on the
    points chosen, so a change to the queue order, the retry rule or retention moves them."""
    m = out.metrics
    assert digest(out.tables["backups"]) == "344a65d87fdf776b"
    assert m["backup.bytes_total"] == pytest.approx(200330928245359.78, rel=1e-12)
    assert m["catalog.bytes"] == pytest.approx(117302029656127.89, rel=1e-12)
    assert m["backup.duration_s_mean"] == pytest.approx(458.1731850266151, rel=1e-12)
    assert m["backup.duration_s_max"] == pytest.approx(10943.576670208247, rel=1e-12)
    assert m["backup.rpo_s_mean"] == pytest.approx(46259.487819592934, rel=1e-12)
    assert m["backup.rpo_s_max"] == 90000.0
    assert m["restore.time_s_max"] == pytest.approx(6657.06976665603, rel=1e-12)
    assert m["instantiate.time_s_max"] == pytest.approx(1670.612735999981, rel=1e-12)
    assert m["migrate_workload.time_s_max"] == pytest.approx(5213.995755199809, rel=1e-12)
