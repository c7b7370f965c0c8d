"""Read a GGUF file's key-value metadata from its header, without touching the tensors.

Why not ``gguf.GGUFReader``: it maps and parses every tensor descriptor and builds numpy views
for every array, which takes seconds on a multi-GB model; modelkit only needs a few keys
(architecture, file type, adapter fields, context length, chat template, special tokens), and
needs them on every build. This reader walks the header once with :mod:`mmap` and
:mod:`struct`: scalars and small arrays are decoded, big arrays (the vocabulary, merges, scores)
are skipped over and returned as :class:`LazyArray` objects that decode items only when asked.
It stops at the end of the key-value section: tensor descriptors and tensor data are never read,
so a file whose tensor data is missing altogether still reads fine.

Format (GGUF v2/v3, little-endian; v1 used 32-bit lengths and is refused): magic ``GGUF``,
``uint32`` version, ``uint64`` tensor count, ``uint64`` key-value count, then for each pair a
string key (``uint64`` length + UTF-8 bytes), a ``uint32`` value type and the value; an array is
``uint32`` element type, ``uint64`` count, then the elements.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

from modelkit.errors import GGUFHeaderError
from modelkit.formats.quant_types import file_type_name

MAGIC = b"GGUF"

# GGUF value types
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)

_SCALAR: dict[int, struct.Struct] = {
    UINT8: struct.Struct("<B"), INT8: struct.Struct("<b"), UINT16: struct.Struct("<H"),
    INT16: struct.Struct("<h"), UINT32: struct.Struct("<I"), INT32: struct.Struct("<i"),
    FLOAT32: struct.Struct("<f"), BOOL: struct.Struct("<?"), UINT64: struct.Struct("<Q"),
    INT64: struct.Struct("<q"), FLOAT64: struct.Struct("<d"),
}
_NUMPY_DTYPE = {UINT8: "<u1", INT8: "<i1", UINT16: "<u2", INT16: "<i2", UINT32: "<u4", INT32: "<i4",
                FLOAT32: "<f4", BOOL: "?", UINT64: "<u8", INT64: "<i8", FLOAT64: "<f8"}
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")

#: Arrays with more items than this are returned as :class:`LazyArray`.
EAGER_ARRAY_LIMIT = 1024


class LazyArray(Sequence[Any]):
    """A GGUF array left undecoded until used (vocabularies hold ~150k strings).

    Indexing a string array the first time walks it once to find where each item starts;
    numeric arrays are sliced directly.
    """

    def __init__(self, path: Path, elem_type: int, count: int, offset: int,
                 string_offsets: list[int] | None = None) -> None:
        self.path = path
        self.elem_type = elem_type
        self.length = count
        self.offset = offset
        self._offsets = string_offsets

    def __len__(self) -> int:
        return self.length

    @overload
    def __getitem__(self, i: int) -> Any: ...

    @overload
    def __getitem__(self, i: slice) -> list[Any]: ...

    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self.length))]
        if i < 0:
            i += self.length
        if not 0 <= i < self.length:
            raise IndexError(i)
        with open(self.path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            if self.elem_type == STRING:
                if self._offsets is None:
                    self._offsets = _string_offsets(mm, self.offset, self.length)
                at = self._offsets[i]
                (n,) = _U64.unpack_from(mm, at)
                return bytes(mm[at + 8:at + 8 + n]).decode("utf-8", errors="replace")
            st = _SCALAR[self.elem_type]
            return st.unpack_from(mm, self.offset + i * st.size)[0]

    def __iter__(self) -> Iterator[Any]:
        if self.elem_type != STRING:
            import numpy as np

            with open(self.path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                arr = np.frombuffer(mm, dtype=_NUMPY_DTYPE[self.elem_type], count=self.length, offset=self.offset)
                yield from arr.tolist()
            return
        with open(self.path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            at = self.offset
            for _ in range(self.length):
                (n,) = _U64.unpack_from(mm, at)
                yield bytes(mm[at + 8:at + 8 + n]).decode("utf-8", errors="replace")
                at += 8 + n

    def __repr__(self) -> str:
        return f"LazyArray(type={self.elem_type}, count={self.length})"


def _string_offsets(buf: Any, offset: int, count: int) -> list[int]:
    out = [0] * count
    unpack = _U64.unpack_from
    at = offset
    for k in range(count):
        out[k] = at
        at += 8 + unpack(buf, at)[0]
    return out


def _skip_strings(buf: Any, offset: int, count: int) -> int:
    """The offset after ``count`` length-prefixed strings (the hot loop of a header read)."""
    unpack = _U64.unpack_from
    at = offset
    for _ in range(count):
        at += 8 + unpack(buf, at)[0]
    return at


@dataclass(frozen=True)
class GGUFHeader:
    """The header of a GGUF file: its version, tensor count and key-value metadata; ``kv_end`` is
    where the tensor descriptors start."""

    path: Path
    version: int
    tensor_count: int
    metadata: dict[str, Any]
    kv_end: int = 0


def is_gguf(path: Path) -> bool:
    """Whether ``path`` starts with GGUF's magic (its first four bytes; the file is closed again)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == MAGIC
    except OSError:
        return False


