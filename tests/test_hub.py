"""Hugging Face sources: choosing files, pinning commits, free digests from the cache, offline."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from conftest import ROOT, load_module, modelkit

from modelkit import hub
from modelkit.core.hashing import Hasher
from modelkit.core.state import State
from modelkit.errors import UserError

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
    with pytest.raises(UserError, match=r"org/missing@main: not in the Hugging Face cache .* HF_HUB_OFFLINE is set"):
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
    assert hub.blob_digest(snapshot / "model.safetensors") == "sha256:" + hashlib.sha256(data).hexdigest()
    assert hub.blob_digest(snapshot / "config.json") is None  # a git SHA-1 blob name is not a sha256
    hasher = Hasher(State(tmp_path / "state"), free_digest=hub.blob_digest)
    digests = hasher.digests([snapshot / "model.safetensors", snapshot / "config.json"])
    assert digests[snapshot / "model.safetensors"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert hasher.bytes_read == 2  # only config.json's two bytes were read


# -- the real download code, against a stand-in for the Hub ------------------------------------

hub_server = load_module(ROOT / "tests" / "hub_server.py")


def run_modelkit(args: list[str], cwd: Path, env: dict[str, str]):
    return modelkit(*args, cwd=cwd, env=env, without=("HF_",), timeout=300)


@pytest.fixture
def fake_hub():
    """A stand-in for the Hugging Face Hub that follows its HTTP API (see tests/hub_server.py)."""
    with hub_server.FakeHub() as server:
        yield server


def hub_project(tmp_path: Path, revision: str = "main") -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "model.toml").write_text(
        f'name = "bot"\n[base]\nrepo = "org/tiny"\nrevision = "{revision}"\n[quantize]\ntypes = []\n'
        '[ollama]\nregister = "off"\ntemplate = "{{ .Prompt }}"\n')
    return tmp_path


def test_fetch_downloads_from_the_hub_pins_the_commit_and_then_works_offline(tmp_path: Path, fake_hub) -> None:
    weights = b"\x01" * 200_000
    commit = fake_hub.add("org/tiny", {"config.json": b'{"a": 1}', "model.safetensors": weights,
                                       "optimizer.pt": b"x" * 999,
                                  "original/consolidated.pth": b"y" * 500})
    project = hub_project(tmp_path / "p")
    env = {"HF_ENDPOINT": fake_hub.url, "HF_HOME": str(tmp_path / "hf")}
    proc = run_modelkit(["build", "source:base"], project, env)
    assert proc.returncode == 0, proc.stderr
    snapshot = tmp_path / "hf" / "hub" / "models--org--tiny" / "snapshots" / commit
    assert (snapshot / "model.safetensors").read_bytes() == weights
    assert not (snapshot / "optimizer.pt").exists() and not (snapshot / "original").exists()
    assert fake_hub.bytes_served == len(weights) + len(b'{"a": 1}')  # only what conversion reads
    # Offline, the cache serves and nothing is stale.
    proc = run_modelkit(["plan", "--json", "source:base"], project, {**env, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    import json as _json

    assert [p["status"] for p in _json.loads(proc.stdout)] == ["fresh"]


@pytest.mark.toolchain
@pytest.mark.slow
@pytest.mark.from_scratch("a teammate with nothing cached rebuilds --locked to the same bytes")
def test_a_build_from_the_hub_is_locked_and_rebuilds_offline_to_the_same_bytes(tmp_path: Path, fake_hub,
                                                                                 tiny_model: Path) -> None:
    import json

    files = {p.name: p.read_bytes() for p in (tiny_model / "base").iterdir()}
    commit = fake_hub.add("org/tiny", files)
    project = hub_project(tmp_path / "p")
    env = {"HF_ENDPOINT": fake_hub.url, "HF_HOME": str(tmp_path / "hf")}
    proc = run_modelkit(["build"], project, env)
    assert proc.returncode == 0, proc.stderr
    lock = json.loads((project / "modelkit.lock").read_text())
    source = lock["sources"]["source:base"]
    assert source["repo"] == "org/tiny" and source["revision"] == "main" and source["commit"] == commit
    assert source["files"]["model.safetensors"] == "sha256:" + hashlib.sha256(files["model.safetensors"]).hexdigest()
    assert all(d and d.startswith("sha256:") for d in source["files"].values())
    # A teammate: fresh cache, offline after one download, --locked proves the same bytes.
    served = fake_hub.bytes_served
    teammate = tmp_path / "teammate"
    shutil.copytree(project, teammate, ignore=shutil.ignore_patterns("build", ".modelkit"))
    env2 = {"HF_ENDPOINT": fake_hub.url, "HF_HOME": str(tmp_path / "hf2")}
    proc = run_modelkit(["build", "--locked"], teammate, env2)
    assert proc.returncode == 0, proc.stderr
    assert fake_hub.bytes_served == 2 * served  # the same files again, nothing more
    assert ("GET", "/api/models/org/tiny/revision/main") not in fake_hub.requests[len(fake_hub.requests) // 2:]
    proc = run_modelkit(["build", "--locked"], teammate, {**env2, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0 and "everything is up to date" in proc.stderr, proc.stderr


def test_unknown_repo_and_revision_are_clear_errors(tmp_path: Path, fake_hub) -> None:
    fake_hub.add("org/tiny", {"config.json": b"{}", "model.safetensors": b"w"})
    env = {"HF_ENDPOINT": fake_hub.url, "HF_HOME": str(tmp_path / "hf")}
    proc = run_modelkit(["plan"], hub_project(tmp_path / "a", revision="nope"), env)
    assert proc.returncode == 2 and "org/tiny: no revision 'nope'" in proc.stderr, proc.stderr
    project = tmp_path / "b"
    project.mkdir()
    (project / "model.toml").write_text('name = "bot"\n[base]\nrepo = "org/missing"\n')
    proc = run_modelkit(["plan"], project, env)
    assert proc.returncode == 2 and "org/missing: no such repository on the Hub" in proc.stderr, proc.stderr


FAILURES = [("closed port", "the connection was refused"), ("no such host", "its name does not resolve (DNS)"),
            ("silent", "it did not answer in time"), (500, "it failed on its side (500)"),
            (429, "it is limiting how often it may be asked (429 Too Many Requests)")]


def failing_endpoint(fake_hub, where: object, under: str = "/") -> str:
    """The stand-in Hub made to fail as ``where`` says (under ``under``), or an address that fails so."""
    fake_hub.failing, fake_hub.failing_under = (where, under) if isinstance(where, int) else (None, "/")
    fake_hub.silent = where == "silent"
    fake_hub.retry_after = "0"  # huggingface_hub retries a 5xx after 1 s each, not its 23 s of backoff
    if where == "closed port":
        return "http://127.0.0.1:9"
    return "http://no-such-host.invalid" if where == "no such host" else fake_hub.url


@pytest.mark.parametrize(("where", "what"), FAILURES)
def test_a_hub_that_cannot_be_reached_with_nothing_cached_is_one_line(tmp_path: Path, fake_hub, where: object,
                                                                      what: str) -> None:
    endpoint = failing_endpoint(fake_hub, where)
    env = {"HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "hf"), "MODELKIT_HUB_TIMEOUT": "2"}
    proc = run_modelkit(["plan"], hub_project(tmp_path / "p"), env)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith(f"error: org/tiny@main: not in the Hugging Face cache ({tmp_path / 'hf' / 'hub'}), "
                                  f"and the Hub at {endpoint}: {what}; nothing was downloaded: ")
    assert proc.stderr.strip().endswith("or run `hf download org/tiny --revision main` first")
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.parametrize(("where", "what"), [f for f in FAILURES if isinstance(f[0], int)])
def test_a_download_the_hub_fails_is_one_line(tmp_path: Path, fake_hub, where: int, what: str) -> None:
    fake_hub.add("org/tiny", {"config.json": b"{}", "model.safetensors": b"w" * 1000, "tokenizer.json": b"{}"})
    endpoint = failing_endpoint(fake_hub, where, under="/org/tiny/resolve/")
    env = {"HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "hf"), "MODELKIT_HUB_TIMEOUT": "2"}
    proc = run_modelkit(["build"], hub_project(tmp_path / "p"), env)
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors and all(line.startswith("error: org/tiny@") and f": the Hub at {endpoint}: {what}; files already "
                          "downloaded are kept: " in line and line.endswith(", then build again") for line in errors)
    assert "Traceback" not in proc.stderr, proc.stderr  # (huggingface_hub says each retry on a line of its own)
