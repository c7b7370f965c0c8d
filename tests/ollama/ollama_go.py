"""Go's formatting, as Ollama's server applies it to what it stores and shows, for the stand-in.

Written from the Go standard library's documented behaviour, independent of modelkit:

* :func:`quote` is ``strconv.Quote`` (and what ``%#v`` / ``%q`` print for a string);
* :func:`format_float` is ``strconv.FormatFloat(x, 'g', -1, 64)``, which ``%v`` and ``%#v`` print
  for a ``float64`` (shortest digits; exponent form below 1e-4 and from 1e6 on);
* :func:`sharp_v` / :func:`plain_v` are ``fmt``'s ``%#v`` / ``%v`` of a value that came out of
  ``encoding/json`` into an ``any`` (``float64``, ``string``, ``bool``, ``nil``, ``[]any``,
  ``map[string]any``): how ``GetModelInfo`` prints ``parameters`` and ``Model.String`` prints
  ``PARAMETER`` lines (``server/routes.go``, ``server/images.go``);
* :func:`json_marshal` is ``encoding/json``'s ``Marshal`` / ``Encoder.Encode`` of such a value
  (sorted map keys, HTML-safe escapes, Go's float format), which decides the bytes and so the
  digests of the layers Ollama writes (``server/create.go``: ``setParameters`` and friends).
"""

from __future__ import annotations

import math
import unicodedata
from decimal import Decimal
from typing import Any


def is_print(ch: str) -> bool:
    """``strconv.IsPrint``: letters, marks, numbers, punctuation, symbols and the ASCII space."""
    return ch == " " or unicodedata.category(ch)[0] in "LMNPS"


_ESCAPES = {"\a": r"\a", "\b": r"\b", "\f": r"\f", "\n": r"\n", "\r": r"\r", "\t": r"\t", "\v": r"\v"}


def quote(s: str) -> str:
    """``strconv.Quote``: a double-quoted Go string literal, non-printable runes escaped."""
    out = ['"']
    for ch in s:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif 0xD800 <= ord(ch) <= 0xDFFF:  # not a rune Go can hold: decoded as U+FFFD
            out.append("\ufffd")
        elif is_print(ch):
            out.append(ch)
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def _digits(x: float) -> tuple[str, str, int]:
    """Sign, shortest round-trip digits and decimal-point position of ``x`` (Go's ``decimal``)."""
    sign, digits, exponent = Decimal(repr(x)).normalize().as_tuple()
    d = "".join(map(str, digits)).lstrip("0") or "0"
    return ("-" if sign else ""), d, len(d) + int(exponent)


def format_float(x: float) -> str:
    """``strconv.FormatFloat(x, 'g', -1, 64)``."""
    if x == 0:
        return "-0" if math.copysign(1.0, x) < 0 else "0"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if math.isnan(x):
        return "NaN"
    prefix, d, dp = _digits(x)
    exp = dp - 1
    if exp < -4 or exp >= 6:  # shortest: %e when the exponent is < -4 or >= 6 (eprec = 6)
        mantissa = d[0] + ("." + d[1:] if len(d) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    return prefix + _fixed(d, dp)


def _fixed(d: str, dp: int) -> str:
    if dp <= 0:
        return "0." + "0" * -dp + d
    if dp >= len(d):
        return d + "0" * (dp - len(d))
    return d[:dp] + "." + d[dp:]


def _as_float(value: Any) -> float:
    return float(value)


def sharp_v(value: Any) -> str:
    """``fmt.Sprintf("%#v", value)`` for a JSON-decoded Go value."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, (int, float)):
        return format_float(_as_float(value))  # every JSON number decodes to float64
    if isinstance(value, list):
        return "[]interface {}{" + ", ".join(_sharp_v_elem(v) for v in value) + "}"
    if isinstance(value, dict):
        items = ", ".join(f"{quote(k)}:{_sharp_v_elem(v)}" for k, v in sorted(value.items()))
        return "map[string]interface {}{" + items + "}"
    raise TypeError(f"not a JSON value: {value!r}")


def _sharp_v_elem(value: Any) -> str:
    return "interface {}(nil)" if value is None else sharp_v(value)


def plain_v(value: Any) -> str:
    """``fmt.Sprintf("%v", value)`` for a JSON-decoded Go value."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return format_float(_as_float(value))
    if isinstance(value, list):
        return "[" + " ".join(plain_v(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{plain_v(v)}" for k, v in sorted(value.items())) + "]"
    raise TypeError(f"not a JSON value: {value!r}")


# --- encoding/json ---------------------------------------------------------------------------------


class Struct(dict):
    """A Go struct for :func:`json_marshal`: its fields are written in declaration (insertion)
    order, not sorted as a map's keys are. Leave ``omitempty`` fields out before building it."""

_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def _json_string(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch in _JSON_ESCAPES:
            out.append(_JSON_ESCAPES[ch])
        elif ch in "<>&" or ch in "\u2028\u2029" or ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            out.append("\ufffd")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _json_float(x: float) -> str:
    """``encoding/json``'s ``floatEncoder`` for a float64."""
    if x == 0:
        return "-0" if math.copysign(1.0, x) < 0 else "0"
    prefix, d, dp = _digits(x)
    if abs(x) < 1e-6 or abs(x) >= 1e21:
        exp = dp - 1
        mantissa = d[0] + ("." + d[1:] if len(d) > 1 else "")
        text = f"{prefix}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
        if len(text) >= 4 and text[-4:-1] == "e-0":  # Go's clean-up: e-07 becomes e-7
            text = text[:-2] + text[-1]
        return text
    return prefix + _fixed(d, dp)


def json_marshal(value: Any) -> str:
    """``json.Marshal`` of a JSON-decoded Go value (maps with sorted keys)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, (int, float)):
        return _json_float(_as_float(value))
    if isinstance(value, list):
        return "[" + ",".join(json_marshal(v) for v in value) + "]"
    if isinstance(value, dict):
        items = value.items() if isinstance(value, Struct) else sorted(value.items())
        return "{" + ",".join(f"{_json_string(k)}:{json_marshal(v)}" for k, v in items) + "}"
    raise TypeError(f"not a JSON value: {value!r}")


def json_encode(value: Any) -> bytes:
    """``json.NewEncoder(w).Encode(value)``: :func:`json_marshal` and a newline."""
    return (json_marshal(value) + "\n").encode("utf-8")


def go_json_value(value: Any) -> Any:
    """What ``encoding/json`` decodes into an ``any``: lone surrogates (which Go cannot hold)
    become U+FFFD, as Go's decoder makes them; everything else is as Python's ``json`` gives it."""
    if isinstance(value, str):
        return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in value)
    if isinstance(value, list):
        return [go_json_value(v) for v in value]
    if isinstance(value, dict):
        return {go_json_value(k): go_json_value(v) for k, v in value.items()}
    return value
