"""Cross-references of a schema-valid scenario: every name used is defined, every selector matches.

Checked here (each problem names its dotted path): duplicate names (sites, domains
within a site, storage systems, clusters, workloads, standalone hosts); host profiles,
WAN sites and storage sites that are not defined; a hypervisor reservation that leaves
no memory; cluster host globs and workload placement globs that match no host; a host
in two clusters; standalone hosts that do not exist or are cluster members, and
``derive_from`` naming a missing cluster; a working set larger than the VM; fault
targets that match nothing in their kind's namespace; operations naming a VM, host,
workload, cluster or site that does not exist; a VM with more vCPUs than every host its
placement allows has cores (overcommitting the total stays allowed). Whether VMs fit
in their hosts' memory is the infrastructure builder's check, not this one.

Before any of that, ``check_counts`` refuses host and VM totals above their limits
(before a single name is generated; a mechanism's VMs count, from its class's
``budget``); after it, ``check_budgets`` refuses scenarios whose DIMM population or
expected number of fault, sample and mechanism events is absurd (``sim.scenario.limits``,
docs/limits.md). ``advisories`` lists what is valid but has no effect (a fault whose only
effect no enabled mechanism reads, and each mechanism's own ``advisories``): the CLI
prints them as warnings. ``resolve_mechanisms`` fills each present section's
scenario-dependent defaults (the class's ``resolve``).

A mechanism's config model may define ``check_references(scenario, path) -> list[Problem]``
for the names it uses (storage targets, host selectors); it is called for every
mechanism section present. ``registry`` arguments are the mechanism registry (anything
with ``classes``: key -> mechanism class); a plain mapping of config models has no
class-level hooks.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sim.core.errors import Problem, show
from sim.scenario.limits import LIMITS, limit, number
from sim.scenario.names import (
    all_domain_names,
    all_host_names,
    all_vm_names,
    link_names,
    matches_any,
    pattern,
    select,
)

if TYPE_CHECKING:
    from sim.scenario.schema import Scenario

__all__ = [
    "check_references",
    "check_counts",
    "check_budgets",
    "advisories",
    "resolve_mechanisms",
    "mechanism_classes",
    "Namespaces",
    "expected_name",
    "expected_glob",
]

GiB = 1024.0**3
YEAR = 365 * 86400.0  # 1y = 365 d (sim.core.units); dimm_errors rates are per DIMM-year


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
        # The profile of each host, aligned with ``hosts`` (None where the profile is undefined).
        self.host_profile = [
            infra.host_profiles.get(dom.profile) for site in infra.sites for dom in site.broadcast_domains
            for _ in range(dom.hosts)
        ]

    def count(self, kind: str, globs: Sequence[str] | None) -> int:
        """How many targets of ``kind`` the globs select (all of them for None)."""
        _, names = self.fault_targets(kind)
        if globs is None:
            return len(names)
        match = pattern(tuple(globs)).match
        return sum(1 for n in names if match(n))

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


def glob_problems(globs: Sequence[str], names: Sequence[str], path: str, what: str) -> list[Problem]:
    """A problem for each glob that matches nothing (path ends with the index when several)."""
    out = []
    for i, glob in enumerate(globs):
        if not matches_any(glob, names):
            where = path if len(globs) == 1 else f"{path}.{i}"
            out.append(Problem(where, expected_glob(what, names, glob)))
    return out


def check_references(scenario: Scenario, ns: Namespaces | None = None) -> list[Problem]:
    """Every cross-reference problem of a schema-valid scenario, in file order."""
    ns = Namespaces(scenario) if ns is None else ns
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
    site_problems = unique_problems([s.name for s in infra.sites], "infrastructure.sites.{}.name", "site name")
    for i, site in enumerate(infra.sites):
        out += [p for p in site_problems if p.path == f"infrastructure.sites.{i}.name"]
        base = f"infrastructure.sites.{i}.broadcast_domains"
        out += unique_problems([d.name for d in site.broadcast_domains], base + ".{}.name", "broadcast domain name")
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
    out += unique_problems([st.name for st in infra.storage], "infrastructure.storage.{}.name", "storage name")
    for i, st in enumerate(infra.storage):
        if st.site not in ns.sites:
            out.append(Problem(f"infrastructure.storage.{i}.site", expected_name("site", ns.sites, st.site)))
    return out


def unique_problems(names: list[str], path: str, what: str) -> list[Problem]:
    """A problem at ``path.format(index)`` for every name seen before in ``names``."""
    seen: set[str] = set()
    out = []
    for i, name in enumerate(names):
        if name in seen:
            out.append(Problem(path.format(i), f"expected a unique {what}, got {show(name)} again"))
        seen.add(name)
    return out


def _clusters(scenario: Scenario, ns: Namespaces) -> list[Problem]:
    out = unique_problems([c.name for c in scenario.clusters], "clusters.{}.name", "cluster name")
    member_of: dict[str, str] = {}
    for i, cluster in enumerate(scenario.clusters):
        path = f"clusters.{i}.hosts"
        if not cluster.hosts:
            out.append(Problem(path, "expected at least one host name or glob, got an empty list"))
        out += glob_problems(cluster.hosts, ns.hosts, path, "host")
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
    out = unique_problems([w.name for w in scenario.workloads], "workloads.{}.name", "workload name")
    for i, w in enumerate(scenario.workloads):
        path = f"workloads.{i}"
        if not w.placement.hosts:
            out.append(Problem(f"{path}.placement.hosts", "expected at least one host name or glob, got an empty list"))
        out += glob_problems(w.placement.hosts, ns.hosts, f"{path}.placement.hosts", "host")
        match = pattern(w.placement.hosts).match
        cores = [p.cores for n, p in zip(ns.hosts, ns.host_profile, strict=True) if p is not None and match(n)]
        if cores and w.vm.vcpus > max(cores):
            out.append(Problem(f"{path}.vm.vcpus", f"expected at most {max(cores)} vCPUs (the most cores of any "
                                                    f"host its placement allows), got {w.vm.vcpus}"))
        if w.vm.working_set > w.vm.memory:  # the pages a VM dirties are pages of its memory
            out.append(Problem(f"{path}.vm.working_set", f"expected a working set of at most the VM's memory "
                                                         f"({w.vm.memory / 2**30:g}GiB), got "
                                                         f"{w.vm.working_set / 2**30:g}GiB"))
    return out


def _faults(scenario: Scenario, ns: Namespaces) -> list[Problem]:
    out: list[Problem] = []
    for i, fault in enumerate(scenario.faults):
        if fault.kind == "trace":
            out += _trace_selectors(fault, ns, f"faults.{i}")
            continue
        what, names = ns.fault_targets(fault.kind)
        if fault.kind == "dimm_errors":
            if not fault.hosts:
                out.append(Problem(f"faults.{i}.hosts", "expected at least one host name or glob, got an empty list"))
            out += glob_problems(fault.hosts, names, f"faults.{i}.hosts", what)
        elif fault.target is not None:
            out += glob_problems(fault.target, names, f"faults.{i}.target", what)
    return out


def _trace_selectors(fault, ns: Namespaces, path: str) -> list[Problem]:
    """A trace entry's selectors given in the file each match something (the defaults select all)."""
    from sim.scenario.schema import TRACE_SELECTORS

    out: list[Problem] = []
    for selector, kind in {f: k for k, f in TRACE_SELECTORS.items()}.items():
        if selector in fault.model_fields_set:
            globs = getattr(fault, selector)
            what, names = ns.fault_targets(kind)
            if not globs:
                out.append(Problem(f"{path}.{selector}", "expected at least one name or glob, got an empty list"))
            out += glob_problems(globs, names, f"{path}.{selector}", what)
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


