"""Wall cost of one ``FailureBus.publish`` with k subscribers of the subject plus one topic-wide
subscriber (the datacenter's per-VM and per-host publishes), and of one subscribe + cancel pair
(what every transfer and watch does per endpoint).

Run: ``.venv/bin/python benchmarks/bench_bus.py [--n N]``. Prints ns per publish for k in 0, 1, 4,
16, 64, and ns per subscribe + cancel.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import simpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, not installed

from sim.infra import events as ev  # noqa: E402
from sim.infra.events import FailureBus  # noqa: E402


def noop(_failure) -> None:
    return None


def publish_ns(k: int, n: int) -> float:
    bus = FailureBus(simpy.Environment())
    for _ in range(k):
        bus.subscribe(ev.VM, noop, "vm-1")
    bus.subscribe(ev.VM, noop)
    down = bus.down
    t0 = time.perf_counter()
    for _ in range(n):
        down(ev.VM, "vm-1", None)
    return (time.perf_counter() - t0) / n * 1e9


def churn_ns(n: int) -> float:
    bus = FailureBus(simpy.Environment())
    bus.subscribe(ev.HOST, noop, "h")  # a subject others keep subscribed to
    sub = bus.subscribe
    t0 = time.perf_counter()
    for _ in range(n):
        sub(ev.HOST, noop, "h").cancel()
    return (time.perf_counter() - t0) / n * 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    args = ap.parse_args()
    for k in (0, 1, 4, 16, 64):
        print(f"publish, {k:>2} subject subscribers + 1 topic-wide: {publish_ns(k, args.n):7.0f} ns")
    print(f"subscribe + cancel:                            {churn_ns(args.n):7.0f} ns")


if __name__ == "__main__":
    main()
