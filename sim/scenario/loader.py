"""Load a scenario file: YAML (safe loader) -> ``--set`` overrides -> schema -> cross-references.

Every problem is collected and raised at once as ``InputError(source, problems)``,
one line per problem (schema problems together with the cross-reference problems of the parts
that did validate, ``_later_problems``) (``FILE: faults.1.mtbf: expected a duration like "30s", got "soon"``);
nothing reaches the user as a traceback. ``dump_resolved`` writes the validated
scenario back as YAML with every default filled in (quantities as plain numbers in
base units), and loading that dump gives an equal scenario.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from sim.core.errors import InputError, Problem, show
from sim.scenario.overrides import Override, apply_overrides, parse_overrides, unknown_key
from sim.scenario.safe_yaml import YamlProblem, load_text, read_text
from sim.scenario.schema import (
    Scenario,
    build_scenario_model,
    mapping_value,
    model_class,
    sequence_item,
    tagged_members,
)
from sim.scenario.types import FieldError
from sim.scenario.validate import (
    Namespaces,
    check_budgets,
    check_counts,
    check_references,
    resolve_mechanisms,
)

__all__ = [
    "load_scenario",
    "validate_scenario",
    "read_yaml",
    "dump_resolved",
    "default_registry",
    "translate_errors",
]

Registry = Mapping[str, type[BaseModel]]


def default_registry() -> Registry:
    """Mechanism key -> config model, from ``sim.mechanisms.registry`` (imported lazily)."""
    from sim.mechanisms.registry import config_models

    return config_models()


# --------------------------------------------------------------------------- YAML
def read_yaml(path: str | Path, source: str | None = None) -> Any:
    """The file's YAML document; InputError(source, ...) for a missing, unreadable, special, too large,
    too deeply nested or malformed file (``sim.scenario.safe_yaml``)."""
    source = str(path) if source is None else source
    text = read_text(path, source)
    try:
        return load_text(text)
    except YamlProblem as exc:
        raise InputError(source, [Problem("", str(exc))]) from None


# --------------------------------------------------------------------------- loading
def load_scenario(
    path: str | Path,
    overrides: Iterable[str | Override] = (),
    registry: Registry | None = None,
) -> Scenario:
    """Read, override, validate and cross-check a scenario file.

    ``overrides`` are ``PATH=VALUE`` strings (``--set``) or (path, value) pairs, applied
    to the raw mapping before validation. ``registry`` maps mechanism keys to config
    models (default: ``sim.mechanisms.registry``). Raises InputError: source ``--set``
    for a bad override path, else the file name as given.
    """
    source = str(path)
    data = read_yaml(path, source)
    return validate_scenario(data, source, overrides, registry)


def validate_scenario(
    data: Any,
    source: str = "<scenario>",
    overrides: Iterable[str | Override] = (),
    registry: Registry | None = None,
) -> Scenario:
    """Validate an already-read scenario mapping (a sweep's base file with its point applied)."""
    if not isinstance(data, dict):
        raise InputError(source, [Problem("", f"expected a mapping at the top level, got {show(data)}")])
    model = build_scenario_model(default_registry() if registry is None else registry)
    overrides = list(overrides)
    data = apply_overrides(data, overrides, model) if overrides else data
    overridden = [p for p, _ in parse_overrides(overrides)]
    try:
        scenario = model.model_validate(data)
    except ValidationError as exc:
        problems = translate_errors(exc, model, data, overridden)
        registry = default_registry() if registry is None else registry
        raise InputError(source, problems + _later_problems(data, problems, model, registry)) from None
    registry = default_registry() if registry is None else registry
    problems = check_counts(scenario, registry)  # before any name is generated
    if problems:
        raise InputError(source, problems)
    resolve_mechanisms(scenario, registry)
    ns = Namespaces(scenario)
    problems = check_references(scenario, ns)
    if problems:
        raise InputError(source, problems)
    problems = check_budgets(scenario, ns, registry)
    if problems:
        raise InputError(source, problems)
    scenario._source = source
    return scenario


# A list section's items or a mechanism can be left out when invalid; the sections whose
# references may then be missing (a workload left out has no VMs for a vm_crash fault, an
# operation or a mechanism to name) are not cross-checked.
_PRUNABLE = ("clusters", "standalone_hosts", "workloads", "faults", "operations")
_DEPENDENTS = {"clusters": {"clusters", "standalone_hosts", "operations", "mechanisms"},
               "standalone_hosts": {"operations", "mechanisms"},
               "workloads": {"faults", "operations", "mechanisms"},
               "faults": {"mechanisms"}, "operations": set(), "mechanisms": {"mechanisms"},
               "": set()}
_OPTIONAL = ("description", "seed", "sample_interval")  # top-level keys with defaults


def _later_problems(data: dict, problems: list[Problem], model: type[BaseModel], registry: Registry) -> list[Problem]:
    """Cross-reference problems of a file with schema problems, reported with them.

    The invalid parts are left out (a list item of ``_PRUNABLE``, a mechanism's section, an
    optional or unknown top-level key); if what remains validates, its count limits and
    references are checked, dropping the sections that may depend on a part left out
    (``_DEPENDENTS``), and each problem's list index is the file's. A problem elsewhere (in
    ``infrastructure``, ``duration``) leaves nothing to check: none are added."""
    removed: dict[str, set[Any]] = {}
    for problem in problems:
        parts = problem.path.split(".") if problem.path else []
        head = parts[0] if parts else None
        if head in _PRUNABLE and len(parts) > 1 and parts[1].isdigit() and isinstance(data.get(head), list):
            removed.setdefault(head, set()).add(int(parts[1]))
        elif head == "mechanisms" and len(parts) > 1 and isinstance(data.get("mechanisms"), dict):
            removed.setdefault("mechanisms", set()).add(parts[1])
        elif head is not None and (head in _OPTIONAL or head not in model.model_fields):
            removed.setdefault("", set()).add(head)
        else:
            return []
    trimmed = {k: v for k, v in data.items() if k not in removed.get("", ())}
    kept: dict[str, list[int]] = {}
    for head, items in removed.items():
        if head == "mechanisms":
            trimmed[head] = {k: v for k, v in data[head].items() if k not in items}
        elif head:
            kept[head] = [i for i in range(len(data[head])) if i not in items]
            trimmed[head] = [data[head][i] for i in kept[head]]
    try:
        scenario = model.model_validate(trimmed)
    except ValidationError:
        return []  # a rule across items (unique names) still fails: nothing more to say
    later = check_counts(scenario, registry)
    if not later:
        resolve_mechanisms(scenario, registry)
        later = check_references(scenario, Namespaces(scenario))
    blocked = set().union(*(_DEPENDENTS[h] for h in removed))
    out: list[Problem] = []
    for problem in later:
        parts = problem.path.split(".")
        if parts[0] in blocked:
            continue
        if parts[0] in kept and len(parts) > 1 and parts[1].isdigit():
            parts[1] = str(kept[parts[0]][int(parts[1])])
        out.append(Problem(".".join(parts), problem.message))
    return out


def dump_resolved(scenario: Scenario) -> str:
    """The scenario with every default filled, as YAML (quantities in s, bytes, bytes/s, 1/s)."""
    data = scenario.model_dump(mode="json")
    # An absent mechanism is disabled; leaving it out reads the same and loads the same.
    data["mechanisms"] = {k: v for k, v in data["mechanisms"].items() if v is not None}
    header = "# Resolved scenario: every default filled; durations in s, sizes in bytes, rates in bytes/s.\n"
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)


