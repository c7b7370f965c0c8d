"""Hugging Face sources: choosing files, pinning commits, free digests from the cache, offline."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from modelkit import hub
from modelkit.errors import UserError
from modelkit.hashing import Hasher, hf_cache_digest
from modelkit.state import State

from conftest import ROOT, load_module

hf_cache = load_module(ROOT / "tests" / "hf_cache.py")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HF cache, used offline (as the tests cannot reach the Hub)."""
    root = tmp_path / "hf"
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(root))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return root


def test_select_files_takes_what_conversion_reads() -> None:
    names = ["config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
             "model.safetensors.index.json", "original/consolidated.00.pth", "pytorch_model.bin",
             "tokenizer.json", "tokenizer_config.json", "README.md", ".gitattributes", "onnx/model.onnx",
             "training_args.bin", "optimizer.pt", "generation_config.json", "LICENSE"]
    assert hub.select_files(names, "model") == [
        "README.md", "config.json", "generation_config.json", "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors", "model.safetensors.index.json", "tokenizer.json",
        "tokenizer_config.json"]


def test_select_files_falls_back_to_bin_weights() -> None:
    assert hub.select_files(["config.json", "pytorch_model.bin"], "model") == ["config.json", "pytorch_model.bin"]
    assert hub.select_files(["adapter_config.json", "adapter_model.bin", "optimizer.pt"], "adapter") == [
        "adapter_config.json", "adapter_model.bin"]


def test_resolve_from_cache_pins_the_branch_to_its_commit(cache: Path) -> None:
    weights = b"\x00" * 1000
    commit = hf_cache.add_repo(cache, "org/model", {"config.json": b"{}", "model.safetensors": weights,
                                                    "optimizer.pt": b"x"})
    source = hub.resolve("org/model", "main", "model")
    assert source.commit == commit
    assert source.files == {"config.json": None,
                            "model.safetensors": "sha256:" + hashlib.sha256(weights).hexdigest()}
    assert source.snapshot == cache / "models--org--model" / "snapshots" / commit


def test_resolve_prefers_the_lock_file(cache: Path) -> None:
    locked = {"revision": "main", "commit": "a" * 40, "files": {"config.json": None}}
    source = hub.resolve("org/model", "main", "model", locked)
    assert source.commit == "a" * 40


def test_resolve_offline_and_not_cached_is_a_clear_error(cache: Path) -> None:
    with pytest.raises(UserError, match=r"org/missing@main: not in the Hugging Face cache .* offline"):
        hub.resolve("org/missing", "main", "model")


def test_download_from_the_cache_offline(cache: Path) -> None:
    hf_cache.add_repo(cache, "org/model", {"config.json": b"{}", "model.safetensors": b"w" * 10})
    source = hub.resolve("org/model", "main", "model")
    folder = hub.download(source)
    assert folder == source.snapshot
    assert (folder / "model.safetensors").read_bytes() == b"w" * 10


def test_hf_cache_digests_read_no_bytes(cache: Path, tmp_path: Path) -> None:
    data = b"weights" * 100_000
    hf_cache.add_repo(cache, "org/model", {"config.json": b"{}", "model.safetensors": data})
    snapshot = hub.resolve("org/model", "main", "model").snapshot
    assert hf_cache_digest(snapshot / "model.safetensors") == "sha256:" + hashlib.sha256(data).hexdigest()
    assert hf_cache_digest(snapshot / "config.json") is None  # a git SHA-1 blob name is not a sha256
    hasher = Hasher(State(tmp_path / "state"))
    digests = hasher.digests([snapshot / "model.safetensors", snapshot / "config.json"])
    assert digests[snapshot / "model.safetensors"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert hasher.bytes_read == 2  # only config.json's two bytes were read
