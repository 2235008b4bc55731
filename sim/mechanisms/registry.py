"""The explicit registry of mechanisms, in the sorted order in which they react to a stopped VM."""

from __future__ import annotations

from types import ModuleType

from sim.mechanisms import live_migration, memory_error_evacuation

_MODULES: tuple[ModuleType, ...] = (live_migration, memory_error_evacuation)

REGISTRY: dict[str, ModuleType] = {m.KEY: m for m in sorted(_MODULES, key=lambda m: m.KEY)}


def config_models() -> dict[str, type]:
    """Mechanism key -> its pydantic config model (assembled into the scenario schema)."""
    return {key: mod.Config for key, mod in REGISTRY.items()}
