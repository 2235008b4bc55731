"""Fault entries with distributions: sampling, renewal theory, bad input, VM epochs.

Renewal-reward theorem: a target alternating up times T (time to failure) and repairs R has
long-run unavailability E[R] / (E[T] + E[R]). Each test compares the fleet's measured down
fraction with that closed form, inside a 99 % interval built from the spread across hosts
(independent renewal processes: Student-t on the per-host fractions).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import base_scenario, fleet_of, load, run, write_yaml
from scipy import stats
from typer.testing import CliRunner

from sim.cli import app
from sim.core.streams import Streams
from sim.faults.distributions import frozen, sampler
from sim.scenario.schema import Distribution

HOUR = 3600.0
DAY = 86400.0
YEAR = 365 * DAY


_fleet = fleet_of  # conftest: hosts over two domains, no workload VMs


def _down_fractions(out, hosts: int, duration: float) -> np.ndarray:
    f = out.tables["faults"]
    f = f[f["kind"] == "host_crash"]
    down = (np.minimum(f["end_s"].to_numpy(), duration) - f["time_s"].to_numpy())
    per = np.zeros(hosts)
    codes, idx = np.unique(f["target"].to_numpy(), return_inverse=True)
    np.add.at(per, idx, down)
    return per / duration


def _check_unavailability(out, hosts: int, duration: float, expected: float) -> tuple[float, float, float]:
    frac = _down_fractions(out, hosts, duration)
    mean = frac.mean()
    half = stats.t.ppf(0.995, hosts - 1) * frac.std(ddof=1) / math.sqrt(hosts)
    assert mean - half <= expected <= mean + half, (mean, half, expected)
    return mean, half, expected


# --------------------------------------------------------------------------- sampling
@pytest.mark.parametrize("spec", [
    {"family": "exponential", "mean": "30d"},
    {"family": "weibull", "shape": 0.7, "mean": "30d"},
    {"family": "weibull", "shape": 1.5, "scale": "10h"},
    {"family": "lognormal", "median": "8h", "sigma": 1.0},
    {"family": "lognormal", "mean": "8h", "sigma": 0.5},
    {"family": "gamma", "shape": 0.4, "mean": "2d"},
    {"family": "gamma", "shape": 3.0, "scale": "1h"},
])
def test_draws_are_scipys_and_the_mean_is_the_closed_form(spec):
    """Each sampler draws exactly what scipy.stats' rvs draws from the same generator, and its
    mean equals scipy's mean of the same distribution, written independently here."""
    dist = Distribution.model_validate(spec)
    s = sampler(dist)
    rng = np.random.default_rng(7)
    ours = np.array([s(rng) for _ in range(50)])
    fam = spec["family"]
    if fam == "exponential":
        ref = stats.expon(scale=30 * DAY)
    elif fam == "weibull":
        k = spec["shape"]
        scale = 10 * HOUR if "scale" in spec else 30 * DAY / math.gamma(1 + 1 / k)
        ref = stats.weibull_min(k, scale=scale)
    elif fam == "lognormal":
        sigma = spec["sigma"]
        median = 8 * HOUR if "median" in spec else 8 * HOUR * math.exp(-sigma**2 / 2)
        ref = stats.lognorm(sigma, scale=median)
    else:
        k = spec["shape"]
        ref = stats.gamma(k, scale=HOUR if "scale" in spec else 2 * DAY / k)
    theirs = ref.rvs(size=50, random_state=np.random.default_rng(7))
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    assert math.isclose(s.mean, ref.mean(), rel_tol=1e-12)
    assert math.isclose(frozen(dist).mean(), ref.mean(), rel_tol=1e-12)


def test_mtbf_is_the_exponential_shortcut(tmp_path):
    """``mtbf: 30d`` and ``time_to_failure: {family: exponential, mean: 30d}`` draw the same
    numbers from the same stream: identical faults tables."""
    a = run(_fleet(8, "1y", {"kind": "host_crash", "mtbf": "30d", "repair": "8h"}), tmp_path)
    b = run(_fleet(8, "1y", {"kind": "host_crash", "time_to_failure": {"family": "exponential", "mean": "30d"},
                              "repair": "8h"}), tmp_path)
    assert len(a.tables["faults"]) > 50
    assert a.tables["faults"].equals(b.tables["faults"])


