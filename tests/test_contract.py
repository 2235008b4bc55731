"""What a mechanism declares on its class and the platform reads: budgets, resolve, advisories,
scaling with the fleet, operation subjects."""

from __future__ import annotations

from typing import ClassVar

import pytest
import yaml
from conftest import base_scenario, write_yaml
from typer.testing import CliRunner

from sim.bench import FLEET, scale_fleet
from sim.cli import app
from sim.core.errors import InputError, Problem
from sim.mechanisms.base import Mechanism, MechanismConfig
from sim.mechanisms.live_migration import Migrate
from sim.mechanisms.registry import MECHANISMS, Registry
from sim.runner import Simulation
from sim.scenario.loader import dump_resolved, load_scenario, read_yaml
from sim.scenario.schema import Instantiate, PublishImage, Recover
from sim.scenario.validate import advisories


def _check(tmp_path, data):
    path = write_yaml(tmp_path / "s.yaml", data)
    r = CliRunner().invoke(app, ["check", str(path)])
    assert "Traceback" not in r.output
    return r.exit_code, [ln for ln in r.stderr.splitlines() if ln.strip()], path


# --------------------------------------------------------------------------- budgets
def test_a_billion_replication_primaries_are_refused_before_any_name_is_generated(tmp_path):
    """10^9 primaries with one replica each are 2 x 10^9 VMs, over the 10^7 VM budget: exit 2, one
    line naming the network's ``primaries`` and the total with the 8 workload VMs."""
    sc = base_scenario(mechanisms={"replication": {"networks": [{"name": "n", "primaries": 10**9}]}})
    code, lines, path = _check(tmp_path, sc)
    assert code == 2
    assert lines == [f"{path}: mechanisms.replication.networks.0.primaries: expected at most 10000000 VMs in "
                     "total (fewer primaries or replicas; DCSIM_MAX_VMS raises the limit), got 2000000008"]


def test_a_disabled_mechanism_still_counts_what_it_builds(tmp_path):
    """Disabled replication still builds its primaries, so its section is budgeted too."""
    sc = base_scenario(mechanisms={"replication": {"enabled": False, "networks": [{"name": "n", "primaries": 10**8}]}})
    code, lines, _ = _check(tmp_path, sc)
    assert code == 2 and "mechanisms.replication.networks.0.primaries: expected at most 10000000 VMs" in lines[0]


def test_session_arrivals_count_with_the_fault_and_sample_events(tmp_path):
    """1 session/s over 1y = 31,536,000 arrivals; with 500 samples that is under 5e7; at 2/s it is
    63,072,000 + 500 = about 6.3e7, over: reported at the session type's rate."""
    def sc(rate):
        return base_scenario(duration="1y", mechanisms={"sessions": {
            "clusters": [{"name": "c", "redundancy": "N:K", "active": 2, "backup": 1}],
            "session_types": [{"name": "t", "rate": rate, "mean_holding": "1s", "require": "N:K"}]}})
    assert _check(tmp_path, sc(1.0))[0] == 0
    code, lines, path = _check(tmp_path, sc(2.0))
    assert code == 2
    assert lines == [f"{path}: mechanisms.sessions.session_types.0.rate: expected at most 5e7 expected fault and "
                     "sample events over the run (lower the rates or shorten duration; DCSIM_MAX_EVENTS raises "
                     "the limit), got about 6.3e7"]


# --------------------------------------------------------------------------- resolve
class _StoreConfig(MechanismConfig):
    storage: str | None = None  # default: the first storage system of the scenario


class _Store(Mechanism):
    """A dummy mechanism whose default depends on the scenario."""

    key = "store"
    Config = _StoreConfig

    @classmethod
    def resolve(cls, config, scenario):
        if config.storage is None and scenario.infrastructure.storage:
            return config.model_copy(update={"storage": scenario.infrastructure.storage[0].name})
        return config


WITH_STORE = Registry((*MECHANISMS, _Store))


def _with_storage(**mech):
    sc = base_scenario(mechanisms={"store": mech})
    sc["infrastructure"]["storage"] = [{"name": "san1", "site": "east", "capacity": "1PiB", "read": "10GB/s", "write": "10GB/s"},
                                       {"name": "san2", "site": "east", "capacity": "1PiB", "read": "10GB/s", "write": "10GB/s"}]
    return sc


