"""A local HTTP server that stands in for Ollama in tests (Ollama itself cannot be installed here).

It models the part of Ollama's HTTP API that modelkit uses on Ollama's own source, with its own
code: names (:mod:`ollama_names`, ``types/model/name.go`` and ``internal/modelref``), GGUF headers
(:mod:`ollama_gguf`, ``fs/ggml``), templates and capabilities (:mod:`ollama_templates`,
``template/`` and ``server/images.go``) and Go's formatting (:mod:`ollama_go`). Nothing here
imports modelkit, so the stand-in cannot share modelkit's mistakes.

State is kept the way Ollama keeps it on disk: content-addressed blobs (``blobs``, with a
modification time each) and one manifest per model (``models``: config layer and layers, keyed by
host/namespace/model/tag). ``show`` rebuilds the model from those, as ``GetModel`` does.

Two generations (``FakeOllama(generation=...)``), each following its own tag of Ollama:

* ``"0.12"`` (v0.12.6, the default): create stores the uploaded GGUF as the model layer as is;
  ``show`` returns the Go template; names are taken literally; ``ollama serve`` prunes every
  unreferenced blob at start.
* ``"current"`` (the main branch, 0.33): ``createModel`` re-encodes a text-only GGUF with
  ``llama-quantize --allow-requantize IN OUT COPY`` (the real binary: pass ``quantize=PATH``) and
  stores the output as the model layer; the gemma4 architecture gets ``stop <turn|>`` and its
  renderer/parser; ``show`` may answer with the GGUF's Jinja (``shouldPreferChatTemplate``,
  ``go_template=False`` for ``OLLAMA_GO_TEMPLATE=0``); ``show``/``delete`` reinterpret ``:cloud``,
  ``:local`` and ``*-cloud`` tags (``internal/modelref``); the start-up prune spares blobs younger
  than an hour (``layerPruneGracePeriod``); empty file digests are refused before streaming.

Both: create merges the stop parameters of the named template nearest the GGUF's
``tokenizer.chat_template`` (``detectChatTemplate``) unless the request sets ``stop``, whether or
not it sends a TEMPLATE; one GGUF adapter per model (``only one adapter is currently supported``);
replaced and deleted models' unreferenced layers are removed (``Manifest.RemoveLayers``);
parameters are stored as sent, without validation (``typical_p`` included), and printed in Go map
order, which is random (seeded here: ``seed=``).

Endpoints: ``HEAD``/``POST /api/blobs/:digest``, ``POST /api/create`` (NDJSON progress streamed in
HTTP chunks; an error before the first line is the HTTP status, after it an ``{"error": ...}``
line, as ``streamResponse`` does; ``"stream": false`` gets ``waitForStream``'s one object),
``POST /api/show``, ``DELETE /api/delete``, ``GET /api/tags``, ``GET /api/version``, ``/``;
``POST /api/copy`` (``CopyHandler``: a new manifest over the same layers) and ``POST /api/push``
(``PushHandler``/``PushModel``, as Ollama's api.md documents it: ``model``, ``insecure``, ``stream``;
``retrieving manifest``, then per layer ``pushing <digest>`` lines with ``digest``, ``total`` and
``completed``, ``pushing manifest``, ``success``). The registry pushed to is modelled in
:attr:`FakeOllama.registry` (name -> layer digests) and :attr:`FakeOllama.registry_blobs`; a layer
it holds is reported complete at once; :attr:`registry_reachable` False answers as Ollama does when
it cannot resolve the registry (an error line after ``retrieving manifest``), a namespace not in
:attr:`registry_namespaces` (when set) as the registry refusing it.
:meth:`FakeOllama.inject` makes requests fail on purpose (the way a server or network can,
mid-upload or mid-stream), :meth:`FakeOllama.restart` simulates ``ollama serve`` starting again.

Not modelled (the stand-in answers with an error naming the gap): safetensors conversion, split
GGUFs, DRAFT models, pulling from a registry, the registry's own upload protocol (a push moves the
layers in one step); ``info`` in a create request is ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional

import ollama_gguf as gg
import ollama_names as names
import ollama_templates as tpl
from ollama_go import Struct, go_json_value, json_encode, plain_v, quote, sharp_v

GENERATIONS = ("0.12", "current")
VERSIONS = {"0.12": "0.12.6", "current": "0.33.0"}
BLOBS_DIR = "/fake-ollama/models/blobs"
PRUNE_GRACE_SECONDS = 3600.0  # server/images.go layerPruneGracePeriod (current generation)

MODEL = "application/vnd.ollama.image.model"
ADAPTER = "application/vnd.ollama.image.adapter"
PROJECTOR = "application/vnd.ollama.image.projector"
TEMPLATE = "application/vnd.ollama.image.template"
PROMPT = "application/vnd.ollama.image.prompt"
SYSTEM = "application/vnd.ollama.image.system"
PARAMS = "application/vnd.ollama.image.params"
MESSAGES = "application/vnd.ollama.image.messages"
LICENSE = "application/vnd.ollama.image.license"
CONFIG = "application/vnd.docker.container.image.v1+json"
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"

_DIGEST = re.compile(r"sha256[:-]([0-9a-fA-F]{64})\Z")  # manifest.BlobsPath
_INVALID_DIGEST = "invalid digest format"
_INVALID_NAME = "invalid model name"  # errtypes.InvalidModelNameErrMsg
_EMBEDDED_COMPAT_PREFIXES = ("a.", "mm.", "mtp.", "s.", "v.")  # create.go isEmbeddedCompatibilityTensor
_PROGRESS = re.compile(r"\[\s*(\d+)/\s*(\d+)\]")  # quantization.go progressRegex
_FILE_TYPES_FOR_QUANTIZE = {"F32": 0, "F16": 1, "Q8_0": 7, "Q4_K_S": 14, "Q4_K_M": 15, "Q4_K": 15, "BF16": 32}


class OllamaError(Exception):
    """An error as a handler sends it: ``gin.H{"error": message, "status": status}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Layer:
    """``manifest.Layer``."""

    media_type: str
    digest: str
    size: int
    from_: str = ""

    def go(self) -> Struct:
        out = Struct(mediaType=self.media_type, digest=self.digest, size=self.size)
        if self.from_:
            out["from"] = self.from_
        return out


@dataclass
class StoredModel:
    """What a model's manifest holds, read back as ``GetModel`` reads it (a snapshot taken when
    the manifest was written; blobs never change under a digest)."""

    name: str  # Name.DisplayShortest()
    key: tuple[str, str, str, str]
    model_blob: str | None
    adapter_blobs: list[str]
    template: str  # the TEMPLATE layer ("" when there is none: Ollama then uses {{ .Prompt }})
    system: str
    parameters: dict[str, Any]
    messages: list[dict[str, Any]]
    license: list[str]
    modified_at: str
    chat_template: str = ""  # the model GGUF's tokenizer.chat_template
    source_blob: str | None = None  # the digest the create request named for the model file
    projector_blobs: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    layers: list[Layer] = field(default_factory=list)
    config_layer: Layer | None = None
    digest: str = ""  # the manifest's sha256
    written_at: float = 0.0


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
class Record:
    """One request: ``bytes_in`` is the body bytes the server read, ``body`` the JSON sent to an
    API route (not to a blob route), ``status`` the HTTP status answered (None if dropped)."""

    method: str
    path: str
    bytes_in: int = 0
    body: Any = None
    status: int | None = None


