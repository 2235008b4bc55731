"""Result folders: atomic Parquet/JSON writing, and ``load()`` for notebooks.

Every file is written to a temporary name in the same folder and renamed into place,
so a run that dies leaves no half-written file under its final name; files get the
mode the umask gives (0666 & ~umask), not the 0600 of a temporary file.
``summary.json`` is written last: a folder without it is an incomplete run.

``prepare_dir`` checks the output folder before the run starts (an empty ``--out``,
a file, a FIFO, an unwritable or uncreatable folder are input errors, exit 2) and
never deletes anything. A non-empty folder is refused without ``force``; with it, the
folder must be provably a previous run: its ``summary.json`` carries the run marker
(``"kind": "dcsim run"``, written by ``write_run``) and nothing else is there but the
run's own files (and its ``report/``). The new run is written beside it
(``.<name>.new-<pid>``) and swapped in by ``RunDir.commit()`` once complete, so a
run that dies leaves the previous complete run in place. The default folder is
``results/<slug>/<time>``, the slug made of the scenario name's letters, digits,
``.``, ``_`` and ``-`` (docs/limits.md), so nothing is written outside ``results/``.

``check_output_file`` and ``prepare_report_dir`` apply the same rules to ``--json`` files
and ``report --out`` folders. ``code_fingerprint()`` (package version + a hash of the
``sim/`` sources) goes into every run's ``summary.json`` and every sweep's ``sweep.json``.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.core.errors import InputError, Problem, show

SUMMARY = "summary.json"
RESOLVED = "scenario.resolved.yaml"
RUN_KIND = "dcsim run"  # summary.json's "kind": the marker that makes a folder replaceable by --force


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> dict[str, str]:
    """The code that produced a result: the package version and a SHA-256 over the relative path
    and bytes of every ``.py`` file under ``sim/`` (sorted), so any edit of the model changes it."""
    import sim

    return {"version": str(sim.__version__), "sim_sha256": tree_sha256(Path(sim.__file__).resolve().parent)}


def tree_sha256(root: Path) -> str:
    """SHA-256 over ``relative/path.py NUL bytes NUL`` of every ``.py`` file under ``root``, sorted
    by relative path (``__pycache__`` left out)."""
    digest = hashlib.sha256()
    files = sorted((f.relative_to(root).as_posix(), f) for f in root.rglob("*.py") if "__pycache__" not in f.parts)
    for rel, file in files:
        digest.update(rel.encode() + b"\0")
        digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()


def describe_code(code: Any) -> str:
    """``dcsim 0.1.0, sim/ 1a2b3c4d5e6f`` for a fingerprint (``unknown code`` for anything else)."""
    if isinstance(code, dict) and isinstance(code.get("version"), str) and isinstance(code.get("sim_sha256"), str):
        return f"dcsim {code['version']}, sim/ {code['sim_sha256'][:12]}"
    return "unknown code (no fingerprint)"


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (``/proc/self/status``)."""
    with contextlib.suppress(OSError, ValueError):  # no /proc: set and restore it below
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; result files follow the umask
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


_OURS = re.compile(r"^(summary\.json|scenario\.resolved\.yaml|[A-Za-z0-9_]+\.parquet|\..+\.tmp)$")
_SLUG_DROP = re.compile(r"[^A-Za-z0-9._-]+")
SLUG_MAX = 100


def slug(name: str) -> str:
    """A scenario name as a folder name: runs of other characters become ``-``, no leading dots or
    dashes, at most 100 characters; ``scenario`` when nothing is left (``..`` -> ``scenario``)."""
    text = _SLUG_DROP.sub("-", name).lstrip(".-")[:SLUG_MAX].rstrip("-")
    return text or "scenario"


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "something that is not a folder"


