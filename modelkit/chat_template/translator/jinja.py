"""The Jinja side of a translation: the parsed template and the sandbox that computes constants.

What is known at build time (the special tokens, ``tools``/``documents`` absent, extra options)
is computed with Jinja's own semantics in the same sandbox ``transformers`` renders with, so a
template that raises at build time raises in Go too and every constant is the Jinja's own.
"""

from __future__ import annotations

from typing import Any

import jinja2
import jinja2.nodes as jn
from jinja2.sandbox import ImmutableSandboxedEnvironment

from modelkit.golang.template import go_tojson

from ..reference import make_environment
from ..reference.sandbox import compiled_code, parsed
from .values import Static, Unsupported


class Jinja:
    """A template parsed in the sandbox, and the constants it is translated with."""

    def __init__(self, source: str, bos_token: str | None, eos_token: str | None,
                 extra: dict[str, Any] | None = None, tools: bool = False) -> None:
        self.env: ImmutableSandboxedEnvironment = make_environment(tojson=go_tojson if tools else None)
        try:
            self.ast: jn.Template = parsed(source)
            compiled_code(source)  # compiling also catches unknown filters and tests
        except jinja2.TemplateSyntaxError as exc:
            raise Unsupported(f"the template does not parse: {exc.message} (line {exc.lineno})") from exc
        except jinja2.TemplateError as exc:
            raise Unsupported(f"the template does not parse: {exc}") from exc
        self.jctx = self.env.from_string("").new_context({})
        self.eval_ctx = jinja2.nodes.EvalContext(self.env)
        self.statics: dict[str, Any] = {"tools": None, "documents": None}
        if bos_token is not None:
            self.statics["bos_token"] = bos_token
        if eos_token is not None:
            self.statics["eos_token"] = eos_token
        self.statics.update(extra or {})

    def undefined(self, name: str) -> Static:
        """Jinja's undefined value for ``name`` (what reading a missing variable or key gives)."""
        return Static(self.env.undefined(name=name))
