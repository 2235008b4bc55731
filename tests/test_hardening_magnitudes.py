"""Issue 18, "magnitudes no datacenter has": each quantity has a plausible range (docs/limits.md)
beyond which it is refused naming the path and the limit's variable; the variable raises it."""

from __future__ import annotations

import pytest
from conftest import (
    base_scenario,  # noqa: I001
    load,
)

from sim.core.errors import InputError
from sim.scenario.limits import LIMITS

CASES = [
    # (override, the limit's key, a value just inside the range)
    ("infrastructure.host_profiles.std.cores=100000", "host_cores", "infrastructure.host_profiles.std.cores=4096"),
    ("infrastructure.host_profiles.std.dimms=1000000000", "host_dimms", "infrastructure.host_profiles.std.dimms=1024"),
    ("infrastructure.host_profiles.std.nic=1e30", "bandwidth", "infrastructure.host_profiles.std.nic=10000Tbps"),
    ("infrastructure.host_profiles.std.disk.read=1e30", "bandwidth", "infrastructure.host_profiles.std.disk.read=1TB/s"),
    ("infrastructure.sites.0.core=1e20", "bandwidth", "infrastructure.sites.0.core=1Pbps"),
    ("infrastructure.host_profiles.std.disk.capacity=1e30", "capacity",
     "infrastructure.host_profiles.std.disk.capacity=16EiB"),
    ("infrastructure.host_profiles.std.memory=1PiB", "memory", "infrastructure.host_profiles.std.memory=64TiB"),
]


@pytest.mark.parametrize(("bad", "key", "edge"), CASES)
def test_implausible_magnitudes_are_refused(tmp_path, bad, key, edge):
    with pytest.raises(InputError) as err:
        load(base_scenario(), tmp_path, [bad])
    (line,) = err.value.lines()
    path = bad.split("=")[0]
    assert f": {path}: expected at most " in line and f"{LIMITS[key].env} raises it" in line, line
    try:  # the edge value passes this check (another check, placement say, may still refuse it)
        load(base_scenario(), tmp_path, [edge])
    except InputError as exc:
        assert not any("raises it" in x for x in exc.lines()), exc.lines()


@pytest.mark.parametrize(("bad", "key", "edge"), CASES)
def test_the_variable_raises_each_range(tmp_path, monkeypatch, bad, key, edge):
    monkeypatch.setenv(LIMITS[key].env, "1e31")
    try:
        load(base_scenario(), tmp_path, [bad])
    except InputError as exc:
        assert not any("raises it" in x for x in exc.lines()), exc.lines()


def test_a_one_byte_vm_is_refused(tmp_path):
    with pytest.raises(InputError) as err:
        load(base_scenario(), tmp_path, ["workloads.0.vm.memory=1"])
    assert err.value.lines() == [f"{tmp_path / 'scenario.yaml'}: workloads.0.vm.memory: expected a size of at least "
                                 "1MiB (no guest OS boots in less), got 1 (from --set)"]


MECHANISM_CASES = [
    # (scenario, override, what the one line must say)
    ("replica_replacement.yaml", "mechanisms.replication.heartbeat_interval=1ns",
     "mechanisms.replication.heartbeat_interval: expected a duration of at least 1ms"),
    ("replica_replacement.yaml", "mechanisms.replication.heartbeat_interval=1000000y",
     "mechanisms.replication.heartbeat_interval: expected at most 86400 s"),
    ("replica_replacement.yaml", "mechanisms.replication.missed_heartbeats=1e30",
     "mechanisms.replication.missed_heartbeats: expected"),
    ("replica_replacement.yaml", "mechanisms.replication.missed_heartbeats=1001",
     "mechanisms.replication.missed_heartbeats: expected at most 1000 heartbeats"),
    ("session_clusters.yaml", "mechanisms.sessions.clusters.0.capacity=1000001",
     "mechanisms.sessions.clusters.0.capacity: expected at most 1000000 sessions"),
    # an empty selector list says so (it said "at most -1 replicas")
    ("replica_replacement.yaml", "mechanisms.replication.networks.0.hosts=[]",
     "mechanisms.replication.networks.0.hosts: expected selectors matching at least one host, got []"),
    # a 1:1 cluster on one host names the rule that fails (it said "no host with room")
    ("session_clusters.yaml", "mechanisms.sessions.clusters.0.hosts=[east/bd1/h00]",
     "mechanisms.sessions.clusters.0.hosts: expected at least two hosts for a 1:1 cluster (a backup never "
     "shares its active's host)"),
]


@pytest.mark.parametrize(("name", "override", "says"), MECHANISM_CASES)
def test_mechanism_magnitudes_and_messages(name, override, says):
    from pathlib import Path

    from sim.mechanisms.registry import config_models
    from sim.scenario.loader import load_scenario

    path = Path(__file__).resolve().parents[1] / "scenarios" / name
    with pytest.raises(InputError) as err:
        load_scenario(path, [override], config_models())
    assert len(err.value.lines()) == 1 and says in err.value.lines()[0], err.value.lines()
