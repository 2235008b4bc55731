"""Issue 9, input side: every class of hostile input ends as SPEC's one line per problem, exit 2.

Classes: tracebacks on input (division by zero, deep nesting, huge counts, special
files), hangs (FIFO, absurd fault rates, many unknown keys), unclear messages
(``--seed abc``, a mapping for a quantity, control characters), physical nonsense
(zero capacities, wrong dimensions, too many vCPUs, empty targets, billions of
samples, image_drift with nothing that reads images).
"""

from __future__ import annotations

import os
import time

import pytest
import yaml
from conftest import base_scenario, write_yaml
from typer.testing import CliRunner

from sim.cli import app
from sim.core.errors import InputError
from sim.core.units import UnitError, parse_duration, parse_rate, parse_size
from sim.mechanisms.registry import config_models
from sim.scenario import load_scenario, validate_scenario


def check(tmp_path, data, *extra, name="s.yaml"):
    """(exit code, stderr lines) of ``dcsim check`` on ``data`` (a dict or raw text)."""
    path = tmp_path / name
    if isinstance(data, str):
        path.write_text(data)
    else:
        write_yaml(path, data)
    r = CliRunner().invoke(app, ["check", str(path), *extra])
    assert "Traceback" not in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    return r.exit_code, [ln for ln in r.stderr.splitlines() if ln.strip()], path


def problems(tmp_path, data, overrides=()):
    path = write_yaml(tmp_path / "s.yaml", data)
    with pytest.raises(InputError) as info:
        load_scenario(str(path), list(overrides), config_models())
    return info.value.lines()


# --------------------------------------------------------------------------- units
@pytest.mark.parametrize(("parse", "text"), [
    (parse_size, "64 percent"), (parse_size, "3 radian"), (parse_size, "5 count"),
    (parse_rate, "10 Hz"), (parse_rate, "3 percent/s"), (parse_duration, "2 GiB"),
])
def test_wrong_dimension_is_refused(parse, text):
    with pytest.raises(UnitError):
        parse(text)


@pytest.mark.parametrize(("parse", "text", "value"), [
    (parse_rate, "25Gbps", 25e9 / 8), (parse_rate, "400Mbps", 50e6), (parse_rate, "800MB/s", 800e6),
    (parse_rate, "2GiB/s", 2 * 1024**3), (parse_rate, "5Gb/s", 5e9 / 8), (parse_size, "16GiB", 16 * 1024**3),
    (parse_duration, "1y", 365 * 86400.0),
])
def test_spec_forms_still_parse(parse, text, value):
    assert parse(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["1/0s", "1/0", "1e400s", "1e308y", "1 s**9**9**9"])
def test_division_by_zero_and_infinity_are_unit_errors(text):
    with pytest.raises(UnitError):
        parse_duration(text)


def test_division_by_zero_message(tmp_path):
    sc = base_scenario(faults=[{"kind": "host_crash", "mtbf": "1/0s"}])
    assert problems(tmp_path, sc) == [
        's.yaml: faults.0.mtbf: expected a duration like "30s" (not a division by zero), got "1/0s"'
        .replace("s.yaml", str(tmp_path / "s.yaml"))
    ]


@pytest.mark.parametrize(("path", "field"), [
    ("infrastructure.host_profiles.std.nic", "nic"),
    ("infrastructure.sites.0.broadcast_domains.0.uplink", "uplink"),
    ("infrastructure.sites.0.core", "core"),
    ("infrastructure.host_profiles.std.disk.capacity", "capacity"),
    ("infrastructure.host_profiles.std.disk.read", "read"),
])
def test_zero_capacity_is_refused(tmp_path, path, field):
    lines = problems(tmp_path, base_scenario(), [f"{path}=0"])
    assert len(lines) == 1 and lines[0].split(": ")[1] == path
    assert "greater than zero" in lines[0] and lines[0].endswith("got 0 (from --set)")


