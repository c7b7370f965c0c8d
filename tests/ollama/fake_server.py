"""A local HTTP server that stands in for Ollama in tests (Ollama itself cannot be installed here).

It implements the part of Ollama's HTTP API that modelkit uses, following Ollama's own handlers
(``server/routes.go``: ``HeadBlobHandler``, ``CreateBlobHandler``, ``ShowHandler``,
``DeleteHandler``, ``ListHandler``; ``server/create.go``: ``CreateHandler``) and ``docs/api.md``:

* ``HEAD /api/blobs/sha256:<hex>``: 200 if held, 404 if not, 400 for a malformed digest;
* ``POST /api/blobs/sha256:<hex>``: stores the body if its sha256 matches (201), 200 if already
  held, 400 ``digest mismatch, expected …, got …`` otherwise;
* ``POST /api/create``: validates like Ollama before answering (model name, file names and
  digests, ``typical_p``, adapters), then streams NDJSON progress with chunked transfer encoding,
  ending in ``{"status": "success"}``; errors found while streaming arrive as an ``{"error": …}``
  line, as Ollama's ``streamResponse`` sends them; ``"stream": false`` gets one JSON object;
* ``POST /api/show``: license, Modelfile (printed the way Ollama prints it, blob paths first),
  parameters (Go ``%#v`` values), template, system, messages, details; 404 for an unknown model;
* ``DELETE /api/delete``, ``GET /api/tags``, ``GET /api/version``.

Model names are compared case-insensitively with Ollama's defaults filled in (``:latest``). Two
Ollama generations differ on LoRA adapters, so ``adapters`` picks one: ``"one"`` (Ollama up to
0.12 or so: one GGUF adapter per model) or ``"unsupported"`` (current Ollama: "LoRA adapters are
no longer supported"). :meth:`FakeOllama.inject` makes requests fail on purpose, the way a server
or network can mid-upload or mid-stream, for the error-path tests.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import PurePosixPath
from typing import Any

from modelkit.ollama.strconv import go_quote
from modelkit.ollama.names import parse_model_name

BLOBS_DIR = "/fake-ollama/models/blobs"
_DIGEST = re.compile(r"sha256[:-]([0-9a-fA-F]{64})\Z")


@dataclass
class StoredModel:
    name: str
    model_blob: str
    adapter_blobs: list[str]
    template: str
    system: str
    parameters: dict[str, Any]
    messages: list[dict[str, str]]
    license: list[str]
    modified_at: str


@dataclass
class Fault:
    """One way a request should fail: ``kind`` is ``status`` (answer ``status`` with an error),
    ``drop`` (close the connection after reading ``after`` body bytes, or after ``after`` stream
    lines), ``stream_error`` (send ``after`` progress lines, then an error line) or ``end`` (send
    ``after`` progress lines and end the stream cleanly, without success)."""

    method: str
    path: str
    kind: str
    times: int = 1
    status: int = 500
    after: int = 0
    message: str = "injected failure"


@dataclass
class Log:
    requests: list[tuple[str, str]] = field(default_factory=list)

    def count(self, method: str, prefix: str) -> int:
        return sum(1 for m, p in self.requests if m == method and p.startswith(prefix))


class FakeOllama:
    """Ollama's HTTP API on ``127.0.0.1`` and a free port, in a thread; use as a context manager."""

    def __init__(self, *, adapters: str = "one", version: str = "0.12.6") -> None:
        assert adapters in ("one", "unsupported")
        self.adapters_mode = adapters
        self.version = version
        self.blobs: dict[str, bytes] = {}
        self.models: dict[tuple[str, ...], StoredModel] = {}
        self.log = Log()
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeOllama:
        fake = self

        class Handler(_Handler):
            server_state = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def inject(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.method == method and path.startswith(fault.path) and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def model(self, name: str) -> StoredModel | None:
        with self.lock:
            return self.models.get(_key(name))


def _key(name: str) -> tuple[str, ...]:
    return parse_model_name(name).key()


def _valid_name(name: object) -> bool:
    if not isinstance(name, str):
        return False
    try:
        parse_model_name(name)
    except ValueError:
        return False
    return True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_state: FakeOllama

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    # --- plumbing --------------------------------------------------------------------------------

    def _record(self) -> Fault | None:
        with self.server_state.lock:
            self.server_state.log.requests.append((self.command, self.path))
        return self.server_state.take_fault(self.command, self.path)

    def _body(self, limit: int | None = None) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
                if limit is not None and len(out) >= limit:
                    return bytes(out)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length if limit is None else min(limit, length))

    def _json(self, status: int, payload: object | None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def _drop(self) -> None:
        """Vanish mid-request, as a crashed server or a cut network does."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _read_json(self) -> dict[str, Any] | None:
        raw = self._body()
        if not raw:
            self._error(400, "missing request body")
            return None
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as e:
            self._error(400, str(e))
            return None
        if not isinstance(data, dict):
            self._error(400, "json: cannot unmarshal into a request")
            return None
        return data

    # --- routes ----------------------------------------------------------------------------------

    def do_HEAD(self) -> None:
        fault = self._record()
        if fault and fault.kind == "status":
            return self._json(fault.status, None)
        if self.path.startswith("/api/blobs/"):
            digest = self.path.removeprefix("/api/blobs/")
            if not _DIGEST.match(digest):
                return self._json(400, None)
            with self.server_state.lock:
                held = _normal(digest) in self.server_state.blobs
            return self._json(200 if held else 404, None)
        if self.path in ("/", "/api/version"):
            return self._json(200, None)
        self._json(404, None)

    def do_GET(self) -> None:
        self._record()
        if self.path == "/api/version":
            return self._json(200, {"version": self.server_state.version})
        if self.path == "/api/tags":
            with self.server_state.lock:
                models = list(self.server_state.models.values())
            return self._json(200, {"models": [_tag_entry(self.server_state, m) for m in models]})
        if self.path == "/":
            data = b"Ollama is running"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return None
        self._error(404, "404 page not found")

    def do_DELETE(self) -> None:
        self._record()
        if self.path != "/api/delete":
            return self._error(404, "404 page not found")
        req = self._read_json()
        if req is None:
            return None
        name = req.get("model") or req.get("name")
        if not isinstance(name, str) or not _valid_name(name):
            return self._error(400, f"name {name!r} is invalid")
        with self.server_state.lock:
            removed = self.server_state.models.pop(_key(name), None)
        if removed is None:
            return self._error(404, f"model '{name}' not found")
        self._json(200, None)

    def do_POST(self) -> None:
        fault = self._record()
        if self.path.startswith("/api/blobs/"):
            return self._post_blob(fault)
        if self.path == "/api/create":
            return self._create(fault)
        if self.path == "/api/show":
            return self._show(fault)
        self._error(404, "404 page not found")

    def _post_blob(self, fault: Fault | None) -> None:
        digest = self.path.removeprefix("/api/blobs/")
        if fault and fault.kind == "drop":
            self._body(limit=fault.after)
            return self._drop()
        if fault and fault.kind == "status":
            self._body()
            return self._error(fault.status, fault.message)
        if not _DIGEST.match(digest):
            self._body()
            return self._error(400, "invalid digest format")
        with self.server_state.lock:
            held = _normal(digest) in self.server_state.blobs
        data = self._body()
        if held:
            return self._json(200, None)
        got = "sha256:" + hashlib.sha256(data).hexdigest()
        if got != _normal(digest):
            return self._error(400, f'digest mismatch, expected "{digest}", got "{got}"')
        with self.server_state.lock:
            self.server_state.blobs[got] = data
        self._json(201, None)

    def _create(self, fault: Fault | None) -> None:
        req = self._read_json()
        if req is None:
            return None
        if fault and fault.kind == "status":
            return self._error(fault.status, fault.message)
        state = self.server_state
        params = req.get("parameters") or {}
        if params.get("typical_p") is not None:
            return self._error(400, "typical_p is deprecated and cannot be set as a model parameter; "
                                    "pass it as a request option instead")
        for group in ("files", "adapters"):
            for file_name, digest in (req.get(group) or {}).items():
                if file_name == "." or not _valid_relative(file_name) or "\\" in file_name or ":" in file_name:
                    return self._error(400, f"file path must be relative: {file_name}")
                if not isinstance(digest, str) or not _DIGEST.match(digest):
                    return self._error(400, f"invalid digest for {file_name}: invalid digest format")
        if req.get("adapters") and state.adapters_mode == "unsupported":
            return self._error(400, "LoRA adapters are no longer supported")
        name = req.get("model") or req.get("name")
        if not _valid_name(name):
            return self._error(400, "invalid model name")
        if not req.get("files") and not req.get("from"):
            return self._error(400, "neither 'from' or 'files' was specified")

        lines, stored = _create_progress(state, req)
        if req.get("stream") is False:  # waitForStream: one object, the last status or the error
            last = lines[-1]
            if "error" in last:
                return self._error(last.get("_status", 500), last["error"])
            self._store(stored)
            return self._json(200, last)
        self._stream(lines, stored, fault)

    def _store(self, model: StoredModel | None) -> None:
        if model is not None:
            with self.server_state.lock:
                self.server_state.models[_key(model.name)] = model

    def _stream(self, lines: list[dict[str, Any]], stored: StoredModel | None, fault: Fault | None) -> None:
        """``streamResponse``: NDJSON lines in HTTP chunks; an error before anything was sent
        becomes the HTTP status, an error after that an ``{"error": …}`` line. The model exists
        once its manifest is written, as in Ollama, whatever happens to the stream after that."""
        if lines and "error" in lines[0]:
            return self._error(lines[0].get("_status", 500), lines[0]["error"])
        if fault and fault.kind == "stream_error":
            lines = [ln for ln in lines if "error" not in ln][: fault.after] + [{"error": fault.message}]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i, line in enumerate(lines):
            if fault and fault.kind == "drop" and i == fault.after:
                self.wfile.flush()
                return self._drop()
            if fault and fault.kind == "end" and i == fault.after:
                break
            if line.get("status") == "writing manifest":
                self._store(stored)
            data = json.dumps({k: v for k, v in line.items() if not k.startswith("_")}).encode() + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
            if "error" in line:
                break
        self.wfile.write(b"0\r\n\r\n")

    def _show(self, fault: Fault | None) -> None:
        req = self._read_json()
        if req is None:
            return None
        if fault and fault.kind == "status":
            return self._error(fault.status, fault.message)
        name = req.get("model") or req.get("name")
        if not name:
            return self._error(400, "model is required")
        if not _valid_name(name):
            return self._error(400, "invalid model name")
        model = self.server_state.model(name)
        if model is None:
            return self._error(404, f"model '{name}' not found")
        self._json(200, _show_reply(model))


# --- create, as server/create.go does it ---------------------------------------------------------


def _create_progress(state: FakeOllama, req: dict[str, Any]) -> tuple[list[dict[str, Any]], StoredModel | None]:
    """The progress lines of a create, and the model to store when its manifest is written."""
    out: list[dict[str, Any]] = []
    if req.get("from"):
        return [{"error": f"pull model manifest: file does not exist ({req['from']})", "_status": 500}], None
    files: dict[str, str] = req.get("files") or {}
    adapters: dict[str, str] = req.get("adapters") or {}
    if len(files) != 1:
        return [{"error": "this fake holds one GGUF per model", "_status": 500}], None
    if len(adapters) > 1:
        return [{"error": "only one adapter is currently supported", "_status": 400}], None
    for file_name, digest in [*files.items(), *adapters.items()]:
        out.append({"status": "parsing GGUF"})
        with state.lock:
            data = state.blobs.get(_normal(digest))
        if data is None:
            missing = f"open {BLOBS_DIR}/{_normal(digest).replace(':', '-')}: no such file or directory"
            return out + [{"error": missing}], None
        if data[:4] != b"GGUF":
            return out + [{"error": "supplied file was not in GGUF format"}], None
    template = req.get("template")
    if template is not None and template.count("{{") != template.count("}}"):
        return out + [{"error": "template error: unclosed action"}], None
    model_blob = _normal(next(iter(files.values())))
    adapter_blobs = [_normal(d) for d in adapters.values()]
    for digest in [model_blob, *adapter_blobs]:
        out.append({"status": f"using existing layer {digest}"})
    for part in ("template", "system", "parameters", "messages", "license"):
        if req.get(part):
            out.append({"status": f"creating new layer sha256:{hashlib.sha256(json.dumps(req[part]).encode()).hexdigest()}"})
    out.append({"status": "writing manifest"})
    license_ = req.get("license") or []
    stored = StoredModel(
        name=req.get("model") or req.get("name"),  # type: ignore[arg-type]
        model_blob=model_blob,
        adapter_blobs=adapter_blobs,
        template=template or "",
        system=req.get("system") or "",
        parameters=dict(req.get("parameters") or {}),
        messages=[{"role": m["role"], "content": m["content"]} for m in req.get("messages") or []],
        license=[license_] if isinstance(license_, str) else list(license_),
        modified_at=datetime.now(timezone.utc).isoformat(),
    )
    out.append({"status": "success"})
    return out, stored


def _normal(digest: str) -> str:
    match = _DIGEST.match(digest)
    assert match
    return "sha256:" + match.group(1).lower()


def _valid_relative(name: str) -> bool:
    """Go's ``fs.ValidPath``: slash-separated, no empty, ``.`` or ``..`` elements, not rooted."""
    if not name or name.startswith("/") or name.endswith("/"):
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))


