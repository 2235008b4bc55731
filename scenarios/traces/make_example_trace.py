"""Write ``example_incidents.csv``: a synthetic year of incidents for ``scenarios/trace_replay.yaml``.

Deterministic (numpy seed 2025): running it again writes the same file, byte for byte.

- 32 hosts (``east/bd1/h00`` .. ``east/bd2/h15``), each an alternating renewal from
  2025-01-01T00:00:00Z: Weibull up times with shape 0.75 (the decreasing hazard of LANL nodes,
  Schroeder & Gibson, DSN 2006) and a mean of 60 days, lognormal repairs with median 4 h and
  sigma 1.0 (repairs "well modeled by a lognormal", same study).
- Two top-of-rack switch failures (``broadcast_domain_outage``) of 2 h and 5 h.
- A few records the way incident tools write them: two overlapping tickets for one outage of
  ``east/bd1/h03`` (replay merges them), durations with units instead of timestamps for
  ``east/bd2/h07``, and a host given by its index (5 = ``east/bd1/h05`` in name order).

Times are ISO timestamps (UTC); the scenario names time 0 with ``origin``.

    python scenarios/traces/make_example_trace.py
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

ORIGIN = pd.Timestamp("2025-01-01T00:00:00Z")
YEAR = 365 * 86400.0
SHAPE, MEAN_UP = 0.75, 60 * 86400.0
MEDIAN_REPAIR, SIGMA = 4 * 3600.0, 1.0


def iso(seconds: float) -> str:
    return (ORIGIN + pd.Timedelta(seconds=round(seconds))).strftime("%Y-%m-%dT%H:%M:%SZ")


def main() -> None:
    rng = np.random.default_rng(2025)
    scale = MEAN_UP / math.gamma(1 + 1 / SHAPE)
    hosts = [f"east/bd{d}/h{h:02d}" for d in (1, 2) for h in range(16)]
    rows = []
    for host in hosts:
        t = 0.0
        while True:
            t += scale * rng.weibull(SHAPE)
            if t >= YEAR:
                break
            repair = MEDIAN_REPAIR * math.exp(SIGMA * rng.standard_normal())
            rows.append((host, t, t + repair, "host_crash"))
            t += repair
    rows.append(("east/bd1", 100 * 86400.0, 100 * 86400.0 + 2 * 3600, "broadcast_domain_outage"))
    rows.append(("east/bd2", 250 * 86400.0, 250 * 86400.0 + 5 * 3600, "broadcast_domain_outage"))
    rows.sort(key=lambda r: (r[1], r[0]))
    out = [(n, iso(s), iso(e), k) for n, s, e, k in rows]
    out.append(("east/bd1/h03", iso(200 * 86400.0), iso(200 * 86400.0 + 6 * 3600), "host_crash"))
    out.append(("east/bd1/h03", iso(200 * 86400.0 + 4 * 3600), iso(200 * 86400.0 + 9 * 3600), "host_crash"))
    out.append(("east/bd2/h07", "150d", "3603h", "host_crash"))
    out.append(("5", iso(300 * 86400.0), iso(300 * 86400.0 + 2 * 3600), "host_crash"))
    path = Path(__file__).with_name("example_incidents.csv")
    pd.DataFrame(out, columns=["node", "start", "end", "kind"]).to_csv(path, index=False, lineterminator="\n")
    print(f"{path}: {len(out)} records")


if __name__ == "__main__":
    main()
