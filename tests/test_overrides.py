"""``--set PATH=VALUE``: values parse as YAML, any path the schema allows, bad paths are input errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from dummy_registry import REGISTRY, Dummy, LiveMigration, Sessions

from sim.core.errors import InputError
from sim.scenario import apply_overrides, build_scenario_model, load_scenario, parse_override

FIXTURE = Path(__file__).parent / "fixtures" / "scenario_full.yaml"





MODEL = build_scenario_model(REGISTRY)


def bad(data: dict, *overrides: str) -> list[str]:
    with pytest.raises(InputError) as info:
        apply_overrides(data, overrides, MODEL)
    assert info.value.source == "--set"
    return info.value.lines()


@pytest.mark.parametrize(
    ("text", "path", "value"),
    [
        ("seed=3", "seed", 3),
        ("faults.0.mtbf=1y", "faults.0.mtbf", "1y"),
        ("mechanisms.live_migration.downtime_target=500ms", "mechanisms.live_migration.downtime_target", "500ms"),
        ("mechanisms.sessions.enabled=false", "mechanisms.sessions.enabled", False),
        ("workloads.0.placement.hosts=[east/*, west/*]", "workloads.0.placement.hosts", ["east/*", "west/*"]),
        ("description=a=b", "description", "a=b"),
        ("infrastructure.repair=", "infrastructure.repair", None),
        ("x={a: 1}", "x", {"a": 1}),
    ],
)
def test_parse_override(text, path, value):
    assert parse_override(text) == (path, value)


def test_overrides_on_the_fixture():
    sc = load_scenario(FIXTURE, ["seed=3", "faults.0.mtbf=1y", "mechanisms.live_migration.downtime_target=500ms",
                                 "workloads.0.vm.dirty_rate=100MB/s", "operations.0.to=east/bd2/h01"],
                       registry=REGISTRY)
    assert sc.seed == 3
    assert sc.faults[0].mtbf == 365 * 86400.0
    assert sc.mechanisms.live_migration.downtime_target == 0.5
    assert sc.workloads[0].vm.dirty_rate == 100e6
    assert sc.operations[0].to == "east/bd2/h01"


def test_set_keys_the_file_omits(tmp_path):
    text = FIXTURE.read_text()
    text = text[: text.index("mechanisms:")] + text[text.index("operations:"):]
    path = tmp_path / "s.yaml"
    path.write_text(text)
    plain = load_scenario(path, registry=REGISTRY)
    assert (plain.mechanisms.sessions, plain.mechanisms.remediation) == (None, None)

    sc = load_scenario(path, ["mechanisms.sessions.enabled=false", "mechanisms.remediation.enabled=true",
                              "mechanisms.live_migration.mode=postcopy", "workloads.1.vm.working_set=1GiB",
                              "infrastructure.host_profiles.std.disk.read=1GB/s", "faults.4.repair=10m",
                              "workloads.1.placement.spread=pack"], registry=REGISTRY)
    assert sc.mechanisms.sessions == Sessions(enabled=False)
    assert sc.mechanisms.remediation == Dummy(enabled=True)
    assert sc.mechanisms.live_migration == LiveMigration(mode="postcopy")
    assert sc.workloads[1].vm.working_set == 1024.0**3
    assert sc.infrastructure.host_profiles["std"].disk.read == 1e9
    assert sc.faults[4].repair == 600.0
    assert sc.workloads[1].placement.spread == "pack"


def test_command_line_wins_and_later_wins():
    sc = load_scenario(FIXTURE, ["seed=3", "seed=11"], registry=REGISTRY)
    assert sc.seed == 11


def test_pairs_from_a_sweep_grid():
    sc = load_scenario(FIXTURE, [("workloads.0.vm.dirty_rate", "10MB/s"), ("mechanisms.live_migration.mode",
                                                                           "postcopy")], registry=REGISTRY)
    assert sc.workloads[0].vm.dirty_rate == 10e6
    assert sc.mechanisms.live_migration.mode == "postcopy"


def test_file_data_is_not_changed():
    data = {"seed": 1, "mechanisms": {}}
    out = apply_overrides(data, ["seed=2", "mechanisms.sessions.enabled=false"], MODEL)
    assert data == {"seed": 1, "mechanisms": {}}
    assert out == {"seed": 2, "mechanisms": {"sessions": {"enabled": False}}}


def test_created_intermediate_mappings():
    assert apply_overrides({}, ["infrastructure.host_profiles.big.disk.read=1GB/s"], MODEL) == {
        "infrastructure": {"host_profiles": {"big": {"disk": {"read": "1GB/s"}}}}}
    # a mechanism written as a bare key (null) becomes a mapping
    assert apply_overrides({"mechanisms": {"sessions": None}}, ["mechanisms.sessions.enabled=false"], MODEL) == {
        "mechanisms": {"sessions": {"enabled": False}}}


def test_fault_keys_follow_the_items_kind():
    data = {"faults": [{"kind": "dimm_errors"}, {"kind": "host_crash", "mtbf": "1y"}, {"mtbf": "1y"}]}
    out = apply_overrides(data, ["faults.0.error_prone_fraction=0.1", "faults.1.repair=1h", "faults.2.x=1"], MODEL)
    assert out["faults"][0]["error_prone_fraction"] == 0.1
    assert out["faults"][1]["repair"] == "1h"
    assert out["faults"][2]["x"] == 1  # no kind: nothing to check against; validation reports it
    assert bad(data, "faults.0.mtbf=1y", "faults.1.error_prone_fraction=0.1") == [
        '--set: faults.0.mtbf: unknown key "mtbf" (expected one of kind, error_prone_fraction, '
        "correctable_per_dimm_year, uncorrectable_per_dimm_year, uncorrectable_after_correctable, hosts, repair)",
        '--set: faults.1.error_prone_fraction: unknown key "error_prone_fraction" (expected one of kind, at, target, '
        "mtbf, time_to_failure, repair, time_to_repair)",
    ]


def test_bad_paths():
    data = {"faults": [{"kind": "host_crash", "mtbf": "1y"}], "workloads": []}
    assert bad(data, "mechanisms.live_migrtion.mode=postcopy") == [
        '--set: mechanisms.live_migrtion.mode: unknown key "live_migrtion" (did you mean "live_migration"?)']
    assert bad(data, "sed=3") == ['--set: sed: unknown key "sed" (did you mean "seed"?)']
    assert bad(data, "mechanisms.live_migration.downtime=1s") == [
        '--set: mechanisms.live_migration.downtime: unknown key "downtime" (did you mean "downtime_target"?)']
    assert bad(data, "faults.3.mtbf=1y") == ["--set: faults.3.mtbf: expected an index from 0 to 0, got 3"]
    assert bad(data, "workloads.0.count=3") == [
        "--set: workloads.0.count: expected an index of an existing item, got 0 (workloads has no items)"]
    assert bad(data, "operations.0.at=1h") == [
        "--set: operations.0.at: expected an index of an existing item, got 0 (operations has no items)"]
    assert bad(data, "faults.first.mtbf=1y") == [
        '--set: faults.first.mtbf: expected a list index (0, 1, ...) after faults, got "first"']
    assert bad(data, "seed.0=1") == ['--set: seed.0: expected nothing after seed (a single value), got "0"']
    assert bad(data, "infrastructure.detection.x=1") == [
        '--set: infrastructure.detection.x: expected nothing after infrastructure.detection (a single value), '
        'got "x"']
    assert bad(data, "mechanisms.sessions.clusters.0=a") == [
        "--set: mechanisms.sessions.clusters.0: expected an index of an existing item, got 0 "
        "(mechanisms.sessions.clusters has no items)"]


def test_malformed_overrides():
    assert bad({}, "seed") == ['--set: seed: expected PATH=VALUE like seed=3, got "seed"']
    assert bad({}, "=3") == ['--set: =3: expected PATH=VALUE like seed=3, got "=3"']
    assert bad({}, "faults..mtbf=1y") == [
        '--set: faults..mtbf: expected a dotted path like faults.0.mtbf, got "faults..mtbf"']
    assert bad({}, "seed=[1") == ['--set: seed: expected a YAML value, got "[1"']


def test_every_bad_override_reported_together():
    assert bad({"faults": []}, "sed=3", "nothing", "faults.0.mtbf=1y", "seed=4") == [
        '--set: sed: unknown key "sed" (did you mean "seed"?)',
        '--set: nothing: expected PATH=VALUE like seed=3, got "nothing"',
        "--set: faults.0.mtbf: expected an index of an existing item, got 0 (faults has no items)",
    ]


def test_load_scenario_reports_bad_set_paths():
    with pytest.raises(InputError) as info:
        load_scenario(FIXTURE, ["mechanisms.teleport.enabled=true"], registry=REGISTRY)
    assert info.value.lines() == [
        '--set: mechanisms.teleport.enabled: unknown key "teleport" (expected one of live_migration, remediation, '
        "sessions)"]
