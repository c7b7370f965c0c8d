"""A Python evaluator for Go ``text/template``, fed the data Ollama feeds it.

Why it exists: modelkit proves a translated TEMPLATE at build time, on machines where Go is
usually not installed. This package parses and executes Go template text with Go's semantics
for the part of the language the translator emits, and for most of the rest: trim markers,
comments, ``if``/``else if``/``else``, ``range`` (with ``else``, ``break``, ``continue``),
``with``, ``define``/``template``, variables declared and assigned, pipelines, and the
builtins ``and or not len index slice eq ne lt le gt ge print printf`` plus Ollama's ``json``,
``currentDate`` and ``yesterdayDate``. Strings are handled as bytes, as in Go (``len`` and
``slice`` count bytes). Anything outside that subset raises :class:`GoTemplateError` rather than
guessing. ``tests/chat_template/test_gotemplate.py`` checks it byte for byte against the real
``text/template`` (a small Go program) on every translated template and conversation.

Modules: :mod:`.lexer` and :mod:`.parser` (text to :mod:`.nodes`), :mod:`.exec` (running a
tree) with :mod:`.funcs` (the builtins) and :mod:`.fmt` (Go's printing), :mod:`.values` (Go
values in Python), :mod:`.ollama` (Ollama's load checks, functions and data), and
:mod:`.capabilities` (what Ollama reads from a parsed TEMPLATE: capabilities, thinking tags,
the tool round trip).
"""

from .exec import execute
from .nodes import GoTemplate
from .ollama import THINK_LEVELS, NoGoJSON, Think, check_ollama_parse, go_tojson, identifiers, ollama_data, think_data
from .parser import parse
from .values import GoTemplateError

__all__ = [
    "NoGoJSON",
    "THINK_LEVELS",
    "GoTemplate",
    "GoTemplateError",
    "check_ollama_parse",
    "execute",
    "identifiers",
    "go_tojson",
    "ollama_data",
    "parse",
    "Think",
    "think_data",
]
