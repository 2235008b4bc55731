"""Stochastic fault injection reproduces configured rates.

An alternating renewal process with exponential up times (mean MTBF) and fixed repair R
has, over a horizon T much longer than MTBF + R, an expected failure count of about
T / (MTBF + R) per target. Counts are compared with the two-sided 99.9 % Poisson interval
of that mean (scipy), for fixed seeds.
"""

from __future__ import annotations

import math

import pytest
from conftest import base_scenario, run
from scipy.stats import poisson

HOUR = 3600.0
YEAR = 365 * 86400.0


def afr(mttf_hours: float) -> float:
    """Annualised failure rate of an exponential lifetime: 1 - exp(-8766 h / MTTF) (Schroeder & Gibson)."""
    return 1 - math.exp(-8766.0 / mttf_hours)


def test_afr_formula_reproduces_the_datasheet_range():
    """Schroeder & Gibson FAST 2007: datasheet MTTF 1.0-1.5 M h means 0.58-0.88 % AFR."""
    assert round(100 * afr(1.0e6), 3) == 0.873
    assert round(100 * afr(1.5e6), 3) == 0.583


def _interval(mean: float) -> tuple[int, int]:
    return int(poisson.ppf(0.0005, mean)), int(poisson.ppf(0.9995, mean))


def _fleet(duration: str, faults: list) -> dict:
    sc = base_scenario(duration=duration, faults=faults)
    dom = sc["infrastructure"]["sites"][0]["broadcast_domains"]
    dom[0]["hosts"] = dom[1]["hosts"] = 64  # 128 hosts
    sc["workloads"][0]["count"] = 16
    return sc


def test_disk_failures_match_the_configured_afr(tmp_path):
    """128 hosts x 10 years with disk MTTF 100,000 h (AFR 8.4 %, the upper field range of
    Schroeder & Gibson / Pinheiro): expected 128 x 10 y x 8760 h / (100,000 h + 24 h repair)."""
    mttf = 100_000.0
    out = run(_fleet("10y", [{"kind": "disk_failure", "mtbf": mttf * HOUR, "repair": "24h"}]), tmp_path)
    n = out.metrics["faults.disk_failure"]
    expected = 128 * 10 * YEAR / ((mttf + 24) * HOUR)
    lo, hi = _interval(expected)
    assert expected > 100
    assert lo <= n <= hi, (n, expected)


@pytest.mark.parametrize("seed", [1, 2])
def test_host_crash_count_matches_renewal_rate(tmp_path, seed):
    """128 hosts, MTBF 1 y, repair 4 h, 3 years: expected 128 x 3 y / (1 y + 4 h) = 383.8."""
    out = run(_fleet("3y", [{"kind": "host_crash", "mtbf": "1y", "repair": "4h"}]), tmp_path,
              overrides=[f"seed={seed}"])
    expected = 128 * 3 * YEAR / (YEAR + 4 * HOUR)
    lo, hi = _interval(expected)
    assert lo <= out.metrics["faults.host_crash"] <= hi
