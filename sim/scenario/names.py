"""Names of generated things, and shell-style glob selectors over ordered name lists.

A host is ``site/domain/hNN`` and a VM ``workload-NNN``, numbered from 0. Hosts are
zero-padded to at least 2 digits, wider when the domain's count needs it (128 hosts:
``h000``-``h127``). A VM's name does not depend on its workload's count: at least 3
digits, more only where the index needs them (``web-000`` ... ``web-999``,
``web-1000``), so growing a workload past 1,000 VMs (a ``--set`` sweep over ``count``)
keeps every name a scenario refers to. A broadcast domain is ``site/domain``, a
WAN link ``a-b`` (its two sites in the order the file gives them).

Selectors are shell-style globs matched with ``fnmatch.fnmatchcase`` (case-sensitive,
``*`` also crosses ``/``: ``east/*`` is every host of site east).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.scenario.schema import Infrastructure, Scenario, Workload

__all__ = [
    "width",
    "host_name",
    "vm_name",
    "host_names",
    "vm_names",
    "domain_name",
    "wan_link_name",
    "all_host_names",
    "all_domain_names",
    "all_vm_names",
    "link_names",
    "select",
    "matches_any",
    "is_glob",
    "pattern",
]


def width(count: int, minimum: int) -> int:
    """Digits needed to number ``count`` things from 0, at least ``minimum``."""
    return max(minimum, len(str(max(count - 1, 0))))


def host_name(site: str, domain: str, index: int, count: int) -> str:
    """``site/domain/hNN``: host ``index`` of a domain of ``count`` hosts."""
    return f"{site}/{domain}/h{index:0{width(count, 2)}d}"


VM_DIGITS = 3  # a VM number's minimum digits


def vm_name(workload: str, index: int, count: int | None = None) -> str:
    """``workload-NNN``: VM ``index`` (at least 3 digits, more only when ``index`` needs them). ``count``
    is accepted for callers that pass it and has no effect: a name never depends on the count."""
    return f"{workload}-{index:0{VM_DIGITS}d}"


def host_names(site: str, domain: str, count: int) -> list[str]:
    return [host_name(site, domain, i, count) for i in range(count)]


def vm_names(workload: str, count: int) -> list[str]:
    return [vm_name(workload, i, count) for i in range(count)]


def domain_name(site: str, domain: str) -> str:
    return f"{site}/{domain}"


def wan_link_name(a: str, b: str) -> str:
    return f"{a}-{b}"


def all_host_names(infra: Infrastructure) -> list[str]:
    """Every host, in file order (site, then domain, then number)."""
    return [
        name
        for site in infra.sites
        for dom in site.broadcast_domains
        for name in host_names(site.name, dom.name, dom.hosts)
    ]


def all_domain_names(infra: Infrastructure) -> list[str]:
    return [domain_name(site.name, dom.name) for site in infra.sites for dom in site.broadcast_domains]


def all_vm_names(workloads: Iterable[Workload] | Scenario) -> list[str]:
    """Every workload VM, in file order."""
    items = getattr(workloads, "workloads", workloads)
    return [name for w in items for name in vm_names(w.name, w.count)]


def link_names(infra: Infrastructure) -> list[str]:
    """Targets of ``link_failure``: domain uplinks ``site/domain``, site cores ``site``, WAN links ``a-b``."""
    return (
        all_domain_names(infra)
        + [site.name for site in infra.sites]
        + [wan_link_name(*w.sites) for w in infra.wan]
    )


@lru_cache(maxsize=1024)
def _compiled(globs: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in globs) or "(?!)")


def pattern(globs: str | Iterable[str]) -> re.Pattern[str]:
    """One compiled pattern matching any of the globs (``pattern(g).match(name)``)."""
    return _compiled(_as_tuple(globs))


def _as_tuple(globs: str | Iterable[str]) -> tuple[str, ...]:
    return (globs,) if isinstance(globs, str) else tuple(globs)


def select(globs: str | Iterable[str], names: Sequence[str]) -> list[str]:
    """The names any glob matches, in the order of ``names``, each once."""
    pattern = _compiled(_as_tuple(globs))
    seen: set[str] = set()
    out: list[str] = []
    for name in names:
        if name not in seen and pattern.match(name):
            seen.add(name)
            out.append(name)
    return out


def matches_any(glob: str, names: Iterable[str]) -> bool:
    """Whether one glob matches at least one of ``names``."""
    pattern = _compiled((glob,))
    return any(pattern.match(n) for n in names)


def is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")
