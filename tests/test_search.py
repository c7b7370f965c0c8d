"""The quantization search: the smallest candidate meeting a target, measured once, pinned by the lock."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from gguf import GGMLQuantizationType

from modelkit.formats.gguf import tensor_infos
from tests.conftest import copy_built, modelkit
from tests.test_recipes import spec_errors

TARGET = "target = { max_kld = 0.0008 }\nsearch_budget = 6\n"


@pytest.mark.parametrize(("quantize", "tail", "error"), [
    ("target = { max_kld = 0.01 }", "", "quantize.target: a search measures candidates: set evaluate.text"),
    ("target = { max_size = '1 MB' }", '[evaluate]\ntext = "eval.txt"\n', "a target needs max_kld or min_top1"),
    ("target = { max_kld = 0.02 }", '[evaluate]\ntext = "eval.txt"\nmax_kld = 0.01\n',
     "max_kld = 0.02 is looser than evaluate.max_kld = 0.01"),
    ('[[quantize.recipes]]\nname = "auto"\ntype = "Q4_K_M"', "", "'auto' names the variant quantize.target searches"),
])
def test_a_bad_target_is_one_line(tmp_path: Path, quantize: str, tail: str, error: str) -> None:
    (tmp_path / "eval.txt").write_text("text " * 400)
    errors = spec_errors(tmp_path, quantize, tail)
    assert len(errors) == 1 and error in errors[0], errors


def searching(built: Path, project: Path, target: str = TARGET) -> Path:
    copy_built(built, project)
    spec = project / "model.toml"
    text = spec.read_text()
    line = next(x for x in text.splitlines() if x.startswith("imatrix = "))  # the last key of [quantize]
    spec.write_text(text.replace(line, f"{line}\n{target}", 1))
    return project


def result(project: Path) -> dict:
    return json.loads((project / "build" / "eval" / "base+support.search.json").read_text())


@pytest.fixture(scope="module")
def searched(built_example: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example with a target, built once (the search ran) with a remote cache beside it
    (:func:`shared_by`), as a teammate's machine would; tests copy it."""
    folder = tmp_path_factory.mktemp("searched")
    (folder / "remote").mkdir()
    project = searching(built_example, folder / "example")
    proc = modelkit("build", "--no-ollama", cwd=project, env=shared_by(project))
    assert proc.returncode == 0, proc.stderr
    return project


def shared_by(searched: Path) -> dict[str, str]:
    """The environment naming the remote cache the build of :func:`searched` filled."""
    return {"MODELKIT_REMOTE_CACHE": (searched.parent / "remote").as_uri()}


def test_the_choice_is_the_smallest_candidate_meeting_the_target(searched: Path) -> None:
    found = result(searched)
    assert 1 <= len(found["candidates"]) <= 6
    assert found["screened"], "the groups raised alone are screened on a share of the text"
    meeting = [c for c in found["candidates"] if c["kld_mean"] <= 0.0008]
    assert found["chosen"]["name"] == min(meeting, key=lambda c: c["bytes"])["name"]
    standard = [c for c in meeting if "+" not in c["name"]]
    assert not standard or found["chosen"]["bytes"] <= min(c["bytes"] for c in standard)
    recipe = found["chosen"]["recipe"]
    types = {t.name: GGMLQuantizationType(t.ggml_type).name
             for t in tensor_infos(searched / "build" / "base+support.auto.gguf")}
    for group, qtype in recipe["tensors"].items():
        assert {types[n] for n in types if f".{group}." in n} == {qtype}
    report = json.loads((searched / "build" / "report.json").read_text())
    assert report["search"]["base+support"]["chosen"] == found["chosen"]["name"]
    assert found["chosen"]["name"] in report["search"]["base+support"]["pareto"]
    assert any(r["ref"] == "tiny-support:auto" for r in report["variants"])


