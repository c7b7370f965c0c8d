"""What the model card states about a project, read from its spec, its sources and its build.

Kept apart from :mod:`.card` so that the card renders from plain data (tests render it without a
build) and this module is the only one that knows where a project keeps those facts: the base
model's card in its Hugging Face snapshot (or its local folder), the chat template step's proof,
the quality report.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from modelkit.publish.card import CardFacts, VariantRow, read_base_terms

if TYPE_CHECKING:
    from modelkit.project import Project


def card_facts(project: Project, repo: str, rows: list[VariantRow], hub_pull: list[str]) -> CardFacts:
    """The facts of ``project``'s card for ``repo``, with ``rows`` as its table of files and
    ``hub_pull`` the files ``ollama run hf.co/…`` reads."""
    spec = project.spec
    base_model = spec.base.repo
    terms = read_base_terms(_base_readme(project))
    license_, license_from = spec.publish.license, "set in model.toml"
    if license_ is None and terms.license:
        license_, license_from = terms.license, f"the base model's card, {base_model or 'the base folder'}"
    if spec.adapters:
        relation = "adapter" if spec.ollama.lora == "adapter" else "merge"
    else:
        relation = "quantized"
    origin, proof = _template(project)
    report = project.quality_report() if project.evaluates else {}
    reference = report.get("reference") or {}
    ref_text = None
    if reference.get("quant"):
        ppl = reference.get("ppl")
        ref_text = f"{reference['quant']}" + (f", perplexity {ppl:.3f}" if isinstance(ppl, (int, float)) else "")
    return CardFacts(
        repo=repo, model=spec.ollama_model, base_model=base_model, base_label=_base_label(project),
        relation=relation, adapters=[_adapter_label(a.repo, a.path, a.name) for a in spec.adapters],
        variants=rows, license=license_, license_from=license_from if license_ else None, terms=terms,
        evaluated=project.evaluates, reference=ref_text, template_origin=origin, template_proof=proof,
        ollama=spec.publish.ollama, max_file_size=spec.publish.max_bytes,
        hub_pull=hub_pull,
        renderer=next((c.words() for v in project.variants if (c := project.renderer(v)) is not None), None))


def _base_label(project: Project) -> str:
    base = project.spec.base
    if base.repo:
        return f"[{base.repo}](https://huggingface.co/{base.repo})"
    shown = base.path or base.gguf
    return f"a local model (`{shown}`)"


def _adapter_label(repo: str | None, path: Path | None, name: str) -> str:
    if repo:
        return f"[{repo}](https://huggingface.co/{repo})"
    return f"`{name}`"


def _base_readme(project: Project) -> Path | None:
    """The base model's card: in its Hugging Face snapshot, or its local folder."""
    from modelkit.hub import RepoSource

    base = project.spec.base
    if base.repo:
        for source in project.layout.sources.values():
            if isinstance(source, RepoSource) and source.repo == base.repo:
                return source.snapshot / "README.md"
        return None
    if base.path is not None:
        return project.loaded.resolve(base.path) / "README.md"
    return None


def _template(project: Project) -> tuple[str | None, str | None]:
    """Where the first variant's TEMPLATE came from, and the proof it passed."""
    from modelkit.steps.template import read_inherited

    for variant in project.variants:
        render = project.modelfile(variant)
        if render.inherited is not None and render.inherited.is_file():
            inherited = read_inherited(render.inherited)
            return f"translated from {inherited['origin']}'s Jinja chat template", inherited.get("proof")
        if render.template_file is not None:
            return f"given in `{render.template_file.name}`", None
        if render.template is not None:
            return "given in model.toml", None
    return None, None
