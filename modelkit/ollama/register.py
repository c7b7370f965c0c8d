"""Registering built variants as Ollama models through Ollama's HTTP API.

Each GGUF is offered to Ollama as a blob named by its sha256: a ``HEAD`` first, so nothing
Ollama already holds is sent again, then a ``POST`` of the bytes, which Ollama checks against the
digest. ``/api/create`` then builds the model from those digests plus template, system prompt,
parameters, messages and license, streaming its progress. All requests go through the official
``ollama`` client, which honours ``OLLAMA_HOST``.

Ollama since 0.30 keeps a re-encoded copy of a GGUF as the model layer, under another digest,
and ``ollama serve`` prunes the uploaded original when it next starts. So the caller passes what
it learnt last time (``held``: our digest -> the digest of the server's copy): when the server
still holds that copy (``HEAD``), the model is created from it and nothing is uploaded, also
after a restart. After create, :func:`register` records what the server now reports (a
:class:`~modelkit.ollama.freshness.ServerCopy`), which later decides whether it is still fresh.

Blob uploads are repeated when they fail in a way that may pass (they are idempotent by digest,
and a lost reply is detected by asking again); the create request is not repeated, and a failure
there is an error. :func:`register` returns only after Ollama said ``success``, so a registration
is never claimed that Ollama did not finish.

The client has no public call for ``HEAD /api/blobs`` or for sending a blob whose digest is
already known (its ``create_blob`` rereads the file to hash it), so those two requests go through
the client's own request method, which still applies its host, headers and error mapping.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import ollama
from ollama._types import CreateRequest, ProgressResponse  # the official client's own request and reply models

from modelkit.core.hashing import sha256_file
from modelkit.core.process import Progress, ignore_progress
from modelkit.errors import ModelkitError, OllamaRefused, OllamaUnavailable, StepError, UserError
from modelkit.ollama.client import describe, make_client, ping, raw_request
from modelkit.ollama.content import (
    ModelContent,
    checked_messages,
    checked_name,
    checked_parameters,
    checked_template,
    known_digests,
)
from modelkit.ollama.freshness import ServerCopy, held_copy
from modelkit.ollama.host import shown_host

_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_CHUNK = 1 << 20


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and how patiently, to repeat requests that are safe to repeat."""

    attempts: int = 4
    first_delay: float = 0.5
    max_delay: float = 8.0

    def delays(self) -> Iterator[float]:
        """The wait before each repeat: doubling from ``first_delay``, capped at ``max_delay``."""
        delay = self.first_delay
        for _ in range(self.attempts - 1):
            yield delay
            delay = min(delay * 2, self.max_delay)


@dataclass(frozen=True)
class RegistrationResult:
    """What :func:`register` did: the blobs it sent, those Ollama already had, what Ollama said,
    and what it holds now (``copy``; ``held`` maps each file's digest to the server's copy)."""

    model: str
    host: str
    uploaded: tuple[str, ...]
    reused: tuple[str, ...]
    statuses: tuple[str, ...]
    copy: ServerCopy
    held: dict[str, str]


