"""``dcsim report DIR``: PNG figures and one self-contained ``report.html`` for a run or a sweep.

Reads result tables only (``sim.results.load`` / ``load_sweep``) and draws with
``sim.plots``. Writes into ``DIR/report/`` (or ``--out``): one PNG per figure and
``report.html``, which carries the same figures inline (base64), so it opens from disk
with no server and can be mailed alone. Every number is shown in its unit
(``sim.format``, from the metric metadata); the files keep base units.

- a run folder (``summary.json``): the headline metrics, downtime by cause, the longest
  incidents, what each enabled mechanism did, the figures (incident timeline, downtime
  per cause, gauges over time, records per table, charges), then every metric of what
  ran (a disabled mechanism's metrics are left out);
- a sweep folder (``runs.parquet``): first the metrics the sweep file names (``metrics:``;
  else its headline metrics that vary) against each swept parameter, then the points
  table, the metrics that vary (scrollable) and the names of those that did not;
- a compare folder: B − A per metric with its paired 95 % interval, as a forest plot in
  each metric's unit, and the table (A's mean is kept when B has none).

No section is written without content.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd

from sim import format as fmt
from sim import plots, readout
from sim.core.errors import InputError, Problem
from sim.results import SUMMARY, load, load_sweep, write_text

__all__ = ["make_report", "folder_kind"]

LEAD_DEFAULT = 4  # headline metrics a sweep report leads with when its file names none


def folder_kind(folder: str | os.PathLike) -> tuple[Path, str]:
    """(folder, "run" | "sweep"); a scenario's folder with ``latest`` means its newest. InputError
    for anything else."""
    path = Path(folder)
    for candidate in (path, path / "latest"):
        if (candidate / SUMMARY).is_file():
            return candidate, "run"
        if (candidate / "runs.parquet").is_file():
            return candidate, "sweep"
    if not path.exists():
        found = "no such folder"
    elif not path.is_dir():
        found = "a file"
    else:
        found = "a folder with neither"
    raise InputError(str(folder), [Problem("", f"expected a run folder (with {SUMMARY}) or a sweep folder "
                                               f"(with runs.parquet), got {found}")])


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:80] or "figure"


STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1300px;padding:0 1.5em;color:#222}"
    "h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}"
    "p.lead{color:#444;margin-top:0}"
    "table.t{border-collapse:collapse;font-size:13px;margin:.5em 0}"
    "table.t td,table.t th{padding:3px 10px;border-bottom:1px solid #e4e4e4;text-align:right;white-space:nowrap}"
    "table.t th{background:#f6f6f6;position:sticky;top:0}"
    "table.t td:first-child,table.t th:first-child{text-align:left}"
    "table.t td.l,table.t th.l{text-align:left;white-space:normal}"
    "div.scroll{max-height:480px;overflow:auto;border:1px solid #e4e4e4;display:inline-block;max-width:100%}"
    "img{max-width:100%}figure{margin:1em 0}figcaption{color:#666;font-size:12px}"
    "span.sig{color:#b00;font-weight:bold}"
)


class _Page:
    def __init__(self, out: Path, title: str):
        self.out = out
        self.title = title
        self.parts: list[str] = []
        self.files: list[Path] = []

    def h2(self, text: str) -> None:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def p(self, text: str, cls: str = "") -> None:
        self.parts.append(f"<p{f' class={cls!r}' if cls else ''}>{html.escape(text)}</p>")

    def details(self, summary: str, text: str) -> None:
        self.parts.append(f"<details><summary>{html.escape(summary)}</summary><p>{html.escape(text)}</p></details>")

    def rows(self, header: list[str], rows: list[list[str]], left: tuple[int, ...] = (0,),
             scroll: bool = False) -> None:
        """A table of already formatted strings; columns in ``left`` are left-aligned."""
        def cell(tag: str, i: int, text: str) -> str:
            cls = ' class="l"' if i in left and i else ""
            return f"<{tag}{cls}>{text}</{tag}>"

        head = "".join(cell("th", i, html.escape(h)) for i, h in enumerate(header))
        body = "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(r)) + "</tr>" for r in rows)
        table = f'<table class="t"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        self.parts.append(f'<div class="scroll">{table}</div>' if scroll else table)

    def figure(self, name: str, fig, caption: str = "") -> None:
        if fig is None:
            return
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        data = buf.getvalue()
        path = self.out / f"{_slug(name)}.png"
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        self.files.append(path)
        b64 = base64.b64encode(data).decode("ascii")
        self.parts.append(f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{b64}"/>'
                          f"<figcaption>{html.escape(caption or name)}</figcaption></figure>")

    def write(self) -> Path:
        doc = (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(self.title)}</title>"
               f"<style>{STYLE}</style></head><body><h1>{html.escape(self.title)}</h1>\n"
               + "\n".join(self.parts) + "\n</body></html>\n")
        path = self.out / "report.html"
        write_text(path, doc)
        return path


def _plural(n: Any, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _e(text: Any) -> str:
    return html.escape(str(text))


def make_report(folder: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Writes the figures and report.html; returns report.html's path."""
    path, kind = folder_kind(folder)
    target = Path(out) if out is not None else path / "report"
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(str(target), [Problem("", f"expected a folder that can be created, got an error "
                                                   f"({exc.strerror or exc})")]) from None
    return _run_report(path, target) if kind == "run" else _sweep_report(path, target)


