"""What Ollama's data gives a TEMPLATE, by the Go names the translation reads it under.

These are the fixed points every part of the translator agrees on: the conversation is
``$.Messages``, ``add_generation_prompt`` a flag the template computes first, Ollama's ``think``
option ``.IsThinkSet``/``.Think``; a plain message has a role and content, and every other key
(tool calls, reasoning...) is absent unless tools are translated (:mod:`.tools`).
"""

from __future__ import annotations

ADD_GEN_VAR = "$addGenerationPrompt"
MESSAGES = "$.Messages"

#: The Jinja variables that switch thinking on or off, and Ollama's ``think`` option in the data
#: of ``template.Execute`` (template/template.go ``Values``): ``.IsThinkSet`` says whether the
#: request set it at all, ``.Think`` whether it asks for thinking.
THINK_SWITCHES = ("enable_thinking",)
THINK_SET = "$.IsThinkSet"
THINK = "$.Think"

#: Message keys a plain chat message has; every other key is absent (tool calls, reasoning...).
MESSAGE_FIELDS = {"role": "Role", "content": "Content"}

#: Message keys that carry tool calls or reasoning, which the TEMPLATE does not render.
IGNORED_MESSAGE_KEYS = {
    "tool_calls": "tool calls in assistant messages", "reasoning_content": "reasoning of past turns",
    "thinking": "reasoning of past turns", "reasoning": "reasoning of past turns",
    "tool_call_id": "tool call ids", "name": "message names", "tool_name": "tool names",
}