def test_preset_fills_the_published_shape(tmp_path):
    """``{preset: lanl-node, mean: 30d}`` is Weibull with shape 0.75 (Schroeder & Gibson DSN 2006)."""
    sc = load(_fleet(2, "1d", {"kind": "host_crash", "time_to_failure": {"preset": "lanl-node", "mean": "30d"}}),
              tmp_path)
    ttf = sc.faults[0].time_to_failure
    assert (ttf.family, ttf.shape, ttf.mean) == ("weibull", 0.75, 30 * DAY)


# --------------------------------------------------------------------------- renewal theory
WEIBULL_30D = {"family": "weibull", "shape": 0.7, "mean": "30d"}


def _weibull_fixed(hosts, years):
    """Weibull(0.7, mean 30 d) up times, fixed 8 h repairs: U = 8 / (720 + 8) = 1.0989 %."""
    fault = {"kind": "host_crash", "time_to_failure": WEIBULL_30D, "repair": "8h"}
    return _fleet(hosts, f"{years}y", fault), 8 / (720 + 8)


def _weibull_lognormal(hosts, years):
    """Lognormal repairs, median 8 h, sigma 1: E[R] = 8 h x exp(1/2) = 13.190 h;
    U = 13.190 / (720 + 13.190) = 1.7990 %."""
    fault = {"kind": "host_crash", "time_to_failure": WEIBULL_30D,
             "time_to_repair": {"family": "lognormal", "median": "8h", "sigma": 1.0}}
    er = 8 * math.exp(0.5)
    return _fleet(hosts, f"{years}y", fault), er / (720 + er)


@pytest.mark.parametrize("case", [_weibull_fixed, _weibull_lognormal], ids=["fixed-8h", "lognormal"])
def test_long_run_unavailability_fast(tmp_path, case):
    """64 hosts x 10 years (~7,700 failures): the measured down fraction's 99 % interval holds
    E[R] / (E[T] + E[R])."""
    sc, expected = case(64, 10)
    out = run(sc, tmp_path)
    assert out.metrics["faults.host_crash"] > 5000
    _check_unavailability(out, 64, 10 * YEAR, expected)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("case", [_weibull_fixed, _weibull_lognormal], ids=["fixed-8h", "lognormal"])
def test_long_run_unavailability_slow(tmp_path, case, seed):
    """256 hosts x 40 years (~120,000 failures), three seeds."""
    sc, expected = case(256, 40)
    out = run(sc, tmp_path, overrides=[f"seed={seed}"])
    _check_unavailability(out, 256, 40 * YEAR, expected)


@pytest.mark.parametrize("seed", [1, 2])
def test_shape_one_counts_are_poisson(tmp_path, seed):
    """Weibull shape 1 is exponential; with zero repair the failures of a host form a Poisson
    process of rate 1 / 30 d, so 64 hosts over 1 year have Poisson(64 x 365 / 30 = 778.67)
    failures: inside the two-sided 99 % interval."""
    fault = {"kind": "host_crash", "time_to_failure": {"family": "weibull", "shape": 1.0, "mean": "30d"},
             "repair": 0}
    out = run(_fleet(64, "1y", fault), tmp_path, overrides=[f"seed={seed}"])
    mean = 64 * 365 / 30
    lo, hi = stats.poisson.ppf(0.005, mean), stats.poisson.ppf(0.995, mean)
    assert lo <= out.metrics["faults.host_crash"] <= hi