# --------------------------------------------------------------------------- one run
def _enabled_from_resolved(path: Path) -> set[str] | None:
    """The mechanisms the run had on, from scenario.resolved.yaml; None when it cannot be read."""
    import yaml

    try:
        data = yaml.safe_load((path / "scenario.resolved.yaml").read_text(encoding="utf-8"))
        return readout.enabled_mechanisms((data or {}).get("mechanisms") or {})
    except (OSError, yaml.YAMLError, AttributeError):
        return None


def _meaning(name: str) -> str:
    m = readout.meta(name)
    return m.meaning if m is not None else ""


def _metric_rows(metrics: dict[str, float], names: list[str]) -> list[list[str]]:
    return [[f"<code>{_e(n)}</code>", _e(readout.show(n, metrics[n])), _e(_meaning(n))] for n in names]


def _run_report(path: Path, out: Path) -> Path:
    res = load(path)
    summary = res.summary
    duration = float(summary.get("duration_s", 0.0)) or 1.0
    metrics = {k: float(v) for k, v in res.metrics.items()}
    enabled = _enabled_from_resolved(path)
    page = _Page(out, f"dcsim run: {summary.get('scenario', path.name)}")
    page.p(f"{path}: seed {summary.get('seed')}, {fmt.duration(duration)} simulated, "
           f"{summary.get('events', 0):,} events in {fmt.duration(summary.get('wall_s', 0.0))} of wall time.",
           "lead")
    shown = readout.visible(metrics, enabled)
    head = [n for n in shown if (m := readout.meta(n)) is not None and m.headline
            and not n.endswith(("_mean", "_p50", "_p95"))]
    if head:
        page.h2("Headline")
        rows = _metric_rows(metrics, head)
        if "vm.availability" in metrics:
            i = head.index("vm.availability")
            rows[i][1] = _e(fmt.availability_long(metrics["vm.availability"]))
        page.rows(["metric", "value", "meaning"], rows, left=(2,))

    empty = pd.DataFrame(columns=["subject", "cause", "mechanism", "start_s", "end_s", "downtime_s", "outcome"])
    incidents = res.get("incidents", empty)
    if not incidents.empty:
        page.h2("Downtime by cause")
        by = incidents.groupby(incidents["cause"].astype(str))["downtime_s"].agg(["count", "sum", "median", "max"])
        by = by.sort_values(["sum", "count"], ascending=False, kind="stable")
        page.rows(["cause", "incidents", "downtime in all", "median", "longest"],
                  [[_e(c), f"{int(r['count']):,}", _e(fmt.duration(r["sum"])), _e(fmt.duration(r["median"])),
                    _e(fmt.duration(r["max"]))] for c, r in by.iterrows()])
        page.h2("Longest incidents")
        worst = incidents.sort_values(["downtime_s", "start_s"], ascending=[False, True], kind="stable").head(10)
        page.rows(["subject", "cause", "by", "start (d+hh:mm:ss)", "end", "downtime", "outcome"],
                  [[_e(r.subject), _e(r.cause), _e(r.mechanism), _e(fmt.clock(r.start_s)),
                    _e(fmt.clock(r.end_s) if pd.notna(r.end_s) else "open"),
                    _e(fmt.duration(r.downtime_s) if pd.notna(r.downtime_s) else "open"), _e(r.outcome)]
                   for r in worst.itertuples(index=False)], left=(1, 2, 6))
    groups = _what_ran(metrics, enabled)
    if groups:
        page.h2("What ran")
        page.rows(["what", "did"], [[_e(k), _e(v)] for k, v in groups], left=(1,))

    page.h2("Figures")
    if not incidents.empty:
        page.figure("incident timeline", plots.incident_timeline(incidents, duration),
                    "Each incident as a bar from its start to its end, coloured by cause.")
        page.figure("downtime per cause", plots.downtime_by_cause(incidents),
                    "How long incidents of each cause lasted.")
    if "levels" in res and not res["levels"].empty:
        page.figure("gauges over time", plots.gauges(res["levels"], duration), "Sampled levels over the run.")
    page.figure("records per table", plots.table_counts(dict(res)),
                "Rows of each result table, split by outcome or kind: what the faults and mechanisms did.")
    if "charges" in res:
        page.figure("charges", plots.charges(res["charges"], duration))
    if shown:
        page.h2("Every metric")
        page.p("In human units (summary.json has them in base units). Metrics of mechanisms the scenario "
               "leaves off are not listed." if enabled is not None else "In human units.")
        page.rows(["metric", "value", "meaning"], _metric_rows(metrics, shown), left=(2,), scroll=True)
    return page.write()


