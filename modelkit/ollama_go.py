"""The few pieces of Go's standard library whose exact behaviour Ollama's wire formats depend on.

Ollama is written in Go, and two of its text formats lean on Go's definitions rather than on
anything written down: its Modelfile parser keeps a character only if ``strconv.IsPrint``
accepts it, and ``/api/show`` prints parameter values with ``%#v`` (so strings come back in
``strconv.Quote`` form). Reproducing those rules here, once, lets the Modelfile renderer refuse
what the parser would silently drop, and lets the registry read ``show`` output exactly.
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
    """``strconv.Unquote`` for a double-quoted Go string literal; raises ``ValueError``.

    ``\\x`` and octal escapes stand for bytes, not characters, so the result is assembled as
    UTF-8 bytes and decoded at the end, as Go does.
    """
    if len(literal) < 2 or literal[0] != '"' or literal[-1] != '"':
        raise ValueError(f"not a double-quoted Go string: {literal[:40]!r}")
    body = literal[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == '"' or ch == "\n":
            raise ValueError(f"unescaped {ch!r} inside a Go string literal")
        if ch != "\\":
            out += ch.encode("utf-8", "surrogatepass")
            i += 1
            continue
        if i + 1 >= len(body):
            raise ValueError("Go string literal ends in a lone backslash")
        kind = body[i + 1]
        if kind in _UNESCAPES:
            out += _UNESCAPES[kind].encode()
            i += 2
        elif kind == "x":
            out.append(int(_hex(body, i + 2, 2), 16))
            i += 4
        elif kind in "01234567":
            digits = body[i + 1 : i + 4]
            if len(digits) != 3 or any(d not in "01234567" for d in digits) or int(digits, 8) > 255:
                raise ValueError(f"bad octal escape \\{digits} in a Go string literal")
            out.append(int(digits, 8))
            i += 4
        elif kind in "uU":
            width = 4 if kind == "u" else 8
            out += chr(int(_hex(body, i + 2, width), 16)).encode("utf-8", "surrogatepass")
            i += 2 + width
        else:
            raise ValueError(f"unknown escape \\{kind} in a Go string literal")
    return out.decode("utf-8", "replace")


def _hex(body: str, start: int, width: int) -> str:
    digits = body[start : start + width]
    if len(digits) != width or any(d not in "0123456789abcdefABCDEF" for d in digits):
        raise ValueError(f"bad hex escape in a Go string literal near {body[start - 2:start + width]!r}")
    return digits
