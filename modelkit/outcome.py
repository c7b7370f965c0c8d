"""What one build of a project did and decided, as data: the CLI's summary renders it and decides nothing.

:class:`BuildOutcome` is the engine's :class:`~modelkit.core.results.BuildResult` (which targets
ran, were fresh, failed…) with what the project's build decided on top: each variant's files and
registrations, the renderer Ollama uses for each registration (decided when it registered, kept in
its receipt), the notes the rules left, and the quality ladder when the build measured something.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelkit.core.results import BuildResult

if TYPE_CHECKING:
    from modelkit.ollama.engine import Choice


@dataclass(frozen=True)
class VariantOutcome:
    """One variant the build made: its Modelfile, the names it is registered as, what renders them."""

    ref: str
    modelfile: Path
    registered: tuple[str, ...] = ()
    """``model:tag`` names Ollama holds for it (none where registration was left for later)."""
    renders: Choice | None = None
    """What Ollama renders it with, as the build decided when it registered (None: not registered)."""
    projector: str | None = None
    """The projector's file name, for a model that sees images."""


@dataclass(frozen=True)
class Quality:
    """The quality ladder a build that measured something wrote, and where."""

    report: dict[str, Any]
    files: tuple[Path, ...]
    note: str | None = None
    """Why no picture was drawn, where none was."""


@dataclass
class BuildOutcome(BuildResult):
    """The engine's result and the project's decisions (see the module docstring)."""

    variants: list[VariantOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    quality: Quality | None = None
