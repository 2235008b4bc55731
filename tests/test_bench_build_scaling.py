"""The build stays linear in the fleet (``dcsim bench --hosts``): a hosts tuple asked for again is
found by identity in ``Placement.rule``, not by hashing a key of every host name.

At 100,000 hosts the replicated network's 20,000 VMs each asked for the rule of the same
100,000-name tuple; hashing and comparing that key cost O(hosts) a VM, O(hosts x VMs) a build
(the build took 56 CPU s at 100,000 hosts against 2 s at 10,000). No wall time is asserted: the
tests count lookups of the interning table and check the rule returned is the interned one.
"""

from __future__ import annotations

from test_placement_index import make_dc


class _CountingDict(dict):
    def __init__(self, *a):
        super().__init__(*a)
        self.gets = 0

    def get(self, key, default=None):
        self.gets += 1
        return super().get(key, default)


def _dc():
    return make_dc([[64.0] * 4, [64.0] * 4])  # 2 domains x 4 hosts


def test_the_same_tuple_again_is_not_looked_up_by_its_hosts():
    """The first call interns the rule (lookups of the table); the second with the same tuple object
    makes none and returns the same rule, one more user (refs 1 -> 2). Before: one lookup a call,
    with a key of every host name (regression)."""
    p = _dc().placement
    names = tuple(h.name for h in p.hosts)
    first = p.rule(names)
    p._rules = counting = _CountingDict(p._rules)
    again = p.rule(names)
    assert again is first and first.refs == 2
    assert counting.gets == 0


def test_an_equal_tuple_of_another_identity_gives_the_same_rule():
    p = _dc().placement
    names = tuple(h.name for h in p.hosts)
    first = p.rule(names)
    assert p.rule(tuple(list(names))) is first and first.refs == 2
    assert p.rule(list(names)) is first and first.refs == 3  # a list: by its hosts, as before


def test_a_rule_freed_by_its_last_user_is_built_anew_for_the_same_tuple():
    """rule(t) once, release once: refs 0, the rule is freed (out of the table). rule(t) again with the
    very same tuple must not hand back the freed rule: a new live one, one user."""
    p = _dc().placement
    names = tuple(h.name for h in p.hosts[:3])
    first = p.rule(names)
    p.release(first)
    assert first.refs == 0 and p.live_rules() == 0
    second = p.rule(names)
    assert second is not first and second.refs == 1 and p.live_rules() == 1


def test_spread_is_part_of_the_identity_key():
    p = _dc().placement
    names = tuple(h.name for h in p.hosts)
    a = p.rule(names, "broadcast_domain")
    b = p.rule(names, "pack")
    assert a is not b and (a.spread, b.spread) == ("broadcast_domain", "pack")
    assert p.rule(names, "pack") is b and p.rule(names, "broadcast_domain") is a
