"""Ollama's model options, for the stand-ins: the JSON names and Go kinds of ``api.Options`` and
``api.Runner`` (``api/types.go``), which ``api.FormatParams`` uses to turn a Modelfile's
``PARAMETER`` text into values (``int``, ``float`` for ``float32``, ``bool`` for ``*bool``,
``strings`` for ``[]string``; ``*int`` is read as an int). The server itself accepts any
parameter: only the CLI's ``FormatParams`` knows this table.
"""

from __future__ import annotations

# api.Runner
RUNNER = {
    "num_ctx": "int", "num_batch": "int", "num_gpu": "int", "main_gpu": "int", "use_mmap": "bool",
    "num_thread": "int", "draft_num_predict": "int",
}
# api.Options (after the embedded Runner)
PREDICT = {
    "num_keep": "int", "seed": "int", "num_predict": "int", "top_k": "int", "top_p": "float", "min_p": "float",
    "typical_p": "float", "repeat_last_n": "int", "temperature": "float", "repeat_penalty": "float",
    "presence_penalty": "float", "frequency_penalty": "float", "stop": "strings",
}
TYPES: dict[str, str] = {**RUNNER, **PREDICT}
