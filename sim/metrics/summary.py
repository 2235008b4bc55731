"""Pure summary functions: result tables in, ``{metric name: number}`` out.

Names are dotted ``area.quantity_unit`` with ``_mean``, ``_p50``, ``_p95``, ``_max``,
``_total`` suffixes (docs/reference/metrics.md). A metric with nothing to aggregate is 0 for counts and
totals and omitted (not NaN) for means and percentiles; a ratio with nothing to divide
by is omitted. Percentiles are numpy's linear ones. Nothing here reads wall time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sim.metrics.meta import Metric


@dataclass(frozen=True)
class RunInfo:
    """What summaries need beyond the tables: ``configs`` has each mechanism's config as it ran
    (key -> resolved config; an absent section's defaults, disabled), so a summary reads what
    the scenario said from it, not from a table written for the purpose."""

    duration_s: float
    hosts: int
    vm_names: frozenset[str]  # the workloads' VMs (availability is over these)
    configs: Mapping[str, Any] = field(default_factory=dict)


Tables = dict[str, pd.DataFrame]


def stats(prefix: str, values) -> dict[str, float]:
    """``prefix_mean, _p50, _p95, _max`` of ``values``; nothing when there are none."""
    arr = np.asarray(values, dtype=float)
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return {}
    return {
        f"{prefix}_mean": float(arr.mean()),
        f"{prefix}_p50": float(np.percentile(arr, 50)),
        f"{prefix}_p95": float(np.percentile(arr, 95)),
        f"{prefix}_max": float(arr.max()),
    }


def count(df: pd.DataFrame | None, mask=None) -> int:
    if df is None:
        return 0
    return int(len(df) if mask is None else int(mask.sum()))


def core_metrics(t: Tables, info: RunInfo) -> dict[str, float]:
    inc = t["incidents"]
    out: dict[str, float] = {
        "incidents.count": count(inc),
        "incidents.open": count(inc, inc["outcome"] == "open"),
        "incidents.downtime_s_total": float(inc["downtime_s"].sum()),
    }
    out.update(stats("incidents.downtime_s", inc["downtime_s"]))
    faults = t["faults"]
    out["faults.count"] = count(faults)
    for kind, n in sorted(faults["kind"].value_counts().items()):
        out[f"faults.{kind}"] = int(n)
    restarts = t["restarts"]
    out["restarts.count"] = count(restarts)
    out["restarts.waited_s_total"] = float(restarts["waited_s"].sum())
    out.update(stats("restarts.downtime_s", restarts["downtime_s"]))
    ops = t["operations"]
    out["operations.count"] = count(ops)
    out["operations.failed"] = count(ops, ops["outcome"] == "failed")
    out["hosts.count"] = info.hosts
    n_vms = len(info.vm_names)
    out["vms.count"] = n_vms
    vm_down = inc.loc[inc["subject"].isin(info.vm_names), "downtime_s"]
    out["vm.downtime_s_total"] = float(vm_down.sum())
    if n_vms > 0 and info.duration_s > 0:
        out["vm.availability"] = float(1.0 - vm_down.sum() / (n_vms * info.duration_s))
    return out


def placement_metrics(t: Tables, info: RunInfo) -> dict[str, float]:
    """``placements.count``: initial placements, restarts, migrations and moves of every VM."""
    return {"placements.count": count(t["placements"])}


# The platform's metrics; each mechanism declares its own summaries (``Mechanism.summaries``).
# Every name they can produce is declared in ``METRICS`` (units: ``sim.metrics.meta``).
METRICS: tuple[Metric, ...] = (
    Metric("incidents.count", "count", "incidents opened (a subject down, one per continuous outage)", False,
           headline=True),
    Metric("incidents.open", "count", "incidents still open when the run ended", False),
    Metric("incidents.downtime_s_total", "s", "downtime summed over every incident", False, headline=True),
    Metric("incidents.downtime_s_*", "s", "downtime of one incident", False),
    Metric("faults.count", "count", "faults injected"),
    Metric("faults.*", "count", "faults of this kind injected"),
    Metric("restarts.count", "count", "stopped VMs brought back by the default recovery"),
    Metric("restarts.waited_s_total", "s", "time restarted VMs waited for a host with room", False),
    Metric("restarts.downtime_s_*", "s", "downtime of one VM brought back by a restart", False),
    Metric("operations.count", "count", "scheduled operations carried out or failed"),
    Metric("operations.failed", "count", "scheduled operations that failed", False),
    Metric("hosts.count", "count", "hosts in the datacenter"),
    Metric("vms.count", "count", "the workloads' VMs (mechanisms' own VMs excluded)"),
    Metric("vm.downtime_s_total", "s", "downtime of the workloads' VMs, summed over VMs", False, headline=True),
    Metric("vm.availability", "availability", "fraction of VM-time the workloads' VMs were up", True,
           headline=True),
    Metric("placements.count", "count", "VM placements: initial, restarts, migrations and moves"),
)
SUMMARIES: tuple[Callable[[Tables, RunInfo], dict[str, float]], ...] = (core_metrics, placement_metrics)


def summarize(tables: Tables, info: RunInfo,
              extra: tuple[Callable[[Tables, RunInfo], dict[str, float]], ...] = ()) -> dict[str, float]:
    """All metrics (the platform's, then ``extra``: the mechanisms'), sorted by name."""
    out: dict[str, float] = {}
    for fn in (*SUMMARIES, *extra):
        out.update(fn(tables, info))
    return {k: out[k] for k in sorted(out)}
