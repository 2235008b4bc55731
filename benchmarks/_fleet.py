"""What the mechanism benchmarks share: a one-site fleet of 16-host broadcast domains, and
loading a scenario dict the way ``dcsim run`` loads a file (written as YAML, then validated)."""

from __future__ import annotations

from pathlib import Path

import yaml

from sim.mechanisms.registry import Registry, config_models
from sim.runner import Simulation
from sim.scenario.loader import load_scenario

VAULT = {"name": "vault", "site": "east", "capacity": "20PiB", "read": "40GB/s", "write": "30GB/s"}


def east(domains: int, hosts: int = 16, storage: tuple[dict, ...] = (VAULT,), **profile) -> dict:
    """The ``infrastructure`` of one site, ``east``: ``domains`` domains of ``hosts`` hosts of 64 cores
    and 256 GiB (``profile`` overrides), 400 Gbps uplinks, a 3,200 Gbps core, and ``storage``."""
    infra = {
        "host_profiles": {"std": {"cores": 64, "memory": "256GiB", "dimms": 16, "nic": "25Gbps",
                                  "reserved_memory": "16GiB", **profile}},
        "sites": [{"name": "east", "core": "3200Gbps", "broadcast_domains": [
            {"name": f"bd{i:02d}", "hosts": hosts, "profile": "std", "uplink": "400Gbps"} for i in range(domains)]}],
    }
    if storage:
        infra["storage"] = list(storage)
    return infra


def simulation(data: dict, tmp: Path, name: str, registry: Registry | None = None) -> Simulation:
    """``data`` written to ``tmp/name.yaml``, loaded and validated, built (not run)."""
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    if registry is None:
        return Simulation(load_scenario(str(path), [], config_models()))
    return Simulation(load_scenario(str(path), [], registry), registry=registry)
