"""Small stand-in mechanism configs for schema tests (the real ones live in sim/mechanisms)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from sim.scenario.types import Duration


class Dummy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = True


class LiveMigration(Dummy):
    mode: Literal["precopy", "postcopy"] = "precopy"
    downtime_target: Duration = 0.3


class Sessions(Dummy):
    clusters: tuple[str, ...] = ()


REGISTRY = {"live_migration": LiveMigration, "sessions": Sessions, "remediation": Dummy}