def test_scheduled_entry_draws_each_targets_repair(tmp_path):
    """A scheduled outage with a deterministic time_to_repair of 2 h ends 2 h later on every
    target; a lognormal one draws per target from faults/host_crash.0/<host> (after nothing
    else: the first draw of that stream)."""
    sc = _fleet(4, "1d", {"kind": "host_crash", "at": "1h", "target": "*",
                          "time_to_repair": {"family": "lognormal", "median": "2h", "sigma": 0.5}})
    out = run(sc, tmp_path)
    f = out.tables["faults"].sort_values("target")
    streams = Streams(1)
    want = [2 * HOUR * math.exp(0.5 * streams.get(f"faults/host_crash.0/{t}").standard_normal())
            for t in f["target"]]
    np.testing.assert_allclose(f["repair_s"].to_numpy(), want, rtol=1e-12)
    assert (f["time_s"] == HOUR).all()


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("dist", "message"), [
    ({"family": "weibull", "shape": 0, "mean": "30d"},
     "s.yaml: faults.0.time_to_failure.shape: expected a number greater than zero, got 0"),
    ({"family": "weibull", "shape": -0.7, "mean": "30d"},
     "s.yaml: faults.0.time_to_failure.shape: expected a number greater than zero, got -0.7"),
    ({"family": "lognormal", "sigma": 0, "median": "8h"},
     "s.yaml: faults.0.time_to_failure.sigma: expected a number greater than zero, got 0"),
    ({"preset": "lanl-nodes", "mean": "30d"},
     's.yaml: faults.0.time_to_failure.preset: expected one of disk-replacement, disk-replacement-gamma, '
     'lanl-node, got "lanl-nodes"'),
    ({"family": "weibull", "shape": 0.7},
     "s.yaml: faults.0.time_to_failure.scale: expected a value (a weibull distribution takes shape and scale "
     "or mean), got nothing"),
    ({"family": "gamma", "shape": 2, "mean": "1d", "scale": "12h"},
     "s.yaml: faults.0.time_to_failure.mean: expected either scale or mean, got both"),
    ({"family": "weibull", "shape": 0.7, "mean": "soon"},
     's.yaml: faults.0.time_to_failure.mean: expected a duration like "30s", got "soon"'),
])
def test_bad_distribution_exits_2_with_the_dotted_path(tmp_path, dist, message):
    path = write_yaml(tmp_path / "s.yaml", _fleet(2, "1d", {"kind": "host_crash", "time_to_failure": dist}))
    result = CliRunner().invoke(app, ["check", str(path)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [message.replace("s.yaml", str(path))]


def test_bad_repair_distribution_exits_2(tmp_path):
    fault = {"kind": "host_crash", "mtbf": "30d", "time_to_repair": {"family": "lognormal", "sigma": -1,
                                                                     "median": "1h"}}
    path = write_yaml(tmp_path / "s.yaml", _fleet(2, "1d", fault))
    result = CliRunner().invoke(app, ["check", str(path)])
    assert result.exit_code == 2
    assert result.output.strip() == f"{path}: faults.0.time_to_repair.sigma: expected a number greater than zero, got -1"


# --------------------------------------------------------------------------- a mechanism's VMs
def _sessions(duration: str, faults: list) -> dict:
    sc = base_scenario(duration=duration, faults=faults)
    sc["workloads"] = []
    sc["mechanisms"] = {"sessions": {
        "clusters": [{"name": "voice", "redundancy": "1:1", "active": 2, "capacity": 10, "hosts": ["east/*"],
                      "vm_mtbf": "2d", "repair": "4h"}],
        "session_types": [{"name": "call", "rate": 0.01, "mean_holding": "60s", "require": "1:1"}]}}
    return sc


def _epochs(seed: int, vm, duration: float) -> list[float]:
    """The failure epochs of ``vm`` from its stream alone: t1 = T1, t(i+1) = t(i) + R(i) + T(i+1),
    drawn in the order T, R (exponential, means vm.mtbf and vm.repair)."""
    rng = Streams(seed).get(f"faults/vm/{vm.name}")
    out, t = [], 0.0
    while True:
        t += rng.exponential(vm.mtbf)
        if t > duration:
            return out
        out.append(t)
        t += rng.exponential(vm.repair)


def test_vm_failure_epochs_do_not_depend_on_the_vms_state(tmp_path):
    """Every host of the VMs' site is down from day 2 to day 6: at epochs in that window the VMs
    are stopped and nothing fails. Every vm_crash recorded is one of the epochs computed from the
    stream alone, and every epoch outside the window is recorded. (Before, an epoch that found the
    VM stopped redrew a time to failure from then, so every later crash moved.)"""
    from sim.runner import Simulation

    sc = load(_sessions("20d", [{"kind": "site_outage", "at": "2d", "target": "east", "repair": "4d"}]), tmp_path)
    sim = Simulation(sc)
    vms = {v.name: v for v in sim.dc.vms.values() if v.mtbf is not None}
    out = sim.run()
    f = out.tables["faults"]
    crashes = f[f["kind"] == "vm_crash"]
    checked = 0
    for name, vm in vms.items():
        epochs = _epochs(sc.seed, vm, 20 * DAY)
        got = crashes.loc[crashes["target"] == name, "time_s"].tolist()
        outside = [t for t in epochs if not (2 * DAY <= t <= 6 * DAY + HOUR)]
        assert set(got) <= set(epochs), name
        assert set(outside) <= set(got), name
        checked += len(outside)
    assert checked > 20
    assert any(2 * DAY <= t <= 6 * DAY for vm in vms.values() for t in _epochs(sc.seed, vm, 20 * DAY))
