"""What one `modelkit publish` uploads and pushes, decided before anything leaves the machine.

Every check that can refuse a publish runs here, so a refusal uploads nothing: a repository id
that is not ``owner/name``, a build that is not complete and fresh (a GGUF or Modelfile missing,
or older than its inputs), no lock file, no Hugging Face credentials. The plan then lists the
files by their names in the repository:

- each variant's GGUF as ``<model>-<QUANT>.gguf`` (the quantization in the name is how the Hub
  answers ``hf.co/org/name:Q4_K_M`` and ``llama-server -hf``), split when it is over
  ``[publish] max_file_size`` (see :mod:`.split`); a GGUF adapter it loads, under its own name;
- its Modelfile, with FROM (and ADAPTER) pointing at the files beside it in the repository;
- ``modelkit.lock`` and the spec, so the repository says exactly how it was built;
- ``README.md``, the model card (:mod:`.card`).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelkit.errors import PublishError
from modelkit.publish.card import CardFacts, VariantRow, render_card

if TYPE_CHECKING:
    from modelkit.oci.reference import Reference
    from modelkit.project import Project
    from modelkit.rules import Variant

_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Upload:
    """One file of the commit: its name in the repository and its bytes (a local file or text);
    ``digest`` is its sha256 when the build already knows it (so it is not read again to hash)."""

    path_in_repo: str
    what: str
    local: Path | None = None
    text: str | None = None
    digest: str | None = None

    @property
    def size(self) -> int:
        if self.local is not None:
            return self.local.stat().st_size
        return len((self.text or "").encode("utf-8"))


@dataclass(frozen=True)
class PublishedVariant:
    """A variant as it goes up: its GGUF (split or not), its Modelfile, the Ollama names to push."""

    variant: Variant
    gguf: Upload
    adapters: list[Upload]
    pushes: list[tuple[str, str]]  # (the local Ollama model, its name in the registry)
    projector: Upload | None = None
    """The vision half, ``mmproj-<model>-<TYPE>.gguf``: the name ``llama-server -hf`` and ``ollama run
    hf.co/…`` look for beside the GGUF."""

    @property
    def beside(self) -> list[Upload]:
        """What goes up beside the GGUF: its adapter, its projector."""
        return [*self.adapters, *([self.projector] if self.projector else [])]


@dataclass
class PublishPlan:
    """A publish, decided: where to, what, and the facts its model card states."""

    project: Project
    repo: str | None
    """The Hugging Face repository (None: not published to the Hub)."""
    private: bool
    max_bytes: int
    variants: list[PublishedVariant]
    extras: list[Upload]  # the lock file and the spec
    ollama_host: str | None = None
    insecure: bool = False
    """Push over plain HTTP (``[publish] insecure``)."""
    parts: dict[str, list[Upload]] = field(default_factory=dict)  # a GGUF's name -> its split set
    oci: Reference | None = None
    """The OCI repository every variant is pushed to as a ModelPack artifact (``[publish] oci``)."""

    @property
    def oversized(self) -> list[Upload]:
        """GGUFs over the size limit, which are published as split sets."""
        return [v.gguf for v in self.variants if v.gguf.size > self.max_bytes]

    @property
    def pushes(self) -> list[tuple[str, str]]:
        return [p for v in self.variants for p in v.pushes]

    def facts(self) -> CardFacts:
        """What the model card says, with the files as they are published now (split or not)."""
        from modelkit.publish.facts import card_facts

        projectors = list(dict.fromkeys(pv.projector.path_in_repo for pv in self.variants if pv.projector))
        repo = self.repo or f"{self.project.spec.ollama_model}/{self.project.spec.ollama_model}"
        hub_pull = [f.path_in_repo for f in hub_pull_files(self.project)]
        return dataclasses.replace(card_facts(self.project, repo, rows(self), hub_pull), projectors=projectors,
                                   on_hub=self.repo is not None, oci=str(self.oci) if self.oci else None)

    def card(self) -> str:
        """The README.md text."""
        return render_card(self.facts())


def check_repo_id(repo: str, where: str) -> str:
    """``repo`` if it is a Hugging Face repository id (``owner/name``); a one-line error otherwise."""
    if not _REPO.match(repo) or ".." in repo or repo.endswith((".git", ".")):
        raise PublishError(f"{where}: '{repo}' is not a Hugging Face repository id (expected 'owner/name')")
    return repo


def plan_publish(project: Project, repo: str | None = None, private: bool | None = None,
                 need_credentials: bool = True, oci: str | None = None, insecure: bool | None = None) -> PublishPlan:
    """Decide what `modelkit publish` does for ``project``; a :class:`PublishError` (nothing
    uploaded) when it cannot: see the module docstring. ``oci``, ``insecure``: ``--oci``, ``--insecure``."""
    settings = project.spec.publish
    where = "--repo" if repo is not None else project.loaded.where("publish", "repo")
    chosen = repo if repo is not None else settings.repo
    target = _oci_target(project, oci)
    if chosen is None and target is None and not settings.ollama:
        raise PublishError(f"{project.loaded.path.name}: nowhere to publish to: set [publish] repo = "
                           "\"owner/name\" (the Hugging Face Hub), oci = \"registry/namespace/model\" or ollama = "
                           "\"namespace/model\", or pass --repo or --oci")
    if chosen is not None:
        check_repo_id(chosen, where)
    _check_built(project)
    if need_credentials and chosen is not None:
        require_token()
    variants = [_published(project, v) for v in project.variants]
    _check_one_registry_model(project, variants)
    extras = [Upload("modelkit.lock", "lock file", local=project.lock_path),
              Upload(project.loaded.path.name, "spec", local=project.loaded.path), *hub_pull_files(project)]
    return PublishPlan(project, chosen, settings.private if private is None else private, settings.max_bytes,
                       variants, extras, project.spec.ollama.host, settings.insecure if insecure is None else insecure,
                       oci=target)


def _oci_target(project: Project, given: str | None) -> Reference | None:
    """The OCI repository to push to (``--oci`` over ``[publish] oci``), without a tag."""
    from modelkit.oci.reference import parse_reference

    text = given if given is not None else project.spec.publish.oci
    if text is None:
        return None
    where = "--oci" if given is not None else project.loaded.where("publish", "oci")
    try:
        target = parse_reference(text, default_tag=None)
    except ValueError as e:
        raise PublishError(f"{where}: {e}") from None
    if target.tag or target.digest:
        raise PublishError(f"{where}: '{text}' names a tag or digest: give 'registry/namespace/model' (each variant "
                           "is pushed with its own tag)")
    return target


def rows(plan: PublishPlan) -> list[VariantRow]:
    """The card's table: one row per variant, with the files it is published as now."""
    quality = {r["ref"]: r for r in plan.project.quality_report()["variants"]} if plan.project.evaluates else {}
    out = []
    for pv in plan.variants:
        parts = plan.parts.get(pv.gguf.path_in_repo) or [pv.gguf]
        out.append(VariantRow(pv.variant.quant, pv.variant.tag, [p.path_in_repo for p in parts],
                              sum(p.size for p in parts), modelfile_name(pv.variant),
                              quality.get(pv.variant.ref, {})))
    return out


