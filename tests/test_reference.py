"""docs/reference/ is generated from the code and kept current; `dcsim schema` and `dcsim metrics`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from sim import reference
from sim.cli import app

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("rel", sorted(reference.render_all()))
def test_reference_is_regenerated_byte_identically(rel):
    """If this fails, run `python -m sim.reference` and commit docs/reference/."""
    assert (ROOT / rel).read_bytes() == reference.render_all()[rel].encode("utf-8")


def test_schema_command_prints_the_schema():
    r = CliRunner().invoke(app, ["schema"])
    assert r.exit_code == 0
    assert json.loads(r.output) == reference.scenario_schema()


def test_schema_accepts_the_shipped_scenarios_and_refuses_an_unknown_key():
    jsonschema = pytest.importorskip("jsonschema")
    schema = reference.scenario_schema()
    validator = jsonschema.Draft202012Validator(schema)
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        errors = list(validator.iter_errors(yaml.safe_load(path.read_text())))
        assert not errors, (path.name, [e.message for e in errors[:3]])
    bad = yaml.safe_load((ROOT / "scenarios" / "quickstart.yaml").read_text())
    bad["infrastructure"]["detecton"] = "30s"
    assert not validator.is_valid(bad)
    bad = yaml.safe_load((ROOT / "scenarios" / "quickstart.yaml").read_text())
    bad["duration"] = 30  # a number of seconds is a duration too
    assert validator.is_valid(bad)


def test_quantities_take_numbers_or_strings():
    props = reference.scenario_schema()["$defs"]["HostProfile"]["properties"]
    assert props["memory"]["x-dcsim-kind"] == "size"
    assert {"type": "string"} in props["memory"]["anyOf"]


def test_no_pointer_to_files_outside_the_repository():
    for text in reference.render_all().values():
        for name in [f"{stem}.md" for stem in ("SPEC", "MECHANISMS", "VALIDATION", "STYLE")] + ["/" + "work" + "/"]:
            assert name not in text


def test_metrics_command_lists_every_metric_a_run_produces(tmp_path):
    """Every metric in a quickstart run's summary.json has metadata (a name or a pattern) listed by
    `dcsim metrics --json`."""
    r = CliRunner().invoke(app, ["run", str(ROOT / "scenarios" / "quickstart.yaml"), "--quiet",
                                 "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    produced = json.loads((tmp_path / "o" / "summary.json").read_text())["metrics"]
    listed = json.loads(CliRunner().invoke(app, ["metrics", "--json"]).output)
    for name in produced:
        assert name in listed or f"{name.rpartition('.')[0]}.*" in listed, name
    assert listed["vm.availability"] == {"unit": "availability", "meaning": listed["vm.availability"]["meaning"],
                                         "higher_is_better": True, "headline": True}


def test_schema_accepts_every_distribution_form_the_model_reads():
    """A preset gives the family, and the short empirical form has none: the exported schema must not
    require ``family`` for them (it did), yet still refuses a distribution with neither."""
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(reference.scenario_schema())
    base = yaml.safe_load((ROOT / "scenarios" / "quickstart.yaml").read_text())

    def valid(ttf):
        return validator.is_valid({**base, "faults": [{"kind": "host_crash", "time_to_failure": ttf}]})

    assert valid({"preset": "lanl-node", "mean": "2y"})
    assert valid({"empirical": {"path": "trace.csv", "column": "ttf"}})
    assert valid({"family": "exponential", "mean": "2y"})
    assert not valid({"mean": "2y"})
    assert not valid({"preset": "no-such-preset", "mean": "2y"})


class _Noted(__import__("pydantic").BaseModel):
    """A model written the way the scenario schema is (comments beside and above fields)."""

    # The first line above,
    # and the second.
    above: int = 1
    beside: float = 2.0  # beside it
    plain: str = ""

    # a comment before a blank line is not a field's

    both: int = 0  # and beside  # noqa: E501


def test_field_notes_read_the_comments_beside_and_above_each_field():
    """The reference's notes column: comment lines directly above a field, then the one beside it;
    nothing for a field without comments or across a blank line."""
    from sim.reference import field_notes

    notes = field_notes(_Noted)
    assert notes == {"above": "The first line above, and the second.", "beside": "beside it",
                     "both": "and beside"}


def test_scenario_reference_shows_the_schema_comments():
    """A default's provenance written beside the field in the schema reaches the reference table."""
    from sim.reference import scenario_md, scenario_schema

    schema = scenario_schema()
    uplink = schema["$defs"]["BroadcastDomain"]["properties"]["uplink"]
    assert uplink["x-dcsim-note"] == "a 100 GbE top-of-rack uplink (a choice)"
    assert "| `uplink` | rate | `12500000000.0` (11.6 GiB/s = 100 Gbps) | a 100 GbE top-of-rack uplink (a choice) |" \
        in scenario_md(schema)
