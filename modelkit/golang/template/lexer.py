"""Go template text cut into text and actions (trim markers applied), and actions into tokens.

Two stages, as in Go's ``text/template/parse`` lexer: :func:`split_template` finds the
``{{ }}`` delimiters (skipping over quoted strings and comments, applying ``{{-`` and ``-}}``),
and :func:`lex_action` turns the inside of one action into tokens, with literal values read as
Go reads them (string constants through :func:`~modelkit.golang.strconv.go_unquote_bytes`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from modelkit.golang.strconv import go_unquote_bytes, go_unquote_char

from .values import GoTemplateError

SPACE = " \t\r\n"


@dataclass
class Token:
    """One token of an action: ``kind`` is ws, lit, nil, op, var, field, dot or ident."""

    kind: str
    text: str
    value: Any = None


_TOKEN_RE = re.compile(r"""
    (?P<ws>[ \t\r\n]+)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\\n]|\\.)+')
  | (?P<op>:=|=|\||\(|\)|,)
  | (?P<var>\$[A-Za-z0-9_]*)
  | (?P<field>\.[A-Za-z_][A-Za-z0-9_]*)
  | (?P<dot>\.)
  | (?P<num>[-+]?(?:0[xX][0-9a-fA-F_]+|[0-9][0-9_]*(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
""", re.VERBOSE | re.DOTALL)


def split_template(src: str) -> list[tuple[str, str]]:
    """Split template text into ('text', s) and ('action', body) items, applying trim markers."""
    items: list[tuple[str, str]] = []
    pos = 0
    trim_next = False
    while True:
        start = src.find("{{", pos)
        text = src[pos:] if start < 0 else src[pos:start]
        if trim_next:
            text = text.lstrip(SPACE)
        if start < 0:
            if text:
                items.append(("text", text))
            return items
        inner_start = start + 2
        left_trim = src.startswith("-", inner_start) and inner_start + 1 < len(src) and src[inner_start + 1] in SPACE
        if left_trim:
            text = text.rstrip(SPACE)
            inner_start += 2
        if text:
            items.append(("text", text))
        comment = _comment_end(src, inner_start)
        if comment is not None:
            pos, trim_next = comment
            continue
        end = _action_end(src, inner_start)
        body = src[inner_start:end]
        trim_next = len(body) >= 2 and body.endswith("-") and body[-2] in SPACE
        items.append(("action", body[:-1] if trim_next else body))
        pos = end + 2


def _comment_end(src: str, inner_start: int) -> tuple[int, bool] | None:
    """For a ``{{/* comment */}}`` starting there: where it ends and whether it trims what follows."""
    i = inner_start
    while i < len(src) and src[i] in SPACE:
        i += 1
    if not src.startswith("/*", i):
        return None
    close_comment = src.find("*/", i + 2)
    if close_comment < 0:
        raise GoTemplateError("unclosed comment")
    j = close_comment + 2
    while j < len(src) and src[j] in SPACE:
        j += 1
    if src.startswith("-}}", j) and src[j - 1] in SPACE:
        return j + 3, True
    if src.startswith("}}", j):
        return j + 2, False
    raise GoTemplateError("comment ends with no closing delimiter")


def _action_end(src: str, j: int) -> int:
    """Where the ``}}`` that closes the action starting at ``j`` is, skipping quoted strings."""
    quote = ""
    while True:
        if j >= len(src):
            raise GoTemplateError("unclosed action")
        ch = src[j]
        if quote:
            if ch == "\\" and quote != "`":
                j += 2
                continue
            if ch == quote:
                quote = ""
            elif ch == "\n" and quote != "`":
                raise GoTemplateError("newline in string")
            j += 1
            continue
        if ch in "\"`'":
            quote = ch
        elif src.startswith("}}", j):
            return j
        j += 1


def lex_action(src: str) -> list[Token]:
    """The tokens of one action's text (whitespace kept as ``ws`` tokens: Go's parser needs them)."""
    toks: list[Token] = []
    pos = 0
    while pos < len(src):
        m = _TOKEN_RE.match(src, pos)
        if not m:
            raise GoTemplateError(f"unexpected {src[pos:pos + 10]!r} in action")
        kind = m.lastgroup
        assert kind is not None
        toks.append(_token(kind, m.group()))
        pos = m.end()
    return toks


def _token(kind: str, text: str) -> Token:
    try:
        if kind in ("str", "raw"):
            return Token("lit", text, go_unquote_bytes(text))
        if kind == "char":
            return Token("lit", text, go_unquote_char(text))
    except ValueError as exc:
        raise GoTemplateError(f"{exc} in {text}") from None
    if kind == "num":
        return Token("lit", text, _number(text))
    if kind == "ident" and text in ("true", "false"):
        return Token("lit", text, text == "true")
    if kind == "ident" and text == "nil":
        return Token("nil", text)
    return Token(kind, text)


def _number(text: str) -> int | float:
    t = text.replace("_", "")
    if re.fullmatch(r"[-+]?0[xX][0-9a-fA-F]+", t):
        return int(t, 16)
    if re.fullmatch(r"[-+]?[0-9]+", t):
        return int(t)
    return float(t)


def strip_ws(toks: list[Token]) -> list[Token]:
    """The tokens without whitespace at either end."""
    start, end = 0, len(toks)
    while start < end and toks[start].kind == "ws":
        start += 1
    while end > start and toks[end - 1].kind == "ws":
        end -= 1
    return toks[start:end]
