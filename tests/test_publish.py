"""Publishing: `modelkit publish` against a stand-in Hugging Face Hub and a stand-in Ollama.

The Hub cannot be reached from here. ``tests/hub_server.py`` implements the endpoints
``huggingface_hub`` calls for ``create_repo`` and ``create_commit`` (repository creation,
metadata validation, preupload, the git LFS batch API with its upload and verify actions, and the
NDJSON commit), as the Hub documents them, for the LFS transfer (``HF_HUB_DISABLE_XET=1``).
Ollama's registry is modelled in ``tests/ollama/fake_server.py`` (``/api/copy`` and ``/api/push``
as Ollama's api.md documents them). The projects ship a ready GGUF as is, so only the split test
needs the llama.cpp toolchain (``llama-gguf-split``).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import READY_GGUF_SPEC, ROOT, load_module
from conftest import modelkit as run_cli

hub_server = load_module(ROOT / "tests" / "hub_server.py")
sys.path.insert(0, str(ROOT / "tests" / "ollama"))
from fake_server import FakeOllama  # noqa: E402 - after the sys.path entry that finds it
from gguf_files import write_tiny_gguf  # noqa: E402 - after the sys.path entry that finds it

TOKEN = "hf_publish_test_token"
SPEC = READY_GGUF_SPEC + '\n[publish]\nrepo = "me/bot"\nlicense = "apache-2.0"\n'


@pytest.fixture
def hub() -> Iterator[object]:
    with hub_server.FakeHub(token=TOKEN) as server:
        yield server


def env_for(hub: object, tmp_path: Path, token: str | None = TOKEN, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "OLLAMA_"))}
    env.update({"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf-home"),
                "HF_HUB_DISABLE_XET": "1", "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
                "PYTHONPATH": str(ROOT), **extra})
    if token:
        env["HF_TOKEN"] = token
    return env


def modelkit(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=cwd, env=env, without=("HF_", "OLLAMA_"), timeout=300)


def ready_project(folder: Path, spec: str = SPEC) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_tiny_gguf(folder / "model.gguf")
    (folder / "model.toml").write_text(spec)
    return folder


def built(folder: Path, env: dict[str, str]) -> Path:
    proc = modelkit(["build", "--no-ollama"], folder, env)
    assert proc.returncode == 0, proc.stderr
    return folder


def test_publish_uploads_every_file_in_one_commit_and_a_card_the_hub_accepts(tmp_path: Path, hub: object) -> None:
    env = env_for(hub, tmp_path)
    project = built(ready_project(tmp_path / "p"), env)
    proc = modelkit(["publish"], project, env)
    assert proc.returncode == 0, proc.stderr
    repo = hub.repos["me/bot"]
    assert sorted(repo.files) == [".gitattributes", "README.md", "bot-F32.Modelfile", "bot-F32.gguf",
                                  "model.toml", "modelkit.lock", "params", "system", "template"]
    assert repo.files["bot-F32.gguf"] == (project / "model.gguf").read_bytes()
    assert repo.files["modelkit.lock"] == (project / "modelkit.lock").read_bytes()
    assert b"FROM ./bot-F32.gguf" in repo.files["bot-F32.Modelfile"]  # the file beside it in the repo
    assert b"SYSTEM Be brief." in repo.files["bot-F32.Modelfile"]
    assert len(hub.commits) == 1
    from huggingface_hub import ModelCard

    card = ModelCard(repo.files["README.md"].decode())
    assert card.data.library_name == "gguf" and card.data.license == "apache-2.0"
    assert {"gguf", "ollama"} <= set(card.data.tags)
    assert "ollama run hf.co/me/bot:F32" in card.text and "llama-server -hf me/bot:F32" in card.text
    assert hub_server.card_metadata_errors(repo.files["README.md"].decode()) == []
    assert "from `template`, `system`, `params` at this repository's root" in card.text


def test_ollama_run_hf_co_gets_the_registered_template_system_and_parameters(tmp_path: Path, hub: object) -> None:
    """``template``, ``system`` and ``params`` at the root (what ``ollama run hf.co/…`` reads) say
    exactly what the registered Modelfile's TEMPLATE, SYSTEM and PARAMETERs say."""
    import json

    grammar = load_module(ROOT / "tests" / "ollama" / "modelfile_grammar.py")
    env = env_for(hub, tmp_path)
    spec = SPEC.replace("parameters = { temperature = 0.5 }", 'parameters = { temperature = 0.5, num_ctx = 2048, '
                        'stop = ["<|end|>", "</s>"] }')
    project = built(ready_project(tmp_path / "p", spec), env)
    assert modelkit(["publish"], project, env).returncode == 0
    files = hub.repos["me/bot"].files
    commands = grammar.parse((project / "build" / "bot-f32.Modelfile").read_text())
    said = {c.name: [] for c in commands}
    for c in commands:
        said[c.name].append(c.args)
    assert files["template"].decode() == said["template"][0] == "{{ .Prompt }}"
    assert files["system"].decode() == said["system"][0] == "Be brief."
    assert json.loads(files["params"]) == {"temperature": 0.5, "num_ctx": 2048, "stop": ["<|end|>", "</s>"]}
    assert (said["temperature"], said["num_ctx"], said["stop"]) == (["0.5"], ["2048"], ["<|end|>", "</s>"])


