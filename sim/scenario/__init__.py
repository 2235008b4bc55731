"""Scenario files: schema (pydantic, frozen, unknown keys rejected), YAML loader, ``--set``
overrides, generated names and glob selectors, cross-reference checks.

``load_scenario(path, overrides, registry)`` is the entry point; it raises
``sim.core.errors.InputError`` with every problem found.
"""

from sim.scenario.loader import default_registry, dump_resolved, load_scenario, read_yaml, validate_scenario
from sim.scenario.names import host_name, select, vm_name
from sim.scenario.overrides import apply_overrides, parse_override, parse_overrides
from sim.scenario.schema import FAULT_KINDS, OPERATION_KINDS, MechanismsBase, Scenario, build_scenario_model
from sim.scenario.validate import check_references

__all__ = [
    "FAULT_KINDS",
    "OPERATION_KINDS",
    "MechanismsBase",
    "Scenario",
    "apply_overrides",
    "build_scenario_model",
    "check_references",
    "default_registry",
    "dump_resolved",
    "host_name",
    "load_scenario",
    "parse_override",
    "parse_overrides",
    "read_yaml",
    "select",
    "validate_scenario",
    "vm_name",
]
