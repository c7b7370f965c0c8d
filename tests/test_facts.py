"""Facts derived from files are computed once per the files' bytes (core/facts.py), and planning
a project whose adapter carries a tokenizer reads no tokenizer the second time."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from modelkit.core.facts import Facts
from modelkit.core.hashing import Hasher
from modelkit.core.state import State
from modelkit.project import Project


def counting_facts(tmp_path: Path) -> tuple[Facts, list[str], object]:
    calls: list[str] = []

    def derive(files: dict[str, Path], identity: object = None) -> str:
        def compute() -> str:
            calls.append("computed")
            return "|".join(p.read_text() for p in files.values() if p.is_file())

        return facts.derive("joined", files, identity, compute, str, str)

    facts = Facts(Hasher(State(tmp_path / ".state")))
    return facts, calls, derive


def test_a_fact_is_computed_once_per_the_bytes_of_its_files(tmp_path: Path) -> None:
    _, calls, derive = counting_facts(tmp_path)
    first = tmp_path / "a.txt"
    first.write_text("one")
    assert derive({"a": first}) == "one"
    assert derive({"a": first}) == "one"
    assert calls == ["computed"]
    copy = tmp_path / "copy" / "a.txt"
    copy.parent.mkdir()
    shutil.copy(first, copy)
    assert derive({"a": copy}) == "one" and calls == ["computed"]  # other inode, same bytes
    first.write_text("two")
    assert derive({"a": first}) == "two" and len(calls) == 2
    assert derive({"a": first, "b": tmp_path / "missing"}) == "two" and len(calls) == 2
    (tmp_path / "missing").write_text("now here")
    assert derive({"a": first, "b": tmp_path / "missing"}) == "two|now here" and len(calls) == 3
    assert derive({"a": first}, identity="another commit") == "two" and len(calls) == 4


def test_labels_are_part_of_the_key(tmp_path: Path) -> None:
    _, calls, derive = counting_facts(tmp_path)
    path = tmp_path / "f"
    path.write_text("x")
    derive({"base/tokenizer.json": path})
    derive({"adapter/tokenizer.json": path})
    assert len(calls) == 2


def test_planning_reads_no_tokenizer_once_its_route_is_known(tiny_project: Path, monkeypatch) -> None:
    """The adapter carries the base's tokenizer, as fine-tunes save it: judging its merge route
    reads both vocabularies once; the next plan (a no-op build's) reads neither."""
    import modelkit.formats.peft as peft

    for name in ("tokenizer.model", "tokenizer_config.json"):
        shutil.copy(tiny_project / "base" / name, tiny_project / "lora" / name)
    first = Project.open(tiny_project / "model.toml").layout
    reads: list[Path] = []
    real = peft.read_vocabulary
    monkeypatch.setattr(peft, "read_vocabulary", lambda folder: reads.append(folder) or real(folder))
    again = Project.open(tiny_project / "model.toml").layout
    assert reads == []
    assert [t.name for t in again.graph] == [t.name for t in first.graph]
    config = tiny_project / "lora" / "tokenizer_config.json"
    config.write_text(config.read_text().replace('"model_max_length": 512', '"model_max_length": 1024'))
    assert Project.open(tiny_project / "model.toml").layout.graph
    assert len(reads) == 2  # the adapter's changed: both vocabularies read again


@pytest.fixture(autouse=True)
def _offline(monkeypatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")
