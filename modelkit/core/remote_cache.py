"""The remote artifact cache: build outputs shared between machines through one fsspec URL.

A team fine-tunes on one GPU box and tries the models on laptops; CI checks ``modelkit build
--locked``. Every one of them would convert and quantize the same gigabytes again, although an
action key names the result exactly. With ``[cache] remote`` (or ``$MODELKIT_REMOTE_CACHE``) a
stale target is first looked up in the remote; after a target is built, its outputs are uploaded.

Layout under the URL (``s3://bucket/prefix``, ``file:///mnt/shared/modelkit``,
``hf://datasets/org/cache``, ``gs://…``)::

    blobs/<sha256 of the bytes>        one file per distinct artifact (content-addressed)
    keys/<action key>.json             {"version", "key", "outputs": [{name, digest, size}]}

Why it is safe to share:

- **Manifest last.** A key looks complete only once its manifest exists, and the manifest is
  written after every blob it names. An interrupted upload leaves at most blobs nobody names.
- **Content-addressed blobs.** Two machines uploading the same key write the same blob names;
  the bytes under a name never change. Where a put is not atomic (a shared folder), a blob is
  written under a temporary name and renamed.
- **Checked downloads.** A hit is streamed to the target's temporary name and hashed while it is
  written (each byte read once); a size or digest that disagrees with the manifest discards the
  download, says so, and the target is built locally. The engine renames it into place exactly
  as it does a local build.
- **Never fatal.** A remote that cannot be reached, a bucket that does not exist, missing
  credentials: one line, then the build goes on locally. A remote that cannot be written to
  (read-only credentials) is said once and only restores. A refused read of one entry is a miss,
  not the end of the remote: S3 answers 403, not 404, for a key it does not hold when the
  credentials may read objects but not list the bucket.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelkit.core.units import human_size
from modelkit.errors import RemoteCacheError, Unreachable

ENV = "MODELKIT_REMOTE_CACHE"
MANIFEST_VERSION = 1
CHUNK = 8 << 20
SCHEMES: dict[str, str | None] = {"file": None, "s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs",
                                  "hf": "huggingface_hub"}
"""Known URL schemes and the package that implements each (None: built into fsspec)."""
ATOMIC_PUT = {"s3", "s3a", "gs", "gcs", "hf"}
"""Object stores, where an object appears whole or not at all: no temporary name needed."""
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")

Notify = Callable[[str], None]
"""Says one line to the user (a warning; the build goes on)."""
Progress = Callable[[float | None, str], None]


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a remote cache (unknown scheme, no scheme), or None."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme:
        return f"'{url}' is not a URL: write s3://bucket/prefix, file:///path, hf://datasets/org/name or gs://bucket"
    if scheme not in SCHEMES:
        return f"unknown scheme '{scheme}://' (known: {', '.join(s + '://' for s in sorted(SCHEMES))})"
    if not rest.strip("/"):
        return f"'{url}' names no bucket or folder"
    return None


def choose_url(spec_url: str | None, environ: dict[str, str] | os._Environ[str] = os.environ) -> str | None:
    """The remote to use: ``$MODELKIT_REMOTE_CACHE`` wins over the spec (empty turns it off)."""
    url = environ.get(ENV, spec_url)
    if not url:
        return None
    problem = url_problem(url)
    if problem:
        where = f"${ENV}" if ENV in environ else "cache.remote"
        raise RemoteCacheError(f"{where}: {problem}")
    return url


@dataclass(frozen=True)
class Entry:
    """One output in a remote manifest."""

    name: str
    digest: str
    size: int


class Unusable(Exception):
    """The remote cannot be used now (unreachable, no such bucket, no credentials); never escapes."""


class RemoteCache:
    """Looks keys up in, restores from and uploads to one remote (see the module docstring).

    ``notify`` says the lines a user should see (each at most once); ``push``: upload at all.
    """

    def __init__(self, url: str, notify: Notify | None = None, push: bool = True) -> None:
        self.url = url.rstrip("/")
        self.scheme = url.partition("://")[0]
        self.notify = notify or (lambda line: None)
        self.pushing = push
        self.bytes_down = 0
        self.bytes_up = 0
        self.restored = 0
        """Targets restored by :meth:`fetch`; ``missed``: those it did not find (or could not take)."""
        self.missed = 0
        self._fs: Any = None
        self._root = ""
        self._broken: str | None = None
        self._said: set[str] = set()
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._jobs: list[Future[None]] = []
        self._queued = 0

    # -- connecting --------------------------------------------------------------------------

    def _say(self, line: str) -> None:
        with self._lock:
            if line in self._said:
                return
            self._said.add(line)
        self.notify(line)

    def _connect(self) -> tuple[Any, str]:
        """The filesystem and root path; :class:`Unusable` (said once) when there is none."""
        if self._broken:
            raise Unusable(self._broken)
        if self._fs is None:
            try:
                self._fs, self._root = _open(self.url, self.scheme)
            except RemoteCacheError:
                raise
            except Unusable as e:
                self._give_up(str(e))
            except Exception as e:  # noqa: BLE001 - each fsspec backend fails in its own way
                self._give_up(_describe(e))
        return self._fs, self._root

    def _give_up(self, why: str) -> None:
        self._broken = why
        self._say(f"remote cache {self.url} is not usable ({why}): building locally")
        raise Unusable(why)

    def _path(self, *parts: str) -> str:
        return "/".join([self._root.rstrip("/"), *parts])

    # -- restoring ---------------------------------------------------------------------------

    def lookup(self, key: str) -> list[Entry] | None:
        """The manifest of ``key``, or None (a miss, or a remote that cannot be used now)."""
        try:
            fs, _ = self._connect()
            try:
                data = fs.cat_file(self._path("keys", _hex(key) + ".json"))
            except FileNotFoundError:
                return None
        except Unusable:
            return None
        except Exception as e:  # noqa: BLE001 - transport errors come from the backend's own stack
            if _is_permission(e):
                self._say(f"remote cache {self.url}: reading its entries is refused ({_describe(e)}), which S3 "
                          "also answers for an entry it does not hold when these credentials may not list the "
                          "bucket (s3:ListBucket): each refusal counts as a miss")
                return None
            try:
                self._give_up(_describe(e))  # unreachable: asking again for every target only waits longer
            except Unusable:
                return None
        entries = _parse_manifest(data, key)
        if entries is None:
            self._say(f"remote cache {self.url}: the manifest of {_hex(key)[:12]} is not valid: building locally")
        return entries

    def fetch(self, key: str, outputs: list[Path], tmp_names: dict[Path, Path],
              progress: Progress, counted: bool = True) -> dict[Path, str] | None:
        """Download the outputs of ``key`` to their temporary names; their digests, or None when
        the remote has no complete, matching entry (nothing is left at the temporary names).
        ``counted``: a restore the user sees as one (not outputs handed back by a cluster's worker)."""
        entries = self.lookup(key)
        counted_as = 1 if counted else 0
        self.missed += counted_as  # until the last byte is checked
        if entries is None:
            return None
        if sorted(e.name for e in entries) != sorted(out.name for out in outputs) or len(entries) != len(outputs):
            self._say(f"remote cache {self.url}: the entry {_hex(key)[:12]} names other outputs: building locally")
            return None
        total = sum(e.size for e in entries)
        done = 0
        restored: dict[Path, str] = {}
        try:
            for entry, out in zip(entries, sorted(outputs, key=lambda p: p.name)):
                def restoring(n: int, done: int = done) -> None:
                    progress((done + n) / total if total else None,
                             f"restoring from the remote cache {human_size(done + n)}/{human_size(total)}")

                problem = self._download(entry, tmp_names[out], restoring, counted)
                if problem:
                    self._say(f"remote cache {self.url}: {entry.name} of {_hex(key)[:12]} {problem}: building locally")
                    break
                done += entry.size
                restored[tmp_names[out]] = entry.digest
            else:
                self.missed -= counted_as
                self.restored += counted_as
                return restored
        except Exception as e:  # noqa: BLE001 - a transfer that fails half-way is a miss, said once
            self._say(f"remote cache {self.url}: restoring {_hex(key)[:12]} failed ({_describe(e)}): building locally")
        for out in outputs:
            tmp_names[out].unlink(missing_ok=True)
        return None

    def _download(self, entry: Entry, dest: Path, progress: Callable[[int], None], counted: bool = True) -> str | None:
        """Stream one blob to ``dest``, hashing as it is written; what disagrees, or None.
        ``counted``: in :attr:`bytes_down` (see :meth:`fetch`)."""
        fs, _ = self._connect()
        h = hashlib.sha256()
        size = 0
        dest.unlink(missing_ok=True)
        with fs.open(self._path("blobs", _hex(entry.digest)), "rb", block_size=CHUNK) as src, open(dest, "wb") as out:
            while chunk := src.read(CHUNK):
                h.update(chunk)
                out.write(chunk)
                size += len(chunk)
                if counted:
                    with self._lock:
                        self.bytes_down += len(chunk)
                if size > entry.size:
                    return f"is larger than its manifest says ({entry.size} bytes)"
                progress(size)
        if size != entry.size:
            return f"has {size} bytes, its manifest says {entry.size}"
        if "sha256:" + h.hexdigest() != entry.digest:
            return "does not have the digest its manifest names"
        return None

    # -- small records -----------------------------------------------------------------------

    def recall(self, name: str) -> bytes | None:
        """A small record a step kept under ``name`` (``memo/<name>``), or None (also when the
        remote cannot be used: a record is worth its bytes, never a failed build)."""
        try:
            fs, _ = self._connect()
            data: bytes = fs.cat_file(self._path("memo", name))
            return data
        except Unusable:
            return None
        except Exception:  # noqa: BLE001 - a missing or unreadable record is only a miss
            return None

    def remember(self, name: str, data: bytes) -> None:
        """Keep a small record for other machines, unless this build does not push."""
        if not self.pushing or self._broken:
            return
        try:
            fs, _ = self._connect()
            fs.makedirs(self._path("memo"), exist_ok=True)
            fs.pipe_file(self._path("memo", name), data)
        except Unusable:
            return
        except Exception as e:  # noqa: BLE001 - transport errors come from the backend's own stack
            self._say(f"remote cache {self.url}: keeping a record failed ({_describe(e)})")

    # -- uploading ---------------------------------------------------------------------------

    def push(self, key: str, files: dict[Path, tuple[Path, str]], background: bool = True) -> None:
        """Upload ``files`` (final path -> (file to read, digest)) under ``key``. ``background``:
        the files keep their names until the build ends (the local cache's entry), so the upload
        runs while the build goes on; otherwise it is done before this returns."""
        if not self.pushing or self._broken:
            return
        staged = [(Entry(out.name, digest, path.stat().st_size), path)
                  for out, (path, digest) in sorted(files.items(), key=lambda item: item[0].name)]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="modelkit-push")
        with self._lock:
            self._queued += sum(e.size for e, _ in staged)
        job = self._pool.submit(self._upload_entry, key, staged)
        self._jobs.append(job)
        if not background:
            job.result()

    def _upload_entry(self, key: str, staged: list[tuple[Entry, Path]]) -> None:
        """Blobs first, the manifest last; a failure is said once and stops further uploads."""
        try:
            if not self.pushing:
                return
            fs, _ = self._connect()
            manifest = self._path("keys", _hex(key) + ".json")
            if not fs.exists(manifest):
                for entry, path in staged:
                    self._upload_blob(fs, entry, path)
                body = {"version": MANIFEST_VERSION, "key": key,
                        "outputs": [{"name": e.name, "digest": e.digest, "size": e.size} for e, _ in staged]}
                self._put_bytes(fs, manifest, json.dumps(body, sort_keys=True).encode())
        except Unusable:
            self.pushing = False
        except Exception as e:  # noqa: BLE001 - permission and transport errors differ per backend
            self.pushing = False
            what = "is read-only here" if _is_permission(e) else "cannot be written to"
            self._say(f"remote cache {self.url} {what} ({_describe(e)}): not uploading; restoring still works")

    def _upload_blob(self, fs: Any, entry: Entry, path: Path) -> None:
        blob = self._path("blobs", _hex(entry.digest))
        try:
            if fs.info(blob).get("size") == entry.size:
                with self._lock:
                    self._queued -= entry.size
                return  # the same bytes are there already (another key, another machine)
        except FileNotFoundError:
            pass
        callback = _counter(self)
        if self.scheme in ATOMIC_PUT:
            fs.put_file(str(path), blob, callback=callback)
        else:
            tmp = f"{blob}.tmp-{uuid.uuid4().hex}"
            fs.makedirs(self._path("blobs"), exist_ok=True)
            fs.put_file(str(path), tmp, callback=callback)
            fs.mv(tmp, blob)
        callback.finish(entry.size)

    # -- blobs for steps run elsewhere (see modelkit.executors.ray_executor) --------------------

    def offer(self, path: Path, digest: str) -> None:
        """Make sure the remote holds ``path``'s bytes (``digest``) as a blob, uploading them
        unless it does: a file another machine's step reads. :class:`Unreachable` when the remote
        cannot take it (that step cannot run)."""
        size = path.stat().st_size
        with self._lock:
            self._queued += size
        try:
            fs, _ = self._connect()
            self._upload_blob(fs, Entry(path.name, digest, size), path)
        except RemoteCacheError:
            raise
        except Exception as e:  # noqa: BLE001 - Unusable and every backend's transport errors
            raise Unreachable(f"remote cache {self.url}: cannot upload {path.name} ({_describe(e)}); "
                              "the step that reads it cannot run elsewhere") from None

    def take(self, digest: str, size: int, dest: Path) -> None:
        """Download the blob ``digest`` to ``dest``, checked; :class:`RemoteCacheError` when the
        remote does not hold it whole (:class:`Unreachable`: another machine put it there)."""
        try:
            problem = self._download(Entry(dest.name, digest, size), dest, lambda n: None)
        except Exception as e:  # noqa: BLE001 - Unusable, a missing blob, every backend's transport errors
            problem = f"cannot be read ({_describe(e)})"
        if problem:
            dest.unlink(missing_ok=True)
            raise Unreachable(f"remote cache {self.url}: the blob {_hex(digest)[:12]} ({dest.name}) {problem}")

    def _put_bytes(self, fs: Any, path: str, data: bytes) -> None:
        if self.scheme in ATOMIC_PUT:
            fs.pipe_file(path, data)
            return
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        tmp = f"{path}.tmp-{uuid.uuid4().hex}"
        fs.pipe_file(tmp, data)
        fs.mv(tmp, path)

    def finish(self, progress: Progress | None = None) -> None:
        """Wait for the uploads still running, reporting their bytes."""
        total = self._queued + self.bytes_up
        try:
            while any(not job.done() for job in self._jobs):
                if progress is not None and total:
                    progress(self.bytes_up / total,
                             f"uploading to the remote cache {self.bytes_up >> 20}/{total >> 20} MB")
                time.sleep(0.1)
        except KeyboardInterrupt:
            self.pushing = False  # the upload in flight ends (without a manifest); queued ones never start
            for job in self._jobs:
                job.cancel()
            raise
        self._jobs.clear()
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


