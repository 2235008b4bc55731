"""``processed_events``: the one reader of SimPy's private counters, against hand counts."""

from __future__ import annotations

import simpy

from sim.core.clock import processed_events


def _ticker(env, n):
    for _ in range(n):
        yield env.timeout(1)


def test_a_finished_process_counts_its_start_its_timeouts_and_its_end():
    """One process of 3 timeouts: its Initialize event, 3 timeouts and the process's own end = 5."""
    env = simpy.Environment()
    env.process(_ticker(env, 3))
    assert processed_events(env) == 0
    env.run()
    assert processed_events(env) == 5
    assert processed_events(env) == 5  # reading schedules nothing


def test_triggered_events_and_callbacks_count_once_each():
    """A process waits on an event another process succeeds at t=2: Initialize x2, timeout(2), the
    event, both processes' ends = 6."""
    env = simpy.Environment()
    gate = env.event()

    def opener(env):
        yield env.timeout(2)
        gate.succeed()

    def waiter(env):
        yield gate

    env.process(opener(env))
    env.process(waiter(env))
    env.run()
    assert processed_events(env) == 6
