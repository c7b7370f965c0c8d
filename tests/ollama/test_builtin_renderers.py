"""RENDERER/PARSER/REQUIRES: which templates get them (:mod:`modelkit.ollama.renderers`), and how the
Modelfile, the engine prediction and the freshness record carry them. The real Ollama's account is
``tests/test_real_renderers.py``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from modelkit.chat_template.proof import DIFFERS, SAME, Outcome, Proof
from modelkit.chat_template.proof.conversations import BATTERY, TOOLS
from modelkit.errors import ModelfileError
from modelkit.ollama.engine import predict_engine
from modelkit.ollama.freshness import ServerCopy, server_copy
from modelkit.ollama.modelfile import Modelfile, render_modelfile
from modelkit.ollama.renderers import (
    CANDIDATES,
    CONTINUATIONS,
    PROVEN,
    builtin_for,
    jinja_digest,
    ollama_chat_body,
    verdict,
)
from modelkit.steps.modelfile import RenderModelfile

GLIMMER = next(k for k, v in PROVEN.items() if v.renderer == "glimmer")


def test_the_modelfile_carries_renderer_parser_and_requires_where_ollama_prints_them() -> None:
    text = render_modelfile(Modelfile(from_="./m.gguf", template="{{ .Prompt }}", system="Be brief.",
                                      renderer="glimmer", parser="glimmer", requires="0.32.11"))
    assert text.endswith('TEMPLATE {{ .Prompt }}\nSYSTEM Be brief.\nRENDERER glimmer\nPARSER glimmer\n'
                         'REQUIRES 0.32.11\n')
    assert "RENDERER" not in render_modelfile(Modelfile(from_="./m.gguf"))


@pytest.mark.parametrize("name", ["Glimmer", "two words", "", "a\nb"])
def test_a_renderer_name_ollama_could_not_look_up_is_refused(name: str) -> None:
    with pytest.raises(ModelfileError, match="RENDERER"):
        render_modelfile(Modelfile(from_="./m.gguf", renderer=name))


def test_only_the_exact_template_with_the_renderers_bos_gets_the_renderer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lookup's rules on a template of its own (the table's real templates are re-proven against
    the real Ollama in ``tests/test_real_renderers.py``)."""
    jinja = "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}\n"
    entry = dataclasses.replace(PROVEN[GLIMMER], template="own")
    monkeypatch.setitem(PROVEN, jinja_digest(jinja), entry)
    assert builtin_for(jinja, entry.bos_token) is entry
    assert builtin_for(jinja.removesuffix("\n"), entry.bos_token) is entry  # Jinja drops one final newline itself
    assert builtin_for(jinja + "\n", entry.bos_token) is None  # a second one it writes
    assert builtin_for(jinja.replace("<{{", "< {{"), entry.bos_token) is None  # a fine-tune's edit
    assert builtin_for(jinja, "<s>") is None  # the renderer writes another BOS than this tokenizer's
    assert builtin_for(None, None) is None


def test_every_entry_names_a_candidate_of_ollama_and_a_release_no_older_than_its_renderer() -> None:
    since = {r: tuple(map(int, v.split("."))) for r, _, v, _ in CANDIDATES}
    for entry in PROVEN.values():
        assert (entry.renderer, entry.parser) in {(r, p) for r, p, _, _ in CANDIDATES}
        assert tuple(map(int, entry.requires.split("."))) >= since[entry.renderer]


def _outcome(conv: int, status: str, tools: bool = False) -> Outcome:
    return Outcome((TOOLS if tools else BATTERY)[conv], status)


def test_a_renderer_is_accepted_exactly_or_with_only_continuations_differing() -> None:
    continuation = next(i for i, c in enumerate(BATTERY) if c.messages[-1]["role"] == "assistant")
    assert verdict(Proof((_outcome(0, SAME), _outcome(1, SAME)))) == (True, "")
    assert verdict(Proof((_outcome(0, SAME), _outcome(continuation, DIFFERS)))) == (True, CONTINUATIONS)
    refused, words = verdict(Proof((_outcome(0, SAME), _outcome(0, DIFFERS, tools=True))))
    assert not refused and words.startswith("not proven")
    assert not verdict(Proof((_outcome(continuation, DIFFERS),)))[0]  # nothing else rendered the same


def test_a_battery_conversation_is_sent_as_ollamas_api_message() -> None:
    call = TOOLS[2]
    body = ollama_chat_body("m", call, think=False)
    assert body["think"] is False and body["_debug_render_only"] and body["truncate"] is False
    assert body["tools"] == list(call.tools)
    assistant, tool = body["messages"][1], body["messages"][2]
    assert assistant["tool_calls"] == [{"id": "call00001", "function": {"index": 0, "name": "get_weather",
                                                                         "arguments": {"city": "Paris"}}}]
    assert tool == {"role": "tool", "content": "18°C, sunny", "tool_name": "get_weather", "tool_call_id": "call00001"}
    assert "think" not in ollama_chat_body("m", BATTERY[0])


def test_the_engine_says_which_renderer_and_parser() -> None:
    choice = predict_engine("{{ tools }}", "{{ .Prompt }}", renderer="glimmer", parser="glimmer")
    assert choice.selected == "renderer_parser"
    assert "renderer glimmer and parser glimmer" in choice.words() and "glimmer" in choice.short()


def test_freshness_records_the_renderer_and_reads_receipts_written_before_it() -> None:
    shown = {"modelfile": "FROM /b/sha256-" + "a" * 64 + "\nTEMPLATE {{ .Prompt }}\nRENDERER glimmer\nPARSER glimmer\n",
             "template": "{{ .Prompt }}", "requires": "0.32.11"}
    copy = server_copy(shown)
    assert (copy.renderer, copy.parser, copy.requires) == ("glimmer", "glimmer", "0.32.11")
    old = copy.to_json()
    for key in ("renderer", "parser", "requires"):
        del old[key]
    assert ServerCopy.from_json(old).renderer == ""


def test_the_build_writes_the_lines_only_for_an_inherited_template_in_the_table(monkeypatch: pytest.MonkeyPatch,
                                                                               tmp_path: Path) -> None:
    """The Modelfile step reads the template step's output (the Jinja and its BOS); a TEMPLATE the
    spec gives is what the user chose to render, so it gets no renderer."""
    jinja = "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
    entry = PROVEN[GLIMMER]
    monkeypatch.setitem(PROVEN, jinja_digest(jinja), entry)
    inherited = tmp_path / "template.json"
    inherited.write_text(json.dumps({"origin": "base", "template": "{{ .Prompt }}", "stop": [], "proof": "proven",
                                     "jinja": jinja, "bos_token": entry.bos_token, "eos_token": "</s>",
                                     "eot_tokens": []}))
    step = RenderModelfile(out=tmp_path / "m.Modelfile", from_="./m.gguf", adapters=[], system=None, parameters={},
                           messages=[], license=None, inherited=inherited)
    assert step.builtin() is entry
    assert f"RENDERER glimmer\nPARSER glimmer\nREQUIRES {entry.requires}\n" in step.content()
    given = dataclasses.replace(step, template="{{ .Prompt }}", inherited=None)
    assert given.builtin() is None and "RENDERER" not in given.content()
