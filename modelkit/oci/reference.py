"""An image reference (``registry/namespace/name:tag`` or ``…@sha256:…``), read as Docker reads one."""

from __future__ import annotations

import re
from dataclasses import dataclass

DOCKER_HUB = "registry-1.docker.io"
_NAME = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Reference:
    """Where an artifact lives: ``registry`` (host[:port]), ``repository`` (``ns/name``), and a
    ``tag`` or a ``digest`` (the digest wins when both are given)."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def ref(self) -> str:
        """What a manifest request names: the digest, else the tag."""
        return self.digest or self.tag or "latest"

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.registry, self.repository, tag)

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.registry, self.repository, self.tag, digest)

    def __str__(self) -> str:
        host = "docker.io" if self.registry == DOCKER_HUB else self.registry
        return f"{host}/{self.repository}" + (f":{self.tag}" if self.tag else "") + (
            f"@{self.digest}" if self.digest else "")


def parse_reference(text: str, default_tag: str | None = "latest") -> Reference:
    """``text`` as a reference, or a ``ValueError`` saying which part is wrong. Without a registry
    (no ``.`` or ``:`` in the first part, and not ``localhost``) it is Docker Hub's."""
    rest, _, digest = text.strip().partition("@")
    if digest and not _DIGEST.match(digest):
        raise ValueError(f"'{digest}' is not a sha256 digest (sha256: and 64 hex digits)")
    first, slash, path = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry = first
    else:
        registry, path = DOCKER_HUB, rest if "/" in rest else f"library/{rest}"
    name, tag = path, None
    if ":" in path.rsplit("/", 1)[-1]:
        name, _, tag = path.rpartition(":")
        if not _TAG.match(tag):
            raise ValueError(f"'{tag}' is not a tag (letters, digits, _, . and -, at most 128)")
    if not name or not _NAME.match(name):
        raise ValueError(f"'{name}' is not a repository name (lowercase letters, digits and separators)")
    return Reference(registry, name, tag or (None if digest else default_tag), digest or None)
