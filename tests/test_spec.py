"""The spec: valid files load, every bad input is one line naming file, line and field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import modelkit

from modelkit.errors import UserError
from modelkit.spec import SpecError, load_spec, schema_text
from modelkit.spec.validate import tomllib

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str, name: str = "model.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def hf_folder(tmp_path: Path) -> Path:
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    lora = tmp_path / "lora"
    lora.mkdir()
    (lora / "adapter_config.json").write_text("{}")
    (lora / "adapter_model.safetensors").write_bytes(b"")
    return base


def errors_of(path: Path) -> list[str]:
    with pytest.raises(SpecError) as e:
        load_spec(path)
    return e.value.lines


def test_minimal_spec_gets_defaults(tmp_path: Path, hf_folder: Path) -> None:
    loaded = load_spec(write(tmp_path, 'name = "bot"\n[base]\npath = "./base"\n'))
    spec = loaded.spec
    assert spec.convert.outtype == "f16"
    assert spec.quantize.types == ["Q4_K_M"]
    assert spec.ollama.template == "inherit"
    assert spec.ollama_model == "bot"
    assert loaded.resolve(spec.base.path) == hf_folder.resolve()
    assert loaded.build_dir == (tmp_path / "build").resolve()


def test_quantization_types_are_canonicalised(tmp_path: Path, hf_folder: Path) -> None:
    spec = load_spec(write(tmp_path, 'name = "bot"\n[base]\npath = "./base"\n'
                                     '[quantize]\ntypes = ["q4_k", "Q8_0", "f16"]\n')).spec
    assert spec.quantize.types == ["Q4_K_M", "Q8_0", "F16"]


def test_unknown_quantization_type_names_line_index_and_suggests(tmp_path: Path, hf_folder: Path) -> None:
    path = write(tmp_path, 'name = "bot"\n[base]\npath = "./base"\n\n[quantize]\n'
                           'types = [\n  "Q4_K_M",\n  "Q4_K_X",\n]\n')
    [line] = errors_of(path)
    assert line == f"{path}:8: quantize.types[1]: 'Q4_K_X' is not a llama.cpp quantization type " \
                   "(did you mean 'Q4_K_M'?)"


def test_imatrix_types_are_refused_with_a_reason(tmp_path: Path, hf_folder: Path) -> None:
    path = write(tmp_path, 'name = "bot"\n[base]\npath = "./base"\n[quantize]\ntypes = ["IQ2_XS"]\n')
    [line] = errors_of(path)
    assert ":5: quantize.types[0]: 'IQ2_XS' needs an importance matrix" in line


def test_unknown_key_suggests_the_right_one(tmp_path: Path, hf_folder: Path) -> None:
    path = write(tmp_path, 'name = "bot"\n[base]\npath = "./base"\nrevison = "main"\n')
    [line] = errors_of(path)
    assert line.endswith(":4: base.revison: unknown key 'revison' (did you mean 'revision'?)")


def test_parameter_in_the_wrong_table_points_to_parameters(tmp_path: Path, hf_folder: Path) -> None:
    path = write(tmp_path, 'name = "bot"\n[base]\npath = "./base"\n[ollama]\ntemperature = 0.5\n')
    [line] = errors_of(path)
    assert "ollama.temperature: unknown key 'temperature' (did you mean 'parameters.temperature'?)" in line


def test_bad_parameter_names_the_parameter(tmp_path: Path, hf_folder: Path) -> None:
    path = write(tmp_path, 'name = "bot"\n[base]\npath = "./base"\n[ollama]\n'
                           'parameters = { temperature = 0.5, num_ctx = "big" }\n')
    [line] = errors_of(path)
    assert ":5: ollama.parameters.num_ctx: 'num_ctx' must be an integer" in line


@pytest.mark.parametrize("base, found", [
    ('repo = "a/b"\npath = "./base"', "found repo, path"),
    ('revision = "main"', None),
])
def test_base_needs_exactly_one_source(tmp_path: Path, hf_folder: Path, base: str, found: str | None) -> None:
    [line] = errors_of(write(tmp_path, f'name = "bot"\n[base]\n{base}\n'))
    assert ":2: base: give exactly one of repo, path, gguf or oci" in line
    if found:
        assert found in line


def test_missing_base_table(tmp_path: Path) -> None:
    [line] = errors_of(write(tmp_path, 'name = "bot"\n'))
    assert line.endswith("base: required, but missing")


def test_malformed_toml_names_the_line(tmp_path: Path) -> None:
    [line] = errors_of(write(tmp_path, 'name = "bot"\n[base\npath = "x"\n'))
    assert line.startswith(f"{tmp_path / 'model.toml'}:2: invalid TOML:")


def test_missing_spec_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such spec file"):
        load_spec(tmp_path / "nope.toml")


def test_adapter_folder_without_config(tmp_path: Path, hf_folder: Path) -> None:
    (tmp_path / "lora" / "adapter_config.json").unlink()
    path = write(tmp_path, 'name = "bot"\n[base]\npath = "./base"\n\n[[adapters]]\nname = "x"\npath = "./lora"\n')
    [line] = errors_of(path)
    assert ":7: adapters[0].path:" in line and "has no adapter_config.json" in line


def test_missing_base_folder(tmp_path: Path) -> None:
    [line] = errors_of(write(tmp_path, 'name = "bot"\n[base]\npath = "./nowhere"\n'))
    assert ":3: base.path: folder" in line and "does not exist" in line


def test_duplicate_adapter_names(tmp_path: Path, hf_folder: Path) -> None:
    path = write(tmp_path, 'name = "bot"\n[base]\npath = "./base"\n'
                           '[[adapters]]\nname = "x"\npath = "./lora"\n[[adapters]]\nname = "x"\npath = "./lora"\n')
    [line] = errors_of(path)
    assert ":8: adapters[1].name: adapter name 'x' is used twice" in line


def test_invalid_ollama_names(tmp_path: Path, hf_folder: Path) -> None:
    path = write(tmp_path, 'name = "bot"\n[base]\npath = "./base"\n[ollama]\nmodel = "bot:v1"\n')
    [line] = errors_of(path)
    assert "ollama.model:" in line and "has a tag" in line


@pytest.mark.parametrize("tag", ["{quant}-cloud", "cloud", "LOCAL"])
def test_tags_ollama_reads_as_a_model_source_are_refused(tmp_path: Path, hf_folder: Path, tag: str) -> None:
    path = write(tmp_path, f'name = "bot"\n[base]\npath = "./base"\n[ollama]\ntag = "{tag}"\n')
    [line] = errors_of(path)
    assert f"{path}:5: ollama.tag: " in line and "is reserved" in line and "internal/modelref" in line


def test_an_empty_template_file_is_refused(tmp_path: Path, hf_folder: Path) -> None:
    (tmp_path / "t.gotmpl").write_text("")
    path = write(tmp_path, 'name = "bot"\n[base]\npath = "./base"\n[ollama]\ntemplate_file = "t.gotmpl"\n')
    [line] = errors_of(path)
    assert f"{path}:5: ollama.template_file: " in line and "is empty" in line and "ignores an empty TEMPLATE" in line


def test_template_text_must_look_like_a_template(tmp_path: Path, hf_folder: Path) -> None:
    path = write(tmp_path, 'name = "bot"\n[base]\npath = "./base"\n[ollama]\ntemplate = "chat.tmpl"\n')
    [line] = errors_of(path)
    assert "use template_file" in line


def test_several_errors_come_one_per_line_in_file_order(tmp_path: Path, hf_folder: Path) -> None:
    path = write(tmp_path, 'name = "bot"\ncolour = 1\n[base]\npath = "./base"\n[quantize]\ntypes = ["nope"]\n')
    lines = errors_of(path)
    assert len(lines) == 2
    assert ":2: colour:" in lines[0] and ":6: quantize.types[0]:" in lines[1]


def test_checked_in_schema_is_up_to_date() -> None:
    assert (ROOT / "schemas" / "model.schema.json").read_text() == schema_text(), \
        "schemas/model.schema.json is stale: run `modelkit schema`"


def test_schema_validates_the_examples() -> None:
    import jsonschema

    schema = json.loads(schema_text())
    examples = list(ROOT.glob("examples/*/model.toml"))
    assert examples
    for example in examples:
        jsonschema.validate(tomllib.loads(example.read_text()), schema)


def test_cli_reports_spec_errors_without_traceback(tmp_path: Path) -> None:
    write(tmp_path, 'name = "bot"\n[base]\npath = "./nowhere"\n')
    proc = modelkit("plan", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: model.toml:3: base.path:")


QUALITY = 'name = "bot"\n[base]\npath = "./base"\n[quantize]\ntypes = ["Q4_K_M", "IQ4_XS"]\nimatrix = "./calib.txt"\n'


def test_an_iq_type_is_allowed_with_an_importance_matrix_and_says_how_without(tmp_path: Path, hf_folder: Path) -> None:
    (tmp_path / "calib.txt").write_text("some calibration text. " * 100)
    assert load_spec(write(tmp_path, QUALITY)).spec.quantize.types == ["Q4_K_M", "IQ4_XS"]
    [line] = errors_of(write(tmp_path, QUALITY.replace('imatrix = "./calib.txt"\n', "")))
    assert "'IQ4_XS' needs an importance matrix" in line and "imatrix to a calibration text" in line


@pytest.mark.parametrize("content, problem", [
    (b"", "is 0 bytes, fewer than the 1024 tokens llama.cpp needs (two contexts of 512); give more text"),
    (b"short text\n" * 10, "is 110 bytes, fewer than the 1024 tokens llama.cpp needs (two contexts of 512); give more text"),
    (b"GGUF\0\0\0\x03" + bytes(2000), "is not text (it holds NUL bytes); give plain UTF-8 text"),
    (b"caf\xe9 " * 400, "is not UTF-8 text (byte 3); give plain UTF-8 text"),
])
def test_a_calibration_text_llama_cpp_cannot_use_is_one_line(tmp_path: Path, hf_folder: Path, content: bytes,
                                                            problem: str) -> None:
    (tmp_path / "calib.txt").write_bytes(content)
    [line] = errors_of(write(tmp_path, QUALITY))
    assert line.startswith(f"{tmp_path / 'model.toml'}:6: quantize.imatrix: ") and line.endswith(problem), line


def test_a_missing_eval_text_names_the_field_and_the_file(tmp_path: Path, hf_folder: Path) -> None:
    (tmp_path / "calib.txt").write_text("x" * 2000)
    [line] = errors_of(write(tmp_path, QUALITY + '[evaluate]\ntext = "./held-out.txt"\ncontext = 64\n'))
    assert ":8: evaluate.text: file " in line and "held-out.txt does not exist" in line


@pytest.mark.parametrize("value, problem", [
    ("0", "evaluate.max_kld: Input should be greater than 0"),
    ("-0.5", "evaluate.max_kld: Input should be greater than 0"),
    ('"small"', "evaluate.max_kld: Input should be a valid number"),
])
def test_max_kld_must_be_a_positive_number(tmp_path: Path, hf_folder: Path, value: str, problem: str) -> None:
    (tmp_path / "calib.txt").write_text("x" * 2000)
    (tmp_path / "eval.txt").write_text("y" * 2000)
    [line] = errors_of(write(tmp_path, QUALITY + f'[evaluate]\ntext = "./eval.txt"\nmax_kld = {value}\n'))
    assert f":9: {problem}" in line, line


def test_a_check_on_a_variant_that_is_not_built_is_refused(tmp_path: Path, hf_folder: Path) -> None:
    (tmp_path / "calib.txt").write_text("x" * 2000)
    [line] = errors_of(write(tmp_path, QUALITY + '[[evaluate.prompts]]\nprompt = "Hi"\nexpect = "Hello"\n'
                                                 'variants = ["Q8_0"]\n'))
    assert "evaluate.prompts[0].variants[0]" in line and "Q8_0" in line, line


def test_a_check_needs_one_question_and_one_expectation(tmp_path: Path, hf_folder: Path) -> None:
    (tmp_path / "calib.txt").write_text("x" * 2000)
    [line] = errors_of(write(tmp_path, QUALITY + '[[evaluate.prompts]]\nprompt = "Hi"\n'))
    assert "evaluate.prompts[0]" in line and "give expect (a substring) or expect_regex (a pattern)" in line, line


@pytest.mark.parametrize("value", ["0", "-3", '"4"', "2.5", "true"])
def test_build_jobs_must_be_a_positive_whole_number(tmp_path: Path, hf_folder: Path, value: str) -> None:
    lines = errors_of(write(tmp_path, f'name = "bot"\n[base]\npath = "./base"\n[build]\njobs = {value}\n'))
    assert len(lines) == 1 and "model.toml:5: build.jobs:" in lines[0], lines


def test_build_jobs_is_read_and_defaults_to_the_machine(tmp_path: Path, hf_folder: Path) -> None:
    assert load_spec(write(tmp_path, 'name = "bot"\n[base]\npath = "./base"\n')).spec.build.jobs is None
    spec = load_spec(write(tmp_path, 'name = "bot"\n[base]\npath = "./base"\n[build]\njobs = 3\n')).spec
    assert spec.build.jobs == 3


@pytest.mark.parametrize("value", ['"spark"', '"ray://head"', '"ray://:10001"', "1"])
def test_build_executor_is_local_ray_or_a_ray_client_address(tmp_path: Path, hf_folder: Path, value: str) -> None:
    lines = errors_of(write(tmp_path, f'name = "bot"\n[base]\npath = "./base"\n[build]\nexecutor = {value}\n'))
    assert len(lines) == 1 and "model.toml:5: build.executor:" in lines[0], lines


@pytest.mark.parametrize("value", ["local", "ray", "ray://head.example:10001"])
def test_build_executor_is_read(tmp_path: Path, hf_folder: Path, value: str) -> None:
    spec = load_spec(write(tmp_path, f'name = "bot"\n[base]\npath = "./base"\n[build]\nexecutor = "{value}"\n')).spec
    assert spec.build.executor == value


def test_build_executor_option_is_checked(tmp_path: Path) -> None:
    done = modelkit("build", "--executor", "spark", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2 and "--executor: invalid _executor value" not in done.stderr
    assert "'spark': use local, ray or ray://HOST:PORT" in done.stderr, done.stderr


def test_build_minus_j_must_be_positive(tmp_path: Path) -> None:
    done = modelkit("build", "-j", "0", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2 and "-j/--jobs: '0' is not a positive whole number" in done.stderr
    assert "Traceback" not in done.stderr
