"""Pure summary functions: result tables in, ``{metric name: number}`` out.

Names are dotted ``area.quantity_unit`` with ``_mean``, ``_p50``, ``_p95``, ``_max``,
``_total`` suffixes (SPEC.md). A metric with nothing to aggregate is 0 for counts and
totals and omitted (not NaN) for means and percentiles; a ratio with nothing to divide
by is omitted. Percentiles are numpy's linear ones. Nothing here reads wall time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class RunInfo:
    """What summaries need beyond the tables."""

    duration_s: float
    hosts: int
    vm_names: frozenset[str]  # the workloads' VMs (availability is over these)


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


def _count(df: pd.DataFrame | None, mask=None) -> int:
    if df is None:
        return 0
    return int(len(df) if mask is None else int(mask.sum()))


def core_metrics(t: Tables, info: RunInfo) -> dict[str, float]:
    inc = t["incidents"]
    out: dict[str, float] = {
        "incidents.count": _count(inc),
        "incidents.open": _count(inc, inc["outcome"] == "open"),
        "incidents.downtime_s_total": float(inc["downtime_s"].sum()),
    }
    out.update(stats("incidents.downtime_s", inc["downtime_s"]))
    faults = t["faults"]
    out["faults.count"] = _count(faults)
    for kind, n in sorted(faults["kind"].value_counts().items()):
        out[f"faults.{kind}"] = int(n)
    restarts = t["restarts"]
    out["restarts.count"] = _count(restarts)
    out["restarts.waited_s_total"] = float(restarts["waited_s"].sum())
    out.update(stats("restarts.downtime_s", restarts["downtime_s"]))
    ops = t["operations"]
    out["operations.count"] = _count(ops)
    out["operations.failed"] = _count(ops, ops["outcome"] == "failed")
    out["hosts.count"] = info.hosts
    n_vms = len(info.vm_names)
    out["vms.count"] = n_vms
    vm_down = inc.loc[inc["subject"].isin(info.vm_names), "downtime_s"]
    out["vm.downtime_s_total"] = float(vm_down.sum())
    if n_vms > 0 and info.duration_s > 0:
        out["vm.availability"] = float(1.0 - vm_down.sum() / (n_vms * info.duration_s))
    return out




# ---- live migration and memory errors ------------------------------------------------------------
def migration_metrics(t: Tables, info: RunInfo) -> dict[str, float]:
    """``migration.*``: ``count`` completed migrations, ``failed`` failed requests; times,
    downtimes and rounds over completed ones; ``bytes_total`` every byte sent, aborted flows too."""
    m = t["migrations"]
    done = m[m["outcome"] == "completed"]
    out: dict[str, float] = {
        "migration.count": _count(done),
        "migration.failed": _count(m, m["outcome"] == "failed"),
        "migration.bytes_total": float(m["bytes"].sum()),
    }
    out.update(stats("migration.total_time_s", done["total_time_s"]))
    out.update(stats("migration.downtime_s", done["downtime_s"]))
    if len(done):
        out["migration.rounds_mean"] = float(done["rounds"].mean())
    return out


def memory_error_metrics(t: Tables, info: RunInfo) -> dict[str, float]:
    """``memory_errors.*`` from ``memory_errors`` and ``incidents``; the same names with evacuation off.

    ``vm_downtime_s_total``: incidents caused by memory errors (guest and host crashes, post-copy
    losses) plus the pauses of evacuation migrations.
    """
    me = t["memory_errors"]
    inc = t["incidents"]
    from_errors = (inc["cause"] == "memory_error") | (
        (inc["cause"] == "migration") & (inc["mechanism"] == "memory_error_evacuation"))
    return {
        "memory_errors.correctable": int(me.loc[me["kind"] == "correctable", "count"].sum()),
        "memory_errors.uncorrectable": int(me.loc[me["kind"] == "uncorrectable", "count"].sum()),
        "memory_errors.vms_evacuated": int(me["vms_evacuated"].sum()),
        "memory_errors.vms_crashed": int(me["vms_crashed"].sum()),
        "memory_errors.vm_downtime_s_total": float(inc.loc[from_errors, "downtime_s"].sum()),
        "memory_errors.host_crashes": _count(me, me["action"] == "host_crash"),
    }


# Each area's metrics come from one pure function; a new mechanism adds its own here.
SUMMARIES: tuple[Callable[[Tables, RunInfo], dict[str, float]], ...] = (
    core_metrics, migration_metrics, memory_error_metrics,
)


def summarize(tables: Tables, info: RunInfo) -> dict[str, float]:
    """All metrics, sorted by name."""
    out: dict[str, float] = {}
    for fn in SUMMARIES:
        out.update(fn(tables, info))
    return {k: out[k] for k in sorted(out)}
