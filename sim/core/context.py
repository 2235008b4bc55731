"""The run context, passed explicitly to every component (no globals, no default env)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import simpy

    from sim.core.streams import Streams
    from sim.metrics.recorder import Recorder


@dataclass
class Context:
    """One run: its SimPy environment, named random streams, recorder and resolved scenario.

    ``services`` lets mechanisms offer a capability to others (the live migration engine)
    without importing each other: ``ctx.services["live_migration"].migrate(vm, host)``.
    """

    env: simpy.Environment
    streams: Streams
    recorder: Recorder
    scenario: Any
    services: dict[str, Any] = field(default_factory=dict)
    # Called with the time at every ``sample_interval`` (gauges computed from the phase, never an
    # event per period) and once at the end of the run (counts still pending).
    samplers: list[Callable[[float], None]] = field(default_factory=list)
    finalizers: list[Callable[[float], None]] = field(default_factory=list)
