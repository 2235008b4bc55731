"""Placement: where a VM goes, at build time, at restart and when it is moved; and waiting for room.

Policies (the workload's ``spread``):

- ``broadcast_domain`` (default): deal VMs round-robin over the domains of the allowed
  hosts, then to the least-used host of the domain. For a single VM placed later
  (a restart, a move) this becomes: the domain holding the fewest VMs of its workload
  (ties by the domain's order in the rule), then the least-used host there.
- ``pack``: first fit in the rule's host order.
- ``random``: uniform over the allowed hosts with room, from a named stream.

Every policy only returns hosts that are up with the memory (never overcommit): a host
*fits* a VM when its state is ``up`` and its free memory is at least the VM's memory.

One ``Placement`` service per run (``dc.placement``) answers every choice. A ``Rule``
is an interned set of hosts with a spread, in the datacenter's host order (``host.index``:
the scenario's order of sites and domains, name order inside a domain, which is the
order ``select`` gives, so choices are those of the brute-force scan), grouped by
broadcast domain in order of first appearance. The index (a hot path: no per-choice
scan of all hosts):

- per host tuple used by a ``pack`` or ``random`` rule, a max segment tree over the free
  memory of its hosts (``-inf`` for a host that is not up): first fit is one descent,
  O(log hosts);
- per domain group (the hosts of one rule in one domain, interned), a max tree over its
  free memory (does any host fit? O(1)) and its up hosts sorted by
  ((used + reserved) / capacity, index): the least-used fitting host is the first entry
  that fits (the first one, when the domain's hosts share a capacity, as built);
- per (rule, workload), the rule's domains sorted by (VMs of the workload placed there,
  order in the rule): a choice walks them in order and takes the first with a fitting
  host, O(domains of the rule) at worst, usually O(1);
- ``random`` draws up to ``_TRIES`` positions one by one and takes the first that fits, else
  lists the fitting hosts through the tree (O(fitting × log hosts)) and draws among
  them: uniform over the fitting hosts either way.

Rules per avoid-set (a copy kept off its partners' hosts or domains: one rule per distinct
set) would each cost their own index, O(hosts) in memory and in every ``host_changed``.
So a rule of a base rule's hosts less a few (at most ``max(_DERIVE_MIN, size / _DERIVE_SHARE)``,
the base's domains each one run of its hosts) is *derived*: it holds the indices it leaves
out and chooses through the base's index, skipping them, with exactly the choices (and, for
``random``, the draws) of the same hosts indexed on their own. ``rule``, ``within`` and
``without`` count one user per call; ``release`` drops one, and the last frees the rule (a
base rule leaves the index: host changes no longer update it). A waiting VM counts as a user.

Owners: ``rule_for(vm)`` is where a VM may go now: the rule its owning mechanism gives
(``owner_rules``, registered at wiring), else its own. ``choose`` and ``wait`` default to it.

The datacenter calls ``host_changed`` whenever a host's free memory or state changes
(attach, detach, reserve, unreserve, move, down, up, maintenance), with the workload
when a VM of it came or left, so the index never goes stale.

Waiting: ``wait(vm)`` queues a VM by rule, memory and arrival (FIFO). When hosts gain
room (free memory up, or they come up), one pass runs as an event at the same instant,
after what was already scheduled for it (so changes made together are seen together): the waiters of the rules holding those hosts are taken in FIFO order, each is
promised the host its rule chooses then (the index counts promised room as taken, so
later waiters and other choosers see it gone), and a (rule, memory) class stops at its
first waiter with no host. This is the greedy outcome of every waiter re-choosing in
turn, at O(woken) choices: nothing is woken by a release too small for it. A woken VM
re-chooses by its rule with its promise given back (a random rule keeps the host drawn)
and may wait again, keeping its place; room it did not take is offered again. A waiter's rule
is fixed when it starts waiting: when its owner allows a host it did not (a partner left it),
the owner calls ``follow(vm)`` and the VM waits under the new rule, keeping its place.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable, Sequence
from itertools import count
from operator import attrgetter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import simpy

    from sim.infra.datacenter import VM, Domain, Host

_UP = "up"  # sim.infra.datacenter.UP (not imported: the datacenter imports this module)
_NONE = float("-inf")  # the free memory a host offers when it is not up
_TRIES = 32  # random placement: positions drawn before listing the fitting hosts
# A rule of a base rule's hosts less at most max(_DERIVE_MIN, base size // _DERIVE_SHARE) of them is
# derived (kept as the indices left out); more left out, it is a base rule indexed on its own.
_DERIVE_MIN = 64
_DERIVE_SHARE = 8
_SAME_MAX = 4096  # hosts tuples remembered by identity (Placement.rule)


def _usage(h: Host) -> float:
    return (h.used_memory + h.reserved) / h.capacity if h.capacity > 0 else 1.0


class _MaxTree:
    """Max segment tree over per-position values; finds the first position whose value ≥ a need."""

    __slots__ = ("size", "t", "users")

    def __init__(self, values: Sequence[float]):
        self.users = 0  # rules using it (freed with the last)
        size = 1
        while size < len(values):
            size *= 2
        t = [_NONE] * (2 * size)
        t[size:size + len(values)] = values
        for i in range(size - 1, 0, -1):
            a, b = t[2 * i], t[2 * i + 1]
            t[i] = a if a >= b else b
        self.size = size
        self.t = t

    def top(self) -> float:
        return self.t[1]

    def set(self, pos: int, value: float) -> None:
        t = self.t
        i = pos + self.size
        t[i] = value
        while i > 1:
            sibling = t[i ^ 1]
            if sibling > value:
                value = sibling
            i >>= 1
            if t[i] == value:
                return  # ancestors depend only on this node: unchanged
            t[i] = value

    def first(self, need: float, start: int = 0) -> int:
        """The first position ≥ ``start`` whose value is ≥ ``need``, or -1."""
        t = self.t
        size = self.size
        if start == 0:
            if t[1] < need:
                return -1
            i = 1
        else:
            if start >= size:
                return -1
            i = start + size
            while t[i] < need:
                while i & 1:  # a right child (or the root): climb until a left child
                    i >>= 1
                    if i == 0:
                        return -1
                i += 1  # the subtree just right of it
        while i < size:
            i = 2 * i if t[2 * i] >= need else 2 * i + 1
        return i - size


class _Group:
    """The hosts of one rule in one broadcast domain (interned: rules share identical groups)."""

    __slots__ = ("hosts", "domain", "tree", "keys", "usage", "users")

    def __init__(self, hosts: tuple[Host, ...], values: list[float]):
        self.users = 0  # rules using it (freed with the last)
        self.hosts = hosts
        self.domain = hosts[0].domain
        self.tree = _MaxTree(values)
        self.keys: list[tuple[float, int, int] | None] = [
            (_usage(h), h.index, pos) if values[pos] != _NONE else None for pos, h in enumerate(hosts)]
        self.usage = sorted(k for k in self.keys if k is not None)  # up hosts, least used first

    def update(self, pos: int, host: Host, value: float) -> None:
        self.tree.set(pos, value)
        key = (_usage(host), host.index, pos) if value != _NONE else None
        old = self.keys[pos]
        if key == old:
            return
        usage = self.usage
        if old is not None:
            del usage[bisect_left(usage, old)]
        if key is not None:
            insort(usage, key)
        self.keys[pos] = key

    def least_used(self, need: float, exclude: Host | None = None,
                   excluded: frozenset[int] = frozenset()) -> Host | None:
        """The least-used up host offering ``need`` bytes (by usage, then index), or None; never
        ``exclude`` nor a host whose index is in ``excluded`` (the hosts a derived rule leaves out)."""
        t = self.tree.t
        if t[1] < need:
            return None
        size = self.tree.size
        hosts = self.hosts
        if excluded:
            for _, index, pos in self.usage:
                if t[size + pos] >= need and hosts[pos] is not exclude and index not in excluded:
                    return hosts[pos]
            return None
        for _, _, pos in self.usage:
            if t[size + pos] >= need and hosts[pos] is not exclude:
                return hosts[pos]
        return None


class _Order:
    """A rule's domains sorted by (VMs of one workload placed there, order in the rule)."""

    __slots__ = ("items", "counts")

    def __init__(self, counts: list[int]):
        self.counts = counts
        self.items = sorted((c, gi) for gi, c in enumerate(counts))

    def update(self, gi: int, c: int) -> None:
        old = self.counts[gi]
        if c == old:
            return
        items = self.items
        del items[bisect_left(items, (old, gi))]
        insort(items, (c, gi))
        self.counts[gi] = c


