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
CHECK_SECONDS = 20.0  # "a few seconds" on a loaded 2-core CI machine; typical is well under 1 s
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
    t0 = time.perf_counter()
    result = CliRunner().invoke(app, ["check", str(path)])
    elapsed = time.perf_counter() - t0
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
