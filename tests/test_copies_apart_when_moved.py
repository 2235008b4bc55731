"""Two copies that must never share a host stay apart when both are moved at one instant.

Replication (a primary and its replica) and sessions (the two VMs of a 1:1 pair) answer
``placement_rule`` with the hosts a VM may go to given where its partner is *and where its partner
is migrating to* (the live migration engine's ``target_of``). Without the second part, two
memory-error evacuations signalled at one instant could choose the same free host for both copies:
the first move holds memory on the target but its VM is still on its source host, so the second
move's rule allowed that target too.

The scenario (tests/test_memory_errors.scenario): one broadcast domain of three 64 GiB hosts with
nothing reserved for the hypervisor (an error lands in a VM's page or in free memory, never crashes
the host), evacuation within the domain, no guest crash. A 4 GiB workload VM is pinned to h02, so
the pair is built on the two least-used hosts: the first copy on h00, its partner (kept off h00) on
h01. h02 is then the one free host either copy may use.
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_memory_errors import scenario

from sim.core.causes import HostDown
from sim.runner import Simulation
from sim.scenario.loader import validate_scenario

H0, H1, H2 = "east/bd1/h00", "east/bd1/h01", "east/bd1/h02"
NODE = {"vcpus": 1, "memory": 4 * 2**30, "disk": 2**30}


def replication(crash=0.0, **kw) -> dict:
    data = scenario(hosts=3, vms=1, placement=(H2,), evacuation={"guest_crash_probability": crash,
                                                                   "target_hosts": "same_domain"}, **kw)
    data["mechanisms"]["replication"] = {"networks": [{"name": "a", "primaries": 1, "replicas": 1,
                                                       "placement": "same_domain", "node": NODE}]}
    return data


def sessions(crash=0.0, **kw) -> dict:
    data = scenario(hosts=3, vms=1, placement=(H2,), evacuation={"guest_crash_probability": crash,
                                                                   "target_hosts": "same_domain"}, **kw)
    data["mechanisms"]["sessions"] = {"clusters": [{"name": "s", "redundancy": "1:1", "active": 1,
                                                    "vm": {"vcpus": 1, "memory": "4GiB", "disk": "1GiB"}}]}
    return data


PAIRS = {"replication": (replication, ("a-p000", "a-p000-r1")), "sessions": (sessions, ("s-000", "s-001"))}


def simulate(build, errors=(), crashes=(), **kw):
    """The simulation of ``build(**kw)`` with uncorrectable errors and host crashes injected at
    ``(time, host name)``, in the order given (same instant: that order)."""
    sim = Simulation(validate_scenario(build(**kw)))
    env = sim.ctx.env

    def at(t, fn):
        yield env.timeout(t)
        fn()

    for t, h in errors:
        env.process(at(t, lambda h=h: sim.dimms.uncorrectable(sim.dc.hosts[h], dimm=2)))
    for t, h in crashes:
        env.process(at(t, lambda h=h, t=t: sim.dc.host_down(sim.dc.hosts[h], HostDown(at=t, host=h))))
    return sim


def run_apart(sim, first, second):
    """Runs ``sim`` to its end, asserting after every SimPy event that the two VMs never share a host;
    returns its tables."""
    sim.start()
    env = sim.ctx.env
    end = float(sim.scenario.duration)
    a, b = sim.dc.vms[first], sim.dc.vms[second]
    while env.peek() <= end:
        env.step()
        assert a.host is None or a.host is not b.host, (env.now, a.host.name)
    env.run(until=end)
    for fn in sim.ctx.finalizers:
        fn(env.now)
    return sim.ctx.recorder.frames(end)


def check_one_free_host(kind):
    """Errors on h00 and h01 at 100 s (h00's injected first). Both are signalled at 101 s: each host
    enters maintenance and starts moving its VM, h00's first. The first copy (on h00) may go to its
    domain off its partner's host h01, {h00, h02}; the failing host excluded: h02, where a migration
    starts and holds its memory. Its partner (on h01) may go off h00 (where the first copy still is)
    and off h02 (where it is going): {h01}, the failing host: nowhere. It is not moved (no migration
    row) and is shut down when h01 goes to repair, at 101 s. Without the target in the rule both moved
    to h02 and shared it from the end of their migrations."""
    build, (first, second) = PAIRS[kind]
    sim = simulate(build, errors=[(100.0, H0), (100.0, H1)], duration="2h")
    assert [sim.dc.vms[first].host.name, sim.dc.vms[second].host.name] == [H0, H1]
    t = run_apart(sim, first, second)
    m = t["migrations"]
    mine = m[m["vm"].isin([first, second])]
    assert mine["vm"].tolist() == [first]
    assert mine["target"].tolist() == [H2]
    assert mine["outcome"].tolist() == ["completed"]
    me = t["memory_errors"].sort_values("host")
    assert me["vms_evacuated"].tolist() == [1, 0]
    assert me["vms_crashed"].tolist() == [0, 1]
    assert me["end_s"].iloc[1] == 101.0
    return sim, t


def test_replication_two_moves_at_one_instant_never_pick_one_host_for_both_copies():
    check_one_free_host("replication")


def test_sessions_two_moves_at_one_instant_never_pick_one_host_for_both_vms_of_a_pair():
    check_one_free_host("sessions")


events = st.lists(st.tuples(st.sampled_from(["error", "crash"]), st.integers(0, 40), st.integers(0, 2)),
                  max_size=8)


@settings(max_examples=20, deadline=None)
@given(kind=st.sampled_from(sorted(PAIRS)), events=events)
@example(kind="replication", events=[("error", 0, 0), ("error", 0, 1)])
@example(kind="sessions", events=[("error", 0, 0), ("error", 0, 1)])
def test_the_two_copies_never_share_a_host(kind, events):
    """Uncorrectable errors and host crashes at random times on a 10 s grid (several at one instant)
    on the three hosts, the VM whose page an error hits crashing with probability 1/2: after every SimPy event the two copies of
    a replication group, or the two VMs of a 1:1 pair, are never on one host, whoever moved or
    restarted them (evacuation, promotion, rebuild, restart: each chooses by the owner's rule)."""
    build, (first, second) = PAIRS[kind]
    errors = [(10.0 * t + 1, sorted_host(h)) for k, t, h in events if k == "error"]
    crashes = [(10.0 * t + 1, sorted_host(h)) for k, t, h in events if k == "crash"]
    sim = simulate(build, errors=errors, crashes=crashes, duration="3h", crash=0.5)
    run_apart(sim, first, second)


def sorted_host(i: int) -> str:
    return (H0, H1, H2)[i]
