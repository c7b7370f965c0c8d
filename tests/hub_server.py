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

And the requests ``HfApi.create_repo`` and ``HfApi.create_commit`` make, as the Hub documents them
(its commit API, and the git LFS batch API it implements), for the legacy LFS transfer
(``HF_HUB_DISABLE_XET=1``: the Xet protocol is not modelled):

- ``POST /api/repos/create`` (``name``, ``organization``, ``visibility``): a repository with one
  first commit holding ``.gitattributes``, as the Hub makes it; 409 (with its ``url``) when it exists;
- ``GET /api/models/{repo}``: the repository's info at its head (``model_info`` without a revision);
- ``POST /api/validate-yaml``: the model card's front matter checked as the Hub's metadata rules say
  (``license`` an id from the Hub's list or ``other``, ``base_model`` repo ids,
  ``base_model_relation`` one of adapter/merge/quantized/finetune, ``tags`` strings);
- ``POST /api/models/{repo}/preupload/{rev}``: each file's ``uploadMode`` (``lfs`` for binary
  suffixes and files over 10 MB, else ``regular``), ``shouldIgnore`` and the ``oid`` of the file
  the repository holds at that path (sha256 for LFS, git blob id otherwise);
- ``POST /{repo}.git/info/lfs/objects/batch``: per object an ``upload`` and ``verify`` action, or
  no action at all when the object is already stored (so the client skips it);
- ``PUT`` of an upload action (the sha256 of the body must be the oid) and ``POST`` of its verify;
- ``POST /api/models/{repo}/commit/{rev}``: an NDJSON header and ``file``/``lfsFile`` lines; an LFS
  object that was never uploaded is refused; answers ``commitOid`` and ``commitUrl``.

Writes need ``Authorization: Bearer <token>`` when :attr:`FakeHub.token` is set (401 otherwise).
It counts the bytes it served and received and the commits it made, so tests can prove what was
(not) downloaded, uploaded or committed again.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LFS_SUFFIXES = (".safetensors", ".bin", ".model", ".gguf")
LFS_MIN_SIZE = 10_000_000
RELATIONS = ("adapter", "merge", "quantized", "finetune")
LICENSES = ("apache-2.0", "mit", "openrail", "bsd-3-clause", "cc-by-4.0", "cc-by-nc-4.0", "gpl-3.0",
            "llama2", "llama3", "llama3.1", "llama3.2", "llama3.3", "gemma", "other", "unknown")
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


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
        lfs = is_lfs(name, len(data))
        return {"name": name, "size": len(data), "blob": blob,
                "sha256": hashlib.sha256(data).hexdigest() if lfs else None}


def is_lfs(name: str, size: int) -> bool:
    """Whether the Hub stores ``name`` in LFS: binary suffixes (its default .gitattributes) and big files."""
    return name.endswith(LFS_SUFFIXES) or size > LFS_MIN_SIZE


def commit_id(files: dict[str, bytes], parent: str) -> str:
    return hashlib.sha1(json.dumps([parent, sorted((k, hashlib.sha256(v).hexdigest()) for k, v in files.items())])
                        .encode()).hexdigest()


