"""The two consoles every command prints to, and the lines a no-op build prints (cheap to import).

Kept apart from :mod:`.reporter`, which knows targets and projects, so that a build answered by
the no-op shortcut (:mod:`modelkit.core.stamp`) prints exactly what a planned one does while
importing nothing but rich's console.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.text import Text


def _console(stderr: bool) -> Console:
    """A console that reads no markup in what it prints (see :func:`markup`); in a pipe or a log,
    tables are not folded at 80 columns."""
    made = Console(stderr=stderr, highlight=False, soft_wrap=True, markup=False)
    return made if made.is_terminal else Console(stderr=stderr, highlight=False, soft_wrap=True, markup=False,
                                                 width=200)


console = _console(stderr=True)
stdout = _console(stderr=False)


def markup(template: str, *values: object) -> Text:
    """A line from literal rich markup whose ``{}`` holes show ``values`` exactly as written. The
    consoles read no markup in text, so a message naming ``[evaluate] text`` or a path with
    brackets comes out as it is; styles come only from literals passed through here."""
    return Text.from_markup(template.format(*(escape(str(v)) for v in values)))


def fresh_line(target: str) -> Text:
    """``-v``: a target that was up to date."""
    return markup("[dim]  ok  {} (up to date)[/]", target)


def up_to_date_line(targets: int, elapsed: float, removed: int = 0) -> Text:
    """The first line of a build that had nothing to do (``removed``: intermediates it left removed)."""
    gone = f"; {removed} intermediate{'s' * (removed != 1)} removed" if removed else ""
    return markup("[green]everything is up to date[/] ({} targets{}, {}s)", targets, gone, f"{elapsed:.2f}")
