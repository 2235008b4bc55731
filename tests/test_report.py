"""dcsim report: non-empty PNGs and one self-contained report.html, for a run, a sweep and a compare;
what each report leads with, in human units."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest
from conftest import base_scenario, write_yaml
from test_sweep import make_sweep, small_scenario
from typer.testing import CliRunner

from sim import format as fmt
from sim import plots
from sim.cli import app
from sim.experiments.stats import paired_table
from sim.results import load, load_sweep, prepare_dir

PNG = b"\x89PNG\r\n\x1a\n"


def check_report(folder, expect: set[str]):
    r = CliRunner().invoke(app, ["report", str(folder)])
    assert r.exit_code == 0, r.output
    out = folder / "report"
    pngs = {p.name: p.read_bytes() for p in out.glob("*.png")}
    assert expect <= set(pngs), sorted(pngs)
    assert all(data.startswith(PNG) and len(data) > 2000 for data in pngs.values())
    html = (out / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == len(pngs)
    assert all(base64.b64decode(i).startswith(PNG) for i in images)
    assert not re.search(r'(src|href)="(?!data:)', html)  # nothing to fetch: opens with no server
    # no empty sections: every heading is followed by content before the next heading
    sections = re.split(r"<h2>", html)[1:]
    assert all(re.sub(r"<[^>]+>|\s", "", s.split("</h2>", 1)[1]) for s in sections), "an empty section"
    return html


def test_run_report(tmp_path):
    scenario = write_yaml(tmp_path / "s.yaml", small_scenario())
    r = CliRunner().invoke(app, ["run", str(scenario), "--out", str(tmp_path / "run"), "--quiet"])
    assert r.exit_code == 0, r.output
    html = check_report(tmp_path / "run", {"incident_timeline.png", "downtime_per_cause.png",
                                           "gauges_over_time.png", "records_per_table.png"})
    m = load(tmp_path / "run").metrics
    assert "Headline" in html and "Longest incidents" in html and "Downtime by cause" in html
    # availability as a percentage with its downtime per year, not a bare 0.99...
    assert fmt.availability_long(m["vm.availability"]).replace("%", "%") in html.replace("&amp;", "&")
    # metrics of mechanisms the scenario leaves off are not listed
    assert "replication.lost" not in html and "sessions.blocked" not in html
    assert "vm.downtime_s_total" in html
    # the report folder does not stop the run folder from being replaced with --force
    assert prepare_dir(tmp_path / "run", "t", force=True).replacing


def test_run_report_without_incidents_has_no_incident_sections(tmp_path):
    scenario = write_yaml(tmp_path / "s.yaml", base_scenario())
    r = CliRunner().invoke(app, ["run", str(scenario), "--out", str(tmp_path / "run"), "--quiet"])
    assert r.exit_code == 0, r.output
    html = check_report(tmp_path / "run", set())
    assert "Longest incidents" not in html and "Downtime by cause" not in html
    assert "100 % (0 s/year down)" in html


def test_sweep_report_leads_with_the_named_metrics(tmp_path):
    sweep = make_sweep(tmp_path, {"replications": 2, "metrics": ["vm.availability", "restarts.count"],
                                  "grid": {"infrastructure.detection": ["30s", "10m"],
                                           "mechanisms.live_migration.mode": ["precopy"]}})
    r = CliRunner().invoke(app, ["sweep", str(sweep), "--out", str(tmp_path / "sw"), "--workers", "1", "--quiet"])
    assert r.exit_code == 0, r.output
    html = check_report(tmp_path / "sw", {"against_infrastructure.detection.png"})
    lead = html.index("What the sweep is about")
    assert lead < html.index("Points") and "p0001" in html
    assert "vm.availability, restarts.count" in html
    # swept values in their units: 30 s and 10 min, not 30 and 600
    assert ">30 s<" in html and ">10 min<" in html
    # a parameter with one value is not drawn on its own
    assert "against_mechanisms.live_migration.mode.png" not in {p.name for p in (tmp_path / "sw" / "report").iterdir()}


def test_sweep_metrics_key_is_checked(tmp_path):
    sweep = make_sweep(tmp_path, {"metrics": ["vm.availability", "vm.avail"],
                                  "grid": {"infrastructure.detection": ["30s"]}})
    r = CliRunner().invoke(app, ["sweep", str(sweep), "--out", str(tmp_path / "sw"), "--quiet"])
    assert r.exit_code == 2
    assert r.output.strip() == (f'{sweep}: metrics.1: expected a metric name (dcsim metrics lists them), '
                                f'got "vm.avail"')


def test_compare_report_is_a_forest_plot_in_units(tmp_path):
    scenario = write_yaml(tmp_path / "s.yaml", small_scenario())
    r = CliRunner().invoke(app, ["compare", str(scenario), "--set", "faults.0.mtbf=20d", "--replications", "4",
                                 "--workers", "1", "--out", str(tmp_path / "cmp"), "--quiet"])
    assert r.exit_code == 0, r.output
    html = check_report(tmp_path / "cmp", {"compare.png"})
    assert "B − A" in html and "Every metric that differs" in html
    assert "(B − A) / |A|" not in html
    table = load_sweep(tmp_path / "cmp")["compare"]
    row = table[table["metric"] == "vm.downtime_s_total"].iloc[0]
    assert fmt.duration(row["a_mean"]) in html and fmt.duration(row["b_mean"]) in html


def test_compare_keeps_a_mean_when_b_has_none():
    """A has a mean migration pause on every seed, B never migrates: no pair, but A's mean stays
    (the mean of 0.1, 0.2, 0.3 = 0.2) and B's is missing; the difference is undefined."""
    a = pd.DataFrame({"migration.downtime_s_mean": [0.1, 0.2, 0.3], "x": [1.0, 2.0, 3.0]}, index=[1, 2, 3])
    b = pd.DataFrame({"migration.downtime_s_mean": [np.nan] * 3, "x": [2.0, 4.0, 6.0]}, index=[1, 2, 3])
    t = paired_table(a, b, ["migration.downtime_s_mean", "x"]).set_index("metric")
    row = t.loc["migration.downtime_s_mean"]
    assert row["a_mean"] == pytest.approx(0.2) and np.isnan(row["b_mean"]) and row["n"] == 0
    assert np.isnan(row["diff_mean"])
    assert t.loc["x", "diff_mean"] == pytest.approx(2.0)  # (1 + 2 + 3) / 3 paired differences


