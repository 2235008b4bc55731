"""Declared schemas of every result table: snake_case columns, units in names, scalars only.

A table is written even when empty, with these columns. Every record table has
``time_s`` and the subject's name. dtypes: "f8" float seconds/bytes, "i8" integer,
"str" text, "bool" flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]
    names: tuple[str, ...] = field(init=False)  # column names, in order

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(c for c, _ in self.columns))


def _t(name: str, *cols: str) -> Table:
    out = []
    for c in cols:
        col, _, dtype = c.partition(":")
        out.append((col, dtype or "f8"))
    return Table(name, tuple(out))


INCIDENTS = _t(
    "incidents",
    "subject:str", "cause:str", "mechanism:str", "start_s", "end_s", "downtime_s", "outcome:str",
)
LEVELS = _t("levels", "time_s", "entity:str", "metric:str", "value")
EVENTS = _t("events", "time_s", "mechanism:str", "kind:str", "subject:str", "detail:str")

# Faults as injected (one row per fault occurrence); `target` is the host, domain, link, ... name.
FAULTS = _t("faults", "time_s", "kind:str", "target:str", "repair_s", "end_s")
# Default recovery: a stopped VM brought back by restart (in place or on another host).
RESTARTS = _t(
    "restarts", "time_s", "vm:str", "cause:str", "from_host:str", "to_host:str",
    "waited_s", "downtime_s",
)
# Operations as carried out: outcome "done" or "failed" with a reason.
OPERATIONS = _t("operations", "time_s", "kind:str", "subject:str", "outcome:str", "detail:str")

# Where each VM ran (the ``placements`` table): one row per initial placement, restart, migration or move.
# reason: "initial", "restart", "migration", "move" (a mechanism relocated it), "build" (a
# mechanism's own VM placed before time 0).
PLACEMENTS = _t("placements", "time_s", "vm:str", "host:str", "reason:str")

# Tables of the platform (faults, recovery, operations, placement); each mechanism declares its own.
CORE_TABLES: tuple[Table, ...] = (INCIDENTS, LEVELS, FAULTS, RESTARTS, OPERATIONS, PLACEMENTS)
ALL_TABLES: dict[str, Table] = {t.name: t for t in (*CORE_TABLES, EVENTS)}


def table(name: str, *cols: str) -> Table:
    """A table schema: ``table("backups", "time_s", "vm:str", "bytes", "rounds:i8")`` (dtype after
    the colon: ``f8`` (default), ``i8``, ``str``, ``bool``)."""
    return _t(name, *cols)