class Rule:
    """An interned placement rule: hosts (datacenter order) grouped by domain, and a spread.

    Get one from ``Placement.rule`` (or ``within``, ``without``); the same hosts and spread
    asked the same way give the same object (``without`` a base rule and ``rule`` of the same
    hosts may give two equal ones: choices depend only on the hosts and the spread), and each
    call counts one user until ``Placement.release``.
    A rule is either a *base* rule, indexed on its own (its trees and domain groups follow
    every host change), or *derived*: a base rule less a few hosts (an avoid-set: a copy kept
    off its partners' hosts or domains). A derived rule holds only the indices it leaves out
    and chooses through its base's index, so it costs O(hosts left out) in memory and nothing
    per host change, and chooses exactly as the same hosts indexed on their own would.
    """

    __slots__ = ("_hosts", "spread", "members", "groups", "tree", "orders", "queues", "waiting",
                 "base", "excluded", "skip", "shift", "size", "refs", "keys", "derived", "contiguous")

    def __init__(self, hosts: tuple[Host, ...], spread: str, base: Rule | None = None,
                 excluded: frozenset[int] = frozenset()):
        self.spread = spread
        self.base = base
        self.excluded = excluded  # host indices of ``base`` left out (derived rules)
        self.skip: frozenset[int] = frozenset()  # groups of ``base`` wholly left out
        self.shift: list[int] = []  # random: excluded positions in ``base`` less their rank
        self.queues: dict[float, list] = {}  # VM memory -> heap of waiters (ticket, seq, waiter)
        self.waiting = 0
        self.refs = 0
        self.keys: list[tuple] = []  # where it is interned
        self.derived: dict[Rule, None] = {}  # base rules: derived rules with waiters
        self.orders: dict[str, _Order] = {}  # workload -> domains by VMs placed (broadcast_domain)
        self.contiguous = False  # base rules: each domain's hosts are one run of its hosts (derivable)
        if base is None:
            self._hosts = hosts
            self.size = len(hosts)
            self.members = frozenset(h.index for h in hosts)
            self.groups: tuple[_Group, ...] = ()
            self.tree: _MaxTree | None = None  # pack and random
        else:
            self._hosts = ()
            self.size = base.size - len(excluded)
            self.members = base.members  # shared: membership is ``in members and not in excluded``
            self.groups = base.groups
            self.tree = base.tree

    @property
    def hosts(self) -> tuple[Host, ...]:
        """Its hosts in datacenter order (a derived rule lists them on each call: O(base hosts))."""
        if self.base is None:
            return self._hosts
        excluded = self.excluded
        return tuple(h for h in self.base._hosts if h.index not in excluded)

    def __contains__(self, host: Host) -> bool:
        i = host.index
        return i in self.members and i not in self.excluded

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        return iter(self.hosts)

    def __repr__(self) -> str:
        kind = f", {len(self.excluded)} left out of a base rule" if self.base is not None else ""
        return f"Rule({self.size} hosts{kind}, {self.spread})"


