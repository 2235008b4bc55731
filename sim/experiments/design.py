"""Sweep files: read, check and expand into points and runs, before any run starts.

A sweep file (docs/experiments.md)::

    name: downtime-vs-dirty-rate
    scenario: ../live_migration.yaml       # relative to the sweep file
    replications: 10                       # replication r runs with seed = base seed + r
    set: {duration: 30d}                   # optional: overrides applied to every point
    grid:                                  # full factorial over dotted paths
      workloads.1.vm.dirty_rate: [10MB/s, 100MB/s, 400MB/s]
      mechanisms.live_migration.mode: [precopy, postcopy]
    samples:                               # optional: random or Latin hypercube design
      n: 20
      method: latin_hypercube              # or random
      seed: 0                              # the design's own seed (default 0)
      params:
        faults.0.mtbf: {uniform: [180d, 5y]}      # bounds with units, drawn in base units
        infrastructure.detection: {loguniform: [5s, 10m]}
        workloads.0.count: {integer: [10, 40]}     # inclusive
        mechanisms.live_migration.mode: {choice: [precopy, postcopy]}
    metrics: [migration.downtime_s_max]    # optional: what the sweep is about (its report leads with them)

Points are the grid's full factorial (the last path varies fastest), crossed with the
samples when both are given (grid outer, samples inner); ids are ``p0000``, ``p0001``, ...
Each run applies the sweep's ``set``, the point's values and ``seed=<base seed + r>`` to the
scenario's raw mapping through ``validate_scenario`` (exactly ``dcsim run --set``'s
semantics). Every swept path and every point is validated here, so a sweep whose
point 17 cannot be valid fails before the first run, naming the path and the point.

Designs use scipy.stats.qmc (Latin hypercube, scrambled: one sample in each of the n
equal strata of every parameter) or a numpy Generator (random), both seeded by
``samples.seed``, so a sweep file always expands to the same points.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.core.errors import InputError, Problem, show
from sim.core.units import UnitError, parse_duration, parse_event_rate, parse_rate, parse_size
from sim.scenario.overrides import apply_overrides, brief, unknown_key

__all__ = [
    "Design",
    "Point",
    "RunSpec",
    "Distribution",
    "SweepInputError",
    "load_sweep",
    "make_design",
    "expand_grid",
    "draw_samples",
    "parse_quantity",
    "run_id",
    "max_runs",
    "SEED_MAX",
]

KEYS = ("name", "description", "scenario", "replications", "set", "grid", "samples", "metrics")
SAMPLE_KEYS = ("n", "method", "seed", "params")
METHODS = ("latin_hypercube", "random")
DISTRIBUTIONS = ("uniform", "loguniform", "integer", "choice")
MAX_RUNS_ENV = "DCSIM_MAX_SWEEP_RUNS"
MAX_RUNS = 1_000_000  # points x replications; every run is a folder and a row
SEED_MAX = 2**63 - 1  # seeds are int64 columns in runs.parquet
FULL_CHECK_POINTS = 1_000  # up to this many points each is validated; beyond, each value and each pair


class SweepInputError(InputError):
    """Problems from more than one file (the sweep file and its scenario), one line each."""

    def __init__(self, errors: list[InputError]):
        self.errors = list(errors)
        super().__init__(self.errors[0].source, [p for e in self.errors for p in e.problems])

    def lines(self) -> list[str]:
        return [line for e in self.errors for line in e.lines()]


@dataclass(frozen=True)
class Point:
    """One parameter point: ``values`` are (dotted path, value as given or drawn), in path order."""

    index: int
    point_id: str
    values: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class RunSpec:
    """One run: a point, a replication and its seed; ``overrides`` = set + point values + seed."""

    run_id: str
    point_id: str
    replication: int
    seed: int
    overrides: tuple[tuple[str, Any], ...]


@dataclass
class Design:
    """A checked sweep, expanded. ``columns[path][i]`` is point i's resolved value at ``path`` (as in
    scenario.resolved.yaml: quantities in base units)."""

    name: str
    source: str
    scenario_source: str
    scenario_data: dict[str, Any]
    fixed: tuple[tuple[str, Any], ...]
    paths: tuple[str, ...]
    points: list[Point]
    replications: int
    base_seed: int
    columns: dict[str, list[Any]] = field(default_factory=dict)
    runs: list[RunSpec] = field(default_factory=list)
    metrics: tuple[str, ...] = ()  # what the sweep is about: its report leads with these

    def fingerprint(self) -> str:
        """The design as canonical JSON: what ``--resume`` checks a folder was made by."""
        return json.dumps({
            "scenario": self.scenario_data,
            "runs": [[r.run_id, r.seed, [list(o) for o in r.overrides]] for r in self.runs],
        }, sort_keys=True, default=str)


def run_id(point: int, replication: int, points: int, replications: int) -> str:
    """``p0007-r02``: at least 4 and 2 digits, wider when the counts need it."""
    pw = max(4, len(str(max(points - 1, 0))))
    rw = max(2, len(str(max(replications - 1, 0))))
    return f"p{point:0{pw}d}-r{replication:0{rw}d}"


# --------------------------------------------------------------------------- quantities
_PLAIN_NUMBER = re.compile(r"^\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*$")
_PARSERS = (("duration", parse_duration), ("size", parse_size), ("rate", parse_rate),
            ("event_rate", parse_event_rate))
QUANTITY_EXPECTED = 'a number or a quantity like "180d", "16GiB", "25Gbps" or "4/h"'


def parse_quantity(value: Any) -> tuple[float, str | None]:
    """(value in base units, kind) for a number (kind None) or a quantity string with units
    (``180d`` -> (15552000.0, "duration"); ``800MB/s`` -> (8e8, "rate")). Raises UnitError."""
    if isinstance(value, bool):
        raise UnitError(f"expected {QUANTITY_EXPECTED}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise UnitError(f"expected {QUANTITY_EXPECTED} with a finite value")
        return float(value), None
    if isinstance(value, str):
        if _PLAIN_NUMBER.match(value):
            return parse_quantity(float(value))
        for kind, parse in _PARSERS:
            try:
                return parse(value), kind
            except UnitError:
                continue
    raise UnitError(f"expected {QUANTITY_EXPECTED}")


# --------------------------------------------------------------------------- distributions
@dataclass(frozen=True)
class Distribution:
    """How one sampled parameter maps a unit draw u in [0, 1) to a value."""

    kind: str  # uniform | loguniform | integer | choice
    low: float = 0.0
    high: float = 0.0
    options: tuple[Any, ...] = ()

    def value(self, u: float) -> Any:
        if self.kind == "uniform":
            return float(self.low + u * (self.high - self.low))
        if self.kind == "loguniform":
            return float(math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low))))
        if self.kind == "integer":
            span = int(self.high) - int(self.low) + 1
            return int(self.low) + min(int(u * span), span - 1)
        return self.options[min(int(u * len(self.options)), len(self.options) - 1)]


def _bounds_text(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return brief(value)


def parse_distribution(spec: Any, where: str) -> tuple[Distribution | None, list[Problem]]:
    """A ``{uniform: [low, high]}`` (or loguniform, integer, choice) mapping; problems at ``where``."""
    expected = "expected one of " + ", ".join(f"{{{d}: [...]}}" for d in DISTRIBUTIONS)
    if not isinstance(spec, dict) or len(spec) != 1:
        return None, [Problem(where, f"{expected}, got {show(spec)}")]
    ((kind, arg),) = spec.items()
    if kind not in DISTRIBUTIONS:
        return None, [Problem(where, unknown_key(kind, DISTRIBUTIONS))]
    at = f"{where}.{kind}"
    if kind == "choice":
        if not isinstance(arg, list) or not arg:
            what = "an empty list" if arg == [] else show(arg)
            return None, [Problem(at, f"expected a non-empty list of values, got {what}")]
        return Distribution("choice", options=tuple(arg)), []
    if not isinstance(arg, list) or len(arg) != 2:
        return None, [Problem(at, f"expected [low, high], got {_bounds_text(arg)}")]
    if kind == "integer":
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in arg):
            return None, [Problem(at, f"expected [low, high] of integers, got {_bounds_text(arg)}")]
        low, high = float(arg[0]), float(arg[1])
    else:
        parsed = []
        for i, v in enumerate(arg):
            try:
                parsed.append(parse_quantity(v))
            except UnitError as exc:
                return None, [Problem(f"{at}.{i}", f"{exc}, got {show(v)}")]
        kinds = {k for _, k in parsed if k is not None}
        if len(kinds) > 1:
            return None, [Problem(at, f"expected two bounds of one kind, got {' and '.join(sorted(kinds))} "
                                      f"({_bounds_text(arg)})")]
        (low, _), (high, _) = parsed
    if low > high:
        return None, [Problem(at, f"expected low <= high, got {_bounds_text(arg)}")]
    if kind == "loguniform" and low <= 0:
        return None, [Problem(at, f"expected a low bound above 0 (log scale), got {_bounds_text(arg)}")]
    return Distribution(kind, low, high), []


# --------------------------------------------------------------------------- expansion
def expand_grid(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The full factorial, in file order, the last path varying fastest ([{}] for no grid)."""
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))]


