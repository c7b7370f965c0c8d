"""A Modelfile parser that follows Ollama's ``parser/parser.go``, for round-trip tests.

It is a port of ``ParseFile`` (the state machine: states nil, name, value, parameter, message,
comment) and of ``Modelfile.CreateRequest`` (how commands become a create request), written from
Ollama's source and kept deliberately independent of ``modelkit.ollama.modelfile``. Behaviours carried
over on purpose, because they are what the renderer must respect:

* commands are case-insensitive; ``#`` starts a comment only where a command could start;
* there are no escape sequences; a value ends at the first line break (``\\n`` or ``\\r``) where the
  text so far, trimmed by Go's ``TrimSpace``, is unquoted or wrapped in ``"…"`` or ``\"\"\"…\"\"\"``;
  spaces never end a value;
* characters Go's ``strconv.IsPrint`` rejects are dropped, except tab and line breaks, which a value
  keeps while it is still open;
* ``ADAPTER`` replaces the adapters of an earlier ``ADAPTER``; ``MESSAGE`` args are ``role: text``.

One difference, for speed only: Go rebuilds and trims the whole buffer at every space and line
break (quadratic on a huge value); here the first and last non-blank positions are tracked as
characters arrive, which gives the same answers in linear time.
"""

from __future__ import annotations

import re
import struct
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

NIL, NAME, VALUE, PARAMETER, MESSAGE, COMMENT = "nil", "name", "value", "parameter", "message", "comment"

COMMANDS = {"from", "license", "template", "system", "adapter", "draft", "renderer", "parser", "parameter", "message", "requires"}
ROLES = {"system", "user", "assistant"}
DEPRECATED_PARAMETERS = {
    "penalize_newline", "low_vram", "f16_kv", "logits_all", "vocab_only", "use_mlock",
    "mirostat", "mirostat_tau", "mirostat_eta",
}
# After unprintable characters are dropped, these are the only ones Go's TrimSpace can meet.
_BLANK = " \t\r\n"


class ParseError(Exception):
    """What ``ParseFile`` would return as an error."""


@dataclass(frozen=True)
class Command:
    name: str
    args: str


def is_print(ch: str) -> bool:
    """Go's ``strconv.IsPrint``: categories L, M, N, P, S, and the ASCII space."""
    return ch == " " or unicodedata.category(ch)[0] in "LMNPS"


