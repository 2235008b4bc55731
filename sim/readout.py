"""What a person reads after a run: metrics with their units, grouped by what produced them.

Built on the metric metadata (``REGISTRY.metric_info()``) and ``sim.format``. Used by the
terminal summary of ``dcsim run``, the reports and ``dcsim metrics``. Which metrics a
person sees: those of the platform and of the mechanisms the scenario enables (a disabled
mechanism's metrics are zeros of something that did not run, so they are left out).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from sim import format as fmt

__all__ = [
    "meta",
    "show",
    "label",
    "owner",
    "enabled_mechanisms",
    "visible",
    "run_lines",
    "phrase",
    "said",
    "STAT_SUFFIXES",
]

STAT_SUFFIXES = ("_mean", "_p50", "_p95", "_max")
WIDTH = 80


def _registry():
    from sim.mechanisms.registry import REGISTRY

    return REGISTRY


def meta(name: str):
    """The ``Metric`` of concrete metric ``name`` (``faults.vm_crash`` resolves ``faults.*``), or None."""
    return _registry().metric(name)


def unit(name: str) -> str:
    m = meta(name)
    return m.unit if m is not None else "1"


def show(name: str, value: float) -> str:
    """``value`` of metric ``name`` formatted in its unit."""
    return fmt.value(value, unit(name))


def label(name: str, strip: str = "") -> str:
    """A short readable label: ``migration.downtime_s_max`` -> ``downtime max`` (``strip`` removes a
    leading ``area.``); the unit marker ``_s`` goes, since the value carries its unit."""
    text = name[len(strip):] if strip and name.startswith(strip) else name
    text = text.replace("_s_", "_").removesuffix("_s")
    return text.replace("_", " ").replace(".", " ")


@lru_cache(maxsize=1)
def _owners() -> tuple[tuple[str, frozenset[str], tuple[str, ...]], ...]:
    from sim.metrics.meta import expand

    out = []
    for key, cls in _registry().classes.items():
        names = expand(getattr(cls, "metrics", ()))
        exact = frozenset(n for n in names if not n.endswith(".*"))
        patterns = tuple(n[:-1] for n in names if n.endswith(".*"))
        out.append((key, exact, patterns))
    return tuple(out)


def owner(name: str) -> str | None:
    """The key of the mechanism that declares metric ``name``; None for the platform's."""
    for key, exact, patterns in _owners():
        if name in exact or any(name.startswith(p) and "." not in name[len(p):] for p in patterns):
            return key
    return None


def enabled_mechanisms(mechanisms: Any) -> set[str]:
    """Keys of the enabled mechanisms, from a scenario's ``mechanisms`` (model or resolved mapping)."""
    out = set()
    for key in _registry().classes:
        cfg = mechanisms.get(key) if isinstance(mechanisms, Mapping) else getattr(mechanisms, key, None)
        on = cfg.get("enabled", True) if isinstance(cfg, Mapping) else getattr(cfg, "enabled", False)
        if cfg is not None and on:
            out.add(key)
    return out


def visible(names: Iterable[str], enabled: set[str] | None) -> list[str]:
    """The names a person sees: the platform's and those of enabled mechanisms (all when ``enabled`` is
    None), in the order given."""
    return [n for n in names if enabled is None or owner(n) in (None, *enabled)]


# --------------------------------------------------------------------------- the run summary
@dataclass
class RunView:
    name: str
    seed: Any
    duration_s: float
    events: int
    wall_s: float
    metrics: Mapping[str, float]
    incidents: pd.DataFrame
    enabled: set[str]
    path: Path | str


def _fit(head: str, items: list[str], width: int = WIDTH) -> str:
    """``head`` and as many of ``items`` (comma-separated) as fit in ``width``; "..." when some did not."""
    line = head
    for i, item in enumerate(items):
        sep = ", " if i else ""
        rest = len(items) - i - 1
        if len(line) + len(sep) + len(item) + (5 if rest else 0) > width:
            return line + (", ..." if i else "...")
        line += sep + item
    return line


def phrase(metrics: Mapping[str, float], names: list[str], info: Mapping[str, Any] | None = None) -> str:
    """The default line of a group of metrics (a mechanism's ``said``, the recovery line): ``label
    value`` of those worth a glance, comma-separated: ``<area>.count`` first ("18 migrations"), then
    the headline ones, then the rest; zeros left out, statistics only as their maximum. ``area`` is
    the first segment of the first name; ``info`` (name -> ``Metric``) gives units and headlines
    (default: the registry's)."""
    return ", ".join(_items(metrics, names, info))


