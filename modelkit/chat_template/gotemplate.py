"""A Python evaluator for Go ``text/template``, fed the data Ollama feeds it.

Why it exists: modelkit proves a translated TEMPLATE at build time, on machines where Go is
usually not installed. This module parses and executes Go template text with Go's semantics
for the part of the language the translator emits, and for most of the rest: trim markers,
comments, ``if``/``else if``/``else``, ``range`` (with ``else``, ``break``, ``continue``),
``with``, ``define``/``template``, variables declared and assigned, pipelines, and the
builtins ``and or not len index slice eq ne lt le gt ge print printf`` plus Ollama's ``json``,
``currentDate`` and ``yesterdayDate``. Strings are handled as bytes, as in Go (``len`` and
``slice`` count bytes). Anything outside that subset raises :class:`GoTemplateError` rather than
guessing. ``tests/chat_template/test_gotemplate.py`` checks it byte for byte against the real
``text/template`` (a small Go program) on every translated template and conversation.

:func:`ollama_data` builds the data exactly as Ollama's ``template.Execute`` does for a template
that uses ``.Messages``: consecutive messages of the same role merged with a blank line (tool
messages excepted), ``.System`` the system messages joined, ``.Messages`` still holding them.
:func:`check_ollama_parse` applies the checks Ollama makes when it loads a template.
"""

from __future__ import annotations

import json
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Callable, Iterator, Mapping, Sequence

from ..ollama_go import go_quote

MAX_EXEC_DEPTH = 100_000  # text/template's maxExecDepth


class GoTemplateError(Exception):
    """The template does not parse, or fails while executing (as Go's would)."""


# --- values -------------------------------------------------------------------------------------


class _NoValue:
    """Go's invalid reflect.Value: a missing map key under ``missingkey=zero``."""

    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE = _NoValue()


class GoStruct:
    """A pointer to a Go struct: fields by name, compared by identity (as pointers are)."""

    def __init__(self, type_name: str, fields: dict[str, Any]) -> None:
        self.type_name = type_name
        self.fields = fields

    def __repr__(self) -> str:
        return f"&{self.type_name}{self.fields!r}"


def _kind(v: Any) -> str:
    if v is NO_VALUE or v is None:
        return "invalid" if v is NO_VALUE else "nil"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, bytes):
        return "string"
    return "other"


def _truth(v: Any) -> bool:
    if v is NO_VALUE or v is None:
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v != 0
    if isinstance(v, (bytes, list, dict, tuple)):
        return len(v) > 0
    return True


def _type_name(v: Any) -> str:
    k = _kind(v)
    if k == "other":
        if isinstance(v, GoStruct):
            return "*" + v.type_name
        if isinstance(v, list):
            return "[]interface {}"
        if isinstance(v, dict):
            return "map[string]interface {}"
        return type(v).__name__
    return {"string": "string", "int": "int", "bool": "bool", "float": "float64", "nil": "<nil>",
            "invalid": "<invalid>"}[k]


def _fmt_v(v: Any) -> bytes:
    """``fmt``'s ``%v`` for the values templates meet."""
    if isinstance(v, bytes):
        return v
    if isinstance(v, bool):
        return b"true" if v else b"false"
    if isinstance(v, int):
        return str(v).encode()
    if isinstance(v, float):
        return repr(v).encode()
    if v is None:
        return b"<nil>"
    if v is NO_VALUE:
        return b"<no value>"
    if isinstance(v, list):
        return b"[" + b" ".join(_fmt_v(x) for x in v) + b"]"
    if isinstance(v, GoStruct):
        return b"&{" + b" ".join(b"[]" if x is None else _fmt_v(x) for x in v.fields.values()) + b"}"
    if isinstance(v, dict):
        return b"map[" + b" ".join(_fmt_v(k) + b":" + _fmt_v(x) for k, x in sorted(v.items())) + b"]"
    raise GoTemplateError(f"cannot print a {type(v).__name__}")


# --- lexing and parsing -------------------------------------------------------------------------

_SPACE = " \t\r\n"


@dataclass
class _Tok:
    kind: str  # str, raw, num, char, var, field, ident, op, dot
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

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a", "b": "\b",
            "f": "\f", "v": "\v", "0": "\0"}


