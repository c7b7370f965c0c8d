"""Where each of Ollama's engines places an image, against the template's own place for it."""

from __future__ import annotations

import pytest
from tiny_vlm import GEMMA3_TEMPLATE

from modelkit.chat_template import inherit_template
from modelkit.chat_template.proof import DIFFERS, OUTSIDE, SAME, prove_images
from modelkit.chat_template.proof.images import GO_TEMPLATE, NATIVE
from modelkit.chat_template.source import ChatTemplateSource

TEXT_ONLY = ("{% for m in messages %}<|{{ m.role }}|>{{ m.content if m.content is string else "
             "m.content | selectattr('type', 'equalto', 'text') | map(attribute='text') | join }}\n{% endfor %}"
             "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")


def placements(jinja: str) -> dict[tuple[str, str], tuple[str, str]]:
    source = ChatTemplateSource(template=jinja, bos_token="<bos>", eos_token="<eos>", origin="test",
                                add_bos_token=True)
    go = inherit_template(source).go_template
    proof = prove_images(go, jinja, "<bos>", "<eos>", True)
    return {(p.conversation, p.engine): (p.status, p.detail) for p in proof.placements}


def test_gemma3s_go_template_places_an_image_where_the_template_does() -> None:
    seen = placements(GEMMA3_TEMPLATE)
    for name in ("image+question", "system+image+question", "image, answer, question", "two images"):
        assert seen[(name, GO_TEMPLATE)][0] == SAME, name
    assert seen[("question+image", GO_TEMPLATE)] == (DIFFERS, "Ollama puts the image before the text, the "
                                                              "template after it")


def test_native_chat_mode_sends_the_text_first_and_says_so() -> None:
    seen = placements(GEMMA3_TEMPLATE)
    assert seen[("question+image", NATIVE)][0] == SAME
    assert seen[("image+question", NATIVE)] == (DIFFERS, "Ollama puts the image after the text, the template "
                                                         "before it")


def test_a_template_with_no_text_for_an_image_has_no_place_for_one() -> None:
    seen = placements(TEXT_ONLY)
    assert {status for status, _ in seen.values()} == {OUTSIDE}
    assert "writes nothing of its own for an image" in seen[("image+question", GO_TEMPLATE)][1]


@pytest.mark.parametrize("engine", [GO_TEMPLATE, NATIVE])
def test_the_summary_names_each_conversation_placed_elsewhere(engine: str) -> None:
    source = ChatTemplateSource(template=GEMMA3_TEMPLATE, bos_token="<bos>", eos_token="<eos>", origin="test",
                                add_bos_token=True)
    proof = prove_images(inherit_template(source).go_template, GEMMA3_TEMPLATE, "<bos>", "<eos>", True)
    line = proof.summary(engine)
    assert line.startswith(f"images ({engine}): placed as the template places them in ")
    assert "elsewhere in '" in line
