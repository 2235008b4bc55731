"""The scenario schema (docs/reference/scenario.md): frozen pydantic models, unknown keys rejected.

Quantities are floats in base units (seconds, bytes, bytes/s, events/s); see
``sim.scenario.types``. Defaults that depend on other fields (``sample_interval``,
``vm.working_set``, ``service``, ``site.region``) are filled by model validators, and a
mechanism's defaults that depend on the rest of the scenario by its class's ``resolve``
(``sim.scenario.validate.resolve_mechanisms``), so a validated scenario has every default
resolved and ``dcsim check`` can print it.

The ``mechanisms`` section is assembled from the mechanism registry (each mechanism
keeps its config model in its own module): ``build_scenario_model(registry)`` returns
a ``Scenario`` subclass whose ``mechanisms`` field has one optional field per key.
"""

from __future__ import annotations

import math
import types
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    create_model,
    model_validator,
)

from sim.core.errors import show
from sim.scenario.types import (
    MIN_INTERVAL_S,
    Bandwidth,
    Capacity,
    Cores,
    DimmCount,
    Duration,
    FieldError,
    Fraction,
    Globs,
    Interval,
    Memory,
    Name,
    NonNegFloat,
    NonNegInt,
    Point,
    PositiveDuration,
    PositiveInt,
    Rate,
    Size,
    VmMemory,
)

__all__ = [
    "Model",
    "DiskSpec",
    "HostProfile",
    "BroadcastDomain",
    "Site",
    "WanLink",
    "Storage",
    "Infrastructure",
    "Image",
    "Cluster",
    "StandaloneHost",
    "VmSpec",
    "Placement",
    "Workload",
    "HostCrash",
    "BroadcastDomainOutage",
    "LinkFailure",
    "SiteOutage",
    "DiskFailure",
    "StorageOutage",
    "VmCrash",
    "DimmErrors",
    "ImageDrift",
    "Distribution",
    "DISTRIBUTION_PRESETS",
    "TraceReplay",
    "TRACE_SELECTORS",
    "Fault",
    "FAULT_KINDS",
    "PublishImage",
    "Instantiate",
    "Restore",
    "MigrateWorkload",
    "Recover",
    "Operation",
    "OperationBase",
    "OPERATION_KINDS",
    "RESERVED_OPERATIONS",
    "MechanismsBase",
    "Scenario",
    "build_scenario_model",
    "unwrap",
    "tagged_members",
    "sequence_item",
    "mapping_value",
    "model_class",
]

GiB = 1024.0**3
TiB = 1024.0**4
GB = 1e9
Gbps = 1e9 / 8


def _fill(model: BaseModel, field: str, value: Any) -> None:
    """Set a derived default on a frozen model, inside its own after-validator."""
    object.__setattr__(model, field, value)


class Model(BaseModel):
    """Base of every scenario model: frozen, unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- infrastructure
class DiskSpec(Model):
    """A host's local disk. Defaults: a datacenter NVMe SSD class."""

    capacity: Capacity = 8 * TiB  # a choice within vendors' data sheets (docs/sources.md)
    read: Bandwidth = 2 * GB  # 2GB/s
    write: Bandwidth = 1.5 * GB  # 1.5GB/s


class HostProfile(Model):
    """The hardware of a class of hosts."""

    # A common two-socket virtualisation server: 64 cores and 512 GiB (a choice, docs/sources.md).
    cores: Cores = 64
    memory: Memory = 512 * GiB
    # 16 x 32 GiB fills 512 GiB, and 16 DIMMs x 0.0008 UE/DIMM-year gives
    # ~1.3 % of hosts a year with an uncorrectable error (Schroeder, Pinheiro, Weber, SIGMETRICS 2009).
    dimms: DimmCount = 16
    nic: Bandwidth = 25 * Gbps  # the common 25 GbE server NIC
    disk: DiskSpec = Field(default_factory=DiskSpec)
    # Large-memory servers spend minutes in POST before the hypervisor boots; practitioners report
    # about 3 extra minutes that VMware Quick Boot skips (anecdotal; docs/sources.md).
    boot_time: Duration = 180.0
    reserved_memory: Size = 16 * GiB  # the hypervisor's share, never given to VMs


