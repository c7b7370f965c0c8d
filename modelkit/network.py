"""What went wrong talking to a server (the Hub, a registry), said in one line with what to do.

huggingface_hub, fsspec and the ollama client raise their HTTP stack's own exceptions (httpx's,
requests', the ``ssl`` and ``socket`` modules'), wrapped or not, for the same few failures: the
connection was refused, the name did not resolve, TLS failed, the server did not answer in time,
or it answered with an error status. :func:`failure` names which, so every command that reaches a
server reports it the same way instead of a traceback.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

HUB_TIMEOUT = "MODELKIT_HUB_TIMEOUT"
"""Seconds to wait for the Hub to connect or to send the next bytes (default 60)."""


@dataclass(frozen=True)
class Failure:
    """A failure to talk to a server: what happened, and what the user can do about it."""

    what: str
    advice: str

    def __str__(self) -> str:
        return f"{self.what}: {self.advice}"


def failure(error: BaseException) -> Failure | None:
    """The network failure ``error`` is (or wraps), or None when it is something else."""
    chain = _chain(error)
    for check in (_status_failure, _transport_failure):  # a status anywhere in the chain says most
        for cause in chain:
            found = check(cause)
            if found is not None:
                return found
    return None


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and the exceptions it was raised from (a library wraps its HTTP stack's)."""
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _status_failure(error: BaseException) -> Failure | None:
    """An answer with an error status that is the server's problem, not the request's."""
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    if not isinstance(status, int):
        return None
    if status == 429:
        return Failure("it is limiting how often it may be asked (429 Too Many Requests)",
                       "wait a few minutes and try again")
    if status >= 500:
        return Failure(f"it failed on its side ({status})", "it may be down or overloaded: try again later")
    return None


_TRANSPORT = (
    (("name or service not known", "nodename nor servname", "temporary failure in name resolution",
      "no address associated", "getaddrinfo failed", "name resolution"),
     "its name does not resolve (DNS)", "check the address and the network"),
    (("certificate", "ssl", "tls", "wrong version number"),
     "the secure connection (TLS) failed", "check the address (https:// for a plain-HTTP server?) and the "
                                           "system's certificates (SSL_CERT_FILE, a proxy's own certificate)"),
    (("connection refused",), "the connection was refused", "check the address, and that the server is running"),
    (("timed out", "timeout"), "it did not answer in time",
     f"try again; on a slow network set {HUB_TIMEOUT} to more seconds"),
)


def _transport_failure(error: BaseException) -> Failure | None:
    """A failure below HTTP: refused, no such host, TLS, timeout, a connection cut."""
    import socket
    import ssl

    if not isinstance(error, (ConnectionError, socket.gaierror, TimeoutError, ssl.SSLError)) \
            and not _is_http_stack_error(error):
        return None
    text = f"{type(error).__name__} {error}".lower()
    for needles, what, advice in _TRANSPORT:
        if any(n in text for n in needles):
            return Failure(what, advice)
    first = (str(error).splitlines() or [type(error).__name__])[0][:160]
    return Failure(f"the connection failed ({type(error).__name__}: {first})", "check the address and the network")


# The transport errors of the HTTP stacks the clients use: httpx (ollama, huggingface_hub 1.x),
# httpx2 (huggingface_hub 2.x), requests (huggingface_hub before 1.0). A stack not imported raised nothing.
_HTTP_STACK_ERRORS = (("httpx", "TransportError"), ("httpx2", "TransportError"),
                      ("requests", "ConnectionError"), ("requests", "Timeout"))


def _is_http_stack_error(error: BaseException) -> bool:
    """Whether ``error`` is a transport error of one of the HTTP stacks the clients use."""
    for module, name in _HTTP_STACK_ERRORS:
        stack = sys.modules.get(module)
        if stack is not None and isinstance(error, getattr(stack, name)):
            return True
    return False


def hub_timeout() -> float:
    """Seconds the Hub may take to connect or send the next bytes (``$MODELKIT_HUB_TIMEOUT``)."""
    try:
        return max(0.1, float(os.environ.get(HUB_TIMEOUT, "60")))
    except ValueError:
        from modelkit.errors import UserError

        raise UserError(f"{HUB_TIMEOUT}={os.environ[HUB_TIMEOUT]!r}: give a number of seconds") from None


def use_hub_timeout() -> None:
    """Make huggingface_hub's requests give up after :func:`hub_timeout` seconds without an answer
    (its own default is to wait forever), keeping its client as it is otherwise."""
    import huggingface_hub

    set_factory = getattr(huggingface_hub, "set_client_factory", None)
    if set_factory is None:  # huggingface_hub before 1.0 (requests) has its own timeouts
        return
    from huggingface_hub.utils._http import default_client_factory

    seconds = hub_timeout()

    def client() -> Any:
        made = default_client_factory()
        made.timeout = type(made.timeout)(seconds)  # its own stack's Timeout: httpx's or httpx2's
        return made

    set_factory(client)
