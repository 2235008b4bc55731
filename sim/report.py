"""``dcsim report DIR``: PNG figures and one self-contained ``report.html`` for a run or a sweep.

Reads result tables only (``sim.results.load`` / ``load_sweep``) and draws with
``sim.plots``. Writes into ``DIR/report/`` (or ``--out``): one PNG per figure and
``report.html``, which carries the same figures inline (base64) with the key metrics
and the top incidents (or the sweep's points and failed runs) as tables, so it opens
from disk with no server and can be mailed alone.

- a run folder (``summary.json``): incident timeline, downtime per cause, gauges over
  time (levels.parquet), records per table (what each mechanism did), charges;
- a sweep folder (``runs.parquet``): each varying metric against each swept parameter
  with 95 % intervals; a compare folder also gets B − A per metric.
"""

from __future__ import annotations

import base64
import html
import io
import os
import re
from pathlib import Path

import pandas as pd

from sim import plots
from sim.core.errors import InputError, Problem
from sim.results import SUMMARY, load, load_sweep, write_text

__all__ = ["make_report", "folder_kind"]

KEY_METRICS = ("vm.availability", "vm.downtime_s_total", "incidents.count", "incidents.downtime_s_total",
               "incidents.downtime_s_p95", "migration.downtime_s_mean", "memory_errors.vms_crashed",
               "memory_errors.vms_evacuated")
PER_FIGURE = 12  # sweep metrics per figure


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


class _Page:
    def __init__(self, out: Path, title: str):
        self.out = out
        self.title = title
        self.parts: list[str] = []
        self.files: list[Path] = []

    def h2(self, text: str) -> None:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def p(self, text: str) -> None:
        self.parts.append(f"<p>{html.escape(text)}</p>")

    def table(self, df: pd.DataFrame, floatfmt: str = "{:.6g}") -> None:
        fmt = {c: (lambda v, f=floatfmt: "" if pd.isna(v) else f.format(v))
               for c in df.columns if pd.api.types.is_float_dtype(df[c])}
        self.parts.append(df.to_html(index=False, escape=True, formatters=fmt, border=0, classes="t"))

    def figure(self, name: str, fig) -> None:
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
                          f"<figcaption>{html.escape(name)}</figcaption></figure>")

    def write(self) -> Path:
        style = ("body{font-family:sans-serif;margin:2em;max-width:1200px}table.t{border-collapse:collapse;"
                 "font-size:12px}table.t td,table.t th{padding:2px 8px;border-bottom:1px solid #ddd;"
                 "text-align:right}table.t td:first-child,table.t th:first-child{text-align:left}"
                 "img{max-width:100%}figure{margin:1em 0}figcaption{color:#666;font-size:12px}")
        doc = (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(self.title)}</title>"
               f"<style>{style}</style></head><body><h1>{html.escape(self.title)}</h1>\n"
               + "\n".join(self.parts) + "\n</body></html>\n")
        path = self.out / "report.html"
        write_text(path, doc)
        return path


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


def _run_report(path: Path, out: Path) -> Path:
    res = load(path)
    summary = res.summary
    duration = float(summary.get("duration_s", 0.0)) or 1.0
    page = _Page(out, f"dcsim run: {summary.get('scenario', path.name)}")
    page.p(f"{path} — seed {summary.get('seed')}, {duration / 86400:.4g} simulated days, "
           f"{summary.get('events', 0):,} events, {summary.get('wall_s', 0.0):.2f} s wall")
    metrics = res.metrics
    page.h2("Key metrics")
    key = [m for m in KEY_METRICS if m in metrics]
    page.table(pd.DataFrame({"metric": key, "value": [float(metrics[m]) for m in key]}))
    empty = pd.DataFrame(columns=["subject", "cause", "mechanism", "start_s", "end_s", "downtime_s", "outcome"])
    incidents = res.get("incidents", empty)
    page.h2("Top incidents (by downtime)")
    if incidents.empty:
        page.p("No incidents.")
    else:
        page.table(incidents.sort_values(["downtime_s", "start_s"], ascending=[False, True], kind="stable").head(10))
    page.h2("Figures")
    page.figure("incident timeline", plots.incident_timeline(incidents, duration))
    page.figure("downtime per cause", plots.downtime_by_cause(incidents))
    if "levels" in res:
        page.figure("gauges over time", plots.gauges(res["levels"], duration))
    page.figure("records per table", plots.table_counts(dict(res)))
    if "charges" in res:
        page.figure("charges", plots.charges(res["charges"], duration))
    page.h2("All metrics")
    page.table(pd.DataFrame({"metric": list(metrics), "value": [float(v) for v in metrics.values()]}))
    return page.write()


def _sweep_report(path: Path, out: Path) -> Path:
    sw = load_sweep(path)
    runs, points = sw["runs"], sw.get("points")
    name = sw.info.get("name", path.name)
    compare = sw.get("compare")
    page = _Page(out, f"dcsim {'compare' if compare is not None else 'sweep'}: {name}")
    ok = int((runs["status"] == "ok").sum())
    page.p(f"{path} — {len(runs)} runs ({ok} ok, {len(runs) - ok} errors) over "
           f"{runs['point_id'].nunique()} points; swept: {', '.join(sw.paths) or 'nothing (replications only)'}")
    metrics = sw.metrics
    if compare is not None:
        page.h2("B − A (paired by seed)")
        page.table(compare)
        page.figure("compare", plots.compare_diffs(compare))
    errors = runs[runs["status"] == "error"]
    if len(errors):
        page.h2("Failed runs")
        page.table(errors[["run_id", "seed", "error"]].head(20))
    if points is not None:
        varying = plots.varying_metrics(points, metrics)
        key = [m for m in KEY_METRICS if m in varying] or varying[:6]
        page.h2("Points (means)")
        page.table(points[["point_id", *sw.paths, *[f"{m}_mean" for m in key]]])
        page.h2("Figures")
        if sw.paths and compare is None:
            for param in sw.paths:
                for i in range(0, max(len(varying), 1), PER_FIGURE):
                    chunk = varying[i:i + PER_FIGURE]
                    label = f"against {param}" + (f" ({i // PER_FIGURE + 1})" if len(varying) > PER_FIGURE else "")
                    page.figure(label, plots.sweep_curves(points, param, chunk, sw.paths))
        elif not sw.paths:
            spread = [m for m in metrics if runs.loc[runs["status"] == "ok", m].nunique() > 1][:PER_FIGURE]
            page.figure("metrics over runs", plots.run_distributions(runs, spread))
    return page.write()