class BroadcastDomain(Model):
    """An L2 segment: ``hosts`` hosts of one profile behind one top-of-rack switch."""

    name: Name
    hosts: NonNegInt
    profile: str
    uplink: Bandwidth = 100 * Gbps  # a 100 GbE top-of-rack uplink (a choice)
    latency: Duration = 0.0  # links inside a site have no latency unless given


class Site(Model):
    name: Name
    # Pricing region (read by a pricing mechanism). Default: the site's own name, so a file without regions
    # still prices per site (dcsim's choice).
    region: str = Field(default=None, validate_default=False)
    core: Bandwidth = 800 * Gbps  # site core switching capacity (a choice)
    broadcast_domains: tuple[BroadcastDomain, ...]

    @model_validator(mode="after")
    def _region(self) -> Site:
        if self.region is None:
            _fill(self, "region", self.name)
        return self


def _two_sites(value: Any) -> Any:
    if isinstance(value, (list, tuple)) and len(value) != 2:
        raise FieldError("", f"expected two site names like [east, west], got {len(value)} names")
    return value


class WanLink(Model):
    """A WAN link between two sites; its name is ``a-b`` in the order given."""

    sites: Annotated[tuple[str, str], BeforeValidator(_two_sites)]
    bandwidth: Bandwidth
    latency: Duration  # WAN links carry their latency (no default)


class Storage(Model):
    """A storage system (backup target, object store, array), attached to its site's core."""

    name: Name
    site: str
    capacity: Capacity
    read: Bandwidth
    write: Bandwidth


class Infrastructure(Model):
    host_profiles: dict[str, HostProfile]
    detection: Duration = 30.0  # HA heartbeat detection (a round figure, docs/sources.md)
    repair: Duration = 4 * 3600.0  # the repair time wherever none is given
    sites: tuple[Site, ...]
    wan: tuple[WanLink, ...] = ()
    storage: tuple[Storage, ...] = ()


# --------------------------------------------------------------------------- clusters
class Image(Model):
    """A host image: base, optional vendor add-on, and component versions."""

    base: str
    addon: str | None = None  # optional
    components: dict[str, str] = Field(default_factory=dict)


class Cluster(Model):
    """Hosts under one desired image."""

    name: Name
    hosts: Globs
    image: Image


class StandaloneHost(Model):
    """A host outside every cluster whose desired image derives from a cluster's."""

    host: str
    derive_from: str
    components: dict[str, str] = Field(default_factory=dict)


# --------------------------------------------------------------------------- workloads
class VmSpec(Model):
    vcpus: PositiveInt
    memory: VmMemory
    disk: Size
    dirty_rate: Rate = 20e6  # 20MB/s, an idle-to-light server (docs/sources.md)
    # Default: the VM's memory (filled below).
    working_set: Size = Field(default=None, validate_default=False)
    # 1m; Linux VMs booted in ~44-100 s in 2012's public clouds (Mao & Humphrey, IEEE CLOUD 2012).
    boot_time: Duration = 60.0

    @model_validator(mode="after")
    def _working_set(self) -> VmSpec:
        if self.working_set is None:
            _fill(self, "working_set", self.memory)
        return self


class Placement(Model):
    hosts: Globs = ("*",)  # every host (dcsim's choice: a workload may go anywhere unless told)
    spread: Literal["broadcast_domain", "pack", "random"] = "broadcast_domain"  # sim.infra.placement


class Workload(Model):
    """``count`` identical VMs named ``<name>-NNN``."""

    name: Name
    count: NonNegInt
    vm: VmSpec
    placement: Placement = Field(default_factory=Placement)
    service: str = Field(default=None, validate_default=False)  # default: the workload's name

    @model_validator(mode="after")
    def _service(self) -> Workload:
        if self.service is None:
            _fill(self, "service", self.name)
        return self