class _Buffer:
    """``bytes.Buffer`` plus what ``unquote(strings.TrimSpace(b.String()))`` needs, kept up to date."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.chars: list[str] = []
        self.first: int | None = None
        self.last = -1

    def append(self, ch: str) -> None:
        if ch not in _BLANK:
            if self.first is None:
                self.first = len(self.chars)
            self.last = len(self.chars)
        self.chars.append(ch)

    def text(self) -> str:
        return "".join(self.chars)

    def unquote_trimmed(self) -> tuple[str, bool]:
        """``unquote(strings.TrimSpace(buffer))``."""
        if self.first is None:
            return "", True
        first, last = self.first, self.last
        length = last - first + 1
        c = self.chars
        if length >= 3 and c[first] == c[first + 1] == c[first + 2] == '"':
            if length >= 6 and c[last] == c[last - 1] == c[last - 2] == '"':
                return "".join(c[first + 3 : last - 2]), True
            return "", False
        if c[first] == '"':
            if length >= 2 and c[last] == '"':
                return "".join(c[first + 1 : last]), True
            return "", False
        return "".join(c[first : last + 1]), True


def _next(ch: str, state: str) -> tuple[str, str | None]:
    """``parseRuneForState``: the next state and the character to keep (``None`` for Go's 0)."""
    space, newline = ch in " \t", ch in "\r\n"
    alpha = ("a" <= ch <= "z") or ("A" <= ch <= "Z")
    if state == NIL:
        if ch == "#":
            return COMMENT, None
        if space or newline:
            return NIL, None
        return NAME, ch
    if state == NAME:
        if alpha:
            return NAME, ch
        if space:
            return VALUE, None
        raise ParseError("command must be one of ...")
    if state == VALUE:
        if newline or space:
            return NIL, ch
        return VALUE, ch
    if state == PARAMETER:
        if alpha or ("0" <= ch <= "9") or ch == "_":
            return PARAMETER, ch
        if space:
            return VALUE, None
        raise ParseError("unexpected EOF")
    if state == MESSAGE:
        if alpha:
            return MESSAGE, ch
        if space:
            return VALUE, None
        raise ParseError("unexpected EOF")
    if state == COMMENT:
        return (NIL if newline else COMMENT), None
    raise AssertionError(state)


def parse(data: str | bytes) -> list[Command]:
    """``ParseFile``: the commands of a Modelfile, or :class:`ParseError`."""
    if isinstance(data, bytes):
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        text = data.decode("utf-8", "replace")
    else:
        text = data.removeprefix("\ufeff")

    commands: list[Command] = []
    state = NIL
    buf = _Buffer()
    name = ""
    role = ""
    for ch in text:
        nxt, keep = _next(ch, state)
        if nxt != state:
            if state == NAME:
                word = buf.text().lower()
                if word not in COMMANDS:
                    raise ParseError(f"command must be one of ... (got {word!r})")
                if word == "from":
                    name = "model"
                elif word == "parameter":
                    nxt = PARAMETER
                elif word == "message":
                    nxt = MESSAGE
                    name = "message"
                else:
                    name = word
            elif state == PARAMETER:
                name = buf.text()
            elif state == MESSAGE:
                if buf.text() not in ROLES:
                    raise ParseError('message role must be one of "system", "user", or "assistant"')
                role = buf.text()
            elif state == VALUE:
                # Go evaluates unquote here too, but a space never ends a value, so skip the work.
                if keep in (" ", "\t"):
                    buf.append(keep)
                    continue
                value, ok = buf.unquote_trimmed()
                if not ok:
                    buf.append(keep)
                    continue
                if role:
                    value, role = f"{role}: {value}", ""
                commands.append(Command(name, value))
            buf.reset()
            state = nxt
        if keep is not None and is_print(keep):
            buf.append(keep)

    if state == VALUE:
        value, ok = buf.unquote_trimmed()
        if not ok:
            raise ParseError("unexpected EOF")
        if role:
            value = f"{role}: {value}"
        commands.append(Command(name, value))
    elif state not in (NIL, COMMENT):
        raise ParseError("unexpected EOF")
    if not any(c.name == "model" for c in commands):
        raise ParseError("no FROM line")
    return commands


# --- Modelfile.CreateRequest -----------------------------------------------------------------------

_INT = re.compile(r"[+-]?[0-9]+\Z")
_FLOAT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\Z")
_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
          "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}
_SEMVER = re.compile(
    r"v(0|[1-9]\d*)(\.(0|[1-9]\d*)(\.(0|[1-9]\d*)(-(0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
    r"(\.(0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?)?)?\Z"
)


def format_param(name: str, text: str, types: dict[str, str]) -> object:
    """``api.FormatParams`` for one value; ``types`` maps option names to int/float/bool/strings."""
    kind = types.get(name)
    if kind is None:
        raise ParseError(f"unknown parameter '{name}'")
    if kind == "int":
        if not _INT.match(text) or not -(2**63) <= int(text) < 2**63:
            raise ParseError(f"invalid int value [{text}]")
        return int(text)
    if kind == "float":
        if not _FLOAT.match(text):
            raise ParseError(f"invalid float value [{text}]")
        value = float(text)
        if abs(value) > 3.4028234663852886e38:
            raise ParseError(f"invalid float value [{text}]")
        return struct.unpack("<f", struct.pack("<f", value))[0]  # ParseFloat(s, 32), then float32()
    if kind == "bool":
        if text not in _BOOLS:
            raise ParseError(f"invalid bool value [{text}]")
        return _BOOLS[text]
    return [text]


def create_request(
    commands: list[Command],
    relative_dir: Path,
    types: dict[str, str],
    digest: Callable[[Path], str],
) -> dict[str, object]:
    """``Modelfile.CreateRequest``: the JSON fields of ``/api/create`` the commands ask for.

    ``files`` and ``adapters`` map absolute local paths to digests, as in Ollama before the CLI
    renames them to base names for upload.
    """
    req: dict[str, object] = {}
    messages: list[dict[str, str]] = []
    licenses: list[str] = []
    params: dict[str, object] = {}
    for c in commands:
        if c.name == "model":
            path = _expand(c.args, relative_dir)
            if path.is_file():
                req.setdefault("files", {})[str(path)] = digest(path)
            elif path.exists():
                raise ParseError("model folders are not supported by this test double")
            else:
                req["from"] = c.args
        elif c.name == "adapter":
            path = _expand(c.args, relative_dir)
            if not path.is_file():
                raise ParseError(f"no such file: {path}")
            req["adapters"] = {str(path): digest(path)}
        elif c.name in ("template", "system", "renderer", "parser"):
            req[c.name] = c.args
        elif c.name == "license":
            licenses.append(c.args)
        elif c.name == "requires":
            version = c.args if c.args.startswith("v") else "v" + c.args
            if not _SEMVER.match(version):
                raise ParseError("requires must be a valid semver (e.g. 0.14.0)")
            req["requires"] = version[1:]
        elif c.name == "message":
            role, _, text = c.args.partition(": ")
            messages.append({"role": role, "content": text})
        elif c.name in DEPRECATED_PARAMETERS:
            continue
        else:
            value = format_param(c.name, c.args, types)
            if isinstance(value, list) and isinstance(params.get(c.name), list):
                params[c.name] = params[c.name] + value
            else:
                params[c.name] = value
    if params:
        req["parameters"] = params
    if messages:
        req["messages"] = messages
    if licenses:
        req["license"] = licenses
    return req


def _expand(path: str, relative_dir: Path) -> Path:
    """``expandPath``: absolute as is, ``~`` and ``~user`` from the home folder, else relative."""
    if path.startswith("/") or path.startswith("\\") or Path(path).is_absolute():
        return Path(path).absolute()
    if path.startswith("~"):
        return Path(path).expanduser().absolute()
    return (relative_dir / path).absolute()
