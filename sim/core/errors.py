"""Input errors: every problem with a user's file, collected and reported at once.

A problem is one line: ``FILE: dotted.path: expected ..., got ...``. The CLI prints
them and exits with code 2; nothing here ever reaches the user as a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, at a dotted path ("" for the whole file)."""

    path: str
    message: str

    def format(self, source: str) -> str:
        return f"{source}: {self.path}: {self.message}" if self.path else f"{source}: {self.message}"


class InputError(Exception):
    """Invalid input (scenario, sweep file, override, path): exit code 2."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [p.format(self.source) for p in self.problems]


def show(value: object) -> str:
    """How a found value is quoted in a message."""
    if isinstance(value, str):
        return f'"{value}"'
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


class OperationFailed(Exception):
    """Raised by an operation handler: the operation is recorded as failed with this reason."""
