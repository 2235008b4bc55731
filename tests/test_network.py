"""Network topology: the resources and latency of each kind of path, routing over the WAN, link failures."""

from __future__ import annotations

import pytest
import simpy

from sim.infra.network import Endpoint, Network
from sim.infra.solver import FlowSolver

MB = 1e6
nic, disk, storage = Endpoint.nic, Endpoint.disk, Endpoint.storage


def two_sites() -> tuple[simpy.Environment, Network]:
    """east: bd1 (latency 1 ms), bd2 (2 ms), storage vault; west: bd1 (3 ms); WAN east-west 30 ms."""
    env = simpy.Environment()
    net = Network(env, FlowSolver(env))
    net.add_site("east", 400 * MB)
    net.add_site("west", 300 * MB)
    net.add_domain("east", "bd1", 100 * MB, latency=0.001)
    net.add_domain("east", "bd2", 100 * MB, latency=0.002)
    net.add_domain("west", "bd1", 100 * MB, latency=0.003)
    for h in ("east/bd1/h00", "east/bd1/h01", "east/bd2/h00"):
        site, dom, _ = h.split("/")
        net.add_host(h, site, dom, 10 * MB, 20 * MB, 5 * MB)
    net.add_host("west/bd1/h00", "west", "bd1", 10 * MB, 20 * MB, 5 * MB)
    net.add_wan("east", "west", 50 * MB, 0.030)
    net.add_storage("vault", "east", 40 * MB, 30 * MB)
    return env, net


def start_flow(net: Network, src: Endpoint, dst: Endpoint, size: float, tag: object = None):
    """A bare solver flow along the route (model code moves bytes with ``dc.transfers``)."""
    resources, latency = net.route(src, dst)
    return net.solver.start(resources, size, None, latency, tag)


def names(net: Network, route) -> list[str]:
    return [net.solver.resource_name(r) for r in route[0]]


def test_same_domain_crosses_only_the_two_nics():
    _, net = two_sites()
    route = net.route(nic("east/bd1/h00"), nic("east/bd1/h01"))
    assert names(net, route) == ["nic:east/bd1/h00:tx", "nic:east/bd1/h01:rx"]
    assert route[1] == 0.0


def test_cross_domain_crosses_uplinks_and_core_and_sums_uplink_latency():
    _, net = two_sites()
    route = net.route(nic("east/bd1/h00"), nic("east/bd2/h00"))
    assert names(net, route) == ["nic:east/bd1/h00:tx", "uplink:east/bd1:up", "core:east",
                                 "uplink:east/bd2:down", "nic:east/bd2/h00:rx"]
    assert route[1] == pytest.approx(0.001 + 0.002)


def test_cross_site_adds_the_wan_direction_and_both_cores():
    _, net = two_sites()
    route = net.route(nic("east/bd2/h00"), nic("west/bd1/h00"))
    assert names(net, route) == ["nic:east/bd2/h00:tx", "uplink:east/bd2:up", "core:east",
                                 "wan:east-west:east>west", "core:west", "uplink:west/bd1:down",
                                 "nic:west/bd1/h00:rx"]
    assert route[1] == pytest.approx(0.002 + 0.030 + 0.003)
    back = net.route(nic("west/bd1/h00"), nic("east/bd2/h00"))
    assert "wan:east-west:west>east" in names(net, back)


def test_links_on_names_every_failable_link_of_the_route_in_order():
    """The links a transfer watches are exactly the uplinks, cores and WAN links its resources belong
    to, in path order (a link named once per direction it is crossed), and none inside a domain."""
    _, net = two_sites()
    assert net.links_on(nic("east/bd2/h00"), nic("west/bd1/h00")) == (
        "east/bd2", "east", "east-west", "west", "west/bd1")
    assert net.links_on(nic("west/bd1/h00"), nic("east/bd2/h00")) == (
        "west/bd1", "west", "east-west", "east", "east/bd2")
    assert net.links_on(Endpoint.disk("east/bd1/h00"), Endpoint.storage("vault")) == ("east/bd1", "east")
    assert net.links_on(nic("east/bd1/h00"), nic("east/bd1/h01")) == ()
    for link in net.links_on(nic("east/bd2/h00"), nic("west/bd1/h00")):
        assert not net.is_failed(link)  # every name is one fail_link accepts


def test_disk_and_storage_endpoints():
    _, net = two_sites()
    assert names(net, net.route(disk("east/bd1/h00"), storage("vault"))) == [
        "disk:east/bd1/h00:read", "nic:east/bd1/h00:tx", "uplink:east/bd1:up", "core:east",
        "storage:vault:write"]
    assert names(net, net.route(storage("vault"), disk("east/bd2/h00"))) == [
        "storage:vault:read", "core:east", "uplink:east/bd2:down", "nic:east/bd2/h00:rx",
        "disk:east/bd2/h00:write"]
    assert names(net, net.route(disk("east/bd1/h00"), disk("east/bd1/h01"))) == [
        "disk:east/bd1/h00:read", "nic:east/bd1/h00:tx", "nic:east/bd1/h01:rx", "disk:east/bd1/h01:write"]
    route = net.route(storage("vault"), nic("west/bd1/h00"))
    assert names(net, route) == ["storage:vault:read", "core:east", "wan:east-west:east>west", "core:west",
                                 "uplink:west/bd1:down", "nic:west/bd1/h00:rx"]
    assert route[1] == pytest.approx(0.030 + 0.003)


def test_same_host_crosses_only_its_disks():
    _, net = two_sites()
    h = "east/bd1/h00"
    assert names(net, net.route(disk(h), disk(h))) == [f"disk:{h}:read", f"disk:{h}:write"]
    assert names(net, net.route(disk(h), nic(h))) == [f"disk:{h}:read"]
    assert net.route(nic(h), nic(h)) == ((), 0.0)