# --------------------------------------------------------------------------- faults
def _positive_number(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a number greater than zero")
    return value


def _finite_positive(value: float) -> float:
    if not (math.isfinite(value) and value > 0):
        raise ValueError("expected a number greater than zero")
    return value


PositiveNumber = Annotated[float, BeforeValidator(_positive_number), AfterValidator(_finite_positive)]
"""A plain finite number > 0 (a distribution's shape or sigma, a time scale factor)."""

# Which parameters each family takes: (required, one of these alternatives, optional).
_FAMILY_PARAMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "exponential": ((), ("mean",)),
    "weibull": (("shape",), ("scale", "mean")),
    "lognormal": (("sigma",), ("median", "mean")),
    "gamma": (("shape",), ("scale", "mean")),
    "deterministic": ((), ("value",)),
    "empirical": (("path", "column"), ()),
}
_PARAMS = ("shape", "sigma", "scale", "mean", "median", "value", "path", "column")

DISTRIBUTION_PRESETS: dict[str, dict[str, Any]] = {
    # Schroeder & Gibson, "A Large-Scale Study of Failures in High-Performance Computing Systems",
    # DSN 2006: time between failures of a LANL node is Weibull with a decreasing hazard, shape
    # 0.7-0.8 (the midpoint here). The scale differs wildly between systems (20-1000 failures a
    # year per system), so the entry gives ``mean`` or ``scale``.
    "lanl-node": {"family": "weibull", "shape": 0.75},
    # Schroeder & Gibson, "Disk Failures in the Real World", FAST 2007: time between disk
    # replacements in a cluster is Weibull with shape 0.7-0.8 (midpoint here); the entry gives
    # ``mean`` or ``scale`` (annual replacement rates of 2-4 % are common there).
    "disk-replacement": {"family": "weibull", "shape": 0.75},
    # The same study reports a squared coefficient of variation C^2 = 2.4 of the time between
    # replacements and a gamma fit; a gamma distribution has C^2 = 1 / shape, so shape = 1 / 2.4.
    "disk-replacement-gamma": {"family": "gamma", "shape": 1 / 2.4},
}
"""Named distributions with published parameters (docs/failures.md); an entry adds what the
preset leaves open (``{preset: lanl-node, mean: 30d}``)."""


def _distribution_forms(schema: dict[str, Any]) -> None:
    """The JSON Schema of a distribution accepts the three forms the model reads: ``{family, ...}``,
    ``{preset, ...}`` (the preset gives the family) and ``{empirical: {path, column}}``."""
    schema["required"] = [r for r in schema.get("required", []) if r != "family"]
    schema["properties"]["preset"] = {"enum": sorted(DISTRIBUTION_PRESETS),
                                      "description": "a named distribution with published parameters"}
    schema["properties"]["empirical"] = {
        "type": "object", "additionalProperties": False, "required": ["path"],
        "properties": {"path": {"type": "string"}, "column": {"type": "string"}}}
    schema["anyOf"] = [{"required": ["family"]}, {"required": ["preset"]},
                       {"required": ["empirical"], "maxProperties": 1}]


