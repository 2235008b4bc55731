"""Metric metadata: declared once by the module that computes it, assembled by the registry."""

from __future__ import annotations

from pathlib import Path

import pytest
from platform_probe import Probe

from sim.bench import load_fleet
from sim.mechanisms.base import Mechanism, MechanismConfig
from sim.mechanisms.registry import MECHANISMS, REGISTRY, Registry, WiringError
from sim.metrics.meta import UNITS, Metric, expand, lookup
from sim.metrics.tables import table
from sim.runner import Simulation
from sim.scenario.loader import load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def test_a_stats_pattern_stands_for_its_four_statistics():
    """``x.t_s_*`` declares exactly ``x.t_s_mean``, ``_p50``, ``_p95``, ``_max`` (what ``stats`` makes)."""
    info = expand([Metric("x.t_s_*", "s", "a time", False), Metric("x.n", "count", "things")])
    assert sorted(info) == ["x.n", "x.t_s_max", "x.t_s_mean", "x.t_s_p50", "x.t_s_p95"]
    assert info["x.t_s_p95"].unit == "s" and info["x.t_s_p95"].higher_is_better is False
    assert info["x.t_s_p95"].meaning == "a time (95th percentile)"


def test_a_segment_pattern_matches_one_more_segment_only():
    info = expand([Metric("faults.*", "count", "faults of this kind")])
    assert lookup(info, "faults.host_crash").name == "faults.host_crash"
    assert lookup(info, "faults.host_crash.extra") is None
    assert lookup(info, "incidents.count") is None


def test_units_come_from_the_fixed_vocabulary():
    assert UNITS == {"s", "bytes", "bytes/s", "count", "availability", "probability", "fraction", "money",
                     "money/h", "1"}
    with pytest.raises(ValueError, match="expected a unit in"):
        Metric("x.y", "seconds", "a time")
    with pytest.raises(ValueError, match="meaning"):
        Metric("x.y", "s", "")


class _Twice(Mechanism):
    key = "twice"
    Config = MechanismConfig
    metrics = (Metric("vm.availability", "availability", "declared again"),)


class _StatsTwice(Mechanism):
    key = "stats_twice"
    Config = MechanismConfig
    metrics = (Metric("incidents.downtime_s_p95", "s", "clashes with the platform's incidents.downtime_s_*"),)


class _TableTwice(Mechanism):
    key = "table_twice"
    Config = MechanismConfig
    tables = (table("probes", "time_s"),)


def test_two_declarations_of_one_metric_are_refused_at_wiring():
    with pytest.raises(WiringError, match="metric declared twice: vm.availability"):
        Registry((*MECHANISMS, _Twice))
    with pytest.raises(WiringError, match="incidents.downtime_s_p95"):
        Registry((*MECHANISMS, _StatsTwice))


def test_two_tables_with_one_name_are_refused_at_wiring():
    with pytest.raises(WiringError, match="mechanism 'probe' and mechanism 'table_twice' both declare table"):
        Registry((*MECHANISMS, Probe, _TableTwice))
    with pytest.raises(WiringError, match="the platform and mechanism 'table_twice' both declare table 'faults'"):
        Registry((*MECHANISMS, type("_Faults", (_TableTwice,), {"tables": (table("faults", "time_s"),)})))


def test_headlines_lead_the_report():
    heads = {n for n, m in REGISTRY.metric_info().items() if m.headline}
    assert {"vm.availability", "vm.downtime_s_total", "incidents.count", "incidents.downtime_s_total",
            "memory_errors.vms_crashed", "memory_errors.vms_evacuated", "migration.downtime_s_mean"} <= heads


def _shipped():
    for path in sorted(SCENARIOS.glob("*.yaml")):
        if path.name == "fleet.yaml":
            yield path.name, lambda p=path: load_fleet(p, hosts=200, duration="30d")
        else:
            yield path.name, lambda p=path: load_scenario(p)


@pytest.mark.parametrize("name,load", list(_shipped()), ids=[n for n, _ in _shipped()])
def test_every_metric_a_shipped_scenario_produces_is_declared(name, load):
    """A run of each shipped scenario (the fleet scaled to 200 hosts and 30 days) produces no metric
    without metadata, and every produced value is a number."""
    out = Simulation(load()).run()
    undeclared = sorted(m for m in out.metrics if REGISTRY.metric(m) is None)
    assert undeclared == []
    assert len(out.metrics) > 20


def test_dcsim_metrics_lists_every_declared_metric():
    import json

    from typer.testing import CliRunner

    from sim.cli import app

    r = CliRunner().invoke(app, ["metrics", "--json"])
    assert r.exit_code == 0
    listed = json.loads(r.stdout)
    assert set(listed) == set(REGISTRY.metric_info())
    assert listed["vm.availability"] == {"unit": "availability", "higher_is_better": True,
                                         "headline": True,
                                         "meaning": "fraction of VM-time the workloads' VMs were up"}
    text = CliRunner().invoke(app, ["metrics"]).stdout.splitlines()
    assert len(text) == len(listed) and any(line.startswith("vm.availability ") for line in text)
