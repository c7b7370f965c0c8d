"""Two machines, one remote artifact cache, the tiny example through real llama.cpp: the second
builds everything from the first one's uploads without converting, merging or quantizing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, copy_example, load_module, modelkit, without_quality
from s3_server import client_env, make_bucket, moto_server

from modelkit import Project
from modelkit.core.engine import QuietReporter
from modelkit.core.graph import Target
from modelkit.core.remote_cache import ENV

pytestmark = [pytest.mark.toolchain, pytest.mark.slow]


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(params=["s3", "file"])
def remote(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """``$MODELKIT_REMOTE_CACHE`` set to a new bucket on the loopback S3 server, or a shared folder."""
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        for name, value in client_env(endpoint).items():
            monkeypatch.setenv(name, value)
        url = f"s3://{make_bucket(endpoint)}/modelkit"
    else:
        (tmp_path / "shared").mkdir()
        url = (tmp_path / "shared").as_uri()
    monkeypatch.setenv(ENV, url)
    return url


class Restores(QuietReporter):
    """Records which targets said they were restoring from the remote."""

    def __init__(self) -> None:
        self.restored: set[str] = set()

    def progress(self, target: Target, fraction: float | None, text: str) -> None:
        if text.startswith("restoring from the remote cache"):
            self.restored.add(target.name)


def machine(tiny_model: Path, folder: Path) -> Path:
    copy_example(tiny_model, folder)
    spec = folder / "model.toml"
    spec.write_text(without_quality(spec.read_text()))
    return folder


def no_toolchain(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("a step asked for llama.cpp: it ran instead of being restored")


@pytest.mark.from_scratch("the first machine must build every step to upload it")
def test_the_second_machine_builds_the_example_from_the_first_ones_uploads(
        toolchain: Any, tiny_model: Path, tmp_path: Path, remote: str) -> None:
    first = machine(tiny_model, tmp_path / "gpu-box")
    built = Project.open(first, register="off")
    notes: list[str] = []
    built.notify = notes.append
    assert built.build().ok and notes == []
    assert built.remote is not None and built.remote.bytes_up > 0

    second = machine(tiny_model, tmp_path / "laptop")
    shutil.copy(first / "modelkit.lock", second / "modelkit.lock")  # checked in with the spec
    plan = modelkit("plan", "--json", cwd=second)  # the remote and its credentials from the environment
    assert plan.returncode == 0, plan.stderr
    assert plan.stdout.count("restore from remote") == 9  # template, 2 conversions, merge, 2 quants, 2 Modelfiles, native

    laptop = Project.open(second, register="off")
    laptop.require_toolchain = no_toolchain
    reporter = Restores()
    result = laptop.build(reporter=reporter, locked=True)  # --locked: the same bytes as the lock says
    assert result.ok, result.failed
    ggufs = sorted(p.name for p in (first / "build").glob("*.gguf"))
    assert {n for n in result.ran if n.startswith("gguf:")} <= reporter.restored
    assert len(ggufs) == 5
    for name in ggufs:
        assert (second / "build" / name).read_bytes() == (first / "build" / name).read_bytes(), name
    total = sum(p.stat().st_size for p in (first / "build").glob("*") if p.is_file())
    assert laptop.remote is not None and laptop.remote.bytes_down <= total and laptop.remote.bytes_up == 0
    assert laptop.plan()[0].state == "fresh"


HUB_SPEC = """\
name = "bot"
[base]
repo = "org/tiny"
[quantize]
types = ["Q8_0"]
[ollama]
register = "off"
"""


@pytest.mark.from_scratch("the first machine must download and build to upload")
def test_a_machine_restoring_everything_downloads_no_hub_weights(toolchain: Any, tiny_model: Path,
                                                                 tmp_path: Path) -> None:
    """The keys of the steps that read a Hub base come from the lock's digests, so the download
    itself is put off and never needed (the stand-in Hub follows the Hub's HTTP API:
    tests/hub_server.py)."""
    hub_server = load_module(ROOT / "tests" / "hub_server.py")
    weights = (tiny_model / "base" / "model.safetensors").stat().st_size
    with hub_server.FakeHub() as hub:
        hub.add("org/tiny", {p.name: p.read_bytes() for p in (tiny_model / "base").iterdir()})
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("HF_", "MODELKIT_REMOTE"))},
               "HF_ENDPOINT": hub.url, "NO_PROXY": "127.0.0.1",
               "MODELKIT_REMOTE_CACHE": (tmp_path / "shared").as_uri()}
        (tmp_path / "shared").mkdir()
        first, second = tmp_path / "gpu-box", tmp_path / "laptop"
        for folder in (first, second):
            folder.mkdir()
            (folder / "model.toml").write_text(HUB_SPEC)
        built = run(["build"], first, {**env, "HF_HOME": str(tmp_path / "hf1")})
        assert built.returncode == 0, built.stderr
        assert hub.bytes_served >= weights
        shutil.copy(first / "modelkit.lock", second / "modelkit.lock")
        served = hub.bytes_served
        plan = run(["plan"], second, {**env, "HF_HOME": str(tmp_path / "hf2")})
        assert "runs only if a target that reads it is not restored" in plan.stdout, plan.stdout
        restored = run(["build", "--locked"], second, {**env, "HF_HOME": str(tmp_path / "hf2")})
        assert restored.returncode == 0, restored.stderr
        assert hub.bytes_served - served < weights // 100, "the laptop downloaded the base's weights"
        assert "not downloaded (everything that reads them was fresh or restored): source:base.tokenizer, source:base" \
            in restored.stderr
        assert ": 5 targets restored" in restored.stderr, restored.stderr  # template, convert, quantize, Modelfile, native
    for name in ("base.f16.gguf", "base.Q8_0.gguf"):
        assert (second / "build" / name).read_bytes() == (first / "build" / name).read_bytes()


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return modelkit(*args, cwd=cwd, env=env, without=("HF_", "MODELKIT_REMOTE"), timeout=300)
