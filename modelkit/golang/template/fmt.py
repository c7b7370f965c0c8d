"""Go's printing, as templates use it: ``fmt``'s ``%v``, ``Sprint``, ``Sprintf``, and ``json.Marshal``.

Every action writes its value with ``%v``; ``print``, ``printf`` and ``println`` are
``fmt.Sprint``, ``Sprintf`` and ``Sprintln``; Ollama's ``json`` is ``json.Marshal``. The
translator leans on ``printf`` padding for arithmetic, so widths and ``*`` must be exact.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from modelkit.golang.strconv import go_quote

from .values import NO_VALUE, GoStruct, GoTemplateError, type_name


def fmt_v(v: Any) -> bytes:
    """``fmt``'s ``%v`` for the values templates meet."""
    if isinstance(v, bytes):
        return v
    if isinstance(v, bool):
        return b"true" if v else b"false"
    if isinstance(v, int):
        return str(v).encode()
    if isinstance(v, float):
        return go_float(v, exponent_from=6, exponent_below=-4).encode()
    if v is None:
        return b"<nil>"
    if v is NO_VALUE:
        return b"<no value>"
    if getattr(v, "json_string", False):
        return json_marshal(v)
    if isinstance(v, list):
        return b"[" + b" ".join(fmt_v(x) for x in v) + b"]"
    if isinstance(v, GoStruct):
        return b"&{" + b" ".join(b"[]" if x is None else fmt_v(x) for x in v.fields.values()) + b"}"
    if isinstance(v, dict):
        return b"map[" + b" ".join(fmt_v(k) + b":" + fmt_v(x) for k, x in sorted(v.items())) + b"]"
    raise GoTemplateError(f"cannot print a {type(v).__name__}")


