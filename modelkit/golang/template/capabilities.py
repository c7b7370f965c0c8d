"""What Ollama reads from a TEMPLATE's parse tree: its capabilities, its thinking tags, its tool round trip.

Ollama decides what a model can do, and whether to render it with the Modelfile's TEMPLATE, from
the TEMPLATE itself (``server/images.go``: ``goTemplateCapabilities``, ``goTemplateHasToolRoundTrip``;
``thinking/template.go``: ``InferTags``). The rules live here once, beside the parser: the proof's
declaration writer (``chat_template/proof/declare.py``) writes what they read, and the engine
prediction (``ollama/engine.py``) reads with them; ``tests/chat_template/test_tools.py`` holds
that one reads back what the other wrote.
"""

from __future__ import annotations

from .nodes import ActionNode, GoTemplate, IfNode, Node, Operand, Pipe, RangeNode, TextNode
from .ollama import identifiers

#: The capabilities a TEMPLATE can show, in Ollama's words.
TOOLS, THINKING, INSERT = "tools", "thinking", "insert"

#: The text that shows Ollama a TEMPLATE writes tool results (``goTemplateHasToolRoundTrip``).
ROUND_TRIP_MARKS = ('eq .Role "tool"', "tool_response", "TOOL_RESULTS")


def go_capabilities(template: GoTemplate) -> tuple[str, ...]:
    """``goTemplateCapabilities``: tools (``.Tools``), insert (``.Suffix``), thinking (tags around
    ``.Thinking`` in the messages, as ``InferTags`` finds them)."""
    names = identifiers(template)
    caps = [c for c, name in ((TOOLS, "tools"), (INSERT, "suffix")) if name in names]
    opening, closing = thinking_tags(template)
    if opening and closing:
        caps.append(THINKING)
    return tuple(caps)


def writes_tool_calls(template: GoTemplate) -> bool:
    """Whether the TEMPLATE reads a message's ``.ToolCalls``, as Ollama's ``Vars`` sees it."""
    return "toolcalls" in identifiers(template)


def has_tool_round_trip(template: GoTemplate) -> bool:
    """``goTemplateHasToolRoundTrip``: tools and tool calls used, tool results written (by its text)."""
    names = identifiers(template)
    if "tools" not in names or "toolcalls" not in names:
        return False
    return writes_tool_results(template)


def writes_tool_results(template: GoTemplate) -> bool:
    """Whether the TEMPLATE's text shows Ollama it writes tool results: one of :data:`ROUND_TRIP_MARKS`."""
    return any(mark in template.source for mark in ROUND_TRIP_MARKS)


def thinking_tags(template: GoTemplate) -> tuple[str, str]:
    """``InferTags``: the text that opens and closes the last ``.Thinking`` written inside a range
    over ``.Messages`` — the first and last text of the list holding it ("" where there is none)."""
    found = ["", ""]

    def visit(nodes: list[Node], in_messages: bool) -> None:
        for node in nodes:
            if isinstance(node, ActionNode) and in_messages and _mentions_thinking(node.pipe):
                _take_tags(nodes, found)
            elif isinstance(node, IfNode):
                if in_messages and _mentions_thinking(node.pipe):
                    _take_tags(nodes, found)
                visit(node.body, in_messages)
                visit(node.orelse, in_messages)
            elif isinstance(node, RangeNode):
                over_messages = any(_names_field(a, "Messages") for c in node.pipe.cmds for a in c.args)
                visit(node.body, over_messages)
                visit(node.orelse, over_messages)

    visit(template.root, False)
    return found[0], found[1]


def _take_tags(nodes: list[Node], found: list[str]) -> None:
    if isinstance(nodes[0], TextNode):
        found[0] = nodes[0].text.decode("utf-8", "replace").strip()
    if isinstance(nodes[-1], TextNode):
        found[1] = nodes[-1].text.decode("utf-8", "replace").strip()


def _mentions_thinking(pipe: Pipe) -> bool:
    return any(_names_field(a, "Thinking") for c in pipe.cmds for a in c.args)


def _names_field(operand: Operand, field: str) -> bool:
    """Whether ``operand`` is, or holds, the field ``.<field>`` (a FieldNode: ``$.x`` is not one)."""
    if operand.kind == "pipe" and not operand.chain:
        return any(_names_field(a, field) for c in operand.value.cmds for a in c.args)
    return operand.kind == "dot" and operand.chain[:1] == (field,)
