"""Go template text parsed into a tree (:mod:`.nodes`), with the checks Go's parser makes.

Go refuses a template at parse time for more than syntax: an undefined variable, ``define``
inside a control structure, too many range variables. The evaluator refuses the same, so that
a template it accepts is one Ollama can load.
"""

from __future__ import annotations

import functools

from .lexer import Token, lex_action, split_template, strip_ws
from .nodes import (
    ActionNode,
    BreakNode,
    Command,
    ContinueNode,
    GoTemplate,
    IfNode,
    Node,
    Operand,
    Pipe,
    RangeNode,
    TemplateNode,
    TextNode,
)
from .values import GoTemplateError


class _Parser:
    def __init__(self, src: str) -> None:
        self.items = split_template(src)
        self.pos = 0
        self.defines: dict[str, list[Node]] = {}
        self.scope: list[str] = ["$"]  # variables in scope, as Go's parser checks them

    def parse(self) -> list[Node]:
        nodes, stop = self._list(top=True)
        if stop is not None:
            raise GoTemplateError(f"unexpected {{{{{stop[0]}}}}}")
        return nodes

    def _list(self, top: bool = False) -> tuple[list[Node], tuple[str, list[Token]] | None]:
        """Nodes up to the ``end`` or ``else`` that closes them (returned too), or the end of text."""
        nodes: list[Node] = []
        while self.pos < len(self.items):
            kind, body = self.items[self.pos]
            self.pos += 1
            if kind == "text":
                nodes.append(TextNode(body.encode()))
                continue
            toks = strip_ws(lex_action(body))
            if not toks:
                raise GoTemplateError("missing value for command")
            keyword = toks[0].text if toks[0].kind == "ident" else ""
            if keyword in ("end", "else"):
                return nodes, (keyword, strip_ws(toks[1:]))
            nodes.extend(self._action(keyword, toks, top))
        return nodes, None

    def _action(self, keyword: str, toks: list[Token], top: bool) -> list[Node]:
        """The node for one action (none for a ``define``, which goes to the helpers)."""
        if keyword in ("if", "with"):
            return [self._branch(keyword, toks[1:])]
        if keyword == "range":
            return [self._range(toks[1:])]
        if keyword in ("define", "block"):
            return self._define(keyword, toks, top)
        if keyword == "template":
            toks = [toks[0]] + strip_ws(toks[1:])
            name = self._template_name(toks, "template needs a name")
            return [TemplateNode(name, self._pipe(toks[2:]) if len(toks) > 2 else None)]
        if keyword == "break":
            return [BreakNode()]
        if keyword == "continue":
            return [ContinueNode()]
        return [ActionNode(self._pipe(toks, allow_decl=True))]

    def _branch(self, kind: str, toks: list[Token]) -> IfNode:
        mark = len(self.scope)
        try:
            pipe = self._pipe(toks, allow_decl=True)
            body, stop = self._list()
            orelse: list[Node] = []
            if stop and stop[0] == "else":
                rest = stop[1]
                if rest and rest[0].kind == "ident" and rest[0].text in ("if", "with"):
                    orelse = [self._branch(rest[0].text, rest[1:])]
                    return IfNode(kind, pipe, body, orelse)
                if rest:
                    raise GoTemplateError("unexpected tokens after else")
                orelse, stop = self._list()
            if not stop or stop[0] != "end":
                raise GoTemplateError(f"unterminated {kind}")
            return IfNode(kind, pipe, body, orelse)
        finally:
            del self.scope[mark:]

    def _range(self, toks: list[Token]) -> RangeNode:
        mark = len(self.scope)
        pipe = self._pipe(toks, allow_decl=True, range_decl=True)
        body, stop = self._list()
        orelse: list[Node] = []
        if stop and stop[0] == "else":
            if stop[1]:
                raise GoTemplateError("range's else takes no pipeline")
            orelse, stop = self._list()
        if not stop or stop[0] != "end":
            raise GoTemplateError("unterminated range")
        del self.scope[mark:]
        return RangeNode(pipe, body, orelse)

    def _define(self, keyword: str, toks: list[Token], top: bool) -> list[Node]:
        """Parse a ``define`` (or ``block``) body into the helpers; a ``block`` also runs it here."""
        if not top:
            raise GoTemplateError("define inside a control structure")
        toks = [toks[0]] + strip_ws(toks[1:])
        name = self._template_name(toks, "define needs a template name")
        saved, self.scope = self.scope, ["$"]
        body, stop = self._list()
        self.scope = saved
        if not stop or stop[0] != "end":
            raise GoTemplateError(f"unterminated define {name!r}")
        self.defines[name] = body
        if keyword == "block":
            return [TemplateNode(name, self._pipe(toks[2:]) if len(toks) > 2 else None)]
        return []

    @staticmethod
    def _template_name(toks: list[Token], error: str) -> str:
        if len(toks) < 2 or toks[1].kind != "lit" or not isinstance(toks[1].value, bytes):
            raise GoTemplateError(error)
        return toks[1].value.decode()

    def _pipe(self, toks: list[Token], allow_decl: bool = False, range_decl: bool = False) -> Pipe:
        toks = strip_ws(toks)
        decl: list[str] = []
        assign = False
        if allow_decl:
            toks, decl, assign = self._declarations(toks, range_decl)
        cmds: list[Command] = []
        for g in _split_pipeline(toks):
            g = strip_ws(g)
            if not g:
                raise GoTemplateError("missing command in pipeline")
            cmds.append(Command(self._operands(g)))
        return Pipe(decl, assign, cmds)

    def _declarations(self, toks: list[Token], range_decl: bool) -> tuple[list[Token], list[str], bool]:
        """``$x :=`` or ``$x =`` (``$i, $e :=`` in a range) before a pipeline: the rest, the names, "=" or not."""
        for op in (":=", "="):
            idx = next((k for k, t in enumerate(toks) if t.kind == "op" and t.text == op), None)
            if idx is None or idx == 0 or not all(
                    t.kind in ("var", "ws") or (t.kind == "op" and t.text == ",") for t in toks[:idx]):
                continue
            names = [t.text for t in toks[:idx] if t.kind == "var"]
            if len(names) > (2 if range_decl else 1):
                raise GoTemplateError("too many declarations")
            for name in names:
                if op == "=":
                    self._use(name)
                else:
                    self.scope.append(name)
            return toks[idx + 1:], names, op == "="
        return toks, [], False

    def _use(self, name: str) -> None:
        if name not in self.scope:
            raise GoTemplateError(f'undefined variable "{name}"')

    def _operands(self, toks: list[Token]) -> list[Operand]:
        ops: list[Operand] = []
        i = 0
        while i < len(toks):
            t = toks[i]
            if t.kind == "ws":
                i += 1
                continue
            if t.kind == "op" and t.text == "(":
                j = _closing(toks, i)
                op = Operand("pipe", self._pipe(toks[i + 1:j - 1], allow_decl=False))
                i = j
            else:
                op = self._operand(t)
                i += 1
            chain = list(op.chain)
            while i < len(toks) and toks[i].kind == "field":
                chain.append(toks[i].text[1:])
                i += 1
            op.chain = tuple(chain)
            ops.append(op)
        return ops

    def _operand(self, t: Token) -> Operand:
        if t.kind == "lit":
            return Operand("lit", t.value)
        if t.kind in ("nil", "dot"):
            return Operand(t.kind)
        if t.kind == "field":
            return Operand("dot", chain=(t.text[1:],))
        if t.kind == "var":
            self._use(t.text)
            return Operand("var", t.text)
        if t.kind == "ident":
            return Operand("ident", t.text)
        raise GoTemplateError(f"unexpected {t.text!r} in operand")


def _split_pipeline(toks: list[Token]) -> list[list[Token]]:
    """The commands of a pipeline: the tokens between ``|`` outside parentheses."""
    groups: list[list[Token]] = []
    current: list[Token] = []
    depth = 0
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
    return groups


def _closing(toks: list[Token], i: int) -> int:
    """Just past the ``)`` that closes the ``(`` at ``toks[i]``."""
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
    return j


@functools.lru_cache(maxsize=128)
def parse(source: str) -> GoTemplate:
    """Parse Go template text; raises :class:`GoTemplateError` on a syntax error. Kept for the
    next call with the same text (a proof parses each TEMPLATE several times; trees are only read)."""
    p = _Parser(source)
    root = p.parse()
    return GoTemplate(source, root, p.defines)
