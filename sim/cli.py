"""The ``dcsim`` command (typer).

Exit codes: 0 success; 2 invalid input (one line per problem: file, dotted path,
expected, found; never a traceback); 1 an internal error. Long runs show a rich
progress bar on a terminal; ``--quiet`` or a non-terminal stderr turns it off.
New subcommands (sweep, compare, report, bench) register on ``app`` like ``run``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from sim.core.errors import InputError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="dcsim: a discrete-event datacenter resilience simulator.")

PROGRESS_AFTER_S = 2.0  # SPEC.md: runs longer than ~2 s of wall time show a progress bar


def fail_input(err: InputError) -> None:
    for line in err.lines():
        typer.echo(line, err=True)
    raise typer.Exit(2)


def load(path: str, overrides: list[str], seed: int | None):
    from sim.mechanisms.registry import config_models
    from sim.scenario.loader import load_scenario

    sets = list(overrides or [])
    if seed is not None:
        sets.append(f"seed={seed}")
    return load_scenario(path, sets, config_models())


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
    seed: Annotated[int | None, typer.Option("--seed", help="same as --set seed=N")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="PATH=VALUE override (repeatable)")] = None,
    trace: Annotated[bool, typer.Option("--trace", help="also write events.parquet")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bar, no summary table")] = False,
) -> None:
    """Run one scenario and write its result folder."""
    from sim import results
    from sim.runner import Simulation
    from sim.scenario.loader import dump_resolved

    try:
        sc = load(scenario, set_ or [], seed)
        simulation = Simulation(sc, trace=trace, source=scenario)
        path = results.prepare_dir(out, sc.name, force)
    except InputError as err:
        fail_input(err)
    progress = Progress(sc.duration, enabled=not quiet and sys.stderr.isatty())
    try:
        output = simulation.run(progress)
    finally:
        progress.close()
    results.write_run(path, output.tables, output.summary(), dump_resolved(sc))
    if out is None:
        results.link_latest(path)
    if not quiet:
        show_summary(output.metrics, path, output.wall_s, output.events)


def show_summary(metrics: dict[str, float], path: Path, wall_s: float, events: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{path}  ({events} events, {wall_s:.2f} s wall)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        table.add_row(name, f"{value:.6g}")
    Console().print(table)


@app.command()
def check(
    scenario: Annotated[str, typer.Argument(help="scenario YAML file")],
    seed: Annotated[int | None, typer.Option("--seed")] = None,
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
    hosts: Annotated[int | None, typer.Option("--hosts", help="scale the fleet down to N hosts")] = None,
    duration: Annotated[str | None, typer.Option("--duration", help="simulated time, e.g. 30d (default: the file's)")
                        ] = None,
    scenario: Annotated[str | None, typer.Option("--scenario", help="fleet scenario (default scenarios/fleet.yaml)")
                        ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bar, no table")] = False,
) -> None:
    """Throughput benchmark: the fleet scenario's events/s against a bare SimPy loop (SPEC.md, Benchmark)."""
    from sim import results
    from sim.bench import load_fleet, run_bench

    try:
        sc = load_fleet(scenario, hosts, duration)  # input errors before any timing starts
    except InputError as err:
        fail_input(err)
    progress = Progress(sc.duration, enabled=not quiet and sys.stderr.isatty())
    try:
        figures = run_bench(hosts, duration, scenario, progress=progress)
    except InputError as err:
        fail_input(err)
    finally:
        progress.close()
    if json_ is not None:
        results.write_json(Path(json_), figures)
    if not quiet:
        show_bench(figures)


def show_bench(f: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    fleet, bare = f["fleet"], f["bare"]
    table = Table(title=f"dcsim bench: {f['hosts']} hosts, {f['vms']} VMs, {f['duration_s'] / 86400:.0f} simulated days")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("fleet events", f"{fleet['events']:,}"),
        ("build_s", f"{fleet['build_s']:.2f}"),
        ("run_s (event loop)", f"{fleet['run_s']:.2f}"),
        ("run CPU s", f"{fleet['run_cpu_s']:.2f}"),
        ("write_s", f"{fleet['write_s']:.2f}"),
        ("fleet events/s", f"{fleet['events_per_s']:,.0f}"),
        ("bare events/s", f"{bare['events_per_s']:,.0f}"),
        ("ratio (fleet / bare)", f"{f['ratio']:.3g}"),
        ("wall_s", f"{f['wall_s']:.2f}"),
        ("peak_rss_mib", f"{f['peak_rss_mib']:.0f}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
