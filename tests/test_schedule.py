"""The periodic-schedule helper: firing times, skipped periods, cancellation, against hand values."""

from __future__ import annotations

import math

import pytest
import simpy

from sim.core.clock import processed_events
from sim.core.schedule import every

H, D = 3600.0, 86400.0


def _times(env, **kw):
    seen = []
    sched = every(env, kw.pop("period"), lambda now: seen.append(now), **kw)
    return seen, sched


def test_nightly_at_two_is_two_hours_into_every_day():
    """Time 0 = 00:00 of day 0: daily at 02:00 over 3 days fires at 7,200, 93,600 and 180,000 s."""
    env = simpy.Environment()
    seen, sched = _times(env, period=D, at=2 * H)
    env.run(until=3 * D)
    assert seen == [7200.0, 93600.0, 180000.0]
    assert sched.runs == 3 and sched.skipped == 0


def test_start_and_until_bound_the_firings_and_at_is_modulo_the_period():
    """Hourly at :30 (at = 90 min = 30 min mod 1 h) from 2 h until 5 h: 2:30, 3:30, 4:30; a start
    exactly on a firing time fires then."""
    env = simpy.Environment()
    seen, _ = _times(env, period=H, at=1.5 * H, start=2 * H, until=5 * H)
    env.run(until=10 * H)
    assert seen == [2.5 * H, 3.5 * H, 4.5 * H]
    env = simpy.Environment()
    seen, _ = _times(env, period=H, at=0.0, start=2 * H, until=4 * H)
    env.run(until=10 * H)
    assert seen == [2 * H, 3 * H]


def test_times_do_not_drift_over_a_long_run():
    """0.1 s steps accumulated 10^5 times drift; the k-th firing is at + k x period exactly."""
    env = simpy.Environment()
    seen, _ = _times(env, period=0.1, until=10_000.0)
    env.run()
    assert len(seen) == 100_000
    assert seen[-1] == 99_999 * 0.1


def test_a_job_still_running_skips_the_periods_that_fall_due_without_an_event_each():
    """Daily at 02:00; the first job lasts 30 h (02:00 day 0 to 08:00 day 1), so 02:00 of day 1 is
    skipped and the next run is at 02:00 of day 2 (180,000 s). A job of 10 days on an hourly
    schedule skips 239 firings with no event for any of them."""
    env = simpy.Environment()
    runs = []

    def job(now):
        runs.append(now)
        return env.timeout(30 * H if len(runs) == 1 else 1.0)

    sched = every(env, D, job, at=2 * H, until=3 * D)
    env.run()
    assert runs == [7200.0, 180000.0]
    assert sched.skipped == 1

    env = simpy.Environment()
    sched = every(env, H, lambda now: env.timeout(10 * D), until=10 * D + 0.5 * H)
    env.run()
    # events: 2 schedule timeouts (t = 0 and 240 h) + 2 job timeouts = 4
    assert (sched.runs, sched.skipped, processed_events(env)) == (2, 239, 4)


def test_a_job_ending_on_a_firing_time_runs_again_then():
    env = simpy.Environment()
    runs = []
    every(env, H, lambda now: runs.append(now) or env.timeout(2 * H), until=5 * H)
    env.run()
    assert runs == [0.0, 2 * H, 4 * H]


def test_cancel_stops_the_next_firings():
    env = simpy.Environment()
    seen, sched = _times(env, period=D, at=2 * H)
    env.run(until=D)
    sched.cancel()
    env.run(until=5 * D)
    assert seen == [7200.0] and sched.next_time is None


def test_a_period_must_be_positive():
    env = simpy.Environment()
    for bad in (0.0, -1.0, math.inf):
        with pytest.raises(ValueError, match="positive finite period"):
            every(env, bad, lambda now: None)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=200, deadline=None, derandomize=True)
@given(period=st.sampled_from([0.5, 1.0, 60.0, 3600.0, 86400.0]), at=st.floats(0, 200000),
       start=st.floats(0, 5000), span=st.floats(0, 20000), stop_after=st.integers(0, 30))
def test_firings_are_the_closed_form_set_until_cancelled(period, at, start, span, stop_after):
    """The firings are exactly {at + k x period : start <= t < until} in order (at mod period), cut
    after ``stop_after`` runs by a cancel from inside the job; never one before ``start``."""
    env = simpy.Environment()
    until = start + span
    seen = []

    def job(now):
        seen.append(now)
        if len(seen) == stop_after:
            sched.cancel()

    sched = every(env, period, job, at=at, start=start, until=until)
    env.run()
    a = at % period
    k = math.ceil((start - a) / period)
    expected = []
    while a + k * period < until:
        expected.append(a + k * period)
        k += 1
    if stop_after:
        expected = expected[:stop_after]
    assert seen == expected
    assert sched.runs == len(seen) and sched.skipped == 0
