"""The Go ``text/template`` tree the translator builds, and how it is printed as Ollama TEMPLATE text.

The translator works on this small tree rather than on strings so that later passes can
rewrite it (remove the BOS the tokenizer adds itself, place the cut of a continuation, drop
variables nobody reads) before one printer lays it out. Expressions inside actions are plain Go
pipeline strings: the translator composes them and :mod:`modelkit.golang.template` parses them back.

Layout: every action goes on its own line, indented by nesting, and opened with ``{{-`` so the
layout whitespace is trimmed away, unless the text before it ends in whitespace that the
prompt needs; text is printed verbatim (``{{`` inside it becomes ``{{ "{{" }}``). The printed
template therefore renders exactly the text the tree says, and stays readable in a Modelfile.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from modelkit.golang.strconv import go_quote


@dataclass
class Text:
    """Literal prompt text."""

    text: str


@dataclass
class Out:
    """``{{ expr }}``: write a value. ``src`` remembers the string piece it writes, if any."""

    expr: str
    src: object = field(default=None, compare=False, repr=False)


@dataclass
class Set:
    """``{{ $var := expr }}`` (``declare``) or ``{{ $var = expr }}``."""

    var: str
    expr: str
    declare: bool = False


@dataclass
class If:
    """``{{ if cond }}…{{ else }}…{{ end }}``."""

    cond: str
    then: list[Node]
    orelse: list[Node] = field(default_factory=list)


@dataclass
class Range:
    """``{{ range $i, $elem := expr }}…{{ else }}…{{ end }}``."""

    index: str
    elem: str
    expr: str
    body: list[Node]
    orelse: list[Node] = field(default_factory=list)


@dataclass
class Break:
    """``{{ break }}`` (Go 1.18+)."""


@dataclass
class Continue:
    """``{{ continue }}`` (Go 1.18+)."""


@dataclass
class Call:
    """``{{ template "name" arg }}``: run a helper template (used for trimming text)."""

    name: str
    arg: str
    src: object = field(default=None, compare=False, repr=False)


@dataclass
class Raise:
    """Stop with an error, as the Jinja's ``raise_exception`` does.

    Printed as a call of a template that is not defined, whose name is the message: Go fails
    with ``template "raise: <message>" not defined``, and Ollama returns that error.
    """

    message: str


@dataclass
class CutPoint:
    """Where a continuation ends: right after the final assistant message's text.

    A pass (:func:`place_cuts`) turns it into ``$cut`` bookkeeping and ``break``s; it never
    reaches the printer.
    """

    cond: str


Node = Text | Out | Set | If | Range | Break | Continue | Call | Raise | CutPoint

RAISE_PREFIX = "raise: "


def go_string(s: str) -> str:
    """A Go interpreted string literal for ``s``: ``strconv.Quote(s)``, which ``strconv.Unquote`` reads back.

    Template text must be valid UTF-8, so a lone surrogate is an error here rather than the
    replacement character :func:`~modelkit.golang.strconv.go_quote` writes for it.
    """
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in s):
        raise ValueError("lone surrogate in template text")
    return go_quote(s)


def if_chain(branches: Iterable[tuple[str | None, list[Node]]]) -> list[Node]:
    """``if c1``…``else if c2``…``else``… from (condition, body) pairs; a None condition is the
    final ``else`` (what follows it is left out)."""
    result: list[Node] = []
    target = result
    for cond, body in branches:
        if cond is None:
            target.extend(body)
            break
        node = If(cond, body, [])
        target.append(node)
        target = node.orelse
    return result


def walk(nodes: Iterable[Node]) -> Iterator[Node]:
    """Every node of a tree, depth first."""
    for node in nodes:
        yield node
        if isinstance(node, If):
            yield from walk(node.then)
            yield from walk(node.orelse)
        elif isinstance(node, Range):
            yield from walk(node.body)
            yield from walk(node.orelse)


def may_output(nodes: Iterable[Node]) -> bool:
    """Whether running these nodes can write any text."""
    return any(isinstance(n, (Out, Call)) or (isinstance(n, Text) and n.text) for n in walk(nodes))


def may_cut(nodes: Iterable[Node]) -> bool:
    return any(isinstance(n, CutPoint) for n in walk(nodes))


CUT_VAR = "$cut"


def last_cuts_only(nodes: list[Node], later: frozenset[str] = frozenset()) -> tuple[list[Node], frozenset[str]]:
    """Drop a cut point when the same text is written again, for sure, further on.

    ``transformers`` cuts a continuation after the *last* time the final message is written;
    returns the nodes and the cut conditions certain to be met from here on.
    """
    out: list[Node] = []
    certain = set(later)
    for node in reversed(nodes):
        if isinstance(node, CutPoint):
            if node.cond in certain:
                continue
            certain.add(node.cond)
            out.append(node)
        elif isinstance(node, If):
            then, c1 = last_cuts_only(node.then, frozenset(certain))
            orelse, c2 = last_cuts_only(node.orelse, frozenset(certain))
            certain |= c1 & c2
            out.append(If(node.cond, then, orelse))
        elif isinstance(node, Range):
            body, _ = last_cuts_only(node.body)
            orelse, _ = last_cuts_only(node.orelse, frozenset(certain))
            out.append(Range(node.index, node.elem, node.expr, body, orelse))
        else:
            out.append(node)
    out.reverse()
    return out, frozenset(certain)


def place_cuts(nodes: list[Node], in_range: bool = False) -> list[Node]:
    """Replace each :class:`CutPoint` with ``$cut = true`` and stop writing after it.

    Inside a range the loop is left with ``break`` (and every enclosing range checks ``$cut``
    after the inner one); outside any range, what follows is wrapped in ``if not $cut``.
    """
    out: list[Node] = []
    for i, node in enumerate(nodes):
        if isinstance(node, CutPoint):
            then: list[Node] = [Set(CUT_VAR, "true")]
            if in_range:
                then.append(Break())
            out.append(If(node.cond, then))
            cut_here = not in_range  # inside a range the break above already left
        elif isinstance(node, If):
            cut_here = may_cut([node])
            out.append(If(node.cond, place_cuts(node.then, in_range), place_cuts(node.orelse, in_range)))
        elif isinstance(node, Range):
            cut_here = may_cut([node])
            out.append(Range(node.index, node.elem, node.expr, place_cuts(node.body, True),
                             place_cuts(node.orelse, in_range)))
        else:
            cut_here = False
            out.append(node)
        if cut_here and i + 1 < len(nodes):
            rest = place_cuts(nodes[i + 1:], in_range)
            if not may_output(rest) and not any(isinstance(n, (Set, Raise)) for n in walk(rest)):
                return out + rest
            if in_range:
                out.append(If(CUT_VAR, [Break()]))
                return out + rest
            out.append(If(f"not {CUT_VAR}", rest))
            return out
    return out


_VAR_RE = re.compile(r"\$[A-Za-z_][A-Za-z0-9_]*")


def expr_vars(node: Node) -> list[str]:
    """The Go variables a node's own expressions read (not those of the nodes inside it)."""
    exprs: list[str] = []
    if isinstance(node, (Out, Set)):
        exprs.append(node.expr)
    elif isinstance(node, If):
        exprs.append(node.cond)
    elif isinstance(node, Range):
        exprs.append(node.expr)
    elif isinstance(node, Call):
        exprs.append(node.arg)
    elif isinstance(node, CutPoint):
        exprs.append(node.cond)
    return [v for e in exprs for v in _VAR_RE.findall(e)]


