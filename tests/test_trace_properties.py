"""Properties of trace replay over random records: overlapping, touching, equal timestamps.

Independent reference: the union of a node's intervals computed by a plain sweep over the
sorted endpoints (not the vectorised merge): its measure is the node's down time and its
number of connected pieces the number of faults.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from conftest import base_scenario, write_yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.faults.trace import _merge

# Times on a coarse grid so that equal timestamps and touching intervals are common.
record = st.tuples(st.integers(0, 3), st.integers(0, 40), st.integers(0, 12))


def union(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


@given(st.lists(record, min_size=1, max_size=60))
def test_merge_is_the_union(records):
    node = np.array([r[0] for r in records], dtype=np.int64)
    start = np.array([float(r[1]) for r in records])
    end = start + np.array([float(r[2]) for r in records])
    n, s, e = _merge(node, start, end)
    for k in set(node.tolist()):
        want = union([(a, b) for a, b, m in zip(start, end, node, strict=True) if m == k])
        got = [(a, b) for a, b, m in zip(s, e, n, strict=True) if m == k]
        assert got == want
    assert list(zip(n, s, strict=True)) == sorted(zip(n, s, strict=True))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(record, min_size=1, max_size=25))
def test_replayed_down_time_and_count_are_the_union(tmp_path, records):
    """Hosts h00..h03 of an 8-host scenario (run 60 h, times in hours): the time integral of hosts
    not up equals the union's measure, clipped at the end; host_crash faults = union pieces that
    start within the run."""
    from sim.cli import load
    from sim.runner import Simulation

    H = 3600.0
    df = pd.DataFrame({"node": [r[0] for r in records], "start": [r[1] * H for r in records],
                       "end": [(r[1] + r[2]) * H for r in records]})
    df.to_csv(tmp_path / "t.csv", index=False)
    sc = base_scenario(duration="60h", faults=[{"kind": "trace", "path": "t.csv"}])
    path = str(write_yaml(tmp_path / "s.yaml", sc))
    out = Simulation(load(path, [], None), source=path).run()
    lv = out.tables["levels"]
    lv = lv[(lv["entity"] == "fleet") & (lv["metric"] == "hosts_up")].sort_values("time_s", kind="stable")
    t = np.r_[lv["time_s"].to_numpy(), 60 * H]
    down = float(np.sum((8 - lv["value"].to_numpy()) * np.diff(t)))
    pieces = [p for k in range(4) for p in union([(a * H, (a + d) * H) for m, a, d in records if m == k])]
    want = sum(min(e, 60 * H) - s for s, e in pieces)
    assert abs(down - want) < 1e-6
    assert out.metrics["faults.host_crash"] == len(pieces)
