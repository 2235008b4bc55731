"""Input limits and run budgets (docs/limits.md), each raisable by an environment variable.

Limits protect the loader from files that would exhaust memory or time before any
check could report a problem: a file larger than ``DCSIM_MAX_FILE_BYTES``, YAML
nested deeper than ``DCSIM_MAX_DEPTH`` or expanding (aliases counted in full) to
more than ``DCSIM_MAX_NODES`` nodes. Budgets are checked on a validated scenario
before anything is built: hosts and VMs (before their names are generated), the
DIMMs simulated by ``dimm_errors``, and the expected number of fault and sample
events over the run (rates x targets x duration).

Every value is read from the environment when it is used, so a test or a user can
raise one for one command (``DCSIM_MAX_HOSTS=5000000 dcsim run big.yaml``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from sim.core.errors import InputError, Problem, show

__all__ = ["Limit", "LIMITS", "limit"]


@dataclass(frozen=True)
class Limit:
    """One limit: its environment variable, default and what it counts."""

    env: str
    default: float
    what: str


LIMITS: dict[str, Limit] = {
    "file_bytes": Limit("DCSIM_MAX_FILE_BYTES", 16 * 1024**2, "bytes in a scenario file"),
    "depth": Limit("DCSIM_MAX_DEPTH", 64, "levels of nesting in a YAML document"),
    "nodes": Limit("DCSIM_MAX_NODES", 1_000_000, "YAML nodes, aliases expanded"),
    "hosts": Limit("DCSIM_MAX_HOSTS", 1_000_000, "hosts in total"),
    "vms": Limit("DCSIM_MAX_VMS", 10_000_000, "VMs in total"),
    "dimms": Limit("DCSIM_MAX_DIMMS", 20_000_000, "DIMMs simulated by dimm_errors entries"),
    "events": Limit("DCSIM_MAX_EVENTS", 50_000_000, "expected fault and sample events over the run"),
}


def limit(key: str) -> float:
    """The limit's value: its environment variable when set (a positive number), else the default."""
    spec = LIMITS[key]
    raw = os.environ.get(spec.env)
    if raw is None or not raw.strip():
        return spec.default
    try:
        value = float(raw.replace("_", ""))
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise InputError(spec.env, [Problem("", f"expected a positive number of {spec.what}, got {show(raw)}")])
    return value


def number(value: float) -> str:
    """A count as messages show it: exact when whole (``1000000000``), else ``2.5e+20``."""
    if float(value).is_integer() and abs(value) < 1e18:
        return str(int(value))
    return f"{value:.2g}"
