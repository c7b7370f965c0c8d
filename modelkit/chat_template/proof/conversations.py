"""The battery of conversations a translated template must render exactly like the Jinja.

Each conversation is what a chat client sends: plain ``role``/``content`` messages. They cover
what a fine-tuned chat model meets in practice: a bare question, a system prompt, several turns,
a reply that ends with the assistant (a continuation, as when a client pre-fills the answer),
multi-line and non-ASCII text, an empty system prompt, and text with leading and trailing
whitespace (which templates that ``trim`` treat differently from those that do not).

None has two consecutive messages with the same role: Ollama merges those into one before the
template sees them, so such a conversation cannot render the same in both worlds whatever the
template. None contains reasoning or tool-call markup either (what the translator assumes of
message text: :attr:`~..translator.Translation.assumptions`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Conversation:
    """One test conversation: a short name for reports, the messages a client sends (as
    ``apply_chat_template`` takes them: ``tool_calls`` with arguments as objects, earlier
    reasoning as ``reasoning_content``) and the tools it declares."""

    name: str
    messages: tuple[dict[str, Any], ...]
    tools: tuple[dict[str, Any], ...] = ()


def _m(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


SYSTEM = "You are a helpful assistant."
MULTILINE = "Here is a list:\n- first item\n- second item\n\nAnd a last line."
UNICODE = "Ünïcödé ✓ — 日本語のテキスト, emoji 🙂, quotes \"double\" 'single', backslash \\ and {{ braces }}"

BATTERY: tuple[Conversation, ...] = (
    Conversation("user", (_m("user", "Hello! How are you?"),)),
    Conversation("system+user", (_m("system", SYSTEM), _m("user", "What is 2 + 2?"))),
    Conversation("user+assistant+user", (
        _m("user", "Hi there."), _m("assistant", "Hello! How can I help?"), _m("user", "Tell me a joke."))),
    Conversation("system+3 turns", (
        _m("system", SYSTEM), _m("user", "First question?"), _m("assistant", "First answer."),
        _m("user", "Second question?"), _m("assistant", "Second answer."), _m("user", "Third question?"))),
    Conversation("continue assistant", (_m("user", "Write a haiku about rain."),
                                        _m("assistant", "Soft rain on the roof"))),
    Conversation("system+continue assistant", (
        _m("system", SYSTEM), _m("user", "Count to three."), _m("assistant", "One, two,"))),
    Conversation("multi-line+unicode", (
        _m("system", "Answer in two lines.\nBe brief."), _m("user", MULTILINE), _m("assistant", UNICODE),
        _m("user", "Thanks — 谢谢!"))),
    Conversation("empty system", (_m("system", ""), _m("user", "Hello?"))),
    Conversation("surrounding whitespace", (
        _m("user", "  padded question \n"), _m("assistant", "\n an answer with spaces  "), _m("user", "\tnext\n"))),
)


#: Conversations with tool results (role ``tool``), for reporting only: the proof does not use
#: them, since the TEMPLATE leaves out the tool calls that precede tool results in real use.
TOOL_RESULTS: tuple[Conversation, ...] = (
    Conversation("tool result", (
        _m("user", "What is 6 times 7?"), _m("assistant", "Let me compute that."), _m("tool", "42"),
        _m("user", "And so?"))),
    Conversation("two tool results", (
        _m("system", SYSTEM), _m("user", "Weather in Paris and Rome?"), _m("assistant", "Checking both."),
        _m("tool", "Paris: 18°C"), _m("tool", "Rome: 24°C"))),
)


def _tool(name: str, description: str, **properties: str | tuple[str, str]) -> dict[str, Any]:
    """A tool as Ollama carries it (``api.Tool``), in the order Go writes its fields and with its
    properties in sorted order (Go's map order); a property is a description (a string) or a
    (type, description) pair."""
    typed = {p: d if isinstance(d, tuple) else ("string", d) for p, d in sorted(properties.items())}
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "required": list(typed),
        "properties": {p: {"type": t, "description": d} for p, (t, d) in typed.items()}}}}


def _call(ident: str, name: str, **arguments: Any) -> dict[str, Any]:
    """A tool call, its arguments in sorted order (Go's map order)."""
    return {"id": ident, "type": "function", "function": {"name": name, "arguments": dict(sorted(arguments.items()))}}


WEATHER = _tool("get_weather", "Get the current weather in a city", city="The city, e.g. Paris")
TIME = _tool("get_time", "Get the local time in a city", city="The city")
FORECAST = _tool("get_forecast", "Get the forecast for a city", city="The city", days=("integer", "How many days"))

#: Conversations with tools, as clients send them for tool calling: tool definitions, an assistant
#: turn that calls tools, their results (one, and two in a row), and the turn after.
TOOLS: tuple[Conversation, ...] = (
    Conversation("tools+user", (_m("user", "What is the weather in Paris?"),), (WEATHER,)),
    Conversation("tools+system+user", (_m("system", SYSTEM), _m("user", "Weather in Rome?")), (WEATHER, TIME)),
    Conversation("tool call+result", (
        _m("user", "What is the weather in Paris?"),
        {"role": "assistant", "content": "", "tool_calls": [_call("call00001", "get_weather", city="Paris")]},
        {"role": "tool", "content": "18°C, sunny", "tool_call_id": "call00001", "name": "get_weather"}),
        (WEATHER,)),
    Conversation("two calls+two results", (
        _m("system", SYSTEM), _m("user", "Weather and time in Rome?"),
        {"role": "assistant", "content": "", "tool_calls": [_call("call00002", "get_weather", city="Rome"),
                                                             _call("call00003", "get_time", city="Rome")]},
        {"role": "tool", "content": "24°C", "tool_call_id": "call00002", "name": "get_weather"},
        {"role": "tool", "content": "14:05", "tool_call_id": "call00003", "name": "get_time"}),
        (WEATHER, TIME)),
    Conversation("round trip+user", (
        _m("user", "Weather in Paris?"),
        {"role": "assistant", "content": "", "tool_calls": [_call("call00004", "get_weather", city="Paris")]},
        {"role": "tool", "content": "18°C", "tool_call_id": "call00004", "name": "get_weather"},
        _m("assistant", "It is 18°C in Paris."), _m("user", "Thanks! And tomorrow?")), (WEATHER,)),
    Conversation("call with a number+result", (
        _m("user", "Forecast for Oslo, 3 days?"),
        {"role": "assistant", "content": "", "tool_calls": [_call("call00006", "get_forecast", city="Oslo", days=3)]},
        {"role": "tool", "content": "Snow, then sun.", "tool_call_id": "call00006", "name": "get_forecast"}),
        (FORECAST,)),
)

#: Conversations with earlier reasoning (``reasoning_content``; Ollama's ``thinking``), rendered
#: with each setting of Ollama's think where the template reads a thinking switch: past turns,
#: and the reasoning that led to a tool call still being answered (which templates that drop
#: past reasoning keep).
THINKING: tuple[Conversation, ...] = (
    Conversation("reasoning+user", (
        _m("user", "What is 17 times 3?"),
        {"role": "assistant", "content": "51.", "reasoning_content": "17 times 3 is 51."},
        _m("user", "And times 4?"))),
    Conversation("system+reasoning turns", (
        _m("system", SYSTEM), _m("user", "Is 7 prime?"),
        {"role": "assistant", "content": "Yes.", "reasoning_content": "7 has no divisor but 1 and 7."},
        _m("user", "Is 9?"),
        {"role": "assistant", "content": "No.", "reasoning_content": "9 is 3 times 3."},
        _m("user", "Is 11?"))),
    Conversation("reasoning+tool call+result", (
        _m("user", "Should I take an umbrella in Paris?"),
        {"role": "assistant", "content": "", "reasoning_content": "I need the weather in Paris first.",
         "tool_calls": [_call("call00005", "get_weather", city="Paris")]},
        {"role": "tool", "content": "Rain, 12°C", "tool_call_id": "call00005", "name": "get_weather"}),
        (WEATHER,)),
)


def ollama_message(message: dict[str, Any]) -> dict[str, Any]:
    """A battery message as a client sends it to Ollama's ``/api/chat`` (``api.Message``): earlier
    reasoning as ``thinking``, a tool result's tool as ``tool_name``, each call's position as
    ``function.index``; what Ollama has no field for (a call's ``type``) is left out."""
    out = {"role": message["role"], "content": message.get("content") or ""}
    if message.get("reasoning_content"):
        out["thinking"] = message["reasoning_content"]
    if message.get("name"):
        out["tool_name"] = message["name"]
    if message.get("tool_call_id"):
        out["tool_call_id"] = message["tool_call_id"]
    if message.get("tool_calls"):
        out["tool_calls"] = [{"id": c.get("id", ""), "function": {
            "index": i, "name": c["function"]["name"], "arguments": c["function"]["arguments"]}}
            for i, c in enumerate(message["tool_calls"])]
    return out