class Distribution(Model):
    """A distribution of durations (time to failure or to repair), in seconds.

    ``exponential {mean}``, ``weibull {shape, scale | mean}``, ``lognormal {sigma, median | mean}``,
    ``gamma {shape, scale | mean}``, ``deterministic {value}``, ``empirical {path, column}`` (also
    written ``{empirical: {path, column}}``: resampled from a trace column, read when the run is
    built, ``sim.faults.distributions.read_empirical``); or ``{preset: NAME, ...}`` with the
    parameters the preset leaves open. Time parameters take units (``30d``).
    """

    model_config = ConfigDict(json_schema_extra=_distribution_forms)

    family: Literal["exponential", "weibull", "lognormal", "gamma", "deterministic", "empirical"]
    preset: str | None = None  # the named distribution the parameters come from, if any
    shape: PositiveNumber | None = None  # weibull, gamma (dimensionless)
    sigma: PositiveNumber | None = None  # lognormal: the standard deviation of log(duration)
    scale: PositiveDuration | None = None  # weibull, gamma
    mean: PositiveDuration | None = None
    median: PositiveDuration | None = None  # lognormal: exp(mu)
    value: Duration | None = None  # deterministic
    path: str | None = None  # empirical: CSV or Parquet file, relative to the scenario's file
    column: str | None = None  # empirical: the column of durations (with units, or seconds)

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and set(data) == {"empirical"} and isinstance(data["empirical"], dict):
            return {"family": "empirical", **data["empirical"]}  # the short form {empirical: {path, column}}
        if not isinstance(data, dict) or data.get("preset") is None:
            return data
        name = data["preset"]
        if not isinstance(name, str) or name not in DISTRIBUTION_PRESETS:
            names = ", ".join(sorted(DISTRIBUTION_PRESETS))
            raise FieldError("preset", f"expected one of {names}, got {show(name)}")
        fixed = DISTRIBUTION_PRESETS[name]
        for key, value in fixed.items():  # a resolved scenario repeats them: the same values are fine
            if key in data and data[key] != value:
                raise FieldError(key, f"expected no {key} (preset {name} fixes it to {value:.4g}), got {show(data[key])}"
                                 if key != "family" else f"expected no family (preset {name} is {value}), got "
                                                         f"{show(data[key])}")
        return {**data, **fixed}

    @model_validator(mode="after")
    def _parameters(self) -> Distribution:
        required, alternatives = _FAMILY_PARAMS[self.family]
        takes = " and ".join([*required, " or ".join(alternatives)] if alternatives else required)
        for name in _PARAMS:
            value = getattr(self, name)
            if value is not None and name not in required and name not in alternatives:
                raise FieldError(name, f"expected no {name} for {self._article()} {self.family} distribution (it takes {takes}), "
                                       f"got {show(value)}")
        for name in required:
            if getattr(self, name) is None:
                raise FieldError(name, f"expected a value ({self._article()} {self.family} distribution takes {takes}), got nothing")
        given = [a for a in alternatives if getattr(self, a) is not None]
        if not given and alternatives:
            raise FieldError(alternatives[0], f"expected a value ({self._article()} {self.family} distribution takes {takes}), "
                                              "got nothing")
        if len(given) > 1:
            raise FieldError(given[1], f"expected either {' or '.join(alternatives)}, got both")
        return self

    def _article(self) -> str:
        return "an" if self.family[0] in "aeiou" else "a"

    def mean_s(self) -> float:
        """The distribution's mean, seconds (NaN for an empirical one: its file is read later)."""
        if self.family == "empirical":
            return math.nan
        if self.mean is not None:
            return float(self.mean)
        match self.family:
            case "weibull":
                return float(self.scale) * math.gamma(1.0 + 1.0 / float(self.shape))
            case "lognormal":
                return float(self.median) * math.exp(float(self.sigma) ** 2 / 2.0)
            case "gamma":
                return float(self.shape) * float(self.scale)
        return float(self.value)


def _stochastic(fault: _FaultForm) -> bool:
    return fault.mtbf is not None or fault.time_to_failure is not None


