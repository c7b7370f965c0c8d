"""The tiny example against the real Ollama (0.32.15, CPU), end to end through ``modelkit build``.

Everything counted here is the server's own account (``tests/ollama/real_ollama.py``): creates and
blob uploads from its request log, the engine it chose from its ``template selection`` line, the
prompt from what it sent its runner. Where the server must go away mid-build, a loopback relay in
front of it closes (an injected fault: the one stand-in here). Each test registers its own model
name on the one server of the session.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import time
import urllib.error
from pathlib import Path
from typing import Any

import pytest
from conftest import copy_built, modelkit
from tcp_relay import Relay, Stop

from modelkit.ollama.engine import predict_engine

pytestmark = [pytest.mark.toolchain, pytest.mark.slow]
PROMPT = "The printer does not start."


def project_named(built: Path, folder: Path, name: str, edit: Any = None) -> Path:
    """A copy of the built example whose model is ``name`` (``edit``: more changes to the spec)."""
    project = copy_built(built, folder)
    spec = (project / "model.toml").read_text().replace('name = "tiny-support"', f'name = "{name}"')
    (project / "model.toml").write_text(edit(spec) if edit else spec)
    return project


def build(project: Path, host: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    proc = modelkit("build", *args, cwd=project, ollama_host=host, env=env or None)
    assert proc.returncode == 0, proc.stderr
    return proc


def sizes(project: Path) -> dict[str, int]:
    """Blob digest (as Ollama names it) -> size, for every GGUF the project built."""
    return {f"sha256:{hashlib.sha256(p.read_bytes()).hexdigest()}": p.stat().st_size
            for p in (project / "build").glob("*.gguf")}


def test_registration_creates_only_what_changed_and_uploads_each_gguf_once(built_example: Path, real_ollama: Any,
                                                                           tmp_path: Path) -> None:
    """build -> no-op -> params change -> `ollama rm` -> build, counted from the server's log."""
    project = project_named(built_example, tmp_path / "p", "life")
    blobs, rounds = sizes(project), []
    for step in ("build", "no-op", "params", "rm"):
        if step == "params":
            spec = project / "model.toml"
            spec.write_text(spec.read_text().replace("temperature = 0.2", "temperature = 0.3"))
        if step == "rm":
            for tag in ("q4_k_m", "q8_0", "iq4_xs", "latest"):
                assert real_ollama.cli("rm", f"life:{tag}").returncode == 0
        mark = real_ollama.mark()
        proc = build(project, real_ollama.host)
        rounds.append((real_ollama.creates(mark), sum(blobs[d] for d in real_ollama.uploaded(mark))))
        if step == "no-op":
            assert "everything is up to date" in proc.stderr
    quantized = sum(size for name, size in blobs.items() if size < 2_000_000 and name in real_ollama.log())
    assert rounds[0][0] == 4 and rounds[0][1] == quantized > 0  # three GGUFs, each sent once
    print(f"creates and bytes uploaded: {rounds}")
    assert rounds[1:] == [(0, 0), (4, 0), (4, rounds[3][1])]
    listed = {m["name"] for m in real_ollama.api("/api/tags")["models"]}
    assert {f"life:{t}" for t in ("q4_k_m", "q8_0", "iq4_xs", "latest")} <= listed


def test_the_server_renders_the_proven_prompt_and_answers_with_the_loras_words(built_example: Path,
                                                                               real_ollama: Any,
                                                                               tmp_path: Path) -> None:
    project = project_named(built_example, tmp_path / "p", "answer",
                            lambda spec: spec.replace("temperature = 0.2", "temperature = 0.0"))
    build(project, real_ollama.host)
    check = json.loads((project / "build" / "eval" / "answer-q8_0.check.json").read_text())["answers"][0]
    before = len(real_ollama.runner_requests())
    reply = real_ollama.api("/api/chat", {"model": "answer:q8_0", "stream": False,
                                          "messages": [{"role": "user", "content": PROMPT}],
                                          "options": {"temperature": 0, "seed": 0, "num_predict": 48}})
    assert real_ollama.runner_prompts(since=before) == [check["prompt"]]  # what modelkit proved and checked
    assert reply["message"]["content"] == check["answer"]  # what llama-completion answered at build time
    assert "Sorry to hear" in check["answer"]
    modelfile = (project / "build" / "answer-q8_0.Modelfile").read_text()
    template = re.search(r'TEMPLATE """(.*?)"""\n', modelfile, re.S)
    assert template is not None
    jinja = json.loads((project / "build" / "template.json").read_text())["jinja"]
    assert real_ollama.selections()["answer:q8_0"] == predict_engine(jinja, template.group(1)).selected == "go_template"
    report = json.loads((project / "build" / "report.json").read_text())
    assert {row["renderer"] for row in report["variants"]} == {"go_template"}
    run = real_ollama.cli("run", "answer:q8_0", PROMPT)  # as a user would, with the Modelfile's temperature 0
    assert run.returncode == 0 and run.stdout.strip() == check["answer"].strip(), run.stderr