def register(
    model: str,
    content: ModelContent,
    *,
    host: str | None = None,
    progress: Progress | None = None,
    digests: Mapping[Path, str] | None = None,
    held: Mapping[str, str] | None = None,
    retry: RetryPolicy = RetryPolicy(),
    timeout: float = 300.0,
) -> RegistrationResult:
    """Make Ollama hold ``model`` (``name:tag``) with ``content``; return once Ollama says success.

    ``digests`` maps files to sha256 digests the caller already knows (its stat cache), so big
    GGUFs are not read again; ``held`` maps a file's digest to the server's copy of it, as an
    earlier registration reported. Raises :class:`UserError` for a bad name, parameter or missing
    file (before contacting Ollama), :class:`OllamaUnavailable` when Ollama cannot be reached,
    :class:`OllamaRefused` when it refuses the model, :class:`StepError` for other failures.
    """
    report = progress or ignore_progress
    name = checked_name(model)
    checked_template(name, content.template)
    params = checked_parameters(content.parameters)
    messages = checked_messages(content.messages)
    files = _checked_files(name, content)
    host_shown = shown_host(host)
    client = make_client(host, timeout)
    version = ping(client, host_shown, name)
    report(None, f"Ollama {version} at {host_shown}")

    ours = _file_digests(files, digests, report)
    sent: dict[Path, str] = {}
    uploaded: list[str] = []
    reused: list[str] = []
    for path, digest in ours.items():
        theirs = (held or {}).get(digest)
        if theirs and _holds(client, theirs):
            report(1.0, f"{path.name}: Ollama holds its copy {theirs[7:19]}")
            sent[path] = theirs
            reused.append(digest)
            continue
        was_sent = _ensure_blob(client, path, digest, report, retry, host_shown, name)
        (uploaded if was_sent else reused).append(digest)
        sent[path] = digest
    models = files[:2] if content.projector is not None else files[:1]  # the model, then its projector
    statuses = _create(client, name, files={blob_name(path): sent[path] for path in models},
                       adapters={blob_name(path): sent[path] for path in files[len(models):]} or None,
                       content=content, params=params, messages=messages, report=report, host_shown=host_shown)
    copy = held_copy(name, host=host)
    if copy is None:
        raise StepError(f"Ollama said success for {name}, then did not show it; it was not registered")
    server = [*copy.model_blobs, *copy.adapter_blobs]
    held_now = dict(zip(ours.values(), server)) if len(ours) == len(server) else {}
    return RegistrationResult(name, host_shown, tuple(uploaded), tuple(reused), tuple(statuses), copy, held_now)


def _checked_files(name: str, content: ModelContent) -> list[Path]:
    if len(content.adapters) > 1:
        raise UserError(f"{name}: Ollama applies one LoRA adapter per model, {len(content.adapters)} were given")
    projector = [Path(content.projector)] if content.projector else []
    files = [Path(content.gguf), *projector, *map(Path, content.adapters)]
    missing = [path for path in files if not path.is_file()]
    if missing:
        raise UserError(f"{name}: {missing[0]} does not exist; build it before registering")
    return files


def _file_digests(files: list[Path], digests: Mapping[Path, str] | None, report: Progress) -> dict[Path, str]:
    known = known_digests(digests)
    out = {}
    for path in files:
        digest = known.get(path.resolve())
        if digest is None:
            report(None, f"hashing {path.name}")
            digest = sha256_file(path)
        out[path] = digest
    return out


def blob_name(path: Path) -> str:
    """The file name Ollama is given for a blob: a plain relative name ending in ``.gguf``, which
    is how Ollama tells a GGUF (it refuses absolute paths, ``\\`` and ``:`` in these names)."""
    base = re.sub(r"[^A-Za-z0-9._-]", "_", Path(path).name).lstrip(".") or "model"
    return base if base.lower().endswith(".gguf") else base + ".gguf"


def _ensure_blob(
    client: ollama.Client,
    path: Path,
    digest: str,
    report: Progress,
    retry: RetryPolicy,
    host_shown: str,
    model: str,
) -> bool:
    """Make sure Ollama holds ``path`` as ``digest``; ``True`` if it had to be sent."""
    size = path.stat().st_size
    label = f"{path.name} ({digest[7:19]})"
    delays = retry.delays()
    failure: BaseException | None = None
    while True:
        try:
            if _blob_exists(client, digest):
                if failure is None:
                    report(1.0, f"{label} already in Ollama")
                    return False
                report(1.0, f"uploaded {label}")  # an earlier attempt landed; its reply was lost
                return True
            report(0.0, f"uploading {label}")
            raw_request(client,
                "POST",
                f"/api/blobs/{digest}",
                content=_read_chunks(path, lambda done: report(done / size if size else 1.0, f"uploading {label}")),
                headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
            )
            report(1.0, f"uploaded {label}")
            return True
        except ollama.ResponseError as e:
            if e.status_code not in _RETRYABLE_STATUS:
                raise _upload_refused(path, digest, e) from None
            failure = e
        except (ConnectionError, httpx.TransportError) as e:
            failure = e
        delay = next(delays, None)
        if delay is None:
            if isinstance(failure, (ConnectionError, httpx.ConnectError, httpx.ConnectTimeout)):
                raise OllamaUnavailable(host_shown, describe(failure), model) from None
            raise StepError(
                f"uploading {path} to Ollama failed {retry.attempts} times (last: {describe(failure)}); "
                f"{model} was not registered"
            ) from None
        report(None, f"uploading {label} failed ({describe(failure)}); trying again")
        time.sleep(delay)


