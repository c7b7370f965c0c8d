"""Training checkpoints: which one is newest, and whether it is completely written.

A training run writes ``checkpoint-500/``, ``checkpoint-1000/``, … while the user experiments, so
an adapter ``path`` may be a pattern (``./out/checkpoint-*``) that means "the newest complete
checkpoint". Complete is checked exactly, not guessed from timing: a safetensors file declares
its tensors' byte ranges in its header, so the file is whole when its size is the header's
length plus the end of the last range; ``adapter_config.json`` must parse. A checkpoint still
being written is therefore never converted, however slowly the trainer writes it.
"""

from __future__ import annotations

import glob
import json
import re
import zipfile
from pathlib import Path

from modelkit.formats import safetensors

_STEP = re.compile(r"(\d+)$")
PATTERN_CHARS = set("*?[")


def is_pattern(path: str | Path) -> bool:
    return bool(PATTERN_CHARS & set(str(path)))


def step_of(folder: Path) -> int | None:
    """The training step a checkpoint folder is named after (``checkpoint-1000`` -> 1000)."""
    m = _STEP.search(folder.name)
    return int(m.group(1)) if m else None


def is_complete(folder: Path) -> bool:
    """Whether ``folder`` holds a completely written PEFT adapter."""
    try:
        json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    weights = folder / "adapter_model.safetensors"
    if weights.is_file():
        return safetensors.is_complete(weights)
    legacy = folder / "adapter_model.bin"
    return legacy.is_file() and zipfile.is_zipfile(legacy)  # torch.save writes a zip, central directory last


def newest_complete(pattern: Path) -> Path | None:
    """The complete checkpoint matching ``pattern`` with the highest step (then the newest name)."""
    found = [Path(p) for p in glob.glob(str(pattern)) if Path(p).is_dir()]
    complete = [p for p in found if is_complete(p)]
    if not complete:
        return None
    return max(complete, key=lambda p: (step_of(p) if step_of(p) is not None else -1, p.name))
