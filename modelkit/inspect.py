"""What a GGUF or a built variant is: architecture, size, quantization, context, template, adapter.

Everything comes from the GGUF header (milliseconds, even for a 16 GB file) and from the
project's own records, so ``modelkit inspect`` is instant and works offline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modelkit.errors import UserError
from modelkit.gguf_header import read_header
from modelkit.quant_types import file_type_name


def inspect_gguf(path: Path) -> dict[str, Any]:
    """The facts a user asks about a GGUF file."""
    header = read_header(path, index_strings=())
    meta = header.metadata
    arch = meta.get("general.architecture")
    kind = meta.get("general.type") or "model"
    file_type = meta.get("general.file_type")
    info: dict[str, Any] = {
        "path": str(path),
        "type": kind,
        "architecture": arch,
        "name": meta.get("general.name"),
        "size_bytes": path.stat().st_size,
        "tensors": header.tensor_count,
        "quantization": file_type_name(file_type) if isinstance(file_type, int) else None,
        "context_length": meta.get(f"{arch}.context_length"),
        "layers": meta.get(f"{arch}.block_count"),
        "embedding_length": meta.get(f"{arch}.embedding_length"),
        "chat_template": "tokenizer.chat_template" if "tokenizer.chat_template" in meta else None,
    }
    if kind == "adapter":
        info["adapter"] = {"type": meta.get("adapter.type"), "alpha": meta.get("adapter.lora.alpha")}
    return info


def inspect_variant(project: Any, ref: str) -> dict[str, Any]:
    """A built variant (``model:tag``) of a project: its GGUF, Modelfile, template and adapter."""
    variants = {v.ref: v for v in project.variants}
    variant = variants.get(ref) or variants.get(f"{project.spec.ollama_model}:{ref}")
    if variant is None:
        raise UserError(f"no variant '{ref}' in {project.loaded.path.name}; variants: {', '.join(variants)}")
    if not variant.gguf.is_file():
        raise UserError(f"{variant.ref} is not built yet ({variant.gguf.name} is missing): run `modelkit build`")
    info: dict[str, Any] = {"variant": variant.ref, **inspect_gguf(variant.gguf)}
    modelfile = project.graph[variant.modelfile_target].action
    info["modelfile"] = str(modelfile.out)
    info["merged_adapter"] = variant.adapter if variant.adapter and not modelfile.adapters else None
    info["adapter_file"] = modelfile.adapters[0] if modelfile.adapters else None
    if modelfile.inherited is not None and modelfile.inherited.is_file():
        inherited = json.loads(modelfile.inherited.read_text())
        info["chat_template"] = f"inherited from {inherited['origin']} ({inherited['proof']})"
    elif modelfile.template_file is not None:
        info["chat_template"] = f"from {modelfile.template_file}"
    elif modelfile.template is not None:
        info["chat_template"] = "given in the spec"
    info["registered_as"] = [r.removeprefix("ollama:") for r in variant.registrations
                             if project.state.target(r) is not None]
    return info