@dataclass
class Log:
    requests: list[tuple[str, str]] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)

    def count(self, method: str, prefix: str) -> int:
        return sum(1 for m, p in self.requests if m == method and p.startswith(prefix))

    @property
    def bytes_uploaded(self) -> int:
        """Body bytes received by ``POST /api/blobs/...`` (every attempt, stored or not)."""
        return sum(r.bytes_in for r in self.records if r.method == "POST" and r.path.startswith("/api/blobs/"))

    @property
    def create_calls(self) -> int:
        return self.count("POST", "/api/create")

    @property
    def create_requests(self) -> list[Any]:
        """The JSON bodies of every ``POST /api/create``, in order."""
        return [r.body for r in self.records if r.method == "POST" and r.path == "/api/create"]

    def clear(self) -> None:
        self.requests.clear()
        self.records.clear()


@dataclass
class _Work:
    """``layerGGML``: a layer on its way into a manifest, with its decoded GGUF, if any."""

    layer: Layer
    gguf: gg.GGUF | None = None
    rewrite: bool = False  # rewriteForCreate
    status: str = ""


@dataclass
class _Request:
    """``api.CreateRequest`` after binding (only the fields the stand-in reads)."""

    raw: dict[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        v = self.raw.get(key)
        return default if v is None else v


def _rfc3339(t: float) -> str:
    """``time.Time`` as Go's JSON writes it (RFC 3339 with nanoseconds, trailing zeros cut)."""
    dt = datetime.fromtimestamp(t, timezone.utc)
    frac = f"{dt.microsecond:06d}".rstrip("0")
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


def _blob_path(digest: str) -> str:
    return f"{BLOBS_DIR}/{digest.replace(':', '-')}"


def _blob_key(digest: str) -> str | None:
    """The blob a digest names (``BlobsPath``: ``:`` and ``-`` both allowed, case kept), or None
    if it is not a valid digest."""
    m = _DIGEST.match(digest)
    return "sha256:" + m.group(1) if m else None


def _valid_path(name: str) -> bool:
    """Go's ``fs.ValidPath``."""
    if name == ".":
        return True
    if not name or name.startswith("/") or name.endswith("/"):
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))


def _human_number(b: int) -> str:
    """``format.HumanNumber``."""
    if b >= 1_000_000_000:
        n = b / 1_000_000_000
        return f"{n:.0f}B" if n == int(n) else f"{n:.1f}B"
    if b >= 1_000_000:
        n = b / 1_000_000
        return f"{n:.0f}M" if n == int(n) else f"{n:.2f}M"
    if b >= 1_000:
        return f"{b / 1000:.0f}K"
    return str(b)


_SCHEMA_CREATE = {
    "model": "string", "stream": "*bool", "quantize": "string", "draft_quantize": "string", "from": "string",
    "remote_host": "string", "files": "map[string]string", "draft_files": "map[string]string",
    "adapters": "map[string]string", "template": "string", "license": "interface {}", "system": "string",
    "parameters": "map[string]interface {}", "messages": "[]api.Message", "renderer": "string",
    "parser": "string", "requires": "string", "info": "map[string]interface {}", "name": "string",
    "quantization": "string",
}
_SCHEMA_SHOW = {"model": "string", "system": "string", "template": "string", "verbose": "bool",
                "options": "map[string]interface {}", "name": "string"}
_SCHEMA_DELETE = {"model": "string", "name": "string"}
_SCHEMA_COPY = {"source": "string", "destination": "string"}
_SCHEMA_PUSH = {"model": "string", "name": "string", "insecure": "bool", "stream": "*bool", "username": "string",
                "password": "string"}
_MESSAGE_FIELDS = {"role": "string", "content": "string", "thinking": "string", "images": "[]api.ImageData",
                   "tool_calls": "[]api.ToolCall", "tool_name": "string", "tool_call_id": "string"}


def _json_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _bind(raw: Any, schema: dict[str, str], struct: str) -> dict[str, Any]:
    """``c.ShouldBindJSON`` into a Go struct: keys matched as ``encoding/json`` matches them
    (exactly, else case-insensitively), types checked, unknown keys ignored."""
    if not isinstance(raw, dict):
        raise OllamaError(400, f"json: cannot unmarshal {_json_kind(raw)} into Go value of type {struct}")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = key if key in schema else next((k for k in schema if k.lower() == key.lower()), None)
        if name is None or value is None:
            continue
        gotype = schema[name]
        ok = {
            "string": isinstance(value, str),
            "*bool": isinstance(value, bool), "bool": isinstance(value, bool),
            "map[string]string": isinstance(value, dict) and all(isinstance(v, str) or v is None for v in value.values()),
            "map[string]interface {}": isinstance(value, dict),
            "[]api.Message": isinstance(value, list) and all(isinstance(m, dict) or m is None for m in value),
            "interface {}": True,
        }[gotype]
        if not ok:
            kind = _json_kind(value)
            if gotype == "map[string]string" and isinstance(value, dict):
                bad = next(v for v in value.values() if not isinstance(v, str))
                kind = _json_kind(bad)
                raise OllamaError(400, f"json: cannot unmarshal {kind} into Go struct field {struct}.{name} of type string")
            raise OllamaError(400, f"json: cannot unmarshal {kind} into Go struct field {struct}.{name} of type {gotype}")
        if gotype == "map[string]string":
            value = {k: (v or "") for k, v in value.items()}
        if gotype == "[]api.Message":
            value = [_bind_message(m or {}, struct, name) for m in value]
        out[name] = go_json_value(value)
    return out


def _bind_message(m: dict[str, Any], struct: str, fieldname: str) -> dict[str, Any]:
    """``api.Message.UnmarshalJSON``: the fields, and the role lower-cased."""
    out: dict[str, Any] = {}
    for key, value in m.items():
        name = key if key in _MESSAGE_FIELDS else next((k for k in _MESSAGE_FIELDS if k.lower() == key.lower()), None)
        if name is None or value is None:
            continue
        if _MESSAGE_FIELDS[name] == "string" and not isinstance(value, str):
            raise OllamaError(400, f"json: cannot unmarshal {_json_kind(value)} into Go struct field "
                                   f"{struct}.{fieldname}.{name} of type string")
        out[name] = value
    out["role"] = out.get("role", "").lower()
    out.setdefault("content", "")
    return out


def _message_struct(m: dict[str, Any]) -> Struct:
    """An ``api.Message`` as ``encoding/json`` writes it (fields in order, ``omitempty``)."""
    out = Struct(role=m.get("role", ""), content=m.get("content", ""))
    for name in ("thinking", "images", "tool_calls", "tool_name", "tool_call_id"):
        if m.get(name):
            out[name] = m[name]
    return out


