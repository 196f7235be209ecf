"""Where each key of a TOML document is written: key path → line number, for errors that name a line.

The standard `tomllib` returns plain data without positions, and an error such as "unknown predicate"
is useless to a supervisor without a line. This scanner walks the same text once more, after `tomllib`
has accepted it, and records the line of every table header and every key, including keys inside
inline tables and arrays of tables. It only has to be right for valid TOML, which keeps it small.

Paths use the same shape as the parsed data: `("rule", 2, "when", "intent")` is the `intent` key of
the `when` table of the third `[[rule]]`.
"""

from __future__ import annotations

from collections.abc import Mapping

Path = tuple[str | int, ...]

_BARE_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}


def key_lines(text: str) -> dict[Path, int]:
    """Line (1-based) of every key and table header in `text`, which must be valid TOML."""
    scanner = _Scanner(text)
    scanner.document()
    return scanner.lines


def line_of(lines: Mapping[Path, int], path: Path) -> int | None:
    """The line of `path`, or of its nearest written ancestor (a key inside an inline table, say)."""
    for end in range(len(path), 0, -1):
        found = lines.get(path[:end])
        if found is not None:
            return found
    return None


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines: dict[Path, int] = {}
        self.table: Path = ()
        self.aot_counts: dict[Path, int] = {}

    # -- characters -------------------------------------------------------------------------------

    def peek(self, ahead: int = 0) -> str:
        index = self.pos + ahead
        return self.text[index] if index < len(self.text) else ""

    def advance(self, count: int = 1) -> None:
        for _ in range(count):
            if self.pos < len(self.text):
                if self.text[self.pos] == "\n":
                    self.line += 1
                self.pos += 1

    def skip_blank(self, *, newlines: bool) -> None:
        """Skip spaces and comments, and line breaks too when `newlines`."""
        while self.pos < len(self.text):
            char = self.peek()
            if char in " \t\r" or (newlines and char == "\n"):
                self.advance()
            elif char == "#":
                while self.pos < len(self.text) and self.peek() != "\n":
                    self.advance()
            else:
                return

    # -- structure --------------------------------------------------------------------------------

    def document(self) -> None:
        while True:
            self.skip_blank(newlines=True)
            if self.pos >= len(self.text):
                return
            if self.peek() == "[":
                self.header()
            else:
                self.key_value(self.table)

    def header(self) -> None:
        line = self.line
        double = self.peek(1) == "["
        self.advance(2 if double else 1)
        keys = self.key()
        self.skip_blank(newlines=False)
        self.advance(2 if double else 1)
        parent = self.resolve(keys[:-1])
        if double:
            array = (*parent, keys[-1])
            index = self.aot_counts.get(array, 0)
            self.aot_counts[array] = index + 1
            self.lines.setdefault(array, line)
            self.table = (*array, index)
        else:
            self.table = self.resolve(keys)
        self.lines.setdefault(self.table, line)

    def resolve(self, keys: tuple[str, ...]) -> Path:
        """Header keys → data path: `[rule.when]` after `[[rule]]` means the *last* rule's `when`."""
        path: Path = ()
        for key in keys:
            path = (*path, key)
            count = self.aot_counts.get(path)
            if count:
                path = (*path, count - 1)
        return path

    def key_value(self, table: Path) -> None:
        line = self.line
        keys = self.key()
        path = (*table, *keys)
        for end in range(len(table) + 1, len(path) + 1):
            self.lines.setdefault(path[:end], line)
        self.skip_blank(newlines=False)
        self.advance()  # the "="
        self.skip_blank(newlines=False)
        self.value(path)

    def key(self) -> tuple[str, ...]:
        parts: list[str] = []
        while True:
            self.skip_blank(newlines=False)
            char = self.peek()
            if char in "\"'":
                parts.append(self.string())
            else:
                start = self.pos
                while self.peek() and self.peek() in _BARE_KEY_CHARS:
                    self.advance()
                parts.append(self.text[start : self.pos])
            self.skip_blank(newlines=False)
            if self.peek() != ".":
                return tuple(parts)
            self.advance()

    def value(self, path: Path) -> None:
        char = self.peek()
        if char in "\"'":
            self.string()
        elif char == "[":
            self.array(path)
        elif char == "{":
            self.inline_table(path)
        else:
            while self.peek() and self.peek() not in ",]}\n#":
                self.advance()

    def array(self, path: Path) -> None:
        self.advance()
        index = 0
        while True:
            self.skip_blank(newlines=True)
            char = self.peek()
            if not char or char == "]":
                self.advance()
                return
            if char == ",":
                self.advance()
                continue
            self.lines.setdefault((*path, index), self.line)
            self.value((*path, index))
            index += 1

    def inline_table(self, path: Path) -> None:
        self.advance()
        while True:
            self.skip_blank(newlines=True)
            char = self.peek()
            if not char or char == "}":
                self.advance()
                return
            if char == ",":
                self.advance()
                continue
            self.key_value(path)

    def string(self) -> str:
        quote = self.peek()
        if self.text.startswith(quote * 3, self.pos):
            self.advance(3)
            start = self.pos
            end = self.text.find(quote * 3, self.pos)
            while end != -1 and quote == '"' and _escaped(self.text, end):
                end = self.text.find(quote * 3, end + 1)
            end = len(self.text) if end == -1 else end
            # A closing delimiter may carry one or two extra quotes that belong to the content.
            while self.text.startswith(quote, end + 3):
                end += 1
            self.advance(end - start + 3)
            return self.text[start:end]
        self.advance()
        chars: list[str] = []
        while self.pos < len(self.text):
            char = self.peek()
            if char == quote or char == "\n":
                self.advance()
                break
            if char == "\\" and quote == '"':
                chars.append(self.escape())
                continue
            chars.append(char)
            self.advance()
        return "".join(chars)

    def escape(self) -> str:
        self.advance()
        char = self.peek()
        self.advance()
        if char in _ESCAPES:
            return _ESCAPES[char]
        if char in "uU":
            width = 4 if char == "u" else 8
            digits = self.text[self.pos : self.pos + width]
            self.advance(width)
            try:
                return chr(int(digits, 16))
            except ValueError:
                return ""
        return char


def _escaped(text: str, index: int) -> bool:
    """Is the character at `index` preceded by an odd number of backslashes?"""
    count = 0
    while index - count - 1 >= 0 and text[index - count - 1] == "\\":
        count += 1
    return count % 2 == 1