def read_header(path: Path, *, index_strings: tuple[str, ...] = ("tokenizer.ggml.tokens",)) -> GGUFHeader:
    """Parse the header of ``path``. ``index_strings``: big string arrays whose item offsets are
    recorded while skipping them, so that looking up a token by id is instant later."""
    path = Path(path)
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed by the `with f:` below, once the error is told apart
    except OSError as exc:
        raise GGUFHeaderError(f"{path}: cannot open ({exc.strerror or exc})") from exc
    with f:
        try:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:
            raise GGUFHeaderError(f"{path}: empty file, not a GGUF model") from None
        with mm:
            try:
                return _parse(path, mm, index_strings)
            except (struct.error, IndexError, UnicodeDecodeError, OverflowError) as exc:
                raise GGUFHeaderError(f"{path}: truncated or corrupt GGUF header ({exc})") from exc


def _parse(path: Path, mm: mmap.mmap, index_strings: tuple[str, ...]) -> GGUFHeader:
    if mm[:4] != MAGIC:
        raise GGUFHeaderError(f"{path}: not a GGUF file (it starts with {bytes(mm[:4])!r}, not b'GGUF')")
    (version,) = _U32.unpack_from(mm, 4)
    if version < 2:
        raise GGUFHeaderError(f"{path}: GGUF version {version} is too old; convert it again with a current llama.cpp")
    if version > 3:
        raise GGUFHeaderError(f"{path}: GGUF version {version} is newer than this modelkit understands")
    (tensor_count,) = _U64.unpack_from(mm, 8)
    (kv_count,) = _U64.unpack_from(mm, 16)
    size = len(mm)
    at = 24
    meta: dict[str, Any] = {}
    for _ in range(kv_count):
        (n,) = _U64.unpack_from(mm, at)
        if at + 8 + n > size:
            raise GGUFHeaderError(f"{path}: truncated GGUF header (a key runs past the end of the file)")
        key = bytes(mm[at + 8:at + 8 + n]).decode("utf-8", errors="replace")
        at += 8 + n
        (vtype,) = _U32.unpack_from(mm, at)
        at += 4
        value, at = _value(path, mm, at, vtype, key, key in index_strings)
        if at > size:
            raise GGUFHeaderError(f"{path}: truncated GGUF header (value of {key} runs past the end of the file)")
        meta[key] = value
    return GGUFHeader(path, version, tensor_count, meta, at)


