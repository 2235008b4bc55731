"""Numbers as a person reads them: the terminal, the reports and the notebooks' helpers.

Result files keep base SI units (seconds, bytes, bytes per second, 0..1 fractions);
only what is shown goes through here. The rules:

- plain numbers: three significant digits, thousands separators, whole numbers exact,
  never scientific notation between 1e-9 and 1e15 (``1,234``, ``0.0907``, ``5.59``);
- availability: a percentage with enough nines that the unavailability keeps two
  significant digits (``99.99999 %``, ``99.985 %``, ``100 %`` only when nothing was down),
  and as downtime per 365-day year (``3.15 s/year``);
- durations: ``ms``, ``s``, ``min``, ``h`` or ``d``, whichever keeps the number between 1
  and its next unit (``1.5 min``, ``4 h``, ``23.8 d``);
- bytes in binary units (``16.2 GiB``), rates of bytes per second the same per second;
- money with its currency (``1,234.50 USD``); probabilities and fractions as percentages;
- a time in a run (an incident's start) as ``d+hh:mm:ss`` (``23+23:12:10``: day 23).

``value(x, unit)`` dispatches on the unit vocabulary of ``sim.metrics.meta`` (``"s"``,
``"bytes"``, ``"bytes/s"``, ``"count"``, ``"availability"``, ``"probability"``,
``"fraction"``, ``"money"``, ``"money/h"``, ``"1"``); ``axis(unit, values)`` picks one
display unit for a plot axis.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = [
    "number",
    "duration",
    "size",
    "rate",
    "money",
    "percent",
    "availability",
    "downtime_per_year",
    "availability_long",
    "clock",
    "bits_per_s",
    "value",
    "axis",
    "YEAR_S",
]

YEAR_S = 365 * 86400.0
DASH = "–"
_DURATIONS = (("d", 86400.0), ("h", 3600.0), ("min", 60.0), ("s", 1.0), ("ms", 1e-3), ("µs", 1e-6))
_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def _bad(x: float) -> str | None:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return DASH
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return None


def number(x: float, sig: int = 3) -> str:
    """``sig`` significant digits, thousands separators, no trailing zeros, no exponent for
    ordinary magnitudes (whole numbers are shown whole: ``1,234,567``)."""
    bad = _bad(x)
    if bad is not None:
        return bad
    x = float(x)
    if x == 0:
        return "0"
    a = abs(x)
    if a >= 1e15 or a < 1e-9:
        return f"{x:.{sig - 1}e}"
    if x == round(x) or a >= 10 ** (sig - 1):
        return f"{round(x):,}"
    decimals = max(0, sig - 1 - math.floor(math.log10(a)))
    text = f"{x:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _scaled(x: float, units: tuple[tuple[str, float], ...]) -> str:
    bad = _bad(x)
    if bad is not None:
        return bad
    if x == 0:
        return "0 s"
    a = abs(x)
    for name, size in units:
        if a >= size:
            return f"{number(x / size)} {name}"
    name, size = units[-1]
    return f"{number(x / size)} {name}"


def duration(seconds: float) -> str:
    """``250 ms``, ``12.3 s``, ``1.5 min``, ``4 h``, ``23.8 d``; ``0 s``."""
    return _scaled(seconds, _DURATIONS)


def size(nbytes: float) -> str:
    """Binary units: ``512 B``, ``1.5 KiB``, ``16.2 GiB``; ``0 B``."""
    bad = _bad(nbytes)
    if bad is not None:
        return bad
    a = abs(float(nbytes))
    i = 0
    while i < len(_BINARY) - 1 and a >= 1024.0 ** (i + 1):
        i += 1
    return f"{number(nbytes / 1024.0 ** i)} {_BINARY[i]}"


def rate(bytes_per_s: float) -> str:
    """``size`` per second: ``1.16 GiB/s``."""
    return f"{size(bytes_per_s)}/s" if _bad(bytes_per_s) is None else size(bytes_per_s)


def bits_per_s(bytes_per_s: float) -> str:
    """A rate of bytes per second as network people write it, in decimal bits: ``100 Gbps``."""
    bad = _bad(bytes_per_s)
    if bad is not None:
        return bad
    bits = float(bytes_per_s) * 8
    for name, size_ in (("Tbps", 1e12), ("Gbps", 1e9), ("Mbps", 1e6), ("kbps", 1e3)):
        if abs(bits) >= size_:
            return f"{number(bits / size_)} {name}"
    return f"{number(bits)} bps"


def money(amount: float, currency: str = "USD", per: str = "") -> str:
    """Two decimals and the currency: ``1,234.50 USD`` (``per="h"``: ``12.00 USD/h``)."""
    bad = _bad(amount)
    if bad is not None:
        return bad
    text = f"{float(amount):,.2f}" if abs(amount) < 1e15 else number(amount)
    return f"{text} {currency}" + (f"/{per}" if per else "")


def percent(fraction: float) -> str:
    """A 0..1 share as a percentage with three significant digits: ``12.5 %``, ``0.001 %``."""
    bad = _bad(fraction)
    return bad if bad is not None else f"{number(float(fraction) * 100)} %"


def availability(a: float) -> str:
    """A percentage with as many nines as it has and the unavailability to two significant digits:
    ``99.99999 %``, ``99.985 %``, ``99 %``, ``100 %`` (only when exactly 1), ``0 %``."""
    bad = _bad(a)
    if bad is not None:
        return bad
    a = float(a)
    down = (1.0 - a) * 100.0  # percentage points unavailable
    if down <= 0:
        return "100 %"
    if a <= 0:
        return "0 %"
    decimals = max(0, 1 - math.floor(math.log10(down)))
    text = f"{a * 100:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text == "100":  # a floating-point hair below 1: keep it visibly below
        text = f"{a * 100:.{decimals + 1}f}"
    return f"{text} %"


def downtime_per_year(a: float) -> str:
    """The unavailability as time down per 365-day year: ``3.15 s/year``, ``0 s/year``."""
    bad = _bad(a)
    if bad is not None:
        return bad
    return f"{duration(max(0.0, 1.0 - float(a)) * YEAR_S)}/year"


def availability_long(a: float) -> str:
    """``99.99999 % (3.15 s/year down)``."""
    bad = _bad(a)
    return bad if bad is not None else f"{availability(a)} ({downtime_per_year(a)} down)"


def clock(t_s: float) -> str:
    """A time since the start of a run as ``d+hh:mm:ss`` (rounded to the second): ``0+00:00:00``,
    ``23+23:12:10``."""
    bad = _bad(t_s)
    if bad is not None:
        return bad
    total = int(round(float(t_s)))
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{sign}{days}+{hours:02d}:{minutes:02d}:{seconds:02d}"


def value(x: float, unit: str, currency: str = "USD") -> str:
    """``x`` (in base units) formatted for ``unit`` of the metric vocabulary."""
    if unit == "s":
        return duration(x)
    if unit == "bytes":
        return size(x)
    if unit == "bytes/s":
        return rate(x)
    if unit == "availability":
        return availability(x)
    if unit in ("probability", "fraction"):
        return percent(x)
    if unit == "money":
        return money(x, currency)
    if unit == "money/h":
        return money(x, currency, per="h")
    return number(x)


def axis(unit: str, values: Iterable[float] = (), currency: str = "USD") -> tuple[float, str]:
    """(divisor, label) to draw values of ``unit`` on one axis: the largest finite magnitude picks
    the display unit (``("s", [90, 210])`` -> ``(60.0, "min")``). Availability, probabilities and
    fractions become percentages (divisor 0.01)."""
    finite = [abs(float(v)) for v in values if v is not None and math.isfinite(float(v))]
    top = max(finite, default=0.0)
    if unit == "s":
        for name, size_ in _DURATIONS:
            if top >= size_:
                return size_, name
        return 1.0, "s"
    if unit in ("bytes", "bytes/s"):
        i = 0
        while i < len(_BINARY) - 1 and top >= 1024.0 ** (i + 1):
            i += 1
        return 1024.0 ** i, _BINARY[i] + ("/s" if unit == "bytes/s" else "")
    if unit in ("availability", "probability", "fraction"):
        return 0.01, "%"
    if unit == "money":
        return 1.0, currency
    if unit == "money/h":
        return 1.0, f"{currency}/h"
    if unit == "count":
        return 1.0, "count"
    return 1.0, ""
