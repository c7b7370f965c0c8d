"""Which renderer Ollama picks (``modelkit.ollama.engine``), rule by rule as Ollama 0.32.15 states
them; ``tests/test_real_ollama.py`` checks the prediction against the real server's own log."""

from __future__ import annotations

import pytest

from modelkit.golang.template import parse
from modelkit.golang.template.capabilities import go_capabilities
from modelkit.ollama.engine import jinja_capabilities, predict_engine

PLAIN_JINJA = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}"
TOOLS_JINJA = PLAIN_JINJA + "{% if tools %}{{ tools | tojson }}{% endif %}"
ROUND_TRIP_JINJA = TOOLS_JINJA + ("{% for m in messages %}{% if m.tool_calls %}{{ m.tool_calls | tojson }}{% endif %}"
                                  "{% if m.role == 'tool' %}<tool_response>{{ m.content }}</tool_response>{% endif %}"
                                  "{% endfor %}")
THINK_JINJA = PLAIN_JINJA + "{% if enable_thinking %}<think>\n\n</think>{% endif %}"
PLAIN_GO = "{{ range .Messages }}<|{{ .Role }}|>{{ .Content }}{{ end }}"
TOOLS_GO = "{{ if .Tools }}{{ json .Tools }}{{ end }}" + PLAIN_GO
ROUND_TRIP_GO = ('{{ if .Tools }}{{ json .Tools }}{{ end }}{{ range .Messages }}{{ if .ToolCalls }}{{ json .ToolCalls }}'
                 '{{ else if eq .Role "tool" }}<tool_response>{{ .Content }}</tool_response>{{ else }}{{ .Content }}'
                 '{{ end }}{{ end }}')
THINK_GO = "{{ range .Messages }}{{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}{{ .Content }}{{ end }}"


@pytest.mark.parametrize(("jinja", "caps"), [(PLAIN_JINJA, ()), (TOOLS_JINJA, ("tools",)),
                                             (THINK_JINJA, ("thinking",)),
                                             ("{{ content.split('</think>')[-1] }}", ("thinking",)),
                                             ("{{ reasoning_content }}{{ content.split('</think>') }}", ())])
def test_a_jinja_templates_capabilities_are_read_from_its_text(jinja: str, caps: tuple[str, ...]) -> None:
    assert jinja_capabilities(jinja) == caps


@pytest.mark.parametrize(("go", "caps"), [(PLAIN_GO, ()), (TOOLS_GO, ("tools",)), (THINK_GO, ("thinking",)),
                                          ("{{ .Prompt }}{{ .Suffix }}", ("insert",)),
                                          ("{{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}", ()),
                                          ("{{ range $m := $.Messages }}<t>{{ $m.Thinking }}</t>{{ end }}", ())])
def test_a_go_templates_capabilities_are_read_as_ollama_reads_them(go: str, caps: tuple[str, ...]) -> None:
    """Thinking only where ``.Thinking`` sits between tags inside a range over ``.Messages``, as
    ``InferTags`` finds it (``$m.Thinking`` is a variable, not a field, to it)."""
    assert go_capabilities(parse(go)) == caps


@pytest.mark.parametrize(("jinja", "go", "selected"), [
    (PLAIN_JINJA, PLAIN_GO, "go_template"),  # as capable: the Modelfile's TEMPLATE
    (TOOLS_JINJA, PLAIN_GO, "gguf_chat_template"),  # the Jinja can do more: native chat mode
    (THINK_JINJA, PLAIN_GO, "gguf_chat_template"),
    (TOOLS_JINJA, ROUND_TRIP_GO, "go_template"),  # same tools, only the Go writes the whole round trip
    (ROUND_TRIP_JINJA, TOOLS_GO, "gguf_chat_template"),  # same tools, only the Jinja does
    (ROUND_TRIP_JINJA + "<think></think>", ROUND_TRIP_GO, "gguf_chat_template"),  # more, and a round trip
    (None, PLAIN_GO, "go_template"),
    (TOOLS_JINJA, None, "gguf_chat_template"),
    (None, None, "none"),
])
def test_ollama_prefers_the_ggufs_jinja_only_when_it_can_do_more(jinja: str | None, go: str | None,
                                                                 selected: str) -> None:
    assert predict_engine(jinja, go).selected == selected


def test_the_environment_a_renderer_and_an_older_ollama_decide_first() -> None:
    assert predict_engine(TOOLS_JINJA, PLAIN_GO, go_template_env=True).selected == "go_template"
    assert predict_engine(PLAIN_JINJA, PLAIN_GO, go_template_env=False).selected == "gguf_chat_template"
    assert predict_engine(TOOLS_JINJA, PLAIN_GO, native_chat=False).selected == "go_template"
    assert predict_engine(TOOLS_JINJA, PLAIN_GO, renderer="qwen3", parser="qwen3").selected == "renderer_parser"
    assert predict_engine(TOOLS_JINJA, PLAIN_GO, parser="qwen3").selected == "parser"
    assert predict_engine(TOOLS_JINJA, PLAIN_GO).native and not predict_engine(PLAIN_JINJA, PLAIN_GO).native
