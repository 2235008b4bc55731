"""Annotated field types for the scenario schema: quantities with units, counts, fractions, names.

Quantities are parsed once, at load time, by ``sim.core.units`` into floats in base
units (seconds, bytes, bytes/s, events/s); a plain number is already in base units.
Every quantity type is non-negative (the unit parser rejects negatives); the
``Positive*`` variants also reject zero. ``Bandwidth`` and ``Capacity`` are the
positive rates and sizes where zero would mean nothing can ever move or be stored
(NICs, links, disks, storage), and ``Interval`` the durations with a floor
(``MIN_INTERVAL_S``, 1 ms) below which a value cannot be meant (``mtbf``,
``sample_interval``, ``duration``); their messages say why. Each validator raises a ``ValueError`` whose
message starts with "expected ..."; the loader appends ``, got <value>``.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator

from sim.core.units import parse_duration, parse_event_rate, parse_rate, parse_size
from sim.scenario.limits import MIN_VM_MEMORY, plausible

__all__ = [
    "FieldError",
    "Duration",
    "Size",
    "Rate",
    "EventRate",
    "NonNegDuration",
    "NonNegSize",
    "NonNegRate",
    "NonNegEventRate",
    "PositiveDuration",
    "PositiveSize",
    "PositiveRate",
    "PositiveEventRate",
    "Bandwidth",
    "Capacity",
    "Interval",
    "MIN_INTERVAL_S",
    "Fraction",
    "Cores",
    "DimmCount",
    "Memory",
    "VmMemory",
    "NonNegFloat",
    "PositiveInt",
    "NonNegInt",
    "Name",
    "Globs",
    "Point",
    "parse_point",
]


class FieldError(ValueError):
    """A check made on a whole model that blames one of its fields.

    Raised from a model validator; the loader reports it at ``<model path>.<field>``
    with ``message`` as is (nothing appended).
    """

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def _positive(what: str, why: str = ""):
    def check(value: float) -> float:
        if value <= 0:
            raise ValueError(f"expected {what} greater than zero" + (f" ({why})" if why else ""))
        return value

    return check


MIN_INTERVAL_S = 1e-3
"""The shortest ``mtbf``, ``sample_interval`` or ``duration`` accepted: 1 ms (docs/limits.md)."""


def _at_least(low: float, text: str, why: str):
    def check(value: float) -> float:
        if value < low:
            raise ValueError(f"expected a duration of at least {text} ({why})")
        return value

    return check


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds: ``250ms``, ``30s``, ``5m``, ``2h``, ``7d``, ``1y`` (365 d), or a number of seconds; >= 0."""
Size = Annotated[float, BeforeValidator(parse_size)]
"""Bytes: ``512MiB``, ``16GiB``, ``500GB``, or a number of bytes; >= 0."""
Rate = Annotated[float, BeforeValidator(parse_rate)]
"""Bytes per second: ``25Gbps`` (bits), ``800MB/s``, or a number of bytes/s; >= 0."""
EventRate = Annotated[float, BeforeValidator(parse_event_rate)]
"""Events per second: ``2/s``, ``30/min``, ``4/h``, ``2/d``, or a number per second; >= 0."""

# The unit parser already rejects negative quantities; these names say so where it matters.
NonNegDuration = Duration
NonNegSize = Size
NonNegRate = Rate
NonNegEventRate = EventRate

PositiveDuration = Annotated[Duration, AfterValidator(_positive('a duration like "30s"'))]
PositiveSize = Annotated[Size, AfterValidator(_positive('a size like "16GiB"'))]
PositiveRate = Annotated[Rate, AfterValidator(_positive('a rate like "25Gbps" or "800MB/s"'))]
PositiveEventRate = Annotated[EventRate, AfterValidator(_positive('an event rate like "2/s" or "4/h"'))]

Bandwidth = Annotated[Rate, AfterValidator(_positive(
    'a rate like "25Gbps" or "800MB/s"', "at zero nothing could ever move through it")),
    AfterValidator(plausible("bandwidth", "B/s", "10 Pbps: more than any datacenter fabric carries"))]
"""A capacity of moving bytes (NIC, uplink, core, WAN, disk and storage read/write): > 0, at most
the plausible maximum (docs/limits.md)."""
Capacity = Annotated[Size, AfterValidator(_positive('a size like "16GiB"', "a zero capacity can hold nothing")),
                     AfterValidator(plausible("capacity", "bytes", "16 EiB: more than any storage system holds"))]
