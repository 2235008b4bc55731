"""Session clusters against closed forms (Erlang B, k-of-n; docs/availability.md) and metamorphic relations.

- Erlang B: with no failures a cluster of N VMs x C sessions is an M/M/NC/NC loss system;
  the blocking simulated over independent replications (Student-t CI on the replication
  means) must contain B(A, NC), computed here by B_0 = 1, B_k = A B_{k-1} / (k + A B_{k-1}).
- N:K shortfall: each of the N+K VMs alternates exponential up (vm_mtbf) and down (repair)
  times independently, and a repaired VM takes a short position (failover 1 ms), so the
  cluster is short exactly while more than K are down: P(D > K), D ~ Binomial(N+K, p),
  p = MTTR / (MTBF + MTTR) (k-out-of-n with independent repair, Kullstam 1981); the positions short
  on average are E[(D - K)+].
- Metamorphic, paired seeds: more backups never raise the mean shortfall, more capacity
  per VM never raises the mean blocking.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import base_scenario, load
from scipy import stats

from sim.runner import Simulation


def erlang_b(load_e: float, servers: int) -> float:
    b = 1.0
    for k in range(1, servers + 1):
        b = load_e * b / (k + load_e * b)
    return b


def binomial_tail(n: int, p: float, k: int) -> float:
    """P(D > k), D ~ Binomial(n, p)."""
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1, n + 1))


def excess_mean(n: int, p: float, k: int) -> float:
    """E[(D - k)+], D ~ Binomial(n, p): the positions short on average."""
    return sum((i - k) * math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1, n + 1))


def ci(values, confidence: float) -> tuple[float, float]:
    """(mean, half-width) of the Student-t confidence interval over replications."""
    v = np.asarray(values, dtype=float)
    half = stats.t.ppf(0.5 + confidence / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return float(v.mean()), float(half)


def cluster_scenario(cluster: dict, types=(), duration="1d") -> dict:
    sc = base_scenario(workloads=[], duration=duration, sample_interval=duration)
    sc["mechanisms"] = {"sessions": {"clusters": [{"name": "c", "hosts": ["east/*"], **cluster}],
                                     "session_types": list(types)}}
    return sc


def replicate(sc: dict, tmp_path, seeds, tables: bool = False) -> list:
    """The metrics (or the whole outputs) of one run per seed."""
    out = []
    for seed in seeds:
        result = Simulation(load(sc, tmp_path, [f"seed={seed}"])).run()
        out.append(result if tables else result.metrics)
    return out


# --------------------------------------------------------------------------- Erlang B
def test_the_erlang_b_recursion_matches_the_published_points():
    """Published Erlang B table points: 15 lines carry 8.108 E at 1 %; B(10, 10), B(10, 15), B(55, 50)."""
    assert erlang_b(8.108, 15) == pytest.approx(0.01, rel=2e-3)
    assert erlang_b(10, 10) == pytest.approx(0.21458, rel=1e-4)
    assert erlang_b(10, 15) == pytest.approx(0.03650, rel=1e-3)
    assert erlang_b(55, 50) == pytest.approx(0.16098, rel=1e-4)
    assert erlang_b(84.064, 100) == pytest.approx(0.01, rel=1e-3)


def simulated_blocking(tmp_path, vms: int, capacity: int, load_e: float, arrivals: int, reps: int):
    """Blocking of ``reps`` replications (seeds 1..reps) of a failure-free cluster of ``vms`` x
    ``capacity`` slots offered ``load_e`` Erlangs (holding 1 s, rate = load), each ``arrivals`` long."""
    sc = cluster_scenario({"redundancy": "N:K", "active": vms, "backup": 0, "capacity": capacity},
                          [{"name": "s", "rate": load_e, "mean_holding": "1s", "require": "N:K"}],
                          duration=f"{arrivals / load_e:.3f}s")
    runs = replicate(sc, tmp_path, range(1, reps + 1))
    assert all(m["sessions.offered"] == m["sessions.carried"] + m["sessions.blocked"] for m in runs)
    return [m["sessions.blocking_probability"] for m in runs]


FAST_POINTS = [(4, 5, 15.0), (10, 10, 84.064), (1, 10, 10.0)]  # B = 0.0456, 0.0100, 0.2146
SLOW_POINTS = [(1, 10, 5.0), (4, 5, 15.0), (5, 10, 50.0), (10, 10, 84.064), (1, 10, 10.0)]


@pytest.mark.parametrize("vms,capacity,load_e", FAST_POINTS)
def test_blocking_without_failures_is_erlang_b(tmp_path, vms, capacity, load_e):
    """20 replications of 10,000 arrivals: B(A, N x C) inside the 99 % CI of the simulated mean."""
    b = erlang_b(load_e, vms * capacity)
    mean, half = ci(simulated_blocking(tmp_path, vms, capacity, load_e, 10_000, 20), 0.99)
    assert abs(mean - b) <= half, (mean, half, b)
    assert half < 0.25 * b  # the interval is informative, not a licence


@pytest.mark.slow
def test_blocking_without_failures_is_erlang_b_at_many_points(tmp_path):
    """Five points from 10 to 100 servers, 1 % to 21 % blocking, 20 replications of 100,000
    arrivals each (2 M a point): every B inside its CI, 99.9 % for the family (Bonferroni)."""
    conf = 1 - 0.001 / len(SLOW_POINTS)
    for vms, capacity, load_e in SLOW_POINTS:
        b = erlang_b(load_e, vms * capacity)
        mean, half = ci(simulated_blocking(tmp_path, vms, capacity, load_e, 100_000, 20), conf)
        assert abs(mean - b) <= half, (vms, capacity, load_e, mean, half, b)
        assert half < 0.1 * b


# --------------------------------------------------------------------------- N:K shortfall
def shortfall(tmp_path, n: int, k: int, mtbf_h: float, mttr_h: float, days: int, reps: int):
    sc = cluster_scenario({"redundancy": "N:K", "active": n, "backup": k, "failover_time": "1ms",
                           "vm_mtbf": f"{mtbf_h}h", "repair": f"{mttr_h}h"}, duration=f"{days}d")
    runs = replicate(sc, tmp_path, range(1, reps + 1))
    duration = days * 86400.0
    frac = [m["sessions.capacity_shortfall_s_total"] / duration for m in runs]
    return frac, runs


def test_nk_is_short_while_more_than_k_of_n_plus_k_are_down(tmp_path):
    """N = 4, K = 1, MTBF 10 h, MTTR 2 h (p = 1/6): short P(D > 1) = 0.1962 of the time, 10
    replications of 200 days (about 400 failure cycles per VM each): inside the 99 % CI."""
    p = 2 / 12
    frac, runs = shortfall(tmp_path, 4, 1, 10, 2, 200, 10)
    mean, half = ci(frac, 0.99)
    expected = binomial_tail(5, p, 1)
    assert abs(mean - expected) <= half, (mean, half, expected)
    assert half < 0.1 * expected
    assert all(m["sessions.failovers"] > 300 for m in runs)


@pytest.mark.slow
def test_nk_shortfall_matches_the_binomial_tail_at_several_points(tmp_path):
    """Three (N, K, MTBF, MTTR) points, 20 replications of 1,000 days: the fraction of time short
    and the mean number of positions short (capacity_shortfall_vm_s / duration = E[(D - K)+])
    inside their CIs, 99.9 % for the family."""
    points = [(4, 1, 10, 2), (10, 2, 100, 10), (4, 0, 20, 4)]
    conf = 1 - 0.001 / (2 * len(points))
    for n, k, mtbf, mttr in points:
        p = mttr / (mtbf + mttr)
        sc = cluster_scenario({"redundancy": "N:K", "active": n, "backup": k, "failover_time": "1ms",
                               "vm_mtbf": f"{mtbf}h", "repair": f"{mttr}h"}, duration="1000d")
        runs = replicate(sc, tmp_path, range(1, 21), tables=True)
        duration = 1000 * 86400.0
        frac = [r.metrics["sessions.capacity_shortfall_s_total"] / duration for r in runs]
        mean, half = ci(frac, conf)
        assert abs(mean - binomial_tail(n + k, p, k)) <= half, (n, k, mean, half, binomial_tail(n + k, p, k))
        short = [r.tables["sessions"]["capacity_shortfall_vm_s"].sum() / duration for r in runs]
        mean, half = ci(short, conf)
        assert abs(mean - excess_mean(n + k, p, k)) <= half, (n, k, mean, half, excess_mean(n + k, p, k))


def test_positions_short_on_average_is_the_binomial_excess(tmp_path):
    """The same N = 4, K = 1 cluster: capacity_shortfall_vm_s / duration (positions short, time
    averaged) inside the 99 % CI of E[(D - 1)+] = 0.2352."""
    p = 2 / 12
    sc = cluster_scenario({"redundancy": "N:K", "active": 4, "backup": 1, "failover_time": "1ms",
                           "vm_mtbf": "10h", "repair": "2h"}, duration="200d")
    runs = replicate(sc, tmp_path, range(1, 11), tables=True)
    vals = [r.tables["sessions"]["capacity_shortfall_vm_s"].sum() / (200 * 86400.0) for r in runs]
    mean, half = ci(vals, 0.99)
    assert abs(mean - excess_mean(5, p, 1)) <= half, (mean, half, excess_mean(5, p, 1))


# --------------------------------------------------------------------------- metamorphic
def test_more_backups_never_raise_the_mean_shortfall(tmp_path):
    """N = 4, MTBF 10 h, MTTR 2 h, K = 0, 1, 2, 3 on the same 6 seeds (the VMs of the smaller
    cluster fail at the same times in the larger one: streams are named by VM)."""
    means = []
    for k in range(4):
        frac, _ = shortfall(tmp_path, 4, k, 10, 2, 50, 6)
        means.append(float(np.mean(frac)))
    assert all(a >= b for a, b in zip(means, means[1:], strict=False)), means
    assert means[0] > 0.4 and means[-1] < 0.05


def test_more_capacity_never_raises_the_mean_blocking(tmp_path):
    """4 VMs offered 25 Erlangs with 5, 6, 8, 12 sessions per VM, on the same 5 seeds (the same
    arrivals and holding times in every configuration: streams are named by session type)."""
    means = []
    for capacity in (5, 6, 8, 12):
        sc = cluster_scenario({"redundancy": "N:K", "active": 4, "backup": 1, "capacity": capacity,
                               "vm_mtbf": "1h", "repair": "10m"},
                              [{"name": "s", "rate": 25, "mean_holding": "1s", "require": "N:K"}],
                              duration="2000s")
        runs = replicate(sc, tmp_path, range(1, 6))
        means.append(float(np.mean([m["sessions.blocking_probability"] for m in runs])))
    assert all(a >= b for a, b in zip(means, means[1:], strict=False)), means


def test_several_clusters_of_a_class_block_like_one_loss_system(tmp_path):
    """Three N:K clusters (2 x 5, 1 x 10 and 5 x 5 slots) share one session type. A cluster is passed
    over only when full, so a session is blocked exactly when all 45 slots are busy: Erlang
    B(40 E, 45) = 0.0543, inside the 99 % CI of 20 replications of 10,000 arrivals; and the
    least-loaded choice spreads the carried sessions over all three in proportion to their slots."""
    sc = cluster_scenario({"redundancy": "N:K", "active": 2, "backup": 0, "capacity": 5},
                          [{"name": "s", "rate": 40, "mean_holding": "1s", "require": "N:K"}], duration="250s")
    sc["mechanisms"]["sessions"]["clusters"] += [
        {"name": "d", "hosts": ["east/*"], "redundancy": "N:K", "active": 1, "backup": 0, "capacity": 10},
        {"name": "e", "hosts": ["east/*"], "redundancy": "N:K", "active": 5, "backup": 0, "capacity": 5}]
    runs = replicate(sc, tmp_path, range(1, 21), tables=True)
    b = erlang_b(40, 45)
    mean, half = ci([r.metrics["sessions.blocking_probability"] for r in runs], 0.99)
    assert abs(mean - b) <= half, (mean, half, b)
    carried = sum(r.tables["sessions"].groupby("cluster")["carried"].sum() for r in runs)
    share = carried / carried.sum()
    assert share.to_dict() == pytest.approx({"c": 10 / 45, "d": 10 / 45, "e": 25 / 45}, abs=0.02)
