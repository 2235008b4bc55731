"""Invalid input: one line per problem, every problem at once, file and dotted path, never a traceback."""

from __future__ import annotations

import pytest
from dummy_registry import Dummy, DummyRegistry, LiveMigration

from sim.core.errors import InputError
from sim.scenario import load_scenario

REGISTRY = DummyRegistry({"live_migration": LiveMigration, "sessions": Dummy, "remediation": Dummy})

BASE = """\
name: errors
duration: 30d
infrastructure:
  host_profiles:
    std: {cores: 64, memory: 512GiB}
  sites:
    - name: east
      broadcast_domains:
        - {name: bd1, hosts: 4, profile: std}
        - {name: bd2, hosts: 4, profile: std}
    - name: west
      broadcast_domains:
        - {name: bd1, hosts: 2, profile: std}
  wan:
    - {sites: [east, west], bandwidth: 10Gbps, latency: 35ms}
  storage:
    - {name: vault, site: east, capacity: 2PiB, read: 4GB/s, write: 3GB/s}
clusters:
  - {name: prod, hosts: [east/bd1/*], image: {base: "8.0.2"}}
standalone_hosts:
  - {host: east/bd2/h00, derive_from: prod}
workloads:
  - name: web
    count: 8
    vm: {vcpus: 4, memory: 16GiB, disk: 100GiB}
    placement: {hosts: [east/*]}
faults:
  - {kind: host_crash, mtbf: 2y}
  - {kind: link_failure, at: 1h, target: east-west}
mechanisms: {}
operations:
  - {kind: migrate, at: 1h, vm: web-000, to: east/bd1/h01}
"""


@pytest.fixture
def lines(tmp_path, monkeypatch):
    """Writes the scenario to s.yaml and returns the error lines of loading it (as `dcsim` prints them)."""
    monkeypatch.chdir(tmp_path)

    def run(text: str, *replacements: tuple[str, str], overrides=()) -> list[str]:
        for old, new in replacements:
            assert old in text, old
            text = text.replace(old, new, 1)
        (tmp_path / "s.yaml").write_text(text)
        with pytest.raises(InputError) as info:
            load_scenario("s.yaml", overrides, registry=REGISTRY)
        assert info.value.source in ("s.yaml", "--set")
        return info.value.lines()

    return run


