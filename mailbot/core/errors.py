"""Errors the pure core raises about supervisor-edited files, phrased for the people who edit them."""

from __future__ import annotations


class RuleFileError(Exception):
    """One mistake in a rules file, located so a supervisor can go straight to it.

    `line` is None when the mistake belongs to the file as a whole (a missing file, no rules at all);
    `key` is None when no single key is at fault (a TOML syntax error).
    """

    def __init__(self, path: str, line: int | None, key: str | None, message: str) -> None:
        super().__init__(path, line, key, message)
        self.path = path
        self.line = line
        self.key = key
        self.message = message

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"
