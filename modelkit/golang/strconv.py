"""The few pieces of Go's standard library whose exact behaviour Ollama's wire formats depend on.

Ollama is written in Go, and two of its text formats lean on Go's definitions rather than on
anything written down: its Modelfile parser keeps a character only if ``strconv.IsPrint``
accepts it, ``/api/show`` prints parameter values with ``%#v`` (so strings come back in
``strconv.Quote`` form), and its TEMPLATE's string constants are read by ``strconv.Unquote``.
Reproducing those rules here, once, lets the Modelfile renderer refuse what the parser would
silently drop, lets the registry read ``show`` output exactly, and lets modelkit's Go-template
evaluator read literals as Go does.
"""

from __future__ import annotations

import unicodedata

_ESCAPES = {"\a": "a", "\b": "b", "\f": "f", "\n": "n", "\r": "r", "\t": "t", "\v": "v"}
_UNESCAPES = {v: k for k, v in _ESCAPES.items()} | {"\\": "\\", '"': '"', "'": "'"}


def is_go_print(ch: str) -> bool:
    """Whether Go's ``unicode.IsPrint`` (and ``strconv.IsPrint``) accepts ``ch``.

    Go calls printable the letters, marks, numbers, punctuation and symbols (categories L, M,
    N, P, S) plus the ASCII space. Python's Unicode tables may be older than Go's: a character
    Python does not know yet counts as not printable, which errs on the side of refusing.
    """
    return ch == " " or unicodedata.category(ch)[0] in "LMNPS"


def go_quote(s: str) -> str:
    """``strconv.Quote(s)``: a double-quoted Go string literal, as ``%#v`` prints strings."""
    out = ['"']
    for ch in s:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif is_go_print(ch):
            out.append(ch)
        elif ch in _ESCAPES:
            out.append("\\" + _ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            out.append("\\ufffd")  # not a valid rune: Go writes the replacement character
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def go_unquote(literal: str) -> str:
    """``strconv.Unquote`` for a double-quoted (or raw) Go string literal; raises ``ValueError``.

    ``\\x`` and octal escapes stand for bytes, not characters, so the result is assembled as
    UTF-8 bytes (:func:`go_unquote_bytes`) and decoded at the end, as Go does.
    """
    return go_unquote_bytes(literal).decode("utf-8", "replace")


def go_unquote_bytes(literal: str) -> bytes:
    """``strconv.Unquote`` to bytes, for a double-quoted or a raw (backquoted) Go string literal.

    Go strings are bytes, and a Go template's string constants are too: this is what both
    Ollama's wire formats and the Go-template evaluator read literals with. As in Go, an octal
    escape has exactly three digits (``\\0`` alone is an error, ``\\000`` is NUL), ``\\'`` is
    not an escape in a double-quoted string, a ``\\u`` escape must name a valid character, and a
    raw string loses its carriage returns. Raises ``ValueError``.
    """
    if len(literal) >= 2 and literal[0] == literal[-1] == "`":
        body = literal[1:-1]
        if "`" in body:
            raise ValueError("backquote inside a raw Go string literal")
        return body.replace("\r", "").encode("utf-8", "surrogatepass")
    if len(literal) < 2 or literal[0] != '"' or literal[-1] != '"':
        raise ValueError(f"not a double-quoted Go string: {literal[:40]!r}")
    body = literal[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        if body[i] == "\n":
            raise ValueError("unescaped '\\n' inside a Go string literal")
        piece, i = _unquote_char(body, i, '"')
        out += piece
    return bytes(out)


def go_unquote_char(literal: str) -> int:
    """The value of a Go character literal (``'a'``, ``'\\n'``, ``'\\xff'``): what ``text/template`` reads.

    Go's parser takes ``strconv.UnquoteChar`` of what follows the opening quote and insists that
    only the closing quote is left. Raises ``ValueError``.
    """
    if len(literal) < 3 or literal[0] != "'" or literal[-1] != "'":
        raise ValueError(f"malformed Go character constant: {literal[:40]!r}")
    body = literal[1:-1]
    value, end = (_escape if body[0] == "\\" else _plain)(body, 0, "'")
    if end != len(body):
        raise ValueError(f"malformed Go character constant: {literal[:40]!r}")
    return value


def _unquote_char(body: str, i: int, quote: str) -> tuple[bytes, int]:
    """One character of a quoted literal at ``body[i]`` as bytes, and where the next one starts.

    An escape for a byte (``\\x``, octal) gives that byte; a character gives its UTF-8.
    """
    if body[i] == "\\":
        value, end = _escape(body, i, quote)
        return (bytes([value]) if body[i + 1] in "x01234567" else chr(value).encode()), end
    value, end = _plain(body, i, quote)
    return chr(value).encode("utf-8", "surrogatepass"), end


def _plain(body: str, i: int, quote: str) -> tuple[int, int]:
    if body[i] == quote:
        raise ValueError(f"unescaped {quote!r} inside a Go literal")
    return ord(body[i]), i + 1


def _escape(body: str, i: int, quote: str) -> tuple[int, int]:
    """The escape at ``body[i]`` (a backslash), as ``strconv.UnquoteChar`` reads it: value and end."""
    if i + 1 >= len(body):
        raise ValueError("Go literal ends in a lone backslash")
    kind = body[i + 1]
    if kind in _UNESCAPES:
        if kind in "'\"" and kind != quote:
            raise ValueError(f"\\{kind} is not an escape in a Go literal quoted with {quote}")
        return ord(_UNESCAPES[kind]), i + 2
    if kind in "xuU":
        width = {"x": 2, "u": 4, "U": 8}[kind]
        value = int(_hex(body, i + 2, width), 16)
        if kind != "x" and (0xD800 <= value <= 0xDFFF or value > 0x10FFFF):
            raise ValueError(f"\\{kind}{body[i + 2:i + 2 + width]} is not a valid character")
        return value, i + 2 + width
    if kind in "01234567":
        digits = body[i + 1 : i + 4]
        if len(digits) != 3 or any(d not in "01234567" for d in digits) or int(digits, 8) > 255:
            raise ValueError(f"bad octal escape \\{digits} in a Go string literal")
        return int(digits, 8), i + 4
    raise ValueError(f"unknown escape \\{kind} in a Go string literal")


def _hex(body: str, start: int, width: int) -> str:
    digits = body[start : start + width]
    if len(digits) != width or any(d not in "0123456789abcdefABCDEF" for d in digits):
        raise ValueError(f"bad hex escape in a Go string literal near {body[start - 2:start + width]!r}")
    return digits
