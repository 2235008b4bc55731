"""Running a sweep's runs: in this process, on local worker processes, or on a Dask cluster.

``run_sweep(design, out, ...)`` owns its folder::

    sweep.json        what made the folder (the design's fingerprint, checked by --resume)
    runs.parquet      one row per run, sorted by run_id (rewritten as runs finish, atomically)
    points.parquet    one row per point: Student-t statistics of every metric (at the end)
    runs/<run id>/    each run's result folder (summary.json last: without it, incomplete)

Every run is ``execute(Task)``: a top-level (picklable) function that validates the scenario
mapping with the run's overrides (``set`` + point + ``seed``), runs it, and either writes its
folder itself (local processes, a LocalCluster: same filesystem) or returns its tables to the
parent, which writes them (a remote Dask cluster: no shared filesystem needed). An exception
in a run becomes a row with ``status: error`` and its message; the sweep goes on. Each run's
random numbers come only from its seed, so sequential, parallel and Dask give the same
files, bit for bit, whatever the order runs finish in.

Worker processes start with the ``forkserver`` method (the parent may hold threads: a
progress bar, a Dask client) with ``sim`` preloaded, so a worker costs a fork, not an import.
A worker ends when the sweep's process does, even after ``kill -9``: Linux's parent-death
signal (``prctl(PR_SET_PDEATHSIG, SIGKILL)``) plus a once-a-second check that its parent
has not changed (a dead parent's children are re-parented), for systems without prctl.

``sweep.json`` records the design's fingerprint and the code's (``results.code_fingerprint``:
package version + a hash of ``sim/``); ``--resume`` refuses a folder made by another design,
and one made by other code unless ``allow_code_change``.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import signal
import stat
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim import results
from sim.core.errors import InputError, Problem, show
from sim.experiments.design import Design, run_id
from sim.experiments.stats import points_table

__all__ = ["Task", "Outcome", "execute", "run_sweep", "SweepResult", "prepare_sweep_dir", "CONNECT_TIMEOUT_S",
           "SWEEP_FILE"]

SWEEP_FILE = "sweep.json"
RUNS = "runs"
CONNECT_TIMEOUT_S = 5.0  # a scheduler that does not answer in this time is an input error
FLUSH_EVERY_S = 2.0  # runs.parquet is rewritten at most this often while runs finish


@dataclass(frozen=True)
class Task:
    """One run to execute: the raw scenario mapping and the overrides that make it this run."""

    run_id: str
    source: str
    data: dict[str, Any]
    overrides: tuple[tuple[str, Any], ...]
    out: str | None  # write the run folder here, or None to return the tables


@dataclass
class Outcome:
    run_id: str
    status: str  # ok | error
    error: str
    metrics: dict[str, float]
    payload: tuple[dict[str, pd.DataFrame], dict[str, Any], str] | None = None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) if not isinstance(exc, InputError) else "; ".join(exc.lines())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def execute(task: Task) -> Outcome:
    """Validate, run and (when ``task.out`` is set) write one run. Never raises an Exception: a
    failure is an Outcome with status ``error`` and a one-line message."""
    from sim.runner import run_scenario
    from sim.scenario.loader import dump_resolved, validate_scenario

    try:
        scenario = validate_scenario(task.data, task.source, task.overrides)
        output = run_scenario(scenario, source=task.source)
        summary = output.summary()
        resolved = dump_resolved(scenario)
        metrics = {k: float(v) for k, v in output.metrics.items()}
        if task.out is not None:
            results.write_run(Path(task.out), output.tables, summary, resolved)
            return Outcome(task.run_id, "ok", "", metrics)
        return Outcome(task.run_id, "ok", "", metrics, (output.tables, summary, resolved))
    except Exception as exc:  # a run that raises is a row, not the end of the sweep
        return Outcome(task.run_id, "error", _one_line(exc), {})


PR_SET_PDEATHSIG = 1  # linux/prctl.h
PARENT_CHECK_S = 1.0


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep's runs; ``path`` is the sweep's folder (its complete runs kept)."""

    def __init__(self, path: Path):
        super().__init__(str(path))
        self.path = path


