"""``dcsim compare``: A = the scenario, B = the scenario with ``--set`` overrides, on paired seeds.

A compare is a two-point sweep (``p0000`` = A, ``p0001`` = B; replication r of both runs with
seed = base seed + r, so both sides see the same random streams wherever the change leaves
them alone: common random numbers). Its folder is a sweep folder (runs.parquet,
points.parquet, runs/) plus ``compare.parquet``: per metric, the mean of A, of B and of the
paired difference B − A with a Student-t 95 % interval over the n seeds where both ran.
Pairing removes the seed-to-seed variation both sides share, so the interval is much
narrower than the difference of two independent means would give.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pandas as pd

from sim import results
from sim.core.errors import InputError, Problem
from sim.experiments.design import MAX_RUNS_ENV, Design, make_design, max_runs
from sim.experiments.execute import SWEEP_FILE, SweepResult, metric_names, run_sweep
from sim.experiments.stats import paired_table
from sim.scenario.overrides import parse_overrides

__all__ = ["compare_design", "run_compare", "compare_table", "default_folder", "latest_folder", "same_sides",
           "COMPARE_FILE"]

COMPARE_FILE = "compare.parquet"
A, B = "p0000", "p0001"


def compare_design(scenario: str | os.PathLike, sets: list[str], replications: int = 10,
                   seed: int | None = None, registry=None) -> Design:
    """The two-point design; InputError for a bad file, a bad ``--set`` (source ``--set``), R < 1."""
    from sim.scenario.loader import read_yaml

    if not sets:
        raise InputError("--set", [Problem("", "expected at least one PATH=VALUE for side B, got none")])
    if isinstance(replications, bool) or not isinstance(replications, int) or replications < 1:
        raise InputError("--replications", [Problem("", f"expected an integer of at least 1, got {replications!r}")])
    cap = max_runs()
    if 2 * replications > cap:
        raise InputError("--replications", [Problem("", f"expected at most {cap // 2:,} (two runs per seed; set "
                                                        f"{MAX_RUNS_ENV} to raise the limit of {cap:,} runs), "
                                                        f"got {replications:,}")])
    source = str(scenario)
    data = read_yaml(scenario, source)
    overrides = dict(parse_overrides(sets))  # later --set of one path wins, as in dcsim run
    if "seed" in overrides:
        raise InputError("--set", [Problem("seed", "expected a path other than the seed (both sides run on the "
                                                   "same seeds; use --seed N for the base seed), got seed="
                                                   f"{overrides['seed']}")])
    fixed = [("seed", seed)] if seed is not None else []
    design = make_design("compare", "--set", source, data, fixed, list(overrides), [{}, overrides],
                         replications, {p: "" for p in overrides}, registry)
    name = data.get("name") if isinstance(data, dict) else None
    design.name = name if isinstance(name, str) and name else Path(source).stem
    return design


def same_sides(design: Design) -> bool:
    """True when every ``--set`` path resolves to the same value on both sides (B = A: the compare
    can only show noise-free zeros)."""
    return len(design.points) == 2 and all(col[0] == col[1] for col in design.columns.values())


def compare_table(runs: pd.DataFrame, design: Design) -> pd.DataFrame:
    ok = runs[runs["status"] == "ok"]
    a = ok[ok["point_id"] == A].set_index("seed")
    b = ok[ok["point_id"] == B].set_index("seed")
    return paired_table(a, b, metric_names(runs, design))


def default_folder(name: str, root: str | os.PathLike = "results") -> Path:
    """``results/<name>/compare-<YYYYmmdd-HHMMSS>`` (``-1``, ``-2``, ... when taken)."""
    base = Path(root) / results.slug(name)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = base / f"compare-{stamp}"
    k = 1
    while os.path.lexists(path):
        path = base / f"compare-{stamp}-{k}"
        k += 1
    return path


def latest_folder(name: str, root: str | os.PathLike = "results") -> Path:
    """The newest ``results/<name>/compare-*`` folder holding a sweep.json (what ``--resume``
    continues without ``--out``); InputError on ``--resume`` when there is none."""
    base = Path(root) / results.slug(name)
    found = sorted((p for p in base.glob("compare-*") if (p / SWEEP_FILE).is_file() and not p.is_symlink()),
                   key=lambda p: (p.stat().st_mtime, p.name)) if base.is_dir() else []
    if not found:
        raise InputError("--resume", [Problem("", f"expected --out DIR or a previous compare at "
                                                  f"{base}/compare-*, got none")])
    return found[-1]


def run_compare(design: Design, out: str | os.PathLike | None = None, *, root: str | os.PathLike = "results",
                **options: Any) -> tuple[SweepResult, pd.DataFrame]:
    """Runs A and B (``options`` as for ``run_sweep``: workers, scheduler, progress, resume, ...) and
    writes compare.parquet beside the sweep tables; returns the sweep result and the comparison.
    ``resume`` keeps the complete runs of a killed compare in ``out`` (default: the newest
    ``compare-*`` folder of the scenario), with the sweep's rules."""
    table: dict[str, pd.DataFrame] = {}

    def write(path: Path) -> None:
        runs = pd.read_parquet(path / "runs.parquet")
        table["df"] = compare_table(runs, design)
        results.write_parquet(path / COMPARE_FILE, table["df"])

    if out is not None:
        target: str | os.PathLike = out
    elif options.get("resume"):
        target = latest_folder(design.name, root)
    else:
        target = default_folder(design.name, root)
    result = run_sweep(design, target, root=root, extra=write, **options)
    return result, table["df"]
