"""The mechanism contract: what a mechanism module declares, in one place, and its life cycle.

A mechanism is one module with one ``Mechanism`` subclass that declares, as class
attributes (``MechanismType`` states them as a Protocol):

- ``key``: its section under ``mechanisms.`` and its name in records;
- ``Config``: its pydantic config model (a ``MechanismConfig``: frozen, ``enabled``);
- ``tables``: the result tables it writes (``sim.metrics.tables.Table``);
- ``summaries``: pure functions ``(tables, RunInfo) -> {metric: number}``, run whether
  it is enabled or not (a disabled mechanism's metrics measure the naive behaviour);
- ``metrics``: the metadata (``sim.metrics.meta.Metric``: unit, meaning, direction) of
  every metric its summaries can produce;
- ``operations``: operation kind -> its pydantic model (``{kind, at, ...}``); the
  platform validates them and calls ``carry_out(op)`` at the operation's time;
- ``offers`` / ``needs``: names of services (``ctx.services[name]``) it offers to other
  mechanisms and needs from them. Mechanisms never import each other;
- ``reads``: what state of the datacenter it reads that only faults change (``"images"``):
  a fault whose only effect no enabled mechanism reads is warned about;
- ``said(metrics, info)``: its line in the terminal summary of ``dcsim run`` (what it did and,
  where cheap to state, what it saved against its counterfactual); by default its headline
  metrics and its other non-zero metrics in their units;
- class-level hooks on the validated scenario: ``budget`` (what it would make, checked
  against the limits before names are generated), ``resolve`` (scenario-dependent defaults
  filled, shown by ``dcsim check``), ``advisories`` (warnings) and ``scale`` (its populations
  for ``dcsim bench --hosts``).

Life cycle, all but ``start`` before time 0 (desmod's elaborate-then-run):
``__init__`` stores references; ``build(builder)`` places the VMs it owns through the
shared placement (a VM that does not fit is an input error with its dotted path);
``wire()`` subscribes to failures and registers handlers; ``start()`` spawns standing
processes.

Absent, disabled, enabled: one pattern. ``self.config`` is never None: an absent section
is the config's defaults with ``enabled`` false (an ``always_on`` mechanism's defaults,
enabled). Every registered mechanism is constructed and summarised, so its tables and
metrics exist. ``build``, ``wire`` and ``start`` run only when it is enabled, or when its
class says ``naive = True``: its phases then also carry out the naive behaviour (what
the system does without it: disabled replication still builds its primaries), reading
``self.enabled`` to choose. A mechanism with nothing to do when disabled needs no guard.

The platform checks at wiring that no two mechanisms claim one operation kind, and
that every service an enabled mechanism needs is offered by an enabled one.
``docs/extending.md`` walks through writing a mechanism.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from sim.metrics.meta import expand, lookup

if TYPE_CHECKING:
    import pandas as pd

    from sim.core.causes import Cause
    from sim.core.context import Context
    from sim.core.errors import Problem
    from sim.infra.build import Builder
    from sim.infra.datacenter import VM, Datacenter
    from sim.infra.placement import Rule
    from sim.metrics.meta import Metric
    from sim.metrics.summary import RunInfo
    from sim.metrics.tables import Table

Summary = Callable[["dict[str, pd.DataFrame]", "RunInfo"], dict[str, float]]


@dataclass(frozen=True)
class Need:
    """What a mechanism's section would make, checked against a budget before anything is built:
    ``limit`` a key of ``sim.scenario.limits.LIMITS`` (``"vms"``, ``"events"``, ...), ``path`` the
    dotted path under the section the problem names, ``amount`` the count (an estimate for events),
    ``advice`` how to lower it."""

    limit: str
    path: str
    amount: float
    advice: str


def scaled(count: int, factor: float) -> int:
    """A population scaled with the fleet (``dcsim bench --hosts``): ``round(count x factor)``, at
    least 1 when ``count`` is positive, as the bench scales workloads."""
    return max(1, round(count * factor)) if count > 0 else count


def with_first_storage(config: Any, scenario: Any, field: str = "storage") -> Any:
    """A ``resolve`` step shared by mechanisms that write to a storage system: ``config`` with
    ``field`` set to the scenario's first storage system when the file leaves it out (unchanged
    when it names one, or when the scenario has none: the reference check then says so)."""
    storage = scenario.infrastructure.storage
    if getattr(config, field) is None and storage:
        return config.model_copy(update={field: storage[0].name})
    return config


class MechanismConfig(BaseModel):
    """Base of every mechanism's config: frozen, unknown keys rejected, ``enabled`` default true."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True


@runtime_checkable
class MechanismType(Protocol):
    """What the registry needs of a mechanism class (the contract, checked at wiring)."""

    key: ClassVar[str]
    Config: ClassVar[type[MechanismConfig]]
    tables: ClassVar[tuple[Table, ...]]
    summaries: ClassVar[tuple[Summary, ...]]
    metrics: ClassVar[tuple[Metric, ...]]
    operations: ClassVar[Mapping[str, type[BaseModel]]]
    offers: ClassVar[tuple[str, ...]]
    needs: ClassVar[tuple[str, ...]]
    always_on: ClassVar[bool]
    naive: ClassVar[bool]

    def __init__(self, ctx: Context, dc: Datacenter, config: Any) -> None: ...
    def build(self, builder: Builder) -> None: ...
    def wire(self) -> None: ...
    def start(self) -> None: ...
    def carry_out(self, op: Any) -> Generator[Any, Any, Any]: ...
    def vm_stopped(self, vm: VM, cause: Cause) -> None: ...
    def placement_rule(self, vm: VM) -> Rule | None: ...


