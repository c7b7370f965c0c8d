"""Ollama's ``think`` option and the Jinja's thinking switch (``enable_thinking``).

Ollama gives a TEMPLATE ``.IsThinkSet`` (the request set think at all) and ``.Think`` (it asks
for thinking; ``server/prompt.go`` renderPrompt, ``template/template.go`` Values). The
translation maps the switch so: undefined when think is unset, else ``.Think``. The oracle is
always the Jinja, rendered with ``enable_thinking`` undefined, True and False, against the Go
template rendered on the data Ollama builds for no think, ``--think`` and ``--think=false`` —
by modelkit's evaluator here, and by Go's real ``text/template`` in the tests marked ``go``.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any, Optional

import pytest

from modelkit.chat_template import inherit_template
from modelkit.chat_template.proof import (
    BATTERY,
    GO_ERROR,
    THINK_SETTINGS,
    TOOL_BATTERY,
    cross_check,
    prove,
    think_switches_read,
    translate_and_prove,
)
from modelkit.chat_template.reference import RenderContext, TemplateRaised, render_chat
from modelkit.chat_template.source import ChatTemplateSource
from modelkit.chat_template.translator import Unsupported, translate
from modelkit.golang import template as gt

from .conftest import go_conversations

TODAY = date(2025, 3, 4)
CTX = RenderContext(bos_token="<s>", eos_token="</s>", now=lambda: datetime(2025, 3, 4, 12))

#: Small templates that switch thinking the ways real ones do (Qwen3, SmolLM3, GLM, Laguna...).
THINKING: dict[str, str] = {
    "qwen3: defined and false": (
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n"
        "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}{% endif %}"),
    "smollm3: default true, set": (
        "{% if enable_thinking is not defined %}{% set enable_thinking = true %}{% endif %}"
        "{% if enable_thinking %}{% set mode = '/think' %}{% else %}{% set mode = '/no_think' %}{% endif %}"
        "Reasoning Mode: {{ mode }}\n{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant:{% if mode == '/no_think' %} <think></think>{% endif %}{% endif %}"),
    "glm: conditional expression": (
        "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}"
        "{{ '/nothink' if (m.role == 'user' and enable_thinking is defined and not enable_thinking) else '' }}"
        "{% endfor %}{% if add_generation_prompt %}<|assistant|>"
        "{{ '</think>' if (enable_thinking is defined and not enable_thinking) else '<think>' }}{% endif %}"),
    "laguna: default filter": (
        "{% set enable_thinking = enable_thinking | default(false) %}"
        "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}"
        "{% if add_generation_prompt %}[assistant]{{ '<think>' if enable_thinking else '</think>' }}{% endif %}"),
    "truthiness of undefined": (
        "{% for m in messages %}{{ m.role }}={{ m.content }};{% endfor %}"
        "{% if not enable_thinking %}(off){% endif %}{% if enable_thinking %}(on){% endif %}"),
    "in a namespace across the loop": (
        "{% set ns = namespace(think=enable_thinking if enable_thinking is defined else true) %}"
        "{% for m in messages %}{% if m.role == 'system' %}{% set ns.think = false %}{% endif %}"
        "{{ m.content }}|{% endfor %}{{ 'T' if ns.think else 'F' }}"),
}


def _go(template: str, messages: list[dict[str, str]], think: gt.Think) -> str:
    return gt.execute(gt.check_ollama_parse(template), gt.ollama_data(messages, think=think), TODAY)


def _jinja(source: str, messages: Any, think: gt.Think) -> str | None:
    ctx = CTX if think is None else RenderContext("<s>", "</s>", {"enable_thinking": bool(think)}, CTX.now)
    try:
        return render_chat(source, messages, ctx)
    except TemplateRaised:
        return None


def _src(template: str) -> ChatTemplateSource:
    return ChatTemplateSource(template, "think.jinja", "<s>", "</s>", False)


def test_think_data_is_what_ollama_builds() -> None:
    """``api.ThinkValue``'s Bool and String, and IsThinkSet = think != nil (server/prompt.go)."""
    assert gt.think_data(None) == {"Think": False, "ThinkLevel": b"", "IsThinkSet": False}
    assert gt.think_data(False) == {"Think": False, "ThinkLevel": b"", "IsThinkSet": True}
    assert gt.think_data(True) == {"Think": True, "ThinkLevel": b"medium", "IsThinkSet": True}
    assert gt.think_data("high") == {"Think": True, "ThinkLevel": b"high", "IsThinkSet": True}
    assert gt.ollama_data([], think="low")["ThinkLevel"] == b"low"


