"""Prioritized-block backup: ``mechanisms.backup_priority`` (docs/data_protection.md).

A VM's disk is divided into attribute classes, each a ``share`` of the disk or a ``size`` in
bytes (the one class with neither takes the rest). A class's attribute flags give its blocks'
priority: 0 boot-critical, 1 executable, 2 recently accessed, 3 the rest (a class with several
flags takes the most urgent). Every backup of a VM stores that class map with its blocks (the
classes are fixed for a run, so every point of a VM stores the same map: the ``block_classes``
table has it once per VM backed up), and a restore or a live recovery sends the blocks in
priority order: the class ranges by priority, classes of one priority in the order written. A
VM is *usable* when every block with priority <= ``usable_priority`` has arrived.

The order is offered as a service, ``ctx.services["block_order"]`` (this mechanism, enabled):

- ``ranges(vm, disk_bytes) -> [(class, priority, bytes), ...]``: the send order, byte ranges
  per class (empty classes left out), summing to ``disk_bytes``;
- ``usable_bytes(vm, disk_bytes) -> float``: the bytes of the prefix a VM needs to be usable.

Consumers move the ranges as byte ranges (a few consecutive transfers), never a block at a
time. Without it (the service absent): blocks go in disk order with the classes interleaved,
so the VM is usable only when its whole disk has arrived.

Metric: ``restore.time_to_usable_s_*``, per restore operation from the operation to the moment
its last VM is usable, from the ``restores`` table's ``usable_end_s`` (written by whoever carries
out restores), enabled or disabled alike (disabled: the restore's end).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pydantic import Field

from sim import format as fmt
from sim.core.errors import Problem, show
from sim.mechanisms.base import Mechanism, MechanismConfig
from sim.metrics.meta import Metric
from sim.metrics.summary import stats
from sim.metrics.tables import table
from sim.scenario.schema import Model
from sim.scenario.types import Fraction, Name, NonNegInt, NonNegSize
from sim.scenario.validate import unique_problems

if TYPE_CHECKING:
    import pandas as pd

    from sim.infra.datacenter import VM
    from sim.metrics.summary import RunInfo

KEY = "backup_priority"
BOOT, EXECUTABLE, RECENT, REST = 0, 1, 2, 3  # block priorities, most urgent first
UNCLASSIFIED = "unclassified"  # the range of a disk no class covers (shares below 1 and no rest class)
# a remainder this small (relative to the disk) is rounding of shares that sum to 1, not a range
ROUNDING = 1e-9


class BlockClass(Model):
    """One attribute class of every VM disk: its share or size, and the attributes of its files."""

    name: Name
    share: Fraction | None = None  # of each VM's disk
    size: NonNegSize | None = None  # bytes of each VM's disk (at most the disk: clipped)
    boot_critical: bool = False
    executable: bool = False
    recently_accessed: bool = False

    @property
    def priority(self) -> int:
        if self.boot_critical:
            return BOOT
        if self.executable:
            return EXECUTABLE
        if self.recently_accessed:
            return RECENT
        return REST

    @property
    def is_rest(self) -> bool:
        return self.share is None and self.size is None


# dcsim's default split of a VM disk (docs/data_protection.md): a small boot and system part and a
# larger hot part, the bulk cold. Only a small part of an image is needed to start a VM (Razavi &
# Kielmann, SC13; VMTorrent, Reich et al., CoNEXT 2012: a few hundred MB of reads to launch).
DEFAULT_CLASSES = (
    BlockClass(name="boot", share=0.02, boot_critical=True),
    BlockClass(name="system", share=0.08, executable=True),
    BlockClass(name="hot", share=0.20, recently_accessed=True),
    BlockClass(name="cold", share=0.70),
)


class Config(MechanismConfig):
    classes: tuple[BlockClass, ...] = Field(DEFAULT_CLASSES, min_length=1)
    # usable once every block of priority <= this has arrived: boot-critical and executable blocks
    usable_priority: NonNegInt = EXECUTABLE

    def check_references(self, scenario, path: str) -> list[Problem]:
        at = f"{path}.classes"
        out = unique_problems([c.name for c in self.classes], f"{at}.{{}}.name", "class name")
        rest = [i for i, c in enumerate(self.classes) if c.is_rest]
        for i in rest[1:]:
            out.append(Problem(f"{at}.{i}", f"expected a share or a size (only one class takes the rest, and "
                                            f"classes.{rest[0]} already does), got neither"))
        for i, c in enumerate(self.classes):
            if c.share is not None and c.size is not None:
                out.append(Problem(f"{at}.{i}", f"expected a share or a size, not both, got share {show(c.share)} "
                                                f"and size {show(c.size)}"))
        total = math.fsum(c.share for c in self.classes if c.share is not None)
        if total > 1.0 + ROUNDING:
            out.append(Problem(at, f"expected shares summing to at most 1, got {total:g}"))
        if self.usable_priority > REST:
            out.append(Problem(f"{path}.usable_priority",
                               f"expected a priority from 0 to {REST}, got {show(self.usable_priority)}"))
        return out


def split(classes: tuple[BlockClass, ...], disk: float) -> list[tuple[str, int, float]]:
    """Bytes of each class of a disk of ``disk`` bytes, in class order: a share is that fraction of
    the disk, a size those bytes, each clipped to what the classes before it left; the rest class
    (or, with none, an ``unclassified`` range of priority 3) takes what is left."""
    disk = max(0.0, float(disk))
    out: list[tuple[str, int, float]] = []
    left = disk
    rest = None
    for c in classes:
        if c.is_rest:
            rest = len(out)
            out.append((c.name, c.priority, 0.0))
            continue
        want = c.share * disk if c.share is not None else c.size
        got = min(want, left)
        left -= got
        out.append((c.name, c.priority, got))
    if rest is not None:
        name, prio, _ = out[rest]
        out[rest] = (name, prio, left)
    elif left > ROUNDING * disk:
        out.append((UNCLASSIFIED, REST, left))
    elif left > 0.0:  # shares summing to 1 up to rounding: the last class with bytes absorbs it
        i = max(i for i, r in enumerate(out) if r[2] > 0.0)
        name, prio, b = out[i]
        out[i] = (name, prio, b + left)
    return out


def order(classes: tuple[BlockClass, ...], disk: float) -> list[tuple[str, int, float]]:
    """The send order: the classes' ranges by priority (stable: in class order within a priority),
    empty ones left out (and those below a billionth of the disk: rounding, not data)."""
    tiny = ROUNDING * disk
    ranges = sorted((r for r in split(classes, disk) if r[2] > tiny), key=lambda r: r[1])
    if ranges:  # the last range absorbs rounding: the bytes add up to the disk to an ulp or two
        name, prio, _ = ranges[-1]
        ranges[-1] = (name, prio, float(disk) - sum(r[2] for r in ranges[:-1]))
    return ranges


BLOCK_CLASSES = table("block_classes", "time_s", "vm:str", "workload:str", "class_name:str", "priority:i8",
                      "offset_bytes", "bytes", "usable:bool")


def backup_priority_metrics(t: dict[str, pd.DataFrame], info: RunInfo) -> dict[str, float]:
    """``restore.time_to_usable_s_*`` from the ``restores`` table: per restore operation, the time
    from the operation to its last VM's usable moment (its completed copies, as ``restore.time_s``
    counts them). Without block priorities every copy is usable at its end."""
    r = t.get("restores")
    if r is None or not len(r):
        return {}
    rows = r[(r["kind"] == "restore") & (r["outcome"] == "completed")]
    if not len(rows):
        return {}
    g = rows.groupby("op")
    return stats("restore.time_to_usable_s", g["usable_end_s"].max() - g["time_s"].min())


class BackupPriority(Mechanism):
    key = KEY
    Config = Config
    tables = (BLOCK_CLASSES,)
    summaries = (backup_priority_metrics,)
    offers = ("block_order",)
    metrics = (
        Metric("restore.time_to_usable_s_*", "s",
               "from a restore operation to its last VM usable (every block of priority <= usable_priority "
               "arrived; disabled: its last byte)", False, headline=True),
    )

    @classmethod
    def said(cls, metrics, info):
        """When the restored VMs were usable against when their restore ended (its counterfactual: usable
        only at the end)."""
        usable, full = metrics.get("restore.time_to_usable_s_max"), metrics.get("restore.time_s_max")
        if usable is None or full is None:
            return None
        return f"usable after {fmt.duration(usable)}, restored after {fmt.duration(full)} (max)"

    # -- the block_order service ------------------------------------------------------------------------
    def ranges(self, vm: VM, disk_bytes: float) -> list[tuple[str, int, float]]:
        """(class, priority, bytes) in send order, summing to ``disk_bytes``."""
        return order(self.config.classes, disk_bytes)

    def usable_bytes(self, vm: VM, disk_bytes: float) -> float:
        """Bytes of the prefix that must arrive before the VM is usable."""
        u = self.config.usable_priority
        return math.fsum(b for _, p, b in self.ranges(vm, disk_bytes) if p <= u)

    # -- life cycle ----------------------------------------------------------------------------------------
    def start(self) -> None:
        self.ctx.finalizers.append(self._finish)

    def _finish(self, now: float) -> None:
        """The class map every backup point of a VM stores, once per VM with a point."""
        catalog = self.ctx.services.get("catalog")
        if catalog is None:
            return
        u = self.config.usable_priority
        rec = self.ctx.recorder.record
        for vm in self.dc.vms.values():
            if vm.owner is not None or catalog.newest(vm.name, math.inf) is None:
                continue
            offset = 0.0
            for name, prio, b in self.ranges(vm, vm.spec.disk):
                rec("block_classes", time_s=now, vm=vm.name, workload=vm.workload, priority=prio,
                    offset_bytes=offset, bytes=b, usable=prio <= u, class_name=name)
                offset += b

    @classmethod
    def advisories(cls, config: Config | None, scenario: Any) -> list[Problem]:
        if config is None or not config.enabled:
            return []
        out = []
        if config.usable_priority >= REST:
            out.append(Problem(f"mechanisms.{KEY}.usable_priority",
                               f"every block has a priority <= {REST}: a restored VM is usable only at its end"))
        sized = math.fsum(c.size for c in config.classes if c.size is not None)
        for w in scenario.workloads:
            if sized > w.vm.disk:
                out.append(Problem(f"mechanisms.{KEY}.classes",
                                   f"the sizes add up to {sized:.4g} bytes, more than workload {w.name!r}'s "
                                   f"{w.vm.disk:.4g}-byte disks: the classes written last are clipped"))
        return out
