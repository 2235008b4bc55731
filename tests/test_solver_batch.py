"""The solver's batched updates (one solve at the end of an instant) and the swap (streams ending and
starting together at saturated targets) against a solver that re-solves every flow at every change."""

from __future__ import annotations

import pytest
import simpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.infra.solver import FlowSolver

#: resources: two storage targets, an uplink, six host NICs (the NIC capacities are drawn)
TARGETS = (0, 1)
UPLINK = 2
NICS = tuple(range(3, 9))


def close(a: float, b: float, rel: float = 1e-7) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-12)


class Driver:
    """One solver driven by a script; completions of queued streams start the next at once."""

    def __init__(self, incremental: bool, caps: list[float]):
        self.env = simpy.Environment()
        self.s = FlowSolver(self.env, incremental=incremental)
        self.rid = [self.s.add_resource(f"r{i}", c) for i, c in enumerate(caps)]
        self.live: dict[str, object] = {}
        self.ends: dict[str, tuple[float, str]] = {}
        self.queued: dict[int, list[tuple[int, float]]] = {t: [] for t in TARGETS}
        self.n = 0

    def stream(self, nic: int, target: int, size: float) -> None:
        """A backup stream: a host NIC, the uplink, a target; when it ends the target's next queued one
        starts at the same instant (in its completion callback)."""
        self._start((self.rid[NICS[nic]], self.rid[UPLINK], self.rid[TARGETS[target]]), size, target)

    def flow(self, nics: tuple[int, ...], size: float, cap: float | None) -> None:
        self._start(tuple(self.rid[NICS[k]] for k in nics), size, None, cap)

    def _start(self, route, size, target, cap=None) -> None:
        key = f"f{self.n}"
        self.n += 1
        f = self.s.start(route, size, cap)
        self.live[key] = f
        f.done.callbacks.append(lambda ev, key=key, target=target: self._ended(ev, key, target))

    def _ended(self, ev, key: str, target: int | None) -> None:
        self.live.pop(key, None)
        self.ends[key] = (self.env.now, "done" if ev.ok else "failed")
        if not ev.ok:
            ev.defused = True
        elif target is not None and self.queued[target]:
            nic, size = self.queued[target].pop(0)
            self.stream(nic, target, size)

    def abort(self, pick: int) -> None:
        if self.live:
            key = sorted(self.live)[pick % len(self.live)]
            self.s.abort(self.live.pop(key))
            self.ends[key] = (self.env.now, "aborted")

    def run(self, script) -> list[dict[str, float]]:
        """Apply each step's operations at its instant; return the live flows' rates a microsecond
        later (after that instant's updates were solved, and off any completion instant: the order
        of events at one instant is not compared)."""
        seen: list[dict[str, float]] = []

        def proc():
            for dt, step in script:
                yield self.env.timeout(dt)
                for op in step:
                    kind = op[0]
                    if kind == "stream":
                        self.stream(*op[1:])
                    elif kind == "queue":
                        self.queued[op[2]].append((op[1], op[3]))
                    elif kind == "flow":
                        self.flow(*op[1:])
                    elif kind == "abort":
                        self.abort(op[1])
                    elif kind == "fail":
                        self.s.fail_resource(self.rid[op[1]], "outage")
                    else:
                        self.s.set_capacity(self.rid[op[1]], op[2])
                yield self.env.timeout(1e-6)
                seen.append({k: self.s.rate(f) for k, f in sorted(self.live.items())})

        self.env.process(proc())
        self.env.run(until=500.0)
        return seen


sizes = st.sampled_from([2.0, 3.0, 4.0, 6.0, 12.0]) | st.floats(0.5, 20.0)
op = st.one_of(
    st.tuples(st.just("stream"), st.integers(0, 5), st.sampled_from(TARGETS), sizes),
    st.tuples(st.just("queue"), st.integers(0, 5), st.sampled_from(TARGETS), sizes),
    st.tuples(st.just("flow"), st.lists(st.integers(0, 5), min_size=1, max_size=2, unique=True).map(tuple), sizes,
              st.none() | st.floats(0.2, 3.0)),
    st.tuples(st.just("abort"), st.integers(0, 1000)),
    st.tuples(st.just("fail"), st.sampled_from((*TARGETS, *NICS))),
    st.tuples(st.just("capacity"), st.sampled_from((*TARGETS, UPLINK, *NICS)),
              st.sampled_from([0.0, 1.0, 2.0, 4.0])),
)
script = st.lists(st.tuples(st.sampled_from([0.0, 0.5, 1.0, 2.0]), st.lists(op, max_size=6)), min_size=1,
                  max_size=25)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from([1.0, 2.0, 3.0]) | st.floats(0.5, 6.0), min_size=6, max_size=6), script)
def test_batched_updates_equal_a_full_solve_at_every_change(nic_caps, steps):
    """Random starts, queued streams started in the completion callback of the one before (at the
    same instant: the swap), aborts, failures of a target or a NIC and capacity changes, several at
    one instant and at a completion's instant: the batched incremental solver gives every live flow
    the rate, and every flow the end time and outcome, of a solver that re-solves every flow at every
    change, without batching."""
    caps = [4.0, 3.0, 6.0, *nic_caps]
    inc, ref = Driver(True, caps), Driver(False, caps)
    assert not ref.s._batch
    seen_inc, seen_ref = inc.run(steps), ref.run(steps)
    assert len(seen_inc) == len(seen_ref)
    for a, b in zip(seen_inc, seen_ref, strict=True):
        assert a.keys() == b.keys()
        assert all(close(a[k], b[k]) for k in a), (a, b)
    assert inc.ends.keys() == ref.ends.keys()
    for k, (t, how) in ref.ends.items():
        assert inc.ends[k][1] == how
        assert inc.ends[k][0] == pytest.approx(t, rel=1e-9, abs=1e-9)


def test_a_stream_ending_as_the_next_starts_is_one_swap():
    """Four streams of 8 B into a 4 B/s target (1 B/s each) from 10 B/s NICs, and a queue: at t = 8
    all four end, the four queued ones start in their completion callbacks, and the update of that
    instant is one swap (no re-level, no full solve): each new stream gets 1 B/s, ending at 16."""
    d = Driver(True, [4.0, 3.0, 100.0] + [10.0] * 6)
    for k in range(4):
        d.stream(k, 0, 8.0)
        d.queued[0].append((k + 2 if k < 2 else k, 8.0))
    d.env.run(until=1.0)
    before = dict(d.s.stats)
    d.env.run(until=9.0)
    assert [d.s.rate(f) for f in d.live.values()] == pytest.approx([1.0] * 4)
    assert d.s.stats["swap"] == before["swap"] + 1
    assert d.s.stats["full"] == before["full"] and d.s.stats["shift"] == before["shift"]
    d.env.run()
    assert sorted(t for t, _ in d.ends.values()) == pytest.approx([8.0] * 4 + [16.0] * 4)
