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

    def get(self, name: str) -> np.random.Generator:
        gen = self._cache.get(name)
        if gen is None:
            ss = np.random.SeedSequence(entropy=self.seed, spawn_key=_name_key(name))
            gen = np.random.Generator(np.random.PCG64(ss))
            self._cache[name] = gen
        return gen
