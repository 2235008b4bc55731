"""Durations drawn from a fault entry's distributions (time to failure, time to repair).

A ``Distribution`` of the scenario (``sim.scenario.schema``) becomes a ``Sampler``: a callable
``draw(rng) -> seconds`` that uses one named stream (``ctx.streams``) and costs O(1), with no
scipy call per event. Each family draws exactly as ``scipy.stats`` does with the same generator
(``expon``, ``weibull_min``, ``lognorm``, ``gamma`` ``.rvs(random_state=rng)``: the same numpy
samplers, and the Weibull by its inverse CDF of one uniform, as scipy does; checked in
tests/test_distributions.py), and ``frozen(dist)`` gives the
``scipy.stats`` distribution itself for means, quantiles and fits. The exponential family keeps
the draws of the old ``mtbf`` (``rng.exponential(mean)``), so existing scenarios draw the same
numbers; ``deterministic`` draws nothing; ``empirical`` resamples a column of a file
(``read_empirical``, when the run is built): one uniform index per draw.

Parameterisations (docs/failures.md): weibull ``scale = mean / Gamma(1 + 1/shape)``; lognormal
``mu = log(median)`` or ``log(mean) - sigma^2 / 2``; gamma ``scale = mean / shape``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from scipy.stats._distn_infrastructure import rv_continuous_frozen

    from sim.scenario.schema import Distribution

__all__ = ["Sampler", "sampler", "fixed", "exponential", "empirical", "read_empirical", "frozen", "parameters"]


def parameters(dist: Distribution) -> tuple[str, dict[str, float]]:
    """(family, canonical parameters in seconds): exponential {mean}; weibull and gamma {shape,
    scale}; lognormal {mu, sigma} (mu of log seconds); deterministic {value}."""
    family = dist.family
    match family:
        case "exponential":
            return family, {"mean": float(dist.mean)}
        case "weibull":
            k = float(dist.shape)
            scale = float(dist.scale) if dist.scale is not None else float(dist.mean) / math.gamma(1.0 + 1.0 / k)
            return family, {"shape": k, "scale": scale}
        case "lognormal":
            s = float(dist.sigma)
            mu = math.log(float(dist.median)) if dist.median is not None else math.log(float(dist.mean)) - s * s / 2
            return family, {"mu": mu, "sigma": s}
        case "gamma":
            k = float(dist.shape)
            scale = float(dist.scale) if dist.scale is not None else float(dist.mean) / k
            return family, {"shape": k, "scale": scale}
    return family, {"value": float(dist.value)}


@dataclass(frozen=True, slots=True)
class Sampler:
    """``draw(rng)``: one duration in seconds from the generator ``rng``; ``mean`` in seconds."""

    family: str
    a: float  # exponential: mean; weibull, gamma: shape; lognormal: mu; deterministic: value
    b: float  # weibull, gamma: scale; lognormal: sigma
    mean: float
    values: tuple[float, ...] = ()  # empirical: the durations resampled (seconds)

    def __call__(self, rng: np.random.Generator) -> float:
        match self.family:
            case "empirical":
                return self.values[int(rng.integers(len(self.values)))]
            case "exponential":
                return float(rng.exponential(self.a))
            case "weibull":
                return self.b * (-math.log1p(-float(rng.random()))) ** (1.0 / self.a)
            case "lognormal":
                return math.exp(self.a + self.b * float(rng.standard_normal()))
            case "gamma":
                return self.b * float(rng.standard_gamma(self.a))
        return self.a


def sampler(dist: Distribution) -> Sampler:
    """The sampler of a parametric distribution (an empirical one: ``read_empirical``)."""
    if dist.family == "empirical":
        raise ValueError("an empirical distribution is read from its file: use read_empirical")
    family, p = parameters(dist)
    match family:
        case "exponential":
            return Sampler(family, p["mean"], 0.0, p["mean"])
        case "weibull" | "gamma":
            return Sampler(family, p["shape"], p["scale"], dist.mean_s())
        case "lognormal":
            return Sampler(family, p["mu"], p["sigma"], dist.mean_s())
    return Sampler(family, p["value"], 0.0, p["value"])


def exponential(mean: float) -> Sampler:
    """The ``mtbf`` shortcut: exponential with this mean (seconds)."""
    return Sampler("exponential", float(mean), 0.0, float(mean))


def empirical(values) -> Sampler:
    """Resampling: each draw is one of ``values`` (seconds), each equally likely."""
    values = tuple(float(v) for v in values)
    return Sampler("empirical", 0.0, 0.0, math.fsum(values) / len(values), values)


def read_empirical(dist: Distribution, scenario_source: str, where: str) -> Sampler:
    """The sampler of an empirical distribution: ``dist.column`` of the CSV or Parquet file
    ``dist.path`` (relative to the scenario's file), durations with units or numbers of seconds.

    A missing or unreadable file or column, no values, or a value that is not a duration greater
    than zero is an ``InputError``: the file's problems name the scenario and ``where.path`` /
    ``where.column``, a bad value names the data file, its line and column."""
    from pathlib import Path

    import pandas as pd

    from sim.core.errors import InputError, Problem, show
    from sim.core.units import UnitError, parse_duration
    from sim.faults.trace import read_table

    path = Path(dist.path) if Path(dist.path).is_absolute() else Path(scenario_source).parent / dist.path
    table, lines = read_table(path, scenario_source, f"{where}.path")
    if dist.column not in table.columns:
        columns = ", ".join(map(str, table.columns)) or "none"
        raise InputError(scenario_source, [Problem(f"{where}.column", f"expected a column of {path} (it has "
                                                                      f"{columns}), got {show(dist.column)}")])
    column = table[dist.column]
    present = column.notna().to_numpy()
    if not present.any():
        raise InputError(scenario_source, [Problem(f"{where}.column", f"expected at least one duration in column "
                                                                      f"{show(dist.column)} of {path}, got none")])
    values, problems = [], []
    for raw, line in zip(column[present].tolist(), lines[present].tolist(), strict=True):
        try:
            value = parse_duration(raw.strip() if isinstance(raw, str) else raw)
        except (UnitError, ValueError):
            value = -1.0
        if not value > 0 or pd.isna(value):
            if len(problems) < 10:
                problems.append(Problem(f"line {line}, column {dist.column}",
                                        f"expected a duration greater than zero (like 4h or 3600), got {show(raw)}"))
            continue
        values.append(value)
    if problems:
        raise InputError(str(path), problems)
    return empirical(values)


def fixed(value: float) -> Sampler:
    """The fixed ``repair`` shortcut: always ``value`` seconds, no draw."""
    return Sampler("deterministic", float(value), 0.0, float(value))


def frozen(dist: Distribution | Sampler) -> rv_continuous_frozen:
    """The ``scipy.stats`` distribution (seconds); deterministic is a point mass (``uniform`` of width 0)."""
    from scipy import stats

    s = dist if isinstance(dist, Sampler) else sampler(dist)
    match s.family:
        case "exponential":
            return stats.expon(scale=s.a)
        case "weibull":
            return stats.weibull_min(s.a, scale=s.b)
        case "lognormal":
            return stats.lognorm(s.b, scale=math.exp(s.a))
        case "gamma":
            return stats.gamma(s.a, scale=s.b)
        case "empirical":
            import numpy as np

            support, counts = np.unique(np.asarray(s.values), return_counts=True)
            return stats.rv_discrete(values=(support, counts / counts.sum()))
    return stats.uniform(loc=s.a, scale=0.0)
