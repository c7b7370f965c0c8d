"""Where an Ollama server is: the host a spec or ``OLLAMA_HOST`` names, read as Ollama reads it."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

DEFAULT_SERVER = "http://127.0.0.1:11434"
"""Where Ollama listens when neither the spec nor ``OLLAMA_HOST`` says otherwise."""
OLLAMA_PORT = 11434
SCHEME_PORTS = {"http": 80, "https": 443}


def shown_host(host: str | None) -> str:
    """Where Ollama is, for messages: the given host, else ``OLLAMA_HOST``, else the default."""
    return host or os.environ.get("OLLAMA_HOST") or DEFAULT_SERVER


def endpoint(host: str | None) -> tuple[str, int]:
    """The address the official client connects to for ``host`` (``OLLAMA_HOST`` when None), in
    every form Ollama accepts: ``name``, ``name:port``, ``:port``, ``scheme://name[:port][/path]``,
    bracketed IPv6; a port left out is 11434, or the scheme's when a scheme is given."""
    text = host if host is not None else os.environ.get("OLLAMA_HOST", "")
    scheme, separator, rest = text.partition("://")
    port = SCHEME_PORTS.get(scheme, OLLAMA_PORT) if separator else OLLAMA_PORT
    split = urlsplit(f"{scheme}://{rest}" if separator else f"http://{text}")
    return split.hostname or "127.0.0.1", split.port or port