def test_zero_wan_and_storage_are_refused_but_idle_vm_is_valid(tmp_path):
    sc = base_scenario()
    sc["infrastructure"]["sites"].append({"name": "west", "broadcast_domains": [
        {"name": "bd1", "hosts": 2, "profile": "std"}]})
    sc["infrastructure"]["wan"] = [{"sites": ["east", "west"], "bandwidth": 0, "latency": "35ms"}]
    sc["infrastructure"]["storage"] = [{"name": "v", "site": "east", "capacity": "1PiB", "read": 0,
                                        "write": "1GB/s"}]
    sc["workloads"][0]["vm"]["dirty_rate"] = 0
    paths = [ln.split(": ")[1] for ln in problems(tmp_path, sc)]
    assert paths == ["infrastructure.wan.0.bandwidth", "infrastructure.storage.0.read"]


def test_wrong_dimension_message(tmp_path):
    lines = problems(tmp_path, base_scenario(), ["infrastructure.host_profiles.std.memory=64 percent",
                                                 "infrastructure.host_profiles.std.nic=10 Hz"])
    source = str(tmp_path / "s.yaml")
    assert lines == [
        f'{source}: infrastructure.host_profiles.std.memory: expected a size like "16GiB", got "64 percent" '
        "(from --set)",
        f'{source}: infrastructure.host_profiles.std.nic: expected a rate like "25Gbps" or "800MB/s", '
        'got "10 Hz" (from --set)',
    ]


def test_mtbf_and_sample_interval_floor(tmp_path):
    sc = base_scenario(sample_interval="10us", faults=[{"kind": "host_crash", "mtbf": "1e-6s", "repair": "0s"}])
    lines = problems(tmp_path, sc)
    assert [ln.split(": ")[1] for ln in lines] == ["sample_interval", "faults.0.mtbf"]
    assert all("expected a duration of at least 1ms" in ln for ln in lines)


def test_mapping_where_a_quantity_belongs_says_what_was_found(tmp_path):
    lines = problems(tmp_path, base_scenario(duration={"days": 3}))
    assert lines == [f'{tmp_path / "s.yaml"}: duration: expected a duration like "30s", got a mapping']


# --------------------------------------------------------------------------- files and YAML
def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    r = CliRunner().invoke(app, ["check", str(fifo)])
    assert r.exit_code == 2
    assert r.stderr.strip() == f"{fifo}: expected a regular file, got a FIFO"


def test_dev_zero_is_refused():
    r = CliRunner().invoke(app, ["check", "/dev/zero"])
    assert r.exit_code == 2
    assert r.stderr.strip() == "/dev/zero: expected a regular file, got a character device"


def test_file_over_the_size_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("DCSIM_MAX_FILE_BYTES", "100")
    code, lines, path = check(tmp_path, "description: " + "x" * 200 + "\n")
    assert code == 2
    assert lines == [f"{path}: expected a file of at most 100 bytes (set DCSIM_MAX_FILE_BYTES to raise the "
                     "limit), got 214 bytes"]


@pytest.mark.parametrize("style", ["block", "flow"])
def test_deep_nesting_in_the_file(tmp_path, style):
    if style == "block":
        text = "a:\n" + "".join("  " * i + "b:\n" for i in range(1, 1000)) + "  " * 1000 + "c: 1\n"
    else:
        text = "a: " + "[" * 1000 + "]" * 1000 + "\n"
    code, lines, path = check(tmp_path, text)
    assert code == 2 and len(lines) == 1
    assert "expected at most 64 levels of nesting (set DCSIM_MAX_DEPTH to raise the limit), got more" in lines[0]
    assert lines[0].startswith(f"{path}: line ")


def test_deep_nesting_in_a_set_value(tmp_path):
    code, lines, _ = check(tmp_path, base_scenario(), "--set", "description=" + "[" * 1000 + "]" * 1000)
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith('--set: description: expected a YAML value, got "[[[[')
    assert "levels of nesting" in lines[0]


