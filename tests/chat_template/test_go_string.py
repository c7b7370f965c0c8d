"""Go string literals, against Go's own ``strconv``: the ones the translator writes, and reading them back.

``goast.go_string`` is :func:`modelkit.golang.strconv.go_quote` (what Ollama's ``%#v`` prints), so the
literals in a translated TEMPLATE are exactly what Go would write: ``"\\v"`` rather than the
equally valid ``"\\x0b"``. Go checks both directions: ``printf "%q"`` of the literal gives the
literal back, and writing it gives the string. The evaluator reads a template's literals with
:func:`~modelkit.golang.strconv.go_unquote_bytes`, the one ``strconv.Unquote`` modelkit has; the
literals below are the ones where a home-made unquote goes wrong (``\\0`` is not NUL in Go).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from modelkit.chat_template.translator.goast import go_string
from modelkit.golang import template as gt
from modelkit.golang.strconv import go_quote, go_unquote, go_unquote_bytes, go_unquote_char

from .test_gotemplate import M, _assert_same, _python  # M makes Ollama take the .Messages path

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


#: Template string and character constants, each read by Go's parser (strconv.Unquote/UnquoteChar).
LITERALS = [
    '{{ "\\0" }}',  # an octal escape has exactly three digits: Go refuses the template
    '{{ "a\\000b" }}|{{ len "\\000" }}|{{ index "\\000" 0 }}',  # ... and "\000" is one NUL byte
    '{{ "\\08" }}',
    '{{ "\\400" }}',  # over 255
    '{{ "\\x41\\101\\u00e9\\U0001F642\\xe6\\x97\\xa5" }}|{{ len "\\u00e9" }}|{{ index "\\xff" 0 }}',
    '{{ "\\\'" }}',  # \' is only an escape between single quotes
    '{{ "\\ud800" }}',  # not a valid character
    "{{ `a\rb\\n` }}|{{ len `\r` }}",  # raw strings lose their carriage returns
    "{{ printf \"%d %d %d %d %d\" 'a' '\\xff' '\\101' '\\'' 'é' }}",
    "{{ 'ab' }}",
    "{{ '\\\"' }}",
]


def test_literals_read_as_go_reads_them(go_render: Any) -> None:
    conversations = [[{"role": "user", "content": "hi"}]]
    results = go_render([{"template": M + t, "conversations": conversations} for t in LITERALS])
    for template, go in zip(LITERALS, results):
        _assert_same(template, go, _python(M + template, conversations))
    assert results[0].get("error") and not results[1].get("error")


def test_unquote_follows_go() -> None:
    assert go_unquote_bytes('"a\\000b"') == b"a\x00b"
    assert go_unquote_bytes('"\\xff\\u00e9"') == b"\xff\xc3\xa9"  # \x is a byte, \u a character
    assert go_unquote_bytes("`a\rb`") == b"ab"
    assert go_unquote('"\\u00e9\\n"') == "é\n"
    for bad in ('"\\0"', '"\\08"', '"\\400"', '"\\\'"', '"\\ud800"', '"\\x4"', '"a"b"', '"\\"', "'a'"):
        with pytest.raises(ValueError):
            go_unquote_bytes(bad)
    assert [go_unquote_char(c) for c in ("'a'", "'\\xff'", "'\\101'", "'\\''", "'\"'", "'é'")] == [97, 255, 65, 39, 34, 233]
    for bad in ("'ab'", "'\\\"'", "''", "'\\0'"):
        with pytest.raises(ValueError):
            go_unquote_char(bad)
