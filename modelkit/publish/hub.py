"""Uploading a publish to the Hugging Face Hub: one repository, one commit, through ``huggingface_hub``.

``create_repo(exist_ok=True)`` then a single ``create_commit`` with every file: the Hub applies a
commit whole or not at all, so a failed publish leaves the repository as it was. What is not
uploaded again is the Hub's decision, not ours: ``huggingface_hub`` asks the preupload endpoint
(which answers each file's current oid) and the LFS batch endpoint (which answers no upload
action for an object it already holds), skips what they say is there, and makes no commit at
all when no file changed. We only compare the repository's head before and after, to say which
of the two happened, and read its file list (``model_info``) to show which files are new.

Credentials are ``HF_TOKEN`` or the cached login (``hf auth login``), as everywhere in
``huggingface_hub``; :func:`modelkit.publish.plan.require_token` refuses a publish without them
before anything is sent.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from modelkit.core.hashing import sha256_file
from modelkit.core.process import Progress, ignore_progress
from modelkit.errors import PublishError, StepError, Unreachable
from modelkit.network import failure, use_hub_timeout
from modelkit.publish.plan import Upload


@dataclass(frozen=True)
class CommitResult:
    """What the Hub holds after a publish: its head, and whether this publish made it."""

    repo: str
    url: str
    head: str
    committed: bool
    changed: list[str]  # files new or different from what the repository held
    unchanged: list[str]


def upload(repo: str, files: list[Upload], private: bool, message: str,
           progress: Progress | None = None) -> CommitResult:
    """Commit ``files`` to ``repo`` (created if needed) in one commit; none if nothing changed."""
    from huggingface_hub import HfApi

    report = progress or ignore_progress
    api = HfApi()
    use_hub_timeout()
    with _hub_errors(repo):
        url = api.create_repo(repo, private=private, exist_ok=True, repo_type="model")
        remote, head_before = _remote_files(api, repo)
        operations = [_operation(f, report) for f in files]
        changed = [f.path_in_repo for f, op in zip(files, operations) if not _same(f, op, remote.get(f.path_in_repo))]
        for name in changed:
            report(None, f"{name}: new or changed")
        info = api.create_commit(repo, operations=operations, commit_message=message, repo_type="model")
    return CommitResult(repo, str(url), info.oid, info.oid != head_before, changed,
                        [f.path_in_repo for f in files if f.path_in_repo not in changed])


def _operation(f: Upload, report: Progress) -> Any:
    """A ``CommitOperationAdd`` for ``f``, its sha256 filled in when the build knows it (or hashed
    once here, with progress, instead of once more inside the library)."""
    from huggingface_hub import CommitOperationAdd

    if f.local is None:
        return CommitOperationAdd(path_in_repo=f.path_in_repo, path_or_fileobj=(f.text or "").encode("utf-8"))
    op = CommitOperationAdd(path_in_repo=f.path_in_repo, path_or_fileobj=str(f.local))
    digest = f.digest
    if digest is None and op.upload_info.size > 10_000_000:
        size = op.upload_info.size
        done = [0]

        def read(n: int) -> None:
            done[0] += n
            report(done[0] / size, f"hashing {f.path_in_repo}")

        digest = sha256_file(f.local, read).removeprefix("sha256:")
    if digest is not None:
        op.upload_info.sha256 = bytes.fromhex(digest)
    return op


def _same(f: Upload, op: Any, remote: str | None) -> bool:
    """Whether the repository already holds this content at this path: by the sha256 of an LFS
    file, by the git blob id of a small one (whichever the Hub reported)."""
    if not remote:
        return False
    if len(remote) == 64:
        return bool(op.upload_info.sha256.hex() == remote)
    data = (f.text or "").encode("utf-8") if f.local is None else f.local.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == remote


def _remote_files(api: Any, repo: str) -> tuple[dict[str, str], str | None]:
    """The repository's files (path -> LFS sha256 or git blob id) and its head commit."""
    info = api.model_info(repo, files_metadata=True)
    files = {}
    for sibling in info.siblings or []:
        files[sibling.rfilename] = sibling.lfs.sha256 if sibling.lfs else (sibling.blob_id or "")
    return files, info.sha


class _hub_errors:
    """Turn the Hub's refusals into one-line errors that say what to do."""

    def __init__(self, repo: str) -> None:
        self.repo = repo

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: object) -> None:
        if error is None:
            return
        from huggingface_hub import constants
        from huggingface_hub.errors import HfHubHTTPError

        trouble = failure(error)
        if trouble is not None:
            raise Unreachable(f"{self.repo}: the Hub at {constants.ENDPOINT}: {trouble.what}; nothing was committed: "
                              f"{trouble.advice}, then run `modelkit publish` again") from None
        if isinstance(error, HfHubHTTPError) and error.response is not None:
            status = error.response.status_code
            first = str(error).splitlines()[0]
            if status == 401:
                raise PublishError(f"the Hub refused the credentials ({first}): check HF_TOKEN or run "
                                   "`hf auth login`; nothing was committed") from None
            if status == 403:
                raise PublishError(f"{self.repo}: this token may not write there ({first}): use a token with "
                                   "write access, or a repository you own; nothing was committed") from None
            raise StepError(f"{self.repo}: the Hub answered {status} ({first}); nothing was committed") from None
        if isinstance(error, ValueError) and "Invalid metadata in README.md" in str(error):
            detail = " ".join(line.strip("- ") for line in str(error).splitlines()[1:])
            raise PublishError(f"the Hub refused the model card's metadata ({detail}): check [publish] license; "
                               "nothing was committed") from None
        if isinstance(error, (OSError, ValueError, RuntimeError)) and not isinstance(error, PublishError):
            detail = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            raise StepError(f"{self.repo}: upload failed ({detail}); nothing was committed") from None