@pytest.mark.parametrize("name", list(THINKING))
def test_thinking_switch_follows_think(name: str) -> None:
    source = THINKING[name]
    tr = translate(source, "<s>", "</s>")
    assert tr.think_switches == ("enable_thinking",)
    assert "$.IsThinkSet" in tr.go_template or "$.Think" in tr.go_template, tr.go_template
    proof = prove(tr.go_template, source, "<s>", "</s>", False, today=TODAY)
    assert proof.proven and proof.follows_think, "\n".join([proof.summary(), tr.go_template] +
                                                            [o.diff() for o in proof.failures[:1]])
    assert proof.think == THINK_SETTINGS and len(proof.outcomes) == 3 * len(BATTERY)
    assert "with think unset, true, false" in proof.summary()
    msgs = [{"role": "user", "content": "Hi"}]
    for think in ("high", "low"):  # a level is thinking on, as enable_thinking=True
        assert _go(tr.go_template, msgs, think) == _jinja(source, msgs, True)


def test_the_settings_give_different_prompts() -> None:
    """The point of the mapping: ``--think=false`` changes the prompt, no think keeps the default."""
    source = THINKING["qwen3: defined and false"]
    go = translate(source).go_template
    msgs = [{"role": "user", "content": "Hi"}]
    unset, on, off = (_go(go, msgs, t) for t in THINK_SETTINGS)
    assert unset == on == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    assert off == unset + "<think>\n\n</think>\n\n"


def test_a_template_ignoring_think_is_not_proven() -> None:
    """The proof renders every setting: a TEMPLATE that ignores think fails on the one that matters."""
    source = THINKING["qwen3: defined and false"]
    ignoring = translate(source, follow_think=False).go_template
    assert "Think" not in ignoring
    proof = prove(ignoring, source, "<s>", "</s>", False, today=TODAY)
    assert not proof.proven
    assert {o.think for o in proof.failures} == {False}
    assert "renderings differ, first 'user' with think=false" in proof.summary()


def test_templates_without_a_switch_are_rendered_once() -> None:
    source = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
    assert think_switches_read(source) == ()
    tr = translate(source)
    proof = prove(tr.go_template, source, None, None, False, today=TODAY)
    assert tr.think_switches == () and proof.think == (None,) and not proof.follows_think
    assert len(proof.outcomes) == len(BATTERY) and proof.summary() == f"proven on {len(BATTERY)} conversations"
    assert translate(source).go_template == translate(source, follow_think=False).go_template


def test_switch_read_only_after_being_set_is_no_switch() -> None:
    assert think_switches_read("{% set enable_thinking = true %}{{ enable_thinking }}") == ()
    assert think_switches_read("{% if enable_thinking is defined %}x{% endif %}") == ("enable_thinking",)
    assert think_switches_read("{% for m in messages %}") == ()  # does not parse: the proof says so


#: Thinking switches the translator cannot follow: written through Go-unsafe string slicing, so
#: only think unset (where the Jinja never reaches it) can be rendered right.
UNFOLLOWABLE = {
    "refused outright": ("{% for m in messages %}{{ m.role }}:{{ m.content }}\n{% endfor %}"
                         "{{ messages[-1].content[:3] if enable_thinking else '' }}"),
    "in a branch that stops with an error": ("{% for m in messages %}{{ m.role }}:{{ m.content }}\n{% endfor %}"
                                             "{% if enable_thinking %}{{ messages[-1].content[:3] }}{% endif %}"),
}


@pytest.mark.parametrize("name", list(UNFOLLOWABLE))
def test_a_switch_that_cannot_be_followed_is_said(name: str) -> None:
    source = UNFOLLOWABLE[name]
    if name == "refused outright":
        with pytest.raises(Unsupported, match="Go counts bytes"):
            translate(source)
    tr, proof = translate_and_prove(source, "<s>", "</s>", False, TODAY)
    assert proof.proven and not proof.follows_think and proof.think == (None,)
    assert "Think" not in tr.go_template
    assert "with think unset only: the TEMPLATE does not follow Ollama's think option" in proof.summary()
    result = inherit_template(_src(source))
    assert "with think unset only" in result.summary
    assert any(n.startswith("`--think` is not followed") for n in result.notes), result.notes