# --------------------------------------------------------------------------- budgets
def _over(key: str, path: str, got: float, advice: str) -> Problem:
    spec = LIMITS[key]
    return Problem(path, f"expected at most {number(limit(key))} {spec.what} ({advice}; {spec.env} raises "
                         f"the limit), got {number(got)}")


def mechanism_classes(registry: Any = None) -> Mapping[str, Any]:
    """Key -> mechanism class of ``registry`` (default: the shipped registry); empty for a plain
    mapping of config models."""
    if registry is None:
        from sim.mechanisms.registry import REGISTRY

        registry = REGISTRY
    return getattr(registry, "classes", {})


def _needs(scenario: Scenario, registry: Any, key: str) -> list[tuple[str, float, str]]:
    """(dotted path, amount, advice) of every present mechanism section's budget ``key``."""
    out = []
    for name, cls in mechanism_classes(registry).items():
        config = scenario.mechanisms.get(name)
        if config is not None:
            out += [(f"mechanisms.{name}.{n.path}", float(n.amount), n.advice)
                    for n in cls.budget(config, scenario) if n.limit == key]
    return out


def check_counts(scenario: Scenario, registry: Any = None) -> list[Problem]:
    """Hosts and VMs in total within their limits; checked before any name is generated.

    The problem is reported at the largest domain's ``hosts``, workload's ``count`` or
    mechanism's VM budget (``Mechanism.budget``).
    """
    out: list[Problem] = []
    infra = scenario.infrastructure
    domains = [(f"infrastructure.sites.{i}.broadcast_domains.{j}.hosts", d.hosts)
               for i, site in enumerate(infra.sites) for j, d in enumerate(site.broadcast_domains)]
    hosts = sum(n for _, n in domains)
    if domains and hosts > limit("hosts"):
        path = max(domains, key=lambda d: d[1])[0]
        out.append(_over("hosts", path, hosts, "fewer or smaller broadcast domains"))
    workloads = [(f"workloads.{i}.count", w.count, "fewer VMs") for i, w in enumerate(scenario.workloads)]
    workloads += _needs(scenario, registry, "vms")
    vms = sum(n for _, n, _ in workloads)
    if workloads and vms > limit("vms"):
        path, _, advice = max(workloads, key=lambda w: w[1])
        out.append(_over("vms", path, vms, advice))
    return out