def test_a_second_build_searches_nothing_and_a_new_budget_measures_nothing_new(searched: Path,
                                                                               tmp_path: Path) -> None:
    project = copy_built(searched, tmp_path / "again")
    proc = modelkit("build", "--no-ollama", cwd=project)
    assert proc.returncode == 0 and "search the smallest" not in proc.stderr, proc.stderr
    lock = json.loads((project / "modelkit.lock").read_text())
    assert lock["artifacts"]["search:base+support"]["chosen"] == {k: result(project)["chosen"][k]
                                                                  for k in ("name", "recipe")}
    spec = project / "model.toml"
    spec.write_text(spec.read_text().replace("search_budget = 6", "search_budget = 7"))
    proc = modelkit("build", "--no-ollama", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert result(project)["measured_now"] <= 1  # one more candidate at most: the rest are recalled


def test_the_search_is_deterministic(built_example: Path, searched: Path, tmp_path: Path) -> None:
    project = searching(built_example, tmp_path / "elsewhere")
    shutil.rmtree(project / ".modelkit" / "memo", ignore_errors=True)
    proc = modelkit("build", "--no-ollama", "search:base+support", cwd=project)
    assert proc.returncode == 0, proc.stderr
    found = result(project)
    assert found["measured_now"] == len(found["candidates"]) + len(found["screened"])  # nothing recalled
    assert [c["name"] for c in found["candidates"]] == [c["name"] for c in result(searched)["candidates"]]
    assert found["chosen"]["name"] == result(searched)["chosen"]["name"]


def test_a_teammate_sharing_the_remote_cache_measures_nothing_again(built_example: Path, searched: Path,
                                                                    tmp_path: Path) -> None:
    second = searching(built_example, tmp_path / "second", TARGET.replace("budget = 6", "budget = 7"))
    proc = modelkit("build", "--no-ollama", "search:base+support", cwd=second, env=shared_by(searched))
    assert proc.returncode == 0, proc.stderr
    assert len(result(second)["candidates"]) >= len(result(searched)["candidates"])
    assert result(second)["measured_now"] <= 1, "the first machine's candidates were measured again"


def test_a_target_no_candidate_meets_is_one_line_with_the_best_reached(built_example: Path, tmp_path: Path) -> None:
    project = searching(built_example, tmp_path / "strict", "target = { max_kld = 0.0000001 }\nsearch_budget = 3\n")
    proc = modelkit("build", "--no-ollama", "search:base+support", cwd=project)
    assert proc.returncode == 2, proc.stderr
    error = next(line for line in proc.stderr.splitlines() if line.startswith("error:"))
    assert "quantize.target: no candidate meets max_kld = 1e-07 within 3 candidates: the best reached mean KLD" \
        in error and "raise quantize.search_budget" in error


class _Toolchain:
    """What the search reads of a toolchain: its version and the backend it measures on."""

    def __init__(self, backend: str) -> None:
        self.version, self.backend = "b1", backend


def _search_on(backend: str, kept: dict[str, bytes], measured: list[str], tmp_path: Path) -> dict:
    """A search run on a toolchain of ``backend`` whose measurements are made up (fewer bits, more
    KL divergence), sharing ``kept`` records as machines share the remote cache."""
    from modelkit.core.action import StepContext
    from modelkit.steps.search import SearchQuant

    out = tmp_path / f"{backend}.search.json"
    step = SearchQuant(out=out, src=tmp_path / "model.gguf", logits=tmp_path / "logits", text=tmp_path / "eval.txt",
                       imatrix=None, context=128, target={"max_kld": 0.01}, budget=3, label="base")
    ctx = StepContext(name="search:base", log_path=tmp_path / "log", progress=lambda f, t: None,
                      toolchain_factory=lambda: _Toolchain(backend), tmp_paths={out: out},
                      memo=kept.get, keep=kept.__setitem__)
    step.run(ctx)
    return json.loads(out.read_text())


def test_numbers_measured_on_one_backend_are_never_reused_on_another(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from modelkit.steps import search

    measured: list[str] = []

    def made_up(self: search._Search, candidate: search.Candidate, logits: Path) -> dict:
        measured.append(f"{self.backend}:{candidate.name()}")
        self.fresh += 1
        rung = search.LADDER.index(candidate.type)
        return {"kld_mean": 0.1 / (rung + 1) ** 2, "top1_agreement": 0.9, "bytes": 1000 * (rung + 1),
                "group_types": {}}

    monkeypatch.setattr(search._Search, "_quantize_and_measure", made_up)
    monkeypatch.setattr("modelkit.formats.gguf.tensor_names", lambda path: [])
    kept: dict[str, bytes] = {}
    on_gpu = _search_on("cuda", kept, measured, tmp_path)
    assert {c["backend"] for c in on_gpu["candidates"]} == {"cuda"} and on_gpu["measured_now"] > 0
    measured.clear()
    on_cpu = _search_on("cpu", kept, measured, tmp_path)
    assert on_cpu["measured_now"] == len(measured) > 0 and all(m.startswith("cpu:") for m in measured)
    assert {c["backend"] for c in on_cpu["candidates"]} == {"cpu"}
    measured.clear()
    again = _search_on("cuda", kept, measured, tmp_path)
    assert measured == [] and again["chosen"] == on_gpu["chosen"]  # the same backend recalls its own numbers