def go_float(x: float, exponent_from: int, exponent_below: int, json: bool = False) -> str:
    """A float64 as Go writes it: the shortest digits that read back, in plain notation for
    exponents in ``[exponent_below, exponent_from)`` (``%v``: -4 and 6; ``json``: -6 and 21),
    else as ``1.5e+21`` (``json`` writes ``1.5e-7`` where ``%v`` writes ``1.5e-07``)."""
    if math.isnan(x) or math.isinf(x):
        return "NaN" if math.isnan(x) else ("+Inf" if x > 0 else "-Inf")
    if x == 0:
        return "-0" if math.copysign(1, x) < 0 and not json else "0"
    d = Decimal(repr(x))
    exp = d.adjusted()
    if exponent_below <= exp < exponent_from:
        text = format(d, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    sign, digits, _ = d.as_tuple()
    mantissa = "".join(map(str, digits)).rstrip("0") or "0"
    mantissa = mantissa[0] + ("." + mantissa[1:] if len(mantissa) > 1 else "")
    width = 1 if json else 2
    return f"{'-' if sign else ''}{mantissa}e{'+' if exp >= 0 else '-'}{abs(exp):0{width}d}"


def sprint(args: list[Any]) -> bytes:
    """``fmt.Sprint``: a space between operands when neither is a string."""
    out = bytearray()
    prev_string = False
    for i, a in enumerate(args):
        is_string = isinstance(a, bytes)
        if i > 0 and not is_string and not prev_string:
            out += b" "
        out += fmt_v(a)
        prev_string = is_string
    return bytes(out)


def sprintln(args: list[Any]) -> bytes:
    """``fmt.Sprintln``: operands separated by spaces, and a newline."""
    return b" ".join(fmt_v(x) for x in args) + b"\n"


_PRINTF_RE = re.compile(rb"%([-+# 0]*)(\*|[0-9]+)?(?:\.(\*|[0-9]+))?([a-zA-Z%])")


class _Args:
    """The operands of a ``printf``, consumed left to right by widths, precisions and verbs."""

    def __init__(self, args: list[Any]) -> None:
        self.args = args
        self.used = 0

    def next(self) -> Any:
        if self.used >= len(self.args):
            return None
        self.used += 1
        return self.args[self.used - 1]


def sprintf(fmt: bytes, args: list[Any]) -> bytes:
    """``fmt.Sprintf`` for the verbs templates use: ``%s %d %v %b %q %x %T %%``, widths and ``*``."""
    out = bytearray()
    pos = 0
    operands = _Args(args)
    for m in _PRINTF_RE.finditer(fmt):
        out += fmt[pos:m.start()]
        pos = m.end()
        out += _directive(m, operands)
    out += fmt[pos:]
    if operands.used < len(args):
        out += b"%!(EXTRA " + b", ".join(type_name(a).encode() + b"=" + fmt_v(a) for a in args[operands.used:]) + b")"
    return bytes(out)


def _directive(m: re.Match[bytes], operands: _Args) -> bytes:
    """What one ``%...`` directive writes, taking the operands it needs."""
    flags, width, prec, verb = m.group(1), m.group(2), m.group(3), m.group(4)
    if verb == b"%":
        return b"%"
    out = b""
    w: int | None = None
    left = b"-" in flags
    if width == b"*":
        wv = operands.next()
        if not isinstance(wv, int) or isinstance(wv, bool):
            out += b"%!(BADWIDTH)"
        else:
            w = wv
            if w < 0:
                left, w = True, -w
    elif width:
        w = int(width)
    p: int | None = None
    if prec == b"*":
        pv = operands.next()
        p = pv if isinstance(pv, int) and not isinstance(pv, bool) else None
    elif prec is not None:
        p = int(prec) if prec else 0
    arg = operands.next()
    if arg is None and operands.used > len(operands.args):
        return out + b"%!" + verb + b"(MISSING)"
    s = _format(verb, arg, p)
    if w is not None:
        n_chars = len(s.decode("utf-8", errors="replace"))
        pad = b" " * max(0, w - n_chars)
        s = s + pad if left else (pad + s if b"0" not in flags or verb == b"s" else s.rjust(w, b"0"))
    return out + s


def _format(verb: bytes, arg: Any, precision: int | None) -> bytes:
    """One operand through one verb, before padding."""
    if verb in (b"s", b"v"):
        s = fmt_v(arg)
        if precision is not None and isinstance(arg, bytes):
            s = s.decode("utf-8", errors="surrogateescape")[:precision].encode("utf-8", errors="surrogateescape")
        return s
    is_int = isinstance(arg, int) and not isinstance(arg, bool)
    if verb == b"d" and is_int:
        return str(arg).encode()
    if verb == b"b" and is_int:
        return (b"-" if arg < 0 else b"") + format(abs(arg), "b").encode()
    if verb == b"x" and is_int:
        return format(arg, "x").encode()
    if verb == b"T":
        return type_name(arg).encode()
    if verb == b"q" and isinstance(arg, bytes):
        return go_quote(arg.decode("utf-8", errors="replace")).encode()
    raise GoTemplateError(f"printf verb %{verb.decode()} with {type_name(arg)} is not supported here")


_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _json_string(x: bytes) -> str:
    """A Go string as ``json.Marshal`` writes it: HTML-safe, ``\\u`` escapes for control characters."""
    out = ['"']
    for ch in x.decode("utf-8", errors="replace"):
        if ch in _JSON_ESCAPES:
            out.append(_JSON_ESCAPES[ch])
        elif ord(ch) < 0x20 or ch in "<>&\u2028\u2029":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _json_key(k: Any) -> bytes:
    return k if isinstance(k, bytes) else str(k).encode()


def _json(x: Any) -> str:
    if x is None or x is NO_VALUE:
        return "null"
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return go_float(x, exponent_from=21, exponent_below=-6, json=True)
    if isinstance(x, bytes):
        return _json_string(x)
    if isinstance(x, list):
        return "null" if getattr(x, "nil", False) else "[" + ",".join(_json(e) for e in x) + "]"
    if isinstance(x, dict):
        return "{" + ",".join(_json_string(_json_key(k)) + ":" + _json(x[k]) for k in sorted(x, key=_json_key)) + "}"
    if isinstance(x, GoStruct):
        return "{" + ",".join(_json_string(name.encode()) + ":" + _json(val) for name, val in _json_fields(x)) + "}"
    raise GoTemplateError(f"json: unsupported value {x!r}")


def _json_fields(x: GoStruct) -> list[tuple[str, Any]]:
    """The fields ``json.Marshal`` writes, under their tag names, leaving out empty ``omitempty`` ones."""
    out = []
    for field, val in x.fields.items():
        name, omitempty = x.json.get(field, (field, False))
        if not (omitempty and (val is None or val in (b"", 0, False) or val == [] or val == {})):
            out.append((name, val))
    return out


def json_marshal(v: Any) -> bytes:
    """Go's ``json.Marshal`` for plain values (HTML-safe escaping, sorted map keys): Ollama's ``json``."""
    return _json(v).encode()
