"""The Jinja sandbox configured as Hugging Face ``transformers`` configures it for chat templates.

A chat template is untrusted code from the Hub, so it is only ever rendered in an
:class:`~jinja2.sandbox.ImmutableSandboxedEnvironment` with ``trim_blocks`` and
``lstrip_blocks``, the ``loopcontrols`` extension and a ``{% generation %}`` block, and the
globals ``transformers`` adds (``raise_exception``, ``strftime_now``, ``namespace``, ``dict``)
and its ``tojson`` filter (no HTML escaping, ``ensure_ascii=False``).

The translator parses templates with the same environment, so a template that parses here
parses there, with the same extensions.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import datetime
from types import CodeType
from typing import Any

import jinja2
import jinja2.ext
import jinja2.nodes
import jinja2.utils
from jinja2.sandbox import ImmutableSandboxedEnvironment

GENERATION_METHOD = "_generation_block"


class GenerationBlock(jinja2.ext.Extension):
    """``{% generation %}…{% endgeneration %}``: marks assistant text for training masks.

    For rendering it is transparent (the body is output unchanged), which is all a prompt needs.
    """

    tags = {"generation"}

    def parse(self, parser: jinja2.parser.Parser) -> jinja2.nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        call = self.call_method(GENERATION_METHOD)
        return jinja2.nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    def _generation_block(self, caller: Callable[[], str]) -> str:
        return caller()


class _Namespace(jinja2.utils.Namespace):
    """``namespace()`` that refuses underscore names, as ``transformers`` does (no dunder tricks)."""

    def __init__(*args: Any, **kwargs: Any) -> None:
        self, rest = args[0], args[1:]
        attrs = dict(*rest, **kwargs)
        for name in attrs:
            _Namespace._check(name)
        jinja2.utils.Namespace.__init__(self, attrs)

    def __setitem__(self, name: str, value: Any) -> None:
        _Namespace._check(name)
        jinja2.utils.Namespace.__setitem__(self, name, value)

    @staticmethod
    def _check(name: Any) -> None:
        if isinstance(name, str) and name.startswith("_"):
            raise jinja2.exceptions.SecurityError(f"namespace attributes may not start with '_': {name!r}")


class _Dict:
    """``dict`` for templates without access to the real type (no ``dict.__class__`` tricks)."""

    def __call__(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
        return dict(*args, **kwargs)

    def fromkeys(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
        return dict.fromkeys(*args, **kwargs)


def _raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _tojson(value: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None,
            sort_keys: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def make_environment(now: Callable[[], datetime] = datetime.now,
                     tojson: Callable[..., str] | None = None) -> ImmutableSandboxedEnvironment:
    """A fresh sandbox configured like ``transformers``; ``now`` is the clock ``strftime_now`` reads.

    ``tojson`` replaces the filter (the proof of a TEMPLATE with tools renders the Jinja with one
    that writes JSON as Ollama's ``json`` does).
    """
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[GenerationBlock, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson or _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: now().strftime(fmt)
    env.globals["dict"] = _Dict()
    env.globals["namespace"] = _Namespace
    return env


def compile_template(source: str, now: Callable[[], datetime] = datetime.now,
                     tojson: Callable[..., str] | None = None) -> jinja2.Template:
    """Parse ``source`` in the sandbox; raises :class:`jinja2.TemplateSyntaxError` when it does not parse."""
    env = make_environment(now, tojson)
    return env.template_class.from_code(env, compiled_code(source), env.make_globals(None))


@functools.lru_cache(maxsize=64)
def compiled_code(source: str) -> CodeType:
    """``source`` compiled to Python once (Jinja's compile is most of a proof's time): the code
    reads the clock, filters and globals from the environment it later runs in."""
    return make_environment().compile(source)


@functools.lru_cache(maxsize=64)
def parsed(source: str) -> jinja2.nodes.Template:
    """``source``'s syntax tree, parsed once (the translator and the proof only read it)."""
    return make_environment().parse(source)
