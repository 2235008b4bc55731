"""Live migration engine: validation against published models, and micro-scenarios.

Every expected figure is computed here from its formula (the pre-copy series of Liu et al.
HPDC 2011 and Akoush et al. MASCOTS 2010, Xen's pre-copy limits, SimGrid's migration model,
CloudSim's migration delay, post-copy after Hines et al. 2009); nothing is pasted from a table.
Scenarios go through the real loader and runner.
"""

from __future__ import annotations

import math

import pytest
from conftest import run

GiB = 1024.0**3
MiB = 1024.0**2
GbE = 125e6  # 1 GbE line rate, bytes/s (before protocol overhead)
TEN_GbE = 1.25e9


# ------------------------------------------------------------------------- scenario helpers
def pair_scenario(*, memory=GiB, dirty=0.0, working_set=None, nic="1Gbps", vms=1, hosts=2,
                  migration=None, ops=None, duration="1h", domains=1, **extra) -> dict:
    """``domains`` broadcast domains of ``hosts`` hosts (one site); ``vms`` VMs packed on east/bd1/h00.

    Hosts have 256 GiB with 16 GiB for the hypervisor; NICs are ``nic`` each way.
    """
    vm = {"vcpus": 2, "memory": memory, "disk": "20GiB", "dirty_rate": dirty}
    if working_set is not None:
        vm["working_set"] = working_set
    sc = {
        "name": "mig",
        "seed": 1,
        "duration": duration,
        "infrastructure": {
            "host_profiles": {"p": {"cores": 32, "memory": "256GiB", "dimms": 8, "nic": nic,
                                    "reserved_memory": "16GiB"}},
            "sites": [{"name": "east", "broadcast_domains": [
                {"name": f"bd{d + 1}", "hosts": hosts, "profile": "p"} for d in range(domains)]}],
        },
        "workloads": [{"name": "vm", "count": vms, "vm": vm,
                       "placement": {"hosts": ["east/bd1/h00"], "spread": "pack"}}],
        "mechanisms": {"live_migration": migration or {}},
        "operations": ops if ops is not None else [{"kind": "migrate", "at": "10s", "vm": "vm-000",
                                                    "to": "east/bd1/h01"}],
    }
    sc.update(extra)
    return sc


IDEAL = {"device_state": 0, "switchover": 0, "max_rounds": 100000, "max_factor": 1e9,
         "downtime_target": "300ms"}
"""The closed form's idealised assumptions: no device state, no resume time, no stop caps."""


def one_migration(tmp_path, **kw):
    out = run(pair_scenario(**kw), tmp_path)
    m = out.tables["migrations"]
    assert len(m) == 1
    return m.iloc[0], out


# ------------------------------------------------------------------------- closed form (case 1)
def closed_form(memory: float, dirty: float, rate: float, target: float) -> dict:
    """Liu et al. HPDC 2011 / Akoush et al. MASCOTS 2010: the pre-copy geometric series.

    lam = D/R; stop-and-copy round n = ceil(log_lam(R*target/M)) (n = 1 for an idle VM:
    round 1 has nothing to send); V_mig = M (1 - lam^(n+1)) / (1 - lam); T_mig = V_mig/R;
    T_down = M lam^n / R.
    """
    lam = dirty / rate
    threshold = rate * target
    if lam == 0:
        n = 1
    elif memory <= threshold:
        n = 0
    else:
        n = math.ceil(math.log(threshold / memory) / math.log(lam))
    v_mig = memory * (1 - lam ** (n + 1)) / (1 - lam)
    return {"rounds": n + 1, "bytes": v_mig, "total": v_mig / rate, "down": memory * lam**n / rate}


CASE1_1GBE = [0.0, 0.10, 0.25, 0.50, 0.80]  # D/R at 1 GbE, 1 GiB, 300 ms (Liu et al. series)
CASE1_10GBE = [(4 * GiB, 200e6), (16 * GiB, 500e6), (64 * GiB, 500e6)]  # (memory, D) at 10 GbE


