"""Pre-copy in one transfer (the fused rounds) against one transfer per round.

On a route without latency the engine carries every round of a migration, stop-and-copy
included, in one transfer and computes each round's end from the transfer's rate, re-planned
whenever the solver changes it (``on_rate``). These tests hold it to the per-round design it
replaced: a hand derivation with competing flows joining and leaving mid-round, the figures the
per-round engine recorded for the shipped scenarios (a fixture, made before the change), the
per-round path run live on bigger scenarios, and a property over random competing traffic.
"""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import load
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_migration import IDEAL, pair_scenario

from sim.infra.network import Endpoint
from sim.mechanisms.live_migration import LiveMigration
from sim.runner import Simulation
from sim.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "migrations_per_round"
R = 125e6  # 1 GbE, bytes/s
TIME_COLUMNS = ("time_s", "queued_s", "total_time_s", "downtime_s", "end_s")


def per_round(monkeypatch) -> None:
    """The reference: one transfer per round on every route (the design before the fused rounds)."""
    monkeypatch.setattr(LiveMigration, "fusable", lambda self, source, target: False)


def same_rows(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Row by row: every text column and ``rounds`` equal; bytes within a relative 1e-9; times
    within a relative 1e-9 or 1e-7 s (a pause of 0.07 s measured at day 100, 8.6e6 s, is a
    difference of two times whose float spacing is 1.9e-9 s)."""
    assert len(got) == len(want)
    for c in want.columns:
        x, y = got[c].to_numpy(), want[c].to_numpy()
        if c in TIME_COLUMNS:
            np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-7, err_msg=c)
        elif c == "bytes":
            np.testing.assert_allclose(x, y, rtol=1e-9, atol=0, err_msg=c)
        else:
            assert list(x) == list(y), c


# ------------------------------------------------------------------------- hand derivation
def test_round_ends_follow_competing_flows_joining_and_leaving_mid_round(tmp_path):
    """1 GbE (R = 125e6 B/s), a VM of M = 1e9 B dirtying D = 12.5e6 B/s, downtime target 0.3 s, no
    device state or switchover; it migrates h00 -> h01 from 10 s. A copy of 2.5e8 B from h00 to
    h02 starts at 14 s and a long one from h02 to h01 at 20.5 s.

    Round 0 (1e9 B): 4 s alone at R (5e8 B); from 14 s both flows leaving h00 get R/2 = 62.5e6;
    the copy ends at 14 + 2.5e8/62.5e6 = 18 s, the round having sent 5e8 + 2.5e8 = 7.5e8; alone
    again, the last 2.5e8 take 2 s: round 0 ends at 20 s (10 s, average rate 1e8 B/s).
    Round 1: D x 10 = 1.25e8 B > 0.3 x 1e8 = 3e7, so it is a pre-copy round: 0.5 s alone (6.25e7
    B); from 20.5 s it shares h01's receiving side at R/2, so the other 6.25e7 B take 1 s: it ends
    at 21.5 s (1.5 s, rate 1.25e8/1.5). Round 2: D x 1.5 = 1.875e7 <= 0.3 x 1.25e8/1.5 = 2.5e7:
    stop-and-copy at R/2, 0.3 s of downtime, ending at 21.8 s. Rounds 3, bytes 1e9 + 1.25e8 +
    1.875e7 = 1.14375e9, total time 11.8 s. The per-round engine gives the same figures."""
    sc = pair_scenario(memory=1e9, dirty=12.5e6, hosts=3, migration=IDEAL)

    def migrate():
        sim = Simulation(load(sc, tmp_path))
        env, dc = sim.ctx.env, sim.dc

        def at(t, src, dst, size):
            def proc():
                yield env.timeout(t)
                dc.transfers.start(Endpoint.nic(src), Endpoint.nic(dst), size)
            env.process(proc())
        at(14.0, "east/bd1/h00", "east/bd1/h02", 2.5e8)
        at(20.5, "east/bd1/h02", "east/bd1/h01", 1e12)
        return sim.run().tables["migrations"].iloc[0]

    m = migrate()
    assert m["outcome"] == "completed"
    assert m["rounds"] == 3
    assert m["bytes"] == pytest.approx(1.14375e9, rel=1e-12)
    assert m["total_time_s"] == pytest.approx(11.8, rel=1e-12)
    assert m["downtime_s"] == pytest.approx(0.3, rel=1e-9)
    with pytest.MonkeyPatch.context() as mp:
        per_round(mp)
        ref = migrate()
    assert (ref["rounds"], ref["bytes"]) == (3, pytest.approx(1.14375e9, rel=1e-12))
    assert ref["total_time_s"] == pytest.approx(11.8, rel=1e-12)


def test_a_link_failure_stalls_the_fused_rounds_and_a_target_crash_fails_them(tmp_path):
    """1 GbE, M = 1e9 B, D = 12.5e6 B/s, target 0.3 s, no device state or switchover.

    Stall: h00 (bd1) -> h00 (bd2), scope site (no latency). From 10 s round 0 runs at R; the bd1
    uplink fails at 12 s (2.5e8 B sent) until 22 s, then the other 7.5e8 B take 6 s: round 0 ends
    at 28 s (18 s, average 1e9/18 B/s). Round 1: D x 18 = 2.25e8 > 0.3 x 1e9/18: 1.8 s at R, ends
    at 29.8 s. Round 2: D x 1.8 = 2.25e7 <= 0.3 x 1.25e8: stop-and-copy, 0.18 s. Rounds 3,
    bytes 1.2475e9, total 19.98 s, downtime 0.18 s.

    Crash: h00 -> h01 in one domain; h01 crashes at 14 s, 4 s into round 0: the migration fails
    with reason "east/bd1/h01 failed" and 5e8 B sent, after 4 s; the VM stays on h00."""
    from sim.core.causes import HostDown, LinkDown

    sc = pair_scenario(memory=1e9, dirty=12.5e6, domains=2, migration={**IDEAL, "scope": "site"},
                       ops=[{"kind": "migrate", "at": "10s", "vm": "vm-000", "to": "east/bd2/h00"}])
    sim = Simulation(load(sc, tmp_path))
    env, dc = sim.ctx.env, sim.dc

    def at(t, fn):
        def proc():
            yield env.timeout(t)
            fn()
        env.process(proc())
    at(12.0, lambda: dc.link_down("east/bd1", LinkDown(at=12.0, link="east/bd1")))
    at(22.0, lambda: dc.link_up("east/bd1"))
    m = sim.run().tables["migrations"].iloc[0]
    assert (m["outcome"], m["rounds"]) == ("completed", 3)
    assert m["bytes"] == pytest.approx(1.2475e9, rel=1e-12)
    assert m["total_time_s"] == pytest.approx(19.98, rel=1e-12)
    assert m["downtime_s"] == pytest.approx(0.18, rel=1e-9)

    sc = pair_scenario(memory=1e9, dirty=12.5e6, migration=IDEAL)
    sim = Simulation(load(sc, tmp_path))
    env, dc = sim.ctx.env, sim.dc
    at(14.0, lambda: dc.host_down(dc.hosts["east/bd1/h01"], HostDown(at=14.0, host="east/bd1/h01")))
    m = sim.run().tables["migrations"].iloc[0]
    assert (m["outcome"], m["reason"], m["rounds"]) == ("failed", "east/bd1/h01 failed", 0)
    assert m["bytes"] == pytest.approx(5e8, rel=1e-12)
    assert m["total_time_s"] == pytest.approx(4.0, rel=1e-12)
    assert dc.vms["vm-000"].host.name == "east/bd1/h00"


def test_a_route_with_latency_keeps_one_transfer_per_round(tmp_path):
    """Domains with a 5 ms uplink latency each way: h00 (bd1) -> h00 (bd2), scope site, an idle VM of
    1 GiB over 1 GbE with 1 MiB of device state. Each round's transfer pays the path latency
    L = 10 ms: round 0 takes L + 2^30/R, the stop-and-copy round (device state only) L + 2^20/R.
    Total 2L + (2^30 + 2^20)/R = 8.618323968 s, downtime 0.018388608 s."""
    sc = pair_scenario(domains=2, migration={**IDEAL, "scope": "site", "device_state": 1024.0**2},
                       ops=[{"kind": "migrate", "at": "10s", "vm": "vm-000", "to": "east/bd2/h00"}])
    for dom in sc["infrastructure"]["sites"][0]["broadcast_domains"]:
        dom["latency"] = "5ms"
    m = Simulation(load(sc, tmp_path)).run().tables["migrations"].iloc[0]
    assert m["rounds"] == 2
    assert m["total_time_s"] == pytest.approx(0.02 + (2**30 + 2**20) / R, rel=1e-12)
    assert m["downtime_s"] == pytest.approx(0.01 + 2**20 / R, rel=1e-9)


# ------------------------------------------------------------------------- the per-round figures
@pytest.mark.parametrize("name", ["live_migration", "remediation", "memory_errors", "charging"])
def test_shipped_scenarios_match_the_per_round_engine_row_by_row(name):
    """``tests/fixtures/migrations_per_round/<name>.csv``: the ``migrations`` table the engine wrote
    for ``scenarios/<name>.yaml`` with one transfer per round (before the fused rounds). Pre-copy,
    post-copy, evacuations with failures, remediation waves and cross-site moves: rounds, outcome,
    reason and targets equal, bytes and times as ``same_rows`` says."""
    want = pd.read_csv(FIXTURES / f"{name}.csv", keep_default_na=False)
    out = Simulation(load_scenario(ROOT / "scenarios" / f"{name}.yaml"), source=name).run()
    same_rows(out.tables["migrations"][list(want.columns)].reset_index(drop=True), want)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["datacenter", "fleet"])
def test_big_runs_match_the_per_round_engine_row_by_row(which, monkeypatch):
    """The showcase quarter (734 migrations) and the fleet at 300 hosts to day 110 (the rolling
    remediation of day 100: 2,036 migrations, many sharing NICs with each other and with backups):
    the fused engine against the per-round engine run now, row by row."""
    from sim.bench import load_fleet

    def table():
        sc = (load_scenario(ROOT / "scenarios" / "datacenter.yaml") if which == "datacenter"
              else load_fleet(None, 300, "110d"))
        return Simulation(sc, source=which).run().tables["migrations"].reset_index(drop=True)

    got = table()
    per_round(monkeypatch)
    want = table()
    assert len(want) > 500 and (want["rounds"] > 2).mean() > 0.5
    same_rows(got, want)


# ------------------------------------------------------------------------- property
@cache
def _scenario():
    """Three 1 GiB VMs on h00 (dirty 20 MB/s, working set 512 MiB), four hosts on 1 GbE, default
    engine settings (device state 1 MiB, switchover 20 ms, downtime target 300 ms)."""
    sc = pair_scenario(memory=2.0**30, dirty=20e6, working_set=2.0**29, vms=3, hosts=4, ops=[])
    return load(sc, Path(tempfile.mkdtemp(prefix="fused-")))


HOSTS = [f"east/bd1/h0{i}" for i in range(4)]
flows = st.lists(st.tuples(st.floats(0.0, 40.0), st.sampled_from(HOSTS), st.sampled_from(HOSTS),
                           st.integers(1, 4000)), max_size=8)
moves = st.lists(st.tuples(st.floats(0.0, 10.0), st.sampled_from(HOSTS[1:])), min_size=1, max_size=3)


def _run(moves_, flows_, crash):
    sim = Simulation(_scenario())
    env, dc = sim.ctx.env, sim.dc
    engine = sim.ctx.services["live_migration"]
    results = []

    def later(t, fn):
        def proc():
            yield env.timeout(t)
            fn()
        env.process(proc())

    def move(k, target):
        def go():
            vm = dc.vms[f"vm-{k:03d}"]
            results.append((yield engine.migrate(vm, dc.hosts[target], "test")))
        env.process(go())
    for k, (t, target) in enumerate(moves_):
        later(t, lambda k=k, target=target: move(k, target))
    for t, src, dst, mb in flows_:
        if src != dst:
            later(t, lambda src=src, dst=dst, mb=mb: dc.transfers.start(Endpoint.nic(src), Endpoint.nic(dst), mb * 1e6))
    if crash is not None:
        from sim.core.causes import HostDown
        t, host = crash
        later(t, lambda: dc.host_down(dc.hosts[host], HostDown(at=env.now, host=host)))
    env.run(until=300)
    return sorted((r.vm, r.outcome, r.reason, r.rounds, r.bytes, r.downtime_s, r.total_time_s, r.end_s)
                  for r in results)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(moves, flows, st.one_of(st.none(), st.tuples(st.floats(5.0, 40.0), st.sampled_from(HOSTS))))
def test_random_competing_flows_give_the_per_round_rounds_bytes_and_downtime(moves_, flows_, crash):
    """One to three VMs leave h00 at random instants for random hosts, while up to eight copies of up
    to 4 GB between the four NICs start at random instants (each re-rates the migrations sharing
    a NIC with it, when it starts and when it ends), and maybe a host crashes: every migration
    has the same outcome, reason and rounds as with one transfer per round, and the same bytes,
    downtime and times up to float rounding."""
    got = _run(moves_, flows_, crash)
    with pytest.MonkeyPatch.context() as mp:
        per_round(mp)
        want = _run(moves_, flows_, crash)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g[:4] == w[:4]
        assert g[4] == pytest.approx(w[4], rel=1e-9)
        for a, b in zip(g[5:], w[5:], strict=True):
            assert a == pytest.approx(b, rel=1e-9, abs=1e-9)
