"""Metric metadata: each metric is declared once, by the module whose summary computes it.

A ``Metric`` says a metric's name, its unit, a one-line meaning, whether higher is
better (``None``: neither, e.g. a count of what happened) and whether a report leads
with it (``headline``). Each mechanism declares ``metrics`` (every metric its summaries
can produce) and the platform's summaries declare theirs in ``sim.metrics.summary``;
the registry assembles them (``REGISTRY.metric_info()``) and refuses two declarations of
one name. Everything a person reads formats from this table; the numbers in
``summary.json`` and the result tables stay in the base units below.

Units (a fixed vocabulary, ``UNITS``):

- ``"s"``: a duration in seconds;
- ``"bytes"``: an amount of data; ``"bytes/s"``: a rate of data;
- ``"count"``: a number of things or events;
- ``"availability"``: a 0..1 fraction of time up (formatted as a percentage with nines);
- ``"probability"``: a 0..1 chance; ``"fraction"``: any other 0..1 share;
- ``"money"``: in the currency unit of the scenario's prices; ``"money/h"`` per hour;
- ``"1"``: dimensionless (a mean count per thing, a ratio that is not a share).

Name patterns: a declared name ending in ``_*`` stands for the four statistics
``_mean``, ``_p50``, ``_p95`` and ``_max`` (what ``sim.metrics.summary.stats`` produces);
a declared name ending in ``.*`` stands for every name one segment longer (``faults.*``:
``faults.host_crash``, ``faults.vm_crash``, ... one per fault kind, whatever kinds exist).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

__all__ = ["Metric", "UNITS", "STATS", "expand", "lookup", "DuplicateMetric"]

UNITS = frozenset({"s", "bytes", "bytes/s", "count", "availability", "probability", "fraction", "money",
                   "money/h", "1"})
STATS = ("_mean", "_p50", "_p95", "_max")
_STAT_MEANING = {"_mean": "mean", "_p50": "median", "_p95": "95th percentile", "_max": "maximum"}


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric's metadata. ``name`` may end in ``_*`` or ``.*`` (see the module docstring)."""

    name: str
    unit: str
    meaning: str
    higher_is_better: bool | None = None
    headline: bool = False

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"metric {self.name!r}: expected a unit in {sorted(UNITS)}, got {self.unit!r}")
        if not self.meaning:
            raise ValueError(f"metric {self.name!r}: expected a one-line meaning, got none")


class DuplicateMetric(ValueError):
    """Two declarations of one metric name (the registry turns it into a ``WiringError``)."""


def expand(metrics: Iterable[Metric]) -> dict[str, Metric]:
    """Name -> metric with every ``_*`` expanded into its four statistics (``.*`` patterns kept as
    declared); raises ``DuplicateMetric`` naming every name declared twice."""
    out: dict[str, Metric] = {}
    twice: list[str] = []
    for m in metrics:
        if m.name.endswith("_*"):
            stem = m.name[:-2]
            items = [replace(m, name=stem + s, meaning=f"{m.meaning} ({_STAT_MEANING[s]})") for s in STATS]
        else:
            items = [m]
        for item in items:
            if item.name in out:
                twice.append(item.name)
            out[item.name] = item
    if twice:
        raise DuplicateMetric(f"metric declared twice: {', '.join(sorted(set(twice)))}")
    return out


def lookup(info: Mapping[str, Metric], name: str) -> Metric | None:
    """The metadata of concrete metric ``name`` in ``info`` (from ``expand``): an exact name, else the
    ``.*`` pattern of its prefix; None when undeclared."""
    found = info.get(name)
    if found is not None:
        return found
    prefix, dot, _ = name.rpartition(".")
    if dot:
        pattern = info.get(prefix + ".*")
        if pattern is not None:
            return replace(pattern, name=name)
    return None
