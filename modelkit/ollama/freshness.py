"""Is a registration current? Compare what Ollama holds now with what it held right after it
accepted the model.

Today's Ollama rewrites what it is given (``server/create.go``): it re-encodes a text-only GGUF
with ``llama-quantize … COPY`` and keeps *that* as the model layer, merges the stop list of a
named template it recognises into the parameters, and ``/api/show`` may answer with the GGUF's
own Jinja instead of the TEMPLATE that was sent (``server/images.go``). So Ollama's answer is
never compared with modelkit's request. Right after a registration, :func:`held_copy` records
what the server reports (a :class:`ServerCopy`: layer digests, template, system prompt,
messages, license, parameters); later the registration is fresh while the server still reports
the same. A deleted model, one re-created by hand, or another server at the same address is
still caught, on Ollama 0.12 as on today's.

:func:`unexpected` compares a copy with the request only to tell the user what the server chose
to do differently (its own template, stops it added), never to decide freshness.

The official client's ``show()`` model drops ``system`` and ``messages``, so the reply is read
as JSON through the client's own request method.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import ollama

from modelkit.errors import OllamaUnavailable, StepError
from modelkit.golang.strconv import go_unquote
from modelkit.ollama.client import describe, make_client, raw_request
from modelkit.ollama.content import BLOB_DIGEST, ModelContent, checked_name
from modelkit.ollama.host import shown_host
from modelkit.ollama.params import OPTIONS, OptionType


@dataclass(frozen=True)
class RegistrationStatus:
    """Whether Ollama still holds what was registered; ``reason`` says why not."""

    fresh: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.fresh


@dataclass(frozen=True)
class ServerCopy:
    """One model as ``/api/show`` reports it, normalised so that two answers compare equal
    exactly when the model is the same (no times, no derived details)."""

    model_blobs: tuple[str, ...]
    adapter_blobs: tuple[str, ...] = ()
    template: str = ""
    system: str = ""
    messages: tuple[tuple[str, str], ...] = ()
    license: str = ""
    parameters: dict[str, list[Any]] = field(default_factory=dict)
    renderer: str = ""
    parser: str = ""
    requires: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ServerCopy:
        """The copy a receipt recorded; ``ValueError`` when it is not one."""
        try:
            return cls(tuple(data["model_blobs"]), tuple(data["adapter_blobs"]), str(data["template"]),
                       str(data["system"]), tuple((str(r), str(c)) for r, c in data["messages"]), str(data["license"]),
                       {str(k): list(v) for k, v in data["parameters"].items()},
                       # receipts written before these fields were recorded: a model without them
                       str(data.get("renderer", "")), str(data.get("parser", "")), str(data.get("requires", "")))
        except (KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"not a recorded server copy ({e})") from None


def held_copy(model: str, *, host: str | None = None, timeout: float = 30.0) -> ServerCopy | None:
    """What Ollama holds as ``model`` now, or None if it holds no such model. Raises
    :class:`OllamaUnavailable` when Ollama cannot be asked: then freshness is unknown, not false."""
    name = checked_name(model)
    client = make_client(host, timeout)
    try:
        shown = raw_request(client, "POST", "/api/show", json={"model": name}).json()
    except ollama.ResponseError as e:
        if e.status_code == 404:
            return None
        raise StepError(f"Ollama could not show {name}: {e.error} (HTTP {e.status_code})") from None
    except (ConnectionError, httpx.TransportError) as e:
        raise OllamaUnavailable(shown_host(host), describe(e), name) from None
    except ValueError:
        raise StepError(f"Ollama's answer to show {name} was not JSON") from None
    if not isinstance(shown, dict):
        raise StepError(f"Ollama's answer to show {name} was not a JSON object")
    return server_copy(shown)


def registration_status(model: str, recorded: ServerCopy | None, *, host: str | None = None) -> RegistrationStatus:
    """Fresh when Ollama still reports what it reported right after registering ``model``."""
    if recorded is None:
        return RegistrationStatus(False, "no record of what Ollama held after registering it")
    try:
        current = held_copy(model, host=host)
    except StepError as e:
        return RegistrationStatus(False, str(e))
    if current is None:
        return RegistrationStatus(False, "not in Ollama")
    changed = _changed_field(recorded, current)
    if changed:
        return RegistrationStatus(False, f"Ollama's copy changed since it was registered ({changed})")
    return RegistrationStatus(True)


def server_copy(shown: Mapping[str, Any]) -> ServerCopy:
    """Normalise a ``/api/show`` reply."""
    models, adapters = blobs_in_modelfile(str(shown.get("modelfile") or ""))
    messages = shown.get("messages")
    pairs = tuple((str(m.get("role")), str(m.get("content"))) for m in (messages if isinstance(messages, list) else [])
                  if isinstance(m, dict))
    try:
        parameters = parse_show_parameters(str(shown.get("parameters") or ""))
    except ValueError:
        parameters = {"(unreadable)": [str(shown.get("parameters"))]}
    modelfile = str(shown.get("modelfile") or "")
    return ServerCopy(tuple(models), tuple(adapters), str(shown.get("template") or ""), str(shown.get("system") or ""),
                      pairs, str(shown.get("license") or ""), parameters, _command(modelfile, "RENDERER"),
                      _command(modelfile, "PARSER"), str(shown.get("requires") or ""))


def _command(modelfile: str, name: str) -> str:
    """The value of a one-word command (``RENDERER``, ``PARSER``) in the Modelfile ``/api/show`` prints
    (``/api/show`` has no field of its own for them)."""
    found = re.search(rf"^{name} (\S+)$", modelfile, re.MULTILINE)
    return found.group(1) if found else ""


def unexpected(copy: ServerCopy, content: ModelContent, params: Mapping[str, object]) -> list[str]:
    """What the server holds differently from what was asked, in words (it may rewrite the model
    blob; that is not worth saying): its own template, parameters it added or changed."""
    notes = []
    if content.template is not None and copy.template != content.template:
        notes.append("Ollama renders another template than the Modelfile TEMPLATE (the GGUF's own chat "
                     "template, in its native chat mode)")
    if copy.system != (content.system or ""):
        notes.append("Ollama holds another system prompt than the one sent")
    for name in differing_parameters(copy.parameters, params):
        if name in params:
            notes.append(f"Ollama holds parameter {name} = {copy.parameters.get(name)!r}, not {params[name]!r}")
        else:
            notes.append(f"Ollama added parameter {name} = {copy.parameters[name]!r}")
    return notes


def _changed_field(before: ServerCopy, after: ServerCopy) -> str | None:
    names = {"model_blobs": "model blob", "adapter_blobs": "adapter", "template": "template",
             "system": "system prompt", "messages": "messages", "license": "license", "parameters": "parameters",
             "renderer": "renderer", "parser": "parser", "requires": "requires"}
    for attribute, label in names.items():
        if attribute == "parameters":
            changed = differing_parameters(before.parameters, after.parameters)
            if changed:
                return f"parameters differ: {', '.join(changed)}"
        elif getattr(before, attribute) != getattr(after, attribute):
            return f"{label} differs"
    return None


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


def parse_show_parameters(text: str) -> dict[str, list[Any]]:
    """Read ``/api/show``'s ``parameters``: a ``name value`` line per value, printed by Go's ``%#v``
    (strings as Go string literals, numbers in Go's shortest form, ``true``/``false``)."""
    out: dict[str, list[Any]] = {}
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


def differing_parameters(have: Mapping[str, list[Any]], want: Mapping[str, object]) -> list[str]:
    """Names whose values differ between two sets of parameters (a single value or a list each)."""
    def values(v: object) -> list[Any]:
        return list(v) if isinstance(v, (list, tuple)) else [v]

    out = []
    for name in sorted(set(have) | set(want)):
        a, b = have.get(name), want.get(name)
        if a is None or b is None or len(values(a)) != len(values(b)) or \
                not all(_same(name, x, y) for x, y in zip(values(a), values(b))):
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
