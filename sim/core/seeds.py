"""Many named streams at once, the same generators ``Streams.get`` gives (``Streams.get_many``).

``Streams.get(name)`` (``sim.core.streams``) seeds a PCG64 from ``SeedSequence(entropy=seed,
spawn_key=<4 words of the name's SHA-256>)``: about 19 µs a stream, nearly all of it the seed
sequence's entropy mixing in Python-level calls. The fault injectors need one stream per
target (every VM, host, disk, DIMM bank), 125,000 at 10,000 hosts, so ``generators`` computes
the same mixing for all names at once with numpy (the algorithm of ``numpy.random.SeedSequence``:
``mix_entropy`` over the assembled entropy, then ``generate_state(4, uint64)``, in wrapping
32-bit arithmetic) and builds each PCG64 from its four words, ~2.5 µs a stream.

The result is checked once per process against ``SeedSequence`` for a probe name; should a
numpy release change its seeding, ``generators`` falls back to ``SeedSequence`` per name (the
streams stay those of ``Streams.get``, only slower). ``tests/test_fault_cost.py`` compares the
two over random names and seeds.

Call it through ``Streams.get_many``, which hands the generators to the caller uncached and
remembers their names: a name asked again (by ``get`` or ``get_many``) is an error, never a second
stream repeating the first one's draws.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.random.bit_generator import ISeedSequence

from sim.core.streams import _name_key

# numpy.random.bit_generator's SeedSequence constants
_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R = 0xCA01F9DD, 0x4973F715
_POOL = 4
_MASK = 0xFFFFFFFF


class _Words(ISeedSequence):
    """A seed sequence whose state is already computed (PCG64 asks it for 4 uint64 words)."""

    __slots__ = ("words",)

    def __init__(self, words: np.ndarray):
        self.words = words

    def generate_state(self, n_words, dtype=np.uint32):
        return self.words


def _run_words(seed: int) -> list[int]:
    """``SeedSequence``'s 32-bit words of a non-negative int entropy, least significant first."""
    if seed == 0:
        return [0]
    out = []
    while seed > 0:
        out.append(seed & _MASK)
        seed >>= 32
    return out


def _key_words(names: Sequence[str]) -> np.ndarray:
    """(N, 4) uint32: the spawn key of each name (``sim.core.streams._name_key``)."""
    return np.array([_name_key(n) for n in names], dtype=np.uint32).reshape(len(names), 4)


def state_words(seed: int, names: Sequence[str]) -> np.ndarray:
    """(N, 4) uint64: ``SeedSequence(entropy=seed, spawn_key=_name_key(name)).generate_state(4,
    np.uint64)`` for every name, computed for all names at once."""
    n = len(names)
    run = _run_words(int(seed))
    if len(run) < _POOL:
        run = run + [0] * (_POOL - len(run))  # a spawn key follows: the entropy is padded to the pool
    keys = _key_words(names)
    entropy = [np.full(n, w, dtype=np.uint32) for w in run] + [keys[:, j] for j in range(4)]
    hash_a = _INIT_A

    def hashmix(value: np.ndarray) -> np.ndarray:
        nonlocal hash_a
        value = value ^ np.uint32(hash_a)
        hash_a = (hash_a * _MULT_A) & _MASK
        value = value * np.uint32(hash_a)
        return value ^ (value >> np.uint32(16))

    def mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        r = np.uint32(_MIX_L) * x - np.uint32(_MIX_R) * y
        return r ^ (r >> np.uint32(16))

    with np.errstate(over="ignore"):
        pool = [hashmix(entropy[i]) if i < len(entropy) else hashmix(np.zeros(n, np.uint32)) for i in range(_POOL)]
        for src in range(_POOL):
            for dst in range(_POOL):
                if src != dst:
                    pool[dst] = mix(pool[dst], hashmix(pool[src]))
        for src in range(_POOL, len(entropy)):
            for dst in range(_POOL):
                pool[dst] = mix(pool[dst], hashmix(entropy[src]))
        hash_b = _INIT_B
        out = np.empty((n, 8), dtype=np.uint32)
        for i in range(8):
            value = pool[i % _POOL] ^ np.uint32(hash_b)
            hash_b = (hash_b * _MULT_B) & _MASK
            value = value * np.uint32(hash_b)
            out[:, i] = value ^ (value >> np.uint32(16))
    return out.astype("<u4").view("<u8").astype(np.uint64)


def _reference(seed: int, name: str) -> np.ndarray:
    return np.random.SeedSequence(entropy=int(seed), spawn_key=_name_key(name)).generate_state(4, np.uint64)


_checked: bool | None = None


def _agrees() -> bool:
    """Whether ``state_words`` gives numpy's own seeding here (checked once per process)."""
    global _checked
    if _checked is None:
        probe = "faults/seeds/probe"
        _checked = all(np.array_equal(state_words(s, [probe])[0], _reference(s, probe)) for s in (0, 2**40 + 7))
    return _checked


def generators(seed: int, names: Sequence[str]) -> list[np.random.Generator]:
    """The generator ``Streams(seed).get(name)`` would give, for each name (fresh, not cached)."""
    if not names:
        return []
    Generator, PCG64 = np.random.Generator, np.random.PCG64
    if not _agrees():
        return [Generator(PCG64(np.random.SeedSequence(entropy=int(seed), spawn_key=_name_key(n)))) for n in names]
    return [Generator(PCG64(_Words(w))) for w in state_words(seed, names)]
