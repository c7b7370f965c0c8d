"""Registration against a local server that stands in for Ollama (tests/ollama/fake_server.py),
once as Ollama 0.12 and once as today's Ollama: blob uploads by digest, create with streamed
progress, freshness from what the server reported after accepting the model, and failures."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import ollama
import pytest
from fake_server import FakeOllama, Fault
from gguf_files import write_tiny_gguf
from ollama_fixtures import (
    _local_only,
    fake,
    fake_cli,
    fake_current,
    free_port_host,
    gguf_dir,
    modelfile_of,
    unregister,
    write_modelfile,
)

from modelkit.core.hashing import sha256_file as file_digest
from modelkit.errors import ModelkitError, OllamaRefused, OllamaUnavailable, StepError, UserError
from modelkit.ollama.cli import register_with_cli
from modelkit.ollama.client import server_version
from modelkit.ollama.content import ModelContent
from modelkit.ollama.freshness import held_copy, registration_status, unexpected
from modelkit.ollama.register import RegistrationResult, RetryPolicy, register

NO_WAIT = RetryPolicy(attempts=3, first_delay=0.0)
MODEL = "support-bot:q4_k_m"
CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
WITH_TOOLS = ("{% if tools %}{{ tools | tojson }}{% endif %}{% for message in messages %}{{ message['content'] }}"
              "{% if message.tool_calls %}{{ message.tool_calls | tojson }}{% endif %}{% endfor %}")


@pytest.fixture
def content(gguf_dir: Path) -> ModelContent:
    return ModelContent(
        gguf=gguf_dir / "tiny.Q4_K_M.gguf",
        template="{{ if .System }}<|system|>\n{{ .System }}{{ end }}<|user|>\n{{ .Prompt }}<|assistant|>\n",
        system='You are a support agent.\nNever print """ or "quotes" at line ends"\n',
        parameters={"temperature": 0.7, "num_ctx": 8192, "stop": ["<|user|>", "\n\n"], "use_mmap": True},
        messages=(("user", "Is the printer on?"), ("assistant", "Yes.")),
        license=("MIT", "second license"),
    )


def blob_posts(fake: FakeOllama) -> int:
    return fake.log.count("POST", "/api/blobs/")


def fresh(result: RegistrationResult, host: str) -> bool:
    status = registration_status(result.model, result.copy, host=host)
    assert status or status.reason  # a stale status always says why
    return bool(status)


# --- the happy path ------------------------------------------------------------------------------


def test_register_uploads_by_digest_then_creates(fake: FakeOllama, content: ModelContent) -> None:
    seen: list[tuple[float | None, str]] = []
    result = register(MODEL, content, host=fake.host, progress=lambda *a: seen.append(a))
    digest = file_digest(content.gguf)
    assert result.uploaded == (digest,) and result.reused == ()
    assert result.statuses[-1] == "success"
    assert fake.blobs[digest] == content.gguf.read_bytes()
    stored = fake.model(MODEL)
    assert stored is not None
    assert stored.source_blob == digest
    assert stored.system == content.system and stored.template == content.template
    assert stored.parameters == {"temperature": 0.7, "num_ctx": 8192, "stop": ["<|user|>", "\n\n"], "use_mmap": True}
    assert stored.messages == [{"role": "user", "content": "Is the printer on?"}, {"role": "assistant", "content": "Yes."}]
    assert stored.license == ["MIT", "second license"]
    assert any(status.startswith("uploading") and fraction == 1.0 for fraction, status in seen)
    assert (None, "success") in seen
    # Ask before sending: HEAD, then POST.
    blob_requests = [(m, p) for m, p in fake.log.requests if p.startswith("/api/blobs/")]
    assert blob_requests == [("HEAD", f"/api/blobs/{digest}"), ("POST", f"/api/blobs/{digest}")]
    # What the server holds now is recorded, whatever it made of the GGUF.
    assert result.copy.model_blobs == (stored.model_blob,) and result.held == {digest: stored.model_blob}
    assert fresh(result, fake.host)


def test_blobs_ollama_already_has_are_not_sent_again(fake: FakeOllama, content: ModelContent) -> None:
    register(MODEL, content, host=fake.host)
    second = register("support-bot:other", content, host=fake.host)
    assert second.uploaded == () and second.reused == (file_digest(content.gguf),)
    assert blob_posts(fake) == 1


