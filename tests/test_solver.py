"""The fluid bandwidth solver: max-min rates, completion times, failures, and its incremental path.

Hand-worked cases derive the expected numbers in their docstrings. Properties run on
random instances (hypothesis) and compare against an independent pure-Python
water-filling written here, not against the solver's own code paths.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import simpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.infra.solver import FlowFailed, FlowSolver

MB = 1e6


def reference_rates(caps: dict[int, float], flows: list[tuple[tuple[int, ...], float | None]]) -> list[float]:
    """Max-min rates by textbook water-filling: raise all rates together; freeze at the first full resource."""
    rate: list[float | None] = [None] * len(flows)
    left = dict(caps)
    todo = set(range(len(flows)))
    while todo:
        level = math.inf
        for r, c in left.items():
            k = sum(1 for i in todo if r in flows[i][0])
            if k:
                level = min(level, c / k)
        for i in todo:
            if flows[i][1] is not None:
                level = min(level, flows[i][1])
        hit = {i for i in todo if flows[i][1] is not None and flows[i][1] <= level * (1 + 1e-12)}
        for r, c in left.items():
            on = {i for i in todo if r in flows[i][0]}
            if on and c / len(on) <= level * (1 + 1e-12):
                hit |= on
        for i in hit:
            rate[i] = level
            for r in flows[i][0]:
                left[r] = max(0.0, left[r] - level)
        todo -= hit
    return rate  # type: ignore[return-value]


def close(a: float, b: float, rel: float = 1e-7) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)


def solver_with(*caps: float, incremental: bool = True) -> tuple[simpy.Environment, FlowSolver, list[int]]:
    env = simpy.Environment()
    s = FlowSolver(env, incremental=incremental)
    return env, s, [s.add_resource(f"r{i}", c) for i, c in enumerate(caps)]


def at(env: simpy.Environment, t: float, fn) -> None:
    """Call ``fn()`` at simulated time ``t``."""
    def proc():
        yield env.timeout(t - env.now)
        fn()
    env.process(proc())


def finish_times(env: simpy.Environment, flows) -> dict[int, float]:
    out: dict[int, float] = {}
    for f in flows:
        f.done.callbacks.append(lambda ev, f=f: out.__setitem__(f.id, env.now))
    return out


# ---------------------------------------------------------------- hand-worked rates
def test_one_bottleneck_two_flows_get_half_each():
    """One 10 MB/s link, two flows: each gets 10/2 = 5 MB/s, and the link is full."""
    _, s, (link,) = solver_with(10 * MB)
    a = s.start([link], 100 * MB)
    b = s.start([link], 100 * MB)
    assert s.rate(a) == pytest.approx(5 * MB)
    assert s.rate(b) == pytest.approx(5 * MB)
    assert s.load(link) == pytest.approx(10 * MB)


def test_classic_three_flows_two_links():
    """A (cap 1) carries flows 1, 2; B (cap 2) carries flows 1, 3.

    Fill: A's share 1/2 < B's 2/2, so A saturates first: flows 1 and 2 get 0.5. B has
    2 - 0.5 = 1.5 left for flow 3 alone: 1.5.
    """
    _, s, (A, B) = solver_with(1.0, 2.0)
    f1 = s.start([A, B], 10)
    f2 = s.start([A], 10)
    f3 = s.start([B], 10)
    assert [s.rate(f) for f in (f1, f2, f3)] == pytest.approx([0.5, 0.5, 1.5])


def test_capped_flow_leaves_the_rest_to_others():
    """10 MB/s link; flow a capped at 2 MB/s, flow b uncapped: a = 2, b = 10 - 2 = 8."""
    _, s, (link,) = solver_with(10 * MB)
    a = s.start([link], 100 * MB, cap=2 * MB)
    b = s.start([link], 100 * MB)
    assert s.rate(a) == pytest.approx(2 * MB)
    assert s.rate(b) == pytest.approx(8 * MB)


def test_cap_above_fair_share_changes_nothing():
    """A cap of 8 on a 10-link shared by two: the fair share 5 is below it, so 5 and 5."""
    _, s, (link,) = solver_with(10.0)
    a = s.start([link], 100, cap=8.0)
    b = s.start([link], 100)
    assert (s.rate(a), s.rate(b)) == pytest.approx((5.0, 5.0))


def test_cap_alone_without_resources():
    """A flow with no resources and a cap moves at its cap: 10 bytes at 4 B/s end at 2.5 s."""
    env, s, _ = solver_with(1.0)
    f = s.start([], 10.0, cap=4.0)
    assert s.rate(f) == 4.0
    times = finish_times(env, [f])
    env.run()
    assert times[f.id] == pytest.approx(2.5)


def test_chain_of_bottlenecks():
    """Links X (3), Y (10), Z (4). f1 on X; f2 on X, Y; f3 on Y, Z; f4 on Z.

    X's share 3/2 = 1.5 is the least: f1 = f2 = 1.5. Then Z's share 4/2 = 2 < Y's
    (10 - 1.5)/1 = 8.5: f3 = f4 = 2. Y carries 3.5 of 10.
    """
    _, s, (X, Y, Z) = solver_with(3.0, 10.0, 4.0)
    fl = [s.start([X], 1), s.start([X, Y], 1), s.start([Y, Z], 1), s.start([Z], 1)]
    assert [s.rate(f) for f in fl] == pytest.approx([1.5, 1.5, 2.0, 2.0])
    assert s.load(Y) == pytest.approx(3.5)


# ---------------------------------------------------------------- completion times
def test_completion_when_a_second_flow_joins():
    """100 MB alone at 10 MB/s; a second 100 MB joins at t=5.

    At 5, a has 50 MB left; both go at 5 MB/s: a ends at 5 + 50/5 = 15. Then b, with
    100 - 50 = 50 MB left, goes alone at 10 MB/s: ends at 15 + 5 = 20.
    """
    env, s, (link,) = solver_with(10 * MB)
    a = s.start([link], 100 * MB)
    flows = [a]
    times = finish_times(env, flows)

    def join():
        b = s.start([link], 100 * MB)
        flows.append(b)
        b.done.callbacks.append(lambda ev: times.__setitem__(b.id, env.now))

    at(env, 5.0, join)
    env.run()
    assert times[a.id] == pytest.approx(15.0)
    assert times[flows[1].id] == pytest.approx(20.0)
    assert a.end_time == pytest.approx(15.0)


def test_three_flows_leave_one_by_one():
    """12 MB/s link; flows of 12, 24, 36 MB from t=0.

    All at 4 MB/s: the 12 MB ends at 3. Two left at 6 MB/s; the 24 MB has 12 left: ends
    at 5. The 36 MB has 36 - 12 - 12 = 12 left, alone at 12 MB/s: ends at 6 (= 72/12).
    """
    env, s, (link,) = solver_with(12 * MB)
    fl = [s.start([link], m * MB) for m in (12, 24, 36)]
    times = finish_times(env, fl)
    env.run()
    assert [times[f.id] for f in fl] == pytest.approx([3.0, 5.0, 6.0])


def test_latency_is_paid_once_at_the_start():
    """100 MB at 10 MB/s with 0.5 s latency ends at 0.5 + 10 = 10.5; rate 0 until 0.5."""
    env, s, (link,) = solver_with(10 * MB)
    f = s.start([link], 100 * MB, latency=0.5)
    assert s.rate(f) == 0.0 and s.remaining(f) == 100 * MB
    assert s.flows_on(link) == [f] and s.n_flows == 1
    seen = {}
    at(env, 0.25, lambda: seen.setdefault("early", s.rate(f)))
    at(env, 5.5, lambda: seen.setdefault("sent", s.sent(f)))
    times = finish_times(env, [f])
    env.run()
    assert seen["early"] == 0.0
    assert seen["sent"] == pytest.approx(50 * MB)  # 5 s of moving at 10 MB/s
    assert times[f.id] == pytest.approx(10.5)


def test_zero_size_flow_completes_after_its_latency():
    """Size 0: done at its latency (0.25), and at once without latency."""
    env, s, (link,) = solver_with(10.0)
    a = s.start([link], 0.0, latency=0.25)
    b = s.start([link], 0.0)
    times = finish_times(env, [a, b])
    env.run()
    assert times == {a.id: pytest.approx(0.25), b.id: 0.0}
    assert s.remaining(a) == 0.0 and s.sent(a) == 0.0


def test_simultaneous_completions_fire_in_id_order():
    """Two identical 10 MB flows on a 10 MB/s link both end at 2 s, in id order, value = flow."""
    env, s, (link,) = solver_with(10 * MB)
    fl = [s.start([link], 10 * MB) for _ in range(2)]
    order = []
    for f in fl:
        f.done.callbacks.append(lambda ev: order.append((env.now, ev.value.id)))
    env.run()
    assert order == [(pytest.approx(2.0), fl[0].id), (pytest.approx(2.0), fl[1].id)]
    assert s.n_flows == 0


def test_many_rate_changes_leave_completion_exact():
    """Flow a (60 MB) on a 6 MB/s link; flows of 1 MB join at t = 1, 2, ..., 9 (each alone with a).

    Each small flow shares 3 MB/s for 1/3 s, during which a also sends 1 MB; so each
    costs a 1/3 s. a alone would end at 10; the nine 1 MB flows (9 MB, 1.5 s at 6 MB/s)
    delay it to 11.5. Stale timers must not complete a early.
    """
    env, s, (link,) = solver_with(6 * MB)
    a = s.start([link], 60 * MB)
    times = finish_times(env, [a])
    for k in range(1, 10):
        at(env, float(k), lambda: s.start([link], 1 * MB))
    env.run()
    assert times[a.id] == pytest.approx(11.5)


# ---------------------------------------------------------------- failures and aborts
def test_failed_link_stalls_and_resumes_on_repair():
    """100 MB at 10 MB/s; capacity 0 from t=2 to t=12: 20 MB sent, stalled 10 s, ends at 12 + 8 = 20."""
    env, s, (link,) = solver_with(10 * MB)
    f = s.start([link], 100 * MB)
    seen = {}
    at(env, 2.0, lambda: s.set_capacity(link, 0.0))
    at(env, 7.0, lambda: seen.update(rate=s.rate(f), sent=s.sent(f)))
    at(env, 12.0, lambda: s.set_capacity(link, 10 * MB))
    times = finish_times(env, [f])
    env.run()
    assert seen == {"rate": 0.0, "sent": pytest.approx(20 * MB)}
    assert times[f.id] == pytest.approx(20.0)


def test_abort_returns_bytes_sent_and_frees_capacity():
    """Two 100 MB flows share 10 MB/s; a aborted at t=4 has sent 4 * 5 = 20 MB.

    b has 80 MB left and goes alone at 10 MB/s: ends at 4 + 8 = 12. a's done never fires.
    """
    env, s, (link,) = solver_with(10 * MB)
    a = s.start([link], 100 * MB)
    b = s.start([link], 100 * MB)
    got = {}
    at(env, 4.0, lambda: got.update(sent=s.abort(a)))
    times = finish_times(env, [a, b])
    env.run()
    assert got["sent"] == pytest.approx(20 * MB)
    assert a.id not in times and not a.done.triggered
    assert times[b.id] == pytest.approx(12.0)
    assert s.abort(a) == pytest.approx(20 * MB)  # idempotent


def test_abort_during_latency_sends_nothing():
    env, s, (link,) = solver_with(10.0)
    f = s.start([link], 100.0, latency=1.0)
    assert s.abort(f) == 0.0
    env.run()
    assert not f.done.triggered and s.n_flows == 0


def test_fail_throws_flowfailed_into_the_waiter():
    """fail() at t=3: the waiter gets FlowFailed with the cause; the other flow then runs alone."""
    env, s, (link,) = solver_with(10 * MB)
    a = s.start([link], 100 * MB)
    b = s.start([link], 100 * MB)
    caught = {}

    def waiter():
        try:
            yield a.done
        except FlowFailed as exc:
            caught.update(cause=exc.cause, flow=exc.flow, t=env.now)

    env.process(waiter())
    at(env, 3.0, lambda: s.fail(a, "storage down"))
    times = finish_times(env, [b])
    env.run()
    assert caught == {"cause": "storage down", "flow": a, "t": 3.0}
    # b: 15 MB in 3 s at 5 MB/s, then 85 MB alone at 10 MB/s -> 3 + 8.5
    assert times[b.id] == pytest.approx(11.5)


def test_fail_without_waiter_does_not_crash():
    env, s, (link,) = solver_with(10.0)
    f = s.start([link], 100.0)
    at(env, 1.0, lambda: s.fail(f, "gone"))
    env.run()
    assert f.done.triggered and not f.done.ok


def test_fail_resource_fails_moving_and_waiting_flows_only_on_it():
    """Storage outage: both flows crossing it fail (one still in its latency); the third completes."""
    env, s, (store, other) = solver_with(10.0, 10.0)
    moving = s.start([store], 100.0)
    waiting = s.start([store, other], 100.0, latency=5.0)
    bystander = s.start([other], 20.0)
    at(env, 1.0, lambda: s.fail_resource(store, "outage"))
    times = finish_times(env, [bystander])
    env.run()
    for f in (moving, waiting):
        assert f.done.triggered and not f.done.ok
        assert isinstance(f.done.value, FlowFailed) and f.done.value.cause == "outage"
    assert times[bystander.id] == pytest.approx(2.0)
    assert s.flows_on(store) == []


def test_queries_and_validation():
    env, s, (A, B) = solver_with(4.0, 6.0)
    f = s.start([A, B], 10.0)
    g = s.start([B], 10.0)
    assert s.flows_on(B) == [f, g] and s.flows_on(A) == [f]
    assert s.load(B) == pytest.approx(4.0 + 2.0) and s.capacity(A) == 4.0
    assert s.n_flows == 2
    with pytest.raises(ValueError):
        s.start([A, A], 1.0)
    with pytest.raises(ValueError):
        s.start([999], 1.0)
    with pytest.raises(ValueError):
        s.start([A], -1.0)
    with pytest.raises(ValueError):
        s.add_resource("r0", 1.0)
    s.set_capacity(A, -1e-12)  # rounding below zero counts as failed
    assert s.capacity(A) == 0.0 and s.rate(f) == 0.0 and s.rate(g) == pytest.approx(6.0)


# ---------------------------------------------------------------- properties
@st.composite
def instances(draw, max_res: int = 8, max_flows: int = 14):
    nres = draw(st.integers(1, max_res))
    caps = draw(st.lists(st.sampled_from([0.0, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0]) | st.floats(0.1, 100.0),
                         min_size=nres, max_size=nres))
    flows = draw(st.lists(
        st.tuples(
            st.lists(st.integers(0, nres - 1), min_size=1, max_size=min(4, nres), unique=True),
            st.none() | st.floats(0.05, 20.0),
        ),
        min_size=1, max_size=max_flows,
    ))
    return caps, flows


def build(caps, flows, order=None, incremental=True):
    env, s, rids = solver_with(*caps, incremental=incremental)
    order = range(len(flows)) if order is None else order
    made = {}
    for i in order:
        res, cap = flows[i]
        made[i] = s.start([rids[r] for r in res], 1e12, cap=cap)
    return s, rids, [made[i] for i in range(len(flows))]


def assert_max_min(s: FlowSolver, rids: list[int], fl) -> None:
    """Feasible, and every flow is at its cap or has a full resource on which no flow is faster."""
    for r in rids:
        assert s.load(r) <= s.capacity(r) * (1 + 1e-9) + 1e-12
    for f in fl:
        x = s.rate(f)
        if f.cap is not None and x >= f.cap * (1 - 1e-7):
            continue
        assert any(
            s.load(r) >= s.capacity(r) * (1 - 1e-7) and all(x >= s.rate(g) * (1 - 1e-7) for g in s.flows_on(r))
            for r in f.resources
        ), f"flow {f} has no bottleneck"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_rates_are_max_min_and_match_reference(inst):
    caps, flows = inst
    s, rids, fl = build(caps, flows)
    assert_max_min(s, rids, fl)
    expected = reference_rates(dict(enumerate(caps)), [(tuple(r), c) for r, c in flows])
    for f, e in zip(fl, expected, strict=True):
        assert close(s.rate(f), e)


@settings(max_examples=80, deadline=None)
@given(instances(), st.randoms(use_true_random=False))
def test_shares_do_not_depend_on_insertion_order(inst, rnd):
    caps, flows = inst
    order = list(range(len(flows)))
    rnd.shuffle(order)
    s1, _, fl1 = build(caps, flows)
    s2, _, fl2 = build(caps, flows, order)
    for a, b in zip(fl1, fl2, strict=True):
        assert close(s1.rate(a), s2.rate(b), 1e-9)


ops = st.lists(
    st.tuples(st.sampled_from(["add", "add", "add", "abort", "capacity"]),
              st.lists(st.integers(0, 7), min_size=1, max_size=4, unique=True),
              st.none() | st.floats(0.1, 10.0),
              st.integers(0, 10_000)),
    min_size=1, max_size=60,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from([0.0, 1.0, 2.0, 4.0]) | st.floats(0.5, 10.0), min_size=8, max_size=8), ops,
       st.sampled_from([2, 4, 32]))
def test_incremental_updates_equal_a_full_solve(caps, script, small):
    """The same operations on an incremental solver and a full-solve one give the same rates, always."""
    env = simpy.Environment()
    inc = FlowSolver(env)
    inc.SMALL = small  # small thresholds exercise the "big resource" rules on small instances
    full = FlowSolver(env, incremental=False)
    ri = [inc.add_resource(f"r{i}", c) for i, c in enumerate(caps)]
    rf = [full.add_resource(f"r{i}", c) for i, c in enumerate(caps)]
    live: list[tuple] = []
    for op, res, x, pick in script:
        if op == "add" or not live:
            cap = None if x is None or x > 8 else x
            live.append((inc.start([ri[r] for r in res], 1e12, cap), full.start([rf[r] for r in res], 1e12, cap)))
        elif op == "abort":
            a, b = live.pop(pick % len(live))
            inc.abort(a)
            full.abort(b)
        else:
            c = 0.0 if x is None else x
            inc.set_capacity(ri[res[0]], c)
            full.set_capacity(rf[res[0]], c)
        for a, b in live:
            assert close(inc.rate(a), full.rate(b))
    assert_max_min(inc, ri, [a for a, _ in live])
    expected = reference_rates({i: inc.capacity(r) for i, r in enumerate(ri)},
                               [(tuple(ri.index(r) for r in a.resources), a.cap) for a, _ in live])
    for (a, _), e in zip(live, expected, strict=True):
        assert close(inc.rate(a), e)


def reference_finish_times(cap: float, arrivals: list[tuple[float, float, tuple[int, ...]]],
                           caps: list[float]) -> list[float]:
    """Fluid simulation by hand: piecewise-constant reference rates between events."""
    t = 0.0
    left = [size for _, size, _ in arrivals]
    end = [math.nan] * len(arrivals)
    while any(math.isnan(e) for e in end):
        live = [i for i, (a, _, _) in enumerate(arrivals) if a <= t + 1e-12 and math.isnan(end[i])]
        rates = reference_rates(dict(enumerate(caps)), [(arrivals[i][2], None) for i in live])
        nxt = min((a for a, _, _ in arrivals if a > t + 1e-12), default=math.inf)
        for i, r in zip(live, rates, strict=True):
            if r > 0:
                nxt = min(nxt, t + left[i] / r)
        for i, r in zip(live, rates, strict=True):
            left[i] -= r * (nxt - t)
            if left[i] <= 1e-6 * arrivals[i][1]:
                end[i] = nxt
        t = nxt
    return end


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.floats(1.0, 10.0), min_size=3, max_size=3),
       st.lists(st.tuples(st.integers(0, 20).map(float), st.integers(1, 40).map(float),
                          st.lists(st.integers(0, 2), min_size=1, max_size=3, unique=True)),
                min_size=1, max_size=8))
def test_completion_times_match_a_fluid_simulation_by_hand(caps, arrivals):
    arrivals = [(a, size, tuple(res)) for a, size, res in arrivals]
    expected = reference_finish_times(0.0, arrivals, caps)
    env, s, rids = solver_with(*caps)
    times: dict[int, float] = {}
    for k, (a, size, res) in enumerate(arrivals):
        def go(k=k, size=size, res=res):
            f = s.start([rids[r] for r in res], size)
            f.done.callbacks.append(lambda ev: times.__setitem__(k, env.now))
        at(env, a, go)
    env.run()
    for k, e in enumerate(expected):
        assert times[k] == pytest.approx(e, rel=1e-6, abs=1e-6)


def test_same_operations_give_identical_results():
    """Determinism: two runs of the same script agree bit for bit."""
    def run():
        env, s, rids = solver_with(3.0, 5.0, 7.0, 2.0)
        ends = []
        def go(res, size):
            s.start(res, size).done.callbacks.append(lambda ev: ends.append((env.now, ev.value.id)))

        for k in range(40):
            res = tuple(dict.fromkeys([rids[k % 4], rids[(k * 7 + 1) % 4]] if k % 3 else [rids[k % 4]]))
            at(env, k * 0.37, lambda res=res, k=k: go(res, 5.0 + k % 7))
        env.run()
        return ends
    ends = run()
    assert len(ends) == 40
    assert ends == run()


def test_a_local_change_is_solved_without_a_full_solve():
    """Adding then removing a flow beside a busy, unrelated bottleneck re-solves only nearby flows.

    Ten flows share link B (1 each of 10); flows on A (cap 4) are independent of them.
    A second flow on A halves the first (2 and 2) without touching B's flows.
    """
    _, s, (A, B) = solver_with(4.0, 10.0)
    busy = [s.start([B], 1e9) for _ in range(10)]
    a1 = s.start([A], 1e9)
    full = s.stats["full"]
    a2 = s.start([A], 1e9)
    assert (s.rate(a1), s.rate(a2)) == pytest.approx((2.0, 2.0))
    s.abort(a2)
    assert s.rate(a1) == pytest.approx(4.0)
    assert all(s.rate(f) == pytest.approx(1.0) for f in busy)
    assert s.stats["full"] == full


def churn(incremental: bool, seed: int) -> dict[int, float]:
    """A small simulation: flows with caps and latencies come and go, links fail and come back."""
    rng = np.random.default_rng(seed)
    env = simpy.Environment()
    s = FlowSolver(env, incremental=incremental)
    s.SMALL = 6
    rids = [s.add_resource(f"r{i}", float(rng.choice([1.0, 2.0, 5.0]))) for i in range(60)]
    ends: dict[int, float] = {}

    def launch():
        res = rng.choice(rids, int(rng.integers(1, 4)), replace=False).tolist()
        cap = None if rng.random() < 0.8 else float(rng.uniform(0.1, 3))
        latency = 0.0 if rng.random() < 0.7 else float(rng.uniform(0, 0.5))
        s.start(res, float(rng.uniform(1, 50)), cap=cap, latency=latency).done.callbacks.append(done)

    def done(ev):
        ends[ev.value.id] = env.now
        if len(ends) < 400:
            launch()

    def faults():
        while True:
            yield env.timeout(float(rng.exponential(5)))
            r = rids[int(rng.integers(len(rids)))]
            old = s.capacity(r)
            s.set_capacity(r, 0.0)
            yield env.timeout(float(rng.exponential(1)))
            s.set_capacity(r, old)

    for _ in range(80):
        launch()
    env.process(faults())
    env.run(until=500)
    return ends


@pytest.mark.parametrize("seed", [1, 2])
def test_incremental_and_full_solvers_finish_every_flow_at_the_same_time(seed):
    inc, full = churn(True, seed), churn(False, seed)
    assert len(full) >= 400 and inc.keys() == full.keys()
    for k, t in full.items():
        assert inc[k] == pytest.approx(t, rel=1e-9, abs=1e-9)


# ---------------------------------------------------------------- one saturated target, idle resources
def test_sixteen_streams_into_one_target_shift_without_a_full_solve():
    """16 backup streams into a 16 MB/s storage write link; stream 0 shares host A's NIC (10 MB/s)
    with a migration m whose other NIC (10 MB/s) it has alone.

    Storage: 16 streams get 16/16 = 1 each; NIC A: m gets 10 - 1 = 9 (held there, at the top).
    One stream (not stream 0) leaves: 16/15 each, m = 10 - 16/15. A new one joins: back to
    1 each and m = 9. Every update is a level shift of the storage link and NIC A.
    """
    env, s, caps = solver_with(16 * MB, 10 * MB, 10 * MB, *[10 * MB] * 17)
    store, nic_a, nic_b, *nics = caps
    streams = [s.start([nic_a, store], 1e12)] + [s.start([nics[k], store], 1e12) for k in range(1, 16)]
    m = s.start([nic_a, nic_b], 1e12)
    assert [s.rate(f) for f in streams] == pytest.approx([1 * MB] * 16)
    assert s.rate(m) == pytest.approx(9 * MB)
    full, shift = s.stats["full"], s.stats["shift"]
    s.abort(streams.pop(5))
    assert [s.rate(f) for f in streams] == pytest.approx([16 / 15 * MB] * 15)
    assert s.rate(m) == pytest.approx(10 * MB - 16 / 15 * MB)
    streams.append(s.start([nics[16], store], 1e12))
    assert [s.rate(f) for f in streams] == pytest.approx([1 * MB] * 16)
    assert s.rate(m) == pytest.approx(9 * MB)
    assert (s.stats["full"], s.stats["shift"]) == (full, shift + 2)
    assert s.load(store) == pytest.approx(16 * MB) and s.load(nic_a) == pytest.approx(10 * MB)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(2, 18), st.lists(st.tuples(st.booleans(), st.integers(0, 10_000), st.integers(0, 5)),
                                    min_size=1, max_size=40),
       st.lists(st.sampled_from([1.0, 2.0, 3.0]) | st.floats(0.3, 6.0), min_size=6, max_size=6))
def test_streams_into_one_target_equal_a_full_solve(k, script, nic_caps):
    """k streams into one 4 B/s target from hosts whose NICs also carry migrations: joins and
    leaves (mostly level shifts, with satellites) agree with the full solve and the reference."""
    env = simpy.Environment()
    inc = FlowSolver(env)
    full = FlowSolver(env, incremental=False)
    caps = [4.0, *nic_caps, 2.5, 2.5]
    ri = [inc.add_resource(f"r{i}", c) for i, c in enumerate(caps)]
    rf = [full.add_resource(f"r{i}", c) for i, c in enumerate(caps)]
    live: list[tuple] = []

    def start(res):
        live.append((inc.start([ri[r] for r in res], 1e12), full.start([rf[r] for r in res], 1e12)))

    for j in range(k):
        start((1 + j % 6, 0))
    for j in range(3):
        start((1 + 2 * j, 7 + j % 2))  # migrations sharing a stream's NIC
    for join, pick, host in script:
        if join or len(live) < 2:
            start((1 + host, 0) if pick % 3 else (1 + host, 7 + pick % 2))
        else:
            a, b = live.pop(pick % len(live))
            inc.abort(a)
            full.abort(b)
        for a, b in live:
            assert close(inc.rate(a), full.rate(b))
    assert_max_min(inc, ri, [a for a, _ in live])
    expected = reference_rates(dict(enumerate(caps)), [(tuple(ri.index(r) for r in a.resources), None) for a, _ in live])
    for (a, _), e in zip(live, expected, strict=True):
        assert close(inc.rate(a), e)


def test_a_full_solve_works_only_over_the_resources_flows_use(monkeypatch):
    """40,000 resources, 5 flows over 7 of them: every full solve sees 7 resources (+ the pad),
    not 40,000. When flows leave, their resources go idle (load 0); freed indices are reused,
    and renumbered away once more than 64 and half are free, so a solve never sees more than
    2 x active + 64 resources."""
    import sim.infra.solver as solver_module

    sizes = []
    real = solver_module._progressive_filling

    def spy(routes, flow_cap, cap):
        sizes.append(cap.shape[0])
        return real(routes, flow_cap, cap)

    monkeypatch.setattr(solver_module, "_progressive_filling", spy)
    env, s, rids = solver_with(*[float(1 + i % 7) for i in range(40_000)], incremental=False)
    flows = [s.start([rids[i], rids[39_000 + i % 2]], 100.0) for i in range(5)]
    assert set(sizes) <= {2, 3, 4, 5, 6, 7, 8}
    s.set_capacity(rids[0], 0.5)
    assert sizes[-1] == 8 and s.rate(flows[0]) == pytest.approx(0.5)
    # many flows over distinct resources come and go: their indices are freed, then compacted
    burst = [s.start([rids[1000 + i]], 100.0) for i in range(200)]
    for f in burst:
        s.abort(f)
    s.set_capacity(rids[0], 1.0)
    assert sizes[-1] <= 2 * 8 + 64
    assert s.load(rids[1000]) == 0.0 and s.flows_on(rids[1000]) == []
    expected = reference_rates({i: s.capacity(rids[i]) for i in (0, 1, 2, 3, 4, 39_000, 39_001)},
                               [((i, 39_000 + i % 2), None) for i in range(5)])
    assert [s.rate(f) for f in flows] == pytest.approx(expected)


def test_a_trigger_that_keeps_failing_backs_off_to_the_full_solve():
    """Stream s3 joins and leaves target T (capacity 2, streams s1, s2); s1 shares NIC N (3) with
    migration f, held at N (2), which also crosses B (10, saturated by f and g1..g3 at 8/3, "big"
    with SMALL = 3): every such update re-levels T, then N, then must change the rates on big
    bottleneck B, so the cheap paths fail and a full solve runs. After BACKOFF_AFTER (4) such
    updates in a row the solver stops trying them for 1, 3, 7, ... updates keyed on T; rates
    equal the full solve's throughout. Once f leaves, the shift applies again: a success ends
    the backoff and the later updates are shifts.
    """
    env = simpy.Environment()
    inc = FlowSolver(env)
    inc.SMALL = 3
    full = FlowSolver(env, incremental=False)
    caps = (2.0, 3.0, 10.0, 10.0, 10.0)  # T, N, B, X, Y
    ri = [inc.add_resource(f"r{i}", c) for i, c in enumerate(caps)]
    rf = [full.add_resource(f"r{i}", c) for i, c in enumerate(caps)]
    T, N, B, X, Y = range(5)
    live = {}

    def start(name, res):
        live[name] = (inc.start([ri[r] for r in res], 1e12), full.start([rf[r] for r in res], 1e12))

    def stop(name):
        a, b = live.pop(name)
        inc.abort(a)
        full.abort(b)

    def same():
        for a, b in live.values():
            assert close(inc.rate(a), full.rate(b))

    attempts = []
    real = inc._shift_level
    inc._shift_level = lambda *args: attempts.append(args[0]) or real(*args)
    start("s1", (T, N))
    start("s2", (T, X))
    start("f", (N, B))
    start("g1", (B,))
    start("g2", (B,))
    start("g3", (B,))
    assert inc.rate(live["f"][0]) == pytest.approx(2.0) and inc.rate(live["g1"][0]) == pytest.approx(8 / 3)
    attempts.clear()
    for _ in range(20):
        start("s3", (T, Y))
        same()
        stop("s3")
        same()
    assert len(attempts) < 20  # 40 updates keyed on T, most sent straight to the full solve
    stop("f")
    shift = inc.stats["shift"]
    for _ in range(40):
        start("s3", (T, Y))
        same()
        stop("s3")
        same()
    assert inc.stats["shift"] - shift >= 40  # the backoff ended at the first success
    assert_max_min(inc, ri, [a for a, _ in live.values()])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from([1.0, 2.0, 4.0]) | st.floats(0.5, 10.0), min_size=8, max_size=8), ops,
       st.sampled_from([2, 3, 4]))
def test_updates_equal_a_full_solve_with_an_eager_backoff(caps, script, small):
    """With the backoff starting at the first full solve (BACKOFF_AFTER = 1) and small "big"
    thresholds, many updates skip the cheap paths and others take them: rates always equal a
    solver that only does full solves."""
    env = simpy.Environment()
    inc = FlowSolver(env)
    inc.SMALL = small
    inc.BACKOFF_AFTER = 1
    inc.MAX_SKIP = 3
    full = FlowSolver(env, incremental=False)
    ri = [inc.add_resource(f"r{i}", c) for i, c in enumerate(caps)]
    rf = [full.add_resource(f"r{i}", c) for i, c in enumerate(caps)]
    live: list[tuple] = []
    for op, res, x, pick in script:
        if op != "abort" or not live:
            cap = None if x is None or x > 8 else x
            live.append((inc.start([ri[r] for r in res], 1e12, cap), full.start([rf[r] for r in res], 1e12, cap)))
        else:
            a, b = live.pop(pick % len(live))
            inc.abort(a)
            full.abort(b)
        for a, b in live:
            assert close(inc.rate(a), full.rate(b))
    assert_max_min(inc, ri, [a for a, _ in live])


def test_failing_a_resource_as_flows_complete_completes_them():
    """Resource r of 100 B/s shared by a (200 B) and c (1,000 B): 50 B/s each, so a ends at 4 s; b
    (0 B, latency 4 s) ends at 4 s too. ``fail_resource(r)`` at 4 s, scheduled before the flows, runs
    first: a and b complete at 4 s (completion at t wins), c fails with 50 x 4 = 200 B sent."""
    env = simpy.Environment()
    solver = FlowSolver(env)
    r = solver.add_resource("r", 100.0)
    env.timeout(4).callbacks.append(lambda _e: solver.fail_resource(r, "outage"))
    flows = {"a": solver.start([r], 200.0), "b": solver.start([r], 0.0, latency=4.0),
             "c": solver.start([r], 1000.0)}
    log = []
    for name, f in flows.items():
        f.done.callbacks.append(lambda e, name=name: log.append((name, env.now, e.ok)))
        f.done.defused = True
    env.run(until=10)
    assert sorted(log) == [("a", 4.0, True), ("b", 4.0, True), ("c", 4.0, False)]
    assert solver.sent(flows["c"]) == pytest.approx(200.0)
