"""What the engine says of targets: whether each must run and why (:class:`Status`), what a build
did (:class:`BuildResult`), and what the lock pins of a step that is not reproducible (:class:`Pin`).

Plain data, apart from the engine and its scheduler, which both speak it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelkit.errors import DeferredError, ModelkitError


@dataclass(frozen=True)
class Pin:
    """What modelkit.lock says of a target that is not reproducible: the platform its bytes were
    computed on, and their key."""

    platform: str
    key: str


@dataclass(frozen=True)
class Status:
    """Whether a target needs to run, and the first reason why."""

    name: str
    state: str
    """"fresh" | "stale" | "pending" (depends on a stale target; runs if its output changes) |
    "removed" (an intermediate whose outputs were removed once read: up to date, made again if needed)"""
    reason: str
    key: str | None = None
    record: dict[str, Any] | None = None

    @property
    def fresh(self) -> bool:
        return self.state == "fresh"


@dataclass
class BuildResult:
    ran: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # ran, but produced the same bytes
    failed: list[tuple[str, ModelkitError]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)   # not run because a dependency failed
    deferred: list[tuple[str, DeferredError]] = field(default_factory=list)
    """Targets that could not run for a reason outside the project (Ollama not running): they stay
    stale, the rest of the build counts, and the next build retries them."""
    unneeded: list[str] = field(default_factory=list)
    """Stale targets with promised outputs (downloads) that were not run because every target
    reading them was fresh or restored (see :meth:`Action.promised_outputs`)."""
    removed: list[str] = field(default_factory=list)
    """Intermediate targets whose outputs are gone now (removed by this build, or before it), every
    target reading them being up to date."""

    @property
    def ok(self) -> bool:
        return not self.failed
