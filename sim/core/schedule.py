"""A periodic schedule: call a job every ``period`` at a time of day (nightly backups, discovery,
charging evaluation, compliance scans).

The clock's time 0 is 00:00 of day 0, so ``every(env, 86400, job, at=7200)`` runs ``job``
at 02:00 of every day: at 7,200 s, 93,600 s, 180,000 s, ... The firing times are
``at + k x period`` for whole k (computed from k, never accumulated, so they do not
drift), the first one at or after ``start`` (default: now), none at or after ``until``.
``at`` is taken modulo ``period``.

A job may return a SimPy event (a process): while it runs, the firings that fall due are
skipped (counted in ``skipped``), and the next firing is the first one after the job
ends (a job that ends exactly at a firing time runs again then). The schedule keeps one
pending timeout at a time: a skipped or cancelled period costs no event. ``cancel()``
stops it: the pending timeout is ignored and a running job is left alone (it is the
job's to stop).

Cost: one timeout per firing that runs, plus the job's own events.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import simpy

if TYPE_CHECKING:
    from simpy.events import Event

__all__ = ["Schedule", "every"]


class Schedule:
    """A running periodic schedule (made by ``every``)."""

    __slots__ = ("env", "period", "at", "until", "job", "k", "runs", "skipped", "cancelled", "running", "_pending")

    def __init__(self, env: simpy.Environment, period: float, job: Callable[[float], Any], at: float,
                 start: float, until: float):
        if not (period > 0 and math.isfinite(period)):
            raise ValueError(f"expected a positive finite period, got {period!r}")
        self.env = env
        self.period = float(period)
        self.at = float(at) % self.period
        self.until = float(until)
        self.job = job
        self.k = math.ceil((start - self.at) / self.period)  # the next firing's index
        self.runs = 0  # firings that called the job
        self.skipped = 0  # firings that fell due while the job was still running
        self.cancelled = False
        self.running = False
        self._pending: Event | None = None
        self._arm()

    def time(self, k: int) -> float:
        """The k-th firing time (k may be negative: before time 0)."""
        return self.at + k * self.period

    @property
    def next_time(self) -> float | None:
        """When the job runs next; None when cancelled, running (not known yet) or past ``until``."""
        if self.cancelled or self.running or self._pending is None:
            return None
        return self.time(self.k)

    def cancel(self) -> None:
        self.cancelled = True
        self._pending = None

    def _arm(self) -> None:
        t = self.time(self.k)
        if self.cancelled or t >= self.until:
            self._pending = None
            return
        ev = self.env.timeout(max(0.0, t - self.env.now))
        ev.callbacks.append(self._fire)
        self._pending = ev

    def _fire(self, ev: Event) -> None:
        if ev is not self._pending:
            return  # cancelled since
        self._pending = None
        self.runs += 1
        out = self.job(self.env.now)
        self.k += 1
        if isinstance(out, simpy.Event) and out.callbacks is not None:  # still running
            self.running = True
            out.callbacks.append(self._done)
        else:
            self._arm()

    def _done(self, _ev: Event) -> None:
        self.running = False
        if self.cancelled:
            return
        first = math.ceil((self.env.now - self.at) / self.period)  # the first firing at or after now
        if first > self.k:
            last = math.ceil((self.until - self.at) / self.period) if math.isfinite(self.until) else first
            self.skipped += max(0, min(first, last) - self.k)  # those due before ``until``
            self.k = first
        self._arm()


def every(env: simpy.Environment, period: float, job: Callable[[float], Any], *, at: float = 0.0,
          start: float | None = None, until: float = math.inf) -> Schedule:
    """Call ``job(now)`` at ``at + k x period`` (time 0 = 00:00 of day 0) from ``start`` (default
    now) until before ``until``; returns the ``Schedule`` (``cancel()``, ``runs``, ``skipped``)."""
    return Schedule(env, period, job, at, env.now if start is None else float(start), until)