def _unquote(lit: str) -> bytes:
    """``strconv.Unquote`` for interpreted string literals, to bytes."""
    body = lit[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out += ch.encode()
            i += 1
            continue
        esc = body[i + 1]
        if esc == "x":
            out.append(int(body[i + 2:i + 4], 16))
            i += 4
        elif esc == "u":
            out += chr(int(body[i + 2:i + 6], 16)).encode()
            i += 6
        elif esc == "U":
            out += chr(int(body[i + 2:i + 10], 16)).encode()
            i += 10
        elif esc in "01234567" and len(body[i + 1:i + 4]) == 3 and all(c in "01234567" for c in body[i + 1:i + 4]):
            out.append(int(body[i + 1:i + 4], 8))
            i += 4
        elif esc in _ESCAPES:
            out += _ESCAPES[esc].encode()
            i += 2
        else:
            raise GoTemplateError(f"bad escape \\{esc} in {lit}")
    return bytes(out)


def _lex_action(src: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(src):
        m = _TOKEN_RE.match(src, pos)
        if not m:
            raise GoTemplateError(f"unexpected {src[pos:pos + 10]!r} in action")
        kind = m.lastgroup
        text = m.group()
        pos = m.end()
        if kind == "ws":
            toks.append(_Tok("ws", text))
            continue
        if kind == "str":
            toks.append(_Tok("lit", text, _unquote(text)))
        elif kind == "raw":
            toks.append(_Tok("lit", text, text[1:-1].encode()))
        elif kind == "char":
            toks.append(_Tok("lit", text, ord(_unquote('"' + text[1:-1] + '"').decode())))
        elif kind == "num":
            t = text.replace("_", "")
            if re.fullmatch(r"[-+]?0[xX][0-9a-fA-F]+", t):
                toks.append(_Tok("lit", text, int(t, 16)))
            elif re.fullmatch(r"[-+]?[0-9]+", t):
                toks.append(_Tok("lit", text, int(t)))
            else:
                toks.append(_Tok("lit", text, float(t)))
        elif kind == "ident" and text in ("true", "false"):
            toks.append(_Tok("lit", text, text == "true"))
        elif kind == "ident" and text == "nil":
            toks.append(_Tok("nil", text))
        else:
            toks.append(_Tok(kind, text))
    return toks


# AST nodes of the evaluator (distinct from goast: these come from parsing any template text).

@dataclass
class _Operand:
    kind: str  # lit, nil, dot, field, var, pipe, ident
    value: Any = None  # literal value / var name / ident name / pipeline
    chain: tuple[str, ...] = ()


@dataclass
class _Command:
    args: list[_Operand]


@dataclass
class _Pipe:
    decl: list[str]
    assign: bool  # "=" instead of ":="
    cmds: list[_Command]


@dataclass
class _TextN:
    text: bytes


@dataclass
class _ActionN:
    pipe: _Pipe


@dataclass
class _IfN:
    kind: str  # if / with
    pipe: _Pipe
    body: list[Any]
    orelse: list[Any]


@dataclass
class _RangeN:
    pipe: _Pipe
    body: list[Any]
    orelse: list[Any]


@dataclass
class _TemplateN:
    name: str
    pipe: _Pipe | None


class _BreakN:
    pass


class _ContinueN:
    pass


def _strip_ws(toks: list[_Tok]) -> list[_Tok]:
    start, end = 0, len(toks)
    while start < end and toks[start].kind == "ws":
        start += 1
    while end > start and toks[end - 1].kind == "ws":
        end -= 1
    return toks[start:end]


def _split_template(src: str) -> list[tuple[str, str]]:
    """Split template text into ('text', s) and ('action', body) items, applying trim markers."""
    items: list[tuple[str, str]] = []
    pos = 0
    trim_next = False
    while True:
        start = src.find("{{", pos)
        text = src[pos:] if start < 0 else src[pos:start]
        if trim_next:
            text = text.lstrip(_SPACE)
        if start < 0:
            if text:
                items.append(("text", text))
            return items
        inner_start = start + 2
        left_trim = src.startswith("-", inner_start) and inner_start + 1 < len(src) and src[inner_start + 1] in _SPACE
        if left_trim:
            text = text.rstrip(_SPACE)
            inner_start += 2
        if text:
            items.append(("text", text))
        # Find the closing delimiter, skipping over quoted strings and comments.
        i = inner_start
        while i < len(src) and src[i] in _SPACE:
            i += 1
        if src.startswith("/*", i):
            close_comment = src.find("*/", i + 2)
            if close_comment < 0:
                raise GoTemplateError("unclosed comment")
            j = close_comment + 2
            while j < len(src) and src[j] in _SPACE:
                j += 1
            right_trim = False
            if src.startswith("-}}", j) and src[j - 1] in _SPACE:
                right_trim = True
                end = j + 3
            elif src.startswith("}}", j):
                end = j + 2
            else:
                raise GoTemplateError("comment ends with no closing delimiter")
            pos = end
            trim_next = right_trim
            continue
        j = inner_start
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
                j += 1
                continue
            if src.startswith("}}", j):
                break
            j += 1
        body = src[inner_start:j]
        right_trim = len(body) >= 2 and body.endswith("-") and body[-2] in _SPACE
        if right_trim:
            body = body[:-1]
        items.append(("action", body))
        pos = j + 2
        trim_next = right_trim


class _Parser:
    def __init__(self, src: str) -> None:
        self.items = _split_template(src)
        self.pos = 0
        self.defines: dict[str, list[Any]] = {}
        self.scope: list[str] = ["$"]  # variables in scope, as Go's parser checks them

    def parse(self) -> list[Any]:
        nodes, stop = self._list(top=True)
        if stop is not None:
            raise GoTemplateError(f"unexpected {{{{{stop[0]}}}}}")
        return nodes

    def _list(self, top: bool = False) -> tuple[list[Any], tuple[str, list[_Tok]] | None]:
        nodes: list[Any] = []
        while self.pos < len(self.items):
            kind, body = self.items[self.pos]
            self.pos += 1
            if kind == "text":
                nodes.append(_TextN(body.encode()))
                continue
            toks = _lex_action(body)
            while toks and toks[0].kind == "ws":
                toks.pop(0)
            while toks and toks[-1].kind == "ws":
                toks.pop()
            if not toks:
                raise GoTemplateError("missing value for command")
            head = toks[0]
            if head.kind == "ident" and head.text in ("end", "else"):
                return nodes, (head.text, _strip_ws(toks[1:]))
            if head.kind == "ident" and head.text in ("if", "with"):
                nodes.append(self._branch(head.text, toks[1:]))
            elif head.kind == "ident" and head.text == "range":
                mark = len(self.scope)
                pipe = self._pipe(toks[1:], allow_decl=True, range_decl=True)
                body_nodes, stop = self._list()
                orelse: list[Any] = []
                if stop and stop[0] == "else":
                    if stop[1]:
                        raise GoTemplateError("range's else takes no pipeline")
                    orelse, stop = self._list()
                if not stop or stop[0] != "end":
                    raise GoTemplateError("unterminated range")
                del self.scope[mark:]
                nodes.append(_RangeN(pipe, body_nodes, orelse))
            elif head.kind == "ident" and head.text in ("define", "block"):
                if not top:
                    raise GoTemplateError("define inside a control structure")
                toks = [toks[0]] + _strip_ws(toks[1:])
                if len(toks) < 2 or toks[1].kind != "lit" or not isinstance(toks[1].value, bytes):
                    raise GoTemplateError("define needs a template name")
                name = toks[1].value.decode()
                saved, self.scope = self.scope, ["$"]
                body_nodes, stop = self._list()
                self.scope = saved
                if not stop or stop[0] != "end":
                    raise GoTemplateError(f"unterminated define {name!r}")
                self.defines[name] = body_nodes
                if head.text == "block":
                    nodes.append(_TemplateN(name, self._pipe(toks[2:]) if len(toks) > 2 else None))
            elif head.kind == "ident" and head.text == "template":
                toks = [toks[0]] + _strip_ws(toks[1:])
                if len(toks) < 2 or toks[1].kind != "lit" or not isinstance(toks[1].value, bytes):
                    raise GoTemplateError("template needs a name")
                pipe = self._pipe(toks[2:]) if len(toks) > 2 else None
                nodes.append(_TemplateN(toks[1].value.decode(), pipe))
            elif head.kind == "ident" and head.text == "break":
                nodes.append(_BreakN())
            elif head.kind == "ident" and head.text == "continue":
                nodes.append(_ContinueN())
            else:
                nodes.append(_ActionN(self._pipe(toks, allow_decl=True)))
        return nodes, None

    def _branch(self, kind: str, toks: list[_Tok]) -> _IfN:
        mark = len(self.scope)
        try:
            pipe = self._pipe(toks, allow_decl=True)
            body, stop = self._list()
            orelse: list[Any] = []
            if stop and stop[0] == "else":
                rest = stop[1]
                if rest and rest[0].kind == "ident" and rest[0].text in ("if", "with"):
                    orelse = [self._branch(rest[0].text, rest[1:])]
                    return _IfN(kind, pipe, body, orelse)
                if rest:
                    raise GoTemplateError("unexpected tokens after else")
                orelse, stop = self._list()
            if not stop or stop[0] != "end":
                raise GoTemplateError(f"unterminated {kind}")
            return _IfN(kind, pipe, body, orelse)
        finally:
            del self.scope[mark:]

    def _pipe(self, toks: list[_Tok], allow_decl: bool = False, range_decl: bool = False) -> _Pipe:
        toks = _strip_ws(toks)
        decl: list[str] = []
        assign = False
        for op in (":=", "="):
            idx = next((k for k, t in enumerate(toks) if t.kind == "op" and t.text == op), None)
            if idx is not None and allow_decl and all(
                    t.kind in ("var", "ws") or (t.kind == "op" and t.text == ",") for t in toks[:idx]) and idx > 0:
                names = [t.text for t in toks[:idx] if t.kind == "var"]
                if len(names) > (2 if range_decl else 1):
                    raise GoTemplateError("too many declarations")
                decl = names
                assign = op == "="
                toks = toks[idx + 1:]
                for name in names:
                    if assign:
                        self._use(name)
                    else:
                        self.scope.append(name)
                break
        cmds: list[_Command] = []
        current: list[_Tok] = []
        depth = 0
        groups: list[list[_Tok]] = []
        for t in toks:
            if t.kind == "op" and t.text == "(":
                depth += 1
            elif t.kind == "op" and t.text == ")":
                depth -= 1
            if depth == 0 and t.kind == "op" and t.text == "|":
                groups.append(current)
                current = []
            else:
                current.append(t)
        groups.append(current)
        for g in groups:
            g = _strip_ws(g)
            if not g:
                raise GoTemplateError("missing command in pipeline")
            cmds.append(_Command(self._operands(g)))
        return _Pipe(decl, assign, cmds)

    def _use(self, name: str) -> None:
        if name not in self.scope:
            raise GoTemplateError(f'undefined variable "{name}"')

    def _operands(self, toks: list[_Tok]) -> list[_Operand]:
        ops: list[_Operand] = []
        i = 0
        while i < len(toks):
            t = toks[i]
            if t.kind == "ws":
                i += 1
                continue
            if t.kind == "op" and t.text == "(":
                depth = 1
                j = i + 1
                while j < len(toks) and depth:
                    if toks[j].kind == "op" and toks[j].text == "(":
                        depth += 1
                    elif toks[j].kind == "op" and toks[j].text == ")":
                        depth -= 1
                    j += 1
                if depth:
                    raise GoTemplateError("unclosed left paren")
                inner = self._pipe(toks[i + 1:j - 1], allow_decl=False)
                op = _Operand("pipe", inner)
                i = j
            elif t.kind == "lit":
                op = _Operand("lit", t.value)
                i += 1
            elif t.kind == "nil":
                op = _Operand("nil")
                i += 1
            elif t.kind == "dot":
                op = _Operand("dot")
                i += 1
            elif t.kind == "field":
                op = _Operand("dot", chain=(t.text[1:],))
                i += 1
            elif t.kind == "var":
                self._use(t.text)
                op = _Operand("var", t.text)
                i += 1
            elif t.kind == "ident":
                op = _Operand("ident", t.text)
                i += 1
            else:
                raise GoTemplateError(f"unexpected {t.text!r} in operand")
            chain = list(op.chain)
            while i < len(toks) and toks[i].kind == "field":
                chain.append(toks[i].text[1:])
                i += 1
            op.chain = tuple(chain)
            ops.append(op)
        return ops


@dataclass
class GoTemplate:
    """A parsed Go template: the main tree and its ``define``d helpers."""

    source: str
    root: list[Any]
    defines: dict[str, list[Any]] = field(default_factory=dict)


def parse(source: str) -> GoTemplate:
    """Parse Go template text; raises :class:`GoTemplateError` on a syntax error."""
    p = _Parser(source)
    root = p.parse()
    return GoTemplate(source, root, p.defines)


def identifiers(tmpl: GoTemplate) -> set[str]:
    """The field and variable names the template mentions, lower-cased, as Ollama's ``Vars`` sees them.

    Raises :class:`GoTemplateError` where Ollama's walk fails (a ``template`` call without a
    pipeline makes Ollama refuse the whole template).
    """
    names: set[str] = set()

    def pipe(p: _Pipe | None) -> None:
        if p is None:
            return
        names.update(v.lower() for v in p.decl)
        for c in p.cmds:
            for a in c.args:
                operand(a)

    def operand(a: _Operand) -> None:
        if a.kind == "var":
            names.add(a.value.lower())
        if a.kind == "pipe":
            if a.chain:
                return  # a ChainNode: Ollama's walk does not look inside
            pipe(a.value)
        names.update(x.lower() for x in a.chain)

    def walk_nodes(nodes: list[Any]) -> None:
        for n in nodes:
            if isinstance(n, _ActionN):
                pipe(n.pipe)
            elif isinstance(n, _IfN):
                pipe(n.pipe)
                walk_nodes(n.body)
                walk_nodes(n.orelse)
            elif isinstance(n, _RangeN):
                pipe(n.pipe)
                walk_nodes(n.body)
                walk_nodes(n.orelse)
            elif isinstance(n, _TemplateN):
                if n.pipe is None:
                    raise GoTemplateError(f"Ollama refuses {{{{template {n.name!r}}}}} without an argument")
                pipe(n.pipe)

    walk_nodes(tmpl.root)
    for body in tmpl.defines.values():
        walk_nodes(body)
    return names


def check_ollama_parse(source: str) -> GoTemplate:
    """Parse as Ollama does and insist on the ``.Messages`` path (the only one modelkit emits)."""
    tmpl = parse(source)
    if "messages" not in identifiers(tmpl):
        raise GoTemplateError("the template does not use .Messages, so Ollama would render it one turn at a time")
    return tmpl


# --- execution ----------------------------------------------------------------------------------


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


def _json(v: Any) -> bytes:
    """Go's ``json.Marshal`` for plain values (HTML-safe escaping, sorted map keys)."""
    def enc(x: Any) -> str:
        if x is None or x is NO_VALUE:
            return "null"
        if isinstance(x, bool):
            return "true" if x else "false"
        if isinstance(x, int):
            return str(x)
        if isinstance(x, float):
            return json.dumps(x)
        if isinstance(x, bytes):
            s = x.decode("utf-8", errors="replace")
            out = ['"']
            for ch in s:
                if ch == '"':
                    out.append('\\"')
                elif ch == "\\":
                    out.append("\\\\")
                elif ch == "\n":
                    out.append("\\n")
                elif ch == "\r":
                    out.append("\\r")
                elif ch == "\t":
                    out.append("\\t")
                elif ord(ch) < 0x20 or ch in "<>&\u2028\u2029":
                    out.append(f"\\u{ord(ch):04x}")
                else:
                    out.append(ch)
            out.append('"')
            return "".join(out)
        if isinstance(x, list):
            return "[" + ",".join(enc(e) for e in x) + "]"
        if isinstance(x, dict):
            return "{" + ",".join(enc(k if isinstance(k, bytes) else str(k).encode()) + ":" + enc(x[k])
                                  for k in sorted(x, key=lambda k: k if isinstance(k, bytes) else str(k).encode())) + "}"
        if isinstance(x, GoStruct):
            return "{" + ",".join(enc(k.encode()) + ":" + enc(val) for k, val in x.fields.items()) + "}"
        raise GoTemplateError(f"json: unsupported value {x!r}")
    return enc(v).encode()


_PRINTF_RE = re.compile(rb"%([-+# 0]*)(\*|[0-9]+)?(?:\.(\*|[0-9]+))?([a-zA-Z%])")


def _sprintf(fmt: bytes, args: list[Any]) -> bytes:
    """``fmt.Sprintf`` for the verbs templates use: ``%s %d %v %b %q %x %%``, widths and ``*``."""
    out = bytearray()
    pos = 0
    ai = 0

    def next_arg() -> Any:
        nonlocal ai
        if ai >= len(args):
            return None
        ai += 1
        return args[ai - 1]

    for m in _PRINTF_RE.finditer(fmt):
        out += fmt[pos:m.start()]
        pos = m.end()
        flags, width, prec, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        if verb == b"%":
            out += b"%"
            continue
        w: int | None = None
        left = b"-" in flags
        if width == b"*":
            wv = next_arg()
            if not isinstance(wv, int) or isinstance(wv, bool):
                out += b"%!(BADWIDTH)"
                w = None
            else:
                w = wv
                if w < 0:
                    left, w = True, -w
        elif width:
            w = int(width)
        p: int | None = None
        if prec == b"*":
            pv = next_arg()
            p = pv if isinstance(pv, int) and not isinstance(pv, bool) else None
        elif prec is not None:
            p = int(prec) if prec else 0
        arg = next_arg()
        if arg is None and ai > len(args):
            out += b"%!" + verb + b"(MISSING)"
            continue
        if verb in (b"s", b"v"):
            s = _fmt_v(arg)
            if p is not None and isinstance(arg, bytes):
                s = s.decode("utf-8", errors="surrogateescape")[:p].encode("utf-8", errors="surrogateescape")
        elif verb == b"d" and isinstance(arg, int) and not isinstance(arg, bool):
            s = str(arg).encode()
        elif verb == b"b" and isinstance(arg, int) and not isinstance(arg, bool):
            s = (b"-" if arg < 0 else b"") + format(abs(arg), "b").encode()
        elif verb == b"x" and isinstance(arg, int) and not isinstance(arg, bool):
            s = format(arg, "x").encode()
        elif verb == b"q" and isinstance(arg, bytes):
            s = go_quote(arg.decode("utf-8", errors="replace")).encode()
        else:
            raise GoTemplateError(f"printf verb %{verb.decode()} with {_type_name(arg)} is not supported here")
        if w is not None:
            n_chars = len(s.decode("utf-8", errors="replace"))
            pad = b" " * max(0, w - n_chars)
            s = s + pad if left else (pad + s if b"0" not in flags or verb == b"s" else s.rjust(w, b"0"))
        out += s
    out += fmt[pos:]
    if ai < len(args):
        out += b"%!(EXTRA " + b", ".join(_type_name(a).encode() + b"=" + _fmt_v(a) for a in args[ai:]) + b")"
    return bytes(out)


def _sprint(args: list[Any]) -> bytes:
    out = bytearray()
    prev_string = False
    for i, a in enumerate(args):
        is_string = isinstance(a, bytes)
        if i > 0 and not is_string and not prev_string:
            out += b" "
        out += _fmt_v(a)
        prev_string = is_string
    return bytes(out)


def _to_int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise GoTemplateError(f"cannot index slice/array with type {_type_name(v)}")
    return v


def _eq(a: Any, *bs: Any) -> bool:
    if not bs:
        raise GoTemplateError("missing argument for comparison")
    ka = _kind(a)
    for b in bs:
        kb = _kind(b)
        if ka != kb:
            if ka in ("invalid", "nil") or kb in ("invalid", "nil"):
                if ka in ("other", "nil") and kb in ("other", "nil"):
                    if (a is None) == (b is None) and a is None:
                        return True
                    continue
                continue
            raise GoTemplateError("incompatible types for comparison")
        if ka == "other":
            if isinstance(a, (list, dict)) or isinstance(b, (list, dict)):
                raise GoTemplateError("non-comparable types")
            if a is b:
                return True
            continue
        if a == b:
            return True
    return False


def _order(a: Any, b: Any) -> int:
    ka, kb = _kind(a), _kind(b)
    if ka not in ("int", "float", "string") or kb not in ("int", "float", "string"):
        raise GoTemplateError("invalid type for comparison")
    if ka != kb:
        raise GoTemplateError("incompatible types for comparison")
    return (a > b) - (a < b)


def _index(item: Any, *idx: Any) -> Any:
    v = item
    for i in idx:
        if v is None or v is NO_VALUE:
            raise GoTemplateError("index of untyped nil")
        if isinstance(v, (bytes, list)):
            n = _to_int(i)
            if n < 0 or n >= len(v):
                raise GoTemplateError(f"error calling index: index out of range: {n}")
            v = v[n]
        elif isinstance(v, dict):
            v = v.get(i if not isinstance(i, bytes) else i.decode(), NO_VALUE)
        else:
            raise GoTemplateError(f"can't index item of type {_type_name(v)}")
    return v


def _slice(item: Any, *idx: Any) -> Any:
    if not isinstance(item, (bytes, list)):
        raise GoTemplateError(f"can't slice item of type {_type_name(item)}")
    if len(idx) > 3 or (len(idx) == 3 and isinstance(item, bytes)):
        raise GoTemplateError("too many slice indexes")
    n = [_to_int(i) for i in idx]
    for k in n:
        if k < 0 or k > len(item):
            raise GoTemplateError(f"error calling slice: index out of range: {k}")
    i = n[0] if n else 0
    j = n[1] if len(n) > 1 else len(item)
    if i > j:
        raise GoTemplateError(f"error calling slice: invalid slice index: {i} > {j}")
    return item[i:j]


def _length(v: Any) -> int:
    if isinstance(v, (bytes, list, dict, tuple)):
        return len(v)
    raise GoTemplateError(f"error calling len: len of type {_type_name(v)}")


@dataclass
class _State:
    tmpl: GoTemplate
    funcs: Mapping[str, Callable[..., Any]]
    out: bytearray
    vars: list[tuple[str, Any]]
    depth: int = 0


class _Exec:
    def __init__(self, tmpl: GoTemplate, funcs: Mapping[str, Callable[..., Any]]) -> None:
        self.tmpl = tmpl
        self.funcs = funcs

    def run(self, data: Any) -> bytes:
        st = _State(self.tmpl, self.funcs, bytearray(), [("$", data)])
        self.walk(st, data, self.tmpl.root)
        return bytes(st.out)

    # variables
    def _lookup(self, st: _State, name: str) -> Any:
        for n, v in reversed(st.vars):
            if n == name:
                return v
        raise GoTemplateError(f'undefined variable "{name}"')

    def _assign(self, st: _State, name: str, value: Any) -> None:
        for k in range(len(st.vars) - 1, -1, -1):
            if st.vars[k][0] == name:
                st.vars[k] = (name, value)
                return
        raise GoTemplateError(f'undefined variable "{name}"')

    def walk(self, st: _State, dot: Any, nodes: list[Any]) -> None:
        for n in nodes:
            if isinstance(n, _TextN):
                st.out += n.text
            elif isinstance(n, _ActionN):
                v = self.pipe(st, dot, n.pipe)
                if not n.pipe.decl:
                    st.out += _fmt_v(v)
            elif isinstance(n, _IfN):
                mark = len(st.vars)
                v = self.pipe(st, dot, n.pipe)
                if _truth(v):
                    self.walk(st, v if n.kind == "with" else dot, n.body)
                else:
                    self.walk(st, dot, n.orelse)
                del st.vars[mark:]
            elif isinstance(n, _RangeN):
                self.range(st, dot, n)
            elif isinstance(n, _TemplateN):
                if n.name not in self.tmpl.defines:
                    raise GoTemplateError(f'template "{n.name}" not defined')
                arg = self.pipe(st, dot, n.pipe) if n.pipe else None
                if st.depth >= MAX_EXEC_DEPTH:
                    raise GoTemplateError(f"exceeded maximum template depth ({MAX_EXEC_DEPTH})")
                sub = _State(st.tmpl, st.funcs, st.out, [("$", arg)], st.depth + 1)
                self.walk(sub, arg, self.tmpl.defines[n.name])
            elif isinstance(n, _BreakN):
                raise _Break()
            elif isinstance(n, _ContinueN):
                raise _Continue()
            else:  # pragma: no cover
                raise GoTemplateError(f"unknown node {n!r}")

    def range(self, st: _State, dot: Any, n: _RangeN) -> None:
        mark = len(st.vars)
        pipe = n.pipe
        value = self.pipe(st, dot, _Pipe([], False, pipe.cmds))
        for name in pipe.decl:
            st.vars.append((name, None))
        if isinstance(value, int) and not isinstance(value, bool):
            items = [(i, i) for i in range(value)]
        elif isinstance(value, (list, tuple)):
            items = list(enumerate(value))
        elif isinstance(value, dict):
            items = [(k, value[k]) for k in sorted(value)]
        elif value is None or value is NO_VALUE:
            items = []
        else:
            raise GoTemplateError(f"range can't iterate over {_fmt_v(value).decode(errors='replace')}")
        if not items:
            del st.vars[mark:]
            self.walk(st, dot, n.orelse)
            return
        for idx, elem in items:
            if len(pipe.decl) == 1:
                st.vars[mark] = (pipe.decl[0], elem)
            elif len(pipe.decl) == 2:
                st.vars[mark] = (pipe.decl[0], idx)
                st.vars[mark + 1] = (pipe.decl[1], elem)
            inner = len(st.vars)
            try:
                self.walk(st, elem, n.body)
            except _Break:
                del st.vars[inner:]
                break
            except _Continue:
                pass
            del st.vars[inner:]
        del st.vars[mark:]

    def pipe(self, st: _State, dot: Any, p: _Pipe) -> Any:
        value: Any = _UNSET
        for cmd in p.cmds:
            value = self.command(st, dot, cmd, value)
        for name in p.decl:
            if p.assign:
                self._assign(st, name, value)
            else:
                st.vars.append((name, value))
        return value

    def command(self, st: _State, dot: Any, cmd: _Command, final: Any) -> Any:
        first = cmd.args[0]
        if first.kind == "ident":
            return self.call(st, dot, first.value, cmd.args[1:], final)
        if len(cmd.args) > 1 or final is not _UNSET:
            raise GoTemplateError(f"can't give argument to non-function {first.kind}")
        return self.operand(st, dot, first)

    def operand(self, st: _State, dot: Any, op: _Operand) -> Any:
        if op.kind == "lit":
            v = op.value
        elif op.kind == "nil":
            raise GoTemplateError("nil is not a command")
        elif op.kind == "dot":
            v = dot
        elif op.kind == "var":
            v = self._lookup(st, op.value)
        elif op.kind == "pipe":
            v = self.pipe(st, dot, op.value)
        elif op.kind == "ident":
            v = self.call(st, dot, op.value, [], _UNSET)
        else:  # pragma: no cover
            raise GoTemplateError(op.kind)
        for name in op.chain:
            v = self.field(v, name)
        return v

    @staticmethod
    def field(v: Any, name: str) -> Any:
        if isinstance(v, dict):
            return v.get(name, NO_VALUE)
        if isinstance(v, GoStruct):
            if name not in v.fields:
                raise GoTemplateError(f"can't evaluate field {name} in type *{v.type_name}")
            return v.fields[name]
        if v is None or v is NO_VALUE:
            raise GoTemplateError(f"nil pointer evaluating interface {{}}.{name}")
        raise GoTemplateError(f"can't evaluate field {name} in type {_type_name(v)}")

    def call(self, st: _State, dot: Any, name: str, args: list[_Operand], final: Any) -> Any:
        def ev(op: _Operand) -> Any:
            return self.operand(st, dot, op)

        if name in ("and", "or"):
            ops = list(args)
            if not ops and final is _UNSET:
                raise GoTemplateError(f"wrong number of args for {name}: want at least 1 got 0")
            values_iter: Iterator[Any] = (ev(o) for o in ops)
            result: Any = _UNSET
            for v in values_iter:
                result = v
                if (name == "and" and not _truth(v)) or (name == "or" and _truth(v)):
                    return v
            if final is not _UNSET:
                return final
            return result
        vals = [ev(a) for a in args]
        if final is not _UNSET:
            vals.append(final)
        if name in st.funcs:
            return st.funcs[name](*vals)
        builtin = _BUILTINS.get(name)
        if builtin is None:
            raise GoTemplateError(f'function "{name}" not defined')
        try:
            return builtin(*vals)
        except TypeError as exc:
            raise GoTemplateError(f"wrong number of args for {name}: {exc}") from None


_UNSET = object()

_BUILTINS: dict[str, Callable[..., Any]] = {
    "not": lambda a: not _truth(a),
    "len": _length,
    "index": _index,
    "slice": _slice,
    "eq": _eq,
    "ne": lambda a, b: not _eq(a, b),
    "lt": lambda a, b: _order(a, b) < 0,
    "le": lambda a, b: _order(a, b) <= 0,
    "gt": lambda a, b: _order(a, b) > 0,
    "ge": lambda a, b: _order(a, b) >= 0,
    "print": lambda *a: _sprint(list(a)),
    "printf": lambda f, *a: _sprintf(f, list(a)),
    "println": lambda *a: b" ".join(_fmt_v(x) for x in a) + b"\n",
}


def ollama_funcs(today: date) -> dict[str, Callable[..., Any]]:
    """Ollama's extra template functions (``template.go`` ``funcs``), with ``today`` as the clock."""
    return {
        "json": _json,
        "currentDate": lambda *args: today.strftime("%Y-%m-%d").encode(),
        "yesterdayDate": lambda *args: (today - timedelta(days=1)).strftime("%Y-%m-%d").encode(),
    }


@contextmanager
def _deep_recursion(limit: int = 20_000) -> Iterator[None]:
    """Helper templates recurse once per trimmed character; give Python room for that."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def execute(tmpl: GoTemplate | str, data: Any, today: date | None = None) -> str:
    """Run a template on data (as built by :func:`ollama_data`) and return the text it writes."""
    if isinstance(tmpl, str):
        tmpl = parse(tmpl)
    runner = _Exec(tmpl, ollama_funcs(today or date.today()))
    with _deep_recursion():
        try:
            out = runner.run(data)
        except RecursionError:
            raise GoTemplateError("template recursion too deep for the Python evaluator") from None
        except (_Break, _Continue):
            raise GoTemplateError("break or continue outside range") from None
    return out.decode("utf-8", errors="replace")


# --- Ollama's data ------------------------------------------------------------------------------


def collate(messages: Sequence[Mapping[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Ollama's ``collate``: merge consecutive same-role messages (not tool ones), gather system text."""
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.get("role") == "system":
            system.append(m.get("content", ""))
        if out and out[-1]["role"] == m.get("role") and m.get("role") != "tool":
            out[-1]["content"] += "\n\n" + m.get("content", "")
        else:
            out.append(dict(m))
    return "\n\n".join(system), out


def ollama_data(messages: Sequence[Mapping[str, Any]], system: str | None = None) -> dict[str, Any]:
    """The data Ollama's chat path passes to a TEMPLATE that uses ``.Messages``.

    ``system`` is the Modelfile's SYSTEM, which Ollama puts first when the request has no system
    message of its own.
    """
    msgs = [dict(m) for m in messages]
    if system and (not msgs or msgs[0].get("role") != "system"):
        msgs.insert(0, {"role": "system", "content": system})
    joined, collated = collate(msgs)
    converted = [GoStruct("template.templateMessage", {
        "Role": str(m.get("role", "")).encode(),
        "Content": str(m.get("content", "")).encode(),
        "Thinking": str(m.get("thinking", "")).encode(),
        "Images": None,
        "ToolCalls": None,
        "ToolName": str(m.get("tool_name", "")).encode(),
        "ToolCallID": str(m.get("tool_call_id", "")).encode(),
    }) for m in collated]
    return {
        "System": joined.encode(),
        "Messages": converted,
        "Tools": None,
        "Response": b"",
        "Think": False,
        "ThinkLevel": b"",
        "IsThinkSet": False,
    }


def render_ollama(source: str | GoTemplate, messages: Sequence[Mapping[str, Any]],
                  today: date | None = None, system: str | None = None) -> str:
    """Render a conversation through a TEMPLATE as Ollama's chat endpoint would."""
    tmpl = check_ollama_parse(source) if isinstance(source, str) else source
    return execute(tmpl, ollama_data(messages, system), today)
