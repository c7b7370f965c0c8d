"""Which Ollama servers answer, remembered for one build, and asked without the HTTP client when nothing listens.

One refused connection is enough to know that the other variants cannot be registered either,
without waiting on each. A plain socket finds a server that is not there (the common case for
``modelkit plan`` and builds on a machine without Ollama) in microseconds; the official client,
whose import alone costs a no-op build more than half its time, is loaded only to talk to one.
"""

from __future__ import annotations

import socket

from modelkit.errors import OllamaUnavailable
from modelkit.ollama.host import endpoint, shown_host


def refuses_connections(host: str | None) -> bool:
    """Whether nothing listens where ``host`` points (any other failure, such as a name that does
    not resolve, is left to the client, which says what it was)."""
    try:
        with socket.create_connection(endpoint(host), timeout=5.0):
            return False
    except ConnectionRefusedError:
        return True
    except (OSError, ValueError):
        return False


class Reachability:
    """Which Ollama servers answered during one build (a new build asks again)."""

    def __init__(self) -> None:
        self._unreachable: dict[str, str] = {}
        self._reachable: set[str] = set()

    def problem(self, host: str | None) -> str | None:
        """Why ``host`` cannot be reached (asking it once), or None when it answers."""
        shown = shown_host(host)
        if shown not in self._unreachable and shown not in self._reachable:
            if refuses_connections(host):
                self._unreachable[shown] = "connection refused"
                return self._unreachable[shown]
            from modelkit.ollama.client import server_version

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
