"""Error types shared by every stage.

The CLI maps them to exit codes (2 for configuration/usage, 1 for failures while running) and prints their
message to stderr, so a message must name the file, record or key at fault and what was expected.
"""

from __future__ import annotations


class IconoscopeError(Exception):
    """A failure while running (exit code 1)."""

    exit_code = 1


class ConfigError(IconoscopeError):
    """A wrong or missing setting in iconoscope.toml or on the command line (exit code 2)."""

    exit_code = 2


class InputError(IconoscopeError):
    """Bad input data: names the source, the line or record, and the problem."""

    def __init__(self, source: str, problem: str, *, line: int | None = None, record: str | None = None):
        self.source = source
        self.line = line
        self.record = record
        self.problem = problem
        where = source
        if line is not None:
            where += f", line {line}"
        if record is not None:
            where += f", record {record!r}"
        super().__init__(f"{where}: {problem}")
