"""Fit failure and repair distributions to a trace (``dcsim fit TRACE``).

From a trace (``sim.faults.trace``: ``node, start, end[, kind]``), per node, with the overlapping
or touching records of a node merged as replay merges them:
- **up times** (what a fault entry's ``time_to_failure`` draws): from the end of one outage to
  the start of the node's next. The time from the start of observation to a node's first
  failure is left out (it is not a whole up time: the node was not new at time 0). The time
  from a node's last repair to the end of observation (``horizon``, default the last end in
  the trace) is **right-censored**: it enters the likelihood through the survival function
  S(c), not the density, so long quiet tails are not mistaken for short up times.
- **repairs** (``time_to_repair``): each outage's length, all complete.

Each family (exponential, weibull, lognormal, gamma; location fixed at 0) is fitted by maximum
likelihood with ``scipy.stats`` (``CensoredData`` when something is censored), then ranked by
AIC = 2 k - 2 log L (k = 1 for the exponential, 2 for the others); the Kolmogorov-Smirnov
distance between the complete observations and the fitted CDF is reported beside it (with
censoring it is only indicative: the censored values are not in the empirical CDF). Pooled
fits treat every node's up times as draws of one distribution.

Small samples: below ``MIN_SAMPLES`` (20) observations no fit is made. A sample with no spread
(every value equal) is ``deterministic``; a family whose optimiser finds no maximum is left out
of the ranking. The intervals of the
parameters are asymptotic (inverse Fisher information, ``fit_intervals`` in the tests).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sim.core.errors import InputError, Problem

__all__ = ["FAMILIES", "Fit", "fit_sample", "samples", "to_yaml", "format_duration", "plot", "kaplan_meier",
           "MIN_SAMPLES"]

FAMILIES = ("exponential", "weibull", "lognormal", "gamma")
MIN_SAMPLES = 20


@dataclass(frozen=True)
class Fit:
    """One family fitted: ``params`` as a scenario's Distribution takes them (seconds)."""

    family: str
    params: dict[str, float]
    loglik: float
    aic: float
    ks: float
    n: int
    censored: int

    def frozen(self):
        from scipy import stats

        p = self.params
        match self.family:
            case "exponential":
                return stats.expon(scale=p["mean"])
            case "weibull":
                return stats.weibull_min(p["shape"], scale=p["scale"])
            case "lognormal":
                return stats.lognorm(p["sigma"], scale=p["median"])
            case "deterministic":
                return stats.uniform(loc=p["value"], scale=0.0)
        return stats.gamma(p["shape"], scale=p["scale"])


def _dist(family: str):
    from scipy import stats

    return {"exponential": stats.expon, "weibull": stats.weibull_min, "lognormal": stats.lognorm,
            "gamma": stats.gamma}[family]


def fit_sample(values: np.ndarray, censored: np.ndarray | None = None) -> list[Fit]:
    """Every family fitted to ``values`` (complete, > 0) and right-censored ``censored``; best AIC first."""
    from scipy import stats

    x = np.asarray(values, dtype=float)
    x = x[x > 0]
    c = np.asarray(censored if censored is not None else [], dtype=float)
    c = c[c > 0]
    if len(x) and not len(c) and np.ptp(x) <= 1e-9 * x.max():
        # No spread at all (every repair exactly 1 h): the continuous families have no maximum.
        return [Fit("deterministic", {"value": float(x[0])}, math.nan, 0.0, 0.0, len(x), 0)]
    data = stats.CensoredData(uncensored=x, right=c) if len(c) else x
    out = []
    for family in FAMILIES:
        dist = _dist(family)
        if family == "exponential":
            # Closed form with censoring: total time on test over the failures.
            scale = (x.sum() + c.sum()) / len(x)
            shape_args: tuple = ()
            k = 1
        else:
            try:
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    fitted = dist.fit(data, floc=0)
            except (ValueError, RuntimeError, FloatingPointError):
                continue  # the optimiser found no maximum: the family is left out of the ranking
            shape_args, scale = tuple(fitted[:-2]), fitted[-1]
            if not all(np.isfinite([*shape_args, scale])) or scale <= 0 or min(shape_args) <= 0:
                continue
            k = 2
        frozen = dist(*shape_args, loc=0, scale=scale)
        with np.errstate(all="ignore"):
            loglik = float(np.sum(frozen.logpdf(x)) + (np.sum(frozen.logsf(c)) if len(c) else 0.0))
            ks = float(stats.kstest(x, frozen.cdf).statistic)
        match family:
            case "exponential":
                params = {"mean": float(scale)}
            case "weibull" | "gamma":
                params = {"shape": float(shape_args[0]), "scale": float(scale)}
            case _:
                params = {"sigma": float(shape_args[0]), "median": float(scale)}
        if not math.isfinite(loglik):
            continue
        out.append(Fit(family, params, loglik, 2 * k - 2 * loglik, ks, len(x), len(c)))
    return sorted(out, key=lambda f: f.aic)