def test_base_is_valid(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(BASE)
    assert load_scenario(path, registry=REGISTRY).name == "errors"


# --------------------------------------------------------------------------- the file itself
def test_missing_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as info:
        load_scenario("nope.yaml", registry=REGISTRY)
    assert info.value.lines() == ["nope.yaml: no such file"]


def test_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(InputError) as info:
        load_scenario("dir.yaml", registry=REGISTRY)
    assert info.value.lines() == ["dir.yaml: expected a file, got a directory"]


def test_yaml_syntax_error(lines):
    assert lines("name: x\nduration: [1, 2\nseed: 3\n") == [
        "s.yaml: line 3, column 5: expected ',' or ']', but got ':'"
    ]
    assert lines("name: x\n  duration: 1d\n") == [
        "s.yaml: line 2, column 11: mapping values are not allowed here"
    ]


def test_duplicate_key(lines):
    assert lines("name: x\nseed: 1\nname: y\n") == ['s.yaml: line 3, column 1: found duplicate key "name"']


@pytest.mark.parametrize(
    ("text", "found"),
    [("- a\n- b\n", "a list"), ("", "nothing"), ("just text\n", '"just text"'), ("42\n", "42")],
)
def test_not_a_mapping(lines, text, found):
    assert lines(text) == [f"s.yaml: expected a mapping at the top level, got {found}"]


def test_required_sections(lines):
    assert lines("description: nothing else\n") == [
        "s.yaml: name: expected a value, got nothing",
        "s.yaml: duration: expected a value, got nothing",
        "s.yaml: infrastructure: expected a value, got nothing",
    ]


# --------------------------------------------------------------------------- schema
def test_unknown_keys_with_did_you_mean(lines):
    assert lines(BASE, ("duration: 30d", "duraton: 30d"),
                 ("vm: {vcpus: 4,", "vm: {vcpu: 4,"),
                 ("mechanisms: {}", "mechanisms: {sesions: {}, teleport: {}}"),
                 ("name: errors", "name: errors\nzzz: 1")) == [
        's.yaml: zzz: unknown key "zzz" (expected one of name, description, seed, duration, sample_interval, '
        "infrastructure, clusters, standalone_hosts, workloads, faults, mechanisms, operations)",
        's.yaml: duraton: unknown key "duraton" (did you mean "duration"?)',
        's.yaml: workloads.0.vm.vcpu: unknown key "vcpu" (did you mean "vcpus"?)',
        's.yaml: mechanisms.sesions: unknown key "sesions" (did you mean "sessions"?)',
        's.yaml: mechanisms.teleport: unknown key "teleport" (expected one of live_migration, remediation, '
        "sessions)",
    ]


def test_wrong_units(lines):
    assert lines(BASE, ("mtbf: 2y", "mtbf: soon"), ("memory: 16GiB", "memory: 16GHz"),
                 ("bandwidth: 10Gbps", "bandwidth: 10GB"), ("duration: 30d", "duration: -30d")) == [
        's.yaml: duration: expected a duration like "30s" that is not negative, got "-30d"',
        's.yaml: infrastructure.wan.0.bandwidth: expected a rate like "25Gbps" or "800MB/s", got "10GB"',
        's.yaml: workloads.0.vm.memory: expected a size like "16GiB", got "16GHz"',
        's.yaml: faults.0.mtbf: expected a duration like "30s", got "soon"',
    ]


def test_zero_where_positive(lines):
    assert lines(BASE, ("duration: 30d", "duration: 0s"), ("vcpus: 4", "vcpus: 0")) == [
        's.yaml: duration: expected a duration like "30s" greater than zero, got "0s"',
        "s.yaml: workloads.0.vm.vcpus: expected an integer of at least 1, got 0",
    ]


def test_negative_counts(lines):
    assert lines(BASE, ("count: 8", "count: -3"), ("hosts: 4, profile", "hosts: -1, profile"),
                 ("duration: 30d", "duration: 30d\nseed: -1")) == [
        "s.yaml: seed: expected a count that is not negative, got -1",
        "s.yaml: infrastructure.sites.0.broadcast_domains.0.hosts: expected a count that is not negative, got -1",
        "s.yaml: workloads.0.count: expected a count that is not negative, got -3",
    ]


def test_wrong_types(lines):
    assert lines(BASE, ("count: 8", "count: abc"), ("cores: 64", "cores: 6.5"),
                 ("duration: 30d", "duration: 30d\nseed: yes"), ('base: "8.0.2"', "base: 8.0"),
                 ("placement: {hosts: [east/*]}", "placement: {hosts: [east/*], spread: wide}"),
                 ("mechanisms: {}", "mechanisms: {remediation: {enabled: maybe}}")) == [
        "s.yaml: seed: expected an integer, got true",
        "s.yaml: infrastructure.host_profiles.std.cores: expected an integer, got 6.5",
        "s.yaml: clusters.0.image.base: expected a string, got 8.0",
        's.yaml: workloads.0.count: expected an integer, got "abc"',
        's.yaml: workloads.0.placement.spread: expected one of broadcast_domain, pack, random, got "wide"',
        's.yaml: mechanisms.remediation.enabled: expected true or false, got "maybe"',
    ]


def test_wrong_shapes(lines):
    assert lines(BASE, ("sites: [east, west]", "sites: [east, west, north]"), ("faults:\n", "faults: 3\nx:\n"),
                 ("storage:\n    - {name", "storage:\n    - 7\n    - {name")) == [
        "s.yaml: infrastructure.wan.0.sites: expected two site names like [east, west], got 3 names",
        "s.yaml: infrastructure.storage.0: expected a mapping, got 7",
        "s.yaml: faults: expected a list, got 3",
        's.yaml: x: unknown key "x" (expected one of name, description, seed, duration, sample_interval, '
        "infrastructure, clusters, standalone_hosts, workloads, faults, mechanisms, operations)",
    ]


def test_bad_names(lines):
    assert lines(BASE, ("name: errors", "name: a/b"), ("{name: bd2,", "{name: 'bd*',")) == [
        's.yaml: name: expected a name without "/", spaces at the ends or glob characters, got "a/b"',
        "s.yaml: infrastructure.sites.0.broadcast_domains.1.name: expected a name without \"/\", spaces at "
        'the ends or glob characters, got "bd*"',
    ]


def test_unknown_fault_and_operation_kinds(lines):
    assert lines(BASE, ("kind: host_crash", "kind: hostcrash"), ("{kind: link_failure, ", "{"),
                 ("kind: migrate", "kind: teleport")) == [
        "s.yaml: faults.0.kind: expected one of host_crash, broadcast_domain_outage, link_failure, site_outage, "
        'disk_failure, storage_outage, vm_crash, dimm_errors, image_drift, trace, got "hostcrash"',
        "s.yaml: faults.1.kind: expected one of host_crash, broadcast_domain_outage, link_failure, site_outage, "
        "disk_failure, storage_outage, vm_crash, dimm_errors, image_drift, trace, got nothing",
        "s.yaml: operations.0.kind: expected one of migrate, publish_image, instantiate, restore, "
        'migrate_workload, recover, got "teleport"',
    ]


def test_fault_forms(lines):
    assert lines(BASE, ("{kind: host_crash, mtbf: 2y}", "{kind: host_crash, mtbf: 2y, at: 1h, target: '*'}"),
                 ("at: 1h, target: east-west", "at: 1h"),
                 ("faults:\n", "faults:\n  - {kind: disk_failure, repair: 1h}\n"
                               "  - {kind: dimm_errors, mtbf: 1y, error_prone_fraction: 1.5}\n")) == [
        "s.yaml: faults.0: expected \"at\" and \"target\" (scheduled) or \"mtbf\" or \"time_to_failure\" (stochastic), got neither",
        's.yaml: faults.1.mtbf: unknown key "mtbf" (expected one of kind, error_prone_fraction, '
        "correctable_per_dimm_year, uncorrectable_per_dimm_year, uncorrectable_after_correctable, hosts, repair)",
        "s.yaml: faults.1.error_prone_fraction: expected a fraction from 0 to 1, got 1.5",
        's.yaml: faults.2.mtbf: expected either "at" (scheduled) or "mtbf" (stochastic), got both',
        "s.yaml: faults.3.target: expected a value (a scheduled fault needs a target), got nothing",
    ]


def test_operation_fields(lines):
    assert lines(BASE, ("{kind: migrate, at: 1h, vm: web-000, to: east/bd1/h01}",
                        "{kind: restore, at: later, workload: web, point: soon}")) == [
        's.yaml: operations.0.at: expected a duration like "30s", got "later"',
        's.yaml: operations.0.point: expected "latest" or a duration like "30s", got "soon"',
    ]


def test_mechanism_fields(lines):
    assert lines(BASE, ("mechanisms: {}", "mechanisms: {live_migration: {mode: precopi, downtime: 1s}}")) == [
        "s.yaml: mechanisms.live_migration.mode: expected one of precopy, postcopy, got \"precopi\"",
        's.yaml: mechanisms.live_migration.downtime: unknown key "downtime" (did you mean "downtime_target"?)',
    ]


# --------------------------------------------------------------------------- cross-references
def test_reference_to_missing_vm_host_cluster_workload_site(lines):
    ops = """operations:
  - {kind: migrate, at: 1h, vm: web-999, to: east/bd9/h00}
  - {kind: publish_image, at: 2h, cluster: prd, image: {base: "9"}}
  - {kind: instantiate, at: 3h, workload: wbe, site: north}
  - {kind: restore, at: 4h, workload: db}
  - {kind: migrate_workload, at: 5h, workload: web, to: wset}
  - {kind: recover, at: 6h, vm: db-000}
"""
    assert lines(BASE[: BASE.index("operations:")] + ops) == [
        's.yaml: operations.0.vm: expected an existing VM like "web-000", got "web-999"',
        's.yaml: operations.0.to: expected an existing host like "east/bd1/h00", got "east/bd9/h00"',
        's.yaml: operations.1.cluster: expected an existing cluster like "prod", got "prd"',
        's.yaml: operations.2.workload: expected an existing workload like "web", got "wbe"',
        's.yaml: operations.2.site: expected an existing site like "east", got "north"',
        's.yaml: operations.3.workload: expected an existing workload like "web", got "db"',
        's.yaml: operations.4.to: expected an existing site like "east", got "wset" (did you mean "west"?)',
        's.yaml: operations.5.vm: expected an existing VM like "web-000", got "db-000"',
    ]


def test_selectors_matching_nothing(lines):
    assert lines(BASE, ("hosts: [east/bd1/*]", "hosts: [east/bd1/*, north/*]"),
                 ("placement: {hosts: [east/*]}", "placement: {hosts: 'west/bd2/*'}"),
                 ("{kind: host_crash, mtbf: 2y}", "{kind: host_crash, mtbf: 2y, target: [east/*, eats/*]}"),
                 ("target: east-west", "target: west-east"),
                 ("faults:\n", "faults:\n  - {kind: broadcast_domain_outage, at: 1h, target: east/bd3}\n"
                               "  - {kind: site_outage, at: 1h, target: north}\n"
                               "  - {kind: storage_outage, at: 1h, target: vlt}\n"
                               "  - {kind: vm_crash, mtbf: 1y, target: db-*}\n"
                               "  - {kind: disk_failure, mtbf: 1y, target: '*/h99'}\n"
                               "  - {kind: dimm_errors, hosts: [west/bd1/*, east/bd7/*]}\n"
                               "  - {kind: image_drift, mtbf: 1y, target: east/bd2/h9}\n")) == [
        's.yaml: clusters.0.hosts.1: expected a glob matching at least one host like "east/bd1/h00", got "north/*"',
        's.yaml: workloads.0.placement.hosts: expected a glob matching at least one host like "east/bd1/h00", '
        'got "west/bd2/*"',
        "s.yaml: faults.0.target: expected a glob matching at least one broadcast domain (site/domain) like "
        '"east/bd1", got "east/bd3"',
        's.yaml: faults.1.target: expected a glob matching at least one site like "east", got "north"',
        's.yaml: faults.2.target: expected a glob matching at least one storage system like "vault", got "vlt"',
        's.yaml: faults.3.target: expected a glob matching at least one VM like "web-000", got "db-*"',
        's.yaml: faults.4.target: expected a glob matching at least one host like "east/bd1/h00", got "*/h99"',
        's.yaml: faults.5.hosts.1: expected a glob matching at least one host like "east/bd1/h00", '
        'got "east/bd7/*"',
        's.yaml: faults.6.target: expected a glob matching at least one host like "east/bd1/h00", '
        'got "east/bd2/h9"',
        's.yaml: faults.7.target.1: expected a glob matching at least one host like "east/bd1/h00", got "eats/*"',
        "s.yaml: faults.8.target: expected a glob matching at least one link (site/domain, site or a-b) like "
        '"east/bd1", got "west-east"',
    ]


def test_link_targets(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(BASE.replace("target: east-west", "target: [east-west, east, west/bd1]"))
    assert load_scenario(path, registry=REGISTRY).faults[1].target == ("east-west", "east", "west/bd1")


def test_infrastructure_references(lines):
    assert lines(BASE, ("{name: bd2, hosts: 4, profile: std}",
                        "{name: bd2, hosts: 4, profile: std}\n        - {name: bd1, hosts: 1, profile: stf}"),
                 ("- name: west", "- name: east"),
                 ("sites: [east, west]", "sites: [east, north]"),
                 ("site: east, capacity", "site: south, capacity"),
                 ("std: {cores: 64, memory: 512GiB}",
                  "std: {cores: 64, memory: 512GiB, reserved_memory: 1TiB}\n    big: {}"),
                 ("- {host: east/bd2/h00, derive_from: prod}", "[]")) == [
        "s.yaml: infrastructure.host_profiles.std.reserved_memory: expected less than the profile's memory "
        "(512GiB), got 1024GiB",
        's.yaml: infrastructure.sites.0.broadcast_domains.2.name: expected a unique broadcast domain name, '
        'got "bd1" again',
        's.yaml: infrastructure.sites.0.broadcast_domains.2.profile: expected an existing host profile like "std", '
        'got "stf"',
        's.yaml: infrastructure.sites.1.name: expected a unique site name, got "east" again',
        's.yaml: infrastructure.wan.0.sites.1: expected an existing site like "east", got "north"',
        's.yaml: infrastructure.storage.0.site: expected an existing site like "east", got "south"',
        # the WAN link is now east-north
        "s.yaml: faults.1.target: expected a glob matching at least one link (site/domain, site or a-b) like "
        '"east/bd1", got "east-west"',
    ]


def test_did_you_mean_for_defined_names(lines):
    assert lines(BASE, ("std: {cores: 64, memory: 512GiB}", "std: {cores: 64, memory: 512GiB}\n    big: {}"),
                 ("{name: bd2, hosts: 4, profile: std}", "{name: bd2, hosts: 4, profile: bgi}")) == [
        's.yaml: infrastructure.sites.0.broadcast_domains.1.profile: expected an existing host profile like "std", '
        'got "bgi" (did you mean "big"?)',
    ]


def test_wan_pairs(lines):
    assert lines(BASE, ("wan:\n", "wan:\n    - {sites: [west, west], bandwidth: 1Gbps, latency: 1ms}\n"
                                  "    - {sites: [west, east], bandwidth: 1Gbps, latency: 1ms}\n")) == [
        's.yaml: infrastructure.wan.0.sites: expected two different sites, got "west" twice',
        "s.yaml: infrastructure.wan.2.sites: expected one WAN link per pair of sites, got a second east-west link",
    ]


def test_cluster_and_standalone_references(lines):
    assert lines(BASE, ("clusters:\n", "clusters:\n  - {name: dev, hosts: [east/bd1/h00], image: {base: '1'}}\n"
                                       "  - {name: dev, hosts: [], image: {base: '1'}}\n"),
                 ("- {host: east/bd2/h00, derive_from: prod}",
                  "- {host: east/bd2/h00, derive_from: prod}\n  - {host: east/bd2/h00, derive_from: prd}\n"
                  "  - {host: east/bd1/h01, derive_from: prod}\n  - {host: east/bd9/h00, derive_from: prod}"),
                 ("workloads:\n", "workloads:\n  - {name: web, count: 1, vm: {vcpus: 1, memory: 1GiB, disk: 1GiB, "
                                  "working_set: 2GiB}}\n")) == [
        's.yaml: clusters.1.name: expected a unique cluster name, got "dev" again',
        "s.yaml: clusters.1.hosts: expected at least one host name or glob, got an empty list",
        's.yaml: clusters.2.hosts: expected hosts of no other cluster, got "east/bd1/h00" of cluster "dev"',
        's.yaml: standalone_hosts.1.host: expected a unique standalone host, got "east/bd2/h00" again',
        's.yaml: standalone_hosts.1.derive_from: expected an existing cluster like "dev", got "prd" '
        '(did you mean "prod"?)',
        's.yaml: standalone_hosts.2.host: expected a host outside every cluster, got "east/bd1/h01" of cluster '
        '"prod"',
        's.yaml: standalone_hosts.3.host: expected an existing host like "east/bd1/h00", got "east/bd9/h00"',
        's.yaml: workloads.1.name: expected a unique workload name, got "web" again',
        "s.yaml: workloads.0.vm.working_set: expected a working set of at most the VM's memory (1GiB), got 2GiB",
    ]


def test_references_with_empty_namespaces(lines):
    no_vms = BASE.replace("count: 8", "count: 0")
    assert lines(no_vms) == [
        's.yaml: operations.0.vm: expected an existing VM, got "web-000" (the scenario defines none)',
    ]


def test_mechanism_reference_hook(tmp_path, monkeypatch):
    from sim.core.errors import Problem

    class Backups(Dummy):
        storage: str = "vault"

        def check_references(self, scenario, path):
            names = [s.name for s in scenario.infrastructure.storage]
            return [] if self.storage in names else [Problem(f"{path}.storage", f"no storage {self.storage}")]

    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text(BASE.replace("mechanisms: {}", "mechanisms: {backups: {storage: tape}}"))
    with pytest.raises(InputError) as info:
        load_scenario("s.yaml", registry=DummyRegistry({"backups": Backups}))
    assert info.value.lines() == ["s.yaml: mechanisms.backups.storage: no storage tape"]


# --------------------------------------------------------------------------- all at once
def test_several_problems_reported_together(lines):
    assert lines(BASE, ("count: 8", "count: -1"), ("mtbf: 2y", "mtbf: soon"), ("kind: link_failure", "kind: lnk"),
                 ("duration: 30d", "duraton: 30d")) == [
        's.yaml: duraton: unknown key "duraton" (did you mean "duration"?)',
        "s.yaml: workloads.0.count: expected a count that is not negative, got -1",
        's.yaml: faults.0.mtbf: expected a duration like "30s", got "soon"',
        "s.yaml: faults.1.kind: expected one of host_crash, broadcast_domain_outage, link_failure, site_outage, "
        'disk_failure, storage_outage, vm_crash, dimm_errors, image_drift, trace, got "lnk"',
    ]


def test_several_reference_problems_reported_together(lines):
    assert lines(BASE, ("vm: web-000", "vm: web-100"), ("target: east-west", "target: nowhere"),
                 ("hosts: [east/*]", "hosts: [south/*]")) == [
        's.yaml: workloads.0.placement.hosts: expected a glob matching at least one host like "east/bd1/h00", '
        'got "south/*"',
        "s.yaml: faults.1.target: expected a glob matching at least one link (site/domain, site or a-b) like "
        '"east/bd1", got "nowhere"',
        's.yaml: operations.0.vm: expected an existing VM like "web-000", got "web-100"',
    ]


def test_bad_value_from_set_says_so(lines):
    assert lines(BASE, overrides=["faults.0.mtbf=soon", "seed=abc"]) == [
        's.yaml: faults.0.mtbf: expected a duration like "30s", got "soon" (from --set)',
        's.yaml: seed: expected an integer, got "abc" (from --set)',  # a key the file lacks comes last
    ]


def test_message_is_the_lines(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text(BASE.replace("count: 8", "count: -1").replace("mtbf: 2y", "mtbf: soon"))
    with pytest.raises(InputError) as info:
        load_scenario("s.yaml", registry=REGISTRY)
    assert str(info.value) == "\n".join(info.value.lines())
    assert info.value.source == "s.yaml"
