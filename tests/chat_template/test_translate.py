"""The translator, construct by construct: every snippet must render as the Jinja does.

The oracle is always the Jinja (rendered by the transformers-like sandbox) against the Go
template — rendered by modelkit's evaluator here, and by Go's real text/template in
``test_snippets_through_real_go``. No expected output is written by hand.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from modelkit.chat_template.proof import BATTERY, THINK_SETTINGS, expected_prompt, prove, think_switches_read
from modelkit.chat_template.reference import RenderContext, TemplateRaised, render_chat
from modelkit.chat_template.translator import Unsupported, translate
from modelkit.golang import template as gt

TODAY = date(2025, 3, 4)

SNIPPETS: dict[str, str] = {
    "chatml": "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
    "loop first/last/index": "{% for m in messages %}{% if loop.first %}[first]{% endif %}{{ loop.index }}/{{ loop.length }}:{{ m.role }}={{ m.content }}{% if not loop.last %}|{% endif %}{% endfor %}",
    "messages[0] and [-1]": "{% if messages[0]['role'] == 'system' %}SYS({{ messages[0]['content'] }}){% endif %}LAST({{ messages[-1].role }}){% for m in messages %}<{{ m.content }}>{% endfor %}",
    "set messages[1:]": "{% if messages[0].role == 'system' %}{% set sys = messages[0].content %}{% set messages = messages[1:] %}{% else %}{% set sys = 'default system' %}{% endif %}[{{ sys }}]{% for m in messages %}{{ m.role }}:{{ m.content }};{% endfor %}{% if add_generation_prompt %}A:{% endif %}",
    "trim and strip": "{% for m in messages %}{% if m.role == 'user' %}<{{ m.content | trim }}>{% elif m.role == 'assistant' %}{{ m.content.rstrip('\n ') }}|{% else %}{{ m.content.lstrip() }}{% endif %}{% endfor %}",
    "written twice": "{% for m in messages %}{{ m.content }}/{{ m.content | trim }};{% endfor %}",
    "namespace across a loop": "{% set ns = namespace(seen_user=false, last='') %}{% for m in messages %}{% if m.role == 'user' %}{% if ns.seen_user %}(again){% endif %}{% set ns.seen_user = true %}{% endif %}{% set ns.last = m.role %}{{ m.content }}{% endfor %}[{{ ns.last }}]{% if ns.seen_user %}U{% endif %}",
    "roles must alternate": "{% for m in messages %}{% if (m.role == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}{{ m.role }}:{{ m.content }}\n{% endfor %}",
    "bos and eos literals": "{{ bos_token }}{% for m in messages %}{{ m.role }}: {{ m.content }}{% if m.role == 'assistant' %}{{ eos_token }}{% endif %}\n{% endfor %}",
    "macro": "{% macro turn(role, text) %}<{{ role }}>{{ text }}</{{ role }}>{% endmacro %}{% for m in messages %}{{ turn(m.role, m.content) }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}",
    "concatenation and tilde": "{% for m in messages %}{% set head = '[' ~ m.role|upper if false else '[' ~ m.role %}{{ head + ']' ~ m.content ~ (loop.index0 + 1) }}{% endfor %}",
    "conditional expression": "{% for m in messages %}{{ 'model' if m.role == 'assistant' else m.role }}:{{ m.content }};{% endfor %}",
    "default system prompt": "{% if messages[0].role != 'system' %}<s>You are a default assistant.</s>{% endif %}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}",
    "strftime_now": "Today is {{ strftime_now('%d %B %Y') }} ({{ strftime_now('%Y-%m-%d') }}, {{ strftime_now('%b %-d') }}).{% for m in messages %}{{ m.content }}{% endfor %}",
    "filters on lists": "{% set users = messages | selectattr('role', 'equalto', 'user') | list %}{{ users | length }} user turns;{% for m in messages | rejectattr('role', 'equalto', 'system') %}{{ m.content }};{% endfor %}last user: {{ (users | last).content }}",
    "reverse loop": "{% set ns = namespace(idx=-1) %}{% for m in messages[::-1] %}{% if ns.idx == -1 and m.role == 'user' %}{% set ns.idx = messages|length - 1 - loop.index0 %}{% endif %}{% endfor %}{% for m in messages %}{% if loop.index0 == ns.idx %}>>{% endif %}{{ m.content }}{% endfor %}",
    "range over indexes": "{% for i in range(messages|length) %}{{ i }}={{ messages[i].role }};{% endfor %}",
    "think split": "{% for m in messages %}{% set c = m.content %}{% if '</think>' in c %}{% set c = c.split('</think>')[-1] %}{% endif %}{{ m.role }}:{{ c }}\n{% endfor %}",
    "set block and generation": "{% for m in messages %}{% set line %}{{ m.role }}> {{ m.content }}{% endset %}{% generation %}{{ line }}{% endgeneration %}\n{% endfor %}",
    "startswith": "{% for m in messages %}{% if m.content.startswith('Hello') %}(greeting){% endif %}{% if m.content.endswith('?') %}(question){% endif %}{{ m.content }}{% endfor %}",
    "break and continue": "{% for m in messages %}{% if m.role == 'system' %}{% continue %}{% endif %}{{ m.content }}{% if m.content == 'Tell me a joke.' %}{% break %}{% endif %}{% endfor %}",
    # Hermes 2/3 (and many fine-tunes) use plain ChatML after BOS.
    "hermes chatml": "{{bos_token}}{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
    "go template syntax in text": "{{ '{{ .Prompt }}' }} }} {% for m in messages %}{{ m.content }}{% endfor %}",
    # Qwen3's switch: Ollama's think, unset (undefined), true or false.
    "thinking switch": "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<assistant>{% if enable_thinking is defined and enable_thinking is false %}<think></think>{% endif %}{% endif %}",
}


def _render_go(template: str, messages: list[dict[str, str]]) -> str:
    return gt.execute(gt.check_ollama_parse(template), gt.ollama_data(messages), TODAY)


@pytest.mark.parametrize("name", list(SNIPPETS))
@pytest.mark.parametrize("add_bos", [False, True])
def test_snippet_is_proven(name: str, add_bos: bool) -> None:
    source = SNIPPETS[name]
    tr = translate(source, "<s>", "</s>", add_bos)
    proof = prove(tr.go_template, source, "<s>", "</s>", add_bos, today=TODAY)
    assert proof.proven, "\n".join([proof.summary(), tr.go_template] + [o.diff() for o in proof.failures[:1]])


@pytest.mark.go
def test_snippets_through_real_go(go_render: Any) -> None:
    """Jinja against Go's real text/template, for every snippet and conversation."""
    cases, expected = [], []
    ctx = RenderContext(bos_token="<s>", eos_token="</s>", now=lambda: __import__("datetime").datetime(2025, 3, 4, 12))
    for name, source in SNIPPETS.items():
        tr = translate(source, "<s>", "</s>", False)
        switches = think_switches_read(source)
        for think in THINK_SETTINGS if switches else (None,):
            cases.append({"template": tr.go_template, "conversations": [list(c.messages) for c in BATTERY],
                          "think": think})
            jinja_ctx = ctx if think is None else RenderContext("<s>", "</s>", dict.fromkeys(switches, think), ctx.now)
            row = []
            for conv in BATTERY:
                try:
                    row.append(render_chat(source, conv.messages, jinja_ctx))
                except TemplateRaised:
                    row.append(None)
            expected.append((f"{name} think={think}", row))
    for (name, row), result in zip(expected, go_render(cases)):
        assert not result.get("error"), (name, result.get("error"))
        for conv, want, got in zip(BATTERY, row, result["results"]):
            if want is None:  # outside the template's contract: Go must refuse too, or at least not matter
                continue
            assert got.get("output") == want, (name, conv.name, got)


