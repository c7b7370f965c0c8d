"""A ready GGUF base pulled from an OCI registry (``[base] oci``): pinned by manifest digest, checked by blob digests.

Planning resolves the reference once: with a lock entry for the same reference, the pinned
manifest digest and files are used without asking the registry (``--update`` asks it again and
says when the tag moved); without one, the manifest is read (a few KB) to learn its files. The
fetch step then downloads each blob once into modelkit's cache (``<cache>/oci/blobs/sha256/…``,
streamed and hashed as it is written, so a blob that is not the digest it claims is never kept)
and links it into the project under its file name (``.modelkit/oci/<digest>/<filepath>``): the
build reads and names project files, as for any ready GGUF, and no copy is made.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelkit.errors import OCIError, UserError
from modelkit.oci.modelpack import DOCKER_GGUF, DOCKER_MMPROJ, FILEPATH, MANIFEST, gguf_layers
from modelkit.oci.reference import Reference, parse_reference

ACCEPT = (MANIFEST, "application/vnd.docker.distribution.manifest.v2+json")
DOCKER_CONFIG = "application/vnd.docker.ai.model.config.v0.1+json"


@dataclass(frozen=True)
class OCISource:
    """A model artifact pinned to its manifest digest: its files (path -> digest), the model's GGUF
    files in order and its projector, where they are linked in the project (``snapshot``)."""

    reference: str
    manifest: str
    files: dict[str, str]
    model: tuple[str, ...]
    projector: str | None
    snapshot: Path
    insecure: bool = False
    moved_from: str | None = None
    """The manifest the lock pinned, when ``--update`` found the tag now names another."""
    sizes: dict[str, int] = field(default_factory=dict)

    @property
    def gguf(self) -> Path:
        return self.snapshot / self.model[0]

    @property
    def projector_path(self) -> Path | None:
        return self.snapshot / self.projector if self.projector else None

    def lock_entry(self, downloaded: Mapping[str, str]) -> dict[str, Any]:
        """What ``modelkit.lock`` says of it: the reference, its manifest, its files (the manifest
        names their digests, so what was ``downloaded`` adds nothing)."""
        return {"oci": self.reference, "manifest": self.manifest, "files": dict(sorted(self.files.items())),
                "model": list(self.model), "projector": self.projector}


def resolve(text: str, state_dir: Path, insecure: bool, locked: Mapping[str, Any] | None,
            update: bool = False) -> OCISource:
    """The artifact ``text`` names, pinned (see the module docstring)."""
    try:
        reference = parse_reference(text)
    except ValueError as e:
        raise UserError(f"base.oci: {e}") from None
    pinned = locked if locked and locked.get("oci") == text and locked.get("manifest") else None
    if pinned and not update:
        return _source(text, str(pinned["manifest"]), dict(pinned["files"]), tuple(pinned["model"]),
                       pinned.get("projector"), state_dir, insecure)
    manifest, digest = read_manifest(reference, insecure)
    files, sizes, model, projector = _files(manifest, text)
    moved = str(pinned["manifest"]) if pinned and pinned["manifest"] != digest else None
    source = _source(text, digest, files, model, projector, state_dir, insecure)
    return OCISource(**{**source.__dict__, "moved_from": moved, "sizes": sizes})


def _source(text: str, digest: str, files: dict[str, str], model: tuple[str, ...], projector: str | None,
            state_dir: Path, insecure: bool) -> OCISource:
    return OCISource(text, digest, files, model, projector, state_dir / "oci" / digest.split(":")[1][:16],
                     insecure)


def read_manifest(reference: Reference, insecure: bool) -> tuple[dict[str, Any], str]:
    """The manifest a reference names (a ModelPack or Docker Model Runner artifact) and its digest."""
    from modelkit.oci.auth import find_credentials
    from modelkit.oci.client import RegistryClient

    with RegistryClient(reference, find_credentials(reference.registry), insecure) as client:
        body, kind, digest = client.get_manifest(reference.ref, ACCEPT)
    try:
        manifest: dict[str, Any] = json.loads(body)
    except ValueError:
        raise OCIError(f"{reference}: the registry's manifest is not JSON ({kind or 'no content type'})") from None
    return manifest, digest


def _files(manifest: dict[str, Any], text: str) -> tuple[dict[str, str], dict[str, int], tuple[str, ...], str | None]:
    model, projector = gguf_layers(manifest)
    if not model:
        kinds = sorted({str(layer.get("mediaType")) for layer in manifest.get("layers") or []})
        raise OCIError(f"base.oci: {text} holds no GGUF (layers: {', '.join(kinds) or 'none'}): a ModelPack or "
                       "Docker Model Runner artifact of a GGUF model is needed")
    files, sizes, names = {}, {}, []
    for index, layer in enumerate([*model, *projector]):
        default = "model.gguf" if layer.get("mediaType") == DOCKER_GGUF else "mmproj.gguf"
        if layer.get("mediaType") == DOCKER_GGUF and len(model) > 1:
            default = f"model-{index + 1:05d}-of-{len(model):05d}.gguf"
        name = Path(str((layer.get("annotations") or {}).get(FILEPATH) or default)).name
        files[name], sizes[name] = str(layer["digest"]), int(layer["size"])
        names.append(name)
    return files, sizes, tuple(names[:len(model)]), (names[len(model)] if projector else None)


def fetch(source: OCISource, blobs: Path, progress: Any = None) -> None:
    """Download every file of ``source`` not yet in the blob cache, then link them into its snapshot."""
    from modelkit.oci.auth import find_credentials
    from modelkit.oci.client import RegistryClient

    reference = parse_reference(source.reference).with_digest(source.manifest)
    blobs.mkdir(parents=True, exist_ok=True)
    missing = {name: digest for name, digest in source.files.items() if not (blobs / digest.split(":")[1]).is_file()}
    if missing:
        with RegistryClient(reference, find_credentials(reference.registry), source.insecure) as client:
            manifest = json.loads(client.get_manifest(source.manifest, ACCEPT)[0])
            sizes = {str(layer["digest"]): int(layer["size"]) for layer in manifest.get("layers") or []}
            for name, digest in sorted(missing.items()):
                partial = blobs / f".{digest.split(':')[1]}.{os.getpid()}"
                shown: Callable[[int], None] | None = None
                if progress is not None:
                    shown = functools.partial(progress, name=name)
                client.fetch_blob(digest, sizes.get(digest, -1), partial, shown)
                os.replace(partial, blobs / digest.split(":")[1])
    source.snapshot.mkdir(parents=True, exist_ok=True)
    for name, digest in source.files.items():
        link = source.snapshot / name
        if not link.is_file():
            tmp = link.with_name(f".{name}.{os.getpid()}")
            try:
                os.link(blobs / digest.split(":")[1], tmp)
            except OSError:
                import shutil

                shutil.copyfile(blobs / digest.split(":")[1], tmp)  # another file system: a copy
            os.replace(tmp, link)


__all__ = ["ACCEPT", "DOCKER_CONFIG", "DOCKER_GGUF", "DOCKER_MMPROJ", "OCISource", "fetch", "read_manifest",
           "resolve"]
