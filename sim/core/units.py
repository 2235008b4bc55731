"""Quantity parsing with pint, done once at load time (never in the event loop).

Every quantity becomes a float in base units: seconds, bytes, bytes per second,
events per second. A plain number is already in base units. The accepted forms
of the scenario file (docs/model.md): durations ``250ms 30s 5m 2h 7d 1y`` (a year is 365 days), sizes
``512MiB 16GiB 500GB``, rates ``25Gbps 400Mbps`` (bits) or ``800MB/s 2GiB/s``
(bytes), event rates ``2/s 30/min 4/h 2/d``. A duration may also be compound: two or
more terms, each a plain number and a time unit, summed (``1h30m`` = 5,400 s,
``2d2h30m`` = 181,800 s, spaces between terms allowed). Each unit appears once, largest
first (``2h2h`` and ``30m1h`` are refused: a typo more often than intended), and a term
has no sign (``1d-2h`` is refused: no duration is negative, and a difference reads as
a mistake).

Bits and bytes are a dimension of their own (``[information]``) in the registry used
here, so a quantity of the wrong kind (``64 percent`` of memory, ``10 Hz`` for a NIC,
``3 radian`` of disk) is an input error rather than a silently converted number.
A division by zero, an infinite or NaN value, or a unit expression that is not a
plain product or quotient of units (no powers) is refused with the same message.
"""

from __future__ import annotations

import math
import os
import re
from functools import lru_cache

import pint

__all__ = [
    "UnitError",
    "parse_duration",
    "parse_size",
    "parse_rate",
    "parse_event_rate",
    "format_duration",
]


class UnitError(ValueError):
    """A quantity that is not of the expected kind; the message says what was expected."""


# Short symbols users write, mapped to pint unit names. Anything else goes to pint as is.
_TIME_ALIASES = {
    "ms": "millisecond", "s": "second", "sec": "second", "m": "minute", "min": "minute",
    "h": "hour", "hr": "hour", "d": "day", "w": "week", "y": "calendar_year", "yr": "calendar_year",
    "us": "microsecond", "µs": "microsecond", "ns": "nanosecond",
}
_BIT_RATE = re.compile(r"^([kKMGTP]?)(i?)bps$")
_BITS = re.compile(r"^([kMGTP]?)(i?)b$")
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_QUANTITY = re.compile(rf"^\s*({_NUMBER})\s*([^\s\d].*?)?\s*$")

_EXAMPLES = {
    "duration": 'a duration like "30s"',
    "size": 'a size like "16GiB"',
    "rate": 'a rate like "25Gbps" or "800MB/s"',
    "event_rate": 'an event rate like "2/s" or "4/h"',
}
_BASE = {"duration": "second", "size": "byte", "rate": "byte / second", "event_rate": "1 / second"}


# A unit is a short product or quotient of unit names; powers (``s**9**9**9``) could make
# pint compute huge integers, so they never reach it.
_UNIT_TEXT = re.compile(r"^[A-Za-zµ%/*. 0-9]{1,40}$")


@lru_cache(maxsize=1)
def _registry() -> pint.UnitRegistry:
    """pint's default registry, except that ``bit`` (and so ``byte``) has the dimension ``[information]``.

    Since pint 0.24 ``bit`` is dimensionless, which makes ``64 percent`` a size and
    ``10 Hz`` a bandwidth; here it is a base dimension again.
    """
    folder = os.path.dirname(pint.__file__)
    with open(os.path.join(folder, "default_en.txt"), encoding="utf-8") as fh:
        text = fh.read()
    with open(os.path.join(folder, "constants_en.txt"), encoding="utf-8") as fh:
        constants = fh.read()
    if "\nbit = []\n" in text:
        text = text.replace("\nbit = []\n", "\nbit = [information]\n")
    elif "\nbit = [information]\n" not in text:  # pragma: no cover - a pint that defines bits otherwise
        raise RuntimeError("pint's default_en.txt has no 'bit = []' line to give a dimension")
    text = text.replace("@import constants_en.txt", constants)
    ureg = pint.UnitRegistry(None)
    ureg.load_definitions(text.splitlines())
    ureg.define("calendar_year = 365 * day")
    return ureg


def _unit_expr(kind: str, unit: str) -> str:
    """Translate the user's unit symbol into a pint expression."""
    unit = unit.strip()
    if kind == "rate":
        m = _BIT_RATE.match(unit)
        if m:
            prefix = m.group(1).upper() if m.group(1) not in ("", "k") else m.group(1)
            return f"{prefix}{m.group(2)}bit / second"
    if "/" in unit:
        num, _, den = unit.partition("/")
        num = num.strip() or "1"
        bits = _BITS.match(num)
        if kind == "rate" and bits:  # "5Gb/s": lower-case b is bits
            num = f"{bits.group(1)}{bits.group(2)}bit"
        den = _TIME_ALIASES.get(den.strip(), den.strip())
        if kind == "event_rate" and num in ("", "1"):
            return f"1 / {den}"
        return f"{num} / {den}"
    if kind == "duration":
        return _TIME_ALIASES.get(unit, unit)
    return unit


