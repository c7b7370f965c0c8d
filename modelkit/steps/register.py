"""Register a variant with Ollama: through its HTTP API (default) or ``ollama create -f``.

Registration is a build target like any other: its key covers the GGUF's digest and everything
the Modelfile says, so a params-only change re-registers (uploading nothing: Ollama already holds
the blob) without touching a GGUF. And because local state can lie (someone ran ``ollama rm``, or
OLLAMA_HOST now points at another server), a target that looks fresh still asks Ollama whether it
holds that model with that content.

Its output is a small receipt under ``.modelkit/ollama/``: what was registered, where, and when.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelkit.core.action import StepContext
from modelkit.errors import DeferredError, OllamaUnavailable
from modelkit.steps.base import Step
from modelkit.steps.modelfile import RenderModelfile

if TYPE_CHECKING:
    from modelkit.ollama import ModelContent, Reachability


@dataclass(kw_only=True, eq=False)
class Register(Step, kind="ollama-register", reproducible=False):
    """``out`` is the receipt (not reproducible: it records a time and a host); ``servers`` is
    shared by the build's registrations, so a server that did not answer once is not waited on
    again."""

    ref: str
    modelfile: RenderModelfile
    gguf: Path
    adapters: list[Path]
    method: str
    host: str | None
    servers: Reachability

    def params(self) -> dict[str, Any]:
        from modelkit.ollama.client import shown_host

        return {"model": self.ref, "method": self.method, "host": shown_host(self.host)}

    def describe(self) -> str:
        return f"register {self.ref} with Ollama" + (" (ollama create)" if self.method == "cli" else "")

    def content(self) -> ModelContent:
        from modelkit.ollama.content import ModelContent

        m = self.modelfile
        return ModelContent(gguf=self.gguf, adapters=tuple(self.adapters), template=m.resolved_template(),
                            system=m.system, parameters=m.resolved_parameters(), messages=tuple(m.messages),
                            license=(m.license,) if m.license else ())

    def blocked(self) -> DeferredError | None:
        problem = self.servers.problem(self.host)
        return self._unavailable(problem) if problem else None

    def external_staleness(self, digest: Callable[[Path], str]) -> str | None:
        from modelkit.ollama.client import shown_host
        from modelkit.ollama.freshness import is_registered

        if self.servers.known_problem(self.host):
            return f"Ollama not reachable at {shown_host(self.host)}"
        try:
            status = is_registered(self.ref, self.content(), host=self.host, digests=self._digests(digest))
        except OllamaUnavailable as e:
            self.servers.lost(e)
            return f"Ollama not reachable at {e.host}"
        return None if status else f"Ollama: {status.reason}"

    def run(self, ctx: StepContext) -> None:
        problem = self.servers.known_problem(self.host)
        if problem:
            raise self._unavailable(problem)
        try:
            detail = self._register(ctx)
        except OllamaUnavailable as e:
            self.servers.lost(e)
            raise self._unavailable(e.detail) from None
        from modelkit.ollama.client import shown_host

        ctx.tmp(self.out).write_text(json.dumps(
            {"model": self.ref, "host": shown_host(self.host), "method": self.method, "gguf": str(self.gguf),
             "registered_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **detail},
            indent=2, sort_keys=True) + "\n")

    def _register(self, ctx: StepContext) -> dict[str, Any]:
        from modelkit.ollama.cli import register_with_cli
        from modelkit.ollama.register import register

        if self.method == "cli":
            register_with_cli(self.ref, self.modelfile.out, host=self.host, progress=ctx.progress, log=ctx.log_path)
            return {}
        result = register(self.ref, self.content(), host=self.host, progress=ctx.progress,
                          digests=self._digests(ctx.digest))
        return {"uploaded": list(result.uploaded), "reused": list(result.reused)}

    def _unavailable(self, detail: str) -> OllamaUnavailable:
        from modelkit.ollama.client import shown_host

        return OllamaUnavailable(shown_host(self.host), detail, self.ref, self.modelfile.out)

    def _digests(self, digest: Callable[[Path], str]) -> dict[Path, str]:
        return {p.resolve(): digest(p) for p in [self.gguf, *self.adapters] if p.is_file()}
