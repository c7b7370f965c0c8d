"""Chat templates: read a base model's Jinja template, translate it into an Ollama TEMPLATE, prove it.

This module is the front door; what other parts of modelkit use is exported here, imported on
first use. The package, one concept per part:

* :mod:`.source` — find the template and special tokens in a GGUF header or a Hugging Face folder;
* :mod:`.reference` — the sandbox that renders Jinja exactly as ``transformers`` does (the reference);
* :mod:`.translator` — Jinja to Go by partial evaluation: the entry point in
  :mod:`.translator.translation`; one translation's state in :mod:`~.translator.state`, made of
  small parts (the Go output in :mod:`~.translator.emitter`, the facts of the current branch in
  :mod:`~.translator.facts`, the report, the template and its sandbox, loops and namespaces in
  :mod:`~.translator.nesting`); handlers as modules of functions on that state — statements, ``if``
  and ``for`` in :mod:`~.translator.statements`, :mod:`~.translator.branches` and
  :mod:`~.translator.loops`, expressions in :mod:`~.translator.expressions` and the operations
  below it (:mod:`~.translator.operators`, :mod:`~.translator.access`, :mod:`~.translator.calls`,
  :mod:`~.translator.filters`, :mod:`~.translator.jinja_tests`), value logic in
  :mod:`~.translator.logic`, :mod:`~.translator.choices` and :mod:`~.translator.text`; values in
  :mod:`~.translator.values`, and the Go it emits in :mod:`~.translator.goast` (the tree and its
  printer) and :mod:`~.translator.goexpr`;
* :mod:`.proof` — the conversation battery, the proof, and hand-written family templates (a
  cross-check);
* :mod:`.stops` — stop strings; :mod:`.inherit` — the whole step; :mod:`.digest` — the
  digest of this package's source, part of the template step's cache key.

The layers: :mod:`.reference` stands alone, :mod:`.translator` builds on it and on
:mod:`modelkit.golang` (Go's semantics, below this package), :mod:`.proof` on all of them,
:mod:`.inherit` on everything; nothing here imports the build engine, the steps or the CLI
(``tests/chat_template/test_package_shape.py`` and ``tests/test_layering.py`` check it).

How the proof runs at build time: users have no Go, so the Go side is rendered by
:mod:`modelkit.golang.template`, modelkit's own evaluator of the Go template language, fed the data Ollama
builds (``template.Execute`` with ``.Messages``). The tests (``tests/chat_template``) check that
evaluator byte for byte against Go's real ``text/template`` — a small Go program that mirrors
Ollama's ``Parse``/``Vars``/``Execute``/``collate`` — on every template of llama.cpp's
``models/templates`` and every conversation of the battery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelkit.core.lazy import lazy_exports

# Imported on first use: the translator and the sandbox are not needed to start the CLI, and
# `modelkit build` with nothing to do should not pay for them.
if TYPE_CHECKING:  # the names served on first use (core/lazy.py reads them here), as editors see them
    from modelkit.chat_template.digest import translator_digest as translator_digest
    from modelkit.chat_template.inherit import InheritedTemplate as InheritedTemplate
    from modelkit.chat_template.inherit import check_given as check_given
    from modelkit.chat_template.inherit import inherit_template as inherit_template
    from modelkit.chat_template.source import ChatTemplateSource as ChatTemplateSource
    from modelkit.chat_template.source import choose_template as choose_template
    from modelkit.chat_template.source import read_template as read_template
    from modelkit.errors import TemplateError as TemplateError

__getattr__, _LAZY = lazy_exports(__name__, __file__)

__all__ = _LAZY