def test_resolve_fills_scenario_dependent_defaults_that_check_prints(tmp_path):
    path = write_yaml(tmp_path / "s.yaml", _with_storage())
    sc = load_scenario(str(path), [], WITH_STORE)
    assert sc.mechanisms.store.storage == "san1"
    assert yaml.safe_load(dump_resolved(sc))["mechanisms"]["store"]["storage"] == "san1"
    path = write_yaml(tmp_path / "s.yaml", _with_storage(storage="san2"))
    assert load_scenario(str(path), [], WITH_STORE).mechanisms.store.storage == "san2"
    # and the mechanism built from it reads the resolved value
    sim = Simulation(load_scenario(str(path), [], WITH_STORE), registry=WITH_STORE)
    assert next(m for m in sim.mechanisms if m.key == "store").config.storage == "san2"


# --------------------------------------------------------------------------- advisories
class _Imager(Mechanism):
    key = "imager"
    Config = MechanismConfig
    reads = ("images",)


class _Warner(Mechanism):
    key = "warner"
    Config = MechanismConfig

    @classmethod
    def advisories(cls, config, scenario):
        return [] if config is not None else [Problem("mechanisms", "warner would help here")]


def test_image_drift_warns_until_a_mechanism_that_reads_images_is_enabled(tmp_path):
    drift = {"faults": [{"kind": "image_drift", "mtbf": "30d"}]}
    reg = Registry((*MECHANISMS, _Imager))

    def warnings(**mech):
        path = write_yaml(tmp_path / "s.yaml", base_scenario(mechanisms=mech, **drift))
        return [p.format("s") for p in advisories(load_scenario(str(path), [], reg), reg)]

    assert warnings() == ["s: faults.0: image_drift changes running images, but nothing measures or fixes them "
                          "unless mechanisms.imager is enabled"]
    assert warnings(imager={"enabled": False}) == warnings()
    assert warnings(imager={}) == []


def test_a_mechanism_declares_its_own_warnings(tmp_path):
    reg = Registry((*MECHANISMS, _Warner))
    path = write_yaml(tmp_path / "s.yaml", base_scenario())
    assert [p.format("s") for p in advisories(load_scenario(str(path), [], reg), reg)] == [
        "s: mechanisms: warner would help here"]
    path = write_yaml(tmp_path / "s.yaml", base_scenario(mechanisms={"warner": {}}))
    assert advisories(load_scenario(str(path), [], reg), reg) == []


# --------------------------------------------------------------------------- the bench's scaling
def test_every_mechanism_scales_its_own_populations_with_the_fleet():
    """fleet.yaml at 3,000 of its 10,000 hosts (factor 0.3): replication 1,000 primaries -> 300;
    sessions voice 20 active -> 6, data 40 active + 4 backup -> 12 + 1, and the offered rates
    0.02/s and 0.1/s -> 0.006/s and 0.03/s (the load per VM stays)."""
    out = scale_fleet(read_yaml(FLEET), 3000)["mechanisms"]
    assert out["replication"]["networks"][0]["primaries"] == 300
    voice, data = out["sessions"]["clusters"]
    assert (voice["active"], voice.get("backup"), data["active"], data["backup"]) == (6, None, 12, 1)
    assert [t["rate"] for t in out["sessions"]["session_types"]] == pytest.approx([0.006, 0.03])


# --------------------------------------------------------------------------- operations
def test_each_operation_names_its_subject():
    assert Migrate(kind="migrate", at=0, vm="web-000", to="h").subject == "web-000"
    assert PublishImage(kind="publish_image", at=0, cluster="prod", image={"base": "1"}).subject == "prod"
    assert Instantiate(kind="instantiate", at=0, workload="db", site="east").subject == "db"
    assert Recover(kind="recover", at=0, vm="db-000").subject == "db-000"


def test_an_unknown_operation_kind_lists_the_mechanisms_kinds_first(tmp_path):
    path = write_yaml(tmp_path / "s.yaml", base_scenario(operations=[{"kind": "nope", "at": "1h"}]))
    with pytest.raises(InputError) as err:
        load_scenario(str(path))
    assert "expected one of migrate, instantiate, restore, migrate_workload, publish_image, recover" in \
        err.value.lines()[0]


# --------------------------------------------------------------------------- absent / disabled / enabled
class _Phases(Mechanism):
    """Records which phases the platform calls and the config it got."""

    key = "phases"
    Config = MechanismConfig
    calls: ClassVar[list] = []

    def build(self, builder):
        self.calls.append(("build", self.enabled))

    def wire(self):
        self.calls.append(("wire", self.enabled))

    def start(self):
        self.calls.append(("start", self.enabled))


