"""modelkit watch with real file events in temporary folders; waits are on conditions, with timeouts."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import READY_GGUF_SPEC, ROOT, load_module

from modelkit.formats.checkpoints import is_complete, newest_complete, step_of
from modelkit.formats.safetensors import is_complete as safetensors_complete
from modelkit.watch import Round, Watcher

gguf_files = load_module(ROOT / "tests" / "ollama" / "gguf_files.py")

SPEC = READY_GGUF_SPEC.replace("Be brief.", "first")


def wait_for(condition: Callable[[], object], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Running:
    """A Watcher in a thread, with the rounds it reported."""

    def __init__(self, spec: Path, quiet: float = 0.2) -> None:
        self.rounds: list[Round] = []
        self.lines: list[str] = []
        self.stop = threading.Event()
        self.watcher = Watcher(spec, quiet=quiet, register="off", report=self.lines.append,
                               on_round=self.rounds.append)
        self.thread = threading.Thread(target=self.watcher.run, args=(self.stop,), daemon=True)

    def wait_rounds(self, n: int, timeout: float = 20.0) -> None:
        wait_for(lambda: len(self.rounds) >= n, timeout, f"{n} rounds (got {len(self.rounds)}: {self.lines})")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    gguf_files.write_tiny_gguf(tmp_path / "model.gguf")
    (tmp_path / "model.toml").write_text(SPEC)
    return tmp_path


@pytest.fixture
def watching(project: Path) -> Iterator[Running]:
    running = Running(project / "model.toml")
    running.thread.start()
    running.wait_rounds(1)
    yield running
    running.stop.set()
    running.thread.join(timeout=10)
    assert not running.thread.is_alive()


def modelfile(project: Path) -> str:
    return (project / "build" / "bot-f32.Modelfile").read_text()


def test_a_spec_edit_rebuilds_only_what_it_affects(project: Path, watching: Running) -> None:
    assert watching.rounds[0].ran == ["modelfile:bot-f32"]
    spec = project / "model.toml"
    spec.write_text(spec.read_text().replace('"first"', '"second"'))
    watching.wait_rounds(2)
    assert "SYSTEM second" in modelfile(project)
    assert watching.rounds[1].trigger == ["model.toml"] and watching.rounds[1].ran == ["modelfile:bot-f32"]
    assert "model.toml: rebuilt modelfile:bot-f32 in" in watching.lines[-1]


def test_own_outputs_and_unrelated_files_trigger_nothing(project: Path, watching: Running) -> None:
    (project / "notes.txt").write_text("not an input")
    (project / ".model.toml.swp").write_text("editor state")
    (project / "build" / "extra").write_text("inside the build folder")
    # A later real change must be the very next round: nothing above made one.
    spec = project / "model.toml"
    spec.write_text(spec.read_text().replace('"first"', '"third"'))
    watching.wait_rounds(2)
    assert watching.rounds[1].trigger == ["model.toml"]


def test_an_invalid_spec_is_reported_and_the_watcher_carries_on(project: Path, watching: Running) -> None:
    spec = project / "model.toml"
    good = spec.read_text()
    spec.write_text(good + "oops = [\n")
    watching.wait_rounds(2)
    assert watching.rounds[1].error and "invalid TOML" in watching.rounds[1].error
    assert "failed: " in watching.lines[-1] and "model.toml:" in watching.lines[-1]
    spec.write_text(good.replace('"first"', '"fixed"'))
    wait_for(lambda: "SYSTEM fixed" in modelfile(project), what="a rebuild after the fix")


def test_a_change_during_a_build_is_not_lost(project: Path) -> None:
    running = Running(project / "model.toml", quiet=0.1)
    started = threading.Event()
    release = threading.Event()
    from modelkit.steps import modelfile as step

    original = step.RenderModelfile.run

    def slow_run(self, ctx):
        started.set()
        release.wait(10)
        return original(self, ctx)

    step.RenderModelfile.run = slow_run
    try:
        running.thread.start()
        wait_for(started.is_set, what="the first build to start")
        spec = project / "model.toml"
        spec.write_text(spec.read_text().replace('"first"', '"during"'))
        time.sleep(0.3)  # let the watcher receive the event while the build is still running
        release.set()
        wait_for(lambda: (project / "build" / "bot-f32.Modelfile").exists() and "SYSTEM during" in modelfile(project),
                 what="the change made during the build")
    finally:
        step.RenderModelfile.run = original
        running.stop.set()
        running.thread.join(timeout=10)


# -- checkpoints --------------------------------------------------------------------------------


def write_adapter(folder: Path, source: Path, cut: int | None = None) -> None:
    """Copy a PEFT adapter, optionally only the first ``cut`` bytes of its weights (half-written)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(source / "adapter_config.json", folder / "adapter_config.json")
    data = (source / "adapter_model.safetensors").read_bytes()
    (folder / "adapter_model.safetensors").write_bytes(data if cut is None else data[:cut])


@pytest.fixture
def fake_adapter(tmp_path: Path) -> Path:
    """A small but well-formed PEFT adapter folder (no torch needed)."""
    import numpy as np
    from safetensors.numpy import save_file

    folder = tmp_path / "src"
    folder.mkdir()
    save_file({"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": np.ones((8, 256), np.float32)},
              str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps({"r": 8, "lora_alpha": 16}))
    return folder


