"""Matplotlib figures from result tables only (never the model).

Every function takes DataFrames as ``sim.results.load`` / ``load_sweep`` return them and
gives a ``matplotlib.figure.Figure`` built without pyplot (so no backend or global state
is involved; ``fig.savefig`` renders with Agg). Every axis says its unit: values are drawn
in a display unit picked by ``sim.format.axis`` (minutes, GiB, %, ...), times of a run in
days when it is longer than two days, else in hours. Availability is drawn in percent
without an offset. An axis is logarithmic where its values are positive and span a factor of
50 or more (a log-spaced sweep). Confidence intervals are clipped to what the metric allows
(availability, probabilities and fractions within 0..1, counts, durations and sizes at least
0). Legends sit outside the plotting area so they never cover data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from sim import format as fmt

__all__ = [
    "incident_timeline",
    "downtime_by_cause",
    "gauges",
    "table_counts",
    "charges",
    "sweep_curves",
    "run_distributions",
    "compare_diffs",
    "varying_metrics",
    "is_log_spaced",
    "is_numeric",
    "bounds",
]

LOG_SPAN = 50.0  # max/min at or above which positive values are drawn on a log axis
UnitOf = Callable[[str], str]


def _time_unit(duration_s: float) -> tuple[float, str]:
    return (86400.0, "day") if duration_s > 2 * 86400 else (3600.0, "hour")


def _empty(fig: Figure, ax, text: str) -> Figure:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


def _colors(keys: Sequence[str]) -> dict[str, tuple]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {k: cmap(i % 10) for i, k in enumerate(keys)}


def _no_unit(_: str) -> str:
    return "1"


def bounds(unit: str) -> tuple[float, float]:
    """What a metric of ``unit`` can be: (low, high) for clipping intervals."""
    if unit in ("availability", "probability", "fraction"):
        return 0.0, 1.0
    if unit in ("s", "bytes", "bytes/s", "count"):
        return 0.0, math.inf
    return -math.inf, math.inf


def is_log_spaced(values) -> bool:
    """Positive values spanning a factor of ``LOG_SPAN`` or more (e.g. 10 MB/s .. 2 GB/s, 5 s .. 10 min)."""
    arr = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=float)
    arr = arr[np.isfinite(arr)]
    return bool(arr.size >= 2 and (arr > 0).all() and arr.max() / arr.min() >= LOG_SPAN)


def _axis_label(name: str, unit_label: str) -> str:
    return f"{name} ({unit_label})" if unit_label else name


def _style_axis(ax, which: str, unit: str, log: bool) -> None:
    """Log scale where asked; tick labels as plain numbers (no offset, no exponent; availability in
    percent with all its nines)."""
    axis = ax.yaxis if which == "y" else ax.xaxis
    if log:
        (ax.set_yscale if which == "y" else ax.set_xscale)("log")
    digits = 8 if unit == "availability" else 4
    axis.set_major_formatter(FuncFormatter(lambda v, _: fmt.number(v, digits)))


def incident_timeline(incidents: pd.DataFrame, duration_s: float, limit: int = 60) -> Figure:
    """One bar per incident from start to end (open ones to the end of the run), one row per
    subject (the ``limit`` subjects with the most downtime), coloured by cause."""
    rows = incidents["subject"].nunique() if not incidents.empty else 0
    fig = Figure(figsize=(11, 1.6 + 0.14 * max(min(rows, limit), 12)))
    ax = fig.add_subplot()
    if incidents.empty:
        return _empty(fig, ax, "no incidents")
    scale, unit = _time_unit(duration_s)
    inc = incidents.copy()
    inc["end"] = inc["end_s"].fillna(duration_s)
    worst = inc.groupby("subject")["downtime_s"].sum().sort_values(ascending=False).head(limit)
    subjects = sorted(worst.index)
    row = {s: i for i, s in enumerate(subjects)}
    inc = inc[inc["subject"].isin(row)]
    colors = _colors(sorted(inc["cause"].astype(str).unique()))
    for cause, grp in inc.groupby(inc["cause"].astype(str)):
        starts = grp["start_s"].to_numpy() / scale
        widths = np.maximum((grp["end"] - grp["start_s"]).to_numpy() / scale, duration_s / scale / 400)
        ax.barh([row[s] for s in grp["subject"]], widths, left=starts, height=0.8, color=colors[cause], label=cause)
    ax.set_yticks(range(len(subjects)))
    ax.set_yticklabels(subjects, fontsize=6 if len(subjects) > 20 else 8)
    ax.set_xlim(0, duration_s / scale)
    ax.set_xlabel(f"time since the start ({unit}s)")
    shown = f" (the {len(subjects)} with most downtime)" if len(worst) < incidents["subject"].nunique() else ""
    ax.set_title(f"Incidents over time, one row per subject{shown}; bars widened to stay visible")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), title="cause", title_fontsize=7)
    fig.tight_layout()
    return fig


def downtime_by_cause(incidents: pd.DataFrame) -> Figure:
    """The distribution of downtime per incident, one box per cause (log scale when it spans
    decades), with counts and totals."""
    fig = Figure(figsize=(10, 1.4 + 0.45 * max(incidents["cause"].nunique() if not incidents.empty else 1, 3)))
    ax = fig.add_subplot()
    inc = incidents[incidents["downtime_s"].notna()] if not incidents.empty else incidents
    if inc.empty:
        return _empty(fig, ax, "no incidents")
    causes = sorted(inc["cause"].astype(str).unique())
    raw = [inc.loc[inc["cause"].astype(str) == c, "downtime_s"].to_numpy() for c in causes]
    div, label = fmt.axis("s", np.concatenate(raw))
    log = is_log_spaced(np.concatenate(raw)[np.concatenate(raw) > 0]) if (np.concatenate(raw) > 0).any() else False
    floor = (np.concatenate(raw)[np.concatenate(raw) > 0].min() / div) if log else 0.0
    data = [np.maximum(d / div, floor) for d in raw]
    try:
        ax.boxplot(data, orientation="horizontal", showfliers=True)
    except TypeError:  # matplotlib < 3.10
        ax.boxplot(data, vert=False, showfliers=True)
    ax.set_yticks(range(1, len(causes) + 1))
    ax.set_yticklabels([f"{c}\n{len(d):,} incident{'s' * (len(d) != 1)}, {fmt.duration(d.sum())} in all"
                        for c, d in zip(causes, raw, strict=True)], fontsize=8)
    _style_axis(ax, "x", "s", log)
    ax.set_xlabel(f"downtime per incident ({label})")
    ax.set_title("Downtime per incident, by cause (box: quartiles; whiskers: 1.5 IQR)")
    fig.tight_layout()
    return fig


def _summed(levels: pd.DataFrame) -> pd.Series:
    """The sum over entities of step-wise levels, as a step series over time."""
    wide = levels.pivot_table(index="time_s", columns="entity", values="value", aggfunc="last").sort_index()
    return wide.ffill().fillna(0.0).sum(axis=1)


def gauges(levels: pd.DataFrame, duration_s: float, max_entities: int = 8) -> Figure:
    """Each gauge of levels.parquet over time (a step line; one line per entity when there are
    few, else their sum)."""
    metrics = sorted(levels["metric"].unique()) if not levels.empty else []
    n = max(len(metrics), 1)
    fig = Figure(figsize=(11, 1.0 + 2.0 * n))
    axes = [fig.add_subplot(n, 1, i + 1) for i in range(n)]
    if not metrics:
        return _empty(fig, axes[0], "no gauges")
    scale, unit = _time_unit(duration_s)
    for ax, metric in zip(axes, metrics, strict=True):
        lv = levels[levels["metric"] == metric]
        entities = sorted(lv["entity"].unique())
        if len(entities) <= max_entities:
            for entity in entities:
                e = lv[lv["entity"] == entity].sort_values("time_s", kind="stable")
                x = np.append(e["time_s"].to_numpy(), duration_s) / scale
                y = np.append(e["value"].to_numpy(), e["value"].to_numpy()[-1])
                ax.step(x, y, where="post", label=str(entity))
            if len(entities) > 1:
                ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
        else:
            total = _summed(lv)
            x = np.append(total.index.to_numpy(), duration_s) / scale
            y = np.append(total.to_numpy(), total.to_numpy()[-1])
            ax.step(x, y, where="post")
            metric = f"{metric} (sum over {len(entities)})"
        ax.set_ylabel(metric.replace("_", " "), fontsize=8)
        ax.yaxis.get_major_formatter().set_useOffset(False)
        ax.set_xlim(0, duration_s / scale)
    axes[-1].set_xlabel(f"time since the start ({unit}s)")
    axes[0].set_title("Gauges over time")
    fig.tight_layout()
    return fig


def table_counts(tables: dict[str, pd.DataFrame], skip: Sequence[str] = ("levels", "placements", "events")
                 ) -> Figure | None:
    """What each mechanism did: rows per record table that has any, split by ``outcome`` (or
    ``kind``) where the table has one; None when every table is empty."""
    names = sorted(n for n in tables if n not in skip and len(tables[n]))
    if not names:
        return None
    fig = Figure(figsize=(10, 0.45 * max(len(names), 3) + 1.2))
    ax = fig.add_subplot()
    splits: dict[str, dict[str, int]] = {}
    for name in names:
        df = tables[name]
        col = next((c for c in ("outcome", "kind", "action") if c in df.columns), None)
        if col is None:
            splits[name] = {"rows": len(df)}
        else:
            splits[name] = {str(k): int(v) for k, v in df[col].astype(str).value_counts().sort_index().items()}
    labels = sorted({k for s in splits.values() for k in s})
    colors = _colors(labels)
    left = np.zeros(len(names))
    for label in labels:
        widths = np.array([splits[n].get(label, 0) for n in names], dtype=float)
        if widths.any():
            ax.barh(range(len(names)), widths, left=left, color=colors[label], label=label)
        left += widths
    for i, total in enumerate(left):
        ax.text(total, i, f" {int(total):,}", va="center", fontsize=7)
    ax.set_xlim(0, left.max() * 1.12)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=8)
    ax.set_xlabel("records (count)")
    ax.set_title("What happened: records per result table, by outcome or kind")
    if len(labels) > 1:
        ax.legend(fontsize=7, ncol=1 if len(labels) <= 14 else 2, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig


def charges(table: pd.DataFrame, duration_s: float, currency: str = "USD") -> Figure | None:
    """Cumulative charges over time, one line per column that is an amount (``*_usd``, ``cost*``,
    ``amount*``), when the table has ``time_s``; None when it has nothing to draw."""
    amounts = [c for c in table.columns if (c.endswith("_usd") or c.startswith(("cost", "amount")))
               and pd.api.types.is_numeric_dtype(table[c])]
    if table.empty or "time_s" not in table.columns or not amounts:
        return None
    scale, unit = _time_unit(duration_s)
    fig = Figure(figsize=(10, 3))
    ax = fig.add_subplot()
    t = table.sort_values("time_s", kind="stable")
    for col in amounts:
        ax.step(t["time_s"] / scale, t[col].cumsum(), where="post", label=col)
    ax.set_xlabel(f"time since the start ({unit}s)")
    ax.set_ylabel(f"cumulative ({currency})")
    ax.set_title("Charges over time")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- sweeps
def varying_metrics(points: pd.DataFrame, metrics: Sequence[str]) -> list[str]:
    """The metrics whose mean is not the same at every point."""
    out = []
    for m in metrics:
        col = points.get(f"{m}_mean")
        if col is not None and col.notna().any() and col.nunique(dropna=True) > 1:
            out.append(m)
    return out


def is_numeric(series: pd.Series) -> bool:
    """Numbers (not booleans): drawn on a numeric axis."""
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _param_label(path: str, kind: str | None, values) -> tuple[float, str]:
    """(divisor, axis label) of a swept parameter from its quantity kind (``duration``, ``size``,
    ``rate``, ``event rate``) or none."""
    unit = {"duration": "s", "size": "bytes", "rate": "bytes/s"}.get(kind or "")
    if unit is None:
        return 1.0, path + (" (per second)" if kind == "event rate" else "")
    div, label = fmt.axis(unit, values)
    return div, f"{path} ({label})"


def sweep_curves(points: pd.DataFrame, param: str, metrics: Sequence[str], others: Sequence[str] = (),
                 ncols: int = 3, unit_of: UnitOf = _no_unit, kinds: dict[str, str] | None = None,
                 label_of: Callable[[str], str] | None = None) -> Figure:
    """Each metric's mean against ``param`` with its 95 % interval (clipped to what the metric
    allows): a band for a numeric parameter, error bars for a categorical one. One line per
    combination of the ``others`` swept parameters when there are at most 6; else every point
    on its own, coloured by the first other parameter (with its colour bar)."""
    kinds = kinds or {}
    n = max(len(metrics), 1)
    rows = math.ceil(n / ncols)
    cols = min(ncols, n)
    fig = Figure(figsize=(4.6 * cols + 1.6, 3.3 * rows + 0.5))
    if not metrics:
        return _empty(fig, fig.add_subplot(), "no metric varies between points")
    others = [o for o in others if o != param]
    combos = points[others].astype(str).agg(", ".join, axis=1) if others else pd.Series("", index=points.index)
    group_lines = 0 < combos.nunique() <= 6
    numeric = is_numeric(points[param])
    categories = sorted(points[param].astype(str).unique()) if not numeric else []
    keys = sorted(combos.unique()) if group_lines else [""]
    colors = _colors(keys)
    xdiv, xlabel = _param_label(param, kinds.get(param), points[param]) if numeric else (1.0, param)
    xlog = numeric and is_log_spaced(points[param])
    shade = others[0] if others and not group_lines and is_numeric(points[others[0]]) else None
    cdiv, clabel = _param_label(shade, kinds.get(shade), points[shade]) if shade is not None else (1.0, "")
    handles = {}
    mappable = None
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(rows, cols, i + 1)
        unit = unit_of(metric)
        low_ok, high_ok = bounds(unit)
        all_vals = points[[f"{metric}_mean", f"{metric}_ci95_low", f"{metric}_ci95_high"]].to_numpy().ravel()
        ydiv, ylabel = fmt.axis(unit, all_vals)
        means = points[f"{metric}_mean"].to_numpy()
        ylog = unit not in ("availability", "probability", "fraction") and is_log_spaced(means)
        for k, key in enumerate(keys):
            sel = points[combos == key] if group_lines else points
            mean = sel[f"{metric}_mean"].to_numpy(dtype=float)
            lo = np.clip(sel[f"{metric}_ci95_low"].to_numpy(dtype=float), low_ok, high_ok)
            hi = np.clip(sel[f"{metric}_ci95_high"].to_numpy(dtype=float), low_ok, high_ok)
            if ylog:  # a log axis cannot show 0: the band stops at the smallest positive mean
                floor = np.nanmin(means[means > 0]) / 10
                lo = np.maximum(lo, floor)
            label = ", ".join(f"{o.split('.')[-1]}={v}" for o, v in zip(others, key.split(", "), strict=False)) \
                if group_lines and others else None
            color = colors[key]
            if numeric:
                order = np.argsort(sel[param].to_numpy(), kind="stable")
                x = sel[param].to_numpy(dtype=float)[order] / xdiv
                y, l_, h_ = mean[order] / ydiv, lo[order] / ydiv, hi[order] / ydiv
                if shade is not None:
                    c = sel[shade].to_numpy(dtype=float)[order] / cdiv
                    band = np.isfinite(l_) & np.isfinite(h_)
                    ax.errorbar(x[band], y[band], yerr=[np.maximum(y[band] - l_[band], 0),
                                                        np.maximum(h_[band] - y[band], 0)],
                                fmt="none", ecolor="grey", alpha=0.5, zorder=1)
                    from matplotlib.colors import LogNorm, Normalize

                    norm = LogNorm() if is_log_spaced(points[shade]) else Normalize()
                    norm.autoscale(points[shade].to_numpy(dtype=float) / cdiv)
                    mappable = ax.scatter(x, y, c=c, cmap="viridis", norm=norm, s=18, zorder=2)
                else:
                    line, = ax.plot(x, y, "-o", ms=3, color=color, label=label)
                    band = np.isfinite(l_) & np.isfinite(h_)
                    if band.any():
                        ax.fill_between(x[band], l_[band], h_[band], alpha=0.2, color=color, linewidth=0)
                    if label:
                        handles[label] = line
            else:
                pos = np.array([categories.index(str(v)) for v in sel[param]], dtype=float)
                pos += (k - (len(keys) - 1) / 2) * 0.08
                y = mean / ydiv
                err = np.vstack([np.where(np.isfinite(lo), np.maximum(mean - lo, 0), 0) / ydiv,
                                 np.where(np.isfinite(hi), np.maximum(hi - mean, 0), 0) / ydiv])
                cont = ax.errorbar(pos, y, yerr=err, fmt="o", ms=4, capsize=3, color=color, label=label)
                if label:
                    handles[label] = cont
                ax.set_xticks(range(len(categories)))
                ax.set_xticklabels(categories, fontsize=8)
        name = label_of(metric) if label_of else metric
        ax.set_title(name, fontsize=9)
        ax.set_ylabel(ylabel if ylabel not in ("", "count") else ("count" if ylabel else ""), fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_xlabel(xlabel, fontsize=8)
        if numeric:
            _style_axis(ax, "x", "", xlog)
        _style_axis(ax, "y", unit, ylog)
        if unit == "availability":
            ax.set_ylabel("availability (%)", fontsize=8)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="upper right", fontsize=7,
                   title=", ".join(o.split(".")[-1] for o in others), title_fontsize=7)
    if mappable is not None:
        bar = fig.colorbar(mappable, ax=fig.axes, fraction=0.03, pad=0.02)
        bar.set_label(f"colour: {clabel}", fontsize=8)
        if is_log_spaced(points[shade]):
            from matplotlib.ticker import LogLocator

            bar.ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt.number(v)))
        bar.ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    what = "each dot a point's mean over its replications, the bar its 95 % interval"
    fig.suptitle(f"Against {param}: {what}", fontsize=10)
    if mappable is None:
        fig.tight_layout(rect=(0, 0, 0.86 if handles else 1, 0.95))
    return fig


def run_distributions(runs: pd.DataFrame, metrics: Sequence[str], ncols: int = 3,
                      unit_of: UnitOf = _no_unit) -> Figure:
    """A histogram of each metric over the ok runs (a sweep with one point: replications only)."""
    ok = runs[runs["status"] == "ok"]
    n = max(len(metrics), 1)
    rows, cols = math.ceil(n / ncols), min(ncols, n)
    fig = Figure(figsize=(4.4 * cols, 2.9 * rows))
    if not metrics:
        return _empty(fig, fig.add_subplot(), "no metric varies between runs")
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(rows, cols, i + 1)
        vals = ok[metric].dropna().to_numpy(dtype=float)
        div, label = fmt.axis(unit_of(metric), vals)
        ax.hist(vals / div, bins=min(20, max(5, len(ok) // 2)))
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel(label, fontsize=8)
        ax.set_ylabel("runs", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def compare_diffs(table: pd.DataFrame, limit: int = 16, unit_of: UnitOf = _no_unit,
                  first: Sequence[str] = ()) -> Figure | None:
    """A forest plot: one row per metric that differs, B − A with its paired 95 % interval in the
    metric's own unit (each row has its own axis, since units differ), a line at 0; red where the
    interval excludes 0. Metrics in ``first`` lead, then those whose interval excludes 0, then the
    rest; at most ``limit``. None when no metric differs."""
    t = table[(table["n"] > 0) & table["diff_mean"].notna()].copy()
    t = t[(t["diff_mean"] != 0) | (t["diff_ci95_low"].fillna(0) != 0) | (t["diff_ci95_high"].fillna(0) != 0)]
    if t.empty:
        return None
    t["sig"] = (t["diff_ci95_low"] > 0) | (t["diff_ci95_high"] < 0)
    t["lead"] = t["metric"].isin(first)
    t = t.sort_values(["lead", "sig", "metric"], ascending=[False, False, True], kind="stable").head(limit)
    n = len(t)
    fig = Figure(figsize=(11, 0.62 * n + 1.0))
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    for ax, row in zip(axes, t.itertuples(index=False), strict=True):
        unit = unit_of(row.metric)
        if unit == "availability":  # a difference of availabilities is in percentage points
            div, label = 0.01, "percentage points"
        else:
            div, label = fmt.axis(unit, [row.diff_mean, row.diff_ci95_low, row.diff_ci95_high])
        lo, hi = row.diff_ci95_low, row.diff_ci95_high
        x = row.diff_mean / div
        color = "tab:red" if row.sig else "tab:blue"
        if np.isfinite(lo) and np.isfinite(hi):
            ax.errorbar([x], [0], xerr=[[max(x - lo / div, 0)], [max(hi / div - x, 0)]], fmt="o",
                        color=color, ecolor=color, capsize=4, ms=5)
            span = max(abs(lo / div), abs(hi / div), abs(x)) or 1.0
        else:
            ax.plot([x], [0], "o", color=color, ms=5)
            span = abs(x) or 1.0
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_xlim(-1.15 * span, 1.15 * span)
        ax.set_yticks([])
        ax.set_ylim(-1, 1)
        ax.tick_params(axis="x", labelsize=7, pad=1)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt.number(v, 3)))
        a_text = fmt.value(row.a_mean, unit) if np.isfinite(row.a_mean) else "–"
        b_text = fmt.value(row.b_mean, unit) if np.isfinite(row.b_mean) else "–"
        ax.text(-0.01, 0.5, f"{row.metric}\nA {a_text} → B {b_text}", transform=ax.transAxes, ha="right",
                va="center", fontsize=7.5)
        ax.text(1.01, 0.5, label, transform=ax.transAxes, ha="left", va="center", fontsize=7, color="#555")
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
    fig.suptitle("B − A per metric, paired by seed, with its 95 % interval, in the metric's unit "
                 "(red: the interval excludes 0)", fontsize=9)
    fig.subplots_adjust(left=0.33, right=0.86, top=1 - 0.5 / (0.62 * n + 1.0), bottom=0.3 / (0.62 * n + 1.0),
                        hspace=1.1)
    return fig
