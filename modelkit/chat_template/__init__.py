"""Chat templates: read a base model's Jinja template, translate it into an Ollama TEMPLATE, prove it.

Modules, one concept each:

* :mod:`.source` — find the template and special tokens in a GGUF header or a Hugging Face folder;
* :mod:`.jinja_env` — the sandbox that renders Jinja exactly as ``transformers`` does (the reference);
* :mod:`.translate` — Jinja to Go by partial evaluation: statements there, expressions in
  :mod:`.expressions` and :mod:`.calls`, shared state in :mod:`.context`, values in
  :mod:`.values`, Go building blocks in :mod:`.goexpr`, the Go tree and its printer in :mod:`.goast`;
* :mod:`.gotemplate` — a Python evaluator of Go ``text/template`` on Ollama's data;
* :mod:`.conversations` and :mod:`.prove` — the battery and the proof;
* :mod:`.families` — hand-written templates of known formats, a cross-check;
* :mod:`.stops` — stop strings; :mod:`.inherit` — the whole step; :mod:`.cli`, :mod:`.report`.

How the proof runs at build time: users have no Go, so the Go side is rendered by
:mod:`.gotemplate`, modelkit's own evaluator of the Go template language, fed the data Ollama
builds (``template.Execute`` with ``.Messages``). The tests (``tests/chat_template``) check that
evaluator byte for byte against Go's real ``text/template`` — a small Go program that mirrors
Ollama's ``Parse``/``Vars``/``Execute``/``collate`` — on every template of llama.cpp's
``models/templates`` and every conversation of the battery.
"""

from .cli import add_template_commands
from .inherit import InheritedTemplate, inherit_template
from .source import ChatTemplateSource, TemplateError, read_template

__all__ = [
    "ChatTemplateSource",
    "InheritedTemplate",
    "TemplateError",
    "add_template_commands",
    "inherit_template",
    "read_template",
]
