"""The shape every mechanism follows: construct (store references), wire, start.

Construction and ``wire()`` happen before time 0 (build and wire first); ``start()``
spawns the standing processes. Every mechanism is constructed and wired, disabled ones
too (each decides what that means, usually nothing), so that its tables and metrics
exist and the naive behaviour applies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from sim.core.context import Context
    from sim.infra.datacenter import Datacenter


class MechanismConfig(BaseModel):
    """Base of every mechanism's config: frozen, unknown keys rejected, ``enabled`` default true."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True


class Mechanism:
    key: ClassVar[str] = ""

    def __init__(self, ctx: Context, dc: Datacenter, config: Any):
        self.ctx = ctx
        self.dc = dc
        self.env = ctx.env
        self.config = config
        self.enabled = bool(config is not None and config.enabled)

    def wire(self) -> None:
        """Register handlers and services (before time 0). Called for every mechanism: a disabled
        one registers nothing that changes behaviour, so the naive behaviour applies."""

    def start(self) -> None:
        """Spawn standing processes (at time 0)."""

    def operations(self) -> dict[str, Any]:
        """Operation kinds this mechanism carries out: kind -> callable(op) returning a generator."""
        return {}
