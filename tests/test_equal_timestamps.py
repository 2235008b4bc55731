"""The rule for equal timestamps (docs/model.md): a transfer whose last byte arrives at t completes
at t, whatever fails at t; the failure then acts on what the completion left. Migration rounds and
replica rebuilds move their bytes with transfers, so they obey it too (transfers themselves:
tests/test_transfer.py).

Each failure below is scheduled from time 0, before the transfer's completion timer exists, so
SimPy runs it first at the shared instant (the order that used to lose the bytes). The instant is
computed with the same float operations the model performs, so it is the completion's own time.
"""

from __future__ import annotations

import math

import pytest
from conftest import load
from test_migration import IDEAL, pair_scenario
from test_replication import LAG, scenario

from sim.core.causes import HostDown, LinkDown
from sim.runner import Simulation

GiB = 1024.0**3


def at(env, t, fn):
    def proc():
        yield env.timeout(t)
        fn()
    env.process(proc())


def test_a_migration_round_whose_last_byte_arrives_as_its_link_fails_completes(tmp_path):
    """An idle 1 GiB VM migrates from east/bd1/h00 to east/bd2/h00 (scope site) at 10 s over 1 GbE
    (125e6 B/s, no latency inside the site), ideal engine: round 0 carries 1 GiB and ends at
    10 + 2^30 / 125e6 = 18.589934592 s; round 1 has nothing dirty, so it is the stop-and-copy with
    no bytes. The bd1 uplink fails at exactly 18.589934592 s for 100 s. Round 0 is complete: the
    migration completes then, total time 8.589934592 s, downtime 0, 1 GiB sent (before: round 0
    was held at rate 0 with nothing left until the repair, total time 108.589934592 s)."""
    sc = pair_scenario(domains=2, ops=[{"kind": "migrate", "at": "10s", "vm": "vm-000", "to": "east/bd2/h00"}],
                       migration={**IDEAL, "scope": "site"})
    sim = Simulation(load(sc, tmp_path))
    env, dc = sim.ctx.env, sim.dc
    end = 10.0 + GiB / 125e6
    at(env, end, lambda: dc.link_down("east/bd1", LinkDown(at=end, link="east/bd1")))
    at(env, end + 100, lambda: dc.link_up("east/bd1"))
    m = sim.run().tables["migrations"].iloc[0]
    assert m["outcome"] == "completed"
    assert m["total_time_s"] == pytest.approx(GiB / 125e6, abs=1e-9)
    assert m["end_s"] == end
    assert (m["rounds"], m["bytes"], m["downtime_s"]) == (2, GiB, 0.0)


def test_a_rebuild_whose_last_byte_arrives_as_its_source_crashes_completes(tmp_path):
    """One primary with one replica (distinct domains, heartbeat 1 s x 3 missed, lag 0.1 s), node
    disk 8 GB. The replica's host crashes at 3600 s: with the replica's heartbeat phase f in [0, 1)
    its last beat is at 3599 + f and it is declared failed 3 s later, at 3602 + f; the rebuild then
    copies 8 GB from the primary's host disk to a host of a third domain, bounded by the target
    disk's 1 GB/s write: it ends at 3610 + f. The primary's host crashes at exactly that instant.
    The copy is complete, so the rebuild completes at 3610 + f (a ``rebuild`` row), and the
    promotion that follows hands over a replica in sync: it loses only the replication lag,
    0.1 s of writes (before: the copy failed, the replica was promoted with data as of its copy's
    start, losing 8 s of writes)."""
    sc = scenario([{"name": "a", "primaries": 1, "replicas": 1, "node": {"disk": "8GB"}}])
    replica_host = Simulation(load(sc, tmp_path)).dc.vms["a-p000-r1"].host.name
    sc["faults"] = [{"kind": "host_crash", "at": "1h", "target": replica_host, "repair": "2h"}]
    sim = Simulation(load(sc, tmp_path))
    env, dc = sim.ctx.env, sim.dc
    mech = next(m for m in sim.mechanisms if m.key == "replication")
    phase = mech.phase(mech.nodes["a-p000-r1"])
    detected = 3600.0 + ((phase + 1.0 * math.floor((3600.0 - phase) / 1.0)) + 3.0 - 3600.0)
    end = detected + 8e9 / 1e9
    assert 3610.0 <= end < 3611.0
    primary = dc.vms["a-p000"].host
    at(env, end, lambda: dc.host_down(primary, HostDown(at=end, host=primary.name)))
    r = sim.run().tables["replacements"]
    rebuild = r[r["kind"] == "rebuild"]
    assert sorted(rebuild["end_s"])[0] == end  # the next one rebuilds the replica the promotion emptied
    promo = r[r["kind"] == "promotion"]
    assert list(promo["data_loss_s"]) == [pytest.approx(LAG)]
