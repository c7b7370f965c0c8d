"""A small GGUF header reader for the stand-in, following Ollama's ``fs/ggml/gguf.go`` ``Decode``.

It reads the key-values and tensor infos (never the tensor data), checks what Ollama's decoder
checks (magic, value types, tensor bounds against the file size), patches
``general.parameter_count`` with the sum of tensor elements as Ollama does, and answers the
lookups Ollama makes with ``fs/ggml``'s ``KV`` rules: keys not under ``general.`` or ``tokenizer.``
are read under ``<architecture>.``, and a typed getter only sees a value of exactly its Go type
(``KV.Uint`` sees a ``uint32``; ``FileType`` treats ``0`` (F32) as unknown, as Ollama does).
Only the tensor-type sizes come from the ``gguf`` package (``GGML_QUANT_SIZES``): data, not logic.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

# GGUF value types (gguf.go: ggufTypeUint8 ...).
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
_SCALARS = {U8: "B", I8: "b", U16: "H", I16: "h", U32: "I", I32: "i", F32: "f", BOOL: "?", U64: "Q", I64: "q", F64: "d"}

# fs/ggml/type.go FileType.String(), by value.
FILE_TYPES = ["F32", "F16", "Q4_0", "Q4_1", "", "", "", "Q8_0", "Q5_0", "Q5_1", "Q2_K", "Q3_K_S", "Q3_K_M",
              "Q3_K_L", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K", "IQ2_XXS", "IQ2_XS", "Q2_K_S", "IQ3_XS",
              "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ3_M", "IQ2_S", "IQ2_M", "IQ4_XS", "IQ1_M", "BF16", "",
              "", "", "TQ1_0", "TQ2_0", "MXFP4_MOE", "NVFP4", "Q1_0"]
FILE_TYPE_UNKNOWN = 1024


class GGUFError(Exception):
    """What ``ggml.Decode`` returns as an error."""


@dataclass(frozen=True)
class Value:
    type: int
    value: Any
    elem_type: int | None = None  # for arrays


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    kind: int
    offset: int

    def elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def size(self) -> int:
        import gguf

        block, type_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(self.kind)]
        return self.elements() * type_size // block

    def type_name(self) -> str:
        import gguf

        try:
            return gguf.GGMLQuantizationType(self.kind).name
        except ValueError:
            return "unknown"


def detect_content_type(head: bytes) -> str:
    """``ggml.DetectContentType``: the container a file's first four bytes name."""
    if len(head) < 4:
        return ""
    magic = struct.unpack("<I", head[:4])[0]
    return {0x67676D6C: "ggml", 0x67676D66: "ggmf", 0x67676A74: "ggjt", 0x67676C61: "ggla",
            0x46554747: "gguf", 0x47475546: "gguf"}.get(magic, "")


class _Reader:
    def __init__(self, data: bytes, order: str) -> None:
        self.data, self.pos, self.order = data, 0, order

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise GGUFError("unexpected EOF")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def scalar(self, kind: int) -> Any:
        fmt = self.order + _SCALARS[kind]
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        n = self.scalar(U64)
        return self.take(n).decode("utf-8", "replace")

    def value(self, kind: int) -> Value:
        if kind in _SCALARS:
            return Value(kind, self.scalar(kind))
        if kind == STRING:
            return Value(kind, self.string())
        if kind == ARRAY:
            elem = self.scalar(U32)
            n = self.scalar(U64)
            if elem == STRING:
                return Value(kind, [self.string() for _ in range(n)], elem)
            if elem not in _SCALARS:
                raise GGUFError(f"invalid array type: {elem}")
            fmt = self.order + _SCALARS[elem] * n
            return Value(kind, list(struct.unpack(fmt, self.take(struct.calcsize(fmt)))), elem)
        raise GGUFError(f"invalid type: {kind}")


