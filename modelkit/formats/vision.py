"""What a model sees besides text: its vision tower (from config.json) and a projector GGUF (from its header).

A vision-language model is two halves: the language model, which converts, merges and quantizes
like any other, and its projector (the vision tower and the projection into the language model's
embeddings), which llama.cpp writes as a GGUF of its own (``convert_hf_to_gguf.py --mmproj``:
``general.type = mmproj``, architecture ``clip``) and which Ollama stores as a ``projector`` layer.
Nothing here imports torch or reads tensors.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VISION_MODULES = ("vision_tower.", "vision_model.", "multi_modal_projector.", "visual.", "vision_encoder.",
                  "mm_projector.", "vision_embed_tokens.")
"""Module names that belong to the vision half of a model, in checkpoints and adapters alike."""


@dataclass(frozen=True)
class VisionTower:
    """A base model's vision half, as its config.json describes it."""

    architecture: str
    tower: str
    """The vision tower's own model type (``siglip_vision_model``, ``pixtral``, …)."""
    image_size: int | None = None


def vision_tower(config: Mapping[str, Any]) -> VisionTower | None:
    """The vision tower a config.json declares, or None for a model that sees only text."""
    vision = config.get("vision_config")
    if not isinstance(vision, Mapping):
        return None
    architectures = config.get("architectures") or []
    architecture = str(architectures[0]) if architectures else str(config.get("model_type", "unknown"))
    size = vision.get("image_size")
    return VisionTower(architecture, str(vision.get("model_type", "vision")), size if isinstance(size, int) else None)


def read_vision_tower(folder: Path) -> VisionTower | None:
    """:func:`vision_tower` of ``folder/config.json`` (None when there is none or it is unreadable)."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return vision_tower(config) if isinstance(config, dict) else None


def touches_vision(tensor: str) -> bool:
    """Whether an adapter's (or checkpoint's) tensor belongs to the vision half."""
    return any(f".{module}" in f".{tensor}" for module in VISION_MODULES)


@dataclass(frozen=True)
class Projector:
    """A projector GGUF, as its header says: what ``modelkit inspect`` shows."""

    projector_type: str
    image_size: int | None
    patch_size: int | None
    tokens_per_image: int | None
    """Embeddings one image becomes (None where it depends on the image's size)."""


def projector(metadata: Mapping[str, Any]) -> Projector | None:
    """The projector a GGUF's metadata describes, or None when it is not one."""
    if metadata.get("general.type") != "mmproj" and metadata.get("general.architecture") != "clip":
        return None
    kind = str(metadata.get("clip.projector_type", "unknown"))
    size, patch = metadata.get("clip.vision.image_size"), metadata.get("clip.vision.patch_size")
    return Projector(kind, size if isinstance(size, int) else None, patch if isinstance(patch, int) else None,
                     _tokens_per_image(kind, size, patch, metadata.get("clip.vision.projector.scale_factor")))


def _tokens_per_image(kind: str, size: object, patch: object, scale: object) -> int | None:
    """Gemma 3 pools its patches by ``scale`` (4 unless the header says) into a fixed grid; the
    others read images at their own size, so their count depends on the image."""
    if kind != "gemma3" or not isinstance(size, int) or not isinstance(patch, int) or not patch:
        return None
    per_side = size // patch // (scale if isinstance(scale, int) and scale > 0 else 4)
    return per_side * per_side


def projectable_architectures(source: Path) -> frozenset[str]:
    """The architectures whose projector the llama.cpp tree at ``source`` converts: those its
    ``conversion`` package (or, in older trees, ``convert_hf_to_gguf.py``) registers on a subclass
    of ``MmprojModel``. Read from the source with ``ast``: importing it would import torch."""
    files = sorted((source / "conversion").glob("*.py")) or [source / "convert_hf_to_gguf.py"]
    classes: dict[str, tuple[list[str], list[str]]] = {}
    for file in files:
        try:
            tree = ast.parse(file.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, ValueError):
            continue
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                bases = [b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases]
                classes[node.name] = (bases, _registered(node))

    def projects(name: str, seen: frozenset[str] = frozenset()) -> bool:
        if name == "MmprojModel":
            return True
        bases = classes.get(name, ([], []))[0]
        return name not in seen and any(projects(b, seen | {name}) for b in bases)

    return frozenset(arch for name, (_, archs) in classes.items() if name != "MmprojModel" and projects(name)
                     for arch in archs)


def _registered(node: ast.ClassDef) -> list[str]:
    """The architectures ``@ModelBase.register("A", "B")`` gives a class."""
    return [arg.value for deco in node.decorator_list
            if isinstance(deco, ast.Call) and getattr(deco.func, "attr", "") == "register"
            for arg in deco.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]
