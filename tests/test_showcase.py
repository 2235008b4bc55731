"""The showcase (``scenarios/datacenter.yaml``, what ``make demo`` runs): it validates, every mechanism it
enables does something in a shortened run, with counts checked against hand counts from the file, and
its terminal summary fits one screen. Also the ``said`` hook that writes each mechanism's line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from sim import readout
from sim.cli import app
from sim.mechanisms.base import Mechanism
from sim.mechanisms.registry import REGISTRY
from sim.metrics.meta import Metric, expand

ROOT = Path(__file__).resolve().parent.parent
SHOWCASE = ROOT / "scenarios" / "datacenter.yaml"
DOC = yaml.safe_load(SHOWCASE.read_text())
DAYS = 14  # the shortened run: past the first charging evaluation (7 d), the new image (10 d), the rack outage (12.5 d)
DAY = 86400.0


def _bad_batch() -> int:
    """Index of the DIMM fault entry of the bad batch (east/bd3)."""
    return next(i for i, f in enumerate(DOC["faults"]) if f["kind"] == "dimm_errors" and f["hosts"] == ["east/bd3/*"])


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """The showcase for 14 days through the CLI, the bad DIMM batch's uncorrectable rate raised from
    0.016 to 0.5 per DIMM-year (the quarter sees ~2 evacuations; two weeks would likely see none)."""
    here = tmp_path_factory.mktemp("showcase")
    with pytest.MonkeyPatch.context() as mp:  # the default folder, as `make demo` writes it
        mp.chdir(here)
        r = CliRunner().invoke(app, ["run", str(SHOWCASE), "--set", f"duration={DAYS}d",
                                     "--set", f"faults.{_bad_batch()}.uncorrectable_per_dimm_year=0.5"])
    assert r.exit_code == 0, r.output
    out = next((here / "results" / "datacenter").glob("2*"))
    metrics = json.loads((out / "summary.json").read_text())["metrics"]
    return r.output.splitlines(), metrics


def test_the_showcase_validates():
    r = CliRunner().invoke(app, ["check", str(SHOWCASE)])
    assert r.exit_code == 0, r.output
    assert "name: datacenter" in r.output


def test_the_showcase_enables_every_registered_mechanism():
    assert readout.enabled_mechanisms(DOC["mechanisms"]) == set(REGISTRY.classes)


def test_backups_and_snapshots_match_the_hand_count(short_run):
    """workload_manager: db (12 VMs) and web (120) each back up once a day (a full every 7th day, an
    incremental on the others), the first at t=0: runs at 0, 1, ..., 13 d, 14 per VM, so
    132 x 14 = 1,848 backups, each one catalog point (retention 14 keeps them all).
    snapshot_discovery: 8 array databases + 4 ZFS pools are tagged (the 8 ext4 volumes are not; the 2 late
    pools are created on day 29, after the run), one backup a day from t=0: 12 x 14 = 168 snapshots."""
    _, m = short_run
    assert m["backup.count"] == 132 * DAYS
    assert m["catalog.points"] == 132 * DAYS
    assert (m["snapshot.resources"], m["snapshot.tagged"], m["snapshot.snapshots"]) == (20, 12, 12 * DAYS)


def test_sessions_offered_match_the_poisson_rates(short_run):
    """Sessions arrive as Poisson streams of 0.01/s (emergency) and 0.03/s (regular): over 14 days the
    count is Poisson with mean 0.04 x 14 x 86,400 = 48,384, sd 220; within 4 sd."""
    _, m = short_run
    mean = 0.04 * DAYS * DAY
    assert abs(m["sessions.offered"] - mean) < 4 * math.sqrt(mean)
    assert m["sessions.failovers"] > 0  # the rack outage on day 12 takes VMs of both clusters


def test_charging_moves_one_api_vm_into_each_west_rack(short_run):
    """At the first evaluation (7 d) every api VM (8 vCPU, 32 GiB, packed in east) would save
    8 x (0.040 - 0.032) + 32 x (0.005 - 0.004) = 0.096 per hour in eu-west; a week of it (16.1) beats the
    egress of its 32 GiB + 100 GiB (141.7 GB x 0.02 = 2.83): 6 proposals. The api VMs are likely
    redundant (same name stem and shape), so at most one goes to each of the 2 west racks: 2 moves,
    saving 2 x 0.096 = 0.192 per hour. The next evaluation (14 d) is the end of the run."""
    _, m = short_run
    assert m["charging.proposals"] == 6
    assert m["charging.migrations"] == 2
    assert m["charging.savings_per_h_total"] == pytest.approx(2 * 0.096)


def test_remediation_rolls_the_new_prod_image(short_run):
    """The prod image published on day 10 makes its 30 hosts and the standalone host derived from it
    non-compliant: at least 31 remediations by day 14 (drifted hosts add more)."""
    _, m = short_run
    assert m["remediation.hosts_remediated"] >= 31
    assert m["remediation.scans"] == DAYS * 24  # hourly


def test_roaming_moves_and_retrievals_match_their_rates(short_run):
    """5 files x 8 segments roam every 6 h (+-20 %, uniform): about 14 x 4 = 56 moves per segment, a
    move or two fewer where a retrieval held the file, so 40 x 54 .. 40 x 56. Retrievals are Poisson
    at 2 a day per file: mean 5 x 2 x 14 = 140, sd 11.8; within 4 sd."""
    _, m = short_run
    assert 40 * 54 <= m["roaming.moves"] <= 40 * 56
    assert abs(m["roaming.retrievals"] - 140) < 4 * math.sqrt(140)
    assert m["roaming.exposure_max"] == pytest.approx(1 / 8)  # one segment of 8 per location


def test_replication_and_evacuation_act(short_run):
    """The rack outage fails over the primaries it holds (a replica lives in another rack, so none is
    lost); the bad DIMM batch's uncorrectable errors evacuate VMs by live migration."""
    _, m = short_run
    assert m["replication.primaries"] == 24
    assert m["replication.replacements"] >= 1 and m["replication.lost"] == 0
    assert m["memory_errors.uncorrectable"] >= 1 and m["memory_errors.vms_evacuated"] >= 1
    assert m["migration.count"] >= 1 + m["charging.migrations"] + m["memory_errors.vms_evacuated"]


