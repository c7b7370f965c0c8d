"""Pushing registered variants to Ollama's registry (``ollama push``), through the official client.

Ollama pushes only models named for the registry (``namespace/model:tag``), so each local variant
is first copied to that name (``/api/copy``: a new manifest over the same blobs, nothing rewritten),
then pushed (``/api/push``), whose streamed status lines carry the digest, total and completed
bytes of each layer: they become the progress line. The server does the upload; a registry it
cannot reach (its error says ``dial tcp``, ``no such host``, ...) defers the push like an
unreachable Ollama defers a registration: :class:`RegistryUnavailable`, and the next
``modelkit publish`` tries again. A registry that refuses the namespace is a one-line error.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import ollama

from modelkit.core.process import Progress, ignore_progress
from modelkit.errors import OllamaRefused, OllamaUnavailable, RegistryUnavailable, StepError
from modelkit.ollama.client import describe, make_client, ping
from modelkit.ollama.host import shown_host

_UNREACHABLE = ("dial tcp", "no such host", "connection refused", "i/o timeout", "network is unreachable",
                "tls handshake timeout", "context deadline exceeded", "connection reset")
_REFUSED = ("unauthorized", "not authorized", "permission denied", "forbidden", "public key")


@dataclass(frozen=True)
class Pushed:
    """One variant pushed: the local model, its registry name, the bytes the server sent."""

    source: str
    name: str
    bytes: int


def push_all(pairs: list[tuple[str, str]], *, host: str | None = None, progress: Progress | None = None,
             timeout: float = 3600.0, insecure: bool = False) -> list[Pushed]:
    """Copy each local model to its registry name and push it (``insecure``: over plain HTTP);
    all or a :class:`RegistryUnavailable` naming what was not pushed."""
    report = progress or ignore_progress
    where = shown_host(host)
    client = make_client(host, timeout)
    try:
        ping(client, where, None)
    except OllamaUnavailable as e:
        raise RegistryUnavailable(f"Ollama at {where}", e.detail, pairs) from None
    done: list[Pushed] = []
    for i, (source, name) in enumerate(pairs):
        try:
            done.append(_push_one(client, source, name, report, insecure))
        except RegistryUnavailable as e:
            raise RegistryUnavailable(e.where, e.detail, pairs[i:]) from None
    return done


def _push_one(client: ollama.Client, source: str, name: str, report: Progress, insecure: bool) -> Pushed:
    try:
        if source != name:
            client.copy(source, name)
        sent = _stream(client, name, report, insecure)
    except ollama.ResponseError as e:
        raise _classify(e.error, e.status_code, source, name) from None
    except (ConnectionError, httpx.TransportError) as e:
        raise RegistryUnavailable("Ollama", describe(e), [(source, name)]) from None
    return Pushed(source, name, sent)


def _stream(client: ollama.Client, name: str, report: Progress, insecure: bool) -> int:
    """Push ``name``, turning the status lines into progress; the layer bytes the server reported."""
    layers: dict[str, int] = {}
    done: dict[str, int] = {}
    status = ""
    for event in client.push(name, insecure=insecure, stream=True):
        status = event.status or status
        if event.digest and event.total:
            layers[event.digest] = event.total
            done[event.digest] = event.completed or 0
            total = sum(layers.values())
            report(sum(done.values()) / total if total else None, f"{name}: {status}")
        else:
            report(None, f"{name}: {status}")
    if status != "success":
        raise StepError(f"pushing {name}: Ollama ended without saying success (last: {status or 'nothing'})")
    return sum(layers.values())


def _classify(message: str, status: int, source: str, name: str) -> Exception:
    text = message.lower()
    if status == 404 and "not found" in text:
        return OllamaRefused(f"{source} is not registered with Ollama ({message}): run `modelkit build` first")
    if any(s in text for s in _UNREACHABLE):
        return RegistryUnavailable("Ollama's registry", message.splitlines()[0], [(source, name)])
    if status in (401, 403) or any(s in text for s in _REFUSED):
        return OllamaRefused(f"the registry refused {name} ({message.splitlines()[0]}): push to a namespace "
                             "you own, with this Ollama's key added to your ollama.com account")
    return StepError(f"pushing {name} failed: {message.splitlines()[0] if message else status}")