def gguf_name(variant: Variant) -> str:
    return f"{variant.model}-{variant.quant}.gguf"


def modelfile_name(variant: Variant) -> str:
    return f"{variant.model}-{variant.quant}.Modelfile"


def _published(project: Project, variant: Variant) -> PublishedVariant:
    render = project.modelfile(variant)
    adapters = [Upload(Path(a).name, "GGUF adapter", local=(project.loaded.build_dir / a).resolve(),
                       digest=known_digest(project, (project.loaded.build_dir / a).resolve()))
                for a in render.adapters]
    gguf = Upload(gguf_name(variant), f"GGUF {variant.quant}", local=variant.gguf,
                  digest=known_digest(project, variant.gguf))
    projector = None if variant.projector is None else Upload(
        projector_name(project, variant), "projector (images)", local=variant.projector,
        digest=known_digest(project, variant.projector))
    return PublishedVariant(variant, gguf, adapters, _pushes(project, variant), projector)


def projector_name(project: Project, variant: Variant) -> str:
    """``mmproj-<model>-<TYPE>.gguf``: the projector's type is the spec's (or the ready file's own name)."""
    if variant.projector_target is None and variant.projector is not None:
        return variant.projector.name if variant.projector.name.startswith("mmproj") else f"mmproj-{variant.model}.gguf"
    return f"mmproj-{variant.model}-{project.spec.vision.projector.upper()}.gguf"


def modelfile_upload(project: Project, pv: PublishedVariant, gguf_in_repo: str) -> Upload:
    """The variant's Modelfile as built, with FROM and ADAPTER naming the files beside it in the repo."""
    render = project.modelfile(pv.variant)
    local = dataclasses.replace(render, from_=f"./{gguf_in_repo}",
                                adapters=[f"./{a.path_in_repo}" for a in pv.adapters],
                                projector=f"./{pv.projector.path_in_repo}" if pv.projector else None)
    return Upload(modelfile_name(pv.variant), "Modelfile", text=local.content())


