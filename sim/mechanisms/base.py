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
  mechanisms and needs from them. Mechanisms never import each other.

Life cycle, all but ``start`` before time 0 (desmod's elaborate-then-run):
``__init__`` stores references; ``build(builder)`` places the VMs it owns through the
shared placement (a VM that does not fit is an input error with its dotted path);
``wire()`` subscribes to failures and registers handlers; ``start()`` spawns standing
processes. Every registered mechanism is constructed, built, wired and summarised,
disabled ones too: each decides what disabled means (usually nothing), so that its
tables and metrics exist.

The platform checks at wiring that no two mechanisms claim one operation kind, and
that every service an enabled mechanism needs is offered by an enabled one.
``docs/extending.md`` walks through writing a mechanism.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    import pandas as pd

    from sim.core.causes import Cause
    from sim.core.context import Context
    from sim.infra.build import Builder
    from sim.infra.datacenter import VM, Datacenter
    from sim.metrics.meta import Metric
    from sim.metrics.summary import RunInfo
    from sim.metrics.tables import Table

Summary = Callable[["dict[str, pd.DataFrame]", "RunInfo"], dict[str, float]]


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

    def __init__(self, ctx: Context, dc: Datacenter, config: Any) -> None: ...
    def build(self, builder: Builder) -> None: ...
    def wire(self) -> None: ...
    def start(self) -> None: ...
    def carry_out(self, op: Any) -> Generator[Any, Any, Any]: ...
    def vm_stopped(self, vm: VM, cause: Cause) -> None: ...


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
    # Available with its defaults when its section is absent (only live_migration, MECHANISMS.md).
    always_on: ClassVar[bool] = False

    def __init__(self, ctx: Context, dc: Datacenter, config: Any):
        self.ctx = ctx
        self.dc = dc
        self.env = ctx.env
        if config is None and self.always_on:
            config = self.Config()
        self.config = config
        self.enabled = bool(config is not None and config.enabled)

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
