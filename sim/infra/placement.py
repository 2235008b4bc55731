"""Placement policies: where a VM goes, at build time, at restart and at evacuation.

- ``broadcast_domain`` (default): deal VMs round-robin over the domains of the allowed
  hosts, then to the least-used host of the domain (MECHANISMS.md, Placement). For a single
  VM placed later (restart, evacuation) this becomes: the domain holding the fewest VMs of
  its workload, then the least-used host there.
- ``pack``: first fit by host name.
- ``random``: uniform over the allowed hosts with room, from a named stream.

Every policy only returns hosts that are up and have the memory (never overcommit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from sim.infra.datacenter import VM, Host


def _least_used(hosts: Iterable[Host], vm: VM) -> Host | None:
    best = None
    best_key = None
    for h in hosts:
        if not h.fits(vm):
            continue
        key = ((h.used_memory + h.reserved) / h.capacity if h.capacity > 0 else 1.0, h.index)
        if best_key is None or key < best_key:
            best, best_key = h, key
    return best


def choose_host(vm: VM, candidates: list[Host], spread: str, rng: np.random.Generator | None = None,
                exclude: Host | None = None) -> Host | None:
    """One host for ``vm`` among ``candidates`` (ordered by name) by the ``spread`` rule, or None."""
    if spread == "pack":
        for h in candidates:
            if h is not exclude and h.fits(vm):
                return h
        return None
    if spread == "random":
        fits = [h for h in candidates if h is not exclude and h.fits(vm)]
        if not fits:
            return None
        if rng is None:
            raise ValueError("random placement needs a stream")
        return fits[int(rng.integers(len(fits)))]
    # broadcast_domain: the domain with fewest VMs of this workload, then the least-used host.
    by_domain: dict[str, list[Host]] = {}
    for h in candidates:
        if h is not exclude:
            by_domain.setdefault(h.domain.name, []).append(h)
    best = None
    best_key = None
    for order, (_, hosts) in enumerate(by_domain.items()):
        h = _least_used(hosts, vm)
        if h is None:
            continue
        key = (hosts[0].domain.placed.get(vm.workload, 0), order)
        if best_key is None or key < best_key:
            best, best_key = h, key
    return best


def deal(vms: list[VM], candidates: list[Host], spread: str, place: Callable[[VM, Host], None],
         rng: np.random.Generator | None = None) -> list[VM]:
    """Initial placement of a workload, placing each VM as it goes; returns the VMs that did not fit."""
    unplaced = []
    if spread != "broadcast_domain":
        for vm in vms:
            host = choose_host(vm, candidates, spread, rng)
            if host is None:
                unplaced.append(vm)
            else:
                place(vm, host)
        return unplaced
    domains: dict[str, list[Host]] = {}
    for h in candidates:
        domains.setdefault(h.domain.name, []).append(h)
    groups = list(domains.values())
    turn = 0
    for vm in vms:
        host = None
        for k in range(len(groups)):
            host = _least_used(groups[(turn + k) % len(groups)], vm)
            if host is not None:
                turn = (turn + k + 1) % len(groups)
                break
        if host is None:
            unplaced.append(vm)
        else:
            place(vm, host)
    return unplaced
