"""DIMM error injection (``dimm_errors``): counts against rates, with fixed seeds.

Every expected count is computed here from the configured rates and the exposure the
run's own tables show (DIMM-years while hosts were up, and the part of it after each
DIMM's first correctable error); counts are checked against Poisson or binomial 99.9 %
intervals (scipy). The fast tests use small fleets; ``slow`` ones repeat them at the
scale of a field study (10^5 host-years).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sim.runner import Simulation
from sim.scenario.loader import validate_scenario

YEAR = 365 * 86400.0


def fleet(*, hosts=40, domains=5, years=1.0, dimms=16, repair="1s", workloads=(), mechanisms=None,
          seed=1, **dimm_errors) -> dict:
    return {
        "name": "fleet", "seed": seed, "duration": years * YEAR, "sample_interval": "7d",
        "infrastructure": {
            "host_profiles": {"p": {"dimms": dimms}}, "repair": "4h",
            "sites": [{"name": "east", "broadcast_domains": [
                {"name": f"bd{d}", "hosts": hosts, "profile": "p"} for d in range(domains)]}],
        },
        "workloads": list(workloads),
        "faults": [{"kind": "dimm_errors", "repair": repair, **dimm_errors}],
        "mechanisms": mechanisms or {},
    }


def simulate(data: dict):
    sim = Simulation(validate_scenario(data))
    return sim, sim.run()


def poisson_ok(count: int, mean: float, level: float = 0.999) -> bool:
    lo, hi = stats.poisson.interval(level, mean)
    return lo <= count <= hi


def binom_ok(count: int, n: int, p: float, level: float = 0.999) -> bool:
    lo, hi = stats.binom.interval(level, n, p)
    return lo <= count <= hi


def exposure(sim, out) -> tuple[float, float]:
    """(DIMM-years while up, DIMM-years after each DIMM's first correctable error while up).

    A host is down from a ``faults`` row's time to its end (memory-error repair); its DIMMs are
    replaced at the end. A DIMM's post-CE time runs from its first CE to the next replacement of
    its host (or the end of the run).
    """
    T = float(sim.scenario.duration)
    faults = out.tables["faults"]
    faults = faults[faults["kind"] == "dimm_errors"]
    down: dict[str, list[tuple[float, float]]] = {}
    for r in faults.itertuples():
        down.setdefault(r.target, []).append((r.time_s, min(r.end_s, T)))
    total = 0.0
    for h in sim.dc.host_list:
        total += h.dimms * (T - sum(b - a for a, b in down.get(h.name, [])))
    me = out.tables["memory_errors"]
    first = me[(me["kind"] == "correctable") & (me["action"] == "logged")]
    post = 0.0
    for r in first.itertuples():
        ends = [b for a, b in down.get(r.host, []) if a >= r.time_s]
        stop = min(ends) if ends else T
        lost = sum(b - a for a, b in down.get(r.host, []) if a >= r.time_s and b <= stop)
        post += stop - r.time_s - lost
    return total / YEAR, post / YEAR


def uncorrectable(out) -> int:
    me = out.tables["memory_errors"]
    return int(me.loc[me["kind"] == "uncorrectable", "count"].sum())


# ------------------------------------------------------------------------- uncorrectable errors
def test_uncorrectable_count_matches_rate_times_dimm_years():
    """No raise after a CE: UE count ~ Poisson(u x DIMM-years). 200 hosts x 16 DIMMs x 2 y, u = 0.02."""
    u = 0.02
    sim, out = simulate(fleet(years=2, uncorrectable_per_dimm_year=u, uncorrectable_after_correctable=1))
    dimm_years, _ = exposure(sim, out)
    n = uncorrectable(out)
    assert n > 50
    assert poisson_ok(n, u * dimm_years)
    assert out.metrics["memory_errors.uncorrectable"] == n
    assert out.metrics["memory_errors.host_crashes"] == n  # no evacuation: each one crashes its host


def test_uncorrectable_rate_is_raised_after_the_first_correctable():
    """UE count ~ Poisson(u x (DIMM-years before a DIMM's first CE) + k u x (DIMM-years after)).
    p = 0.3, c = 0.6 (r = 2 per prone DIMM-year), u = 0.01, k = 20 over 3 years."""
    u, k = 0.01, 20.0
    sim, out = simulate(fleet(years=3, error_prone_fraction=0.3, correctable_per_dimm_year=0.6,
                              uncorrectable_per_dimm_year=u, uncorrectable_after_correctable=k))
    total, post = exposure(sim, out)
    expected = u * (total - post) + k * u * post
    n = uncorrectable(out)
    assert post > 0.1 * total  # the raised rate matters here
    assert poisson_ok(n, expected)
    assert not poisson_ok(n, u * total)  # and the base rate alone would not explain the count


def test_no_errors_while_the_host_is_down():
    """One host is down for the whole run (a crash at 0 with a 2-year repair): it logs no error."""
    data = fleet(hosts=4, domains=1, uncorrectable_per_dimm_year=2.0, error_prone_fraction=1.0)
    data["faults"].append({"kind": "host_crash", "at": 0, "target": "east/bd0/h00", "repair": "730d"})
    _, out = simulate(data)
    me = out.tables["memory_errors"]
    assert len(me[me["host"] != "east/bd0/h00"]) > 0
    assert len(me[me["host"] == "east/bd0/h00"]) == 0


# ------------------------------------------------------------------------- correctable errors
def test_correctable_count_matches_the_fleet_mean():
    """Every DIMM error-prone (p = 1): CEs (first events + later Poisson counts) ~ Poisson(c x DIMM-years)."""
    c = 3.0
    sim, out = simulate(fleet(hosts=20, error_prone_fraction=1.0, correctable_per_dimm_year=c,
                              uncorrectable_per_dimm_year=0.0))
    dimm_years, _ = exposure(sim, out)
    assert poisson_ok(out.metrics["memory_errors.correctable"], c * dimm_years)
    levels = out.tables["levels"]
    gauge = levels[levels["metric"] == "correctable_errors"]["value"]
    assert gauge.is_monotonic_increasing
    assert gauge.iloc[-1] == out.metrics["memory_errors.correctable"]


def test_share_of_dimms_and_hosts_with_correctable_errors():
    """With u = 0: a DIMM logs a CE in the year with probability q = p (1 - exp(-r)), r = c/p; a host of
    d DIMMs with 1 - (1 - q)^d. Defaults p = 0.08, c = 4 (Schroeder 2009: > 8 % of DIMMs a year)."""
    p, c, d = 0.08, 4.0, 16
    q = p * (1 - math.exp(-c / p))
    sim, out = simulate(fleet(hosts=100, dimms=d, uncorrectable_per_dimm_year=0.0))
    me = out.tables["memory_errors"]
    first = me[me["action"] == "logged"]
    n_dimms = sum(h.dimms for h in sim.dc.host_list)
    assert first.groupby(["host", "dimm"]).size().max() == 1  # only the first CE is an event
    assert binom_ok(len(first), n_dimms, q)
    hosts_hit = first["host"].nunique()
    assert binom_ok(hosts_hit, len(sim.dc.host_list), 1 - (1 - q) ** d)


def test_later_correctables_are_counts_not_events():
    """A fleet with 3,751 CEs per DIMM-year (Schroeder's mean) costs no more events than one with 4."""
    _, few = simulate(fleet(hosts=10, correctable_per_dimm_year=4.0, uncorrectable_per_dimm_year=0.0))
    _, many = simulate(fleet(hosts=10, correctable_per_dimm_year=3751.0, uncorrectable_per_dimm_year=0.0))
    assert many.metrics["memory_errors.correctable"] > 100 * few.metrics["memory_errors.correctable"]
    assert many.events <= few.events * 1.5 + 100


def test_replacement_dimms_draw_error_proneness_afresh():
    """p = 0.5 and a first CE within hours (r = 2000 / prone DIMM-year): each install of a DIMM slot
    logs a first CE iff the new DIMM is prone. Across consecutive installs of a slot the two draws
    agree with probability p^2 + (1 - p)^2 = 0.5 when drawn afresh (1.0 if proneness stuck)."""
    sim, out = simulate(fleet(hosts=10, years=3, dimms=8, error_prone_fraction=0.5, correctable_per_dimm_year=1000,
                              uncorrectable_per_dimm_year=0.3, uncorrectable_after_correctable=1))
    faults = out.tables["faults"]
    me = out.tables["memory_errors"]
    first = me[me["action"] == "logged"]
    agree = pairs = 0
    T = float(sim.scenario.duration)
    for h in sim.dc.host_list:
        cuts = [0.0, *sorted(faults.loc[faults["target"] == h.name, "end_s"]), T]
        mine = first[first["host"] == h.name]
        periods = [set(mine.loc[(mine["time_s"] >= a) & (mine["time_s"] < b), "dimm"])
                   for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b - a > 30 * 86400]
        for s1, s2 in zip(periods[:-1], periods[1:], strict=False):
            for dimm in range(h.dimms):
                pairs += 1
                agree += (dimm in s1) == (dimm in s2)
    assert pairs > 100
    assert binom_ok(agree, pairs, 0.5)


def test_same_seed_same_errors_with_or_without_evacuation():
    """Common random numbers: each host's first uncorrectable error is the same with evacuation on or off."""
    kw = dict(hosts=10, uncorrectable_per_dimm_year=0.05, workloads=[
        {"name": "w", "count": 50, "vm": {"vcpus": 2, "memory": "16GiB", "disk": "10GiB"}}])
    _, off = simulate(fleet(**kw))
    _, on = simulate(fleet(mechanisms={"memory_error_evacuation": {}}, **kw))

    def firsts(out):
        me = out.tables["memory_errors"]
        ue = me[me["kind"] == "uncorrectable"]
        return ue.groupby("host")["time_s"].min().sort_index()

    a, b = firsts(off), firsts(on)
    assert len(a) > 5
    pd.testing.assert_series_equal(a, b)


# ------------------------------------------------------------------------- default rates at scale
def _defaults_fleet(hosts_per_domain: int, domains: int, years: float):
    sim, out = simulate(fleet(hosts=hosts_per_domain, domains=domains, years=years, repair="1s"))
    total, post = exposure(sim, out)
    u, k = 0.0008, 10.0  # the schema's defaults (docs/sources.md, Memory errors)
    return uncorrectable(out), u * (total - post) + k * u * post, out, sim


def test_default_rates_fast():
    """Defaults on 1,000 hosts x 16 DIMMs for 5 years (5,000 host-years)."""
    n, expected, _, _ = _defaults_fleet(50, 20, 5)
    assert n > 50
    assert poisson_ok(n, expected)


def _first_year_per_host() -> float:
    """P(a fresh 16-DIMM host with the default rates has an uncorrectable error in its first year):
    1 - exp(-d (u (1 - p) + p (u m + k u (1 - m)))), m = (1 - e^-r)/r the mean share of the year an
    error-prone DIMM spends before its first correctable error (rate r = c/p per year)."""
    p, c, u, k, d = 0.08, 4.0, 0.0008, 10.0, 16
    r = c / p
    m = (1 - math.exp(-r)) / r
    return 1 - math.exp(-d * (u * (1 - p) + p * (u * m + k * u * (1 - m))))


def test_default_first_year_rate_fast():
    """The default-rate validation's first-year check on 4,000 hosts for one year: about 2.2 % of hosts
    (≈ 88) see an uncorrectable error, inside Schroeder's 2-4 % band; binomial 99.9 % interval."""
    per_host = _first_year_per_host()
    assert 0.02 < per_host < 0.04
    sim, out = simulate(fleet(hosts=100, domains=40, years=1.0, repair="1s"))
    me = out.tables["memory_errors"]
    hit = me[(me["kind"] == "uncorrectable") & (me["time_s"] < YEAR)]["host"].nunique()
    assert hit > 40
    assert binom_ok(hit, len(sim.dc.host_list), per_host)


@pytest.mark.slow
def test_default_rates_at_scale():
    """The uncorrectable-error count at the scale of a large field study: 10^5 host-years (2,000 hosts x 50 years) with the default
    rates; the count is within the Poisson 99.9 % interval of the rate x DIMM-years, and the fresh
    fleet's first-year rate per host is 1 - exp(-d (u (1 - p) + p (u m + k u (1 - m)))), m = (1 - e^-r)/r."""
    n, expected, out, sim = _defaults_fleet(100, 20, 50)
    assert n > 1000
    assert poisson_ok(n, expected)
    per_host = _first_year_per_host()
    me = out.tables["memory_errors"]
    first_year = me[(me["kind"] == "uncorrectable") & (me["time_s"] < YEAR)]["host"].nunique()
    assert binom_ok(first_year, len(sim.dc.host_list), per_host)


@pytest.mark.slow
def test_correctable_share_at_scale():
    """The DIMM share with a CE in a year, on 20,000 hosts (320,000 DIMMs): binomial 99.9 %."""
    p, c = 0.08, 4.0
    q = p * (1 - math.exp(-c / p))
    sim, out = simulate(fleet(hosts=200, domains=100, uncorrectable_per_dimm_year=0.0))
    me = out.tables["memory_errors"]
    n = int((me["action"] == "logged").sum())
    assert binom_ok(n, sum(h.dimms for h in sim.dc.host_list), q)
    assert np.isclose(n / (20000 * 16), q, rtol=0.05)
