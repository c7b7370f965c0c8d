"""Fetch a Hugging Face repo source into the Hugging Face cache.

The files land in the standard cache (shared with transformers and every other tool), so a
model downloaded once is never downloaded again; huggingface_hub writes each blob under a
temporary name and renames it, so the step is atomic per file without the engine's help.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelkit import hub
from modelkit.core.action import Action, StepContext
from modelkit.core.resources import Demand
from modelkit.core.units import human_size
from modelkit.steps.base import LIGHT


@dataclass(kw_only=True, eq=False)
class Fetch(Action, kind="fetch", atomic=False):
    """Not atomic through the engine: huggingface_hub renames each file into place itself. Not in
    the lock's artifacts: its outputs live in each machine's Hugging Face cache, and the lock
    records what they are (commit and file digests) under ``sources``."""

    source: hub.RepoSource
    label: str

    def params(self) -> dict[str, Any]:
        return {"repo": self.source.repo, "commit": self.source.commit, "files": sorted(self.source.files)}

    def outputs(self) -> list[Path]:
        return [self.source.snapshot / name for name in sorted(self.source.files)]

    def promised_outputs(self) -> dict[Path, str] | None:
        """The lock's sha256 of every file (None before the first build has recorded them)."""
        if not self.source.files or None in self.source.files.values():
            return None
        return {self.source.snapshot / name: str(digest) for name, digest in self.source.files.items()}

    def describe(self) -> str:
        return f"download {self.label} ({self.source.repo}@{self.source.commit[:12]})"

    def demand(self) -> Demand:
        return LIGHT  # the network's time, not the machine's: downloads overlap everything

    def run(self, ctx: StepContext) -> None:
        ctx.progress(None, f"downloading {len(self.source.files)} files from {self.source.repo}")
        hub.download(self.source, progress=_tqdm_for(ctx))


def _tqdm_for(ctx: StepContext) -> Any:
    """A tqdm class that reports huggingface_hub's byte progress to the step's display."""
    from tqdm.auto import tqdm  # type: ignore[import-untyped]  # tqdm ships no type information

    class Reporting(tqdm):  # type: ignore[misc]  # a subclass of an untyped class
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = False
            kwargs["file"] = open("/dev/null", "w")  # noqa: SIM115 - rich draws the progress
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            out: bool | None = super().update(n)
            if self.total:
                ctx.progress(self.n / self.total,
                             f"{self.desc or 'downloading'} {human_size(self.n)}/{human_size(self.total)}")
            return out

    return Reporting
