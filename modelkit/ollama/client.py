"""The official ``ollama`` client, set up the same way everywhere, and where the server is.

The client reads ``OLLAMA_HOST`` itself when no host is given, so modelkit never second-guesses
where Ollama is; the host is only spelled out here for messages. :class:`Reachability` remembers,
for one build, which servers answered: one refused connection is enough to know that the other
variants cannot be registered either, without waiting on each.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import ollama

from modelkit.errors import OllamaUnavailable, StepError

DEFAULT_SERVER = "http://127.0.0.1:11434"
"""Where Ollama listens when neither the spec nor ``OLLAMA_HOST`` says otherwise."""


def make_client(host: str | None, timeout: float) -> ollama.Client:
    """The official client; connecting fails fast, reading may wait ``timeout`` between bytes."""
    return ollama.Client(host=host, timeout=httpx.Timeout(timeout, connect=10.0))


def shown_host(host: str | None) -> str:
    """Where Ollama is, for messages: the given host, else ``OLLAMA_HOST``, else the default."""
    return host or os.environ.get("OLLAMA_HOST") or DEFAULT_SERVER


def ping(client: ollama.Client, host: str, model: str | None) -> str:
    """``GET /api/version``: proves Ollama is there and answers like Ollama, before any upload."""
    try:
        reply = raw_request(client, "GET", "/api/version", timeout=10.0).json()
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


def server_version(*, host: str | None = None, timeout: float = 10.0) -> str:
    """Ollama's version, which also proves it is reachable; raises :class:`OllamaUnavailable`."""
    return ping(make_client(host, timeout), shown_host(host), None)


def describe(error: BaseException) -> str:
    """A short reason for a transport failure."""
    if isinstance(error, ConnectionError) and str(error).startswith("Failed to connect"):
        return "connection refused"
    text = str(error) or type(error).__name__
    return text.splitlines()[0]


class Reachability:
    """Which Ollama servers answered during one build (a new build asks again)."""

    def __init__(self) -> None:
        self._unreachable: dict[str, str] = {}
        self._reachable: set[str] = set()

    def problem(self, host: str | None) -> str | None:
        """Why ``host`` cannot be reached (asking it once), or None when it answers."""
        shown = shown_host(host)
        if shown not in self._unreachable and shown not in self._reachable:
            try:
                server_version(host=host, timeout=5.0)
                self._reachable.add(shown)
            except OllamaUnavailable as e:
                self._unreachable[shown] = e.detail
        return self._unreachable.get(shown)

    def known_problem(self, host: str | None) -> str | None:
        """Why ``host`` was found unreachable earlier in this build, without asking again."""
        return self._unreachable.get(shown_host(host))

    def lost(self, error: OllamaUnavailable) -> None:
        """Remember that a server stopped answering in the middle of the build."""
        self._unreachable[error.host] = error.detail
        self._reachable.discard(error.host)


def raw_request(client: ollama.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A request the official client has no method for (blobs, version, show as it answers it)."""
    response: httpx.Response = client._request_raw(method, path, **kwargs)  # type: ignore[no-untyped-call]  # untyped upstream
    return response
