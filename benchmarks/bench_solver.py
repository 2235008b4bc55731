"""Wall cost of one flow arrival and one departure in the bandwidth solver, with 1,000 live flows.

Topology (built through ``Network``): one site, ``--hosts`` hosts (default 512) in
broadcast domains of 16 hosts up to 512 hosts and of 100 hosts beyond (``--domains``
overrides: 512 hosts = 32 domains, 10,000 hosts = 100 domains), 25 Gbps NICs,
NVMe-class disks (2 GB/s read, 1 GB/s write), 100 Gbps domain uplinks, a backup
storage system on the core (10 GB/s read, 5 GB/s write) and a second, identical
backup target that receives exactly 16 streams (the backup-concurrency default: 16
concurrent backup streams per storage target). Each host has 4 solver resources (NIC
tx/rx, disk read/write): 10,000 hosts make ~40k resources, most of them idle.
Background: 1,000 live flows: the 16 streams into the second target; of the others,
half inside a domain (memory to memory, like live migrations), 30% across domains,
20% from host disks into the first storage system (backups). Flows are large enough
that none finishes while we measure.

Each pattern repeats: start one new flow of its kind (an *arrival*), then abort one
live flow of its kind (a *departure*), keeping 1,000 live flows; ``time.perf_counter``
wraps each solver call and a rate query that makes the solver re-solve at once (it batches the
changes of one instant otherwise), re-arming of the completion timer included.

- local: intra-domain flows (touch two NICs);
- cross-domain: flows across the core with unsaturated core (non-blocking: hosts x NIC);
- storage: flows into the first storage target, whose write link is saturated by
  ~200 flows (coupled);
- backup16: one of the 16 streams into the second target leaves, then one joins
  (departure first, so the target never has more than 16); its write link is
  saturated, so every join or leave changes all 16 rates;
- core: cross-domain flows with a core of 1.6 Tbps, saturated by ~300 flows (coupled).

Then a steady churn: the simulation runs (``env.step``), each completed flow replaced
by a new one of its kind (sizes 1-100 GB), and the wall time per completion (one
departure + one arrival, timer events included) is reported.

Then one storage target alone (``--target-flows``, default 16, 100, 1,000, 4,000 and 16,000):
that many flows from host disks into it, its write link the bottleneck of all of them, one
leaving and one joining per sample: the cost of an update that changes every rate.

Run: ``.venv/bin/python benchmarks/bench_solver.py [--hosts N] [--domains D] [--samples N] [--seed S]
[--patterns local,backup16,...] [--no-churn] [--target-flows 16,1000]``; e.g. ``--hosts 10000`` for
fleet scale.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import simpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, not installed

from sim.infra.network import Endpoint, Network  # noqa: E402
from sim.infra.solver import FlowSolver  # noqa: E402

GBPS = 1e9 / 8
N_FLOWS = 1000
GROUP = 16  # streams into the second backup target (backup concurrency per storage target)
SIZE = 1e15  # bytes: nothing completes during the measurement
MIX = (("local", 0.5), ("cross-domain", 0.3), ("storage", 0.2))
PATTERNS = ("local", "cross-domain", "storage", "backup16", "core")
SATURATED_CORE = 1600 * GBPS



def start_flow(net: Network, src: Endpoint, dst: Endpoint, size: float, tag: object = None):
    """A bare solver flow along the route (model code moves bytes with ``dc.transfers``)."""
    resources, latency = net.route(src, dst)
    return net.solver.start(resources, size, None, latency, tag)


@dataclass(frozen=True)
class Shape:
    hosts: int
    domains: int

    @property
    def per_domain(self) -> int:
        return self.hosts // self.domains


def build(shape: Shape, core: float) -> tuple[simpy.Environment, FlowSolver, Network, list[list[str]]]:
    env = simpy.Environment()
    solver = FlowSolver(env)
    net = Network(env, solver)
    net.add_site("east", core)
    domains = []
    for d in range(shape.domains):
        dom = f"bd{d:03d}"
        net.add_domain("east", dom, 100 * GBPS)
        hosts = []
        for h in range(shape.per_domain):
            name = f"east/{dom}/h{h:03d}"
            net.add_host(name, "east", dom, 25 * GBPS, 2e9, 1e9)
            hosts.append(name)
        domains.append(hosts)
    net.add_storage("vault", "east", 10e9, 5e9)
    net.add_storage("vault16", "east", 10e9, 5e9)
    return env, solver, net, domains


def endpoints(kind: str, domains: list[list[str]], rng: np.random.Generator) -> tuple[Endpoint, Endpoint]:
    per = len(domains[0])
    if kind == "local":
        hosts = domains[rng.integers(len(domains))]
        a, b = rng.choice(len(hosts), 2, replace=False)
        return Endpoint.nic(hosts[a]), Endpoint.nic(hosts[b])
    if kind == "cross-domain":
        da, db = rng.choice(len(domains), 2, replace=False)
        return (Endpoint.nic(domains[da][rng.integers(per)]),
                Endpoint.nic(domains[db][rng.integers(per)]))
    host = domains[rng.integers(len(domains))][rng.integers(per)]
    return Endpoint.disk(host), Endpoint.storage("vault16" if kind == "backup16" else "vault")


def background(net: Network, domains: list[list[str]], rng: np.random.Generator) -> dict[str, list]:
    """The 1,000 live flows: 16 into the second target, the rest drawn from ``MIX``."""
    live: dict[str, list] = {k: [] for k, _ in MIX}
    live["backup16"] = [start_flow(net, *endpoints("backup16", domains, rng), SIZE) for _ in range(GROUP)]
    kinds = [k for k, _ in MIX]
    probs = [p for _, p in MIX]
    for _ in range(N_FLOWS - GROUP):
        k = kinds[rng.choice(len(kinds), p=probs)]
        live[k].append(start_flow(net, *endpoints(k, domains, rng), SIZE))
    return live


def measure(shape: Shape, pattern: str, samples: int, seed: int) -> dict[str, np.ndarray]:
    kind = {"core": "cross-domain"}.get(pattern, pattern)
    core = SATURATED_CORE if pattern == "core" else shape.hosts * 25 * GBPS  # saturated, or non-blocking
    env, solver, net, domains = build(shape, core)
    rng = np.random.default_rng(seed)
    live = background(net, domains, rng)
    core_rid = net.solver.resource_id("core:east")
    core_saturated = solver.load(core_rid) >= solver.capacity(core_rid) * (1 - 1e-6)
    assert core_saturated == (pattern == "core"), "the core is saturated exactly in the core pattern"
    arrive = np.empty(samples)
    depart = np.empty(samples)
    full0 = solver.stats["full"]
    perf = time.perf_counter
    leave_first = pattern == "backup16"  # the target never holds more than GROUP streams
    for i in range(samples):
        src, dst = endpoints(kind, domains, rng)
        route, latency = net.route(src, dst)
        victim = live[kind].pop(int(rng.integers(len(live[kind]))))
        if leave_first:
            t2 = perf()
            solver.abort(victim)
            solver.rate(live[kind][0])  # a query solves the change now (the solver batches an instant's)
            t3 = perf()
        t0 = perf()
        flow = solver.start(route, SIZE, None, latency)
        solver.rate(flow)
        t1 = perf()
        live[kind].append(flow)
        if not leave_first:
            t2 = perf()
            solver.abort(victim)
            solver.rate(flow)
            t3 = perf()
        arrive[i] = t1 - t0
        depart[i] = t3 - t2
    assert solver.n_flows == N_FLOWS
    return {"arrival": arrive, "departure": depart, "full": (solver.stats["full"] - full0) / (2 * samples),
            "resources": len(solver._names) - 1}


def one_target(shape: Shape, n: int, samples: int, seed: int) -> dict[str, np.ndarray]:
    """``n`` flows from host disks into one storage target (``vault``, 5 GB/s write), nothing else:
    the target's write link is the bottleneck of every flow (5e9 / n each, far under a host disk's
    or NIC's share), so each arrival or departure changes all ``n`` rates. Each sample: one flow
    leaves, one arrives (``n`` live throughout)."""
    env, solver, net, domains = build(shape, shape.hosts * 25 * GBPS)
    rng = np.random.default_rng(seed)
    live = [start_flow(net, *endpoints("storage", domains, rng), SIZE) for _ in range(n)]
    write = solver.resource_id("storage:vault:write")
    assert abs(solver.load(write) - solver.capacity(write)) <= 1e-6 * solver.capacity(write)
    arrive = np.empty(samples)
    depart = np.empty(samples)
    full0 = solver.stats["full"]
    perf = time.perf_counter
    for i in range(samples):
        victim = live.pop(int(rng.integers(len(live))))
        t0 = perf()
        solver.abort(victim)
        solver.rate(live[0])  # a query solves the change now (the solver batches an instant's)
        t1 = perf()
        route, latency = net.route(*endpoints("storage", domains, rng))
        t2 = perf()
        live.append(solver.start(route, SIZE, None, latency))
        solver.rate(live[-1])
        t3 = perf()
        depart[i] = t1 - t0
        arrive[i] = t3 - t2
    assert solver.n_flows == n
    rate = solver.rate(live[0])
    assert abs(rate - 5e9 / n) <= 1e-6 * rate  # max-min: an equal share each
    return {"arrival": arrive, "departure": depart, "full": (solver.stats["full"] - full0) / (2 * samples)}


def churn(shape: Shape, completions: int, seed: int) -> tuple[float, float]:
    """Run the simulation itself: each completed flow is replaced by a new one of its kind.

    Returns (wall seconds per completion, incremental share of updates); each completion
    costs one departure and one arrival, both driven by the solver's single timer.
    """
    env, solver, net, domains = build(shape, shape.hosts * 25 * GBPS)
    rng = np.random.default_rng(seed)
    kinds = [k for k, _ in MIX]
    probs = [p for _, p in MIX]
    count = [0]

    def launch(kind: str) -> None:
        src, dst = endpoints(kind, domains, rng)
        flow = start_flow(net, src, dst, float(rng.uniform(1e9, 1e11)), tag=kind)
        flow.done.callbacks.append(done)

    def done(ev: simpy.Event) -> None:
        count[0] += 1
        launch(ev.value.tag)

    for _ in range(GROUP):
        launch("backup16")
    for _ in range(N_FLOWS - GROUP):
        launch(kinds[rng.choice(len(kinds), p=probs)])
    s0 = dict(solver.stats)
    t0 = time.perf_counter()
    while count[0] < completions:
        env.step()
    wall = time.perf_counter() - t0
    inc = solver.stats["incremental"] - s0["incremental"]
    full = solver.stats["full"] - s0["full"]
    return wall / count[0], inc / max(1, inc + full)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=512)
    ap.add_argument("--domains", type=int, default=None,
                    help="broadcast domains (default: hosts/16 up to 512 hosts, hosts/100 beyond)")
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--patterns", default=",".join(PATTERNS), help=f"comma-separated subset of {PATTERNS}")
    ap.add_argument("--no-churn", action="store_true", help="skip the steady-churn run")
    ap.add_argument("--target-flows", default="16,100,1000,4000,16000",
                    help="flows into one storage target, comma-separated counts ('' to skip)")
    args = ap.parse_args()
    domains = args.domains or max(1, args.hosts // (16 if args.hosts <= 512 else 100))
    shape = Shape(args.hosts, domains)
    patterns = [p for p in args.patterns.split(",") if p]
    for p in patterns:
        if p not in PATTERNS:
            ap.error(f"unknown pattern {p!r}; choose from {PATTERNS}")
    print(f"{shape.per_domain * shape.domains} hosts, {shape.domains} domains, {N_FLOWS} live flows, "
          f"{args.samples} arrivals + departures per pattern; wall ms")
    print(f"{'pattern':<14}{'arrival p50':>12}{'p95':>8}{'departure p50':>15}{'p95':>8}{'full solves':>13}")
    for pattern in patterns:
        r = measure(shape, pattern, args.samples, args.seed)
        a, d = r["arrival"] * 1e3, r["departure"] * 1e3
        print(f"{pattern:<14}{np.median(a):>12.4f}{np.percentile(a, 95):>8.3f}"
              f"{np.median(d):>15.4f}{np.percentile(d, 95):>8.3f}{r['full']:>12.0%}", flush=True)
    print(f"({r['resources']:,} solver resources)")
    counts = [int(c) for c in args.target_flows.split(",") if c]
    if counts:
        print("flows into one storage target (5 GB/s write, every rate changes at each update); wall ms")
        print(f"{'flows':>8}{'arrival p50':>12}{'p95':>8}{'departure p50':>15}{'p95':>8}{'full solves':>13}")
    for n in counts:
        r = one_target(shape, n, max(20, min(args.samples, 200_000 // n)), args.seed)
        a, d = r["arrival"] * 1e3, r["departure"] * 1e3
        print(f"{n:>8}{np.median(a):>12.4f}{np.percentile(a, 95):>8.3f}"
              f"{np.median(d):>15.4f}{np.percentile(d, 95):>8.3f}{r['full']:>12.0%}", flush=True)
    if not args.no_churn:
        per, inc = churn(shape, args.samples, args.seed)
        print(f"steady churn (env.step, mixed): {per * 1e3:.3f} ms per completion + replacement "
              f"({1 / per:,.0f} completions/s; {inc:.0%} of updates incremental)")


if __name__ == "__main__":
    main()