"""A storage capacity (a disk, a storage system): > 0, at most the plausible maximum."""
Interval = Annotated[PositiveDuration, AfterValidator(_at_least(
    MIN_INTERVAL_S, "1ms", "a shorter one cannot be meant and would flood the event queue"))]
"""A duration between events or of the whole run: at least ``MIN_INTERVAL_S`` (1 ms)."""


def _no_bool(expected: str):
    """YAML ``true`` is not a number (pydantic's lax mode would read it as 1)."""

    def check(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"expected {expected}")
        return value

    return check


def _finite_at_least(low: float, expected: str):
    def check(value: float) -> float:
        if not math.isfinite(value) or value < low:
            raise ValueError(f"expected {expected}")
        return value

    return check


def _fraction(value: float) -> float:
    if not (0.0 <= value <= 1.0):
        raise ValueError("expected a fraction from 0 to 1")
    return value


def _int_at_least(low: int, expected: str):
    def check(value: int) -> int:
        if value < low:
            raise ValueError(f"expected {expected}")
        return value

    return check


Fraction = Annotated[float, BeforeValidator(_no_bool("a fraction from 0 to 1")), AfterValidator(_fraction)]
"""A plain number from 0 to 1 (a probability, a share)."""
NonNegFloat = Annotated[
    float,
    BeforeValidator(_no_bool("a number")),
    AfterValidator(_finite_at_least(0.0, "a number that is not negative")),
]
"""A plain finite number >= 0 (rates per DIMM-year, multipliers)."""
PositiveInt = Annotated[
    int, BeforeValidator(_no_bool("an integer")), AfterValidator(_int_at_least(1, "an integer of at least 1"))
]
NonNegInt = Annotated[
    int, BeforeValidator(_no_bool("an integer")), AfterValidator(_int_at_least(0, "a count that is not negative"))
]


def _min_memory(value: float) -> float:
    if value < MIN_VM_MEMORY:
        raise ValueError('expected a size of at least 1MiB (no guest OS boots in less)')
    return value


Cores = Annotated[PositiveInt, AfterValidator(plausible(
    "host_cores", "cores", "the largest servers have about a thousand"))]
"""A host's cores: at least 1, at most the plausible maximum (docs/limits.md)."""
DimmCount = Annotated[NonNegInt, AfterValidator(plausible(
    "host_dimms", "DIMMs", "the largest servers hold a few hundred"))]
"""A host's DIMMs: not negative, at most the plausible maximum."""
Memory = Annotated[PositiveSize, AfterValidator(plausible(
    "memory", "bytes", "64 TiB: more than the largest servers hold"))]
"""A host's memory: > 0, at most the plausible maximum."""
VmMemory = Annotated[Memory, AfterValidator(_min_memory)]
"""A VM's memory: at least 1 MiB, at most the plausible maximum."""


def _name(value: str) -> str:
    # Names are joined with "/" into host and domain names, so they cannot contain it,
    # and glob characters would make selectors ambiguous.
    if not value or any(c in value for c in "/*?[]") or value != value.strip():
        raise ValueError('expected a name without "/", spaces at the ends or glob characters')
    return value


Name = Annotated[str, AfterValidator(_name)]
"""A site, domain, workload, cluster or storage name: used inside host and VM names."""


def _globs(value: Any) -> Any:
    """A single string is a one-item list; anything else is left for the list validator."""
    if isinstance(value, str):
        return (value,)
    if value is None or isinstance(value, (list, tuple)):
        return value
    raise ValueError("expected a name or glob, or a list of them")


Globs = Annotated[tuple[str, ...], BeforeValidator(_globs)]
"""Shell-style globs over names (``east/*``), written as one string or a list; stored as a tuple."""


def parse_point(value: Any) -> str | float:
    """``latest`` or a duration (the point in time, seconds from the start)."""
    if value == "latest":
        return "latest"
    try:
        return parse_duration(value)
    except ValueError:
        raise ValueError('expected "latest" or a duration like "30s"') from None


Point = Annotated[Literal["latest"] | float, BeforeValidator(parse_point)]
"""A backup point: ``latest`` or a time (seconds)."""