class FakeOllama:
    """Ollama's HTTP API on ``127.0.0.1`` and a free port, in a thread; use as a context manager.

    ``generation``: ``"0.12"`` (default) or ``"current"`` (see the module docstring).
    ``adapters``: the old switch, kept for callers that still pass it: ``"one"`` is generation
    ``"0.12"``; ``"unsupported"`` (a refusal no Ollama ever sent) is generation ``"0.12"`` too.
    ``quantize``: the ``llama-quantize`` binary; needed by generation ``"current"`` (create
    re-encodes every text-only GGUF with it) and by any create that asks to quantize.
    ``go_template``: ``OLLAMA_GO_TEMPLATE`` (None: unset; True/False: set to 1/0).
    ``noprune``: ``OLLAMA_NOPRUNE`` (no pruning at start, nor of a replaced model's layers).
    ``no_cloud``: ``OLLAMA_NO_CLOUD``; otherwise a cloud request fails as offline (502) unless
    :attr:`cloud_models` holds a ``show`` reply for the name.
    ``seed``: seeds the (random, as in Go) order of parameters in ``show``.
    """

    def __init__(self, *, generation: str = "0.12",
                 quantize: os.PathLike[str] | str | None = None, go_template: bool | None = None,
                 noprune: bool = False, no_cloud: bool = False, version: str | None = None,
                 seed: int | None = 0) -> None:
        if generation not in GENERATIONS:
            raise ValueError(f"generation must be one of {GENERATIONS}, got {generation!r}")
        if generation == "current" and quantize is None:
            raise ValueError('generation="current" re-encodes GGUFs with llama-quantize: pass quantize=PATH '
                             "(e.g. modelkit.toolchain.find_toolchain().quantize)")
        self.generation = generation
        self.quantize = Path(quantize) if quantize is not None else None
        self.go_template = go_template
        self.noprune = noprune
        self.no_cloud = no_cloud
        self.version = version or VERSIONS[generation]
        self.blobs: dict[str, bytes] = {}
        self.blob_mtime: dict[str, float] = {}
        self.models: dict[tuple[str, str, str, str], StoredModel] = {}
        self.cloud_models: dict[str, dict[str, Any]] = {}
        self.registry: dict[str, list[str]] = {}  # what was pushed: "host/namespace/model:tag" -> layer digests
        self.registry_blobs: set[str] = set()
        self.registry_reachable = True
        self.registry_namespaces: set[str] | None = None  # the namespaces the key may push to (None: any)
        self.log = Log()
        self.faults: list[Fault] = []
        self.lock = threading.RLock()
        self.clock_offset = 0.0
        self.restarts = 0
        self._rng = random.Random(seed) if seed is not None else None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def current(self) -> bool:
        return self.generation == "current"

    # --- lifecycle ----------------------------------------------------------------------------

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

    def now(self) -> float:
        """The stand-in's clock (wall time plus :meth:`advance_clock`)."""
        return time.time() + self.clock_offset

    def advance_clock(self, seconds: float) -> None:
        """Let time pass, for blob ages (pruning) and modification times."""
        self.clock_offset += seconds

    def restart(self, *, elapsed: float = 0.0) -> list[str]:
        """``ollama serve`` starting again after ``elapsed`` seconds: ``Serve`` runs ``PruneLayers``
        unless ``noprune`` (``OLLAMA_NOPRUNE``). Every blob no manifest references is removed, but
        (current generation) not one modified less than an hour ago (``layerPruneGracePeriod``).
        Returns the digests removed."""
        self.advance_clock(elapsed)
        self.restarts += 1
        if self.noprune:
            return []
        with self.lock:
            now = self.now()
            used = self._referenced()
            pruned = [d for d in list(self.blobs) if d not in used
                      and not (self.current and now - self.blob_mtime.get(d, 0.0) < PRUNE_GRACE_SECONDS)]
            for d in pruned:
                self._drop_blob(d)
        return pruned

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
        """The model ``name`` names (taken literally, canonicalized as ``getExistingName`` does)."""
        n = names.parse_name(name)
        if not n.is_valid():
            return None
        with self.lock:
            return self.models.get(self._existing_name(n).key())

    # --- blobs and manifests (manifest/, server/images.go) ------------------------------------

    def _touch(self, digest: str) -> None:
        self.blob_mtime[digest] = self.now()

    def _drop_blob(self, digest: str) -> None:
        self.blobs.pop(digest, None)
        self.blob_mtime.pop(digest, None)

    def _new_layer(self, data: bytes, media_type: str) -> tuple[Layer, str]:
        """``manifest.NewLayer``: store ``data`` under its digest; the status says whether it was new."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        with self.lock:
            status = "using existing layer" if digest in self.blobs else "creating new layer"
            self.blobs.setdefault(digest, data)
            self._touch(digest)
        return Layer(media_type, digest, len(data)), f"{status} {digest}"

    def _referenced(self, skip: tuple[str, str, str, str] | None = None) -> set[str]:
        used: set[str] = set()
        for key, m in self.models.items():
            if key == skip:
                continue
            used.update(layer.digest for layer in m.layers)
            if m.config_layer is not None:
                used.add(m.config_layer.digest)
        return used

    def _remove_layer(self, layer: Layer) -> None:
        """``Layer.Remove``: delete the blob unless some manifest uses it."""
        with self.lock:
            if layer.digest not in self._referenced():
                self._drop_blob(layer.digest)

    def _remove_layers(self, m: StoredModel) -> None:
        """``Manifest.RemoveLayers``: delete its blobs that no (other) manifest uses."""
        with self.lock:
            used = self._referenced()
            for layer in [*m.layers, *([m.config_layer] if m.config_layer else [])]:
                if layer.digest not in used:
                    self._drop_blob(layer.digest)

    def _existing_name(self, n: names.Name) -> names.Name:
        """``getExistingName``: each part takes the spelling an existing manifest gives it."""
        host, ns, model_, tag = n.key()
        for eh, ens, em, et in self.models:
            host = eh if eh.lower() == host.lower() else host
            ns = ens if ens.lower() == ns.lower() else ns
            model_ = em if em.lower() == model_.lower() else model_
            tag = et if et.lower() == tag.lower() else tag
        return replace(n, host=host, namespace=ns, model=model_, tag=tag)

    def _read_gguf(self, digest: str) -> gg.GGUF:
        with self.lock:
            data = self.blobs.get(digest)
        if data is None:
            raise OllamaError(500, f"open {_blob_path(digest)}: no such file or directory")
        try:
            return gg.read_gguf(data)
        except gg.GGUFError as e:
            raise OllamaError(500, str(e)) from None

    def _write_manifest(self, name: names.Name, config: Struct, layers: list[Layer],
                        source_blob: str | None) -> StoredModel:
        """``manifest.WriteManifest`` (the config layer first, as ``createConfigLayer``)."""
        config_layer, _ = self._new_layer(json_encode(config), CONFIG)
        body = json_encode(Struct(schemaVersion=2, mediaType=MANIFEST, config=config_layer.go(),
                                  layers=[layer.go() for layer in layers]))
        stored = self._stored_model(name, layers, config_layer, dict(config), source_blob)
        stored.digest = hashlib.sha256(body).hexdigest()
        with self.lock:
            self.models[name.key()] = stored
        return stored

    def _stored_model(self, name: names.Name, layers: list[Layer], config_layer: Layer, config: dict[str, Any],
                      source_blob: str | None) -> StoredModel:
        with self.lock:
            blob = lambda d: self.blobs[d]
            m = StoredModel(name=name.display_shortest(), key=name.key(), model_blob=None, adapter_blobs=[],
                            template="", system="", parameters={}, messages=[], license=[],
                            modified_at=_rfc3339(self.now()), source_blob=source_blob, config=config,
                            layers=list(layers), config_layer=config_layer, written_at=self.now())
            for layer in layers:
                t = layer.media_type
                if t == MODEL:
                    m.model_blob = layer.digest
                    try:
                        m.chat_template = gg.read_gguf(blob(layer.digest)).chat_template()
                    except gg.GGUFError:
                        m.chat_template = ""
                elif t == ADAPTER:
                    m.adapter_blobs.append(layer.digest)
                elif t == PROJECTOR:
                    m.projector_blobs.append(layer.digest)
                elif t in (TEMPLATE, PROMPT):
                    m.template = blob(layer.digest).decode("utf-8", "replace")
                elif t == SYSTEM:
                    m.system = blob(layer.digest).decode("utf-8", "replace")
                elif t == PARAMS:
                    m.parameters = json.loads(blob(layer.digest))
                elif t == MESSAGES:
                    m.messages = json.loads(blob(layer.digest))
                elif t == LICENSE:
                    m.license.append(blob(layer.digest).decode("utf-8", "replace"))
        if source_blob is None and m.model_blob is not None:
            m.source_blob = m.model_blob
        return m

    # --- blob routes (server/routes.go HeadBlobHandler, CreateBlobHandler) ----------------------

    def head_blob(self, digest: str) -> int:
        key = _blob_key(digest)
        if key is None:
            return 400
        with self.lock:
            return 200 if key in self.blobs else 404

    def post_blob(self, digest: str, read_body: Callable[[], bytes]) -> tuple[int, str | None]:
        key = _blob_key(digest)
        if key is None:
            read_body()
            return 400, _INVALID_DIGEST
        with self.lock:
            held = key in self.blobs
        data = read_body()
        if held:
            return 200, None
        layer, _ = self._new_layer(data, "")  # stored under what it hashes to, whatever was asked
        if layer.digest != digest:
            return 400, f"digest mismatch, expected {quote(digest)}, got {quote(layer.digest)}"
        return 201, None

    # --- create (server/create.go CreateHandler, createModel) ---------------------------------

    def create_prepare(self, raw: Any) -> tuple[_Request, names.Name]:
        """What ``CreateHandler`` checks before it starts streaming (each an HTTP status)."""
        req = _Request(_bind(raw, _SCHEMA_CREATE, "api.CreateRequest"))
        for v, digest in req.get("files", {}).items():
            if not _valid_path(v):
                raise OllamaError(400, "file path must be relative")
            if self.current and digest == "":
                raise OllamaError(400, _INVALID_DIGEST)
        if self.current:
            for v, digest in req.get("draft_files", {}).items():
                if not _valid_path(v):
                    raise OllamaError(400, "file path must be relative")
                if digest == "":
                    raise OllamaError(400, _INVALID_DIGEST)
            if req.get("draft_quantize") and not req.get("draft_files"):
                raise OllamaError(400, "--draft-quantize requires a DRAFT model")
            for digest in req.get("adapters", {}).values():
                if digest == "":
                    raise OllamaError(400, _INVALID_DIGEST)
        name = names.parse_name(req.get("model") or req.get("name", ""))
        if not name.is_valid():
            raise OllamaError(400, _INVALID_NAME)
        with self.lock:
            name = self._existing_name(name)
        return req, name

    def create_stream(self, req: _Request, name: names.Name) -> Iterator[dict[str, Any]]:
        """The create goroutine: progress responses in order; an :class:`OllamaError` raised from
        here is the ``gin.H{"error"...}`` it sends. The manifest is written when the line after
        ``writing manifest`` is asked for (Ollama writes it once that line was taken)."""
        with self.lock:
            old = self.models.get(name.key())
        config = {"model_format": "", "model_family": "", "model_families": None, "model_type": "",
                  "file_type": "", "renderer": req.get("renderer", ""), "parser": req.get("parser", ""),
                  "requires": req.get("requires", ""), "remote_host": "", "remote_model": "", "capabilities": None}
        base: list[_Work] = []
        remote = False
        source_blob: str | None = None
        if req.get("from"):
            if self.current:
                try:
                    ref = names.parse_and_validate_ref(req.get("from"))
                except (names.UnqualifiedName, names.ConflictingSource, names.ModelRequired):
                    raise OllamaError(400, _INVALID_NAME) from None
                from_name, cloud = ref.name, ref.source == names.SOURCE_CLOUD
                base_name = ref.base
            else:
                from_name = names.parse_name(req.get("from"))
                if not from_name.is_valid():
                    raise OllamaError(400, _INVALID_NAME)
                cloud, base_name = False, req.get("from")
            assert from_name is not None
            if cloud or req.get("remote_host"):
                host = req.get("remote_host") or "https://ollama.com:443"
                config.update(remote_model=base_name, remote_host=_remote_url(host))
                remote = True
            else:
                base = yield from self._parse_from_model(from_name)
                with self.lock:
                    parent = self.models.get(self._existing_name(from_name).key())
                if parent is not None and self.current:
                    for k in ("renderer", "parser", "requires"):
                        config[k] = config[k] or parent.config.get(k, "")
                    config["model_format"] = parent.config.get("model_format", "")
                    config["capabilities"] = config["capabilities"] or parent.config.get("capabilities")
        elif "files" in req.raw and req.raw["files"] is not None:
            try:
                base = yield from self._convert_from_files(req.get("files", {}), False)
            except OllamaError as e:
                bad = e.message in ("no files provided to convert", "supplied file was not in GGUF format",
                                    "unknown type")
                raise OllamaError(400 if bad else 500, e.message) from None
            source_blob = next((w.layer.digest for w in base if w.layer.media_type == MODEL), None)
        else:
            raise OllamaError(400, "neither 'from' or 'files' was specified")
        if self.current and req.get("draft_files"):
            raise OllamaError(500, "this stand-in does not model DRAFT models")
        if not remote and "adapters" in req.raw and req.raw["adapters"] is not None:
            try:
                adapters = yield from self._convert_from_files(req.get("adapters", {}), True)
            except OllamaError as e:
                raise OllamaError(400, e.message) from None
            base += adapters
        try:
            yield from self._create_model(req, name, base, config, source_blob)
        except tpl.TemplateError as e:
            raise OllamaError(400, f"template error: {e}") from None
        if not self.noprune and old is not None:
            self._remove_layers(old)
        yield {"status": "success"}

    def _parse_from_model(self, from_name: names.Name) -> Iterator[dict[str, Any]]:
        """``parseFromModel``: the layers of a local model (pulling is not modelled: offline)."""
        with self.lock:
            parent = self.models.get(self._existing_name(from_name).key())
        if parent is None:
            yield {"status": "pulling manifest"}
            host, ns, m, tag = from_name.key()
            raise OllamaError(500, f'pull model manifest: Get "https://{host}/v2/{ns}/{m}/manifests/{tag}": '
                                   f"dial tcp: lookup {host}: no such host")
        out = []
        for layer in parent.layers:
            with self.lock:
                self._touch(layer.digest)
            work = _Work(replace(layer, from_=parent.name), status=f"using existing layer {layer.digest}")
            if layer.media_type in (MODEL, PROJECTOR, ADAPTER):
                work.gguf = self._read_gguf(layer.digest)
            out.append(work)
        return out

    def _convert_from_files(self, files: dict[str, str], is_adapter: bool) -> Iterator[dict[str, Any]]:
        """``convertModelFromFiles`` for GGUFs (``detectModelTypeFromFiles``, ``ggufLayers``,
        ``detectChatTemplate``)."""
        kind = ""
        for fn, digest in files.items():
            if fn.endswith(".safetensors"):
                kind = "safetensors"
                break
            if fn.endswith(".gguf"):
                kind = "gguf"
                break
            key = _blob_key(digest)
            with self.lock:
                data = self.blobs.get(key) if key else None
            if data is None:
                break
            if gg.detect_content_type(data[:4]) == "gguf":
                kind = "gguf"
                break
        if kind == "safetensors":
            raise OllamaError(500, "this stand-in does not convert safetensors")
        if kind != "gguf":
            raise OllamaError(400, "unknown type")
        if len(files) > 1 and is_adapter:
            raise OllamaError(400, "only one adapter is currently supported")
        layers: list[_Work] = []
        for path in (sorted(files) if self.current else list(files)):
            digest = files[path]
            yield {"status": "parsing GGUF"}
            key = _blob_key(digest)
            if key is None:
                raise OllamaError(500, _INVALID_DIGEST)
            with self.lock:
                data = self.blobs.get(key)
            if data is None:
                raise OllamaError(500, f"open {_blob_path(digest)}: no such file or directory")
            if gg.detect_content_type(data[:4]) != "gguf":
                raise OllamaError(400, "supplied file was not in GGUF format")
            try:
                f = gg.read_gguf(data)
            except gg.GGUFError as e:
                raise OllamaError(500, str(e)) from None
            split = f.raw("split.count") or f.kv.get("split.count")
            if split is not None and isinstance(split.value, int) and split.value > 1:
                raise OllamaError(500, "this stand-in does not model split GGUFs")
            media = MODEL
            if f.kind() == "adapter":
                media = ADAPTER
            elif self._is_projector(f):
                media = PROJECTOR
            with self.lock:
                self._touch(key)
            from_ = path if self.current else _blob_path(digest)
            layers.append(_Work(Layer(media, key, len(data), from_), f, True, f"using existing layer {key}"))
        return self._detect_chat_template(layers)

    def _is_projector(self, f: gg.GGUF) -> bool:
        """``isProjectorGGUF`` (current) / the inline test of 0.12's ``ggufLayers``."""
        if self.current:
            if f.kind() in ("projector", "mmproj"):
                return True
            if f.uint("block_count") == 0 and f.uint("vision.block_count") > 0:
                return True
            has = lambda k: (v := f.raw(k)) is not None and v.type == gg.BOOL and v.value
            return f.architecture() == "clip" and f.uint("block_count") == 0 and (
                has("has_vision_encoder") or has("has_audio_encoder"))
        return (f.uint("block_count") == 0 and f.uint("vision.block_count") > 0) or f.kind() == "projector"

    def _detect_chat_template(self, layers: list[_Work]) -> list[_Work]:
        """``detectChatTemplate``: a named template (and its parameters) for each GGUF whose
        ``tokenizer.chat_template`` is near one."""
        out = list(layers)
        for work in layers:
            jinja = work.gguf.chat_template() if work.gguf else ""
            if not jinja:
                continue
            t = tpl.named(jinja)
            if t is None:
                continue
            layer, _ = self._new_layer(t.template.encode("utf-8"), TEMPLATE)
            out.append(_Work(layer, status=f"using autodetected template {t.name}"))
            if t.parameters is not None:
                layer, status = self._new_layer(json_encode(Struct(stop=t.parameters["stop"])), PARAMS)
                out.append(_Work(layer, status=status))
        return out

    def _rewrite(self, work: _Work, type_name: str) -> Iterator[dict[str, Any]]:
        """``rewriteLayerWithLlamaQuantize``: run ``llama-quantize --allow-requantize IN OUT TYPE``
        and make its output the layer (a new blob, a new digest)."""
        assert work.gguf is not None
        if self.quantize is None or not self.quantize.is_file():
            raise OllamaError(500, f"llama-quantize unavailable: {self.quantize or 'not configured'}")
        with self.lock:
            data = self.blobs[work.layer.digest]
        ft = work.gguf.file_type_name()
        status = "validating GGUF model" if type_name == "COPY" else f"quantizing {ft} model to {type_name}"
        total_bytes = max(1, work.layer.size - work.gguf.tensor_offset)
        tensor_bytes = sum(t.size() for t in work.gguf.tensors)
        with tempfile.TemporaryDirectory(prefix="fake-ollama-") as tmp:
            src, dst = Path(tmp) / work.layer.digest.replace(":", "-"), Path(tmp) / type_name
            src.write_bytes(data)
            env = dict(os.environ)
            env["OLLAMA_LLAMA_CPP_COMPAT"] = "0"  # llamaQuantizeEnv: no compatibility tensors
            proc = subprocess.run([str(self.quantize), "--allow-requantize", str(src), str(dst), type_name],
                                  capture_output=True, text=True, env=env, timeout=600)
            last = 0
            for line in proc.stdout.splitlines():
                m = _PROGRESS.search(line)
                if m and int(m.group(2)) > 0:
                    done = tensor_bytes * int(m.group(1)) // int(m.group(2))
                    if done > last:
                        last = done
                        yield {"status": status, "digest": "0000000000000000000", "total": work.layer.size,
                               "completed": int(done / total_bytes * work.layer.size)}
            if proc.returncode != 0:
                raise OllamaError(500, f"llama-quantize failed: exit status {proc.returncode}")
            out = dst.read_bytes()
        yield {"status": "verifying conversion"}
        layer, status = self._new_layer(out, work.layer.media_type)
        try:
            f = gg.read_gguf(out)
        except gg.GGUFError as e:
            raise OllamaError(500, str(e)) from None
        return _Work(layer, f, False, status)

    def _create_model(self, req: _Request, name: names.Name, base: list[_Work], config: dict[str, Any],
                      source_blob: str | None) -> Iterator[dict[str, Any]]:
        """``createModel``."""
        works: list[_Work] = []
        params = dict(req.get("parameters", {}))
        families: list[str] = list(config["model_families"] or [])
        for work in base:
            if work.gguf is not None:
                f = work.gguf
                quant = (req.get("quantize") or req.get("quantization") or "").upper() if work.layer.media_type == MODEL else ""
                ft = f.file_type_name()
                rewrote = False
                if self.current and not quant and work.layer.media_type == MODEL and ft in ("F16", "BF16", "F32") \
                        and f.string("source_quantization") == "hf_fp8" and f.strings("source_fp8_tensors"):
                    quant = "Q8_0"
                if quant and work.layer.media_type == MODEL:
                    if quant not in _FILE_TYPES_FOR_QUANTIZE:
                        raise OllamaError(500, f"unsupported quantization type {quant} - supported types are "
                                               "F32, F16, Q4_K_S, Q4_K_M, Q8_0")
                    allowed = ("F16", "BF16", "F32") if self.current else ("F16", "F32")
                    want = _FILE_TYPES_FOR_QUANTIZE[quant]
                    if ft not in allowed:
                        raise OllamaError(500, "quantization is only supported for F16, BF16 and F32 models"
                                          if self.current else "quantization is only supported for F16 and F32 models")
                    if f.file_type() != want:
                        try:
                            work = yield from self._rewrite(work, gg.FILE_TYPES[want])
                        except OllamaError as e:
                            raise OllamaError(500, e.message) from None
                        rewrote = True
                if self.current and not rewrote and work.rewrite and work.layer.media_type == MODEL \
                        and not any(t.name.startswith(_EMBEDDED_COMPAT_PREFIXES) for t in work.gguf.tensors):
                    try:
                        work = yield from self._rewrite(work, "COPY")
                    except OllamaError as e:
                        raise OllamaError(500, "failed to validate GGUF with llama-quantize without "
                                               f"compatibility patches: {e.message}") from None
                f = work.gguf
                assert f is not None
                if work.layer.media_type == MODEL:
                    config["model_format"] = config["model_format"] or "gguf"
                    config["model_family"] = config["model_family"] or f.architecture()
                    config["model_type"] = config["model_type"] or _human_number(f.parameter_count())
                    config["file_type"] = config["file_type"] or f.file_type_name()
                    families.append(f.architecture())
                    if self.current and (not config["renderer"] or not config["parser"]):
                        arch = f.architecture()
                        if arch == "gemma4":
                            config["renderer"] = config["renderer"] or "gemma4"
                            config["parser"] = config["parser"] or "gemma4"
                            if "stop" not in params:
                                params["stop"] = ["<turn|>"]
                        elif arch == "laguna":
                            config["renderer"] = config["renderer"] or "laguna"
                            config["parser"] = config["parser"] or "laguna"
                        elif arch in ("nemotron_h", "nemotron_h_moe", "nemotron_h_omni"):
                            config["renderer"] = config["renderer"] or "nemotron-3-nano"
                            config["parser"] = config["parser"] or "nemotron-3-nano"
            works.append(work)
        config["model_families"] = families or config["model_families"]

        def remove(media: str) -> None:  # removeLayer
            for w in [w for w in works if w.layer.media_type == media]:
                self._remove_layer(w.layer)
                works.remove(w)

        def add(data: bytes, media: str) -> None:
            layer, status = self._new_layer(data, media)
            works.append(_Work(layer, status=status))

        template = req.get("template", "")
        if template != "":  # setTemplate
            remove(TEMPLATE)
            tpl.parse(template)
            add(template.encode("utf-8"), TEMPLATE)
        if req.get("system", "") != "":  # setSystem
            remove(SYSTEM)
            add(req.get("system").encode("utf-8"), SYSTEM)
        lic = req.raw.get("license")
        if isinstance(lic, str):
            if lic:
                add(lic.encode("utf-8"), LICENSE)
        elif lic is not None:
            if not isinstance(lic, list):
                raise OllamaError(500, f"json: cannot unmarshal {_json_kind(lic)} into Go value of type []string")
            for item in lic:
                if not isinstance(item, str) and item is not None:
                    raise OllamaError(500, f"json: cannot unmarshal {_json_kind(item)} into Go value of type string")
                add((item or "").encode("utf-8"), LICENSE)
        for w in [w for w in works if w.layer.media_type == PARAMS]:  # setParameters
            with self.lock:
                existing = json.loads(self.blobs[w.layer.digest])
            for k, v in existing.items():
                params.setdefault(k, v)
        if params:
            remove(PARAMS)
            add(json_encode(params), PARAMS)
        messages = req.get("messages", [])
        if messages:  # setMessages
            remove(MESSAGES)
            add(json_encode([_message_struct(m) for m in messages]), MESSAGES)
        go_config = _config_struct(config)
        for w in works:
            if w.status:
                yield {"status": w.status}
        yield {"status": "writing manifest"}
        self._write_manifest(name, go_config, [w.layer for w in works], source_blob)

    # --- show (server/routes.go ShowHandler, GetModelInfo; server/images.go GetModel) ----------

    def show(self, raw: Any) -> tuple[int, dict[str, Any]]:
        req = _bind(raw, _SCHEMA_SHOW, "api.ShowRequest")
        model = req.get("model") or req.get("name")
        if not model:
            raise OllamaError(400, "model is required")
        if not self.current:
            n = names.parse_name(model)
            if not n.is_valid():
                raise OllamaError(500, "invalid model path")
            with self.lock:
                stored = self.models.get(self._existing_name(n).key())
            if stored is None:
                raise OllamaError(404, f"model '{model}' not found")
            return 200, self._model_info(stored, req)
        try:
            ref = names.parse_and_validate_ref(model)
        except names.ConflictingSource as e:
            raise OllamaError(400, str(e)) from None
        except names.UnqualifiedName:
            raise OllamaError(400, _INVALID_NAME) from None
        except names.ModelRequired as e:
            raise OllamaError(400, str(e)) from None
        if ref.source == names.SOURCE_CLOUD:  # proxyCloudJSONRequest
            if self.no_cloud:
                raise OllamaError(403, "ollama cloud is disabled: remote model details are unavailable")
            if ref.base in self.cloud_models:
                return 200, self.cloud_models[ref.base]
            raise OllamaError(502, 'Post "https://ollama.com:443/api/show": dial tcp: lookup ollama.com: no such host')
        assert ref.name is not None
        with self.lock:
            n = self._existing_name(ref.name)
            stored = self.models.get(n.key())
        if stored is None:
            raise OllamaError(404, f"model '{n.display_shortest()}' not found")
        info = self._model_info(stored, req)
        if ref.source == names.SOURCE_LOCAL and info.get("remote_host"):
            raise OllamaError(404, f"model '{ref.original}' not found")
        return 200, info

    def _model_info(self, m: StoredModel, req: dict[str, Any]) -> dict[str, Any]:
        """``GetModelInfo`` after ``GetModel``."""
        cfg = m.config
        has_go = any(layer.media_type in (TEMPLATE, PROMPT) for layer in m.layers)
        go = tpl.parse(m.template) if has_go else tpl.parse(tpl.DEFAULT_TEMPLATE)
        f = self._read_gguf(m.model_blob) if m.model_blob else None
        jinja = f.chat_template() if f else ""
        pooling = f is not None and f.raw("pooling_type") is not None
        harmony = cfg.get("model_family") in ("gptoss", "gpt-oss") and "<|start|>" in go.raw and "<|end|>" in go.raw
        renderer, parser = cfg.get("renderer", ""), cfg.get("parser", "")
        prefer_chat = False
        if self.current and self.go_template is None and has_go and jinja and not renderer and not parser \
                and not harmony:
            prefer_chat = tpl.should_prefer_chat_template(jinja, tpl.chat_template_capabilities(jinja), go,
                                                          tpl.go_template_capabilities(go))
        if self.go_template is not None and self.current:
            use_go = has_go and self.go_template
        else:
            use_go = has_go and not prefer_chat
        rendered = bool(renderer or parser or harmony or use_go)
        native = self.current and bool(jinja) and not rendered
        caps = self._capabilities(m, f, go, has_go, use_go, rendered, pooling)

        details = {"parent_model": next((layer.from_ for layer in m.layers if layer.media_type == MODEL), ""),
                   "format": cfg.get("model_format", ""), "family": cfg.get("model_family", ""),
                   "families": cfg.get("model_families"), "parameter_size": cfg.get("model_type", ""),
                   "quantization_level": cfg.get("file_type", "")}
        options = dict(m.parameters)
        keys = list(options)
        if self._rng is not None:
            self._rng.shuffle(keys)  # Go map iteration
        lines = []
        for k in keys:
            for item in (options[k] if isinstance(options[k], list) else [options[k]]):
                lines.append(f"{k:<30} {sharp_v(item)}")
        system = req.get("system") or m.system
        for k, v in (req.get("options") or {}).items():
            options[k] = v
        reply: dict[str, Any] = {
            "license": "\n".join(m.license),
            "modelfile": self._modelfile(m, go, system, options, renderer, parser),
            "parameters": "\n".join(lines),
            "template": jinja if native else go.raw,
            "system": system,
            "details": details,
            "messages": [{"role": x.get("role", ""), "content": x.get("content", "")} for x in m.messages],
            "model_info": {},
            "capabilities": caps,
            "modified_at": m.modified_at,
            "requires": cfg.get("requires", ""),
        }
        if cfg.get("remote_host"):
            reply["remote_host"], reply["remote_model"] = cfg["remote_host"], cfg.get("remote_model", "")
            return {k: v for k, v in reply.items() if v not in ("", [], None) or k in ("model_info", "details")}
        if f is not None:
            if details["quantization_level"] in ("", "unknown") and f.file_type_name() != "unknown":
                details["quantization_level"] = f.file_type_name()
            kv = f.plain_kv(-1 if req.get("verbose") else 0)
            kv.pop("general.name", None)
            kv.pop("tokenizer.chat_template", None)
            reply["model_info"] = kv
            reply["tensors"] = [{"name": t.name, "type": t.type_name(), "shape": list(t.shape)} for t in f.tensors]
        if m.projector_blobs:
            reply["projector_info"] = self._read_gguf(m.projector_blobs[0]).plain_kv(-1 if req.get("verbose") else 0)
        return {k: v for k, v in reply.items() if v not in ("", [], None) or k in ("model_info", "details")}

    def _capabilities(self, m: StoredModel, f: gg.GGUF | None, go: tpl.Template, has_go: bool, use_go: bool,
                      rendered: bool, pooling: bool) -> list[str]:
        """``Model.Capabilities`` (current: ``capabilitiesForTemplate``; 0.12: its older rules)."""
        caps: list[str] = []

        def add(c: str) -> None:
            if c not in caps:
                caps.append(c)

        cfg = m.config
        if not self.current:
            if f is not None:
                add("embedding" if pooling else "completion")
                if f.raw("vision.block_count") is not None:
                    add("vision")
            else:
                for c in cfg.get("capabilities") or []:
                    add(c)
            v = go.vars()
            if "tools" in v or cfg.get("parser") == "gemma4":
                add("tools")
            if "suffix" in v:
                add("insert")
            if m.projector_blobs:
                add("vision")
            if "thinking" not in caps and all(go.thinking_tags()):
                add("thinking")
            return caps
        for c in cfg.get("capabilities") or []:
            add(c)
        if f is not None:
            if not rendered:
                for c in tpl.chat_template_capabilities(f.chat_template()):
                    add(c)
            add("embedding" if pooling else "completion")
            if f.raw("vision.block_count") is not None:
                add("vision")
            if f.raw("audio.block_count") is not None:
                add("audio")
        if m.projector_blobs:
            add("vision")
        if not (has_go and not use_go):
            for c in tpl.go_template_capabilities(go):
                add(c)
        parser = cfg.get("parser", "")
        if parser in ("gemma4", "gemma4-no-thinking"):
            add("tools")
            if parser == "gemma4":
                add("thinking")
        if cfg.get("model_family") in ("gptoss", "gpt-oss"):
            add("thinking")
        return caps

    def _modelfile(self, m: StoredModel, go: tpl.Template, system: str, options: dict[str, Any],
                   renderer: str, parser: str) -> str:
        """``ollama show``'s header and ``Model.String`` (``parser.Command.String`` per line)."""
        lines = [f"FROM {_blob_path(m.model_blob) if m.model_blob else ''}"]
        lines += [f"ADAPTER {_quote_arg(_blob_path(d))}" for d in m.adapter_blobs]
        lines += [f"FROM {_blob_path(d)}" for d in m.projector_blobs]
        lines.append(f"TEMPLATE {_quote_arg(go.raw)}")
        if system:
            lines.append(f"SYSTEM {_quote_arg(system)}")
        if renderer:
            lines.append(f"RENDERER {_quote_arg(renderer)}")
        if parser:
            lines.append(f"PARSER {_quote_arg(parser)}")
        keys = list(options)
        if self._rng is not None:
            self._rng.shuffle(keys)
        for k in keys:
            for item in (options[k] if isinstance(options[k], list) else [options[k]]):
                lines.append(f"PARAMETER {k} {_quote_arg(plain_v(item))}")
        lines += [f"LICENSE {_quote_arg(text)}" for text in m.license]
        for msg in m.messages:
            lines.append(f"MESSAGE {msg.get('role', '')} {_quote_arg(msg.get('content', ''))}")
        header = ['# Modelfile generated by "ollama show"', "# To build a new Modelfile based on this, replace FROM with:",
                  f"# FROM {m.name}", ""]
        return "\n".join(header + lines) + "\n"

    # --- copy, push (server/routes.go CopyHandler, PushHandler; server/images.go PushModel) ------

    def copy(self, raw: Any) -> None:
        """``CopyHandler``: the destination gets a manifest over the source's layers."""
        req = _bind(raw, _SCHEMA_COPY, "api.CopyRequest")
        src, dst = names.parse_name(req.get("source", "")), names.parse_name(req.get("destination", ""))
        if not src.is_valid():
            raise OllamaError(400, f"source {quote(req.get('source', ''))} is invalid")
        if not dst.is_valid():
            raise OllamaError(400, f"destination {quote(req.get('destination', ''))} is invalid")
        with self.lock:
            stored = self.models.get(self._existing_name(src).key())
            if stored is None:
                raise OllamaError(404, f"model {quote(req.get('source', ''))} not found")
            dst = self._existing_name(dst)
            self.models[dst.key()] = replace(stored, name=dst.display_shortest(), key=dst.key(),
                                             written_at=self.now())

    def push_prepare(self, raw: Any) -> tuple[names.Name, bool]:
        """``PushHandler``'s checks before it streams."""
        req = _bind(raw, _SCHEMA_PUSH, "api.PushRequest")
        given = req.get("model") or req.get("name") or ""
        if not given:
            raise OllamaError(400, "model is required")
        n = names.parse_name(given)
        if not n.is_valid():
            raise OllamaError(400, f"name {quote(given)} is invalid")
        return n, bool(req.get("insecure", False))

    def push_stream(self, n: names.Name) -> Iterator[dict[str, Any]]:
        """``PushModel``: the manifest, each layer (at once when the registry holds it), the manifest."""
        yield {"status": "retrieving manifest"}
        with self.lock:
            stored = self.models.get(self._existing_name(n).key())
        if stored is None:
            raise OllamaError(500, f"open /fake-ollama/models/manifests/{'/'.join(n.key())}: no such file or directory")
        host, namespace, model_, tag = n.key()
        if not self.registry_reachable:
            raise OllamaError(500, f'Post "https://{host}/v2/{namespace}/{model_}/blobs/uploads/": dial tcp: '
                                   f"lookup {host}: no such host")
        if self.registry_namespaces is not None and namespace not in self.registry_namespaces:
            raise OllamaError(401, "you are not authorized to push to this namespace, create the model under "
                                   "a namespace you own")
        layers = [*stored.layers, *([stored.config_layer] if stored.config_layer else [])]
        for layer in layers:
            status = f"pushing {layer.digest[7:19]}"
            if layer.digest not in self.registry_blobs:
                yield {"status": status, "digest": layer.digest, "total": layer.size, "completed": 0}
                self.registry_blobs.add(layer.digest)
            yield {"status": status, "digest": layer.digest, "total": layer.size, "completed": layer.size}
        yield {"status": "pushing manifest"}
        self.registry[f"{host}/{namespace}/{model_}:{tag}"] = [layer.digest for layer in layers]
        yield {"status": "success"}

    # --- delete, tags ---------------------------------------------------------------------------

    def delete(self, raw: Any) -> None:
        """``DeleteHandler``: remove the manifest, then its unreferenced layers."""
        req = _bind(raw, _SCHEMA_DELETE, "api.DeleteRequest")
        given = req.get("model") or req.get("name") or ""
        if self.current:
            try:
                n = names.parse_normalize_pull_ref(given).name
            except names.ConflictingSource as e:
                raise OllamaError(400, str(e)) from None
            except names.UnqualifiedName:
                raise OllamaError(400, f"name {quote(given)} is invalid") from None
            except names.ModelRequired as e:
                raise OllamaError(400, str(e)) from None
            assert n is not None
        else:
            n = names.parse_name(given)
            if not n.is_valid():
                raise OllamaError(400, f"name {quote(given)} is invalid")
        with self.lock:
            key = self._existing_name(n).key()
            stored = self.models.pop(key, None)
            if stored is None:
                raise OllamaError(404, f"model '{given}' not found")
            self._remove_layers(stored)

    def tags(self) -> dict[str, Any]:
        with self.lock:
            models = sorted(self.models.values(), key=lambda m: m.written_at, reverse=True)
            out = []
            for m in models:
                size = sum(layer.size for layer in m.layers) + (m.config_layer.size if m.config_layer else 0)
                entry = {"name": m.name, "model": m.name, "modified_at": m.modified_at, "size": size,
                         "digest": m.digest,
                         "details": {"parent_model": "", "format": m.config.get("model_format", ""),
                                     "family": m.config.get("model_family", ""),
                                     "families": m.config.get("model_families"),
                                     "parameter_size": m.config.get("model_type", ""),
                                     "quantization_level": m.config.get("file_type", "")}}
                if m.config.get("remote_host"):
                    entry["remote_model"], entry["remote_host"] = m.config.get("remote_model"), m.config["remote_host"]
                out.append(entry)
        return {"models": out}


