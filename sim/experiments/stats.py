"""Student-t summaries: a sweep's points (points.parquet) and paired A/B differences (compare.parquet).

Pure functions of result tables. For n values with mean m and sample standard
deviation s (ddof 1) the 95 % interval is m ± t(0.975, n − 1)·s/√n
(``scipy.stats.t.interval``); with n = 1 the standard deviation and interval are NaN,
with s = 0 the interval is [m, m]. Only runs with ``status == "ok"`` that have the
metric count (a mean with nothing to aggregate is omitted from a run's summary, so
``n`` can be below the replications).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["t_interval", "points_table", "paired_table", "STAT_SUFFIXES"]

STAT_SUFFIXES = ("mean", "std", "ci95_low", "ci95_high", "n")


def t_interval(mean: np.ndarray, std: np.ndarray, n: np.ndarray, confidence: float = 0.95
               ) -> tuple[np.ndarray, np.ndarray]:
    """Student-t interval bounds, elementwise (NaN where n < 2; [mean, mean] where std is 0)."""
    from scipy import stats

    mean = np.asarray(mean, dtype=float)
    std = np.asarray(std, dtype=float)
    n = np.asarray(n, dtype=float)
    low = np.full(mean.shape, np.nan)
    high = np.full(mean.shape, np.nan)
    ok = (n >= 2) & np.isfinite(std) & np.isfinite(mean)
    spread = ok & (std > 0)
    if spread.any():
        lo, hi = stats.t.interval(confidence, df=n[spread] - 1, loc=mean[spread],
                                  scale=std[spread] / np.sqrt(n[spread]))
        low[spread], high[spread] = lo, hi
    flat = ok & (std == 0)
    low[flat] = high[flat] = mean[flat]
    return low, high


def _stats(groups, metric: str) -> pd.DataFrame:
    agg = groups[metric].agg(["mean", "std", "count"])
    low, high = t_interval(agg["mean"].to_numpy(), agg["std"].to_numpy(), agg["count"].to_numpy())
    return pd.DataFrame({"mean": agg["mean"].astype(float), "std": agg["std"].astype(float), "ci95_low": low,
                         "ci95_high": high, "n": agg["count"].astype(np.int64)}, index=agg.index)


def points_table(runs: pd.DataFrame, paths: Sequence[str], metrics: Sequence[str],
                 point_columns: pd.DataFrame) -> pd.DataFrame:
    """One row per point (``point_columns``: point_id and the swept paths, in point order), then
    ``<metric>_mean, _std, _ci95_low, _ci95_high, _n`` for each metric over the point's ok runs."""
    ok = runs[runs["status"] == "ok"]
    out = point_columns.reset_index(drop=True).copy()
    order = pd.Index(out["point_id"])
    groups = ok.groupby("point_id", sort=True)
    columns: dict[str, np.ndarray] = {}
    for metric in metrics:
        if metric in ok.columns and len(ok):
            st = _stats(groups, metric).reindex(order)
            for suffix in STAT_SUFFIXES:
                series = st[suffix]
                if suffix == "n":
                    series = series.fillna(0).astype(np.int64)
                columns[f"{metric}_{suffix}"] = series.to_numpy()
        else:
            for suffix in STAT_SUFFIXES:
                columns[f"{metric}_{suffix}"] = (np.zeros(len(out), np.int64) if suffix == "n"
                                                 else np.full(len(out), np.nan))
    return pd.concat([out, pd.DataFrame(columns, index=out.index)], axis=1)


def _mean(side: pd.DataFrame, metric: str) -> float:
    return float(side[metric].mean()) if metric in side.columns and side[metric].notna().any() else np.nan


def paired_table(a: pd.DataFrame, b: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """compare.parquet: per metric, the means of A and B and of B − A over the seeds where both ran
    and both have the metric, with a paired Student-t 95 % interval (``n`` pairs). With no pair,
    each side's mean is over its own runs (NaN when it has none). ``a`` and ``b`` are ok runs
    indexed by seed."""
    rows = []
    seeds = a.index.intersection(b.index)
    for metric in metrics:
        if metric in a.columns and metric in b.columns:
            pair = pd.DataFrame({"a": a.loc[seeds, metric], "b": b.loc[seeds, metric]}).dropna()
        else:
            pair = pd.DataFrame({"a": [], "b": []}, dtype=float)
        diff = pair["b"] - pair["a"]
        n = len(pair)
        std = diff.std(ddof=1) if n >= 2 else np.nan
        mean = diff.mean() if n else np.nan
        low, high = t_interval(np.array([mean]), np.array([std]), np.array([n]))
        # With no pair (one side never has the metric, e.g. B has no migrations to average), each
        # side's mean is over its own runs, so A's figure is kept when B has none.
        rows.append({"metric": metric, "a_mean": pair["a"].mean() if n else _mean(a, metric),
                     "b_mean": pair["b"].mean() if n else _mean(b, metric), "diff_mean": mean,
                     "diff_ci95_low": float(low[0]), "diff_ci95_high": float(high[0]), "n": n})
    df = pd.DataFrame(rows, columns=["metric", "a_mean", "b_mean", "diff_mean", "diff_ci95_low",
                                     "diff_ci95_high", "n"])
    return df.astype({"a_mean": float, "b_mean": float, "diff_mean": float, "diff_ci95_low": float,
                      "diff_ci95_high": float, "n": np.int64})
