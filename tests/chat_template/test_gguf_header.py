"""The header-only GGUF reader: same values as the gguf package, no tensor data read, fast."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from modelkit.formats.gguf import GGUFHeaderError, LazyArray, read_header, read_metadata


def _adapter_fields(w: object) -> None:
    w.add_string("general.type", "adapter")
    w.add_string("adapter.type", "lora")
    w.add_float32("adapter.lora.alpha", 16.0)
    w.add_array("general.tags", ["lora", "test"])


def test_reads_the_keys_modelkit_needs(make_gguf: Any, tmp_path: Path) -> None:
    path = make_gguf(tmp_path / "a.gguf", "{{ messages }}", extra=_adapter_fields)
    meta = read_metadata(path)
    assert meta["general.architecture"] == "llama"
    assert meta["general.file_type"] == 1
    assert meta["general.type"] == "adapter"
    assert meta["adapter.type"] == "lora"
    assert meta["adapter.lora.alpha"] == pytest.approx(16.0)
    assert meta["llama.context_length"] == 512
    assert meta["tokenizer.chat_template"] == "{{ messages }}"
    assert meta["tokenizer.ggml.add_bos_token"] is True
    assert meta["general.tags"] == ["lora", "test"]
    assert list(meta["tokenizer.ggml.tokens"]) == ["<unk>", "<s>", "</s>"]


def test_agrees_with_gguf_reader(make_gguf: Any, tmp_path: Path) -> None:
    import gguf

    path = make_gguf(tmp_path / "a.gguf", "tmpl ✓", tokens=[f"t{i}" for i in range(3000)], extra=_adapter_fields)
    ours = read_metadata(path)
    reader = gguf.GGUFReader(str(path))
    for key, fld in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        expected = fld.contents()
        got = ours[key]
        if isinstance(got, LazyArray):
            got = list(got)
        if isinstance(expected, float):
            assert got == pytest.approx(expected), key
        else:
            assert got == expected, key


def test_big_arrays_are_lazy_and_indexable(make_gguf: Any, tmp_path: Path) -> None:
    tokens = [f"tok{i}" for i in range(5000)]
    path = make_gguf(tmp_path / "a.gguf", "x", tokens=tokens, bos_id=4000, eos_id=4999)
    meta = read_metadata(path)
    arr = meta["tokenizer.ggml.tokens"]
    assert isinstance(arr, LazyArray)
    assert len(arr) == 5000
    assert arr[4000] == "tok4000" and arr[-1] == "tok4999"
    assert arr[10:12] == ["tok10", "tok11"]


def test_never_reads_tensor_data(make_gguf: Any, tmp_path: Path) -> None:
    """Cut the file right after the key-value section: the tensors are gone, the header reads."""
    import gguf

    path = make_gguf(tmp_path / "a.gguf", "{{ x }}")
    size_before = path.stat().st_size
    # Find where the key-value section ends by parsing it, then drop everything after it.
    header = read_header(path)
    kv_end = _kv_end(path)
    with open(path, "r+b") as f:
        f.truncate(kv_end)
    assert path.stat().st_size < size_before
    assert read_metadata(path)["tokenizer.chat_template"] == "{{ x }}"
    assert header.tensor_count == 1
    with pytest.raises(Exception):  # noqa: B017 - whatever gguf-py raises: it is the reader that fails
        gguf.GGUFReader(str(path))


def _kv_end(path: Path) -> int:
    """Offset where the tensor descriptors start, computed independently with the gguf package."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    last = list(reader.fields.values())[-1]
    return int(last.offset) + sum(int(p.nbytes) for p in last.parts)


@pytest.mark.slow
def test_fast_on_a_multi_gigabyte_file_with_a_llama3_sized_vocabulary(make_gguf: Any, tmp_path: Path) -> None:
    """128k tokens and 280k merges, 4 GiB of (sparse) tensor data: the header reads in milliseconds."""
    tokens = [f"tok{i}" * (1 + i % 4) for i in range(128_256)]

    def extra(w: object) -> None:
        w.add_token_merges([f"a{i} b{i}" for i in range(280_147)])
        w.add_token_types([1] * len(tokens))

    path = make_gguf(tmp_path / "big.gguf", "{{ messages }}", tokens=tokens, bos_id=128_000, eos_id=128_009,
                      extra=extra)
    with open(path, "r+b") as f:
        f.truncate(4 * 1024 ** 3)  # sparse: the reader would take ages if it touched it
    assert os.path.getsize(path) == 4 * 1024 ** 3
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        meta = read_metadata(path)
        best = min(best, time.perf_counter() - start)
    assert meta["tokenizer.ggml.tokens"][128_009] == tokens[128_009]
    assert meta["tokenizer.chat_template"] == "{{ messages }}"
    # The goal is under 50 ms; allow slow CI machines some room without losing the point.
    assert best < 0.25, f"header read took {best * 1000:.0f} ms"


@pytest.mark.parametrize("content, message", [
    (b"", "empty file"),
    (b"PK\x03\x04 not a gguf at all", "not a GGUF file"),
    (b"GGUF\x01\x00\x00\x00" + b"\x00" * 16, "too old"),
    (b"GGUF\x03\x00\x00\x00" + b"\x00" * 8 + b"\x05" + b"\x00" * 7 + b"\x03\x00", "truncated"),
])
def test_bad_files_give_one_line_errors(make_gguf: Any, tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    with pytest.raises(GGUFHeaderError) as err:
        read_metadata(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_file(make_gguf: Any, tmp_path: Path) -> None:
    with pytest.raises(GGUFHeaderError, match="cannot open"):
        read_metadata(tmp_path / "nope.gguf")