def unit_draws(n: int, d: int, method: str, seed: int) -> np.ndarray:
    """An (n, d) array in [0, 1): scrambled Latin hypercube (scipy.stats.qmc) or uniform random."""
    rng = np.random.default_rng(seed)
    if d == 0:
        return np.zeros((n, 0))
    if method == "latin_hypercube":
        from scipy.stats import qmc

        try:
            sampler = qmc.LatinHypercube(d=d, rng=rng)
        except TypeError:  # scipy < 1.15 calls it seed
            sampler = qmc.LatinHypercube(d=d, seed=rng)
        return sampler.random(n)
    return rng.random((n, d))


def draw_samples(params: dict[str, Distribution], n: int, method: str = "latin_hypercube",
                 seed: int = 0) -> list[dict[str, Any]]:
    """n points, each a {path: value} drawn from ``params`` (file order) with the given design."""
    keys = list(params)
    u = unit_draws(n, len(keys), method, seed)
    return [{k: params[k].value(float(u[i, j])) for j, k in enumerate(keys)} for i in range(n)]


# --------------------------------------------------------------------------- sweep file
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _path_ok(path: Any) -> bool:
    return isinstance(path, str) and bool(path) and all(path.split("."))


def load_sweep(path: str | os.PathLike, registry=None, progress: Callable[[int, int], None] | None = None) -> Design:
    """Read, check and expand a sweep file. Raises InputError (every problem, one line each).
    ``progress(done, total)`` follows the points' validations (``make_design``)."""
    from sim.scenario.loader import read_yaml

    source = str(path)
    data = read_yaml(path, source)
    if not isinstance(data, dict):
        raise InputError(source, [Problem("", f"expected a mapping at the top level, got {show(data)}")])
    problems: list[Problem] = []
    for key in data:
        if key not in KEYS:
            problems.append(Problem(str(key), unknown_key(key, KEYS)))

    name = data.get("name", Path(source).stem)
    if not isinstance(name, str) or not name.strip():
        problems.append(Problem("name", f"expected a non-empty string, got {show(name)}"))

    scenario = data.get("scenario")
    scenario_path: Path | None = None
    if scenario is None:
        problems.append(Problem("scenario", "expected the scenario file (relative to the sweep file), got nothing"))
    elif not isinstance(scenario, str) or not scenario.strip():
        problems.append(Problem("scenario", f"expected a file name, got {show(scenario)}"))
    else:
        scenario_path = Path(source).parent / scenario
        if not scenario_path.is_file():
            what = "a folder" if scenario_path.is_dir() else "no such file"
            problems.append(Problem("scenario", f"expected an existing scenario file (relative to the sweep "
                                                f"file), got {show(scenario)} ({what}: {scenario_path})"))

    replications = data.get("replications", 1)
    if not _is_int(replications) or replications < 1:
        problems.append(Problem("replications", f"expected an integer of at least 1, got {show(replications)}"))

    fixed: list[tuple[str, Any]] = []
    sets = data.get("set", {})
    if sets is None:
        sets = {}
    if not isinstance(sets, dict):
        problems.append(Problem("set", f"expected a mapping of dotted paths to values, got {show(sets)}"))
    else:
        for p, v in sets.items():
            if not _path_ok(p):
                problems.append(Problem(f"set.{p}", f"expected a dotted path like faults.0.mtbf, got {show(p)}"))
            else:
                fixed.append((p, v))

    grid = data.get("grid", {})
    grid = {} if grid is None else grid
    grid_values: dict[str, list[Any]] = {}
    if not isinstance(grid, dict):
        problems.append(Problem("grid", f"expected a mapping of dotted paths to lists of values, got {show(grid)}"))
    else:
        for p, values in grid.items():
            where = f"grid.{p}"
            if not _path_ok(p):
                problems.append(Problem(where, f"expected a dotted path like faults.0.mtbf, got {show(p)}"))
            elif not isinstance(values, list):
                problems.append(Problem(where, f"expected a list of values, got {show(values)}"))
            elif not values:
                problems.append(Problem(where, "expected at least one value, got an empty list"))
            else:
                grid_values[p] = values

    samples = data.get("samples")
    bound_checks: list[tuple[str, str, Any]] = []  # (where, path, a bound with units): its dimension
    sample_points: list[dict[str, Any]] = [{}]
    sample_params: dict[str, Distribution] = {}
    if samples is not None:
        if not isinstance(samples, dict):
            problems.append(Problem("samples", f"expected a mapping (n, method, params), got {show(samples)}"))
        else:
            for key in samples:
                if key not in SAMPLE_KEYS:
                    problems.append(Problem(f"samples.{key}", unknown_key(key, SAMPLE_KEYS)))
            n = samples.get("n")
            if not _is_int(n) or n < 1:
                problems.append(Problem("samples.n", f"expected an integer of at least 1, got {show(n)}"))
            method = samples.get("method", "latin_hypercube")
            if method not in METHODS:
                problems.append(Problem("samples.method", f"expected one of {', '.join(METHODS)}, got {show(method)}"))
            seed = samples.get("seed", 0)
            if not _is_int(seed) or seed < 0:
                problems.append(Problem("samples.seed", f"expected a non-negative integer, got {show(seed)}"))
            params = samples.get("params")
            if not isinstance(params, dict) or not params:
                what = "an empty mapping" if params == {} else show(params)
                problems.append(Problem("samples.params", f"expected a mapping of dotted paths to distributions "
                                                          f"like {{uniform: [180d, 5y]}}, got {what}"))
            else:
                for p, spec in params.items():
                    where = f"samples.params.{p}"
                    if not _path_ok(p):
                        problems.append(Problem(where, f"expected a dotted path like faults.0.mtbf, got {show(p)}"))
                        continue
                    if p in grid_values:
                        problems.append(Problem(where, f"expected a path not also in grid, got {show(p)}"))
                        continue
                    dist, found = parse_distribution(spec, where)
                    problems.extend(found)
                    if dist is not None:
                        sample_params[p] = dist
                        if dist.kind in ("uniform", "loguniform"):
                            ((kind, arg),) = spec.items()
                            bound_checks.extend((f"{where}.{kind}.{i}", p, v) for i, v in enumerate(arg)
                                                if isinstance(v, str) and parse_quantity(v)[1] is not None)

    problems.extend(_overlaps(grid_values, sample_params, fixed))
    for p in [*grid_values, *sample_params]:
        if p == "seed":
            section = "grid" if p in grid_values else "samples.params"
            problems.append(Problem(f"{section}.seed", 'expected a scenario value other than the seed '
                                                       '(replication r runs with seed + r), got "seed"'))
    if not problems:  # the product of the axis sizes, before anything is expanded or drawn
        sizes = [len(v) for v in grid_values.values()] + ([samples["n"]] if sample_params else [])
        total = math.prod(sizes) * replications
        cap = _max_runs()
        if total > cap:
            shape = " x ".join(f"{k:,}" for k in sizes) or "1"
            problems.append(Problem("", f"expected at most {cap:,} runs (points x replications; set "
                                        f"{MAX_RUNS_ENV} to raise the limit), got {total:,} ({shape} points x "
                                        f"{replications:,} replication{'s' if replications != 1 else ''})"))
    metrics = data.get("metrics", [])
    if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
        problems.append(Problem("metrics", f"expected a list of metric names, got {show(metrics)}"))
    else:
        from sim.mechanisms.registry import REGISTRY

        for i, m in enumerate(metrics):
            if REGISTRY.metric(m) is None:
                problems.append(Problem(f"metrics.{i}", f"expected a metric name (dcsim metrics lists them), "
                                                        f"got {show(m)}"))
    if problems:
        raise InputError(source, problems)
    if sample_params:
        sample_points = draw_samples(sample_params, samples["n"], samples.get("method", "latin_hypercube"),
                                     samples.get("seed", 0))
    grid_points = expand_grid(grid_values)

    scenario_source = str(scenario_path)
    scenario_data = read_yaml(scenario_path, scenario_source)
    where = {p: "grid" for p in grid_values} | {p: "samples.params" for p in sample_params} | \
        {p: "set" for p, _ in fixed}
    point_values = [g | s for g in grid_points for s in sample_points]
    design = make_design(name, source, scenario_source, scenario_data, fixed,
                         [*grid_values, *sample_params], point_values, replications, where, registry,
                         bound_checks=bound_checks, progress=progress)
    design.metrics = tuple(metrics)
    return design


