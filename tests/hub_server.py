"""A stand-in for the Hugging Face Hub's HTTP API, for testing modelkit's real download code.

The Hub cannot be reached from here. This server answers the requests ``huggingface_hub`` makes
for ``HfApi.model_info(files_metadata=True)`` and ``snapshot_download`` at a commit, the way the
Hub does (``HF_ENDPOINT`` points the library at it):

- ``GET /api/models/{repo}/revision/{rev}?blobs=True``: ``sha`` (the commit) and ``siblings``
  with ``blobId`` and, for LFS files, ``lfs.sha256``;
- ``GET /api/models/{repo}/tree/{commit}?recursive=...``: the file list, LFS files with ``lfs.oid``;
- ``HEAD``/``GET /{repo}/resolve/{rev}/{path}``: ``X-Repo-Commit``, ``ETag`` (the sha256 of an LFS
  file, the git blob id otherwise) and the bytes;
- unknown repos and revisions answer 404 with ``X-Error-Code: RepoNotFound`` / ``RevisionNotFound``.

It counts the bytes it served, so tests can prove what was (not) downloaded again.
"""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LFS_SUFFIXES = (".safetensors", ".bin", ".model", ".gguf")


@dataclass
class Repo:
    files: dict[str, bytes]
    commit: str
    branches: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> str | None:
        if revision == self.commit:
            return self.commit
        return self.branches.get(revision)

    def entry(self, name: str) -> dict[str, object]:
        data = self.files[name]
        blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        lfs = name.endswith(LFS_SUFFIXES)
        return {"name": name, "size": len(data), "blob": blob,
                "sha256": hashlib.sha256(data).hexdigest() if lfs else None}


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.bytes_served = 0
        self.requests: list[tuple[str, str]] = []
        self._server: ThreadingHTTPServer | None = None

    def add(self, repo: str, files: dict[str, bytes], branch: str = "main") -> str:
        commit = hashlib.sha1(json.dumps(sorted((k, hashlib.sha256(v).hexdigest()) for k, v in files.items()))
                              .encode()).hexdigest()
        self.repos[repo] = Repo(files, commit, {branch: commit})
        return commit

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            state = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    state: FakeHub

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(body=False)

    def do_GET(self) -> None:  # noqa: N802
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        self.state.requests.append((self.command, path))
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] in ("revision", "tree"):
            repo_id, kind, revision = "/".join(parts[2:4]), parts[4], parts[5]
            repo = self._repo(repo_id, revision)
            if repo is None:
                return
            commit = repo.resolve(revision)
            entries = [repo.entry(n) for n in sorted(repo.files)]
            if kind == "revision":
                siblings = [{"rfilename": e["name"], "size": e["size"], "blobId": e["blob"],
                             **({"lfs": {"sha256": e["sha256"], "size": e["size"], "pointerSize": 134}}
                                if e["sha256"] else {})} for e in entries]
                return self._json({"id": repo_id, "modelId": repo_id, "sha": commit, "siblings": siblings,
                                   "private": False, "tags": [], "downloads": 0, "likes": 0})
            files = [{"type": "file", "path": e["name"], "size": e["size"], "oid": e["blob"],
                      **({"lfs": {"oid": e["sha256"], "size": e["size"], "pointerSize": 134}} if e["sha256"] else {})}
                     for e in entries]
            return self._json(files)
        if len(parts) >= 5 and parts[2] == "resolve":
            repo_id, revision, name = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
            repo = self._repo(repo_id, revision)
            if repo is None:
                return
            if name not in repo.files:
                return self._error(404, "EntryNotFound", f"{name} not found")
            entry = repo.entry(name)
            data = repo.files[name]
            self.send_response(200)
            self.send_header("X-Repo-Commit", str(repo.resolve(revision)))
            self.send_header("ETag", f'"{entry["sha256"] or entry["blob"]}"')
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            if body:
                self.wfile.write(data)
                self.state.bytes_served += len(data)
            return
        self._error(404, "EntryNotFound", "unknown route")

    def _repo(self, repo_id: str, revision: str) -> Repo | None:
        repo = self.state.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found")
            return None
        if repo.resolve(revision) is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return None
        return repo

    def _json(self, data: object) -> None:
        raw = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(raw)

    def _error(self, status: int, code: str, message: str) -> None:
        raw = json.dumps({"error": message}).encode()
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(raw)