@dataclass
class RunDir:
    """Where a run writes (``staging``) and where its results end up (``path``).

    ``staging`` is ``path`` unless a previous run is being replaced (``--force``): then it
    is a hidden sibling, swapped in by ``commit()`` once the run is complete.
    """

    path: Path
    staging: Path

    @property
    def replacing(self) -> bool:
        return self.staging != self.path

    def commit(self) -> None:
        """Puts the complete new run at ``path``; the previous run is removed only after that."""
        if not self.replacing:
            return
        if _exchange(self.staging, self.path):
            shutil.rmtree(self.staging, ignore_errors=True)  # it now holds the previous run
            return
        old = self.path.parent / f".{self.path.name}.old-{os.getpid()}"
        os.rename(self.path, old)
        os.rename(self.staging, self.path)
        shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        """Removes an unfinished replacement (the previous run stays as it was)."""
        if self.replacing:
            shutil.rmtree(self.staging, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swaps two paths (Linux ``renameat2(RENAME_EXCHANGE)``); False where unavailable."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def prepare_dir(out: str | os.PathLike | None, name: str, force: bool, root: str | os.PathLike = "results"
                ) -> RunDir:
    """The folder a run writes to, checked before the run starts; deletes nothing.

    Input errors (exit 2, source: the folder): an empty ``--out``; a path that exists and
    is not a folder (a file, a FIFO, a symlink loop); a folder that cannot be created or
    written; a non-empty folder without ``force``; with ``force``, a folder holding
    anything but a previous run's files.
    """
    if out is not None and not os.fspath(out):
        raise InputError("--out", [Problem("", 'expected a folder path, got ""')])
    if out is None:
        base = Path(root) / slug(name)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = base / stamp
        k = 1
        while os.path.lexists(path):
            path = base / f"{stamp}-{k}"
            k += 1
    else:
        path = Path(out)
    source = str(path)

    def refuse(message: str) -> InputError:
        return InputError(source, [Problem("", message)])

    def failed(what: str, exc: OSError) -> InputError:
        return refuse(f"expected a folder that can be {what}, got an error ({exc.strerror or exc})")

    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:  # a symlink loop, a name too long, a file where a folder should be
        if exc.errno == errno.ENOTDIR:
            raise refuse("expected a folder for results, got a path under a file") from None
        raise failed("used", exc) from None
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise refuse(f"expected a folder for results, got {_kind(st.st_mode)}")
    if st is None:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if exc.errno in (errno.ENOTDIR, errno.EEXIST):
                raise refuse("expected a folder for results, got a path under a file") from None
            raise failed("created", exc) from None
        entries: list[str] = []
    else:
        try:
            entries = sorted(os.listdir(path))
        except OSError as exc:
            raise failed("read", exc) from None
    if not entries:
        _probe(path, failed)
        return RunDir(path, path)
    if not force:
        raise refuse("expected an empty or new folder for results, got a folder with files (use --force)")
    foreign = [e for e in entries if not (_OURS.match(e) and _regular(path / e)) and not _report_dir(path / e)]
    if foreign:
        raise refuse(f"expected a folder holding only a previous run's files to replace (--force), got other "
                     f"files too (\"{foreign[0]}\"); move them or choose another --out")
    if not is_run_folder(path):
        listed = ", ".join(f'"{e}"' for e in entries[:3]) + (f" and {len(entries) - 3} more" if len(entries) > 3 else "")
        raise refuse(f"expected a previous dcsim run to replace (--force: its {SUMMARY} with \"kind\": "
                     f"\"{RUN_KIND}\"), got a folder without one holding {listed}; move them or choose another --out")
    real = Path(os.path.realpath(path))  # a symlink to a run folder: replace the folder it points at
    staging = real.parent / f".{real.name}.new-{os.getpid()}"
    try:
        if os.path.lexists(staging):
            shutil.rmtree(staging)
        os.mkdir(staging)
    except OSError as exc:
        raise failed("replaced (its parent must be writable)", exc) from None
    _probe(staging, failed)
    return RunDir(real, staging)


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def is_run_folder(path: Path) -> bool:
    """True when ``path/summary.json`` is a regular file holding a JSON object with the run marker."""
    summary = Path(path) / SUMMARY
    if not _regular(summary):
        return False
    try:
        data = json.loads(summary.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("kind") == RUN_KIND


def _report_file(path: Path) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9_.-]+\.(png|html)|\..+\.tmp", path.name)) and _regular(path)


