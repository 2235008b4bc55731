"""Fleet-level invariants under random faults (hypothesis), checked while the run goes on and after.

- memory is never overcommitted on any host, at any sampled instant;
- a VM is on at most one host, and a running VM is on exactly one host that is up;
- a VM's incidents never overlap, and every restart takes at least detection + boot;
- every incident is closed `restarted` (or still `open` at the end): no mechanism is on, so the
  default recovery handles every stop.
"""

from __future__ import annotations

import pandas as pd
from conftest import base_scenario, load
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.infra.datacenter import RUNNING, UP
from sim.runner import Simulation

DETECTION, BOOT = 30.0, 60.0


def _watch(sim: Simulation, violations: list[str]):
    env, dc = sim.ctx.env, sim.dc
    while True:
        yield env.timeout(600.0)
        seen: dict[str, str] = {}
        for h in dc.host_list:
            if h.used_memory + h.reserved > h.capacity + 1e-6:
                violations.append(f"{env.now}: {h.name} overcommitted")
            for name in h.vms:
                if name in seen:
                    violations.append(f"{env.now}: {name} on {seen[name]} and {h.name}")
                seen[name] = h.name
        for vm in dc.vms.values():
            if vm.state == RUNNING and (vm.host is None or vm.host.state not in (UP, "maintenance")):
                violations.append(f"{env.now}: {vm.name} running without an up host")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 10_000),
    host_mtbf=st.sampled_from(["5d", "20d"]),
    vm_mtbf=st.sampled_from(["3d", "30d"]),
    outage_at=st.floats(0, 20 * 86400),
    count=st.integers(4, 110),  # up to 110 of the 120 that fit: outages make VMs wait for room
)
def test_fleet_invariants_under_random_faults(tmp_path, seed, host_mtbf, vm_mtbf, outage_at, count):
    sc = base_scenario(
        seed=seed, duration="30d",
        faults=[{"kind": "host_crash", "mtbf": host_mtbf, "repair": "6h"},
                {"kind": "vm_crash", "mtbf": vm_mtbf},
                {"kind": "broadcast_domain_outage", "at": outage_at, "target": "east/bd2", "repair": "3h"}],
    )
    sc["workloads"][0]["count"] = count
    simulation = Simulation(load(sc, tmp_path))
    violations: list[str] = []
    simulation.ctx.env.process(_watch(simulation, violations))
    out = simulation.run()
    assert violations == []
    inc = out.tables["incidents"]
    assert len(inc) > 0
    assert set(inc["outcome"]) <= {"restarted", "open"}
    closed = inc[inc["outcome"] == "restarted"]
    assert (closed["downtime_s"] >= DETECTION + BOOT - 1e-9).all()
    for _, rows in inc.sort_values("start_s").groupby("subject"):
        starts, ends = rows["start_s"].to_numpy(), rows["end_s"].to_numpy()
        assert (starts[1:] >= ends[:-1] - 1e-9).all()
    restarts = out.tables["restarts"]
    assert len(restarts) == len(closed)
    pd.testing.assert_series_equal(
        restarts["downtime_s"].sort_values().reset_index(drop=True),
        closed["downtime_s"].sort_values().reset_index(drop=True), check_names=False)
