"""Modelfiles that mean exactly what the spec says, as Ollama's own parser reads them.

Ollama's parser (``parser/parser.go``) has no escape sequences. A value is read up to the first
newline at which the text so far, trimmed of spaces, tabs and line breaks, is either unquoted or
wrapped in ``"…"`` or ``\"\"\"…\"\"\"``; the quotes are then stripped and nothing else is
unescaped. Characters that Go's ``strconv.IsPrint`` rejects (other than tab and line breaks) are
dropped without a word. So every value here is written in one of three forms, bare, ``"…"`` or
``\"\"\"…\"\"\"``, picked so that the parser cannot end it early; a value no form can hold
(a ``\"\"\"`` and a ``"`` each right before a newline, say, or a zero-width space) raises
:class:`ModelfileError` naming the spec field, instead of writing a file that means something else.
Registering through Ollama's HTTP API sends the same values as JSON and has none of these limits.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import jinja2

from modelkit.errors import ModelfileError, ModelkitError
from modelkit.golang.strconv import is_go_print

TEMPLATE_NAME = "Modelfile.j2"
MESSAGE_ROLES = ("system", "user", "assistant")

_PARAMETER_NAME = re.compile(r"[A-Za-z0-9_]+\Z")
# golang.org/x/mod/semver, which Ollama uses to check REQUIRES (after adding a leading "v").
_SEMVER = re.compile(
    r"v?(?:0|[1-9]\d*)(?:\.(?:0|[1-9]\d*)(?:\.(?:0|[1-9]\d*)"
    r"(?:-(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*)?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)?)?\Z"
)
_BUILTIN_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*\Z")
_LINE_BREAKS = "\r\n"
_TRIMMED = " \t\r\n"  # what Go's TrimSpace can meet in a value once unprintables are dropped
# A quote, then only spaces or tabs, then a line break: there the parser would end the value.
_TRIPLE_ENDS_EARLY = re.compile(r'"""[ \t]*[\r\n]')
_SINGLE_ENDS_EARLY = re.compile(r'"[ \t]*[\r\n]')


@dataclass(frozen=True)
class Modelfile:
    """What one Modelfile says. ``None`` leaves a command out; ``""`` writes an empty value.

    ``parameters`` keeps the spec's order; a list value (``stop``) becomes one ``PARAMETER``
    line per item. Paths are written as given: Ollama resolves relative ones against the
    Modelfile's folder and expands a leading ``~``.
    """

    from_: str
    adapters: tuple[str, ...] = ()
    projectors: tuple[str, ...] = ()
    """Second ``FROM`` lines: a model that sees images names its projector GGUF after the model
    (Ollama tells a projector by its content, ``general.type = mmproj``, and keeps it as a
    ``projector`` layer; an ``ADAPTER`` line would not load it)."""
    template: str | None = None
    system: str | None = None
    parameters: tuple[tuple[str, object], ...] = ()
    messages: tuple[tuple[str, str], ...] = ()
    license: tuple[str, ...] = ()
    requires: str | None = None
    renderer: str | None = None
    parser: str | None = None
    header: str = ""


def render_modelfile(m: Modelfile) -> str:
    """Render ``m`` through ``templates/Modelfile.j2``; raise :class:`ModelfileError` if it can't be said."""
    if not m.from_:
        raise ModelfileError("FROM", "the model path is empty")
    if len(m.adapters) > 1:
        raise ModelfileError(
            "ADAPTER",
            f"{len(m.adapters)} adapters given, but Ollama's Modelfile keeps only the last ADAPTER line "
            "(and Ollama applies one adapter per model); register one adapter per variant",
        )
    if m.requires is not None and not _SEMVER.match(m.requires):
        raise ModelfileError("ollama.requires", f"{m.requires!r} is not a version Ollama accepts (e.g. 0.14.0)")
    roles = [role for role, _ in m.messages if role not in MESSAGE_ROLES]
    if roles:
        raise ModelfileError("ollama.messages", f"role {roles[0]!r} must be one of {', '.join(MESSAGE_ROLES)}")

    context = {
        "header_lines": m.header.splitlines(),
        "from_": quote_value(m.from_, "FROM path"),
        "projectors": [quote_value(path, "FROM path") for path in m.projectors],
        "adapters": [quote_value(path, "ADAPTER path") for path in m.adapters],
        "template": None if m.template is None else quote_value(m.template, "ollama.template"),
        "system": None if m.system is None else quote_value(m.system, "ollama.system"),
        "parameters": _parameter_lines(m.parameters),
        "messages": [
            (role, quote_value(content, f"ollama.messages[{i}]")) for i, (role, content) in enumerate(m.messages)
        ],
        "license": [quote_value(text, f"ollama.license[{i}]") for i, text in enumerate(m.license)],
        "requires": m.requires,
        "renderer": None if m.renderer is None else _name(m.renderer, "RENDERER"),
        "parser": None if m.parser is None else _name(m.parser, "PARSER"),
    }
    return _environment().get_template(TEMPLATE_NAME).render(context)