def _report_dir(path: Path, any_name: bool = False) -> bool:
    """``dcsim report``'s folder (regular PNG and HTML files only); inside a run folder it is named
    ``report`` and is replaced with the run."""
    if (path.name != "report" and not any_name) or path.is_symlink() or not path.is_dir():
        return False
    return all(_report_file(path / e) for e in os.listdir(path))


def _probe(path: Path, failed) -> None:
    """Creates and removes a file in ``path``: the one honest test that it can be written."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".dcsim-probe-", dir=path)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise failed("written", exc) from None


def _lstat(path: Path, refuse, failed, what: str) -> os.stat_result | None:
    """``os.lstat`` (None when nothing is there); a path under a file or an error is refused."""
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            raise refuse(f"expected {what}, got a path under a file") from None
        raise failed("used", exc) from None


def check_output_file(out: str | os.PathLike, flag: str) -> Path:
    """A file a command will write (``--json``), checked before any work: an existing regular file
    (replaced atomically) or a new name in an existing, writable folder. An empty path, a folder, a
    device, a FIFO, a socket, a symlink, a path under a file or an unwritable folder is an input
    error (source: the path, or ``flag`` for an empty one); nothing is created."""
    if not os.fspath(out):
        raise InputError(flag, [Problem("", 'expected a file path, got ""')])
    path = Path(out)
    what = "a regular file or a new file name"

    def refuse(message: str) -> InputError:
        return InputError(str(path), [Problem("", message)])

    def failed(verb: str, exc: OSError) -> InputError:
        return refuse(f"expected a file that can be {verb}, got an error ({exc.strerror or exc})")

    st = _lstat(path, refuse, failed, what)
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            raise refuse(f"expected {what}, got a symlink (write to the file it points at instead)")
        if stat.S_ISDIR(st.st_mode):
            raise refuse(f"expected {what}, got a folder")
        if not stat.S_ISREG(st.st_mode):
            raise refuse(f"expected {what}, got {_kind(st.st_mode)}")
    parent = path.parent
    pst = _lstat(parent, refuse, failed, what)
    if pst is None or not os.path.isdir(parent):
        raise refuse(f"expected a file in an existing folder, got no folder {show(str(parent))}")
    _probe(parent, lambda verb, exc: failed("written (its folder must be writable)", exc))
    return path


def prepare_report_dir(out: str | os.PathLike | None, default: Path) -> Path:
    """The folder ``dcsim report`` writes (``--out`` or ``default``), checked before anything is
    drawn, with ``run --out``'s rules: an empty path, something that is not a folder, a symlink or
    an unwritable place is an input error; an existing folder must be empty or hold only an earlier
    report (PNG and HTML files), else it is refused naming what is there. Creates it when new."""
    if out is not None and not os.fspath(out):
        raise InputError("--out", [Problem("", 'expected a folder path, got ""')])
    path = Path(out) if out is not None else default
    what = "a folder for the report"

    def refuse(message: str) -> InputError:
        return InputError(str(path), [Problem("", message)])

    def failed(verb: str, exc: OSError) -> InputError:
        return refuse(f"expected a folder that can be {verb}, got an error ({exc.strerror or exc})")

    st = _lstat(path, refuse, failed, what)
    if st is None:
        try:
            path.mkdir(parents=True)
        except OSError as exc:
            if exc.errno in (errno.ENOTDIR, errno.EEXIST):
                raise refuse(f"expected {what}, got a path under a file") from None
            raise failed("created", exc) from None
    elif stat.S_ISLNK(st.st_mode):
        raise refuse(f"expected {what}, got a symlink")
    elif not stat.S_ISDIR(st.st_mode):
        raise refuse(f"expected {what}, got {_kind(st.st_mode)}")
    else:
        try:
            entries = sorted(os.listdir(path))
        except OSError as exc:
            raise failed("read", exc) from None
        if entries and not _report_dir(path, any_name=True):
            theirs = [e for e in entries if not _report_file(path / e)]
            raise refuse(f"expected an empty folder or an earlier report to replace, got a folder holding "
                         f"\"{theirs[0]}\"; choose another --out")
    _probe(path, failed)
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
    """Every table, the resolved scenario, then summary.json last (with the run marker and the
    code fingerprint)."""
    write_text(path / RESOLVED, resolved_yaml)
    for name, df in tables.items():
        write_parquet(path / f"{name}.parquet", df)
    write_json(path / SUMMARY, {"kind": RUN_KIND, **summary, "code": code_fingerprint()})


class Results(dict):
    """Tables of a run folder by name (``res["incidents"]``), plus ``summary``, ``metrics`` and
    ``skipped`` (one line per damaged file left out: ``FILE: expected ..., got ...``)."""

    summary: dict[str, Any]
    skipped: list[str]

    @property
    def metrics(self) -> dict[str, float]:
        return self.summary.get("metrics", {})


def _declared_columns() -> dict[str, tuple[str, ...]]:
    """Declared columns of every table (core and registered mechanisms), by table name."""
    from sim.metrics.tables import ALL_TABLES

    out = {name: t.names for name, t in ALL_TABLES.items()}
    with contextlib.suppress(ImportError, AttributeError):
        from sim.mechanisms.registry import REGISTRY

        out.update({t.name: t.names for t in REGISTRY.tables()})
    return out


def _read_table(f: Path, required: tuple[str, ...] = ()) -> tuple[pd.DataFrame | None, str]:
    """(table, "") or (None, why) for a Parquet file that cannot be read or lacks a column."""
    if not _regular(f):
        return None, "something that is not a file"
    try:
        df = pd.read_parquet(f)
    except (pa.ArrowException, OSError, ValueError) as exc:  # empty, truncated or garbage files
        return None, f"a file that is not a readable Parquet table ({' '.join(str(exc).split())[:100]})"
    missing = [c for c in required if c not in df.columns]
    if missing:
        return None, f"a table without the column{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
    return df, ""


def _read_summary(f: Path) -> tuple[dict[str, Any], list[str]]:
    """summary.json as a mapping, its non-numeric metrics left out (one line each in the list).
    InputError when it is not a JSON object: a run folder without a summary is not a run."""
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not JSON"
        raise InputError(str(f), [Problem("", f"expected a run's summary (a JSON object), got a damaged file "
                                              f"({why})")]) from None
    if not isinstance(data, dict):
        raise InputError(str(f), [Problem("", f"expected a run's summary (a JSON object), got {show(data)}")])
    notes: list[str] = []
    metrics = data.get("metrics", {})
    if not isinstance(metrics, dict):
        notes.append(f"{f}: metrics: expected a mapping of names to numbers, got {show(metrics)} (skipped)")
        metrics = {}
    kept = {}
    for name, value in metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            kept[name] = value
        else:
            notes.append(f"{f}: metrics.{name}: expected a number, got {show(value)} (skipped)")
    return {**data, "metrics": kept}, notes


def load(path: str | os.PathLike) -> Results:
    """The tables of a run folder (or a sweep folder: ``runs`` and ``points``) as DataFrames. A
    damaged table (not Parquet, or missing a declared column) is left out and named in ``skipped``;
    a ``summary.json`` that is not a JSON object is an InputError.
    FileNotFoundError when the folder does not exist."""
    path = Path(path)
    if not (path / SUMMARY).exists() and not (path / "runs.parquet").exists() and (path / "latest").exists():
        path = path / "latest"  # a scenario's folder: its newest run
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such run folder")
    out = Results()
    out.skipped = []
    declared = _declared_columns()
    for f in sorted(path.glob("*.parquet")):
        df, why = _read_table(f, declared.get(f.stem, ()))
        if df is None:
            out.skipped.append(f"{f}: expected a {f.stem} table, got {why} (skipped)")
            continue
        out[f.stem] = df
    summary = path / SUMMARY
    out.summary = {}
    if os.path.lexists(summary):
        out.summary, notes = _read_summary(summary)
        out.skipped.extend(notes)
    return out


RUNS_COLUMNS = ("run_id", "point_id", "seed", "status")


class SweepResults(dict):
    """A sweep (or compare) folder's tables by name (``runs``, ``points``, ``compare`` when present),
    plus ``info`` (sweep.json), ``paths`` (the swept dotted paths), ``metrics``, ``run(run_id)``
    and ``skipped`` (damaged files left out, one line each)."""

    path: Path
    info: dict[str, Any]
    paths: list[str]
    skipped: list[str]

    @property
    def metrics(self) -> list[str]:
        fixed = {"run_id", "point_id", "replication", "seed", "status", "error", *self.paths}
        return [c for c in self["runs"].columns if c not in fixed]

    def run(self, run_id: str) -> Results:
        """One run's tables (``runs/<run id>/``)."""
        return load(self.path / "runs" / run_id)


