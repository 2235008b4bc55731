"""Human formatting (sim.format) against hand-written strings, one group per unit kind."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim import format as fmt


@pytest.mark.parametrize(("a", "text"), [
    (0.9999999, "99.99999 %"),   # 1e-7 down: five nines after the point
    (0.99985, "99.985 %"),
    (0.9999776, "99.9978 %"),    # 0.00224 points down, kept to two significant digits: 0.0022
    (0.999, "99.9 %"),
    (0.99, "99 %"),
    (0.5, "50 %"),
    (1.0, "100 %"),
    (0.0, "0 %"),
])
def test_availability_percentages(a, text):
    assert fmt.availability(a) == text


@pytest.mark.parametrize(("a", "text"), [
    (0.9999999, "3.15 s/year"),     # 1e-7 * 31,536,000 s = 3.1536 s
    (0.999, "8.76 h/year"),         # 1e-3 * 8,760 h
    (0.99, "3.65 d/year"),
    (1.0, "0 s/year"),
    (0.0, "365 d/year"),
])
def test_downtime_per_year(a, text):
    assert fmt.downtime_per_year(a) == text


def test_availability_long_form():
    assert fmt.availability_long(0.9999999) == "99.99999 % (3.15 s/year down)"


@given(st.floats(min_value=0.0, max_value=1.0, exclude_max=True))
def test_availability_below_one_never_shows_100(a):
    """Anything that was down at all reads below 100 %, and the shown figure is within two
    significant digits of the unavailability (relative error of the shown downtime < 10 %)."""
    text = fmt.availability(a)
    shown = float(text.removesuffix(" %"))
    assert shown < 100
    down, shown_down = (1 - a) * 100, 100 - shown
    assert math.isclose(shown_down, down, rel_tol=0.1, abs_tol=1e-9)


@pytest.mark.parametrize(("s", "text"), [
    (0, "0 s"), (0.0907, "90.7 ms"), (5.588, "5.59 s"), (59.9, "59.9 s"), (90, "1.5 min"),
    (6270.09, "1.74 h"), (86400, "1 d"), (2_592_000, "30 d"), (2e-6, "2 µs"),
])
def test_durations(s, text):
    assert fmt.duration(s) == text


@pytest.mark.parametrize(("b", "text"), [
    (0, "0 B"), (512, "512 B"), (1536, "1.5 KiB"), (16 * 2**30, "16 GiB"),
    (17_400_820_085.5, "16.2 GiB"), (2 * 2**50, "2 PiB"),
])
def test_bytes_binary(b, text):
    assert fmt.size(b) == text


def test_rates():
    assert fmt.rate(25e9 / 8) == "2.91 GiB/s"  # 25 Gbps = 3.125e9 B/s = 2.910 GiB/s
    assert fmt.rate(0) == "0 B/s"


@pytest.mark.parametrize(("x", "kw", "text"), [
    (1234.5, {}, "1,234.50 USD"), (0, {}, "0.00 USD"), (12, {"currency": "EUR", "per": "h"}, "12.00 EUR/h"),
])
def test_money(x, kw, text):
    assert fmt.money(x, **kw) == text


@pytest.mark.parametrize(("t", "text"), [
    (0, "0+00:00:00"), (2_070_730, "23+23:12:10"), (59.6, "0+00:01:00"), (90061, "1+01:01:01"),
])
def test_clock(t, text):
    assert fmt.clock(t) == text


@pytest.mark.parametrize(("x", "text"), [
    (0, "0"), (1234567, "1,234,567"), (104.5015, "105"), (0.0907043, "0.0907"), (2.0, "2"),
    (0.000123456, "0.000123"), (17_400_820_085.5, "17,400,820,086"), (float("nan"), "–"),
])
def test_plain_numbers_have_no_exponent(x, text):
    assert fmt.number(x) == text


@pytest.mark.parametrize(("x", "unit", "text"), [
    (0.9999999, "availability", "99.99999 %"), (210.0, "s", "3.5 min"), (1536, "bytes", "1.5 KiB"),
    (1536, "bytes/s", "1.5 KiB/s"), (35, "count", "35"), (0.125, "probability", "12.5 %"),
    (0.5, "fraction", "50 %"), (3.5, "money", "3.50 USD"), (3.5, "money/h", "3.50 USD/h"), (2.25, "1", "2.25"),
])
def test_value_dispatch(x, unit, text):
    assert fmt.value(x, unit) == text


def test_axis_units():
    assert fmt.axis("s", [90, 210]) == (60.0, "min")
    assert fmt.axis("bytes", [3 * 2**30]) == (2**30, "GiB")
    assert fmt.axis("availability", [0.99]) == (0.01, "%")


def test_bits_per_second():
    assert fmt.bits_per_s(12.5e9) == "100 Gbps"   # 12.5e9 B/s * 8 = 1e11 bits/s
    assert fmt.bits_per_s(3.125e9) == "25 Gbps"
    assert fmt.bits_per_s(50e6) == "400 Mbps"
