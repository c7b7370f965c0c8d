"""Register a variant with Ollama: through its HTTP API (default) or ``ollama create -f``.

Registration is a build target like any other: its key covers the GGUF's digest and everything
the Modelfile says, so a params-only change re-registers without touching a GGUF, and uploads
nothing (the server's copy of the GGUF, recorded last time, is reused). Its output is a receipt
under ``.modelkit/ollama/``: what was registered, where, when, and what the server reported right
after accepting it. Because the server can lose or change a model behind modelkit's back
(``ollama rm``, a re-create by hand, another server at ``OLLAMA_HOST``), a target that looks fresh
still asks the server, and is fresh only while the server reports what the receipt recorded. A
receipt is never restored from the artifact cache: it is a statement about the server.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelkit.core.action import StepContext
from modelkit.core.resources import Demand
from modelkit.errors import DeferredError, OllamaUnavailable, StepError
from modelkit.steps.base import Step
from modelkit.steps.modelfile import RenderModelfile

if TYPE_CHECKING:
    from modelkit.ollama import ModelContent, Reachability
    from modelkit.ollama.engine import Choice
    from modelkit.ollama.freshness import ServerCopy


@dataclass(kw_only=True, eq=False)
class Register(Step, kind="ollama-register", cacheable=False, outside=True):
    """``out`` is the receipt, under ``.modelkit/`` (what this machine's server accepted, and when:
    never restored, never in the lock); ``servers`` is
    shared by the build's registrations, so a server that did not answer once is not waited on
    again."""

    ref: str
    modelfile: RenderModelfile
    gguf: Path
    adapters: list[Path]
    method: str
    host: str | None
    servers: Reachability
    projector: Path | None = None
    projector_is_source: bool = False
    """The projector is the user's own file (a ready GGUF base's), read here; else a target's output."""

    def params(self) -> dict[str, Any]:
        from modelkit.ollama.host import shown_host

        return {"model": self.ref, "method": self.method, "host": shown_host(self.host)}

    def inputs(self) -> dict[str, Path]:
        """A projector the spec names (a ready GGUF's): no target makes it, so its bytes are read here."""
        return {"projector": self.projector} if self.projector and self.projector_is_source else {}

    def describe(self) -> str:
        return f"register {self.ref} with Ollama" + (" (ollama create)" if self.method == "cli" else "")

    def content(self) -> ModelContent:
        from modelkit.ollama.content import ModelContent

        m = self.modelfile
        builtin = m.builtin()
        return ModelContent(gguf=self.gguf, adapters=tuple(self.adapters), projector=self.projector,
                            template=m.resolved_template(),
                            system=m.system, parameters=m.resolved_parameters(), messages=tuple(m.messages),
                            license=(m.license,) if m.license else (), renderer=builtin.renderer if builtin else None,
                            parser=builtin.parser if builtin else None, requires=builtin.requires if builtin else None)

    def blocked(self) -> DeferredError | None:
        problem = self.servers.problem(self.host)
        return self._unavailable(problem) if problem else None

    def external_staleness(self, digest: Callable[[Path], str]) -> str | None:
        from modelkit.ollama.freshness import registration_status
        from modelkit.ollama.host import shown_host

        if self.servers.known_problem(self.host):
            return f"Ollama not reachable at {shown_host(self.host)}"
        try:
            status = registration_status(self.ref, read_receipt(self.out).copy, host=self.host)
        except OllamaUnavailable as e:
            self.servers.lost(e)
            return f"Ollama not reachable at {e.host}"
        return None if status else f"Ollama: {status.reason}"

    def demand(self) -> Demand:
        """Ollama's time, not this machine's, so no core; but one registration at a time, as
        ``ollama create`` of two tags from one blob at once is not something Ollama promises."""
        return Demand(cpu=0, alone="ollama")

    def run(self, ctx: StepContext) -> None:
        problem = self.servers.known_problem(self.host)
        if problem:
            raise self._unavailable(problem)
        try:
            receipt = self._register(ctx, read_receipt(self.out))
        except OllamaUnavailable as e:
            self.servers.lost(e)
            raise self._unavailable(e.detail) from None
        ctx.tmp(self.out).write_text(json.dumps(receipt, indent=2, sort_keys=True) + "\n")

    def _register(self, ctx: StepContext, before: Receipt) -> dict[str, Any]:
        """Register, then record what the server holds: the receipt."""
        from modelkit.ollama.cli import register_with_cli
        from modelkit.ollama.freshness import held_copy, unexpected
        from modelkit.ollama.host import shown_host
        from modelkit.ollama.register import register

        content, digests = self.content(), self._digests(ctx.digest)
        if self.method == "cli":
            register_with_cli(self.ref, self.modelfile.out, host=self.host, progress=ctx.progress, log=ctx.log_path)
            copy, detail = held_copy(self.ref, host=self.host), {}
            if copy is None:
                raise StepError(f"`ollama create {self.ref}` succeeded, but Ollama does not show it")
            held = dict(zip(digests.values(), [*copy.model_blobs, *copy.adapter_blobs]))
        else:
            result = register(self.ref, content, host=self.host, progress=ctx.progress, digests=digests,
                              held=before.held)
            copy, held = result.copy, result.held
            detail = {"uploaded": list(result.uploaded), "reused": list(result.reused)}
        native = copy.template != (content.template or copy.template)
        self._say(ctx, unexpected(copy, content, content.parameters), native)
        return {"model": self.ref, "host": shown_host(self.host), "method": self.method, "gguf": str(self.gguf),
                "registered_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **detail,
                "server": copy.to_json(), "held": held, "native_chat": native,
                "renders": self._renders(content).to_json()}

    def _renders(self, content: ModelContent) -> Choice:
        """What today's Ollama renders the model with, by its own rules (:mod:`modelkit.ollama.engine`):
        decided once, here, from the GGUF's Jinja and what the Modelfile sends, and kept in the
        receipt for the build's summary, ``modelkit inspect`` and the card."""
        from modelkit.formats.gguf import read_header
        from modelkit.ollama.engine import predict_engine

        jinja = read_header(self.gguf, index_strings=()).metadata.get("tokenizer.chat_template")
        return predict_engine(jinja if isinstance(jinja, str) else None, content.template,
                              renderer=content.renderer, parser=content.parser)

    def _say(self, ctx: StepContext, differences: list[str], native: bool) -> None:
        """The server's own choices go to the log; one of them, its template, matters to the user."""
        from modelkit.ollama.host import shown_host

        with open(ctx.log_path, "a", encoding="utf-8") as log:
            log.writelines(f"Ollama: {d}\n" for d in differences)
        if native:
            ctx.note(f"Ollama at {shown_host(self.host)} renders the GGUF's own chat template for these models, "
                     "not the Modelfile's TEMPLATE (its native chat mode)")

    def _unavailable(self, detail: str) -> OllamaUnavailable:
        from modelkit.ollama.host import shown_host

        return OllamaUnavailable(shown_host(self.host), detail, self.ref, self.modelfile.out)

    def _digests(self, digest: Callable[[Path], str]) -> dict[Path, str]:
        files = [self.gguf, *([self.projector] if self.projector else []), *self.adapters]  # as Ollama lists them
        return {p.resolve(): digest(p) for p in files if p.is_file()}


@dataclass(frozen=True)
class Receipt:
    """What a registration recorded: the server's copy of the model, and of each file."""

    copy: ServerCopy | None = None
    held: dict[str, str] = field(default_factory=dict)  # our file's digest -> the server's copy's
    native_chat: bool = False  # the server renders the GGUF's Jinja, not the TEMPLATE sent
    renders: Choice | None = None  # what the build decided Ollama renders it with (None: an older receipt)


def read_receipt(path: Path) -> Receipt:
    """The receipt at ``path``; an empty one when there is none, or it is from an older modelkit."""
    from modelkit.ollama.engine import Choice
    from modelkit.ollama.freshness import ServerCopy

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        copy = ServerCopy.from_json(data["server"])
        held = {str(k): str(v) for k, v in data.get("held", {}).items()}
        renders = Choice.from_json(data["renders"]) if isinstance(data.get("renders"), dict) else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return Receipt()
    return Receipt(copy, held, data.get("native_chat") is True, renders)