def load_sweep(path: str | os.PathLike) -> SweepResults:
    """The tables of a sweep folder (``dcsim sweep`` or ``dcsim compare``); a scenario's or sweep's
    folder holding ``latest`` means its newest. FileNotFoundError when it holds no runs.parquet."""
    path = Path(path)
    if not (path / "runs.parquet").exists() and (path / "latest" / "runs.parquet").exists():
        path = path / "latest"
    if not (path / "runs.parquet").exists():
        raise FileNotFoundError(f"{path}: not a sweep folder (no runs.parquet)")
    out = SweepResults()
    out.skipped = []
    for f in sorted(path.glob("*.parquet")):
        required = RUNS_COLUMNS if f.stem == "runs" else ("point_id",) if f.stem == "points" else \
            ("metric",) if f.stem == "compare" else ()
        df, why = _read_table(f, required)
        if df is None:
            if f.stem == "runs":  # nothing to report without it
                raise InputError(str(f), [Problem("", f"expected the sweep's runs table, got {why}")])
            out.skipped.append(f"{f}: expected a {f.stem} table, got {why} (skipped)")
            continue
        out[f.stem] = df
    info = path / "sweep.json"
    out.path = path
    out.info = {}
    if os.path.lexists(info):
        try:
            out.info = json.loads(info.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            out.skipped.append(f"{info}: expected the sweep's description (JSON), got a damaged file (skipped)")
        if not isinstance(out.info, dict):
            out.skipped.append(f"{info}: expected the sweep's description (a JSON object), got {show(out.info)} "
                               "(skipped)")
            out.info = {}
    paths = out.info.get("paths", [])
    out.paths = [p for p in paths if isinstance(p, str)] if isinstance(paths, list) else []
    runs = out["runs"]
    fixed = {"run_id", "point_id", "replication", "seed", "status", "error", *out.paths}
    bad = [c for c in runs.columns if c not in fixed and not pd.api.types.is_numeric_dtype(runs[c])]
    for c in bad:
        out.skipped.append(f"{path / 'runs.parquet'}: {c}: expected a metric (numbers), got "
                           f"{runs[c].dtype} values (column skipped)")
    if bad:
        out["runs"] = runs.drop(columns=bad)
    if not out.paths and "points" in out:  # no sweep.json: the columns before the first statistic
        cols = [c for c in out["points"].columns if c != "point_id"]
        out.paths = [c for c in cols if c in out["runs"].columns and not c.endswith("_mean")]
    return out
