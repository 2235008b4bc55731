"""One check of a VM's shape for every VM, a workload's or a mechanism's (``sim.infra.build``):
vCPUs above the cores of every host it may use, a disk larger than every such host's disk, a
working set larger than the VM's memory. Each is refused by ``dcsim check`` with exit 2 and one
line naming the dotted path, never a traceback."""

from __future__ import annotations

from conftest import base_scenario, write_yaml
from typer.testing import CliRunner

from sim.cli import app


def _big_hosts(sc: dict) -> dict:
    """64-core hosts with 8 TiB disks and 1 TiB of memory."""
    sc["infrastructure"]["host_profiles"]["std"].update(
        cores=64, memory="1TiB", disk={"capacity": "8TiB", "read": "2GB/s", "write": "1GB/s"})
    return sc


def _check(tmp_path, data) -> list[str]:
    path = write_yaml(tmp_path / "s.yaml", data)
    r = CliRunner().invoke(app, ["check", str(path)])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    return [ln.removeprefix(f"{path}: ") for ln in r.output.splitlines() if ln.strip()]


def _replication(node: dict) -> dict:
    net = {"name": "db", "primaries": 2, "replicas": 1, "hosts": ["east/*"], "node": node}
    return _big_hosts(base_scenario(workloads=[], mechanisms={"replication": {"networks": [net]}}))


def test_working_set_larger_than_memory_is_refused(tmp_path):
    sc = base_scenario()
    sc["workloads"][0]["vm"]["working_set"] = "17GiB"  # memory 16 GiB
    assert _check(tmp_path, sc) == [
        "workloads.0.vm.working_set: expected a working set of at most the VM's memory (16GiB), got 17GiB"]


def test_a_working_set_equal_to_memory_passes(tmp_path):
    sc = base_scenario()
    sc["workloads"][0]["vm"]["working_set"] = "16GiB"
    path = write_yaml(tmp_path / "s.yaml", sc)
    assert CliRunner().invoke(app, ["check", str(path)]).exit_code == 0


def test_workload_disk_larger_than_every_host_disk_is_refused(tmp_path):
    sc = _big_hosts(base_scenario())
    sc["workloads"][0]["vm"]["disk"] = "1PiB"
    assert _check(tmp_path, sc) == [
        "workloads.0.vm.disk: expected a disk of at most 8TiB (the largest disk of any host its placement allows), "
        "got 1PiB"]


def test_replication_node_with_more_vcpus_than_any_host_is_refused(tmp_path):
    """1,000 vCPUs on 64-core hosts: refused once (not once per node), at the network's dotted path."""
    assert _check(tmp_path, _replication({"vcpus": 1000})) == [
        "mechanisms.replication.networks.0.primaries: expected at most 64 vCPUs (the most cores of any host its "
        "placement allows), got 1000 for db-p000"]


def test_replication_node_disk_larger_than_every_host_disk_is_refused(tmp_path):
    assert _check(tmp_path, _replication({"disk": "1PiB"})) == [
        "mechanisms.replication.networks.0.primaries: expected a disk of at most 8TiB (the largest disk of any host "
        "its placement allows), got 1PiB for db-p000"]


def test_replication_node_that_fits_passes(tmp_path):
    path = write_yaml(tmp_path / "s.yaml", _replication({"vcpus": 64, "disk": "8TiB"}))
    r = CliRunner().invoke(app, ["check", str(path)])
    assert r.exit_code == 0, r.output
