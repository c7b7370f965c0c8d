"""Ollama's template handling, for the stand-in: ``template/template.go``, ``thinking/template.go``
and the capability rules of ``server/images.go``.

* :func:`named` is ``template.Named``: the index entry whose Jinja is nearest (Levenshtein distance,
  ``agnivade/levenshtein`` over runes) to a GGUF's ``tokenizer.chat_template``, if that distance
  is below 100. Only a few entries of Ollama's ``template/index.json`` are written out below
  (:data:`INDEX`), in their index order, with their ``.gotmpl`` text and ``.json`` parameters; an
  input nearer to an entry left out would match here when Ollama would pick that other entry, or
  not at all. Keep test GGUFs' templates at (or within a few edits of) an entry listed here.
* :func:`parse` is ``template.Parse`` (Go's ``text/template`` parser with Ollama's functions); it
  raises :class:`TemplateError` with Go's message (``template: :LINE: ...``) for what Go rejects.
* :meth:`Template.vars` is ``Template.Vars`` (the lower-cased identifiers ``Identifiers`` finds),
  :meth:`Template.thinking_tags` is ``thinking.InferTags``.
* :func:`chat_template_capabilities`, :func:`go_template_capabilities` and
  :func:`should_prefer_chat_template` are the functions of the same names in ``server/images.go``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

# --- template/index.json (a few entries) -----------------------------------------------------------

# (position in Ollama's template/index.json, name, the entry's "template" (Jinja)).
INDEX: list[tuple[int, str, str]] = [
    (2, "zephyr",
     "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + "
     "eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n"
     "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n"
     "{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"),
    (5, "chatml",
     "{{bos_token}}{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
     "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"),
    (23, "llama3-instruct",
     "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
     "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
     "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
     "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"),
]

# template/<name>.gotmpl
GOTMPL: dict[str, str] = {
    "zephyr": "{{- range .Messages }}<|{{ .Role }}|>\n{{ .Content }}</s>\n{{ end }}<|assistant|>\n",
    "chatml": "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n",
    "llama3-instruct": "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}"
                       "<|eot_id|>\n{{- end }}<|start_header_id|>assistant<|end_header_id|>\n\n",
}

# template/<name>.json ("stop" parameters)
PARAMETERS: dict[str, dict[str, list[str]]] = {
    "zephyr": {"stop": ["<|system|>", "</s>", "<|user|>", "<|assistant|>"]},
    "chatml": {"stop": ["<|im_start|>", "<|im_end|>"]},
    "llama3-instruct": {"stop": ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]},
}

MAX_DISTANCE = 100  # Named: "if score < 100"


@dataclass(frozen=True)
class NamedTemplate:
    name: str
    template: str  # the Go template (.gotmpl), line endings normalized
    parameters: dict[str, list[str]] | None


def levenshtein(a: str, b: str, cap: int = MAX_DISTANCE) -> int:
    """The edit distance of ``a`` and ``b`` (over code points, as Go's over runes), or ``cap`` if it
    is ``cap`` or more (a banded computation: only distances below the threshold matter)."""
    if abs(len(a) - len(b)) >= cap:
        return cap
    if len(a) < len(b):
        a, b = b, a
    n = len(b)
    inf = cap
    prev = [j if j < cap else inf for j in range(n + 1)]
    for i in range(1, len(a) + 1):
        lo, hi = max(1, i - cap), min(n, i + cap)
        cur = [inf] * (n + 1)
        cur[0] = i if i < cap else inf
        ca = a[i - 1]
        best = cur[0]
        for j in range(lo, hi + 1):
            v = prev[j - 1] + (ca != b[j - 1])
            if prev[j] + 1 < v:
                v = prev[j] + 1
            if cur[j - 1] + 1 < v:
                v = cur[j - 1] + 1
            cur[j] = v if v < cap else inf
            if v < best:
                best = v
        if best >= cap:
            return cap
        prev = cur
    return min(prev[n], cap)


def named(chat_template: str) -> NamedTemplate | None:
    """``template.Named``: the nearest index entry below the distance threshold, else None."""
    best, score = None, MAX_DISTANCE
    for _, name, jinja in INDEX:
        d = levenshtein(chat_template, jinja, MAX_DISTANCE)
        if d < score:
            best, score = name, d
    if best is None:
        return None
    return NamedTemplate(best, GOTMPL[best].replace("\r\n", "\n"), PARAMETERS.get(best))


# --- text/template parsing -------------------------------------------------------------------------


class TemplateError(Exception):
    """A ``text/template`` parse error, with Go's message."""


FUNCTIONS = {
    # text/template builtins
    "and", "call", "html", "index", "slice", "js", "len", "not", "or", "print", "printf", "println",
    "urlquery", "eq", "ge", "gt", "le", "lt", "ne",
    # template/template.go funcs
    "json", "currentDate", "yesterdayDate", "toTypeScriptType",
}
_KEYWORDS = {"block", "break", "continue", "define", "else", "end", "if", "range", "nil", "template", "with"}
_SPACE = " \t\r\n"


@dataclass
class Tok:
    kind: str  # text, comment, left, right, space, ident, keyword, field, variable, dot, string, raw,
    #            char, number, bool, pipe, assign, declare, lparen, rparen, charitem, eof, error
    val: str
    line: int


def _lex(src: str) -> list[Tok]:
    """``text/template/parse/lex.go``, producing the whole token list (errors end it)."""
    toks: list[Tok] = []
    pos, line, n = 0, 1, len(src)

    def emit(kind: str, val: str, at_line: int) -> None:
        toks.append(Tok(kind, val, at_line))

    while pos < n:
        x = src.find("{{", pos)
        if x < 0:
            emit("text", src[pos:], line)
            line += src.count("\n", pos)
            pos = n
            break
        text = src[pos:x]
        after = src[x + 2 :]
        left_trim = len(after) >= 2 and after[0] == "-" and after[1] in _SPACE
        if left_trim:
            text = text.rstrip(_SPACE)
        if text:
            emit("text", text, line)
        line += src.count("\n", pos, x)
        pos = x + 2 + (2 if left_trim else 0)
        if src.startswith("/*", pos):  # lexComment
            end = src.find("*/", pos + 2)
            if end < 0:
                emit("error", "unclosed comment", line)
                return toks
            comment = src[pos : end + 2]
            pos = end + 2
            right_trim = len(src) > pos + 3 and src[pos] in _SPACE and src.startswith("-}}", pos + 1)
            if right_trim:
                pos += 4
            elif src.startswith("}}", pos):
                pos += 2
            else:
                emit("error", "comment ends before closing delimiter", line)
                return toks
            emit("comment", comment, line)
            line += comment.count("\n")
            if right_trim:
                while pos < n and src[pos] in _SPACE:
                    line += src[pos] == "\n"
                    pos += 1
            continue
        emit("left", "{{", line)
        depth = 0
        while True:  # lexInsideAction
            if src.startswith("}}", pos) or (pos + 3 < n + 0 and src[pos] in _SPACE and src.startswith("-}}", pos + 1)):
                right_trim = not src.startswith("}}", pos)
                if depth:
                    emit("error", "unclosed left paren", line)
                    return toks
                if right_trim:
                    line += src[pos] == "\n"
                    pos += 1
                emit("right", "}}", line)
                pos += 3 if right_trim else 2
                if right_trim:
                    while pos < n and src[pos] in _SPACE:
                        line += src[pos] == "\n"
                        pos += 1
                break
            if pos >= n:
                emit("error", "unclosed action", line)
                return toks
            c = src[pos]
            if c in _SPACE:
                start = pos
                while pos < n and src[pos] in _SPACE and not (src.startswith("-}}", pos + 1)):
                    pos += 1
                if pos == start:  # a space right before "-}}": the delimiter check takes it
                    continue
                emit("space", src[start:pos], line)
                line += src.count("\n", start, pos)
            elif c == "=":
                emit("assign", "=", line)
                pos += 1
            elif c == ":":
                if not src.startswith(":=", pos):
                    emit("error", "expected :=", line)
                    return toks
                emit("declare", ":=", line)
                pos += 2
            elif c == "|":
                emit("pipe", "|", line)
                pos += 1
            elif c == '"':
                end = pos + 1
                while True:
                    if end >= n or src[end] == "\n":
                        emit("error", "unterminated quoted string", line)
                        return toks
                    if src[end] == "\\":
                        end += 2
                        continue
                    if src[end] == '"':
                        break
                    end += 1
                emit("string", src[pos : end + 1], line)
                pos = end + 1
            elif c == "`":
                end = src.find("`", pos + 1)
                if end < 0:
                    emit("error", "unterminated raw quoted string", line)
                    return toks
                emit("raw", src[pos : end + 1], line)
                line += src.count("\n", pos, end)
                pos = end + 1
            elif c == "'":
                end = pos + 1
                while True:
                    if end >= n or src[end] == "\n":
                        emit("error", "unterminated character constant", line)
                        return toks
                    if src[end] == "\\":
                        end += 2
                        continue
                    if src[end] == "'":
                        break
                    end += 1
                emit("char", src[pos : end + 1], line)
                pos = end + 1
            elif c == "$":
                end = pos + 1
                while end < n and (src[end].isalnum() or src[end] == "_"):
                    end += 1
                emit("variable", src[pos:end], line)
                pos = end
                if not _at_terminator(src, pos):
                    emit("error", f"bad character {_u(src[pos])}", line)
                    return toks
            elif c == "." and not (pos + 1 < n and src[pos + 1].isdigit()):
                end = pos + 1
                while end < n and (src[end].isalnum() or src[end] == "_"):
                    end += 1
                emit("dot" if end == pos + 1 else "field", src[pos:end], line)
                pos = end
                if end > pos and not _at_terminator(src, pos):
                    emit("error", f"bad character {_u(src[pos])}", line)
                    return toks
            elif c in "+-" or c.isdigit() or c == ".":
                end = pos + 1
                while end < n and (src[end].isalnum() or src[end] in "._+-") and not (
                        src[end] in "+-" and src[end - 1] not in "eEpP"):
                    end += 1
                emit("number", src[pos:end], line)
                pos = end
            elif c.isalpha() or c == "_":
                end = pos + 1
                while end < n and (src[end].isalnum() or src[end] == "_"):
                    end += 1
                word = src[pos:end]
                kind = "keyword" if word in _KEYWORDS else "bool" if word in ("true", "false") else "ident"
                emit(kind, word, line)
                pos = end
                if not _at_terminator(src, pos):
                    emit("error", f"bad character {_u(src[pos])}", line)
                    return toks
            elif c == "(":
                depth += 1
                emit("lparen", "(", line)
                pos += 1
            elif c == ")":
                depth -= 1
                emit("rparen", ")", line)
                pos += 1
                if depth < 0:
                    emit("error", "unexpected right paren", line)
                    return toks
            elif ord(c) < 0x80 and c.isprintable():
                emit("charitem", c, line)
                pos += 1
            else:
                emit("error", f"unrecognized character in action: {_u(c)}", line)
                return toks
    emit("eof", "", line)
    return toks


def _u(c: str) -> str:
    """Go's ``%#U``."""
    return f"U+{ord(c):04X} '{c}'" if c.isprintable() else f"U+{ord(c):04X}"


def _at_terminator(src: str, pos: int) -> bool:
    """``lexer.atTerminator``."""
    if pos >= len(src):
        return True
    c = src[pos]
    return c in _SPACE or c in ".,|:)(" or src.startswith("}}", pos)


# Nodes: a small version of text/template/parse's tree, with what Identifiers and InferTags visit.


@dataclass
class Text:
    text: str


@dataclass
class Comment:
    text: str


@dataclass
class Field:
    ident: list[str]


@dataclass
class Variable:
    ident: list[str]


@dataclass
class Leaf:  # identifier (function name), dot, nil, bool, number, string
    kind: str
    val: str


@dataclass
class Chain:
    node: object
    fields: list[str]


@dataclass
class Command:
    args: list[object]


@dataclass
class Pipe:
    decl: list[Variable]
    cmds: list[Command]


@dataclass
class Action:
    pipe: Pipe


@dataclass
class Branch:  # if / range / with
    kind: str
    pipe: Pipe
    body: List
    else_body: List | None


@dataclass
class TemplateCall:
    name: str
    pipe: Pipe | None


@dataclass
class Loop:  # break / continue
    kind: str


@dataclass
class List:
    nodes: list[object] = field(default_factory=list)


Node = Text | Comment | Action | Branch | TemplateCall | Loop | List | Pipe | Command | Field | Variable | Leaf | Chain


class _End:
    """``nodeEnd`` / ``nodeElse``: what ``action`` returns for ``{{end}}`` and ``{{else}}``."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __str__(self) -> str:
        return "{{" + self.kind + "}}"


class _Parser:
    """``text/template/parse/parse.go``'s recursive descent (``Tree.parse`` and the functions it
    calls), enough to accept what Go accepts and reject the rest with Go's message."""

    def __init__(self, src: str) -> None:
        self.toks = _lex(src)
        self.i = 0
        self.last: Tok = self.toks[0]
        self.vars = ["$"]
        self.range_depth = 0
        self.defined: dict[str, List] = {}

    # --- token plumbing (next, backup, peek, nextNonSpace, peekNonSpace) ------------------------
    def next(self) -> Tok:
        t = self.toks[min(self.i, len(self.toks) - 1)]
        self.i += 1
        self.last = t
        if t.kind == "error":
            self.fail(t.val)
        return t

    def backup(self) -> None:
        self.i -= 1

    def peek(self) -> Tok:
        return self.toks[min(self.i, len(self.toks) - 1)]

    def next_non_space(self) -> Tok:
        t = self.next()
        while t.kind == "space":
            t = self.next()
        return t

    def peek_non_space(self) -> Tok:
        t = self.next_non_space()
        self.backup()
        return t

    def fail(self, msg: str) -> None:
        """``Tree.errorf``: the message, at the line of the last token read."""
        raise TemplateError(f"template: :{self.last.line}: {msg}")

    @staticmethod
    def describe(t: Tok) -> str:
        """``item.String``."""
        if t.kind == "eof":
            return "EOF"
        if t.kind == "keyword":
            return f"<{t.val}>"
        from ollama_go import quote

        return quote(t.val[:10]) + "..." if len(t.val) > 10 else quote(t.val)

    def unexpected(self, t: Tok, context: str) -> None:
        self.fail(f"unexpected {self.describe(t)} in {context}")

    def expect(self, kind: str, context: str) -> Tok:
        t = self.next_non_space()
        if t.kind != kind:
            self.unexpected(t, context)
        return t

    # --- grammar ---------------------------------------------------------------------------------
    def parse(self) -> List:
        root = List()
        while self.peek().kind != "eof":
            if self.peek().kind == "left":
                at = self.i
                self.next()
                t = self.next_non_space()
                if t.kind == "keyword" and t.val == "define":
                    self.definition()
                    continue
                self.i = at
            node = self.text_or_action()
            if isinstance(node, _End):
                self.fail(f"unexpected {node}")
            root.nodes.append(node)
        return root

    def text_or_action(self) -> object:
        t = self.next_non_space()
        if t.kind == "text":
            return Text(t.val)
        if t.kind == "left":
            return self.action()
        if t.kind == "comment":
            return Comment(t.val)
        self.unexpected(t, "input")
        raise AssertionError

    def item_list(self) -> tuple[List, _End]:
        out = List()
        while self.peek_non_space().kind != "eof":
            node = self.text_or_action()
            if isinstance(node, _End):
                return out, node
            out.nodes.append(node)
        self.fail("unexpected EOF")
        raise AssertionError

    def sub_tree(self, context: str) -> List:
        """A ``define``/``block`` body: a new tree with its own variables and range depth."""
        saved = (self.vars, self.range_depth)
        self.vars, self.range_depth = ["$"], 0
        body, end = self.item_list()
        if end.kind != "end":
            self.fail(f"unexpected {end} in {context}")
        self.vars, self.range_depth = saved
        return body

    def template_name(self, t: Tok, context: str) -> str:
        if t.kind not in ("string", "raw"):
            self.unexpected(t, context)
        return _unquote(self, t)

    def definition(self) -> None:
        t = self.next_non_space()
        if t.kind not in ("string", "raw"):
            self.unexpected(t, "define clause")
        name = _unquote(self, t)
        self.expect("right", "define clause")
        self.defined[name] = self.sub_tree("define clause")

    def action(self) -> object:
        t = self.next_non_space()
        if t.kind == "keyword":
            if t.val == "else":
                p = self.peek_non_space()
                if not (p.kind == "keyword" and p.val in ("if", "with")):
                    self.expect("right", "else")
                return _End("else")
            if t.val == "end":
                self.expect("right", "end")
                return _End("end")
            if t.val in ("if", "range", "with"):
                return self.control(t.val)
            if t.val == "block":
                name = self.template_name(self.next_non_space(), "block clause")
                pipe = self.pipeline("block clause", "right")
                self.defined[name] = self.sub_tree("block clause")
                return TemplateCall(name, pipe)
            if t.val == "template":
                name = self.template_name(self.next_non_space(), "template clause")
                pipe = None
                if self.next_non_space().kind != "right":
                    self.backup()
                    pipe = self.pipeline("template clause", "right")
                return TemplateCall(name, pipe)
            if t.val in ("break", "continue"):
                tok = self.next_non_space()
                if tok.kind != "right":
                    self.unexpected(tok, "{{" + t.val + "}}")
                if self.range_depth == 0:
                    self.fail("{{" + t.val + "}} outside {{range}}")
                return Loop(t.val)
        self.backup()
        return Action(self.pipeline("command", "right"))

    def control(self, kind: str) -> Branch:
        """``parseControl``, with ``else if`` / ``else with`` read as a nested control."""
        saved = len(self.vars)
        pipe = self.pipeline(kind, "right")
        if kind == "range":
            self.range_depth += 1
        body, nxt = self.item_list()
        if kind == "range":
            self.range_depth -= 1
        else_body = None
        if nxt.kind == "else":
            p = self.peek()
            if kind in ("if", "with") and p.kind == "keyword" and p.val == kind:
                self.next()
                else_body = List([self.control(kind)])
            else:
                else_body, nxt = self.item_list()
                if nxt.kind != "end":
                    self.fail(f"expected end; found {nxt}")
        del self.vars[saved:]
        return Branch(kind, pipe, body, else_body)

    def pipeline(self, context: str, end: str) -> Pipe:
        pipe = Pipe([], [])
        while True:  # declarations
            v = self.peek_non_space()
            if v.kind != "variable":
                break
            at = self.i
            self.next_non_space()
            after = self.peek()
            nxt = self.peek_non_space()
            if nxt.kind in ("assign", "declare"):
                self.next_non_space()
                pipe.decl.append(Variable([v.val]))
                self.vars.append(v.val)
            elif nxt.kind == "charitem" and nxt.val == ",":
                self.next_non_space()
                pipe.decl.append(Variable([v.val]))
                self.vars.append(v.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().kind in ("variable", "right", "rparen"):
                        continue
                    self.fail("range can only initialize variables")
                self.fail(f"too many declarations in {context}")
            else:
                self.i = at if after.kind != "space" else at
            break
        while True:
            t = self.next_non_space()
            if t.kind == end:
                if not pipe.cmds:
                    self.fail(f"missing value for {context}")
                for i, c in enumerate(pipe.cmds[1:]):
                    first = c.args[0]
                    if isinstance(first, Leaf) and first.kind in ("bool", "dot", "nil", "number", "string"):
                        self.fail(f"non executable command in pipeline stage {i + 2}")
                return pipe
            if t.kind in ("bool", "char", "dot", "field", "ident", "number", "raw", "string", "variable", "lparen") \
                    or (t.kind == "keyword" and t.val == "nil"):
                self.backup()
                pipe.cmds.append(self.command())
            else:
                self.unexpected(t, context)

    def command(self) -> Command:
        cmd = Command([])
        while True:
            self.peek_non_space()
            op = self.operand()
            if op is not None:
                cmd.args.append(op)
            t = self.next()
            if t.kind == "space":
                continue
            if t.kind in ("right", "rparen"):
                self.backup()
            elif t.kind != "pipe":
                self.unexpected(t, "operand")
            break
        if not cmd.args:
            self.fail("empty command")
        return cmd

    def operand(self) -> object:
        node = self.term()
        if node is None:
            return None
        if self.peek().kind == "field":
            fields = []
            while self.peek().kind == "field":
                fields.append(self.next().val[1:])
            if isinstance(node, Field):
                return Field(node.ident + fields)
            if isinstance(node, Variable):
                return Variable(node.ident + fields)
            if isinstance(node, Leaf) and node.kind in ("bool", "string", "number", "nil", "dot"):
                from ollama_go import quote

                self.fail(f"unexpected . after term {quote(node.val)}")
            return Chain(node, fields)
        return node

    def term(self) -> object:
        t = self.next_non_space()
        if t.kind == "ident":
            if t.val not in FUNCTIONS:
                self.fail(f'function "{t.val}" not defined')
            return Leaf("ident", t.val)
        if t.kind == "dot":
            return Leaf("dot", ".")
        if t.kind == "keyword" and t.val == "nil":
            return Leaf("nil", "nil")
        if t.kind == "variable":
            if t.val not in self.vars:
                self.fail(f'undefined variable "{t.val}"')
            return Variable([t.val])
        if t.kind == "field":
            return Field([t.val[1:]])
        if t.kind == "bool":
            return Leaf("bool", t.val)
        if t.kind in ("char", "number"):
            if t.kind == "number" and not _valid_number(t.val):
                from ollama_go import quote

                self.fail(f"bad number syntax: {quote(t.val)}")
            return Leaf("number", t.val)
        if t.kind == "lparen":
            return self.pipeline("parenthesized pipeline", "rparen")
        if t.kind in ("string", "raw"):
            _unquote(self, t)
            return Leaf("string", t.val)  # String() of a StringNode is its quoted source
        self.backup()
        return None


def _valid_number(s: str) -> bool:
    import re

    return bool(re.fullmatch(
        r"[+-]?(0[xX][0-9a-fA-F_]+(\.[0-9a-fA-F_]*)?([pP][+-]?\d+)?|0[oObB][0-7_]+|"
        r"(\d[\d_]*(\.[\d_]*)?|\.\d[\d_]*)([eE][+-]?\d+)?)i?", s))


def _unquote(p: _Parser, t: Tok) -> str:
    """``strconv.Unquote`` of a string token (Go's escapes are Python's, but for ``\\N{...}``)."""
    if t.kind == "raw":
        return t.val[1:-1].replace("\r", "")
    import ast
    import re

    if re.search(r"\\(?![abfnrtv\\\"0-7xuU])", t.val):  # \\' is only for rune literals
        p.fail("invalid syntax")
    try:
        return ast.literal_eval(t.val)
    except (SyntaxError, ValueError):
        p.fail("invalid syntax")
        raise AssertionError from None


@dataclass
class Template:
    raw: str
    root: List
    defined: dict[str, List]

    def vars(self) -> list[str]:
        """``Template.Vars``: the identifiers of every template's top-level nodes, lower-cased,
        sorted. Raises :class:`TemplateError` where ``Identifiers`` returns an error."""
        names: set[str] = set()
        for tree in [self.root, *self.defined.values()]:
            for node in tree.nodes:
                names.update(s.lower() for s in _identifiers(node))
        return sorted(names)

    def thinking_tags(self) -> tuple[str, str]:
        """``thinking.InferTags``: the text around ``.Thinking`` inside ``range .Messages``."""
        opening, closing = "", ""
        ancestors: list[object] = []

        def visit(n: object) -> None:
            nonlocal opening, closing
            if n is None:
                return
            ancestors.append(n)
            if isinstance(n, Field) and n.ident and n.ident[0] == "Thinking":
                rng = next((a for a in reversed(ancestors) if isinstance(a, Branch) and a.kind == "range"), None)
                if rng is not None and _pipe_uses_field(rng.pipe, "Messages"):
                    lst = next((a for a in reversed(ancestors) if isinstance(a, List)), None)
                    if lst is not None and lst.nodes:
                        if isinstance(lst.nodes[0], Text):
                            opening = lst.nodes[0].text.strip(_SPACE + "\v\f\x85\xa0")
                        if isinstance(lst.nodes[-1], Text):
                            closing = lst.nodes[-1].text.strip(_SPACE + "\v\f\x85\xa0")
            for child in _children(n):
                visit(child)
            ancestors.pop()

        visit(self.root)
        return opening, closing


def _children(n: object) -> list[object]:
    """``templateVisit``'s recursion (leaves have none)."""
    if isinstance(n, List):
        return list(n.nodes)
    if isinstance(n, Branch):
        return [n.pipe, n.body, n.else_body]
    if isinstance(n, Action):
        return [n.pipe]
    if isinstance(n, TemplateCall):
        return [n.pipe]
    if isinstance(n, Pipe):
        return list(n.cmds)
    if isinstance(n, Command):
        return list(n.args)
    return []


def _pipe_uses_field(pipe: Pipe, name: str) -> bool:
    """``rangeUsesField``."""
    stack: list[object] = [pipe]
    while stack:
        n = stack.pop()
        if isinstance(n, Field) and n.ident[0] == name:
            return True
        stack.extend(c for c in _children(n) if c is not None)
    return False


def _identifiers(n: object) -> list[str]:
    """``template.Identifiers``."""
    if isinstance(n, List):
        return [s for c in n.nodes for s in _identifiers(c)]
    if isinstance(n, TemplateCall):
        if n.pipe is None:
            raise TemplateError("undefined template specified")
        return _identifiers(n.pipe)
    if isinstance(n, Action):
        return _identifiers(n.pipe)
    if isinstance(n, Branch):
        out = _identifiers(n.pipe)
        for lst in (n.body, n.else_body):
            if lst is not None:
                out += _identifiers(lst)
        return out
    if isinstance(n, Pipe):
        return [s for c in n.cmds for a in c.args for s in _identifiers(a)]
    if isinstance(n, (Field, Variable)):
        return list(n.ident)
    return []


def parse(src: str) -> Template:
    """``template.Parse`` (``text/template`` with Ollama's function map)."""
    p = _Parser(src)
    root = p.parse()
    return Template(src, root, p.defined)


DEFAULT_TEMPLATE = "{{ .Prompt }}"


# --- capabilities (server/images.go) ----------------------------------------------------------------


def chat_template_has_tool_support(t: str) -> bool:
    return "tools" in t or "tool_call" in t


def chat_template_has_tool_round_trip(t: str) -> bool:
    if not chat_template_has_tool_support(t):
        return False
    calls = "tool_calls" in t or "assistant_tool_call" in t
    return calls and any(s in t for s in (
        "tool_response", "tool_results", "role'] == 'tool'", "role'] == \"tool\"", "role\"] == 'tool'",
        "role\"] == \"tool\"", "message.role == 'tool'", "message.role == \"tool\"", "ipython"))


def chat_template_has_thinking_support(t: str) -> bool:
    if "<think>" in t and "</think>" in t:
        return True
    return ("content.split('</think>')" in t or 'content.split("</think>")' in t) \
        and "reasoning_content" not in t and "<SPECIAL_12>" not in t


def chat_template_capabilities(t: str) -> list[str]:
    """``chatTemplateCapabilities`` (from an empty list)."""
    caps: list[str] = []
    if not t:
        return caps
    if chat_template_has_tool_support(t):
        caps.append("tools")
    if chat_template_has_thinking_support(t):
        caps.append("thinking")
    return caps


def go_template_capabilities(t: Template | None) -> list[str]:
    """``goTemplateCapabilities``."""
    if t is None:
        return []
    try:
        v = t.vars()
    except TemplateError:
        return []
    caps = []
    if "tools" in v:
        caps.append("tools")
    if "suffix" in v:
        caps.append("insert")
    opening, closing = t.thinking_tags()
    if opening and closing:
        caps.append("thinking")
    return caps


def go_template_has_tool_round_trip(t: Template | None) -> bool:
    if t is None:
        return False
    try:
        v = t.vars()
    except TemplateError:
        return False
    if "tools" not in v or "toolcalls" not in v:
        return False
    return 'eq .Role "tool"' in t.raw or "tool_response" in t.raw or "TOOL_RESULTS" in t.raw


def should_prefer_chat_template(chat: str, chat_caps: list[str], go: Template | None, go_caps: list[str]) -> bool:
    """``shouldPreferChatTemplate``."""
    if len(chat_caps) > len(go_caps):  # hasMoreCapabilities
        return not go_template_has_tool_round_trip(go) or chat_template_has_tool_round_trip(chat)
    same = len(chat_caps) == len(go_caps) and all(c in go_caps for c in chat_caps)
    if not same or "tools" not in chat_caps or "tools" not in go_caps:
        return False
    return chat_template_has_tool_round_trip(chat) and not go_template_has_tool_round_trip(go)
