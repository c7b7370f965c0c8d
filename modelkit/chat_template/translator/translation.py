"""The whole translation: run the statements, finish the Go tree, print it.

After the statements (:mod:`.statements`) have walked the template into the Go tree of a
:class:`~.state.State`, passes over that tree
(:mod:`.goast`) finish it: preludes first (the generation-prompt flag, today's date), cut
points placed for continuations, the BOS a tokenizer adds itself left out, assignments nobody
reads dropped, then the tree printed with the helper templates it calls.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelkit.golang.template import identifiers
from modelkit.golang.template import parse as parse_go

from . import goexpr as gx
from .goast import (
    CUT_VAR,
    Call,
    CutPoint,
    If,
    Node,
    Out,
    Range,
    Set,
    Text,
    drop_dead_sets,
    last_cuts_only,
    place_cuts,
    print_template,
    strip_leading,
    walk,
)
from .jinja import Jinja
from .nesting import Restart, Scope, StaticBreak, StaticContinue
from .ollama_data import ADD_GEN_VAR, MESSAGES
from .state import State
from .statements import WALK
from .values import Unsupported

#: Whether the BOS has been written yet, where the first one to leave out is only known at runtime.
BOS_VAR = "$bosWritten"


@dataclass(frozen=True)
class Translation:
    """A Go template and what the translation assumed or left out."""

    go_template: str
    assumptions: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()
    bos_removed: bool = False
    untranslated: tuple[str, ...] = ()
    #: The thinking switches the translation read (``enable_thinking``): with ``follow_think``,
    #: each is Ollama's think in the Go template; without, undefined as if never set.
    think_switches: tuple[str, ...] = ()
    #: Whether the Go template renders tool definitions, tool calls or earlier reasoning from
    #: Ollama's data (``translate(tools=True)`` on a template that reads them).
    tools: bool = False


def translate(source: str, bos_token: str | None = None, eos_token: str | None = None,
              add_bos_token: bool = False, follow_think: bool = True, tools: bool = False) -> Translation:
    """Translate a Jinja chat template into Ollama's Go template language.

    ``add_bos_token``: the tokenizer adds BOS itself (llama.cpp does it for such models), so a
    BOS the template writes first is left out. ``follow_think``: a thinking switch the template
    reads follows Ollama's think (``.IsThinkSet``, ``.Think``); False leaves it undefined.
    ``tools``: render tool definitions, tool calls and earlier reasoning from Ollama's data
    (:mod:`.tools`; ``tojson`` of them becomes Go's ``json``). Raises
    :class:`~.values.Unsupported` when the template uses something that cannot be expressed; a
    template that always raises gives a Go template that raises too.
    """
    st = State(Jinja(source, bos_token, eos_token, tools=tools), WALK, with_tools=tools, follow_think=follow_think)
    nodes = place_cuts(last_cuts_only(_run(st))[0])
    bos_removed = False
    if add_bos_token and bos_token:
        nodes, bos_removed = _leave_out_bos(nodes, bos_token)
    nodes = drop_dead_sets(nodes)
    defines = _used_defines(nodes, st.emitter.defines)
    text = print_template(nodes, defines)
    if "messages" not in identifiers(parse_go(text)):
        # Ollama renders in one pass over .Messages only when it can see them mentioned.
        text = print_template([If("false", [Out(MESSAGES)])] + nodes, defines)
    renders_tools = tools and bool({"tools", "toolcalls", "thinking"} & identifiers(parse_go(text)))
    report = st.report
    return Translation(text, tuple(report.assumptions), tuple(report.ignored), bos_removed,
                       tuple(report.untranslated), tuple(report.think_switches), renders_tools)


def _run(st: State) -> list[Node]:
    """The template's statements as Go nodes, after the preludes they need and ``$cut``'s declaration."""
    root_frame: list[Node] = []
    st.emitter.frames.append(root_frame)
    try:
        with st.emitter.capture() as body:
            st.walk.statements(st, st.jinja.ast.body, Scope())
    except (StaticBreak, StaticContinue):
        raise Unsupported("break outside a loop") from None
    except Restart:
        raise Unsupported("namespace attribute set in a loop in an unexpected way") from None
    except RecursionError:
        raise Unsupported("the template nests too deeply") from None
    nodes: list[Node] = list(root_frame) + list(body)
    if any(isinstance(n, CutPoint) for n in walk(nodes)):
        nodes = [Set(CUT_VAR, "false", declare=True)] + nodes
    prelude: list[Node] = []
    for name in (ADD_GEN_VAR, gx.TODAY_VAR):
        if name in st.emitter.preludes:
            prelude.extend(st.emitter.preludes[name])
    return prelude + nodes


def _leave_out_bos(nodes: list[Node], bos: str) -> tuple[list[Node], bool]:
    """The nodes without the BOS they write first (the tokenizer adds it), and whether there was one."""
    new, status = strip_leading(nodes, bos)
    if status == "stripped":
        return new, True
    if status == "unknown" and any(isinstance(n, Text) and n.text.startswith(bos) for n in walk(nodes)):
        # Where the BOS is written first depends on the conversation: leave out the first one
        # written, at runtime.
        return [Set(BOS_VAR, "false", declare=True)] + _guard_bos(nodes, bos), True
    return nodes, False


def _guard_bos(nodes: list[Node], bos: str) -> list[Node]:
    out: list[Node] = []
    for n in nodes:
        if isinstance(n, Text) and n.text.startswith(bos):
            out += [If(BOS_VAR, [Text(bos)]), Set(BOS_VAR, "true")]
            if n.text[len(bos):]:
                out.append(Text(n.text[len(bos):]))
        elif isinstance(n, If):
            out.append(If(n.cond, _guard_bos(n.then, bos), _guard_bos(n.orelse, bos)))
        elif isinstance(n, Range):
            out.append(Range(n.index, n.elem, n.expr, _guard_bos(n.body, bos), _guard_bos(n.orelse, bos)))
        else:
            out.append(n)
    return out


def _used_defines(nodes: list[Node], defines: dict[str, list[Node]]) -> dict[str, list[Node]]:
    used: dict[str, list[Node]] = {}
    todo = [n.name for n in walk(nodes) if isinstance(n, Call)]
    while todo:
        name = todo.pop()
        if name in used or name not in defines:
            continue
        used[name] = defines[name]
        todo.extend(n.name for n in walk(defines[name]) if isinstance(n, Call))
    return dict(sorted(used.items()))
