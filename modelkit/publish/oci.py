"""Every variant pushed to an OCI registry as a ModelPack artifact ([publish] oci, --oci), tagged by its Ollama tag.

Each variant is one artifact (:mod:`modelkit.oci.modelpack`): its GGUF (the split set's parts as
ordered layers, when publishing splits it), its projector where it has one, the chat template
inside the GGUF as a ``weight.config`` layer, the model card and the license as ``doc`` layers,
and a config from what the build knows (architecture, parameter count, quantization, whether it
sees images, tools, thinking). Blobs are offered by digest (``HEAD`` first: what the registry holds
is never sent again), and a tag whose manifest already has this digest is not written: a second
publish of the same build sends nothing and changes no digest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelkit.core.hashing import sha256_file
from modelkit.core.process import Progress, ignore_progress
from modelkit.oci.modelpack import DOC, MANIFEST, WEIGHT, WEIGHT_CONFIG, Layer, ModelFacts, config_json, manifest_json

if TYPE_CHECKING:
    from modelkit.oci.reference import Reference
    from modelkit.publish.plan import PublishedVariant, PublishPlan, Upload

CONTEXT_ANNOTATION = "dev.modelkit.context-length"
"""The GGUF's trained context length, as a manifest annotation (the v0.0.7 config has no field for it)."""


@dataclass(frozen=True)
class OCIPushed:
    """One variant in the registry: its tags, its manifest's digest, the bytes this publish sent."""

    names: tuple[str, ...]
    digest: str
    sent: int
    written: bool


def push_artifacts(plan: PublishPlan, target: Reference, progress: Progress | None = None) -> list[OCIPushed]:
    """Push every variant of ``plan`` under ``target`` (``registry/ns/model``); what each push did."""
    from modelkit.formats.gguf import read_header
    from modelkit.oci.auth import find_credentials
    from modelkit.oci.client import RegistryClient

    report = progress or ignore_progress
    done = []
    with RegistryClient(target, find_credentials(target.registry), plan.insecure) as registry:
        for pv in plan.variants:
            meta = read_header(pv.variant.gguf, index_strings=()).metadata
            layers = variant_layers(plan, pv, meta)
            config = config_json(variant_facts(plan, pv, meta), layers)
            manifest = manifest_json(config, layers, _annotations(pv, meta))
            sent = 0
            for layer in layers:
                def shown(n: int, layer: Layer = layer) -> None:
                    report(n / layer.size if layer.size else 1.0, f"uploading {layer.filepath}")

                sent += layer.size if registry.push_blob(layer.digest, layer.size, layer.source, shown) else 0
            config_digest = f"sha256:{hashlib.sha256(config).hexdigest()}"
            sent += len(config) if registry.push_blob(config_digest, len(config), config) else 0
            digest = f"sha256:{hashlib.sha256(manifest).hexdigest()}"
            written = False
            for tag in tags(pv):
                if registry.manifest_digest(tag, (MANIFEST,)) != digest:
                    registry.put_manifest(tag, manifest, MANIFEST)
                    written = True
            done.append(OCIPushed(tuple(str(target.with_tag(t)) for t in tags(pv)), digest, sent, written))
    return done


def tags(pv: PublishedVariant) -> list[str]:
    """The variant's tags: its Ollama tag, and ``latest`` for the variant Ollama tags so."""
    return [pv.variant.tag, *(["latest"] if pv.variant.latest and pv.variant.tag != "latest" else [])]


def variant_layers(plan: PublishPlan, pv: PublishedVariant, meta: Mapping[str, Any]) -> list[Layer]:
    """The files of one variant's artifact, in order: the model, its projector, the chat template
    its GGUF carries (``meta``: its header), the model card and the license."""
    parts = plan.parts.get(pv.gguf.path_in_repo) or [pv.gguf]
    layers = [_file_layer(WEIGHT, up) for up in parts]
    if pv.projector is not None:
        layers.append(_file_layer(WEIGHT, pv.projector))
    template = meta.get("tokenizer.chat_template")
    if isinstance(template, str):
        layers.append(Layer.of_bytes(WEIGHT_CONFIG, "chat_template.jinja", template.encode()))
    layers.append(Layer.of_bytes(DOC, "README.md", plan.card().encode()))
    license_text = plan.project.spec.ollama.license
    if license_text:
        layers.append(Layer.of_bytes(DOC, "LICENSE", license_text.encode()))
    return layers


def _file_layer(media_type: str, up: Upload) -> Layer:
    assert up.local is not None
    digest = up.digest or sha256_file(up.local).removeprefix("sha256:")
    return Layer(media_type, up.path_in_repo, f"sha256:{digest.removeprefix('sha256:')}", up.size, local=up.local)


def variant_facts(plan: PublishPlan, pv: PublishedVariant, meta: Mapping[str, Any]) -> ModelFacts:
    """What the artifact's config says, read from the GGUF's header (``meta``) and the build."""
    from modelkit.formats.gguf import parameter_count
    from modelkit.ollama.engine import THINKING, TOOLS

    choice = plan.project.renderer(pv.variant)
    capabilities = choice.capabilities if choice else ()
    facts = plan.facts()
    spec = plan.project.spec
    full = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}
    return ModelFacts(name=spec.ollama_model, architecture=meta.get("general.architecture"),
                      parameters=parameter_count(pv.variant.gguf), quantization=pv.variant.quant,
                      precision=full.get(pv.variant.quant), licenses=(facts.license,) if facts.license else (),
                      sees_images=pv.projector is not None, tools=TOOLS in capabilities,
                      thinks=THINKING in capabilities,
                      source_url=f"https://huggingface.co/{spec.base.repo}" if spec.base.repo else None,
                      context_length=meta.get(f"{meta.get('general.architecture')}.context_length"))


def _annotations(pv: PublishedVariant, meta: Mapping[str, Any]) -> dict[str, str]:
    context = meta.get(f"{meta.get('general.architecture')}.context_length")
    return {"org.opencontainers.image.title": f"{pv.variant.model}:{pv.variant.tag}",
            **({CONTEXT_ANNOTATION: str(context)} if isinstance(context, int) else {})}