def test_a_second_publish_of_the_same_build_uploads_and_commits_nothing(tmp_path: Path, hub: object) -> None:
    env = env_for(hub, tmp_path)
    project = built(ready_project(tmp_path / "p"), env)
    assert modelkit(["publish"], project, env).returncode == 0
    sent, commits = hub.bytes_received, len(hub.commits)
    assert sent == (project / "model.gguf").stat().st_size
    proc = modelkit(["publish"], project, env)
    assert proc.returncode == 0, proc.stderr
    assert "nothing changed" in proc.stderr
    assert (hub.bytes_received, len(hub.commits)) == (sent, commits)


def test_a_changed_modelfile_is_one_commit_without_the_gguf(tmp_path: Path, hub: object) -> None:
    env = env_for(hub, tmp_path)
    project = built(ready_project(tmp_path / "p"), env)
    assert modelkit(["publish"], project, env).returncode == 0
    sent = hub.bytes_received
    (project / "model.toml").write_text(SPEC.replace("Be brief.", "Be very brief."))
    built(project, env)
    proc = modelkit(["publish"], project, env)
    assert proc.returncode == 0, proc.stderr
    assert hub.bytes_received == sent  # the Hub's LFS batch answer said it holds the GGUF
    assert len(hub.commits) == 2
    assert b"Be very brief." in hub.repos["me/bot"].files["bot-F32.Modelfile"]


def test_dry_run_prints_the_files_and_the_card_and_sends_nothing(tmp_path: Path, hub: object) -> None:
    env = env_for(hub, tmp_path, token=None)  # a dry run needs no credentials
    project = built(ready_project(tmp_path / "p"), env)
    proc = modelkit(["publish", "--dry-run", "--repo", "me/other"], project, env)
    assert proc.returncode == 0, proc.stderr
    assert "would publish to" in proc.stdout and "me/other" in proc.stdout
    for name in ("bot-F32.gguf", "bot-F32.Modelfile", "modelkit.lock", "model.toml", "README.md"):
        assert name in proc.stdout
    for name, what in (("template", "Go TEMPLATE"), ("system", "system prompt"), ("params", "parameters")):
        assert re.search(rf"^  {name} +\d+ B  {what} for ollama run hf.co/…$", proc.stdout, re.M), proc.stdout
    assert "library_name: gguf" in proc.stdout and "ollama run hf.co/me/other:F32" in proc.stdout
    assert hub.requests == []


@pytest.mark.parametrize(("args", "spec", "message"), [
    (["--repo", "nope"], SPEC, "--repo: 'nope' is not a Hugging Face repository id"),
    (["--repo", "a/b/c"], SPEC, "'a/b/c' is not a Hugging Face repository id"),
    ([], SPEC.replace('repo = "me/bot"', 'repo = "me"'), "model.toml:15: publish.repo: 'me' is not a Hugging Face"),
    ([], SPEC.replace('repo = "me/bot"\n', ""), "nowhere to publish to: set [publish] repo"),
])
def test_a_bad_repository_id_is_one_line_and_sends_nothing(tmp_path: Path, hub: object, args: list[str], spec: str,
                                                           message: str) -> None:
    env = env_for(hub, tmp_path)
    project = ready_project(tmp_path / "p", spec)
    proc = modelkit(["publish", *args], project, env)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert hub.requests == []


def test_publishing_before_building_is_refused_before_anything_is_sent(tmp_path: Path, hub: object) -> None:
    env = env_for(hub, tmp_path)
    project = ready_project(tmp_path / "p")
    proc = modelkit(["publish"], project, env)
    assert proc.returncode == 2, proc.stderr
    assert "is not built (never built): run `modelkit build` first" in proc.stderr
    assert "Traceback" not in proc.stderr and hub.requests == []


