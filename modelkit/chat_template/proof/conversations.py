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


@dataclass(frozen=True)
class Conversation:
    """One test conversation: a short name for reports and the messages a client sends."""

    name: str
    messages: tuple[dict[str, str], ...]


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
    Conversation("continue assistant", (_m("user", "Write a haiku about rain."), _m("assistant", "Soft rain on the roof"))),
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
