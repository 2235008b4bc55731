"""Wall cost of one placement choice through the index, against the brute-force scan it replaced.

Fleet (built through ``Datacenter``, no scenario): one site, domains of 40 hosts, hosts of
256 GiB (240 GiB for VMs), 1,000 or 10,000 hosts; one rule of all hosts; 10 VMs of 16 GiB
per host placed by the rule's spread at build (``Placement.deal``; ``pack`` fills the first
two thirds of the hosts and leaves the rest empty, so first fit has to look far).

Each operation takes a random placed VM off its host (``unplace``), chooses a host for it
and places it there: the cost of a restart's choice with the index kept up to date.
``after`` chooses with ``Placement.choose`` (O(log hosts) or O(domains)); ``before``
with ``choose_host_scan`` over the rule's hosts (what ``choose_host`` did: O(hosts)).
Both pay the index upkeep in ``unplace``/``place``. Also reported: the initial deal of
all VMs (``deal`` vs ``deal_scan``).

Rules per avoid-set (``--rules N``, issue 12 §4): over the same fleet of 10,000 hosts, with
its three rules of all hosts (one per spread), N distinct rules of all hosts less an avoid-set
(in turn: one host, two hosts, one domain, two domains; all ``broadcast_domain``, then the
three spreads in turn), made through
``Placement.rule`` as mechanisms make them (a copy kept off its partners' hosts or domains).
Reported: the memory they hold (``tracemalloc``, after a collection), the mean wall cost of
``host_changed`` (a reserve and its release on a random host, so two calls per operation)
with none and with them, and the memory left once every one is released (``release``).

Run: ``.venv/bin/python benchmarks/bench_placement.py [--hosts 1000 10000] [--ops N]``,
``--rules 1000`` for the avoid-set figures only.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import simpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, not installed

from sim.core.context import Context  # noqa: E402
from sim.core.streams import Streams  # noqa: E402
from sim.infra.datacenter import VM, Datacenter, VMSpec  # noqa: E402
from sim.infra.network import Network  # noqa: E402
from sim.infra.placement import choose_host_scan, deal_scan  # noqa: E402
from sim.infra.solver import FlowSolver  # noqa: E402
from sim.metrics.recorder import Recorder  # noqa: E402

GiB = 2**30
PER_DOMAIN = 40
VMS_PER_HOST = 10


def build(hosts: int, spread: str, indexed_deal: bool = True):
    env = simpy.Environment()
    ctx = Context(env=env, streams=Streams(1), recorder=Recorder(env), scenario=None)
    dc = Datacenter(ctx, Network(env, FlowSolver(env)))
    site = dc.add_site("s", "r", 1e12)
    profile = SimpleNamespace(cores=64, memory=256 * GiB, reserved_memory=16 * GiB, dimms=16, nic=25e9,
                              disk=SimpleNamespace(capacity=4e12, read=2e9, write=1e9), boot_time=180.0)
    for d in range(hosts // PER_DOMAIN):
        dom = dc.add_domain(site, f"bd{d:03d}", 1e11, 1e-4)
        for i in range(PER_DOMAIN):
            dc.add_host(dom, f"s/bd{d:03d}/h{i:02d}", "p", profile)
    rule = dc.placement.rule(dc.host_list, spread)
    spec = VMSpec(vcpus=2, memory=16 * GiB, disk=1e11, dirty_rate=2e7, working_set=16 * GiB, boot_time=60.0)
    names = tuple(h.name for h in dc.host_list)
    vms = [dc.add_vm(VM(f"w-{i:06d}", f"w{i % 4}", spec, "w", names, spread, rule=rule))
           for i in range(hosts * VMS_PER_HOST)]
    rng = np.random.default_rng(1)
    t0 = time.perf_counter()
    if indexed_deal:
        unplaced = dc.placement.deal(vms, rule, dc.place, rng)
    else:
        unplaced = deal_scan(vms, list(rule.hosts), spread, dc.place, rng)
    deal_s = time.perf_counter() - t0
    assert not unplaced
    return dc, rule, vms, deal_s


def per_op(dc, rule, vms, ops: int, indexed: bool) -> float:
    """Mean wall seconds of unplace + choose + place of a random VM."""
    pick = np.random.default_rng(2).integers(len(vms), size=ops).tolist()
    rng = np.random.default_rng(3)
    candidates = list(rule.hosts)
    choose = dc.placement.choose
    t0 = time.perf_counter()
    for i in pick:
        vm = vms[i]
        dc.unplace(vm)
        if indexed:
            host = choose(vm, rule, rng=rng)
        else:
            host = choose_host_scan(vm, candidates, rule.spread, rng)
        dc.place(vm, host)
    return (time.perf_counter() - t0) / ops


def host_changed_cost(dc, ops: int) -> float:
    """Mean wall seconds of one ``host_changed`` (a reserve of 1 GiB then its release, random hosts)."""
    pick = np.random.default_rng(4).integers(len(dc.host_list), size=ops).tolist()
    hosts = dc.host_list
    t0 = time.perf_counter()
    for i in pick:
        h = hosts[i]
        dc.reserve(h, GiB)
        dc.unreserve(h, GiB)
    return (time.perf_counter() - t0) / (2 * ops)


def avoid_sets(dc, n: int, spreads: tuple[str, ...]):
    """``n`` distinct host lists: all hosts less one host, two hosts, one domain or two domains."""
    rng = np.random.default_rng(5)
    hosts = dc.host_list
    domains = list(dc.domains.values())
    seen = set()
    while len(seen) < n:
        kind = len(seen) % 4
        if kind < 2:
            away = frozenset(hosts[int(i)] for i in rng.choice(len(hosts), size=kind + 1, replace=False))
            keep = [h for h in hosts if h not in away]
        else:
            away = frozenset(domains[int(i)] for i in rng.choice(len(domains), size=kind - 1, replace=False))
            keep = [h for h in hosts if h.domain not in away]
        if away not in seen:
            seen.add(away)
            yield keep, spreads[len(seen) % len(spreads)]


def rules_hazard(hosts: int, n: int, ops: int, spreads: tuple[str, ...]) -> None:
    dc, _, _, _ = build(hosts, "broadcast_domain")
    place = dc.placement
    for spread in ("pack", "random"):
        place.rule(dc.host_list, spread)
    none = host_changed_cost(dc, ops)
    release = getattr(place, "release", None)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    rules = [place.rule(keep, spread) for keep, spread in avoid_sets(dc, n, spreads)]
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - base
    left = float("nan")
    if release is not None:
        for rule in rules:
            release(rule)
        rules = []
        gc.collect()
        left = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    if not rules:
        rules = [place.rule(keep, spread) for keep, spread in avoid_sets(dc, n, spreads)]
    with_rules = host_changed_cost(dc, ops)
    print(f"{n} rules ({'/'.join(spreads)}) at {hosts} hosts: {held / 2**20:.1f} MiB held, {left / 2**20:.1f} MiB after release;"
          f" host_changed {none * 1e6:.2f} us with none, {with_rules * 1e6:.2f} us with them"
          f" ({with_rules / none:.2f}x)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--ops", type=int, default=3000, help="operations timed with the index")
    ap.add_argument("--scan-ops", type=int, default=300, help="operations timed with the scan at 1,000 hosts"
                    " (fewer for more hosts)")
    ap.add_argument("--deal-scan-max", type=int, default=2000,
                    help="time the scanning deal only up to this many hosts (it is O(VMs x hosts))")
    ap.add_argument("--rules", type=int, default=0, help="only the avoid-set figures: this many rules")
    args = ap.parse_args()
    if args.rules:
        for spreads in (("broadcast_domain",), ("broadcast_domain", "pack", "random")):
            rules_hazard(max(args.hosts), args.rules, args.ops * 10, spreads)
        return
    print(f"{'hosts':>6} {'spread':>17} {'before us/op':>13} {'after us/op':>12} {'speedup':>8}"
          f" {'deal scan s':>12} {'deal index s':>13}")
    for n in args.hosts:
        for spread in ("broadcast_domain", "pack", "random"):
            dc, rule, vms, deal_index = build(n, spread)
            after = per_op(dc, rule, vms, args.ops, indexed=True)
            before = per_op(dc, rule, vms, max(20, args.scan_ops * 1000 // n), indexed=False)
            deal_scan_s = "-"
            if n <= args.deal_scan_max:
                deal_scan_s = f"{build(n, spread, indexed_deal=False)[3]:.2f}"
            print(f"{n:>6} {spread:>17} {before * 1e6:>13.1f} {after * 1e6:>12.1f} {before / after:>7.0f}x"
                  f" {deal_scan_s:>12} {deal_index:>13.2f}", flush=True)


if __name__ == "__main__":
    main()
