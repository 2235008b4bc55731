"""The fleet's results pinned: the fault paths were optimised without changing a number.

``tests/fixtures/fleet_pin.yaml`` is ``scenarios/fleet.yaml`` scaled to 300 hosts (3 broadcast
domains, 3,000 workload VMs, every mechanism of the file on) for 120 days, with raised fault
rates and a scheduled domain outage, ten scheduled host crashes and a site outage, so that every
fault kind, the default recovery (including VMs waiting for room), the DIMM error model, the
remediation roll and charging all run. ``tests/fixtures/fleet_pin.json`` holds what that
scenario produced on the code *before* the optimisations of docs/performance.md ("Cost per fault,
restart and metered interval"): per table its rows and a digest of its rows (sorted, floats to 12
significant digits), the key figures (faults by kind, restarts, incidents, downtime, metered
intervals and their cost, charges, memory errors) and every summary metric (and, for information,
the SimPy events processed: not compared, since an optimisation may remove events and keep every
figure). The same scenario must give the same figures: an optimisation that changed a draw, an
order of events or a sum shows here. The second run sets ``charging.policy: cheapest``: the full
evaluation of every VM each day instead of the incremental one (no move pays for its egress in a
day here, so none is made; tests/test_charging.py checks the moves).

These are not independent closed forms: they are a regression pin. If a deliberate change of the
model moves them, regenerate the file with ``python tests/test_fleet_pin.py --write`` and say why
in the commit.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SCENARIO = HERE / "fixtures" / "fleet_pin.yaml"
EXPECTED = HERE / "fixtures" / "fleet_pin.json"
VARIANTS = {"report": (), "cheapest": ("mechanisms.charging.policy=cheapest",)}


def _cell(v) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.12g}"
    return str(v)


def _digest(df) -> str:
    rows = sorted("\x1f".join(_cell(v) for v in row) for row in df.itertuples(index=False, name=None))
    h = hashlib.sha256("\x1f".join(map(str, df.columns)).encode())
    for r in rows:
        h.update(b"\x1e" + r.encode())
    return h.hexdigest()[:16]


def figures(overrides=()) -> dict:
    from sim.mechanisms.registry import config_models
    from sim.runner import run_scenario
    from sim.scenario.loader import load_scenario

    out = run_scenario(load_scenario(str(SCENARIO), list(overrides), config_models()))
    t = out.tables
    inc = t["incidents"]
    faults = t["faults"]
    key = {
        "faults": int(len(faults)),
        "faults_by_kind": {k: int(n) for k, n in faults["kind"].value_counts().sort_index().items()},
        "restarts": int(len(t["restarts"])),
        "restart_downtime_s": float(t["restarts"]["downtime_s"].sum()),
        "incidents": int(len(inc)),
        "incident_downtime_s": float(inc["downtime_s"].sum()),
        "incidents_by_outcome": {k: int(n) for k, n in inc["outcome"].value_counts().sort_index().items()},
        "metered": int(len(t["metered"])),
        "metered_cost": float(t["metered"]["cost"].sum()),
        "charges": int(len(t["charges"])),
        "memory_errors": int(len(t["memory_errors"])),
        "migrations": int(len(t["migrations"])),
    }
    return {
        "events": int(out.events),
        "key": key,
        "tables": {name: {"rows": int(len(df)), "digest": _digest(df)} for name, df in sorted(t.items())},
        "metrics": {k: (float(v) if isinstance(v, (int, float)) else str(v)) for k, v in sorted(out.metrics.items())},
    }


def _close(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-9 * max(abs(a), abs(b))
    return a == b


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_fleet_figures_unchanged(variant):
    expected = json.loads(EXPECTED.read_text())[variant]
    got = figures(VARIANTS[variant])
    key = {k: (got["key"].get(k), v) for k, v in expected["key"].items() if not _close(got["key"].get(k), v)}
    assert not key, f"key figures changed (got, expected): {key}"
    changed = {name: (got["tables"].get(name), want) for name, want in expected["tables"].items()
               if got["tables"].get(name) != want}
    assert not changed, f"tables changed (got, expected): {changed}"
    metrics = {k: (got["metrics"].get(k), v) for k, v in expected["metrics"].items()
               if not _close(got["metrics"].get(k), v)}
    assert not metrics, f"metrics changed (got, expected): {metrics}"
    assert set(got["metrics"]) == set(expected["metrics"])


def test_the_pin_sees_every_path():
    """The fixture exercises what it claims: every generic fault kind and DIMM errors, restarts
    after waiting for room, metered intervals and charges (so a pin that ran nothing cannot pass)."""
    expected = json.loads(EXPECTED.read_text())
    key = expected["report"]["key"]
    kinds = set(key["faults_by_kind"])
    assert {"host_crash", "broadcast_domain_outage", "site_outage", "link_failure", "disk_failure",
            "storage_outage", "vm_crash", "image_drift", "dimm_errors"} <= kinds
    assert key["restarts"] > 1000 and key["metered"] > 3000 and key["charges"] > 0
    assert key["memory_errors"] > 0 and key["migrations"] > 0


if __name__ == "__main__" and "--write" in sys.argv:
    sys.path.insert(0, str(HERE.parent))
    EXPECTED.write_text(json.dumps({v: figures(o) for v, o in VARIANTS.items()}, indent=1, sort_keys=True) + "\n")
    print(f"wrote {EXPECTED}")