def test_no_credentials_is_one_line_and_nothing_is_sent(tmp_path: Path, hub: object) -> None:
    env = env_for(hub, tmp_path, token=None)
    project = built(ready_project(tmp_path / "p"), env)
    proc = modelkit(["publish"], project, env)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: no Hugging Face credentials: set HF_TOKEN or run `hf auth login`; "
                                   "nothing was uploaded")
    assert hub.requests == []


def test_refused_credentials_commit_nothing(tmp_path: Path, hub: object) -> None:
    env = env_for(hub, tmp_path, token="hf_wrong")
    project = built(ready_project(tmp_path / "p"), env)
    proc = modelkit(["publish"], project, env)
    assert proc.returncode == 2, proc.stderr
    assert "the Hub refused the credentials" in proc.stderr and "Traceback" not in proc.stderr
    assert hub.commits == [] and hub.lfs == {}


def big_gguf(path: Path, tensors: int = 6) -> Path:
    """A GGUF of ``tensors`` 512 kB F32 tensors (plus the tiny model's), for splitting."""
    import gguf
    import numpy as np

    write_tiny_gguf(path)
    reader = gguf.GGUFReader(str(path))
    w = gguf.GGUFWriter(str(path.with_suffix(".tmp")), "llama")
    for fld in reader.fields.values():
        if fld.name.startswith(("GGUF.", "general.architecture")):
            continue
        value = fld.contents()
        w.add_key_value(fld.name, value, fld.types[0], sub_type=fld.types[-1] if len(fld.types) > 1 else None)
    for t in reader.tensors:
        w.add_tensor(t.name, np.array(t.data).reshape(list(reversed(t.shape.tolist()))))
    rng = np.random.default_rng(7)
    for i in range(tensors):
        w.add_tensor(f"extra.{i}.weight", rng.standard_normal((256, 512), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    path.with_suffix(".tmp").replace(path)
    return path


def tensors_of(path: Path) -> dict[str, str]:
    import gguf

    return {t.name: hashlib.sha256(bytes(t.data)).hexdigest() for t in gguf.GGUFReader(str(path)).tensors}


def test_a_gguf_over_max_file_size_is_published_as_a_split_set_that_merges_back(
        tmp_path: Path, hub: object, toolchain: object) -> None:
    env = env_for(hub, tmp_path)
    project = tmp_path / "p"
    project.mkdir()
    big_gguf(project / "model.gguf")
    (project / "model.toml").write_text(SPEC + 'max_file_size = "2MB"\n')
    built(project, env)
    proc = modelkit(["publish"], project, env)
    assert proc.returncode == 0, proc.stderr
    files = hub.repos["me/bot"].files
    parts = sorted(n for n in files if n.endswith(".gguf"))
    assert len(parts) == 2 and parts[0] == "bot-F32-00001-of-00002.gguf", parts
    assert all(len(files[n]) <= 2_000_000 for n in parts)
    assert b"FROM ./bot-F32-00001-of-00002.gguf" in files["bot-F32.Modelfile"]
    assert "bot-F32-00002-of-00002.gguf" in files["README.md"].decode()
    down = tmp_path / "down"
    down.mkdir()
    for name in parts:
        (down / name).write_bytes(files[name])
    merged = tmp_path / "merged.gguf"
    from modelkit.publish import merge_parts

    merge_parts(toolchain.gguf_split, down / parts[0], merged)
    assert tensors_of(merged) == tensors_of(project / "model.gguf")
    # The split set is kept: a second publish splits nothing and uploads nothing.
    sent = hub.bytes_received
    proc = modelkit(["publish"], project, env)
    assert proc.returncode == 0 and "nothing changed" in proc.stderr, proc.stderr
    assert hub.bytes_received == sent


PUSH_SPEC = READY_GGUF_SPEC + '\n[publish]\nrepo = "me/bot"\nollama = "me/bot"\n'


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    with FakeOllama() as server:
        yield server


def registered(folder: Path, env: dict[str, str]) -> Path:
    proc = modelkit(["build"], folder, env)
    assert proc.returncode == 0 and "not registered" not in proc.stderr, proc.stderr
    return folder


def test_publish_pushes_every_registered_variant_to_ollamas_registry(tmp_path: Path, hub: object,
                                                                    ollama: FakeOllama) -> None:
    env = env_for(hub, tmp_path, OLLAMA_HOST=ollama.host)
    project = registered(ready_project(tmp_path / "p", PUSH_SPEC), env)
    proc = modelkit(["publish"], project, env)
    assert proc.returncode == 0, proc.stderr
    assert sorted(ollama.registry) == ["registry.ollama.ai/me/bot:f32", "registry.ollama.ai/me/bot:latest"]
    assert ollama.model("me/bot:f32") is not None  # copied to the registry name first
    assert "pushed bot:f32 as me/bot:f32" in proc.stderr
    assert ollama.model("bot:f32").model_blob in ollama.registry_blobs
    pushes = [r.body for r in ollama.log.records if r.path == "/api/push"]
    assert [p["model"] for p in pushes] == ["me/bot:f32", "me/bot:latest"] and not pushes[0]["insecure"]


def test_an_unreachable_registry_defers_the_push_and_the_hub_commit_stands(tmp_path: Path, hub: object,
                                                                            ollama: FakeOllama) -> None:
    env = env_for(hub, tmp_path, OLLAMA_HOST=ollama.host)
    project = registered(ready_project(tmp_path / "p", PUSH_SPEC), env)
    ollama.registry_reachable = False
    proc = modelkit(["publish"], project, env)
    assert proc.returncode == 0, proc.stderr
    assert "not pushed" in proc.stderr and "no such host" in proc.stderr
    assert "ollama cp bot:f32 me/bot:f32 && ollama push me/bot:f32" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(hub.commits) == 1 and ollama.registry == {}
    ollama.registry_reachable = True
    proc = modelkit(["publish"], project, env)  # the next publish pushes; the Hub has nothing new
    assert proc.returncode == 0 and "nothing changed" in proc.stderr, proc.stderr
    assert "registry.ollama.ai/me/bot:f32" in ollama.registry


def test_a_registry_that_refuses_the_namespace_is_one_line(tmp_path: Path, hub: object, ollama: FakeOllama) -> None:
    env = env_for(hub, tmp_path, OLLAMA_HOST=ollama.host)
    project = registered(ready_project(tmp_path / "p", PUSH_SPEC), env)
    ollama.registry_namespaces = {"someone-else"}
    proc = modelkit(["publish"], project, env)
    assert proc.returncode == 2, proc.stderr
    assert "the registry refused me/bot:f32" in proc.stderr and "Traceback" not in proc.stderr


BASE_CARD = """---
license: llama3.1
license_link: https://huggingface.co/meta-llama/Llama-3.1-8B/blob/main/LICENSE
extra_gated_heading: You need to share contact information with Meta to access this model
extra_gated_prompt: |-
  LLAMA 3.1 COMMUNITY LICENSE AGREEMENT
  By clicking "I Accept" you agree to the terms.
---
# Llama 3.1
"""


def card_facts(tmp_path: Path, **changes: object) -> object:
    from modelkit.publish.card import CardFacts, VariantRow, read_base_terms

    (tmp_path / "README.md").write_text(BASE_CARD)
    terms = read_base_terms(tmp_path / "README.md")
    quality = {"bits_per_weight": 4.89, "ppl": 7.1234, "kld_mean": 0.01234, "top1_agreement": 0.912,
               "prompts_passed": 1, "prompts_total": 1}
    rows = [VariantRow("Q4_K_M", "q4_k_m", ["bot-Q4_K_M.gguf"], 4_920_000_000, "bot-Q4_K_M.Modelfile", quality),
            VariantRow("Q8_0", "q8_0", ["bot-Q8_0-00001-of-00002.gguf", "bot-Q8_0-00002-of-00002.gguf"],
                       8_540_000_000, "bot-Q8_0.Modelfile", {**quality, "kld_mean": 0.001})]
    facts = {"repo": "me/bot", "model": "bot", "base_model": "meta-llama/Llama-3.1-8B-Instruct",
                 "base_label": "[meta-llama/Llama-3.1-8B-Instruct](https://huggingface.co/meta-llama/Llama-3.1-8B-Instruct)",
                 "relation": "merge", "adapters": ["`support`"], "variants": rows, "license": terms.license,
                 "license_from": "the base model's card", "terms": terms, "evaluated": True, "reference": "F16, perplexity 7.001",
                 "template_origin": "translated from the adapter's Jinja chat template",
                 "template_proof": "proven on 9 conversations", "ollama": "me/bot", "max_file_size": 5_000_000_000}
    facts.update(changes)
    return CardFacts(**facts)


def test_the_card_keeps_the_base_license_and_gating_and_shows_the_quality_ladder(tmp_path: Path) -> None:
    from huggingface_hub import ModelCard

    from modelkit.publish import render_card

    text = render_card(card_facts(tmp_path))
    card = ModelCard(text)
    data = card.data
    assert data.base_model == "meta-llama/Llama-3.1-8B-Instruct" and data.base_model_relation == "merge"
    assert data.library_name == "gguf" and data.tags[:3] == ["gguf", "ollama", "lora"]
    assert data.license == "llama3.1" and data.license_link.endswith("/LICENSE")
    assert hub_server.card_metadata_errors(text) == []
    assert "| Q4_K_M | `q4_k_m` | `bot-Q4_K_M.gguf` | 4.92 GB | 4.89 | 7.123 | 0.0123 | 91.2% | 1/1 |" in card.text
    assert "`bot-Q8_0-00001-of-00002.gguf`<br>`bot-Q8_0-00002-of-00002.gguf`" in card.text
    assert "llama-gguf-split --merge" in card.text
    assert "ollama run hf.co/me/bot:Q4_K_M" in card.text and "ollama run me/bot:q4_k_m" in card.text
    assert "llama-server -hf me/bot:Q4_K_M" in card.text
    assert "proven on 9 conversations" in card.text
    assert "You need to share contact information with Meta" in card.text
    assert "> LLAMA 3.1 COMMUNITY LICENSE AGREEMENT" in card.text


def test_a_spec_license_wins_and_a_quantized_base_without_numbers_has_no_quality_columns(tmp_path: Path) -> None:
    from huggingface_hub import ModelCard

    from modelkit.publish import render_card
    from modelkit.publish.card import BaseTerms

    facts = card_facts(tmp_path, license="apache-2.0", license_from="set in model.toml", terms=BaseTerms(),
                       relation="quantized", adapters=[], evaluated=False, ollama=None)
    card = ModelCard(render_card(facts))
    assert card.data.license == "apache-2.0" and card.data.base_model_relation == "quantized"
    assert "lora" not in card.data.tags and card.data.license_link is None
    assert "Perplexity" not in card.text and "ollama run me/bot" not in card.text
    assert "License and access" in card.text and "gated" not in card.text
    bad = render_card(card_facts(tmp_path, license="not-a-license"))
    assert hub_server.card_metadata_errors(bad) == [
        "\"license\" must be one of the Hub's license ids, got 'not-a-license'"]


def test_a_license_the_hub_does_not_know_is_refused_with_nothing_committed(tmp_path: Path, hub: object) -> None:
    env = env_for(hub, tmp_path)
    project = built(ready_project(tmp_path / "p", SPEC.replace("apache-2.0", "my-own")), env)
    proc = modelkit(["publish"], project, env)
    assert proc.returncode == 2, proc.stderr
    assert "the Hub refused the model card's metadata" in proc.stderr and "[publish] license" in proc.stderr
    assert hub.commits == [] and hub.lfs == {}


def test_private_is_asked_for_when_the_repository_is_created(tmp_path: Path, hub: object) -> None:
    env = env_for(hub, tmp_path)
    project = built(ready_project(tmp_path / "p"), env)
    dry = modelkit(["publish", "--private", "--dry-run"], project, env)
    assert "(private, one commit)" in dry.stdout, dry.stdout
    proc = modelkit(["publish", "--private"], project, env)
    assert proc.returncode == 0, proc.stderr
    assert hub.private == {"me/bot"}


@pytest.mark.toolchain
@pytest.mark.slow
def test_the_tiny_example_publishes_its_quantizations_with_the_proven_template(tiny_project: Path, tmp_path: Path,
                                                                               hub: object) -> None:
    """The real thing: llama.cpp's quantizations of a base with a merged LoRA, and its template's proof."""
    env = env_for(hub, tmp_path)
    spec = tiny_project / "model.toml"
    spec.write_text(spec.read_text() + '\n[publish]\nrepo = "me/tiny-support"\n')
    built(tiny_project, env)
    proc = modelkit(["publish"], tiny_project, env)
    assert proc.returncode == 0, proc.stderr
    files = hub.repos["me/tiny-support"].files
    assert {"tiny-support-Q4_K_M.gguf", "tiny-support-Q8_0.gguf", "tiny-support-Q4_K_M.Modelfile",
            "tiny-support-Q8_0.Modelfile"} <= set(files)
    assert files["tiny-support-Q8_0.gguf"] == (tiny_project / "build" / "base+support.Q8_0.gguf").read_bytes()
    from huggingface_hub import ModelCard

    card = ModelCard(files["README.md"].decode())
    assert "lora" in card.data.tags and card.data.base_model is None  # a local base has no Hub id to name
    assert "merged into the weights" in card.text and "proven on" in card.text
    assert "TEMPLATE" in files["tiny-support-Q4_K_M.Modelfile"].decode()


def test_an_ollama_that_is_not_running_defers_the_push_like_a_registration(tmp_path: Path, hub: object,
                                                                            ollama: FakeOllama) -> None:
    from ollama_fixtures import free_port_host

    project = registered(ready_project(tmp_path / "p", PUSH_SPEC), env_for(hub, tmp_path, OLLAMA_HOST=ollama.host))
    down = free_port_host()
    proc = modelkit(["publish"], project, env_for(hub, tmp_path, OLLAMA_HOST=down))
    assert proc.returncode == 0, proc.stderr
    assert f"not pushed: Ollama at {down} is not reachable (connection refused)" in proc.stderr, proc.stderr
    assert len(hub.commits) == 1 and ollama.registry == {}


def closed_port() -> str:
    """An address on loopback where nothing listens (a port taken, then let go)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def plain_http_server() -> Iterator[str]:
    """A plain-HTTP server on loopback, to be reached as https:// (TLS fails)."""
    import http.server
    import threading

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("where", "what"), [
    ("closed port", "the connection was refused"),
    ("no such host", "its name does not resolve (DNS)"),
    ("plain http", "the secure connection (TLS) failed"),
    ("silent", "it did not answer in time"),
    (500, "it failed on its side (500)"),
    (503, "it failed on its side (503)"),
    (429, "it is limiting how often it may be asked (429 Too Many Requests)"),
])
def test_a_hub_that_cannot_be_reached_or_fails_is_one_line_and_nothing_is_committed(
        tmp_path: Path, hub: object, where: object, what: str) -> None:
    env = env_for(hub, tmp_path, MODELKIT_HUB_TIMEOUT="2")
    project = built(ready_project(tmp_path / "p"), env)
    servers = plain_http_server()
    endpoint = {"closed port": closed_port, "no such host": lambda: "http://no-such-host.invalid",
                "plain http": lambda: next(servers)}.get(where, lambda: hub.url)()
    hub.failing = where if isinstance(where, int) else None
    hub.silent = where == "silent"
    proc = modelkit(["publish"], project, {**env, "HF_ENDPOINT": endpoint})
    servers.close()
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip() == (f"error: me/bot: the Hub at {endpoint}: {what}; nothing was committed: "
                                   f"{proc.stderr.split('nothing was committed: ')[1].strip()}")
    assert proc.stderr.strip().endswith(", then run `modelkit publish` again") and "Traceback" not in proc.stderr
    assert hub.commits == [] and hub.lfs == {}


def test_a_model_that_sees_images_publishes_its_projector_where_the_runners_look(tmp_path: Path, hub: object) -> None:
    """A ready GGUF base with its projector beside it (``mmproj-*.gguf``): the projector goes up under
    the name ``llama-server -hf`` and ``ollama run hf.co/…`` look for, each Modelfile names it as a
    second FROM, and the card says the model sees images."""
    env = env_for(hub, tmp_path)
    project = ready_project(tmp_path / "p")
    write_tiny_gguf(project / "mmproj-model.gguf", arch="clip", kind="mmproj")
    built(project, env)
    assert "FROM ../mmproj-model.gguf" in (project / "build" / "bot-f32.Modelfile").read_text()
    proc = modelkit(["publish"], project, env)
    assert proc.returncode == 0, proc.stderr
    repo = hub.repos["me/bot"]
    assert repo.files["mmproj-model.gguf"] == (project / "mmproj-model.gguf").read_bytes()
    assert b"FROM ./bot-F32.gguf\nFROM ./mmproj-model.gguf\n" in repo.files["bot-F32.Modelfile"]
    from huggingface_hub import ModelCard

    card = ModelCard(repo.files["README.md"].decode())
    assert "vision" in card.data.tags and card.data.pipeline_tag == "image-text-to-text"
    assert "The model sees images" in card.text and "`mmproj-model.gguf`" in card.text
    assert hub_server.card_metadata_errors(repo.files["README.md"].decode()) == []
