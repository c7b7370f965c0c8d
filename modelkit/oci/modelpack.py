"""A built variant as a CNCF ModelPack artifact (model-spec v0.0.7): layers, config, manifest, the same bytes each time.

The manifest is an OCI image manifest with ``artifactType`` ``application/vnd.cncf.model.manifest.v1+json``
and a config of ``application/vnd.cncf.model.config.v1+json`` (``descriptor``, ``config``, ``modelfs``
and nothing else: the spec's JSON Schema has ``additionalProperties: false``); every file is a raw
layer (GGUFs and the projector ``weight``, the chat template ``weight.config``, the license and the
model card ``doc``) annotated with ``org.cncf.model.filepath``, the name a runner writes it under
(RamaLama refuses a layer without one). Docker Model Runner reads ModelPack too (Docker Hub's
``ai/`` models are ModelPack); RamaLama pulls only ModelPack among OCI artifacts; KitOps with
``--use-model-pack``. No time is written anywhere (no ``createdAt``): the same build gives the
same manifest digest, and a re-publish of an unchanged build changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ARTIFACT = "application/vnd.cncf.model.manifest.v1+json"
CONFIG = "application/vnd.cncf.model.config.v1+json"
WEIGHT = "application/vnd.cncf.model.weight.v1.raw"
WEIGHT_CONFIG = "application/vnd.cncf.model.weight.config.v1.raw"
DOC = "application/vnd.cncf.model.doc.v1.raw"
FILEPATH = "org.cncf.model.filepath"
TITLE = "org.opencontainers.image.title"
SPEC_VERSION = "v0.0.7"
"""The model-spec release whose schema the config is checked against (tests/data)."""


@dataclass(frozen=True)
class Layer:
    """One file of the artifact: where its bytes are (a file, or small text), and what it is."""

    media_type: str
    filepath: str
    digest: str
    size: int
    local: Path | None = None
    data: bytes | None = None

    @classmethod
    def of_bytes(cls, media_type: str, filepath: str, data: bytes) -> Layer:
        return cls(media_type, filepath, f"sha256:{hashlib.sha256(data).hexdigest()}", len(data), data=data)

    @property
    def source(self) -> Path | bytes:
        if self.data is not None:
            return self.data
        assert self.local is not None
        return self.local

    def descriptor(self) -> dict[str, Any]:
        """The layer in the manifest; ``org.opencontainers.image.title`` too, the name ORAS writes a file under."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size,
                "annotations": {FILEPATH: self.filepath, TITLE: self.filepath}}


@dataclass(frozen=True)
class ModelFacts:
    """What the config says of the model (``None``: not said)."""

    name: str
    architecture: str | None
    parameters: int | None
    quantization: str | None
    precision: str | None
    licenses: tuple[str, ...] = ()
    sees_images: bool = False
    tools: bool = False
    thinks: bool = False
    source_url: str | None = None
    context_length: int | None = None


def param_size(count: int) -> str:
    """ModelPack's ``paramSize``: a count with at most one decimal and a scale letter (``6.7B``, ``1.6M``)."""
    for letter, scale in (("T", 10 ** 12), ("B", 10 ** 9), ("M", 10 ** 6), ("K", 10 ** 3)):
        if count >= scale:
            return f"{count / scale:.1f}{letter}".replace(".0" + letter, letter)
    return str(count)


def config_json(facts: ModelFacts, layers: list[Layer]) -> bytes:
    """The artifact's config, as the JSON the manifest names (keys sorted, no spaces: the same bytes each time)."""
    descriptor: dict[str, Any] = {"name": facts.name, **({"licenses": list(facts.licenses)} if facts.licenses else {}),
                                  **({"sourceURL": facts.source_url} if facts.source_url else {})}
    inputs = ["text", "image"] if facts.sees_images else ["text"]
    config: dict[str, Any] = {"format": "gguf", "capabilities": {"inputTypes": inputs, "outputTypes": ["text"],
                                                                  "toolUsage": facts.tools, "reasoning": facts.thinks}}
    named = {"architecture": facts.architecture, "quantization": facts.quantization, "precision": facts.precision,
             "paramSize": param_size(facts.parameters) if facts.parameters else None}
    config.update({k: v for k, v in named.items() if v})
    body = {"descriptor": descriptor, "config": config,
            "modelfs": {"type": "layers", "diffIds": [layer.digest for layer in layers]}}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def manifest_json(config: bytes, layers: list[Layer], annotations: dict[str, str]) -> bytes:
    """The image manifest of an artifact with ``config`` and ``layers`` (in their order)."""
    body = {"schemaVersion": 2, "mediaType": MANIFEST, "artifactType": ARTIFACT,
            "config": {"mediaType": CONFIG, "digest": f"sha256:{hashlib.sha256(config).hexdigest()}",
                       "size": len(config)},
            "layers": [layer.descriptor() for layer in layers],
            **({"annotations": dict(sorted(annotations.items()))} if annotations else {})}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def gguf_layers(manifest: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the model's GGUF layers in order, its projector layers) of a ModelPack or Docker Model Runner
    manifest, told apart by media type and file path."""
    model: list[dict[str, Any]] = []
    projector: list[dict[str, Any]] = []
    for layer in manifest.get("layers") or []:
        kind = str(layer.get("mediaType", ""))
        path = str((layer.get("annotations") or {}).get(FILEPATH, ""))
        if kind == DOCKER_MMPROJ or (kind == WEIGHT and Path(path).name.startswith("mmproj")):
            projector.append(layer)
        elif kind == DOCKER_GGUF or (kind == WEIGHT and path.endswith(".gguf")):
            model.append(layer)
    return model, projector


DOCKER_GGUF = "application/vnd.docker.ai.gguf.v3"
DOCKER_MMPROJ = "application/vnd.docker.ai.mmproj"
"""Docker Model Runner's own (older) layer types, which a base pulled from a registry may use."""
