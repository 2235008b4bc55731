"""Same scenario + same seed = identical metrics; another seed gives other numbers."""

from __future__ import annotations

from conftest import base_scenario, run


def _stochastic():
    return base_scenario(
        duration="120d",
        faults=[{"kind": "host_crash", "mtbf": "60d", "repair": "4h"},
                {"kind": "vm_crash", "mtbf": "30d"}],
    )


def test_same_seed_same_metrics(tmp_path):
    a = run(_stochastic(), tmp_path)
    b = run(_stochastic(), tmp_path)
    assert a.metrics == b.metrics
    assert a.events == b.events
    assert a.metrics["faults.count"] > 20  # enough events for the comparison to mean something


def test_other_seed_other_metrics(tmp_path):
    a = run(_stochastic(), tmp_path)
    b = run(_stochastic(), tmp_path, overrides=["seed=2"])
    assert a.metrics["faults.count"] > 20
    assert a.metrics != b.metrics


def test_adding_a_fault_kind_keeps_other_streams(tmp_path):
    """Common random numbers: a new vm_crash entry must not shift the host_crash draws."""
    one = base_scenario(duration="120d", faults=[{"kind": "host_crash", "mtbf": "60d", "repair": "4h"}])
    two = base_scenario(duration="120d", faults=[{"kind": "vm_crash", "mtbf": "30d"},
                                                 {"kind": "host_crash", "mtbf": "60d", "repair": "4h"}])
    fa = run(one, tmp_path).tables["faults"]
    fb = run(two, tmp_path).tables["faults"]
    ha = fa[fa["kind"] == "host_crash"][["time_s", "target"]].reset_index(drop=True)
    hb = fb[fb["kind"] == "host_crash"][["time_s", "target"]].reset_index(drop=True)
    assert len(ha) > 10
    assert ha.equals(hb)


def test_stochastic_host_crash_count_matches_rate(tmp_path):
    """8 hosts, MTBF 60 d, repair 4 h, 120 d: alternating renewal gives about
    8 x 120 / (60 + 4/24) = 15.96 failures; Poisson 99.9% bounds with mean 15.96 are [4, 31].
    Over 5 seeds (mean 79.8 in total) the 99.9% bounds are [53, 109]."""
    total = 0
    for seed in range(5):
        out = run(base_scenario(duration="120d", faults=[{"kind": "host_crash", "mtbf": "60d", "repair": "4h"}]),
                  tmp_path, overrides=[f"seed={seed}"])
        total += out.metrics.get("faults.host_crash", 0)
    assert 53 <= total <= 109


def test_same_metrics_across_processes_and_hash_seeds(tmp_path):
    """Two processes with different PYTHONHASHSEED (set and dict order of strings change) give
    identical summary metrics for the same scenario and seed: nothing depends on hash order."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    scenario = Path(__file__).resolve().parents[1] / "scenarios" / "memory_errors.yaml"
    metrics = []
    for hash_seed in ("1", "4242"):
        out = tmp_path / f"h{hash_seed}"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, "-m", "sim.cli", "run", str(scenario), "--out", str(out), "--quiet",
                        "--set", "duration=60d", "--set", "faults.0.uncorrectable_per_dimm_year=0.02"],
                       check=True, env=env)
        metrics.append(json.loads((out / "summary.json").read_text())["metrics"])
    assert metrics[0]["migration.count"] > 10
    assert metrics[0] == metrics[1]


def test_a_run_leaves_the_garbage_collector_as_it_found_it(tmp_path):
    """The build pauses the cyclic collector and the run freezes what exists at time 0: afterwards the
    collector is on (or off) as before and nothing stays frozen, so a sweep worker running many
    scenarios can free each one's objects. The numbers do not depend on it: same metrics with the
    collector off throughout. The run's young-generation threshold is undone as well."""
    import gc

    threshold = gc.get_threshold()
    on = run(_stochastic(), tmp_path)
    assert gc.isenabled() and gc.get_freeze_count() == 0 and gc.get_threshold() == threshold
    gc.disable()
    try:
        off = run(_stochastic(), tmp_path)
        assert not gc.isenabled() and gc.get_freeze_count() == 0
    finally:
        gc.enable()
    assert on.metrics == off.metrics and on.metrics["faults.count"] > 20
