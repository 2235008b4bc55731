"""The transfer helper: flows that watch their endpoints and path, and fail or stall by the owner's choice.

Topology (conftest's base scenario plus a storage system): host disks read 2 GB/s, NICs
10 Gbps = 1.25 GB/s, the vault writes 1 GB/s, so a host-disk-to-vault copy runs at 1 GB/s,
its bottleneck being the vault's write link; no latency inside a site.
"""

from __future__ import annotations

import pytest
from conftest import base_scenario, write_yaml

from sim.core.causes import HostDown, StorageDown
from sim.infra import events as ev
from sim.infra.network import Endpoint
from sim.infra.transfer import STALL, TransferFailed
from sim.mechanisms.registry import REGISTRY
from sim.runner import Simulation
from sim.scenario.loader import load_scenario

GB = 1e9
H = "east/bd1/h00"


def make(tmp_path, **extra):
    sc = base_scenario(**extra)
    sc["infrastructure"]["storage"] = [{"name": "vault", "site": "east", "capacity": "1PiB",
                                        "read": "2GB/s", "write": "1GB/s"}]
    sim = Simulation(load_scenario(str(write_yaml(tmp_path / "s.yaml", sc)), [], REGISTRY), registry=REGISTRY)
    return sim, sim.ctx.env, sim.dc


def watch(env, transfer, log):
    def proc():
        try:
            yield transfer.done
            log.append(("completed", env.now, transfer.sent()))
        except TransferFailed as exc:
            log.append(("failed", env.now, transfer.sent(), type(exc.cause).__name__))
    env.process(proc())


def at(env, t, fn):
    def proc():
        yield env.timeout(t)
        fn()
    env.process(proc())


def test_a_flow_from_a_crashed_hosts_disk_fails_with_the_bytes_it_sent(tmp_path):
    """20 GB from h00's disk to the vault at 1 GB/s; h00 crashes at 5 s: the transfer fails then,
    having sent 5 GB (before the platform, it finished at full rate at 20 s)."""
    sim, env, dc = make(tmp_path)
    log = []
    t = dc.transfers.start(Endpoint.disk(H), Endpoint.storage("vault"), 20 * GB)
    watch(env, t, log)
    at(env, 5, lambda: dc.host_down(dc.hosts[H], HostDown(at=5, host=H)))
    env.run(until=60)
    assert log == [("failed", 5.0, pytest.approx(5 * GB), "HostDown")]


def test_a_flow_started_from_a_host_that_is_down_fails_at_once(tmp_path):
    sim, env, dc = make(tmp_path)
    log = []
    at(env, 1, lambda: dc.host_down(dc.hosts[H], HostDown(at=1, host=H)))

    def later():
        yield env.timeout(2)
        t = dc.transfers.start(Endpoint.disk(H), Endpoint.storage("vault"), 20 * GB)
        watch(env, t, log)
    env.process(later())
    env.run(until=60)
    assert log == [("failed", 2.0, 0.0, "HostDown")]


def test_a_flow_into_a_storage_system_under_outage_fails_started_before_or_during(tmp_path):
    """Outage of the vault from 5 s to 15 s. A copy started at 0 fails at 5 s with 5 GB sent; one
    started at 8 s fails at 8 s with nothing sent."""
    sim, env, dc = make(tmp_path)
    st = dc.storage["vault"]
    log = []
    watch(env, dc.transfers.start(Endpoint.disk(H), Endpoint.storage("vault"), 20 * GB), log)
    at(env, 5, lambda: dc.storage_down(st, StorageDown(at=5, storage="vault")))
    at(env, 15, lambda: dc.storage_up(st))

    def during():
        yield env.timeout(8)
        watch(env, dc.transfers.start(Endpoint.disk("east/bd1/h01"), Endpoint.storage("vault"), GB), log)
    env.process(during())
    env.run(until=60)
    assert log == [("failed", 5.0, pytest.approx(5 * GB), "StorageDown"), ("failed", 8.0, 0.0, "StorageDown")]


def test_a_stalling_flow_resumes_after_the_outage(tmp_path):
    """With ``on_storage=stall``: 20 GB at 1 GB/s, outage 5-15 s: 5 GB before, none during, the
    other 15 GB after, so it completes at 15 + 15 = 30 s. A copy of 2 GB started during the outage
    (at 8 s) waits and shares the vault from 15 s: both at 0.5 GB/s until the small one ends at
    19 s (2 GB), then the big one alone; 15 GB - 2 GB by 19 s = 13 GB left at 1 GB/s: ends at 32 s."""
    sim, env, dc = make(tmp_path)
    st = dc.storage["vault"]
    log = []
    watch(env, dc.transfers.start(Endpoint.disk(H), Endpoint.storage("vault"), 20 * GB, on_storage=STALL), log)
    at(env, 5, lambda: dc.storage_down(st, StorageDown(at=5, storage="vault")))
    at(env, 15, lambda: dc.storage_up(st))

    def during():
        yield env.timeout(8)
        t = dc.transfers.start(Endpoint.disk("east/bd1/h01"), Endpoint.storage("vault"), 2 * GB, on_storage=STALL)
        assert t.stalled
        watch(env, t, log)
    env.process(during())
    env.run(until=60)
    assert [(k, round(t, 9)) for k, t, *_ in log] == [("completed", 19.0), ("completed", 32.0)]


