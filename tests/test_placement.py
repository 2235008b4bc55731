"""Placement never overcommits memory, keeps every VM on one allowed host, follows its rule."""

from __future__ import annotations

import simpy
from conftest import base_scenario, load
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sim.core.context import Context
from sim.core.streams import Streams
from sim.infra.build import build_datacenter
from sim.metrics.recorder import Recorder

GiB = 2**30


def _build(sc):
    env = simpy.Environment()
    ctx = Context(env=env, streams=Streams(sc.seed), recorder=Recorder(env), scenario=sc)
    return build_datacenter(ctx)


def _check_invariants(dc):
    for h in dc.host_list:
        assert h.used_memory + h.reserved <= h.capacity + 1e-6
        assert h.used_memory == sum(v.spec.memory for v in h.vms.values())
    for vm in dc.vms.values():
        if vm.host is not None:
            assert vm.host.vms[vm.name] is vm
            assert vm.host.name in vm.allowed
    placed = [name for h in dc.host_list for name in h.vms]
    assert len(placed) == len(set(placed))  # one host per VM


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    mem=st.sampled_from([32, 64, 128]),
    counts=st.lists(st.integers(0, 12), min_size=1, max_size=3),
    vm_mem=st.lists(st.sampled_from([2, 4, 8, 16, 24]), min_size=3, max_size=3),
    spread=st.sampled_from(["broadcast_domain", "pack", "random"]),
)
@example(mem=32, counts=[9], vm_mem=[16, 16, 16], spread="pack")  # 9 x 16 GiB in 8 x 24 GiB: one does not fit
def test_placement_never_overcommits(tmp_path, mem, counts, vm_mem, spread):
    sc = base_scenario(workloads=[
        {"name": f"w{i}", "count": c, "vm": {"vcpus": 2, "memory": f"{vm_mem[i]}GiB", "disk": "10GiB"},
         "placement": {"hosts": ["east/*"], "spread": spread}}
        for i, c in enumerate(counts)
    ])
    sc["infrastructure"]["host_profiles"]["std"]["memory"] = f"{mem}GiB"
    sc["infrastructure"]["host_profiles"]["std"]["reserved_memory"] = "8GiB"
    dc, problems = _build(load(sc, tmp_path))
    _check_invariants(dc)
    capacity = 8 * (mem - 8) * GiB
    demand = sum(c * vm_mem[i] * GiB for i, c in enumerate(counts))
    unplaced = sum(1 for v in dc.vms.values() if v.host is None)
    if spread == "pack" and len(set(vm_mem)) == 1:
        # equal sizes, first fit: every host takes floor(capacity / size) VMs before the next is tried
        per_host = (mem - 8) // vm_mem[0]
        assert unplaced == max(0, sum(counts) - 8 * per_host)
    if demand > capacity:
        assert unplaced > 0
    assert bool(problems) == (unplaced > 0)


def test_spread_deals_round_robin_over_domains(tmp_path):
    """8 VMs over 2 domains x 4 hosts: 4 per domain, one per host (least-used host first)."""
    dc, _ = _build(load(base_scenario(), tmp_path))
    per_host = {h.name: len(h.vms) for h in dc.host_list}
    assert set(per_host.values()) == {1}
    assert dc.vms["web-000"].host.domain.name != dc.vms["web-001"].host.domain.name


def test_pack_is_first_fit_by_name(tmp_path):
    """Hosts give 256 - 16 = 240 GiB; 16 GiB VMs: 15 per host. 20 VMs -> h00 gets 15, h01 gets 5."""
    sc = base_scenario(workloads=[{"name": "p", "count": 20, "vm": {"vcpus": 1, "memory": "16GiB",
                                   "disk": "1GiB"}, "placement": {"hosts": ["east/*"], "spread": "pack"}}])
    dc, problems = _build(load(sc, tmp_path))
    assert not problems
    assert len(dc.hosts["east/bd1/h00"].vms) == 15
    assert len(dc.hosts["east/bd1/h01"].vms) == 5


def test_unplaceable_workload_is_a_problem(tmp_path):
    """4 hosts x 240 GiB = 960 GiB < 100 x 16 GiB: the workload does not fit."""
    sc = base_scenario(workloads=[{"name": "big", "count": 100, "vm": {"vcpus": 1, "memory": "16GiB",
                                   "disk": "1GiB"}, "placement": {"hosts": ["east/bd1/*"]}}])
    _, problems = _build(load(sc, tmp_path))
    assert [p.path for p in problems] == ["workloads.0.count"]


def test_built_names_match_the_names_validation_checks(tmp_path):
    """Fault targets and references are validated against names computed from the scenario; the
    injectors act on the built datacenter's names. Both must be the same lists, or a validated
    target could be missing at run time. 128 hosts in one domain exercises the wider padding."""
    from sim.scenario.names import all_domain_names, all_host_names, all_vm_names, link_names

    sc = base_scenario()
    sc["infrastructure"]["sites"].append({"name": "west", "broadcast_domains": [
        {"name": "big", "hosts": 128, "profile": "std"}]})
    sc["infrastructure"]["wan"] = [{"sites": ["east", "west"], "bandwidth": "10Gbps", "latency": "30ms"}]
    scenario = load(sc, tmp_path)
    dc, _ = _build(scenario)
    infra = scenario.infrastructure
    assert list(dc.hosts) == all_host_names(infra)
    assert "west/big/h127" in dc.hosts and "west/big/h000" in dc.hosts
    assert list(dc.domains) == all_domain_names(infra)
    assert list(dc.vms) == all_vm_names(scenario)
    assert dc.network.link_names() == sorted(link_names(infra))
    assert "east-west" in dc.network.link_names()
