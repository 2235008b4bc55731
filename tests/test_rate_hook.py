"""The rate-change hook of flows and transfers (``on_rate``): when it is called, with what rate.

Each case is derived by hand from max-min sharing of one bottleneck; the hook must report every
change of the watched flow's rate at the instant it happens, and nothing else.
"""

from __future__ import annotations

import pytest
import simpy
from conftest import base_scenario, write_yaml

from sim.core.causes import HostDown, LinkDown
from sim.infra.network import Endpoint
from sim.infra.solver import FlowSolver
from sim.infra.transfer import STALL
from sim.mechanisms.registry import REGISTRY
from sim.runner import Simulation
from sim.scenario.loader import load_scenario

GB = 1e9
H0, H1, H2 = "east/bd1/h00", "east/bd1/h01", "east/bd1/h02"


def at(env, t, fn):
    def proc():
        yield env.timeout(t)
        fn()
    env.process(proc())


@pytest.mark.parametrize("incremental", [True, False])
def test_the_solver_tells_a_flow_its_rate_halves_when_a_second_flow_joins_its_link(incremental):
    """One link of 100 B/s. Flow A (1,000 B) starts at 0 alone: rate 100. Flow B (200 B) joins the
    link at 4 s: both get 50 (max-min), A has sent 400 B. B ends at 4 + 200/50 = 8 s; A, having
    sent 400 + 4 x 50 = 600 B, gets 100 again and ends at 8 + 400/100 = 12 s. So A's hook is
    called three times: (0, 100, 0 B), (4, 50, 400 B), (8, 100, 600 B); never at its end; B has
    no hook and costs none."""
    env = simpy.Environment()
    solver = FlowSolver(env, incremental=incremental)
    link = solver.add_resource("link", 100.0)
    told = []
    ends = []
    a = solver.start([link], 1000.0, on_rate=lambda f, r: told.append((env.now, r, solver.sent(f))),
                     on_end=lambda f, exc: ends.append(("A", env.now)))
    at(env, 4, lambda: solver.start([link], 200.0, on_end=lambda f, exc: ends.append(("B", env.now))))
    env.run()
    assert told == [(0.0, 100.0, 0.0), (4.0, 50.0, 400.0), (8.0, 100.0, 600.0)]
    assert ends == [("B", 8.0), ("A", 12.0)]
    assert a not in solver._rate_watched  # nothing kept once it has left


def test_a_flow_on_a_failed_link_is_told_rate_zero_then_its_rate_at_repair():
    """One link of 100 B/s, flow A of 1,000 B with a hook. The link's capacity is set to 0 at 3 s
    (a failure: A is held at rate 0 with 700 B left) and back to 100 at 5 s: A is told (0, 100),
    (3, 0), (5, 100) and ends at 5 + 700/100 = 12 s."""
    env = simpy.Environment()
    solver = FlowSolver(env)
    link = solver.add_resource("link", 100.0)
    told = []
    ends = []
    solver.start([link], 1000.0, on_rate=lambda f, r: told.append((env.now, r)),
                 on_end=lambda f, exc: ends.append(env.now))
    at(env, 3, lambda: solver.set_capacity(link, 0.0))
    at(env, 5, lambda: solver.set_capacity(link, 100.0))
    env.run()
    assert told == [(0.0, 100.0), (3.0, 0.0), (5.0, 100.0)]
    assert ends == [12.0]


def make(tmp_path):
    sc = base_scenario()
    sim = Simulation(load_scenario(str(write_yaml(tmp_path / "s.yaml", sc)), [], REGISTRY), registry=REGISTRY)
    return sim, sim.ctx.env, sim.dc


def test_a_transfer_is_told_its_rate_halves_while_another_shares_its_nic(tmp_path):
    """NICs of 10 Gbps = 1.25 GB/s. Transfer A, 20 GB from h00's NIC to h01's, starts at 0 alone:
    1.25 GB/s. Transfer B, 2.5 GB from h00's NIC to h02's, starts at 4 s: both share h00's
    sending side at 0.625 GB/s; A has sent 5 GB. B ends at 4 + 2.5/0.625 = 8 s; A has sent
    5 + 2.5 = 7.5 GB and gets 1.25 GB/s again, ending at 8 + 12.5/1.25 = 18 s. A's hook: (0,
    1.25e9, 0), (4, 0.625e9, 5e9), (8, 1.25e9, 7.5e9), and nothing at its end."""
    sim, env, dc = make(tmp_path)
    told = []
    ends = []
    dc.transfers.start(Endpoint.nic(H0), Endpoint.nic(H1), 20 * GB,
                       on_rate=lambda t, r: told.append((env.now, r, t.sent())),
                       on_end=lambda t: ends.append(env.now))
    at(env, 4, lambda: dc.transfers.start(Endpoint.nic(H0), Endpoint.nic(H2), 2.5 * GB))
    env.run(until=100)
    assert [(t, pytest.approx(r), pytest.approx(s)) for t, r, s in told] == [
        (0.0, 1.25 * GB, 0.0), (4.0, 0.625 * GB, 5 * GB), (8.0, 1.25 * GB, 7.5 * GB)]
    assert ends == [pytest.approx(18.0)]


def test_a_stalled_transfer_is_told_rate_zero_and_its_rate_when_it_resumes(tmp_path):
    """20 GB from h01's NIC into h00's disk (write 1 GB/s), ``on_host=stall``; h00 crashes at 5 s
    (5 GB sent) and is repaired at 15 s: the hook says (0, 1e9), (5, 0), (15, 1e9); the transfer
    ends at 15 + 15 = 30 s. A cross-domain copy stalled by a failed uplink (2 s to 12 s): (0,
    1.25e9), (2, 0), (12, 1.25e9)."""
    sim, env, dc = make(tmp_path)
    host = dc.hosts[H0]
    told = []
    ends = []
    dc.transfers.start(Endpoint.nic(H1), Endpoint.disk(H0), 20 * GB, on_host=STALL,
                       on_rate=lambda t, r: told.append((env.now, r)), on_end=lambda t: ends.append(env.now))
    at(env, 5, lambda: dc.host_down(host, HostDown(at=5, host=H0)))
    at(env, 15, lambda: dc.host_repaired(host))
    linked = []
    dc.transfers.start(Endpoint.nic("east/bd1/h03"), Endpoint.nic("east/bd2/h00"), 10 * GB,
                       on_rate=lambda t, r: linked.append((env.now, r)))
    at(env, 2, lambda: dc.link_down("east/bd1", LinkDown(at=2, link="east/bd1")))
    at(env, 12, lambda: dc.link_up("east/bd1"))
    env.run(until=100)
    assert told == [(0.0, 1 * GB), (5.0, 0.0), (15.0, 1 * GB)]
    assert ends == [pytest.approx(30.0)]
    assert linked == [(0.0, 1.25 * GB), (2.0, 0.0), (12.0, 1.25 * GB)]
