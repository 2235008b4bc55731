"""Roaming data segments (docs/operations.md, ``## roaming_storage``): bytes moved, exposure bounds,
a retrieval's latency derived by hand, disk failures that lose files, the disabled counterfactual,
determinism and bad input."""

from __future__ import annotations

import math

import pytest
from conftest import base_scenario, refused, run, write_yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from sim.cli import app

GiB = 2**30
NIC = 10e9 / 8  # 10 Gbps in bytes/s (conftest's profile)
WRITE = 1e9  # its disk write rate


def scenario(files, sizes=(4, 8), locations=("east/bd2/*",), duration="4h", faults=(), ops=(), seed=1, **mech):
    """bd1 holds the workload VMs (the requesters), bd2 the locations unless told otherwise."""
    sc = base_scenario(duration=duration, seed=seed, faults=list(faults), operations=list(ops),
                       mechanisms={"roaming_storage": {"files": list(files), "locations": list(locations),
                                                       **mech}})
    sc["infrastructure"]["sites"][0]["broadcast_domains"] = [
        {"name": f"bd{i + 1}", "hosts": n, "profile": "std", "uplink": "100Gbps"} for i, n in enumerate(sizes)]
    sc["workloads"][0]["count"] = 2
    sc["workloads"][0]["placement"] = {"hosts": ["east/bd1/*"]}
    return sc


def sub(tmp_path, name):
    d = tmp_path / name
    d.mkdir(exist_ok=True)
    return d


def test_retrieval_latency_follows_the_chain_and_waits_for_a_segment_in_flight(tmp_path):
    """Hand-derived. One 4 GiB file in 4 segments of S = 1 GiB, 8 locations on bd2, the requester on bd1,
    jitter 0, roam_interval T = 1 h, no Poisson retrievals; links have no latency.

    Placement at 0: 4 flows out of the requester's NIC (1.25 GB/s) share it, 0.3125 GB/s each, so all
    land at t_p = 4S / 1.25e9 = 3.436 s. Every timer then fires at t_p + T together; each move is disk to
    disk inside bd2 between distinct hosts, bottleneck the destination disk write (1 GB/s): S / 1e9 =
    1.074 s in flight. A retrieval at t_p + 1800 (nothing in flight) fetches the 4 segments one after the
    other, each over source disk read (2 GB/s), NICs (1.25 GB/s), uplinks: S / 1.25e9 each, 4S / 1.25e9 =
    3.436 s in all, waited 0. A retrieval at t_p + T + 0.5 finds segment 0 in flight: it waits
    S / 1e9 - 0.5 = 0.574 s for it to land, then fetches the 4: latency 0.574 + 3.436 = 4.010 s."""
    S = GiB
    t_p = 4 * S / NIC
    T = 3600.0
    sc = scenario([{"name": "f", "size": "4GiB", "segments": 4}], duration="2h", roam_interval="1h", jitter=0,
                  retrieval_rate=0,
                  ops=[{"kind": "retrieve_file", "at": t_p + 1800, "file": "f-000"},
                       {"kind": "retrieve_file", "at": t_p + T + 0.5, "file": "f-000"}])
    out = run(sc, tmp_path)
    m = out.tables["segment_moves"]
    place = m[m["kind"] == "place"]
    assert len(place) == 4 and place["end_s"].to_numpy() == pytest.approx([t_p] * 4)
    roam = m[m["kind"] == "roam"]
    assert len(roam) == 4
    assert roam["time_s"].to_numpy() == pytest.approx([t_p + T] * 4)
    assert roam["duration_s"].to_numpy() == pytest.approx([S / WRITE] * 4)
    r = out.tables["retrievals"].sort_values("time_s")
    assert list(r["outcome"]) == ["completed", "completed"]
    assert list(r["segments"]) == [4, 4] and list(r["bytes"]) == [4 * S, 4 * S]
    assert r["waited_s"].to_numpy() == pytest.approx([0.0, S / WRITE - 0.5])
    assert r["latency_s"].to_numpy() == pytest.approx([4 * S / NIC, S / WRITE - 0.5 + 4 * S / NIC])
    assert out.metrics["roaming.retrievals"] == 2
    assert out.metrics["roaming.retrieval_s_max"] == pytest.approx(S / WRITE - 0.5 + 4 * S / NIC)
    # exposure: one segment of four per location from t_p on
    assert out.metrics["roaming.exposure_max"] == 0.25
    assert out.metrics["roaming.exposure_time_weighted"] == pytest.approx(0.25)
    f = out.tables["roaming_files"].iloc[0]
    assert f["placed_s"] == pytest.approx(t_p) and f["counted_s"] == pytest.approx(7200 - t_p)