def test_alias_bomb_is_refused(tmp_path):
    rows = ["a: &a [1,1,1,1,1,1,1,1,1,1]"]
    for prev, cur in zip("abcdef", "bcdefg", strict=True):
        rows.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 10) + "]")
    code, lines, path = check(tmp_path, "\n".join(rows) + "\n")
    assert code == 2
    assert lines == [f"{path}: expected at most 1000000 YAML nodes with aliases expanded (set DCSIM_MAX_NODES "
                     "to raise the limit), got more"]


def test_control_character_has_line_and_column(tmp_path):
    code, lines, path = check(tmp_path, "name: t\nduration: 1d\x07\n")
    assert code == 2
    assert lines == [f"{path}: line 2, column 13: unacceptable character #x07 (special characters are not allowed)"]


def test_unknown_keys_report_is_linear(tmp_path):
    """20,000 unknown keys are reported one line each in a few seconds (was quadratic)."""
    sc = base_scenario()
    for i in range(20_000):
        sc[f"zz{i}"] = 1
    path = write_yaml(tmp_path / "s.yaml", sc)
    t0 = time.process_time()
    with pytest.raises(InputError) as info:
        load_scenario(str(path), (), config_models())
    assert len(info.value.problems) == 20_000
    # CPU seconds of this process, so other load on the machine does not count: quadratic took
    # minutes, linear takes about 2 s
    assert time.process_time() - t0 < 30


# --------------------------------------------------------------------------- command line
def test_seed_that_is_not_a_number(tmp_path):
    code, lines, _ = check(tmp_path, base_scenario(), "--seed", "abc")
    assert code == 2
    assert lines == ['--seed: expected an integer like 7, got "abc"']


def test_unknown_option_is_one_line(tmp_path):
    code, lines, _ = check(tmp_path, base_scenario(), "--bogus")
    assert code == 2
    assert lines == ["dcsim: no such option: --bogus"]


def test_negative_seed_is_a_schema_error(tmp_path):
    code, lines, path = check(tmp_path, base_scenario(), "--seed", "-3")
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"{path}: seed: ")


# --------------------------------------------------------------------------- budgets
def test_huge_host_count_is_refused_before_names(tmp_path):
    sc = base_scenario()
    sc["infrastructure"]["sites"][0]["broadcast_domains"][0]["hosts"] = 10**9
    t0 = time.process_time()
    lines = problems(tmp_path, sc)
    assert time.process_time() - t0 < 10  # CPU s: refused before 10^9 names are made
    assert lines == [
        f"{tmp_path / 's.yaml'}: infrastructure.sites.0.broadcast_domains.0.hosts: expected at most 1000000 "
        "hosts in total (fewer or smaller broadcast domains; DCSIM_MAX_HOSTS raises the limit), got 1000000004"
    ]


def test_huge_vm_count_is_refused(tmp_path):
    sc = base_scenario()
    sc["workloads"][0]["count"] = 10**9
    (line,) = problems(tmp_path, sc)
    assert line.endswith("workloads.0.count: expected at most 10000000 VMs in total (fewer VMs; DCSIM_MAX_VMS "
                         "raises the limit), got 1000000000")


def test_limits_are_raisable(tmp_path, monkeypatch):
    sc = base_scenario()
    monkeypatch.setenv("DCSIM_MAX_HOSTS", "4")
    assert "DCSIM_MAX_HOSTS" in problems(tmp_path, sc)[0]
    monkeypatch.setenv("DCSIM_MAX_HOSTS", "lots")
    with pytest.raises(InputError) as info:
        load_scenario(str(write_yaml(tmp_path / "s.yaml", sc)), (), config_models())
    assert info.value.lines() == ['DCSIM_MAX_HOSTS: expected a positive number of hosts in total, got "lots"']