def _what_ran(metrics: dict[str, float], enabled: set[str] | None) -> list[tuple[str, str]]:
    out = []
    faults = [(k.partition(".")[2], v) for k, v in metrics.items() if k.startswith("faults.") and k != "faults.count"
              and v]
    if faults:
        out.append(("faults", ", ".join(f"{fmt.number(v)} {k}" for k, v in sorted(faults, key=lambda kv: -kv[1]))))
    restarts = [n for n in metrics if n.startswith("restarts.")]
    items = readout.phrase(metrics, restarts)
    if items:
        out.append(("recovery", items))
    for key in sorted(enabled or ()):
        out.append((key, readout.said(key, metrics)))
    return out


# --------------------------------------------------------------------------- sweeps and compares
def _unit_of(name: str) -> str:
    return readout.unit(name)


def _param_text(path: str, value: Any) -> str:
    from sim.reference import path_kind

    if isinstance(value, bool) or value is None:
        return str(value).lower() if isinstance(value, bool) else "–"
    if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
        kind = path_kind(path)
        if kind == "duration":
            return fmt.duration(value)
        if kind == "size":
            return fmt.size(value)
        if kind == "rate":
            return f"{fmt.rate(value)} = {fmt.bits_per_s(value)}"
        return fmt.number(value, 4)
    return str(value)


def _lead_metrics(info: dict[str, Any], varying: list[str], all_metrics: list[str]) -> tuple[list[str], str]:
    named = [m for m in info.get("metrics") or [] if m in all_metrics]
    if named:
        return named, "the metrics the sweep file names"
    head = [m for m in varying if (x := readout.meta(m)) is not None and x.headline
            and not m.endswith(("_mean", "_p50", "_p95"))]
    return (head or varying)[:LEAD_DEFAULT], "its headline metrics that vary (the sweep file names none)"


