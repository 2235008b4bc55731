"""Wall cost of one flow arrival and one departure in the bandwidth solver, with 1,000 live flows.

Topology (built through ``Network``): one site, 32 broadcast domains of 16 hosts
(512 hosts), 25 Gbps NICs, NVMe-class disks (2 GB/s read, 1 GB/s write), 100 Gbps
domain uplinks, and a backup storage system on the core (10 GB/s read, 5 GB/s write).
Background: 1,000 live flows, half inside a domain (memory to memory, like live
migrations), 30% across domains, 20% from host disks into the storage system
(backups). Flows are large enough that none finishes while we measure.

Each pattern repeats: start one new flow of its kind (an *arrival*), then abort one
live flow of its kind (a *departure*), keeping 1,000 live flows; ``time.perf_counter``
wraps each solver call, re-solve and re-arming of the completion timer included.

- local: intra-domain flows (touch two NICs);
- cross-domain: flows across the core with unsaturated core;
- storage: flows into the one storage target, whose write link is saturated (coupled);
- core: cross-domain flows with a core of 1.6 Tbps, saturated (coupled).

Then a steady churn: the simulation runs (``env.step``), each completed flow replaced
by a new one of its kind (sizes 1-100 GB), and the wall time per completion (one
departure + one arrival, timer events included) is reported.

Run: ``.venv/bin/python benchmarks/bench_solver.py [--samples N] [--seed S]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import simpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, not installed

from sim.infra.network import Endpoint, Network  # noqa: E402
from sim.infra.solver import FlowSolver  # noqa: E402

GBPS = 1e9 / 8
N_DOMAINS, HOSTS_PER_DOMAIN, N_FLOWS = 32, 16, 1000
SIZE = 1e15  # bytes: nothing completes during the measurement
MIX = (("local", 0.5), ("cross-domain", 0.3), ("storage", 0.2))


def build(core: float) -> tuple[simpy.Environment, FlowSolver, Network, list[list[str]]]:
    env = simpy.Environment()
    solver = FlowSolver(env)
    net = Network(env, solver)
    net.add_site("east", core)
    domains = []
    for d in range(N_DOMAINS):
        dom = f"bd{d:02d}"
        net.add_domain("east", dom, 100 * GBPS)
        hosts = []
        for h in range(HOSTS_PER_DOMAIN):
            name = f"east/{dom}/h{h:02d}"
            net.add_host(name, "east", dom, 25 * GBPS, 2e9, 1e9)
            hosts.append(name)
        domains.append(hosts)
    net.add_storage("vault", "east", 10e9, 5e9)
    return env, solver, net, domains


def endpoints(kind: str, domains: list[list[str]], rng: np.random.Generator) -> tuple[Endpoint, Endpoint]:
    if kind == "local":
        hosts = domains[rng.integers(len(domains))]
        a, b = rng.choice(len(hosts), 2, replace=False)
        return Endpoint.nic(hosts[a]), Endpoint.nic(hosts[b])
    if kind == "cross-domain":
        da, db = rng.choice(len(domains), 2, replace=False)
        return (Endpoint.nic(domains[da][rng.integers(HOSTS_PER_DOMAIN)]),
                Endpoint.nic(domains[db][rng.integers(HOSTS_PER_DOMAIN)]))
    host = domains[rng.integers(len(domains))][rng.integers(HOSTS_PER_DOMAIN)]
    return Endpoint.disk(host), Endpoint.storage("vault")


def measure(pattern: str, samples: int, seed: int) -> dict[str, np.ndarray]:
    kind = {"core": "cross-domain"}.get(pattern, pattern)
    core = 1600 * GBPS if pattern == "core" else 6400 * GBPS  # saturated, or not
    env, solver, net, domains = build(core)
    rng = np.random.default_rng(seed)
    live: dict[str, list] = {k: [] for k, _ in MIX}
    kinds = [k for k, _ in MIX]
    probs = [p for _, p in MIX]
    for _ in range(N_FLOWS):
        k = kinds[rng.choice(len(kinds), p=probs)]
        src, dst = endpoints(k, domains, rng)
        live[k].append(net.transfer(src, dst, SIZE))
    arrive = np.empty(samples)
    depart = np.empty(samples)
    full0 = solver.stats["full"]
    perf = time.perf_counter
    for i in range(samples):
        src, dst = endpoints(kind, domains, rng)
        route, latency = net.route(src, dst)
        t0 = perf()
        flow = solver.start(route, SIZE, None, latency)
        t1 = perf()
        live[kind].append(flow)
        victim = live[kind].pop(int(rng.integers(len(live[kind]))))
        t2 = perf()
        solver.abort(victim)
        t3 = perf()
        arrive[i] = t1 - t0
        depart[i] = t3 - t2
    assert solver.n_flows == N_FLOWS
    return {"arrival": arrive, "departure": depart, "full": (solver.stats["full"] - full0) / (2 * samples)}


def churn(completions: int, seed: int) -> tuple[float, float]:
    """Run the simulation itself: each completed flow is replaced by a new one of its kind.

    Returns (wall seconds per completion, incremental share of updates); each completion
    costs one departure and one arrival, both driven by the solver's single timer.
    """
    env, solver, net, domains = build(6400 * GBPS)
    rng = np.random.default_rng(seed)
    kinds = [k for k, _ in MIX]
    probs = [p for _, p in MIX]
    count = [0]

    def launch(kind: str) -> None:
        src, dst = endpoints(kind, domains, rng)
        flow = net.transfer(src, dst, float(rng.uniform(1e9, 1e11)), tag=kind)
        flow.done.callbacks.append(done)

    def done(ev: simpy.Event) -> None:
        count[0] += 1
        launch(ev.value.tag)

    for _ in range(N_FLOWS):
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
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    print(f"{N_DOMAINS * HOSTS_PER_DOMAIN} hosts, {N_DOMAINS} domains, {N_FLOWS} live flows, "
          f"{args.samples} arrivals + departures per pattern; wall ms")
    print(f"{'pattern':<14}{'arrival p50':>12}{'p95':>8}{'departure p50':>15}{'p95':>8}{'full solves':>13}")
    for pattern in ("local", "cross-domain", "storage", "core"):
        r = measure(pattern, args.samples, args.seed)
        a, d = r["arrival"] * 1e3, r["departure"] * 1e3
        print(f"{pattern:<14}{np.median(a):>12.3f}{np.percentile(a, 95):>8.3f}"
              f"{np.median(d):>15.3f}{np.percentile(d, 95):>8.3f}{r['full']:>12.0%}")
    per, inc = churn(args.samples, args.seed)
    print(f"steady churn (env.run, mixed): {per * 1e3:.3f} ms per completion + replacement "
          f"({1 / per:,.0f} completions/s; {inc:.0%} of updates incremental)")


if __name__ == "__main__":
    main()