def test_the_summary_fits_one_screen_with_a_line_per_mechanism(short_run):
    lines, m = short_run
    assert len(lines) <= 40, "\n".join(lines)
    assert max(len(ln) for ln in lines) <= 80, max(lines, key=len)
    for key in REGISTRY.classes:
        line = next(ln for ln in lines if ln.startswith(f"  {key} "))
        assert readout.NOTHING not in line, line
    assert f"  {'charging':<25}cost " in "\n".join(lines)
    assert "2 moves save 0.19 USD/h" in "\n".join(lines)


# --------------------------------------------------------------------------- said()
class Widgets(Mechanism):
    key = "widgets"
    metrics = (Metric("widgets.count", "count", "widgets made"),
               Metric("widgets.idle", "count", "widgets idle"),
               Metric("widgets.bytes_total", "bytes", "bytes the widgets moved"),
               Metric("widgets.wait_s_*", "s", "wait of one widget", False, headline=True),
               Metric("widgets.share", "fraction", "share of widgets late", False, headline=True))


def test_default_said_leads_with_the_count_then_the_headline_metrics():
    """Count first ("3 widgets"), then the headline metrics (statistics as their maximum only: 90 s =
    1.5 min; a share as a percentage), then the others that are not zero (1,536 bytes = 1.5 KiB);
    widgets.idle is 0 and other areas' metrics are not its own."""
    run = {"widgets.idle": 0, "widgets.bytes_total": 1536.0, "widgets.wait_s_mean": 60.0,
           "widgets.wait_s_p50": 55.0, "widgets.wait_s_max": 90.0, "widgets.share": 0.25, "widgets.count": 3,
           "other.count": 7}
    assert Widgets.said(run, expand(Widgets.metrics)) == "3 widgets, wait max 1.5 min, share 25 %, bytes total 1.5 KiB"


def test_default_said_is_none_when_nothing_happened():
    assert Widgets.said({"widgets.count": 0, "widgets.idle": 0}, expand(Widgets.metrics)) is None


def _said(key: str, metrics: dict) -> str:
    return REGISTRY.classes[key].said(metrics, REGISTRY.metric_info())


def test_evacuation_states_the_restarts_it_saved():
    """Without evacuation the host crashes and every VM on it restarts: (6 evacuated + 1 crashed) x the
    run's mean restart of 90 s = 630 s, minus the 30 s the errors did cost = 600 s = 10 min."""
    m = {"memory_errors.uncorrectable": 2, "memory_errors.vms_evacuated": 6, "memory_errors.vms_crashed": 1,
         "memory_errors.vm_downtime_s_total": 30.0, "restarts.downtime_s_mean": 90.0}
    assert _said("memory_error_evacuation", m) == "6 VMs evacuated, saving ~10 min down, 1 crashed, 2 uncorrectable errors"
    m = {"memory_errors.uncorrectable": 0, "memory_errors.correctable": 5}
    assert _said("memory_error_evacuation", m) == "5 correctable errors, no uncorrectable"


