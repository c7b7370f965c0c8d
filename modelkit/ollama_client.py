"""What registering with Ollama and checking a registration share: the model content, the
official client set up the same way everywhere, and the errors that say what went wrong.

The official ``ollama`` client reads ``OLLAMA_HOST`` itself when no host is given, so modelkit
never second-guesses where Ollama is; the host is only spelled out here for messages.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import ollama

from modelkit.errors import ModelkitError, StepError, UserError
from modelkit.modelfile import MESSAGE_ROLES, Modelfile
from modelkit.ollama_names import check_model_name
from modelkit.ollama_params import check_parameters

Progress = Callable[[str, int | None, int | None], None]
"""Called with a status line and, for transfers, the bytes done and the bytes in all."""

DEFAULT_HOST = "http://127.0.0.1:11434"
CHUNK = 1 << 20
BLOB_DIGEST = re.compile(r"sha256[-:]([0-9a-fA-F]{64})")


class OllamaUnavailable(ModelkitError):
    """Ollama could not be reached; the message says what was not registered and how to do it later.

    It is "soft": the build goes on with everything else and the target stays stale for next time.
    """

    soft = True

    def __init__(self, host: str, detail: str, model: str | None = None, modelfile: Path | None = None) -> None:
        self.host, self.detail, self.model, self.modelfile = host, detail, model, modelfile
        what = f"{model} was not registered" if model else "nothing was registered"
        later = f", or register it by hand: {register_later_hint(model, modelfile)}" if model and modelfile else ""
        super().__init__(
            f"Ollama is not reachable at {host} ({detail}); {what}. Start it with `ollama serve` "
            f"(or set OLLAMA_HOST to a running server) and run `modelkit build` again{later}"
        )


class OllamaRefused(UserError):
    """Ollama understood a request and refused it (a bad template, an adapter it cannot apply, …)."""


@dataclass(frozen=True)
class ModelContent:
    """Everything one registered model is made of. A ``None`` template leaves the choice to Ollama
    (it picks one matching the GGUF's chat template), and is then not compared for freshness.

    ``parameters`` are checked and normalised with :func:`~modelkit.ollama_params.check_parameters`
    before use, so the same spec always produces the same request.
    """

    gguf: Path
    adapters: tuple[Path, ...] = ()
    template: str | None = None
    system: str | None = None
    parameters: Mapping[str, object] = field(default_factory=dict)
    messages: tuple[tuple[str, str], ...] = ()
    license: tuple[str, ...] = ()

    def to_modelfile(self, header: str = "", base_dir: Path | None = None, requires: str | None = None) -> Modelfile:
        """The Modelfile that registers this content through ``ollama create -f``.

        With ``base_dir`` (the Modelfile's folder) paths are written relative to it, which Ollama
        resolves against that folder, so the project can move; otherwise they are absolute.
        """

        def where(path: Path) -> str:
            resolved = Path(path).resolve()
            return str(resolved) if base_dir is None else os.path.relpath(resolved, Path(base_dir).resolve())

        return Modelfile(
            from_=where(self.gguf),
            adapters=tuple(where(a) for a in self.adapters),
            template=self.template,
            system=self.system,
            parameters=tuple(checked_parameters(self.parameters).items()),
            messages=self.messages,
            license=self.license,
            requires=requires,
            header=header,
        )


def register_later_hint(model: str, modelfile: Path | None = None) -> str:
    """The command a user can run later to register ``model`` by hand."""
    if modelfile is None:
        return f"run `modelkit build` once Ollama is running to register {model}"
    return shlex.join(["ollama", "create", model, "-f", str(modelfile)])


def server_version(*, host: str | None = None, timeout: float = 10.0) -> str:
    """Ollama's version, which also proves it is reachable; raises :class:`OllamaUnavailable`."""
    return ping(make_client(host, timeout), shown_host(host), None)


def unregister(model: str, *, host: str | None = None, timeout: float = 30.0) -> bool:
    """Delete ``model`` from Ollama; ``False`` if it was not there."""
    name = checked_name(model)
    client = make_client(host, timeout)
    try:
        client.delete(name)
    except ollama.ResponseError as e:
        if e.status_code == 404:
            return False
        raise StepError(f"Ollama could not delete {name}: {e.error}") from None
    except (ConnectionError, httpx.TransportError) as e:
        raise OllamaUnavailable(shown_host(host), describe(e), name) from None
    return True


def file_digest(path: Path) -> str:
    """``sha256:<hex>`` of a file, read in 1 MiB pieces."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return f"sha256:{h.hexdigest()}"


def normal_digest(digest: str) -> str:
    """``sha256:<hex>`` from ``sha256:<hex>``, ``sha256-<hex>`` or a bare hex digest."""
    match = BLOB_DIGEST.fullmatch(digest) or re.fullmatch(r"([0-9a-fA-F]{64})", digest)
    if not match:
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return f"sha256:{match.group(1).lower()}"


def known_digests(digests: Mapping[Path, str] | None) -> dict[Path, str]:
    """The caller's digests, keyed by resolved path, normalised."""
    return {Path(p).resolve(): normal_digest(d) for p, d in (digests or {}).items()}


def make_client(host: str | None, timeout: float) -> ollama.Client:
    """The official client; connecting fails fast, reading may wait ``timeout`` between bytes."""
    return ollama.Client(host=host, timeout=httpx.Timeout(timeout, connect=10.0))


def shown_host(host: str | None) -> str:
    """Where Ollama is, for messages: the given host, else ``OLLAMA_HOST``, else the default."""
    return host or os.environ.get("OLLAMA_HOST") or DEFAULT_HOST


def ping(client: ollama.Client, host: str, model: str | None) -> str:
    """``GET /api/version``: proves Ollama is there and answers like Ollama, before any upload."""
    try:
        reply = client._request_raw("GET", "/api/version", timeout=10.0).json()
    except (ConnectionError, httpx.TransportError) as e:
        raise OllamaUnavailable(host, describe(e), model) from None
    except ollama.ResponseError as e:
        raise StepError(f"{host} does not answer like Ollama ({e})") from None
    except ValueError:
        raise StepError(f"{host} does not answer like Ollama (no JSON from /api/version)") from None
    version = reply.get("version") if isinstance(reply, dict) else None
    if not isinstance(version, str):
        raise StepError(f"{host} does not answer like Ollama (no version in /api/version)")
    return version


def describe(error: BaseException) -> str:
    """A short reason for a transport failure."""
    if isinstance(error, ConnectionError) and str(error).startswith("Failed to connect"):
        return "connection refused"
    text = str(error) or type(error).__name__
    return text.splitlines()[0]


def checked_name(model: str) -> str:
    """``model`` if Ollama would accept it, else a :class:`UserError` saying which part is wrong."""
    try:
        return check_model_name(model)
    except ValueError as e:
        raise UserError(str(e)) from None


def checked_parameters(params: Mapping[str, object]) -> dict[str, object]:
    """The parameters normalised, or a :class:`UserError` naming the bad one."""
    try:
        return check_parameters(params)
    except ValueError as e:
        raise UserError(f"ollama.parameters: {e}") from None


def checked_messages(messages: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    """The messages as Ollama takes them, or a :class:`UserError` for a role the Modelfile cannot
    express (Ollama would also lowercase a role, and then never match what was asked for)."""
    out = []
    for i, (role, text) in enumerate(messages):
        if role not in MESSAGE_ROLES:
            raise UserError(f"ollama.messages[{i}]: role {role!r} must be one of {', '.join(MESSAGE_ROLES)}")
        out.append({"role": role, "content": text})
    return out


def ignore_progress(status: str, done: int | None, total: int | None) -> None:
    """The progress callback used when the caller gives none."""
