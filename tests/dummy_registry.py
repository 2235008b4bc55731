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


class DummyRegistry(dict):
    """Key -> config model, with what the schema asks of a registry: the always-on sections and the
    mechanisms' operation kinds (``migrate``, from the live migration module)."""

    def always_on(self) -> frozenset[str]:
        return frozenset({"live_migration"} & set(self))

    def operation_models(self) -> dict:
        from sim.mechanisms.live_migration import Migrate

        return {"migrate": Migrate}

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.items(), key=lambda kv: kv[0])))


REGISTRY = DummyRegistry({"live_migration": LiveMigration, "sessions": Sessions, "remediation": Dummy})
