"""A VM's name does not depend on its workload's count (regression: 1,001 VMs renamed web-000 to web-0000)."""

from __future__ import annotations

from conftest import base_scenario, load

from sim.runner import Simulation
from sim.scenario.names import all_vm_names, vm_name, vm_names


def test_names_keep_three_digits_past_a_thousand():
    """Hand-written: at least 3 digits, more only where the index needs them."""
    assert vm_names("web", 1001)[:2] == ["web-000", "web-001"]
    assert vm_names("web", 1001)[-2:] == ["web-999", "web-1000"]
    assert vm_name("web", 12344) == "web-12344"
    assert vm_names("web", 40) == vm_names("web", 1001)[:40]


def _scenario():
    sc = base_scenario(duration="2h")
    profile = sc["infrastructure"]["host_profiles"]["std"]
    profile.update(cores=256, memory="1TiB")
    sc["workloads"] = [{"name": "web", "count": 1000, "vm": {"vcpus": 1, "memory": "1GiB", "disk": "1GiB"}}]
    sc["operations"] = [{"kind": "migrate", "at": "10m", "vm": "web-000", "to": "east/bd1/h03"},
                        {"kind": "migrate", "at": "20m", "vm": "web-999", "to": "east/bd2/h00"}]
    return sc


def test_growing_a_workload_past_1000_keeps_references(tmp_path):
    """The same file with ``--set workloads.0.count=1001`` still validates, builds 1,001 VMs named
    web-000 .. web-1000, and both operations on web-000 and web-999 are carried out."""
    sc = load(_scenario(), tmp_path, ["workloads.0.count=1001"])
    names = all_vm_names(sc)
    assert (len(names), names[0], names[999], names[-1]) == (1001, "web-000", "web-999", "web-1000")
    out = Simulation(sc).run()
    ops = out.tables["operations"]
    assert list(ops["subject"]) == ["web-000", "web-999"]
    assert list(ops["outcome"]) == ["done", "done"]
    placed = out.tables["placements"]
    moved = placed[placed["reason"] == "migration"]
    assert sorted(moved["vm"]) == ["web-000", "web-999"]
    assert list(moved.sort_values("vm")["host"]) == ["east/bd1/h03", "east/bd2/h00"]
