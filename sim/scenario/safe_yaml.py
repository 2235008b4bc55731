"""Reading YAML from users safely: bounded files, bounded nesting, bounded alias expansion.

``read_text`` refuses what is not a regular file (a FIFO would block for ever,
``/dev/zero`` never ends) and files above ``DCSIM_MAX_FILE_BYTES``, before parsing.
``load_text`` parses with PyYAML's safe loader, plus: a key given twice in one
mapping is an error; nesting deeper than ``DCSIM_MAX_DEPTH`` is refused while
composing (PyYAML's recursion would otherwise end in a RecursionError); a document
whose aliases expand to more than ``DCSIM_MAX_NODES`` nodes ("billion laughs"), or
refer to themselves, is refused before anything walks it. Every problem is an
``InputError`` with a line and column where the parser knows them.
"""

from __future__ import annotations

import os
import stat
from typing import Any

import yaml

from sim.core.errors import InputError, Problem, show
from sim.scenario.limits import LIMITS, limit, number

__all__ = ["read_text", "load_text", "YamlProblem"]


class YamlProblem(Exception):
    """What is wrong with a YAML text, as ``line L, column C: ...`` (or without a position).

    ``limit`` is true when the text is well-formed but over a limit (depth, nodes).
    """

    def __init__(self, message: str, limit: bool = False):
        super().__init__(message)
        self.limit = limit


class _LimitError(yaml.YAMLError):
    def __init__(self, problem: str, mark):
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark


class _Loader(yaml.SafeLoader):
    """The safe loader, except that a key given twice is an error and nesting is bounded."""

    def __init__(self, stream: str, max_depth: int):
        super().__init__(stream)
        self._depth = 0
        self._max_depth = max_depth

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > self._max_depth:
                mark = self.peek_event().start_mark
                raise _LimitError(
                    f"expected at most {self._max_depth} levels of nesting (set {LIMITS['depth'].env} "
                    f"to raise the limit), got more",
                    mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _mapping_without_duplicates(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in seen
        except TypeError:
            continue  # unhashable: the constructor below reports it
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"found duplicate key {show(key)}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def _expanded_size(root: yaml.Node, cap: int) -> int | None:
    """Nodes in the document with every alias expanded (stops counting past ``cap``); None if recursive."""
    memo: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int | None:
        key = id(node)
        if key in memo:
            return memo[key]
        if key in active:
            return None
        total = 1
        if isinstance(node, (yaml.SequenceNode, yaml.MappingNode)):
            active.add(key)
            children = node.value if isinstance(node, yaml.SequenceNode) else [n for kv in node.value for n in kv]
            for child in children:
                n = size(child)
                if n is None:
                    return None
                total += n
                if total > cap:
                    break
            active.discard(key)
        memo[key] = total
        return total

    return size(root)  # recursion depth is bounded by the nesting limit


def _position(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"line {line}, column {column}"


def _problem(exc: yaml.YAMLError, text: str) -> str:
    if isinstance(exc, yaml.reader.ReaderError):
        char = exc.character
        code = f"#x{ord(char):04x}" if isinstance(char, str) else f"#x{char:02x}"
        return f"{_position(text, exc.position)}: unacceptable character {code} ({exc.reason})"
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is not None and problem:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return str(exc).replace("\n", " ")


def load_text(text: str) -> Any:
    """The YAML document in ``text``; raises YamlProblem (its message is one line)."""
    max_depth = int(limit("depth"))
    try:
        loader = _Loader(text, max_depth)  # the reader checks every character here
    except yaml.YAMLError as exc:
        raise YamlProblem(_problem(exc, text)) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        cap = int(limit("nodes"))
        size = _expanded_size(node, cap)
        if size is None:
            raise YamlProblem(f"{_position(text, node.start_mark.index)}: expected data without an alias "
                              f"inside its own anchor, got a recursive alias", limit=True)
        if size > cap:
            raise YamlProblem(f"expected at most {number(cap)} YAML nodes with aliases expanded (set "
                              f"{LIMITS['nodes'].env} to raise the limit), got more", limit=True)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise YamlProblem(_problem(exc, text), limit=isinstance(exc, _LimitError)) from None
    except RecursionError:  # pragma: no cover - the depth limit comes first
        raise YamlProblem("expected less deeply nested YAML, got too deep a document") from None
    finally:
        loader.dispose()


_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def read_text(path: str | os.PathLike, source: str) -> str:
    """The UTF-8 text of a regular file no larger than ``DCSIM_MAX_FILE_BYTES``; InputError otherwise."""

    def refuse(message: str) -> InputError:
        return InputError(source, [Problem("", message)])

    if not str(path):
        raise refuse('expected a file name, got ""')
    try:
        # Non-blocking: opening a FIFO must not wait for a writer; fstat then refuses it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (FileNotFoundError, NotADirectoryError):
        raise refuse("no such file") from None
    except PermissionError:
        raise refuse("cannot be read (permission denied)") from None
    except OSError as exc:
        raise refuse(f"cannot be read ({exc.strerror or exc})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        if stat.S_ISDIR(st.st_mode):
            raise refuse("expected a file, got a directory")
        kind = next((name for test, name in _KINDS if test(st.st_mode)), "a special file")
        raise refuse(f"expected a regular file, got {kind}")
    with os.fdopen(fd, "rb") as fh:
        cap = int(limit("file_bytes"))
        too_big = (f"expected a file of at most {number(cap)} bytes (set {LIMITS['file_bytes'].env} to raise "
                   f"the limit), got {{}}")
        if st.st_size > cap:
            raise refuse(too_big.format(f"{number(st.st_size)} bytes"))
        try:
            data = fh.read(cap + 1)
        except OSError as exc:
            raise refuse(f"cannot be read ({exc.strerror or exc})") from None
        if len(data) > cap:
            raise refuse(too_big.format("more"))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise refuse("expected UTF-8 text") from None
