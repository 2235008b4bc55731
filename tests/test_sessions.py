"""Session clusters (docs/availability.md, part I): hand-derived micro-scenarios, conservation, the counterfactual,
the table's shape, and bad input. The closed-form validations are in test_sessions_validation.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import base_scenario, load, run, write_yaml
from typer.testing import CliRunner

from sim.cli import app
from sim.core.streams import Streams
from sim.runner import Simulation

HOUR = 3600.0
VRRP = 3.609  # VRRPv2 Master_Down_Interval, 1 s adverts, priority 100: 3 + 156/256 (RFC 3768 §6.1)


def scenario(clusters, types=(), *, duration="1d", faults=(), enabled=True, seed=1) -> dict:
    sc = base_scenario(workloads=[], faults=list(faults), duration=duration, seed=seed)
    sc["mechanisms"] = {"sessions": {"enabled": enabled, "clusters": list(clusters),
                                     "session_types": list(types)}}
    return sc


def arrivals(seed: int, name: str, rate: float, hold: float, n: int = 200_000):
    """The arrival and departure times the mechanism draws for a session type (same named streams,
    same order: arrival j gets holding draw j), recomputed here to derive counts by hand."""
    streams = Streams(seed)
    t = np.cumsum(streams.get(f"sessions/{name}").exponential(1.0 / rate, n))
    h = streams.get(f"sessions/{name}/holding").exponential(hold, n)
    return t, t + h


def rows(out, cluster=None, session_type=None):
    s = out.tables["sessions"]
    if cluster is not None:
        s = s[s["cluster"] == cluster]
    if session_type is not None:
        s = s[s["session_type"] == session_type]
    return s


# --------------------------------------------------------------------------- micro-scenarios
def test_a_1to1_backup_takes_over_after_failover_time_with_every_session_kept(tmp_path):
    """One 1:1 pair on east/bd1/h00 (active voice-000) and east/bd2/h00 (its backup voice-001, in
    the other domain); 10 sessions/s of 60 s (600 Erlangs) on 100,000 slots: nothing is blocked
    while the pair serves. The active's host crashes at 1 h. By hand: the position stops serving
    at 1 h and the backup serves from 1 h + 3.609 s with the same sessions (dropped = 0); the only
    position is down for those 3.609 s, so exactly the arrivals in [3600, 3603.609] are blocked
    (recomputed from the named streams) and the shortfall is 3.609 s. The active VM itself is down
    until detection (30 s) + boot (60 s) later, when it runs again elsewhere (never on its partner's
    host) and rejoins as the backup: its incident is that whole 90 s outage, outcome failed_over
    (its work was taken over at 3.609 s)."""
    sc = scenario([{"name": "voice", "redundancy": "1:1", "active": 1, "capacity": 100_000,
                    "hosts": ["east/*"], "failover_time": VRRP}],
                  [{"name": "calls", "rate": 10, "mean_holding": "60s", "require": "1:1"}],
                  duration="2h", faults=[{"kind": "host_crash", "at": "1h", "target": "east/bd1/h00",
                                          "repair": "10h"}])
    sim = Simulation(load(sc, tmp_path))
    assert sim.dc.vms["voice-000"].host.name == "east/bd1/h00"
    assert sim.dc.vms["voice-001"].host.domain.name == "east/bd2"
    out = sim.run()
    t, d = arrivals(1, "calls", 10, 60)
    n = int((t <= 2 * HOUR).sum())
    blocked = int(((t >= HOUR) & (t <= HOUR + VRRP)).sum())
    r = rows(out, "voice", "calls").iloc[0]
    assert (r["offered"], r["blocked"], r["dropped"]) == (n, blocked, 0)
    assert r["carried"] == n - blocked
    assert r["active_at_end"] == int(((t <= 2 * HOUR) & (d > 2 * HOUR)).sum())  # carried on
    c = rows(out, "voice", "").iloc[0]
    assert (c["failovers"], c["vm_failures"]) == (1, 1)
    assert c["capacity_shortfall_s"] == pytest.approx(VRRP, abs=1e-6)
    inc = out.tables["incidents"].set_index("subject").loc["voice-000"]
    assert (inc["cause"], inc["mechanism"], inc["outcome"]) == ("host_crash", "sessions", "failed_over")
    assert inc["downtime_s"] == pytest.approx(30 + 60, abs=1e-6)
    back = out.tables["placements"]
    back = back[(back["vm"] == "voice-000") & (back["reason"] == "restart")].iloc[0]
    assert back["time_s"] == HOUR + 30.0 and back["host"] != sim.dc.vms["voice-001"].host.name
    assert out.metrics["sessions.dropped"] == 0 and out.metrics["sessions.failovers"] == 1


def test_an_nk_spare_takes_over_and_the_failed_vms_sessions_are_dropped(tmp_path):
    """N:K with N = 1, K = 1 (data-000 active, data-001 spare), 5 sessions/s of 100 s on 10,000 slots
    (never full). data-000's host crashes at 1 h: by hand, its sessions then in progress (arrivals
    before 1 h still holding, recomputed from the streams) are dropped, the arrivals of the next
    3.609 s are blocked, the spare serves from 1 h + 3.609 s, and the shortfall is 3.609 s. data-000
    itself is down until detection (30 s) + boot (60 s) later: one incident of 90 s, failed_over."""
    sc = scenario([{"name": "data", "redundancy": "N:K", "active": 1, "backup": 1, "capacity": 10_000,
                    "hosts": ["east/*"], "failover_time": VRRP}],
                  [{"name": "web", "rate": 5, "mean_holding": "100s", "require": "N:K"}],
                  duration="2h", seed=3)
    sim = Simulation(load(sc, tmp_path))
    host = sim.dc.vms["data-000"].host.name
    sc["faults"] = [{"kind": "host_crash", "at": "1h", "target": host, "repair": "10h"}]
    out = Simulation(load(sc, tmp_path)).run()
    t, d = arrivals(3, "web", 5, 100)
    dropped = int(((t <= HOUR) & (d > HOUR)).sum())
    blocked = int(((t >= HOUR) & (t <= HOUR + VRRP)).sum())
    r = rows(out, "data", "web").iloc[0]
    assert (r["dropped"], r["blocked"]) == (dropped, blocked)
    assert r["offered"] == int((t <= 2 * HOUR).sum()) == r["carried"] + r["blocked"]
    c = rows(out, "data", "").iloc[0]
    assert c["failovers"] == 1 and c["capacity_shortfall_s"] == pytest.approx(VRRP, abs=1e-6)
    inc = out.tables["incidents"].set_index("subject").loc["data-000"]
    assert inc["outcome"] == "failed_over" and inc["downtime_s"] == pytest.approx(30 + 60, abs=1e-6)


def test_disabled_has_no_backups_drops_and_restarts_after_detection_and_boot(tmp_path):
    """The same N:K cluster with the mechanism off: only data-000 exists (K = 0), its host crashes at
    1 h, its sessions are dropped, and it serves again after detection 30 s + boot 60 s on another
    host: shortfall 90 s, arrivals in [3600, 3690] blocked, no failover, incident ``restarted``."""
    sc = scenario([{"name": "data", "redundancy": "N:K", "active": 1, "backup": 1, "capacity": 10_000,
                    "hosts": ["east/*"]}],
                  [{"name": "web", "rate": 5, "mean_holding": "100s", "require": "N:K"}],
                  duration="2h", seed=3, enabled=False)
    sim = Simulation(load(sc, tmp_path))
    assert sorted(v for v in sim.dc.vms if v.startswith("data")) == ["data-000"]
    host = sim.dc.vms["data-000"].host.name
    sc["faults"] = [{"kind": "host_crash", "at": "1h", "target": host, "repair": "10h"}]
    out = Simulation(load(sc, tmp_path)).run()
    t, d = arrivals(3, "web", 5, 100)
    r = rows(out, "data", "web").iloc[0]
    assert r["dropped"] == int(((t <= HOUR) & (d > HOUR)).sum())
    assert r["blocked"] == int(((t >= HOUR) & (t <= HOUR + 90)).sum())
    c = rows(out, "data", "").iloc[0]
    assert c["failovers"] == 0 and c["capacity_shortfall_s"] == pytest.approx(90.0, abs=1e-6)
    inc = out.tables["incidents"].set_index("subject").loc["data-000"]
    assert inc["outcome"] == "restarted" and inc["downtime_s"] == pytest.approx(90.0)


def test_1to1_failover_keeps_every_session_and_conserves_exactly(tmp_path):
    """Four 1:1 pairs whose VMs fail every 12 h on average (4 h mean repair): with the backup up,
    a failover drops nothing, so every drop comes from a pair with both VMs down. Conservation
    is exact on every row: offered = carried + blocked, dropped <= carried, and the sessions held
    at the end match the last ``sessions_active`` level."""
    sc = scenario([{"name": "voice", "redundancy": "1:1", "active": 4, "capacity": 30, "hosts": ["east/*"],
                    "failover_time": "2s", "vm_mtbf": "12h", "repair": "1h"}],
                  [{"name": "a", "rate": 1.5, "mean_holding": "60s", "require": "1:1"},
                   {"name": "b", "rate": 0.5, "mean_holding": "120s", "require": "1:1"}],
                  duration="10d")
    out = run(sc, tmp_path)
    s = rows(out)
    assert (s["offered"] == s["carried"] + s["blocked"]).all()
    assert (s["dropped"] <= s["carried"]).all()
    assert out.metrics["sessions.failovers"] > 20
    lv = out.tables["levels"]
    last = lv[(lv["entity"] == "sessions/voice") & (lv["metric"] == "sessions_active")].iloc[-1]
    assert last["value"] == s["active_at_end"].sum()
    # a pair with both VMs down is rare (p = 1/13 each): drops are far fewer than failovers x load
    assert out.metrics["sessions.dropped"] < 0.2 * out.metrics["sessions.failovers"] * 2.0 * 60
    # With the backups always up (repair 1 ms), nothing is ever dropped.
    sc["mechanisms"]["sessions"]["clusters"][0].update(repair="1ms")
    out = run(sc, tmp_path)
    assert out.metrics["sessions.failovers"] > 20 and out.metrics["sessions.dropped"] == 0


def test_the_table_and_metrics_exist_when_disabled_or_absent(tmp_path):
    sc = scenario([{"name": "voice", "redundancy": "1:1", "active": 2, "hosts": ["east/*"]}],
                  [{"name": "a", "rate": 1, "mean_holding": "60s", "require": "1:1"}],
                  duration="1h", enabled=False)
    out = run(sc, tmp_path)
    assert list(rows(out)["session_type"]) == ["", "a"]
    assert out.metrics["sessions.offered"] > 3000 and out.metrics["sessions.failovers"] == 0
    names = ("sessions.offered", "sessions.blocked", "sessions.blocking_probability", "sessions.dropped",
             "sessions.failovers", "sessions.capacity_shortfall_s_total")
    assert all(n in out.metrics for n in names)
    absent = base_scenario(duration="1h")
    out = run(absent, tmp_path)
    assert len(out.tables["sessions"]) == 0
    assert list(out.tables["sessions"].columns)[:3] == ["time_s", "cluster", "session_type"]
    assert "sessions.blocking_probability" not in out.metrics
    assert all(out.metrics[n] == 0 for n in names if n != "sessions.blocking_probability")


def test_same_seed_same_figures_and_vm_names(tmp_path):
    sc = scenario([{"name": "voice", "redundancy": "1:1", "active": 3, "hosts": ["east/*"], "vm_mtbf": "1d"},
                   {"name": "data", "redundancy": "N:K", "active": 3, "backup": 1, "hosts": ["east/*"],
                    "vm_mtbf": "1d"},
                   {"name": "data2", "redundancy": "N:K", "active": 2, "backup": 0, "capacity": 50,
                    "hosts": ["east/*"]}],
                  [{"name": "a", "rate": 2, "mean_holding": "100s", "require": "1:1"},
                   {"name": "b", "rate": 4, "mean_holding": "100s", "require": "N:K"}],
                  duration="3d")
    a = run(sc, tmp_path)
    b = run(sc, tmp_path)
    assert a.metrics == b.metrics
    vms = sorted(v for v in a.tables["placements"]["vm"].unique() if not v.startswith("web"))
    assert vms[:3] == ["data-000", "data-001", "data-002"] and "voice-005" in vms and "data2-001" in vms
    s = rows(a)
    assert (s["offered"] == s["carried"] + s["blocked"]).all()
    # two N:K clusters share type b: the least loaded takes each session, so both carry
    both = s[(s["session_type"] == "b")]
    assert (both["carried"] > 0).all() and both["offered"].sum() == a.metrics["sessions.n_to_k.offered"]


# --------------------------------------------------------------------------- bad input
GOOD = {"name": "c", "redundancy": "N:K", "active": 2, "backup": 1, "hosts": ["east/*"]}
TYPE = {"name": "t", "rate": 1, "mean_holding": "60s", "require": "N:K"}


@pytest.mark.parametrize("cluster,stype,path", [
    ({**GOOD, "redundancy": "2:1"}, TYPE, "mechanisms.sessions.clusters.0.redundancy"),
    ({k: v for k, v in GOOD.items() if k != "backup"}, TYPE, "mechanisms.sessions.clusters.0.backup"),
    ({**GOOD, "redundancy": "1:1"}, {**TYPE, "require": "1:1"}, "mechanisms.sessions.clusters.0.backup"),
    (GOOD, {**TYPE, "require": "1:1"}, "mechanisms.sessions.session_types.0.require"),
    (GOOD, {**TYPE, "rate": -1}, "mechanisms.sessions.session_types.0.rate"),
    (GOOD, {**TYPE, "mean_holding": "-5s"}, "mechanisms.sessions.session_types.0.mean_holding"),
    (GOOD, {**TYPE, "mean_holding": 0}, "mechanisms.sessions.session_types.0.mean_holding"),
    ({**GOOD, "hosts": ["west/*"]}, TYPE, "mechanisms.sessions.clusters.0.hosts"),
    ({**GOOD, "name": "web"}, TYPE, "mechanisms.sessions.clusters.0.name"),
    ({**GOOD, "vm": {"vcpus": 4, "memory": "1TiB", "disk": "40GiB"}}, TYPE, "mechanisms.sessions.clusters.0.active"),
    ({**GOOD, "active": 1, "backup": 1000, "vm": {"vcpus": 4, "memory": "100GiB", "disk": "4GiB"}}, TYPE,
     "mechanisms.sessions.clusters.0.backup"),
    (GOOD, {**TYPE, "rate": "1e9/s"}, "mechanisms.sessions.session_types.0.rate"),
])
def test_bad_input_exits_2_naming_the_dotted_path(tmp_path, cluster, stype, path):
    sc = base_scenario(mechanisms={"sessions": {"clusters": [cluster], "session_types": [stype]}})
    f = write_yaml(tmp_path / "s.yaml", sc)
    result = CliRunner().invoke(app, ["check", str(f)])
    assert result.exit_code == 2, result.output
    assert f"s.yaml: {path}: expected" in result.output, result.output
    assert "Traceback" not in result.output


def test_the_shipped_scenario_runs(tmp_path):
    out_dir = tmp_path / "out"
    shipped = Path(__file__).resolve().parent.parent / "scenarios" / "session_clusters.yaml"
    result = CliRunner().invoke(app, ["run", str(shipped), "--out", str(out_dir), "--quiet",
                                      "--set", "duration=6h"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out_dir / "summary.json").read_text())["metrics"]
    assert metrics["sessions.offered"] > 100_000
    assert metrics["sessions.offered"] == metrics["sessions.carried"] + metrics["sessions.blocked"]
