"""What a translation tells its caller besides the Go: what it assumed, left out or could not do.

These become :class:`~.translation.Translation`'s ``assumptions``, ``ignored``, ``untranslated``
and ``think_switches``; each is kept in the order first met, once (dicts used as ordered sets),
so the report reads like the template.
"""

from __future__ import annotations


class Report:
    """Notes made while translating, each kept once in the order first met."""

    def __init__(self) -> None:
        self.assumptions: dict[str, None] = {}
        self.ignored: dict[str, None] = {}
        self.untranslated: dict[str, None] = {}
        self.think_switches: dict[str, None] = {}

    def assume(self, text: str) -> None:
        """A test settled by assuming something about message text (the proof checks the rest)."""
        self.assumptions[text] = None

    def ignore(self, text: str) -> None:
        """A feature of Ollama's data the template would have used and the TEMPLATE leaves out."""
        self.ignored[text] = None

    def untranslate(self, reason: str) -> None:
        """A branch on the conversation written as a Go error because it cannot be expressed."""
        self.untranslated[reason] = None

    def read_think_switch(self, name: str) -> None:
        """The template reads a thinking switch (``enable_thinking``)."""
        self.think_switches[name] = None