class _NaivePhases(_Phases):
    key = "naive_phases"
    naive = True


def _phases(tmp_path, mech):
    _Phases.calls.clear()
    reg = Registry((*MECHANISMS, _Phases, _NaivePhases))
    path = write_yaml(tmp_path / "s.yaml", base_scenario(duration="1h", mechanisms=mech))
    sim = Simulation(load_scenario(str(path), [], reg), registry=reg)
    sim.run()
    return {m.key: m for m in sim.mechanisms}, list(_Phases.calls)


def test_absent_is_disabled_with_defaults_and_only_the_enabled_or_naive_run_phases(tmp_path):
    """Absent: config = defaults with enabled false (never None); no phase runs on a plain mechanism,
    every phase on a naive one (which sees enabled false). Enabled: every phase, once each."""
    mechs, calls = _phases(tmp_path, {})
    assert mechs["phases"].config == MechanismConfig(enabled=False)
    assert calls == [("build", False), ("wire", False), ("start", False)]  # the naive one only
    mechs, calls = _phases(tmp_path, {"phases": {"enabled": False}})
    assert calls == [("build", False), ("wire", False), ("start", False)]
    _, calls = _phases(tmp_path, {"phases": {}, "naive_phases": {}})
    assert calls == [("build", True), ("build", True), ("wire", True), ("wire", True), ("start", True),
                     ("start", True)]


def test_summaries_read_the_config_a_mechanism_ran_with(tmp_path):
    """Replication's primaries come from its config: 3 + 2 primaries in two networks = 5, written
    for a disabled section too (its primaries are built)."""
    nets = [{"name": "a", "primaries": 3}, {"name": "b", "primaries": 2}]
    for enabled in (True, False):
        path = write_yaml(tmp_path / "s.yaml", base_scenario(
            duration="1h", mechanisms={"replication": {"enabled": enabled, "networks": nets}}))
        assert Simulation(load_scenario(str(path))).run().metrics["replication.primaries"] == 5


# --------------------------------------------------------------------------- memory errors on the bus
def _uncorrectable_at_1h(registry):
    """4 VMs on east/bd1/h00 (first fit); an uncorrectable error there at 1 h."""
    from test_memory_errors import scenario

    from sim.scenario.loader import validate_scenario

    sim = Simulation(validate_scenario(scenario(vms=4, evacuation=False), registry=registry), registry=registry)
    env = sim.ctx.env

    def inject():
        yield env.timeout(3600)
        sim.dimms.uncorrectable(sim.dc.hosts["east/bd1/h00"], dimm=2)

    env.process(inject())
    return sim, sim.run()


def test_the_dimm_injector_offers_no_service_and_crashes_the_host_when_nothing_takes_the_error():
    """Without any memory-error mechanism registered, the error crashes the host at 1 h (one
    dimm_errors fault, repaired after infrastructure.repair = 4 h) and its 4 VMs restart elsewhere."""
    from sim.mechanisms.memory_error_evacuation import MemoryErrorEvacuation

    reg = Registry(tuple(c for c in MECHANISMS if c is not MemoryErrorEvacuation))
    sim, out = _uncorrectable_at_1h(reg)
    assert "dimm_errors" not in sim.ctx.services
    assert "memory_errors" not in out.tables
    faults = out.tables["faults"]
    assert faults[["time_s", "kind", "target", "repair_s"]].values.tolist() == [
        [3600.0, "dimm_errors", "east/bd1/h00", 14400.0]]
    assert out.metrics["restarts.count"] == 4
    # the same with the mechanism registered but absent (disabled): and its row says so
    sim, out2 = _uncorrectable_at_1h(Registry(MECHANISMS))
    assert out2.tables["faults"].equals(faults) and out2.metrics["restarts.count"] == 4
    row = out2.tables["memory_errors"].iloc[0]
    assert (row["kind"], row["action"], row["vms_crashed"]) == ("uncorrectable", "host_crash", 4)


def test_an_absent_section_is_resolved_too(tmp_path):
    """Absent ``store``: its config is the defaults, disabled, with the first storage system filled."""
    path = write_yaml(tmp_path / "s.yaml", _with_storage())
    data = yaml.safe_load(path.read_text())
    del data["mechanisms"]["store"]
    write_yaml(path, data)
    sim = Simulation(load_scenario(str(path), [], WITH_STORE), registry=WITH_STORE)
    store = next(m for m in sim.mechanisms if m.key == "store")
    assert (store.enabled, store.config.storage) == (False, "san1")