def test_completeness_is_exact_not_guessed(tmp_path: Path, fake_adapter: Path) -> None:
    weights = (fake_adapter / "adapter_model.safetensors").read_bytes()
    assert safetensors_complete(fake_adapter / "adapter_model.safetensors")
    for cut in (0, 5, 100, len(weights) - 1):
        write_adapter(tmp_path / f"cut{cut}", fake_adapter, cut)
        assert not is_complete(tmp_path / f"cut{cut}")
    (tmp_path / "noconfig").mkdir()
    shutil.copy(fake_adapter / "adapter_model.safetensors", tmp_path / "noconfig")
    assert not is_complete(tmp_path / "noconfig")
    write_adapter(tmp_path / "whole", fake_adapter)
    assert is_complete(tmp_path / "whole")


def test_newest_complete_checkpoint_wins_by_step(tmp_path: Path, fake_adapter: Path) -> None:
    out = tmp_path / "out"
    write_adapter(out / "checkpoint-500", fake_adapter)
    write_adapter(out / "checkpoint-1000", fake_adapter)
    write_adapter(out / "checkpoint-1500", fake_adapter, cut=50)  # still being written
    write_adapter(out / "checkpoint-90", fake_adapter)  # a higher number as text, lower as a step
    assert newest_complete(out / "checkpoint-*") == out / "checkpoint-1000"
    assert step_of(out / "checkpoint-1000") == 1000
    write_adapter(out / "checkpoint-1500", fake_adapter)
    assert newest_complete(out / "checkpoint-*") == out / "checkpoint-1500"
    assert newest_complete(tmp_path / "nothing-*") is None


def test_spec_with_a_pattern_waits_for_a_complete_checkpoint(tmp_path: Path, fake_adapter: Path) -> None:
    from modelkit.spec import SpecError, load_spec

    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    (tmp_path / "model.toml").write_text('name = "bot"\n[base]\npath = "./base"\n[ollama]\ntag = "ckpt-{step}"\n'
                                         '[[adapters]]\nname = "a"\npath = "./out/checkpoint-*"\n')
    write_adapter(tmp_path / "out" / "checkpoint-10", fake_adapter, cut=20)
    with pytest.raises(SpecError, match=r"no complete checkpoint matches out/checkpoint-\* yet"):
        load_spec(tmp_path / "model.toml")
    write_adapter(tmp_path / "out" / "checkpoint-10", fake_adapter)
    loaded = load_spec(tmp_path / "model.toml")
    assert loaded.adapter_folder(0) == (tmp_path / "out" / "checkpoint-10").resolve()


@pytest.mark.toolchain
@pytest.mark.slow
def test_watch_follows_new_checkpoints_and_never_builds_a_half_written_one(tiny_model: Path, tmp_path: Path,
                                                                           toolchain) -> None:
    shutil.copytree(tiny_model / "base", tmp_path / "base")
    (tmp_path / "model.toml").write_text(
        'name = "bot"\n[base]\npath = "./base"\n[quantize]\ntypes = ["Q8_0"]\n'
        '[ollama]\ntag = "ckpt-{step}"\n[[adapters]]\nname = "support"\npath = "./out/checkpoint-*"\n')
    write_adapter(tmp_path / "out" / "checkpoint-100", tiny_model / "lora")
    running = Running(tmp_path / "model.toml", quiet=0.3)
    running.thread.start()
    try:
        running.wait_rounds(1, timeout=120)
        assert running.rounds[0].error is None, running.rounds[0].error
        assert (tmp_path / "build" / "bot-ckpt-100.Modelfile").is_file()
        # A trainer writes checkpoint-200 slowly; the watcher must not touch it until it is whole.
        weights = (tiny_model / "lora" / "adapter_model.safetensors").read_bytes()
        folder = tmp_path / "out" / "checkpoint-200"
        folder.mkdir()
        config = json.loads((tiny_model / "lora" / "adapter_config.json").read_text())
        config["lora_alpha"] = 32  # a later checkpoint: different content, so it converts again
        (folder / "adapter_config.json").write_text(json.dumps(config))
        with open(folder / "adapter_model.safetensors", "wb") as f:
            for i in range(0, len(weights), len(weights) // 4):
                f.write(weights[i:i + len(weights) // 4])
                f.flush()
                os.fsync(f.fileno())
                if f.tell() < len(weights):
                    time.sleep(0.5)  # longer than the quiet period: rounds happen while it is half-written
                    assert not (tmp_path / "build" / "bot-ckpt-200.Modelfile").exists()
        wait_for(lambda: any("modelfile:bot-ckpt-200" in r.ran for r in running.rounds), timeout=120,
                 what="the build of checkpoint-200")
        assert (tmp_path / "build" / "bot-ckpt-200.Modelfile").is_file()
        assert all(r.error is None for r in running.rounds), [r.error for r in running.rounds]
        converted = [t for r in running.rounds for t in r.ran if t == "gguf:adapter.support"]
        assert len(converted) == 2, running.lines  # once per complete checkpoint, never for a partial one
    finally:
        running.stop.set()
        running.thread.join(timeout=60)
