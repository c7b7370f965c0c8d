"""Hugging Face Hub sources: which commit and which files a repo source means.

A spec names a repo and a revision (a branch, a tag, or a commit). Building needs a *commit* and
the list of files to fetch, known before downloading so the plan can tell what will change.
:func:`resolve` finds them, in this order: the lock file (reproducible, and offline); the Hub's
API (``model_info`` with file metadata, which also gives each LFS file's sha256 without
downloading it); the local Hugging Face cache (offline, ``HF_HUB_OFFLINE=1``).

Only the files a conversion reads are fetched: safetensors weights (or ``.bin`` when a repo has
no safetensors), configs and tokenizer files, the model card. A repo's ``original/`` copy of
the weights, ONNX exports, GGUFs and training states are skipped: for Llama 3.1 8B that alone
avoids downloading 16 GB twice.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelkit.errors import StepError, Unreachable, UserError
from modelkit.network import Failure, failure, hub_timeout, use_hub_timeout

_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")

MODEL_FILES = (
    "config.json", "generation_config.json", "*.safetensors", "model.safetensors.index.json",
    "tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "added_tokens.json", "vocab.json", "vocab.txt", "merges.txt", "chat_template.jinja",
    "chat_template.json", "preprocessor_config.json", "processor_config.json", "README.md",
)
MODEL_FILES_NO_SAFETENSORS = ("pytorch_model*.bin", "pytorch_model.bin.index.json")
# Besides its weights, an adapter repo may hold the tokenizer and chat template it was trained with,
# and its model card, whose metadata (base model, tags) convert_lora_to_gguf.py writes into the GGUF.
TOKENIZER_FILES = ("tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "added_tokens.json", "chat_template.jinja", "chat_template.json")
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "README.md", *TOKENIZER_FILES)
ADAPTER_FILES_NO_SAFETENSORS = ("adapter_model.bin",)


@dataclass(frozen=True)
class RepoSource:
    """A repo pinned to a commit, with the files to fetch and their sha256 where the Hub knows it."""

    repo: str
    revision: str
    commit: str
    files: dict[str, str | None] = field(default_factory=dict)  # relpath -> "sha256:..." or None

    @property
    def snapshot(self) -> Path:
        return cache_dir() / f"models--{self.repo.replace('/', '--')}" / "snapshots" / self.commit

    def lock_entry(self, downloaded: Mapping[str, str]) -> dict[str, Any]:
        """What ``modelkit.lock`` says of this source: the commit, and each file's digest (those the
        download recorded, ``downloaded``: path -> digest, over what the Hub said)."""
        prefix = f"{self.snapshot}/"
        files = {**self.files, **{path.removeprefix(prefix): digest for path, digest in downloaded.items()}}
        return {"repo": self.repo, "revision": self.revision, "commit": self.commit, "files": files}

    def without_weights(self) -> RepoSource:
        """The same source with only its small files (configs, tokenizer, chat template): what
        reading the chat template needs, fetched before gigabytes of weights."""
        small = {name: d for name, d in self.files.items() if not name.endswith((".safetensors", ".bin"))}
        return RepoSource(self.repo, self.revision, self.commit, small)


def cache_dir() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def blob_digest(path: Path) -> str | None:
    """The sha256 a Hugging Face cache already knows for ``path``, or None.

    In a cache snapshot every file is a symlink into ``blobs/``; LFS files' blobs are named by the
    sha256 of their content (git-tracked small files are named by their git SHA-1 instead, which
    is not a sha256 and is ignored here: those files are small and get hashed). The engine's
    hasher asks this first, so a 16 GB model in the cache is never read to be digested.
    """
    if not path.is_symlink():
        return None
    target = Path(os.path.realpath(path))
    if target.parent.name == "blobs" and _SHA256_HEX.fullmatch(target.name):
        return "sha256:" + target.name
    return None


def select_files(names: list[str], kind: str) -> list[str]:
    """The files of a repo that building from a model (``kind="model"``) or an adapter needs: for
    an adapter, its weights and the tokenizer and chat template it was trained with."""
    wanted, fallback = (MODEL_FILES, MODEL_FILES_NO_SAFETENSORS) if kind == "model" else \
        (ADAPTER_FILES, ADAPTER_FILES_NO_SAFETENSORS)
    top = [n for n in names if "/" not in n]
    chosen = [n for n in top if any(fnmatch.fnmatch(n, p) for p in wanted)]
    if not any(n.endswith(".safetensors") for n in chosen):
        chosen += [n for n in top if any(fnmatch.fnmatch(n, p) for p in fallback)]
    return sorted(chosen)


def resolve(repo: str, revision: str, kind: str, locked: Mapping[str, Any] | None = None) -> RepoSource:
    """Pin ``repo@revision`` to a commit and list its files (see the module docstring)."""
    if locked and locked.get("revision") == revision and isinstance(locked.get("files"), dict):
        return RepoSource(repo, revision, str(locked["commit"]), dict(locked["files"]))
    if not _offline():
        source = _resolve_online(repo, revision, kind)
        if source is not None:
            return source
    source = _resolve_cached(repo, revision, kind)
    if source is None:
        fetch_first = f"`hf download {repo} --revision {revision}` first"
        if _offline():
            raise UserError(f"{repo}@{revision}: not in the Hugging Face cache ({cache_dir()}) and HF_HUB_OFFLINE is "
                            f"set: connect once, or run {fetch_first}")
        trouble = _last_failure.get(repo) or Failure("it did not answer", "check the network")
        raise Unreachable(f"{repo}@{revision}: not in the Hugging Face cache ({cache_dir()}), and the Hub at "
                          f"{_endpoint()}: {trouble.what}; nothing was downloaded: {trouble.advice}, "
                          f"or run {fetch_first}")
    return source


_last_failure: dict[str, Failure] = {}


def _endpoint() -> str:
    from huggingface_hub import constants

    return str(constants.ENDPOINT)


def _failure(error: Exception) -> Failure:
    """What went wrong asking the Hub, in words (a network failure, or the error's first line)."""
    first = str(error).splitlines()[0][:200] if str(error) else ""
    return failure(error) or Failure(f"{type(error).__name__}: {first}", "check the repository and your access to it")


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _resolve_online(repo: str, revision: str, kind: str) -> RepoSource | None:
    """Ask the Hub; None when it cannot be reached (the caller falls back to the cache)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    use_hub_timeout()
    try:
        info = HfApi().model_info(repo, revision=revision, files_metadata=True, timeout=hub_timeout())
    except GatedRepoError:
        raise UserError(f"{repo} is gated: accept its license on huggingface.co and log in "
                        "(`hf auth login` or HF_TOKEN)") from None
    except RepositoryNotFoundError:
        raise UserError(f"{repo}: no such repository on the Hub (or it is private: set HF_TOKEN)") from None
    except RevisionNotFoundError:
        raise UserError(f"{repo}: no revision '{revision}'") from None
    except Exception as e:  # noqa: BLE001 - transport errors come from huggingface_hub's own HTTP stack
        _last_failure[repo] = _failure(e)
        return None
    siblings = {s.rfilename: s for s in info.siblings or []}
    files = {}
    for name in select_files(list(siblings), kind):
        lfs = siblings[name].lfs
        files[name] = f"sha256:{lfs.sha256}" if lfs else None
    if not files:
        raise UserError(f"{repo}@{revision}: the repository holds no {kind} files modelkit can convert")
    return RepoSource(repo, revision, str(info.sha), files)


def _resolve_cached(repo: str, revision: str, kind: str) -> RepoSource | None:
    folder = cache_dir() / f"models--{repo.replace('/', '--')}"
    commit = revision if _COMMIT.match(revision) else None
    ref = folder / "refs" / revision
    if commit is None and ref.is_file():
        commit = ref.read_text().strip()
    if commit is None or not (folder / "snapshots" / commit).is_dir():
        return None
    snapshot = folder / "snapshots" / commit
    names = [p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file()]
    files = {}
    for name in select_files(names, kind):
        target = Path(os.path.realpath(snapshot / name))
        files[name] = f"sha256:{target.name}" if _SHA256_HEX.fullmatch(target.name) else None
    return RepoSource(repo, revision, commit, files) if files else None


def download(source: RepoSource, progress: Any = None) -> Path:
    """Fetch the source's files into the Hugging Face cache; return the snapshot folder. A
    snapshot that already holds every file is returned as it is: nothing to fetch, and
    huggingface_hub before 2.0 asks the Hub for the file list even then (failing offline)."""
    if source.files and all((source.snapshot / name).is_file() for name in source.files):
        return source.snapshot
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    use_hub_timeout()
    try:
        path = snapshot_download(source.repo, revision=source.commit, allow_patterns=list(source.files),
                                 tqdm_class=progress)
    except Exception as e:  # transport errors come from huggingface_hub's own HTTP stack; others re-raised
        trouble = failure(e)
        if trouble is None and isinstance(e, LocalEntryNotFoundError):
            trouble = Failure("it cannot be reached", "connect once to download them")
        if trouble is not None:
            raise Unreachable(f"{source.repo}@{source.commit[:12]}: the Hub at {_endpoint()}: {trouble.what}; files "
                              f"already downloaded are kept: {trouble.advice}, then build again") from None
        if isinstance(e, (HfHubHTTPError, OSError)):
            raise StepError(f"{source.repo}: download failed: {str(e).splitlines()[0]}") from None
        raise
    if not _COMMIT.match(source.revision):
        # As huggingface_hub does when it resolves a branch: later offline runs find it by name.
        ref = cache_dir() / f"models--{source.repo.replace('/', '--')}" / "refs" / source.revision
        ref.parent.mkdir(parents=True, exist_ok=True)
        if not ref.is_file() or ref.read_text().strip() != source.commit:
            ref.write_text(source.commit)
    return Path(path)


def fetch_small(source: RepoSource, names: list[str] | tuple[str, ...]) -> Path:
    """Download those of ``names`` that ``source`` holds into the Hugging Face cache now, while
    planning, and return the snapshot folder.

    Planning must know whether an adapter needs a merge in PyTorch
    (:func:`modelkit.formats.peft.merge_route`), which reads the adapter's ``adapter_config.json``
    and tokenizer files, and the base's ``config.json`` and tokenizer when the adapter brings one
    or resizes the embeddings. They are small (kilobytes, a tokenizer.json a few MB) and are the
    very files the fetch targets download, which then find them in the cache: planning with a Hub
    adapter costs one early download of them, not a second one.
    """
    wanted = {n: source.files[n] for n in names if n in source.files and not (source.snapshot / n).is_file()}
    if wanted:
        from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars  # type: ignore[attr-defined]  # exported lazily

        quiet_already = are_progress_bars_disabled()
        disable_progress_bars()  # planning prints the plan, not download bars
        try:
            download(RepoSource(source.repo, source.revision, source.commit, wanted))
        finally:
            if not quiet_already:
                enable_progress_bars()
    return source.snapshot


def safetensors_shapes(source: RepoSource, name: str) -> dict[str, list[int]] | None:
    """Tensor name -> shape of ``source``'s safetensors file ``name`` (None if it has none), from
    its header only: read from the cache when the file is there, else fetched from the Hub with a
    range request of its first bytes (``parse_safetensors_file_metadata``), never its tensors, so
    planning with an adapter that holds gigabytes of embeddings downloads kilobytes."""
    from modelkit.formats.safetensors import NotSafetensors, read_header

    local = source.snapshot / name
    if local.is_file():
        try:
            return read_header(local).shapes
        except NotSafetensors as e:
            raise UserError(str(e)) from None
    if name not in source.files:
        return None
    if _offline():
        raise UserError(f"{source.repo}@{source.commit[:12]}: {name} is not in the Hugging Face cache and "
                        "HF_HUB_OFFLINE is set; planning reads its header to choose how to merge it: connect once")
    from huggingface_hub import HfApi

    use_hub_timeout()
    try:
        meta = HfApi().parse_safetensors_file_metadata(source.repo, name, revision=source.commit)
    except Exception as e:  # noqa: BLE001 - transport and parsing errors of huggingface_hub's own stack
        trouble = _failure(e)
        error = Unreachable if failure(e) else UserError
        raise error(f"{source.repo}@{source.commit[:12]}: cannot read the header of {name} from the Hub at "
                    f"{_endpoint()}: {trouble.what}: {trouble.advice}") from None
    return {tensor: list(info.shape) for tensor, info in meta.tensors.items()}
