"""A validated spec is kept by its text and read back as records that answer as the models do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from modelkit.spec import SpecError, load_spec
from modelkit.spec import kept as kept_module
from modelkit.spec.kept import KEPT_SPEC, Record
from modelkit.spec.model import Spec

EVERY_TABLE = """
name = "bot"
build_dir = "out"
[base]
path = "./base"
[[adapters]]
name = "style"
path = "./lora"
[quantize]
types = ["q4_k", "Q8_0"]
target = { max_kld = 0.002, max_size = "900 MB" }
[[quantize.recipes]]
name = "Q4_K_M-hi"
type = "Q4_K_M"
tensors = { attn_v = "Q6_K" }
output = "Q8_0"
[evaluate]
text = "eval.txt"
[[evaluate.prompts]]
prompt = "hello"
expect = "hi"
[[evaluate.prompts]]
messages = [{ role = "system", content = "be brief" }, { role = "user", content = "hello" }]
expect_regex = "h.*"
[ollama]
model = "me/bot"
tag = "{quant}"
parameters = { temperature = 0.5, stop = ["<end>"] }
[publish]
max_file_size = "2GB"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "model.toml").write_text(EVERY_TABLE)
    (tmp_path / ".modelkit").mkdir()
    return tmp_path


def load(project: Path) -> Any:
    return load_spec(project / "model.toml", check_files=False)


def values(table: Any) -> Any:
    """A table's values all the way down, whichever form it has."""
    if isinstance(table, (BaseModel, Record)):
        return (type(table).__name__, {k: values(v) for k, v in vars(table).items()})
    if isinstance(table, (list, tuple)):
        return type(table)(values(v) for v in table)
    if isinstance(table, dict):
        return {k: values(v) for k, v in table.items()}
    return table


def answers(spec: Any) -> list[Any]:
    """What the methods of the tables say."""
    quantize = spec.quantize
    return [spec.ollama_model, quantize.variant_names, quantize.recipe("Q4_K_M-hi").tensor_types(),
            quantize.recipe("nope"), quantize.target.bounds(), spec.publish.max_bytes,
            [check.conversation for check in spec.evaluate.prompts]]


def test_the_second_load_reads_records_with_the_same_values_and_answers(project: Path) -> None:
    validated = load(project).spec
    assert isinstance(validated, Spec) and (project / ".modelkit" / KEPT_SPEC).is_file()
    kept = load(project).spec
    assert isinstance(kept, Record) and not isinstance(kept, BaseModel)
    assert values(kept) == values(validated)
    assert isinstance(kept.base.path, Path) and kept.build_dir == Path("out")
    assert answers(kept) == answers(validated)
    assert answers(kept)[1] == ["Q4_K_M", "Q8_0", "Q4_K_M-hi", "auto"]
    assert answers(kept)[6][0] == [{"role": "user", "content": "hello"}]
    with pytest.raises(AttributeError):
        kept.name = "other"  # type: ignore[misc]  # frozen, as the models are


def test_an_edited_text_is_validated_again(project: Path) -> None:
    load(project)
    spec = project / "model.toml"
    spec.write_text(EVERY_TABLE.replace('types = ["q4_k", "Q8_0"]', 'types = ["Q4_K_X"]'))
    with pytest.raises(SpecError) as e:
        load(project)
    assert "'Q4_K_X' is not a llama.cpp quantization type" in e.value.lines[0]


def test_a_spec_kept_by_other_code_or_unreadable_is_validated_again(project: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    load(project)
    monkeypatch.setattr(kept_module, "_code_digest", lambda: "another modelkit")
    assert isinstance(load(project).spec, Spec)
    (project / ".modelkit" / KEPT_SPEC).write_text('{"key": "x", "spec": ')
    assert isinstance(load(project).spec, Spec)


def test_nothing_is_kept_for_a_project_never_built(project: Path) -> None:
    (project / ".modelkit").rmdir()
    load(project)
    assert not (project / ".modelkit").exists()