def _counter(cache: RemoteCache) -> Any:
    """An fsspec callback that counts uploaded bytes into ``cache`` (built here: fsspec is imported
    only when a remote is used, so that commands without one start fast)."""
    from fsspec.callbacks import Callback

    class Counter(Callback):  # type: ignore[misc]  # fsspec ships no type information
        def __init__(self) -> None:
            super().__init__()
            self.seen = 0

        def call(self, *args: Any, **kwargs: Any) -> None:
            self.add(self.value - self.seen)

        def add(self, n: int) -> None:
            if n <= 0:
                return
            self.seen += n
            with cache._lock:
                cache.bytes_up += n
                cache._queued -= n

        def finish(self, size: int) -> None:
            """Count what the backend did not report (a local copy reports nothing)."""
            self.add(size - self.seen)

    return Counter()


def _open(url: str, scheme: str) -> tuple[Any, str]:
    """fsspec's filesystem for ``url`` and the path inside it; checks the bucket or folder exists."""
    package = SCHEMES[scheme]
    try:
        import fsspec

        if package:
            __import__(package)
    except ImportError:
        extra = "remote" if package != "gcsfs" else "gcsfs"
        raise RemoteCacheError(f"remote cache {url}: needs the package {package or 'fsspec'} "
                               f"(pip install 'modelkit[{extra}]')") from None
    fs, root = fsspec.core.url_to_fs(url, skip_instance_cache=True)
    if scheme in ("s3", "s3a", "gs", "gcs"):
        bucket = root.split("/", 1)[0]
        if not fs.exists(bucket):
            if scheme.startswith("s3") and not _aws_credentials():
                raise Unusable("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE")
            raise Unusable(f"bucket {bucket} does not exist or cannot be reached")
    elif not fs.isdir(root):
        raise Unusable(f"{root} does not exist" if scheme == "file" else f"{root} does not exist or is private")
    return fs, root