def _norm(path: str) -> tuple[str, ...]:
    """A dotted path's segments with list indices as plain numbers (``faults.00.mtbf`` = ``faults.0.mtbf``)."""
    return tuple(str(int(seg)) if seg.isdigit() else seg for seg in path.split("."))


def _overlaps(grid: dict[str, Any], samples: dict[str, Any], fixed: list[tuple[str, Any]]) -> list[Problem]:
    """Two axes over one path (the same path, or one inside the other), and a ``set`` value that an
    axis would silently replace (set at or inside a swept path)."""
    problems: list[Problem] = []
    axes = [(f"grid.{p}", p) for p in grid] + [(f"samples.params.{p}", p) for p in samples]
    for i, (where, p) in enumerate(axes):
        for other_where, q in axes[:i]:
            a, b = _norm(p), _norm(q)
            if a[:len(b)] == b or b[:len(a)] == a:
                if where == f"samples.params.{p}" and q == p:
                    continue  # reported by the sample checks ("a path not also in grid")
                problems.append(Problem(where, f"expected one axis per path, got {show(p)} over the same path "
                                               f"as {other_where}"))
    for p, _ in fixed:
        for where, q in axes:
            a, b = _norm(p), _norm(q)
            if a[:len(b)] == b:
                problems.append(Problem(f"set.{p}", f"expected a path the sweep does not vary ({where} replaces "
                                                    f"its value at every point), got {show(p)}"))
                break
    return problems


