"""Default recovery: micro-scenarios whose numbers are derived by hand."""

from __future__ import annotations

import pytest
from conftest import base_scenario, run


def test_host_crash_downtime_is_detection_plus_boot(tmp_path):
    """One host crashes at t = 1 h; every VM on it restarts elsewhere.

    Hand derivation: 8 web VMs spread over 2 domains x 4 hosts = one VM per host, so the crash of
    east/bd1/h00 stops exactly one VM (web-000). Detection 45 s + boot 90 s = 135 s of downtime,
    and the incident starts at 3600 s and ends at 3735 s. Other hosts have room, so no waiting.
    """
    sc = base_scenario(
        faults=[{"kind": "host_crash", "at": "1h", "target": "east/bd1/h00", "repair": "2h"}],
    )
    sc["infrastructure"]["detection"] = "45s"
    sc["workloads"][0]["vm"]["boot_time"] = "90s"
    out = run(sc, tmp_path)
    inc = out.tables["incidents"]
    assert len(inc) == 1
    row = inc.iloc[0]
    assert row["subject"] == "web-000"
    assert row["cause"] == "host_crash"
    assert row["outcome"] == "restarted"
    assert row["start_s"] == pytest.approx(3600.0)
    assert row["end_s"] == pytest.approx(3735.0)
    assert row["downtime_s"] == pytest.approx(135.0)
    restarts = out.tables["restarts"]
    assert list(restarts["to_host"]) != ["east/bd1/h00"]
    assert out.metrics["incidents.downtime_s_total"] == pytest.approx(135.0)
    # availability = 1 - 135 / (8 VMs x 86400 s)
    assert out.metrics["vm.availability"] == pytest.approx(1 - 135.0 / (8 * 86400.0))


def test_vm_crash_restarts_in_place(tmp_path):
    """A guest crash at 2 h restarts the VM on the same host after detection 30 s + boot 60 s."""
    sc = base_scenario(faults=[{"kind": "vm_crash", "at": "2h", "target": "web-003"}])
    out = run(sc, tmp_path)
    inc = out.tables["incidents"]
    assert list(inc["downtime_s"]) == pytest.approx([90.0])
    r = out.tables["restarts"].iloc[0]
    assert r["from_host"] == r["to_host"]


def test_no_room_waits_for_repair(tmp_path):
    """Only one host is allowed and it crashes: the VM waits for the repair, then boots.

    Hand derivation: crash at 600 s, repair 1 h -> host back at 4200 s; the restart found no room
    after detection (630 s), so it waits until 4200 s, then boots 60 s: downtime = 3660 s,
    waited = 4200 - 630 = 3570 s.
    """
    sc = base_scenario(
        workloads=[{"name": "db", "count": 1, "vm": {"vcpus": 4, "memory": "16GiB", "disk": "100GiB"},
                    "placement": {"hosts": ["east/bd1/h00"]}}],
        faults=[{"kind": "host_crash", "at": "10m", "target": "east/bd1/h00", "repair": "1h"}],
    )
    out = run(sc, tmp_path)
    r = out.tables["restarts"].iloc[0]
    assert r["waited_s"] == pytest.approx(3570.0)
    assert r["downtime_s"] == pytest.approx(3660.0)


def test_domain_outage_stops_every_vm_in_it(tmp_path):
    """A domain outage stops all 4 VMs of east/bd2; they restart in bd1 (room for them there)."""
    sc = base_scenario(faults=[{"kind": "broadcast_domain_outage", "at": "1h", "target": "east/bd2",
                                "repair": "30m"}])
    out = run(sc, tmp_path)
    inc = out.tables["incidents"]
    assert len(inc) == 4
    assert set(inc["cause"]) == {"broadcast_domain_outage"}
    assert all(h.startswith("east/bd1/") for h in out.tables["restarts"]["to_host"])
    assert inc["downtime_s"].tolist() == pytest.approx([90.0] * 4)


def test_open_incident_at_end(tmp_path):
    """A VM still down when the run ends is an `open` incident ending at the duration."""
    sc = base_scenario(
        duration="2h",
        workloads=[{"name": "db", "count": 1, "vm": {"vcpus": 4, "memory": "16GiB", "disk": "100GiB"},
                    "placement": {"hosts": ["east/bd1/h00"]}}],
        faults=[{"kind": "host_crash", "at": "1h", "target": "east/bd1/h00", "repair": "5h"}],
    )
    out = run(sc, tmp_path)
    row = out.tables["incidents"].iloc[0]
    assert row["outcome"] == "open"
    assert row["end_s"] == pytest.approx(7200.0)
    assert out.metrics["incidents.open"] == 1


def test_host_failing_during_boot_is_one_outage(tmp_path):
    """The VM's new host fails while it boots: one continuous incident, one completed restart.

    Hand derivation: web-000 is packed on h00 (hosts h00, h01 allowed). h00 crashes at 3600 s
    (repair 10 min -> back at 4200 s). Restart after detection 30 s on h01 at 3630 s, booting 60 s;
    h01 crashes at 3660 s, mid-boot, for 1 h. Second restart: detection until 3690 s, no host up,
    wait for h00 at 4200 s (waited 510 s), boot until 4260 s. Downtime 4260 - 3600 = 660 s.
    """
    sc = base_scenario(
        workloads=[{"name": "web", "count": 1, "vm": {"vcpus": 4, "memory": "16GiB", "disk": "100GiB"},
                    "placement": {"hosts": ["east/bd1/h00", "east/bd1/h01"], "spread": "pack"}}],
        faults=[{"kind": "host_crash", "at": "1h", "target": "east/bd1/h00", "repair": "10m"},
                {"kind": "host_crash", "at": 3660, "target": "east/bd1/h01", "repair": "1h"}],
    )
    out = run(sc, tmp_path)
    inc = out.tables["incidents"]
    assert len(inc) == 1
    assert (inc.iloc[0]["start_s"], inc.iloc[0]["end_s"]) == pytest.approx((3600.0, 4260.0))
    r = out.tables["restarts"]
    assert len(r) == 1
    assert r.iloc[0]["to_host"] == "east/bd1/h00"
    assert r.iloc[0]["waited_s"] == pytest.approx(510.0)
    assert r.iloc[0]["downtime_s"] == pytest.approx(660.0)
