"""Property: mutated shipped scenarios never crash ``dcsim check``, and what it accepts runs (issue 9).

Each example takes a scenario from ``scenarios/*.yaml`` and applies one to three
mutations a careless or hostile user would make: a value of the wrong type, a
missing or misspelt key, an unknown key, a wrong unit, a huge, zero, negative or
non-finite number, deep nesting, a broken reference. ``dcsim check`` must end with
exit 0 or 2 (never a traceback) within a few seconds; a scenario it accepts must run
for one simulated hour without an exception. Derandomized, so CI sees the same
examples every time; the ``slow`` variant tries ten times as many.
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from sim.cli import app

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = {p.name: yaml.safe_load(p.read_text()) for p in sorted((ROOT / "scenarios").glob("*.yaml"))}
CHECK_SECONDS = 60.0  # a hang guard in CPU seconds of this process (other load does not count);
# the largest shipped scenario (the fleet) checks in about 4 CPU s
RUN_MAX_HOSTS = 2_000  # accepted scenarios larger than this are checked, not run (bounded test time)
RUN_MAX_VMS = 10_000


def _deep(levels: int):
    value: object = 1
    for _ in range(levels):
        value = [value]
    return value


JUNK = [
    "soon", True, False, None, [], {}, {"a": 1}, "", " ", "x" * 500,
    0, -1, -1e9, 1e308, 10**12, 10**9, math.inf, -math.inf, math.nan, 1e-300, 1e-9,
    "0s", "1e-6s", "1/0s", "1/0", "64 percent", "3 radian", "10 Hz", "1e400B", "1 s**9**9",
    "0Gbps", "1e30PiB", "1e30y", "-5m", "30d", "1ms", "2/s", "nope/*", "*", "east/nope/h99",
    "web-999", "\u0000", "\u00e9", _deep(80), _deep(10),
]


def _paths(node, prefix=()):
    """Every path into the document (mapping keys and list indices)."""
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            out.append((*prefix, k))
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.append((*prefix, i))
            out += _paths(v, (*prefix, i))
    return out


def _parent(doc, path):
    cur = doc
    for el in path[:-1]:
        cur = cur[el]
    return cur


@st.composite
def mutated(draw):
    name = draw(st.sampled_from(sorted(SHIPPED)))
    doc = copy.deepcopy(SHIPPED[name])
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _parent(doc, path)
        key = path[-1]
        op = draw(st.sampled_from(["replace", "replace", "replace", "delete", "misspell", "add", "scale"]))
        if op == "replace":
            parent[key] = copy.deepcopy(draw(st.sampled_from(JUNK)))
        elif op == "delete":
            del parent[key]
        elif op == "misspell" and isinstance(parent, dict):
            parent[f"{key}x"] = parent.pop(key)
        elif op == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "mtbf", "target", "hosts", "count"]))] = 1
        elif op == "scale" and isinstance(parent[key], (int, float)) and not isinstance(parent[key], bool):
            parent[key] = parent[key] * draw(st.sampled_from([0, -1, 10**6, 10**9, 1e-6]))
    return name, doc


def _write(tmp: Path, doc) -> Path:
    path = tmp / "mutant.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return path


def _size(doc) -> tuple[float, float]:
    try:
        hosts = sum(d["hosts"] for s in doc["infrastructure"]["sites"] for d in s["broadcast_domains"])
        vms = sum(w["count"] for w in doc.get("workloads", []))
        return float(hosts), float(vms)
    except Exception:  # noqa: BLE001 - a mutant of odd shape was accepted; size it as large
        return math.inf, math.inf


def _check_and_run(tmp_path_factory, example):
    from sim.mechanisms.registry import config_models
    from sim.runner import run_scenario
    from sim.scenario.loader import load_scenario

    _, doc = example
    path = _write(tmp_path_factory.mktemp("fuzz"), doc)
    t0 = time.process_time()
    result = CliRunner().invoke(app, ["check", str(path)])
    elapsed = time.process_time() - t0
    assert result.exit_code in (0, 2), (result.exit_code, result.output[-2000:], repr(result.exception))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert elapsed < CHECK_SECONDS, elapsed
    event(f"check exit {result.exit_code}")
    if result.exit_code != 0:
        return
    hosts, vms = _size(doc)
    if hosts > RUN_MAX_HOSTS or vms > RUN_MAX_VMS:
        return
    from sim.core.errors import InputError

    try:
        scenario = load_scenario(str(path), ["duration=1h"], config_models())
    except InputError:
        return  # valid for its own duration only (e.g. a sample_interval longer than an hour is fine)
    event("ran one simulated hour")
    try:
        run_scenario(scenario)
    except InputError:
        pass  # placement is checked when the model is built; an input error is an accepted answer
    except Exception as exc:  # noqa: BLE001 - the property: nothing else escapes
        pytest.fail(f"accepted scenario raised {exc!r}:\n{yaml.safe_dump(doc, sort_keys=False)}")


_SETTINGS = dict(derandomize=True, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                        HealthCheck.function_scoped_fixture])


@settings(max_examples=30, **_SETTINGS)
@given(example=mutated())
def test_mutated_scenarios_check_cleanly_and_run(tmp_path_factory, example):
    _check_and_run(tmp_path_factory, example)


@pytest.mark.slow
@settings(max_examples=300, **_SETTINGS)
@given(example=mutated())
def test_mutated_scenarios_check_cleanly_and_run_many(tmp_path_factory, example):
    _check_and_run(tmp_path_factory, example)


# --------------------------------------------------------------------------- experiment commands (issue 18)
# Sweep files, compare flags and report folders damaged at random: every invocation ends in exit 0
# or 2 with no traceback, and every file it did not create is left as it was.
_TINY = {"name": "fz", "seed": 3, "duration": "2h",
         "infrastructure": {"host_profiles": {"std": {"cores": 32, "memory": "256GiB", "dimms": 8, "nic": "10Gbps",
                                                      "disk": {"capacity": "4TiB", "read": "2GB/s",
                                                               "write": "1GB/s"}}},
                            "sites": [{"name": "east", "core": "400Gbps", "broadcast_domains": [
                                {"name": "bd1", "hosts": 4, "profile": "std", "uplink": "100Gbps"}]}]},
         "workloads": [{"name": "web", "count": 4, "vm": {"vcpus": 4, "memory": "16GiB", "disk": "100GiB"}}],
         "faults": [{"kind": "host_crash", "mtbf": "30d", "repair": "1h"}]}
_PATHS = ["faults.0.mtbf", "faults.00.mtbf", "faults.0.repair", "infrastructure.detection", "workloads.0.count",
          "workloads.0.vm", "workloads.0.vm.vcpus", "workloads.0.vm.memory", "seed", "duration", "", "a..b",
          "faults.9.mtbf", "nope", "workloads.0.vm.vcpus.x"]
_VALUES = ["30s", "2h", "1GiB", "25Gbps", "4/h", 0, -1, 1, 2, 3.5, 1e300, 2**70, None, True, [], {}, "abc", "5y",
           {"vcpus": 2, "memory": "4GiB", "disk": "10GiB"}]
_SMALL_LISTS = st.lists(st.sampled_from(_VALUES), max_size=3)


@st.composite
def sweep_docs(draw):
    doc: dict = {"scenario": draw(st.sampled_from(["s.yaml", "s.yaml", "missing.yaml", "", 5]))}
    if draw(st.booleans()):
        doc["replications"] = draw(st.sampled_from([1, 2, 0, -1, "x", 10**9, 2.5]))
    if draw(st.booleans()):
        doc["set"] = draw(st.one_of(st.dictionaries(st.sampled_from(_PATHS), st.sampled_from(_VALUES), max_size=2),
                                    st.sampled_from([[], "x", None])))
    if draw(st.booleans()):
        doc["grid"] = draw(st.one_of(st.dictionaries(st.sampled_from(_PATHS), st.one_of(_SMALL_LISTS,
                                                                                          st.sampled_from(_VALUES)),
                                                     max_size=2),
                                     st.sampled_from([[], "x"])))
    if draw(st.booleans()):
        bounds = st.lists(st.sampled_from(_VALUES), min_size=0, max_size=3)
        dist = st.one_of(st.dictionaries(st.sampled_from(["uniform", "loguniform", "integer", "choice", "normal"]),
                                         bounds, min_size=1, max_size=2), st.sampled_from(_VALUES))
        doc["samples"] = {"n": draw(st.sampled_from([1, 2, 3, 0, 10**9, "x"])),
                          "params": draw(st.dictionaries(st.sampled_from(_PATHS), dist, max_size=2))}
        if draw(st.booleans()):
            doc["samples"]["method"] = draw(st.sampled_from(["random", "latin_hypercube", "sobol", 1]))
    if draw(st.booleans()):
        doc[draw(st.sampled_from(["bogus", "name", "description"]))] = draw(st.sampled_from(_VALUES))
    return doc


def _tree(d: Path, skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*"))
            if p.is_file() and not p.is_symlink() and not any(part in skip for part in p.relative_to(d).parts)}


def _invoke(args: list, record: bool = True) -> object:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code in (0, 2), (args, result.exit_code, result.output[-2000:], repr(result.exception))
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, repr(result.exception))
    assert "Traceback" not in result.output
    if record:
        event(f"{args[0]} exit {result.exit_code}")
    return result


def _user_space(tmp: Path) -> None:
    write = tmp / "s.yaml"
    write.write_text(yaml.safe_dump(_TINY, sort_keys=False))
    (tmp / "mine").mkdir()
    (tmp / "mine" / "data.parquet").write_bytes(b"user bytes")
    (tmp / "notes.txt").write_text("keep")


def _sweep_case(tmp_path_factory, doc):
    tmp = tmp_path_factory.mktemp("sweepfz")
    _user_space(tmp)
    (tmp / "sweep.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    before = _tree(tmp)
    _invoke(["sweep", tmp / "sweep.yaml", "--out", tmp / "out", "--workers", "1", "--quiet"])
    assert _tree(tmp, skip=("out",)) == before


@settings(max_examples=12, **_SETTINGS)
@given(doc=sweep_docs())
def test_fuzzed_sweep_files_end_cleanly(tmp_path_factory, doc):
    _sweep_case(tmp_path_factory, doc)


@pytest.mark.slow
@settings(max_examples=250, **_SETTINGS)
@given(doc=sweep_docs())
def test_fuzzed_sweep_files_end_cleanly_many(tmp_path_factory, doc):
    _sweep_case(tmp_path_factory, doc)


_FLAGS = st.lists(st.one_of(
    st.tuples(st.just("--set"), st.builds(lambda p, v: f"{p}={v}", st.sampled_from(_PATHS),
                                          st.sampled_from(["30s", "2", "0", "abc", "1GiB", "true", "[]", ""]))),
    st.tuples(st.just("--replications"), st.sampled_from(["1", "2", "0", "-3", "abc", "1e9", "1000001", ""])),
    st.tuples(st.just("--seed"), st.sampled_from(["0", "7", "-1", "9223372036854775807", "1e20", "x"])),
    st.tuples(st.just("--workers"), st.sampled_from(["1", "0", "abc"])),
    st.tuples(st.just("--out"), st.sampled_from(["OUT", "MINE", "NOTES", "", "NOTES/x"])),
    st.tuples(st.just("--connect-timeout"), st.sampled_from(["1", "0", "x"])),
    st.tuples(st.just("--resume")), st.tuples(st.just("--allow-code-change")),
), max_size=5)


def _compare_case(tmp_path_factory, flags):
    tmp = tmp_path_factory.mktemp("cmpfz")
    _user_space(tmp)
    before = _tree(tmp)
    names = {"OUT": tmp / "out", "MINE": tmp / "mine", "NOTES": tmp / "notes.txt", "NOTES/x": tmp / "notes.txt" / "x"}
    args = ["compare", tmp / "s.yaml"]
    for flag in flags:
        args.extend(names.get(a, a) for a in flag)
    if "--out" not in args:
        args += ["--out", tmp / "out"]
    reps = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--replications"]
    if not reps or reps[-1] not in ("1", "2"):
        args += ["--replications", "1"] if not reps else []
    _invoke([*args, "--quiet"])
    assert _tree(tmp, skip=("out",)) == before


@settings(max_examples=12, **_SETTINGS)
@given(flags=_FLAGS)
def test_fuzzed_compare_flags_end_cleanly(tmp_path_factory, flags):
    _compare_case(tmp_path_factory, flags)


@pytest.mark.slow
@settings(max_examples=250, **_SETTINGS)
@given(flags=_FLAGS)
def test_fuzzed_compare_flags_end_cleanly_many(tmp_path_factory, flags):
    _compare_case(tmp_path_factory, flags)


@pytest.fixture(scope="module")
def made_folders(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("made")
    _user_space(tmp)
    assert _invoke(["run", tmp / "s.yaml", "--out", tmp / "run", "--quiet"], record=False).exit_code == 0
    assert _invoke(["compare", tmp / "s.yaml", "--set", "workloads.0.count=2", "--replications", "2", "--out",
                    tmp / "cmp", "--workers", "1", "--quiet"], record=False).exit_code == 0
    return tmp


_DAMAGES = st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(
    ["truncate", "garbage", "empty", "delete", "folder", "json_list", "json_string", "metric_text"])), min_size=1,
    max_size=3)


def _damage(d: Path, pick: int, how: str) -> None:
    import json as _json
    import shutil as _shutil

    files = sorted(p for p in d.rglob("*") if p.is_file())
    f = files[pick % len(files)]
    if how == "truncate":
        f.write_bytes(f.read_bytes()[: len(f.read_bytes()) // 2])
    elif how == "garbage":
        f.write_bytes(b"\x00garbage\xff" * 3)
    elif how == "empty":
        f.write_bytes(b"")
    elif how == "delete":
        f.unlink()
    elif how == "folder":
        f.unlink()
        f.mkdir()
    elif how == "json_list":
        f.write_text("[1, 2, 3]")
    elif how == "json_string":
        f.write_text('"text"')
    elif f.name == "summary.json":
        try:
            data = _json.loads(f.read_text())
            data["metrics"] = {k: "x" for k in data.get("metrics", {})}
            f.write_text(_json.dumps(data))
        except (ValueError, AttributeError, TypeError):
            _shutil.copyfile(f, f)


def _report_case(tmp_path_factory, made, which, damages):
    import shutil as _shutil

    tmp = tmp_path_factory.mktemp("repfz")
    d = tmp / "d"
    _shutil.copytree(made / which, d)
    for pick, how in damages:
        if any(p.is_file() for p in d.rglob("*")):
            _damage(d, pick, how)
    before = _tree(d, skip=("report",))
    _invoke(["report", d, "--quiet"])
    assert _tree(d, skip=("report",)) == before


@settings(max_examples=12, **_SETTINGS)
@given(which=st.sampled_from(["run", "cmp"]), damages=_DAMAGES)
def test_reports_of_randomly_damaged_folders_end_cleanly(tmp_path_factory, made_folders, which, damages):
    _report_case(tmp_path_factory, made_folders, which, damages)


@pytest.mark.slow
@settings(max_examples=250, **_SETTINGS)
@given(which=st.sampled_from(["run", "cmp"]), damages=_DAMAGES)
def test_reports_of_randomly_damaged_folders_end_cleanly_many(tmp_path_factory, made_folders, which, damages):
    _report_case(tmp_path_factory, made_folders, which, damages)