def _aws_credentials() -> bool:
    """Whether boto finds credentials where it looks (environment, profile files, instance role)."""
    try:
        import botocore.session  # type: ignore[import-untyped]  # botocore ships no type information

        return botocore.session.get_session().get_credentials() is not None
    except Exception:  # noqa: BLE001 - only to tell "no credentials" from "no bucket" in a warning
        return True


def _parse_manifest(data: bytes, key: str) -> list[Entry] | None:
    """The entries of a manifest, or None if it is not one modelkit wrote for ``key``."""
    try:
        body = json.loads(data)
        if not isinstance(body, dict) or body.get("key") != key or not isinstance(body.get("version"), int) \
                or body["version"] > MANIFEST_VERSION:
            return None
        entries = [Entry(str(o["name"]), str(o["digest"]), int(o["size"])) for o in body["outputs"]]
    except (ValueError, KeyError, TypeError):
        return None
    if not entries or any(not _DIGEST.match(e.digest) or e.size < 0 or "/" in e.name for e in entries):
        return None
    return sorted(entries, key=lambda e: e.name)


def _hex(digest: str) -> str:
    return digest.split(":", 1)[-1]


def _is_permission(e: BaseException) -> bool:
    if isinstance(e, PermissionError):
        return True
    text = f"{type(e).__name__} {e}"
    return any(word in text for word in ("AccessDenied", "Forbidden", "403", "NoCredentials", "credentials"))


def _describe(e: BaseException) -> str:
    """One line for an error from any backend: its type and first line."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    name = type(e).__name__
    return f"{name}: {text}"[:200] if text else name
