"""Matplotlib figures from result tables only (never the model).

Every function takes DataFrames as ``sim.results.load`` / ``load_sweep`` return them and
gives a ``matplotlib.figure.Figure`` built without pyplot (so no backend or global state
is involved; ``fig.savefig`` renders with Agg). Times are shown in days when the run is
longer than two days, else in hours.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

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
]


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


def incident_timeline(incidents: pd.DataFrame, duration_s: float, limit: int = 60) -> Figure:
    """One bar per incident from start to end (open ones to the end of the run), one row per
    subject (the ``limit`` subjects with the most downtime), coloured by cause."""
    rows = incidents["subject"].nunique() if not incidents.empty else 0
    fig = Figure(figsize=(10, 1.5 + 0.14 * max(min(rows, limit), 20)))
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
    ax.set_xlabel(unit)
    shown = f" (the {len(subjects)} with most downtime)" if len(worst) < incidents["subject"].nunique() else ""
    ax.set_title(f"Incidents over time{shown}")
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def downtime_by_cause(incidents: pd.DataFrame) -> Figure:
    """The distribution of downtime per incident, one box per cause (log scale), with counts."""
    fig = Figure(figsize=(8, 3.5))
    ax = fig.add_subplot()
    inc = incidents[incidents["downtime_s"].notna()] if not incidents.empty else incidents
    if inc.empty:
        return _empty(fig, ax, "no incidents")
    causes = sorted(inc["cause"].astype(str).unique())
    data = [inc.loc[inc["cause"].astype(str) == c, "downtime_s"].clip(lower=1e-3).to_numpy() for c in causes]
    try:
        ax.boxplot(data, orientation="horizontal", showfliers=True)
    except TypeError:  # matplotlib < 3.10
        ax.boxplot(data, vert=False, showfliers=True)
    ax.set_yticks(range(1, len(causes) + 1))
    ax.set_yticklabels([f"{c} (n={len(d)})" for c, d in zip(causes, data, strict=True)], fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("downtime per incident (s)")
    ax.set_title("Downtime per incident, by cause")
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
    fig = Figure(figsize=(10, 2.2 * n))
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
                ax.legend(fontsize=7)
        else:
            total = _summed(lv)
            x = np.append(total.index.to_numpy(), duration_s) / scale
            y = np.append(total.to_numpy(), total.to_numpy()[-1])
            ax.step(x, y, where="post", label=f"sum over {len(entities)}")
            ax.legend(fontsize=7)
        ax.set_ylabel(metric, fontsize=8)
        ax.set_xlim(0, duration_s / scale)
    axes[-1].set_xlabel(unit)
    axes[0].set_title("Gauges over time")
    fig.tight_layout()
    return fig


def table_counts(tables: dict[str, pd.DataFrame], skip: Sequence[str] = ("levels", "placements", "events")
                 ) -> Figure:
    """What each mechanism did: rows per record table, split by ``outcome`` (or ``kind``) where the
    table has one."""
    names = sorted(n for n in tables if n not in skip)
    fig = Figure(figsize=(9, 0.45 * max(len(names), 4) + 1))
    ax = fig.add_subplot()
    if not names:
        return _empty(fig, ax, "no record tables")
    splits: dict[str, dict[str, int]] = {}
    for name in names:
        df = tables[name]
        col = next((c for c in ("outcome", "kind", "action") if c in df.columns), None)
        if col is None or df.empty:
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
        ax.text(total, i, f" {int(total)}", va="center", fontsize=7)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=8)
    ax.set_xlabel("rows (records)")
    ax.set_title("What each mechanism did: records per table (by outcome / kind)")
    if len(labels) > 1:
        ax.legend(fontsize=6, ncol=2, loc="lower right")
    fig.tight_layout()
    return fig


def charges(table: pd.DataFrame, duration_s: float) -> Figure | None:
    """Cumulative charges over time, one line per column that is an amount (``*_usd``, ``cost*``,
    ``amount*``), when the table has ``time_s``; None when it has nothing to draw."""
    amounts = [c for c in table.columns if (c.endswith("_usd") or c.startswith(("cost", "amount")))
               and pd.api.types.is_numeric_dtype(table[c])]
    if table.empty or "time_s" not in table.columns or not amounts:
        return None
    scale, unit = _time_unit(duration_s)
    fig = Figure(figsize=(9, 3))
    ax = fig.add_subplot()
    t = table.sort_values("time_s", kind="stable")
    for col in amounts:
        ax.step(t["time_s"] / scale, t[col].cumsum(), where="post", label=col)
    ax.set_xlabel(unit)
    ax.set_ylabel("cumulative")
    ax.set_title("Charges over time")
    ax.legend(fontsize=7)
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


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def sweep_curves(points: pd.DataFrame, param: str, metrics: Sequence[str], others: Sequence[str] = (),
                 ncols: int = 3) -> Figure:
    """Each metric's mean against ``param`` with its 95 % interval (a band for a numeric parameter,
    error bars for a categorical one); one line per combination of the ``others`` swept
    parameters when there are at most 6, else every point on its own."""
    n = max(len(metrics), 1)
    rows = math.ceil(n / ncols)
    cols = min(ncols, n)
    fig = Figure(figsize=(4.2 * cols, 3.0 * rows + 0.4))
    if not metrics:
        return _empty(fig, fig.add_subplot(), "no metric varies between points")
    others = [o for o in others if o != param]
    combos = points[others].astype(str).agg(", ".join, axis=1) if others else pd.Series("", index=points.index)
    group_lines = 0 < combos.nunique() <= 6
    numeric = _is_numeric(points[param])
    categories = sorted(points[param].astype(str).unique()) if not numeric else []
    keys = sorted(combos.unique()) if group_lines else [""]
    colors = _colors(keys)
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(rows, cols, i + 1)
        for k, key in enumerate(keys):
            sel = points[combos == key] if group_lines else points
            mean, low, high = sel[f"{metric}_mean"], sel[f"{metric}_ci95_low"], sel[f"{metric}_ci95_high"]
            label = ", ".join(f"{o.split('.')[-1]}={v}" for o, v in zip(others, key.split(", "), strict=False)) \
                if group_lines and others else None
            if numeric:
                order = np.argsort(sel[param].to_numpy(), kind="stable")
                x = sel[param].to_numpy()[order]
                y, lo, hi = mean.to_numpy()[order], low.to_numpy()[order], high.to_numpy()[order]
                style = "-o" if group_lines or not others else "o"
                ax.plot(x, y, style, ms=3, color=colors[key], label=label)
                band = np.isfinite(lo) & np.isfinite(hi)
                if band.any() and (group_lines or not others):
                    ax.fill_between(x[band], lo[band], hi[band], alpha=0.25, color=colors[key], linewidth=0)
                elif band.any():
                    ax.errorbar(x[band], y[band], yerr=[y[band] - lo[band], hi[band] - y[band]], fmt="none",
                                ecolor=colors[key], alpha=0.5)
            else:
                pos = np.array([categories.index(str(v)) for v in sel[param]], dtype=float)
                pos += (k - (len(keys) - 1) / 2) * 0.08
                y = mean.to_numpy()
                lo, hi = low.to_numpy(), high.to_numpy()
                err = np.vstack([np.where(np.isfinite(lo), y - lo, 0), np.where(np.isfinite(hi), hi - y, 0)])
                ax.errorbar(pos, y, yerr=err, fmt="o", ms=4, capsize=3, color=colors[key], label=label)
                ax.set_xticks(range(len(categories)))
                ax.set_xticklabels(categories, fontsize=8)
        ax.set_title(metric, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_xlabel(param, fontsize=7)
        if i == 0 and group_lines and others:
            ax.legend(fontsize=6)
    fig.suptitle(f"Metrics against {param} (mean, 95 % CI)", fontsize=10)
    fig.tight_layout()
    return fig


def run_distributions(runs: pd.DataFrame, metrics: Sequence[str], ncols: int = 3) -> Figure:
    """A histogram of each metric over the ok runs (a sweep with one point: replications only)."""
    ok = runs[runs["status"] == "ok"]
    n = max(len(metrics), 1)
    rows, cols = math.ceil(n / ncols), min(ncols, n)
    fig = Figure(figsize=(4.2 * cols, 2.8 * rows))
    if not metrics:
        return _empty(fig, fig.add_subplot(), "no metric varies between runs")
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.hist(ok[metric].dropna(), bins=min(20, max(5, len(ok) // 2)))
        ax.set_title(metric, fontsize=9)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def compare_diffs(table: pd.DataFrame, limit: int = 30) -> Figure:
    """B − A per metric as a fraction of |A| (so metrics of any unit share an axis), with the
    paired 95 % interval; the ``limit`` metrics with the largest relative change."""
    t = table[table["n"] > 0].copy()
    denom = t["a_mean"].abs().where(t["a_mean"].abs() > 0, t["b_mean"].abs()).replace(0, np.nan)
    t["rel"] = t["diff_mean"] / denom
    t["lo"] = t["diff_ci95_low"] / denom
    t["hi"] = t["diff_ci95_high"] / denom
    t = t[t["rel"].notna() & (t["diff_mean"] != 0)]
    t = t.reindex(t["rel"].abs().sort_values(ascending=False).index).head(limit).iloc[::-1]
    fig = Figure(figsize=(9, 0.3 * max(len(t), 4) + 1.2))
    ax = fig.add_subplot()
    if t.empty:
        return _empty(fig, ax, "no metric differs between A and B")
    y = np.arange(len(t))
    err = np.vstack([(t["rel"] - t["lo"]).fillna(0).to_numpy(), (t["hi"] - t["rel"]).fillna(0).to_numpy()])
    sig = ((t["lo"] > 0) | (t["hi"] < 0)).to_numpy()
    ax.errorbar(t["rel"], y, xerr=err, fmt="none", ecolor="grey", capsize=2)
    ax.scatter(t["rel"], y, c=np.where(sig, "tab:red", "tab:blue"), zorder=3, s=16)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels(t["metric"], fontsize=7)
    ax.set_xlabel("(B − A) / |A|  (red: the 95 % interval excludes 0)")
    ax.set_title("B against A, paired by seed")
    fig.tight_layout()
    return fig
