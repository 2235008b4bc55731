"""The ``dcsim`` command (typer).

Exit codes: 0 success; 2 invalid input (one line per problem: file, dotted path,
expected, found; never a traceback); 1 an internal error. Long runs show a rich
progress bar on a terminal; ``--quiet`` or a non-terminal stderr turns it off.
New subcommands (sweep, compare, report, bench) register on ``app`` like ``run``.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

try:  # typer >= 0.2x vendors click as typer._click; older typer uses click itself
    from typer._click import exceptions as click
except ImportError:  # pragma: no cover
    from click import exceptions as click

from sim.core.errors import InputError, Problem, show


class Group(TyperGroup):
    """The command group, except that a usage error (an unknown option, a value of the wrong
    type, a missing argument) is one line on stderr and exit 2, like every input error,
    instead of the CLI library's boxed usage text."""

    def main(self, args: Any = None, prog_name: Any = None, complete_var: Any = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _NoArgs as exc:
            typer.echo(exc.ctx.get_help() if exc.ctx is not None else exc.format_message(), err=True)
            sys.exit(2)
        except click.UsageError as exc:
            typer.echo(usage_line(exc), err=True)
            sys.exit(2)
        except click.ClickException as exc:
            typer.echo(f"dcsim: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("dcsim: aborted", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


_NoArgs = getattr(click, "NoArgsIsHelpError", ())


def usage_line(exc: click.UsageError) -> str:
    """``--workers: expected an integer, got "x"`` where the error names an option, else ``dcsim: ...``."""
    message = " ".join(exc.format_message().split())
    param = getattr(exc, "param", None)
    if isinstance(exc, click.BadParameter) and param is not None and not isinstance(exc, click.MissingParameter):
        name = (param.opts or [param.name or "argument"])[0]
        found = re.match(r"^'(.*)' is not a valid (\w+)", message)
        if found:
            return f"{name}: expected {_article(found.group(2))}, got {show(found.group(1))}"
        return f"{name}: {message}"
    return f"dcsim: {message[0].lower() + message[1:] if message else 'invalid command line'}"


def _article(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


app = typer.Typer(cls=Group, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="dcsim: a discrete-event datacenter resilience simulator.")

PROGRESS_AFTER_S = 2.0  # runs longer than ~2 s of wall time show a progress bar


def fail_input(err: InputError) -> None:
    for line in err.lines():
        typer.echo(line, err=True)
    raise typer.Exit(2)


def parse_seed(seed: str | None) -> int | None:
    """``--seed N``: an integer (the schema then checks it is not negative)."""
    if seed is None:
        return None
    if not re.fullmatch(r"\s*[-+]?\d{1,100}\s*", seed):
        raise InputError("--seed", [Problem("", f"expected an integer like 7, got {show(seed)}")])
    return int(seed)


def load(path: str, overrides: list[str], seed: str | int | None):
    """The validated scenario; prints its advisories (valid but without effect) as warnings."""
    from sim.mechanisms.registry import config_models
    from sim.scenario.loader import load_scenario
    from sim.scenario.validate import advisories

    sets = list(overrides or [])
    number = parse_seed(seed) if isinstance(seed, str) else seed
    if number is not None:
        sets.append(f"seed={number}")
    registry = config_models()
    scenario = load_scenario(path, sets, registry)
    for problem in advisories(scenario, registry):
        typer.echo(f"warning: {problem.format(str(path))}", err=True)
    return scenario


class Progress:
    """A progress bar of simulated time that appears only once a run has taken ~2 s."""

    def __init__(self, duration: float, enabled: bool):
        self.duration = duration
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self.bar = None
        self.task = None

    def __call__(self, now: float) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            if time.perf_counter() - self.t0 < PROGRESS_AFTER_S:
                return
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("simulated {task.fields[sim]}"), BarColumn(),
                                TextColumn("{task.percentage:>3.0f}%"), TimeRemainingColumn(),
                                console=Console(stderr=True), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("run", total=self.duration, sim="")
        from sim.core.units import format_duration

        self.bar.update(self.task, completed=now, sim=format_duration(now))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


@app.command()
def run(
    scenario: Annotated[str, typer.Argument(help="scenario YAML file")],
    out: Annotated[str | None, typer.Option("--out", help="result folder (default results/<name>/<time>)")] = None,
    force: Annotated[bool, typer.Option("--force", help="write into a non-empty folder")] = False,
    seed: Annotated[str | None, typer.Option("--seed", help="same as --set seed=N")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="PATH=VALUE override (repeatable)")] = None,
    trace: Annotated[bool, typer.Option("--trace", help="also write events.parquet")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bar, no summary table")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="also every metric, with its meaning")] = False,
) -> None:
    """Run one scenario and write its result folder."""
    from sim import results
    from sim.runner import Simulation
    from sim.scenario.loader import dump_resolved

    try:
        sc = load(scenario, set_ or [], seed)
        simulation = Simulation(sc, trace=trace, source=scenario)
        target = results.prepare_dir(out, sc.name, force)
    except InputError as err:
        if is_sweep_file(scenario):
            fail_input(InputError(scenario, [Problem("", f"this is a sweep file: use dcsim sweep {scenario}")]))
        fail_input(err)
    progress = Progress(sc.duration, enabled=not quiet and sys.stderr.isatty())
    try:
        try:
            output = simulation.run(progress)
        finally:
            progress.close()
        results.write_run(target.staging, output.tables, output.summary(), dump_resolved(sc))
    except BaseException:
        target.abort()  # a replacement that did not finish: the previous run stays
        raise
    target.commit()
    if out is None:
        results.link_latest(target.path)
    if not quiet:
        show_summary(sc, output, target.path, verbose)


def is_sweep_file(path: str) -> bool:
    """Whether ``path`` reads as a sweep file (a ``scenario`` to vary and a ``grid`` or ``samples``) rather
    than a scenario."""
    from sim.scenario.loader import read_yaml

    try:
        data = read_yaml(path, path)
    except InputError:
        return False
    return (isinstance(data, dict) and isinstance(data.get("scenario"), str) and "infrastructure" not in data
            and ("grid" in data or "samples" in data))


def show_summary(sc, output, path: Path, verbose: bool = False) -> None:
    """A short summary a person can act on (sim.readout.run_lines): availability, downtime by cause,
    the longest incidents, what each enabled mechanism did, where the results are."""
    from sim.readout import RunView, enabled_mechanisms, run_lines

    view = RunView(sc.name, sc.seed, sc.duration, output.events, output.wall_s, output.metrics,
                   output.tables["incidents"], enabled_mechanisms(sc.mechanisms), _shown_path(path))
    for line in run_lines(view, verbose=verbose):
        typer.echo(line)


def _shown_path(path: Path) -> str:
    """The folder relative to the current one when it is below it (shorter to read and to type)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@app.command()
def check(
    scenario: Annotated[str, typer.Argument(help="scenario YAML file")],
    seed: Annotated[str | None, typer.Option("--seed", help="same as --set seed=N")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="PATH=VALUE override (repeatable)")] = None,
) -> None:
    """Validate a scenario (schema, references, placement) and print it fully resolved."""
    from sim.runner import Simulation
    from sim.scenario.loader import dump_resolved

    try:
        sc = load(scenario, set_ or [], seed)
        Simulation(sc, source=scenario)  # placement must fit
    except InputError as err:
        fail_input(err)
    typer.echo(dump_resolved(sc), nl=False)


@app.command()
def bench(
    json_: Annotated[str | None, typer.Option("--json", help="also write the figures to this JSON file")] = None,
    hosts: Annotated[str | None, typer.Option("--hosts", help="scale the fleet to N hosts (up or down)")] = None,
    duration: Annotated[str | None, typer.Option("--duration", help="simulated time, e.g. 30d (default: the file's)")
                        ] = None,
    scenario: Annotated[str | None, typer.Option("--scenario", help="fleet scenario (default scenarios/fleet.yaml)")
                        ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bar, no table")] = False,
    profile: Annotated[bool, typer.Option("--profile/--no-profile",
                                          help="sample the event loop's CPU time by mechanism (cost per fact)")] = True,
) -> None:
    """Throughput benchmark: the fleet year's time against a bare SimPy loop's, cost per fact (docs/performance.md)."""
    from sim import results
    from sim.bench import load_fleet, run_bench

    try:
        n_hosts = parse_count(hosts, "--hosts")
        target = results.check_output_file(json_, "--json") if json_ is not None else None
        sc = load_fleet(scenario, n_hosts, duration)  # input errors before any timing starts
    except InputError as err:
        fail_input(err)
    progress = Progress(sc.duration, enabled=not quiet and sys.stderr.isatty())
    try:
        figures = run_bench(n_hosts, duration, scenario, progress=progress, profile=profile)
    except InputError as err:
        fail_input(err)
    finally:
        progress.close()
    if target is not None:
        results.write_json(target, figures)
    if not quiet:
        show_bench(figures)


def show_bench(f: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    fleet, bare = f["fleet"], f["bare"]
    table = Table(title=f"dcsim bench: {f['hosts']:,} hosts, {f['vms']:,} VMs ({f['vms_total']:,} with the "
                        f"mechanisms'), {f['duration_s'] / 86400:.0f} simulated days")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("fleet events", f"{fleet['events']:,}"),
        ("build s (CPU s)", f"{fleet['build_s']:.2f} ({fleet['build_cpu_s']:.2f})"),
        ("run s: the event loop (CPU s)", f"{fleet['run_s']:.2f} ({fleet['run_cpu_s']:.2f})"),
        ("write s (CPU s)", f"{fleet['write_s']:.2f} ({fleet['write_cpu_s']:.2f})"),
        ("fleet events/s", f"{fleet['events_per_s']:,.0f}"),
        (f"bare loop of {bare['events']:,} events s (CPU s)", f"{bare['wall_s']:.3f} ({bare['cpu_s']:.3f})"),
        ("ratio: fleet (build + run) / bare, wall", f"{f['ratio']:.1f}"),
        ("ratio, CPU", f"{f['ratio_cpu']:.1f}"),
        ("peak memory MiB", f"{f['peak_rss_mib']:,.0f}"),
        ("wall s (the whole command)", f"{f['wall_s']:.2f}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console = Console() if sys.stdout.isatty() else Console(width=120)  # piped: no wrapping at 80 columns
    console.print(table)
    prof = f.get("profile")
    if prof:
        costs = Table(title=f"event loop CPU by owner ({prof['samples']:,} samples, {prof['cpu_s']:.2f} CPU s)")
        for col, justify in (("owner", "left"), ("CPU s", "right"), ("share", "right"), ("facts", "right"),
                             ("fact", "left"), ("µs per fact", "right"), ("bare events", "right")):
            costs.add_column(col, justify=justify)
        for r in prof["owners"]:
            per = "" if r["us_per_fact"] is None else f"{r['us_per_fact']:,.1f}"
            bare_n = "" if r["bare_events_per_fact"] is None else f"{r['bare_events_per_fact']:,.0f}"
            facts = f"{r['facts']:,}" if r["fact"] else ""
            costs.add_row(r["owner"], f"{r['cpu_s']:.2f}", f"{r['share']:.0%}", facts, r["fact"], per, bare_n)
        console.print(costs)
        console.print("bare events: the µs per fact over the bare loop's CPU µs per event (docs/performance.md)")


# --------------------------------------------------------------------------- experiments
class RunsProgress:
    """A progress bar of runs done (with ETA) for sweeps and compares, on a terminal only."""

    def __init__(self, enabled: bool, label: str = "runs"):
        self.enabled = enabled
        self.label = label
        self.bar = None
        self.task = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(TextColumn(self.label), MofNCompleteColumn(), BarColumn(),
                                TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
                                TextColumn("ETA"), TimeRemainingColumn(), console=Console(stderr=True),
                                transient=True)
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=total, completed=done)
        self.bar.update(self.task, completed=done, total=total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def parse_count(text: str | int | None, flag: str) -> int | None:
    """An option that counts (``--workers``, ``--replications``, ``--hosts``): an integer of at least
    1, the value echoed when it is not (``--workers: expected an integer of at least 1, got "abc"``)."""
    if text is None:
        return None
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    elif isinstance(text, str) and re.fullmatch(r"\s*[-+]?\d{1,30}\s*", text):
        value = int(text)
    else:
        raise InputError(flag, [Problem("", f"expected an integer of at least 1, got {show(text)}")])
    if value < 1:
        raise InputError(flag, [Problem("", f"expected an integer of at least 1, got {value}")])
    return value


def parse_seconds(text: str | None, flag: str) -> float | None:
    """A timeout in seconds (``5``, ``0.5``) or a duration (``30s``, ``2m``): above 0, at most a day."""
    if text is None:
        return None
    from sim.core.units import UnitError, parse_duration

    try:
        value = float(text) if re.fullmatch(r"\s*\d+(\.\d*)?\s*", text) else parse_duration(text)
    except UnitError:
        value = -1.0
    if not 0 < value <= 86400:
        raise InputError(flag, [Problem("", f"expected seconds above 0 and at most a day, like 5 or 30s, got "
                                            f"{show(text)}")])
    return value


def check_workers(workers: str | int | None) -> int | None:
    return parse_count(workers, "--workers")


def report_errors(runs) -> None:
    errors = runs[runs["status"] == "error"]
    for row in errors.head(5).itertuples():
        typer.echo(f"error: run {row.run_id}: {row.error}", err=True)
    if len(errors) > 5:
        typer.echo(f"error: ... and {len(errors) - 5} more runs failed (see runs.parquet)", err=True)


def run_many(quiet: bool, workers: int | None, design: Callable[[], Any], run: Callable[[Any, Any], Any]) -> Any:
    """Validate (``design()``), then ``run(design, progress)`` with a runs progress bar; input errors
    exit 2; failed runs are listed. Returns what ``run`` returns (its first item has ``.runs``)."""
    progress = RunsProgress(enabled=not quiet and sys.stderr.isatty())
    try:
        check_workers(workers)
        plan = design()
        try:
            result = run(plan, progress)
        finally:
            progress.close()
    except InputError as err:
        fail_input(err)
    except KeyboardInterrupt as stop:  # Ctrl-C: one line, no traceback (workers ignore it)
        where = getattr(stop, "path", None)
        typer.echo("interrupted: " + (f"complete runs are kept in {where}; run the same command with --resume "
                                      f"--out {where} to run the rest" if where is not None else
                                      "before any run started (nothing to --resume)"), err=True)
        raise typer.Exit(130) from None
    report_errors((result[0] if isinstance(result, tuple) else result).runs)
    return result


@app.command()
def sweep(
    sweep_file: Annotated[str, typer.Argument(metavar="SWEEP", help="sweep YAML file")],
    out: Annotated[str | None, typer.Option("--out", help="sweep folder (default results/<name>/<time>)")] = None,
    workers: Annotated[str | None, typer.Option("--workers", help="local worker processes (default: all "
                                                "cores); with --scheduler local, the cluster's size")] = None,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="'local' (a Dask LocalCluster) or the "
                                                  "address of a Dask scheduler, tcp://HOST:8786")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="keep complete runs in the folder, run the rest")] = False,
    connect_timeout: Annotated[str | None, typer.Option("--connect-timeout", help="seconds a --scheduler address "
                                                        "has to answer (default 5)")] = None,
    allow_code_change: Annotated[bool, typer.Option("--allow-code-change", help="with --resume: continue a folder "
                                                    "made by other code (sim/ changed)")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bar, no summary line")] = False,
) -> None:
    """Run every point of a sweep file (grid and samples) times its replications."""
    from sim.experiments.design import load_sweep
    from sim.experiments.execute import run_sweep

    try:
        n_workers = check_workers(workers)
        timeout = parse_seconds(connect_timeout, "--connect-timeout")
    except InputError as err:
        fail_input(err)
    def design():
        checking = RunsProgress(enabled=not quiet and sys.stderr.isatty(), label="validating")
        try:  # a large grid takes seconds to validate: show it on a terminal
            return load_sweep(sweep_file, progress=checking)
        finally:
            checking.close()

    result = run_many(quiet, n_workers, design, lambda design, progress: run_sweep(
        design, out, workers=n_workers, scheduler=scheduler, resume=resume, progress=progress,
        allow_code_change=allow_code_change, connect_timeout=timeout))
    if not quiet:
        ok = int((result.runs["status"] == "ok").sum())
        kept = len(result.runs) - result.ran
        typer.echo(f"{result.path}: {len(result.runs)} runs over {len(result.points)} points ({ok} ok, "
                   f"{len(result.runs) - ok} errors{f', {kept} kept from before' if kept else ''}) "
                   f"in {result.wall_s:.1f} s")


@app.command()
def compare(
    scenario: Annotated[str, typer.Argument(help="scenario YAML file (side A)")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="PATH=VALUE making side B (repeatable)")] = None,
    replications: Annotated[str, typer.Option("--replications", help="paired seeds: base seed + 0 .. R-1")] = "10",
    seed: Annotated[str | None, typer.Option("--seed", help="base seed of both sides")] = None,
    out: Annotated[str | None, typer.Option("--out", help="folder (default results/<name>/compare-<time>)")] = None,
    workers: Annotated[str | None, typer.Option("--workers", help="local worker processes (default: all cores)")
                       ] = None,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="'local' or tcp://HOST:8786 (Dask)")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue a killed compare: keep its complete runs, "
                                         "run the rest (default folder: the newest compare-*)")] = False,
    connect_timeout: Annotated[str | None, typer.Option("--connect-timeout", help="seconds a --scheduler address "
                                                        "has to answer (default 5)")] = None,
    allow_code_change: Annotated[bool, typer.Option("--allow-code-change", help="with --resume: continue a folder "
                                                    "made by other code (sim/ changed)")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bar, no table")] = False,
) -> None:
    """A/B: the scenario against the scenario with --set, on paired seeds; B − A with 95 % intervals."""
    from sim.experiments.compare import compare_design, run_compare, same_sides

    try:
        n_workers = check_workers(workers)
        n_replications = parse_count(replications, "--replications")
        timeout = parse_seconds(connect_timeout, "--connect-timeout")
    except InputError as err:
        fail_input(err)

    def design():
        plan = compare_design(scenario, set_ or [], n_replications, parse_seed(seed))
        if same_sides(plan):
            typer.echo(f"warning: --set: {' '.join(set_ or [])} changes nothing in {scenario} (B = A): every "
                       "difference will be 0", err=True)
        return plan

    result, table = run_many(
        quiet, n_workers, design,
        lambda plan, progress: run_compare(plan, out, workers=n_workers, scheduler=scheduler, progress=progress,
                                           resume=resume, allow_code_change=allow_code_change,
                                           connect_timeout=timeout))
    if not quiet:
        show_compare(table, result.path, " ".join(set_ or []))


def show_compare(table, path: Path, change: str) -> None:
    import math

    from rich.console import Console
    from rich.table import Table

    n = int(table["n"].max()) if len(table) else 0
    out = Table(title=f"{path}\nA = scenario, B = A with {change}; B − A over {n} paired seeds "
                      "(* : the 95 % interval excludes 0)")
    for col, justify in (("metric", "left"), ("A mean", "right"), ("B mean", "right"), ("B − A", "right"),
                         ("95 % CI", "right"), ("n", "right"), ("", "left")):
        out.add_column(col, justify=justify)
    from sim import format as fmt
    from sim.readout import unit

    for row in table.itertuples(index=False):
        low, high = row.diff_ci95_low, row.diff_ci95_high
        u = unit(row.metric)
        d = "1" if u == "availability" else u  # a difference of availabilities: in points (x100)
        k = 100.0 if u == "availability" else 1.0

        def show(x: float, kind: str = u, scale: float = 1.0) -> str:
            return "–" if math.isnan(x) else fmt.value(x * scale, kind)

        if row.n == 0:  # nothing to pair: each side's own mean (A's is kept when B has none)
            out.add_row(row.metric, show(row.a_mean), show(row.b_mean), "–", "", "0", "")
            continue
        flag = getattr(row, "flag", "")
        if flag == "no_events":  # rule of three: 0 events in n runs puts each side's mean below 3/n
            ci = f"none seen: each ≤ {3 / row.n:.3g}"
        elif flag == "all_equal":  # no spread to estimate: no interval rather than [m, m]
            ci = "all equal"
        else:
            ci = "" if math.isnan(low) else f"[{show(low, d, k)}, {show(high, d, k)}]"
        sig = "*" if not math.isnan(low) and (low > 0 or high < 0) else ""
        diff = ("+" if row.diff_mean > 0 else "") + show(row.diff_mean, d, k) + (" pt" if k != 1.0 else "")
        out.add_row(row.metric, show(row.a_mean), show(row.b_mean), diff, ci, str(row.n), sig)
    Console(width=160).print(out)


@app.command()
def report(
    folder: Annotated[str, typer.Argument(metavar="DIR", help="a run folder or a sweep (or compare) folder")],
    out: Annotated[str | None, typer.Option("--out", help="where to write (default DIR/report/)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="do not print where the report is")] = False,
) -> None:
    """Figures (PNG) and one self-contained report.html for a run or a sweep folder."""
    import pyarrow as pa

    from sim import results
    from sim.report import folder_kind, make_report

    try:
        path, kind = folder_kind(folder)
        loaded = results.load(path) if kind == "run" else results.load_sweep(path)  # damage found first
        target = results.prepare_report_dir(out, path / "report")  # checked before anything is drawn
        for line in loaded.skipped:
            typer.echo(f"warning: {line}", err=True)
        try:
            html = make_report(folder, target)
        except (ValueError, TypeError, KeyError, AttributeError, OSError, pa.ArrowException) as exc:
            # damage the checks above do not know (a column of the wrong kind): one line, no traceback
            raise InputError(str(path), [Problem("", f"expected a result folder dcsim can read, got one it "
                                                     f"cannot report ({type(exc).__name__}: "
                                                     f"{' '.join(str(exc).split())[:160]})")]) from None
    except InputError as err:
        fail_input(err)
    if not quiet:
        typer.echo(str(html))


@app.command()
def metrics(
    json_: Annotated[bool, typer.Option("--json", help="print JSON (name -> unit, meaning, direction, headline)")
                     ] = False,
) -> None:
    """Every metric a run can produce: its unit, whether higher is better, and what it means."""
    import json

    from sim.mechanisms.registry import REGISTRY

    info = REGISTRY.metric_info()
    if json_:
        typer.echo(json.dumps({name: {"unit": m.unit, "meaning": m.meaning, "higher_is_better": m.higher_is_better,
                                      "headline": m.headline} for name, m in info.items()}, indent=2))
        return
    width = max(len(n) for n in info)
    for name, m in info.items():
        better = {True: "higher", False: "lower", None: ""}[m.higher_is_better]
        typer.echo(f"{name:<{width}}  {m.unit:<12}  {better:<6}  {m.meaning}")


# --------------------------------------------------------------------------- failure traces
trace_app = typer.Typer(cls=TyperGroup, no_args_is_help=True, help="Failure traces: export a run's faults.")
app.add_typer(trace_app, name="trace")


@trace_app.command("export")
def trace_export(
    folder: Annotated[str, typer.Argument(metavar="RUN", help="a run folder (with faults.parquet)")],
    out: Annotated[str | None, typer.Option("--out", help="trace file, .csv or .parquet (default RUN/trace.csv)")
                   ] = None,
) -> None:
    """Write a run's faults as a trace (node, start, end, kind) that a trace fault entry replays."""
    import pandas as pd

    from sim import results
    from sim.faults.trace import to_trace

    run_dir = Path(folder)
    faults = run_dir / "faults.parquet"
    try:
        if not faults.is_file():
            raise InputError(folder, [Problem("", f"expected a run folder with faults.parquet, got {show(folder)}")])
        target = Path(out) if out is not None else run_dir / "trace.csv"
        if target.suffix.lower() not in (".csv", ".parquet"):
            raise InputError("--out", [Problem("", f"expected a .csv or .parquet file, got {show(str(target))}")])
    except InputError as err:
        fail_input(err)
    table = to_trace(pd.read_parquet(faults))
    if target.suffix.lower() == ".parquet":
        results.write_parquet(target, table)
    else:
        results.write_text(target, table.to_csv(index=False, float_format="%.17g"))
    typer.echo(f"{target}: {len(table)} faults")


@app.command()
def fit(
    trace_file: Annotated[str, typer.Argument(metavar="TRACE", help="trace file (CSV or Parquet)")],
    kind: Annotated[str | None, typer.Option("--kind", help="fit only records of this fault kind")] = None,
    origin: Annotated[str | None, typer.Option("--origin", help="time 0 for ISO timestamps")] = None,
    horizon: Annotated[str | None, typer.Option("--horizon", help="end of observation (default: the last end); "
                                                "each node's last up time is censored there")] = None,
    per_node: Annotated[bool, typer.Option("--per-node", help="also fit each node with enough failures")] = False,
    plot: Annotated[str | None, typer.Option("--plot", help="ECDF-vs-fit PNG (default results/fit/<TRACE stem>.fit.png)")
                    ] = None,
) -> None:
    """Fit time to failure and time to repair (MLE, each family), rank by AIC, print the YAML to paste."""
    import numpy as np

    from sim import fit as fitting
    from sim.core.units import parse_duration

    try:
        end = None
        if horizon is not None:
            try:
                end = parse_duration(horizon)
            except ValueError as exc:
                raise InputError("--horizon", [Problem("", f"{exc}, got {show(horizon)}")]) from None
        table = fitting.read(trace_file, origin, kind)
        per = fitting.samples(table, end)
        up, cens, rep = (fitting.pooled(per, k) for k in ("up", "censored", "repair"))
        if len(up) < fitting.MIN_SAMPLES or len(rep) < fitting.MIN_SAMPLES:
            raise InputError(trace_file, [Problem("", f"expected at least {fitting.MIN_SAMPLES} up times and repairs "
                                                      f"to fit, got {len(up)} and {len(rep)}")])
    except InputError as err:
        fail_input(err)
    ttf = fitting.fit_sample(up, cens)
    ttr = fitting.fit_sample(rep)
    typer.echo(f"# {trace_file}: {len(per)} nodes; time to failure: {len(up)} up times + {len(cens)} censored at "
               "the end of observation (the time before each node's first failure is left out); "
               f"time to repair: {len(rep)} outages")
    typer.echo("# time to failure, ranked by AIC (KS: distance to the complete up times):")
    for line in fitting.describe(ttf):
        typer.echo("#" + line)
    typer.echo("# time to repair, ranked by AIC:")
    for line in fitting.describe(ttr):
        typer.echo("#" + line)
    if per_node:
        typer.echo("# per node (best family by AIC, nodes with at least "
                   f"{fitting.MIN_SAMPLES} up times):")
        for node, v in per.items():
            if len(v["up"]) >= fitting.MIN_SAMPLES:
                best = fitting.fit_sample(v["up"], v["censored"])[0]
                typer.echo(f"#   {node}: {fitting.to_yaml('time_to_failure', best)}")
    typer.echo(fitting.to_yaml("time_to_failure", ttf[0]))
    typer.echo(fitting.to_yaml("time_to_repair", ttr[0]))
    target = Path(plot) if plot is not None else Path("results") / "fit" / f"{Path(trace_file).stem}.fit.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    fitting.plot([("time to failure", up, cens, ttf[0]), ("time to repair", rep, np.empty(0), ttr[0])], target)
    typer.echo(f"# plot: {target}")


@app.command()
def schema() -> None:
    """The JSON Schema of a scenario file (for editors' YAML support; docs/reference/scenario.md reads it)."""
    import json

    from sim.reference import scenario_schema

    typer.echo(json.dumps(scenario_schema(), indent=2))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