def _value(path: Path, mm: mmap.mmap, at: int, vtype: int, key: str, index: bool) -> tuple[Any, int]:
    if vtype == STRING:
        (n,) = _U64.unpack_from(mm, at)
        return bytes(mm[at + 8:at + 8 + n]).decode("utf-8", errors="replace"), at + 8 + n
    if vtype in _SCALAR:
        st = _SCALAR[vtype]
        return st.unpack_from(mm, at)[0], at + st.size
    if vtype == ARRAY:
        (etype,) = _U32.unpack_from(mm, at)
        (count,) = _U64.unpack_from(mm, at + 4)
        start = at + 12
        if etype == STRING:
            if count > EAGER_ARRAY_LIMIT:
                offsets = _string_offsets(mm, start, count) if index else None
                end = (offsets[-1] + 8 + _U64.unpack_from(mm, offsets[-1])[0]) if offsets else \
                    _skip_strings(mm, start, count)
                return LazyArray(path, STRING, count, start, offsets), end
            items = []
            p = start
            for _ in range(count):
                (n,) = _U64.unpack_from(mm, p)
                items.append(bytes(mm[p + 8:p + 8 + n]).decode("utf-8", errors="replace"))
                p += 8 + n
            return items, p
        if etype in _SCALAR:
            width = _SCALAR[etype].size
            end = start + count * width
            if count > EAGER_ARRAY_LIMIT:
                return LazyArray(path, etype, count, start), end
            st = _SCALAR[etype]
            return [st.unpack_from(mm, start + k * width)[0] for k in range(count)], end
        if etype == ARRAY:
            items = []
            p = start
            for _ in range(count):
                item, p = _value(path, mm, p, ARRAY, key, False)
                items.append(item)
            return items, p
        raise GGUFHeaderError(f"{path}: unknown array element type {etype} in {key}")
    raise GGUFHeaderError(f"{path}: unknown value type {vtype} for {key}")


def read_metadata(path: Path) -> dict[str, Any]:
    """The key-value metadata of a GGUF file (no tensor data is read).

    Scalars and small arrays are plain Python values; arrays of more than
    :data:`EAGER_ARRAY_LIMIT` items are :class:`LazyArray`. Raises :class:`GGUFHeaderError`.
    """
    return read_header(path).metadata


@dataclass(frozen=True)
class TensorInfo:
    """One tensor's descriptor: its name, how many weights it holds, its ggml type (an int, as
    gguf's ``GGMLQuantizationType``)."""

    name: str
    weights: int
    ggml_type: int


def tensor_infos(path: Path) -> list[TensorInfo]:
    """The tensor descriptors after the metadata (each: name, dimension count, dimensions, type,
    offset); the tensor data is not read."""
    header = read_header(path, index_strings=())
    infos = []
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        try:
            at = header.kv_end
            for _ in range(header.tensor_count):
                (n,) = _U64.unpack_from(mm, at)
                name = bytes(mm[at + 8:at + 8 + n]).decode("utf-8", errors="replace")
                at += 8 + n
                (dims,) = _U32.unpack_from(mm, at)
                count = 1
                for k in range(dims):
                    count *= _U64.unpack_from(mm, at + 4 + 8 * k)[0]
                (ggml_type,) = _U32.unpack_from(mm, at + 4 + 8 * dims)
                infos.append(TensorInfo(name, count, ggml_type))
                at += 4 + 8 * dims + 4 + 8  # dimensions, type, offset
        except struct.error as exc:
            raise GGUFHeaderError(f"{path}: truncated GGUF tensor descriptors ({exc})") from exc
    return infos


def parameter_count(path: Path) -> int:
    """How many weights the GGUF's tensors hold; with the file's size this gives the bits per
    weight a quantization really spends."""
    return sum(t.weights for t in tensor_infos(path))


def tensor_names(path: Path) -> list[str]:
    return [t.name for t in tensor_infos(path)]


def gguf_facts(path: Path) -> dict[str, Any]:
    """What a user asks about a GGUF file (``modelkit inspect``): architecture, size, quantization,
    context length, whether it carries a chat template, adapter fields. From the header only."""
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
    from modelkit.formats.vision import projector

    seen = projector(meta)
    if seen is not None:
        info["projector"] = {"projector_type": seen.projector_type, "image_size": seen.image_size,
                             "patch_size": seen.patch_size, "tokens_per_image": seen.tokens_per_image}
    return info
