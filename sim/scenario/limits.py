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

__all__ = ["Limit", "LIMITS", "limit", "plausible", "MIN_VM_MEMORY"]


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
    # Plausible magnitudes (docs/limits.md gives each one's source): beyond them a value is a typo
    # or a unit mistake, not a datacenter.
    "host_cores": Limit("DCSIM_MAX_HOST_CORES", 4096, "cores in one host"),
    "host_dimms": Limit("DCSIM_MAX_HOST_DIMMS", 1024, "DIMMs in one host"),
    "memory": Limit("DCSIM_MAX_MEMORY", 64 * 1024**4, "bytes of memory in one host or VM"),
    "bandwidth": Limit("DCSIM_MAX_BANDWIDTH", 1.25e15, "bytes/s through one NIC, link, disk or storage system"),
    "capacity": Limit("DCSIM_MAX_CAPACITY", 16 * 1024**6, "bytes in one disk or storage system"),
    "heartbeat_s": Limit("DCSIM_MAX_HEARTBEAT", 86400, "seconds between two heartbeats"),
    "missed_heartbeats": Limit("DCSIM_MAX_MISSED_HEARTBEATS", 1000, "heartbeats missed before a failure is declared"),
    "session_capacity": Limit("DCSIM_MAX_SESSION_CAPACITY", 1_000_000, "concurrent sessions on one VM"),
}
MIN_VM_MEMORY = 1024**2  # 1 MiB: below it no guest OS boots (docs/limits.md)


def plausible(key: str, unit: str, why: str):
    """A pydantic after-validator: the value at most ``limit(key)`` (``unit`` names it in the message)."""

    def check(value: float) -> float:
        top = limit(key)
        if value > top:
            raise ValueError(f"expected at most {number(top)} {unit} ({why}; {LIMITS[key].env} raises it)")
        return value

    return check


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
