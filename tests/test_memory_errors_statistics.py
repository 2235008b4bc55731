"""Evacuation on vs off on the same seed (common random numbers): what the mechanism buys.

Why an order of magnitude: without evacuation every VM of a host with an uncorrectable
error crashes. With it, only a VM that owns the faulty page crashes (with
``guest_crash_probability``), or all of them when the error is in hypervisor memory:
per error, expected crashes fall from V (VMs on the host) to
V x reserved/memory + (V x vm_memory/memory) x guest_crash_probability, here
6 x 16/512 + (6 x 16/512) x 0.5 ~ 0.28 against 6, a factor of ~20.
"""

from __future__ import annotations

import pytest

from sim.runner import Simulation
from sim.scenario.loader import validate_scenario


def fleet(*, evacuation: bool, domains=4, hosts=8, vms=192, years=1, seed=11) -> dict:
    sc = {
        "name": "evac-ab", "seed": seed, "duration": f"{365 * years}d",
        "infrastructure": {
            "host_profiles": {"std": {}},  # 512 GiB, 16 GiB hypervisor share, 16 DIMMs, 25 GbE
            "sites": [{"name": "east", "broadcast_domains": [
                {"name": f"bd{d}", "hosts": hosts, "profile": "std"} for d in range(domains)]}],
        },
        "workloads": [{"name": "web", "count": vms,
                       "vm": {"vcpus": 4, "memory": "16GiB", "disk": "100GiB", "dirty_rate": "40MB/s"}}],
        # Raised UE rates so that a small fleet sees tens of errors a year.
        "faults": [{"kind": "dimm_errors", "uncorrectable_per_dimm_year": 0.02}],
        "mechanisms": {"memory_error_evacuation": {"enabled": evacuation}},
    }
    return sc


def run(data):
    return Simulation(validate_scenario(data)).run()


def _compare(**kw):
    off = run(fleet(evacuation=False, **kw)).metrics
    on = run(fleet(evacuation=True, **kw)).metrics
    return off, on


def _assert_order_of_magnitude(off, on):
    assert off["memory_errors.uncorrectable"] >= 10
    # Same seed, same DIMM draws: the same first errors on both sides (more may follow on the
    # evacuated side, whose repairs start later).
    assert on["memory_errors.uncorrectable"] == pytest.approx(off["memory_errors.uncorrectable"], rel=0.2)
    assert on["memory_errors.vms_evacuated"] > 0
    assert on["memory_errors.vms_crashed"] * 10 <= off["memory_errors.vms_crashed"]
    assert on["memory_errors.vm_downtime_s_total"] * 10 <= off["memory_errors.vm_downtime_s_total"]


def test_evacuation_cuts_crashes_and_downtime_tenfold():
    """32 hosts, 192 VMs, one year."""
    off, on = _compare()
    _assert_order_of_magnitude(off, on)
    assert off["memory_errors.vms_evacuated"] == 0
    assert off["migration.count"] == 0
    assert on["migration.count"] == on["memory_errors.vms_evacuated"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1, 11))
def test_evacuation_cuts_crashes_and_downtime_tenfold_at_scale(seed):
    """128 hosts, 768 VMs, three years, ten seeds."""
    off, on = _compare(domains=8, hosts=16, vms=768, years=3, seed=seed)
    _assert_order_of_magnitude(off, on)
