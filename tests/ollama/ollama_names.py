"""Ollama's model names, for the stand-in: ``types/model/name.go`` and ``internal/modelref``.

Written from Ollama's source, independent of ``modelkit.ollama.names``:

* :func:`parse_name` is ``model.ParseName`` (``ParseNameBare`` merged with ``DefaultName``);
  :meth:`Name.is_valid` is ``Name.IsValid`` / ``IsFullyQualified`` (``isValidPart`` per part);
* :func:`parse_ref` is ``modelref.ParseRef``: a trailing ``:cloud`` / ``:local`` (any case) or a tag
  ending in ``-cloud`` says where the model lives, and is cut off the name;
* :func:`normalize_pull_name` is ``modelref.NormalizePullName``: a cloud reference becomes the
  legacy ``NAME:cloud`` / ``NAME:TAG-cloud`` name, a local one loses its ``:local``;
* :func:`parse_and_validate_ref` / :func:`parse_normalize_pull_ref` are ``server/model_resolver.go``'s
  ``parseAndValidateModelRef`` (used by ``ShowHandler``) and ``parseNormalizePullModelRef``
  (used by ``DeleteHandler``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ollama_go import quote

MISSING_PART = "!MISSING!"
DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
DEFAULT_SCHEME = "https"

SOURCE_UNSPECIFIED, SOURCE_LOCAL, SOURCE_CLOUD = "unspecified", "local", "cloud"


class UnqualifiedName(ValueError):
    """``model.ErrUnqualifiedName`` (``Unqualified(n)``)."""


class ConflictingSource(ValueError):
    """``modelref.ErrConflictingSourceSuffix``."""


class ModelRequired(ValueError):
    """``modelref.ErrModelRequired``."""


@dataclass(frozen=True)
class Name:
    host: str = ""
    namespace: str = ""
    model: str = ""
    tag: str = ""
    scheme: str = ""

    def is_valid(self) -> bool:
        """``Name.IsValid`` (= ``IsFullyQualified``: host, namespace, model and tag all valid)."""
        return all(_valid_part(kind, part) for kind, part in
                   (("host", self.host), ("namespace", self.namespace), ("model", self.model), ("tag", self.tag)))

    def key(self) -> tuple[str, str, str, str]:
        """The manifest's place, ``Name.Filepath``: host/namespace/model/tag."""
        return (self.host, self.namespace, self.model, self.tag)

    def string(self) -> str:
        """``Name.String``."""
        out = ""
        if self.host:
            out += self.host + "/"
        if self.namespace:
            out += self.namespace + "/"
        out += self.model
        if self.tag:
            out += ":" + self.tag
        return out

    def display_shortest(self) -> str:
        """``Name.DisplayShortest``."""
        out = ""
        if self.host.lower() != DEFAULT_HOST:
            out += f"{self.host}/{self.namespace}/"
        elif self.namespace.lower() != DEFAULT_NAMESPACE:
            out += f"{self.namespace}/"
        return f"{out}{self.model}:{self.tag}"

    def equal_fold(self, other: Name) -> bool:
        return all(a.lower() == b.lower() for a, b in zip(self.key(), other.key()))


def _cut_promised(s: str, sep: str) -> tuple[str, str, bool]:
    i = s.rfind(sep)
    if i < 0:
        return s, "", False
    return (s[:i] or MISSING_PART), (s[i + len(sep):] or MISSING_PART), True


def parse_name_bare(s: str) -> Name:
    """``ParseNameBare``."""
    tag = ""
    if s.rfind(":") > s.rfind("/"):  # "/" is an illegal tag character
        s, tag, _ = _cut_promised(s, ":")
    s, model, promised = _cut_promised(s, "/")
    if not promised:
        return Name(model=s, tag=tag)
    s, namespace, promised = _cut_promised(s, "/")
    if not promised:
        return Name(namespace=s, model=model, tag=tag)
    scheme, sep, host = s.partition("://")
    if not sep:
        scheme, host = "", scheme
    return Name(host=host, namespace=namespace, model=model, tag=tag, scheme=scheme)