def max_runs() -> int:
    """The cap on points x replications (``DCSIM_MAX_SWEEP_RUNS``, default 1,000,000)."""
    return _max_runs()


def _max_runs() -> int:
    raw = os.environ.get(MAX_RUNS_ENV, "")
    try:
        return int(raw) if raw.strip() else MAX_RUNS
    except ValueError:
        return MAX_RUNS


def _strip(message: str) -> str:
    return message.removesuffix(" (from --set)")


def _describe(values: dict[str, Any]) -> str:
    if not values:
        return ""
    return ": " + ", ".join(f"{p}={v if isinstance(v, str) else json.dumps(v, default=str)}"
                            for p, v in values.items())


def make_design(name: str, source: str, scenario_source: str, scenario_data: Any,
                fixed: list[tuple[str, Any]], paths: list[str], point_values: list[dict[str, Any]],
                replications: int, where: dict[str, str] | None = None, registry=None,
                bound_checks: list[tuple[str, str, Any]] | tuple = (),
                progress: Callable[[int, int], None] | None = None) -> Design:
    """Check every path and point against the scenario schema, then number points and runs.

    ``where`` maps a path to the section of ``source`` that gave it (``grid``,
    ``samples.params``, ``set``), so a problem names ``grid.faults.0.mtbf``; a problem
    elsewhere in the scenario names the scenario file and the point. ``bound_checks`` are
    (where, path, bound as written) of sampled bounds with units: each must be a value the path
    accepts, so a size bound on a duration (``mtbf: {uniform: [1GiB, 2GiB]}``) is refused.
    ``progress(done, total)`` is called after each validation of a point or of the values a large
    design checks (``total``: the validations planned so far; the CLI shows it on a terminal).
    """
    from sim.scenario.loader import default_registry, validate_scenario
    from sim.scenario.schema import build_scenario_model

    registry = default_registry() if registry is None else registry
    where = where or {}
    if not isinstance(scenario_data, dict):
        raise InputError(scenario_source, [Problem("", f"expected a mapping at the top level, "
                                                       f"got {show(scenario_data)}")])
    model = build_scenario_model(registry)

    # 1. Every path (the sweep's set, then each swept path) must be one the schema allows.
    problems: list[Problem] = []
    samples_by_path = {p: next((pv[p] for pv in point_values if p in pv), None) for p in paths}
    for p, v in [*fixed, *samples_by_path.items()]:
        try:
            apply_overrides(scenario_data, [(p, v)], model, source)
        except InputError as exc:
            section = where.get(p)
            problems.extend(Problem(f"{section}.{q.path}" if section else q.path, q.message) for q in exc.problems)
    for at, p, v in bound_checks:
        try:
            validate_scenario(scenario_data, scenario_source, [*fixed, (p, v)], registry)
        except InputError as exc:
            problems.extend(Problem(at, f"{_strip(q.message)} (a bound of {p}: its unit must suit the path)")
                            for q in exc.problems if _norm(q.path)[:len(_norm(p))] == _norm(p))
    if problems:
        raise InputError(source, problems)

    # 2. Every point, validated before any run starts; one line per distinct problem. The seed is
    # the file's (or the sweep's set); it cannot be swept, so every valid point has the same one.
    # A problem the scenario has without any point (outside the swept paths) is reported once, plainly.
    try:
        validate_scenario(scenario_data, scenario_source, fixed, registry)
        base_problems: set[tuple[str, str, str]] = set()
    except InputError as exc:
        base_problems = {(exc.source, q.path, _strip(q.message)) for q in exc.problems}
    columns: dict[str, list[Any]] = {p: [] for p in paths}
    seen: dict[tuple[str, str, str], list[Any]] = {}
    points: list[Point] = []
    width = max(4, len(str(max(len(point_values) - 1, 0))))

    count = _Count(progress)

    def check(values: dict[str, Any]) -> tuple[Any, list[tuple[str, str, str]]]:
        """(the validated scenario with ``values`` over the base, or None; its problems' keys)."""
        count.tick()
        try:
            return validate_scenario(scenario_data, scenario_source, [*fixed, *values.items()], registry), []
        except InputError as exc:
            keys = []
            for problem in exc.problems:
                section = next((where[p] for p in [*values, *(f for f, _ in fixed)]
                                if p in where and (problem.path == p or problem.path.startswith(p + "."))), None)
                if section is not None:
                    keys.append((source, f"{section}.{problem.path}" if section else problem.path,
                                 _strip(problem.message)))
                else:
                    src = source if exc.source == "--set" else exc.source
                    keys.append((src, problem.path, _strip(problem.message)))
            return None, keys

    base_seed = 0
    if len(point_values) <= FULL_CHECK_POINTS:
        count.total = len(point_values)
        for i, values in enumerate(point_values):
            sc, keys = check(values)
            for key in keys:
                seen.setdefault(key, [f"p{i:0{width}d}", values, 0])[2] += 1
            if sc is None:
                continue
            base_seed = int(sc.seed)
            dumped = sc.model_dump(mode="json")
            for p in paths:
                columns[p].append(_lookup(dumped, p))
            points.append(Point(i, f"p{i:0{width}d}", tuple(values.items())))
    else:
        base_seed, found = _check_by_axes(point_values, paths, check, columns, count)
        for key, (i, sub, count) in found.items():
            seen[key] = [f"p{i:0{width}d}", sub, count]
        if not seen:
            points = [Point(i, f"p{i:0{width}d}", tuple(values.items())) for i, values in enumerate(point_values)]
    if seen:
        errors: dict[str, list[Problem]] = {}
        for (src, path, message), (pid, values, count) in seen.items():
            if (src, path, message) in base_problems:
                errors.setdefault(src, []).append(Problem(path, message))
                continue
            more = f" and {count - 1} more point{'s' if count > 2 else ''}" if count > 1 else ""
            errors.setdefault(src, []).append(Problem(path, f"{message} (at point {pid}{_describe(values)}{more})"))
        raise SweepInputError([InputError(src, probs) for src, probs in errors.items()])

    if base_seed + replications - 1 > SEED_MAX:
        fixed_seed = any(p == "seed" for p, _ in fixed)
        section = where.get("seed", "set")
        src, path = (source, f"{section}.seed" if section else "") if fixed_seed else (scenario_source, "seed")
        if src == "--set" and fixed_seed:
            src, path = "--seed", ""
        raise InputError(src, [Problem(path, f"expected a seed of at most {SEED_MAX - replications + 1:,} (replication "
                                             f"r runs with seed + r, a 64-bit integer; {replications:,} "
                                             f"replication{'s' if replications != 1 else ''}), got {base_seed:,}")])
    runs = [RunSpec(run_id(pt.index, r, len(points), replications), pt.point_id, r, base_seed + r,
                    (*fixed, *pt.values, ("seed", base_seed + r)))
            for pt in points for r in range(replications)]
    return Design(name=name, source=source, scenario_source=scenario_source, scenario_data=scenario_data,
                  fixed=tuple(fixed), paths=tuple(paths), points=points, replications=replications,
                  base_seed=base_seed, columns=columns, runs=runs)


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


