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
    """llama-quantize refuses the type without an importance matrix."""
    alias_of: str | None = None

    @property
    def wants_imatrix(self) -> bool:
        """Whether modelkit asks for an importance matrix: the types llama-quantize requires one for,
        and the other IQ types and Q2_K, which it accepts without one but quantizes poorly."""
        return self.needs_imatrix or self.name.startswith("IQ") or self.name.startswith("Q2_K")

    @property
    def uses_imatrix(self) -> bool:
        """Whether llama-quantize reads an importance matrix for this type: Q8_0 and the float types
        ignore it, so their GGUFs need not wait for (or be rebuilt after) the calibration."""
        return (self.alias_of or self.name) not in IGNORE_IMATRIX

    @property
    def rough_bits(self) -> float:
        """Rough bits per weight, for ordering a ladder of types (not a measurement)."""
        return NOMINAL_BPW.get(self.alias_of or self.name, 16.0)


IGNORE_IMATRIX = ("Q8_0", "F16", "BF16", "F32")
"""The types (of a file or of a tensor) llama-quantize makes without reading an importance matrix."""

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

# Rough bits per weight (llama-quantize's help, K-quants from their Llama-3-8B sizes): enough to order
# the types from small to large, never shown as a measurement.
NOMINAL_BPW: dict[str, float] = {
    "IQ1_S": 1.56, "IQ1_M": 1.75, "TQ1_0": 1.69, "TQ2_0": 2.06, "IQ2_XXS": 2.06, "IQ2_XS": 2.31, "IQ2_S": 2.5,
    "IQ2_M": 2.7, "Q2_K_S": 2.96, "Q2_K": 2.96, "IQ3_XXS": 3.06, "IQ3_XS": 3.3, "IQ3_S": 3.44, "IQ3_M": 3.66,
    "Q3_K_S": 3.41, "Q3_K_M": 3.74, "Q3_K_L": 4.03, "IQ4_XS": 4.25, "IQ4_NL": 4.5, "Q4_0": 4.34, "Q4_1": 4.78,
    "Q4_K_S": 4.37, "Q4_K_M": 4.58, "Q5_0": 5.21, "Q5_1": 5.65, "Q5_K_S": 5.21, "Q5_K_M": 5.33, "Q6_K": 6.14,
    "Q8_0": 8.5, "F16": 16.0, "BF16": 16.0, "F32": 32.0, "MXFP4_MOE": 4.25, "Q1_0": 1.0, "Q2_0": 2.0,
}

# The outtypes convert_hf_to_gguf.py writes, and the quantization type each one is.
CONVERT_OUTTYPES: dict[str, str | None] = {
    "f32": "F32", "f16": "F16", "bf16": "BF16", "q8_0": "Q8_0", "auto": None,
}


# The ggml types one tensor can be given (``--tensor-type NAME=TYPE``, ``--output-tensor-type``,
# ``--token-embedding-type``): types of a tensor, not of a file (Q4_K, not Q4_K_M). llama-quantize
# reads them case-blind; a test holds this list against gguf's GGMLQuantizationType. The values
# are the ggml types' bits per weight, which order them.
TENSOR_TYPES: dict[str, float] = {
    "IQ1_S": 1.5625, "IQ1_M": 1.75, "TQ1_0": 1.6875, "TQ2_0": 2.0625, "IQ2_XXS": 2.0625, "IQ2_XS": 2.3125,
    "IQ2_S": 2.5625, "Q2_K": 2.625, "IQ3_XXS": 3.0625, "IQ3_S": 3.4375, "Q3_K": 3.4375, "IQ4_XS": 4.25,
    "IQ4_NL": 4.5, "Q4_0": 4.5, "Q4_K": 4.5, "Q4_1": 5.0, "Q5_0": 5.5, "Q5_K": 5.5, "Q5_1": 6.0, "Q6_K": 6.5625,
    "Q8_0": 8.5, "BF16": 16.0, "F16": 16.0, "F32": 32.0,
}
TENSOR_TYPES_NEEDING_IMATRIX = ("IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S")
"""llama-quantize refuses these for a tensor without an importance matrix."""


def tensor_type(name: str) -> str:
    """The canonical spelling of a tensor's ggml type (``q6_k`` -> ``Q6_K``); KeyError if unknown."""
    upper = name.upper()
    if upper not in TENSOR_TYPES:
        raise KeyError(name)
    return upper


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