class _FaultForm(Model):
    """Scheduled (``at`` + ``target``) or stochastic (``mtbf``, the exponential shortcut, or
    ``time_to_failure``, a distribution, per target; ``target`` optional)."""

    kind: str  # the kind of fault; it decides which other fields apply
    at: Duration | None = None
    # Names or globs in the kind's namespace; stochastic: restricts the targets (None: all).
    target: Globs | None = None
    mtbf: Interval | None = None  # exponential mean time between failures, per target (>= 1 ms)
    time_to_failure: Distribution | None = None  # any family, per target; instead of mtbf

    @model_validator(mode="after")
    def _one_form(self):
        if self.mtbf is not None and self.time_to_failure is not None:
            raise FieldError("time_to_failure", 'expected either "mtbf" (exponential) or "time_to_failure", got both')
        stochastic = "mtbf" if self.mtbf is not None else "time_to_failure"
        if self.at is not None and _stochastic(self):
            raise FieldError(stochastic, f'expected either "at" (scheduled) or "{stochastic}" (stochastic), got both')
        if self.at is None and not _stochastic(self):
            raise FieldError("", 'expected "at" and "target" (scheduled) or "mtbf" or "time_to_failure" '
                                 "(stochastic), got neither")
        if self.at is not None and self.target is None:
            raise FieldError("target", "expected a value (a scheduled fault needs a target), got nothing")
        if self.target is not None and not self.target:
            raise FieldError("target", "expected at least one name or glob (an empty target selects nothing, "
                                       "so the fault could never happen), got an empty list")
        if self.time_to_failure is not None and self.time_to_failure.mean_s() < MIN_INTERVAL_S:
            raise FieldError("time_to_failure", "expected a mean of at least 1ms (a shorter one cannot be meant and "
                                                f"would flood the event queue), got {self.time_to_failure.mean_s():g} s")
        return self

    def mean_time_to_failure(self) -> float | None:
        """Seconds; None for a scheduled entry."""
        if self.mtbf is not None:
            return float(self.mtbf)
        if self.time_to_failure is None or self.time_to_failure.family == "empirical":
            return None  # an empirical column is read when the run is built
        return self.time_to_failure.mean_s()


class _RepairableFault(_FaultForm):
    # A fixed duration; None: infrastructure.repair at run time.
    repair: Duration | None = None
    time_to_repair: Distribution | None = None  # a distribution instead of the fixed repair

    @model_validator(mode="after")
    def _one_repair(self):
        if self.repair is not None and self.time_to_repair is not None:
            raise FieldError("time_to_repair", 'expected either "repair" (fixed) or "time_to_repair", got both')
        return self


class HostCrash(_RepairableFault):
    """Targets: host names or globs (``east/bd1/h03``, ``east/*``)."""

    kind: Literal["host_crash"]


class BroadcastDomainOutage(_RepairableFault):
    """Targets: domains ``site/domain``."""

    kind: Literal["broadcast_domain_outage"]


class LinkFailure(_RepairableFault):
    """Targets: a domain uplink ``site/domain``, a site core ``site`` or a WAN link ``a-b``."""

    kind: Literal["link_failure"]


class SiteOutage(_RepairableFault):
    """Targets: site names."""

    kind: Literal["site_outage"]


class DiskFailure(_RepairableFault):
    """Targets: host names or globs (the host's local disk)."""

    kind: Literal["disk_failure"]


class StorageOutage(_RepairableFault):
    """Targets: storage system names."""

    kind: Literal["storage_outage"]


class VmCrash(_RepairableFault):
    """Targets: workload VM names or globs (``web-007``, ``web-*``)."""

    kind: Literal["vm_crash"]


class ImageDrift(_FaultForm):
    """A random component of a host's running image changes. Targets: hosts."""

    kind: Literal["image_drift"]


class TraceReplay(Model):
    """Faults replayed from a trace file (``sim.faults.trace``, docs/failures.md): CSV or Parquet with
    columns ``node``, ``start``, ``end`` and optionally ``kind`` (default ``host_crash``).

    ``node`` is a name, or an integer index into the selected targets of the record's kind in name
    order; the selectors below choose them per namespace (all by default). ``start``/``end`` are
    seconds, durations with units or ISO timestamps (``origin`` names time 0). Times are multiplied
    by ``scale``, shifted by ``offset`` and the trace repeats ``repeat`` times, every ``period``
    (default: the last end of the scaled trace).
    """

    kind: Literal["trace"]
    path: str  # relative to the scenario file
    hosts: Globs = ("*",)  # host_crash, disk_failure
    domains: Globs = ("*",)  # broadcast_domain_outage
    sites: Globs = ("*",)  # site_outage
    links: Globs = ("*",)  # link_failure
    storage: Globs = ("*",)  # storage_outage
    vms: Globs = ("*",)  # vm_crash (workload VMs)
    origin: str | None = None  # an ISO timestamp: time 0 for ISO times in the trace
    offset: Duration = 0.0
    scale: PositiveNumber = 1.0
    repeat: PositiveInt = 1
    period: PositiveDuration | None = None

    @model_validator(mode="after")
    def _checks(self) -> TraceReplay:
        if not self.path.strip():
            raise FieldError("path", 'expected a trace file (CSV or Parquet) like "traces/incidents.csv", got ""')
        if self.origin is not None:
            try:
                datetime.fromisoformat(self.origin)
            except ValueError:
                raise FieldError("origin", "expected an ISO timestamp like \"2024-01-01T00:00:00Z\", got "
                                           f"{show(self.origin)}") from None
        return self