def parse_name(s: str) -> Name:
    """``ParseName``: the bare parse, empty parts filled from ``DefaultName``."""
    n = parse_name_bare(s)
    return replace(n, host=n.host or DEFAULT_HOST, namespace=n.namespace or DEFAULT_NAMESPACE,
                   tag=n.tag or DEFAULT_TAG, scheme=n.scheme or DEFAULT_SCHEME)


def _alnum_(c: str) -> bool:
    return "A" <= c <= "Z" or "a" <= c <= "z" or "0" <= c <= "9" or c == "_"


def _valid_part(kind: str, s: str) -> bool:
    """``isValidPart``: length (bytes) and characters per kind of part."""
    raw = s.encode("utf-8")
    if not 1 <= len(raw) <= (350 if kind == "host" else 80):
        return False
    # Go ranges over the string's runes but tests the byte at each rune's start.
    starts, i = [], 0
    for ch in s:
        starts.append(chr(raw[i]) if raw[i] < 0x80 else "\x80")
        i += len(ch.encode("utf-8"))
    for i, c in enumerate(starts):
        if i == 0:
            if not _alnum_(c):
                return False
        elif c in "_-":
            continue
        elif c == ".":
            if kind == "namespace":
                return False
        elif c == ":":
            if kind not in ("host", "digest"):
                return False
        elif not _alnum_(c):
            return False
    return True


# --- internal/modelref ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    original: str
    base: str
    source: str
    name: Name | None = None


def _source_suffix(raw: str) -> tuple[str, str, bool]:
    """``parseSourceSuffix``."""
    idx = raw.rfind(":")
    if idx >= 0:
        suffix_raw = raw[idx + 1:].strip()
        suffix = suffix_raw.lower()
        if suffix == "cloud":
            return raw[:idx], SOURCE_CLOUD, True
        if suffix == "local":
            return raw[:idx], SOURCE_LOCAL, True
        if "/" not in suffix_raw and suffix.endswith("-cloud"):
            return raw[: idx + 1] + suffix_raw[: -len("-cloud")], SOURCE_CLOUD, True
    return raw, SOURCE_UNSPECIFIED, False


def parse_ref(raw: str) -> Ref:
    """``modelref.ParseRef``."""
    raw = raw.strip()
    if not raw:
        raise ModelRequired("model is required")
    base, source, explicit = _source_suffix(raw)
    if explicit and _source_suffix(base)[2]:
        raise ConflictingSource(f"use either :local or :cloud, not both: {quote(raw)}")
    return Ref(original=raw, base=base, source=source)


def has_explicit_tag(name: str) -> bool:
    """``modelref.HasExplicitTag``."""
    return name.rfind(":") > name.rfind("/")


def normalize_pull_name(raw: str) -> tuple[str, bool]:
    """``modelref.NormalizePullName``."""
    ref = parse_ref(raw)
    if ref.source != SOURCE_CLOUD:
        return ref.base, False
    return (ref.base + "-cloud" if has_explicit_tag(ref.base) else ref.base + ":cloud"), True


def parse_and_validate_ref(raw: str) -> Ref:
    """``parseAndValidateModelRef`` (``server/model_resolver.go``)."""
    ref = parse_ref(raw)
    name = parse_name(ref.base)
    if not name.is_valid():
        raise UnqualifiedName(f"unqualified name: {name.string()}")
    return replace(ref, name=name)


def parse_normalize_pull_ref(raw: str) -> Ref:
    """``parseNormalizePullModelRef`` (``server/model_resolver.go``)."""
    ref = parse_ref(raw)
    normalized, _ = normalize_pull_name(raw)
    name = parse_name(normalized)
    if not name.is_valid():
        raise UnqualifiedName(f"unqualified name: {name.string()}")
    return Ref(original=ref.original, base=normalized, source=ref.source, name=name)

