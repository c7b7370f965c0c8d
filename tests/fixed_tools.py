"""A toolchain for engines in tests: a fixed fingerprint and platform, installed or not (the core's ``Tools`` protocol)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelkit.core.process import Progress


@dataclass
class FixedTools:
    """Steps that name a tool see ``prints`` as its fingerprint (None while not ``installed``)
    and ``machine`` as the platform; nothing is ever installed."""

    prints: dict[str, Any] = field(default_factory=dict)
    machine: str = "any"
    installed: bool = True

    def toolchain(self, progress: Progress | None = None) -> Any:
        raise AssertionError("a test step asked for a toolchain")

    def fingerprint(self, component: str) -> dict[str, Any] | None:
        return dict(self.prints) if self.installed else None

    def describe(self) -> str:
        return "the test's tools" if self.installed else "the test's tools, which it never installs"

    def platform(self) -> str:
        return self.machine

    def gpu(self) -> bool:
        return False

    def version(self) -> str:
        return "test"