def hub_pull_files(project: Project) -> list[Upload]:
    """``template``, ``system`` and ``params`` at the repository's root: what ``ollama run
    hf.co/owner/repo:QUANT`` takes instead of guessing a template from the GGUF's Jinja (Hugging
    Face's convention: hub-docs ``ollama.md``, "Custom Chat Template and Parameters"). They are the
    registered Modelfile's TEMPLATE, SYSTEM and PARAMETERs (``params`` in Ollama's option names and
    types). One set serves every variant, so it is written only when the variants agree on it."""
    import json

    from modelkit.ollama.params import check_parameters

    seen = set()
    for variant in project.variants:
        render = project.modelfile(variant)
        params = json.dumps(check_parameters(render.resolved_parameters()), ensure_ascii=False, indent=2)
        seen.add((render.resolved_template(), render.system, params))
    if len(seen) != 1:
        return []
    template, system, params = seen.pop()
    files = [Upload("template", "Go TEMPLATE for ollama run hf.co/…", text=template)] if template else []
    files += [Upload("system", "system prompt for ollama run hf.co/…", text=system)] if system else []
    if params != "{}":
        files.append(Upload("params", "parameters for ollama run hf.co/…", text=params + "\n"))
    return files


def _pushes(project: Project, variant: Variant) -> list[tuple[str, str]]:
    from modelkit.steps.register import Register

    target = project.spec.publish.ollama
    if target is None:
        return []
    out = []
    for name in variant.registrations:
        action = project.graph[name].action
        assert isinstance(action, Register)
        out.append((action.ref, f"{target}:{action.ref.rsplit(':', 1)[1]}"))
    return out


def _check_one_registry_model(project: Project, variants: list[PublishedVariant]) -> None:
    target = project.spec.publish.ollama
    if target is None:
        return
    where = project.loaded.where("publish", "ollama")
    if project.spec.ollama.register_with == "off" or not any(v.pushes for v in variants):
        raise PublishError(f"{where}: pushing to Ollama's registry needs the variants registered first: "
                           "set [ollama] register to 'api' or 'cli' and build")
    models = sorted({v.variant.model for v in variants})
    if len(models) > 1:
        raise PublishError(f"{where}: '{target}' names one registry model, but the spec makes {len(models)} "
                           f"({', '.join(models)}, one per adapter); publish one adapter per spec")


def _check_built(project: Project) -> None:
    """Every file the publish reads exists and is fresh: a one-line error naming the first that is not."""
    if not project.variants:
        raise PublishError(f"{project.loaded.path.name}: the spec builds no variants; nothing to publish")
    wanted: set[Path] = set()
    for v in project.variants:
        wanted |= {p for p in (v.gguf, v.modelfile, v.evaluation, v.verdict) if p is not None}
    names = [t.name for t in project.graph if wanted & set(t.action.outputs())]
    for status in project.plan(names):
        if not status.fresh:
            raise PublishError(f"{status.name} is not built ({status.reason}): run `modelkit build` first; "
                               "nothing was uploaded")
    if not project.lock_path.is_file():
        raise PublishError(f"{project.lock_path.name} is missing: run `modelkit build` (which writes it) first")


def known_digest(project: Project, path: Path) -> str | None:
    """The sha256 the build recorded for ``path`` (hex), so a big GGUF is not read again to hash it."""
    for target in project.graph:
        if path in target.action.outputs():
            record = project.state.target(target.name)
            if record is None:
                return None
            for key, digest in record.outputs.items():
                if (project.root / key).resolve() == path.resolve() and str(digest).startswith("sha256:"):
                    return str(digest).removeprefix("sha256:")
    return None


def require_token() -> str:
    """The Hugging Face token (``HF_TOKEN`` or the cached login); a one-line error when there is none."""
    from huggingface_hub import get_token

    token = get_token()
    if not token:
        raise PublishError("no Hugging Face credentials: set HF_TOKEN or run `hf auth login`; nothing was uploaded")
    return token


def describe(plan: PublishPlan) -> list[dict[str, Any]]:
    """What would go up, one entry per file (``--dry-run``)."""
    out: list[dict[str, Any]] = []
    for pv in plan.variants:
        parts = plan.parts.get(pv.gguf.path_in_repo)
        note = "" if parts or pv.gguf.size <= plan.max_bytes else "split with llama-gguf-split first"
        for up in parts or [pv.gguf]:
            out.append({"path": up.path_in_repo, "what": up.what, "bytes": up.size, "from": str(up.local),
                        "note": note})
        out += [{"path": a.path_in_repo, "what": a.what, "bytes": a.size, "from": str(a.local), "note": ""}
                for a in pv.beside]
        mf = modelfile_upload(plan.project, pv, (parts or [pv.gguf])[0].path_in_repo)
        out.append({"path": mf.path_in_repo, "what": mf.what, "bytes": mf.size, "from": None, "note": ""})
    for up in plan.extras:
        out.append({"path": up.path_in_repo, "what": up.what, "bytes": up.size, "from": str(up.local), "note": ""})
    return out
