"""Go template building blocks for what ``text/template`` lacks: arithmetic, trimming, dates.

Go's template language has no ``+``, no string functions and only one date function in Ollama
(``currentDate``, ``YYYY-MM-DD``). Chat templates need a little of each, so the translator
builds them from builtins:

* integer arithmetic from ``printf`` padding: ``a + b`` is ``len (printf "%*s%*s" a "" b "")``
  and ``a - b`` is ``len (slice (printf "%*s" a "") b)`` (non-negative values, as loop indexes
  and lengths are); ``a % 2`` reads the last binary digit of ``printf "%b" a``;
* Python's ``strip``/``lstrip``/``rstrip`` as recursive helper templates (``define``) that drop
  one character at a time and write what is left: they can write a trimmed string, not return
  one, which is why the translator keeps trims as a property of a string piece;
* ``strftime`` formats from slices of ``currentDate`` and ``if`` chains for month names.
"""

from __future__ import annotations

import re

from .goast import Call, If, Node, Out, Set, Text, go_string
from .values import Charset, Unsupported

# Python's str.isspace() characters: what str.strip() and Jinja's trim remove by default.
PY_WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
                 "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


def arg(expr: str | int) -> str:
    """An expression usable as a command argument (parenthesised unless it is one token)."""
    if isinstance(expr, int):
        return str(expr)
    e = expr.strip()
    if e.startswith("(") and (balanced(e) or _paren_chain(e)):
        return e
    if " " in e and not (e.startswith('"') and e.endswith('"') and _single_string(e)):
        return f"({e})"
    return e


def _paren_chain(e: str) -> bool:
    """``(pipeline).Field.Field``: one operand."""
    end = _closing_paren(e)
    return end >= 0 and re.fullmatch(r"(\.[A-Za-z_][A-Za-z0-9_]*)+", e[end + 1:]) is not None


def balanced(e: str) -> bool:
    """``(pipeline)``: ``e``, which starts with ``(``, is one parenthesised group."""
    return _closing_paren(e) == len(e) - 1


def _closing_paren(e: str) -> int:
    """Where the ``(`` that opens ``e`` closes (``-1``: it does not), skipping string literals."""
    depth = 0
    in_str = esc = False
    for i, ch in enumerate(e):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _single_string(e: str) -> bool:
    esc = False
    for ch in e[1:-1]:
        if esc:
            esc = False
        elif ch == "\\":
            esc = True
        elif ch == '"':
            return False
    return True


def int_or(e: str) -> str | int:
    """An int literal as an int (so that :func:`add` and :func:`sub` fold it), else the expression."""
    return int(e) if re.fullmatch(r"-?\d+", e) else e


def add(a: str | int, b: str | int) -> str | int:
    """``a + b`` for non-negative ints."""
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    if a == 0:
        return b
    if b == 0:
        return a
    return f'len (printf "%*s%*s" {arg(a)} "" {arg(b)} "")'


def sub(a: str | int, b: str | int) -> str | int:
    """``a - b`` where ``a >= b >= 0`` (Go fails otherwise, as an index out of range)."""
    if isinstance(a, int) and isinstance(b, int):
        return a - b
    if b == 0:
        return a
    return f'len (slice (printf "%*s" {arg(a)} "") {arg(b)})'


def is_even(a: str) -> str:
    """A Go condition: ``a % 2 == 0``."""
    bits = f'(printf "%b" {arg(a)})'
    return f'eq (slice {bits} (len (slice {bits} 1))) "0"'


def _charset_name(cs: Charset) -> str:
    return "" if cs is None else " " + repr(cs)


def strip_chain_name(left: tuple[Charset, ...], right: tuple[Charset, ...]) -> str:
    """A readable helper-template name for a sequence of strips (``strip``, ``lstrip '\\n'``...)."""
    parts: list[str] = []
    left_l, right_l = list(left), list(right)
    while left_l or right_l:
        if left_l and right_l and left_l[0] is None and right_l[0] is None and len(left_l) == 1 and len(right_l) == 1:
            parts.append("strip")
            left_l, right_l = [], []
        elif left_l:
            parts.append("lstrip" + _charset_name(left_l.pop(0)))
        else:
            parts.append("rstrip" + _charset_name(right_l.pop(0)))
    return " | ".join(parts)


