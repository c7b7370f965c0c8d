"""The parse tree of a Go template, as the evaluator's parser builds it from any template text.

Distinct from :mod:`..translator.goast`, the tree the translator builds and prints: these nodes
come from parsing, mirror ``text/template/parse``'s, and are what execution walks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Operand:
    """One argument of a command: ``kind`` is lit, nil, dot, var, pipe or ident; ``chain`` the
    field names that follow it (``.Messages``, ``$m.Role``, ``(index . 0).Content``)."""

    kind: str
    value: Any = None  # literal value / var name / ident name / pipeline
    chain: tuple[str, ...] = ()


@dataclass
class Command:
    """A function call or a single operand, between the ``|`` of a pipeline."""

    args: list[Operand]


@dataclass
class Pipe:
    """A pipeline, with the variables it declares (``:=``) or assigns (``=``)."""

    decl: list[str]
    assign: bool
    cmds: list[Command]


@dataclass
class TextNode:
    """Literal text (bytes, as Go has them)."""

    text: bytes


@dataclass
class ActionNode:
    """``{{ pipeline }}``: written unless it declares a variable."""

    pipe: Pipe


@dataclass
class IfNode:
    """``{{ if }}`` or ``{{ with }}`` (``kind``), with its ``else`` branch."""

    kind: str
    pipe: Pipe
    body: list[Node]
    orelse: list[Node]


@dataclass
class RangeNode:
    """``{{ range }}``, with its ``else`` branch."""

    pipe: Pipe
    body: list[Node]
    orelse: list[Node]


@dataclass
class TemplateNode:
    """``{{ template "name" pipeline }}``."""

    name: str
    pipe: Pipe | None


class BreakNode:
    """``{{ break }}``."""


class ContinueNode:
    """``{{ continue }}``."""


Node = TextNode | ActionNode | IfNode | RangeNode | TemplateNode | BreakNode | ContinueNode


@dataclass
class GoTemplate:
    """A parsed Go template: the main tree and its ``define``d helpers."""

    source: str
    root: list[Node]
    defines: dict[str, list[Node]] = field(default_factory=dict)
