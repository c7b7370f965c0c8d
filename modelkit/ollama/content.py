"""What one registered model is made of, checked the way Ollama will read it.

Registering (:mod:`.register`, :mod:`.cli`) and checking a registration (:mod:`.freshness`) both
start from a :class:`ModelContent` and the same checks, so the request sent and the one compared
against are always the same.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from modelkit.errors import UserError
from modelkit.ollama.modelfile import MESSAGE_ROLES
from modelkit.ollama.names import check_model_name
from modelkit.ollama.params import check_parameters

BLOB_DIGEST = re.compile(r"sha256[-:]([0-9a-fA-F]{64})")


@dataclass(frozen=True)
class ModelContent:
    """Everything one registered model is made of. A ``None`` template leaves the choice to Ollama
    (it picks one matching the GGUF's chat template), and is then not compared for freshness.

    ``parameters`` are checked and normalised with :func:`~modelkit.ollama.params.check_parameters`
    before use, so the same spec always produces the same request.
    """

    gguf: Path
    adapters: tuple[Path, ...] = ()
    projector: Path | None = None
    """The vision half of a model that sees images (an mmproj GGUF), a second model file."""
    template: str | None = None
    system: str | None = None
    parameters: Mapping[str, object] = field(default_factory=dict)
    messages: tuple[tuple[str, str], ...] = ()
    license: tuple[str, ...] = ()
    renderer: str | None = None
    parser: str | None = None
    requires: str | None = None
    """Ollama's built-in renderer and parser, and the first Ollama that has them (:mod:`.renderers`)."""


def checked_name(model: str) -> str:
    """``model`` if Ollama would accept it, else a :class:`UserError` saying which part is wrong."""
    try:
        return check_model_name(model)
    except ValueError as e:
        raise UserError(str(e)) from None


def checked_template(name: str, template: str | None) -> str | None:
    """``template``, unless it is empty: Ollama's create ignores an empty TEMPLATE (``r.Template != ""``
    in ``server/create.go``) and keeps one of its own choosing, which is not what was asked for."""
    if template == "":
        raise UserError(f"{name}: the TEMPLATE is empty, and Ollama ignores an empty TEMPLATE (it keeps a "
                        "template of its own choosing); give the template text, or none to let Ollama choose")
    return template


def checked_parameters(params: Mapping[str, object]) -> dict[str, object]:
    """The parameters normalised, or a :class:`UserError` naming the bad one."""
    try:
        return check_parameters(params)
    except ValueError as e:
        raise UserError(f"ollama.parameters: {e}") from None


def checked_messages(messages: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    """The messages as Ollama takes them, or a :class:`UserError` for a role the Modelfile cannot
    express (Ollama would also lowercase a role, and then never match what was asked for)."""
    out = []
    for i, (role, text) in enumerate(messages):
        if role not in MESSAGE_ROLES:
            raise UserError(f"ollama.messages[{i}]: role {role!r} must be one of {', '.join(MESSAGE_ROLES)}")
        out.append({"role": role, "content": text})
    return out


def normal_digest(digest: str) -> str:
    """``sha256:<hex>`` from ``sha256:<hex>``, ``sha256-<hex>`` or a bare hex digest."""
    match = BLOB_DIGEST.fullmatch(digest) or re.fullmatch(r"([0-9a-fA-F]{64})", digest)
    if not match:
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return f"sha256:{match.group(1).lower()}"


def known_digests(digests: Mapping[Path, str] | None) -> dict[Path, str]:
    """The caller's digests, keyed by resolved path, normalised."""
    return {Path(p).resolve(): normal_digest(d) for p, d in (digests or {}).items()}
