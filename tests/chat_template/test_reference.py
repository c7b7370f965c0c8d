"""The Jinja reference renders exactly what transformers renders, and keeps templates sandboxed."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from modelkit.chat_template.proof import BATTERY
from modelkit.chat_template.reference import RenderContext, TemplateRaised, render_chat

FIXED = datetime(2025, 3, 4, 12, 0)


def _transformers_render(template: str, messages: list[dict[str, str]], bos: str, eos: str) -> str:
    chat_utils = pytest.importorskip("transformers.utils.chat_template_utils")
    continuation = messages[-1]["role"] == "assistant"
    rendered, _ = chat_utils.render_jinja_template(
        conversations=[messages], chat_template=template, add_generation_prompt=not continuation,
        continue_final_message=continuation, bos_token=bos, eos_token=eos)
    return rendered[0]


def test_same_as_transformers_on_llama_cpp_templates(llama_cpp_templates: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("transformers")
    import transformers.utils.chat_template_utils as ctu

    class _Clock(datetime):
        @classmethod
        def now(cls, tz: object = None) -> datetime:
            return FIXED

    monkeypatch.setattr(ctu, "datetime", _Clock)
    ctx = RenderContext(bos_token="<s>", eos_token="</s>", now=lambda: FIXED)
    checked = 0
    for path in sorted(llama_cpp_templates.glob("*.jinja")):
        template = path.read_text(encoding="utf-8")
        for conv in BATTERY:
            msgs = [dict(m) for m in conv.messages]
            try:
                ours: str | None = render_chat(template, msgs, ctx)
            except TemplateRaised:
                ours = None
            try:
                theirs: str | None = _transformers_render(template, msgs, "<s>", "</s>")
            except Exception:  # noqa: BLE001 - transformers raises many kinds; all mean "refused"
                theirs = None
            assert ours == theirs, f"{path.name} / {conv.name}"
            checked += ours is not None
    assert checked > 500


def test_generation_prompt_and_continuation(tiny_chat_template: str) -> None:
    ctx = RenderContext(bos_token="<s>", eos_token="</s>")
    asking = render_chat(tiny_chat_template, [{"role": "user", "content": "Hi"}], ctx)
    assert asking == "<s><|user|>\nHi</s>\n<|assistant|>\n"
    prefill = render_chat(tiny_chat_template, [{"role": "user", "content": "Hi"},
                                               {"role": "assistant", "content": "Hel"}], ctx)
    assert prefill == "<s><|user|>\nHi</s>\n<|assistant|>\nHel"


def test_raise_exception_is_reported() -> None:
    with pytest.raises(TemplateRaised, match="roles must alternate"):
        render_chat("{{ raise_exception('roles must alternate') }}", [{"role": "user", "content": "x"}],
                    RenderContext())


@pytest.mark.parametrize("evil", [
    "{{ ''.__class__.__mro__ }}",
    "{% set ns = namespace() %}{% set ns._x = 1 %}",
    "{{ messages.append(1) }}",
])
def test_sandbox_refuses_escapes(evil: str) -> None:
    with pytest.raises(TemplateRaised):
        render_chat(evil, [{"role": "user", "content": "x"}], RenderContext())


def test_sandbox_hides_internals() -> None:
    assert render_chat("{{ messages.__class__ }}", [{"role": "user", "content": "x"}], RenderContext()) == ""


def test_transformers_helpers() -> None:
    ctx = RenderContext(now=lambda: FIXED)
    out = render_chat("{{ strftime_now('%d %b %Y') }} {{ {'a': '<ü>'} | tojson }}{% generation %}!{% endgeneration %}"
                      "{% for i in range(3) %}{% if i == 1 %}{% break %}{% endif %}{{ i }}{% endfor %}",
                      [{"role": "user", "content": "x"}], ctx)
    assert out == '04 Mar 2025 {"a": "<ü>"}!0'
