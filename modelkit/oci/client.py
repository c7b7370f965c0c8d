"""A client of one repository in an OCI registry: the distribution protocol, as far as models need it.

Written here rather than taken from oras-py (0.2.43): a ModelPack manifest needs its
``artifactType`` and exact bytes (the digest is what a lock pins), Docker Model Runner's older
format a Docker media type, and a multi-GB GGUF must stream from disk; oras-py writes manifests of
its own, always sends the OCI content type, and reads a file whole unless told to chunk.

- **Auth as registries do it**: the first request that meets ``401`` reads the challenge
  (``WWW-Authenticate``): ``Basic`` sends the credentials (:mod:`.auth`), ``Bearer`` asks the
  token service named in the challenge for a token with the repository's scope, with those
  credentials if there are any, and every request after it carries that token.
- **Blobs once**: ``HEAD`` first; a blob the registry holds is never sent. Uploads stream from
  the file (one ``PUT``, or ``PATCH`` chunks of at least the size the registry asks for with
  ``OCI-Chunk-Min-Length``); downloads stream to a file and are hashed as they are written.
- **Every failure one line**, naming the registry and what to do; credentials are never printed.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from modelkit.errors import OCIError, Unreachable
from modelkit.oci.auth import PASSWORD, USERNAME, Credentials
from modelkit.oci.reference import Reference

CHUNK = 8 << 20
MAX_MANIFEST = 4 << 20
"""The largest manifest registries take (distribution's default limit)."""
Progress = Callable[[int], None]
_PARAM = re.compile(r'(\w+)="([^"]*)"')


class RegistryClient:
    """One repository of one registry (``reference``); ``insecure``: plain HTTP (a local registry)."""

    def __init__(self, reference: Reference, credentials: Credentials | None, insecure: bool = False,
                 timeout: float = 60.0) -> None:
        self.reference, self.credentials, self.insecure = reference, credentials, insecure
        self.root = f"{'http' if insecure else 'https'}://{reference.registry}/v2/"
        self.base = f"{self.root}{reference.repository}"
        self.http = httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0), follow_redirects=True)
        self._authorization: str | None = None

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    @property
    def registry(self) -> str:
        return self.reference.registry

    # -- requests --------------------------------------------------------------------------------

    def request(self, method: str, url: str, *, ok: tuple[int, ...] = (200,), what: str,
                **kwargs: Any) -> httpx.Response:
        """``method url``, authorised (answering the registry's challenge once), or :class:`OCIError`
        (:class:`Unreachable`) in one line saying ``what`` was being done."""
        response = self._send(method, url, **kwargs)
        if response.status_code == 401 and self._authorization is None:
            self._authorize(response.headers.get("WWW-Authenticate", ""))
            response = self._send(method, url, **kwargs)
        if response.status_code not in ok:
            raise self._refused(response, what)
        return response

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if self._authorization:
            headers["Authorization"] = self._authorization
        try:
            return self.http.request(method, url, headers=headers, **kwargs)
        except httpx.TransportError as e:
            hint = ("; it answers plain HTTP only? use --insecure ([publish] insecure = true)"
                    if "SSL" in str(e) or "ssl" in type(e).__name__.lower() else
                    "; is it running, and the name and port right?")
            raise Unreachable(f"registry {self.registry} is not reachable ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else 'no answer'}){hint}") from None

    def _authorize(self, challenge: str) -> None:
        scheme, _, params = challenge.partition(" ")
        if scheme.lower() == "basic":
            self._authorization = "Basic " + self._basic()
        elif scheme.lower() == "bearer":
            self._authorization = "Bearer " + self._token(dict(_PARAM.findall(params)))
        else:
            raise OCIError(f"registry {self.registry} asks for {scheme or 'an unknown kind of'} authentication, "
                           "which modelkit does not speak (Basic and Bearer tokens only)")

    def _basic(self) -> str:
        if self.credentials is None:
            raise self._no_credentials()
        pair = f"{self.credentials.username}:{self.credentials.password}"
        return base64.b64encode(pair.encode()).decode()

    def _token(self, challenge: dict[str, str]) -> str:
        realm = challenge.get("realm")
        if not realm:
            raise OCIError(f"registry {self.registry} asked for a token without saying where to get one")
        scope = f"repository:{self.reference.repository}:pull,push"
        params = {k: v for k, v in (("service", challenge.get("service")), ("scope", scope)) if v}
        headers = {"Authorization": "Basic " + self._basic()} if self.credentials else {}
        try:
            answer = self.http.get(realm, params=params, headers=headers)
        except httpx.TransportError as e:
            raise Unreachable(f"the token service of registry {self.registry} ({realm}) is not reachable "
                              f"({type(e).__name__})") from None
        if answer.status_code in (401, 403):
            raise self._credentials_refused() if self.credentials else self._no_credentials()
        try:
            body = answer.json()
            return str(body.get("token") or body["access_token"])
        except (ValueError, KeyError, TypeError):
            raise OCIError(f"the token service of registry {self.registry} answered HTTP {answer.status_code} "
                           "without a token") from None

    def _no_credentials(self) -> OCIError:
        return OCIError(f"registry {self.registry} asks for credentials and none were found: `docker login "
                        f"{self.registry}`, or set {USERNAME} and {PASSWORD}")

    def _credentials_refused(self) -> OCIError:
        assert self.credentials is not None
        return OCIError(f"registry {self.registry} refused the credentials of {self.credentials.username!r} "
                        f"(from {self.credentials.source}): check them with `docker login {self.registry}`")

    def _refused(self, response: httpx.Response, what: str) -> OCIError:
        if response.status_code == 401:
            return self._credentials_refused() if self.credentials else self._no_credentials()
        if response.status_code == 403:
            who = f"{self.credentials.username!r}" if self.credentials else "anonymous users"
            return OCIError(f"registry {self.registry} does not let {who} {what} ({self.reference.repository}): "
                            "ask for access, or log in as a user who has it")
        detail = _error_detail(response)
        return OCIError(f"registry {self.registry} refused to {what} (HTTP {response.status_code}{detail})")

    # -- blobs -----------------------------------------------------------------------------------

    def has_blob(self, digest: str) -> bool:
        return self.request("HEAD", f"{self.base}/blobs/{digest}", ok=(200, 404),
                            what=f"look for blob {digest[7:19]}").status_code == 200

    def push_blob(self, digest: str, size: int, source: Path | bytes, progress: Progress | None = None) -> bool:
        """Make the registry hold ``source`` as ``digest``; True if it had to be sent."""
        if self.has_blob(digest):
            return False
        started = self.request("POST", f"{self.base}/blobs/uploads/", ok=(202,), what="start an upload")
        location = _absolute(started.headers.get("Location", ""), self.base)
        minimum = int(started.headers.get("OCI-Chunk-Min-Length") or 0)
        if minimum and not isinstance(source, bytes):
            location = self._patch_chunks(location, source, max(minimum, CHUNK), progress)
            body: bytes | Iterator[bytes] = b""
            length = 0
        else:
            body = source if isinstance(source, bytes) else _read(source, CHUNK, progress)
            length = size
        self.request("PUT", _with_query(location, digest=digest), ok=(201,), what=f"store blob {digest[7:19]}",
                     content=body, headers={"Content-Type": "application/octet-stream",
                                            "Content-Length": str(length)})
        return True

    def _patch_chunks(self, location: str, path: Path, chunk: int, progress: Progress | None) -> str:
        start = 0
        for part in _read(path, chunk, progress):
            end = start + len(part) - 1
            answer = self.request("PATCH", location, ok=(202,), what="upload a chunk", content=part,
                                  headers={"Content-Type": "application/octet-stream",
                                           "Content-Range": f"{start}-{end}", "Content-Length": str(len(part))})
            location, start = _absolute(answer.headers.get("Location", location), self.base), end + 1
        return location

    def fetch_blob(self, digest: str, size: int, dest: Path, progress: Progress | None = None) -> None:
        """Stream blob ``digest`` to ``dest``, checking its size and sha256 as it is written."""
        h, written = hashlib.sha256(), 0
        with self.http.stream("GET", f"{self.base}/blobs/{digest}", follow_redirects=True,
                              headers={"Authorization": self._authorization} if self._authorization else {}) as r:
            if r.status_code == 401 and self._authorization is None:
                r.close()
                self._authorize(r.headers.get("WWW-Authenticate", ""))
                return self.fetch_blob(digest, size, dest, progress)
            if r.status_code != 200:
                raise self._refused(r, f"send blob {digest[7:19]}")
            with open(dest, "wb") as out:
                for part in r.iter_bytes(CHUNK):
                    h.update(part)
                    out.write(part)
                    written += len(part)
                    if progress:
                        progress(written)
        if written != size or f"sha256:{h.hexdigest()}" != digest:
            dest.unlink(missing_ok=True)
            raise OCIError(f"registry {self.registry} sent other bytes for blob {digest[7:19]} ({written} bytes, "
                           f"expected {size} with that sha256): nothing was kept; try again")
        return None

    # -- manifests -------------------------------------------------------------------------------

    def manifest_digest(self, ref: str, accept: tuple[str, ...]) -> str | None:
        """The digest of the manifest ``ref`` names, or None where there is none."""
        answer = self.request("HEAD", f"{self.base}/manifests/{ref}", ok=(200, 404), what=f"look for {ref}",
                              headers={"Accept": ", ".join(accept)})
        return answer.headers.get("Docker-Content-Digest") if answer.status_code == 200 else None

    def put_manifest(self, ref: str, body: bytes, media_type: str) -> str:
        """Store ``body`` as manifest ``ref``; its digest."""
        if len(body) > MAX_MANIFEST:
            raise OCIError(f"the manifest for {self.reference.repository}:{ref} is {len(body)} bytes, more than "
                           f"registries take ({MAX_MANIFEST}): split the model into fewer files")
        self.request("PUT", f"{self.base}/manifests/{ref}", ok=(201,), what=f"store the manifest of {ref}",
                     content=body, headers={"Content-Type": media_type})
        return f"sha256:{hashlib.sha256(body).hexdigest()}"

    def get_manifest(self, ref: str, accept: tuple[str, ...]) -> tuple[bytes, str, str]:
        """(bytes, media type, digest) of manifest ``ref``; a digest ``ref`` is checked against the bytes."""
        answer = self.request("GET", f"{self.base}/manifests/{ref}", ok=(200,), what=f"send the manifest {ref}",
                              headers={"Accept": ", ".join(accept)})
        digest = f"sha256:{hashlib.sha256(answer.content).hexdigest()}"
        if ref.startswith("sha256:") and ref != digest:
            raise OCIError(f"registry {self.registry} sent a manifest whose digest is {digest}, not {ref}")
        return answer.content, answer.headers.get("Content-Type", "").split(";")[0], digest


def _read(path: Path, chunk: int, progress: Progress | None) -> Iterator[bytes]:
    done = 0
    with open(path, "rb") as f:
        while part := f.read(chunk):
            done += len(part)
            yield part
            if progress:
                progress(done)


def _absolute(location: str, base: str) -> str:
    if location.startswith(("http://", "https://")):
        return location
    scheme_host = "/".join(base.split("/")[:3])
    return scheme_host + (location if location.startswith("/") else f"/{location}")


def _with_query(url: str, **params: str) -> str:
    joined = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{url}{'&' if '?' in url else '?'}{joined}"


def _error_detail(response: httpx.Response) -> str:
    """``: CODE message`` from a registry's JSON error body, if it sent one."""
    try:
        errors = response.json().get("errors") or []
        first = errors[0]
        return f": {first.get('code')} {first.get('message', '')}".rstrip()
    except (ValueError, AttributeError, IndexError, TypeError):
        return ""
