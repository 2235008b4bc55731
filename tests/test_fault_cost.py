"""The cheaper fault paths give exactly what the direct ones gave (docs/performance.md, "Cost per
fault, restart and metered interval").

- ``sim.core.seeds.generators`` (behind ``Streams.get_many``) builds the generator ``Streams.get`` builds for every name, from
  numpy's seeding algorithm computed for many names at once: same state, same draws, for any seed
  (one 32-bit word of entropy or several) and any name; and its fallback (numpy's own
  ``SeedSequence`` per name) gives the same.
- ``charging.Scorer`` keeps per-group sums as VMs move: after any sequence of placements it scores
  exactly what ``redundancy`` (a recount over the fleet) gives.
- The DIMM model skips hosts with no DIMM that had a first correctable error when a host stops or
  starts, and draws the later errors at a sample over those DIMMs only: over random host crashes,
  the memory-error rows and the error gauge equal, row for row, those of the model that always
  works over every DIMM (the reference implementation below, the code before the change).
- ``Recorder.record_many`` writes the rows ``record`` writes one by one.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import base_scenario, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.core import seeds
from sim.core.streams import Streams
from sim.mechanisms.charging import Scorer, redundancy

names = st.lists(st.text(min_size=0, max_size=40), min_size=1, max_size=30)
seed_values = st.one_of(st.integers(0, 2**32 - 1), st.integers(2**32, 2**140))


@given(seed_values, names)
@settings(max_examples=150, deadline=None)
def test_generators_equal_the_named_streams(seed, batch):
    """Each generator starts in the state of ``Streams(seed).get(name)`` and draws the same numbers."""
    made = seeds.generators(seed, batch)
    for name, gen in zip(batch, made, strict=True):
        ref = Streams(seed).get(name)
        assert gen.bit_generator.state == ref.bit_generator.state
        assert gen.exponential(3.0, 4).tolist() == ref.exponential(3.0, 4).tolist()
        assert gen.integers(0, 10**9, 3).tolist() == ref.integers(0, 10**9, 3).tolist()


def test_generators_fall_back_to_numpys_seeding(monkeypatch):
    """Should the vectorised seeding disagree with numpy's (a numpy release changing it), every name
    is seeded by ``SeedSequence`` itself: the streams stay those of ``Streams.get``."""
    monkeypatch.setattr(seeds, "_checked", False)
    made = seeds.generators(11, ["faults/host_crash.0/a", "faults/host_crash.0/b"])
    for name, gen in zip(["faults/host_crash.0/a", "faults/host_crash.0/b"], made, strict=True):
        assert gen.bit_generator.state == Streams(11).get(name).bit_generator.state
    assert seeds.generators(11, []) == []


def test_get_many_never_makes_a_second_stream_of_a_name():
    """``get_many`` gives ``get``'s generators, and a name is made once: asked again by either call
    (or twice in one call) it is an error, not a second stream that would repeat its draws; a refused
    call marks none of its names."""
    s = Streams(5)
    many = s.get_many(["faults/x.0/a", "faults/x.0/b"])
    assert many[0].bit_generator.state == Streams(5).get("faults/x.0/a").bit_generator.state
    s.get("faults/x.0/c")
    for again in (lambda: s.get("faults/x.0/a"), lambda: s.get_many(["faults/x.0/b"]),
                  lambda: s.get_many(["faults/x.0/c"]), lambda: s.get_many(["faults/x.0/d", "faults/x.0/d"])):
        with pytest.raises(ValueError):
            again()
    # a refused call marks nothing: "d" (refused above, asked twice in one call) is still to be had
    assert s.get_many(["faults/x.0/d"])[0].bit_generator.state == Streams(5).get("faults/x.0/d").bit_generator.state


def test_the_seeding_agrees_with_numpy_here():
    """The check the fallback depends on passes with the numpy installed (so the fast path runs)."""
    assert seeds._agrees() is True


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(0, 3)), min_size=1, max_size=30),
       st.data())
@settings(max_examples=150, deadline=None)
def test_the_scorer_follows_any_sequence_of_placements(vms, data):
    """Property: for a sequence of up to 6 placements (each VM in a domain 0-4 or unplaced, -1), the
    scorer's figures at random rows equal ``redundancy`` recomputed over the whole fleet for that
    placement, at every step (the sums it keeps are updated only for the VMs that moved)."""
    a = np.array(vms)
    scorer = Scorer(a[:, 0], a[:, 1], a[:, 2])
    n = len(vms)
    for _ in range(data.draw(st.integers(1, 6))):
        dom = np.array(data.draw(st.lists(st.integers(-1, 4), min_size=n, max_size=n)), dtype=np.int64)
        rows = np.array(data.draw(st.lists(st.integers(0, n - 1), max_size=n)), dtype=np.int64)
        assert scorer.score(dom, rows).tolist() == redundancy(a[:, 0], a[:, 1], a[:, 2], dom)[rows].tolist()


# -- the DIMM model against the code it replaced ------------------------------------------------------

def _full_host_down(self, failure):
    """Reference (the code before): every DIMM of the host, whether or not it had a first CE."""
    host = self.dc.hosts[failure.subject]
    now = self.env.now
    for pop, j in self._where.get(host.name, ()):
        sl = slice(pop.offset[j], pop.offset[j + 1])
        since = pop.since[sl]
        on = ~np.isnan(since)
        pop.acc[sl] += np.where(on, now - np.where(on, since, now), 0.0)
        pop.since[sl] = np.nan


def _full_host_up(self, failure):
    host = self.dc.hosts[failure.subject]
    now = self.env.now
    for pop, j in self._where.get(host.name, ()):
        sl = slice(pop.offset[j], pop.offset[j + 1])
        pop.since[sl] = np.where(np.isnan(pop.first_ce[sl]), np.nan, now)


def _full_sample(self, now):
    for pop in self.pops:
        self._flush(pop, slice(0, len(pop.prone)), rows=False)
    self._level()


@given(seed=st.integers(0, 10_000), crashes=st.lists(st.tuples(st.integers(0, 7), st.integers(1, 40)), max_size=8))
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_dimm_bookkeeping_over_lit_dimms_only_equals_the_full_one(tmp_path_factory, monkeypatch, seed, crashes):
    """Differential property: 8 hosts of 8 DIMMs, error-prone DIMMs logging a first CE within days and
    uncorrectable errors at a high rate, random host crashes (host, day) repaired in 6 h, 60 days with a
    daily sample: the ``memory_errors``, ``faults`` and ``levels`` tables equal, row for row, those of
    the run whose DIMM model works over every DIMM at every host stop, start and sample."""
    from sim.faults.dimm import DimmInjector

    sc = base_scenario(seed=seed, duration="60d", sample_interval="1d", faults=[
        {"kind": "dimm_errors", "error_prone_fraction": 0.3, "correctable_per_dimm_year": 30.0,
         "uncorrectable_per_dimm_year": 0.5, "uncorrectable_after_correctable": 5.0, "repair": "12h"},
        *({"kind": "host_crash", "at": f"{day}d", "target": f"east/bd{1 + h // 4}/h{h % 4:02d}", "repair": "6h"}
          for h, day in crashes)])
    sc["mechanisms"] = {"memory_error_evacuation": {}, "live_migration": {}}
    out = run(sc, tmp_path_factory.mktemp("lit"))
    with monkeypatch.context() as mp:
        mp.setattr(DimmInjector, "_host_down", _full_host_down)
        mp.setattr(DimmInjector, "_host_up", _full_host_up)
        mp.setattr(DimmInjector, "sample", _full_sample)
        ref = run(sc, tmp_path_factory.mktemp("full"))
    assert len(ref.tables["memory_errors"]) > 0
    for table in ("memory_errors", "faults", "levels", "incidents"):
        a, b = out.tables[table], ref.tables[table]
        assert a.reset_index(drop=True).equals(b.reset_index(drop=True)), table


def test_record_many_writes_the_rows_record_writes():
    """Rows written at once equal those written one by one (a shared value repeated); a missing or
    unknown column, or columns of different lengths, is an error as in ``record``."""
    import simpy

    from sim.metrics.recorder import Recorder

    env = simpy.Environment()
    one, many = Recorder(env), Recorder(env)
    rows = [("h1", "host_crash", 10.0), ("h2", "disk_failure", 20.5)]
    for target, kind, repair in rows:
        one.record("faults", kind=kind, target=target, repair_s=repair, end_s=repair)
    many.record_many("faults", kind=[r[1] for r in rows], target=[r[0] for r in rows],
                     repair_s=[r[2] for r in rows], end_s=[r[2] for r in rows])
    assert one._rows["faults"] == many._rows["faults"]
    many.record_many("faults", kind="vm_crash", target=["a", "b"], repair_s=0.0, end_s=0.0, time_s=5.0)
    assert many._rows["faults"][-2:] == [(5.0, "vm_crash", "a", 0.0, 0.0), (5.0, "vm_crash", "b", 0.0, 0.0)]
    with pytest.raises(KeyError):
        many.record_many("faults", kind=["x"], target=["y"], repair_s=[0.0])
    with pytest.raises(ValueError):
        many.record_many("faults", kind=["x", "y"], target=["y"], repair_s=0.0, end_s=0.0)
    with pytest.raises(TypeError):  # an array is not taken for one value shared by every row
        many.record_many("faults", kind=["x"], target=["y"], repair_s=np.zeros(1), end_s=0.0)


def test_appender_writes_the_rows_record_writes():
    """A tuple in the declared column order, through ``appender``, is the row ``record`` writes from
    keywords; asking with the columns in another order, or a column missing, is an error at once."""
    import simpy

    from sim.mechanisms.workload_manager import BACKUPS
    from sim.metrics.recorder import Recorder

    env = simpy.Environment()
    one, fast = Recorder(env, {"backups": BACKUPS}), Recorder(env, {"backups": BACKUPS})
    row = (3.0, "db-1", "db", 0, "full", 0.0, 5e9, 7.0, 4.0, "vault", "east/bd00/h00", "completed", "")
    one.record("backups", **dict(zip(BACKUPS.names, row, strict=True)))
    fast.appender("backups", *BACKUPS.names)(row)
    assert one._rows["backups"] == fast._rows["backups"] == [row]
    with pytest.raises(KeyError):
        fast.appender("backups", *reversed(BACKUPS.names))
    with pytest.raises(KeyError):
        fast.appender("backups", *BACKUPS.names[:-1])
