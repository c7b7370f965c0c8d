"""Ollama model names and tags, checked by the rules of Ollama's ``types/model/name.go``.

A name is ``[host/][namespace/]model[:tag]`` (Ollama also knows ``namespace/kind/model`` with a
kind of ``skill``, ``agent`` or ``mcp``). Ollama answers a bad name with a bare "invalid model
name"; checking here first lets modelkit say which part is wrong and why, before any upload.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_REGISTRY = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
VALID_KINDS = frozenset({"skill", "agent", "mcp"})

_MAX_LEN = {"host": 350, "namespace": 80, "model": 80, "tag": 80}
_EXTRA = {"host": "-_.:", "namespace": "-_", "model": "-_.", "tag": "-_."}
_MISSING = object()  # a part promised by a separator but empty, like Ollama's "!MISSING!"


@dataclass(frozen=True)
class ModelName:
    """The parts of a model name as written (empty when absent)."""

    host: str
    namespace: str
    kind: str
    model: str
    tag: str

    def key(self) -> tuple[str, str, str, str, str]:
        """Ollama compares names case-insensitively, with the defaults filled in."""
        return (
            (self.host or DEFAULT_REGISTRY).lower(),
            (self.namespace or DEFAULT_NAMESPACE).lower(),
            self.kind.lower(),
            self.model.lower(),
            (self.tag or DEFAULT_TAG).lower(),
        )


def parse_model_name(name: str) -> ModelName:
    """Split ``name`` as Ollama does and check every part; raises ``ValueError`` saying which."""
    if not isinstance(name, str) or not name:
        raise ValueError("an Ollama model name cannot be empty")
    parts = _split(name)
    given = {part: value for part, value in parts.items() if isinstance(value, str)}
    for part in ("host", "namespace", "model", "tag"):
        if parts[part] is _MISSING:
            raise ValueError(f"invalid Ollama model name {name!r}: the {part} is empty")
        problem = _part_problem(part, given[part]) if part in given else None
        if problem:
            raise ValueError(f"invalid Ollama model name {name!r}: {problem}")
    return ModelName(host=given.get("host", ""), namespace=given.get("namespace", ""),
                     kind=given.get("kind", ""), model=given.get("model", ""), tag=given.get("tag", ""))


def check_model_name(name: str) -> str:
    """Return ``name`` unchanged if Ollama accepts it as a model name, else raise ``ValueError``."""
    parse_model_name(name)
    return name


def check_tag(tag: str) -> str:
    """Return ``tag`` unchanged if Ollama accepts it as a tag, else raise ``ValueError``."""
    if not isinstance(tag, str) or not tag:
        raise ValueError("an Ollama tag cannot be empty")
    problem = _part_problem("tag", tag)
    if problem:
        raise ValueError(f"invalid Ollama tag {tag!r}: {problem}")
    return tag


def _split(s: str) -> dict[str, object]:
    """Ollama's ``ParseNameBare``: the tag after the last ':' that follows the last '/', then the
    parts between slashes from the right; a kind stands between namespace and model."""
    out: dict[str, object] = {"host": None, "namespace": None, "kind": None, "model": None, "tag": None}
    if s.rfind(":") > s.rfind("/"):
        s, out["tag"] = _cut_last(s, ":")
    for part in ("model", "namespace"):
        s, value = _cut_last(s, "/")
        if part == "namespace" and value in VALID_KINDS:
            out["kind"] = value
            s, value = _cut_last(s, "/")
        if value is None:
            out[part] = s if s else _MISSING
            return out
        out[part] = value
    out["host"] = _strip_scheme(s)
    return out


def _cut_last(s: str, sep: str) -> tuple[str, object]:
    i = s.rfind(sep)
    if i < 0:
        return s, None
    before, after = s[:i], s[i + 1 :]
    return before, (after if after else _MISSING)


def _strip_scheme(s: str) -> object:
    if not s:
        return _MISSING
    scheme, found, rest = s.partition("://")
    host = rest if found else scheme
    return host if host else _MISSING


def _part_problem(part: str, value: str) -> str | None:
    limit = _MAX_LEN[part]
    if len(value) > limit:
        return f"the {part} {value!r} is longer than {limit} characters"
    extra = _EXTRA[part]
    first = value[0]
    if not _alnum_(first):
        return f"the {part} {value!r} must start with an ASCII letter, digit or '_'"
    for ch in value[1:]:
        if not (_alnum_(ch) or ch in extra):
            allowed = ", ".join(repr(c) for c in extra)
            return f"the {part} {value!r} contains {ch!r}; only ASCII letters, digits and {allowed} are allowed"
    if part == "tag" and reserved_tag(value):
        return (f"the tag {value!r} is reserved: Ollama's show, run and delete read ':cloud', ':local' and "
                "'*-cloud' as where to run a model (internal/modelref), not as a tag; choose another tag")
    return None


def reserved_tag(tag: str) -> bool:
    """Whether Ollama reads ``tag`` as a model source rather than a tag (``internal/modelref``'s
    ``parseSourceSuffix``): ``cloud``, ``local`` or anything ending in ``-cloud``, in any case.
    ``create`` stores such a name literally, but ``show`` and ``delete`` then look for another."""
    lowered = tag.strip().lower()
    return lowered in ("cloud", "local") or lowered.endswith("-cloud")


def _alnum_(ch: str) -> bool:
    return ch == "_" or ("a" <= ch <= "z") or ("A" <= ch <= "Z") or ("0" <= ch <= "9")