def test_bytes_moved_are_segment_size_times_moves(tmp_path):
    """Without faults every move completes: bytes moved = S x moves exactly (S = 5 GiB / 10 = 512 MiB,
    a power of two, so the float sum is exact), and roaming.moves counts the roam rows."""
    sc = scenario([{"name": "a", "size": "5GiB", "segments": 10, "count": 3}], sizes=(4, 24), duration="12h",
                  roam_interval="30m")
    out = run(sc, tmp_path)
    m = out.tables["segment_moves"]
    assert (m["outcome"] == "completed").all()
    assert len(m[m["kind"] == "place"]) == 30
    assert out.metrics["roaming.moves"] == len(m[m["kind"] == "roam"]) > 30 * 12
    assert out.metrics["roaming.bytes_moved_total"] == 512 * 2**20 * len(m)
    assert out.metrics["roaming.exposure_max"] == 0.1


def test_a_disk_failure_destroys_the_segments_on_it_and_loses_the_file(tmp_path):
    """Run once to learn where segment 2 of file a-000 is at 30 min (placed at ~3.4 s, first move at
    ~1 h); a second run with the same seed (the itinerary and timer streams are named per file, so a
    fault does not change them) fails that disk at 30 min: file a-000 is lost then, counted from its
    placement to 1800 s, its retrieval at 1 h fails with ``lost`` and its segments stop roaming. File
    b-000 lost only if it had a segment on that disk (read from the first run)."""
    files = [{"name": "a", "size": "4GiB", "segments": 4}, {"name": "b", "size": "4GiB", "segments": 4}]
    kw = dict(sizes=(4, 16), duration="3h", jitter=0, retrieval_rate=0,
              ops=[{"kind": "retrieve_file", "at": "1h", "file": "a-000"}])
    first = run(scenario(files, **kw), tmp_path)
    place = first.tables["segment_moves"]
    place = place[place["kind"] == "place"].set_index(["file", "segment"])
    host = place.loc[("a-000", 2), "to_location"]
    b_hit = host in set(place.loc["b-000", "to_location"])
    out = run(scenario(files, faults=[{"kind": "disk_failure", "at": "30m", "target": host, "repair": "1h"}],
                       **kw), tmp_path)
    f = out.tables["roaming_files"].set_index("file")
    assert f.loc["a-000", "outcome"] == "lost" and f.loc["a-000", "lost_s"] == 1800.0
    assert f.loc["a-000", "counted_s"] == pytest.approx(1800.0 - f.loc["a-000", "placed_s"])
    assert (f.loc["b-000", "outcome"] == "lost") == b_hit
    assert out.metrics["roaming.lost_files"] == 1 + b_hit
    m = out.tables["segment_moves"]
    assert not ((m["file"] == "a-000") & (m["kind"] == "roam")).any()
    r = out.tables["retrievals"]
    assert list(r["outcome"]) == ["lost"] and out.metrics["roaming.retrievals_failed"] == 1
    assert out.metrics["roaming.retrievals"] == 0


def test_disabled_keeps_each_file_whole_at_one_location(tmp_path):
    """Disabled: one placement per file of its whole size, no roaming, exposure exactly 1."""
    sc = scenario([{"name": "a", "size": "2GiB", "segments": 8, "count": 4}], sizes=(4, 16), enabled=False)
    out = run(sc, tmp_path)
    m = out.tables["segment_moves"]
    assert len(m) == 4 and (m["kind"] == "place").all() and (m["bytes"] == 2 * GiB).all()
    assert out.metrics["roaming.exposure_max"] == 1.0
    assert out.metrics["roaming.exposure_time_weighted"] == 1.0
    assert out.metrics["roaming.moves"] == 0
    assert out.metrics["roaming.bytes_moved_total"] == 4 * 2 * GiB


def test_absent_section_writes_the_tables_and_the_counts(tmp_path):
    out = run(base_scenario(duration="1h"), tmp_path)
    for t in ("segment_moves", "retrievals", "roaming_files"):
        assert t in out.tables and len(out.tables[t]) == 0
    assert out.metrics["roaming.retrievals"] == 0 and out.metrics["roaming.bytes_moved_total"] == 0
    assert "roaming.exposure_max" not in out.metrics and "roaming.retrieval_s_mean" not in out.metrics


def test_same_seed_same_numbers(tmp_path):
    sc = scenario([{"name": "a", "size": "1GiB", "segments": 8, "count": 2}], sizes=(4, 20), duration="6h",
                  roam_interval="20m", retrieval_rate="12/d",
                  faults=[{"kind": "disk_failure", "mtbf": "2d", "repair": "1h"}])
    a, b = run(sc, sub(tmp_path, "a")), run(sc, sub(tmp_path, "b"))
    assert a.metrics == b.metrics
    assert a.tables["segment_moves"].equals(b.tables["segment_moves"])


# --------------------------------------------------------------------------- properties
FAULT = st.tuples(st.sampled_from(["host_crash", "disk_failure"]), st.integers(0, 7),
                  st.sampled_from([600, 1200, 1800, 3600]),  # equal timestamps are likely
                  st.sampled_from(["5m", "30m", "1h"]))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**16), faults=st.lists(FAULT, max_size=5))