def die_with_parent() -> None:
    """Worker initializer: end this process when its parent ends, however that happens. Ctrl-C
    (SIGINT to the terminal's process group) is the parent's to handle: a worker ignores it, and
    the parent ends the workers (no traceback from each)."""
    with contextlib.suppress(ValueError):  # not the main thread: nothing to ignore
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the check below does it, within a second
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(PARENT_CHECK_S)

    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
    threading.Thread(target=watch, name="dcsim-parent-watch", daemon=True).start()


# --------------------------------------------------------------------------- folders
def _refuse(path: str | os.PathLike, message: str) -> InputError:
    return InputError(str(path), [Problem("", message)])


def _what(path: Path) -> str:
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return "a symlink"
    if stat.S_ISDIR(st.st_mode):
        return "a folder"
    return "a file" if stat.S_ISREG(st.st_mode) else "something else (a FIFO, a device or a socket)"


def check_resumable(path: Path, run_ids: list[str]) -> None:
    """Before a resume touches anything: the sweep's own files are regular files, ``runs`` and each
    run folder a real folder (never a symlink: nothing is deleted through one). Input errors name
    the path."""
    for name in (SWEEP_FILE, "runs.parquet", "points.parquet", "compare.parquet"):
        f = path / name
        if os.path.lexists(f) and not (stat.S_ISREG(os.lstat(f).st_mode)):
            raise _refuse(f, f"expected a file written by the sweep, got {_what(f)}; move it or use a new --out")
    runs = path / RUNS
    if not os.path.lexists(runs):
        return
    if _what(runs) != "a folder":
        raise _refuse(runs, f"expected the sweep's folder of runs, got {_what(runs)}; move it or use a new --out")
    for rid in run_ids:
        folder = runs / rid
        if os.path.lexists(folder) and _what(folder) != "a folder":
            raise _refuse(folder, f"expected a run folder, got {_what(folder)}; move it or use a new --out")


def prepare_sweep_dir(out: str | os.PathLike | None, name: str, resume: bool, root: str | os.PathLike = "results"
                      ) -> tuple[Path, bool]:
    """(folder, default) for a sweep. Without ``resume`` the folder must be new or empty; with it,
    a sweep folder (``sweep.json``); no ``--out`` with ``--resume`` means ``results/<name>/latest``."""
    if out is not None and not os.fspath(out):
        raise InputError("--out", [Problem("", 'expected a folder path, got ""')])
    if out is None and resume:
        latest = Path(root) / results.slug(name) / "latest"
        if not (latest / SWEEP_FILE).is_file():
            raise InputError("--resume", [Problem("", f"expected --out DIR or a previous sweep at {latest}, "
                                                      "got none")])
        return Path(os.path.realpath(latest)), True
    if out is not None and resume and Path(out).is_dir() and os.listdir(out):
        if not os.path.lexists(Path(out) / SWEEP_FILE):  # damage to it is named by check_resumable
            raise InputError(str(out), [Problem("", f"expected a sweep folder to resume (with {SWEEP_FILE}), "
                                                    "got a folder without one")])
        return Path(out), False
    if out is not None and Path(out).is_dir() and os.listdir(out):
        raise InputError(str(out), [Problem("", "expected an empty or new folder for the sweep, got a folder "
                                                "with files (use --resume to continue the sweep in it)")])
    target = results.prepare_dir(out, name, force=False, root=root)
    return target.path, out is None


def _fingerprint(design: Design) -> str:
    return hashlib.sha256(design.fingerprint().encode()).hexdigest()


