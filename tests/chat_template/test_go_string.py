"""The Go string literals the translator writes, against Go's own ``strconv.Quote``.

``goast.go_string`` is :func:`modelkit.ollama_go.go_quote` (what Ollama's ``%#v`` prints), so the
literals in a translated TEMPLATE are exactly what Go would write: ``"\\v"`` rather than the
equally valid ``"\\x0b"``. Go checks both directions: ``printf "%q"`` of the literal gives the
literal back, and writing it gives the string.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from modelkit.chat_template import gotemplate as gt
from modelkit.chat_template.goast import go_string
from modelkit.ollama_go import go_quote

from .test_gotemplate import M  # makes Ollama take the .Messages path

pytestmark = pytest.mark.go

STRINGS = [
    "plain",
    'quote " and backslash \\',
    "\t\n\r",
    "\a\b\f\v",  # strconv.Quote writes these short escapes, not \x07 \x08 \x0c \x0b
    "\x00\x1b\x1f\x7f",
    "é 日本語 🙂 \ufffd",
    "\u00a0\u200b\u2028\ufeff",  # not printable for Go: \u escapes
    "\U000e0001",  # a tag character: \U escape
    "{{ not an action }}",
]


def test_go_string_is_strconv_quote(go_render: Any) -> None:
    templates = [M + "{{ " + go_string(s) + " }}|{{ printf \"%q\" " + go_string(s) + " }}" for s in STRINGS]
    conversations = [[{"role": "user", "content": "hi"}]]
    results = go_render([{"template": t, "conversations": conversations} for t in templates])
    for s, template, go in zip(STRINGS, templates, results):
        assert not go.get("error"), (s, go)
        assert go["results"][0]["output"] == s + "|" + go_quote(s), s
        assert go_string(s) == go_quote(s)
        ours = gt.execute(gt.check_ollama_parse(template), gt.ollama_data(conversations[0]), date(2025, 3, 4))
        assert ours == go["results"][0]["output"], s  # the evaluator's printf %q is strconv.Quote too


def test_go_string_refuses_a_lone_surrogate() -> None:
    with pytest.raises(ValueError, match="surrogate"):
        go_string("a\udc80")
    assert go_quote("a\udc80") == '"a\\ufffd"'  # go_quote, which prints show output, does not refuse