def _estimate(value: float) -> str:
    """``about 3.2e16``: an estimate with two significant digits."""
    if value < 1e7:
        return f"about {value:.0f}"
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"about {mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def check_budgets(scenario: Scenario, ns: Namespaces | None = None, registry: Any = None) -> list[Problem]:
    """The DIMMs simulated and the expected fault, sample and mechanism events within their limits.

    Expected events: for each stochastic fault entry, targets x duration / mtbf (repair
    ignored: an upper bound); for each ``dimm_errors`` entry, its DIMMs x (at most one
    first correctable error each + uncorrectable rate x its raise after a correctable
    one x duration); samples, duration / sample_interval; one per target of a
    scheduled fault; each mechanism's ``events`` budget. Above the limit, the problem is
    reported at the entry that contributes most, with the total estimate.
    """
    ns = Namespaces(scenario) if ns is None else ns
    out: list[Problem] = []
    duration = float(scenario.duration)
    years = duration / YEAR
    sources: list[tuple[str, float, str]] = [
        ("sample_interval", duration / float(scenario.sample_interval), "raise sample_interval or shorten duration")
    ]
    dimms_of = [p.dimms if p is not None else 0 for p in ns.host_profile]
    for i, fault in enumerate(scenario.faults):
        if fault.kind == "dimm_errors":
            match = pattern(fault.hosts).match
            dimms = sum(d for n, d in zip(ns.hosts, dimms_of, strict=True) if match(n))
            if dimms > limit("dimms"):
                out.append(_over("dimms", f"faults.{i}.hosts", dimms, "fewer hosts or DIMMs per host"))
            first = dimms * min(1.0, fault.correctable_per_dimm_year * years)
            ue = dimms * fault.uncorrectable_per_dimm_year * max(1.0, fault.uncorrectable_after_correctable) * years
            rate = "correctable_per_dimm_year" if first >= ue else "uncorrectable_per_dimm_year"
            sources.append((f"faults.{i}.{rate}", first + ue, "lower the rates, select fewer hosts or shorten "
                                                              "duration"))
        elif fault.kind == "trace":
            continue  # as many faults as the file has records (read when the run is built)
        elif fault.mean_time_to_failure() is not None:
            targets = ns.count(fault.kind, fault.target)
            field = "mtbf" if fault.mtbf is not None else "time_to_failure"
            sources.append((f"faults.{i}.{field}", targets * duration / fault.mean_time_to_failure(),
                            f"raise {field}, select fewer targets or shorten duration"))
        else:
            sources.append((f"faults.{i}.target", ns.count(fault.kind, fault.target), "select fewer targets"))
    sources += _needs(scenario, registry, "events")
    total = sum(n for _, n, _ in sources)
    cap = limit("events")
    if total > cap:
        path, _, advice = max(sources, key=lambda s: s[1])
        spec = LIMITS["events"]
        out.append(Problem(path, f"expected at most {_estimate(cap)[6:]} {spec.what} ({advice}; {spec.env} "
                                 f"raises the limit), got {_estimate(total)}"))
    return out


# What each fault kind changes that only a mechanism reads (``Mechanism.reads``): with no such
# mechanism enabled, the fault changes no figure but its own count.
READ_ONLY_EFFECTS = {"image_drift": ("images", "changes running images")}


def advisories(scenario: Scenario, registry: Any = None) -> list[Problem]:
    """What is valid but has no effect; printed as warnings, never an error.

    A fault of a kind in ``READ_ONLY_EFFECTS`` while no enabled mechanism reads what it changes
    (``image_drift`` changes hosts' running images, recorded in ``faults``, but only a mechanism
    that reads images compares them with a desired one); then each registered mechanism's
    ``advisories`` (its section or None).
    """
    out: list[Problem] = []
    classes = mechanism_classes(registry)
    for i, fault in enumerate(scenario.faults):
        effect = READ_ONLY_EFFECTS.get(fault.kind)
        if effect is None:
            continue
        what, changes = effect
        readers = [k for k, c in classes.items() if what in c.reads]
        if any(scenario.mechanisms.is_enabled(k) for k in readers):
            continue
        unless = (" unless " + " or ".join(f"mechanisms.{k}" for k in readers) + " is enabled" if readers
                  else f" while no mechanism that reads {what} is enabled")
        out.append(Problem(f"faults.{i}", f"{fault.kind} {changes}, but nothing measures or fixes them{unless}"))
    for key, cls in classes.items():
        out += cls.advisories(scenario.mechanisms.get(key), scenario)
    return out


def resolve_mechanisms(scenario: Scenario, registry: Any = None) -> None:
    """Each present section's scenario-dependent defaults filled in place (``Mechanism.resolve``),
    so that ``dcsim check`` prints them and the mechanisms read them."""
    mechanisms = scenario.mechanisms
    for key, cls in mechanism_classes(registry).items():
        config = mechanisms.get(key)
        if config is not None:
            object.__setattr__(mechanisms, key, cls.resolve(config, scenario))