def _check_closed_form(row, expected) -> None:
    assert row["outcome"] == "completed"
    assert row["rounds"] == expected["rounds"]
    assert row["total_time_s"] == pytest.approx(expected["total"], rel=0.01)
    assert row["bytes"] == pytest.approx(expected["bytes"], rel=0.01)
    if expected["down"] == 0:
        assert row["downtime_s"] == pytest.approx(0.0, abs=1e-9)
    else:
        assert row["downtime_s"] == pytest.approx(expected["down"], rel=0.02)


@pytest.mark.parametrize("ratio", CASE1_1GBE)
def test_precopy_matches_closed_form_1gbe(tmp_path, ratio):
    """1 GiB at 1 GbE, 300 ms target: rounds exact, T_mig within 1 %, downtime within 2 %."""
    row, _ = one_migration(tmp_path, memory=GiB, dirty=ratio * GbE, nic="1Gbps", migration=IDEAL)
    _check_closed_form(row, closed_form(GiB, ratio * GbE, GbE, 0.3))


@pytest.mark.parametrize(("memory", "dirty"), CASE1_10GBE)
def test_precopy_matches_closed_form_10gbe(tmp_path, memory, dirty):
    row, _ = one_migration(tmp_path, memory=memory, dirty=dirty, nic="10Gbps", migration=IDEAL)
    _check_closed_form(row, closed_form(memory, dirty, TEN_GbE, 0.3))


def test_simgrid_equivalence_30ms_target(tmp_path):
    """SimGrid (Hirofuchi et al. 2013): its CPU-saturated VM is the pre-copy series with lam = dp_intensity
    and a 30 ms target (lam = 0.25, 1 GiB, 1 GbE)."""
    row, _ = one_migration(tmp_path, memory=GiB, dirty=0.25 * GbE, migration={**IDEAL, "downtime_target": "30ms"})
    _check_closed_form(row, closed_form(GiB, 0.25 * GbE, GbE, 0.03))


def test_device_state_and_switchover_add_to_the_pause(tmp_path):
    """With device state d and switchover s the pause is M lam^n / R + d / R + s."""
    d, s = 4 * MiB, 0.05
    row, out = one_migration(tmp_path, memory=GiB, dirty=0.25 * GbE,
                             migration={**IDEAL, "device_state": d, "switchover": s})
    cf = closed_form(GiB, 0.25 * GbE, GbE, 0.3)
    assert row["downtime_s"] == pytest.approx(cf["down"] + d / GbE + s, rel=0.02)
    assert row["total_time_s"] == pytest.approx(cf["total"] + d / GbE + s, rel=0.01)
    inc = out.tables["incidents"]
    assert len(inc) == 1
    assert inc.iloc[0]["cause"] == "migration"
    assert inc.iloc[0]["outcome"] == "migrated"
    assert inc.iloc[0]["downtime_s"] == pytest.approx(row["downtime_s"])


# ------------------------------------------------------------------------- Xen stop rules (case 2)
def test_non_converging_vm_stops_on_max_factor(tmp_path):
    """D = 150 MB/s > R = 125 MB/s with Xen's limits (30 rounds, 3x memory). Round i sends
    V_i = min(W, lam V_(i-1)) (W = working set = memory by default: a round never resends more than
    the VM's memory); rounds go on while the total stays within 3 M, and the first round that would
    pass it is the stop-and-copy round, sent whole. The idealised uncapped series (round 2 would send
    1.44 x the memory: T_mig = 31.3 s, T_down = 12.4 s) is checked as arithmetic only: a working
    set above memory is refused as input (no round can resend more than the VM's pages)."""
    lam = 150e6 / GbE

    def expected(w):
        v, total, i = GiB, GiB, 0
        while total + min(w, lam * v) <= 3 * GiB:
            v = min(w, lam * v)
            total += v
            i += 1
        last = min(w, lam * v)
        return i + 1, total + last, last

    stop, sent, last = expected(100 * GiB)  # uncapped: the closed form's figures
    assert (stop, round(sent / GbE, 1), round(last / GbE, 1)) == (2, 31.3, 12.4)
    for w in (GiB, 0.9 * GiB):  # the default and SimGrid's 0.9 x RAM
        stop, sent, last = expected(w)
        row, _ = one_migration(tmp_path, memory=GiB, dirty=150e6, working_set=w,
                               migration={**IDEAL, "max_rounds": 30, "max_factor": 3})
        assert row["rounds"] == stop + 1
        assert row["total_time_s"] == pytest.approx(sent / GbE, rel=0.01)
        assert row["downtime_s"] == pytest.approx(last / GbE, rel=0.02)
        assert row["bytes"] > 3 * GiB  # the cap decides the stop; the last round still goes whole


