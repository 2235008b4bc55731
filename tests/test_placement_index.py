"""The placement index gives the brute-force scan's choices; waiting VMs wake only for room that fits.

A datacenter is built directly (no scenario) so host capacities can differ inside a domain.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.core.causes import HostDown
from sim.core.context import Context
from sim.core.streams import Streams
from sim.infra.datacenter import BOOTING, DOWN, REPAIR, UP, VM, Datacenter, VMSpec
from sim.infra.network import Network
from sim.infra.placement import choose_host_scan, deal_scan
from sim.infra.solver import FlowSolver
from sim.metrics.recorder import Recorder

GiB = 2**30


def _profile(memory_gib: float, reserved_gib: float = 0.0):
    return SimpleNamespace(cores=32, memory=memory_gib * GiB, reserved_memory=reserved_gib * GiB, dimms=8,
                           nic=1e9, disk=SimpleNamespace(capacity=1e12, read=1e9, write=1e9), boot_time=60.0)


def make_dc(domains: list[list[float]], seed: int = 1) -> Datacenter:
    """A datacenter of one site whose domain ``d`` has hosts of ``domains[d]`` GiB each."""
    env = simpy.Environment()
    ctx = Context(env=env, streams=Streams(seed), recorder=Recorder(env), scenario=None)
    dc = Datacenter(ctx, Network(env, FlowSolver(env)))
    site = dc.add_site("s", "r", 1e11)
    for d, sizes in enumerate(domains):
        dom = dc.add_domain(site, f"bd{d}", 1e10, 1e-4)
        for i, gib in enumerate(sizes):
            dc.add_host(dom, f"s/bd{d}/h{i:02d}", "p", _profile(gib, 2.0))
    return dc


def make_vm(dc: Datacenter, name: str, workload: str, gib: float, rule) -> VM:
    spec = VMSpec(vcpus=1, memory=gib * GiB, disk=1e9, dirty_rate=1e6, working_set=gib * GiB, boot_time=60.0)
    return dc.add_vm(VM(name, workload, spec, workload, tuple(h.name for h in rule.hosts), rule.spread,
                        rule=rule))


def check_invariants(dc: Datacenter) -> None:
    for h in dc.host_list:
        assert h.used_memory + h.reserved <= h.capacity + 1e-6
        assert abs(h.used_memory - sum(v.spec.memory for v in h.vms.values())) < 1e-3


def check_choices(dc: Datacenter, rules, probes, exclude=None) -> None:
    """For every rule and probe VM: the index's choice equals the scan (pack, broadcast_domain), or
    fits (random) and is None exactly when the scan finds nothing."""
    for rule in rules:
        candidates = list(rule.hosts)
        for vm in probes:
            got = dc.placement.choose(vm, rule, exclude=exclude, rng=np.random.default_rng(0))
            want = choose_host_scan(vm, candidates, rule.spread, np.random.default_rng(0), exclude=exclude)
            if rule.spread == "random":
                assert (got is None) == (want is None)
                if got is not None:
                    assert got.fits(vm) and got is not exclude and got in rule
            else:
                assert got is want, (rule, vm.spec.memory / GiB, exclude, got, want)


def host_op(dc: Datacenter, kind: str, host, vm: VM, b: int, held: dict[int, float]) -> None:
    """One random change of a host's room or state (``held``: bytes the test reserved per host)."""
    match kind:
        case "unplace":
            if vm.host is not None:
                dc.unplace(vm)
        case "down":
            dc.host_down(host, HostDown(at=0.0, host=host.name), DOWN if b % 2 else REPAIR)
        case "repair":
            if host.faults:
                dc.host_repaired(host)
        case "maint_in":
            dc.enter_maintenance(host, "t")
        case "maint_out":
            dc.exit_maintenance(host, "t")
        case "reserve":
            amount = min(host.free_memory, (b % 5 + 1) * GiB)
            if amount > 0 and host.state in (UP, "maintenance"):
                dc.reserve(host, amount)
                held[host.index] = held.get(host.index, 0.0) + amount
        case "unreserve":
            if held.get(host.index):
                dc.unreserve(host, held.pop(host.index))
        case "move":
            if vm.host is not None and host is not vm.host and host.fits(vm) and host in vm.rule:
                dc.reserve(host, vm.spec.memory)
                dc.move(vm, host, vm.spec.memory)