def test_the_cli_route_registers_with_ollama_create(built_example: Path, real_ollama: Any, tmp_path: Path) -> None:
    project = project_named(built_example, tmp_path / "p", "viacli")
    mark = real_ollama.mark()
    build(project, real_ollama.host, "--register", "cli", PATH=real_ollama.env()["PATH"])
    assert real_ollama.creates(mark) == 4
    mark = real_ollama.mark()
    build(project, real_ollama.host, "--register", "cli", PATH=real_ollama.env()["PATH"])
    assert real_ollama.creates(mark) == 0  # fresh: the server still holds what it accepted


def test_an_ollama_that_goes_away_mid_build_defers_and_the_next_build_registers(built_example: Path,
                                                                                real_ollama: Any,
                                                                                tmp_path: Path) -> None:
    """The relay in front of the server dies as the second create is sent (before the server
    sees it): one model is registered, the others are deferred; the next build, with the server
    back at the same address, creates only those."""
    project = project_named(built_example, tmp_path / "p", "away")
    creates: list[int] = []

    def die_at_second_create(_: int, data: bytes) -> None:
        creates.append(data.count(b"POST /api/create"))
        if sum(creates) >= 2:
            raise Stop

    relay = Relay(real_ollama.port, die_at_second_create)
    host = f"http://127.0.0.1:{relay.port}"
    mark = real_ollama.mark()
    proc = build(project, host)
    assert relay.stopped.is_set() and real_ollama.creates(mark) == 1
    assert re.search(r"not registered \(3 models\): Ollama is not reachable at http://127\.0\.0\.1:\d+", proc.stderr)
    back = Relay(real_ollama.port, lambda n, d: None, listen=relay.port)  # the server back where it was
    try:
        mark = real_ollama.mark()
        proc = build(project, host)
        assert real_ollama.creates(mark) == 3 and "not registered" not in proc.stderr
    finally:
        back.close()


def test_an_adapter_line_is_applied_by_ollama_0_32(built_example: Path, real_ollama: Any, tmp_path: Path) -> None:
    """``lora = "adapter"``: Ollama keeps the LoRA GGUF as its own layer, starts its runner with
    ``--lora`` and answers with the LoRA's words, as the merged model does."""
    project = project_named(built_example, tmp_path / "p", "adapted",
                            lambda spec: spec.replace("[ollama]\n", '[ollama]\nlora = "adapter"\n', 1))
    mark = real_ollama.mark()
    build(project, real_ollama.host)
    shown = real_ollama.api("/api/show", {"model": "adapted:q8_0"})
    assert "\nADAPTER " in shown["modelfile"]
    reply = real_ollama.api("/api/chat", {"model": "adapted:q8_0", "stream": False,
                                          "messages": [{"role": "user", "content": PROMPT}],
                                          "options": {"temperature": 0, "seed": 0, "num_predict": 48}})
    assert "Sorry to hear" in reply["message"]["content"]
    started = [line for line in real_ollama.log(mark).splitlines() if 'msg="starting llama-server"' in line]
    assert started and " --lora " in started[-1]


@pytest.fixture
def registry(tmp_path: Path) -> Any:
    """Docker's reference registry (``distribution``, Debian's ``docker-registry``) on loopback.

    Ollama pulls a layer from where the registry redirects its blob request to (as ollama.com's
    registry sends it to a CDN), and 0.32.15 refuses a registry that answers with the bytes
    itself ("no Location header in response"): so the registry redirects blobs (its ``redirect``
    storage middleware) to a plain file server over its storage, under another host name."""
    import functools
    import http.server
    import threading
    import urllib.request

    exe = shutil.which("docker-registry")
    if exe is None:
        pytest.skip("no docker-registry (Debian's package: scripts/setup.sh installs it)")
    from real_ollama import free_port

    storage = tmp_path / "registry"
    storage.mkdir()
    files = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(storage)))
    threading.Thread(target=files.serve_forever, daemon=True).start()
    port = free_port()
    config = tmp_path / "registry.yml"
    config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {storage}\nmiddleware:\n  storage:\n"
                      f"    - name: redirect\n      options:\n        baseurl: http://localhost:{files.server_address[1]}/\n"
                      f"http:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen([exe, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
            break
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail("docker-registry did not come up")
            time.sleep(0.1)  # polling for the port, bounded by the deadline
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=30)
    files.shutdown()