def quote_value(value: str, field: str) -> str:
    """Write ``value`` so that Ollama's parser reads back exactly ``value``.

    Bare when that is unambiguous (one line, no edge spaces, no leading quote), else in triple
    quotes, else in plain quotes; :class:`ModelfileError` if none of the three can hold it.
    """
    _check_characters(value, field)
    if _bare_ok(value):
        return value
    if not _TRIPLE_ENDS_EARLY.search(value):
        return f'"""{value}"""'
    if not value.startswith('""') and value != '"' and not _SINGLE_ENDS_EARLY.search(value):
        return f'"{value}"'
    raise ModelfileError(
        field,
        'the text has both a """ and a " right before a line break, which Ollama\'s Modelfile grammar '
        "cannot quote (it has no escapes); reword it, or register through the API, which takes any text",
    )


def template_dir() -> Path:
    """Where ``Modelfile.j2`` lives: inside the package in a wheel, at the repository top otherwise."""
    package = Path(__file__).resolve().parents[1]
    candidates = (package / "templates", package.parent / "templates")
    for candidate in candidates:
        if (candidate / TEMPLATE_NAME).is_file():
            return candidate
    raise ModelkitError(f"{TEMPLATE_NAME} is missing; looked in {', '.join(map(str, candidates))}")


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir()),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _bare_ok(value: str) -> bool:
    return (
        value != ""
        and not any(ch in _LINE_BREAKS for ch in value)
        and value == value.strip(_TRIMMED)
        and not value.startswith('"')
    )


def _check_characters(value: str, field: str) -> None:
    for i, ch in enumerate(value):
        if ch in "\t\r\n" or is_go_print(ch):
            continue
        name = unicodedata.name(ch, "unnamed")
        raise ModelfileError(
            field,
            f"character U+{ord(ch):04X} ({name}) at offset {i} would be silently dropped by Ollama's "
            "Modelfile parser; remove it, or register through the API, which keeps it",
        )


def _name(value: str, field: str) -> str:
    """A RENDERER or PARSER name: Ollama looks it up as written, so it is one bare word."""
    if not _BUILTIN_NAME.match(value):
        raise ModelfileError(field, f"{value!r} is not the name of an Ollama renderer or parser (e.g. qwen3-coder)")
    return value


def _parameter_lines(parameters: tuple[tuple[str, object], ...]) -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    for name, value in parameters:
        field = f"ollama.parameters.{name}"
        if not _PARAMETER_NAME.match(name):
            raise ModelfileError(field, "a PARAMETER name may contain only ASCII letters, digits and '_'")
        items = value if isinstance(value, (list, tuple)) else [value]
        for i, item in enumerate(items):
            item_field = f"{field}[{i}]" if isinstance(value, (list, tuple)) else field
            lines.append((name, quote_value(_parameter_text(item, item_field), item_field)))
    return lines


def _parameter_text(value: object, field: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ModelfileError(field, f"{value} is not a finite number")
        return repr(value)
    if isinstance(value, str):
        return value
    raise ModelfileError(field, "a PARAMETER value must be a number, a boolean or a string, "
                                f"not {type(value).__name__}")
