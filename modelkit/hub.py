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
from dataclasses import dataclass, field
from pathlib import Path

from modelkit.errors import StepError, UserError

_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")

MODEL_FILES = (
    "config.json", "generation_config.json", "*.safetensors", "model.safetensors.index.json",
    "tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "added_tokens.json", "vocab.json", "vocab.txt", "merges.txt", "chat_template.jinja",
    "chat_template.json", "preprocessor_config.json", "README.md",
)
MODEL_FILES_NO_SAFETENSORS = ("pytorch_model*.bin", "pytorch_model.bin.index.json")
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
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
    """The files of a repo that converting a model (``kind="model"``) or adapter needs."""
    wanted, fallback = (MODEL_FILES, MODEL_FILES_NO_SAFETENSORS) if kind == "model" else \
        (ADAPTER_FILES, ADAPTER_FILES_NO_SAFETENSORS)
    top = [n for n in names if "/" not in n]
    chosen = [n for n in top if any(fnmatch.fnmatch(n, p) for p in wanted)]
    if not any(n.endswith(".safetensors") for n in chosen):
        chosen += [n for n in top if any(fnmatch.fnmatch(n, p) for p in fallback)]
    return sorted(chosen)


def resolve(repo: str, revision: str, kind: str, locked: dict[str, object] | None = None) -> RepoSource:
    """Pin ``repo@revision`` to a commit and list its files (see the module docstring)."""
    if locked and locked.get("revision") == revision and isinstance(locked.get("files"), dict):
        return RepoSource(repo, revision, str(locked["commit"]), dict(locked["files"]))  # type: ignore[arg-type]
    if not _offline():
        source = _resolve_online(repo, revision, kind)
        if source is not None:
            return source
    source = _resolve_cached(repo, revision, kind)
    if source is None:
        where = "offline (HF_HUB_OFFLINE is set)" if _offline() else \
            f"the Hub did not answer ({_last_failure.get(repo, 'no reply')})"
        raise UserError(f"{repo}@{revision}: not in the Hugging Face cache ({cache_dir()}) and {where}; "
                        "connect once, or run `huggingface-cli download` first")
    return source


_last_failure: dict[str, str] = {}


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _resolve_online(repo: str, revision: str, kind: str) -> RepoSource | None:
    """Ask the Hub; None when it cannot be reached (the caller falls back to the cache)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (GatedRepoError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    try:
        info = HfApi().model_info(repo, revision=revision, files_metadata=True)
    except GatedRepoError:
        raise UserError(f"{repo} is gated: accept its license on huggingface.co and log in "
                        "(`hf auth login` or HF_TOKEN)") from None
    except RepositoryNotFoundError:
        raise UserError(f"{repo}: no such repository on the Hub (or it is private: set HF_TOKEN)") from None
    except RevisionNotFoundError:
        raise UserError(f"{repo}: no revision '{revision}'") from None
    except Exception as e:  # noqa: BLE001 - transport errors come from huggingface_hub's own HTTP stack
        _last_failure[repo] = f"{type(e).__name__}: {e}".splitlines()[0][:200]
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


def download(source: RepoSource, progress: object | None = None) -> Path:
    """Fetch the source's files into the Hugging Face cache; return the snapshot folder."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        path = snapshot_download(source.repo, revision=source.commit, allow_patterns=list(source.files),
                                 tqdm_class=progress)  # type: ignore[arg-type]
    except LocalEntryNotFoundError:
        raise UserError(f"{source.repo}@{source.commit[:12]}: files missing from the Hugging Face cache and "
                        "the Hub cannot be reached; connect once to download them") from None
    except (HfHubHTTPError, OSError) as e:
        raise StepError(f"{source.repo}: download failed: {str(e).splitlines()[0]}") from None
    if not _COMMIT.match(source.revision):
        # As huggingface_hub does when it resolves a branch: later offline runs find it by name.
        ref = cache_dir() / f"models--{source.repo.replace('/', '--')}" / "refs" / source.revision
        ref.parent.mkdir(parents=True, exist_ok=True)
        if not ref.is_file() or ref.read_text().strip() != source.commit:
            ref.write_text(source.commit)
    return Path(path)
