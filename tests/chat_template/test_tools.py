"""Tools and reasoning in the TEMPLATE: each translator construct, proven, and checked against Go.

Every snippet reads tool definitions, tool calls, tool results or earlier reasoning in one of
the ways real templates do; each is translated with ``tools=True``, proven on the tool battery
(the Jinja's ``tojson`` writing as Ollama's ``json``), and rendered by Go's real
``text/template`` fed Ollama's own types (tests/chat_template/gorender), which must write what
modelkit's evaluator wrote in the proof.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from modelkit.chat_template.proof import TOOL_BATTERY, TOOLS, prove, translate_and_prove
from modelkit.chat_template.proof.declare import declared_for_ollama, proven_thinking_tags, renders_tool_results
from modelkit.chat_template.translator import Unsupported, translate
from modelkit.golang import template as gt
from modelkit.golang.template.capabilities import (
    THINKING,
    go_capabilities,
    has_tool_round_trip,
    thinking_tags,
    writes_tool_calls,
)
from modelkit.golang.template.capabilities import TOOLS as TOOLS_CAPABILITY
from modelkit.ollama.engine import predict_engine

from .conftest import go_conversations

TODAY = date(2025, 3, 4)
CHATML = ("{%- for message in messages %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n"
          "{%- endfor %}{%- if add_generation_prompt %}<|im_start|>assistant\n{%- endif %}")

SNIPPETS = {
    "tools as JSON lines": "{%- if tools %}<tools>{% for tool in tools %}\n{{ tool | tojson }}{% endfor %}\n</tools>"
                           "{% endif %}" + CHATML,
    "tools is not none, the whole list": "{%- if tools is not none %}[{{ tools | tojson }}]{% endif %}" + CHATML,
    "a tool's parts": "{%- for t in tools or [] %}{% if t.function is defined %}{% set t = t.function %}{% endif %}"
                      "{{ t.name }}: {{ t.description }} {{ t.parameters | tojson }}\n{% endfor %}" + CHATML,
    "tool calls, Hermes style": (
        "{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}"
        "{%- if m.tool_calls is defined %}{% for c in m.tool_calls %}<tool_call>{\"name\": \"{{ c.function.name }}\""
        ", \"arguments\": {{ c.function.arguments | tojson }}}</tool_call>{% endfor %}{% endif %}<|im_end|>\n"
        "{%- endfor %}{%- if add_generation_prompt %}<|im_start|>assistant\n{%- endif %}"),
    "call ids, tool names, `in` and get": (
        "{%- for m in messages %}[{{ m.role }}"
        "{%- if 'tool_calls' in m %}{% for c in m.tool_calls %} {{ c.id }}/{{ c.type }}:{{ c.function.name }}"
        "{% endfor %}{% endif %}"
        "{%- if m.role == 'tool' %} {{ m.get('name', '?') }}#{{ m.tool_call_id }}{% endif %}] {{ m.content }}\n"
        "{%- endfor %}"),
    "reasoning of earlier turns": (
        "{%- for m in messages %}{{ m.role }}: "
        "{%- if m.reasoning_content is string and m.reasoning_content %}<think>{{ m.reasoning_content }}</think>"
        "{%- endif %}{{ m.content }}\n{% endfor %}"),
    "arguments by key, GLM style": (
        "{%- for m in messages %}{{ m.role }}:{{ m.content }}{% for c in m.tool_calls or [] %}<call>{{ c.function.name }}"
        "{%- for k, v in c.function.arguments.items() %}<k>{{ k }}</k><v>{{ v | tojson if v is not string else v }}"
        "</v>{% endfor %}</call>{% endfor %}\n{% endfor %}"),
    "a number argument written as text": (
        "{%- for m in messages %}{{ m.role }}:{{ m.content }}{% for c in m.tool_calls or [] %}"
        "{%- for k, v in c.function.arguments.items() %} {{ k }}={{ v }}{% if v is number %}#{% endif %}"
        "{%- if v is mapping %}!{% endif %}{% endfor %}{% endfor %}\n{% endfor %}"),
    "a tool-call count": "{%- for m in messages %}{{ m.role }}{% if m.tool_calls %}({{ m.tool_calls | length }})"
                         "{% endif %}:{{ m.content }}\n{% endfor %}",
}


@pytest.mark.parametrize("name", SNIPPETS)
def test_each_construct_translates_with_tools_and_is_proven(name: str) -> None:
    source = SNIPPETS[name]
    tr = translate(source, "<s>", "</s>", False, tools=True)
    proof = prove(tr.go_template, source, "<s>", "</s>", False, today=TODAY)
    assert tr.tools and proof.tools, tr.go_template
    assert proof.proven, "\n".join([proof.summary(), tr.go_template] + [o.diff() for o in proof.failures[:1]])
    assert len(proof.outcomes) == len(TOOL_BATTERY)
    assert "no space after , and :" in proof.summary()


@pytest.mark.go
def test_each_construct_renders_the_same_through_real_go(go_render: Any) -> None:
    """What the proof saw modelkit's evaluator write is what Go writes, fed Ollama's own types."""
    proofs, cases = [], []
    for name, source in SNIPPETS.items():
        tr = translate(source, "<s>", "</s>", False, tools=True)
        proofs.append((name, prove(tr.go_template, source, "<s>", "</s>", False, today=TODAY)))
        cases.append({"template": tr.go_template, "conversations": go_conversations(TOOL_BATTERY)})
    for (name, proof), go in zip(proofs, go_render(cases)):
        assert not go.get("error"), (name, go["error"])
        for outcome, result in zip(proof.outcomes, go["results"]):
            assert result.get("output") == outcome.actual == outcome.expected, (name, outcome.label, result)


@pytest.mark.go
def test_the_evaluator_prints_ollamas_tool_types_as_go_does(go_render: Any) -> None:
    """Tools, calls and arguments printed, marshalled and ranged over: String(), json, sorted keys."""
    template = ("{{ .Tools }}|{{ range .Tools }}{{ . }}{{ json . }}{{ .Function.Parameters.Properties }}"
                "{{ range $k, $v := .Function.Parameters.Properties }}{{ $k }}={{ json $v }}{{ end }}{{ end }}|"
                "{{ range .Messages }}{{ range .ToolCalls }}{{ .ID }}{{ .Function.Index }}{{ .Function.Name }}"
                "{{ .Function.Arguments }}{{ json .Function.Arguments }}{{ .Function.Arguments.city }}"
                "{{ range $k, $v := .Function.Arguments }}{{ $k }}:{{ $v }},{{ end }}{{ end }}"
                "{{ .Thinking }}{{ .ToolName }}{{ .ToolCallID }}|{{ end }}")
    call = {"id": "c1", "function": {"index": 1, "name": "f", "arguments": {"days": 3, "city": "<Paris & co>",
                                                                          "ok": True, "ratio": 0.5}}}
    tool = {"type": "function", "function": {"name": "f", "description": "d", "parameters": {
        "type": "object", "required": ["city", "days"], "properties": {
            "days": {"type": "integer", "description": "how many"},
            "city": {"type": ["string", "null"], "enum": ["Paris", "Rome"]}}}}}
    messages = [{"role": "user", "content": "u"},
                {"role": "assistant", "content": "", "thinking": "hm", "tool_calls": [call]},
                {"role": "tool", "content": "r", "tool_name": "f", "tool_call_id": "c1"}]
    conversations = [{"messages": messages, "tools": [tool]}, {"messages": messages[:1], "tools": None}]
    go = go_render([{"template": template, "conversations": conversations}])[0]
    for conv, result in zip(conversations, go["results"]):
        ours = gt.execute(gt.check_ollama_parse(template), gt.ollama_data(conv["messages"], tools=conv["tools"] or ()),
                          TODAY)
        assert result == {"output": ours}


def test_tojson_formatting_go_cannot_do_keeps_tools_on_the_native_path(llama_cpp_templates: Path) -> None:
    """Llama 3.1 writes tools with ``tojson(indent=4)``: no TEMPLATE with tools; the plain one is proven."""
    source = (llama_cpp_templates / "meta-llama-Llama-3.1-8B-Instruct.jinja").read_text(encoding="utf-8")
    with_tools = translate(source, "<|begin_of_text|>", "<|eot_id|>", True, tools=True)
    assert any("indent" in why for why in with_tools.untranslated), with_tools.untranslated
    tr, proof = translate_and_prove(source, "<|begin_of_text|>", "<|eot_id|>", True, TODAY)
    assert not tr.tools and not proof.tools and proof.proven


def test_qwen3_shows_ollama_its_thinking_tags_and_round_trip_and_ollama_then_uses_it(
        llama_cpp_templates: Path) -> None:
    """The declaration block: Ollama's own rules (InferTags, the tool round trip) then pick the TEMPLATE."""
    source = (llama_cpp_templates / "Qwen-Qwen3-0.6B.jinja").read_text(encoding="utf-8")
    tr, proof = translate_and_prove(source, None, "<|im_end|>", False, TODAY)
    assert tr.tools and proof.proven and proof.follows_think, proof.summary()
    assert proven_thinking_tags(proof) == ("<think>", "</think>")
    assert tr.go_template.endswith("{{ if false }}{{ range .Messages }}<think>{{ .Thinking }}</think>{{ end }}{{ end }}")
    choice = predict_engine(source, tr.go_template)
    assert choice.selected == "go_template" and choice.go_template == ("tools", "thinking"), choice
    undeclared = tr.go_template[:tr.go_template.rindex("{{ if false }}")]
    assert predict_engine(source, undeclared).selected == "gguf_chat_template"


