"""Replica replacement: where the copies of a primary's data are (issue 12 regressions: a disk
failure destroys the copy left on it), the placement rule the mechanism keeps for its VMs, a
promotion mid-rebuild, and heartbeat phases keyed per node."""

from __future__ import annotations

import pytest
from conftest import run
from test_replication import HB, M, built_hosts, scenario

HOUR = 3600.0


def test_a_disk_failure_destroys_the_copy_a_lost_primary_waits_for(tmp_path):
    """Regression (issue 12 §1.2). One primary, no replica, on host H; H crashes at 1 h (repair 2 h) and
    its disk fails at 90 min (repair 4 h: H is back at 5.5 h). By hand:
    - 3,600 s: the primary stops; its data (every write up to 3,600 s) stays on H's disk. Detected
      after d in (I(M−1), IM] = (2, 3] s: no live replica, so it is lost and waits for H.
    - 5,400 s: H's disk fails: the only copy is gone, nothing is worth waiting for. It restarts at
      once on another eligible host with nothing (data as of 0), boots 60 s: serving at 5,460 s.
    data_loss_s = head − data = 3,600 − 0 = 3,600 s; unavailable_s = 5,460 − 3,600 = 1,860 s.
    The old code kept waiting for H (5.5 h + boot) and reported 0 lost."""
    sc = scenario([{"name": "a", "primaries": 1, "replicas": 0}], duration="8h")
    host = built_hosts(run(sc, tmp_path), "a-p")["a-p000"]
    sc["faults"] = [{"kind": "host_crash", "at": "1h", "target": host, "repair": "2h"},
                    {"kind": "disk_failure", "at": "90m", "target": host}]
    out = run(sc, tmp_path)
    r = out.tables["replacements"].set_index("kind")
    lost, restart = r.loc["lost"], r.loc["restart"]
    assert HB * (M - 1) < lost["detection_s"] <= HB * M
    assert restart["to_host"] != host
    assert restart["data_loss_s"] == pytest.approx(3600.0)
    assert restart["unavailable_s"] == pytest.approx(1860.0)
    assert restart["end_s"] == pytest.approx(5460.0)
    assert out.metrics["replication.restart_data_loss_s_total"] == pytest.approx(3600.0)