def test_known_digests_are_not_recomputed(fake: FakeOllama, content: ModelContent, monkeypatch: pytest.MonkeyPatch) -> None:
    digest = file_digest(content.gguf)
    import modelkit.ollama.register

    def no_hashing(path: Path) -> str:
        raise AssertionError(f"{path} was hashed again")

    monkeypatch.setattr(modelkit.ollama.register, "sha256_file", no_hashing)
    digests = {content.gguf: digest.removeprefix("sha256:")}  # a bare hex digest is accepted too
    assert fresh(register(MODEL, content, host=fake.host, digests=digests), fake.host)


def test_ollama_host_is_honoured(fake: FakeOllama, content: ModelContent, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", fake.host.removeprefix("http://"))
    result = register(MODEL, content)
    assert registration_status(MODEL, result.copy)
    assert server_version() == fake.version


def test_one_gguf_adapter_is_applied(fake: FakeOllama, gguf_dir: Path, content: ModelContent) -> None:
    """Every Ollama takes one GGUF adapter (``general.type = adapter``); there is no refusal of
    adapters in Ollama's history."""
    lora = gguf_dir / "adapter support.gguf"
    result = register("support-bot:q4_k_m-support", dataclasses.replace(content, adapters=(lora,)), host=fake.host)
    stored = fake.model("support-bot:q4_k_m-support")
    assert stored is not None and stored.adapter_blobs == [file_digest(lora)]
    assert result.copy.adapter_blobs == (file_digest(lora),) and fresh(result, fake.host)


def test_a_second_adapter_is_refused_before_contacting_ollama(fake: FakeOllama, gguf_dir: Path, content: ModelContent) -> None:
    lora = gguf_dir / "adapter support.gguf"
    with pytest.raises(UserError, match="one LoRA adapter per model"):
        register(MODEL, dataclasses.replace(content, adapters=(lora, lora)), host=fake.host)
    assert fake.log.requests == []


def test_typical_p_is_registered(fake: FakeOllama, content: ModelContent) -> None:
    result = register(MODEL, dataclasses.replace(content, parameters={"typical_p": 0.7}), host=fake.host)
    assert fake.model(MODEL).parameters == {"typical_p": 0.7}
    assert fresh(result, fake.host)


# --- freshness: what the server reported then, against what it reports now ------------------------


def test_freshness_follows_what_ollama_holds(fake: FakeOllama, content: ModelContent) -> None:
    assert held_copy(MODEL, host=fake.host) is None
    result = register(MODEL, content, host=fake.host)
    status = registration_status(MODEL, result.copy, host=fake.host)
    assert status and status.fresh and status.reason == ""
    assert registration_status("SUPPORT-BOT:Q4_K_M", result.copy, host=fake.host)  # Ollama's names ignore case
    assert registration_status(MODEL, None, host=fake.host).reason.startswith("no record")


@pytest.mark.parametrize(("change", "reason"), [
    ({"system": "Another prompt"}, "system prompt differs"),
    ({"template": "{{ .Prompt }}"}, "template differs"),
    ({"messages": [{"role": "user", "content": "Is it on?"}]}, "messages differ"),
    ({"license": "MIT"}, "license differs"),
    ({"parameters": {"temperature": 0.2}}, "parameters differ: "),
])
def test_a_model_recreated_behind_modelkits_back_is_stale(fake: FakeOllama, content: ModelContent,
                                                          change: dict[str, object], reason: str) -> None:
    result = register(MODEL, content, host=fake.host)
    request = {"template": content.template, "system": content.system, "license": list(content.license),
               "messages": [{"role": r, "content": c} for r, c in content.messages],
               "parameters": dict(content.parameters), **change}
    ollama.Client(host=fake.host).create(model=MODEL, files={"m.gguf": result.copy.model_blobs[0]}, **request)
    status = registration_status(MODEL, result.copy, host=fake.host)
    assert not status and reason in status.reason


def test_a_deleted_model_is_stale(fake: FakeOllama, content: ModelContent) -> None:
    result = register(MODEL, content, host=fake.host)
    assert unregister(MODEL, host=fake.host) is True
    assert unregister(MODEL, host=fake.host) is False
    assert registration_status(MODEL, result.copy, host=fake.host).reason == "not in Ollama"


def test_another_gguf_under_the_same_name_is_stale(fake: FakeOllama, content: ModelContent, gguf_dir: Path) -> None:
    result = register(MODEL, content, host=fake.host)
    register(MODEL, dataclasses.replace(content, gguf=gguf_dir / "tiny.Q8_0.gguf"), host=fake.host)
    assert registration_status(MODEL, result.copy, host=fake.host).reason.endswith("(model blob differs)")


def test_a_gguf_ollama_re_encodes_stays_fresh(fake_current: FakeOllama, content: ModelContent) -> None:
    """Issue 1: today's Ollama keeps ``llama-quantize ... COPY``'s output, not the uploaded GGUF;
    comparing its answer with the GGUF's digest would call the model stale forever."""
    result = register(MODEL, content, host=fake_current.host)
    assert result.copy.model_blobs[0] != file_digest(content.gguf)  # the server rewrote it
    assert fresh(result, fake_current.host)


def test_stops_ollama_adds_from_its_own_template_leave_it_fresh(fake: FakeOllama, tmp_path: Path) -> None:
    """Issue 2: when the GGUF's Jinja is near one of Ollama's named templates, create merges that
    template's stop list unless the request sets ``stop``, even when a TEMPLATE is sent."""
    gguf = write_tiny_gguf(tmp_path / "chatml.gguf", chat_template=CHATML)
    content = ModelContent(gguf=gguf, template="{{ .Prompt }}", parameters={"temperature": 0.5})
    result = register(MODEL, content, host=fake.host)
    assert "stop" in result.copy.parameters
    assert any(note.startswith("Ollama added parameter stop") for note in unexpected(result.copy, content,
                                                                                      content.parameters))
    assert fresh(result, fake.host)


def test_a_server_that_renders_the_ggufs_jinja_is_said_and_stays_fresh(fake_current: FakeOllama, tmp_path: Path) -> None:
    """Issue 3: today's Ollama answers show with the GGUF's Jinja when it has more capabilities
    (tools) than the Go TEMPLATE (``shouldPreferChatTemplate``)."""
    gguf = write_tiny_gguf(tmp_path / "tools.gguf", chat_template=WITH_TOOLS)
    content = ModelContent(gguf=gguf, template="{{ .Prompt }}", parameters={"stop": ["</s>"]})
    result = register(MODEL, content, host=fake_current.host)
    assert result.copy.template == WITH_TOOLS
    notes = unexpected(result.copy, content, content.parameters)
    assert notes == ["Ollama renders another template than the Modelfile TEMPLATE (the GGUF's own chat "
                     "template, in its native chat mode)"]
    assert fresh(result, fake_current.host)


def test_params_only_change_uploads_nothing_even_after_a_restart(fake: FakeOllama, content: ModelContent) -> None:
    """Issue 4: the uploaded GGUF is not referenced by the manifest when the server re-encoded it,
    and ``ollama serve`` prunes unreferenced blobs when it starts; the server's own copy is used."""
    first = register(MODEL, content, host=fake.host)
    tuned = dataclasses.replace(content, parameters={**content.parameters, "temperature": 0.1})
    second = register(MODEL, tuned, host=fake.host, held=first.held)
    assert second.uploaded == () and fake.log.bytes_uploaded == content.gguf.stat().st_size
    fake.restart(elapsed=2 * 3600)
    third = register(MODEL, dataclasses.replace(tuned, system="after a restart"), host=fake.host, held=second.held)
    assert third.uploaded == () and fake.log.bytes_uploaded == content.gguf.stat().st_size
    assert fresh(third, fake.host)


def test_a_held_copy_the_server_lost_is_uploaded_again(fake: FakeOllama, content: ModelContent) -> None:
    first = register(MODEL, content, host=fake.host)
    unregister(MODEL, host=fake.host)
    fake.restart(elapsed=2 * 3600)  # nothing references either blob now: both are pruned
    again = register(MODEL, content, host=fake.host, held=first.held)
    assert again.uploaded == (file_digest(content.gguf),) and fresh(again, fake.host)


def test_no_template_leaves_ollamas_choice_alone(fake: FakeOllama, content: ModelContent) -> None:
    assert fresh(register(MODEL, dataclasses.replace(content, template=None), host=fake.host), fake.host)


def test_an_empty_template_is_refused_because_ollama_ignores_it(fake: FakeOllama, content: ModelContent) -> None:
    with pytest.raises(UserError, match="ignores an empty TEMPLATE"):
        register(MODEL, dataclasses.replace(content, template=""), host=fake.host)
    assert fake.log.requests == []


def test_float_parameters_compare_at_ollamas_float32_precision(fake: FakeOllama, content: ModelContent) -> None:
    for value in (0.1, 1.0, 1e-7, 123456.789, 3.4e38):
        params = {"temperature": value, "num_ctx": 10**6, "num_predict": -2}
        result = register(MODEL, dataclasses.replace(content, parameters=params), host=fake.host)
        assert fresh(result, fake.host), value
        assert not unexpected(result.copy, content, params), value


def test_a_huge_system_prompt_registers_exactly(fake: FakeOllama, content: ModelContent) -> None:
    huge = dataclasses.replace(content, system=('Be "brief".\n' + "x" * 1000 + "\u200b") * 2000)  # ~2 MB
    result = register(MODEL, huge, host=fake.host)
    assert fake.model(MODEL).system == huge.system
    assert result.copy.system == huge.system and fresh(result, fake.host)


# --- failures -------------------------------------------------------------------------------------


def test_a_server_error_mid_upload_is_retried(fake: FakeOllama, content: ModelContent) -> None:
    fake.inject(Fault("POST", "/api/blobs/", "status", status=500, times=2))
    seen: list[str] = []
    result = register(MODEL, content, host=fake.host, retry=NO_WAIT, progress=lambda _, s: seen.append(s))
    assert result.statuses[-1] == "success"
    assert blob_posts(fake) == 3
    assert sum("trying again" in s for s in seen) == 2
    assert fresh(result, fake.host)


def test_a_connection_dropped_mid_upload_is_retried(fake: FakeOllama, content: ModelContent) -> None:
    fake.inject(Fault("POST", "/api/blobs/", "drop", after=1000))
    result = register(MODEL, content, host=fake.host, retry=NO_WAIT)
    assert blob_posts(fake) == 2
    assert fresh(result, fake.host)


def test_persistent_upload_failures_end_in_a_clear_error_and_nothing_registered(fake: FakeOllama, content: ModelContent) -> None:
    fake.inject(Fault("POST", "/api/blobs/", "status", status=503, times=99, message="disk is full"))
    with pytest.raises(StepError) as info:
        register(MODEL, content, host=fake.host, retry=NO_WAIT)
    assert "failed 3 times" in str(info.value) and "disk is full" in str(info.value)
    assert f"{MODEL} was not registered" in str(info.value)
    assert fake.log.count("POST", "/api/create") == 0
    assert held_copy(MODEL, host=fake.host) is None


def test_a_refused_upload_is_not_retried(fake: FakeOllama, content: ModelContent) -> None:
    fake.inject(Fault("POST", "/api/blobs/", "status", status=413, message="request entity too large"))
    with pytest.raises(StepError, match="refused the upload .*request entity too large"):
        register(MODEL, content, host=fake.host, retry=NO_WAIT)
    assert blob_posts(fake) == 1


def test_a_stale_digest_is_caught_by_ollamas_check(fake: FakeOllama, content: ModelContent) -> None:
    stale = {content.gguf: "sha256:" + "ab" * 32}
    with pytest.raises(StepError, match="changed after it was hashed"):
        register(MODEL, content, host=fake.host, digests=stale, retry=NO_WAIT)
    assert fake.model(MODEL) is None


def test_an_error_in_the_create_stream_is_not_claimed_as_done(fake: FakeOllama, content: ModelContent) -> None:
    fake.inject(Fault("POST", "/api/create", "stream_error", after=2, message="write manifest: no space left on device"))
    with pytest.raises(StepError, match="no space left on device"):
        register(MODEL, content, host=fake.host)
    assert held_copy(MODEL, host=fake.host) is None


def test_a_create_stream_cut_short_is_an_error(fake: FakeOllama, content: ModelContent) -> None:
    fake.inject(Fault("POST", "/api/create", "drop", after=1))
    with pytest.raises(StepError, match="lost the connection to Ollama while it was creating"):
        register(MODEL, content, host=fake.host)
    assert held_copy(MODEL, host=fake.host) is None
    assert fresh(register(MODEL, content, host=fake.host), fake.host)  # the next build simply registers again


def test_a_stream_that_ends_without_success_is_not_claimed_as_done(fake: FakeOllama, content: ModelContent) -> None:
    fake.inject(Fault("POST", "/api/create", "end", after=2))
    with pytest.raises(StepError, match="without saying success .*it was not registered"):
        register(MODEL, content, host=fake.host)


def test_a_cut_after_the_manifest_was_written_still_fails_the_step(fake: FakeOllama, content: ModelContent) -> None:
    """No receipt is written, so the next build registers again rather than trusting a lost reply."""
    statuses = register("probe", content, host=fake.host).statuses
    fake.inject(Fault("POST", "/api/create", "drop", after=statuses.index("writing manifest") + 1))
    with pytest.raises(StepError, match="may or may not hold"):
        register(MODEL, content, host=fake.host)
    assert held_copy(MODEL, host=fake.host) is not None  # Ollama did finish; the next build re-registers


def test_a_template_ollama_rejects_is_a_user_error(fake: FakeOllama, content: ModelContent) -> None:
    with pytest.raises(OllamaRefused, match="template error"):
        register(MODEL, dataclasses.replace(content, template="{{ .Prompt "), host=fake.host)


def test_unreachable_server_says_what_was_not_registered_and_how_to_fix_it(content: ModelContent) -> None:
    host = free_port_host()
    with pytest.raises(OllamaUnavailable) as info:
        register(MODEL, content, host=host)
    message = str(info.value)
    assert host in message and MODEL in message and "not registered" in message
    assert "ollama serve" in message and "OLLAMA_HOST" in message
    assert isinstance(info.value, ModelkitError)
    with pytest.raises(OllamaUnavailable):
        held_copy(MODEL, host=host)
    with pytest.raises(OllamaUnavailable):
        server_version(host=host)


def test_something_that_is_not_ollama_is_named(content: ModelContent) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class NotOllama(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotOllama)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        with pytest.raises(StepError, match="does not answer like Ollama"):
            register(MODEL, content, host=f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("model", "change", "message"),
    [
        ("Support Bot:q4", {}, "invalid Ollama model name 'Support Bot:q4'"),
        (MODEL, {"parameters": {"temprature": 0.7}}, "did you mean 'temperature'"),
        (MODEL, {"gguf": Path("/nonexistent/x.gguf")}, "does not exist"),
        (MODEL, {"adapters": (Path("a.gguf"), Path("b.gguf"))}, "one LoRA adapter per model"),
        (MODEL, {"messages": (("User", "hi"),)}, r"ollama.messages\[0\]: role 'User'"),
    ],
)
def test_bad_input_fails_before_contacting_ollama(
    fake: FakeOllama, content: ModelContent, model: str, change: dict[str, object], message: str
) -> None:
    with pytest.raises(UserError, match=message):
        register(model, dataclasses.replace(content, **change), host=fake.host)
    assert fake.log.requests == []


# --- the CLI path ---------------------------------------------------------------------------------


def test_cli_registration_from_a_modelfile_path_with_spaces(fake: FakeOllama, content: ModelContent, fake_cli: Path, tmp_path: Path) -> None:
    folder = tmp_path / "build dir" / "it's here"
    folder.mkdir(parents=True)
    modelfile = folder / "support bot q4_k_m.Modelfile"
    write_modelfile(modelfile, modelfile_of(content, header="spec: model.toml", base_dir=folder))
    lines: list[str] = []
    log = tmp_path / "logs" / "ollama create.log"
    register_with_cli(MODEL, modelfile, host=fake.host, ollama_bin=str(fake_cli), progress=lambda _, s: lines.append(s), log=log)
    assert lines[-1] == "success"
    assert "success" in log.read_text()
    stored = fake.model(MODEL)
    assert stored is not None and stored.system == content.system and stored.template == content.template


def test_cli_warns_that_ollamas_parser_is_slow_on_a_huge_modelfile(fake: FakeOllama, content: ModelContent, fake_cli: Path, tmp_path: Path) -> None:
    modelfile = tmp_path / "huge.Modelfile"
    huge = dataclasses.replace(content, system="Be brief, please.\n" * 40_000)  # ~0.7 MB
    write_modelfile(modelfile, modelfile_of(huge))
    lines: list[str] = []
    register_with_cli(MODEL, modelfile, host=fake.host, ollama_bin=str(fake_cli), progress=lambda _, s: lines.append(s))
    assert lines[0].startswith("warning: huge.Modelfile is 720 kB")
    assert fake.model(MODEL).system == huge.system


def test_cli_failure_carries_ollamas_message(fake: FakeOllama, content: ModelContent, fake_cli: Path, tmp_path: Path) -> None:
    modelfile = tmp_path / "M"
    write_modelfile(modelfile, modelfile_of(dataclasses.replace(content, template="{{ .Prompt "), ))
    with pytest.raises(StepError, match="template error") as info:
        register_with_cli(MODEL, modelfile, host=fake.host, ollama_bin=str(fake_cli))
    assert info.value.tail


def test_cli_with_no_server_is_unavailable(content: ModelContent, fake_cli: Path, tmp_path: Path) -> None:
    modelfile = tmp_path / "my Modelfile"
    write_modelfile(modelfile, modelfile_of(content))
    with pytest.raises(OllamaUnavailable) as info:
        register_with_cli(MODEL, modelfile, host=free_port_host(), ollama_bin=str(fake_cli))
    assert "ollama create support-bot:q4_k_m -f" in str(info.value)
    assert "'" + str(modelfile) + "'" in str(info.value)  # quoted for the shell: the path has a space


def test_cli_missing_is_a_user_error(content: ModelContent, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    modelfile = tmp_path / "M"
    write_modelfile(modelfile, modelfile_of(content))
    with pytest.raises(UserError, match="`ollama` command is not on PATH"):
        register_with_cli(MODEL, modelfile)