# --------------------------------------------------------------------------- pydantic errors
def _show(value: Any) -> str:
    """``show``, with YAML's spelling of booleans."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return show(value)


_KIND_OF = {
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "float_type": "a number",
    "finite_number": "a finite number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def _quoted_list(text: str) -> list[str]:
    return re.findall(r"'([^']*)'", text)


def _walk(model: type[BaseModel], data: Any, loc: tuple[Any, ...]) -> tuple[list[Any], type[BaseModel] | None, Any]:
    """Pydantic's ``loc`` as the user's path: union tags and validator names removed.

    Also returns the model in which the last element was looked up (for "did you mean")
    and the annotation reached.
    """
    tp: Any = model
    cur: Any = data
    path: list[Any] = []
    owner: type[BaseModel] | None = None
    for el in loc:
        if el == "[key]":
            continue
        members = tagged_members(tp) if tp is not None else None
        if members is not None and isinstance(el, str) and el in members:
            tp = members[el]  # the tag pydantic puts in the path of a discriminated union
            continue
        cls = model_class(tp) if tp is not None else None
        item = sequence_item(tp) if tp is not None else None
        value_tp = mapping_value(tp) if tp is not None else None
        if cls is not None and isinstance(el, str):
            owner = cls
            field = cls.model_fields.get(el)
            tp = field.annotation if field is not None else None
        elif item is not None and isinstance(el, int):
            tp = item
        elif value_tp is not None:
            tp = value_tp
        elif tp is not None:
            continue  # a scalar's union member names ("float", "literal['latest']")
        path.append(el)
        if isinstance(cur, dict):
            cur = cur.get(el)
        elif isinstance(cur, list) and isinstance(el, int) and 0 <= el < len(cur):
            cur = cur[el]
        else:
            cur = None
    return path, owner, tp


def _message(err: dict[str, Any], owner: type[BaseModel] | None, tp: Any) -> tuple[str, str]:
    """(extra path, message) for one pydantic error."""
    kind = err["type"]
    value = err.get("input")
    ctx = err.get("ctx") or {}
    got = f", got {_show(value)}"
    if kind == "missing":
        return "", "expected a value, got nothing"
    if kind == "extra_forbidden":
        return "", unknown_key(err["loc"][-1], owner.model_fields if owner is not None else ())
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        field = str(ctx.get("discriminator", "'kind'")).strip("'")
        tags = _quoted_list(str(ctx.get("expected_tags", ""))) or list(tagged_members(tp) or ())
        found = show(ctx["tag"]) if "tag" in ctx else "nothing"
        return field, f"expected one of {', '.join(tags)}, got {found}"
    if kind == "literal_error":
        return "", f"expected one of {', '.join(_quoted_list(str(ctx.get('expected', ''))))}{got}"
    if kind in ("value_error", "assertion_error"):
        exc = ctx.get("error")
        if isinstance(exc, FieldError):
            return exc.field, exc.message
        text = str(exc) if exc is not None else err["msg"]
        # A model's own validator that blames the whole mapping has nothing to quote; a value
        # (even a mapping given where a quantity belongs) is always quoted.
        if isinstance(value, dict) and model_class(tp) is not None:
            return "", text
        return "", text + got
    if kind in _KIND_OF:
        return "", f"expected {_KIND_OF[kind]}{got}"
    if kind in ("too_short", "too_long"):
        bound = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        word = "at least" if kind == "too_short" else "at most"
        return "", f"expected {word} {bound} items, got {ctx.get('actual_length', '?')}"
    bounds = {"greater_than": "greater than", "greater_than_equal": "at least", "less_than": "less than",
              "less_than_equal": "at most"}
    if kind in bounds:
        limit = next(iter(ctx.values()), "?")
        return "", f"expected a value {bounds[kind]} {limit}{got}"
    return "", f"expected a valid value ({err['msg']}){got}"


def translate_errors(
    exc: ValidationError,
    model: type[BaseModel],
    data: Any,
    overridden: Iterable[str] = (),
) -> list[Problem]:
    """One ``Problem(dotted.path, "expected ..., got ...")`` per pydantic error, in order, no repeats.

    A problem at or under an overridden path says ``(from --set)``.
    """
    overridden = list(overridden)
    found: list[tuple[tuple[int, ...], Problem]] = []
    seen: set[Problem] = set()
    order = _KeyOrder()
    errors = exc.errors()
    # A misspelt key is also a missing one: report it once, as the unknown key with its suggestion.
    suggested: set[str] = set()
    for err in errors:
        if err["type"] == "extra_forbidden":
            path, owner, _ = _walk(model, data, tuple(err["loc"]))
            close = difflib.get_close_matches(str(path[-1]), list(owner.model_fields if owner else ()), n=1)
            if close:
                suggested.add(".".join(str(p) for p in [*path[:-1], close[0]]))
    for err in errors:
        path, owner, tp = _walk(model, data, tuple(err["loc"]))
        extra, message = _message(err, owner, tp)
        full = path + ([extra] if extra else [])
        dotted = ".".join(str(p) for p in full)
        if err["type"] == "missing" and dotted in suggested:
            continue
        if any(dotted == o or dotted.startswith(o + ".") for o in overridden):
            message += " (from --set)"
        problem = Problem(dotted, message)
        if problem not in seen:
            seen.add(problem)
            found.append((order.position(data, full), problem))
    # In the order of the file (a missing key first among its siblings); pydantic puts unknown keys last.
    found.sort(key=lambda item: item[0])
    return [problem for _, problem in found]


class _KeyOrder:
    """Where a path is in the file: key and item indices along the way (-1 for a missing key).

    Each mapping's key order is indexed once, so reporting n unknown keys is linear in n.
    """

    def __init__(self) -> None:
        self._index: dict[int, dict[Any, int]] = {}

    def _of(self, mapping: dict) -> dict[Any, int]:
        index = self._index.get(id(mapping))
        if index is None:
            index = self._index[id(mapping)] = {}
            for i, k in enumerate(mapping):
                try:
                    index.setdefault(k, i)
                except TypeError:
                    continue  # an unhashable key cannot be looked up anyway
        return index

    def position(self, data: Any, path: list[Any]) -> tuple[int, ...]:
        key: list[int] = []
        cur = data
        for el in path:
            if isinstance(cur, dict):
                try:
                    key.append(self._of(cur).get(el, -1))
                except TypeError:
                    key.append(-1)
                cur = cur.get(el) if key[-1] >= 0 else None
            elif isinstance(cur, list) and isinstance(el, int):
                key.append(el)
                cur = cur[el] if 0 <= el < len(cur) else None
            else:
                key.append(-1)
                cur = None
        return tuple(key)
