"""``--set PATH=VALUE`` overrides, applied to the raw scenario mapping before validation.

A path is dotted, with list items by index (``faults.0.mtbf``,
``mechanisms.<key>.<field>``, ``seed``); the value parses as YAML
(``500ms`` stays a string for the unit parser, ``3`` is an int, ``[a, b]`` a list).
The path is checked against the schema models, not against the file, so any key the
schema allows can be set whether or not the file gives it; missing intermediate
mappings are created (``mechanisms.<key>.enabled=false`` creates the section).
A path the schema does not allow (an unknown key at any level, an index out of range,
an index into something that is not a list, a key below a single value) is an input
error reported with source ``--set``.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from sim.core.errors import InputError, Problem, show
from sim.scenario.safe_yaml import YamlProblem, load_text
from sim.scenario.schema import mapping_value, model_class, sequence_item, tagged_members

__all__ = ["parse_override", "parse_overrides", "apply_overrides", "unknown_key", "Override"]

Override = tuple[str, Any]
"""A parsed override: (dotted path, value already parsed from YAML)."""


def unknown_key(key: object, allowed: Iterable[str]) -> str:
    """``unknown key "x" (did you mean "y"?)``, or the allowed keys when none is close."""
    allowed = list(allowed)
    close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
    if close:
        return f'unknown key {show(str(key))} (did you mean "{close[0]}"?)'
    if allowed:
        return f'unknown key {show(str(key))} (expected one of {", ".join(allowed)})'
    return f"unknown key {show(str(key))} (nothing is allowed here)"


def brief(value: object, width: int = 60) -> str:
    """``show(value)``, shortened when long (a pasted document must not become one huge line)."""
    text = show(value)
    if len(text) <= width:
        return text
    return f"{text[:width]}… ({len(str(value))} characters)"


def parse_override(text: str) -> Override:
    """``PATH=VALUE`` -> (path, value parsed as YAML). Raises InputError("--set", ...)."""
    path, sep, raw = text.partition("=")
    path = path.strip()
    if not sep or not path:
        raise InputError("--set", [Problem(text, f"expected PATH=VALUE like seed=3, got {show(text)}")])
    if any(not seg for seg in path.split(".")):
        raise InputError("--set", [Problem(path, f"expected a dotted path like faults.0.mtbf, got {show(path)}")])
    try:
        value = load_text(raw) if raw.strip() else None
    except YamlProblem as exc:
        detail = f" ({exc})" if exc.limit else ""
        raise InputError("--set", [Problem(path, f"expected a YAML value, got {brief(raw)}{detail}")]) from None
    return path, value


def parse_overrides(texts: Iterable[str | Override]) -> list[Override]:
    """Every override parsed; all malformed ones reported together."""
    out: list[Override] = []
    problems: list[Problem] = []
    for item in texts:
        if isinstance(item, str):
            try:
                out.append(parse_override(item))
            except InputError as exc:
                problems.extend(exc.problems)
        else:
            path, value = item
            out.append((str(path), value))
    if problems:
        raise InputError("--set", problems)
    return out


def apply_overrides(
    data: Mapping[str, Any],
    overrides: Iterable[str | Override],
    model: type[BaseModel],
    source: str = "--set",
) -> dict[str, Any]:
    """A deep copy of ``data`` with every override set; raises InputError(source, problems).

    ``overrides`` holds ``PATH=VALUE`` strings or (path, value) pairs (a sweep's grid);
    later ones win. ``model`` is the scenario class (``build_scenario_model(registry)``).
    """
    problems: list[Problem] = []
    root = copy.deepcopy(dict(data))
    for item in overrides:
        try:
            ((path, value),) = parse_overrides([item])
        except InputError as exc:
            problems.extend(exc.problems)
            continue
        message = _set(root, path.split("."), copy.deepcopy(value), model)
        if message is not None:
            problems.append(Problem(path, message))
    if problems:
        raise InputError(source, problems)
    return root


def _index(segment: str, container: Any, where: str) -> tuple[int | None, str | None]:
    if not segment.isdigit():
        return None, f"expected a list index (0, 1, ...) after {where}, got {show(segment)}"
    index = int(segment)
    size = len(container) if isinstance(container, list) else 0
    if index >= size:
        if size == 0:
            return None, f"expected an index of an existing item, got {index} ({where} has no items)"
        return None, f"expected an index from 0 to {size - 1}, got {index}"
    return index, None


def _set(root: dict[str, Any], segments: list[str], value: Any, model: type[BaseModel]) -> str | None:
    """Sets ``value`` at ``segments`` in ``root``; the problem's message, or None when done."""
    tp: Any = model
    cur: Any = root
    for depth, seg in enumerate(segments):
        last = depth == len(segments) - 1
        where = ".".join(segments[:depth]) or "the top level"
        members = tagged_members(tp) if tp is not None else None
        if members is not None:
            # A list item told apart by its kind: the kind the item has decides its keys.
            kind = cur.get("kind") if isinstance(cur, dict) else None
            tp = members.get(kind) if isinstance(kind, str) else None
            if tp is None and seg != "kind" and not isinstance(cur, dict):
                return f"expected a mapping at {where}, got {show(cur)}"
        cls = model_class(tp) if tp is not None else None
        item = sequence_item(tp) if tp is not None else None
        value_tp = mapping_value(tp) if tp is not None else None

        if cls is not None or value_tp is not None or (tp is None and isinstance(cur, dict)):
            if cls is not None and seg not in cls.model_fields:
                return unknown_key(seg, cls.model_fields)
            if not isinstance(cur, dict):
                return f"expected {where} to be a mapping, got {show(cur)}"
            next_tp = cls.model_fields[seg].annotation if cls is not None else value_tp
            if last:
                cur[seg] = value
                return None
            child = cur.get(seg)
            if child is None and _is_mapping_type(next_tp):
                child = cur[seg] = {}
            cur, tp = child, next_tp
        elif item is not None or (tp is None and isinstance(cur, list)):
            index, problem = _index(seg, cur, where)
            if problem is not None:
                return problem
            if last:
                cur[index] = value
                return None
            cur, tp = cur[index], item
        elif tp is None:
            return f"expected {where} to be a mapping or a list, got {show(cur)}"
        else:
            return f"expected nothing after {where} (a single value), got {show(seg)}"
    return None


def _is_mapping_type(tp: Any) -> bool:
    return tp is not None and (model_class(tp) is not None or mapping_value(tp) is not None)
