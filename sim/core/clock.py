"""The one place that reads SimPy's private state: how many events a run has processed.

SimPy keeps no public count of processed events. ``Environment`` numbers every event it
schedules (``_eid``, an ``itertools.count``, read from its repr so that reading does not
advance it) and keeps the ones not yet processed in its heap (``_queue``), so scheduled
minus still queued is the number processed. Model code
never reads these; the runner and the bench call ``processed_events`` once per run.
``tests/test_clock.py`` counts the events of small known processes by hand, so a SimPy
release that changes either attribute fails there, not silently in a figure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import simpy

__all__ = ["processed_events"]


def processed_events(env: simpy.Environment) -> int:
    """Events ``env`` has processed so far: every event scheduled (process initialisations,
    timeouts, triggered events, process ends, ``run(until=...)``'s own) minus those still
    queued. Reading it schedules nothing. O(1)."""
    text = repr(env._eid)  # "count(N)": N, the number the next event gets, read without advancing it
    if not (text.startswith("count(") and text.endswith(")")):
        raise RuntimeError(f"SimPy's event counter changed (expected count(N), got {text}): see sim/core/clock.py")
    return int(text[6:-1]) - len(env._queue)