def test_mechanism_sentences_from_hand_made_metrics():
    assert _said("roaming_storage", {"roaming.exposure_max": 0.125, "roaming.lost_files": 1, "roaming.retrievals": 9,
                                     "roaming.moves": 1200}) == \
        "exposure 12.5 % (100 % without), 1 file lost, 9 retrievals, 1,200 moves"
    assert _said("charging", {"charging.cost_total": 1234.5, "charging.migrations": 2,
                              "charging.savings_per_h_total": 0.192, "charging.proposals": 6}) == \
        "cost 1,234.50 USD, 2 moves save 0.19 USD/h"
    assert _said("charging", {"charging.cost_total": 10.0, "charging.proposals": 6}) == \
        "cost 10.00 USD, 6 cheaper moves proposed"
    assert _said("replication", {"replication.failures": 3, "replication.replacements": 3,
                                 "replication.unavailable_s_mean": 2.5, "replication.lost": 0,
                                 "replication.data_loss_s_total": 0.3}) == \
        "3 failovers in 2.5 s (mean), 0 lost, 300 ms of writes lost"
    assert _said("sessions", {"sessions.offered": 1000, "sessions.blocking_probability": 0.012,
                              "sessions.dropped": 4, "sessions.failovers": 2}) == \
        "1,000 sessions, 1.2 % blocked, 4 dropped, 2 failovers"
    assert _said("snapshot_discovery", {"snapshot.resources": 22, "snapshot.tagged": 14, "snapshot.snapshots": 98,
                                        "snapshot.app_impact_s_total": 7200.0}) == \
        "14 of 22 tagged, 98 snapshots, app impact 2 h"
    assert _said("live_migration", {"migration.count": 2, "migration.downtime_s_mean": 0.1,
                                    "migration.downtime_s_max": 0.3, "migration.bytes_total": 2 * 1024.0**3,
                                    "migration.failed": 1}) == \
        "2 migrations, pause 100 ms mean / 300 ms max, 2 GiB sent, 1 failed"
    assert _said("sessions", {"sessions.offered": 0}) is None


def test_a_long_sentence_is_cut_at_a_clause_and_none_reads_nothing_to_do():
    """The roaming sentence below is 27 + 83 columns (key column 2 + 23 + 2, from memory_error_evacuation):
    the summary keeps the clauses that fit 80 columns with ", ..." (27 + 45 + 5 = 77; one more clause,
    ", 680 retrievals", would need 16 more); sessions with nothing offered say nothing, which reads as such."""
    import pandas as pd

    m = {"roaming.exposure_max": 0.125, "roaming.lost_files": 2, "roaming.retrievals": 680,
         "roaming.moves": 10373, "sessions.offered": 0}
    view = readout.RunView("x", 1, 86400.0, 10, 0.1, m, pd.DataFrame(columns=["subject", "cause", "downtime_s"]),
                           {"roaming_storage", "sessions", "memory_error_evacuation"}, "out")
    lines = readout.run_lines(view)
    roam = next(ln for ln in lines if ln.startswith("  roaming_storage "))
    assert roam == f"  {'roaming_storage':<25}exposure 12.5 % (100 % without), 2 files lost, ..."
    assert len(roam) <= 80
    assert next(ln for ln in lines if ln.startswith("  sessions ")).endswith(readout.NOTHING)


def test_data_protection_sentences_from_hand_made_metrics():
    """Prioritised restores: usable after the boot + system prefix (10 % of a 100 GB disk at 0.5 GB/s =
    20 s + 60 s provisioning = 80 s), restored after 260 s; live recovery: 90 s to serve, 102 s degraded."""
    assert _said("backup_priority", {"restore.time_to_usable_s_max": 80.0, "restore.time_s_max": 260.0}) == \
        "usable after 1.33 min, restored after 4.33 min (max)"
    assert _said("backup_priority", {}) is None  # no restore in the run
    assert _said("live_recovery", {"recovery.count": 1, "recovery.open": 0, "recovery.time_to_service_s_max": 90.0,
                                   "recovery.degraded_s_max": 102.0, "recovery.data_lost_bytes_total": 0.0}) == \
        "1 recovery, serving after 1.5 min, 0 B lost, 1.7 min on the backup"
    assert _said("live_recovery", {"recovery.count": 0, "recovery.open": 0}) is None


def test_prioritised_restore_and_live_recovery_act(short_run):
    """The restore of the 12 databases (500 GiB disks) on day 9 has the vault to itself (the night's
    backups ended hours before): provisioning 60 s, then every VM's blocks at the vault's 4 GB/s read.
    Usable once the boot (2 %) and system (8 %) blocks of all 12 arrived: 60 + 12 x 0.1 x 500 GiB /
    4 GB/s = 221.06 s; restored at 60 + 12 x 500 GiB / 4 GB/s = 1,670.6 s. The recovery of db-000 on
    day 12 stops it by operation (no detection): it serves after mount 30 s + its 3 min boot = 210 s,
    and loses no written byte."""
    _, m = short_run
    disk = 500 * 2**30
    assert m["restore.time_to_usable_s_max"] == pytest.approx(60 + 12 * 0.1 * disk / 4e9, rel=1e-6)
    assert m["restore.time_s_max"] == pytest.approx(60 + 12 * disk / 4e9, rel=1e-6)
    assert m["recovery.count"] == 1 and m["recovery.data_lost_bytes_total"] == 0
    assert m["recovery.time_to_service_s_max"] == pytest.approx(30 + 180)