class FakeHub:
    def __init__(self, token: str | None = None) -> None:
        self.repos: dict[str, Repo] = {}
        self.bytes_served = 0
        self.bytes_received = 0  # LFS upload bodies
        self.lfs: dict[str, bytes] = {}  # oid -> content: the LFS store, shared by every repo
        self.commits: list[tuple[str, list[str]]] = []  # (repo, paths) of each commit made
        self.private: set[str] = set()
        self.token = token
        self.requests: list[tuple[str, str]] = []
        self.failing: int | None = None
        """Answer every request with this status and nothing else, as a Hub that is down (5xx) or
        limiting a client (429, with ``Retry-After`` as the Hub sends it) does."""
        self.retry_after: str | None = None
        """Sent as ``Retry-After`` with a failing 5xx too (a 429 always says "1"): "0" lets a test
        see huggingface_hub's retries end in a second each, instead of its 1+2+4+8+8 s backoff."""
        self.failing_under = "/"
        """Only requests for paths under this one fail (``/org/x/resolve/``: downloads, not the API)."""
        self.silent = False
        """Take every request and never answer it, as a server behind a dead proxy does."""
        self.lock = threading.Lock()
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

    def handle_one_request(self) -> None:
        """Every request goes through ``failing`` and ``silent`` first."""
        if self.state.silent:
            self.rfile.readline()
            time.sleep(30)  # longer than any test waits; the client gives up first
            return
        if self.state.failing is None:
            return super().handle_one_request()
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline or not self.parse_request():
            return
        if not urllib.parse.unquote(self.path).startswith(self.state.failing_under):
            method = getattr(self, f"do_{self.command}")
            return method()
        self._read_body()
        self.state.requests.append((self.command, self.path))
        status = self.state.failing
        body = json.dumps({"error": "Too Many Requests" if status == 429 else "Internal Error"}).encode()
        self.send_response(status)
        if status == 429:
            self.send_header("Retry-After", "1")
        elif self.state.retry_after is not None:
            self.send_header("Retry-After", self.state.retry_after)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_POST(self) -> None:
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        self.state.requests.append(("POST", path))
        body = self._read_body()
        parts = path.strip("/").split("/")
        if path == "/api/validate-yaml":
            return self._validate_yaml(json.loads(body))
        if not self._authorized():
            return self._error(401, "Unauthorized", "Invalid credentials in Authorization header")
        if path == "/api/repos/create":
            return self._create_repo(json.loads(body))
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] in ("preupload", "commit"):
            repo_id, revision = "/".join(parts[2:4]), "/".join(parts[5:])
            repo = self._repo(repo_id, revision)
            if repo is None:
                return None
            if parts[4] == "preupload":
                return self._preupload(repo, json.loads(body))
            return self._commit(repo_id, repo, revision, body)
        if path.endswith(".git/info/lfs/objects/batch"):
            return self._lfs_batch(json.loads(body))
        if path.endswith(".git/info/lfs/objects/verify"):
            oid = json.loads(body)["oid"]
            return self._json({"ok": True}) if oid in self.state.lfs else self._error(404, "EntryNotFound", oid)
        self._error(404, "EntryNotFound", "unknown route")

    def do_PUT(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        self.state.requests.append(("PUT", path))
        body = self._read_body()
        oid = path.rsplit("/", 1)[-1]
        if not path.startswith("/lfs-upload/"):
            return self._error(404, "EntryNotFound", "unknown route")
        if hashlib.sha256(body).hexdigest() != oid:
            return self._error(400, "BadRequest", "the body's sha256 is not the oid")
        with self.state.lock:
            self.state.bytes_received += len(body)
            self.state.lfs[oid] = body
        self._json({})

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                out += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
            return bytes(out)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _authorized(self) -> bool:
        return self.state.token is None or self.headers.get("Authorization") == f"Bearer {self.state.token}"

    def _create_repo(self, req: dict[str, object]) -> None:
        repo_id = f"{req.get('organization')}/{req.get('name')}"
        if not _REPO_ID.match(repo_id) or req.get("type", "model") != "model":
            return self._error(400, "BadRequest", f"invalid repo id or type: {repo_id}")
        if repo_id in self.state.repos:  # the Hub's 409 names the repository's url too
            return self._error(409, "RepoExists", "You already created this model repo",
                               url=f"{self.state.url}/{repo_id}")
        files = {".gitattributes": b"*.gguf filter=lfs diff=lfs merge=lfs -text\n"}
        commit = commit_id(files, "")
        self.state.repos[repo_id] = Repo(files, commit, {"main": commit})
        if req.get("visibility") == "private" or req.get("private"):
            self.state.private.add(repo_id)
        self._json({"url": f"{self.state.url}/{repo_id}", "name": repo_id})

    def _preupload(self, repo: Repo, req: dict[str, list[dict[str, object]]]) -> None:
        out = []
        for f in req["files"]:
            name, size = str(f["path"]), int(f["size"])
            base64.b64decode(str(f["sample"]))
            held = repo.entry(name) if name in repo.files else None
            mode = "lfs" if is_lfs(name, size) else "regular"
            oid = None if held is None else (held["sha256"] if held["sha256"] else held["blob"])
            out.append({"path": name, "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        self._json({"files": out, "commitOid": repo.commit})

    def _lfs_batch(self, req: dict[str, object]) -> None:
        if req.get("operation") != "upload" or req.get("hash_algo", "sha256") != "sha256":
            return self._error(400, "BadRequest", "only sha256 uploads are supported")
        objects = []
        for obj in req["objects"]:
            oid, size = obj["oid"], obj["size"]
            entry: dict[str, object] = {"oid": oid, "size": size, "authenticated": True}
            if oid not in self.state.lfs:  # the Hub answers no action for an object it holds
                entry["actions"] = {"upload": {"href": f"{self.state.url}/lfs-upload/{oid}", "header": {}},
                                    "verify": {"href": f"{self.state.url}/x.git/info/lfs/objects/verify",
                                               "header": {}}}
            objects.append(entry)
        self._json({"transfer": "basic", "objects": objects})

    def _serve(self, body: bool) -> None:
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        self.state.requests.append((self.command, path))
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "models"] and len(parts) == 4:  # model_info at the head
            parts = [*parts, "revision", "main"]
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

    def _commit(self, repo_id: str, repo: Repo, revision: str, body: bytes) -> None:
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header" or not lines[0]["value"].get("summary"):
            return self._error(400, "BadRequest", "a commit starts with a header holding its summary")
        files = dict(repo.files)
        for line in lines[1:]:
            value = line["value"]
            if line["key"] == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif line["key"] == "lfsFile":
                if value["oid"] not in self.state.lfs:
                    return self._error(422, "BadRequest", f"LFS object {value['oid']} was never uploaded")
                files[value["path"]] = self.state.lfs[value["oid"]]
            elif line["key"] == "deletedFile":
                files.pop(value["path"], None)
            else:
                return self._error(400, "BadRequest", f"unknown commit operation {line['key']}")
        commit = commit_id(files, repo.commit)
        with self.state.lock:
            repo.files, repo.commit = files, commit
            repo.branches[revision] = commit
            self.state.commits.append((repo_id, [line["value"]["path"] for line in lines[1:]]))
        self._json({"commitOid": commit, "commitUrl": f"{self.state.url}/{repo_id}/commit/{commit}",
                    "success": True})

    def _validate_yaml(self, req: dict[str, str]) -> None:
        errors = card_metadata_errors(req["content"])
        if errors:
            raw = json.dumps({"errors": [{"message": e} for e in errors]}).encode()
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
            return None
        self._json({"warnings": []})

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

    def _error(self, status: int, code: str, message: str, **extra: str) -> None:
        raw = json.dumps({"error": message, **extra}).encode()
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(raw)


def card_metadata_errors(content: str) -> list[str]:
    """What the Hub's metadata rules refuse in a README.md's YAML front matter (the subset modelkit writes)."""
    import yaml

    if not content.startswith("---\n"):
        return []
    head = content[4:].split("\n---", 1)[0]
    try:
        meta = yaml.safe_load(head) or {}
    except yaml.YAMLError as e:
        return [f"invalid YAML: {e}"]
    errors = []
    license_ = meta.get("license")
    if license_ is not None and license_ not in LICENSES:
        errors.append(f'"license" must be one of the Hub\'s license ids, got {license_!r}')
    bases = meta.get("base_model")
    for base in ([bases] if isinstance(bases, str) else bases or []):
        if not isinstance(base, str) or not _REPO_ID.match(base):
            errors.append(f'"base_model" must be a repo id, got {base!r}')
    relation = meta.get("base_model_relation")
    if relation is not None and (relation not in RELATIONS or bases is None):
        errors.append(f'"base_model_relation" must be one of {RELATIONS} and needs base_model, got {relation!r}')
    tags = meta.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        errors.append('"tags" must be a list of strings')
    return errors
