"""The bench's scaling of the backups (``WorkloadManager.scale``): growing the fleet multiplies every
storage system's rates, and the streams per target grow alike, so each stream keeps the file's share
of its appliance; shrinking keeps both."""

from __future__ import annotations

import pytest
import yaml

from sim.bench import FLEET, scale_fleet
from sim.core.units import parse_rate
from sim.mechanisms.workload_manager import WorkloadManager


@pytest.fixture(scope="module")
def raw():
    return yaml.safe_load(FLEET.read_text())


def _share(data: dict) -> float:
    """One stream's share of backup-east's write rate with every stream running (bytes/s)."""
    store = next(s for s in data["infrastructure"]["storage"] if s["name"] == "backup-east")
    return parse_rate(store["write"]) / data["mechanisms"]["workload_manager"]["max_concurrent"]


@pytest.mark.parametrize(("hosts", "streams"), [(1000, 16), (10_000, 16), (25_000, 40), (100_000, 160)])
def test_streams_per_target_grow_with_the_appliances_rates(raw, hosts, streams):
    """fleet.yaml: 16 streams into 26 GB/s appliances, 1.625 GB/s each. At 25,000 hosts (factor 2.5)
    the appliances write 65 GB/s and take round(16 x 2.5) = 40 streams; at 100,000, 260 GB/s and 160:
    1.625 GB/s each, as in the file. At 1,000 (factor 0.1) rates and streams stay the file's."""
    scaled = scale_fleet(raw, hosts)
    assert scaled["mechanisms"]["workload_manager"]["max_concurrent"] == streams
    assert _share(scaled) == pytest.approx(26e9 / 16, rel=1e-12)


def test_a_section_without_max_concurrent_grows_from_the_default():
    out = WorkloadManager.scale({"policies": []}, 3.0)
    assert out["max_concurrent"] == 48
    assert WorkloadManager.scale({"max_concurrent": 5}, 0.5) == {"max_concurrent": 5}
