"""One run of ``scenarios/roaming_storage.yaml`` pinned (docs/performance.md, "Cost per segment move,
replacement and session scan"): the roaming loop runs by callbacks and makes a segment's ``landed``
event only when a retrieval waits for it; the run's figures are those of the process-per-segment
loop it replaced, exactly."""

from __future__ import annotations

from pathlib import Path

from sim.runner import run_scenario
from sim.scenario.loader import load_scenario

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "roaming_storage.yaml"
GiB = 2**30


def test_the_roaming_scenario_keeps_its_figures():
    """5 files of 10 GiB in 8 segments: 40 first placements (5 x 8), then the roaming moves the
    process-per-segment loop made (8,615 in 10 days: 40 segments x 240 hourly timers, less those
    of the file a disk failure destroyed, and the timing shifts of retrievals holding segments). Bytes moved = segment size x moves exactly: (40 + 8,615) x 10 GiB / 8 =
    11,616,544,358,400 bytes. Exposure: 1/8, every segment of a file at a distinct location. The
    retrievals (87 completed, 7 after the loss) and the mean latency are the old loop's to the bit."""
    out = run_scenario(load_scenario(str(SCENARIO)), source=str(SCENARIO))
    m = out.summary()["metrics"]
    moves = out.tables["segment_moves"]
    assert int(((moves["kind"] == "place") & (moves["outcome"] == "completed")).sum()) == 5 * 8
    assert m["roaming.moves"] == 8615
    assert m["roaming.bytes_moved_total"] == (40 + 8615) * 10 * GiB / 8 == 11_616_544_358_400
    assert m["roaming.exposure_max"] == m["roaming.exposure_time_weighted"] == 1 / 8
    assert m["roaming.lost_files"] == 1
    assert (m["roaming.retrievals"], m["roaming.retrievals_failed"]) == (87, 7)
    assert m["roaming.retrieval_s_mean"] == 6.932075186416443
    assert float(moves["end_s"].sum()) == 3521135771.116256