def _config_struct(config: dict[str, Any]) -> Struct:
    """``model.ConfigV2`` as ``createConfigLayer`` encodes it."""
    out = Struct(model_format=config["model_format"], model_family=config["model_family"],
                 model_families=config["model_families"], model_type=config["model_type"],
                 file_type=config["file_type"])
    for k in ("renderer", "parser", "requires", "remote_host", "remote_model", "capabilities"):
        if config.get(k):
            out[k] = config[k]
    out["architecture"], out["os"] = "amd64", "linux"
    return out


def _remote_url(raw: str) -> str:
    """``remoteURL``, enough for the hosts tests give."""
    if raw.startswith("/"):
        return "http://localhost:11434" + raw
    if "://" not in raw:
        raw = "http://" + raw
    if raw in ("ollama.com", "http://ollama.com"):
        raw = "https://ollama.com:443"
    scheme, _, rest = raw.partition("://")
    host, slash, path = rest.partition("/")
    if ":" not in host:
        host += ":11434"
    path = ("/" + path.rstrip("/")) if slash and path.strip("/") else ""
    return f"{scheme}://{host}{path}"


def _quote_arg(s: str) -> str:
    """``parser.quote``: how Ollama writes values when it prints a Modelfile (lossy, as Ollama's is)."""
    if "\n" in s or s.startswith(" ") or s.endswith(" "):
        return f'"""{s}"""' if '"' in s else f'"{s}"'
    return s


