"""Ollama's model parameters (``PARAMETER`` lines, ``parameters`` in ``/api/create``) and their types.

The table follows ``api/types.go`` (``Options`` and ``Runner``) and the Modelfile reference.
Ollama is lenient in the wrong places: the API path stores an unknown or mistyped option and the
server ignores it at run time, so a typo such as ``temprature`` silently does nothing. Checking
here turns that into a spec error that names the parameter and suggests the intended one.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from enum import Enum


class OptionType(Enum):
    """How Ollama reads an option: Go ``int``, ``float32``, ``bool`` or ``[]string``."""

    INT = "an integer"
    FLOAT = "a number"
    BOOL = "true or false"
    STRINGS = "a string or a list of strings"


OPTIONS: dict[str, OptionType] = {
    # Runner: read when the model is loaded.
    "num_ctx": OptionType.INT,
    "num_batch": OptionType.INT,
    "num_gpu": OptionType.INT,
    "main_gpu": OptionType.INT,
    "num_thread": OptionType.INT,
    "use_mmap": OptionType.BOOL,
    # Predict: read for every request.
    "num_keep": OptionType.INT,
    "seed": OptionType.INT,
    "num_predict": OptionType.INT,
    "draft_num_predict": OptionType.INT,
    "top_k": OptionType.INT,
    "top_p": OptionType.FLOAT,
    "min_p": OptionType.FLOAT,
    "typical_p": OptionType.FLOAT,
    "repeat_last_n": OptionType.INT,
    "temperature": OptionType.FLOAT,
    "repeat_penalty": OptionType.FLOAT,
    "presence_penalty": OptionType.FLOAT,
    "frequency_penalty": OptionType.FLOAT,
    "stop": OptionType.STRINGS,
}

# Names Ollama still recognises but ignores, or refuses: setting them would do nothing (or fail
# at registration), so they are spec errors with the reason.
RETIRED: dict[str, str] = {
    "penalize_newline": "is deprecated and ignored by Ollama",
    "low_vram": "is deprecated and ignored by Ollama",
    "f16_kv": "is deprecated and ignored by Ollama",
    "logits_all": "is deprecated and ignored by Ollama",
    "vocab_only": "is deprecated and ignored by Ollama",
    "use_mlock": "is deprecated and ignored by Ollama",
    "mirostat": "is deprecated and ignored by Ollama",
    "mirostat_tau": "is deprecated and ignored by Ollama",
    "mirostat_eta": "is deprecated and ignored by Ollama",
    "numa": "was removed from Ollama",
    "tfs_z": "was removed from Ollama",
    "num_gqa": "was removed from Ollama",
}

_INT64 = (-(2**63), 2**63 - 1)
_FLOAT32_MAX = 3.4028234663852886e38


def check_parameters(params: Mapping[str, object]) -> dict[str, object]:
    """Check and normalise Ollama parameters; raise ``ValueError`` at the first bad one.

    The result has ``int`` for integer options, ``float`` for numbers, ``bool`` for switches and
    ``list[str]`` for ``stop``, in the order given, so the same spec always gives the same request.
    """
    return {name: check_parameter(name, value) for name, value in params.items()}


def check_parameter(name: str, value: object) -> object:
    """Check one parameter against Ollama's known options; return its normalised value."""
    kind = OPTIONS.get(name)
    if kind is None:
        if name in RETIRED:
            raise ValueError(f"Ollama parameter '{name}' {RETIRED[name]}; remove it")
        hint = difflib.get_close_matches(name, list(OPTIONS), n=1, cutoff=0.6)
        suggestion = f" (did you mean '{hint[0]}'?)" if hint else f" (known: {', '.join(sorted(OPTIONS))})"
        raise ValueError(f"unknown Ollama parameter '{name}'{suggestion}")
    if kind is OptionType.INT:
        return _as_int(name, value)
    if kind is OptionType.FLOAT:
        return _as_float(name, value)
    if kind is OptionType.BOOL:
        if isinstance(value, bool):
            return value
        raise ValueError(f"'{name}' must be true or false, got {_show(value)}")
    return _as_strings(name, value)


def _as_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"'{name}' must be an integer, got {_show(value)}")
    if isinstance(value, float):
        if not (math.isfinite(value) and value.is_integer()):
            raise ValueError(f"'{name}' must be an integer, got {_show(value)}")
        value = int(value)
    if not _INT64[0] <= value <= _INT64[1]:
        raise ValueError(f"'{name}' is out of range for a 64-bit integer, got {value}")
    return value


def _as_float(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"'{name}' must be a number, got {_show(value)}")
    number = float(value)
    if not math.isfinite(number) or abs(number) > _FLOAT32_MAX:
        raise ValueError(f"'{name}' must be a finite number that fits a float32, got {_show(value)}")
    return number


def _as_strings(name: str, value: object) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(item, str) for item in items):
        raise ValueError(f"'{name}' must be a string or a list of strings, got {_show(value)}")
    if any(item == "" for item in items):
        raise ValueError(f"'{name}' entries must not be empty strings")
    return list(items)


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{value}'"
    return repr(value)
