"""Stops for tool-call turns, proven on llama.cpp's real templates: the expected marker per family,
and no stop ever inside a tool call that Ollama's parser has to read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modelkit.chat_template.reference import RenderContext, TemplateRaised, render_chat
from modelkit.chat_template.stops import TOOLS, derive_stops, tool_conversations, tool_turns

BOS, EOS = "<s>", "</s>"
NAME, VALUE, RESULT, USER = "qz7lookup", "qz7valueqz7", "qz7resultqz7", "qz7userqz7"

# Per family: the marker that ends the tool-call turn, the marker that opens the tool's result
# right after it (None: none), and pieces of call syntax that must never be stops. Read from
# what each template renders, not from the model cards.
FAMILIES = [
    ("meta-llama-Llama-3.1-8B-Instruct", "<|eot_id|>", "<|start_header_id|>", ("<|python_tag|>",)),
    ("meta-llama-Llama-3.2-3B-Instruct", "<|eot_id|>", "<|start_header_id|>", ()),
    ("meetkai-functionary-medium-v3.1", "<|eom_id|>", "<|start_header_id|>", ("</function>",)),
    ("meetkai-functionary-medium-v3.2", "<|eot_id|>", "<|start_header_id|>", ()),
    ("openai-gpt-oss-120b", "<|call|>", "<|start|>", ("<|message|>", "<|channel|>")),
    ("Qwen-Qwen2.5-7B-Instruct", "<|im_end|>", "<|im_start|>", ("<tool_call>", "</tool_call>")),
    ("NousResearch-Hermes-3-Llama-3.1-8B-tool_use", "<|im_end|>", "<|im_start|>", ("</tool_call>",)),
    ("Qwen3-Coder", "<|im_end|>", "<|im_start|>", ("</parameter>", "</function>", "</tool_call>")),
    ("mistralai-Mistral-Nemo-Instruct-2407", "</s>", "[TOOL_RESULTS]", ("[TOOL_CALLS]",)),
    ("unsloth-mistral-Devstral-Small-2507", "</s>", "[TOOL_RESULTS]", ("[TOOL_CALLS]", "[ARGS]")),
    ("CohereForAI-c4ai-command-r7b-12-2024-tool_use", "<|END_OF_TURN_TOKEN|>", "<|START_OF_TURN_TOKEN|>",
     ("<|START_ACTION|>", "<|END_ACTION|>")),
    ("ibm-granite-granite-4.0", "<|end_of_text|>", "<|start_of_role|>", ("</tool_call>",)),
    ("deepseek-ai-DeepSeek-V3.1", "<｜end▁of▁sentence｜>", "<｜tool▁output▁begin｜>",
     ("<｜tool▁call▁end｜>", "<｜tool▁calls▁end｜>", "<｜tool▁sep｜>")),
    ("deepseek-ai-DeepSeek-V3.2", "<｜end▁of▁sentence｜>", "<function_results>", ("</｜DSML｜function_calls>",)),
    ("moonshotai-Kimi-K2", "<|im_end|>", "<|im_system|>", ("<|tool_call_end|>", "<|tool_calls_section_end|>")),
    ("GLM-4.6", "<|observation|>", "<tool_response>", ("</tool_call>", "</arg_value>")),
    ("google-gemma-4-31B-it", "<|tool_response>", None, ("<tool_call|>", '<|"|>')),
    ("upstage-Solar-Open-100B", "<|calls|>", "<|begin|>", ("<|tool_call:end|>",)),
    ("Kimi-K3", "<|end_of_msg|>", None, ("<|close|>", "<|open|>", "<|sep|>")),
    ("poolside-Laguna-S-2.1", "</assistant>", "<tool_response>", ("</tool_call>",)),
]


def _template(folder: Path, name: str) -> str:
    return (folder / f"{name}.jinja").read_text(encoding="utf-8")


@pytest.mark.parametrize("name, end, opener, never", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_tool_turn_stop_per_family(llama_cpp_templates: Path, name: str, end: str, opener: str | None,
                                   never: tuple[str, ...]) -> None:
    template = _template(llama_cpp_templates, name)
    turn = tool_turns(template, BOS, EOS)[0]
    assert (turn.end, turn.opener) == (end, opener)
    stops = derive_stops(template, BOS, EOS)
    assert {end, opener} - {None} <= set(stops)
    assert not set(never) & set(stops)


@pytest.mark.parametrize("name, new", [
    ("meta-llama-Llama-3.1-8B-Instruct", {"<|eom_id|>"}),  # its builtin-tool calls: <|python_tag|>…<|eom_id|>
    ("meetkai-functionary-medium-v3.1", {"<|eom_id|>"}),
    ("openai-gpt-oss-120b", {"<|call|>"}),
    ("GLM-4.6", {"<|observation|>", "<tool_response>"}),
    ("upstage-Solar-Open-100B", {"<|calls|>"}),
    ("mistralai-Mistral-Nemo-Instruct-2407", {"[TOOL_RESULTS]"}),
    ("deepseek-ai-DeepSeek-V3.1", {"<｜tool▁output▁begin｜>"}),
    ("google-gemma-4-31B-it", {"<|tool_response>"}),
])
def test_tool_turns_add_stops_the_plain_turn_lacks(llama_cpp_templates: Path, name: str, new: set[str]) -> None:
    template = _template(llama_cpp_templates, name)
    before = derive_stops(template, BOS, EOS, tool_calls=False)
    after = derive_stops(template, BOS, EOS)
    assert set(after) - set(before) == new
    assert [s for s in after if s in before] == list(before)  # the plain stops keep their order


def test_a_stop_that_would_cut_a_call_is_dropped(llama_cpp_templates: Path) -> None:
    """GigaChat3 writes the call as a turn of its own after the assistant's <|message_sep|>, so that
    plain-turn stop would end every tool call before it starts; Kimi-K3 closes its call with <|close|>."""
    giga = _template(llama_cpp_templates, "GigaChat3-10B-A1.8B")
    assert derive_stops(giga, BOS, EOS, tool_calls=False) == ("<|message_sep|>", EOS)
    assert derive_stops(giga, BOS, EOS) == (EOS,)
    kimi = _template(llama_cpp_templates, "Kimi-K3")
    assert derive_stops(kimi, BOS, EOS, tool_calls=False) == ("<|close|>", "<|open|>", EOS)
    assert derive_stops(kimi, BOS, EOS) == ("<|end_of_msg|>", EOS)


# What opens and what closes a tool call, by hand from the templates: the span Ollama's parser reads.
CALL_OPENERS = ("<tool_call>", "[TOOL_CALLS]", "<|tool_call>", "<|tool_call_start|>", "<tool_calls>", "<TOOLCALL>",
                "<|tools_prefix|>", "<|START_ACTION|>", "Action:", "<seed:tool_call>", "<minimax:tool_call>",
                "<｜tool▁calls▁begin｜>", "<|tool_calls_section_begin|>", "<｜DSML｜function_calls>",
                "<｜DSML｜tool_calls>", "<atem:function_calls>", "<tool_calls:opensource>", "<|tool_calls|>",
                "<function=", "<function name=", "<|python_tag|>", "<|function_call|>", "function call<|role_sep|>",
                "<|open|>tools", "to=functions.", ">>>")
CALL_CLOSERS = ("</tool_call>", "</tool_calls>", "<tool_call|>", "<|tool_call_end|>", "<|tool_calls_section_end|>",
                "<｜tool▁calls▁end｜>", "<|END_ACTION|>", "</TOOLCALL>", "<|tool_call:end|>", "</seed:tool_call>",
                "</minimax:tool_call>", "</｜DSML｜function_calls>", "</｜DSML｜tool_calls>", "</atem:function_calls>",
                "</tool_calls:opensource>", "<|tools_suffix|>", "</function>", "<|close|>tools<|sep|>", "```",
                "]<]minimax[>[</tool_call>")


def _rendered_call(template: str) -> tuple[str, str] | None:
    """(the tool conversation as rendered, the prompt for the first user message), or None."""
    ctx = RenderContext(bos_token=BOS, eos_token=EOS)
    try:
        prompt = render_chat(template, [{"role": "user", "content": USER}], ctx, TOOLS)
    except TemplateRaised:
        return None
    for convo in tool_conversations():
        try:
            rendered = render_chat(template, convo, ctx, TOOLS)
        except TemplateRaised:
            continue
        if RESULT in rendered and VALUE in rendered[rendered.find(USER):rendered.find(RESULT)]:
            return rendered, prompt
    return None


def _call_span(rendered: str) -> tuple[int, int]:
    """Where the call begins (its opener, else the JSON object around its name) and where it ends
    (its last closer, else the JSON after the argument's value)."""
    user, result = rendered.find(USER), rendered.find(RESULT)
    name = rendered.find(NAME, user)
    openers = [rendered.rfind(o, user, name) for o in CALL_OPENERS]
    start = max(openers) if max(openers) >= 0 else rendered.rfind("{", user, name)
    value_end = rendered.rfind(VALUE, user, result) + len(VALUE)
    closers = [rendered.rfind(c, value_end, result) + len(c) for c in CALL_CLOSERS if c in rendered[value_end:result]]
    end = max(closers) if closers else value_end + len(re.match(r"[\s\"'}\])]*", rendered[value_end:]).group())
    return start, end


def test_no_stop_ever_cuts_a_tool_call(llama_cpp_templates: Path) -> None:
    """Over every llama.cpp template that renders a tool call: no derived stop occurs in the call
    (opener to closer, as listed by hand above); where the tool conversation begins with the very
    prompt the model answers, none occurs in the model's whole text up to the call's end either."""
    calls = whole = 0
    cut: list[str] = []
    for path in sorted(llama_cpp_templates.glob("*.jinja")):
        template = path.read_text(encoding="utf-8")
        found = _rendered_call(template)
        if found is None:
            continue
        rendered, prompt = found
        calls += 1
        start, end = _call_span(rendered)
        if rendered.startswith(prompt):
            whole += 1
            start = len(prompt)
        text = rendered[start:end]
        cut += [f"{path.stem}: {s!r} in {text!r}" for s in derive_stops(template, BOS, EOS) if s in text]
    assert cut == []
    assert calls >= 50 and whole >= 35, (calls, whole)  # llama.cpp's folder has 58 and 41: not vacuous


def test_the_safety_test_sees_a_cut(llama_cpp_templates: Path) -> None:
    """The closing tag of a call would be found by the test above: the span reaches it."""
    rendered, _ = _rendered_call(_template(llama_cpp_templates, "Qwen-Qwen2.5-7B-Instruct")) or ("", "")
    start, end = _call_span(rendered)
    assert rendered[start:end].startswith("<tool_call>") and rendered[start:end].endswith("</tool_call>")


SYNTHETIC = (
    "{% for m in messages %}"
    "{% if m.role == 'user' %}<|u|>{{ m.content }}<|eot|>"
    "{% elif m.role == 'tool' %}<|t|>{{ m.content }}<|eot|>"
    "{% elif m.tool_calls %}<|a|>{% for c in m.tool_calls %}<call>{{ c.function | tojson }}</call>{% endfor %}<|eom|>"
    "{% else %}<|a|>{{ m.content }}<|eot|>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|a|>{% endif %}"
)


def test_synthetic_tool_turn() -> None:
    """The turn's end is the marker after the call's closing tag, the tool's opener follows it; the
    closing tag itself is never a stop."""
    assert derive_stops(SYNTHETIC, None, "<|end|>", tool_calls=False) == ("<|eot|>", "<|u|>", "<|end|>")
    assert derive_stops(SYNTHETIC, None, "<|end|>") == ("<|eot|>", "<|u|>", "<|eom|>", "<|t|>", "<|end|>")


@pytest.mark.parametrize("template", [
    "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}",  # renders no tool call
    "{% for m in messages %}{% if m.tool_calls %}{{ raise_exception('no tools') }}{% endif %}"
    "<|{{ m.role }}|>{{ m.content }}<|end|>{% endfor %}",  # refuses the tool conversation
])
def test_templates_without_tool_calls_keep_todays_stops(template: str) -> None:
    assert derive_stops(template, BOS, EOS) == derive_stops(template, BOS, EOS, tool_calls=False)


def test_the_tiny_example_keeps_its_stops(tiny_chat_template: str) -> None:
    assert derive_stops(tiny_chat_template, BOS, EOS) == ("</s>", "<|user|>")
