"""What every build step shares: the one file it writes, and running its tool."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from modelkit.core.action import Action, StepContext


@dataclass(kw_only=True, eq=False)
class Step(Action):
    """An action that writes one file, ``out``; subclasses add their fields and ``run``."""

    out: Path

    def outputs(self) -> list[Path]:
        return [self.out]

    def run_tool(self, ctx: StepContext, cmd: Sequence[str | PathLike[str]], *,
                 progress_re: re.Pattern[str] | None = None, env: dict[str, str] | None = None) -> None:
        """Run the step's tool; failures are reported as this step's (``describe()``)."""
        ctx.run_tool(cmd, what=self.describe(), progress_re=progress_re, env=env)


def threads() -> int:
    """The cores this process may use (affinity-aware, as in a container)."""
    import os

    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
