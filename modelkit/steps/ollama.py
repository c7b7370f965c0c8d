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
from pathlib import Path
from typing import Any

from modelkit.action import Action, StepContext
from modelkit.errors import ModelkitError
from modelkit.steps.modelfile import RenderModelfile

# What this process learnt about Ollama hosts: one failed connection is enough to know.
_UNREACHABLE: dict[str, str] = {}
_REACHABLE: set[str] = set()


class Register(Action):
    kind = "ollama-register"
    reproducible = False  # the receipt records a time and a host

    def __init__(self, ref: str, modelfile: RenderModelfile, gguf: Path, adapters: list[Path], method: str,
                 host: str | None, receipt: Path) -> None:
        self.ref = ref
        self.modelfile = modelfile
        self.gguf = gguf
        self.adapters = adapters
        self.method = method
        self.host = host
        self.receipt = receipt

    def params(self) -> dict[str, Any]:
        from modelkit.ollama_client import shown_host

        return {"model": self.ref, "method": self.method, "host": shown_host(self.host)}

    def outputs(self) -> list[Path]:
        return [self.receipt]

    def describe(self) -> str:
        return f"register {self.ref} with Ollama" + (" (ollama create)" if self.method == "cli" else "")

    def content(self) -> Any:
        from modelkit.ollama_registry import ModelContent

        m = self.modelfile
        return ModelContent(gguf=self.gguf, adapters=tuple(self.adapters), template=m.resolved_template(),
                            system=m.system, parameters=m.resolved_parameters(), messages=tuple(m.messages),
                            license=(m.license,) if m.license else ())

    def blocked(self) -> ModelkitError | None:
        from modelkit.ollama_client import shown_host
        from modelkit.ollama_registry import OllamaUnavailable, server_version

        host = shown_host(self.host)
        if host not in _UNREACHABLE and host not in _REACHABLE:
            try:
                server_version(host=self.host, timeout=5.0)
                _REACHABLE.add(host)
            except OllamaUnavailable as e:
                _UNREACHABLE[host] = e.detail
        if host in _UNREACHABLE:
            return OllamaUnavailable(host, _UNREACHABLE[host], self.ref, self.modelfile.out)
        return None

    def external_staleness(self, digest: Callable[[Path], str]) -> str | None:
        from modelkit.ollama_client import shown_host
        from modelkit.ollama_registry import OllamaUnavailable, is_registered

        host = shown_host(self.host)
        if host in _UNREACHABLE:
            return f"Ollama not reachable at {host}"
        try:
            status = is_registered(self.ref, self.content(), host=self.host, digests=self._digests(digest))
        except OllamaUnavailable as e:
            _UNREACHABLE[host] = e.detail
            return f"Ollama not reachable at {host}"
        return None if status else f"Ollama: {status.reason}"

    def _digests(self, digest: Callable[[Path], str]) -> dict[Path, str]:
        return {p.resolve(): digest(p) for p in [self.gguf, *self.adapters] if p.is_file()}

    def run(self, ctx: StepContext) -> None:
        from modelkit.ollama_client import shown_host
        from modelkit.ollama_registry import OllamaUnavailable, register, register_with_cli

        host = shown_host(self.host)
        if host in _UNREACHABLE:
            raise OllamaUnavailable(host, _UNREACHABLE[host], self.ref, self.modelfile.out)

        def progress(status: str, done: int | None, total: int | None) -> None:
            ctx.progress(done / total if done is not None and total else None, status)

        try:
            if self.method == "cli":
                register_with_cli(self.ref, self.modelfile.out, host=self.host, progress=progress, log=ctx.log_path)
                detail: dict[str, Any] = {}
            else:
                result = register(self.ref, self.content(), host=self.host, progress=progress,
                                  digests=self._digests(ctx.digest))
                detail = {"uploaded": list(result.uploaded), "reused": list(result.reused)}
        except OllamaUnavailable as e:
            _UNREACHABLE[host] = e.detail
            raise OllamaUnavailable(host, e.detail, self.ref, self.modelfile.out) from None
        ctx.tmp(self.receipt).write_text(json.dumps(
            {"model": self.ref, "host": host, "method": self.method, "gguf": str(self.gguf),
             "registered_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **detail},
            indent=2, sort_keys=True) + "\n")


def forget_ollama_hosts() -> None:
    """Forget which Ollama hosts answered: a long-running ``modelkit watch`` asks again each round."""
    _UNREACHABLE.clear()
    _REACHABLE.clear()