def _points_fingerprint(design: Design) -> str:
    """The design without its number of replications: run r of a point is the same run (same
    overrides, seed base + r) whatever the count, so a folder with fewer replications of these
    points holds a subset of the runs."""
    text = json.dumps({"scenario": design.scenario_data, "fixed": [list(f) for f in design.fixed],
                       "points": [[p.point_id, [list(v) for v in p.values]] for p in design.points],
                       "base_seed": design.base_seed}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _more_replications(path: Path, design: Design, data: dict) -> bool:
    """Whether the folder is this design with fewer replications (``replications`` raised in the
    sweep file); if so its run folders are renamed to this design's ids (the replication number
    widens past 99) so that they are kept."""
    old = data.get("replications")
    if data.get("points_fingerprint") != _points_fingerprint(design) or not isinstance(old, int) \
            or not 0 < old < design.replications:
        return False
    runs_dir = path / RUNS
    n = len(design.points)
    for pt in design.points:
        for r in range(old):
            before, after = run_id(pt.index, r, n, old), run_id(pt.index, r, n, design.replications)
            if before != after and (runs_dir / before).is_dir() and not os.path.lexists(runs_dir / after):
                os.rename(runs_dir / before, runs_dir / after)
    return True


def _check_or_write_design(path: Path, design: Design, allow_code_change: bool = False) -> None:
    info = path / SWEEP_FILE
    digest = _fingerprint(design)
    code = results.code_fingerprint()
    if os.path.lexists(info):
        try:
            data = json.loads(info.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "not JSON"
            raise _refuse(info, f"expected the sweep's description, got a corrupt file ({why}); "
                                "use a new --out") from None
        if not isinstance(data, dict) or not isinstance(data.get("fingerprint"), str):
            raise _refuse(info, "expected the sweep's description, got a corrupt file (no fingerprint); "
                                "use a new --out")
        if data["fingerprint"] != digest and not _more_replications(path, design, data):
            raise InputError(str(path), [Problem("", "expected the sweep that made this folder, got a different "
                                                     "one (its scenario, points or seeds changed); use a new --out")])
        if data.get("code") != code and not allow_code_change:
            raise InputError(str(path), [Problem("", f"expected the code that made this folder "
                                                     f"({results.describe_code(data.get('code'))}), got "
                                                     f"{results.describe_code(code)}: the code changed, so kept "
                                                     "and new runs could differ; use a new --out, or "
                                                     "--allow-code-change to mix them")])
        if data["fingerprint"] == digest:
            return
        code = data.get("code", code)  # more replications: the folder keeps the code it was made by
    results.write_json(info, {
        "name": design.name, "sweep": design.source, "scenario": design.scenario_source,
        "replications": design.replications, "paths": list(design.paths), "base_seed": design.base_seed,
        "points": len(design.points), "runs": len(design.runs), "fingerprint": digest, "code": code,
        "points_fingerprint": _points_fingerprint(design),
        "metrics": list(design.metrics),
    })


# --------------------------------------------------------------------------- tables
def _column(values: list[Any]) -> list[Any] | np.ndarray:
    """A swept path's column: numbers, booleans or strings; lists and mappings as JSON text."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present) and len(present) == len(values):
        return np.array(values, dtype=bool)
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present) and \
            len(present) == len(values):
        return np.array(values, dtype=np.int64)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return np.array([np.nan if v is None else float(v) for v in values], dtype=float)
    return [None if v is None else v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
            for v in values]


def point_columns(design: Design) -> pd.DataFrame:
    data: dict[str, Any] = {"point_id": [p.point_id for p in design.points]}
    for path in design.paths:
        data[path] = _column(design.columns[path])
    return pd.DataFrame(data)


def runs_table(design: Design, outcomes: dict[str, Outcome]) -> pd.DataFrame:
    """runs.parquet: one row per finished run, sorted by run_id; metrics as float64 (NaN where absent)."""
    by_point = point_columns(design).set_index("point_id")
    specs = [r for r in design.runs if r.run_id in outcomes]
    specs.sort(key=lambda r: r.run_id)
    metrics = sorted({m for o in outcomes.values() for m in o.metrics})
    base = pd.DataFrame({
        "run_id": [r.run_id for r in specs],
        "point_id": [r.point_id for r in specs],
        "replication": np.array([r.replication for r in specs], dtype=np.int64),
        "seed": np.array([r.seed for r in specs], dtype=np.int64),
        "status": [outcomes[r.run_id].status for r in specs],
        "error": [outcomes[r.run_id].error for r in specs],
    })
    swept = by_point.loc[base["point_id"]].reset_index(drop=True) if design.paths else pd.DataFrame(index=base.index)
    values = pd.DataFrame({m: np.array([outcomes[r.run_id].metrics.get(m, np.nan) for r in specs], dtype=float)
                           for m in metrics}, index=base.index)
    return pd.concat([base, swept, values], axis=1)


def metric_names(runs: pd.DataFrame, design: Design) -> list[str]:
    fixed = {"run_id", "point_id", "replication", "seed", "status", "error", *design.paths}
    return [c for c in runs.columns if c not in fixed]


# --------------------------------------------------------------------------- execution
@dataclass
class SweepResult:
    path: Path
    runs: pd.DataFrame
    points: pd.DataFrame
    ran: int  # runs executed now (the rest were kept by --resume)
    wall_s: float


def _pool_context():
    """``fork`` while this process has no other thread (a worker then costs a fork: everything is
    imported), else ``forkserver`` with sim preloaded (a thread holding a lock at fork time would
    leave it locked in the child), else ``spawn``."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if ctx.get_start_method() == "forkserver":
        ctx.set_forkserver_preload(["sim.experiments.execute", "sim.runner", "sim.mechanisms.registry"])
    return ctx


def _run_inline(tasks: list[Task], on_result: Callable[[Outcome], None], on_start: Callable[[], None]) -> None:
    on_start()
    for task in tasks:
        on_result(execute(task))


def _run_processes(tasks: list[Task], workers: int, on_result: Callable[[Outcome], None],
                   on_start: Callable[[], None]) -> None:
    with ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context(), initializer=die_with_parent) as pool:
        pending = {pool.submit(execute, t): t for t in tasks}  # with fork, workers start at the first
        on_start()  # submit, before this may start a progress bar's thread
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    task = pending.pop(fut)
                    try:
                        outcome = fut.result()
                    except Exception as exc:  # a worker process that died (BrokenProcessPool)
                        outcome = Outcome(task.run_id, "error", _one_line(exc), {})
                    on_result(outcome)
        except BaseException:
            # The workers are killed and the pool, broken, fails every pending future itself
            # (cancelling them first races with that and prints a thread's traceback).
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                with contextlib.suppress(OSError):  # the runs under way are abandoned, their folders incomplete
                    proc.kill()
            raise


HANDSHAKE_MAX_BYTES = 1 << 20  # a Dask handshake message is a few hundred bytes


def probe_scheduler(address: str, timeout: float, refuse: Callable[[str], InputError]) -> None:
    """For a ``tcp://HOST:PORT`` address: connect and read the first 16 bytes the peer sends, both
    within ``timeout`` seconds. A Dask server speaks first: its handshake frame starts with two
    little-endian uint64s, the message's length (at most 1 MiB) and its number of frames (1..64).
    Anything else is "not a Dask scheduler", before distributed would trust a length it read
    from a stranger (a garbage answer once made it allocate exabytes)."""
    import socket
    import struct
    from urllib.parse import urlsplit

    if not address.startswith("tcp://"):
        return
    try:
        parts = urlsplit(address)
        host, port = parts.hostname, parts.port
    except ValueError:
        raise refuse("not an address") from None
    if not host or port is None:
        raise refuse("not an address: expected tcp://HOST:PORT")
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            data = b""
            while len(data) < 16:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                sock.settimeout(left)
                chunk = sock.recv(16 - len(data))
                if not chunk:
                    raise refuse("not a Dask scheduler: it closed the connection without a handshake")
                data += chunk
    except TimeoutError:
        raise refuse(f"no answer within {timeout:g} s") from None
    except OSError as exc:
        raise refuse(f"no answer: {exc.strerror or exc}") from None
    total, frames = struct.unpack("<QQ", data)
    if not (1 <= frames <= 64 and 8 + 8 * frames <= total <= HANDSHAKE_MAX_BYTES):
        raise refuse("not a Dask scheduler: its first bytes are not a Dask handshake")


def connect(scheduler: str, workers: int, dask_options: dict[str, Any] | None = None, timeout: float | None = None):
    """(client, cluster or None) for ``--scheduler``: ``local`` starts a LocalCluster of ``workers``
    single-threaded processes; an address connects to a running scheduler, which must answer with
    a Dask handshake and have a worker within ``timeout`` seconds (default CONNECT_TIMEOUT_S; else
    an InputError on ``--scheduler``)."""
    from distributed import Client, LocalCluster

    if scheduler == "local":
        import dask

        options = {"n_workers": workers, "threads_per_worker": 1, "processes": True,
                   "dashboard_address": None, "silence_logs": logging.ERROR}
        options.update(dask_options or {})
        # Workers run CPU-bound Python: the worker's statistical profiler (a thread sampling every
        # 10 ms, taking the GIL) and frequent system-monitor ticks slow each run noticeably.
        config: dict[str, Any] = {"distributed.worker.profile.enabled": False,
                                  "distributed.admin.system-monitor.interval": "2s"}
        if "forkserver" in multiprocessing.get_all_start_methods():
            # Workers forked from a server that has imported distributed and sim start in ~1 s
            # instead of the ~4 s of spawning and importing everything in each.
            multiprocessing.get_context("forkserver").set_forkserver_preload(
                ["distributed", "sim.experiments.execute", "sim.runner", "sim.mechanisms.registry"])
            config["distributed.worker.multiprocessing-method"] = "forkserver"
        with dask.config.set(config):
            cluster = LocalCluster(**options)
        return Client(cluster), cluster

    def refuse(why: str) -> InputError:
        return InputError("--scheduler", [Problem("", f"expected the address of a running Dask scheduler "
                                                      f"like tcp://HOST:8786 or local, got {show(scheduler)} ({why})")])

    timeout = CONNECT_TIMEOUT_S if timeout is None else timeout
    probe_scheduler(scheduler, timeout, refuse)  # before distributed reads a length from the peer
    try:
        client = Client(scheduler, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise refuse(f"no answer within {timeout:g} s: {' '.join(str(exc).split())[:120]}") from None
    except (ValueError, TypeError) as exc:
        raise refuse(" ".join(str(exc).split())[:120] or "not an address") from None
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (TimeoutError, OSError):
        client.close()
        raise refuse(f"it has no workers after {timeout:g} s") from None
    return client, None


def _run_dask(tasks: list[Task], client, on_result: Callable[[Outcome], None], on_start: Callable[[], None]
              ) -> None:
    from distributed import as_completed

    on_start()
    token = f"{os.getpid()}-{time.time_ns()}"
    futures = {client.submit(execute, t, key=f"dcsim-{t.run_id}-{token}", pure=False): t for t in tasks}
    try:
        for fut in as_completed(list(futures)):
            task = futures[fut]
            try:
                outcome = fut.result()
            except Exception as exc:  # a worker lost (KilledWorker), a task that could not be sent
                outcome = Outcome(task.run_id, "error", _one_line(exc), {})
            on_result(outcome)
    except BaseException:
        client.cancel(list(futures))
        raise


def _summary_metrics(path: Path) -> dict[str, float] | None:
    try:
        summary = json.loads((path / results.SUMMARY).read_text())
        return {k: float(v) for k, v in summary.get("metrics", {}).items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return None


def run_sweep(design: Design, out: str | os.PathLike | None = None, *, workers: int | None = None,
              scheduler: str | None = None, resume: bool = False, root: str | os.PathLike = "results",
              progress: Callable[[int, int], None] | None = None,
              dask_options: dict[str, Any] | None = None, extra: Callable[[Path], None] | None = None,
              allow_code_change: bool = False, connect_timeout: float | None = None) -> SweepResult:
    """Run every run of ``design`` not already complete in the folder; write the sweep's tables.

    ``workers``: local processes (default: all cores; 1 runs in this process) or, with
    ``scheduler``, the size of a ``local`` Dask cluster. ``progress(done, total)`` is called as
    runs finish. ``extra(path)`` writes more files once the tables are written (``compare``).
    ``allow_code_change``: resume a folder whose runs were made by other code (``sim/`` changed).
    ``connect_timeout``: seconds a scheduler has to answer (default CONNECT_TIMEOUT_S).
    """
    t0 = time.perf_counter()
    workers = max(1, workers if workers is not None else (os.cpu_count() or 1))
    client = cluster = None
    if scheduler is not None:  # connect first: a dead address fails before any folder is made
        client, cluster = connect(scheduler, workers, dask_options, connect_timeout)
    try:
        path, default = prepare_sweep_dir(out, design.name, resume, root)
        check_resumable(path, [r.run_id for r in design.runs])
        _check_or_write_design(path, design, allow_code_change)
        runs_dir = path / RUNS
        runs_dir.mkdir(exist_ok=True)
        outcomes: dict[str, Outcome] = {}
        todo = []
        for spec in design.runs:
            folder = runs_dir / spec.run_id
            kept = _summary_metrics(folder) if resume else None
            if kept is not None:
                outcomes[spec.run_id] = Outcome(spec.run_id, "ok", "", kept)
                continue
            if folder.exists():
                shutil.rmtree(folder)  # an incomplete run (no summary.json): run it again
            todo.append(spec)
        total = len(design.runs)
        remote = scheduler is not None and scheduler != "local"
        tasks = [Task(s.run_id, design.scenario_source, design.scenario_data, s.overrides,
                      None if remote else str(runs_dir / s.run_id)) for s in todo]
        last_flush = time.perf_counter()

        def flush() -> pd.DataFrame:
            runs = runs_table(design, outcomes)
            results.write_parquet(path / "runs.parquet", runs)
            return runs

        def on_result(outcome: Outcome) -> None:
            nonlocal last_flush
            if outcome.payload is not None:
                tables, summary, resolved = outcome.payload
                results.write_run(runs_dir / outcome.run_id, tables, summary, resolved)
                outcome.payload = None
            outcomes[outcome.run_id] = outcome
            if progress is not None:
                progress(len(outcomes), total)
            if time.perf_counter() - last_flush > FLUSH_EVERY_S:
                flush()
                last_flush = time.perf_counter()

        def on_start() -> None:
            if progress is not None:
                progress(len(outcomes), total)

        try:
            if client is not None:
                _run_dask(tasks, client, on_result, on_start)
            elif workers == 1 or len(tasks) <= 1:
                _run_inline(tasks, on_result, on_start)
            else:
                _run_processes(tasks, min(workers, len(tasks)), on_result, on_start)
        except KeyboardInterrupt:
            raise Interrupted(path) from None
        finally:
            runs = flush()  # an interrupted sweep keeps the rows of the runs that finished
        pts = points_table(runs, design.paths, metric_names(runs, design), point_columns(design))
        results.write_parquet(path / "points.parquet", pts)
        if extra is not None:
            extra(path)
        if default:
            results.link_latest(path)
        return SweepResult(path, runs, pts, len(tasks), time.perf_counter() - t0)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()