# --- HTTP plumbing ---------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_state: FakeOllama

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def _record(self) -> tuple[Record, Fault | None]:
        rec = Record(self.command, self.path)
        with self.server_state.lock:
            self.server_state.log.requests.append((self.command, self.path))
            self.server_state.log.records.append(rec)
        self._rec = rec
        return rec, self.server_state.take_fault(self.command, self.path)

    def _body(self, limit: int | None = None) -> bytes:
        data = self._read_body(limit)
        self._rec.bytes_in += len(data)
        return data

    def _read_body(self, limit: int | None) -> bytes:
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
        self._rec.status = status
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
        self._rec.status = None
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _read_json(self) -> Any:
        """``ShouldBindJSON``'s decoding step; raises :class:`OllamaError` as Gin answers."""
        raw = self._body()
        if not raw.strip():
            raise OllamaError(400, "missing request body")
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as e:
            raise OllamaError(400, f"invalid character at offset {e.pos}: {e.msg}") from None
        self._rec.body = data
        return data

    def do_HEAD(self) -> None:
        _, fault = self._record()
        if fault and fault.kind == "status":
            return self._json(fault.status, None)
        if self.path.startswith("/api/blobs/"):
            status = self.server_state.head_blob(self.path.removeprefix("/api/blobs/"))
            return self._json(status, None)
        if self.path in ("/", "/api/version", "/api/tags"):
            return self._json(200, None)
        self._json(404, None)

    def do_GET(self) -> None:
        self._record()
        if self.path == "/api/version":
            return self._json(200, {"version": self.server_state.version})
        if self.path == "/api/tags":
            return self._json(200, self.server_state.tags())
        if self.path == "/":
            data = b"Ollama is running"
            self._rec.status = 200
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return None
        self._text_404()

    def _text_404(self) -> None:
        data = b"404 page not found"
        self._rec.status = 404
        self.send_response(404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_DELETE(self) -> None:
        self._record()
        if self.path != "/api/delete":
            self._body()
            return self._text_404()
        try:
            self.server_state.delete(self._read_json())
        except OllamaError as e:
            return self._error(e.status, e.message)
        self._json(200, None)

    def do_POST(self) -> None:
        _, fault = self._record()
        if self.path.startswith("/api/blobs/"):
            return self._post_blob(fault)
        if self.path == "/api/create":
            return self._create(fault)
        if self.path == "/api/copy":
            try:
                self.server_state.copy(self._read_json())
            except OllamaError as e:
                return self._error(e.status, e.message)
            return self._json(200, None)
        if self.path == "/api/push":
            try:
                name, _insecure = self.server_state.push_prepare(self._read_json())
            except OllamaError as e:
                return self._error(e.status, e.message)
            events = self.server_state.push_stream(name)
            if self._rec.body.get("stream") is False:
                last: dict[str, Any] = {}
                try:
                    for last in events:  # noqa: B007 - keeps the last event, read below
                        pass
                except OllamaError as e:
                    return self._error(e.status, e.message)
                return self._json(200, last)
            return self._stream(events, fault)
        if self.path == "/api/show":
            try:
                raw = self._read_json()
                if fault and fault.kind == "status":
                    return self._error(fault.status, fault.message)
                status, payload = self.server_state.show(raw)
            except OllamaError as e:
                return self._error(e.status, e.message)
            return self._json(status, payload)
        self._body()
        self._text_404()

    def _post_blob(self, fault: Fault | None) -> None:
        digest = self.path.removeprefix("/api/blobs/")
        if fault and fault.kind == "drop":
            self._body(limit=fault.after)
            return self._drop()
        if fault and fault.kind == "status":
            self._body()
            return self._error(fault.status, fault.message)
        status, message = self.server_state.post_blob(digest, self._body)
        if message is not None:
            return self._error(status, message)
        self._json(status, None)

    def _create(self, fault: Fault | None) -> None:
        state = self.server_state
        try:
            raw = self._read_json()
            if fault and fault.kind == "status":
                return self._error(fault.status, fault.message)
            req, name = state.create_prepare(raw)
        except OllamaError as e:
            return self._error(e.status, e.message)
        events = state.create_stream(req, name)
        if req.get("stream") is False:  # waitForStream
            last: dict[str, Any] = {}
            try:
                for event in events:
                    last = event
            except OllamaError as e:
                return self._error(e.status, e.message)
            return self._json(200, last)
        self._stream(events, fault)

    def _stream(self, events: Iterator[dict[str, Any]], fault: Fault | None) -> None:
        """``streamResponse``: NDJSON lines in HTTP chunks; an error before anything was written
        becomes the HTTP status, an error after that an ``{"error": …}`` line."""
        started = False
        i = 0
        while True:
            try:
                event = next(events)
            except StopIteration:
                break
            except OllamaError as e:
                if not started:
                    return self._error(e.status, e.message)
                self._chunk({"error": e.message})
                break
            if fault and fault.kind == "stream_error" and i == fault.after:
                if not started:
                    return self._error(fault.status, fault.message)
                self._chunk({"error": fault.message})
                break
            if not started:
                self._rec.status = 200
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                started = True
            if fault and fault.kind == "drop" and i == fault.after:
                self.wfile.flush()
                return self._drop()
            if fault and fault.kind == "end" and i == fault.after:
                break
            self._chunk(event)
            i += 1
        if not started:
            return self._json(200, None)
        self.wfile.write(b"0\r\n\r\n")

    def _chunk(self, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode() + b"\n"
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()
