"""Rules made per avoid-set: derived from a base rule, reference-counted and freed (issue 12 §4).

A rule of a base rule's hosts less a few is *derived*: it keeps only the indices it leaves out
and chooses through the base's index. Its choices must be those of the brute-force scan over
its hosts (and, for ``random``, the draws the same hosts indexed on their own would make);
releasing a rule for the last time must take it out of the index, so that nothing it left
behind changes a later choice.
"""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_placement_index import check_invariants, host_op, layouts, make_dc, make_vm

from sim.infra import placement
from sim.infra.datacenter import BOOTING
from sim.infra.placement import _TRIES, choose_host_scan

GiB = 2**30
SPREADS = ("broadcast_domain", "pack", "random")


def random_reference(vm, hosts, rng, exclude=None):
    """``random`` over ``hosts`` as the index draws: None if no host fits; else up to ``_TRIES``
    uniform positions, the first that fits and is not ``exclude``; else uniform over those that do."""
    if not any(h.fits(vm) for h in hosts):
        return None
    n = len(hosts)
    for _ in range(_TRIES):
        h = hosts[int(rng.random() * n)]
        if h is not exclude and h.fits(vm):
            return h
    fits = [h for h in hosts if h is not exclude and h.fits(vm)]
    return fits[int(rng.random() * len(fits))] if fits else None


def check(dc, rules, probes, exclude=None):
    for rule in rules:
        hosts = list(rule.hosts)
        assert len(rule) == len(hosts)
        for vm in probes:
            got = dc.placement.choose(vm, rule, exclude=exclude, rng=np.random.default_rng(7))
            if rule.spread == "random":
                want = random_reference(vm, hosts, np.random.default_rng(7), exclude)
            else:
                want = choose_host_scan(vm, hosts, rule.spread, exclude=exclude)
            assert got is want, (rule, vm.spec.memory / GiB, exclude, got, want)


make_op = st.tuples(st.sampled_from(["make", "make", "without", "release", "place", "unplace", "down",
                                     "repair", "maint_in", "maint_out", "reserve", "unreserve", "move"]),
                    st.integers(0, 10_000), st.integers(0, 10_000))


@settings(max_examples=150, deadline=None)
@given(layout=layouts, ops=st.lists(make_op, max_size=50),
       sizes=st.lists(st.sampled_from([2, 4, 6, 8, 14]), min_size=4, max_size=4),
       derive_min=st.sampled_from([0, 1, 64]))
def test_choices_equal_the_scan_with_rules_made_and_released_at_random(layout, ops, sizes, derive_min):
    with mock.patch.object(placement, "_DERIVE_MIN", derive_min):  # 0, 1: most rules are base rules
        made_and_released(layout, ops, sizes)


def made_and_released(layout, ops, sizes):
    """Base rules of every host (one per spread) stay; rules of every host less a random few hosts
    or domains (derived), and of random subsets (base rules of their own), are made and released
    at random among host changes. After every step each live rule chooses as the scan over its
    hosts; when everything the test made is released, the rules in use are the ones before."""
    dc = make_dc(layout)
    p = dc.placement
    hosts = dc.host_list
    domains = list(dc.domains.values())
    bases = [p.rule(hosts, s) for s in SPREADS]
    vms = [make_vm(dc, f"v{i:02d}", f"w{i % 2}", sizes[i % 4], bases[i % 3]) for i in range(12)]
    probes = vms[:4]
    before = p.live_rules()
    held = []
    reserved: dict[int, float] = {}
    for kind, a, b in ops:
        host = hosts[a % len(hosts)]
        vm = vms[b % len(vms)]
        match kind:
            case "make":
                spread = SPREADS[b % 3]
                if a % 2:  # every host less a few: derived
                    away = {hosts[(a + k * b) % len(hosts)] for k in range(1 + b % 3)}
                    keep = [h for h in hosts if h not in away]
                else:  # a random subset: a base rule of its own unless it is every host less a few
                    keep = [h for i, h in enumerate(hosts) if (a >> (i % 12)) & 1]
                held.append(p.rule([h.name for h in reversed(keep)], spread))
            case "without":
                rule = held[b % len(held)] if held and a % 3 else bases[b % 3]
                if a % 2:
                    held.append(p.without(rule, hosts=[host]))
                else:
                    held.append(p.without(rule, domains=[domains[b % len(domains)]]))
            case "release":
                if held:
                    p.release(held.pop(b % len(held)))
            case "place":
                if vm.host is None:
                    target = p.choose(vm, rng=np.random.default_rng(b))
                    if target is not None:
                        dc.place(vm, target, BOOTING)
            case _:
                host_op(dc, kind, host, vm, b, reserved)
        check_invariants(dc)
        check(dc, [*bases, *held], probes)
        check(dc, held[-2:], probes, exclude=host)
    for rule in held:
        p.release(rule)
    assert p.live_rules() == before


