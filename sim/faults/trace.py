"""Failure traces: read, check and prepare a trace for replay; write a run's faults as one.

A trace is a CSV or Parquet table with one row per fault: ``node``, ``start``, ``end`` and
optionally ``kind`` (a fault kind, default ``host_crash``); other columns are ignored.

- ``node``: a target's name, or an integer index into the selected targets of the record's
  kind in name order (the entry's ``hosts``, ``domains``, ``sites``, ``links``, ``storage`` or
  ``vms`` selector, all by default).
- ``start``/``end``: seconds from time 0, durations with units (``3h``), or ISO timestamps
  (``2024-03-01T12:00:00Z``, naive ones are UTC) when the entry names time 0 with ``origin``.

Everything is vectorised (pandas, numpy) when the run is built, never per event:
``load(spec, ...)`` reads the file, checks every record, applies ``scale`` (times multiplied),
``repeat`` (copies every ``period``, default the scaled trace's last end) and ``offset`` (added),
drops the records that fall outside the run (counted), and merges the overlapping or touching
records of one node and kind into one outage. The result holds, per kind, each target's
outages as sorted arrays; the injector replays each target as one chain of timeouts (one
event at each outage's start and one at its end, nothing per dropped or merged record).

Problems are input errors naming the trace file, the line (CSV: the file's line, the header
being line 1; Parquet: row + 1, so the first record is line 2 either way) and the column;
a missing or unreadable file names the scenario's ``faults.<i>.path``.

``to_trace(faults)`` turns a run's ``faults`` table into a trace (``dcsim trace export``):
replayed with the same scenario and no random faults, it reproduces the run's faults.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.core.errors import InputError, Problem, show
from sim.core.units import parse_duration
from sim.scenario.schema import TRACE_SELECTORS

__all__ = ["Replay", "KindOutages", "load", "read_table", "seconds", "to_trace", "TRACE_COLUMNS", "MAX_PROBLEMS"]

TRACE_COLUMNS = ("node", "start", "end", "kind")
MAX_PROBLEMS = 20  # problems listed per file; the rest are counted
DEFAULT_KIND = "host_crash"

_UNIT_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "hr": 3600.0,
           "d": 86400.0, "w": 7 * 86400.0, "y": 365 * 86400.0, "yr": 365 * 86400.0}
_SIMPLE = r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([a-z]+)\s*$"


@dataclass
class KindOutages:
    """One kind's merged outages: ``node`` indexes ``targets``; sorted by (node, start)."""

    targets: list[str]
    node: np.ndarray
    start: np.ndarray
    end: np.ndarray


@dataclass
class Replay:
    """A trace ready for replay, with its counts (records in the file, copies made by
    ``repeat``, copies dropped outside the run, outages after merging)."""

    path: str
    kinds: dict[str, KindOutages] = field(default_factory=dict)
    records: int = 0
    copies: int = 0
    dropped: int = 0
    outages: int = 0


class _Problems:
    """Problems of one file, by (line, column); at most MAX_PROBLEMS listed, the rest counted."""

    def __init__(self, source: str, line_of: np.ndarray):
        self.source = source
        self.line_of = line_of
        self.found: list[tuple[int, str, str]] = []
        self.more = 0

    def add(self, rows: np.ndarray, column: str, message: Callable[[int], str]) -> None:
        rows = np.flatnonzero(rows) if rows.dtype == bool else rows
        room = max(0, MAX_PROBLEMS - len(self.found))
        for r in rows[:room]:
            self.found.append((int(self.line_of[r]), column, message(int(r))))
        self.more += max(0, len(rows) - room)

    def raise_any(self) -> None:
        if not self.found:
            return
        self.found.sort(key=lambda p: p[0])
        problems = [Problem(f"line {line}, column {col}", msg) for line, col, msg in self.found]
        if self.more:
            problems.append(Problem("", f"expected valid records, got {self.more} more problems like these"))
        raise InputError(self.source, problems)


# --------------------------------------------------------------------------- reading
def read_table(path: Path, source: str, where: str) -> tuple[pd.DataFrame, np.ndarray]:
    """(table, line of each row) of a CSV or Parquet trace; blank CSV lines are skipped but counted.

    ``source``/``where`` name the scenario file and the entry's ``path`` field for a file that
    cannot be read."""
    if not path.is_file():
        raise InputError(source, [Problem(where, f"expected a readable trace file (CSV or Parquet), got "
                                                 f"{show(str(path))} (no such file)")])
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            table = pd.read_parquet(path)
            table.columns = [str(c) for c in table.columns]
        else:
            table = pd.read_csv(path, skip_blank_lines=False, dtype={"node": str, "kind": str},
                                low_memory=False)
            table.columns = [str(c).strip() for c in table.columns]
    except (OSError, ValueError, ImportError) as exc:
        text = " ".join(str(exc).split())[:200]
        raise InputError(source, [Problem(where, f"expected a readable trace file (CSV or Parquet), got "
                                                 f"{show(str(path))} ({type(exc).__name__}: {text})")]) from None
    lines = np.arange(len(table), dtype=np.int64) + 2  # the header is line 1
    if len(table) and path.suffix.lower() not in (".parquet", ".pq"):
        blank = table.isna().all(axis=1).to_numpy()
        if blank.any():
            table = table.loc[~blank].reset_index(drop=True)
            lines = lines[~blank]
    return table, lines


