"""Where Ollama is and whether it answers: the same address as the official client, no client loaded for a closed port."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading

import pytest
from ollama._client import _parse_host

from modelkit.ollama.host import endpoint
from modelkit.ollama.reachability import Reachability
from tests.ollama.ollama_fixtures import free_port_host

FORMS = ["", "1.2.3.4", ":56789", "1.2.3.4:56789", "http://1.2.3.4", "https://1.2.3.4", "https://1.2.3.4:56789",
         "example.com", "example.com:56789", "http://example.com", "https://example.com:56789", "example.com/",
         "example.com/path", "https://example.com:56789/path/", "[0001:002:003:0004::1]",
         "[0001:002:003:0004::1]:56789", "http://[0001:002:003:0004::1]", "https://[::1]", "0.0.0.0"]


@pytest.mark.parametrize("host", FORMS)
def test_the_address_is_the_one_the_official_client_connects_to(host: str) -> None:
    official = _parse_host(host).split("://", 1)[1].split("/", 1)[0]
    name, port = endpoint(host)
    assert official == (f"[{name}]:{port}" if ":" in name else f"{name}:{port}")


def test_without_a_host_it_is_where_ollama_host_points(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "example.com:1234")
    assert endpoint(None) == ("example.com", 1234)
    monkeypatch.delenv("OLLAMA_HOST")
    assert endpoint(None) == ("127.0.0.1", 11434)


def test_a_closed_port_is_known_without_loading_the_client() -> None:
    code = ("import sys; from modelkit.ollama.reachability import Reachability; r = Reachability(); "
            f"print(r.problem({free_port_host()!r}), r.known_problem({free_port_host()!r}), 'ollama' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[:2] == ["connection", "refused"] and out[-1] == "False"


def hang_up_on_everyone(server: socket.socket) -> None:
    """Accept each connection (the socket probe's, then the client's) and close it at once, until
    the server is shut down: the client is answered by a hang-up, not left to its timeout."""
    while True:
        try:
            server.accept()[0].close()
        except OSError:  # the test shut the server down
            return


def test_a_server_that_listens_but_is_not_ollama_is_asked_through_the_client() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        hang_up = threading.Thread(target=hang_up_on_everyone, args=(server,), daemon=True)
        hang_up.start()
        problem = Reachability().problem(f"127.0.0.1:{server.getsockname()[1]}")
        server.shutdown(socket.SHUT_RDWR)  # wakes the accept() the thread waits in
        hang_up.join(timeout=10)
    assert problem is not None and problem != "connection refused"
