"""Is a registration current? Ollama is asked, not local records.

``/api/show`` reports what a model is made of: the Modelfile it prints starts with the model
and adapter blob paths (named by sha256), and its JSON carries the template, system prompt,
messages, license and parameters. Comparing those with what the build would register makes the
registration target fresh exactly when Ollama holds that content, whoever registered it, and stale
after anything changes it (another ``ollama create``, a deleted model, a new parameter).

The official client's ``show()`` model drops ``system`` and ``messages``, so the reply is read
as JSON through the client's own request method.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import ollama

from modelkit.core.hashing import sha256_file
from modelkit.errors import OllamaUnavailable
from modelkit.ollama.client import describe, make_client, shown_host
from modelkit.ollama.content import (BLOB_DIGEST, ModelContent, checked_messages, checked_name, checked_parameters,
                                     known_digests)
from modelkit.ollama.params import OPTIONS, OptionType
from modelkit.ollama.strconv import go_unquote


@dataclass(frozen=True)
class RegistrationStatus:
    """Whether Ollama holds the model with the expected content; ``reason`` says why not."""

    fresh: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.fresh


def is_registered(
    model: str,
    content: ModelContent,
    *,
    host: str | None = None,
    digests: Mapping[Path, str] | None = None,
    timeout: float = 30.0,
) -> RegistrationStatus:
    """Ask Ollama whether it holds ``model`` with exactly ``content``.

    ``digests`` are sha256 digests the caller already knows, so GGUFs are not reread. Raises
    :class:`OllamaUnavailable` when Ollama cannot be asked: then freshness is unknown, not false.
    """
    name = checked_name(model)
    params = checked_parameters(content.parameters)
    checked_messages(content.messages)
    client = make_client(host, timeout)
    try:
        shown = client._request_raw("POST", "/api/show", json={"model": name}).json()
    except ollama.ResponseError as e:
        if e.status_code == 404:
            return RegistrationStatus(False, "not in Ollama")
        return RegistrationStatus(False, f"Ollama could not show it ({e.error})")
    except (ConnectionError, httpx.TransportError) as e:
        raise OllamaUnavailable(shown_host(host), describe(e), name) from None
    if not isinstance(shown, dict):
        return RegistrationStatus(False, "Ollama's answer to show was not an object")

    known = known_digests(digests)

    def digest_of(path: Path) -> str:
        return known.get(Path(path).resolve()) or sha256_file(Path(path))

    return compare(shown, content, params, digest_of)


def compare(
    shown: Mapping[str, object],
    content: ModelContent,
    params: Mapping[str, object],
    digest_of: Callable[[Path], str],
) -> RegistrationStatus:
    """Compare a ``/api/show`` reply with ``content``; the first difference is the reason."""
    models, adapters = blobs_in_modelfile(str(shown.get("modelfile") or ""))
    want = digest_of(content.gguf)
    if not models:
        return RegistrationStatus(False, "Ollama shows no model blob for it")
    if models[0] != want:
        return RegistrationStatus(False, f"model blob differs (Ollama has {models[0][:19]}…, the build has {want[:19]}…)")
    if adapters != [digest_of(a) for a in content.adapters]:
        return RegistrationStatus(False, "adapter differs")
    if content.template is not None and shown.get("template", "") != content.template:
        return RegistrationStatus(False, "template differs")
    if (shown.get("system") or "") != (content.system or ""):
        return RegistrationStatus(False, "system prompt differs")
    messages = shown.get("messages")
    have_messages = [
        (m.get("role"), m.get("content")) for m in (messages if isinstance(messages, list) else []) if isinstance(m, dict)
    ]
    if have_messages != [tuple(m) for m in content.messages]:
        return RegistrationStatus(False, "messages differ")
    if (shown.get("license") or "") != "\n".join(content.license):
        return RegistrationStatus(False, "license differs")
    try:
        have_params = parse_show_parameters(str(shown.get("parameters") or ""))
    except ValueError as e:
        return RegistrationStatus(False, f"cannot read Ollama's parameters ({e})")
    differing = differing_parameters(have_params, params)
    if differing:
        return RegistrationStatus(False, "parameters differ: " + ", ".join(differing))
    return RegistrationStatus(True)


def blobs_in_modelfile(text: str) -> tuple[list[str], list[str]]:
    """The FROM and ADAPTER blob digests at the top of the Modelfile that ``/api/show`` prints.

    Ollama prints the model and adapter blob paths first, before any TEMPLATE or SYSTEM whose
    text could hold lines that look like commands, so reading stops at the first other command.
    """
    models: list[str] = []
    adapters: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        command, _, rest = stripped.partition(" ")
        target = {"from": models, "adapter": adapters}.get(command.lower())
        if target is None:
            break
        match = BLOB_DIGEST.search(rest)
        target.append(f"sha256:{match.group(1).lower()}" if match else rest.strip())
    return models, adapters


def parse_show_parameters(text: str) -> dict[str, list[object]]:
    """Read ``/api/show``'s ``parameters``: a ``name value`` line per value, printed by Go's ``%#v``
    (strings as Go string literals, numbers in Go's shortest form, ``true``/``false``)."""
    out: dict[str, list[object]] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, _, literal = line.strip().partition(" ")
        literal = literal.strip()
        value: object
        if literal.startswith('"'):
            value = go_unquote(literal)
        elif literal in ("true", "false"):
            value = literal == "true"
        else:
            try:
                value = float(literal)
            except ValueError:
                raise ValueError(f"unexpected value for {name}: {literal[:40]!r}") from None
        out.setdefault(name, []).append(value)
    return out


def differing_parameters(have: Mapping[str, list[object]], want: Mapping[str, object]) -> list[str]:
    """Names whose values differ between Ollama's parameters and the wanted ones."""
    wanted = {k: (list(v) if isinstance(v, (list, tuple)) else [v]) for k, v in want.items()}
    out = []
    for name in sorted(set(have) | set(wanted)):
        a, b = have.get(name), wanted.get(name)
        if a is None or b is None or len(a) != len(b) or not all(_same(name, x, y) for x, y in zip(a, b)):
            out.append(name)
    return out


def _same(name: str, have: object, want: object) -> bool:
    if isinstance(want, bool) or isinstance(have, bool):
        return have is want
    if isinstance(want, str) or isinstance(have, str):
        return have == want
    if not isinstance(have, (int, float)) or not isinstance(want, (int, float)):
        return False
    if OPTIONS.get(name) is OptionType.FLOAT:
        # Ollama keeps these as float32, whichever way they were registered: compare at that precision.
        return struct.pack("<f", float(have)) == struct.pack("<f", float(want))
    return float(have) == float(want)