def test_max_factor_stop_on_the_uncapped_series(tmp_path):
    """The same rule where the working set never caps a round: D = 0.95 R with an unreachable 1 ms
    target. The stop-and-copy round is the first k with M (1 + lam + ... + lam^k) > 3 M (Xen's
    "never send more than 3x"), and its downtime M lam^k / R."""
    lam = 0.95
    k, total = 0, GiB
    while total + GiB * lam ** (k + 1) <= 3 * GiB:
        k += 1
        total += GiB * lam**k
    stop = k + 1
    row, _ = one_migration(tmp_path, memory=GiB, dirty=lam * GbE,
                           migration={**IDEAL, "max_rounds": 30, "max_factor": 3, "downtime_target": "1ms"})
    assert row["rounds"] == stop + 1
    assert row["total_time_s"] == pytest.approx((total + GiB * lam**stop) / GbE, rel=0.01)
    assert row["downtime_s"] == pytest.approx(GiB * lam**stop / GbE, rel=0.02)


def test_max_rounds_is_honoured(tmp_path):
    """A VM dirtying 0.9 R with an unreachable 1 ms target stops at round max_rounds - 1."""
    lam = 0.9
    row, _ = one_migration(tmp_path, memory=GiB, dirty=lam * GbE,
                           migration={**IDEAL, "max_rounds": 6, "downtime_target": "1ms"})
    assert row["rounds"] == 6
    assert row["downtime_s"] == pytest.approx(GiB * lam**5 / GbE, rel=0.02)
    assert row["bytes"] == pytest.approx(GiB * (1 - lam**6) / (1 - lam), rel=0.01)


def test_tiny_hot_set_stops_after_the_first_full_copy(tmp_path):
    """Xen: a hot set of <= 50 pages stops right after round 0. Here the working set is 50 x 4 KiB and
    the VM dirties far faster than the link: round 1 is capped at the working set, which fits in the
    downtime target, so it is the stop-and-copy round."""
    ws = 50 * 4096
    row, _ = one_migration(tmp_path, memory=GiB, dirty=10 * GbE, working_set=ws, migration=IDEAL)
    assert row["rounds"] == 2
    assert row["bytes"] == pytest.approx(GiB + ws)
    assert row["downtime_s"] == pytest.approx(ws / GbE, rel=0.02)


def test_working_set_caps_every_round(tmp_path):
    """With a working set W < D T(i-1), every round after round 0 sends W (never converges below W)."""
    ws = 256 * MiB
    row, _ = one_migration(tmp_path, memory=GiB, dirty=10 * GbE, working_set=ws,
                           migration={**IDEAL, "max_rounds": 5})
    assert row["rounds"] == 5
    assert row["bytes"] == pytest.approx(GiB + 4 * ws)
    assert row["downtime_s"] == pytest.approx(ws / GbE, rel=0.02)


# ------------------------------------------------------------------------- CloudSim baseline (case 5)
def test_cloudsim_half_bandwidth_regression(tmp_path):
    """CloudSim: delay = RAM_MB / (BW / (2 * 8000)); 1024 MB at 1 Gbit/s -> 16.384 s. The engine in
    'no dirtying, half the bandwidth' mode (a 500 Mbit/s cap) reproduces it."""
    ram_mb, bw = 1024, 1_000_000
    expected = ram_mb / (bw / (2 * 8000))
    row, _ = one_migration(tmp_path, memory=ram_mb * 1e6, dirty=0.0,
                           migration={**IDEAL, "bandwidth_limit": "500Mbps"})
    assert row["total_time_s"] == pytest.approx(expected, rel=1e-9)


