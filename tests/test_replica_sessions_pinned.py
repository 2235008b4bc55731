"""One run each of ``scenarios/replica_replacement.yaml`` and ``scenarios/session_clusters.yaml``
pinned (docs/performance.md, "Cost per segment move, replacement and session scan"): work on the
cost of a replacement or a session must leave these figures as they are, to the bit. Each is also
checked against what a closed form gives."""

from __future__ import annotations

import math
from pathlib import Path

from sim.runner import run_scenario
from sim.scenario.loader import load_scenario

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
GiB = 2**30


def _metrics(name: str):
    path = SCENARIOS / name
    return run_scenario(load_scenario(str(path)), source=str(path)).summary()["metrics"]


def test_the_replica_scenario_keeps_its_figures():
    """Every rebuild copies a whole node disk (50 GiB): bytes = rebuilds x 50 GiB exactly, 108 x
    53,687,091,200 = 5,798,205,849,600. Detection is the last heartbeat at or before the failure
    plus 3 missed 1 s intervals (the scenario's heartbeat settings), so every detection lies in (2, 3] s. The counts
    and the availability are the run's as of commit 484ddb9."""
    m = _metrics("replica_replacement.yaml")
    assert m["replication.rebuilds"] == 108
    assert m["replication.rebuild_bytes_total"] == 108 * 50 * GiB == 5_798_205_849_600
    assert 2.0 < m["replication.detection_s_p50"] <= m["replication.detection_s_max"] <= 3.0
    assert (m["replication.failures"], m["replication.replacements"], m["replication.lost"]) == (61, 37, 24)
    assert m["replication.primaries"] == 96
    assert m["replication.availability"] == 0.999650721055385
    assert m["replication.unavailable_s_total"] == 260735.33503932168


def test_the_session_scenario_keeps_its_figures():
    """Offered sessions are Poisson counts: emergency 0.5/s and regular 7.5/s for 7 days, means
    302,400 and 4,536,000, standard deviations sqrt(mean) = 550 and 2,130; the run's lie within 3 of
    them. Offered = carried + blocked in each class. The counts are the run's as of commit 484ddb9."""
    m = _metrics("session_clusters.yaml")
    week = 7 * 86400
    for key, rate in (("sessions.one_to_one.offered", 0.5), ("sessions.n_to_k.offered", 7.5)):
        mean = rate * week
        assert abs(m[key] - mean) <= 3 * math.sqrt(mean)
    for cls in ("one_to_one", "n_to_k"):
        assert m[f"sessions.{cls}.offered"] == m[f"sessions.{cls}.carried"] + m[f"sessions.{cls}.blocked"]
    assert (m["sessions.one_to_one.offered"], m["sessions.n_to_k.offered"]) == (301_871, 4_533_890)
    assert (m["sessions.blocked"], m["sessions.dropped"], m["sessions.failovers"]) == (406, 276, 5)
    assert m["sessions.vm_failures"] == 6
    assert m["sessions.capacity_shortfall_s_total"] == 100.82699999999022
