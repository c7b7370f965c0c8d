"""Every error modelkit reports, declared in one place, and what the CLI does with each.

Four families, told apart by type, never by an attribute looked up at run time:

- :class:`UserError`: bad input the user can fix (a spec, a path, a name, an option). One line
  that names the file, line or field and says what to do; the CLI exits with status 2.
- :class:`StepError`: a tool failed while doing its job (llama.cpp crashing mid-conversion, a
  server refusing an upload). The CLI prints the message, the last lines of the step's log and
  where the whole log is, and exits with status 1.
- :class:`Unreachable`: a server outside the project could not be reached or failed on its side;
  one line naming it, what happened and what to do; status 1.
- :class:`DeferredError`: a step cannot run now for a reason outside the project (Ollama is not
  running). The engine defers the target: it stays stale, the rest of the build counts, and the
  next build tries again.

Anything else is a bug in modelkit and keeps its traceback.
"""

from __future__ import annotations

import shlex
from pathlib import Path


class ModelkitError(Exception):
    """Base class of the errors modelkit reports without a traceback."""

    exit_code = 1


class UserError(ModelkitError):
    """Bad input: a spec, a path, a name or an option the user can fix."""

    exit_code = 2


class StepError(ModelkitError):
    """A build step failed; ``log`` is where its full output went, ``tail`` its last lines."""

    exit_code = 1

    def __init__(self, message: str, log: Path | None = None, tail: list[str] | None = None) -> None:
        super().__init__(message)
        self.log = log
        self.tail = tail or []


class Unreachable(ModelkitError):
    """A server outside the project (the Hub, a registry) could not be reached or failed on its
    side: refused, no such host, TLS, no answer in time, 429 or 5xx. The message says which
    server, what happened, that nothing was changed there, and what to do (:mod:`modelkit.network`)."""

    exit_code = 1


class DeferredError(ModelkitError):
    """A target that cannot be built now for a reason outside the project; it is retried by the
    next build, and the build that deferred it still succeeds."""

    exit_code = 1


class SpecError(UserError):
    """One or more problems in a spec file, one line each (``model.toml:8: quantize.types[1]: …``)."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


class GGUFHeaderError(UserError, ValueError):
    """A file that is not a readable GGUF (wrong magic, unsupported version, truncated header)."""


class TemplateError(UserError):
    """A chat template that cannot be found, read, translated or proven."""


class ModelfileError(UserError):
    """A spec value that Ollama's Modelfile grammar cannot express; ``field`` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class RemoteCacheError(UserError):
    """A remote artifact cache that is configured wrongly (an unknown URL scheme, a backend package
    not installed). A remote that is merely unreachable is a warning and a local build instead."""


class OllamaRefused(UserError):
    """Ollama understood a request and refused it (a bad template, an adapter it cannot apply, …)."""


class OllamaUnavailable(DeferredError):
    """Ollama could not be reached; the message says what was not registered and how to do it later."""

    def __init__(self, host: str, detail: str, model: str | None = None, modelfile: Path | None = None) -> None:
        self.host, self.detail, self.model, self.modelfile = host, detail, model, modelfile
        what = f"{model} was not registered" if model else "nothing was registered"
        later = f", or register it by hand: {register_later_hint(model, modelfile)}" if model and modelfile else ""
        super().__init__(
            f"Ollama is not reachable at {host} ({detail}); {what}. Start it with `ollama serve` "
            f"(or set OLLAMA_HOST to a running server) and run `modelkit build` again{later}"
        )


class PublishError(UserError):
    """A publish that cannot start (no repository, nothing built yet, no credentials): it says so
    before anything is uploaded, so nothing partial is committed."""


class OCIError(UserError):
    """An OCI registry refused something (credentials, a manifest, a reference): one line naming the
    registry and what to do. Credentials are never part of the message."""


class RegistryUnavailable(DeferredError):
    """Ollama's registry (or the Ollama server that pushes to it) could not be reached; the message
    says which variants were not pushed and how to push them later. ``pushes``: (local model,
    registry name) pairs."""

    def __init__(self, where: str, detail: str, pushes: list[tuple[str, str]]) -> None:
        self.where, self.detail, self.pushes = where, detail, pushes
        names = ", ".join(name for _, name in pushes) or "nothing"
        later = "; ".join(f"{shlex.join(['ollama', 'cp', src, dst])} && {shlex.join(['ollama', 'push', dst])}"
                          for src, dst in pushes)
        super().__init__(f"{where} is not reachable ({detail}); {names} not pushed: run `modelkit publish` "
                         f"again when it is, or push by hand: {later}")


def register_later_hint(model: str, modelfile: Path | None = None) -> str:
    """The command a user can run later to register ``model`` by hand."""
    if modelfile is None:
        return f"run `modelkit build` once Ollama is running to register {model}"
    return shlex.join(["ollama", "create", model, "-f", str(modelfile)])


__all__ = [
    "DeferredError",
    "GGUFHeaderError",
    "ModelfileError",
    "ModelkitError",
    "OCIError",
    "OllamaRefused",
    "OllamaUnavailable",
    "PublishError",
    "RegistryUnavailable",
    "RemoteCacheError",
    "SpecError",
    "StepError",
    "TemplateError",
    "Unreachable",
    "UserError",
    "register_later_hint",
]
