"""The build graph: named targets, each an artifact with the action that makes it.

Targets have stable names (``gguf:base.Q4_K_M``, ``modelfile:support-bot:q4_k_m``), so a user can
build one thing and what it needs (``modelkit build gguf:base.Q4_K_M``). How a spec becomes a
graph is in :mod:`modelkit.rules`; this module is only the structure the engine walks.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from modelkit.core.action import Action
from modelkit.errors import UserError


@dataclass(frozen=True)
class Target:
    """An artifact and the action that makes it. ``deps`` are targets whose outputs it reads (their
    digests are part of its key); ``after`` are targets that must succeed before it starts but
    whose outputs it does not read (ninja's order-only dependencies): a cheap check that must pass
    before hours of work, without making that work stale when the check's output changes.

    ``intermediate`` (make's ``.INTERMEDIATE``): its outputs exist only to make others, and are
    removed once every target that reads them is up to date; their recorded digests then stand for
    them, so their absence makes nothing stale, and a build that needs them again remakes them."""

    name: str
    action: Action
    deps: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    intermediate: bool = False

    @property
    def prerequisites(self) -> tuple[str, ...]:
        return (*self.deps, *self.after)


class Graph:
    """Targets in insertion order, which must already be a topological order."""

    def __init__(self, targets: Iterable[Target] = ()) -> None:
        self.targets: dict[str, Target] = {}
        for target in targets:
            self.add(target)

    def add(self, target: Target) -> Target:
        if target.name in self.targets:
            raise ValueError(f"duplicate target {target.name}")
        missing = [d for d in target.prerequisites if d not in self.targets]
        if missing:
            raise ValueError(f"{target.name} depends on {missing[0]}, which is not defined before it")
        self.targets[target.name] = target
        return target

    def __getitem__(self, name: str) -> Target:
        return self.targets[name]

    def __contains__(self, name: str) -> bool:
        return name in self.targets

    def __iter__(self) -> Iterator[Target]:
        return iter(self.targets.values())

    def __len__(self) -> int:
        return len(self.targets)

    def resolve(self, name: str) -> str:
        """A target name from what a user typed: exact, or a unique prefix/suffix match."""
        if name in self.targets:
            return name
        matches = [t for t in self.targets if t.endswith(name) or t.startswith(name)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise UserError(f"target '{name}' is ambiguous: {', '.join(matches)}")
        hint = difflib.get_close_matches(name, list(self.targets), n=1)
        did_you_mean = f" (did you mean '{hint[0]}'?)" if hint else ""
        raise UserError(f"no target '{name}'{did_you_mean}; `modelkit plan` lists them")

    def readers(self, name: str) -> list[str]:
        """The targets that read ``name``'s outputs (those with it among their ``deps``)."""
        return [t.name for t in self.targets.values() if name in t.deps]

    def closure(self, names: Iterable[str] | None = None) -> list[Target]:
        """The named targets and everything they depend on, in build order (all if None)."""
        if names is None:
            return list(self.targets.values())
        wanted: set[str] = set()
        stack = [self.resolve(n) for n in names]
        while stack:
            name = stack.pop()
            if name not in wanted:
                wanted.add(name)
                stack.extend(self.targets[name].prerequisites)
        return [t for t in self.targets.values() if t.name in wanted]
