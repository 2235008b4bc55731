"""The explicit registry of mechanisms, in the sorted order in which they react to a stopped VM.

Adding a mechanism: write its module (see ``docs/extending.md``) and add its class to
``MECHANISMS``. Nothing else changes: the scenario schema, the result tables, the
summaries and the operation dispatch are all assembled from the registry.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from pydantic import BaseModel

from sim.mechanisms.backup_priority import BackupPriority
from sim.mechanisms.base import Mechanism, MechanismType
from sim.mechanisms.charging import Charging
from sim.mechanisms.live_migration import LiveMigration
from sim.mechanisms.live_recovery import LiveRecovery
from sim.mechanisms.memory_error_evacuation import MemoryErrorEvacuation
from sim.mechanisms.remediation import Remediation
from sim.mechanisms.replication import Replication
from sim.mechanisms.roaming_storage import RoamingStorage
from sim.mechanisms.sessions import Sessions
from sim.mechanisms.snapshot_discovery import SnapshotDiscovery
from sim.mechanisms.workload_manager import WorkloadManager
from sim.metrics import summary
from sim.metrics.meta import DuplicateMetric, Metric, expand, lookup
from sim.metrics.tables import ALL_TABLES

MECHANISMS: tuple[type[Mechanism], ...] = (BackupPriority, Charging, LiveMigration, LiveRecovery,
                                          MemoryErrorEvacuation, Remediation, Replication, RoamingStorage, Sessions,
                                          SnapshotDiscovery, WorkloadManager)


class WiringError(Exception):
    """A defect in the mechanisms' declarations (two claim one operation kind, ...): found before time 0."""


class Registry(Mapping[str, type[BaseModel]]):
    """Mechanism classes by key, in sorted key order. As a mapping: key -> config model (the schema's
    ``mechanisms`` section); ``operation_models()`` adds the operation kinds they carry out."""

    def __init__(self, classes: Iterable[type[Mechanism]]):
        classes = list(classes)
        problems = []
        for cls in classes:
            if not isinstance(cls, MechanismType) and not _declares(cls):
                problems.append(f"{cls!r} does not follow the mechanism contract")
            if not cls.key:
                problems.append(f"{cls.__name__} has no key")
        keys = [c.key for c in classes]
        for k in sorted(set(keys)):
            if keys.count(k) > 1:
                problems.append(f"two mechanisms have the key {k!r}")
        self.classes: dict[str, type[Mechanism]] = {c.key: c for c in sorted(classes, key=lambda c: c.key)}
        self.kinds: dict[str, type[Mechanism]] = {}
        for cls in self.classes.values():
            for kind in cls.operations:
                other = self.kinds.get(kind)
                if other is not None:
                    problems.append(f"mechanisms {other.key!r} and {cls.key!r} both claim operation kind {kind!r}")
                else:
                    self.kinds[kind] = cls
        seen = dict.fromkeys(ALL_TABLES, "the platform")
        for cls in self.classes.values():
            for t in cls.tables:
                other = seen.get(t.name)
                if other is not None:
                    problems.append(f"{other} and mechanism {cls.key!r} both declare table {t.name!r}")
                else:
                    seen[t.name] = f"mechanism {cls.key!r}"
        try:
            self._metrics = expand((*summary.METRICS, *(m for c in self.classes.values() for m in c.metrics)))
        except DuplicateMetric as exc:
            problems.append(str(exc))
        if problems:
            raise WiringError("; ".join(problems))

    # -- Mapping: key -> config model -------------------------------------------------------------
    def __getitem__(self, key: str) -> type[BaseModel]:
        return self.classes[key].Config

    def __iter__(self) -> Iterator[str]:
        return iter(self.classes)

    def __len__(self) -> int:
        return len(self.classes)

    def __hash__(self) -> int:
        return hash(tuple(self.classes.items()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Registry) and self.classes == other.classes

    # -- what the platform assembles --------------------------------------------------------------
    def operation_models(self) -> dict[str, type[BaseModel]]:
        """Operation kind -> model, for every kind a registered mechanism carries out."""
        return {kind: cls.operations[kind] for kind, cls in self.kinds.items()}

    def always_on(self) -> frozenset[str]:
        return frozenset(k for k, c in self.classes.items() if c.always_on)

    def tables(self):
        return tuple(t for c in self.classes.values() for t in c.tables)

    def summaries(self):
        return tuple(f for c in self.classes.values() for f in c.summaries)

    def metric_info(self) -> dict[str, Metric]:
        """Metric name -> metadata, the platform's and every mechanism's, ``_*`` expanded
        (``.*`` patterns kept: ``metric(name)`` resolves a concrete name)."""
        return dict(self._metrics)

    def metric(self, name: str) -> Metric | None:
        """The metadata of concrete metric ``name`` (``faults.host_crash`` matches ``faults.*``), or None."""
        return lookup(self._metrics, name)


def _declares(cls: object) -> bool:
    return isinstance(cls, type) and issubclass(cls, Mechanism)


REGISTRY = Registry(MECHANISMS)


def config_models() -> Registry:
    """Mechanism key -> its pydantic config model (assembled into the scenario schema)."""
    return REGISTRY
