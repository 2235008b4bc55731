"""Remediation's cheaper evacuation choice and its pinned results.

The evacuation of a host chooses each VM's target among a tier of hosts (compliant idle hosts,
then idle hosts, then any host in reach). It used to build a placement rule per tier and ask the
placement service (``placement.choose(vm, placement.within(rule, tier), exclude=host)``); it now
scans the tier's hosts itself (``_Tier``) where the service's choice is a simple rule: the
least-used host offering the VM's memory, or the first in index order for a ``pack`` rule. These
tests hold it to the service's choice (a property over random usage, maintenance and tiers; a
VM holding a promise of room takes the service's own path, not tested here) and pin a remediation run's tables to the ones recorded before the change.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.mechanisms.remediation import _Tier
from sim.runner import Simulation
from sim.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "remediation_tables"
GiB = 1024.0**3
HOSTS = [f"east/bd{d}/h{i:02d}" for d in (1, 2) for i in range(6)]


@cache
def _scenario():
    """Two domains of six 240 GiB hosts; three workloads, one per spread, of VMs of 8 to 48 GiB."""
    import tempfile

    from conftest import base_scenario, load

    sc = base_scenario(workloads=[
        {"name": "bd", "count": 12, "placement": {"hosts": ["east/*"], "spread": "broadcast_domain"},
         "vm": {"vcpus": 2, "memory": "16GiB", "disk": "10GiB"}},
        {"name": "pk", "count": 6, "placement": {"hosts": ["east/bd1/*", "east/bd2/h0[0-3]"], "spread": "pack"},
         "vm": {"vcpus": 2, "memory": "48GiB", "disk": "10GiB"}},
        {"name": "rn", "count": 6, "placement": {"hosts": ["east/*"], "spread": "random"},
         "vm": {"vcpus": 2, "memory": "8GiB", "disk": "10GiB"}},
    ])
    sc["infrastructure"]["sites"][0]["broadcast_domains"] = [
        {"name": f"bd{d}", "hosts": 6, "profile": "std", "uplink": "100Gbps"} for d in (1, 2)]
    return load(sc, Path(tempfile.mkdtemp()))


tiers = st.lists(st.sampled_from(HOSTS), min_size=0, max_size=8, unique=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(HOSTS), st.integers(0, 200)), max_size=10),
       st.lists(st.sampled_from(HOSTS), max_size=3, unique=True),
       st.one_of(tiers, st.sampled_from([1, 2]).flatmap(
           lambda d: st.lists(st.sampled_from([h for h in HOSTS if f"bd{d}" in h]), max_size=6, unique=True))),
       st.sampled_from(HOSTS))
def test_the_tier_choice_is_the_placement_services_choice(reserved, maintenance, tier_names, exclude_name):
    """Property: with random reservations (usage and room), hosts in maintenance (no room), any
    tier (one domain or spanning both, hence the fast path and the service's own path) and any
    host excluded, ``_Tier.choose`` returns the host the placement service chooses over the tier's
    rule, for every VM of every spread, twice in a row with a reservation on the chosen host between
    (as an evacuation reserves each target before the next VM chooses)."""
    sim = Simulation(_scenario())
    dc, placement = sim.dc, sim.dc.placement
    for name, gib in reserved:
        dc.reserve(dc.hosts[name], min(gib * GiB, max(0.0, dc.hosts[name].free_memory)))
    for name in maintenance:
        dc.enter_maintenance(dc.hosts[name], "test")
    tier = [dc.hosts[n] for n in tier_names]
    exclude = dc.hosts[exclude_name]
    for vm in sorted(dc.vms.values(), key=lambda v: v.name):
        base = dc.rule_for(vm)
        for _ in range(2):
            rule = placement.within(base, tier)
            # the service draws for a random rule: both choices draw from copies of one state
            stream = placement._streams(f"placement/{vm.workload}")
            state = stream.bit_generator.state
            want = placement.choose(vm, rule, exclude=exclude)
            placement.release(rule)
            stream.bit_generator.state = state
            built: list = []
            got = _Tier(placement, base, tier).choose(vm, exclude, built)
            for r in built:
                placement.release(r)
            assert got is want, (vm.name, base.spread, [h.name for h in tier])
            if want is None:
                break
            dc.reserve(want, vm.spec.memory)


def _tables(root: Path):
    out = Simulation(load_scenario(root / "scenarios" / "remediation.yaml"), source="remediation").run()
    return {k: out.tables[k].reset_index(drop=True) for k in ("remediations", "migrations", "placements", "incidents")}


@pytest.mark.parametrize("name", ["remediations", "migrations", "placements", "incidents"])
def test_the_remediation_scenario_gives_the_tables_recorded_before_the_cheaper_choice(name):
    """``scenarios/remediation.yaml`` (a rolling cluster of two domains and a standalone host, a
    publish and a drift): every table equal, cell by cell (floats written with their shortest
    exact representation), to the one the engine and remediation recorded before the evacuation
    choice and the per-pair routes (``fixtures/remediation_tables``, made with that code)."""
    got = _tables(ROOT)[name]
    want = pd.read_csv(FIXTURES / f"{name}.csv", dtype=str, keep_default_na=False)
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want) > 0
    for c in want.columns:
        x, y = got[c], want[c]
        if pd.api.types.is_float_dtype(x):  # NaN is written as an empty cell
            y = pd.to_numeric(y.replace("", "nan"))
            pd.testing.assert_series_equal(x, y, check_exact=True, check_names=False, check_dtype=False)
        else:
            assert [str(v) for v in x] == list(y), c
