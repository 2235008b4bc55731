"""docs/extending.md: every snippet runs as written (its imports included), and the ``audit``
mechanism it builds works when registered."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest
import yaml
from conftest import base_scenario, write_yaml

from sim.mechanisms.registry import MECHANISMS, Registry
from sim.runner import Simulation
from sim.scenario.loader import dump_resolved, load_scenario
from sim.scenario.validate import advisories

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def _module(i: int) -> types.ModuleType:
    """Snippet ``i`` executed as a module of its own (so pydantic resolves its annotations)."""
    name = f"extending_doc_{i}"
    mod = types.ModuleType(name)
    sys.modules[name] = mod
    exec(compile(BLOCKS[i], f"{DOC}:block{i}", "exec"), mod.__dict__)
    return mod


def test_the_page_has_its_snippets():
    assert len(BLOCKS) >= 6


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_every_snippet_runs_with_its_own_imports(i):
    _module(i)


def _storage(sc):
    sc["infrastructure"]["storage"] = [
        {"name": "san1", "site": "east", "capacity": "1PiB", "read": "10GB/s", "write": "10GB/s"},
        {"name": "san2", "site": "east", "capacity": "1PiB", "read": "10GB/s", "write": "10GB/s"}]
    return sc


def test_the_audit_mechanism_of_the_page_runs_nightly_and_on_demand(tmp_path):
    """3 days, audits at 02:00 (7,200, 93,600, 180,000 s) plus one ``audit_now`` at 1 h: 4 rows,
    each counting the 8 running web VMs (no faults); its storage resolves to the first system."""
    audit = _module(0).Audit
    reg = Registry((*MECHANISMS, audit))
    sc = _storage(base_scenario(duration="3d", mechanisms={"audit": {}},
                                operations=[{"kind": "audit_now", "at": "1h"}]))
    scenario = load_scenario(str(write_yaml(tmp_path / "s.yaml", sc)), [], reg)
    assert yaml.safe_load(dump_resolved(scenario))["mechanisms"]["audit"]["storage"] == "san1"
    out = Simulation(scenario, registry=reg).run()
    rows = out.tables["audits"]
    assert rows["time_s"].tolist() == [3600.0, 7200.0, 93600.0, 180000.0]
    assert rows["running"].tolist() == [8, 8, 8, 8] and set(rows["storage"]) == {"san1"}
    assert (out.metrics["audit.runs"], out.metrics["audit.nights"], out.metrics["audit.running_mean"]) == (4, 3, 8.0)
    assert [m for m in out.metrics if reg.metric(m) is None] == []


def test_the_audit_mechanism_checks_and_warns(tmp_path):
    audit = _module(0).Audit
    reg = Registry((*MECHANISMS, audit))
    # a storage name that does not exist: the expected/got message at its dotted path
    sc = _storage(base_scenario(mechanisms={"audit": {"storage": "sna2"}}))
    with pytest.raises(Exception) as err:
        load_scenario(str(write_yaml(tmp_path / "s.yaml", sc)), [], reg)
    assert err.value.lines()[0].endswith('mechanisms.audit.storage: expected an existing storage system like '
                                         '"san1", got "sna2" (did you mean "san2"?)')
    # no storage system at all: valid, with a warning
    scenario = load_scenario(str(write_yaml(tmp_path / "s.yaml", base_scenario(mechanisms={"audit": {}}))), [], reg)
    assert [p.path for p in advisories(scenario, reg)] == ["mechanisms.audit.storage"]
    # absent: disabled, no phase runs, its table is written empty and its counts are there
    out = Simulation(load_scenario(str(write_yaml(tmp_path / "s.yaml", base_scenario())), [], reg),
                     registry=reg).run()
    assert len(out.tables["audits"]) == 0 and out.metrics["audit.runs"] == 0


def test_the_audit_budget_counts_with_the_event_limit(tmp_path, monkeypatch):
    """1,000 days: 500 samples + 1,000 audits = 1,500 expected events, over a limit of 600; the
    audits contribute most, so the problem names ``mechanisms.audit.at``."""
    audit = _module(0).Audit
    reg = Registry((*MECHANISMS, audit))
    monkeypatch.setenv("DCSIM_MAX_EVENTS", "600")
    sc = base_scenario(duration="1000d", mechanisms={"audit": {}})
    with pytest.raises(Exception) as err:
        load_scenario(str(write_yaml(tmp_path / "s.yaml", sc)), [], reg)
    assert err.value.lines()[0].endswith(
        "mechanisms.audit.at: expected at most 600 expected fault and sample events over the run (shorten "
        "duration; DCSIM_MAX_EVENTS raises the limit), got about 1500")
