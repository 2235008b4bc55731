"""Invariants of the migration engine under random migrations, host crashes and memory errors.

After every SimPy event: a VM is on exactly one host while it runs or is paused (never
two), host memory is never overcommitted (VMs + reservations <= capacity). At the end:
no reservation or migration slot leaks, and every completed migration sent at least
the VM's memory.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.infra.datacenter import PAUSED, RUNNING
from sim.runner import Simulation
from sim.scenario.loader import validate_scenario

GiB = 1024.0**3
HOSTS = [f"east/bd{d}/h0{i}" for d in (1, 2) for i in range(3)]


@st.composite
def scenarios(draw):
    n_vms = draw(st.integers(2, 7))
    vms = []
    for i in range(n_vms):
        memory = draw(st.sampled_from([2, 4, 8, 16]))
        vms.append({"name": f"w{i}", "count": 1, "vm": {
            "vcpus": 2, "memory": memory * GiB, "disk": 10 * GiB,
            "dirty_rate": draw(st.sampled_from([0.0, 50e6, 400e6, 2e9])),
            "working_set": memory * GiB * draw(st.sampled_from([0.1, 0.5, 1.0]))},
            "placement": {"hosts": [draw(st.sampled_from(HOSTS))], "spread": "pack"}})
    ops = [{"kind": "migrate", "at": draw(st.floats(0, 120)), "vm": f"w{draw(st.integers(0, n_vms - 1))}-000",
            "to": draw(st.sampled_from(HOSTS))} for _ in range(draw(st.integers(1, 10)))]
    faults = [{"kind": "host_crash", "at": draw(st.floats(0, 150)), "target": draw(st.sampled_from(HOSTS)),
               "repair": "60s"} for _ in range(draw(st.integers(0, 2)))]
    faults += [{"kind": "vm_crash", "at": draw(st.floats(0, 150)), "target": f"w{draw(st.integers(0, n_vms - 1))}-000"}
               for _ in range(draw(st.integers(0, 2)))]  # guests crashing, possibly mid-migration
    for w in vms:  # a crashed VM may restart anywhere
        w["placement"] = {"hosts": [w["placement"]["hosts"][0], *HOSTS], "spread": "pack"}
    mechanisms = {
        "live_migration": {"mode": draw(st.sampled_from(["precopy", "postcopy"])),
                           "scope": draw(st.sampled_from(["site", "broadcast_domain"])),
                           "max_per_host": draw(st.integers(1, 3))},
        "memory_error_evacuation": {"target_hosts": draw(st.sampled_from(["any", "same_domain"])),
                                    "guest_crash_probability": draw(st.sampled_from([0.0, 1.0]))},
    }
    errors = [(draw(st.floats(0, 150)), draw(st.sampled_from(HOSTS))) for _ in range(draw(st.integers(0, 3)))]
    sc = {
        "name": "prop", "seed": draw(st.integers(0, 1000)), "duration": "2h",
        "infrastructure": {
            "host_profiles": {"p": {"cores": 32, "memory": 48 * GiB, "reserved_memory": 8 * GiB, "dimms": 4,
                                    "nic": "10Gbps"}},
            "repair": "90s",
            "sites": [{"name": "east", "broadcast_domains": [
                {"name": "bd1", "hosts": 3, "profile": "p"}, {"name": "bd2", "hosts": 3, "profile": "p"}]}],
        },
        "workloads": vms, "operations": ops, "faults": faults, "mechanisms": mechanisms,
    }
    return sc, errors


def _check(sim: Simulation) -> None:
    dc = sim.dc
    where: dict[str, list[str]] = {}
    for h in dc.host_list:
        total = 0.0
        for name, vm in h.vms.items():
            where.setdefault(name, []).append(h.name)
            assert vm.host is h
            total += vm.spec.memory
        assert abs(h.used_memory - total) < 1.0
        assert h.reserved >= 0.0
        assert h.used_memory + h.reserved <= h.capacity + 1.0, f"{h.name} overcommitted"
    for vm in dc.vms.values():
        hosts = where.get(vm.name, [])
        assert len(hosts) <= 1, f"{vm.name} on {hosts}"
        if vm.state in (RUNNING, PAUSED):
            assert len(hosts) == 1, f"{vm.name} is {vm.state} on no host"
        if vm.state == PAUSED:
            assert vm.migrating


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_vm_on_one_host_and_memory_never_overcommitted(case):
    data, errors = case
    sim = Simulation(validate_scenario(data))
    env = sim.ctx.env

    def inject(at, host):
        yield env.timeout(at)
        sim.dimms.uncorrectable(sim.dc.hosts[host])

    for at, host in errors:
        env.process(inject(at, host))
    sim.start()
    duration = float(sim.scenario.duration)
    while env.peek() < duration:
        env.step()
        _check(sim)
    engine = sim.ctx.services["live_migration"]
    assert engine._slots.used == {} and engine._slots.waiting() == 0
    for h in sim.dc.host_list:
        assert h.reserved == 0.0
    m = sim.ctx.recorder.frames(duration)["migrations"]
    done = m[m["outcome"] == "completed"]
    assert (done["bytes"] >= done["memory_bytes"] - 1e-6).all()
    assert (done["rounds"] >= 1).all()
    assert (m["downtime_s"] >= 0).all()