class Mechanism:
    """Base class with empty defaults for everything optional in the contract."""

    key: ClassVar[str] = ""
    Config: ClassVar[type[MechanismConfig]] = MechanismConfig
    tables: ClassVar[tuple[Table, ...]] = ()
    summaries: ClassVar[tuple[Summary, ...]] = ()
    metrics: ClassVar[tuple[Metric, ...]] = ()
    operations: ClassVar[Mapping[str, type[BaseModel]]] = {}
    offers: ClassVar[tuple[str, ...]] = ()
    needs: ClassVar[tuple[str, ...]] = ()
    reads: ClassVar[tuple[str, ...]] = ()
    # Its build/wire/start run when disabled too, carrying out the naive behaviour.
    naive: ClassVar[bool] = False
    # Available with its defaults when its section is absent (only live_migration, the
    # service every mechanism migrates through).
    always_on: ClassVar[bool] = False

    # -- class-level hooks, called on the validated scenario before anything is built ------------
    @classmethod
    def budget(cls, config: Any, scenario: Any) -> list[Need]:
        """What the section (present, enabled or not) would make: VMs, expected events, ... each
        checked with the workloads' and faults' against ``sim.scenario.limits`` before a single
        name is generated. Default: nothing."""
        return []

    @classmethod
    def resolve(cls, config: Any, scenario: Any) -> Any:
        """The config with its scenario-dependent defaults filled (``dcsim check`` prints them):
        a new config (``config.model_copy(update=...)``), called for a present section after
        the schema and the budgets, before ``check_references``. Default: unchanged."""
        return config

    @classmethod
    def advisories(cls, config: Any, scenario: Any) -> list[Problem]:
        """What is valid but has no effect, printed as warnings; ``config`` is None when the
        section is absent. Default: nothing."""
        return []

    @classmethod
    def scale(cls, section: dict[str, Any], factor: float) -> dict[str, Any]:
        """The raw ``mechanisms.<key>`` mapping of a fleet ``factor`` times as large (``dcsim bench
        --hosts``): populations scale like the workloads (``scaled``). Default: unchanged."""
        return section

    # -- class-level hook on a finished run's metrics -----------------------------------------------
    @classmethod
    def said(cls, metrics: Mapping[str, float], info: Mapping[str, Metric]) -> str | None:
        """Its line in the terminal summary of ``dcsim run``: what it did in this run and, where cheap to
        state, what it saved against its counterfactual. ``metrics``: the run's metrics (base units,
        as in summary.json); ``info``: metric name -> ``Metric`` (``REGISTRY.metric_info()``), to
        format any metric in its unit (``sim.format.value``). Comma-separated clauses, the most
        telling first: the summary keeps what fits 80 columns and ends with "..." when it drops
        some. None: nothing to say (the summary reads "nothing to do in this run").

        Default: its own metrics worth a glance, ``label value`` each (``sim.readout.phrase``): its
        ``<area>.count`` first, then its ``headline`` metrics, then the others; zeros left out,
        statistics only as their maximum."""
        from sim.readout import phrase  # imported late: the readout reads the registry

        own = expand(cls.metrics)
        return phrase(metrics, [n for n in metrics if lookup(own, n) is not None], info) or None

    def __init__(self, ctx: Context, dc: Datacenter, config: Any):
        self.ctx = ctx
        self.dc = dc
        self.env = ctx.env
        if config is None:  # absent: the defaults (resolved), disabled unless the mechanism is always on
            config = self.resolve(self.Config() if self.always_on else self.Config(enabled=False), ctx.scenario)
        self.config = config
        self.enabled = bool(config.enabled)

    def build(self, builder: Builder) -> None:
        """Create and place the VMs this mechanism owns (before wiring). Default: none."""

    def wire(self) -> None:
        """Subscribe to failures, register handlers (before time 0). A disabled mechanism
        registers nothing that changes behaviour, so the naive behaviour applies."""

    def start(self) -> None:
        """Spawn standing processes (at time 0)."""

    def carry_out(self, op: Any) -> Generator[Any, Any, Any]:
        """Carry out one of ``operations`` (a generator run as a process; its return value is
        the operation's detail; raise ``OperationFailed`` to fail it)."""
        raise TypeError(f"mechanism {self.key!r} declares operations but has no carry_out")

    def vm_stopped(self, vm: VM, cause: Cause) -> None:
        """A VM this mechanism owns stopped (its host failed, it crashed): the mechanism alone
        handles it; the default recovery never sees it."""

    def placement_rule(self, vm: VM) -> Rule | None:
        """Where a VM this mechanism owns may go now; None = its own rule (``vm.rule``).

        Every mover (restart, evacuation, migration, remediation) asks through
        ``Datacenter.rule_for``, so a constraint that depends on where other VMs are (a copy
        never on the host of another copy) holds whoever moves the VM. The rule comes from
        ``dc.placement`` (``rule``, ``within``, ``without``) and the mechanism keeps it current."""
        return None
