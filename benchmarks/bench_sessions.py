"""Cost of a session arrival in the private calendar of the ``sessions`` mechanism, by the number of
positions (active VMs) of a class.

One N:K cluster of N positions of 10 sessions each, offered 80 % of its slots (A = 0.8 × N × 10
Erlangs, mean holding 100 s): every position holds sessions, so the least-loaded choice has real
work. The calendar is warmed up for 3 mean holding times (the load reaches its steady state), then
timed while it runs a further stretch of about 200,000 arrivals (and as many departures). Reported:
µs per arrival (the arrival's choice and its departure's bookkeeping together), per N, with two
clusters of N/2 positions sharing the class as a second row (the least-loaded choice among clusters).
CPU time (``time.process_time``), best of ``--repeat`` runs: the machine is shared.

Run: ``.venv/bin/python benchmarks/bench_sessions.py [--positions 100 1000 10000] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, not installed

from sim.core.streams import Streams  # noqa: E402
from sim.mechanisms.sessions import _WINDOW_ARRIVALS, _Arrivals, _Pool  # noqa: E402

CAPACITY = 10
HOLD = 100.0
UTILISATION = 0.8
ARRIVALS = 200_000


def pool(n: int, clusters: int, seed: int = 1) -> tuple[_Pool, float]:
    rate = UTILISATION * n * CAPACITY / HOLD
    streams = Streams(seed)
    arr = _Arrivals(rate, HOLD, streams.get("sessions/bench"), streams.get("sessions/bench/holding"),
                    _WINDOW_ARRIVALS + 16)
    sizes = [n // clusters] * clusters
    sizes[0] += n - sum(sizes)
    p = _Pool([CAPACITY] * clusters, sizes, [arr])
    for q in range(n):
        p.serve(q, True)
    return p, rate


def measure(n: int, clusters: int, repeat: int) -> tuple[float, int]:
    best = float("inf")
    arrivals = 0
    for _ in range(repeat):
        p, rate = pool(n, clusters)
        warm = 3 * HOLD
        p.advance(warm)
        span = ARRIVALS / rate
        t0 = time.process_time()
        p.advance(warm + span)
        dt = time.process_time() - t0
        arrivals = int(round(rate * span))
        best = min(best, dt)
    return best / arrivals * 1e6, arrivals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--positions", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"{'positions':>10} {'clusters':>8} {'arrivals':>9} {'µs/arrival':>11}")
    for n in args.positions:
        for clusters in (1, 2):
            us, k = measure(n, clusters, args.repeat)
            print(f"{n:>10} {clusters:>8} {k:>9} {us:>11.2f}")


if __name__ == "__main__":
    main()
