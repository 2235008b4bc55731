"""``dcsim fit`` (MLE per family, AIC ranking, censoring) and ``dcsim trace export`` (round trip).

Fitted parameters are checked against their asymptotic 95 % intervals, from the inverse Fisher
information per observation (closed forms):
- Weibull (shape k, scale l): Var(k) = 0.6079 k^2 / n, Var(l) = 1.1087 l^2 / (k^2 n)
  (6/pi^2 = 0.6079; 1 + 0.6079 (1 - gamma_euler)^2 = 1.1087).
- lognormal (mu, sigma): Var(mu) = sigma^2 / n, Var(sigma) = sigma^2 / (2 n).
- gamma (shape a, scale t): with D = a psi'(a) - 1, Var(a) = a / (n D), Var(t) = t^2 psi'(a) / (n D).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import base_scenario, write_yaml
from scipy import special, stats
from typer.testing import CliRunner

from sim import fit as fitting
from sim.cli import app

HOUR = 3600.0
DAY = 86400.0
N = 5000


def _inside(value, true, var):
    half = 1.96 * math.sqrt(var)
    assert abs(value - true) <= half, (value, true, half)


def test_weibull_recovered():
    k, lam = 0.7, 30 * DAY
    x = stats.weibull_min(k, scale=lam).rvs(N, random_state=np.random.default_rng(11))
    fits = fitting.fit_sample(x)
    assert fits[0].family == "weibull"
    p = fits[0].params
    _inside(p["shape"], k, 0.6079 * k * k / N)
    _inside(p["scale"], lam, 1.1087 * lam * lam / (k * k * N))


def test_lognormal_recovered():
    mu, sigma = math.log(8 * HOUR), 1.0
    x = stats.lognorm(sigma, scale=math.exp(mu)).rvs(N, random_state=np.random.default_rng(12))
    fits = fitting.fit_sample(x)
    assert fits[0].family == "lognormal"
    _inside(math.log(fits[0].params["median"]), mu, sigma**2 / N)
    _inside(fits[0].params["sigma"], sigma, sigma**2 / (2 * N))


def test_gamma_recovered():
    a, t = 2.0, HOUR
    x = stats.gamma(a, scale=t).rvs(N, random_state=np.random.default_rng(13))
    fits = fitting.fit_sample(x)
    assert fits[0].family == "gamma"
    d = a * special.polygamma(1, a) - 1
    _inside(fits[0].params["shape"], a, a / (N * d))
    _inside(fits[0].params["scale"], t, t * t * special.polygamma(1, a) / (N * d))


def test_exponential_with_censoring_is_total_time_over_failures():
    """Censored exponential MLE (closed form): mean = (sum of up times + sum of censored) / failures."""
    fits = {f.family: f for f in fitting.fit_sample(np.array([1.0, 2.0, 3.0]), np.array([10.0]))}
    assert fits["exponential"].params["mean"] == pytest.approx(16.0 / 3)
    assert fits["exponential"].censored == 1


def test_censoring_uses_the_survival_function():
    """A Weibull fit with censored values: log L = sum log f(x) + sum log S(c), as scipy's
    CensoredData fit maximises; dropping the censored values would give a smaller scale."""
    rng = np.random.default_rng(5)
    x = stats.weibull_min(0.8, scale=10.0).rvs(400, random_state=rng)
    c = np.full(100, 30.0)
    w = {f.family: f for f in fitting.fit_sample(x, c)}["weibull"]
    fz = stats.weibull_min(w.params["shape"], scale=w.params["scale"])
    assert w.loglik == pytest.approx(fz.logpdf(x).sum() + fz.logsf(c).sum())
    w0 = {f.family: f for f in fitting.fit_sample(x)}["weibull"]
    assert w.params["scale"] > w0.params["scale"]


def test_samples_merge_and_censor():
    """Node a: [0,1], [1,2] touch -> [0,2]; [5,6]; horizon 10: up time 3 (2 -> 5), censored 4
    (6 -> 10); repairs 2 and 1."""
    t = pd.DataFrame({"node": ["a", "a", "a"], "start": [0.0, 1.0, 5.0], "end": [1.0, 2.0, 6.0]})
    s = fitting.samples(t, 10.0)["a"]
    assert s["up"].tolist() == [3.0]
    assert s["censored"].tolist() == [4.0]
    assert s["repair"].tolist() == [2.0, 1.0]


def test_fit_cli_prints_yaml_that_loads_and_runs(tmp_path):
    """A trace drawn from Weibull(0.7, 10 d) up times and lognormal(8 h, 1) repairs on 8 nodes:
    the printed lines are a time_to_failure (weibull) and a time_to_repair (lognormal) that,
    pasted into a host_crash entry, load and run; the plot is written."""
    rng = np.random.default_rng(3)
    rows, t = [], np.zeros(8)
    for _ in range(400):
        for n in range(8):
            t[n] += stats.weibull_min.rvs(0.7, scale=10 * DAY, random_state=rng)
            r = stats.lognorm.rvs(1.0, scale=8 * HOUR, random_state=rng)
            rows.append((n, t[n], t[n] + r))
            t[n] += r
    pd.DataFrame(rows, columns=["node", "start", "end"]).to_csv(tmp_path / "t.csv", index=False)
    png = tmp_path / "fit.png"
    result = CliRunner().invoke(app, ["fit", str(tmp_path / "t.csv"), "--plot", str(png)])
    assert result.exit_code == 0, result.output
    pasted = [line for line in result.output.splitlines() if not line.startswith("#")]
    assert len(pasted) == 2
    entry = {"kind": "host_crash"}
    for line in pasted:
        entry.update(yaml.safe_load(line))
    assert entry["time_to_failure"]["family"] == "weibull"
    assert entry["time_to_repair"]["family"] == "lognormal"
    assert abs(entry["time_to_failure"]["shape"] - 0.7) < 0.05
    assert png.stat().st_size > 10_000
    sc = base_scenario(duration="1y", faults=[entry])
    path = write_yaml(tmp_path / "pasted.yaml", sc)
    run = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    assert run.exit_code == 0, run.output
    faults = pd.read_parquet(tmp_path / "out" / "faults.parquet")
    assert len(faults) > 100  # 8 hosts x 365 d / ~13 d mean up time


def test_fit_too_few_samples_exits_2(tmp_path):
    (tmp_path / "t.csv").write_text("node,start,end\n0,1h,2h\n0,5h,6h\n")
    result = CliRunner().invoke(app, ["fit", str(tmp_path / "t.csv")])
    assert result.exit_code == 2
    assert "expected at least 20 up times and repairs to fit, got 1 and 2" in result.output


# --------------------------------------------------------------------------- round trip
def _fleet(faults):
    sc = base_scenario(duration="60d", faults=faults)
    sc["workloads"][0]["count"] = 12
    return sc


def test_export_then_replay_gives_identical_incidents(tmp_path):
    """A run with random host crashes, VM crashes and domain outages; its faults exported with
    ``dcsim trace export`` and replayed with the random entries removed: the incidents table has
    the same subjects, starts and ends (and the faults table is the same)."""
    random_faults = [{"kind": "host_crash", "mtbf": "10d", "repair": "4h"},
                     {"kind": "vm_crash", "mtbf": "8d"},
                     {"kind": "broadcast_domain_outage", "mtbf": "20d",
                      "time_to_repair": {"family": "lognormal", "median": "30m", "sigma": 1.0}}]
    a_yaml = write_yaml(tmp_path / "a.yaml", _fleet(random_faults))
    cli = CliRunner()
    assert cli.invoke(app, ["run", str(a_yaml), "--out", str(tmp_path / "a"), "--quiet"]).exit_code == 0
    exported = cli.invoke(app, ["trace", "export", str(tmp_path / "a"), "--out", str(tmp_path / "a.csv")])
    assert exported.exit_code == 0, exported.output
    b_yaml = write_yaml(tmp_path / "b.yaml", _fleet([{"kind": "trace", "path": "a.csv", "vms": "*",
                                                     "domains": "*"}]))
    assert cli.invoke(app, ["run", str(b_yaml), "--out", str(tmp_path / "b"), "--quiet"]).exit_code == 0
    cols = ["subject", "start_s", "end_s"]
    ia = pd.read_parquet(tmp_path / "a" / "incidents.parquet")[cols].sort_values(cols).reset_index(drop=True)
    ib = pd.read_parquet(tmp_path / "b" / "incidents.parquet")[cols].sort_values(cols).reset_index(drop=True)
    assert len(ia) > 30
    pd.testing.assert_frame_equal(ia, ib)
    fcols = ["time_s", "kind", "target", "end_s"]
    fa = pd.read_parquet(tmp_path / "a" / "faults.parquet")[fcols].sort_values(fcols).reset_index(drop=True)
    fb = pd.read_parquet(tmp_path / "b" / "faults.parquet")[fcols].sort_values(fcols).reset_index(drop=True)
    pd.testing.assert_frame_equal(fa, fb)
    assert set(fa["kind"]) == {"host_crash", "vm_crash", "broadcast_domain_outage"}


def test_export_of_a_folder_without_faults_exits_2(tmp_path):
    result = CliRunner().invoke(app, ["trace", "export", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip() == f'{tmp_path}: expected a run folder with faults.parquet, got "{tmp_path}"'


def test_kaplan_meier_by_hand():
    """Up times 1, 3 (failures) and 2 (censored): S(1) = 1 - 1/3 = 2/3; at 3 one at risk fails:
    S(3) = 2/3 x (1 - 1/1) = 0. CDF at the failures: 1/3, 1."""
    t, cdf = fitting.kaplan_meier(np.array([1.0, 3.0]), np.array([2.0]))
    assert t.tolist() == [1.0, 3.0]
    assert cdf.tolist() == pytest.approx([1 / 3, 1.0])


def test_fit_per_node_and_horizon(tmp_path):
    """Two nodes, 30 exponential up times each (mean 10 h), 1 h repairs: --per-node prints one
    line per node; --horizon far beyond the last end censors each node's last up time there, so
    the exponential mean (total time on test / failures) grows by the extra censored time / 58."""
    rng = np.random.default_rng(9)
    rows = []
    for n in ("a", "b"):
        t = 0.0
        for _ in range(31):
            t += rng.exponential(10 * HOUR)
            rows.append((n, t, t + HOUR))
            t += HOUR
    df = pd.DataFrame(rows, columns=["node", "start", "end"])
    df.to_csv(tmp_path / "t.csv", index=False)
    cli = CliRunner()
    base = cli.invoke(app, ["fit", str(tmp_path / "t.csv"), "--per-node", "--plot", str(tmp_path / "p.png")])
    assert base.exit_code == 0, base.output
    assert sum(line.startswith("#   a: time_to_failure") or line.startswith("#   b: time_to_failure")
               for line in base.output.splitlines()) == 2
    per = fitting.samples(fitting.read(str(tmp_path / "t.csv")))
    up = fitting.pooled(per, "up")
    cens = fitting.pooled(per, "censored")
    assert len(up) == 60 and len(cens) == 2
    far = fitting.samples(fitting.read(str(tmp_path / "t.csv")), df["end"].max() + 100 * HOUR)
    extra = fitting.pooled(far, "censored").sum() - cens.sum()
    assert extra == pytest.approx(200 * HOUR)
    e0 = {f.family: f for f in fitting.fit_sample(up, cens)}["exponential"].params["mean"]
    e1 = {f.family: f for f in fitting.fit_sample(up, fitting.pooled(far, "censored"))}["exponential"].params["mean"]
    assert e1 - e0 == pytest.approx(200 * HOUR / 60)
