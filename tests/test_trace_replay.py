"""Trace replay (``{kind: trace, path: FILE}``): exact down time and counts, repeat, input errors.

Down time is measured independently of the faults table: the time integral of the number of
hosts not up (the ``fleet hosts_up`` level the datacenter keeps).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import base_scenario, write_yaml
from typer.testing import CliRunner

from sim.cli import app

HOUR = 3600.0
DAY = 86400.0


def _scenario(tmp_path, trace_entry: dict, duration: str = "2d", hosts: int = 8, faults=()) -> str:
    sc = base_scenario(duration=duration, faults=[trace_entry, *faults])
    dom = sc["infrastructure"]["sites"][0]["broadcast_domains"]
    dom[0]["hosts"] = hosts // 2
    dom[1]["hosts"] = hosts - hosts // 2
    sc["workloads"][0]["count"] = 4
    return str(write_yaml(tmp_path / "s.yaml", sc))


def _run(path: str):
    from sim.cli import load
    from sim.runner import Simulation

    sc = load(path, [], None)
    return Simulation(sc, source=path).run()


def host_down_seconds(out, hosts: int, duration: float) -> float:
    lv = out.tables["levels"]
    lv = lv[(lv["entity"] == "fleet") & (lv["metric"] == "hosts_up")].sort_values("time_s", kind="stable")
    t = np.r_[lv["time_s"].to_numpy(), duration]
    up = lv["value"].to_numpy()
    return float(np.sum((hosts - up) * np.diff(t)))


TRACE = """node,start,end,kind
east/bd1/h00,1h,3h,host_crash
east/bd1/h00,2h,5h,
east/bd1/h00,6h,7h,host_crash
east/bd1/h00,7h,8h,host_crash
3,3600,7200,host_crash
east/bd2/h01,2024-01-01T10:00:00Z,2024-01-01T10:30:00Z,host_crash
east/bd2/h02,30h,3d,host_crash
east/bd2/h03,3d,4d,host_crash
"""


def test_replay_is_exact(tmp_path):
    """Merged outages by hand (origin 2024-01-01T00:00Z, run 2 d):
    h00: [1h,3h] + [2h,5h] overlap -> [1h,5h] (4 h); [6h,7h] + [7h,8h] touch -> [6h,8h] (2 h);
    index 3 = east/bd1/h03 (hosts in name order): [1h,2h] (1 h); bd2/h01: ISO [10h,10h30] (0.5 h);
    bd2/h02: [30h, 72h] runs past the end: down 18 h within the run; bd2/h03 starts at 3 d,
    after the run: dropped. Total 4 + 2 + 1 + 0.5 + 18 = 25.5 h, in 5 host_crash faults."""
    (tmp_path / "t.csv").write_text(TRACE)
    path = _scenario(tmp_path, {"kind": "trace", "path": "t.csv", "origin": "2024-01-01T00:00:00Z"})
    out = _run(path)
    assert host_down_seconds(out, 8, 2 * DAY) == pytest.approx(25.5 * HOUR, abs=1e-6)
    f = out.tables["faults"]
    assert out.metrics["faults.host_crash"] == 5
    got = sorted(zip(f["target"], f["time_s"], f["end_s"], strict=True))
    assert got == [("east/bd1/h00", 1 * HOUR, 5 * HOUR), ("east/bd1/h00", 6 * HOUR, 8 * HOUR),
                   ("east/bd1/h03", 1 * HOUR, 2 * HOUR), ("east/bd2/h01", 10 * HOUR, 10.5 * HOUR),
                   ("east/bd2/h02", 30 * HOUR, 72 * HOUR)]
    lv = out.tables["levels"]
    counts = dict(zip(lv.loc[lv["entity"] == "faults.0", "metric"], lv.loc[lv["entity"] == "faults.0", "value"],
                      strict=True))
    assert counts == {"trace_records": 8, "trace_records_dropped": 1, "trace_outages": 5}


def test_repeat_over_three_periods_triples_down_time_and_count(tmp_path):
    """The first four h00 rows (period 1 d, 3 copies, run 3 d): each day [1h,5h] and [6h,8h]:
    6 h and 2 faults a day -> 18 h and 6 faults; one copy alone gives 6 h and 2."""
    (tmp_path / "t.csv").write_text("\n".join(TRACE.splitlines()[:5]) + "\n")
    one = _run(_scenario(tmp_path, {"kind": "trace", "path": "t.csv", "period": "1d"}, duration="3d"))
    three = _run(_scenario(tmp_path, {"kind": "trace", "path": "t.csv", "period": "1d", "repeat": 3},
                           duration="3d"))
    assert host_down_seconds(one, 8, 3 * DAY) == pytest.approx(6 * HOUR, abs=1e-6)
    assert host_down_seconds(three, 8, 3 * DAY) == pytest.approx(18 * HOUR, abs=1e-6)
    assert (one.metrics["faults.host_crash"], three.metrics["faults.host_crash"]) == (2, 6)


def test_scale_and_offset_and_parquet(tmp_path):
    """Parquet, scale 2, offset 1h: [1h,2h] on index 0 becomes [3h,5h] (2 h); kinds mixed:
    a domain outage of bd2 [0, 30 m] x 2 + 1 h = [1h, 2h] downs 4 hosts for 1 h: 6 h of host
    down time in all."""
    pd.DataFrame({"node": ["0", "east/bd2"], "start": [3600.0, 0.0], "end": [7200.0, 1800.0],
                  "kind": ["host_crash", "broadcast_domain_outage"]}).to_parquet(tmp_path / "t.parquet")
    out = _run(_scenario(tmp_path, {"kind": "trace", "path": "t.parquet", "scale": 2, "offset": "1h"}))
    assert host_down_seconds(out, 8, 2 * DAY) == pytest.approx(6 * HOUR, abs=1e-6)
    f = out.tables["faults"].sort_values("time_s")
    assert f["target"].tolist() == ["east/bd2", "east/bd1/h00"]
    assert f["time_s"].tolist() == [HOUR, 3 * HOUR]


def test_no_event_per_record_beyond_the_faults(tmp_path):
    """100,000 records on 8 hosts within one day, heavily overlapping: what is queued after start
    is one timeout per host with records (plus the run's own), and the events processed equal
    those of the same outages given as a merged trace."""
    from sim.cli import load
    from sim.runner import Simulation

    rng = np.random.default_rng(3)
    n = 100_000
    start = rng.uniform(0, DAY, n)
    pd.DataFrame({"node": rng.integers(0, 8, n), "start": start, "end": start + rng.exponential(60.0, n)}
                 ).to_parquet(tmp_path / "big.parquet")
    path = _scenario(tmp_path, {"kind": "trace", "path": "big.parquet"})
    sim = Simulation(load(path, [], None), source=path)
    queued_before = len(sim.ctx.env._queue)
    sim.faults.start()
    assert len(sim.ctx.env._queue) - queued_before == 8
    replay = sim.faults.replays[0]
    merged = pd.DataFrame({"node": replay.kinds["host_crash"].node, "start": replay.kinds["host_crash"].start,
                           "end": replay.kinds["host_crash"].end})
    merged.to_parquet(tmp_path / "merged.parquet")
    a = _run(path)
    b = _run(_scenario(tmp_path, {"kind": "trace", "path": "merged.parquet"}))
    assert a.events == b.events
    assert a.metrics["faults.host_crash"] == len(merged) < n


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(("text", "problem"), [
    ("node,start,end\n0,1h,2h\n0,5h,4h\n", "line 3, column end: expected an end not before the start (18000 s), "
                                           "got 14400 s"),
    ("node,start,end\n0,1h,2h\neast/bd9/h00,1h,2h\n",
     'line 3, column node: expected a name of the targets faults.0.hosts selects like "east/bd1/h00" or an index '
     'below 8, got "east/bd9/h00"'),
    ("node,start,end\n0,soon,2h\n", 'line 2, column start: expected seconds, a duration like "3h" or an ISO '
                                    'timestamp (ISO timestamps need origin: in the fault entry), got "soon"'),
    ("node,start,end,kind\n0,1h,2h,host_crash\n0,3h,4h,meteor\n",
     'line 3, column kind: expected one of host_crash, disk_failure, broadcast_domain_outage, site_outage, '
     'link_failure, storage_outage, vm_crash, got "meteor"'),
    ("node,start,end\n8,1h,2h\n", "line 2, column node: expected an index below 8 (the targets faults.0.hosts "
                                  "selects), got \"8\""),
    ("host,start,end\n0,1h,2h\n", "line 1: expected columns node, start, end (and optionally kind), got host, "
                                  "start, end"),
])
def test_trace_errors_name_file_line_and_column(tmp_path, text, problem):
    (tmp_path / "t.csv").write_text(text)
    path = _scenario(tmp_path, {"kind": "trace", "path": "t.csv"})
    result = CliRunner().invoke(app, ["check", path])
    assert result.exit_code == 2
    assert result.output.strip() == f"{tmp_path / 't.csv'}: {problem}"


def test_missing_trace_file_names_the_scenario_path(tmp_path):
    path = _scenario(tmp_path, {"kind": "trace", "path": "nope.csv"})
    result = CliRunner().invoke(app, ["check", path])
    assert result.exit_code == 2
    assert result.output.strip() == (f'{path}: faults.0.path: expected a readable trace file (CSV or Parquet), '
                                     f'got "{tmp_path / "nope.csv"}" (no such file)')


def test_unreadable_parquet_is_an_input_error(tmp_path):
    (tmp_path / "t.parquet").write_text("not parquet")
    path = _scenario(tmp_path, {"kind": "trace", "path": "t.parquet"})
    result = CliRunner().invoke(app, ["check", path])
    assert result.exit_code == 2
    assert result.output.startswith(f"{path}: faults.0.path: expected a readable trace file (CSV or Parquet), got ")


def test_selector_matching_nothing_is_an_input_error(tmp_path):
    (tmp_path / "t.csv").write_text("node,start,end\n0,1h,2h\n")
    path = _scenario(tmp_path, {"kind": "trace", "path": "t.csv", "hosts": "west/*"})
    result = CliRunner().invoke(app, ["check", path])
    assert result.exit_code == 2
    assert result.output.strip() == (f'{path}: faults.0.hosts: expected a glob matching at least one host like '
                                     f'"east/bd1/h00", got "west/*"')
