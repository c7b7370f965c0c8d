"""One translation in progress: the parts it is made of, each with one job, held together.

Every handler of the translator (:mod:`.expressions`, :mod:`.statements`, :mod:`.branches`,
:mod:`.loops`, :mod:`.calls`...) is a function that takes this :class:`State` first and reaches
the part it needs through it: the Jinja template and its sandbox, the Go output, the facts of
the current branch, the report, and where the walk is. :class:`Walk` is how the parts below
the walk (a macro's body, an ``if``'s branches, a loop's body) recurse into it: Jinja nests
statements in expressions and expressions in statements, so the walk is handed down rather
than imported from above.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import jinja2.nodes as jn

from .emitter import Emitter
from .facts import Facts
from .jinja import Jinja
from .nesting import Nesting, Scope
from .report import Report
from .values import V


@dataclass(frozen=True)
class Walk:
    """The entry points of the walk over Jinja's tree (:mod:`.expressions` and :mod:`.statements`)."""

    #: Evaluate one expression in a scope (never raises :class:`~.values.Unsupported`: it poisons).
    expression: Callable[[State, jn.Node, Scope], V]
    #: Translate statements into the output; False when they never complete (raise or break).
    statements: Callable[[State, Sequence[jn.Node], Scope], bool]


@dataclass
class State:
    """The parts of one translation (see the module docstring)."""

    jinja: Jinja
    walk: Walk
    #: Translate tool definitions, tool calls and reasoning from Ollama's data (:mod:`.tools`).
    with_tools: bool = False
    #: A thinking switch follows Ollama's think (else it reads as never set).
    follow_think: bool = True
    emitter: Emitter = field(default_factory=Emitter)
    report: Report = field(default_factory=Report)
    nesting: Nesting = field(default_factory=Nesting)
    facts: Facts = field(init=False)

    def __post_init__(self) -> None:
        self.facts = Facts(self.emitter)
