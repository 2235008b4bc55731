"""Data protection in the benchmark fleet (scenarios/fleet.yaml): the database tier and the snapshot
resources scale with ``--hosts``, and a scaled fleet's first night backs up the whole tier at the
appliance's shared rate."""

from __future__ import annotations

import pytest
import yaml

from sim.bench import FLEET, load_fleet, scale_fleet
from sim.runner import Simulation

TIB = 2**40


@pytest.fixture(scope="module")
def raw():
    return yaml.safe_load(FLEET.read_text())


def test_the_fleet_backs_up_a_1000_vm_database_tier_per_site(raw):
    """The tier is 1,000 of the 10,000 database VMs (db keeps 9,000), 500 per site, each site's half
    backed up to its own appliance with 16 streams, weekly fulls and daily incrementals."""
    counts = {w["name"]: w["count"] for w in raw["workloads"]}
    assert counts["db"] + counts["db-tier-east"] + counts["db-tier-west"] == 10_000
    assert counts["db-tier-east"] + counts["db-tier-west"] == 1_000
    wm = raw["mechanisms"]["workload_manager"]
    assert wm["max_concurrent"] == 16
    pairs = {(tuple(p["workloads"]), p["storage"]) for p in wm["policies"]}
    assert pairs == {(("db-tier-east",), "backup-east"), (("db-tier-west",), "backup-west")}
    assert {(p["full_every"], p["incremental_every"]) for p in wm["policies"]} == {("7d", "1d")}


@pytest.mark.parametrize("hosts", [200, 1000, 3000])
def test_the_tier_and_the_snapshot_resources_scale_with_the_hosts(raw, hosts):
    scaled = scale_fleet(raw, hosts)
    counts = {w["name"]: w["count"] for w in scaled["workloads"]}
    assert counts["db-tier-east"] == counts["db-tier-west"] == max(1, round(500 * hosts / 10_000))
    assert scaled["mechanisms"]["workload_manager"]["max_concurrent"] == 16  # the same appliances
    for before, after in zip(raw["mechanisms"]["snapshot_discovery"]["resources"],
                             scaled["mechanisms"]["snapshot_discovery"]["resources"], strict=True):
        assert after["count"] == max(1, round(before["count"] * hosts / 10_000))


def test_a_scaled_fleets_first_night_backs_up_the_tier_at_the_shared_appliance_rate():
    """1,000 hosts, one day: 50 tier VMs per site, every one's first backup a full of its 1 TiB disk.
    16 streams share an appliance's 26 GB/s: 1.625 GB/s each, below a host disk's 2 GB/s read rate
    and its 25 Gbps NIC, so a full running beside 15 others takes 2^40 / 1.625e9 = 676.6 s (the
    longest: the last two of each site's 50 run with fewer streams, faster). 100 backups; 6 snapshot
    resources (16 x 0.1 = 1.6, rounded to 2, of each of three kinds)."""
    sim = Simulation(load_fleet(hosts=1000, duration="1d"))
    m = sim.run().metrics
    assert m["backup.count"] == 100
    assert m["backup.failed"] == 0
    assert m["backup.bytes_total"] == pytest.approx(100 * TIB)
    assert m["backup.duration_s_max"] == pytest.approx(TIB / (26e9 / 16), rel=1e-6)
    assert m["snapshot.resources"] == 6