# ------------------------------------------------------------------------- SimGrid ratios (case 3)
def _idle_vms_leaving_together(tmp_path, size: float, count: int) -> list[float]:
    """``count`` idle VMs of ``size`` bytes leave east/bd1/h00 for east/bd1/h01 at the same instant."""
    ops = [{"kind": "migrate", "at": "10s", "vm": f"vm-{i:03d}", "to": "east/bd1/h01"} for i in range(count)]
    out = run(pair_scenario(memory=size, dirty=0.0, vms=count, ops=ops, migration=IDEAL), tmp_path)
    m = out.tables["migrations"]
    assert (m["outcome"] == "completed").all()
    return m.sort_values("vm")["total_time_s"].tolist()


def test_two_idle_vms_sharing_a_link_take_twice_as_long(tmp_path):
    """SimGrid (s4u-cloud-migration.tesh): two concurrent 1e9 B migrations over one bottleneck each take
    265.454 / 132.766 = 1.9994 x one alone; within 2 %."""
    published = 265.454 / 132.766
    alone = _idle_vms_leaving_together(tmp_path, 1e9, 1)[0]
    both = _idle_vms_leaving_together(tmp_path, 1e9, 2)
    assert len(both) == 2
    for t in both:
        assert t / alone == pytest.approx(published, rel=0.02)


def test_ten_times_smaller_idle_vm_takes_a_tenth(tmp_path):
    """SimGrid: a 1e8 B VM takes 13.346 / 132.766 = 0.1005 x the time of a 1e9 B VM; within 2 %."""
    published = 13.346 / 132.766
    big = _idle_vms_leaving_together(tmp_path, 1e9, 1)[0]
    small = _idle_vms_leaving_together(tmp_path, 1e8, 1)[0]
    assert small / big == pytest.approx(published, rel=0.02)


# ------------------------------------------------------------------------- post-copy (case 7)
def test_postcopy_moves_every_byte_once(tmp_path):
    """Hines & Gopalan: bytes sent = memory (+ device state), downtime = device state / R + switchover,
    total = (device state + memory) / R + switchover, whatever the dirty rate."""
    d, s = 2 * MiB, 0.02
    row, out = one_migration(tmp_path, memory=4 * GiB, dirty=500e6,
                             migration={"mode": "postcopy", "device_state": d, "switchover": s})
    assert row["outcome"] == "completed"
    assert row["mode"] == "postcopy"
    assert row["bytes"] == pytest.approx(4 * GiB + d, rel=1e-12)
    assert row["downtime_s"] == pytest.approx(d / GbE + s, rel=1e-9)
    assert row["total_time_s"] == pytest.approx((d + 4 * GiB) / GbE + s, rel=1e-9)
    inc = out.tables["incidents"]
    assert inc["downtime_s"].tolist() == pytest.approx([d / GbE + s])


# ------------------------------------------------------------------------- sharing, scope, limits
def test_concurrent_migrations_share_bandwidth_and_slow_each_other(tmp_path):
    """Two 1 GiB idle VMs to two different targets from one source share the source NIC (tx): each
    round 0 runs at R/2, so each takes twice the lone time."""
    ops = [{"kind": "migrate", "at": "10s", "vm": "vm-000", "to": "east/bd1/h01"},
           {"kind": "migrate", "at": "10s", "vm": "vm-001", "to": "east/bd1/h02"}]
    out = run(pair_scenario(vms=2, hosts=3, ops=ops, migration=IDEAL), tmp_path)
    t = out.tables["migrations"]["total_time_s"].tolist()
    assert t == pytest.approx([2 * GiB / GbE] * 2, rel=1e-6)


