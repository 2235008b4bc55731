"""Generated names (zero padding) and shell-style glob selectors over ordered name lists."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest
from dummy_registry import DummyRegistry
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict

from sim.scenario import load_scenario
from sim.scenario.names import (
    all_domain_names,
    all_host_names,
    all_vm_names,
    host_name,
    host_names,
    is_glob,
    link_names,
    matches_any,
    select,
    vm_name,
    vm_names,
)
from sim.scenario.types import Duration

FIXTURE = Path(__file__).parent / "fixtures" / "scenario_full.yaml"


class Dummy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = True


class LiveMigration(Dummy):
    downtime_target: Duration = 0.3


REGISTRY = DummyRegistry({"live_migration": LiveMigration, "sessions": Dummy})  # with migrate


@pytest.mark.parametrize(
    ("count", "first", "last"),
    [
        (1, "east/bd1/h00", "east/bd1/h00"),
        (10, "east/bd1/h00", "east/bd1/h09"),
        (100, "east/bd1/h00", "east/bd1/h99"),
        (101, "east/bd1/h000", "east/bd1/h100"),
        (128, "east/bd1/h000", "east/bd1/h127"),
        (1000, "east/bd1/h000", "east/bd1/h999"),
        (1001, "east/bd1/h0000", "east/bd1/h1000"),
    ],
)
def test_host_name_padding(count, first, last):
    names = host_names("east", "bd1", count)
    assert (len(names), names[0], names[-1]) == (count, first, last)
    assert host_name("east", "bd1", count - 1, count) == last


@pytest.mark.parametrize(
    ("count", "first", "last"),
    [(1, "web-000", "web-000"), (40, "web-000", "web-039"), (1000, "web-000", "web-999"),
     (1001, "web-000", "web-1000"), (12345, "web-000", "web-12344")],
)
def test_vm_name_padding(count, first, last):
    names = vm_names("web", count)
    assert (len(names), names[0], names[-1]) == (count, first, last)
    assert vm_name("web", 7, count) == first[:-1] + "7"


def test_no_names_for_zero_count():
    assert host_names("east", "bd1", 0) == []
    assert vm_names("web", 0) == []


HOSTS = host_names("east", "bd1", 3) + host_names("east", "bd2", 2) + host_names("west", "bd1", 2)


def test_select_keeps_order_and_drops_duplicates():
    assert select(["west/*", "east/bd1/*", "*/h00"], HOSTS) == [
        "east/bd1/h00", "east/bd1/h01", "east/bd1/h02", "east/bd2/h00", "west/bd1/h00", "west/bd1/h01"]
    assert select(["east/bd2/h01", "east/bd2/h01"], HOSTS) == ["east/bd2/h01"]
    assert select("*", HOSTS) == HOSTS
    assert select([], HOSTS) == []
    assert select(["north/*"], HOSTS) == []
    assert select("*", ["b", "a", "b"]) == ["b", "a"]


@pytest.mark.parametrize(
    ("glob", "expected"),
    [
        ("east/*", ["east/bd1/h00", "east/bd1/h01", "east/bd1/h02", "east/bd2/h00", "east/bd2/h01"]),
        ("*/bd2/*", ["east/bd2/h00", "east/bd2/h01"]),
        ("*/h0[12]", ["east/bd1/h01", "east/bd1/h02", "east/bd2/h01", "west/bd1/h01"]),
        ("east/bd?/h00", ["east/bd1/h00", "east/bd2/h00"]),
        ("east/bd1/h0[!0]", ["east/bd1/h01", "east/bd1/h02"]),
        ("EAST/*", []),  # case-sensitive
        ("east", []),  # a glob matches the whole name
        ("west/bd1/h01", ["west/bd1/h01"]),
    ],
)
def test_shell_globs(glob, expected):
    assert select([glob], HOSTS) == expected


def test_matches_any_and_is_glob():
    assert matches_any("west/*", HOSTS)
    assert not matches_any("west/bd2/*", HOSTS)
    assert is_glob("east/*") and is_glob("h0?") and is_glob("h[01]")
    assert not is_glob("east/bd1/h00")


def test_names_of_a_scenario():
    sc = load_scenario(FIXTURE, registry=REGISTRY)
    hosts = all_host_names(sc.infrastructure)
    assert len(hosts) == 16 + 16 + 4 + 8
    assert hosts[:2] == ["east/bd1/h00", "east/bd1/h01"]
    assert hosts[-1] == "west/bd1/h07"
    assert all_domain_names(sc.infrastructure) == ["east/bd1", "east/bd2", "east/bd3", "west/bd1"]
    assert link_names(sc.infrastructure) == ["east/bd1", "east/bd2", "east/bd3", "west/bd1", "east", "west",
                                             "east-west"]
    vms = all_vm_names(sc)
    assert vms[:2] == ["web-000", "web-001"]
    assert vms[39:] == ["web-039", "db-000", "db-001", "db-002", "db-003"]
    assert all_vm_names(sc.workloads) == vms
    # The fixture's cluster selects the hosts of bd1 and bd2, in order.
    assert select(sc.clusters[0].hosts, hosts) == hosts[:32]


@given(
    names=st.lists(st.from_regex(r"[a-c]{1,2}/[a-c]{1,2}", fullmatch=True), max_size=20),
    globs=st.lists(st.sampled_from(["*", "a*", "*/b", "?/?", "[ab]/*", "c/c", "zz"]), max_size=4),
)
def test_select_properties(names, globs):
    """select = the names some glob matches (fnmatchcase), in their order, each once."""
    chosen = select(globs, names)
    expected = list(dict.fromkeys(n for n in names if any(fnmatch.fnmatchcase(n, g) for g in globs)))
    assert chosen == expected
    assert select(globs, chosen) == chosen


@settings(deadline=None)
@given(count=st.integers(min_value=1, max_value=20000))
def test_names_sort_in_number_order(count):
    """Host padding makes the textual order the numeric order; VM names keep 3 digits below 1,000
    (their name never depends on the count), so only those below 1,000 sort textually."""
    names = host_names("s", "d", count)
    picks = [names[0], names[count // 2], names[-1]]
    assert picks == sorted(picks)
    assert len({len(n) for n in picks}) == 1
    vms = vm_names("w", count)
    below = [vms[0], vms[min(count, 1000) // 2], vms[min(count, 1000) - 1]]
    assert below == sorted(below)
    assert [int(n.rpartition("-")[2]) for n in vms[:3]] == list(range(min(count, 3)))