def test_exposure_never_exceeds_one_eighth_and_bytes_add_up(tmp_path, seed, faults):
    """8 segments over 24 locations (at least twice as many as segments, so a free location always
    exists): under any sequence of host crashes and disk failures, no file ever has more than one
    segment (1/8) at a location; each completed move carries S bytes exactly and the total is the
    table's sum; a file is lost only when a disk failed."""
    fl = [{"kind": k, "at": at, "target": f"east/bd2/h{h:02d}", "repair": rep} for k, h, at, rep in faults]
    sc = scenario([{"name": "a", "size": "1GiB", "segments": 8, "count": 3}], sizes=(2, 24), duration="3h",
                  roam_interval="10m", retrieval_rate="48/d", faults=fl, seed=seed)
    out = run(sc, sub(tmp_path, f"s{seed}-{faults!r}"[:60].replace("/", "_")))
    f = out.tables["roaming_files"]
    assert (f["exposure_max"].dropna() <= 1 / 8).all()
    if "roaming.exposure_max" in out.metrics:
        assert out.metrics["roaming.exposure_max"] <= 1 / 8
    m = out.tables["segment_moves"]
    done = m[m["outcome"] == "completed"]
    assert (done["bytes"] == GiB / 8).all()
    assert (m["bytes"] <= GiB / 8).all()
    assert out.metrics["roaming.bytes_moved_total"] == pytest.approx(float(m["bytes"].sum()))
    if not any(k == "disk_failure" for k, *_ in faults):
        assert out.metrics["roaming.lost_files"] == 0
    r = out.tables["retrievals"]
    ok = r[r["outcome"] == "completed"]
    assert (ok["segments"] == 8).all() and (ok["latency_s"] >= 8 * (GiB / 8) / NIC * (1 - 1e-9)).all()
    assert not math.isnan(out.metrics.get("roaming.exposure_time_weighted", 0.0))


# --------------------------------------------------------------------------- bad input
# bad input: `dcsim check` exits 2 (conftest.refused)
check = refused


@pytest.mark.parametrize("mech,path", [
    ({"files": [{"name": "a", "segments": 1}]}, "mechanisms.roaming_storage.files.0.segments: expected at least 2"),
    ({"locations": ["west/*"]}, "mechanisms.roaming_storage.locations: expected a glob matching at least one"),
    ({"jitter": 1}, "mechanisms.roaming_storage.jitter: expected a jitter from 0 up to"),
    ({"jitter": -0.1}, "mechanisms.roaming_storage.jitter: expected a jitter from 0 up to"),
])
def test_bad_input_names_its_dotted_path(tmp_path, mech, path):
    files = mech.pop("files", [{"name": "a"}])
    lines = check(tmp_path, scenario(files, **({"locations": ["east/*"]} | mech)))
    assert len(lines) == 1, lines
    assert path in lines[0], lines


def test_segments_hold_still_during_a_retrieval(tmp_path):
    """Hand-derived, the micro-scenario above: all timers fire at t_p + T. A retrieval starting at
    t_p + T - 1 runs 4S / 1.25e9 = 3.436 s, so the timers fire during it and the four moves start when
    it ends, at t_p + T - 1 + 4S / 1.25e9, instead of at t_p + T."""
    S = GiB
    t_p = 4 * S / NIC
    T = 3600.0
    t_r = t_p + T - 1.0
    sc = scenario([{"name": "f", "size": "4GiB", "segments": 4}], duration="2h", roam_interval="1h", jitter=0,
                  retrieval_rate=0, ops=[{"kind": "retrieve_file", "at": t_r, "file": "f-000"}])
    out = run(sc, tmp_path)
    r = out.tables["retrievals"].iloc[0]
    assert r["outcome"] == "completed" and r["latency_s"] == pytest.approx(4 * S / NIC)
    m = out.tables["segment_moves"]
    roam = m[m["kind"] == "roam"]
    assert roam["time_s"].to_numpy() == pytest.approx([t_r + 4 * S / NIC] * 4)


def test_a_storage_location_too_few_to_spread_keeps_segments_together(tmp_path):
    """One location, a storage system, for 2 segments of S = 1 GiB: both go there at once (two flows
    sharing the requester's 1.25 GB/s NIC; the store writes 3 GB/s): they land at 2S / 1.25e9 = 1.718 s;
    with no free location they never move, and the file's exposure is 2/2 = 1 (warned by check)."""
    sc = scenario([{"name": "f", "size": "2GiB", "segments": 2}], locations=["vault"], duration="3h",
                  retrieval_rate=0)
    sc["infrastructure"]["storage"] = [{"name": "vault", "site": "east", "capacity": "1PiB", "read": "4GB/s",
                                        "write": "3GB/s"}]
    out = run(sc, tmp_path)
    m = out.tables["segment_moves"]
    assert list(m["kind"]) == ["place", "place"] and set(m["to_location"]) == {"vault"}
    assert m["end_s"].to_numpy() == pytest.approx([2 * GiB / NIC] * 2)
    assert out.metrics["roaming.exposure_max"] == 1.0 and out.metrics["roaming.moves"] == 0
    path = write_yaml(tmp_path / "few.yaml", sc)
    res = CliRunner().invoke(app, ["check", str(path)])
    assert res.exit_code == 0 and "mechanisms.roaming_storage.locations: 1 locations" in res.output