def test_scope_is_enforced(tmp_path):
    """broadcast_domain scope refuses a target in another domain; site scope allows it."""
    ops = [{"kind": "migrate", "at": "10s", "vm": "vm-000", "to": "east/bd2/h00"}]
    out = run(pair_scenario(domains=2, ops=ops, migration=IDEAL), tmp_path)
    row = out.tables["migrations"].iloc[0]
    assert row["outcome"] == "failed"
    assert "scope" in row["reason"]
    assert out.tables["operations"].iloc[0]["outcome"] == "failed"
    out = run(pair_scenario(domains=2, ops=ops, migration={**IDEAL, "scope": "site"}), tmp_path)
    assert out.tables["migrations"].iloc[0]["outcome"] == "completed"
    assert out.tables["operations"].iloc[0]["outcome"] == "done"


def test_cross_site_move_carries_the_disk(tmp_path):
    """scope any, another site: the disk (20 GiB) goes first, then memory, over the 10 Gbps WAN."""
    sc = pair_scenario(nic="25Gbps", migration={**IDEAL, "scope": "any"},
                       ops=[{"kind": "migrate", "at": "10s", "vm": "vm-000", "to": "west/bd1/h00"}])
    sc["infrastructure"]["sites"].append({"name": "west", "broadcast_domains": [
        {"name": "bd1", "hosts": 1, "profile": "p"}]})
    sc["infrastructure"]["wan"] = [{"sites": ["east", "west"], "bandwidth": "10Gbps", "latency": "0ms"}]
    out = run(sc, tmp_path)
    row = out.tables["migrations"].iloc[0]
    assert row["outcome"] == "completed"
    assert row["bytes"] == pytest.approx(20 * GiB + GiB)
    assert row["total_time_s"] == pytest.approx((20 * GiB + GiB) / 1.25e9, rel=1e-6)


def test_max_per_host_queues_the_rest(tmp_path):
    """max_per_host 2: of three migrations leaving one host, the third waits for the first to end,
    and each of the first two runs at R/2 while the third runs alone after them at R... here the
    third starts when the first two end (both end together), then takes M/R."""
    ops = [{"kind": "migrate", "at": "10s", "vm": f"vm-{i:03d}", "to": f"east/bd1/h0{i + 1}"} for i in range(3)]
    out = run(pair_scenario(vms=3, hosts=4, ops=ops, migration={**IDEAL, "max_per_host": 2}), tmp_path)
    m = out.tables["migrations"].sort_values("vm").reset_index(drop=True)
    assert (m["outcome"] == "completed").all()
    assert m["queued_s"].tolist()[:2] == [0.0, 0.0]
    assert m["total_time_s"].tolist()[:2] == pytest.approx([2 * GiB / GbE] * 2)
    assert m["queued_s"].iloc[2] == pytest.approx(2 * GiB / GbE)
    assert m["total_time_s"].iloc[2] == pytest.approx(GiB / GbE)


def test_target_memory_is_reserved_and_never_overcommitted(tmp_path):
    """A target with room for one 100 GiB VM (240 GiB usable, 130 GiB already used) takes one of two
    concurrent migrations; the other is refused for lack of room, not overcommitted."""
    ops = [{"kind": "migrate", "at": "10s", "vm": "vm-000", "to": "east/bd1/h01"},
           {"kind": "migrate", "at": "10s", "vm": "vm-001", "to": "east/bd1/h01"}]
    sc = pair_scenario(memory="100GiB", vms=2, ops=ops, migration=IDEAL)
    sc["workloads"].append({"name": "big", "count": 1, "vm": {"vcpus": 2, "memory": "130GiB", "disk": 0},
                            "placement": {"hosts": ["east/bd1/h01"]}})
    out = run(sc, tmp_path)
    m = out.tables["migrations"].sort_values("vm")
    assert m["outcome"].tolist() == ["completed", "failed"]
    assert "no room" in m["reason"].iloc[1]