def samples(table: pd.DataFrame, horizon: float | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Per node: ``up`` (complete up times), ``censored`` (last up time, right-censored at
    ``horizon``) and ``repair`` (outage lengths), after merging each node's overlapping records.
    ``table`` has numeric ``node`` codes or names, ``start``, ``end`` in seconds."""
    t = table.sort_values(["node", "start"], kind="stable")
    end_all = float(t["end"].max()) if horizon is None else float(horizon)
    out: dict[str, dict[str, np.ndarray]] = {}
    for node, g in t.groupby("node", sort=True):
        s, e = g["start"].to_numpy(dtype=float), g["end"].to_numpy(dtype=float)
        reach = np.maximum.accumulate(e)
        new = np.r_[True, s[1:] > reach[:-1]]
        heads = np.flatnonzero(new)
        ms, me = s[heads], np.maximum.reduceat(e, heads)
        out[str(node)] = {"up": ms[1:] - me[:-1], "censored": np.array([max(0.0, end_all - me[-1])]),
                          "repair": me - ms}
    return out


_UNITS = (("y", 365 * 86400.0), ("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0), ("ms", 1e-3))


def unit_for(seconds: float) -> tuple[str, float]:
    for unit, size in _UNITS:
        if abs(seconds) >= size:
            return unit, size
    return "ms", 1e-3


def format_duration(seconds: float) -> str:
    """``21.34d``: four significant digits in the largest unit not above the value."""
    unit, size = unit_for(seconds)
    return f"{seconds / size:.4g}{unit}"


def to_yaml(field: str, fit: Fit) -> str:
    """``time_to_failure: {family: weibull, shape: 0.7012, scale: 21.34d}``."""
    parts = [f"family: {fit.family}"]
    for name, value in fit.params.items():
        parts.append(f"{name}: {format_duration(value)}" if name in ("mean", "scale", "median", "value")
                     else f"{name}: {value:.4g}")
    return f"{field}: {{{', '.join(parts)}}}"


def kaplan_meier(x: np.ndarray, censored: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(times, CDF) of the Kaplan-Meier estimate: the empirical CDF when some values are censored
    (without censoring it is the ECDF)."""
    t = np.r_[x, censored]
    event = np.r_[np.ones(len(x), dtype=bool), np.zeros(len(censored), dtype=bool)]
    order = np.lexsort((~event, t))  # at a tie, failures before censorings
    t, event = t[order], event[order]
    at_risk = len(t) - np.arange(len(t))
    surv = np.cumprod(np.where(event, 1.0 - 1.0 / at_risk, 1.0))
    return t[event], 1.0 - surv[event]


def plot(panels: list[tuple[str, np.ndarray, np.ndarray, Fit]], path: Path) -> None:
    """The empirical CDF of each sample (Kaplan-Meier when some values are censored) against its
    best fit's CDF, log time axis in the sample's unit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, (title, x, cens, best) in zip(axes[0], panels, strict=True):
        unit, size = unit_for(float(np.median(x)))
        xs, cdf = kaplan_meier(x, cens)
        label = f"trace (n={len(x)}" + (f", {len(cens)} censored: Kaplan-Meier)" if len(cens) else ")")
        ax.step(xs / size, cdf, where="post", label=label, color="black")
        grid = np.geomspace(max(xs[0], 1e-9), max(xs[-1], float(np.max(cens)) if len(cens) else xs[-1]), 400)
        if best.family == "deterministic":  # a point mass: the CDF steps from 0 to 1 at the value
            curve = (grid >= best.params["value"]).astype(float)
        else:
            curve = best.frozen().cdf(grid)
        ax.plot(grid / size, curve, label=f"{best.family} (best AIC)", color="tab:red")
        ax.set_xscale("log")
        ax.set_xlabel(f"{title} ({unit}, log scale)")
        ax.set_ylabel("fraction ≤ x")
        ax.set_title(f"{title}: data vs {best.family}")
        ax.legend(loc="lower right")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def read(path: str, origin: str | None = None, kind: str | None = None) -> pd.DataFrame:
    """A trace's ``node, start, end`` (seconds) for fitting; input errors name the file, line, column."""
    from sim.faults.trace import _cell, _origin, read_table, seconds

    source = str(path)
    table, lines = read_table(Path(path), source, "")
    missing = [c for c in ("node", "start", "end") if c not in table.columns]
    if missing:
        raise InputError(source, [Problem("line 1", f"expected columns node, start, end (and optionally kind), "
                                                    f"got {', '.join(map(str, table.columns)) or 'none'}")])
    if kind is not None:
        kinds = table["kind"].astype("string").fillna("host_crash") if "kind" in table.columns else None
        keep = (kinds == kind).to_numpy(dtype=bool) if kinds is not None else np.full(len(table), kind == "host_crash")
        table, lines = table.loc[keep].reset_index(drop=True), lines[keep]
    # Gaps do not depend on time 0: without an origin, ISO timestamps count from the Unix epoch.
    o = _origin(origin if origin is not None else "1970-01-01T00:00:00Z")
    start, ok_s = seconds(table["start"], o)
    end, ok_e = seconds(table["end"], o)
    problems = []
    for col, ok in (("start", ok_s), ("end", ok_e)):
        for r in np.flatnonzero(~ok)[:5]:
            problems.append(Problem(f"line {lines[r]}, column {col}", f"expected seconds, a duration like \"3h\" or "
                                                                       f"an ISO timestamp, got {_cell(table[col].iloc[r])}"))
    for r in np.flatnonzero(ok_s & ok_e & (end < start))[:5]:
        problems.append(Problem(f"line {lines[r]}, column end", f"expected an end not before the start "
                                                                 f"({start[r]:g} s), got {end[r]:g} s"))
    if problems:
        raise InputError(source, problems)
    return pd.DataFrame({"node": table["node"].astype(str).to_numpy(), "start": start, "end": end})


def pooled(per_node: dict[str, dict[str, np.ndarray]], key: str) -> np.ndarray:
    arrays = [v[key] for v in per_node.values()]
    return np.concatenate(arrays) if arrays else np.empty(0)


def describe(fits: list[Fit]) -> list[str]:
    """The ranking as text lines."""
    best = fits[0].aic
    lines = [f"  {'family':<12}{'dAIC':>10}{'KS':>8}  parameters"]
    for f in fits:
        params = ", ".join(f"{k}={format_duration(v) if k in ('mean', 'scale', 'median', 'value') else f'{v:.4g}'}"
                           for k, v in f.params.items())
        lines.append(f"  {f.family:<12}{f.aic - best:>10.1f}{f.ks:>8.4f}  {params}")
    return lines


