"""Migration charge calculation (issue 14, charging): the price formula, metering over placement
intervals with a restart mid-run, the redundancy score, policy ``cheapest`` and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import base_scenario, run, write_yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from sim.cli import app
from sim.mechanisms.charging import redundancy

GiB = 1024.0**3
PRICES = {"us-east": {"vcpu_hour": 0.040, "gib_hour": 0.005, "egress_gb": 0.02},
          "eu-west": {"vcpu_hour": 0.032, "gib_hour": 0.004, "egress_gb": 0.02}}
# A 4 vCPU, 200 GiB VM: 4 x 0.040 + 200 x 0.005 = 1.16 /h in us-east, 4 x 0.032 + 200 x 0.004 = 0.928 /h
# in eu-west; a host (256 GiB less 16 GiB reserved) holds one.
EAST, WEST = 1.16, 0.928


def scenario(charging=None, faults=(), duration="1d", west_domains=1, count=2, prices=PRICES):
    sc = base_scenario(duration=duration, faults=list(faults),
                       workloads=[{"name": "web", "count": count, "service": "web",
                                   "vm": {"vcpus": 4, "memory": "200GiB", "disk": "100GiB", "boot_time": "1m"},
                                   "placement": {"hosts": ["*"], "spread": "pack"}}])
    sites = sc["infrastructure"]["sites"]
    sites[0]["broadcast_domains"] = [{"name": "bd1", "hosts": 1, "profile": "std", "uplink": "100Gbps"},
                                     {"name": "bd2", "hosts": 1, "profile": "std", "uplink": "100Gbps"}]
    sites.append({"name": "west", "region": "eu-west", "core": "400Gbps", "broadcast_domains": [
        {"name": f"bd{k + 1}", "hosts": 2, "profile": "std", "uplink": "100Gbps"} for k in range(west_domains)]})
    sc["infrastructure"]["wan"] = [{"sites": ["east", "west"], "bandwidth": "10Gbps", "latency": "35ms"}]
    sc["infrastructure"]["detection"] = "30s"
    if charging is not None:
        sc["mechanisms"] = {"charging": {"prices": prices, **charging}}
    return sc


def test_per_hour_charges_before_and_after_equal_the_price_formula(tmp_path):
    """Two VMs of service web, packed: web-000 on east/bd1, web-001 on east/bd2 (us-east). Evaluated
    at 12 h: each may go to eu-west. Per VM before 1.16, after 0.928, delta -0.232 /h; the service's
    charge per hour before = 2 x 1.16 = 2.32, after = 2.32 - 0.232 = 2.088; the move carries
    200 GiB + 100 GiB = 322,122,547,200 bytes, egress 322.1225472 GB x 0.02 = 6.442450944. The pair
    shares service, shape and name stem and sits in two domains: redundancy 1."""
    out = run(scenario({"evaluate_every": "12h"}), tmp_path)
    c = out.tables["charges"]
    assert list(c.columns) == ["time_s", "vm", "service", "from_site", "to_site", "redundancy_possibility",
                               "charge_before_per_h", "charge_after_per_h", "migration_cost", "delta_per_h"]
    assert list(c["vm"]) == ["web-000", "web-001"]  # report: proposed once, not again at 24 h
    assert (c["time_s"] == 43200.0).all()
    assert (c["from_site"] == "east").all() and (c["to_site"] == "west").all()
    assert np.allclose(c["charge_before_per_h"], 2.32, rtol=0, atol=1e-12)
    assert np.allclose(c["charge_after_per_h"], 2.088, rtol=0, atol=1e-12)
    assert np.allclose(c["delta_per_h"], -0.232, rtol=0, atol=1e-12)
    assert np.allclose(c["migration_cost"], 300 * GiB / 1e9 * 0.02, rtol=0, atol=1e-12)
    assert (c["redundancy_possibility"] == 1.0).all()
    assert out.metrics["charging.proposals"] == 2
    assert out.metrics["charging.migrations"] == 0 and out.metrics["charging.savings_per_h_total"] == 0


def test_cost_total_is_the_integral_of_price_over_placement_intervals_with_a_restart(tmp_path):
    """east/bd1/h00 crashes at 6 h: web-000 is charged 6 h x 1.16 = 6.96 there, stops, is restarted by
    the default recovery after detection 30 s + boot 60 s (at 21,690 s) on the first host with room,
    west/bd1/h00 (pack), and is charged (86,400 - 21,690) s = 17.975 h x 0.928 = 16.6808 in eu-west;
    web-001 runs 24 h x 1.16 = 27.84. Total 51.4808."""
    sc = scenario({"evaluate_every": "2d"},
                  faults=[{"kind": "host_crash", "at": "6h", "target": "east/bd1/h00", "repair": "4h"}])
    out = run(sc, tmp_path)
    m = out.tables["metered"].sort_values(["vm", "start_s"])
    assert list(zip(m["vm"], m["site"], m["start_s"], m["time_s"], strict=True)) == [
        ("web-000", "east", 0.0, 21600.0), ("web-000", "west", 21690.0, 86400.0), ("web-001", "east", 0.0, 86400.0)]
    assert out.metrics["charging.cost_total"] == pytest.approx(6.96 + 17.975 * 0.928 + 27.84, abs=1e-9)


def test_disabled_still_meters_and_proposes_nothing(tmp_path):
    """Disabled (prices given): the same 2 x 24 h x 1.16 = 55.68 is metered; no proposal."""
    out = run(scenario({"enabled": False, "evaluate_every": "12h"}), tmp_path)
    assert out.metrics["charging.cost_total"] == pytest.approx(55.68, abs=1e-9)
    assert len(out.tables["charges"]) == 0 and out.metrics["charging.proposals"] == 0


def test_absent_section_meters_nothing(tmp_path):
    out = run(scenario(None), tmp_path)
    assert out.metrics["charging.cost_total"] == 0 and len(out.tables["metered"]) == 0


def test_redundancy_score_is_one_for_an_obvious_pair_and_zero_for_a_lone_vm():
    """A pair with the same service, shape and name stem in two domains: 0.4 + 0.2 + 0.2 + 0.2 = 1.
    A lone VM (nothing shared with anyone): 0. Same service and shape in one domain: 0.8."""
    s = redundancy(np.array([0, 0, 1]), np.array([0, 0, 1]), np.array([0, 0, 1]), np.array([0, 1, 0]))
    assert list(s) == [1.0, 1.0, 0.0]
    assert list(redundancy(np.array([0]), np.array([0]), np.array([0]), np.array([0]))) == [0.0]
    s = redundancy(np.array([0, 0]), np.array([0, 0]), np.array([0, 1]), np.array([0, 0]))
    assert list(s) == [pytest.approx(0.6), pytest.approx(0.6)]


@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 2), st.integers(-1, 3)),
                min_size=1, max_size=12))
@settings(max_examples=200, deadline=None)
def test_redundancy_matches_the_pairwise_definition(rows):
    """The vectorised score equals the max over pairs written out with a Python loop."""
    a = np.array(rows)
    got = redundancy(a[:, 0], a[:, 1], a[:, 2], a[:, 3])
    for i, (s, h, n, d) in enumerate(rows):
        best = 0.0
        if d >= 0:
            for j, (s2, h2, n2, d2) in enumerate(rows):
                if j == i or d2 < 0:
                    continue
                base = 0.4 * (s == s2) + 0.2 * (h == h2) + 0.2 * (n == n2)
                best = max(best, base + (0.2 if base > 0 and d != d2 else 0.0))
        assert got[i] == pytest.approx(best)


def test_cheapest_migrates_when_it_saves_and_keeps_redundant_vms_apart(tmp_path):
    """egress 0.01: the move costs 300 GiB / 1e9 x 0.01 = 3.221225472 < one day's saving 0.232 x 24 =
    5.568, so both are proposed at 24 h; eu-west has one domain, so only web-000 (first by name) goes
    there: web-001 would join its likely-redundant peer. Savings 0.232 /h = -(delta of the moved row)."""
    prices = {r: {**p, "egress_gb": 0.01} for r, p in PRICES.items()}
    out = run(scenario({"evaluate_every": "1d", "policy": "cheapest"}, duration="2d", prices=prices), tmp_path)
    c = out.tables["charges"]
    mig = out.tables["migrations"]
    mig = mig[mig["trigger"] == "charging"]
    assert list(mig["vm"]) == ["web-000"] and list(mig["outcome"]) == ["completed"]
    assert mig["target"].iloc[0].startswith("west/bd1/")
    assert out.metrics["charging.migrations"] == 1
    assert out.metrics["charging.savings_per_h_total"] == pytest.approx(0.232, abs=1e-12)
    assert out.metrics["charging.proposals"] == len(c) == 2
    # the saving adds up with the rows that were carried out
    moved = c[c["vm"].isin(mig["vm"]) & c["time_s"].isin(mig["time_s"])]
    assert -moved["delta_per_h"].sum() == pytest.approx(out.metrics["charging.savings_per_h_total"])


def test_cheapest_does_not_move_when_egress_exceeds_a_periods_saving(tmp_path):
    """egress 0.02: 6.442450944 > 5.568 saved in a day: nothing proposed, nothing moved."""
    out = run(scenario({"evaluate_every": "1d", "policy": "cheapest"}, duration="2d"), tmp_path)
    assert out.metrics["charging.proposals"] == 0 and out.metrics["charging.migrations"] == 0


def _cli(tmp_path, data):
    path = write_yaml(tmp_path / "bad.yaml", data)
    return CliRunner().invoke(app, ["check", str(path)])


def test_bad_input_unpriced_region_and_negative_price(tmp_path):
    res = _cli(tmp_path, scenario({}, prices={"us-east": PRICES["us-east"]}))
    assert res.exit_code == 2, res.output
    assert "infrastructure.sites.1.region: expected a region priced in mechanisms.charging.prices" in res.output
    assert "Traceback" not in res.output
    neg = {**PRICES, "eu-west": {**PRICES["eu-west"], "gib_hour": -0.004}}
    res = _cli(tmp_path, scenario({}, prices=neg))
    assert res.exit_code == 2, res.output
    assert "mechanisms.charging.prices.eu-west.gib_hour" in res.output
    # disabled: an unpriced region is fine
    res = _cli(tmp_path, scenario({"enabled": False}, prices={"us-east": PRICES["us-east"]}))
    assert res.exit_code == 0, res.output


HOSTS = [f"{s}/bd{d}/h{h:02d}" for s in ("east", "west") for d in (1, 2) for h in range(2)]


def _mixed(faults):
    """Two services of four 32 GiB VMs each, packed into east; eu-west cheaper, egress free: every VM
    would move, and each west domain may take one VM of each service."""
    prices = {r: {**p, "egress_gb": 0.0} for r, p in PRICES.items()}
    sc = scenario({"evaluate_every": "12h", "policy": "cheapest"}, faults=faults, duration="3d",
                  prices=prices, west_domains=2)
    sc["infrastructure"]["sites"][0]["broadcast_domains"] = [
        {"name": f"bd{k}", "hosts": 2, "profile": "std", "uplink": "100Gbps"} for k in (1, 2)]
    sc["workloads"] = [{"name": n, "count": 4, "service": n,
                        "vm": {"vcpus": 2, "memory": "32GiB", "disk": "20GiB", "boot_time": "1m"},
                        "placement": {"hosts": ["*"], "spread": "pack"}} for n in ("a", "b")]
    return sc


@given(st.lists(st.tuples(st.sampled_from(["host_crash", "broadcast_domain_outage"]), st.integers(0, 8),
                          st.sampled_from(HOSTS), st.sampled_from(["30m", "2h", "12h"])), max_size=6))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_cheapest_never_puts_two_likely_redundant_vms_in_one_domain(tmp_path_factory, monkeypatch, faults):
    """Property over random host crashes and domain outages (times on a 6 h grid, so many coincide with
    each other and with the 12 h evaluations): whenever ``cheapest`` decides a move, the target domain
    holds no VM of the same service (or shape and name stem), and none is on its way there; and the
    savings metric is minus the sum of ``delta_per_h`` over the rows whose migration completed."""
    from sim.mechanisms.charging import Charging

    decisions = []

    def decided(self, vm, host, banned):
        def peer(u):  # same service, or same shape and name stem ("a-003" -> "a")
            return u is not vm and (u.service == vm.service or (u.spec.vcpus, u.spec.memory, u.spec.disk)
                                    == (vm.spec.vcpus, vm.spec.memory, vm.spec.disk) and u.name[0] == vm.name[0])

        peers = [u.name for h in host.domain.hosts for u in h.vms.values() if peer(u)]
        incoming = [self.vms[j].name for j, (d, _, _) in self.pending.items()
                    if d == self.domain_index[host.domain.name] and peer(self.vms[j])]
        decisions.append((vm.name, host.name, peers, incoming, host.domain in banned))

    monkeypatch.setattr(Charging, "decided", decided)
    fs = []
    for kind, k, host, repair in faults:
        target = host if kind == "host_crash" else host.rsplit("/", 1)[0]
        fs.append({"kind": kind, "at": f"{6 * k}h", "target": target, "repair": repair})
    out = run(_mixed(fs), tmp_path_factory.mktemp("p"))
    for vm, host, peers, incoming, was_banned in decisions:
        assert not peers and not incoming and not was_banned, (vm, host, peers, incoming)
    c = out.tables["charges"]
    mig = out.tables["migrations"]
    done = mig[(mig["trigger"] == "charging") & (mig["outcome"] == "completed")]
    rows = c.merge(done[["time_s", "vm"]], on=["time_s", "vm"])
    assert len(rows) == len(done) == out.metrics["charging.migrations"]
    assert out.metrics["charging.savings_per_h_total"] == pytest.approx(-rows["delta_per_h"].sum(), abs=1e-12)
    if not faults:  # two west domains: at most one VM of each service in each
        assert len(decisions) == 4


def test_backup_storage_is_priced_per_gb_month_where_it_is_stored_and_absent_is_zero():
    """A backup of 50e9 bytes on vault (us-east, 0.023 per GB-month) taken at day 10 of a 40-day run is
    held 30 days = 1 month: 50 x 1 x 0.023 = 1.15, added to the metered 2.0. Without a backups table
    (no backup mechanism yet) only the 2.0."""
    import pandas as pd

    from sim.mechanisms.charging import CHARGES, Config, charging_metrics
    from sim.metrics.summary import RunInfo

    cfg = Config(prices={"us-east": {"vcpu_hour": 0.04, "storage_gb_month": 0.023}},
                 storage_regions={"vault": "us-east"})
    tables = {
        "metered": pd.DataFrame({"cost": [1.5, 0.5]}),
        "charges": pd.DataFrame(columns=list(CHARGES.names)),
        "migrations": pd.DataFrame({"time_s": [], "vm": [], "trigger": [], "outcome": []}),
    }
    info = RunInfo(duration_s=40 * 86400.0, hosts=1, vm_names=frozenset(), configs={"charging": cfg})
    assert charging_metrics(tables, info)["charging.cost_total"] == pytest.approx(2.0)
    tables["backups"] = pd.DataFrame({"time_s": [10 * 86400.0], "vm": ["db-000"], "storage": ["vault"],
                                      "bytes": [50e9]})
    assert charging_metrics(tables, info)["charging.cost_total"] == pytest.approx(3.15)


def test_budget_counts_evaluations_and_scale_keeps_prices():
    """A 30-day run evaluated every 12 h: 60 evaluations; the section does not grow with the fleet."""
    from types import SimpleNamespace

    from sim.mechanisms.charging import Charging, Config

    need = Charging.budget(Config(evaluate_every=43200.0), SimpleNamespace(duration=30 * 86400.0))
    assert [(n.limit, n.path, n.amount) for n in need] == [("events", "evaluate_every", 60.0)]
    section = {"prices": PRICES, "evaluate_every": "1d"}
    assert Charging.scale(section, 10.0) == section


def test_same_seed_same_numbers(tmp_path):
    sc = _mixed([{"kind": "host_crash", "mtbf": "2d", "repair": "1h"}])
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = run(sc, tmp_path / "a")
    b = run(sc, tmp_path / "b")
    assert a.metrics == b.metrics
    assert a.tables["charges"].equals(b.tables["charges"]) and a.tables["metered"].equals(b.tables["metered"])


@given(st.lists(st.tuples(st.sampled_from(["host_crash", "broadcast_domain_outage", "vm_crash"]),
                          st.integers(0, 8), st.integers(0, 7), st.sampled_from(["30m", "2h", "12h"])),
                max_size=6))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_tracked_location_of_every_vm_equals_a_direct_read(tmp_path_factory, monkeypatch, faults):
    """The evaluation locates VMs from arrays kept by ``vm down``/``up`` and ``Datacenter.move`` instead of
    reading 100,000 VMs. Property over random host crashes, domain outages and guest crashes on a 6 h grid
    (coinciding with the 12 h evaluations) while ``cheapest`` migrates VMs across sites: at every
    evaluation the site and domain of every VM equal those of its host read directly, and a VM counts as
    serving exactly when it is placed, running and not out (none is paused at an evaluation here)."""
    from sim.infra.datacenter import RUNNING
    from sim.mechanisms.charging import Charging

    seen = []
    original = Charging.locate

    def locate(self):
        site, dom, serving = original(self)
        for i, vm in enumerate(self.vms):
            h = vm.host
            assert site[i] == (self.site_index[h.site.name] if h is not None else -1), vm
            assert dom[i] == (self.domain_index[h.domain.name] if h is not None else -1), vm
            assert serving[i] == (h is not None and not vm.out and vm.state == RUNNING), vm
        seen.append(self.env.now)
        return site, dom, serving

    monkeypatch.setattr(Charging, "locate", locate)
    fs = []
    for kind, k, j, repair in faults:
        target = {"host_crash": HOSTS[j], "broadcast_domain_outage": HOSTS[j].rsplit("/", 1)[0],
                  "vm_crash": f"{'ab'[j % 2]}-{j // 2:03d}"}[kind]
        fs.append({"kind": kind, "at": f"{6 * k}h", "target": target, **({} if kind == "vm_crash" else {"repair": repair})})
    out = run(_mixed(fs), tmp_path_factory.mktemp("t"))
    assert len(seen) == 5  # every 12 h from 12 h, before the end of the 3 days
    if not faults:
        assert out.metrics["charging.migrations"] == 4


@given(st.lists(st.tuples(st.sampled_from(["host_crash", "broadcast_domain_outage", "vm_crash"]),
                          st.integers(0, 8), st.integers(0, 7), st.sampled_from(["30m", "2h", "12h"])),
                max_size=6), st.integers(0, 7), st.sampled_from(HOSTS[4:]))
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_report_evaluating_only_the_touched_vms_records_what_the_full_evaluation_does(
        tmp_path_factory, monkeypatch, faults, k, to):
    """``report`` evaluates only the VMs that stopped, started or moved since the last evaluation (or are
    out of service). Differential property over random host crashes, domain outages and guest crashes on
    a 6 h grid (coinciding with the 12 h evaluations) plus a cross-site ``migrate`` operation at a random
    multiple of 6 h (another mover): the ``charges`` and ``metered`` tables equal, row for row, those of
    the same run with every VM evaluated each time."""
    from sim.mechanisms.charging import Charging

    fs = []
    for kind, t, j, repair in faults:
        target = {"host_crash": HOSTS[j], "broadcast_domain_outage": HOSTS[j].rsplit("/", 1)[0],
                  "vm_crash": f"{'ab'[j % 2]}-{j // 2:03d}"}[kind]
        fs.append({"kind": kind, "at": f"{6 * t}h", "target": target, **({} if kind == "vm_crash" else {"repair": repair})})
    sc = _mixed(fs)
    sc["mechanisms"]["charging"]["policy"] = "report"
    sc["mechanisms"]["live_migration"] = {"scope": "any"}
    sc["operations"] = [{"kind": "migrate", "at": f"{6 * k}h", "vm": "a-000", "to": to}]
    assert Charging.incremental
    out = run(sc, tmp_path_factory.mktemp("inc"))
    with monkeypatch.context() as mp:  # undone before the next example
        mp.setattr(Charging, "incremental", False)
        ref = run(sc, tmp_path_factory.mktemp("full"))
    for table in ("charges", "metered"):
        a, b = out.tables[table], ref.tables[table]
        assert len(b) > 0 or table == "charges"
        assert a.reset_index(drop=True).equals(b.reset_index(drop=True)), table
