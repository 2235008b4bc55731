"""The shipped scenarios of issue 3 load, run, and tell the story their descriptions promise."""

from __future__ import annotations

from pathlib import Path

from sim.mechanisms.registry import config_models
from sim.runner import run_scenario
from sim.scenario.loader import load_scenario

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


def _run(name: str, overrides=()):
    return run_scenario(load_scenario(str(SCENARIOS / name), list(overrides), config_models()))


def test_live_migration_scenario():
    out = _run("live_migration.yaml")
    m = out.tables["migrations"].set_index("vm", drop=False)
    assert (m["outcome"] == "completed").all()
    assert len(m) == 8
    # Idle VMs: one full copy and an empty stop-and-copy round; the pause is device state + switchover.
    assert (m.loc["idle-001", "rounds"] == 2) and m.loc["idle-001", "downtime_s"] < 0.05
    # The memory muncher out-dirties the link: it stops on the 3x-memory cap with a pause of seconds
    # (Clark et al.'s MMuncher paid ~3.5 s).
    muncher = m.loc["muncher-000"]
    assert muncher["bytes"] > 3 * muncher["memory_bytes"]
    assert muncher["downtime_s"] > 1.0
    assert (m.loc[m["vm"] != "muncher-000", "downtime_s"] < 0.35).all()
    post = _run("live_migration.yaml", ["mechanisms.live_migration.mode=postcopy"])
    pm = post.tables["migrations"]
    assert (pm["bytes"] == pm["memory_bytes"] + 1024**2).all()
    assert post.metrics["migration.downtime_s_max"] < 0.05


def test_memory_errors_scenario_evacuation_pays():
    on = _run("memory_errors.yaml").metrics
    off = _run("memory_errors.yaml", ["mechanisms.memory_error_evacuation.enabled=false"]).metrics
    assert on["memory_errors.uncorrectable"] > 0
    assert on["memory_errors.vms_evacuated"] > 0
    assert on["memory_errors.vms_crashed"] < off["memory_errors.vms_crashed"]
    assert on["memory_errors.vm_downtime_s_total"] < off["memory_errors.vm_downtime_s_total"] / 10