TRACE_SELECTORS = {
    "host_crash": "hosts", "disk_failure": "hosts", "broadcast_domain_outage": "domains",
    "site_outage": "sites", "link_failure": "links", "storage_outage": "storage", "vm_crash": "vms",
}
"""The fault kinds a trace may hold, each with the selector field that chooses its targets."""


class DimmErrors(Model):
    """DRAM errors, rates per DIMM-year. Not scheduled: driven by the rates."""

    kind: Literal["dimm_errors"]
    # "More than 8 % of DIMMs" see a correctable error a year: Schroeder, Pinheiro, Weber,
    # "DRAM Errors in the Wild", SIGMETRICS 2009.
    error_prone_fraction: Fraction = 0.08
    # A choice: fleet mean of *first* correctable errors modelled as events. Schroeder
    # 2009's mean of 3,751 CE/DIMM-year is dominated by a few DIMMs with hard errors; later
    # correctable errors of a DIMM are counted, not simulated one by one.
    correctable_per_dimm_year: NonNegFloat = 4.0
    # Base rate. Alone, x16 DIMMs per host gives 1.28 % of machines a year with
    # an uncorrectable error (Schroeder 2009: ~1.3 %); with the x10 raise after
    # a first correctable error on the 8 % error-prone DIMMs the default fleet sees
    # 16 x (0.92 x 0.0008 + 0.08 x 0.008) = 2.2 % a year, inside Schroeder's "2-4 % on some
    # platforms". (Per-DIMM error-proneness also makes 1 - 0.92^16 = 74 % of 16-DIMM hosts log a
    # correctable error a year, against Schroeder's 32 % of machines with fewer DIMMs each.)
    uncorrectable_per_dimm_year: NonNegFloat = 0.0008
    # A correctable error strongly predicts an uncorrectable one
    # (Schroeder 2009; Sridharan et al., ASPLOS 2015; Meza et al., DSN 2015).
    uncorrectable_after_correctable: NonNegFloat = 10.0
    hosts: Globs = ("*",)  # every host
    repair: Duration | None = None  # DIMM replacement; None: infrastructure.repair at run time


Fault = Annotated[
    HostCrash
    | BroadcastDomainOutage
    | LinkFailure
    | SiteOutage
    | DiskFailure
    | StorageOutage
    | VmCrash
    | DimmErrors
    | ImageDrift
    | TraceReplay,
    Field(discriminator="kind"),
]


# --------------------------------------------------------------------------- operations
class _Operation(Model):
    """Base of every operation model. ``refs`` maps a field to the namespace its value must name
    (``vm``, ``host``, ``workload``, ``cluster``, ``site``): checked before the run starts.
    ``subject`` names what the operation acts on in the ``operations`` table: by default the
    value of the first field in ``refs``; a model may override it."""

    refs: ClassVar[dict[str, str]] = {}
    kind: str  # the kind of operation; it decides which other fields apply
    at: Duration  # seconds from the start; operations after ``duration`` are ignored

    @property
    def subject(self) -> str:
        for field in self.refs:
            value = getattr(self, field, None)
            if value:
                return str(value)
        return self.kind


OperationBase = _Operation


