"""llama.cpp's quantization types, as ``llama-quantize`` names them.

The spec is checked before any toolchain exists, so the table lives here; a toolchain test checks
it against ``tools/quantize/quantize.cpp`` of the llama.cpp that modelkit builds. ``file_type`` is
the ``general.file_type`` a GGUF of that type records (llama.h's ``llama_ftype``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QuantType:
    name: str
    file_type: int
    needs_imatrix: bool = False
    alias_of: str | None = None


_TABLE = [
    QuantType("Q1_0", 40), QuantType("Q2_0", 41),
    QuantType("Q4_0", 2), QuantType("Q4_1", 3), QuantType("MXFP4_MOE", 38),
    QuantType("Q5_0", 8), QuantType("Q5_1", 9),
    QuantType("IQ2_XXS", 19, True), QuantType("IQ2_XS", 20, True), QuantType("IQ2_S", 28, True),
    QuantType("IQ2_M", 29, True), QuantType("IQ1_S", 24, True), QuantType("IQ1_M", 31, True),
    QuantType("TQ1_0", 36), QuantType("TQ2_0", 37),
    QuantType("Q2_K", 10), QuantType("Q2_K_S", 21, True),
    QuantType("IQ3_XXS", 23, True), QuantType("IQ3_S", 26), QuantType("IQ3_M", 27),
    QuantType("Q3_K", 12, alias_of="Q3_K_M"), QuantType("IQ3_XS", 22),
    QuantType("Q3_K_S", 11), QuantType("Q3_K_M", 12), QuantType("Q3_K_L", 13),
    QuantType("IQ4_NL", 25), QuantType("IQ4_XS", 30),
    QuantType("Q4_K", 15, alias_of="Q4_K_M"), QuantType("Q4_K_S", 14), QuantType("Q4_K_M", 15),
    QuantType("Q5_K", 17, alias_of="Q5_K_M"), QuantType("Q5_K_S", 16), QuantType("Q5_K_M", 17),
    QuantType("Q6_K", 18), QuantType("Q8_0", 7),
    QuantType("F16", 1), QuantType("BF16", 32), QuantType("F32", 0),
]

QUANT_TYPES: dict[str, QuantType] = {q.name: q for q in _TABLE}

# The outtypes convert_hf_to_gguf.py writes, and the quantization type each one is.
CONVERT_OUTTYPES: dict[str, str | None] = {
    "f32": "F32", "f16": "F16", "bf16": "BF16", "q8_0": "Q8_0", "auto": None,
}


def canonical(name: str) -> str:
    """The canonical spelling of a quantization type (``q4_k`` -> ``Q4_K_M``); KeyError if unknown."""
    q = QUANT_TYPES[name.upper()]
    return q.alias_of or q.name


def file_type_name(file_type: int) -> str | None:
    """The quantization name for a GGUF ``general.file_type`` value."""
    for q in _TABLE:
        if q.file_type == file_type and q.alias_of is None:
            return q.name
    return None
