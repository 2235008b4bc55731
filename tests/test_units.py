"""Quantity parsing (sim.core.units) and the scenario's annotated field types (sim.scenario.types)."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from sim.core.units import UnitError, parse_duration, parse_event_rate, parse_rate, parse_size
from sim.scenario.types import (
    Duration,
    EventRate,
    Fraction,
    Globs,
    Name,
    NonNegFloat,
    NonNegInt,
    Point,
    PositiveDuration,
    PositiveInt,
    PositiveRate,
    PositiveSize,
    Rate,
    Size,
)

KiB, MiB, GiB, TiB, PiB = (1024.0**k for k in range(1, 6))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("30s", 30.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("7d", 604800.0),
        ("1y", 365 * 86400.0),
        ("1.5h", 5400.0),
        ("30 s", 30.0),
        ("1e3s", 1000.0),
        ("90", 90.0),
        (90, 90.0),
        (0.5, 0.5),
        ("0ms", 0.0),
    ],
)
def test_duration_forms(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds, rel=1e-12)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512MiB", 512 * MiB),
        ("16GiB", 16 * GiB),
        ("4TiB", 4 * TiB),
        ("1PiB", PiB),
        ("500GB", 500e9),
        ("1KiB", KiB),
        ("1kB", 1000.0),
        ("2B", 2.0),
        (1024, 1024.0),
    ],
)
def test_size_forms(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("25Gbps", 25e9 / 8),
        ("400Mbps", 400e6 / 8),
        ("1kbps", 125.0),
        ("800MB/s", 800e6),
        ("2GiB/s", 2 * GiB),
        (5, 5.0),
    ],
)
def test_rate_forms(text, rate):
    assert parse_rate(text) == rate


@pytest.mark.parametrize(
    ("text", "per_second"),
    [("2/s", 2.0), ("30/min", 0.5), ("4/h", 4 / 3600), ("2/d", 2 / 86400), (0.5, 0.5), ("2", 2.0)],
)
def test_event_rate_forms(text, per_second):
    assert parse_event_rate(text) == pytest.approx(per_second, rel=1e-12)


@pytest.mark.parametrize(
    ("parse", "value", "message"),
    [
        (parse_duration, "soon", 'expected a duration like "30s"'),
        (parse_duration, "5kg", 'expected a duration like "30s"'),
        (parse_duration, "", 'expected a duration like "30s"'),
        (parse_duration, True, 'expected a duration like "30s"'),
        (parse_duration, None, 'expected a duration like "30s"'),
        (parse_duration, "nan", 'expected a duration like "30s"'),
        (parse_duration, "-5s", 'expected a duration like "30s" that is not negative'),
        (parse_size, "lots", 'expected a size like "16GiB"'),
        (parse_size, "16Gbps", 'expected a size like "16GiB"'),
        (parse_size, "30s", 'expected a size like "16GiB"'),
        (parse_rate, "10GB", 'expected a rate like "25Gbps" or "800MB/s"'),
        (parse_rate, "fast", 'expected a rate like "25Gbps" or "800MB/s"'),
        (parse_event_rate, "2/kg", 'expected an event rate like "2/s" or "4/h"'),
        (parse_event_rate, "x", 'expected an event rate like "2/s" or "4/h"'),
    ],
)
def test_bad_units(parse, value, message):
    with pytest.raises(UnitError) as info:
        parse(value)
    assert str(info.value) == message


def _messages(tp, value) -> list[str]:
    with pytest.raises(ValidationError) as info:
        TypeAdapter(tp).validate_python(value)
    return [str(e["ctx"]["error"]) if e["type"] == "value_error" else e["type"] for e in info.value.errors()]


def test_quantity_types_parse_to_base_units():
    assert TypeAdapter(Duration).validate_python("2h") == 7200.0
    assert TypeAdapter(Size).validate_python("16GiB") == 16 * GiB
    assert TypeAdapter(Rate).validate_python("25Gbps") == 25e9 / 8
    assert TypeAdapter(EventRate).validate_python("30/min") == 0.5
    assert TypeAdapter(Duration).validate_python(0) == 0.0


def test_positive_types_reject_zero():
    assert _messages(PositiveDuration, "0s") == ['expected a duration like "30s" greater than zero']
    assert _messages(PositiveSize, 0) == ['expected a size like "16GiB" greater than zero']
    assert _messages(PositiveRate, "0Gbps") == ['expected a rate like "25Gbps" or "800MB/s" greater than zero']
    assert _messages(Duration, "-1s") == ['expected a duration like "30s" that is not negative']


def test_counts_and_fractions():
    assert TypeAdapter(NonNegInt).validate_python(0) == 0
    assert _messages(NonNegInt, -3) == ["expected a count that is not negative"]
    assert _messages(NonNegInt, True) == ["expected an integer"]
    assert _messages(NonNegInt, "abc") == ["int_parsing"]
    assert _messages(NonNegInt, 1.5) == ["int_from_float"]
    assert _messages(PositiveInt, 0) == ["expected an integer of at least 1"]
    assert TypeAdapter(Fraction).validate_python(1) == 1.0
    assert _messages(Fraction, 1.5) == ["expected a fraction from 0 to 1"]
    assert _messages(Fraction, False) == ["expected a fraction from 0 to 1"]
    assert _messages(NonNegFloat, -0.1) == ["expected a number that is not negative"]
    assert _messages(NonNegFloat, "inf") == ["expected a number that is not negative"]


def test_point_globs_and_names():
    assert TypeAdapter(Point).validate_python("latest") == "latest"
    assert TypeAdapter(Point).validate_python("2d") == 172800.0
    assert _messages(Point, "soon") == ['expected "latest" or a duration like "30s"']
    assert TypeAdapter(Globs).validate_python("east/*") == ("east/*",)
    assert TypeAdapter(Globs).validate_python(["a", "b"]) == ("a", "b")
    assert _messages(Globs, 5) == ["expected a name or glob, or a list of them"]
    assert TypeAdapter(Name).validate_python("east") == "east"
    bad = 'expected a name without "/", spaces at the ends or glob characters'
    assert _messages(Name, "a/b") == [bad]
    assert _messages(Name, "web*") == [bad]
    assert _messages(Name, "") == [bad]


@pytest.mark.parametrize(("text", "seconds"), [
    ("1h30m", 3600 + 30 * 60),  # 5,400
    ("2d2h30m", 2 * 86400 + 2 * 3600 + 30 * 60),  # 181,800
    ("1h 30m", 5400),
    ("2m30s", 150),
    ("1s500ms", 1.5),
    ("1.5h30m", 7200),
    ("1y2d", 367 * 86400),  # a year is 365 days
    ("1w1d", 8 * 86400),
    ("1h30min", 5400),
])
def test_compound_durations_sum_their_terms(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds, rel=0, abs=1e-9)


@pytest.mark.parametrize(("text", "message"), [
    ("2h2h", 'expected a compound duration with each unit once, largest first, like "2d2h30m"'),
    ("30m1h", 'expected a compound duration with each unit once, largest first, like "2d2h30m"'),
    ("1d-2h", 'expected a duration like "30s"'),  # no signed terms: a difference reads as a mistake
    ("1h30", 'expected a duration like "30s"'),  # every term has its unit
])
def test_compound_durations_refused(text, message):
    with pytest.raises(UnitError) as err:
        parse_duration(text)
    assert str(err.value) == message


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_UNITS = [("y", 365 * 86400), ("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1), ("ms", 1e-3)]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(picks=st.lists(st.tuples(st.integers(0, len(_UNITS) - 1), st.integers(0, 999)), min_size=2, max_size=7,
                      unique_by=lambda p: p[0]))
def test_a_compound_duration_is_the_sum_of_its_terms(picks):
    """Any two or more distinct units, largest first, with whole counts: the sum of count x unit."""
    picks = sorted(picks)
    text = "".join(f"{n}{_UNITS[i][0]}" for i, n in picks)
    assert parse_duration(text) == pytest.approx(sum(n * _UNITS[i][1] for i, n in picks), rel=1e-12, abs=1e-12)