def _interval(row: pd.Series, metric: str) -> str:
    unit = _unit_of(metric)
    low, high = plots.bounds(unit)
    lo, hi = row.get(f"{metric}_ci95_low"), row.get(f"{metric}_ci95_high")
    if lo is None or hi is None or pd.isna(lo) or pd.isna(hi):
        return ""
    return f"[{fmt.value(min(max(lo, low), high), unit)}, {fmt.value(min(max(hi, low), high), unit)}]"


def _sweep_report(path: Path, out: Path) -> Path:
    sw = load_sweep(path)
    runs, points = sw["runs"], sw.get("points")
    name = sw.info.get("name", path.name)
    compare = sw.get("compare")
    page = _Page(out, f"dcsim {'compare' if compare is not None else 'sweep'}: {name}")
    ok = int((runs["status"] == "ok").sum())
    errors = runs[runs["status"] == "error"]
    metrics = sw.metrics
    if compare is not None:
        _compare_sections(page, sw, compare, runs, path, ok)
    else:
        swept = []
        for p in sw.paths:
            vals = points[p].dropna().unique() if points is not None else []
            nums = [v for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)]
            if nums and len(nums) == len(vals):
                swept.append(f"{p} from {_param_text(p, min(nums))} to {_param_text(p, max(nums))}")
            else:
                swept.append(f"{p} in {', '.join(_param_text(p, v) for v in vals)}")
        page.p(f"{path}: {len(runs)} runs ({ok} ok, {len(errors)} failed) over {runs['point_id'].nunique()} "
               f"points, {_plural(sw.info.get('replications', 0), 'replication')} each. Swept: "
               f"{'; '.join(swept) or 'nothing (replications only)'}.", "lead")
    if len(errors):
        page.h2("Failed runs")
        page.rows(["run", "seed", "error"], [[_e(r.run_id), _e(r.seed), _e(r.error)]
                                            for r in errors.head(20).itertuples(index=False)], left=(2,))
    if compare is not None or points is None:
        return page.write()

    if sw.paths:
        varying = plots.varying_metrics(points, metrics)
    else:  # replications only: what varies is between runs
        good = runs[runs["status"] == "ok"]
        varying = [m for m in metrics if good[m].nunique() > 1]
    lead, why = _lead_metrics(sw.info, varying, metrics)
    if sw.paths:
        page.h2("What the sweep is about")
        page.p(f"The report leads with {why}: {', '.join(lead)}. Each panel: the mean over replications at "
               "each point with its 95 % interval (clipped to what the metric can be).")
        kinds = {p: k for p in sw.paths if (k := _kind(p)) is not None}
        numeric = [p for p in sw.paths if plots.is_numeric(points[p])]
        # Categorical parameters (a mode, on/off) read best as one line each against a numeric one.
        for param in (numeric if numeric and len(sw.paths) > 1 else sw.paths[:1] if not numeric else sw.paths):
            page.figure(f"against {param}", plots.sweep_curves(points, param, lead, sw.paths, ncols=min(3, len(lead)),
                                                               unit_of=_unit_of, kinds=kinds))
    else:
        spread = [m for m in lead if runs.loc[runs["status"] == "ok", m].nunique() > 1]
        if spread:
            page.h2("Spread over replications")
            page.figure("metrics over runs", plots.run_distributions(runs, spread, unit_of=_unit_of))

    page.h2("Points")
    with_ci = [m for m in lead if points[f"{m}_ci95_low"].notna().any()]
    header = ["point", *sw.paths, *[f"{m} (mean)" for m in lead], *[f"{m} 95 % interval" for m in with_ci]]
    rows = []
    for _, row in points.iterrows():
        rows.append([_e(row["point_id"]), *[_e(_param_text(p, row[p])) for p in sw.paths],
                     *[_e(readout.show(m, row[f"{m}_mean"])) for m in lead],
                     *[_e(_interval(row, m)) for m in with_ci]])
    page.rows(header, rows, scroll=True)
    others = [m for m in varying if m not in lead] if sw.paths else []
    if others:
        page.h2("Other metrics that vary (means per point)")
        rows = [[_e(row["point_id"]), *[_e(readout.show(m, row[f"{m}_mean"])) for m in others]]
                for _, row in points.iterrows()]
        page.rows(["point", *others], rows, scroll=True)
    constant = [m for m in metrics if m not in varying and m not in lead] if sw.paths else []
    if constant:
        page.details(f"{len(constant)} metrics are the same at every point (left out)", ", ".join(constant))
    return page.write()