# Reserved kinds: the operations of the mechanisms that landed after the platform (remediation's
# publish_image, workload_manager's instantiate / restore / migrate_workload, live_recovery's
# recover). Each of those mechanisms declares its kind (``Mechanism.operations``), which replaces
# the model here; these copies only serve a registry without that mechanism (a test's own
# registry), which still validates the kind and records it as failed at run time ("no enabled
# mechanism carries out ..."). Every other kind is declared only by its mechanism (``migrate``
# by live migration).
class PublishImage(_Operation):
    """Publish a new desired image for a cluster."""

    refs: ClassVar[dict[str, str]] = {"cluster": "cluster"}
    kind: Literal["publish_image"]
    cluster: str
    image: Image


class Instantiate(_Operation):
    """Realise a workload's point in time as new resources at a site."""

    refs: ClassVar[dict[str, str]] = {"workload": "workload", "site": "site"}
    kind: Literal["instantiate"]
    workload: str
    point: Point = "latest"  # dcsim's choice: the newest complete point
    site: str


class Restore(_Operation):
    """Return a workload's point in time to production."""

    refs: ClassVar[dict[str, str]] = {"workload": "workload"}
    kind: Literal["restore"]
    workload: str
    point: Point = "latest"  # dcsim's choice: the newest complete point


class MigrateWorkload(_Operation):
    """Realise a workload at a remote site over the WAN."""

    refs: ClassVar[dict[str, str]] = {"workload": "workload", "to": "site"}
    kind: Literal["migrate_workload"]
    workload: str
    to: str  # a site name


class Recover(_Operation):
    """Live recovery of one VM from its newest complete backup point."""

    refs: ClassVar[dict[str, str]] = {"vm": "vm"}
    kind: Literal["recover"]
    vm: str


RESERVED_OPERATIONS: tuple[type[_Operation], ...] = (PublishImage, Instantiate, Restore, MigrateWorkload, Recover)

Operation = Annotated[
    PublishImage | Instantiate | Restore | MigrateWorkload | Recover,
    Field(discriminator="kind"),
]


# --------------------------------------------------------------------------- mechanisms
class MechanismsBase(Model):
    """The ``mechanisms`` section; subclassed with one field per registry key.

    A key that is absent is None (disabled), except a mechanism whose class says ``always_on``
    (present with its defaults). A key given with no value (``<key>:``) is present with its
    defaults.
    """

    @model_validator(mode="before")
    @classmethod
    def _bare_key_is_present(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: ({} if v is None else v) for k, v in data.items()}
        return data

    def get(self, key: str) -> BaseModel | None:
        """The config of mechanism ``key``, or None when its section is absent."""
        return getattr(self, key, None)

    def is_enabled(self, key: str) -> bool:
        cfg = self.get(key)
        return cfg is not None and bool(getattr(cfg, "enabled", True))


# --------------------------------------------------------------------------- the scenario
class Scenario(Model):
    """A whole scenario file. Use ``build_scenario_model(registry)`` for the class with mechanisms."""

    name: Name  # required; names the default output folder
    description: str = ""
    seed: NonNegInt = 0
    duration: Interval  # required (at least 1 ms)
    sample_interval: Interval = Field(default=None, validate_default=False)  # default: duration/500
    infrastructure: Infrastructure
    clusters: tuple[Cluster, ...] = ()
    standalone_hosts: tuple[StandaloneHost, ...] = ()
    workloads: tuple[Workload, ...] = ()
    faults: tuple[Fault, ...] = ()
    # The file it was read from (set by the loader): trace paths are relative to it. Not part of
    # the scenario's value: two scenarios with equal fields are equal wherever they were read.
    _source: str | None = PrivateAttr(default=None)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.__dict__ == other.__dict__

    __hash__ = None  # it holds mappings (image components, prices): never hashable
    mechanisms: MechanismsBase = Field(default_factory=MechanismsBase)
    operations: tuple[Operation, ...] = ()

    @model_validator(mode="after")
    def _sample_interval(self) -> Scenario:
        if self.sample_interval is None:
            _fill(self, "sample_interval", self.duration / 500.0)
        return self