def drop_dead_sets(nodes: list[Node]) -> list[Node]:
    """Remove assignments to variables that no expression reads (repeated until none is left)."""
    while True:
        used: set[str] = set()
        for node in walk(nodes):
            used.update(expr_vars(node))
        removed = False

        def prune(lst: list[Node], used: set[str] = used) -> list[Node]:
            nonlocal removed
            res: list[Node] = []
            for n in lst:
                if isinstance(n, Set) and n.var not in used:
                    removed = True
                    continue
                if isinstance(n, If):
                    n = If(n.cond, prune(n.then), prune(n.orelse))
                    if not n.then and not n.orelse:
                        removed = True
                        continue
                elif isinstance(n, Range):
                    n = Range(n.index, n.elem, n.expr, prune(n.body), prune(n.orelse))
                res.append(n)
            return res

        nodes = prune(nodes)
        if not removed:
            return nodes


def strip_leading(nodes: list[Node], prefix: str) -> tuple[list[Node], str]:
    """Remove ``prefix`` from the first text these nodes write, where that is certain.

    Returns the new nodes and ``"stripped"``, ``"empty"`` (nothing is written at all, so the
    caller goes on with what follows) or ``"unknown"`` (the first output is dynamic or differs
    between branches: nothing was changed).
    """
    out = list(nodes)
    for i, node in enumerate(out):
        if isinstance(node, Text):
            if not node.text:
                continue
            if node.text.startswith(prefix):
                out[i] = Text(node.text[len(prefix):])
                return out, "stripped"
            return nodes, "unknown"
        if isinstance(node, (Set, CutPoint, Raise)):
            continue
        if isinstance(node, If):
            then, s1 = strip_leading(node.then, prefix)
            orelse, s2 = strip_leading(node.orelse, prefix)
            if s1 == s2 == "empty":
                continue
            # A branch that only raises writes nothing that matters.
            ok1 = s1 == "stripped" or (s1 == "empty" and _only_raises(node.then))
            ok2 = s2 == "stripped" or (s2 == "empty" and _only_raises(node.orelse))
            if ok1 and ok2:
                out[i] = If(node.cond, then, orelse)
                return out, "stripped"
            return nodes, "unknown"
        if isinstance(node, Range):
            if may_output(node.body) or may_output(node.orelse):
                return nodes, "unknown"
            continue
        return nodes, "unknown"
    return out, "empty"


