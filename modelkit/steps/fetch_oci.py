"""Fetch a ready GGUF base (and its projector) from an OCI registry, by manifest digest (:mod:`modelkit.oci.pull`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelkit.core.action import Action, StepContext
from modelkit.core.resources import Demand
from modelkit.core.units import human_size
from modelkit.steps.base import LIGHT


@dataclass(kw_only=True, eq=False)
class FetchOCI(Action, kind="fetch-oci", atomic=False):
    """Not atomic through the engine: each blob is written under a temporary name, checked, and
    renamed into the cache, then linked under its file name. Not in the lock's artifacts: the lock
    names the manifest and its files' digests under ``sources``."""

    source: Any
    """The :class:`~modelkit.oci.pull.OCISource`."""
    blobs: Path

    def params(self) -> dict[str, Any]:
        return {"oci": self.source.reference, "manifest": self.source.manifest, "files": sorted(self.source.files)}

    def outputs(self) -> list[Path]:
        return [self.source.snapshot / name for name in sorted(self.source.files)]

    def promised_outputs(self) -> dict[Path, str] | None:
        """Each file's digest, as its manifest names it: what the downloaded bytes must be."""
        return {self.source.snapshot / name: digest for name, digest in self.source.files.items()}

    def describe(self) -> str:
        return f"download the base from {self.source.reference} ({self.source.manifest[:19]})"

    def demand(self) -> Demand:
        return LIGHT  # the network's time, not the machine's

    def run(self, ctx: StepContext) -> None:
        from modelkit.oci.pull import fetch

        total = sum(self.source.sizes.values()) or None

        def progress(done: int, name: str) -> None:
            ctx.progress(done / total if total else None, f"downloading {name} {human_size(done)}")

        fetch(self.source, self.blobs, progress)