# ------------------------------------------------------------------------- failures mid-way
def _with_crash(host: str, at: str, **kw):
    sc = pair_scenario(**kw)
    sc["faults"] = [{"kind": "host_crash", "at": at, "target": host, "repair": "10m"}]
    sc["workloads"][0]["placement"]["hosts"] = ["east/bd1/h00", "east/bd1/h02"]
    sc["infrastructure"]["sites"][0]["broadcast_domains"][0]["hosts"] = 3
    return sc


def test_target_failure_during_precopy_leaves_the_vm_on_the_source(tmp_path):
    """1 GiB at 1 GbE takes 8.6 s; the target crashes 4 s in: the VM keeps running on the source,
    the reservation is released, no VM incident."""
    out = run(_with_crash("east/bd1/h01", "14s", migration=IDEAL), tmp_path)
    row = out.tables["migrations"].iloc[0]
    assert row["outcome"] == "failed"
    assert "east/bd1/h01 failed" in row["reason"]
    assert 0 < row["bytes"] < GiB
    assert row["bytes"] == pytest.approx(4.0 * GbE, rel=1e-6)
    assert len(out.tables["incidents"]) == 0


def test_source_failure_during_precopy_stops_the_vm(tmp_path):
    """The source crashes mid-copy: the migration fails and the VM restarts (default recovery)."""
    out = run(_with_crash("east/bd1/h00", "14s", migration=IDEAL), tmp_path)
    assert out.tables["migrations"].iloc[0]["outcome"] == "failed"
    inc = out.tables["incidents"]
    assert inc["cause"].tolist() == ["host_crash"]
    assert inc["outcome"].tolist() == ["restarted"]


def test_guest_crash_during_precopy_ends_the_migration_at_once(tmp_path):
    """The guest crashes 4 s into an 8.6 s copy (1 GiB at 1 GbE, op at 10 s, crash at 14 s): the
    migration fails at 14 s having sent 4 s x 125 MB/s, the target's reservation is released, and
    the VM restarts in place after detection 30 s + boot 60 s (one incident of 90 s)."""
    sc = pair_scenario(migration=IDEAL)
    sc["faults"] = [{"kind": "vm_crash", "at": "14s", "target": "vm-000"}]
    out = run(sc, tmp_path)
    row = out.tables["migrations"].iloc[0]
    assert row["outcome"] == "failed"
    assert row["reason"] == "vm-000 crashed"
    assert row["end_s"] == pytest.approx(14.0)
    assert row["bytes"] == pytest.approx(4.0 * GbE, rel=1e-6)
    inc = out.tables["incidents"]
    assert inc["cause"].tolist() == ["vm_crash"]
    assert inc["downtime_s"].tolist() == pytest.approx([90.0])
    assert out.tables["restarts"].iloc[0]["to_host"] == "east/bd1/h00"


def test_target_failure_during_the_pause_resumes_on_the_source(tmp_path):
    """A 1 GiB VM dirtying 0.5 R: rounds of 8.59, 4.29, 2.15, 1.07, 0.54 s, then a 0.27 s pause from
    26.64 s (10 s + 16.64 s). The target fails inside the pause: the VM resumes on the source, the
    incident (cause migration) closes as resumed."""
    cf = closed_form(GiB, 0.5 * GbE, GbE, 0.3)
    pause_start = 10 + cf["total"] - cf["down"]
    crash = pause_start + cf["down"] / 2
    out = run(_with_crash("east/bd1/h01", crash, dirty=0.5 * GbE, migration=IDEAL), tmp_path)
    inc = out.tables["incidents"]
    assert inc["cause"].tolist() == ["migration"]
    assert inc["outcome"].tolist() == ["resumed"]
    assert inc["downtime_s"].iloc[0] == pytest.approx(cf["down"] / 2, rel=1e-6)
    row = out.tables["migrations"].iloc[0]
    assert row["outcome"] == "failed"
    assert row["downtime_s"] == pytest.approx(cf["down"] / 2, rel=1e-6)


