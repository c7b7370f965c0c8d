"""Quantization recipes: per-tensor types checked in the spec, built into one GGUF each, measured like any type."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gguf import GGMLQuantizationType

from modelkit.formats.gguf import tensor_infos
from modelkit.formats.quant_types import TENSOR_TYPES
from modelkit.spec import SpecError, load_spec
from tests.conftest import copy_built, modelkit

RECIPE = """
[[quantize.recipes]]
name = "Q4_K_M-hi"
type = "q4_k"
tensors = { attn_v = "Q8_0", "FFN_DOWN" = "q6_k" }
output = "Q8_0"
embeddings = "Q6_K"
"""


def spec_errors(tmp_path: Path, quantize: str, tail: str = "") -> list[str]:
    (tmp_path / "base").mkdir(exist_ok=True)
    (tmp_path / "base" / "config.json").write_text("{}")
    path = tmp_path / "model.toml"
    path.write_text(f'name = "bot"\n[base]\npath = "./base"\n[quantize]\ntypes = ["Q8_0"]\n{quantize}\n{tail}')
    try:
        load_spec(path)
    except SpecError as e:
        return e.lines
    return []


def test_a_recipe_is_read_with_canonical_types(tmp_path: Path) -> None:
    assert spec_errors(tmp_path, RECIPE, '[ollama]\nlatest = "Q4_K_M-hi"\n') == []
    spec = load_spec(tmp_path / "model.toml").spec
    recipe = spec.quantize.recipes[0]
    assert (recipe.type, recipe.tensors, recipe.output) == ("Q4_K_M", {"attn_v": "Q8_0", "ffn_down": "Q6_K"}, "Q8_0")
    assert spec.quantize.variant_names == ["Q8_0", "Q4_K_M-hi"]


@pytest.mark.parametrize(("recipe", "error"), [
    ('name = "x"\ntype = "Q4_K_X"', "quantize.recipes[0].type: 'Q4_K_X' is not a llama.cpp quantization type"),
    ('name = "Q4_K_M"\ntype = "Q4_K_M"', "'Q4_K_M' is a llama.cpp type; a recipe needs a name of its own"),
    ('name = "a b"\ntype = "Q4_K_M"', "'a b' cannot name a variant"),
    ('name = "x"\ntype = "Q4_K_M"\ntensors = { attn_v = "Q4_K_M" }',
     "quantize.recipes[0].tensors.attn_v: 'Q4_K_M' is not a tensor type (a tensor's ggml type, such as Q4_K, "
     "Q6_K, Q8_0 or F16; Q4_K_M is a file's); did you mean 'Q4_K'?"),
    ('name = "x"\ntype = "Q4_K_M"\ntensors = { "attn_(" = "Q8_0" }', "'attn_(' is not a regular expression"),
    ('name = "x"\ntype = "Q4_K_M"\noutput = "Q9_K"', "quantize.recipes[0].output: 'Q9_K' is not a tensor type"),
    ('name = "x"\ntype = "Q4_K_M"\ntensors = { attn_v = "IQ2_XS" }', "'IQ2_XS' needs an importance matrix"),
])
def test_a_bad_recipe_is_one_line_naming_its_field(tmp_path: Path, recipe: str, error: str) -> None:
    errors = spec_errors(tmp_path, f"[[quantize.recipes]]\n{recipe}\n")
    assert len(errors) == 1 and error in errors[0], errors
    assert errors[0].startswith("model.toml:") or str(tmp_path) in errors[0]


def test_two_recipes_of_one_name_and_a_tag_without_quant_are_refused(tmp_path: Path) -> None:
    twice = '[[quantize.recipes]]\nname = "hi"\ntype = "Q4_K_M"\n[[quantize.recipes]]\nname = "HI"\ntype = "Q5_K_M"\n'
    assert any("'HI' names two recipes" in e for e in spec_errors(tmp_path, twice))
    assert any("add {quant}" in e for e in spec_errors(tmp_path, RECIPE, '[ollama]\ntag = "v1"\n'))


def test_the_tensor_types_are_ggml_types() -> None:
    assert set(TENSOR_TYPES) <= {t.name for t in GGMLQuantizationType}


@pytest.fixture
def with_recipe(built_example: Path, tmp_path: Path) -> Path:
    project = copy_built(built_example, tmp_path / "example")
    spec = project / "model.toml"
    spec.write_text(spec.read_text().replace("[evaluate]", RECIPE + "\n[evaluate]", 1))
    return project


def test_a_recipe_is_built_with_its_types_measured_and_reported(with_recipe: Path) -> None:
    proc = modelkit("build", "--no-ollama", cwd=with_recipe)
    assert proc.returncode == 0, proc.stderr
    types = {t.name: GGMLQuantizationType(t.ggml_type).name
             for t in tensor_infos(with_recipe / "build" / "base+support.Q4_K_M-hi.gguf")}
    assert {types["blk.0.attn_v.weight"], types["blk.1.attn_v.weight"], types["output.weight"]} == {"Q8_0"}
    assert {types["blk.1.ffn_down.weight"], types["token_embd.weight"]} == {"Q6_K"}
    assert types["blk.0.attn_q.weight"] == "Q4_K"
    plain = {t.name: t.ggml_type for t in tensor_infos(with_recipe / "build" / "base+support.Q4_K_M.gguf")}
    assert GGMLQuantizationType(plain["blk.0.attn_v.weight"]).name != "Q8_0"
    report = json.loads((with_recipe / "build" / "report.json").read_text())
    row = next(r for r in report["variants"] if r["quant"] == "Q4_K_M-hi")
    assert row["ref"] == "tiny-support:q4_k_m-hi" and row["kld_mean"] is not None
    assert "quantize base+support to Q4_K_M-hi (Q4_K_M and 4 overrides)" in proc.stderr


def test_a_pattern_that_matches_no_tensor_is_the_users_error_and_loses_nothing(with_recipe: Path) -> None:
    spec = with_recipe / "model.toml"
    spec.write_text(spec.read_text().replace("attn_v =", "attn_vv =", 1))
    before = {p.name: p.read_bytes() for p in (with_recipe / "build").glob("*.gguf")}
    proc = modelkit("build", "--no-ollama", cwd=with_recipe)
    assert proc.returncode == 2, proc.stderr
    error = next(line for line in proc.stderr.splitlines() if line.startswith("error:"))
    assert "quantize.recipes[0].tensors: 'attn_vv' matches no tensor of base+support.f16.gguf (closest: attn_v" \
        in error
    assert {p.name: p.read_bytes() for p in (with_recipe / "build").glob("*.gguf")} == before