# --- show, as routes.go GetModelInfo does it -----------------------------------------------------


def _show_reply(m: StoredModel) -> dict[str, Any]:
    reply: dict[str, Any] = {
        "modelfile": _modelfile(m),
        "parameters": "\n".join(_parameter_lines(m.parameters)),
        "template": m.template or "{{ .Prompt }}",
        "details": {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
                    "parameter_size": "", "quantization_level": ""},
        "model_info": {},
        "capabilities": ["completion"],
        "modified_at": m.modified_at,
    }
    if m.license:
        reply["license"] = "\n".join(m.license)
    if m.system:
        reply["system"] = m.system
    if m.messages:
        reply["messages"] = m.messages
    return {k: v for k, v in reply.items() if v != ""}


def _parameter_lines(params: dict[str, Any]) -> list[str]:
    """``fmt.Sprintf("%-*s %#v", 30, k, v)`` per value, lists one line per item."""
    lines = []
    for name, value in params.items():
        for item in value if isinstance(value, list) else [value]:
            lines.append(f"{name:<30} {_go_sharp_v(item)}")
    return lines


def _go_sharp_v(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return go_quote(value)
    return _go_float(float(value))  # JSON numbers come back from Ollama's params layer as float64


def _go_float(x: float) -> str:
    """``strconv.FormatFloat(x, 'g', -1, 64)``, which ``%v`` uses: shortest digits, exponent form
    when the exponent is below -4 or at least 6 (e.g. ``1e+06``)."""
    if x == 0:
        return "-0" if str(x).startswith("-") else "0"
    sign, digits, exponent = Decimal(repr(x)).normalize().as_tuple()
    d = "".join(map(str, digits))
    dp = len(d) + int(exponent)
    exp = dp - 1
    prefix = "-" if sign else ""
    if exp < -4 or exp >= 6:
        mantissa = d[0] + ("." + d[1:] if len(d) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if dp <= 0:
        return f"{prefix}0.{'0' * -dp}{d}"
    if dp >= len(d):
        return f"{prefix}{d}{'0' * (dp - len(d))}"
    return f"{prefix}{d[:dp]}.{d[dp:]}"


def _quote(s: str) -> str:
    """``parser.quote``: how Ollama writes values when it prints a Modelfile (lossy, as Ollama's is)."""
    if "\n" in s or s.startswith(" ") or s.endswith(" "):
        return f'"""{s}"""' if '"' in s else f'"{s}"'
    return s


def _modelfile(m: StoredModel) -> str:
    """``Model.String()`` under ``ollama show``'s header: blobs first, then the rest."""
    blob = lambda digest: str(PurePosixPath(BLOBS_DIR) / digest.replace(":", "-"))  # noqa: E731
    lines = [
        '# Modelfile generated by "ollama show"',
        "# To build a new Modelfile based on this, replace FROM with:",
        f"# FROM {m.name}",
        "",
        f"FROM {blob(m.model_blob)}",
        *[f"ADAPTER {blob(d)}" for d in m.adapter_blobs],
        f"TEMPLATE {_quote(m.template or '{{ .Prompt }}')}",
    ]
    if m.system:
        lines.append(f"SYSTEM {_quote(m.system)}")
    for name, value in m.parameters.items():
        for item in value if isinstance(value, list) else [value]:
            text = item if isinstance(item, str) else _go_sharp_v(item)
            lines.append(f"PARAMETER {name} {_quote(text)}")
    lines += [f"LICENSE {_quote(text)}" for text in m.license]
    lines += [f"MESSAGE {msg['role']} {_quote(msg['content'])}" for msg in m.messages]
    return "\n".join(lines) + "\n"


def _tag_entry(state: FakeOllama, m: StoredModel) -> dict[str, Any]:
    with state.lock:
        size = len(state.blobs.get(m.model_blob, b""))
    parsed = parse_model_name(m.name)
    return {
        "name": f"{m.name}" if parsed.tag else f"{m.name}:latest",
        "model": f"{m.name}" if parsed.tag else f"{m.name}:latest",
        "modified_at": m.modified_at,
        "size": size,
        "digest": hashlib.sha256(json.dumps(m.__dict__, sort_keys=True).encode()).hexdigest(),
        "details": {"format": "gguf", "family": "llama"},
    }
