"""The private calendar's least-loaded choice (heaps per load level for large clusters, a scan for small
ones) against a brute-force scan of the rule: the same sessions go to the same positions, under random
serve/stop/drop sequences (hypothesis), with either path in each cluster."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.core.streams import Streams
from sim.mechanisms.sessions import _Arrivals, _Pool


class _ScanPool(_Pool):
    """Reference: every arrival scans the class's positions (the contract's rule written plainly: the
    least-occupied cluster among those with a free slot, ties to the first; there the least-loaded
    serving position, ties to the lowest)."""

    def _run_one(self, codes):
        self._run_many(codes)

    def _run_many(self, codes):
        load, eff, pos = self.load, self.eff, self.pos
        for code in codes:
            if code >= 0:
                best, bo = -1, 2.0
                for c in range(self.C):
                    serving = [p for p in range(self.lo[c], self.hi[c]) if eff[p] >= 0]
                    if serving and min(eff[p] for p in serving) < self.caps[c]:
                        o = sum(eff[p] for p in serving) / (len(serving) * self.caps[c])
                        if o < bo:
                            best, bo = c, o
                if best < 0:
                    pos[code] = self.npos
                    continue
                p = min((eff[q], q) for q in range(self.lo[best], self.hi[best]) if eff[q] >= 0)[1]
                eff[p] += 1
                load[p] += 1
                pos[code] = p
            else:
                p = pos[~code]
                load[p] -= 1
                if eff[p] >= 0:
                    eff[p] -= 1


def _pool(cls, sizes, cap, rate, hold, seed, heaped=None):
    s = Streams(seed)
    arr = _Arrivals(rate, hold, s.get("a"), s.get("h"), 64)
    p = cls([cap] * len(sizes), sizes, [arr])
    if heaped is not None:  # heaps or scan per cluster, whatever its size (both paths are checked)
        p.heaped = [heaped[c % len(heaped)] for c in range(len(sizes))]
    p.W = 50.0 / rate  # small windows: many window boundaries in a short run
    for q in range(sum(sizes)):
        p.serve(q, True)
    return p


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(1, 12), min_size=1, max_size=3), cap=st.integers(1, 6),
       util=st.floats(0.3, 1.5), seed=st.integers(0, 10_000),
       ops=st.lists(st.tuples(st.floats(0.0, 40.0), st.integers(0, 1000), st.booleans()), max_size=25),
       heaped=st.lists(st.booleans(), min_size=1, max_size=3))
def test_the_heap_choice_is_the_brute_force_choice(sizes, cap, util, seed, ops, heaped):
    n = sum(sizes)
    hold = 1.0
    rate = util * n * cap / hold
    a = _pool(_Pool, sizes, cap, rate, hold, seed, heaped)
    b = _pool(_ScanPool, sizes, cap, rate, hold, seed)
    for t, which, drop in sorted(ops):  # equal timestamps allowed: applied in list order
        q = which % n
        for pool in (a, b):
            pool.advance(t)
            if pool.eff[q] >= 0:
                pool.serve(q, False)
                if drop:
                    pool.drop(q)
            else:
                pool.serve(q, True)
        assert a.pos == b.pos
    ha, hb = a.finish(50.0), b.finish(50.0)
    assert a.pos == b.pos
    assert np.array_equal(ha, hb)
    for name in ("carried", "blocked", "dropped"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    # the bookkeeping behind the heaps is exact: least load and per-load counts of serving positions
    for c in range(a.C):
        serving = [a.eff[p] for p in range(a.lo[c], a.hi[c]) if a.eff[p] >= 0]
        assert a.m[c] == min([x for x in serving if x < cap], default=cap)
        assert all(a.cnt[c][lv] == serving.count(lv) for lv in range(len(a.cnt[c])))