def seconds(values: pd.Series, origin: pd.Timestamp | None) -> tuple[np.ndarray, np.ndarray]:
    """(seconds, ok) of a time column: numbers (seconds), durations with units, or ISO timestamps
    (seconds after ``origin``; without one an ISO time is not ok)."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        out = values.to_numpy(dtype=float)
        return out, np.isfinite(out)
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        if origin is None:
            return np.full(len(values), np.nan), np.zeros(len(values), dtype=bool)
        ts = values.dt.tz_localize("UTC") if values.dt.tz is None else values.dt.tz_convert("UTC")
        out = ((ts - origin) / pd.Timedelta(seconds=1)).to_numpy(dtype=float)
        return out, np.isfinite(out)
    text = values.astype("string").str.strip()
    out = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
    rest = ~np.isfinite(out) & text.notna().to_numpy()
    if rest.any():
        sub = text[rest]
        parts = sub.str.extract(_SIMPLE)
        factor = parts[1].map(_UNIT_S).to_numpy(dtype=float)
        value = pd.to_numeric(parts[0], errors="coerce").to_numpy(dtype=float) * factor
        got = np.isfinite(value)
        idx = np.flatnonzero(rest)
        out[idx[got]] = value[got]
        left = idx[~got]
        if len(left):
            uniques = pd.unique(text.iloc[left])
            parsed = {}
            for u in uniques:  # compound durations (2d2h30m) through the unit parser, once each
                try:
                    parsed[u] = parse_duration(u)
                except ValueError:
                    parsed[u] = np.nan
            val = text.iloc[left].map(parsed).to_numpy(dtype=float)
            out[left] = val
            left = left[~np.isfinite(val)]
        if len(left) and origin is not None:
            ts = pd.to_datetime(text.iloc[left], utc=True, errors="coerce", format="ISO8601")
            out[left] = ((ts - origin) / pd.Timedelta(seconds=1)).to_numpy(dtype=float)
    return out, np.isfinite(out)


def _origin(value: str | None) -> pd.Timestamp | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


# --------------------------------------------------------------------------- loading
def load(spec: Any, index: int, scenario_source: str, duration: float,
         targets_of: Callable[[str, Sequence[str]], list[str]]) -> Replay:
    """Read, check and prepare the trace of fault entry ``index`` (``spec``, a ``TraceReplay``).

    ``targets_of(kind, globs)`` returns the selected targets of a kind in name order.
    ``duration`` is the run's: outages starting after it are dropped (and counted).
    """
    base = Path(scenario_source).parent
    path = Path(spec.path) if Path(spec.path).is_absolute() else base / spec.path
    where = f"faults.{index}.path"
    table, lines = read_table(path, scenario_source, where)
    source = str(path)
    missing = [c for c in ("node", "start", "end") if c not in table.columns]
    if missing:
        raise InputError(source, [Problem("line 1", f"expected columns node, start, end (and optionally kind), "
                                                    f"got {', '.join(map(str, table.columns)) or 'none'}")])
    problems = _Problems(source, lines)
    n = len(table)
    origin = _origin(spec.origin)
    start, ok_start = seconds(table["start"], origin)
    end, ok_end = seconds(table["end"], origin)
    hint = "" if origin is not None else " (ISO timestamps need origin: in the fault entry)"
    for column, ok in (("start", ok_start), ("end", ok_end)):
        raw = table[column]
        problems.add(~ok, column, lambda r, raw=raw: f"expected seconds, a duration like \"3h\" or an ISO "
                                                     f"timestamp{hint}, got {_cell(raw.iloc[r])}")
    backwards = ok_start & ok_end & (end < start)
    problems.add(backwards, "end", lambda r: f"expected an end not before the start ({start[r]:g} s), "
                                             f"got {end[r]:g} s")

    if "kind" in table.columns:  # through categories: a trace has few distinct kinds
        cat = table["kind"].astype("category")
        names = [str(c).strip() for c in cat.cat.categories]
        codes = cat.cat.codes.to_numpy()
        kinds = np.array([*names, DEFAULT_KIND], dtype=object)[np.where(codes < 0, len(names), codes)]
    else:
        kinds = np.full(n, DEFAULT_KIND, dtype=object)
    known = pd.Series(kinds).isin(list(TRACE_SELECTORS)).to_numpy()
    allowed = ", ".join(TRACE_SELECTORS)
    problems.add(~known, "kind", lambda r: f"expected one of {allowed}, got {show(kinds[r])}")

    node_col = table["node"]
    node = np.full(n, -1, dtype=np.int64)
    replay = Replay(source, records=n)
    for kind in TRACE_SELECTORS:
        rows = np.flatnonzero(kinds == kind)
        if not len(rows):
            continue
        selector = TRACE_SELECTORS[kind]
        targets = targets_of(kind, getattr(spec, selector))
        replay.kinds[kind] = KindOutages(targets, np.empty(0, np.int64), np.empty(0), np.empty(0))
        node[rows] = _nodes(node_col, rows, targets, problems, f"faults.{index}.{selector}")
    problems.raise_any()

    # scale, repeat every period, offset; then drop what falls outside the run
    start = start * float(spec.scale)
    end = end * float(spec.scale)
    period = float(spec.period) if spec.period is not None else (float(end.max()) if n else 0.0)
    copies = int(spec.repeat)
    shift = np.repeat(np.arange(copies, dtype=float) * period, n) + float(spec.offset)
    start = np.tile(start, copies) + shift
    end = np.tile(end, copies) + shift
    node = np.tile(node, copies)
    kinds = np.tile(kinds, copies)
    replay.copies = n * copies
    keep = (start <= duration) & ((end > 0) | (start >= 0))
    replay.dropped = int((~keep).sum())
    start, end, node, kinds = np.maximum(start[keep], 0.0), end[keep], node[keep], kinds[keep]
    for kind, out in replay.kinds.items():
        sel = kinds == kind
        out.node, out.start, out.end = _merge(node[sel], start[sel], end[sel])
        replay.outages += len(out.node)
    return replay


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return "nothing"
    return show(value if isinstance(value, str) else str(value))


def _nodes(column: pd.Series, rows: np.ndarray, targets: list[str], problems: _Problems,
           selector: str) -> np.ndarray:
    """Target indices of the ``node`` values at ``rows`` (names or integer indices); problems for the rest."""
    values = column.iloc[rows]
    if pd.api.types.is_integer_dtype(values.dtype):
        idx = values.to_numpy(dtype=np.int64)
        numeric = np.ones(len(idx), dtype=bool)
    else:
        idx = pd.Index(targets).get_indexer(values.to_numpy(dtype=object)).astype(np.int64)
        numeric = np.zeros(len(idx), dtype=bool)
        missed = np.flatnonzero(idx < 0)
        if len(missed):  # only where the value is not a name as it stands: stripped, or an index
            text = values.iloc[missed].astype("string").str.strip()
            idx[missed] = pd.Index(targets).get_indexer(text.fillna("").to_numpy(dtype=object))
            digits = text.str.fullmatch(r"[-+]?\d+").fillna(False).to_numpy(dtype=bool) & (idx[missed] < 0)
            numeric[missed[digits]] = True
            idx[missed[digits]] = pd.to_numeric(text[digits]).to_numpy(dtype=np.int64)
        unknown = (idx < 0) & ~numeric
        example = f' like "{targets[0]}"' if targets else ""
        problems.add(rows[unknown], "node", lambda r: f"expected a name of the targets {selector} selects{example} "
                                                      f"or an index below {len(targets)}, got {_cell(column.iloc[r])}")
        idx[unknown] = 0
    beyond = numeric & ((idx < 0) | (idx >= len(targets)))
    problems.add(rows[beyond], "node", lambda r: f"expected an index below {len(targets)} (the targets "
                                                 f"{selector} selects), got {_cell(column.iloc[r])}")
    return np.where(beyond, 0, idx)


def _merge(node: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Overlapping or touching intervals of one node merged into one; sorted by (node, start)."""
    if not len(node):
        return node, start, end
    order = np.lexsort((start, node))
    node, start, end = node[order], start[order], end[order]
    first = np.r_[True, node[1:] != node[:-1]]
    # The furthest end so far within each node: a running max restarted at each node.
    reach = pd.Series(end).groupby(np.cumsum(first)).cummax().to_numpy()
    new = first.copy()
    new[1:] |= start[1:] > reach[:-1]
    heads = np.flatnonzero(new)
    return node[heads], start[heads], np.maximum.reduceat(end, heads)


# --------------------------------------------------------------------------- export
def to_trace(faults: pd.DataFrame) -> pd.DataFrame:
    """A run's ``faults`` table as a trace (``node, start, end, kind``), in time order; kinds a trace
    cannot replay (``image_drift``: its random component is not in the table) are left out."""
    kept = faults[faults["kind"].isin(list(TRACE_SELECTORS))]
    out = pd.DataFrame({
        "node": kept["target"].astype(str).to_numpy(),
        "start": kept["time_s"].astype(float).to_numpy(),
        "end": kept["end_s"].astype(float).to_numpy(),
        "kind": kept["kind"].astype(str).to_numpy(),
    })
    return out.sort_values(["start", "node"], kind="stable").reset_index(drop=True)

