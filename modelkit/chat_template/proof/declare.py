"""What a TEMPLATE that renders tools and reasoning must show Ollama for Ollama to use it so.

Ollama recognises those capabilities from the TEMPLATE itself, by the rules of
:mod:`modelkit.golang.template.capabilities` (its ``goTemplateCapabilities``,
``goTemplateHasToolRoundTrip`` and ``InferTags``): thinking needs ``.Thinking`` written inside a
``range`` over ``.Messages`` between two texts, its tags — which Ollama also uses to split the
model's output into thinking and answer — and a tool round trip needs ``eq .Role "tool"`` (or
``tool_response`` or ``TOOL_RESULTS``) somewhere. A translated TEMPLATE reads messages through
variables (``$message.Thinking``), which those rules do not see. So where the proof shows the
TEMPLATE renders reasoning (or tool results), one block that never renders (``{{ if false }}``)
states it in the form Ollama reads: the tags around the reasoning in the proven rendering, and
the tool test. Without it, today's Ollama would leave the proven TEMPLATE for the GGUF's Jinja.
"""

from __future__ import annotations

import re

from modelkit.golang.template import parse
from modelkit.golang.template.capabilities import TOOLS, go_capabilities, writes_tool_calls, writes_tool_results

from .conversations import THINKING
from .conversations import TOOLS as TOOL_CONVERSATIONS
from .prove import SAME, Proof

_OPENER = re.compile(r"(<[^<>\s]{1,40}>)\s*$")
_CLOSER = re.compile(r"^\s*(<[^<>\s]{1,40}>)")
_EMPTY_THOUGHT = re.compile(r"(<[^<>\s/]{1,40}>)\s*(</[^<>\s]{1,40}>)\s*$")


def proven_thinking_tags(proof: Proof, jinja: str = "") -> tuple[str, str] | None:
    """The tags around reasoning (``<think>``, ``</think>``): those around earlier reasoning in the
    proven renderings, when all agree; else the ones a generation prompt opens thinking with
    (``<think>``, closed in the Jinja by ``</think>``); None where no rendering shows either."""
    return _tags_around_reasoning(proof) or _tags_opened_for_the_answer(proof, jinja)


def _tags_opened_for_the_answer(proof: Proof, jinja: str) -> tuple[str, str] | None:
    """A prompt for the answer that ends by opening thinking (``<think>\n``), or by an empty
    thought (``<think>\n\n</think>\n\n``, think off): those tags, the same in every such prompt."""
    found: set[tuple[str, str]] = set()
    for o in proof.outcomes:
        if o.status != SAME or o.expected is None or o.conversation.messages[-1]["role"] == "assistant":
            continue
        empty = _EMPTY_THOUGHT.search(o.expected)
        opened = _OPENER.search(o.expected)
        if empty is not None:
            found.add((empty.group(1), empty.group(2)))
        elif opened is not None and opened.group(1).startswith("<") and "</" + opened.group(1)[1:] in jinja \
                and "think" in opened.group(1).lower():
            found.add((opened.group(1), "</" + opened.group(1)[1:]))
    return found.pop() if len(found) == 1 else None


def _tags_around_reasoning(proof: Proof) -> tuple[str, str] | None:
    found: set[tuple[str, str]] = set()
    reasoning = {m["reasoning_content"] for c in THINKING for m in c.messages if "reasoning_content" in m}
    for o in proof.outcomes:
        if o.status != SAME or o.conversation not in THINKING or o.expected is None:
            continue
        for text in reasoning:
            at = o.expected.find(text)
            if at < 0:
                continue
            before, after = _OPENER.search(o.expected[:at]), _CLOSER.search(o.expected[at + len(text):])
            if before is None or after is None:
                return None
            found.add((before.group(1), after.group(1)))
    return found.pop() if len(found) == 1 else None


def renders_tool_results(proof: Proof) -> bool:
    """Whether every proven tool conversation with a result shows the result's text."""
    results = [(o, m["content"]) for o in proof.outcomes if o.conversation in TOOL_CONVERSATIONS
               for m in o.conversation.messages if m["role"] == "tool"]
    return bool(results) and all(o.status == SAME and o.expected is not None and text in o.expected
                                 for o, text in results)


def declared_for_ollama(go_template: str, proof: Proof, jinja: str) -> str:
    """``go_template`` with the block that shows Ollama what the proof showed it renders: thinking
    tags, tool calls (``.Tools``, where the Jinja reads calls but no definitions, as Ollama sees
    its GGUF's Jinja take tools then too) and the tool round trip."""
    tree = parse(go_template)
    parts = []
    calls = writes_tool_calls(tree)
    if calls and TOOLS not in go_capabilities(tree) and "tool_call" in jinja:
        parts.append("{{ .Tools }}")
    tags = proven_thinking_tags(proof, jinja)
    if tags is not None and "{{" not in "".join(tags):
        parts.append("{{ range .Messages }}" + tags[0] + "{{ .Thinking }}" + tags[1] + "{{ end }}")
    if renders_tool_results(proof) and calls and not writes_tool_results(tree):
        parts.append('{{ range .Messages }}{{ if eq .Role "tool" }}{{ end }}{{ end }}')
    if not parts:
        return go_template
    return go_template + "{{ if false }}" + "".join(parts) + "{{ end }}"
