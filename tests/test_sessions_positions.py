"""Session clusters: who serves a position after overlapping failures (regressions of issue 12),
the placement rule the mechanism keeps for its VMs, and the exact least-loaded choice."""

from __future__ import annotations

import pytest
from conftest import base_scenario, load
from test_sessions import arrivals, rows

from sim.runner import Simulation

HOUR = 3600.0


def three_hosts(**overrides) -> dict:
    """Three domains of one host each (east/bd1/h00, east/bd2/h00, east/bd3/h00), no workload."""
    sc = base_scenario(workloads=[], **overrides)
    sc["infrastructure"]["sites"][0]["broadcast_domains"] = [
        {"name": f"bd{i}", "hosts": 1, "profile": "std", "uplink": "100Gbps"} for i in (1, 2, 3)]
    return sc


def one_pair(faults, *, duration="6h", failover="600s") -> dict:
    sc = three_hosts(duration=duration, faults=list(faults))
    sc["mechanisms"] = {"sessions": {"clusters": [
        {"name": "voice", "redundancy": "1:1", "active": 1, "capacity": 100_000, "hosts": ["east/*"],
         "failover_time": failover}],
        "session_types": [{"name": "calls", "rate": 1, "mean_holding": "60s", "require": "1:1"}]}}
    return sc


def test_a_returned_vm_takes_over_when_its_partner_stops_during_the_takeover(tmp_path):
    """Regression (issue 12 §1.1): the other VM of a 1:1 pair, back and idle, must take a short position.

    voice-000 (active) on east/bd1/h00, voice-001 (its backup) on east/bd2/h00 (another domain),
    east/bd3/h00 empty; failover_time 600 s, detection 30 s, boot 60 s, repair 4 h.
    - 3,600 s: bd1/h00 crashes. The position stops serving; voice-001 starts its takeover (due at
      4,200 s). voice-000 restarts after detection: placed at 3,630 s on the only host up that is not
      its partner's (bd3/h00), running at 3,690 s; the takeover is under way, so it waits as backup.
    - 3,900 s: bd2/h00 crashes before voice-001's takeover completes. voice-000 is up and idle, so it
      takes over at once: serving from 3,900 + 600 = 4,500 s.
    Shortfall = 4,500 − 3,600 = 900 s (one position, never serving in between). The old code left the
    position short until voice-001 came back: bd1/h00 repaired at 3,600 + 14,400 = 18,000 s, boot to
    18,060 s, takeover to 18,660 s: 15,060 s. Sessions: the takeover window drops what was held at
    3,900 s; every arrival in [3,600, 4,500] is blocked (recomputed from the named streams); the one
    completed takeover is voice-000's."""
    sc = one_pair([{"kind": "host_crash", "at": "1h", "target": "east/bd1/h00"},
                   {"kind": "host_crash", "at": "3900s", "target": "east/bd2/h00"}])
    sim = Simulation(load(sc, tmp_path))
    assert sim.dc.vms["voice-000"].host.name == "east/bd1/h00"
    assert sim.dc.vms["voice-001"].host.name == "east/bd2/h00"
    out = sim.run()
    c = rows(out, "voice", "").iloc[0]
    assert c["capacity_shortfall_s"] == pytest.approx(900.0, abs=1e-6)
    assert (c["failovers"], c["vm_failures"]) == (1, 2)
    t, _ = arrivals(1, "calls", 1, 60)
    r = rows(out, "voice", "calls").iloc[0]
    assert r["blocked"] == int(((t >= HOUR) & (t <= 4500.0)).sum())
    assert sim.dc.vms["voice-000"].host.name == "east/bd3/h00"
