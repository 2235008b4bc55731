"""The scenario schema: values in base units, every default filled, mechanisms from a registry, round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from dummy_registry import REGISTRY, Dummy, LiveMigration, Sessions
from pydantic import BaseModel, ValidationError

from sim.scenario import (
    FAULT_KINDS,
    OPERATION_KINDS,
    build_scenario_model,
    dump_resolved,
    load_scenario,
    validate_scenario,
)
from sim.scenario.schema import DimmErrors, HostCrash, ImageDrift, Instantiate, Restore

FIXTURE = Path(__file__).parent / "fixtures" / "scenario_full.yaml"
GiB, TiB, PiB = 1024.0**3, 1024.0**4, 1024.0**5






MINIMAL = {
    "name": "tiny",
    "duration": "1d",
    "infrastructure": {
        "host_profiles": {"std": {}},
        "sites": [{"name": "east", "broadcast_domains": [{"name": "bd1", "hosts": 2, "profile": "std"}]}],
    },
}


def minimal(**changes) -> dict:
    data = yaml.safe_load(yaml.safe_dump(MINIMAL))
    data.update(changes)
    return data


@pytest.fixture(scope="module")
def full():
    return load_scenario(FIXTURE, registry=REGISTRY)


def test_full_scenario_in_base_units(full):
    assert full.name == "memory-errors"
    assert full.seed == 7
    assert full.duration == 90 * 86400.0
    assert full.sample_interval == 3600.0
    infra = full.infrastructure
    std = infra.host_profiles["std"]
    assert (std.cores, std.memory, std.dimms, std.nic) == (64, 512 * GiB, 16, 25e9 / 8)
    assert (std.disk.capacity, std.disk.read, std.disk.write) == (8 * TiB, 2e9, 1.5e9)
    assert (std.boot_time, std.reserved_memory) == (180.0, 16 * GiB)
    assert (infra.detection, infra.repair) == (30.0, 4 * 3600.0)
    east, west = infra.sites
    assert (east.name, east.region, east.core) == ("east", "us-east", 800e9 / 8)
    assert [(d.name, d.hosts, d.profile, d.uplink, d.latency) for d in east.broadcast_domains] == [
        ("bd1", 16, "std", 100e9 / 8, 0.0),
        ("bd2", 16, "std", 100e9 / 8, 0.0),
        ("bd3", 4, "std", 100e9 / 8, 0.0),
    ]
    assert west.region == "eu-west"
    (wan,) = infra.wan
    assert (wan.sites, wan.bandwidth, wan.latency) == (("east", "west"), 10e9 / 8, 0.035)
    (vault,) = infra.storage
    assert (vault.name, vault.site, vault.capacity, vault.read, vault.write) == ("vault", "east", 2 * PiB, 4e9, 3e9)
    (prod,) = full.clusters
    assert prod.hosts == ("east/bd1/*", "east/bd2/*")
    assert (prod.image.base, prod.image.addon, prod.image.components) == ("8.0.2", "oem-8.0.2", {"vsan": "8.0.2"})
    (standalone,) = full.standalone_hosts
    assert (standalone.host, standalone.derive_from, standalone.components) == ("east/bd3/h00", "prod",
                                                                                {"raid": "2.1.0"})


def test_workload_defaults(full):
    web, db = full.workloads
    assert (web.count, web.vm.vcpus, web.vm.memory, web.vm.disk) == (40, 4, 16 * GiB, 100 * GiB)
    assert (web.vm.dirty_rate, web.vm.working_set, web.vm.boot_time) == (40e6, 2 * GiB, 60.0)
    assert (web.placement.hosts, web.placement.spread, web.service) == (("east/*",), "broadcast_domain",
                                                                        "web-frontend")
    # Defaults: dirty_rate 20MB/s, working_set = memory, service = workload name.
    assert (db.vm.dirty_rate, db.vm.working_set, db.vm.boot_time) == (20e6, 64 * GiB, 60.0)
    assert (db.placement.hosts, db.placement.spread, db.service) == (("*",), "broadcast_domain", "db")


def test_faults(full):
    assert FAULT_KINDS == ("host_crash", "broadcast_domain_outage", "link_failure", "site_outage", "disk_failure",
                           "storage_outage", "vm_crash", "dimm_errors", "image_drift", "trace")
    crash, outage, dimms, link, vm_crash, drift = full.faults
    assert isinstance(crash, HostCrash)
    assert (crash.at, crash.target, crash.mtbf, crash.repair) == (None, None, 2 * 365 * 86400.0, 4 * 3600.0)
    assert (outage.kind, outage.at, outage.target, outage.repair) == ("broadcast_domain_outage", 36000.0,
                                                                      ("east/bd2",), 1800.0)
    assert (link.target, link.repair) == (("east-west",), None)  # None: infrastructure.repair at run time
    assert (vm_crash.target, vm_crash.mtbf) == (("web-*",), 365 * 86400.0)
    assert isinstance(dimms, DimmErrors)
    assert (dimms.error_prone_fraction, dimms.correctable_per_dimm_year, dimms.uncorrectable_per_dimm_year,
            dimms.uncorrectable_after_correctable, dimms.hosts, dimms.repair) == (0.08, 4.0, 0.0008, 10.0, ("*",),
                                                                                  None)
    assert isinstance(drift, ImageDrift)
    assert (drift.mtbf, drift.target) == (120 * 86400.0, None)


def test_operations(full):
    # the reserved kinds (no mechanism yet); migrate is live migration's own
    assert OPERATION_KINDS == ("publish_image", "instantiate", "restore", "migrate_workload", "recover")
    migrate, publish, instantiate, restore, move, recover = full.operations
    assert (migrate.kind, migrate.at, migrate.vm, migrate.to) == ("migrate", 3600.0, "web-000", "east/bd1/h05")
    assert (publish.cluster, publish.image.base, publish.image.components) == ("prod", "8.0.3", {"vsan": "8.0.3"})
    assert isinstance(instantiate, Instantiate)
    assert (instantiate.workload, instantiate.point, instantiate.site) == ("db", "latest", "east")
    assert isinstance(restore, Restore)
    assert restore.point == 2 * 86400.0
    assert (move.workload, move.to) == ("web", "west")
    assert (recover.at, recover.vm) == (4 * 3600.0, "db-000")


def test_minimal_scenario_fills_every_default():
    sc = validate_scenario(minimal(), registry=REGISTRY)
    assert sc.description == ""
    assert sc.seed == 0
    assert sc.sample_interval == 86400.0 / 500  # default: duration/500
    assert (sc.clusters, sc.standalone_hosts, sc.workloads, sc.faults, sc.operations) == ((), (), (), (), ())
    std = sc.infrastructure.host_profiles["std"]
    assert (std.cores, std.memory, std.dimms, std.nic, std.boot_time, std.reserved_memory) == (
        64, 512 * GiB, 16, 25e9 / 8, 180.0, 16 * GiB)
    assert (std.disk.capacity, std.disk.read, std.disk.write) == (8 * TiB, 2e9, 1.5e9)
    site = sc.infrastructure.sites[0]
    assert (site.region, site.core) == ("east", 800e9 / 8)
    assert (site.broadcast_domains[0].uplink, site.broadcast_domains[0].latency) == (100e9 / 8, 0.0)
    assert (sc.infrastructure.detection, sc.infrastructure.repair, sc.infrastructure.wan,
            sc.infrastructure.storage) == (30.0, 14400.0, (), ())


def test_mechanisms_from_registry():
    sc = validate_scenario(minimal(), registry=REGISTRY)
    # Absent: disabled (None), except live_migration, which is always there with its defaults.
    assert sc.mechanisms.live_migration == LiveMigration()
    assert (sc.mechanisms.sessions, sc.mechanisms.remediation) == (None, None)
    assert sc.mechanisms.is_enabled("live_migration")
    assert not sc.mechanisms.is_enabled("sessions")
    assert sc.mechanisms.get("nothing") is None

    sc = validate_scenario(minimal(mechanisms={"sessions": None, "remediation": {"enabled": False},
                                               "live_migration": {"mode": "postcopy"}}), registry=REGISTRY)
    assert sc.mechanisms.sessions == Sessions()  # a bare key is present, with its defaults
    assert sc.mechanisms.is_enabled("sessions")
    assert sc.mechanisms.remediation == Dummy(enabled=False)
    assert not sc.mechanisms.is_enabled("remediation")
    assert sc.mechanisms.live_migration == LiveMigration(mode="postcopy")
    assert list(type(sc.mechanisms).model_fields) == ["live_migration", "remediation", "sessions"]


def test_scenario_model_is_cached_per_registry():
    assert build_scenario_model(REGISTRY) is build_scenario_model(type(REGISTRY)(reversed(list(REGISTRY.items()))))
    assert build_scenario_model(REGISTRY) is not build_scenario_model({"live_migration": LiveMigration})
    assert list(build_scenario_model({}).model_fields["mechanisms"].annotation.model_fields) == []


def test_registry_config_needs_enabled():
    class NoSwitch(BaseModel):
        x: int = 1

    with pytest.raises(TypeError, match="has no 'enabled' field"):
        build_scenario_model({"broken": NoSwitch})


def test_models_are_frozen(full):
    with pytest.raises(ValidationError):
        full.seed = 3
    with pytest.raises(ValidationError):
        full.workloads[0].vm.memory = 1.0


def test_resolved_yaml_round_trip(full, tmp_path):
    text = dump_resolved(full)
    path = tmp_path / "scenario.resolved.yaml"
    path.write_text(text)
    again = load_scenario(path, registry=REGISTRY)
    assert again == full
    assert dump_resolved(again) == text
    data = yaml.safe_load(text)
    assert data["sample_interval"] == 3600.0
    assert data["workloads"][1]["vm"]["working_set"] == 64 * GiB
    assert data["workloads"][1]["service"] == "db"
    assert data["mechanisms"] == {
        "live_migration": {"enabled": True, "mode": "precopy", "downtime_target": 0.3},
        "sessions": {"enabled": False, "clusters": []},
    }
    assert data["faults"][0] == {"kind": "host_crash", "at": None, "target": None, "mtbf": 63072000.0,
                                 "time_to_failure": None, "repair": 14400.0, "time_to_repair": None}


def test_resolved_yaml_round_trip_of_defaults():
    sc = validate_scenario(minimal(), registry=REGISTRY)
    again = validate_scenario(yaml.safe_load(dump_resolved(sc)), registry=REGISTRY)
    assert again == sc
    assert yaml.safe_load(dump_resolved(sc))["mechanisms"] == {
        "live_migration": {"enabled": True, "mode": "precopy", "downtime_target": 0.3}}