capacities = st.sampled_from([8, 16, 24, 40, 64])
layouts = st.lists(st.lists(capacities, min_size=1, max_size=5), min_size=1, max_size=4)
op = st.tuples(st.sampled_from(["place", "place", "place", "unplace", "down", "repair", "maint_in",
                                "maint_out", "reserve", "unreserve", "move"]),
               st.integers(0, 10_000), st.integers(0, 10_000))


@settings(max_examples=120, deadline=None)
@given(layout=layouts, ops=st.lists(op, max_size=60), sizes=st.lists(st.sampled_from([2, 4, 6, 8, 14]),
                                                                      min_size=4, max_size=4))
def test_index_choices_equal_the_scan(layout, ops, sizes):
    dc = make_dc(layout)
    p = dc.placement
    hosts = dc.host_list
    subset = [h for i, h in enumerate(hosts) if i % 2 == 0]
    rules = [p.rule([h.name for h in hosts], s) for s in ("broadcast_domain", "pack", "random")]
    rules += [p.rule(subset, s) for s in ("broadcast_domain", "pack", "random")]
    vms = [make_vm(dc, f"v{i:02d}", f"w{i % 2}", sizes[i % 4], rules[i % len(rules)]) for i in range(24)]
    probes = vms[:4]
    held: dict[int, float] = {}  # host index -> bytes reserved by the test
    for kind, a, b in ops:
        host = hosts[a % len(hosts)]
        vm = vms[b % len(vms)]
        match kind:
            case "place":
                if vm.host is None:
                    target = p.choose(vm, rng=np.random.default_rng(b))
                    want = choose_host_scan(vm, list(vm.rule.hosts), vm.spread, np.random.default_rng(b))
                    assert (target is None) == (want is None)
                    if vm.spread != "random":
                        assert target is want
                    if target is not None:
                        dc.place(vm, target, BOOTING)
            case _:
                host_op(dc, kind, host, vm, b, held)
        check_invariants(dc)
        check_choices(dc, rules, probes)
        check_choices(dc, rules, probes[:2], exclude=host)


@settings(max_examples=40, deadline=None)
@given(layout=layouts, sizes=st.lists(st.sampled_from([2, 4, 8, 14]), min_size=1, max_size=30),
       spread=st.sampled_from(["broadcast_domain", "pack"]))
def test_deal_equals_the_scan(layout, sizes, spread):
    """Initial placement through the index places every VM where the scanning deal does."""
    results = []
    for indexed in (True, False):
        dc = make_dc(layout)
        rule = dc.placement.rule(dc.host_list, spread)
        vms = [make_vm(dc, f"v{i:02d}", "w", s, rule) for i, s in enumerate(sizes)]
        place = lambda vm, host, dc=dc: dc.place(vm, host)  # noqa: E731
        if indexed:
            unplaced = dc.placement.deal(vms, rule, place)
        else:
            unplaced = deal_scan(vms, list(rule.hosts), spread, place)
        check_invariants(dc)
        results.append(([v.host.name if v.host else None for v in vms], [v.name for v in unplaced]))
    assert results[0] == results[1]


def test_rules_are_interned_and_grouped_by_domain():
    dc = make_dc([[16, 16], [16], [16, 16]])
    p = dc.placement
    names = [h.name for h in dc.host_list]
    a = p.rule(names, "pack")
    assert p.rule(list(reversed(names)), "pack") is a
    assert p.rule(dc.host_list, "pack") is a
    assert p.rule(names, "random") is not a
    assert [h.name for h in a.hosts] == names
    assert [[h.name for h in g.hosts] for g in a.groups] == [names[:2], names[2:3], names[3:]]
    assert dc.host_list[0] in a and len(a) == 5


def test_random_is_uniform_over_fitting_hosts():
    """Three of five hosts fit: each is chosen about a third of the time, the others never."""
    dc = make_dc([[16, 16, 16, 16, 16]])
    rule = dc.placement.rule(dc.host_list, "random")
    filler = make_vm(dc, "f0", "f", 10, rule)
    filler2 = make_vm(dc, "f1", "f", 10, rule)
    dc.place(filler, dc.host_list[1])
    dc.place(filler2, dc.host_list[3])
    vm = make_vm(dc, "v", "w", 8, rule)
    rng = np.random.default_rng(7)
    counts = {h.name: 0 for h in dc.host_list}
    for _ in range(3000):
        counts[dc.placement.choose(vm, rule, rng=rng).name] += 1
    assert counts[dc.host_list[1].name] == counts[dc.host_list[3].name] == 0
    for i in (0, 2, 4):
        assert 850 < counts[dc.host_list[i].name] < 1150  # 1000 expected; 5 sigma is about 130