def _kind(path: str) -> str | None:
    from sim.reference import path_kind

    return path_kind(path)


def _compare_sections(page: _Page, sw, compare: pd.DataFrame, runs: pd.DataFrame, path: Path, ok: int) -> None:
    points = sw.get("points")
    change = ""
    if points is not None and len(points) >= 2 and sw.paths:
        b = points.iloc[1]
        change = ", ".join(f"{p} = {_param_text(p, b[p])}" for p in sw.paths)
    n = int(compare["n"].max()) if len(compare) else 0
    page.p(f"{path}: A is the scenario, B is A with {change or 'the change'}; {n} paired seeds "
           f"({ok} of {len(runs)} runs ok). B − A is taken per seed, so both sides see the same random "
           "draws where the change leaves them alone.", "lead")
    head = [m for m in compare["metric"] if (x := readout.meta(m)) is not None and x.headline]
    fig = plots.compare_diffs(compare, unit_of=_unit_of, first=head)
    if fig is not None:
        page.h2("B − A")
        page.figure("compare", fig, "Each row its own axis, in the metric's unit; the dot is the mean of B − A "
                                    "over paired seeds, the bar its 95 % interval.")
    changed, same = [], []
    for row in compare.itertuples(index=False):
        unit = _unit_of(row.metric)
        lo, hi = row.diff_ci95_low, row.diff_ci95_high
        differs = row.n > 0 and (row.diff_mean != 0 or (pd.notna(lo) and (lo != 0 or hi != 0)))
        one_sided = row.n == 0 and (pd.notna(row.a_mean) or pd.notna(row.b_mean))
        if not differs and not one_sided:
            same.append(row.metric)
            continue
        sig = pd.notna(lo) and (lo > 0 or hi < 0)
        diff_unit = "1" if unit == "availability" else unit
        diff = fmt.value(row.diff_mean, diff_unit) if pd.notna(row.diff_mean) else "–"
        if unit == "availability" and pd.notna(row.diff_mean):
            diff = f"{fmt.number(row.diff_mean * 100)} points"
        ci = ""
        if pd.notna(lo) and pd.notna(hi):
            ci = (f"[{fmt.number(lo * 100)}, {fmt.number(hi * 100)}] points" if unit == "availability"
                  else f"[{fmt.value(lo, diff_unit)}, {fmt.value(hi, diff_unit)}]")
        changed.append([f"<code>{_e(row.metric)}</code>",
                        _e(fmt.value(row.a_mean, unit) if pd.notna(row.a_mean) else "–"),
                        _e(fmt.value(row.b_mean, unit) if pd.notna(row.b_mean) else "–"),
                        _e(("+" if pd.notna(row.diff_mean) and row.diff_mean > 0 else "") + diff),
                        _e(ci), str(int(row.n)), '<span class="sig">yes</span>' if sig else ""])
    if changed:
        page.h2("Every metric that differs")
        page.p("A's and B's means over the paired seeds; where one side has no value (nothing to average), "
               "each side's own mean is shown and there is no difference.")
        page.rows(["metric", "A", "B", "B − A", "95 % interval", "pairs", "interval excludes 0"], changed,
                  scroll=True)
    if same:
        page.details(f"{len(same)} metrics are the same on both sides (left out)", ", ".join(same))
