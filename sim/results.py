"""Result folders: atomic Parquet/JSON writing, and ``load()`` for notebooks.

Every file is written to a temporary name in the same folder and renamed into place,
so a run that dies leaves no half-written file under its final name. ``summary.json``
is written last: a folder without it is an incomplete run. A non-empty folder is
never written into without ``force``.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.core.errors import InputError, Problem

SUMMARY = "summary.json"
RESOLVED = "scenario.resolved.yaml"


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text(path: Path, text: str) -> None:
    def w(tmp):
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
    _atomic(Path(path), w)


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_parquet(path: Path, df: pd.DataFrame) -> None:
    table = pa.Table.from_pandas(df, preserve_index=False)
    _atomic(Path(path), lambda tmp: pq.write_table(table, tmp))


def prepare_dir(out: str | os.PathLike | None, name: str, force: bool, root: str | os.PathLike = "results"
                ) -> Path:
    """The folder a run writes to; refuses a non-empty one without ``force`` (exit 2)."""
    if out is None:
        base = Path(root) / name
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = base / stamp
        k = 1
        while path.exists():
            path = base / f"{stamp}-{k}"
            k += 1
    else:
        path = Path(out)
    if path.exists() and not path.is_dir():
        raise InputError(str(path), [Problem("", "expected a folder for results, got a file")])
    if path.is_dir() and any(path.iterdir()):
        if not force:
            raise InputError(str(path), [Problem(
                "", "expected an empty or new folder for results, got a folder with files (use --force)")])
        # An overwritten folder must not look complete until the new run finishes.
        (path / SUMMARY).unlink(missing_ok=True)
        for old in path.glob("*.parquet"):
            old.unlink()
    path.mkdir(parents=True, exist_ok=True)
    return path


def link_latest(path: Path) -> None:
    """Point ``<parent>/latest`` at ``path`` (atomically replaced symlink)."""
    parent = path.parent
    tmp = parent / f".latest.{os.getpid()}"
    try:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        tmp.symlink_to(path.name, target_is_directory=True)
        os.replace(tmp, parent / "latest")
    except OSError:
        if tmp.is_symlink():
            tmp.unlink()


def write_run(path: Path, tables: dict[str, pd.DataFrame], summary: dict[str, Any], resolved_yaml: str) -> None:
    """Every table, the resolved scenario, then summary.json last."""
    write_text(path / RESOLVED, resolved_yaml)
    for name, df in tables.items():
        write_parquet(path / f"{name}.parquet", df)
    write_json(path / SUMMARY, summary)


class Results(dict):
    """Tables of a run folder by name (``res["incidents"]``), plus ``summary`` and ``metrics``."""

    summary: dict[str, Any]

    @property
    def metrics(self) -> dict[str, float]:
        return self.summary.get("metrics", {})


def load(path: str | os.PathLike) -> Results:
    """The tables of a run folder (or a sweep folder: ``runs`` and ``points``) as DataFrames."""
    path = Path(path)
    if not (path / SUMMARY).exists() and not (path / "runs.parquet").exists() and (path / "latest").exists():
        path = path / "latest"  # a scenario's folder: its newest run
    out = Results()
    for f in sorted(path.glob("*.parquet")):
        out[f.stem] = pd.read_parquet(f)
    summary = path / SUMMARY
    out.summary = json.loads(summary.read_text()) if summary.exists() else {}
    return out