def test_absurd_fault_rate_is_refused_with_the_estimate(tmp_path):
    sc = base_scenario(duration="1y", faults=[{"kind": "host_crash", "mtbf": "1ms", "repair": "0s"}])
    (line,) = problems(tmp_path, sc)
    assert line == (f"{tmp_path / 's.yaml'}: faults.0.mtbf: expected at most 5e7 expected fault and sample events "
                    "over the run (raise mtbf, select fewer targets or shorten duration; DCSIM_MAX_EVENTS raises the "
                    "limit), got about 2.5e11")


def test_billions_of_samples_are_refused(tmp_path):
    (line,) = problems(tmp_path, base_scenario(duration="100y", sample_interval="1ms"))
    assert ": sample_interval: expected at most 5e7 expected fault and sample events" in line


def test_absurd_dimm_rates_are_refused(tmp_path):
    sc = base_scenario(duration="1y", faults=[{"kind": "dimm_errors", "uncorrectable_per_dimm_year": 1e9}])
    (line,) = problems(tmp_path, sc)
    assert ": faults.0.uncorrectable_per_dimm_year: expected at most 5e7" in line


def test_fleet_benchmark_is_within_every_budget():
    """The lead's benchmark: 10,000 hosts, 100,000 VMs, a year, crashes, outages, DIMM errors."""
    sc = {
        "name": "fleet", "duration": "1y",
        "infrastructure": {
            "host_profiles": {"std": {"cores": 64, "memory": "512GiB", "dimms": 16}},
            "sites": [{"name": f"s{s}", "broadcast_domains": [
                {"name": f"bd{d}", "hosts": 50, "profile": "std"} for d in range(50)]} for s in range(4)],
        },
        "workloads": [{"name": "w", "count": 100_000, "vm": {"vcpus": 2, "memory": "8GiB", "disk": "50GiB"}}],
        "faults": [{"kind": "host_crash", "mtbf": "1y"}, {"kind": "broadcast_domain_outage", "mtbf": "5y"},
                   {"kind": "dimm_errors"}],
    }
    scenario = validate_scenario(sc, "fleet.yaml", (), config_models())
    assert sum(d.hosts for s in scenario.infrastructure.sites for d in s.broadcast_domains) == 10_000


# --------------------------------------------------------------------------- nonsense
def test_vm_with_more_vcpus_than_any_eligible_host(tmp_path):
    sc = base_scenario()
    sc["workloads"][0]["vm"]["vcpus"] = 33
    assert problems(tmp_path, sc) == [
        f"{tmp_path / 's.yaml'}: workloads.0.vm.vcpus: expected at most 32 vCPUs (the most cores of any host "
        "its placement allows), got 33"
    ]


def test_vcpu_overcommit_of_the_total_stays_allowed(tmp_path):
    sc = base_scenario()
    sc["workloads"][0].update(count=16, vm={"vcpus": 32, "memory": "8GiB", "disk": "10GiB"})
    path = write_yaml(tmp_path / "s.yaml", sc)
    assert load_scenario(str(path), (), config_models()).workloads[0].vm.vcpus == 32


@pytest.mark.parametrize("target", [[], ""])
def test_scheduled_fault_with_empty_target(tmp_path, target):
    sc = base_scenario(faults=[{"kind": "host_crash", "at": "1h", "target": target}])
    lines = problems(tmp_path, sc)
    assert len(lines) == 1 and ": faults.0.target: expected " in lines[0]


def test_image_drift_without_remediation_warns(tmp_path):
    sc = base_scenario(faults=[{"kind": "image_drift", "mtbf": "30d"}])
    code, lines, path = check(tmp_path, sc)
    assert code == 0
    assert lines == [f"warning: {path}: faults.0: image_drift changes running images, but nothing measures "
                     "or fixes them unless mechanisms.remediation is enabled"]


def test_resolved_output_of_check_is_still_yaml_with_a_warning(tmp_path):
    sc = base_scenario(faults=[{"kind": "image_drift", "mtbf": "30d"}])
    path = write_yaml(tmp_path / "s.yaml", sc)
    r = CliRunner().invoke(app, ["check", str(path)])
    assert yaml.safe_load(r.stdout)["faults"][0]["kind"] == "image_drift"
