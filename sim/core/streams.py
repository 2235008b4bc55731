"""Named random streams: one numpy Generator per random source, keyed by a stable name.

The seed of a stream depends only on (base seed, name), so adding a source, or
switching a mechanism on, never shifts the draws of another (common random numbers).
"""

from __future__ import annotations

import hashlib
import struct

import numpy as np

_WORDS = struct.Struct("<4I").unpack_from


def _name_key(name: str) -> tuple[int, ...]:
    """Four little-endian 32-bit words of the name's SHA-256: the stream's spawn key."""
    return _WORDS(hashlib.sha256(name.encode("utf-8")).digest())


class Streams:
    """Factory of independent generators: ``streams.get("faults/host_crash/east/bd1/h03")``."""

    def __init__(self, seed: int):
        self.seed = int(seed)
        self._cache: dict[str, np.random.Generator] = {}
        self._handed: set[str] = set()  # names whose generators get_many handed out

    def get(self, name: str) -> np.random.Generator:
        gen = self._cache.get(name)
        if gen is None:
            if name in self._handed:
                raise ValueError(f"stream {name!r} was handed out by get_many: its owner keeps it")
            ss = np.random.SeedSequence(entropy=self.seed, spawn_key=_name_key(name))
            gen = np.random.Generator(np.random.PCG64(ss))
            self._cache[name] = gen
        return gen

    def get_many(self, names: list[str]) -> list[np.random.Generator]:
        """The generators ``get`` would give for ``names`` (distinct, none asked before), seeded all
        at once (``sim.core.seeds``: numpy's seeding in array arithmetic, ~2.5 µs a stream instead
        of ~19; a fleet has a fault stream per VM, host, disk and DIMM bank). They are the caller's
        to keep, not cached (most fault streams are dropped after one draw, as their first failure
        falls after the run); their names are remembered, so asking one again, by either call, is
        an error rather than a silent second stream that would repeat its draws."""
        from sim.core.seeds import generators  # late: seeds imports this module

        handed = self._handed
        asked = set(names)
        if len(asked) != len(names) or not handed.isdisjoint(asked) or any(n in self._cache for n in names):
            raise ValueError("get_many: a name asked twice, or already made by get")
        handed |= asked  # only once checked: a refused call marks nothing
        return generators(self.seed, names)
