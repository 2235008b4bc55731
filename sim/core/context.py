"""The run context, passed explicitly to every component (no globals, no default env)."""

from __future__ import annotations

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