def test_overlapping_storage_outages_nest(tmp_path):
    """Outage A 10-50 s and B 30-80 s: the vault is down from 10 s to 80 s, once (one ``down`` and
    one ``up`` on the bus); a stalled 20 GB copy sent 10 GB by 10 s and ends at 80 + 10 = 90 s."""
    sim, env, dc = make(tmp_path)
    st = dc.storage["vault"]
    seen = []
    dc.bus.subscribe(ev.STORAGE, lambda f: seen.append((f.phase, f.at)), "vault")
    dc.bus.subscribe(ev.STORAGE, lambda f: seen.append((f.phase, f.at)), "vault", phase=ev.UP)
    log = []
    watch(env, dc.transfers.start(Endpoint.disk(H), Endpoint.storage("vault"), 20 * GB, on_storage=STALL), log)
    at(env, 10, lambda: dc.storage_down(st, StorageDown(at=10, storage="vault")))
    at(env, 30, lambda: dc.storage_down(st, StorageDown(at=30, storage="vault")))
    at(env, 50, lambda: dc.storage_up(st))
    states = []
    at(env, 60, lambda: states.append(st.state))
    at(env, 80, lambda: dc.storage_up(st))
    env.run(until=200)
    assert seen == [("down", 10.0), ("up", 80.0)]
    assert states == ["down"]
    assert log == [("completed", pytest.approx(90.0), pytest.approx(20 * GB))]


def test_scheduled_storage_outages_nest_through_the_fault_injector(tmp_path):
    """The same nesting from the scenario's faults: the vault is down from 1 h to 3 h."""
    sim, env, dc = make(tmp_path, faults=[
        {"kind": "storage_outage", "at": "1h", "target": "vault", "repair": "1h"},
        {"kind": "storage_outage", "at": "90m", "target": "vault", "repair": "90m"},
    ])
    states = []
    for t in (3599, 3601, 7300, 10799, 10801):
        at(env, t, lambda: states.append(dc.storage["vault"].state))
    sim.run()
    assert states == ["up", "down", "down", "down", "up"]


def test_a_link_failure_stalls_a_transfer_until_repair(tmp_path):
    """A cross-domain copy of 10 GB NIC to NIC (1.25 GB/s) with the bd1 uplink failed from 2 s to
    12 s: 2.5 GB sent, 10 s stalled, 7.5 GB more: ends at 2 + 10 + 6 = 18 s."""
    from sim.core.causes import LinkDown

    sim, env, dc = make(tmp_path)
    log = []
    watch(env, dc.transfers.start(Endpoint.nic(H), Endpoint.nic("east/bd2/h00"), 10 * GB), log)
    at(env, 2, lambda: dc.link_down("east/bd1", LinkDown(at=2, link="east/bd1")))
    at(env, 12, lambda: dc.link_up("east/bd1"))
    env.run(until=100)
    assert log == [("completed", pytest.approx(18.0), pytest.approx(10 * GB))]


# ------------------------------------------------------------------------- equal timestamps
# The rule (docs/model.md, "Equal timestamps"): a transfer whose last byte arrives at t completes
# at t, whatever fails at t. Each failure below is scheduled before the transfer starts, so SimPy
# runs it before the solver's completion timer of the same instant (the order that lost the bytes).
MB = 1e6


@pytest.mark.parametrize("policy", ["fail", "stall"])
def test_a_transfer_whose_last_byte_arrives_as_its_host_crashes_completes(tmp_path, policy):
    """1 GB from h00's disk to the vault, capped at 125 MB/s: 1e9 / 125e6 = 8 s exactly. h00
    crashes at 8 s (repaired at 100 s). The bytes are there: completed at 8 s with 1 GB sent,
    under either choice (before: ``fail`` reported it failed at 8 s with 1 GB sent; ``stall``
    resumed it at the repair and completed at 100 s)."""
    sim, env, dc = make(tmp_path)
    host = dc.hosts[H]
    at(env, 8, lambda: dc.host_down(host, HostDown(at=8, host=H)))
    at(env, 100, lambda: dc.host_repaired(host))
    log = []
    t = dc.transfers.start(Endpoint.disk(H), Endpoint.storage("vault"), GB, cap=125 * MB, on_host=policy)
    watch(env, t, log)
    env.run(until=200)
    assert log == [("completed", 8.0, GB)]
    assert (t.outcome, t.end_s, t.cause) == ("completed", 8.0, None)