def _only_raises(nodes: list[Node]) -> bool:
    return any(isinstance(n, Raise) for n in nodes) and not may_output(nodes)


_WS = " \t\r\n"
INDENT = "  "


class _Printer:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def _ends_ws(self) -> bool:
        """Whether the text written so far ends in whitespace that ``{{-`` would eat."""
        for part in reversed(self.parts):
            if part:
                return part[-1] in _WS
        return False

    def action(self, body: str, depth: int) -> None:
        if self.parts and self._ends_ws():
            self.parts.append("{{ " + body + " }}")
        elif self.parts:
            self.parts.append("\n" + INDENT * depth + "{{- " + body + " }}")
        else:
            self.parts.append("{{- " + body + " }}")

    def text(self, text: str, depth: int) -> None:
        if not text:
            return
        chunks = text.split("{{")
        for j, chunk in enumerate(chunks):
            if j:
                self.action(go_string("{{"), depth)
            if chunk:
                self.parts.append(chunk)

    def nodes(self, nodes: list[Node], depth: int) -> None:
        for node in nodes:
            self.node(node, depth)

    def node(self, node: Node, depth: int) -> None:
        if isinstance(node, Text):
            self.text(node.text, depth)
        elif isinstance(node, Out):
            self.action(node.expr, depth)
        elif isinstance(node, Set):
            self.action(f"{node.var} {':=' if node.declare else '='} {node.expr}", depth)
        elif isinstance(node, If):
            self.action(f"if {node.cond}", depth)
            self.nodes(node.then, depth + 1)
            orelse = node.orelse
            while len(orelse) == 1 and isinstance(orelse[0], If):
                self.action(f"else if {orelse[0].cond}", depth)
                self.nodes(orelse[0].then, depth + 1)
                orelse = orelse[0].orelse
            if orelse:
                self.action("else", depth)
                self.nodes(orelse, depth + 1)
            self.action("end", depth)
        elif isinstance(node, Range):
            if node.index and node.elem:
                self.action(f"range {node.index}, {node.elem} := {node.expr}", depth)
            elif node.index:
                self.action(f"range {node.index}, $_ := {node.expr}", depth)
            elif node.elem:
                self.action(f"range {node.elem} := {node.expr}", depth)
            else:
                self.action(f"range {node.expr}", depth)
            self.nodes(node.body, depth + 1)
            if node.orelse:
                self.action("else", depth)
                self.nodes(node.orelse, depth + 1)
            self.action("end", depth)
        elif isinstance(node, Break):
            self.action("break", depth)
        elif isinstance(node, Continue):
            self.action("continue", depth)
        elif isinstance(node, Call):
            self.action(f"template {go_string(node.name)} {node.arg}", depth)
        elif isinstance(node, Raise):
            self.action(f"template {go_string(RAISE_PREFIX + node.message)} .", depth)
        elif isinstance(node, CutPoint):
            raise ValueError("CutPoint must be placed before printing")
        else:  # pragma: no cover - exhaustive
            raise TypeError(node)


def print_template(nodes: list[Node], defines: dict[str, list[Node]]) -> str:
    """The Go template text for a tree and its helper templates (``define`` blocks at the end)."""
    p = _Printer()
    p.nodes(nodes, 0)
    for name, body in defines.items():
        p.action(f"define {go_string(name)}", 0)
        p.nodes(body, 1)
        p.action("end", 0)
    return "".join(p.parts)