def test_source_failure_during_postcopy_pull_loses_the_vm(tmp_path):
    """Post-copy: the VM runs on the target from ~10 s; the source fails during the 8.6 s pull,
    so the VM's state is lost: it stops (cause host_crash) and the default recovery restarts it."""
    out = run(_with_crash("east/bd1/h00", "14s", migration={"mode": "postcopy"}), tmp_path)
    row = out.tables["migrations"].iloc[0]
    assert row["outcome"] == "failed"
    assert "lost" in row["reason"]
    inc = out.tables["incidents"].sort_values("start_s")
    assert inc["cause"].tolist() == ["migration", "host_crash"]
    assert inc["outcome"].tolist() == ["migrated", "restarted"]


def test_source_failure_after_postcopy_pull_is_harmless(tmp_path):
    out = run(_with_crash("east/bd1/h00", "30s", migration={"mode": "postcopy"}), tmp_path)
    assert out.tables["migrations"].iloc[0]["outcome"] == "completed"
    assert out.tables["incidents"]["cause"].tolist() == ["migration"]


def test_disabled_engine_refuses(tmp_path):
    out = run(pair_scenario(migration={"enabled": False}), tmp_path)
    assert out.tables["migrations"].iloc[0]["outcome"] == "failed"
    assert out.metrics["migration.failed"] == 1
    assert out.metrics["migration.count"] == 0


def test_metrics(tmp_path):
    row, out = one_migration(tmp_path, memory=GiB, dirty=0.25 * GbE, migration=IDEAL)
    m = out.metrics
    assert m["migration.count"] == 1
    assert m["migration.failed"] == 0
    assert m["migration.rounds_mean"] == row["rounds"]
    assert m["migration.bytes_total"] == pytest.approx(row["bytes"])
    for stat in ("mean", "p50", "p95", "max"):
        assert m[f"migration.total_time_s_{stat}"] == pytest.approx(row["total_time_s"])
        assert m[f"migration.downtime_s_{stat}"] == pytest.approx(row["downtime_s"])


def test_more_bandwidth_is_never_slower(tmp_path):
    """Metamorphic: the same VM over a faster NIC takes no longer and pauses no longer."""
    slow, _ = one_migration(tmp_path, memory=GiB, dirty=50e6, nic="1Gbps")
    fast, _ = one_migration(tmp_path, memory=GiB, dirty=50e6, nic="10Gbps")
    assert fast["total_time_s"] <= slow["total_time_s"]
    assert fast["downtime_s"] <= slow["downtime_s"]


def test_source_failure_during_precopy_switchover_is_harmless(tmp_path):
    """Pre-copy: once the last bytes are on the target the source no longer matters. Idle 1 GiB VM,
    switchover 10 s: the copy ends at 10 + 8.59 s, the source fails at 25 s, inside the switchover."""
    out = run(_with_crash("east/bd1/h00", "25s", migration={**IDEAL, "switchover": "10s"}), tmp_path)
    row = out.tables["migrations"].iloc[0]
    assert row["outcome"] == "completed"
    assert row["downtime_s"] == pytest.approx(10.0)
    inc = out.tables["incidents"]
    assert inc["cause"].tolist() == ["migration"] and inc["outcome"].tolist() == ["migrated"]


def test_source_failure_during_postcopy_switchover_loses_the_vm(tmp_path):
    """Post-copy: the memory is still on the source during the switchover (10 s from 10 s); the source
    fails at 15 s, so the VM is lost. The pause and the outage are one incident from 10 s, now the
    crash's, closed by the restart."""
    out = run(_with_crash("east/bd1/h00", "15s", migration={"mode": "postcopy", "device_state": 0,
                                                           "switchover": "10s"}), tmp_path)
    row = out.tables["migrations"].iloc[0]
    assert row["outcome"] == "failed" and "lost" in row["reason"]
    assert row["downtime_s"] == pytest.approx(5.0)
    inc = out.tables["incidents"]
    assert len(inc) == 1
    assert inc.iloc[0]["cause"] == "host_crash"
    assert inc.iloc[0]["outcome"] == "restarted"
    assert inc.iloc[0]["start_s"] == pytest.approx(10.0)
