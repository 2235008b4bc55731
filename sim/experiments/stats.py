"""Student-t summaries: a sweep's points (points.parquet) and paired A/B differences (compare.parquet).

Pure functions of result tables. For n values with mean m and sample standard
deviation s (ddof 1) the 95 % interval is m ± t(0.975, n − 1)·s/√n
(``scipy.stats.t.interval``); with n = 1 the standard deviation and interval are NaN.
Only runs with ``status == "ok"`` that have the metric count (a mean with nothing to
aggregate is omitted from a run's summary, so ``n`` can be below the replications).

All n values equal (s = 0, e.g. no failure in 10 runs) says nothing about the spread, so no
[m, m] interval is given, which would look certain: the ``_flag`` column says ``all_equal``
and the interval is NaN. A count (``is_count``) that is 0 in every one of n runs says
``no_events`` and gets the one-sided 95 % upper bound of the rule of three: [0, 3/n] events
per run-length (Hanley & Lippman-Hand 1983, "If nothing goes wrong, is everything all
right?", JAMA 249(13); the exact Poisson bound is ln 20 / n = 2.996 / n).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["t_interval", "points_table", "paired_table", "is_count", "rule_of_three", "STAT_SUFFIXES",
           "ALL_EQUAL", "NO_EVENTS"]

STAT_SUFFIXES = ("mean", "std", "ci95_low", "ci95_high", "n", "flag")
ALL_EQUAL = "all_equal"  # n >= 2 values, all equal: no interval (NaN), not [m, m]
NO_EVENTS = "no_events"  # a count that is 0 in all n runs: [0, 3/n] (rule of three)
_NOT_COUNTS = ("_s", "_total", "_mean", "_p50", "_p95", "_p99", "_max", "_min", "_bytes", "_ratio", "_fraction",
               "availability")


def is_count(metric: str) -> bool:
    """A metric that counts events (``faults.count``, ``migration.failed``, ``sessions.dropped``):
    its last dotted segment carries no unit or statistic suffix (``_s``, ``_total``, ``_mean``,
    ``_p95``, ``_max``, ``_bytes``, ...) and is not an availability or ratio (SPEC's naming)."""
    last = metric.rsplit(".", 1)[-1]
    return not last.endswith(_NOT_COUNTS)


def rule_of_three(n: np.ndarray) -> np.ndarray:
    """The 95 % upper bound on the expected count per run after 0 events in each of n runs: 3/n."""
    return 3.0 / np.asarray(n, dtype=float)


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


def flagged(metric: str, mean: np.ndarray, std: np.ndarray, n: np.ndarray, low: np.ndarray, high: np.ndarray,
            all_zero: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(low, high, flag) with all-equal values flagged: the interval NaN, or [0, 3/n] for a count
    that is 0 in all n runs (``all_zero``)."""
    mean = np.asarray(mean, dtype=float)
    n = np.asarray(n, dtype=float)
    low, high = np.array(low, dtype=float), np.array(high, dtype=float)
    flag = np.full(mean.shape, "", dtype=object)
    zero = (n >= 1) & np.asarray(all_zero, dtype=bool) & is_count(metric)
    equal = (n >= 2) & (np.asarray(std, dtype=float) == 0) & ~zero
    flag[equal] = ALL_EQUAL
    low[equal] = high[equal] = np.nan
    flag[zero] = NO_EVENTS
    low[zero] = 0.0
    high[zero] = rule_of_three(n[zero])
    return low, high, flag


def _stats(groups, metric: str) -> pd.DataFrame:
    agg = groups[metric].agg(["mean", "std", "count", "min", "max"])
    low, high = t_interval(agg["mean"].to_numpy(), agg["std"].to_numpy(), agg["count"].to_numpy())
    # a count of nothing: every value 0 (min = max = 0); std can be NaN (n = 1)
    all_zero = (agg["min"] == 0) & (agg["max"] == 0)
    low, high, flag = flagged(metric, agg["mean"].to_numpy(), agg["std"].to_numpy(), agg["count"].to_numpy(),
                              low, high, all_zero.to_numpy())
    return pd.DataFrame({"mean": agg["mean"].astype(float), "std": agg["std"].astype(float), "ci95_low": low,
                         "ci95_high": high, "n": agg["count"].astype(np.int64), "flag": flag}, index=agg.index)


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
                if suffix == "flag":
                    series = series.fillna("").astype(str)
                columns[f"{metric}_{suffix}"] = series.to_numpy()
        else:
            for suffix in STAT_SUFFIXES:
                columns[f"{metric}_{suffix}"] = (np.zeros(len(out), np.int64) if suffix == "n"
                                                 else np.full(len(out), "", dtype=object) if suffix == "flag"
                                                 else np.full(len(out), np.nan))
    return pd.concat([out, pd.DataFrame(columns, index=out.index)], axis=1)


def _mean(side: pd.DataFrame, metric: str) -> float:
    return float(side[metric].mean()) if metric in side.columns and side[metric].notna().any() else np.nan


def paired_table(a: pd.DataFrame, b: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """compare.parquet: per metric, the means of A and B and of B − A over the seeds where both ran
    and both have the metric, with a paired Student-t 95 % interval and a ``flag``: ``all_equal``
    when every difference is the same (no interval: NaN), ``no_events`` when the metric is a
    count that is 0 on both sides for every seed (no interval; each side's 95 % upper bound is
    3/n per run-length). With no pair, each side's mean is over its own runs (NaN when it has none).
    ``a`` and ``b`` are ok runs indexed by seed."""
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
        flag = ""
        if n and is_count(metric) and (pair["a"] == 0).all() and (pair["b"] == 0).all():
            flag = NO_EVENTS
        elif n >= 2 and std == 0:
            flag = ALL_EQUAL
        if flag:
            low[0] = high[0] = np.nan
        # With no pair (one side never has the metric, e.g. B has no migrations to average), each
        # side's mean is over its own runs, so A's figure is kept when B has none.
        rows.append({"metric": metric, "a_mean": pair["a"].mean() if n else _mean(a, metric),
                     "b_mean": pair["b"].mean() if n else _mean(b, metric), "diff_mean": mean,
                     "diff_ci95_low": float(low[0]), "diff_ci95_high": float(high[0]), "n": n, "flag": flag})
    df = pd.DataFrame(rows, columns=["metric", "a_mean", "b_mean", "diff_mean", "diff_ci95_low",
                                     "diff_ci95_high", "n", "flag"])
    return df.astype({"a_mean": float, "b_mean": float, "diff_mean": float, "diff_ci95_low": float,
                      "diff_ci95_high": float, "n": np.int64})