def _by_length(chars: str) -> dict[int, list[str]]:
    groups: dict[int, list[str]] = {}
    for ch in dict.fromkeys(chars):
        groups.setdefault(len(ch.encode()), []).append(ch)
    return dict(sorted(groups.items()))


def strip_defines(left: tuple[Charset, ...], right: tuple[Charset, ...]) -> tuple[str, dict[str, list[Node]]]:
    """The helper templates that write ``.`` after the given strips; returns the entry name."""
    defines: dict[str, list[Node]] = {}
    stages = [("l", cs) for cs in left] + [("r", cs) for cs in right]
    names = []
    for i in range(len(stages)):
        rest_left = tuple(cs for side, cs in stages[i:] if side == "l")
        rest_right = tuple(cs for side, cs in stages[i:] if side == "r")
        names.append(strip_chain_name(rest_left, rest_right))
    for i, (side, cs) in enumerate(stages):
        name = names[i]
        nxt: list[Node] = [Call(names[i + 1], ".")] if i + 1 < len(stages) else [Out(".")]
        chars = PY_WHITESPACE if cs is None else cs
        if not chars:
            defines[name] = nxt
            continue
        body: list[Node] = nxt
        for k, group in reversed(list(_by_length(chars).items())):
            lits = " ".join(go_string(c) for c in group)
            if side == "l":
                cond = f"and (ge (len .) {k}) (eq (slice . 0 {k}) {lits})"
                recurse = Call(name, f"(slice . {k})")
            else:
                cond = f"and (ge (len .) {k}) (eq (slice . (len (slice . {k}))) {lits})"
                recurse = Call(name, f"(slice . 0 (len (slice . {k})))")
            body = [If(cond, [recurse], body)]
        defines[name] = body
    return names[0], defines


TODAY_VAR = "$today"
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]


def _month_chain(abbrev: bool) -> Node:
    node: list[Node] = []
    for i in range(len(MONTHS), 0, -1):
        name = MONTHS[i - 1][:3] if abbrev else MONTHS[i - 1]
        node = [If(f'eq (slice {TODAY_VAR} 5 7) "{i:02d}"', [Text(name)], node)]
    return node[0]


def strftime_pieces(fmt: str) -> list[str | tuple[str, str] | Node]:
    """Pieces that write ``datetime.now().strftime(fmt)`` from Ollama's ``currentDate``.

    Returns literal text, ``("expr", go_expr)`` for string-valued expressions, or Go nodes.
    Raises :class:`Unsupported` for directives a date string cannot give (weekday, time).
    """
    out: list[str | tuple[str, str] | Node] = []
    i = 0
    simple = {"Y": f"slice {TODAY_VAR} 0 4", "m": f"slice {TODAY_VAR} 5 7", "d": f"slice {TODAY_VAR} 8 10",
              "y": f"slice {TODAY_VAR} 2 4"}
    while i < len(fmt):
        ch = fmt[i]
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        directive = fmt[i + 1:i + 2]
        if directive == "-":
            directive = fmt[i + 1:i + 3]
            i += 3
        else:
            i += 2
        if directive in simple:
            out.append(("expr", simple[directive]))
        elif directive == "%":
            out.append("%")
        elif directive in ("b", "h"):
            out.append(_month_chain(True))
        elif directive == "B":
            out.append(_month_chain(False))
        elif directive in ("-d", "-m", "e"):
            two = simple[directive[-1]] if directive != "e" else simple["d"]
            lo, hi = ("8", "10") if directive in ("-d", "e") else ("5", "7")
            tail = f"slice {TODAY_VAR} {int(lo) + 1} {hi}"
            first = f"slice {TODAY_VAR} {lo} {int(lo) + 1}"
            pad: list[Node] = [Text(" ")] if directive == "e" else []
            out.append(If(f'eq ({first}) "0"', pad + [Out(tail)], [Out(two)]))
        else:
            raise Unsupported(f"strftime_now directive %{directive} (only the date is available in Ollama)")
    return out


def today_prelude() -> Set:
    return Set(TODAY_VAR, "currentDate", declare=True)
