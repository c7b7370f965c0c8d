"""Registration against a local server that stands in for Ollama (tests/ollama/fake_server.py):
blob uploads by digest, create with streamed progress, freshness asked of Ollama, and failures."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import ollama
import pytest

from fake_server import Fault, FakeOllama
from ollama_fixtures import _local_only, fake, fake_cli, fake_current, free_port_host, gguf_dir  # noqa: F401 (fixtures)
from modelkit.errors import ModelkitError, StepError, UserError
from ollama_fixtures import modelfile_of, unregister, write_modelfile
from modelkit.core.hashing import sha256_file as file_digest
from modelkit.errors import OllamaRefused, OllamaUnavailable
from modelkit.ollama.cli import register_with_cli
from modelkit.ollama.client import server_version
from modelkit.ollama.content import ModelContent
from modelkit.ollama.freshness import is_registered
from modelkit.ollama.register import RetryPolicy, register

NO_WAIT = RetryPolicy(attempts=3, first_delay=0.0)
MODEL = "support-bot:q4_k_m"


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
    assert stored.model_blob == digest
    assert stored.system == content.system and stored.template == content.template
    assert stored.parameters == {"temperature": 0.7, "num_ctx": 8192, "stop": ["<|user|>", "\n\n"], "use_mmap": True}
    assert stored.messages == [{"role": "user", "content": "Is the printer on?"}, {"role": "assistant", "content": "Yes."}]
    assert stored.license == ["MIT", "second license"]
    assert any(status.startswith("uploading") and fraction == 1.0 for fraction, status in seen)
    assert (None, "success") in seen
    # Ask before sending: HEAD, then POST.
    blob_requests = [(m, p) for m, p in fake.log.requests if p.startswith("/api/blobs/")]
    assert blob_requests == [("HEAD", f"/api/blobs/{digest}"), ("POST", f"/api/blobs/{digest}")]


def test_blobs_ollama_already_has_are_not_sent_again(fake: FakeOllama, content: ModelContent) -> None:
    register(MODEL, content, host=fake.host)
    second = register("support-bot:other", content, host=fake.host)
    assert second.uploaded == () and second.reused == (file_digest(content.gguf),)
    assert blob_posts(fake) == 1


def test_known_digests_are_not_recomputed(fake: FakeOllama, content: ModelContent, monkeypatch: pytest.MonkeyPatch) -> None:
    digest = file_digest(content.gguf)
    import modelkit.ollama.freshness
    import modelkit.ollama.register

    def no_hashing(path: Path) -> str:
        raise AssertionError(f"{path} was hashed again")

    monkeypatch.setattr(modelkit.ollama.register, "sha256_file", no_hashing)
    monkeypatch.setattr(modelkit.ollama.freshness, "sha256_file", no_hashing)
    digests = {content.gguf: digest.removeprefix("sha256:")}  # a bare hex digest is accepted too
    register(MODEL, content, host=fake.host, digests=digests)
    assert is_registered(MODEL, content, host=fake.host, digests=digests)


def test_ollama_host_is_honoured(fake: FakeOllama, content: ModelContent, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", fake.host.removeprefix("http://"))
    register(MODEL, content)
    assert is_registered(MODEL, content)
    assert server_version() == fake.version


def test_adapter_variant_on_an_ollama_that_applies_adapters(fake: FakeOllama, gguf_dir: Path, content: ModelContent) -> None:
    lora = gguf_dir / "adapter support.gguf"
    with_adapter = dataclasses.replace(content, adapters=(lora,))
    register("support-bot:q4_k_m-support", with_adapter, host=fake.host)
    stored = fake.model("support-bot:q4_k_m-support")
    assert stored is not None and stored.adapter_blobs == [file_digest(lora)]
    assert is_registered("support-bot:q4_k_m-support", with_adapter, host=fake.host)
    assert is_registered("support-bot:q4_k_m-support", content, host=fake.host).reason == "adapter differs"


def test_adapter_refused_by_current_ollama_is_a_clear_error(fake_current: FakeOllama, gguf_dir: Path, content: ModelContent) -> None:
    with_adapter = dataclasses.replace(content, adapters=(gguf_dir / "adapter support.gguf",))
    with pytest.raises(OllamaRefused) as info:
        register("support-bot:q4_k_m-support", with_adapter, host=fake_current.host)
    assert "LoRA adapters are no longer supported" in str(info.value)
    assert "llama-export-lora" in str(info.value)
    assert fake_current.model("support-bot:q4_k_m-support") is None


# --- freshness is Ollama's answer ----------------------------------------------------------------


def test_freshness_follows_what_ollama_holds(fake: FakeOllama, content: ModelContent, gguf_dir: Path) -> None:
    assert is_registered(MODEL, content, host=fake.host).reason == "not in Ollama"
    register(MODEL, content, host=fake.host)
    status = is_registered(MODEL, content, host=fake.host)
    assert status and status.fresh and status.reason == ""
    assert is_registered("SUPPORT-BOT:Q4_K_M", content, host=fake.host)  # Ollama's names ignore case

    changes = {
        "system prompt differs": dataclasses.replace(content, system="Another prompt"),
        "template differs": dataclasses.replace(content, template="{{ .Prompt }}"),
        "messages differ": dataclasses.replace(content, messages=(("user", "Is the printer on?"),)),
        "license differs": dataclasses.replace(content, license=("MIT",)),
        "parameters differ: temperature": dataclasses.replace(content, parameters={**content.parameters, "temperature": 0.2}),
        "parameters differ: top_k": dataclasses.replace(content, parameters={**content.parameters, "top_k": 40}),
        "parameters differ: stop": dataclasses.replace(content, parameters={**content.parameters, "stop": ["\n\n", "<|user|>"]}),
    }
    for reason, changed in changes.items():
        assert is_registered(MODEL, changed, host=fake.host).reason == reason
    other_gguf = dataclasses.replace(content, gguf=gguf_dir / "tiny.Q8_0.gguf")
    assert is_registered(MODEL, other_gguf, host=fake.host).reason.startswith("model blob differs")


def test_no_template_leaves_ollamas_choice_alone(fake: FakeOllama, content: ModelContent) -> None:
    plain = dataclasses.replace(content, template=None)
    register(MODEL, plain, host=fake.host)
    assert is_registered(MODEL, plain, host=fake.host)


def test_a_model_changed_or_deleted_behind_modelkits_back_is_stale(fake: FakeOllama, content: ModelContent) -> None:
    register(MODEL, content, host=fake.host)
    ollama.Client(host=fake.host).create(
        model=MODEL, files={"x.gguf": file_digest(content.gguf)}, template=content.template, system="edited"
    )
    assert is_registered(MODEL, content, host=fake.host).reason == "system prompt differs"
    assert unregister(MODEL, host=fake.host) is True
    assert unregister(MODEL, host=fake.host) is False
    assert is_registered(MODEL, content, host=fake.host).reason == "not in Ollama"


def test_params_only_change_re_registers_without_sending_any_gguf(fake: FakeOllama, content: ModelContent) -> None:
    register(MODEL, content, host=fake.host)
    tuned = dataclasses.replace(content, parameters={**content.parameters, "temperature": 0.1})
    assert not is_registered(MODEL, tuned, host=fake.host)
    result = register(MODEL, tuned, host=fake.host)
    assert result.uploaded == ()
    assert blob_posts(fake) == 1
    assert is_registered(MODEL, tuned, host=fake.host)


def test_float_parameters_compare_at_ollamas_float32_precision(fake: FakeOllama, content: ModelContent) -> None:
    for value in (0.1, 1.0, 1e-7, 123456.789, 3.4e38):
        params = {"temperature": value, "num_ctx": 10**6, "num_predict": -2}
        tuned = dataclasses.replace(content, parameters=params)
        register(MODEL, tuned, host=fake.host)
        assert is_registered(MODEL, tuned, host=fake.host), value


def test_a_huge_system_prompt_registers_exactly(fake: FakeOllama, content: ModelContent) -> None:
    huge = dataclasses.replace(content, system=('Be "brief".\n' + "x" * 1000 + "\u200b") * 2000)  # ~2 MB
    register(MODEL, huge, host=fake.host)
    assert fake.model(MODEL).system == huge.system  # type: ignore[union-attr]
    assert is_registered(MODEL, huge, host=fake.host)


# --- the stand-in rejects what Ollama rejects -----------------------------------------------------


def test_the_fake_server_rejects_what_ollama_rejects(fake: FakeOllama, content: ModelContent) -> None:
    client = ollama.Client(host=fake.host)
    data = content.gguf.read_bytes()
    good = "sha256:" + hashlib.sha256(data).hexdigest()
    wrong = "sha256:" + "0" * 64
    with pytest.raises(ollama.ResponseError, match="digest mismatch") as info:
        client._request_raw("POST", f"/api/blobs/{wrong}", content=data)
    assert info.value.status_code == 400
    with pytest.raises(ollama.ResponseError) as info:
        client._request_raw("HEAD", "/api/blobs/sha256:not-a-digest")
    assert info.value.status_code == 400
    with pytest.raises(ollama.ResponseError, match="invalid model name"):
        client.create(model="Support Bot", files={"m.gguf": good})
    with pytest.raises(ollama.ResponseError, match="file path must be relative"):
        client.create(model="bot", files={"/abs/m.gguf": good})
    with pytest.raises(ollama.ResponseError, match="no such file"):  # a blob never uploaded
        client.create(model="bot", files={"m.gguf": good})
    assert client.create_blob(content.gguf) == good
    assert client.create(model="bot", files={"m.gguf": good}, stream=False).status == "success"
    with pytest.raises(ollama.ResponseError, match="typical_p"):
        client.create(model="bot", files={"m.gguf": good}, parameters={"typical_p": 0.5})
    with pytest.raises(ollama.ResponseError) as info:
        client.show("nothing-here")
    assert info.value.status_code == 404


# --- failures -------------------------------------------------------------------------------------


def test_a_server_error_mid_upload_is_retried(fake: FakeOllama, content: ModelContent) -> None:
    fake.inject(Fault("POST", "/api/blobs/", "status", status=500, times=2))
    seen: list[str] = []
    result = register(MODEL, content, host=fake.host, retry=NO_WAIT, progress=lambda _, s: seen.append(s))
    assert result.statuses[-1] == "success"
    assert blob_posts(fake) == 3
    assert sum("trying again" in s for s in seen) == 2
    assert is_registered(MODEL, content, host=fake.host)


def test_a_connection_dropped_mid_upload_is_retried(fake: FakeOllama, content: ModelContent) -> None:
    fake.inject(Fault("POST", "/api/blobs/", "drop", after=1000))
    register(MODEL, content, host=fake.host, retry=NO_WAIT)
    assert blob_posts(fake) == 2
    assert is_registered(MODEL, content, host=fake.host)


def test_persistent_upload_failures_end_in_a_clear_error_and_nothing_registered(fake: FakeOllama, content: ModelContent) -> None:
    fake.inject(Fault("POST", "/api/blobs/", "status", status=503, times=99, message="disk is full"))
    with pytest.raises(StepError) as info:
        register(MODEL, content, host=fake.host, retry=NO_WAIT)
    assert "failed 3 times" in str(info.value) and "disk is full" in str(info.value)
    assert f"{MODEL} was not registered" in str(info.value)
    assert fake.log.count("POST", "/api/create") == 0
    assert not is_registered(MODEL, content, host=fake.host)


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
    assert not is_registered(MODEL, content, host=fake.host)


def test_a_create_stream_cut_short_is_an_error(fake: FakeOllama, content: ModelContent) -> None:
    fake.inject(Fault("POST", "/api/create", "drop", after=1))
    with pytest.raises(StepError, match="lost the connection to Ollama while it was creating"):
        register(MODEL, content, host=fake.host)
    assert not is_registered(MODEL, content, host=fake.host)
    register(MODEL, content, host=fake.host)  # the next build simply registers again
    assert is_registered(MODEL, content, host=fake.host)


def test_a_stream_that_ends_without_success_is_not_claimed_as_done(fake: FakeOllama, content: ModelContent) -> None:
    fake.inject(Fault("POST", "/api/create", "end", after=2))
    with pytest.raises(StepError, match="without saying success .*it was not registered"):
        register(MODEL, content, host=fake.host)


def test_a_cut_after_the_manifest_was_written_is_found_fresh_by_asking(fake: FakeOllama, content: ModelContent) -> None:
    statuses = register("probe", content, host=fake.host).statuses
    fake.inject(Fault("POST", "/api/create", "drop", after=statuses.index("writing manifest") + 1))
    with pytest.raises(StepError, match="may or may not hold"):
        register(MODEL, content, host=fake.host)
    assert is_registered(MODEL, content, host=fake.host)  # Ollama's answer, not the lost reply, decides


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
        is_registered(MODEL, content, host=host)
    with pytest.raises(OllamaUnavailable):
        server_version(host=host)


def test_something_that_is_not_ollama_is_named(content: ModelContent) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    import threading

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
        register(model, dataclasses.replace(content, **change), host=fake.host)  # type: ignore[arg-type]
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
    # Both paths register the same model: what the CLI made is fresh for the API's check.
    status = is_registered(MODEL, content, host=fake.host)
    assert status, status.reason


def test_cli_warns_that_ollamas_parser_is_slow_on_a_huge_modelfile(fake: FakeOllama, content: ModelContent, fake_cli: Path, tmp_path: Path) -> None:
    modelfile = tmp_path / "huge.Modelfile"
    huge = dataclasses.replace(content, system="Be brief, please.\n" * 40_000)  # ~0.7 MB
    write_modelfile(modelfile, modelfile_of(huge))
    lines: list[str] = []
    register_with_cli(MODEL, modelfile, host=fake.host, ollama_bin=str(fake_cli), progress=lambda _, s: lines.append(s))
    assert lines[0].startswith("warning: huge.Modelfile is 0.7 MB")
    assert is_registered(MODEL, huge, host=fake.host)


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