@dataclass
class GGUF:
    """A decoded GGUF header: ``kv`` in file order, ``tensors`` in file order."""

    version: int
    kv: dict[str, Value]
    tensors: list[TensorInfo]
    tensor_offset: int

    # --- fs/ggml KV accessors ----------------------------------------------------------------

    def _key(self, key: str) -> str:
        if key.startswith(("tokenizer.", "general.")):
            return key
        return self.architecture() + "." + key

    def raw(self, key: str) -> Value | None:
        """``fs/gguf`` ``File.KeyValue``: the value under the (architecture-prefixed) key."""
        return self.kv.get(self._key(key))

    def string(self, key: str, default: str = "") -> str:
        v = self.raw(key)
        return v.value if v is not None and v.type == STRING else default

    def uint(self, key: str, default: int = 0) -> int:
        v = self.raw(key)
        return v.value if v is not None and v.type == U32 else default

    def strings(self, key: str) -> list[str]:
        v = self.raw(key)
        return v.value if v is not None and v.type == ARRAY and v.elem_type == STRING else []

    def architecture(self) -> str:
        return self.string("general.architecture", "unknown")

    def kind(self) -> str:
        """``KV.Kind``: ``general.type`` (``model``, ``adapter``, ``projector``...)."""
        return self.string("general.type", "unknown")

    def chat_template(self) -> str:
        return self.string("tokenizer.chat_template")

    def file_type(self) -> int:
        """``KV.FileType``: ``general.file_type`` if it is a uint32 above 0, else unknown."""
        t = self.uint("general.file_type")
        return t if t > 0 else FILE_TYPE_UNKNOWN

    def file_type_name(self) -> str:
        t = self.file_type()
        return (FILE_TYPES[t] if t < len(FILE_TYPES) else "") or "unknown"

    def parameter_count(self) -> int:
        v = self.kv.get("general.parameter_count")
        return v.value if v is not None and v.type == U64 else 0

    def plain_kv(self, max_array: int = 0) -> dict[str, Any]:
        """The KV as ``GetModelInfo`` puts it in ``model_info`` (``getModelData``): arrays of more
        than five items emptied unless verbose, float32 values at float32 precision."""
        out: dict[str, Any] = {}
        for k, v in self.kv.items():
            value = v.value
            if v.type == F32:
                value = _f32(value)
            elif v.type == ARRAY:
                value = [_f32(x) for x in value] if v.elem_type == F32 else list(value)
                if max_array >= 0 and len(value) > 5:
                    value = []
            out[k] = value
        return out


def _f32(x: float) -> float:
    """A float32 as Go's JSON encoder writes it (shortest float32 digits)."""
    import numpy as np

    return float(str(np.float32(x)))


def read_gguf(data: bytes) -> GGUF:
    """``ggml.Decode`` of a whole GGUF file held in memory (header, tensor infos, bounds)."""
    if detect_content_type(data[:4]) != "gguf":
        raise GGUFError("invalid file magic")
    order = "<" if data[:4] == b"GGUF" else ">"
    r = _Reader(data, order)
    r.take(4)
    version = r.scalar(U32)
    if version == 1:
        raise GGUFError("GGUF v1 is not supported by this stand-in")
    n_tensors, n_kv = r.scalar(U64), r.scalar(U64)
    kv: dict[str, Value] = {}
    for _ in range(n_kv):
        key = r.string()
        kv[key] = r.value(r.scalar(U32))
    tensors = []
    params = 0
    for _ in range(n_tensors):
        name = r.string()
        dims = r.scalar(U32)
        if dims > 4:
            raise GGUFError(f"tensor {name!r} dimensions {dims} exceeds maximum 4")
        shape = tuple(r.scalar(U64) for _ in range(dims))
        kind, offset = r.scalar(U32), r.scalar(U64)
        t = TensorInfo(name, shape, kind, offset)
        tensors.append(t)
        params += t.elements()
    kv["general.parameter_count"] = Value(U64, params)  # "patch KV with parameter count"
    align_v = kv.get("general.alignment")
    alignment = align_v.value if align_v is not None and align_v.type == U32 else 32
    if alignment == 0:
        raise GGUFError("invalid GGUF alignment: 0")
    tensor_offset = r.pos + (-r.pos % alignment)
    for t in tensors:
        try:
            size = t.size()
        except (KeyError, ValueError):
            raise GGUFError(f"tensor {t.name!r} has unknown type {t.kind}") from None
        end = tensor_offset + t.offset + size
        if end > len(data):
            raise GGUFError(f'tensor "{t.name}" offset+size ({end}) exceeds file size ({len(data)})')
    return GGUF(version, kv, tensors, tensor_offset)
