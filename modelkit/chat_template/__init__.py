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

from __future__ import annotations

import importlib
from typing import Any

# Imported on first use: the translator and the sandbox are not needed to start the CLI, and
# `modelkit build` with nothing to do should not pay for them.
_EXPORTS = {
    "add_template_commands": ".cli",
    "InheritedTemplate": ".inherit",
    "inherit_template": ".inherit",
    "ChatTemplateSource": ".source",
    "TemplateError": ".source",
    "read_template": ".source",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ChatTemplateSource",
    "InheritedTemplate",
    "TemplateError",
    "add_template_commands",
    "inherit_template",
    "read_template",
]
