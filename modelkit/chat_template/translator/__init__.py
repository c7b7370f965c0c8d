"""Translate a Jinja chat template into an Ollama TEMPLATE (Go ``text/template``).

How: *partial evaluation*. The Jinja syntax tree (parsed by the same sandbox ``transformers``
uses) is walked once, at build time. What is known then is computed: the special tokens,
``tools``/``documents`` being absent, options such as ``reasoning_effort`` left unset, and every
expression built from those (``namespace`` flags, string literals, macros). What depends on the
conversation (or on Ollama's ``think`` option, below) becomes Go: ``messages`` is
``$.Messages``; a ``for message in messages`` loop a ``range``; ``loop.last``, ``messages[0]``,
``messages[1:]``, role tests, string concatenation, ``trim``, ``startswith`` and arithmetic on
indexes become Go expressions (see :mod:`.goexpr`); an ``if`` on the conversation becomes a Go
``if`` (a variable set in its branches becomes a Go variable); ``raise_exception`` becomes a Go
error; ``add_generation_prompt`` becomes "the last message is not the assistant's". A
conversation ending with the assistant is a continuation: the Go template stops right after that
message's text.

What it cannot express, it refuses (:class:`~.values.Unsupported`) rather than approximate; the
proof (:mod:`..proof`) then has the last word on what it did express. Two softer cases are
reported rather than refused: a branch on the conversation it cannot express (usually tool
handling) becomes a Go error for that case (:attr:`Translation.untranslated`; the proof shows
whether a test conversation reaches one), and a test it can only settle by assuming something
about message text (it never contains ``</think>`` or ``/no_think``, it is never whitespace
only) is settled so and listed in :attr:`Translation.assumptions`.

Ollama's ``think`` option is the one option mapped at runtime: a thinking switch the template
reads (:data:`THINK_SWITCHES`, ``enable_thinking``) is undefined when the request leaves think
unset (``.IsThinkSet`` false) and ``.Think`` when it sets it, so ``ollama run --think=false``
reaches the template as ``enable_thinking=False`` would reach the Jinja
(:attr:`Translation.think_switches` names the switches read; ``follow_think=False`` translates
as if the switch were never set, which is what a template without one gets anyway).

Tool definitions, tool calls and the reasoning of past turns are not rendered: a Go template
cannot reproduce Jinja's ``tojson`` byte for byte, and Ollama passes reasoning separately.
:attr:`Translation.ignored` says which of these the template would have used.

Modules, bottom up (each imports only modules named before it). The values and the Go:
:mod:`.goast` (the Go tree and its printer), :mod:`.values` (the values the translator computes
with), :mod:`.goexpr` (arithmetic, trimming and dates built from Go's builtins), :mod:`.govalue`
(a value as one Go expression), :mod:`.ollama_data` (the Go names of Ollama's data). The parts
of one translation, each with one job, held together by a :class:`~.state.State`: :mod:`.jinja`
(the parsed template and the sandbox that computes constants), :mod:`.report` (assumptions, what
was left out or not translated), :mod:`.emitter` (the Go output being built: frames, helper
templates, preludes, fresh variable names), :mod:`.facts` (what the current branch has proven
about the conversation), :mod:`.nesting` (Jinja scopes, loops, macros, namespaces kept across a
``range``), :mod:`.state`. The handlers, modules of functions that take that state: value logic
in :mod:`.choices`, :mod:`.logic` (truth, ``and``/``or``/``not``) and :mod:`.text` (strings),
Ollama's tool data in :mod:`.tools`; expressions in :mod:`.operators`, :mod:`.access`,
:mod:`.calls`, :mod:`.jinja_tests`, :mod:`.filters` and :mod:`.expressions` (``ev``, the door for
an expression); statements in :mod:`.binding`, :mod:`.branches` (``if``), :mod:`.loops` (``for``)
and :mod:`.statements` (``stmts``, the door for statements, and the :class:`~.state.Walk` by
which macros, branches and loop bodies below it recurse into the template); last
:mod:`.translation`, the entry point and the passes that finish the Go tree.
"""

from .goast import Call, If, Node, Out, Range, Text, print_template
from .goexpr import strip_defines
from .ollama_data import THINK_SWITCHES
from .translation import Translation, translate
from .values import Unsupported

__all__ = [
    "Call",
    "If",
    "Node",
    "Out",
    "Range",
    "THINK_SWITCHES",
    "Text",
    "Translation",
    "Unsupported",
    "print_template",
    "strip_defines",
    "translate",
]
