"""Which renderer Ollama uses for a model, predicted by Ollama's own rules: the Modelfile's Go
TEMPLATE, the GGUF's Jinja (its native chat mode), or a built-in RENDERER/PARSER.

Read from Ollama's source at v0.32.15 (``server/images.go``: ``chatTemplateCapabilities``,
``goTemplateCapabilities``, ``shouldPreferChatTemplate``, ``selectedTemplateSource``;
``thinking/template.go``: ``InferTags``; ``server/routes.go``: ``shouldUseGoTemplate``), and
checked against the real server's ``template selection`` log line in ``tests/test_real_ollama.py``.
The words are the log's: ``go_template``, ``gguf_chat_template``, ``renderer``, ``parser``,
``renderer_parser``, ``none``. Before native chat mode (Ollama < :data:`NATIVE_CHAT_SINCE`)
the Go TEMPLATE renders every model that has one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from modelkit.golang.template import GoTemplate, GoTemplateError, Think, parse
from modelkit.golang.template.capabilities import INSERT, THINKING, TOOLS, go_capabilities, has_tool_round_trip

NATIVE_CHAT_SINCE = "0.30"
"""The first Ollama that may render the GGUF's Jinja instead of the Modelfile's TEMPLATE."""

__all__ = ["INSERT", "NATIVE_CHAT_SINCE", "THINKING", "TOOLS", "Choice", "jinja_capabilities", "predict_engine",
           "think_states", "without_think"]
_TOOL_RESULT_MARKS = ("tool_response", "tool_results", "role'] == 'tool'", "role'] == \"tool\"",
                      "role\"] == 'tool'", "role\"] == \"tool\"", "message.role == 'tool'",
                      "message.role == \"tool\"", "ipython")


@dataclass(frozen=True)
class Choice:
    """What Ollama will render a model with, and the capabilities it saw on each side."""

    selected: str
    go_template: tuple[str, ...] | None
    chat_template: tuple[str, ...] | None
    renderer: str | None = None
    parser: str | None = None

    @property
    def capabilities(self) -> tuple[str, ...]:
        """What Ollama sees the model can do: the capabilities of the side that renders."""
        return (self.chat_template if self.native else self.go_template) or ()

    @property
    def native(self) -> bool:
        """Whether the GGUF's own Jinja renders (native chat mode), not the Modelfile's TEMPLATE."""
        return self.selected == "gguf_chat_template"

    def to_json(self) -> dict[str, Any]:
        """The choice as a record keeps it (a registration's receipt)."""
        return dataclasses.asdict(self)

    @staticmethod
    def from_json(data: dict[str, Any]) -> Choice:
        """The choice a record kept; a :class:`ValueError` where it is not one."""
        try:
            caps = {side: None if data[side] is None else tuple(str(c) for c in data[side])
                    for side in ("go_template", "chat_template")}
            return Choice(str(data["selected"]), caps["go_template"], caps["chat_template"],
                          data.get("renderer"), data.get("parser"))
        except (KeyError, TypeError) as e:
            raise ValueError(f"not a renderer choice: {e}") from None

    def short(self) -> str:
        """A few words for a summary line."""
        if self.renderer:
            return f"Ollama's built-in renderer {self.renderer}"
        return {"go_template": "its TEMPLATE", "gguf_chat_template": "the GGUF's Jinja (native chat mode)",
                "none": "no template"}.get(self.selected, f"a built-in {self.selected}")

    def words(self) -> str:
        """The choice as a user reads it (``modelkit inspect``, the build's summary, the card)."""
        if self.native:
            more = sorted(set(self.chat_template or ()) - set(self.go_template or ()))
            why = f": it can do {' and '.join(more)}, the TEMPLATE cannot" if more else ""
            return (f"the GGUF's own Jinja, through llama.cpp (Ollama ≥ {NATIVE_CHAT_SINCE}'s native chat "
                    f"mode{why}); older Ollama, and OLLAMA_GO_TEMPLATE=1: the Modelfile's TEMPLATE")
        if self.selected == "go_template":
            return "the Modelfile's TEMPLATE (Go), in every Ollama"
        if self.renderer or self.parser:
            named = " and ".join(f"{kind} {name}" for kind, name in (("renderer", self.renderer),
                                                                    ("parser", self.parser)) if name)
            return f"Ollama's built-in {named} (its Go code for exactly this template; REQUIRES in the Modelfile)"
        return {"none": "no template: plain completion"}.get(self.selected, f"Ollama's built-in {self.selected}")


def think_states(capabilities: tuple[str, ...]) -> tuple[Think, ...]:
    """The settings of think Ollama lets a chat reach a model with (``server/routes.go``, ``/api/chat``
    and ``/api/generate``): a model that thinks gets think=true when the request says nothing, so
    "unset" never reaches its template; one that does not is refused think=true, so it gets unset
    or false."""
    return (True, False) if THINKING in capabilities else (None, False)


def without_think(capabilities: tuple[str, ...]) -> str:
    """What a request without think gets, in words."""
    if THINKING in capabilities:
        return "think=true (Ollama's default for a model that thinks; --think=false turns it off)"
    return "think unset (the model does not think, as Ollama sees it; think=true is refused)"


def jinja_capabilities(jinja: str) -> tuple[str, ...]:
    """``chatTemplateCapabilities``: what Ollama sees a GGUF's Jinja can do, by its text."""
    caps = []
    if "tools" in jinja or "tool_call" in jinja:
        caps.append(TOOLS)
    if _jinja_thinks(jinja):
        caps.append(THINKING)
    return tuple(caps)


def _jinja_thinks(jinja: str) -> bool:
    if "<think>" in jinja and "</think>" in jinja:
        return True
    splits = "content.split('</think>')" in jinja or 'content.split("</think>")' in jinja
    return splits and "reasoning_content" not in jinja and "<SPECIAL_12>" not in jinja


def _jinja_round_trip(jinja: str) -> bool:
    """``chatTemplateHasToolRoundTrip``: tools, tool calls and tool results all written."""
    if not jinja_capabilities(jinja) or TOOLS not in jinja_capabilities(jinja):
        return False
    calls = "tool_calls" in jinja or "assistant_tool_call" in jinja
    return calls and any(mark in jinja for mark in _TOOL_RESULT_MARKS)


def predict_engine(jinja: str | None, go_template: str | None, *, renderer: str | None = None,
            parser: str | None = None, go_template_env: bool | None = None,
            native_chat: bool = True) -> Choice:
    """The renderer Ollama selects for a model whose GGUF carries ``jinja`` and whose Modelfile
    gives ``go_template``. ``go_template_env``: ``OLLAMA_GO_TEMPLATE`` when set; ``native_chat``:
    False for an Ollama before :data:`NATIVE_CHAT_SINCE`."""
    tree = _parsed(go_template)
    go_caps = go_capabilities(tree) if tree is not None else None
    chat_caps = jinja_capabilities(jinja) if jinja else None
    if renderer or parser:
        selected = "renderer_parser" if renderer and parser else ("renderer" if renderer else "parser")
        return Choice(selected, go_caps, chat_caps, renderer, parser)
    if go_template is not None and _uses_go_template(jinja, tree, go_template_env, native_chat):
        return Choice("go_template", go_caps, chat_caps)
    return Choice("gguf_chat_template" if jinja else "none", go_caps, chat_caps)


def _parsed(go_template: str | None) -> GoTemplate | None:
    if go_template is None:
        return None
    try:
        return parse(go_template)
    except GoTemplateError:
        return None  # Ollama refuses such a TEMPLATE at create time; nothing to predict


def _uses_go_template(jinja: str | None, tree: GoTemplate | None, env: bool | None, native_chat: bool) -> bool:
    """``shouldUseGoTemplate`` after ``PreferChatTemplate`` was decided at load."""
    if env is not None:
        return env
    if not native_chat or not jinja or tree is None:
        return True
    return not _prefers_chat_template(jinja, tree)


def _prefers_chat_template(jinja: str, tree: GoTemplate) -> bool:
    """``shouldPreferChatTemplate``: the Jinja can do more, or the same with tools where only it
    writes the whole tool round trip."""
    chat_caps, go_caps = jinja_capabilities(jinja), go_capabilities(tree)
    if len(chat_caps) > len(go_caps):
        return not has_tool_round_trip(tree) or _jinja_round_trip(jinja)
    if set(chat_caps) != set(go_caps) or TOOLS not in chat_caps:
        return False
    return _jinja_round_trip(jinja) and not has_tool_round_trip(tree)
