"""Line numbers for the values of a TOML document.

``tomllib`` gives values but no positions, and an error that says only "quantize.types[1] is
wrong" makes the user hunt for it. This module walks the document's structure (tables, arrays of
tables, dotted keys, inline tables, arrays) without building values, and maps every path such as
``("quantize", "types", 1)`` to the 1-based line where it starts. It runs only after ``tomllib``
has accepted the text, so it may assume the syntax is valid.
"""

from __future__ import annotations

import re

Path = tuple[str | int, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.lines: dict[Path, int] = {}
        self._array_tables: dict[Path, int] = {}

    @property
    def line(self) -> int:
        return self.text.count("\n", 0, self.pos) + 1

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos:self.pos + n]

    def skip_space(self, newlines: bool) -> None:
        """Skip blanks and comments; newlines too when inside brackets."""
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if c in " \t\r" or (newlines and c == "\n"):
                self.pos += 1
            elif c == "#":
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            else:
                return

    def key(self) -> list[str]:
        """A possibly dotted key: ``a.b."c d"``."""
        parts = []
        while True:
            self.skip_space(False)
            c = self.peek()
            if c in "\"'":
                parts.append(self.string())
            else:
                m = _BARE_KEY.match(self.text, self.pos)
                if not m:
                    break
                parts.append(m.group())
                self.pos = m.end()
            self.skip_space(False)
            if self.peek() != ".":
                break
            self.pos += 1
        return parts

    def string(self) -> str:
        """Skip a string of any of TOML's four kinds and return its raw body."""
        quote = self.peek()
        if self.peek(3) == quote * 3:
            end = self.text.find(quote * 3, self.pos + 3)
            # A multi-line string may end with up to two more quote characters.
            while self.text[end + 3:end + 4] == quote:
                end += 1
            body = self.text[self.pos + 3:end]
            self.pos = end + 3
            return body
        i = self.pos + 1
        while self.text[i] != quote:
            i += 2 if quote == '"' and self.text[i] == "\\" else 1
        body = self.text[self.pos + 1:i]
        self.pos = i + 1
        return body

    def value(self, path: Path) -> None:
        self.lines.setdefault(path, self.line)
        c = self.peek()
        if c in "\"'":
            self.string()
        elif c == "[":
            self.pos += 1
            index = 0
            while True:
                self.skip_space(True)
                if self.peek() == "]":
                    self.pos += 1
                    return
                self.value(path + (index,))
                index += 1
                self.skip_space(True)
                if self.peek() == ",":
                    self.pos += 1
        elif c == "{":
            self.pos += 1
            while True:
                self.skip_space(True)
                if self.peek() == "}":
                    self.pos += 1
                    return
                self.keyval(path)
                self.skip_space(True)
                if self.peek() == ",":
                    self.pos += 1
        else:
            m = re.compile(r"[^,\]\}\s#]+").match(self.text, self.pos)
            self.pos = m.end() if m else self.pos + 1

    def keyval(self, table: Path) -> None:
        line = self.line
        parts = self.key()
        for i in range(1, len(parts) + 1):
            self.lines.setdefault(table + tuple(parts[:i]), line)
        self.skip_space(False)
        self.pos += 1  # "="
        self.skip_space(False)
        self.value(table + tuple(parts))

    def document(self) -> dict[Path, int]:
        table: Path = ()
        while True:
            self.skip_space(True)
            if self.pos >= len(self.text):
                return self.lines
            if self.peek(2) == "[[":
                line = self.line
                self.pos += 2
                name = tuple(self.key())
                self.pos += 2
                index = self._array_tables.get(name, -1) + 1
                self._array_tables[name] = index
                table = name + (index,)
                self.lines.setdefault(name, line)
                self.lines[table] = line
            elif self.peek() == "[":
                line = self.line
                self.pos += 1
                table = tuple(self.key())
                self.pos += 1
                self.lines[table] = line
            else:
                self.keyval(table)


def value_lines(text: str) -> dict[Path, int]:
    """Map each path in a valid TOML document to the line where its key or element starts."""
    return _Scanner(text).document()


def line_of(lines: dict[Path, int], path: Path) -> int | None:
    """The line of ``path``, or of its nearest ancestor that the document spells out."""
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def field_name(path: Path) -> str:
    """A path as a user writes it in an error: ``quantize.types[1]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"