class _Waiter:
    __slots__ = ("ticket", "vm", "rule", "memory", "event", "cancelled")

    def __init__(self, ticket: int, vm: VM, rule: Rule, event: simpy.Event):
        self.ticket = ticket
        self.vm = vm
        self.rule = rule
        self.memory = vm.spec.memory
        self.event = event
        self.cancelled = False


class Placement:
    """The run's placement service: interned rules, an index over hosts, queues of VMs waiting for room.

    ``streams(name)`` gives the named random stream of a ``random`` rule when the caller
    passes none (``placement/<workload>``).
    """

    def __init__(self, env: simpy.Environment, streams: Callable[[str], np.random.Generator] | None = None,
                 hosts: Iterable[Host] = ()):
        self.env = env
        self._streams = streams
        self.hosts: list[Host] = []
        self._by_name: dict[str, Host] = {}
        self._value: list[float] = []  # per host index: free memory if up, else -inf
        self._trees_of: list[list[tuple[_MaxTree, int]]] = []
        self._groups_of: list[list[tuple[_Group, int]]] = []
        self._rules_of: list[list[Rule]] = []
        self._rules: dict[tuple, Rule] = {}
        # (id of a hosts tuple, spread) -> (the tuple, its rule): a tuple passed again is found by
        # identity, not by hashing a key of all its hosts (O(hosts) a call: a selector's tuple is
        # shared by every VM it places, and O(hosts x VMs) made the build quadratic in the fleet)
        self._same: dict[tuple[int, str], tuple[tuple, Rule]] = {}
        self._trees: dict[tuple[Host, ...], _MaxTree] = {}
        self._groups: dict[tuple[Host, ...], _Group] = {}
        self._orders_of: dict[tuple[Domain, str], list[tuple[_Order, int]]] = {}
        # waiting
        self._tickets = count()
        self._seq = count()  # unique heap entries (a ticket is kept when a woken VM waits again)
        self._waiting = 0
        self._waiter_of: dict[VM, _Waiter] = {}
        self._woken: dict[VM, int] = {}  # VM woken and not yet run -> its ticket (kept if it waits again)
        self._promise_of: dict[VM, tuple[Host, float]] = {}  # woken VM -> the host and bytes promised
        self._promised: list[float] = []  # per host index: bytes promised to woken VMs
        self._dirty: dict[Host, None] = {}  # hosts that gained room since the last pass
        self._pass_due = False
        # owner key -> where a VM it owns may go now (None: the VM's own rule); see ``rule_for``
        self.owner_rules: dict[str, Callable[[VM], Rule | None]] = {}
        for h in hosts:
            self.add_host(h)

    # -- hosts and rules ----------------------------------------------------------------------------
    def add_host(self, host: Host) -> None:
        """Register a host (in datacenter order: ``host.index`` is its position)."""
        if host.index != len(self.hosts):
            raise ValueError(f"{host.name} has index {host.index}, expected {len(self.hosts)}")
        self.hosts.append(host)
        self._by_name[host.name] = host
        self._value.append(host.free_memory if host.state == _UP else _NONE)
        self._promised.append(0.0)
        self._trees_of.append([])
        self._groups_of.append([])
        self._rules_of.append([])

    def rule(self, hosts: Sequence[str] | Sequence[Host], spread: str = "broadcast_domain") -> Rule:
        """The interned rule of ``hosts`` (names or hosts, any order, duplicates ignored) and ``spread``.

        Each call counts one user of the rule; ``release`` it when done (a rule kept for the
        run, like a VM's own, is simply never released). Hosts that are a base rule less a few
        (at most ``max(_DERIVE_MIN, base size / _DERIVE_SHARE)``) give a derived rule.
        """
        same = type(hosts) is tuple
        if same:
            hit = self._same.get((id(hosts), spread))
            if hit is not None and hit[0] is hosts and hit[1].refs > 0:  # refs 0: freed, build it anew
                hit[1].refs += 1
                return hit[1]
        key = (tuple(hosts), spread)
        rule = self._rules.get(key)
        if rule is None:
            by_name = self._by_name
            resolved = {id(h): h for h in (by_name[h] if isinstance(h, str) else h for h in hosts)}
            ordered = tuple(sorted(resolved.values(), key=lambda h: h.index))
            rule = self._intern(ordered, spread, key)
        rule.refs += 1
        if same:
            if len(self._same) >= _SAME_MAX:  # bounded: the tuples it holds stay alive
                self._same.clear()
            self._same[(id(hosts), spread)] = (hosts, rule)
        return rule

    def rule_of(self, vm: VM) -> Rule:
        """The VM's rule (``vm.rule``; resolved from ``vm.allowed`` and ``vm.spread`` the first time)."""
        rule = vm.rule
        if rule is None:
            rule = vm.rule = self.rule(vm.allowed, vm.spread)
        return rule

    def rule_for(self, vm: VM) -> Rule:
        """Where ``vm`` may go now: its owner's rule when the owner gives one, else the VM's own.

        Every mover (a restart, a move off a failing host, an operator's move) chooses through this, so that a VM
        created by a mechanism keeps the constraints its owner keeps current (a copy never
        joins the host of another copy of the same data).
        """
        if vm.owner is not None:
            hook = self.owner_rules.get(vm.owner)
            if hook is not None:
                rule = hook(vm)
                if rule is not None:
                    return rule
        return vm.rule if vm.rule is not None else self.rule_of(vm)

    def within(self, rule: Rule, hosts: Iterable[Host]) -> Rule:
        """The interned rule of the hosts of ``rule`` that are also in ``hosts``, with ``rule``'s spread
        (one more user: ``release`` it)."""
        return self.rule([h for h in hosts if h in rule], rule.spread)

    def without(self, rule: Rule, hosts: Iterable[Host] = (), domains: Iterable[Domain] = ()) -> Rule:
        """The interned rule of ``rule`` less ``hosts`` and the hosts of ``domains`` (an avoid-set), one
        more user (``release`` it). O(hosts and domain hosts left out) when it is a derived rule."""
        base = rule.base if rule.base is not None else rule
        out = set(rule.excluded)
        for h in hosts:
            if h in rule:
                out.add(h.index)
        for d in domains:
            for h in d.hosts:
                if h in rule:
                    out.add(h.index)
        if len(out) == len(rule.excluded):
            rule.refs += 1
            return rule
        if base.contiguous and len(out) <= max(_DERIVE_MIN, base.size // _DERIVE_SHARE):
            derived = self._derive(base, frozenset(out))
            derived.refs += 1
            return derived
        return self.rule([h for h in base._hosts if h.index not in out], rule.spread)

    def release(self, rule: Rule) -> None:
        """One user is done with ``rule``; the last frees it (it leaves the index and the interning:
        no host change updates it any more, and asking for its hosts again builds it anew)."""
        if rule.refs <= 0:
            raise ValueError(f"{rule!r} released more often than it was obtained")
        rule.refs -= 1
        if rule.refs == 0:
            self._free(rule)

    def live_rules(self) -> int:
        """Rules in use (base and derived): what ``release`` frees shows here."""
        return len({id(r) for r in self._rules.values()})

    def _intern(self, ordered: tuple[Host, ...], spread: str, raw: tuple) -> Rule:
        if spread not in ("broadcast_domain", "pack", "random"):
            raise ValueError(f"unknown spread {spread!r}")
        canonical = (ordered, spread)
        rule = self._rules.get(canonical)
        if rule is None:
            base = self._base_for(ordered, spread)
            if base is not None:
                kept = {h.index for h in ordered}
                return self._derive(base, frozenset(i for i in base.members if i not in kept))
            rule = self._make_rule(ordered, spread)
            self._rules[canonical] = rule
            rule.keys.append(canonical)
        if raw != canonical:
            self._rules[raw] = rule
            rule.keys.append(raw)
        return rule

    def _base_for(self, ordered: tuple[Host, ...], spread: str) -> Rule | None:
        """The smallest base rule of ``spread`` holding ``ordered`` and at most a few hosts more."""
        if not ordered:
            return None
        m = len(ordered)
        best = None
        for r in self._rules_of[ordered[0].index]:
            if (r.spread != spread or not r.contiguous or r.size <= m
                    or r.size - m > max(_DERIVE_MIN, r.size // _DERIVE_SHARE)
                    or (best is not None and r.size >= best.size)):
                continue
            members = r.members
            if all(h.index in members for h in ordered):
                best = r
        return best

    def _derive(self, base: Rule, excluded: frozenset[int]) -> Rule:
        """The interned rule of ``base`` less the hosts whose indices are ``excluded``."""
        key = (base, excluded)
        rule = self._rules.get(key)
        if rule is not None:
            return rule
        rule = Rule((), base.spread, base, excluded)
        if base.spread == "broadcast_domain":
            gi_of = {g.domain: gi for gi, g in enumerate(base.groups)}
            out: dict[int, int] = {}
            for i in excluded:
                gi = gi_of[self.hosts[i].domain]
                out[gi] = out.get(gi, 0) + 1
            rule.skip = frozenset(gi for gi, n in out.items() if n == len(base.groups[gi].hosts))
        elif base.spread == "random":
            index = attrgetter("index")
            positions = sorted(bisect_left(base._hosts, i, key=index) for i in excluded)
            rule.shift = [p - j for j, p in enumerate(positions)]
        base.refs += 1
        self._rules[key] = rule
        rule.keys.append(key)
        return rule

    def _make_rule(self, hosts: tuple[Host, ...], spread: str) -> Rule:
        rule = Rule(hosts, spread)
        for h in hosts:
            self._rules_of[h.index].append(rule)
        by_domain: dict[Domain, list[Host]] = {}
        runs = 0
        last = None
        for h in hosts:
            by_domain.setdefault(h.domain, []).append(h)
            if h.domain is not last:
                runs += 1
                last = h.domain
        rule.contiguous = runs == len(by_domain)
        rule.groups = tuple(self._group(tuple(members)) for members in by_domain.values())
        for g in rule.groups:
            g.users += 1
        if spread != "broadcast_domain":
            rule.tree = self._trees.get(hosts)
            if rule.tree is None:
                rule.tree = self._trees[hosts] = _MaxTree([self._value[h.index] for h in hosts])
                for pos, h in enumerate(hosts):
                    self._trees_of[h.index].append((rule.tree, pos))
            rule.tree.users += 1
        return rule

    def _free(self, rule: Rule) -> None:
        for key in rule.keys:
            if self._rules.get(key) is rule:
                del self._rules[key]
        rule.keys.clear()
        base = rule.base
        if base is not None:
            base.derived.pop(rule, None)
            self.release(base)
            return
        for h in rule._hosts:
            self._rules_of[h.index].remove(rule)
        for workload, order in rule.orders.items():
            for gi, g in enumerate(rule.groups):
                entries = self._orders_of[(g.domain, workload)]
                entries.remove((order, gi))
                if not entries:
                    del self._orders_of[(g.domain, workload)]
        rule.orders.clear()
        for g in rule.groups:
            g.users -= 1
            if g.users == 0:
                del self._groups[g.hosts]
                for pos, h in enumerate(g.hosts):
                    self._groups_of[h.index].remove((g, pos))
        tree = rule.tree
        if tree is not None:
            tree.users -= 1
            if tree.users == 0:
                del self._trees[rule._hosts]
                for pos, h in enumerate(rule._hosts):
                    self._trees_of[h.index].remove((tree, pos))

    def _group(self, hosts: tuple[Host, ...]) -> _Group:
        group = self._groups.get(hosts)
        if group is None:
            group = self._groups[hosts] = _Group(hosts, [self._value[h.index] for h in hosts])
            for pos, h in enumerate(hosts):
                self._groups_of[h.index].append((group, pos))
        return group

    def _order(self, rule: Rule, workload: str) -> _Order:
        order = _Order([g.domain.placed.get(workload, 0) for g in rule.groups])
        rule.orders[workload] = order
        for gi, g in enumerate(rule.groups):
            self._orders_of.setdefault((g.domain, workload), []).append((order, gi))
        return order

    # -- index maintenance (called by the datacenter) ---------------------------------------------
    def host_changed(self, host: Host, workload: str | None = None) -> None:
        """``host``'s free memory or state changed (and, with ``workload``, a VM of it came or left)."""
        if workload is not None:
            self.placed_changed(host.domain, workload)
        old, value = self._refresh(host)
        if value > old and self._waiting:
            self._dirty_host(host)

    def _refresh(self, host: Host) -> tuple[float, float]:
        """Re-index ``host``: the room it offers is its free memory less what woken VMs were promised."""
        i = host.index
        value = host.free_memory - self._promised[i] if host.state == _UP else _NONE
        old = self._value[i]
        if value == old == _NONE:
            return old, value  # a host that is not up stays out of every index
        if value != old:
            self._value[i] = value
            for tree, pos in self._trees_of[i]:
                tree.set(pos, value)
        for group, pos in self._groups_of[i]:
            group.update(pos, host, value)
        return old, value

    def placed_changed(self, domain: Domain, workload: str) -> None:
        """The number of ``workload``'s VMs placed in ``domain`` changed."""
        entries = self._orders_of.get((domain, workload))
        if entries:
            c = domain.placed.get(workload, 0)
            for order, gi in entries:
                order.update(gi, c)

    # -- choosing ----------------------------------------------------------------------------------
    def choose(self, vm: VM, rule: Rule | None = None, *, exclude: Host | None = None,
               prefer: Host | None = None, rng: np.random.Generator | None = None) -> Host | None:
        """One host of ``rule`` (default where the VM may go now, ``rule_for``) that fits ``vm``, by the
        rule's spread, or None.

        ``exclude`` is never chosen; ``prefer`` is taken if it is in the rule and fits (a
        guest restarting in place). ``rng`` is the stream of a ``random`` rule (default
        ``placement/<workload>``).
        """
        if rule is None:
            rule = self.rule_for(vm) if vm.owner is not None else vm.rule if vm.rule is not None else self.rule_of(vm)
        need = vm.spec.memory
        value = self._value
        if self._promise_of and vm in self._promise_of:
            # A woken VM chooses with the room promised to it back in the pool; a random rule keeps
            # the host drawn for it (one draw per placement), the others choose again by their rule.
            promised = self._release(vm)
            if (rule.spread == "random" and promised is not exclude and promised in rule
                    and value[promised.index] >= need):
                return promised
        if prefer is not None and prefer is not exclude and prefer in rule and value[prefer.index] >= need:
            return prefer
        spread = rule.spread
        base = rule.base
        excluded = rule.excluded
        if spread == "broadcast_domain":
            root = rule if base is None else base
            order = root.orders.get(vm.workload)
            if order is None:
                order = self._order(root, vm.workload)
            groups = root.groups
            # A domain none of whose hosts offers the room (all down, or full) is passed over at the
            # cost of one comparison (its tree's top; ``least_used`` would say None the same).
            if base is None:
                for _, gi in order.items:
                    g = groups[gi]
                    if g.tree.t[1] >= need:
                        h = g.least_used(need, exclude)
                        if h is not None:
                            return h
                return None
            skip = rule.skip
            for _, gi in order.items:
                g = groups[gi]
                if gi not in skip and g.tree.t[1] >= need:
                    h = g.least_used(need, exclude, excluded)
                    if h is not None:
                        return h
            return None
        tree = rule.tree
        hosts = rule._hosts if base is None else base._hosts
        if spread == "pack":
            p = tree.first(need)
            while p >= 0 and (hosts[p] is exclude or hosts[p].index in excluded):
                p = tree.first(need, p + 1)
            return hosts[p] if p >= 0 else None
        # random: uniform over the fitting hosts (a derived rule draws among its own hosts, as the
        # same hosts indexed on their own would: the k-th of them is position k + gaps before it)
        p = tree.first(need)
        while p >= 0 and hosts[p].index in excluded:
            p = tree.first(need, p + 1)
        if p < 0:
            return None
        if rng is None:
            if self._streams is None:
                raise ValueError("random placement needs a stream")
            rng = self._streams(f"placement/{vm.workload}")
        n = rule.size
        random = rng.random
        shift = rule.shift
        for _ in range(_TRIES):
            k = int(random() * n)  # uniform up to float resolution (n / 2**53)
            h = hosts[k + bisect_right(shift, k) if shift else k]
            if h is not exclude and value[h.index] >= need:
                return h
        fits = []
        while p >= 0:
            h = hosts[p]
            if h is not exclude and h.index not in excluded:
                fits.append(p)
            p = tree.first(need, p + 1)
        if not fits:
            return None
        return hosts[fits[int(rng.random() * len(fits))]]

    def deal(self, vms: Iterable[VM], rule: Rule, place: Callable[[VM, Host], None],
             rng: np.random.Generator | None = None) -> list[VM]:
        """Initial placement of a workload, placing each VM as it goes; returns the VMs that did not fit.

        ``broadcast_domain`` deals round-robin over the rule's domains (a domain with no
        room is passed over), then to the domain's least-used host; the others choose per VM.
        """
        unplaced = []
        if rule.spread != "broadcast_domain":
            for vm in vms:
                host = self.choose(vm, rule, rng=rng)
                if host is None:
                    unplaced.append(vm)
                else:
                    place(vm, host)
            return unplaced
        base = rule.base
        groups = rule.groups if base is None else [g for gi, g in enumerate(base.groups) if gi not in rule.skip]
        excluded = rule.excluded
        n = len(groups)
        turn = 0
        for vm in vms:
            host = None
            need = vm.spec.memory
            for k in range(n):
                host = groups[(turn + k) % n].least_used(need, None, excluded)
                if host is not None:
                    turn = (turn + k + 1) % n
                    break
            if host is None:
                unplaced.append(vm)
            else:
                place(vm, host)
        return unplaced

    # -- waiting for room ----------------------------------------------------------------------------
    def wait(self, vm: VM, rule: Rule | None = None) -> simpy.Event:
        """An event that fires (with the host promised to it) when room that fits ``vm`` appears.

        Call it right after ``choose`` found nothing; then choose again (and maybe wait again:
        a VM woken and waiting again keeps its place in the queue). ``rule`` defaults to where
        the VM may go now (``rule_for``); when that changes while it waits (its owner allows a
        host it did not), the owner calls ``follow``.
        """
        if rule is None:
            rule = self.rule_for(vm)
        rule.refs += 1  # a waiting VM is a user of its rule (taken before any cancel can free it)
        self.cancel(vm)
        ticket = self._woken.get(vm)
        if ticket is None:
            ticket = next(self._tickets)
        return self._enqueue(vm, rule, ticket, self.env.event()).event

    def _enqueue(self, vm: VM, rule: Rule, ticket: int, event: simpy.Event) -> _Waiter:
        """Queue ``vm`` under ``rule`` (whose use the caller took) with ``ticket`` (its FIFO place)."""
        waiter = _Waiter(ticket, vm, rule, event)
        heapq.heappush(rule.queues.setdefault(waiter.memory, []), (ticket, next(self._seq), waiter))
        if rule.base is not None and not rule.waiting:
            rule.base.derived[rule] = None  # room on the base's hosts is offered to it too
        rule.waiting += 1
        self._waiting += 1
        self._waiter_of[vm] = waiter
        return waiter

    def cancel(self, vm: VM) -> bool:
        """Stop ``vm`` waiting, or give back the room promised to it. True if it waited or was woken."""
        promise = self._promise_of.get(vm)
        if promise is not None:
            self._release(vm)
            self._dirty_host(promise[0])
        waiter = self._waiter_of.pop(vm, None)
        if waiter is None:
            return promise is not None
        waiter.cancelled = True  # left in its heap, skipped when reached
        self._left(waiter.rule)
        return True

    def _left(self, rule: Rule) -> None:
        """A waiter of ``rule`` stopped waiting (woken or cancelled)."""
        rule.waiting -= 1
        self._waiting -= 1
        if not rule.waiting and rule.base is not None:
            rule.base.derived.pop(rule, None)
        self.release(rule)

    def follow(self, vm: VM, rule: Rule | None = None) -> None:
        """Where a waiting ``vm`` may go changed (default: to ``rule_for(vm)``): it waits under the new
        rule, keeping its place in the queue, and room already there is offered at once. A rule is
        fixed when a VM starts waiting, so room on a host its owner allows only later would not
        wake it otherwise. Nothing happens if ``vm`` is not waiting."""
        waiter = self._waiter_of.get(vm)
        if waiter is None:
            return
        if rule is None:
            rule = self.rule_for(vm)
        if rule is waiter.rule:
            return
        rule.refs += 1
        self.cancel(vm)
        self._enqueue(vm, rule, waiter.ticket, waiter.event)  # same place, same event
        host = self.choose(vm, rule)
        if host is not None:
            self._dirty_host(host)

    def waiting(self, rule: Rule | None = None) -> int:
        """VMs waiting (for ``rule``, or in all)."""
        return self._waiting if rule is None else rule.waiting

    def _dirty_host(self, host: Host) -> None:
        """``host`` gained room: offer it to the waiters once this instant's changes are done."""
        self._dirty[host] = None
        if not self._pass_due:
            self._pass_due = True
            ev = self.env.event()
            ev.callbacks.append(self._pass)
            ev.succeed()

    def _pass(self, _ev=None) -> None:
        """Wake waiters in FIFO order, each promised the host its rule chooses now (greedy, as if all
        had re-chosen in turn); a class (rule, memory) stops at its first waiter with no host."""
        self._pass_due = False
        dirty = list(self._dirty)
        self._dirty.clear()
        if not self._waiting:
            return
        bound = max(self._value[h.index] for h in dirty)
        rules: dict[Rule, None] = {}
        for h in dirty:
            i = h.index
            for rule in self._rules_of[i]:  # base rules holding the host, and their derived ones
                if rule.waiting:
                    rules[rule] = None
                for derived in rule.derived:
                    if i not in derived.excluded:
                        rules[derived] = None
        heads = []
        for rule in rules:
            for memory, queue in rule.queues.items():
                if memory <= bound and queue:
                    heads.append((queue[0][0], queue[0][1], rule, queue))
        heapq.heapify(heads)
        while heads:
            _, _, rule, queue = heapq.heappop(heads)
            entry = heapq.heappop(queue)
            waiter = entry[2]
            if not waiter.cancelled:
                host = self.choose(waiter.vm, rule)
                if host is None:
                    heapq.heappush(queue, entry)
                    continue  # nobody of this rule and size fits: the class is done
                self._wake(waiter, host)
            if queue:
                heapq.heappush(heads, (queue[0][0], queue[0][1], rule, queue))

    def _wake(self, waiter: _Waiter, host: Host) -> None:
        vm = waiter.vm
        del self._waiter_of[vm]
        self._left(waiter.rule)
        self._woken[vm] = waiter.ticket
        self._promise_of[vm] = (host, waiter.memory)
        self._promised[host.index] += waiter.memory
        self._refresh(host)
        event = waiter.event
        event.succeed(host)
        # Runs after the waiting process (its callback came first): it has chosen, placed or waits again.
        event.callbacks.append(lambda _ev: self._settle(vm, host))

    def _release(self, vm: VM) -> Host:
        """Give back the room promised to a woken VM (it is choosing now, or gave up); returns the host."""
        host, memory = self._promise_of.pop(vm)
        left = self._promised[host.index] - memory
        self._promised[host.index] = left if left > 1e-6 else 0.0
        self._refresh(host)
        return host

    def _settle(self, vm: VM, host: Host) -> None:
        self._woken.pop(vm, None)
        if vm in self._promise_of:
            self._release(vm)  # it never chose again
        if vm.host is not host and self._waiting and self._value[host.index] > 0.0:
            self._dirty_host(host)  # room it did not take goes to the next waiters


# -- brute-force reference (tests and benchmarks; O(hosts) per choice) ------------------------------
def _least_used(hosts: Iterable[Host], vm: VM) -> Host | None:
    best = None
    best_key = None
    for h in hosts:
        if not h.fits(vm):
            continue
        key = (_usage(h), h.index)
        if best_key is None or key < best_key:
            best, best_key = h, key
    return best


def choose_host_scan(vm: VM, candidates: list[Host], spread: str, rng: np.random.Generator | None = None,
                     exclude: Host | None = None) -> Host | None:
    """Reference: one host for ``vm`` among ``candidates`` (in order) by scanning them all, or None."""
    if spread == "pack":
        for h in candidates:
            if h is not exclude and h.fits(vm):
                return h
        return None
    if spread == "random":
        fits = [h for h in candidates if h is not exclude and h.fits(vm)]
        if not fits:
            return None
        if rng is None:
            raise ValueError("random placement needs a stream")
        return fits[int(rng.integers(len(fits)))]
    # broadcast_domain: the domain with fewest VMs of this workload, then the least-used host.
    by_domain: dict[str, list[Host]] = {}
    for h in candidates:
        if h is not exclude:
            by_domain.setdefault(h.domain.name, []).append(h)
    best = None
    best_key = None
    for order, (_, hosts) in enumerate(by_domain.items()):
        h = _least_used(hosts, vm)
        if h is None:
            continue
        key = (hosts[0].domain.placed.get(vm.workload, 0), order)
        if best_key is None or key < best_key:
            best, best_key = h, key
    return best


def deal_scan(vms: list[VM], candidates: list[Host], spread: str, place: Callable[[VM, Host], None],
              rng: np.random.Generator | None = None) -> list[VM]:
    """Reference initial placement by scanning (see ``Placement.deal``)."""
    unplaced = []
    if spread != "broadcast_domain":
        for vm in vms:
            host = choose_host_scan(vm, candidates, spread, rng)
            if host is None:
                unplaced.append(vm)
            else:
                place(vm, host)
        return unplaced
    domains: dict[str, list[Host]] = {}
    for h in candidates:
        domains.setdefault(h.domain.name, []).append(h)
    groups = list(domains.values())
    turn = 0
    for vm in vms:
        host = None
        for k in range(len(groups)):
            host = _least_used(groups[(turn + k) % len(groups)], vm)
            if host is not None:
                turn = (turn + k + 1) % len(groups)
                break
        if host is None:
            unplaced.append(vm)
        else:
            place(vm, host)
    return unplaced
