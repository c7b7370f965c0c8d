"""The toolchain: which llama.cpp is used, which backend, what its fingerprint covers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modelkit import toolchain as tc
from modelkit.errors import UserError
from modelkit.formats.quant_types import QUANT_TYPES


def test_backend_is_cuda_only_with_nvcc_and_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELKIT_BACKEND", raising=False)
    monkeypatch.setattr(tc, "_nvcc", lambda: "/usr/local/cuda/bin/nvcc")
    monkeypatch.setattr(tc, "_gpu_visible", lambda: False)
    assert tc.detect_backend() == "cpu"  # nvcc alone (as on this CI machine): a CUDA build would be useless
    monkeypatch.setattr(tc, "_gpu_visible", lambda: True)
    assert tc.detect_backend() == "cuda"
    monkeypatch.setattr(tc, "_nvcc", lambda: None)
    assert tc.detect_backend() == "cpu"


def test_backend_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELKIT_BACKEND", "cuda")
    assert tc.detect_backend() == "cuda"
    monkeypatch.setenv("MODELKIT_BACKEND", "tpu")
    with pytest.raises(UserError, match="use 'cpu' or 'cuda'"):
        tc.detect_backend()


def test_managed_installs_are_keyed_by_version_and_backend(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MODELKIT_CACHE", str(tmp_path))
    monkeypatch.delenv("MODELKIT_LLAMA_CPP", raising=False)
    monkeypatch.setenv("MODELKIT_BACKEND", "cpu")
    assert tc.managed_dir("cpu") == tmp_path / "toolchain" / f"llama-cpp-python-{tc.LLAMA_CPP_PYTHON_VERSION}-cpu"
    assert tc.managed_dir("cuda") != tc.managed_dir("cpu")
    assert tc.find_toolchain() is None  # nothing installed in this cache yet


def test_a_folder_that_is_not_llama_cpp_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="is not a llama.cpp checkout"):
        tc.find_toolchain(tmp_path, "model.toml:12: toolchain.llama_cpp")


def test_a_tampered_sdist_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / tc.SDIST_NAME
    fake.write_bytes(b"not the real thing")
    monkeypatch.setenv("MODELKIT_LLAMA_CPP_SDIST", str(fake))
    with pytest.raises(UserError, match="is not the pinned"):
        tc._fetch_sdist(lambda fraction, text: None)


@pytest.mark.toolchain
def test_fingerprint_covers_scripts_and_packages_but_not_the_backend(toolchain) -> None:
    convert = toolchain.fingerprint("convert")
    assert convert["scripts"].startswith("sha256:") and convert["python"]["torch"]
    assert "backend" not in convert and "backend" not in toolchain.fingerprint("quantize")
    assert toolchain.quantize.is_file() and toolchain.export_lora.is_file() and toolchain.completion.is_file()


@pytest.mark.toolchain
def test_quantization_table_matches_llama_quantize(toolchain) -> None:
    source = (toolchain.source / "tools" / "quantize" / "quantize.cpp").read_text()
    options = dict(re.findall(r'\{\s*"(\w+)",\s*LLAMA_FTYPE_(\w+),', source))
    options.pop("COPY", None)
    assert set(options) == set(QUANT_TYPES)
    header = (toolchain.source / "include" / "llama.h").read_text()
    ftypes = {m.group(1): int(m.group(2)) for m in re.finditer(r"LLAMA_FTYPE_(\w+)\s*=\s*(\d+)", header)}
    for name, ftype in options.items():
        assert QUANT_TYPES[name].file_type == ftypes[ftype], name


@pytest.mark.gpu
def test_cuda_toolchain_on_a_gpu_machine() -> None:
    """Runs only where nvcc and an NVIDIA GPU are present (never in CI here)."""
    if not (tc._nvcc() and tc._gpu_visible()):
        pytest.skip("needs nvcc and an NVIDIA GPU")
    found = tc.install()
    assert found.backend == "cuda"
    assert "GGML_CUDA=ON" in (tc.managed_dir("cuda") / "toolchain.json").read_text()