def test_multi_site_routing_takes_the_least_latency_path_and_is_recomputed_on_topology_change():
    """a-b 10 ms, b-c 10 ms: a to c goes through b (20 ms, b's core crossed too).

    A direct a-c link of 50 ms is slower, so the path stays; one of 5 ms replaces it.
    """
    env = simpy.Environment()
    net = Network(env, FlowSolver(env))
    for s in "abcd":
        net.add_site(s, 100.0)
        net.add_storage(f"st-{s}", s, 10.0, 10.0)
    net.add_wan("a", "b", 10.0, 0.010)
    net.add_wan("b", "c", 10.0, 0.010)
    route = net.route(storage("st-a"), storage("st-c"))
    assert names(net, route) == ["storage:st-a:read", "core:a", "wan:a-b:a>b", "core:b", "wan:b-c:b>c",
                                 "core:c", "storage:st-c:write"]
    assert route[1] == pytest.approx(0.020)
    assert net.route(storage("st-a"), storage("st-c")) is route  # cached
    net.add_wan("a", "c", 10.0, 0.050)
    assert net.route(storage("st-a"), storage("st-c"))[1] == pytest.approx(0.020)
    with pytest.raises(ValueError, match="no WAN path"):
        net.route(storage("st-a"), storage("st-d"))
    net.add_wan("c", "d", 10.0, 0.001)
    net2 = Network(env, FlowSolver(env))
    for s in "ac":
        net2.add_site(s, 100.0)
        net2.add_storage(f"st-{s}", s, 10.0, 10.0)
    net2.add_wan("a", "c", 10.0, 0.005)
    assert net2.route(storage("st-a"), storage("st-c"))[1] == pytest.approx(0.005)


def test_transfer_pays_the_path_latency_once():
    """Cross-site 100 MB: the NICs (10 MB/s) are the bottleneck; done at 0.035 + 10 s."""
    env, net = two_sites()
    f = start_flow(net, nic("east/bd2/h00"), nic("west/bd1/h00"), 100 * MB, tag="copy")
    assert f.tag == "copy" and f.resources == net.route(nic("east/bd2/h00"), nic("west/bd1/h00"))[0]
    env.run()
    assert f.end_time == pytest.approx(0.035 + 10.0)


def test_failed_uplink_stalls_a_flow_and_repair_resumes_it():
    """Cross-domain 100 MB at 10 MB/s (latency 3 ms); uplink east/bd1 down from t=2 to t=7.

    By 2 it has sent (2 - 0.003) * 10 MB; it resumes at 7 with the rest: ends at 10.003 + 5.
    A flow inside bd1 is unaffected: 50 MB at 10 MB/s ends at 5.
    """
    env, net = two_sites()
    f = start_flow(net, nic("east/bd1/h00"), nic("east/bd2/h00"), 100 * MB)
    local = start_flow(net, nic("east/bd1/h01"), nic("east/bd1/h00"), 50 * MB)
    seen = {}

    def script():
        yield env.timeout(2.0)
        net.fail_link("east/bd1")
        assert net.is_failed("east/bd1")
        yield env.timeout(1.0)
        seen["rate"] = net.solver.rate(f)
        seen["sent"] = net.solver.sent(f)
        yield env.timeout(4.0)
        net.repair_link("east/bd1")

    env.process(script())
    env.run()
    assert seen == {"rate": 0.0, "sent": pytest.approx((2.0 - 0.003) * 10 * MB)}
    assert f.end_time == pytest.approx(10.003 + 5.0)
    assert local.end_time == pytest.approx(5.0)


def test_failed_wan_and_core_stall_their_flows():
    env, net = two_sites()
    wan = start_flow(net, nic("east/bd1/h00"), nic("west/bd1/h00"), 10 * MB)
    core = start_flow(net, nic("east/bd1/h01"), nic("east/bd2/h00"), 10 * MB)
    net.fail_link("east-west")
    net.fail_link("east")
    env.run(until=100)
    assert not wan.done.triggered and not core.done.triggered
    assert net.solver.sent(wan) == 0.0 and net.solver.n_flows == 2
    net.fail_link("east")  # a second, overlapping failure of the core
    net.repair_link("east-west")
    net.repair_link("east")
    assert net.is_failed("east") and not net.is_failed("east-west")
    env.run(until=150)
    assert net.solver.rate(core) == 0.0 and net.solver.rate(wan) == 0.0  # the WAN flow crosses the core too
    net.repair_link("east")
    net.repair_link("east")  # repairing a working link changes nothing
    env.run()
    # latency was paid at the start, during the outage; from t=150 each moves 10 MB at its NICs' 10 MB/s
    assert wan.end_time == pytest.approx(151.0)
    assert core.end_time == pytest.approx(151.0)


def test_link_names_and_errors():
    _, net = two_sites()
    assert net.link_names() == ["east", "east-west", "east/bd1", "east/bd2", "west", "west/bd1"]
    with pytest.raises(ValueError):
        net.fail_link("nowhere")
    with pytest.raises(ValueError):
        net.route(nic("east/bd9/h00"), nic("east/bd1/h00"))
    with pytest.raises(ValueError):
        net.add_host("west/bd1/h05", "east", "bd1", 1.0, 1.0, 1.0)  # name outside its domain
    with pytest.raises(ValueError):
        net.add_host("east/bd1/h00", "east", "bd1", 1.0, 1.0, 1.0)  # twice
    with pytest.raises(ValueError):
        net.add_wan("east", "west", 1.0, 0.0)
    read, write = net.storage_resources("vault")
    assert net.solver.capacity(read) == 40 * MB and net.solver.capacity(write) == 30 * MB