def test_a_derived_rule_holds_only_what_it_leaves_out_and_is_freed_by_its_last_release():
    """Two domains of three hosts. Every host less h1 is derived from the rule of every host (one
    host left out of six, under the threshold): asking twice gives the same object, ``without``
    the same hosts too; two releases free it, a third is an error."""
    dc = make_dc([[16, 16, 16], [16, 16, 16]])
    p = dc.placement
    hosts = dc.host_list
    base = p.rule(hosts, "pack")
    d1 = p.rule([h for h in hosts if h is not hosts[1]], "pack")
    assert d1.base is base and d1.excluded == frozenset({1})
    assert p.without(base, hosts=[hosts[1]]) is d1
    assert d1.hosts == tuple(h for h in hosts if h is not hosts[1]) and len(d1) == 5
    assert hosts[1] not in d1 and hosts[0] in d1
    n = p.live_rules()
    p.release(d1)
    assert p.live_rules() == n
    p.release(d1)
    assert p.live_rules() == n - 1
    with pytest.raises(ValueError, match="released more often"):
        p.release(d1)


def test_a_freed_base_rule_leaves_the_index():
    """A base rule of its own (one host of six, pack) has its own tree; once released it is no
    longer updated by host changes, and asking for it again builds a fresh one that is."""
    dc = make_dc([[16, 16, 16], [16, 16, 16]])
    p = dc.placement
    h = dc.host_list[4]
    trees = len(p._trees_of[h.index])
    solo = p.rule([h], "pack")
    assert solo.base is None and len(p._trees_of[h.index]) == trees + 1
    p.release(solo)
    assert len(p._trees_of[h.index]) == trees and solo not in p._rules_of[h.index]
    dc.reserve(h, 10 * GiB)
    again = p.rule([h], "pack")
    assert again is not solo
    vm = make_vm(dc, "x", "w", 8, again)
    assert p.choose(vm, again) is None  # 6 GiB left: the fresh index sees the reservation


def test_a_waiter_of_a_derived_rule_wakes_for_room_on_its_hosts_only():
    """One domain, hosts A, B, C of 8 GiB each, all full (an 8 GiB filler each). x (8 GiB) waits
    under every host less A. A's filler leaves: A is not x's, x sleeps. C's filler leaves: x is
    woken with C at that instant."""
    dc = make_dc([[10, 10, 10]])  # 2 GiB each for the hypervisor
    env = dc.env
    p = dc.placement
    a, b, c = dc.host_list
    base = p.rule(dc.host_list, "pack")
    fill = {h: make_vm(dc, f"f{h.index}", "f", 8, base) for h in (a, b, c)}
    for h, vm in fill.items():
        dc.place(vm, h)
    x = make_vm(dc, "x", "w", 8, base)
    apart = p.without(base, hosts=[a])
    woken = p.wait(x, apart)
    dc.unplace(fill[a])
    env.run(until=1)
    assert not woken.triggered
    dc.unplace(fill[c])
    env.run(until=2)
    assert woken.triggered and woken.value is c


def test_a_waiter_follows_its_owner_when_a_host_becomes_allowed():
    """Suspected in issue 12 §1 (confirmed for the placement service): a rule is fixed when a VM
    starts waiting. Hosts A, B of 8 GiB; ``copy`` (8 GiB, owned by ``pair``) may not share a host
    with ``primary`` (8 GiB, on A); B is full (a filler). ``copy`` waits under its owner's rule
    {B}. ``primary`` stops at t = 1: A is free and now allowed, but the waiter's rule is still
    {B}, so it sleeps. When the owner says so (``follow``) it waits under {A, B}, keeping its
    place, and the room on A wakes it at once."""
    dc = make_dc([[10, 10]])  # 2 GiB each for the hypervisor
    env = dc.env
    p = dc.placement
    a, b = dc.host_list
    base = p.rule(dc.host_list, "pack")
    primary = make_vm(dc, "primary", "pair", 8, base)
    copy = make_vm(dc, "copy", "pair", 8, base)
    copy.owner = primary.owner = "pair"
    dc.place(primary, a)
    dc.place(make_vm(dc, "filler", "f", 8, base), b)
    p.owner_rules["pair"] = lambda vm: p.without(vm.rule, hosts=[primary.host]) if primary.host else None
    assert p.choose(copy) is None
    woken = p.wait(copy)
    assert p.waiting() == 1

    def primary_stops():
        yield env.timeout(1)
        dc.unplace(primary)

    env.process(primary_stops())
    env.run(until=2)
    assert not woken.triggered  # room on a host allowed since it waited: not offered
    p.follow(copy)
    env.run(until=3)
    assert woken.triggered and woken.value is a and p.waiting() == 0
    assert p.choose(copy) is a