# Compound durations: terms of a plain number and a time unit (``ms`` before ``m``).
_TERM = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(ms|us|µs|ns|min|y|w|d|h|m|s)(?![A-Za-zµ])")
_TERM_SECONDS = {"y": 365 * 86400.0, "w": 7 * 86400.0, "d": 86400.0, "h": 3600.0, "min": 60.0, "m": 60.0,
                 "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_TERM_RANK = {"y": 0, "w": 1, "d": 2, "h": 3, "min": 4, "m": 4, "s": 5, "ms": 6, "us": 7, "µs": 7, "ns": 8}


def _compound(text: str) -> float | None:
    """Seconds of a compound duration (two or more terms); None when ``text`` is not one."""
    text = text.strip()
    pos, terms = 0, []
    while pos < len(text):
        m = _TERM.match(text, pos)
        if m is None:
            return None
        terms.append((float(m.group(1)), m.group(2)))
        pos = m.end()
        while pos < len(text) and text[pos] == " ":
            pos += 1
    if len(terms) < 2:
        return None
    ranks = [_TERM_RANK[u] for _, u in terms]
    if any(a >= b for a, b in zip(ranks, ranks[1:], strict=False)):
        raise UnitError('expected a compound duration with each unit once, largest first, like "2d2h30m"')
    return math.fsum(v * _TERM_SECONDS[u] for v, u in terms)


@lru_cache(maxsize=4096)
def _parse(kind: str, text: str) -> float:
    if kind == "duration":
        total = _compound(text)
        if total is not None:
            return total
    m = _QUANTITY.match(text)
    if not m:
        raise UnitError(f"expected {_EXAMPLES[kind]}")
    value = float(m.group(1))
    unit = m.group(2)
    if not unit:
        return value
    if not math.isfinite(value):
        raise UnitError(f"expected {_EXAMPLES[kind]} with a finite number")
    if not _UNIT_TEXT.match(unit) or "**" in unit:
        raise UnitError(f"expected {_EXAMPLES[kind]}")
    if kind == "event_rate" and unit.startswith("/"):
        unit = "1" + unit
    ureg = _registry()
    try:
        q = ureg.Quantity(value, ureg.parse_units(_unit_expr(kind, unit)))
        magnitude = float(q.to(_BASE[kind]).magnitude)
    except ArithmeticError:  # "1/0s": ZeroDivisionError; overflow
        raise UnitError(f"expected {_EXAMPLES[kind]} (not a division by zero)") from None
    except (pint.errors.PintError, AttributeError, TypeError, ValueError, AssertionError, KeyError,
            IndexError, SyntaxError):
        raise UnitError(f"expected {_EXAMPLES[kind]}") from None
    if not math.isfinite(magnitude):
        raise UnitError(f"expected {_EXAMPLES[kind]} with a finite value")
    return magnitude


def _parse_value(kind: str, value: object, *, allow_negative: bool = False) -> float:
    if isinstance(value, bool):
        raise UnitError(f"expected {_EXAMPLES[kind]}")
    if isinstance(value, (int, float)):
        out = float(value)
    elif isinstance(value, str):
        out = _parse(kind, value)
    else:
        raise UnitError(f"expected {_EXAMPLES[kind]}")
    if math.isnan(out) or math.isinf(out):
        raise UnitError(f"expected {_EXAMPLES[kind]} with a finite value")
    if out < 0 and not allow_negative:
        raise UnitError(f"expected {_EXAMPLES[kind]} that is not negative")
    return out


def parse_duration(value: object) -> float:
    """Seconds from ``250ms``, ``30s``, ``5m``, ``2h``, ``7d``, ``1y`` (365 d), a compound ``2d2h30m``
    or a number of seconds."""
    return _parse_value("duration", value)


def parse_size(value: object) -> float:
    """Bytes from ``512MiB``, ``16GiB``, ``500GB`` or a number of bytes."""
    return _parse_value("size", value)


def parse_rate(value: object) -> float:
    """Bytes per second from ``25Gbps`` (bits), ``800MB/s`` (bytes) or a number of bytes/s."""
    return _parse_value("rate", value)


def parse_event_rate(value: object) -> float:
    """Events per second from ``2/s``, ``30/min``, ``4/h``, ``2/d`` or a number per second."""
    return _parse_value("event_rate", value)


def format_duration(seconds: float) -> str:
    """A short human form of a duration, for progress bars and messages."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.1f}s"
