"""Prove the native path: what llama.cpp's own Jinja engine renders, as Ollama asks it, against the reference.

Today's Ollama renders a model whose GGUF's Jinja can do more than the Modelfile's TEMPLATE (tools,
thinking) with that Jinja, through its runner, llama-server: it converts the conversation
(``llamaServerChatRequest`` in Ollama's ``llm/llama_server.go``: role, content, ``tool_calls``
with their arguments as a JSON string, ``tool_call_id``, the tool's ``name``, ``tools`` as it
holds them, ``chat_template_kwargs.enable_thinking`` for ``think``; earlier reasoning is not
sent) and llama-server renders it. llama-server's ``/apply-template`` answers the prompt it
would complete for the same body, so :func:`prove_native` sends each conversation of the battery
that way (:func:`ollama_native_body`) and compares with ``apply_chat_template`` in the sandbox
(:mod:`..reference`), as :func:`.prove.prove` compares the Go TEMPLATE. :class:`LlamaServer`
runs the toolchain's binary on a GGUF (any that loads: the template comes from ``--chat-template-file``).
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from modelkit.golang.template import Think

from .conversations import Conversation
from .prove import Proof, prove_renderer

NativeRenderer = Callable[[dict[str, Any]], str]
"""Renders a request body as llama-server would (``/apply-template``); raises :class:`NativeError`."""


class NativeError(Exception):
    """llama.cpp refused a conversation, or could not be started."""


def ollama_native_body(conv: Conversation, think: Think = None) -> dict[str, Any]:
    """The body Ollama sends its runner for ``conv`` in native chat mode (only what renders)."""
    body: dict[str, Any] = {"messages": [_native_message(m) for m in conv.messages]}
    if conv.tools:
        body["tools"] = list(conv.tools)
    if think is not None:
        body["chat_template_kwargs"] = {"enable_thinking": bool(think)}
    return body


def _native_message(message: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message["role"]}
    if message.get("tool_call_id"):
        out["tool_call_id"] = message["tool_call_id"]
    if message.get("name"):
        out["name"] = message["name"]
    if message.get("tool_calls"):
        out["tool_calls"] = [{"id": c.get("id", ""), "index": i, "type": "function",
                              "function": {"name": c["function"]["name"],
                                           "arguments": json.dumps(c["function"]["arguments"], ensure_ascii=False,
                                                                   separators=(",", ":"))}}
                             for i, c in enumerate(message["tool_calls"])]
    out["content"] = message.get("content") or ""
    return out


def prove_native(jinja_source: str, render: NativeRenderer, battery: Sequence[Conversation],
                 bos_token: str | None, eos_token: str | None, add_bos_token: bool,
                 today: date | None = None, think: Sequence[Think] | None = None) -> Proof:
    """Each conversation of ``battery`` rendered by llama.cpp (``render``, sent as Ollama sends it)
    and by the reference (:func:`.prove.prove_renderer`), with the settings of ``think`` Ollama
    produces for the model (:func:`modelkit.ollama.engine.think_states`)."""
    return prove_renderer(jinja_source, lambda conv, think: render(ollama_native_body(conv, think)), NativeError,
                          "llama.cpp", battery, bos_token, eos_token, add_bos_token, today, think)


class LlamaServer:
    """``llama-server`` on a free loopback port, rendering with ``template`` (a Jinja file's text;
    None: the GGUF's own) over ``model``'s vocabulary; a context manager whose :meth:`render` is a
    :data:`NativeRenderer`. With ``projector`` (an mmproj GGUF) it sees images: :meth:`complete`
    answers a prompt with images at its media markers, as Ollama's runner asks it."""

    def __init__(self, binary: Path, model: Path, template: str | None, log: Path | None = None,
                 projector: Path | None = None) -> None:
        self.binary, self.model, self.template, self.log = binary, model, template, log
        self.projector = projector
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self.port = 0

    def __enter__(self) -> LlamaServer:
        self._dir = tempfile.TemporaryDirectory(prefix="modelkit-native-")
        given: list[str] = []
        if self.template is not None:
            jinja = Path(self._dir.name) / "template.jinja"
            jinja.write_text(self.template, encoding="utf-8")
            given = ["--chat-template-file", str(jinja)]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        self._proc = subprocess.Popen(
            [str(self.binary), "-m", str(self.model), "--host", "127.0.0.1", "--port", str(self.port), "-c", "512",
             "-np", "1", "-t", "1", "--no-warmup", "--jinja", *given, "--no-webui",
             *(["--mmproj", str(self.projector)] if self.projector else [])],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self._wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._dir is not None:
            self._dir.cleanup()

    def _wait_ready(self, seconds: float = 120.0) -> None:
        deadline = time.monotonic() + seconds
        assert self._proc is not None
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=5) as r:
                    if r.status == 200:
                        return
            except (OSError, urllib.error.HTTPError):
                pass
            if self._proc.poll() is not None:
                raise NativeError(f"llama-server stopped at start (exit status {self._proc.returncode})"
                                  + (f": see {self.log}" if self.log else ""))
            if time.monotonic() > deadline:
                raise NativeError(f"llama-server did not answer within {seconds:.0f} s")
            time.sleep(0.05)  # polling for the model to load, bounded by the deadline

    def render(self, body: dict[str, Any]) -> str:
        return str(self._post("/apply-template", body)["prompt"])

    def complete(self, prompt: str, images: Sequence[bytes], max_tokens: int) -> str:
        """The greedy continuation of ``prompt``, where each ``[img-N]`` is replaced by the server's
        media marker and stands for ``images[N]`` (Ollama's ``llamaServerMultimodalPrompt``)."""
        marker = self._get("/props")["media_marker"]
        for index in range(len(images)):
            prompt = prompt.replace(f"[img-{index}]", marker, 1)
        body = {"prompt": {"prompt_string": prompt, "multimodal_data": [base64.b64encode(i).decode() for i in images]},
                "n_predict": max_tokens, "temperature": 0, "seed": 0, "cache_prompt": False}
        return str(self._post("/completion", body, timeout=600)["content"])

    def _get(self, path: str) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=60) as r:
                answer: dict[str, Any] = json.loads(r.read())
                return answer
        except OSError as e:
            raise NativeError(f"llama-server did not answer ({e})") from None

    def _post(self, path: str, body: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method="POST",
                                         data=json.dumps(body, ensure_ascii=False).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as r:
                answer: dict[str, Any] = json.loads(r.read())
                return answer
        except urllib.error.HTTPError as e:
            detail = e.read().decode("utf-8", "replace")
            try:
                detail = json.loads(detail)["error"]["message"]
            except (ValueError, KeyError, TypeError):
                pass
            raise NativeError(str(detail).splitlines()[0] if detail else f"HTTP {e.code}") from None
        except OSError as e:
            raise NativeError(f"llama-server did not answer ({e})") from None


__all__ = ["LlamaServer", "NativeError", "NativeRenderer", "ollama_native_body", "prove_native"]
