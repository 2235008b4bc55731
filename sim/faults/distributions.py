"""Durations drawn from a fault entry's distributions (time to failure, time to repair).

A ``Distribution`` of the scenario (``sim.scenario.schema``) becomes a ``Sampler``: a callable
``draw(rng) -> seconds`` that uses one named stream (``ctx.streams``) and costs O(1), with no
scipy call per event. Each family draws exactly as ``scipy.stats`` does with the same generator
(``expon``, ``weibull_min``, ``lognorm``, ``gamma`` ``.rvs(random_state=rng)``: the same numpy
samplers, and the Weibull by its inverse CDF of one uniform, as scipy does; checked in
tests/test_distributions.py), and ``frozen(dist)`` gives the
``scipy.stats`` distribution itself for means, quantiles and fits. The exponential family keeps
the draws of the old ``mtbf`` (``rng.exponential(mean)``), so existing scenarios draw the same
numbers; ``deterministic`` draws nothing.

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

__all__ = ["Sampler", "sampler", "fixed", "exponential", "frozen", "parameters"]


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

    def __call__(self, rng: np.random.Generator) -> float:
        match self.family:
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
    return stats.uniform(loc=s.a, scale=0.0)
