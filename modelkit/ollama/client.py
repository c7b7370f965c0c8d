"""The official ``ollama`` client, set up the same way everywhere.

The client reads ``OLLAMA_HOST`` itself when no host is given, so modelkit never second-guesses
where Ollama is; the host is only spelled out for messages (:func:`~.reachability.shown_host`).
"""

from __future__ import annotations

from typing import Any

import httpx
import ollama

from modelkit.errors import OllamaUnavailable, StepError
from modelkit.ollama.host import shown_host


def make_client(host: str | None, timeout: float) -> ollama.Client:
    """The official client; connecting fails fast, reading may wait ``timeout`` between bytes."""
    return ollama.Client(host=host, timeout=httpx.Timeout(timeout, connect=10.0))


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


def raw_request(client: ollama.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A request the official client has no method for (blobs, version, show as it answers it)."""
    response: httpx.Response = client._request_raw(method, path, **kwargs)  # type: ignore[no-untyped-call]  # untyped upstream
    return response
