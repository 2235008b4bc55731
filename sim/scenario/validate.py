"""Cross-references of a schema-valid scenario: every name used is defined, every selector matches.

Checked here (each problem names its dotted path): duplicate names (sites, domains
within a site, storage systems, clusters, workloads, standalone hosts); host profiles,
WAN sites and storage sites that are not defined; a hypervisor reservation that leaves
no memory; cluster host globs and workload placement globs that match no host; a host
in two clusters; standalone hosts that do not exist or are cluster members, and
``derive_from`` naming a missing cluster; a working set larger than the VM; fault
targets that match nothing in their kind's namespace; operations naming a VM, host,
workload, cluster or site that does not exist. Whether VMs fit on their hosts is the
infrastructure builder's check, not this one.

A mechanism's config model may define ``check_references(scenario, path) -> list[Problem]``
for the names it uses (storage targets, host selectors); it is called for every
mechanism section present.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sim.core.errors import Problem, show
from sim.scenario.names import (
    all_domain_names,
    all_host_names,
    all_vm_names,
    link_names,
    matches_any,
    select,
)

if TYPE_CHECKING:
    from sim.scenario.schema import Scenario

__all__ = ["check_references", "Namespaces", "expected_name", "expected_glob"]

GiB = 1024.0**3


def expected_name(what: str, names: Sequence[str], got: str, *, suggest: bool = True) -> str:
    """``expected an existing site like "east", got "esat" (did you mean "east"?)``."""
    if not names:
        return f"expected an existing {what}, got {show(got)} (the scenario defines none)"
    text = f'expected an existing {what} like "{names[0]}", got {show(got)}'
    if suggest:
        close = difflib.get_close_matches(got, list(names), n=1, cutoff=0.6)
        if close and close[0] != names[0]:
            text += f' (did you mean "{close[0]}"?)'
    return text


def expected_glob(what: str, names: Sequence[str], got: str) -> str:
    """``expected a glob matching at least one host like "east/bd1/h00", got "west/*"``."""
    if not names:
        return f"expected a glob matching at least one {what}, got {show(got)} (the scenario defines none)"
    return f'expected a glob matching at least one {what} like "{names[0]}", got {show(got)}'


def _size(value: float) -> str:
    return f"{value / GiB:g}GiB"


class Namespaces:
    """The names a scenario defines, in file order."""

    def __init__(self, scenario: Scenario):
        infra = scenario.infrastructure
        self.hosts = all_host_names(infra)
        self.domains = all_domain_names(infra)
        self.sites = [s.name for s in infra.sites]
        self.links = link_names(infra)
        self.storage = [s.name for s in infra.storage]
        self.vms = all_vm_names(scenario.workloads)
        self.workloads = [w.name for w in scenario.workloads]
        self.clusters = [c.name for c in scenario.clusters]
        self.profiles = list(infra.host_profiles)

    def fault_targets(self, kind: str) -> tuple[str, list[str]]:
        """(what a target is called, the names it selects from) for a fault kind."""
        match kind:
            case "host_crash" | "disk_failure" | "image_drift" | "dimm_errors":
                return "host", self.hosts
            case "broadcast_domain_outage":
                return "broadcast domain (site/domain)", self.domains
            case "link_failure":
                return "link (site/domain, site or a-b)", self.links
            case "site_outage":
                return "site", self.sites
            case "storage_outage":
                return "storage system", self.storage
            case "vm_crash":
                return "VM", self.vms
        raise ValueError(kind)


def _globs(globs: Sequence[str], names: Sequence[str], path: str, what: str) -> list[Problem]:
    """A problem for each glob that matches nothing (path ends with the index when several)."""
    out = []
    for i, glob in enumerate(globs):
        if not matches_any(glob, names):
            where = path if len(globs) == 1 else f"{path}.{i}"
            out.append(Problem(where, expected_glob(what, names, glob)))
    return out


def check_references(scenario: Scenario) -> list[Problem]:
    """Every cross-reference problem of a schema-valid scenario, in file order."""
    ns = Namespaces(scenario)
    problems: list[Problem] = []
    problems += _infrastructure(scenario, ns)
    problems += _clusters(scenario, ns)
    problems += _workloads(scenario, ns)
    problems += _faults(scenario, ns)
    problems += _mechanisms(scenario)
    problems += _operations(scenario, ns)
    return problems


def _infrastructure(scenario: Scenario, ns: Namespaces) -> list[Problem]:
    infra = scenario.infrastructure
    out: list[Problem] = []
    for name, profile in infra.host_profiles.items():
        if profile.reserved_memory >= profile.memory:
            out.append(Problem(
                f"infrastructure.host_profiles.{name}.reserved_memory",
                f"expected less than the profile's memory ({_size(profile.memory)}), "
                f"got {_size(profile.reserved_memory)}",
            ))
    site_problems = _unique([s.name for s in infra.sites], "infrastructure.sites.{}.name", "site name")
    for i, site in enumerate(infra.sites):
        out += [p for p in site_problems if p.path == f"infrastructure.sites.{i}.name"]
        base = f"infrastructure.sites.{i}.broadcast_domains"
        out += _unique([d.name for d in site.broadcast_domains], base + ".{}.name", "broadcast domain name")
        for j, dom in enumerate(site.broadcast_domains):
            if dom.profile not in infra.host_profiles:
                out.append(Problem(f"{base}.{j}.profile", expected_name("host profile", ns.profiles, dom.profile)))
    pairs: set[frozenset[str]] = set()
    for i, link in enumerate(infra.wan):
        path = f"infrastructure.wan.{i}.sites"
        for k, site in enumerate(link.sites):
            if site not in ns.sites:
                out.append(Problem(f"{path}.{k}", expected_name("site", ns.sites, site)))
        a, b = link.sites
        if a == b:
            out.append(Problem(path, f"expected two different sites, got {show(a)} twice"))
        elif frozenset(link.sites) in pairs:
            out.append(Problem(path, f"expected one WAN link per pair of sites, got a second {a}-{b} link"))
        pairs.add(frozenset(link.sites))
    out += _unique([st.name for st in infra.storage], "infrastructure.storage.{}.name", "storage name")
    for i, st in enumerate(infra.storage):
        if st.site not in ns.sites:
            out.append(Problem(f"infrastructure.storage.{i}.site", expected_name("site", ns.sites, st.site)))
    return out


def _unique(names: list[str], path: str, what: str) -> list[Problem]:
    """A problem at ``path.format(index)`` for every name seen before in ``names``."""
    seen: set[str] = set()
    out = []
    for i, name in enumerate(names):
        if name in seen:
            out.append(Problem(path.format(i), f"expected a unique {what}, got {show(name)} again"))
        seen.add(name)
    return out


def _clusters(scenario: Scenario, ns: Namespaces) -> list[Problem]:
    out = _unique([c.name for c in scenario.clusters], "clusters.{}.name", "cluster name")
    member_of: dict[str, str] = {}
    for i, cluster in enumerate(scenario.clusters):
        path = f"clusters.{i}.hosts"
        if not cluster.hosts:
            out.append(Problem(path, "expected at least one host name or glob, got an empty list"))
        out += _globs(cluster.hosts, ns.hosts, path, "host")
        shared = None
        for host in select(cluster.hosts, ns.hosts):
            other = member_of.setdefault(host, cluster.name)
            if other != cluster.name and shared is None:
                shared = (host, other)
        if shared is not None:
            out.append(Problem(path, f"expected hosts of no other cluster, got {show(shared[0])} of cluster "
                                     f"{show(shared[1])}"))
    standalone: set[str] = set()
    for i, entry in enumerate(scenario.standalone_hosts):
        path = f"standalone_hosts.{i}"
        if entry.host not in ns.hosts:
            out.append(Problem(f"{path}.host", expected_name("host", ns.hosts, entry.host, suggest=False)))
        elif entry.host in member_of:
            out.append(Problem(f"{path}.host", f"expected a host outside every cluster, got {show(entry.host)} "
                                               f"of cluster {show(member_of[entry.host])}"))
        elif entry.host in standalone:
            out.append(Problem(f"{path}.host", f"expected a unique standalone host, got {show(entry.host)} again"))
        standalone.add(entry.host)
        if entry.derive_from not in ns.clusters:
            out.append(Problem(f"{path}.derive_from", expected_name("cluster", ns.clusters, entry.derive_from)))
    return out


def _workloads(scenario: Scenario, ns: Namespaces) -> list[Problem]:
    out = _unique([w.name for w in scenario.workloads], "workloads.{}.name", "workload name")
    for i, w in enumerate(scenario.workloads):
        path = f"workloads.{i}"
        if not w.placement.hosts:
            out.append(Problem(f"{path}.placement.hosts", "expected at least one host name or glob, got an empty list"))
        out += _globs(w.placement.hosts, ns.hosts, f"{path}.placement.hosts", "host")
    return out


def _faults(scenario: Scenario, ns: Namespaces) -> list[Problem]:
    out: list[Problem] = []
    for i, fault in enumerate(scenario.faults):
        what, names = ns.fault_targets(fault.kind)
        if fault.kind == "dimm_errors":
            out += _globs(fault.hosts, names, f"faults.{i}.hosts", what)
        elif fault.target is not None:
            out += _globs(fault.target, names, f"faults.{i}.target", what)
    return out


def _mechanisms(scenario: Scenario) -> list[Problem]:
    out: list[Problem] = []
    mechanisms = scenario.mechanisms
    for key in type(mechanisms).model_fields:
        config = getattr(mechanisms, key)
        check = getattr(config, "check_references", None)
        if config is not None and callable(check):
            out += list(check(scenario, f"mechanisms.{key}"))
    return out


def _operations(scenario: Scenario, ns: Namespaces) -> list[Problem]:
    out: list[Problem] = []

    def need(path: str, what: str, names: Sequence[str], got: str, suggest: bool = True) -> None:
        if got not in names:
            out.append(Problem(path, expected_name(what, names, got, suggest=suggest)))

    names = {"vm": ("VM", ns.vms, False), "host": ("host", ns.hosts, False), "site": ("site", ns.sites, True),
             "workload": ("workload", ns.workloads, True), "cluster": ("cluster", ns.clusters, True)}
    for i, op in enumerate(scenario.operations):
        for field, namespace in type(op).refs.items():
            what, known, suggest = names[namespace]
            need(f"operations.{i}.{field}", what, known, getattr(op, field), suggest=suggest)
    return out
