"""The ``empirical`` family: durations resampled from a column of a CSV or Parquet file.

Resampling draws i.i.d. from the column's empirical distribution (each of its m values with
probability 1/m), so n draws have the column's mean within a Student-t interval of half-width
t * s / sqrt(n), and the fraction of draws at or below the column's q-quantile x_q is
Binomial(n, F(x_q)) / n, with F(x_q) = #(values <= x_q) / m counted on the column.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import fleet_of, run, write_yaml
from scipy import stats
from typer.testing import CliRunner

from sim.cli import app
from sim.core.streams import Streams

HOUR = 3600.0
DAY = 86400.0
YEAR = 365 * DAY


_fleet = fleet_of  # conftest: hosts over two domains, no workload VMs


def _repairs_file(tmp_path):
    """A skewed column: up to 40 distinct repairs (whole minutes), half written with units, half as seconds."""
    rng = np.random.default_rng(7)
    seconds = np.unique(60 * np.round(rng.lognormal(math.log(2 * HOUR), 1.0, 40) / 60))
    text = [f"{s / 60:.0f}m" if i % 2 else f"{s:.0f}" for i, s in enumerate(seconds)]
    pd.DataFrame({"node": [f"n{i}" for i in range(len(text))], "repair": text}).to_csv(
        tmp_path / "incidents.csv", index=False)
    return seconds


@pytest.mark.parametrize("form", ["short", "long"])
def test_repairs_resample_the_column(tmp_path, form):
    """600 hosts crash at 1 h, each draws its repair from the column (a relative path, units mixed
    with seconds). Exact: each draw is values[integers(m)] of the target's stream. Statistical:
    the draws' mean is in the 99 % interval around the column's mean, and the fraction at or
    below the column's quartiles and median is inside the binomial 99 % interval of F(x_q)."""
    values = _repairs_file(tmp_path)
    dist = ({"empirical": {"path": "incidents.csv", "column": "repair"}} if form == "short"
            else {"family": "empirical", "path": "incidents.csv", "column": "repair"})
    sc = _fleet(600, "2d", {"kind": "host_crash", "at": "1h", "target": "*", "time_to_repair": dist})
    out = run(sc, tmp_path)
    f = out.tables["faults"].sort_values("target")
    draws = f["repair_s"].to_numpy()
    assert len(draws) == 600
    streams = Streams(1)
    want = [values[streams.get(f"faults/host_crash.0/{t}").integers(len(values))] for t in f["target"]]
    np.testing.assert_allclose(draws, want, rtol=1e-12)

    n, mu = len(draws), values.mean()
    half = stats.t.ppf(0.995, n - 1) * draws.std(ddof=1) / math.sqrt(n)
    assert abs(draws.mean() - mu) <= half, (draws.mean(), mu, half)
    for q in (0.25, 0.5, 0.75):
        x_q = np.quantile(values, q, method="inverted_cdf")
        p = float(np.mean(values <= x_q))
        lo, hi = stats.binom.ppf(0.005, n, p), stats.binom.ppf(0.995, n, p)
        assert lo <= np.sum(draws <= x_q) <= hi, (q, np.sum(draws <= x_q), lo, hi)


def test_time_to_failure_from_a_parquet_column(tmp_path):
    """Up times resampled from {10 d, 20 d} (mean 15 d), fixed 1 d repairs: renewal-reward gives
    long-run unavailability 1 / (15 + 1) = 6.25 %; 64 hosts x 10 years (~14,600 failures),
    the per-host down fractions' 99 % Student-t interval holds it."""
    pd.DataFrame({"up": [10 * DAY, 20 * DAY, 10 * DAY, 20 * DAY]}).to_parquet(tmp_path / "up.parquet")
    fault = {"kind": "host_crash", "time_to_failure": {"empirical": {"path": "up.parquet", "column": "up"}},
             "repair": "1d"}
    duration = 10 * YEAR
    out = run(_fleet(64, "10y", fault), tmp_path)
    f = out.tables["faults"]
    down = np.minimum(f["end_s"].to_numpy(), duration) - f["time_s"].to_numpy()
    per = pd.Series(down).groupby(f["target"].to_numpy()).sum().reindex(
        sorted(set(f["target"])), fill_value=0).to_numpy() / duration
    assert len(per) == 64
    half = stats.t.ppf(0.995, 63) * per.std(ddof=1) / math.sqrt(64)
    assert abs(per.mean() - 1 / 16) <= half, (per.mean(), half)


@pytest.mark.parametrize(("rows", "dist", "message"), [
    (None, {"path": "nope.csv", "column": "repair"},
     'S: faults.0.time_to_repair.path: expected a readable trace file (CSV or Parquet), got "D/nope.csv" '
     "(no such file)"),
    (["4h"], {"path": "r.csv", "column": "repairs"},
     'S: faults.0.time_to_repair.column: expected a column of D/r.csv (it has repair), got "repairs"'),
    ([], {"path": "r.csv", "column": "repair"},
     'S: faults.0.time_to_repair.column: expected at least one duration in column "repair" of D/r.csv, got none'),
    (["4h", "0", "-3", "soon"], {"path": "r.csv", "column": "repair"},
     "D/r.csv: line 3, column repair: expected a duration greater than zero (like 4h or 3600), got \"0\"\n"
     "D/r.csv: line 4, column repair: expected a duration greater than zero (like 4h or 3600), got \"-3\"\n"
     'D/r.csv: line 5, column repair: expected a duration greater than zero (like 4h or 3600), got "soon"'),
    (None, {"path": "r.csv"},
     "S: faults.0.time_to_repair.column: expected a value (an empirical distribution takes path and column), "
     "got nothing"),
])
def test_bad_empirical_input_exits_2(tmp_path, rows, dist, message):
    if rows is not None:
        (tmp_path / "r.csv").write_text("repair\n" + "".join(f"{r}\n" for r in rows))
    fault = {"kind": "host_crash", "mtbf": "30d", "time_to_repair": {"empirical": dist}}
    path = write_yaml(tmp_path / "s.yaml", _fleet(2, "1d", fault))
    result = CliRunner().invoke(app, ["check", str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.output.strip() == message.replace("S:", f"{path}:").replace("D/", f"{tmp_path}/")
