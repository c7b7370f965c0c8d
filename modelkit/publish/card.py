"""The model card (README.md) `modelkit publish` uploads, rendered from ``templates/model_card.md.j2``.

A Hub reader needs four things from it: what the files are (the variants, their sizes, and how good
each is when the build measured it), how to run them, where the chat template came from and how
it was proven, and under which terms the weights may be used. The last one is inherited: a
quantization of a gated or specially licensed base carries the base's license (and its access
conditions) unless the spec says otherwise, since a GGUF does not change who may use the weights.

The YAML front matter is written by ``huggingface_hub.ModelCardData``, so the Hub reads exactly
what its own library would write; tests parse the card back with ``ModelCard``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelkit.core.units import human_size
from modelkit.errors import UserError

TEMPLATE_NAME = "model_card.md.j2"


@dataclass(frozen=True)
class VariantRow:
    """One line of the card's table: a variant, the files it was published as, its numbers."""

    quant: str
    tag: str
    files: list[str]
    bytes: int
    modelfile: str
    quality: dict[str, Any] = field(default_factory=dict)  # a row of build/report.json


@dataclass(frozen=True)
class BaseTerms:
    """What the base model's own card says about its use: license and access (gating) notes."""

    license: str | None = None
    license_name: str | None = None
    license_link: str | None = None
    gated_heading: str | None = None
    gated_prompt: str | None = None


@dataclass(frozen=True)
class CardFacts:
    """Everything the card says, gathered from the project (see :func:`modelkit.publish.plan_publish`)."""

    repo: str
    model: str
    base_model: str | None  # a Hub repo id; None for a local base
    base_label: str
    relation: str  # quantized, adapter or merge (the Hub's base_model_relation)
    adapters: list[str]
    variants: list[VariantRow]
    license: str | None
    license_from: str | None  # where the license came from, for the card's note
    terms: BaseTerms
    evaluated: bool
    reference: str | None = None
    template_origin: str | None = None
    template_proof: str | None = None
    ollama: str | None = None
    max_file_size: int | None = None
    hub_pull: list[str] = field(default_factory=list)  # template, system, params: what `ollama run hf.co/…` reads
    renderer: str | None = None  # which of its renderers Ollama uses (see modelkit.ollama.engine)
    projectors: list[str] = field(default_factory=list)  # the model sees images: its projector files
    on_hub: bool = True  # published to the Hub (else the card travels in an OCI artifact only)
    oci: str | None = None  # the OCI repository the variants are pushed to


def read_base_terms(readme: Path | None) -> BaseTerms:
    """The license and gating notes of a base model's card (its README.md), if it has one."""
    if readme is None or not readme.is_file():
        return BaseTerms()
    from huggingface_hub import ModelCard

    try:
        text = readme.read_text(encoding="utf-8")
        if not text.startswith("---"):
            return BaseTerms()  # a card without front matter states no license
        data = ModelCard(text).data.to_dict()  # type: ignore[no-untyped-call]  # huggingface_hub leaves it untyped
    except Exception:  # noqa: BLE001 - a card with broken front matter says nothing we can carry over
        return BaseTerms()

    def field(key: str) -> str | None:
        value = data.get(key)
        return str(value).strip() if value not in (None, "") else None

    return BaseTerms(field("license"), field("license_name"), field("license_link"),
                     field("extra_gated_heading"), field("extra_gated_prompt"))


def metadata(facts: CardFacts) -> str:
    """The card's YAML front matter, written by ``ModelCardData``."""
    from huggingface_hub import ModelCardData

    tags = ["gguf", "ollama", *(["lora"] if facts.adapters else []), *(["vision"] if facts.projectors else []),
            "llama.cpp", "modelkit"]
    extra: dict[str, Any] = {"pipeline_tag": "image-text-to-text"} if facts.projectors else {}
    if facts.base_model:
        extra.update(base_model=facts.base_model, base_model_relation=facts.relation)
    if facts.license:
        extra["license"] = facts.license
        inherited = facts.license == facts.terms.license
        if inherited and facts.terms.license_name:
            extra["license_name"] = facts.terms.license_name
        if inherited and facts.terms.license_link:
            extra["license_link"] = facts.terms.license_link
    return ModelCardData(library_name="gguf", tags=tags, **extra).to_yaml()


def render_card(facts: CardFacts) -> str:
    """The README.md text for ``facts``."""
    import jinja2

    from modelkit.ollama.modelfile import template_dir

    if not facts.variants:
        raise UserError("nothing to publish: the spec builds no variants")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(template_dir()), undefined=jinja2.StrictUndefined,
                             autoescape=False, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    rows = [_row(v) for v in facts.variants]
    return env.get_template(TEMPLATE_NAME).render(
        metadata=metadata(facts).strip(), title=facts.repo.split("/")[1], repo=facts.repo, model=facts.model,
        base_label=facts.base_label, adapters=facts.adapters, relation=facts.relation, variants=rows,
        first=rows[0], evaluated=facts.evaluated, reference=facts.reference, ollama=facts.ollama,
        split=any(len(v.files) > 1 for v in facts.variants), max_file_size=human_size(facts.max_file_size or 0),
        template_origin=facts.template_origin, template_proof=facts.template_proof,
        license_note=_license_note(facts), gated_note=_gated_note(facts),
        hub_pull=", ".join(f"`{name}`" for name in facts.hub_pull), renderer=facts.renderer,
        projectors=", ".join(f"`{name}`" for name in facts.projectors), on_hub=facts.on_hub, oci=facts.oci)


def _row(v: VariantRow) -> dict[str, Any]:
    q = v.quality
    passed, total = q.get("prompts_passed"), q.get("prompts_total")
    return {"quant": v.quant, "tag": v.tag, "files": [f"`{name}`" for name in v.files], "size": human_size(v.bytes),
            "modelfile": v.modelfile,
            "bits_per_weight": _number(q.get("bits_per_weight"), "{:.2f}"), "ppl": _number(q.get("ppl"), "{:.3f}"),
            "kld_mean": _number(q.get("kld_mean"), "{:.4f}"),
            "top1_agreement": _number(q.get("top1_agreement"), "{:.1%}"),
            "prompts": f"{passed}/{total}" if total else "–"}


def _number(value: Any, form: str) -> str:
    return form.format(value) if isinstance(value, (int, float)) else "–"


def _license_note(facts: CardFacts) -> str | None:
    if not facts.license:
        return None
    where = f" ({facts.license_from})" if facts.license_from else ""
    link = f" See {facts.terms.license_link}." if facts.terms.license_link and facts.license == facts.terms.license \
        else ""
    return f"License: `{facts.license}`{where}. These files are derived from the base model's weights and are " \
           f"under its terms.{link}"


def _gated_note(facts: CardFacts) -> str | None:
    terms = facts.terms
    if not (terms.gated_heading or terms.gated_prompt):
        return None
    heading = f"**{terms.gated_heading}**\n\n" if terms.gated_heading else ""
    prompt = "\n".join(f"> {line}" if line else ">" for line in (terms.gated_prompt or "").splitlines())
    return (f"Access to the base model {facts.base_label} is gated on the Hub; its conditions apply to these "
            f"files too:\n\n{heading}{prompt}").rstrip()
