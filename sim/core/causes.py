"""Typed causes: why a host, VM, link or flow stopped. Processes are interrupted with these.

Match on the class (``match cause: case HostDown(): ...``); never on strings.
Each cause's ``kind`` is the value written to ``incidents.cause``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cause:
    at: float

    kind = "fault"


@dataclass(frozen=True)
class HostDown(Cause):
    """A host stopped: crash, domain or site outage, disk failure, memory error."""

    host: str
    kind: str = "host_crash"


@dataclass(frozen=True)
class VmCrash(Cause):
    vm: str
    kind: str = "vm_crash"


@dataclass(frozen=True)
class LinkDown(Cause):
    link: str
    kind: str = "link_failure"


@dataclass(frozen=True)
class StorageDown(Cause):
    storage: str
    kind: str = "storage_outage"


@dataclass(frozen=True)
class MemoryErrorCause(Cause):
    """An uncorrectable memory error hit a VM's page, or crashed its host."""

    host: str
    kind: str = "memory_error"


@dataclass(frozen=True)
class Lost(Cause):
    """Stopped on purpose by a mechanism or operation (a recover operation, a post-copy loss)."""

    subject: str
    kind: str = "operation"