def test_tiny_template_keeps_or_drops_bos(tiny_chat_template: str) -> None:
    with_bos = translate(tiny_chat_template, "<s>", "</s>", add_bos_token=False)
    without = translate(tiny_chat_template, "<s>", "</s>", add_bos_token=True)
    msgs = [{"role": "user", "content": "Hi"}]
    assert _render_go(with_bos.go_template, msgs).startswith("<s><|user|>")
    assert _render_go(without.go_template, msgs).startswith("<|user|>")
    assert without.bos_removed and not with_bos.bos_removed


def test_continuation_stops_after_the_final_message(tiny_chat_template: str) -> None:
    tr = translate(tiny_chat_template, "<s>", "</s>", True)
    out = _render_go(tr.go_template, [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hel"}])
    assert out.endswith("<|assistant|>\nHel")


def test_raise_exception_becomes_a_go_error() -> None:
    source = SNIPPETS["roles must alternate"]
    tr = translate(source, None, None)
    two_users = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                 {"role": "assistant", "content": "c"}, {"role": "user", "content": "d"}]
    with pytest.raises(TemplateRaised):
        render_chat(source, two_users, RenderContext())
    # Ollama merges the two assistant messages, so feed Go a conversation it keeps as is.
    bad = [{"role": "assistant", "content": "first"}, {"role": "user", "content": "x"}]
    with pytest.raises(gt.GoTemplateError, match="Conversation roles must alternate"):
        _render_go(tr.go_template, bad)


def test_default_system_prompt_survives(llama_cpp_templates: Path) -> None:
    source = (llama_cpp_templates / "Qwen-Qwen2.5-7B-Instruct.jinja").read_text()
    tr = translate(source, None, "<|im_end|>")
    out = _render_go(tr.go_template, [{"role": "user", "content": "Hi"}])
    assert out.startswith("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud.")


@pytest.mark.parametrize("source, reason", [
    ("{% for m in messages %}{{ m.content[:3] }}{% endfor %}", "Go counts bytes"),
    ("{% for m in messages %}{{ m.content | tojson }}{% endfor %}", "tojson"),
    ("{% for m in messages %}{{ m.content | wordcount }}{% endfor %}", "wordcount"),
    ("{% for m in messages %}{{ m }}{% endfor %}", "whole message"),
    ("{% for m in messages %}{{ m.content.upper() }}{% endfor %}", "str.upper"),
])
def test_unsupported_constructs_are_refused_with_a_reason(source: str, reason: str) -> None:
    with pytest.raises(Unsupported, match=reason):
        translate(source)


def test_template_that_does_not_parse() -> None:
    with pytest.raises(Unsupported, match="does not parse"):
        translate("{% for m in messages %}{{ m.content }")


def test_unknown_filter() -> None:
    with pytest.raises(Unsupported, match="does not parse.*no_such_filter"):
        translate("{{ messages | no_such_filter }}")


def test_expected_prompt_rule() -> None:
    assert expected_prompt("<s>hi", "<s>", True) == "hi"
    assert expected_prompt("<s>hi", "<s>", False) == "<s>hi"
    assert expected_prompt("hi", "<s>", True) == "hi"