@pytest.mark.slow
def test_what_a_proof_declares_is_what_ollama_reads_back(llama_cpp_templates: Path) -> None:
    """For every template of llama.cpp that Ollama is shown tools or reasoning in: the capability
    rules the engine prediction reads with find, in the written TEMPLATE, exactly the thinking tags,
    tool calls and round trip the proof declared (one set of rules, both sides)."""
    declared = 0
    for path in sorted(llama_cpp_templates.glob("*.jinja")):
        source = path.read_text(encoding="utf-8")
        try:
            tr, proof = translate_and_prove(source, None, "</s>", False, TODAY)
        except Unsupported:
            continue
        if not tr.tools:
            continue
        tree = gt.parse(tr.go_template)
        tags, caps = proven_thinking_tags(proof, source), go_capabilities(tree)
        shown = tags if tags is not None and "{{" not in "".join(tags) else ("", "")
        assert thinking_tags(tree) == shown and (THINKING in caps) == (shown != ("", "")), path.name
        if writes_tool_calls(tree) and "tool_call" in source:
            assert TOOLS_CAPABILITY in caps, path.name
        if writes_tool_calls(tree) and renders_tool_results(proof):
            assert has_tool_round_trip(tree), path.name
        declared += tr.go_template.endswith("{{ end }}") and "{{ if false }}" in tr.go_template
    assert declared >= 15


def test_no_declaration_without_proof_of_it() -> None:
    """No tags where no rendering shows reasoning; no round trip where tool results are not shown."""
    source = SNIPPETS["tool calls, Hermes style"]
    tr = translate(source, "<s>", "</s>", False, tools=True)
    proof = prove(tr.go_template, source, "<s>", "</s>", False, today=TODAY)
    assert proven_thinking_tags(proof) is None
    declared = declared_for_ollama(tr.go_template, proof, source)
    assert '{{ if eq .Role "tool" }}' in declared and ".Thinking" not in declared
    results_dropped = source.replace("{{ m.content }}", "{% if m.role != 'tool' %}{{ m.content }}{% endif %}")
    tr2 = translate(results_dropped, "<s>", "</s>", False, tools=True)
    proof2 = prove(tr2.go_template, results_dropped, "<s>", "</s>", False, today=TODAY)
    declared2 = declared_for_ollama(tr2.go_template, proof2, results_dropped)
    assert proof2.proven and 'eq .Role "tool"' not in declared2 and "{{ .Tools }}" in declared2
    assert all(c in TOOL_BATTERY for c in TOOLS)