@pytest.mark.parametrize(("values", "log"), [
    ([10e6, 40e6, 100e6, 250e6, 500e6, 1e9, 2e9], True),   # the migration sweep's dirty rates: 200x
    ([5, 30, 120, 600], True),                              # 5 s .. 10 min: 120x
    ([180 * 86400, 5 * 365 * 86400], False),                # 6 months .. 5 years: about 10x
    ([0, 1, 2], False),                                     # zero cannot be on a log axis
])
def test_log_axes_where_values_are_log_spaced(values, log):
    assert plots.is_log_spaced(values) is log


def test_intervals_are_clipped_to_what_the_metric_allows():
    """A Student-t band of availability around 0.9999 with a wide spread goes above 1 and a count's
    band below 0; drawn, both are clipped: the plotted band stays within [0, 1] and >= 0."""
    points = pd.DataFrame({"p": [1.0, 2.0, 3.0],
                           "vm.availability_mean": [0.9999, 0.9998, 0.9990],
                           "vm.availability_ci95_low": [0.9990, 0.9990, 0.9980],
                           "vm.availability_ci95_high": [1.0005, 1.0003, 1.0001],
                           "incidents.count_mean": [0.5, 1.0, 2.0],
                           "incidents.count_ci95_low": [-1.0, -0.5, 0.5],
                           "incidents.count_ci95_high": [2.0, 2.5, 3.5]})
    units = {"vm.availability": "availability", "incidents.count": "count"}
    fig = plots.sweep_curves(points, "p", list(units), unit_of=units.__getitem__)
    for ax, metric in zip(fig.axes, units, strict=True):
        band = ax.collections[0].get_paths()[0].vertices[:, 1]
        if metric == "vm.availability":
            assert band.max() <= 100.0 + 1e-12  # percent
            assert ax.get_ylabel() == "availability (%)"
        else:
            assert band.min() >= 0.0
            assert ax.get_ylabel() == "count"


def test_compare_forest_plot_uses_each_metric_unit():
    table = pd.DataFrame([
        {"metric": "vm.downtime_s_total", "a_mean": 3600.0, "b_mean": 7200.0, "diff_mean": 3600.0,
         "diff_ci95_low": 1800.0, "diff_ci95_high": 5400.0, "n": 5},
        {"metric": "migration.bytes_total", "a_mean": 2**30, "b_mean": 2**31, "diff_mean": 2**30,
         "diff_ci95_low": -2**29, "diff_ci95_high": 2**31, "n": 5},
        {"metric": "hosts.count", "a_mean": 8, "b_mean": 8, "diff_mean": 0.0, "diff_ci95_low": 0.0,
         "diff_ci95_high": 0.0, "n": 5},
    ])
    units = {"vm.downtime_s_total": "s", "migration.bytes_total": "bytes", "hosts.count": "count"}
    fig = plots.compare_diffs(table, unit_of=units.__getitem__)
    assert len(fig.axes) == 2  # the unchanged metric is left out
    labels = {t.get_text() for ax in fig.axes for t in ax.texts}
    assert "h" in labels and "GiB" in labels  # 3,600 s drawn as 1 h; 1 GiB as 1 GiB
    first = fig.axes[0]
    xs = [line.get_xdata()[0] for line in first.lines if len(line.get_xdata()) == 1]
    assert 1.0 in xs  # B − A = 1 h (or 1 GiB) at x = 1


def test_replications_only_sweep_shows_the_spread_of_its_headline_metrics(tmp_path):
    sweep = make_sweep(tmp_path, {"replications": 4})
    r = CliRunner().invoke(app, ["sweep", str(sweep), "--out", str(tmp_path / "sw"), "--workers", "1", "--quiet"])
    assert r.exit_code == 0, r.output
    html = check_report(tmp_path / "sw", {"metrics_over_runs.png"})
    assert "Spread over replications" in html and "Swept: nothing (replications only)" in html