def test_random_choices_are_deterministic():
    def choices(seed):
        dc = make_dc([[16] * 6, [24] * 3], seed=seed)
        rule = dc.placement.rule(dc.host_list, "random")
        vms = [make_vm(dc, f"v{i}", "w", 4, rule) for i in range(20)]
        dc.placement.deal(vms, rule, dc.place, dc.ctx.streams.get("placement/w"))
        return [v.host.name for v in vms]

    assert choices(3) == choices(3)
    assert choices(3) != choices(4)


# -- waiting -----------------------------------------------------------------------------------------
def _restarter(dc: Datacenter, vm: VM, log: list):
    """The default recovery's loop: choose, else wait and choose again; logs each wake."""
    host = dc.placement.choose(vm)
    while host is None:
        got = yield dc.placement.wait(vm)
        log.append((dc.env.now, vm.name, got.name))
        host = dc.placement.choose(vm)
    dc.place(vm, host, BOOTING)


def test_waiter_is_not_woken_by_a_release_too_small():
    """One 16 GiB host (14 usable) full of 2 + 4 + 8 GiB VMs; a 6 GiB VM waits. Freeing 2 GiB (2 free)
    does not wake it; freeing 4 more (6 free) does, and it is placed there."""
    dc = make_dc([[16]])
    env = dc.env
    rule = dc.placement.rule(dc.host_list, "pack")
    host = dc.host_list[0]
    small, mid, big = (make_vm(dc, f"f{g}", "f", g, rule) for g in (2, 4, 8))
    for v in (small, mid, big):
        dc.place(v, host)
    vm = make_vm(dc, "v", "w", 6, rule)
    log: list = []
    env.process(_restarter(dc, vm, log))
    env.run(until=1)
    assert dc.placement.waiting(rule) == 1
    env.process(_at(env, 10, lambda: dc.unplace(small)))
    env.process(_at(env, 20, lambda: dc.unplace(mid)))
    env.run(until=30)
    assert log == [(20, "v", host.name)]
    assert vm.host is host
    assert dc.placement.waiting() == 0


def _at(env, t, fn):
    yield env.timeout(t - env.now)
    fn()


def test_room_goes_to_waiters_in_fifo_order_and_only_as_far_as_it_fits():
    """Three 8 GiB VMs wait for a down 24 GiB host (22 usable): at repair only the first two are
    woken (the third does not fit the room left), in the order they started waiting."""
    dc = make_dc([[24]])
    env = dc.env
    host = dc.host_list[0]
    rule = dc.placement.rule(dc.host_list, "broadcast_domain")
    dc.host_down(host, HostDown(at=0.0, host=host.name))
    vms = [make_vm(dc, f"v{i}", "w", 8, rule) for i in range(3)]
    log: list = []
    for vm in vms:
        env.process(_restarter(dc, vm, log))
    env.run(until=1)
    assert dc.placement.waiting(rule) == 3
    env.process(_at(env, 5, lambda: dc.host_repaired(host)))
    env.run(until=10)
    assert log == [(5, "v0", host.name), (5, "v1", host.name)]
    assert [v.host is host for v in vms] == [True, True, False]
    assert dc.placement.waiting(rule) == 1


def test_waiters_get_room_as_if_each_chose_in_turn():
    """Hosts A (8 GiB usable) and B (16), pack order A, B, both full; waiters x (8), y (16), z (8) in
    that order. Both hosts free their room in one instant: x takes A (first fit), y takes B, z finds
    nothing and is not woken (the greedy outcome of each re-choosing in FIFO order)."""
    dc = make_dc([[10, 18]])  # 8 and 16 GiB usable
    env = dc.env
    a, b = dc.host_list
    rule = dc.placement.rule(dc.host_list, "pack")
    fa = make_vm(dc, "fa", "f", 8, rule)
    fb = make_vm(dc, "fb", "f", 16, rule)
    dc.place(fa, a)
    dc.place(fb, b)
    x, y, z = (make_vm(dc, n, "w", g, rule) for n, g in (("x", 8), ("y", 16), ("z", 8)))
    log: list = []
    for vm in (x, y, z):
        env.process(_restarter(dc, vm, log))
    env.run(until=1)

    def release_both():
        dc.unplace(fb)
        dc.unplace(fa)

    env.process(_at(env, 5, release_both))
    env.run(until=10)
    assert (x.host, y.host, z.host) == (a, b, None)
    assert log == [(5, "x", a.name), (5, "y", b.name)]
    assert dc.placement.waiting() == 1
    check_invariants(dc)