def test_publish_pushes_to_a_registry_and_another_server_pulls_the_same_model(
        built_example: Path, real_ollama: Any, registry: str, tmp_path: Path,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """``[publish] ollama`` to Docker's registry on loopback (plain HTTP: ``insecure``); a second
    real server with its own model store pulls it, and it answers as the first does."""
    from conftest import ROOT, load_module
    from real_ollama import RealOllama

    hub_server = load_module(ROOT / "tests" / "hub_server.py")
    target = f"{registry}/me/pushed"
    project = project_named(built_example, tmp_path / "p", "pushed", lambda spec: spec + (
        f'\n[publish]\nrepo = "me/pushed"\nlicense = "mit"\nollama = "{target}"\ninsecure = true\n'))
    build(project, real_ollama.host)
    with hub_server.FakeHub(token="hf_test") as hub:
        proc = modelkit("publish", cwd=project, ollama_host=real_ollama.host, env={
            "HF_ENDPOINT": hub.url, "HF_TOKEN": "hf_test", "HF_HUB_DISABLE_XET": "1",
            "HF_HOME": str(tmp_path / "hf")})
    assert proc.returncode == 0, proc.stderr
    assert f"pushed pushed:q8_0 as {target}:q8_0" in proc.stderr
    ask = {"stream": False, "messages": [{"role": "user", "content": PROMPT}],
           "options": {"temperature": 0, "seed": 0, "num_predict": 48}}
    here = real_ollama.api("/api/chat", {"model": "pushed:q8_0", **ask})
    with RealOllama(real_ollama.exe, tmp_path_factory.mktemp("second-ollama")) as second:
        pulled = second.cli("pull", "--insecure", f"{target}:q8_0")
        assert pulled.returncode == 0, pulled.stderr
        there = second.api("/api/chat", {"model": f"{target}:q8_0", **ask})
        shown = second.api("/api/show", {"model": f"{target}:q8_0"})
    assert there["message"] == here["message"] and "Sorry to hear" in there["message"]["content"]
    assert shown["system"] == "You are a support agent. Answer in one short sentence."


def build_with_template(built: Path, tmp_path: Path, host: str, toolchain: Any, template: str, name: str
                        ) -> tuple[dict[str, Any], str]:
    """The tiny example's GGUF shipping one of llama.cpp's chat templates, built and registered:
    what modelkit inherited (``build/template.json``), and what the build said."""
    project = tmp_path / "p"
    project.mkdir()
    shutil.copy(built / "build" / "base+support.f16.gguf", project / "model.gguf")
    shutil.copy(toolchain.templates / template, project / "chat.jinja")
    (project / "model.toml").write_text(f'name = "{name}"\n[base]\ngguf = "./model.gguf"\n[quantize]\n'
                                        'types = ["Q8_0"]\n[ollama]\nchat_template_file = "./chat.jinja"\n')
    said = build(project, host).stderr
    return json.loads((project / "build" / "template.json").read_text()), said


@pytest.mark.parametrize("template", ["Qwen-Qwen2.5-7B-Instruct.jinja", "Qwen-Qwen3-0.6B.jinja"],
                         ids=["tools", "thinking"])
def test_a_tool_or_thinking_template_renders_tools_and_thinking_through_the_proven_template(
        built_example: Path, real_ollama: Any, toolchain: Any, tmp_path: Path, template: str) -> None:
    """The tiny model shipping a tool-calling (Qwen2.5) or thinking (Qwen3) chat template: modelkit's
    TEMPLATE renders tools and reasoning, shows Ollama so, and the server picks it, as predicted, over
    the GGUF's Jinja; the prompt the server renders for every tool and thinking conversation (with
    each think setting the template reads) is the Jinja's, JSON written as Go writes it."""
    from modelkit.chat_template.proof import GO_JSON_NOTE, THINKING, TOOLS, expected_prompt, think_switches_read
    from modelkit.chat_template.reference import RenderContext, compile_template, render_chat
    from modelkit.golang.template import go_tojson
    from modelkit.ollama.renderers import ollama_chat_body

    name = "tools" if "2.5" in template else "thinks"
    inherited, said = build_with_template(built_example, tmp_path, real_ollama.host, toolchain, template, name)
    assert GO_JSON_NOTE in inherited["proof"], inherited["proof"]
    real_ollama.api("/api/chat", {"model": f"{name}:q8_0", "messages": [{"role": "user", "content": PROMPT}],
                                  "stream": False, "options": {"temperature": 0, "num_predict": 4}})
    predicted = predict_engine(inherited["jinja"], inherited["template"])
    assert real_ollama.selections()[f"{name}:q8_0"] == predicted.selected == "go_template"
    assert f"registered as {name}:q8_0, {name}:latest" in said, said
    shown = real_ollama.api("/api/show", {"model": f"{name}:q8_0"})
    assert set(predicted.go_template or ()) <= set(shown["capabilities"]), shown["capabilities"]
    jinja = compile_template(inherited["jinja"], tojson=go_tojson)
    thinks = (None, True, False) if think_switches_read(inherited["jinja"]) else (None,)
    for conv in (*TOOLS, *THINKING):
        for think in thinks:
            ctx = RenderContext(bos_token="<s>", eos_token="</s>",
                                extra={} if think is None else {"enable_thinking": think})
            reference = expected_prompt(render_chat(jinja, conv.messages, ctx, tools=conv.tools), "<s>", True)
            reply = real_ollama.api("/api/chat", ollama_chat_body(f"{name}:q8_0", conv, think))
            assert reply["_debug_info"]["rendered_template"] == reference, (conv.name, think)


def test_a_template_go_cannot_write_tools_for_is_left_to_the_ggufs_jinja(
        built_example: Path, real_ollama: Any, toolchain: Any, tmp_path: Path) -> None:
    """Llama 3.1 writes tool definitions with ``tojson(indent=4)``, which Go's json cannot: its
    TEMPLATE renders plain chats, and the server renders the GGUF's Jinja natively, as predicted,
    sending its runner the Jinja's own prompt (up to the date: the runner's clock, not 26 Jul 2024)."""
    from modelkit.chat_template.proof import expected_prompt
    from modelkit.chat_template.reference import RenderContext, render_chat

    inherited, said = build_with_template(built_example, tmp_path, real_ollama.host, toolchain,
                                          "meta-llama-Llama-3.1-8B-Instruct.jinja", "native")
    before = len(real_ollama.runner_requests())
    messages = [{"role": "user", "content": PROMPT}]
    real_ollama.api("/api/chat", {"model": "native:q8_0", "messages": messages, "stream": False,
                                  "options": {"temperature": 0, "num_predict": 4}})
    predicted = predict_engine(inherited["jinja"], inherited["template"])
    assert real_ollama.selections()["native:q8_0"] == predicted.selected == "gguf_chat_template"
    assert "registered as native:q8_0, native:latest" in said and "Ollama renders the GGUF's Jinja (native" in said
    plan = json.loads(modelkit("plan", "--json", cwd=tmp_path / "p", ollama_host=real_ollama.host).stdout)
    assert {row["renderer"] for row in plan if row["target"].startswith("ollama:")} == {"gguf_chat_template"}
    shown = json.loads(modelkit("inspect", "native:q8_0", "--json", cwd=tmp_path / "p").stdout)["ollama_renders"]
    assert shown.startswith("the GGUF's own Jinja, through llama.cpp (Ollama ≥ 0.30's native chat mode")
    [prompt] = real_ollama.runner_prompts(since=before)
    reference = render_chat(inherited["jinja"], messages, RenderContext(bos_token="<s>", eos_token="</s>"))
    assert prompt.split("Today Date:")[0] == expected_prompt(reference, "<s>", True).split("Today Date:")[0]


def test_the_native_proof_sends_what_ollama_sends(built_example: Path, real_ollama: Any, toolchain: Any,
                                                  tmp_path: Path) -> None:
    """The body modelkit's native proof sends llama.cpp (``ollama_native_body``) is what the real
    Ollama sends its runner for the same tool and thinking conversations: the runner renders the
    two bodies to the same prompt. (A model with a long context, so that Ollama truncates nothing.)"""
    from gguf_files import write_tiny_gguf

    from modelkit.chat_template.proof.conversations import THINKING, TOOLS, ollama_message
    from modelkit.chat_template.proof.native import LlamaServer, ollama_native_body

    project = tmp_path / "p"
    project.mkdir()
    jinja = (toolchain.templates / "openbmb-MiniCPM5-1B.jinja").read_text()  # tools and thinking, left native
    gguf = write_tiny_gguf(project / "model.gguf", chat_template=jinja, context=8192)
    (project / "model.toml").write_text('name = "sent"\n[base]\ngguf = "./model.gguf"\n[quantize]\ntypes = []\n')
    build(project, real_ollama.host)
    with LlamaServer(toolchain.server, gguf, None) as server:
        for conv in (*TOOLS, *THINKING):
            before = len(real_ollama.runner_requests())
            try:
                real_ollama.api("/api/chat", {"model": "sent:f32", "messages": [ollama_message(m) for m in conv.messages],
                                              "stream": False, "tools": list(conv.tools) or None, "think": True,
                                              "options": {"num_predict": 1}})
            except urllib.error.HTTPError as e:  # a random model's token does not parse as a tool call:
                assert b"does not match the expected" in e.read()  # after the prompt was rendered
            assert real_ollama.runner_prompts(since=before) == [server.render(ollama_native_body(conv, True))], \
                conv.name