MANY_VALUES = 50  # a numeric path with more distinct values than this is checked at its extremes
CONFIRM_POINTS = 1_000  # whole points validated to confirm problems pairs showed


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Count:
    """Validations done and planned, reported to ``progress(done, total)`` after each one."""

    def __init__(self, progress: Callable[[int, int], None] | None):
        self.progress = progress
        self.done = 0
        self.total = 0

    def tick(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, max(self.done, self.total))


def _check_by_axes(point_values: list[dict[str, Any]], paths: list[str], check, columns: dict[str, list[Any]],
                   count: _Count | None = None) -> tuple[int, dict[tuple[str, str, str], tuple[int, dict[str, Any], int]]]:
    """A large design checked without validating every point: each distinct value of each path
    alone, and each distinct pair of values of two paths that occur together (a rule of the schema
    relates at most two values: vCPUs and cores, working set and memory). With two or more paths
    a problem counts only where it shows in a pair (a value bad over the base may be fine with
    another path's value). A path with more than MANY_VALUES distinct numbers (a sampled
    parameter) is checked at its smallest and largest value: the schema's limits on a number are
    ranges. Fills ``columns`` with each point's resolved values (a value resolves the same
    whatever the other paths hold; a sampled number is already in base units).

    Returns (seed, {problem key: (first point, its values, points holding them)}): with one path
    the count is exact; with more, a problem is confirmed on the first whole point that shows it
    (count 1: how many more share it is not known without validating them all)."""
    distinct: dict[str, dict[str, tuple[int, Any, int]]] = {p: {} for p in paths}
    keys = []
    for i, values in enumerate(point_values):
        row = []
        for p in paths:
            k = _key(values.get(p))
            row.append(k)
            if p in values:
                j, v, n = distinct[p].get(k, (i, values[p], 0))
                distinct[p][k] = (j, v, n + 1)
        keys.append(row)
    numeric = {p for p in paths if len(distinct[p]) > MANY_VALUES and all(_is_number(v) for _, v, _ in
                                                                          distinct[p].values())}
    reps: dict[str, dict[str, tuple[int, Any, int]]] = {}
    for p in paths:
        if p in numeric:
            items = sorted(distinct[p].values(), key=lambda t: t[1])
            reps[p] = {_key(items[0][1]): items[0], _key(items[-1][1]): items[-1]}
        else:
            reps[p] = distinct[p]
    found: dict[tuple[str, str, str], tuple[int, dict[str, Any], int]] = {}
    resolved: dict[tuple[str, str], Any] = {}
    seed = 0

    def note(sc, p_keys: list[tuple[str, str]]) -> None:
        nonlocal seed
        seed = int(sc.seed)
        dumped = None
        for p, k in p_keys:
            if (p, k) not in resolved:
                dumped = dumped if dumped is not None else sc.model_dump(mode="json")
                resolved[(p, k)] = _lookup(dumped, p)

    index = {p: a for a, p in enumerate(paths)}
    pairs: dict[tuple[str, str, str, str], tuple[int, dict[str, Any], list[int]]] = {}
    for i, values in enumerate(point_values):
        row = keys[i]
        present = [p for p in paths if p in values and row[index[p]] in reps[p]]
        for a, p in enumerate(present):
            for q in present[a + 1:]:
                two = (p, row[index[p]], q, row[index[q]])
                if two not in pairs:
                    pairs[two] = (i, {p: values[p], q: values[q]}, [])
                pairs[two][2].append(i)
    count = count if count is not None else _Count(None)
    count.total += sum(len(r) for r in reps.values()) + len(pairs)
    for p in paths:
        for k, (i, v, n) in reps[p].items():
            sc, problems = check({p: v})
            if sc is not None:
                note(sc, [(p, k)])
            elif len(paths) == 1:
                for key in problems:
                    j, sub, m = found.get(key, (i, {p: v}, 0))
                    found[key] = (min(i, j), sub if j <= i else {p: v}, m + n)
    holders: dict[tuple[str, str, str], set[int]] = {}
    for (p, kp, q, kq), (_, sub, members) in sorted(pairs.items(), key=lambda kv: kv[1][0]):
        sc, problems = check(sub)
        if sc is not None:
            note(sc, [(p, kp), (q, kq)])
            continue
        for key in problems:
            holders.setdefault(key, set()).update(members)
    # A pair checked over the base can fail because of a third path's base value (33 vCPUs over the
    # base's 32 cores, in a point that has 64): a problem is reported only once a whole point that
    # holds it is validated and shows it, the first such point named.
    budget = CONFIRM_POINTS
    shown: dict[int, list[tuple[str, str, str]]] = {}
    for key in sorted(holders, key=lambda k: min(holders[k])):
        if key in found:
            continue
        for i in sorted(holders[key]):
            if i not in shown:
                if budget == 0:
                    break
                budget -= 1
                count.total += 1
                shown[i] = check(point_values[i])[1]
            for k in shown[i]:
                if k in holders and k not in found:
                    found[k] = (i, point_values[i], 1)
            if key in found:
                break
    for i, values in enumerate(point_values):
        for p in paths:
            columns[p].append(values.get(p) if p in numeric else resolved.get((p, keys[i][index[p]])))
    return seed, found


def _lookup(data: Any, path: str) -> Any:
    """The value at a dotted path of a dumped scenario (None where absent: a mechanism left out)."""
    cur = data
    for seg in path.split("."):
        if isinstance(cur, dict):
            cur = cur.get(seg)
        elif isinstance(cur, list) and seg.isdigit() and int(seg) < len(cur):
            cur = cur[int(seg)]
        else:
            return None
    return cur
