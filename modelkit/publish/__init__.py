"""Publishing a built project, behind one front door: the Hugging Face Hub, an OCI registry, Ollama's registry.

```python
from modelkit import Project
from modelkit.publish import plan_publish, publish
plan = plan_publish(Project.open("model.toml"))   # refuses before anything is sent
result = publish(plan)                             # one commit (or none), then `ollama push`
```

Modules, one concept each:

* :mod:`.plan` — what goes up, and every check that can refuse a publish (repo id, a fresh
  build, credentials), all before the first byte is sent;
* :mod:`.card` and :mod:`.facts` — the model card, and what it states about the project;
* :mod:`.split` — GGUFs over the Hub's file size limit, split with ``llama-gguf-split``;
* :mod:`.hub` — the commit, through ``huggingface_hub``;
* :mod:`.push` — ``ollama push`` of every registered variant, through the official client;
* :mod:`.oci` — every variant to an OCI registry as a ModelPack artifact (:mod:`modelkit.oci`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from modelkit.core.lazy import lazy_exports
from modelkit.core.process import Progress

if TYPE_CHECKING:  # the names served on first use (core/lazy.py reads them here), as editors see them
    from modelkit.publish.card import CardFacts as CardFacts
    from modelkit.publish.card import VariantRow as VariantRow
    from modelkit.publish.card import render_card as render_card
    from modelkit.publish.hub import CommitResult as CommitResult
    from modelkit.publish.hub import upload as upload
    from modelkit.publish.oci import OCIPushed as OCIPushed
    from modelkit.publish.oci import push_artifacts as push_artifacts
    from modelkit.publish.plan import PublishPlan as PublishPlan
    from modelkit.publish.plan import Upload as Upload
    from modelkit.publish.plan import check_repo_id as check_repo_id
    from modelkit.publish.plan import describe as describe
    from modelkit.publish.plan import plan_publish as plan_publish
    from modelkit.publish.push import Pushed as Pushed
    from modelkit.publish.push import push_all as push_all
    from modelkit.publish.split import merge_parts as merge_parts
    from modelkit.publish.split import split_gguf as split_gguf


__getattr__, _LAZY = lazy_exports(__name__, __file__)


@dataclass
class PublishResult:
    """What a publish did: the commit (or that nothing changed), what was pushed, what was deferred."""

    commit: CommitResult | None
    """The Hub commit (None when the plan publishes to no Hugging Face repository)."""
    pushed: list[Pushed] = field(default_factory=list)
    deferred: str | None = None  # why the Ollama push waits for the next publish
    artifacts: list[OCIPushed] = field(default_factory=list)
    """What each variant's push to the OCI registry did (``[publish] oci``)."""


def prepare(plan: PublishPlan, progress: Progress | None = None) -> list[Upload]:
    """Every file of the commit, GGUFs over the limit split first (see :mod:`.split`)."""
    from modelkit.publish.plan import Upload, modelfile_upload
    from modelkit.publish.split import split_gguf

    for gguf in plan.oversized:
        tool = plan.project.require_toolchain().gguf_split
        folder = plan.project.loaded.state_dir / "publish" / "split"
        plan.parts[gguf.path_in_repo] = split_gguf(tool, gguf, plan.max_bytes, folder, progress)
    files: dict[str, Upload] = {}
    for pv in plan.variants:
        parts = plan.parts.get(pv.gguf.path_in_repo) or [pv.gguf]
        for up in [*parts, *pv.beside, modelfile_upload(plan.project, pv, parts[0].path_in_repo)]:
            files.setdefault(up.path_in_repo, up)
    for up in plan.extras:
        files.setdefault(up.path_in_repo, up)
    files["README.md"] = Upload("README.md", "model card", text=plan.card())
    return list(files.values())


def publish(plan: PublishPlan, progress: Progress | None = None) -> PublishResult:
    """Split, commit, push, under the project's build lock (so no build changes a file mid-upload)."""
    from modelkit.core.locks import FileLock
    from modelkit.errors import RegistryUnavailable
    from modelkit.publish.hub import upload
    from modelkit.publish.oci import push_artifacts
    from modelkit.publish.push import push_all

    with FileLock(plan.project.build_lock_path, wait=False, retry_hint="publish when it has finished"):
        files = prepare(plan, progress)
        variants = ", ".join(v.variant.quant for v in plan.variants)
        commit = None if plan.repo is None else upload(
            plan.repo, files, plan.private, f"modelkit publish: {plan.project.spec.name} ({variants})", progress)
        result = PublishResult(commit)
        if plan.oci is not None:
            result.artifacts = push_artifacts(plan, plan.oci, progress)
        if plan.pushes:
            try:
                result.pushed = push_all(plan.pushes, host=plan.ollama_host, progress=progress,
                                         insecure=plan.insecure)
            except RegistryUnavailable as e:
                result.deferred = str(e)
    return result


__all__ = sorted([*_LAZY, "PublishResult", "prepare", "publish"])