def test_room_a_woken_vm_does_not_take_goes_to_the_next():
    """A woken VM that gives up (here: cancelled before it runs) hands its promised room on."""
    dc = make_dc([[10]])  # 8 GiB usable
    env = dc.env
    host = dc.host_list[0]
    rule = dc.placement.rule(dc.host_list, "pack")
    f = make_vm(dc, "f", "f", 8, rule)
    dc.place(f, host)
    x, y = (make_vm(dc, n, "w", 8, rule) for n in "xy")
    events = {vm.name: dc.placement.wait(vm) for vm in (x, y)}

    def release_then_cancel():
        dc.unplace(f)
        yield env.timeout(0)  # the pass promises the host to x
        assert events["x"].triggered and not events["y"].triggered
        dc.placement.cancel(x)  # x is placed elsewhere by someone else, say

    env.process(release_then_cancel())
    env.run(until=1)
    assert events["y"].triggered and events["y"].value is host
    assert dc.placement.choose(y) is host


def test_a_promised_host_is_not_given_to_another_chooser():
    """Between the wake and the woken VM's run, another VM choosing sees the promised room as taken."""
    dc = make_dc([[10, 10]])
    env = dc.env
    a, b = dc.host_list
    rule = dc.placement.rule(dc.host_list, "pack")
    fa, fb = (make_vm(dc, n, "f", 8, rule) for n in ("fa", "fb"))
    dc.place(fa, a)
    dc.place(fb, b)
    x = make_vm(dc, "x", "w", 8, rule)
    other = make_vm(dc, "o", "w", 8, rule)
    ev = dc.placement.wait(x)
    dc.unplace(fa)
    env.step()  # the pass: x is woken, promised A (its wake is processed next)
    assert ev.triggered and ev.value is a
    assert dc.placement.choose(other) is None  # A is promised to x
    assert dc.placement.choose(x) is a  # x gets its room back when it chooses


@settings(max_examples=60, deadline=None)
@given(layout=layouts, sizes=st.lists(st.sampled_from([2, 4, 8, 14]), min_size=1, max_size=25),
       spread=st.sampled_from(["broadcast_domain", "pack", "random"]),
       events=st.lists(st.tuples(st.integers(0, 100), st.integers(0, 10_000)), max_size=25))
def test_no_waiter_sleeps_while_room_fits_it(layout, sizes, spread, events):
    """Liveness: after every release, repair and outage, no waiting VM fits a host of its rule."""
    dc = make_dc(layout)
    env = dc.env
    rule = dc.placement.rule(dc.host_list, spread)
    fillers = [make_vm(dc, f"f{i:02d}", "f", s, rule) for i, s in enumerate(sizes)]
    unplaced = dc.placement.deal(fillers, rule, dc.place, np.random.default_rng(0))
    log: list = []
    released = {v.name for v in unplaced}  # fillers never placed or taken off: nobody restarts them
    dc.bus.handle("vm_stopped", lambda name, what: env.process(_restarter(dc, what[0], log)) is not None)
    for h in dc.host_list[::2]:
        dc.host_down(h, HostDown(at=0.0, host=h.name))
    waiters = [make_vm(dc, f"v{i:02d}", f"w{i % 2}", s, rule) for i, s in enumerate(reversed(sizes))]
    for vm in waiters:
        env.process(_restarter(dc, vm, log))

    def act(x):
        placed = [v for v in fillers if v.host is not None]
        if x % 3 == 0 and placed:
            vm = placed[x % len(placed)]
            released.add(vm.name)
            dc.unplace(vm)
        elif x % 3 == 1:
            h = dc.host_list[x % len(dc.host_list)]
            if h.faults:
                dc.host_repaired(h)
        else:
            h = dc.host_list[x % len(dc.host_list)]
            dc.host_down(h, HostDown(at=env.now, host=h.name))

    for t, x in sorted(events):
        env.process(_at(env, t + 1, lambda x=x: act(x)))
    env.run(until=200)
    check_invariants(dc)
    for vm in dc.vms.values():
        if vm.host is None and vm.name not in released:
            assert not any(h.fits(vm) for h in rule.hosts), vm
    assert dc.placement.waiting() == sum(1 for v in dc.vms.values() if v.host is None and v.name not in released)