def _upload_refused(path: Path, digest: str, e: ollama.ResponseError) -> ModelkitError:
    if "digest mismatch" in str(e.error):
        return StepError(
            f"Ollama received different bytes for {path} than its sha256 {digest}: the file changed "
            "after it was hashed or while it was sent; rebuild it and register again"
        )
    return StepError(f"Ollama refused the upload of {path}: {e.error} (HTTP {e.status_code})")


def _holds(client: ollama.Client, digest: str) -> bool:
    """Whether the server holds a blob, for a copy it made earlier; any failure to tell is "no"
    (the file itself is then offered, with all of :func:`_ensure_blob`'s care)."""
    try:
        return _blob_exists(client, digest)
    except (ollama.ResponseError, ConnectionError, httpx.TransportError):
        return False


def _blob_exists(client: ollama.Client, digest: str) -> bool:
    try:
        raw_request(client, "HEAD", f"/api/blobs/{digest}")
    except ollama.ResponseError as e:
        if e.status_code == 404:
            return False
        raise
    return True


def _read_chunks(path: Path, on_progress: Callable[[int], None]) -> Iterator[bytes]:
    done = 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            done += len(chunk)
            yield chunk
            on_progress(done)


def _create_stream(client: ollama.Client, body: dict[str, Any], content: ModelContent) -> Iterator[ProgressResponse]:
    """``client.create``'s request and stream, plus the fields the official client does not
    take yet (``renderer``, ``parser``, ``requires``: Ollama's ``api.CreateRequest`` has them)."""
    extra = {"renderer": content.renderer, "parser": content.parser, "requires": content.requires}
    body.update({k: v for k, v in extra.items() if v is not None})
    stream: Iterator[ProgressResponse] = client._request(
        ProgressResponse, "POST", "/api/create", json=body, stream=True)
    return stream


def _create(
    client: ollama.Client,
    name: str,
    *,
    files: dict[str, str],
    adapters: dict[str, str] | None,
    content: ModelContent,
    params: dict[str, object],
    messages: list[dict[str, str]],
    report: Progress,
    host_shown: str,
) -> list[str]:
    statuses: list[str] = []
    try:
        stream = _create_stream(client, CreateRequest(
            model=name,
            files=files,
            adapters=adapters,
            template=content.template,
            system=content.system or None,
            license=list(content.license) or None,
            parameters=params or None,
            messages=messages or None,
            stream=True,
        ).model_dump(exclude_none=True), content)
        for part in stream:
            status = part.status or ""
            statuses.append(status)
            report(part.completed / part.total if part.completed is not None and part.total else None, status)
    except ollama.ResponseError as e:
        raise _create_refused(name, e) from None
    except ConnectionError as e:
        raise OllamaUnavailable(host_shown, describe(e), name) from None
    except httpx.TransportError as e:
        ping(client, host_shown, name)  # gone altogether: deferred, as if it had not been running
        raise StepError(
            f"lost the connection to Ollama while it was creating {name} ({describe(e)}); Ollama may or may "
            "not hold the new model now: the next build asks it, and registers again if needed"
        ) from None
    if not statuses or statuses[-1] != "success":
        last = statuses[-1] if statuses else "nothing"
        raise StepError(f"Ollama stopped creating {name} without saying success (last: {last}); it was not registered")
    return statuses


def _create_refused(name: str, e: ollama.ResponseError) -> ModelkitError:
    message = str(e.error)
    lowered = message.lower()
    if "adapter" in lowered:
        return OllamaRefused(
            f"Ollama refused the LoRA adapter of {name}: {message}. Merge it into the model instead "
            "([ollama] lora = \"merge\", the default)"
        )
    if 400 <= e.status_code < 500 or "template" in lowered or "invalid model name" in lowered:
        return OllamaRefused(f"Ollama refused to create {name}: {message}")
    return StepError(f"Ollama failed to create {name}: {message}")