def build_scenario_model(mechanisms: Mapping[str, type[BaseModel]]) -> type[Scenario]:
    """The ``Scenario`` class whose ``mechanisms`` has one field per registry key (cached per registry).

    Each config model must have ``enabled: bool`` and every other field defaulted, so
    that a bare section (or ``--set mechanisms.<key>.enabled=true``) is valid. When
    ``mechanisms`` also has ``operation_models()`` (the mechanism registry), the
    operation kinds its mechanisms declare join the reserved ones (a mechanism's model
    replaces the reserved model of the same kind), and ``always_on()`` names the sections
    present with their defaults when absent (a plain mapping has none).
    """
    ops = getattr(mechanisms, "operation_models", None)
    extra = tuple(ops().items()) if callable(ops) else ()
    on = getattr(mechanisms, "always_on", None)
    always = tuple(sorted(on())) if callable(on) else ()
    return _build(tuple(sorted(mechanisms.items())), extra, always)


@lru_cache(maxsize=32)
def _build(items: tuple[tuple[str, type[BaseModel]], ...], extra_ops: tuple[tuple[str, type[BaseModel]], ...],
           always: tuple[str, ...]) -> type[Scenario]:
    fields: dict[str, Any] = {}
    for key, config in items:
        if not (isinstance(config, type) and issubclass(config, BaseModel)):
            raise TypeError(f"mechanism {key!r}: config must be a pydantic model, got {config!r}")
        if "enabled" not in config.model_fields:
            raise TypeError(f"mechanism {key!r}: config model {config.__name__} has no 'enabled' field")
        if key in always:
            fields[key] = (config, Field(default_factory=config))
        else:
            fields[key] = (config | None, None)
    mechanisms_model = create_model(
        "Mechanisms", __base__=MechanismsBase, __module__=__name__, **fields
    )
    operation = Operation
    if extra_ops:
        kinds = dict(extra_ops)  # the mechanisms' kinds first, then the reserved ones they do not replace
        kinds.update((k, m) for k, m in (tagged_members(Operation) or {}).items() if k not in kinds)
        operation = Annotated[Union[tuple(kinds.values())], Field(discriminator="kind")]  # noqa: UP007
    return create_model(
        "Scenario",
        __base__=Scenario,
        __module__=__name__,
        mechanisms=(mechanisms_model, Field(default_factory=mechanisms_model)),
        operations=(tuple[operation, ...], ()),
    )


# --------------------------------------------------------------------------- schema walking
def unwrap(tp: Any) -> Any:
    """The annotation without ``Annotated[...]`` and ``| None``."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
            continue
        if origin in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) == 1:
                tp = args[0]
                continue
        return tp


def model_class(tp: Any) -> type[BaseModel] | None:
    tp = unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def tagged_members(tp: Any) -> dict[str, type[BaseModel]] | None:
    """For a union of models told apart by ``kind``: tag -> model, in declaration order; else None."""
    tp = unwrap(tp)
    if get_origin(tp) not in (Union, types.UnionType):
        return None
    members: dict[str, type[BaseModel]] = {}
    for arg in get_args(tp):
        arg = unwrap(arg)
        if not (isinstance(arg, type) and issubclass(arg, BaseModel)) or "kind" not in arg.model_fields:
            return None
        (tag,) = get_args(unwrap(arg.model_fields["kind"].annotation))
        members[tag] = arg
    return members


def sequence_item(tp: Any) -> Any | None:
    """The item annotation of a list or homogeneous tuple; None when ``tp`` is not one."""
    tp = unwrap(tp)
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is list and args:
        return args[0]
    if origin is tuple and args:
        if len(args) == 2 and args[1] is Ellipsis:
            return args[0]
        if all(a == args[0] for a in args):
            return args[0]
    return None


def mapping_value(tp: Any) -> Any | None:
    """The value annotation of a ``dict[str, X]``; None when ``tp`` is not one."""
    tp = unwrap(tp)
    if get_origin(tp) in (dict, Mapping) and len(get_args(tp)) == 2:
        return get_args(tp)[1]
    return None


FAULT_KINDS = tuple(tagged_members(Fault) or ())
OPERATION_KINDS = tuple(tagged_members(Operation) or ())
"""The reserved operation kinds; the registry's ``operation_models()`` adds the mechanisms' own."""