def test_inherit_says_the_template_follows_think() -> None:
    result = inherit_template(_src(THINKING["smollm3: default true, set"]), today=TODAY)
    assert result.summary.startswith(f"proven on {len(BATTERY)} conversations with think unset, true, false")
    assert any(n.startswith("follows Ollama's think option: enable_thinking") for n in result.notes), result.notes


def test_family_template_is_proven_with_think_unset_only(llama_cpp_templates: Path) -> None:
    """MiniCPM5 writes ChatML: the chatml family template, which never reads .Think, agrees with
    think unset only, so it is not said to agree with the translation, which follows think."""
    source = ChatTemplateSource((llama_cpp_templates / "openbmb-MiniCPM5-1B.jinja").read_text(), "minicpm5", None,
                                "<|im_end|>", False)
    chatml = [c for c in cross_check(source) if c.family == "chatml"]
    assert chatml and chatml[0].proof.proven and not chatml[0].proof.follows_think
    assert "with think unset only: the family template does not follow Ollama's think option" in \
        chatml[0].proof.summary()
    result = inherit_template(source)
    assert "with think unset, true, false" in result.summary and "family" not in result.summary


def _thinking_templates(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.glob("*.jinja")) if think_switches_read(p.read_text(encoding="utf-8"))]


@pytest.mark.go
def test_think_fields_match_go(go_render: Any) -> None:
    """The evaluator's data for each think against Go's, on a template that prints the fields."""
    template = ("{{ if false }}{{ .Messages }}{{ end }}{{ .Think }}|{{ .ThinkLevel }}|{{ .IsThinkSet }}|"
                "{{ if and $.IsThinkSet (not $.Think) }}off{{ else if not .IsThinkSet }}unset{{ else }}on{{ end }}"
                "|{{ printf \"%v %q\" .Think .ThinkLevel }}")
    thinks: list[gt.Think] = [None, True, False, "high", "medium", "low", "max"]
    convs = [[{"role": "user", "content": "hi"}]]
    results = go_render([{"template": template, "conversations": convs, "think": t} for t in thinks])
    for think, go in zip(thinks, results):
        assert go["results"][0]["output"] == _go(template, convs[0], think), think


@pytest.mark.go
@pytest.mark.slow
def test_llama_cpp_thinking_templates_through_real_go(go_render: Any, llama_cpp_templates: Path) -> None:
    """Every real thinking template, translated and proven, then rendered by Go's text/template with
    think unset, true and false: byte for byte what the proof saw modelkit's evaluator render, and
    so, for the proven ones, what the Jinja renders."""
    cases, proofs = [], []
    for path in _thinking_templates(llama_cpp_templates):
        for add_bos in (True, False):
            try:
                tr, proof = translate_and_prove(path.read_text(encoding="utf-8"), "<s>", "</s>", add_bos, TODAY)
            except Unsupported:
                continue
            battery = TOOL_BATTERY if proof.tools else BATTERY
            for think in proof.think:
                cases.append({"template": tr.go_template, "conversations": go_conversations(battery), "think": think})
                proofs.append((f"{path.stem} add_bos={add_bos}", proof, think, battery))
    assert len(cases) >= 3 * 2 * 23
    checked = 0
    for (name, proof, think, battery), go in zip(proofs, go_render(cases)):
        assert not go.get("error"), (name, go["error"])
        outcomes = [o for o in proof.outcomes if o.think == think]
        assert [o.conversation for o in outcomes] == list(battery)
        for outcome, g in zip(outcomes, go["results"]):
            where = (name, outcome.label)
            if outcome.status == GO_ERROR:
                assert "error" in g, where
            elif outcome.actual is not None:
                assert g.get("output") == outcome.actual, where
                checked += 1
                if proof.proven:
                    assert g["output"] == outcome.expected, where
    assert checked >= 3 * 2 * 23 * 8