def test_a_transfer_whose_last_byte_arrives_as_a_storage_outage_begins_completes(tmp_path):
    """The same 8 s copy into the vault; the vault's outage begins at 8 s: completed at 8 s."""
    sim, env, dc = make(tmp_path)
    at(env, 8, lambda: dc.storage_down(dc.storage["vault"], StorageDown(at=8, storage="vault")))
    log = []
    watch(env, dc.transfers.start(Endpoint.disk(H), Endpoint.storage("vault"), GB, cap=125 * MB), log)
    env.run(until=200)
    assert log == [("completed", 8.0, GB)]


def test_a_transfer_whose_last_byte_arrives_as_its_link_fails_completes(tmp_path):
    """1 GB NIC to NIC across the bd1 uplink, capped at 125 MB/s, started at 1 s: ends at 9 s; the
    uplink fails at 9 s until 50 s. Completed at 9 s (before: the flow was held at rate 0 with
    nothing left, and completed at the repair, 50 s)."""
    from sim.core.causes import LinkDown

    sim, env, dc = make(tmp_path)
    at(env, 9, lambda: dc.link_down("east/bd1", LinkDown(at=9, link="east/bd1")))
    at(env, 50, lambda: dc.link_up("east/bd1"))
    log = []
    at(env, 1, lambda: watch(env, dc.transfers.start(Endpoint.nic(H), Endpoint.nic("east/bd2/h00"), GB,
                                                     cap=125 * MB), log))
    env.run(until=200)
    assert log == [("completed", 9.0, GB)]


def test_a_failure_an_instant_before_the_last_byte_still_fails(tmp_path):
    """The rule is about one instant only: a crash at 8 s - 1 ms fails the 8 s copy, 1 ms short:
    125 MB/s x 7.999 s = 999,875,000 bytes sent."""
    sim, env, dc = make(tmp_path)
    at(env, 7.999, lambda: dc.host_down(dc.hosts[H], HostDown(at=7.999, host=H)))
    log = []
    watch(env, dc.transfers.start(Endpoint.disk(H), Endpoint.storage("vault"), GB, cap=125 * MB), log)
    env.run(until=200)
    assert log == [("failed", 7.999, pytest.approx(999_875_000.0), "HostDown")]


# ------------------------------------------------------------------------- disk failures
def test_a_stalling_transfer_into_a_disk_that_fails_fails_it_keeps_nothing(tmp_path):
    """20 GB from h01's NIC into h00's disk (1 GB/s, its write rate), ``on_host=stall``; h00's disk
    fails at 5 s (repaired at 15 s). The 5 GB written are destroyed with the disk, so there is
    nothing to resume: failed at 5 s with 5 GB sent (before: it stalled and resumed at 15 s with the
    15 GB left, completing at 30 s as if the 5 GB had survived)."""
    sim, env, dc = make(tmp_path)
    host = dc.hosts[H]
    at(env, 5, lambda: dc.disk_failed(host, HostDown(at=5, host=H, kind="disk_failure")))
    at(env, 15, lambda: dc.disk_repaired(host))
    log = []
    watch(env, dc.transfers.start(Endpoint.nic("east/bd1/h01"), Endpoint.disk(H), 20 * GB, on_host=STALL), log)
    env.run(until=100)
    assert log == [("failed", 5.0, pytest.approx(5 * GB), "HostDown")]


def test_a_stalling_transfer_into_a_disk_whose_host_crashes_resumes_with_its_bytes(tmp_path):
    """The same copy, h00 crashes at 5 s (its disk survives) and returns at 15 s: 5 GB kept, the
    other 15 GB after the repair: completed at 30 s."""
    sim, env, dc = make(tmp_path)
    host = dc.hosts[H]
    at(env, 5, lambda: dc.host_down(host, HostDown(at=5, host=H)))
    at(env, 15, lambda: dc.host_repaired(host))
    log = []
    watch(env, dc.transfers.start(Endpoint.nic("east/bd1/h01"), Endpoint.disk(H), 20 * GB, on_host=STALL), log)
    env.run(until=100)
    assert log == [("completed", pytest.approx(30.0), pytest.approx(20 * GB))]


def test_bottleneck_is_the_smallest_capacity_on_the_route(tmp_path):
    """NIC to NIC across domains: the 10 Gbps NICs (1.25 GB/s) under the 100 Gbps uplinks; h00's disk
    into the vault: the vault's 1 GB/s write link; across a failed uplink: 0 until it is repaired."""
    from sim.core.causes import LinkDown

    sim, env, dc = make(tmp_path)
    across = (Endpoint.nic(H), Endpoint.nic("east/bd2/h00"))
    assert dc.transfers.bottleneck(*across) == 1.25 * GB
    assert dc.transfers.bottleneck(Endpoint.disk(H), Endpoint.storage("vault")) == 1 * GB
    dc.link_down("east/bd1", LinkDown(at=0, link="east/bd1"))
    assert dc.transfers.bottleneck(*across) == 0.0
    dc.link_up("east/bd1")
    assert dc.transfers.bottleneck(*across) == 1.25 * GB