def _items(metrics: Mapping[str, float], names: list[str], info: Mapping[str, Any] | None = None) -> list[str]:
    from sim.metrics.meta import lookup

    def md(n: str):
        return meta(n) if info is None else lookup(info, n)

    def keep(n: str) -> bool:
        if not metrics.get(n):
            return False
        stem = next((n[: -len(s)] for s in STAT_SUFFIXES if n.endswith(s)), None)
        return stem is None or n.endswith("_max") or f"{stem}_max" not in metrics

    area = names[0].split(".")[0] + "." if names else ""
    chosen = [n for n in names if keep(n)]
    first = [n for n in chosen if n == f"{area}count"]
    head = [n for n in chosen if (m := md(n)) is not None and m.headline and n not in first]
    ordered = first + head + [n for n in chosen if n not in head and n not in first]

    def item(n: str) -> str:
        m = md(n)
        text = fmt.value(metrics[n], m.unit if m is not None else "1")
        if n == f"{area}count":  # "18 migrations"
            noun = area.rstrip(".")
            return f"{text} {noun}{'s' if metrics[n] != 1 and not noun.endswith('s') else ''}"
        return f"{label(n, area)} {text}"

    return [item(n) for n in ordered]


NOTHING = "nothing to do in this run"


def said(key: str, metrics: Mapping[str, float]) -> str:
    """What the enabled mechanism ``key`` did in this run, in its own words (its class's ``said``
    hook, by default ``phrase`` of its metrics), or that it had nothing to do."""
    reg = _registry()
    return reg.classes[key].said(metrics, reg.metric_info()) or NOTHING


def run_lines(view: RunView, top: int = 5, verbose: bool = False) -> list[str]:
    """The terminal summary of one run (at most 80 columns; under 40 lines unless ``verbose``)."""
    m = view.metrics
    out = [f"{view.name}: {fmt.duration(view.duration_s)} simulated, seed {view.seed}, "
           f"{view.events:,} events in {fmt.duration(view.wall_s)}"]
    out.append("")
    if "vm.availability" in m:
        out.append(f"VM availability  {fmt.availability_long(m['vm.availability'])} over "
                   f"{fmt.number(m.get('vms.count', 0))} VMs")
    inc = view.incidents
    n_inc = int(m.get("incidents.count", len(inc)))
    out.append(f"VM downtime      {fmt.duration(m.get('vm.downtime_s_total', 0.0))}, the workloads' VMs summed")
    out.append(f"Incidents        {n_inc:,}, {fmt.duration(m.get('incidents.downtime_s_total', 0.0))} of downtime "
               "(every subject)" + (f", {int(m['incidents.open'])} still open" if m.get("incidents.open") else ""))
    if not inc.empty:
        out.append("")
        out.append(f"{'Downtime by cause':<28}{'incidents':>10}{'downtime':>12}{'longest':>12}")
        by = inc.groupby(inc["cause"].astype(str))["downtime_s"].agg(["count", "sum", "max"])
        by = by.sort_values(["sum", "count"], ascending=False, kind="stable")
        for cause, row in by.head(6).iterrows():
            out.append(f"  {cause[:25]:<26}{int(row['count']):>10,}{fmt.duration(row['sum']):>12}"
                       f"{fmt.duration(row['max']):>12}")
        if len(by) > 6:
            out.append(f"  ... and {len(by) - 6} more causes")
        out.append("")
        out.append(f"{'Longest incidents':<22}{'start d+h:m:s':>14}{'downtime':>11}  cause")
        worst = inc.sort_values(["downtime_s", "start_s"], ascending=[False, True], kind="stable").head(top)
        for row in worst.itertuples(index=False):
            down = fmt.duration(row.downtime_s) if pd.notna(row.downtime_s) else "open"
            out.append(f"  {str(row.subject)[:19]:<20}{fmt.clock(row.start_s):>14}{down:>11}  "
                       f"{str(row.cause)[:WIDTH - 49]}")
    out.append("")
    out.append("What ran")
    col = max(len(k) for k in ("faults", "recovery", *view.enabled)) + 2
    faults = sorted(((k.partition(".")[2], v) for k, v in m.items()
                     if k.startswith("faults.") and k != "faults.count" and v), key=lambda kv: -kv[1])
    out.append(_fit(f"  {'faults':<{col}}{fmt.number(m.get('faults.count', 0))}" + (": " if faults else ""),
                    [f"{fmt.number(v)} {k}" for k, v in faults]))
    restarts = [n for n in m if n.startswith("restarts.")]
    out.append(_fit(f"  {'recovery':<{col}}", _items(m, restarts) or ["no restarts"]))
    for key in sorted(view.enabled):
        # the mechanism's own sentence; clauses that do not fit the width give way to "..."
        out.append(_fit(f"  {key:<{col}}", said(key, m).split(", ")))
    if verbose:
        out.append("")
        out.extend(metric_table(m, view.enabled))
    out.append("")
    out.append(f"Results in {view.path}  (every metric: --verbose)")
    out.append(f"Report:  dcsim report {view.path}")
    return out


def metric_table(metrics: Mapping[str, float], enabled: set[str] | None) -> list[str]:
    """Every visible metric: name, value in its unit, meaning."""
    names = visible(metrics, enabled)
    width = max((len(n) for n in names), default=6)
    lines = [f"{'metric':<{width}}  {'value':>14}  meaning"]
    for n in names:
        m = meta(n)
        lines.append(f"{n:<{width}}  {show(n, metrics[n]):>14}  {m.meaning if m is not None else ''}")
    return lines
