"""The stand-in Ollama (fake_server.py) tested on its own, over HTTP with httpx, never through
modelkit: each test names the Ollama function whose behaviour it pins down."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import ollama_names as names
import ollama_templates as tpl
import pytest
from fake_server import BLOBS_DIR, FakeOllama, Fault
from gguf_files import write_tiny_gguf as write_gguf
from gguf_files import write_tiny_lora
from ollama_fixtures import _local_only
from ollama_go import quote, sharp_v

HERE = Path(__file__).resolve().parent
CHATML = next(j for _, n, j in tpl.INDEX if n == "chatml")
CHATML_STOP = ["<|im_start|>", "<|im_end|>"]
# A Jinja far from every index entry (no named template), that mentions tools.
TOOLS_JINJA = "{% for m in messages %}{{ m.content }}{% endfor %}{% if tools %}{{ tools | tojson }}{% endif %}"
# examples/tiny's template: Ollama's full index puts it nearest chatml (entry 5, distance 39;
# next phi-3 at 42), so real Ollama merges chatml's stops into such a model.
TINY_JINJA = ("{{ bos_token }}{% for message in messages %}{{ '<|' + message['role'] + '|>\n' + message['content'] "
              "+ eos_token + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}")


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Api:
    """A bare HTTP client for the stand-in (no modelkit, no proxies)."""

    def __init__(self, fake: FakeOllama) -> None:
        self.fake = fake
        self.http = httpx.Client(base_url=fake.host, trust_env=False, timeout=60)

    def upload(self, path: Path) -> str:
        data = path.read_bytes()
        d = digest_of(data)
        assert self.http.post(f"/api/blobs/{d}", content=data).status_code in (200, 201)
        return d

    def create(self, **body: Any) -> tuple[int, list[dict[str, Any]]]:
        r = self.http.post("/api/create", json=body)
        if r.headers.get("content-type", "").startswith("application/x-ndjson"):
            return r.status_code, [json.loads(line) for line in r.text.splitlines() if line]
        return r.status_code, [r.json()] if r.content else []

    def ok(self, **body: Any) -> list[str]:
        status, lines = self.create(**body)
        assert status == 200 and lines[-1] == {"status": "success"}, lines
        return [line["status"] for line in lines]

    def show(self, model: str) -> httpx.Response:
        return self.http.post("/api/show", json={"model": model})

    def delete(self, model: str) -> httpx.Response:
        return self.http.request("DELETE", "/api/delete", json={"model": model})


@pytest.fixture
def old() -> Iterator[Api]:
    with FakeOllama(generation="0.12") as fake:
        yield Api(fake)


@pytest.fixture
def current(toolchain) -> Iterator[Api]:
    with FakeOllama(generation="current", quantize=toolchain.quantize) as fake:
        yield Api(fake)


def llama_quantize(toolchain, src: Path, dst: Path, kind: str) -> bytes:
    subprocess.run([str(toolchain.quantize), "--allow-requantize", str(src), str(dst), kind],
                   check=True, capture_output=True)
    return dst.read_bytes()


# --- 1. the model blob is rewritten on create ----------------------------------------------------


@pytest.mark.toolchain
def test_create_stores_what_llama_quantize_copy_writes(toolchain, tmp_path: Path) -> None:
    """``createModel`` -> ``copyLayerWithLlamaQuantize`` / ``rewriteLayerWithLlamaQuantize``
    (server/create.go, server/quantization.go ``llamaQuantizeArgs``): a text-only GGUF from files
    is re-encoded with ``llama-quantize --allow-requantize IN OUT COPY`` and the output is the model
    layer; GGUFs llama-quantize wrote come back byte-identical; one with embedded compatibility
    tensors (``hasEmbeddedCompatibilityTensors``: ``v.`` ...) is kept as is; 0.12 never rewrites."""
    f32 = write_gguf(tmp_path / "f32.gguf")
    copied = llama_quantize(toolchain, f32, tmp_path / "f32.copy.gguf", "COPY")
    q8 = tmp_path / "q8.gguf"
    q8_bytes = llama_quantize(toolchain, f32, q8, "Q8_0")
    assert llama_quantize(toolchain, q8, tmp_path / "q8.copy.gguf", "COPY") == q8_bytes
    assert copied != f32.read_bytes()
    vision = write_gguf(tmp_path / "vision.gguf", extra_tensors=["v.patch_embd.weight"])

    with FakeOllama(generation="current", quantize=toolchain.quantize) as fake:
        api = Api(fake)
        sent = api.upload(f32)
        statuses = api.ok(model="bot:f32", files={"f32.gguf": sent})
        stored = fake.model("bot:f32")
        assert stored is not None and stored.source_blob == sent
        assert stored.model_blob == digest_of(copied) != sent
        assert fake.blobs[stored.model_blob] == copied
        assert "verifying conversion" in statuses and f"creating new layer {stored.model_blob}" in statuses
        shown = api.show("bot:f32").json()
        assert f"\nFROM {BLOBS_DIR}/{stored.model_blob.replace(':', '-')}\n" in shown["modelfile"]
        assert api.http.head(f"/api/blobs/{sent}").status_code == 200  # the upload stays (until pruned)

        api.ok(model="bot:q8", files={"q8.gguf": api.upload(q8)})
        assert fake.model("bot:q8").model_blob == digest_of(q8_bytes)
        api.ok(model="bot:vision", files={"vision.gguf": api.upload(vision)})
        assert fake.model("bot:vision").model_blob == digest_of(vision.read_bytes())

    with FakeOllama(generation="0.12") as fake:
        api = Api(fake)
        sent = api.upload(f32)
        api.ok(model="bot:f32", files={"f32.gguf": sent})
        assert fake.model("bot:f32").model_blob == sent


# --- 2. stop values added from the named template --------------------------------------------------


def test_named_template_stops_are_merged_unless_the_request_sets_stop(old: Api, tmp_path: Path) -> None:
    """``detectChatTemplate`` (server/model.go) with ``template.Named`` (template/template.go:
    nearest index entry, Levenshtein distance < 100) and ``setParameters`` (server/create.go): the
    named template's ``stop`` joins the request's parameters unless they set ``stop``, also when a
    TEMPLATE is sent (which replaces the detected template)."""
    api, fake = old, old.fake
    chatml = api.upload(write_gguf(tmp_path / "chatml.gguf", chat_template=CHATML))
    statuses = api.ok(model="a", files={"m.gguf": chatml})
    assert "using autodetected template chatml" in statuses
    a = fake.model("a")
    assert a is not None and a.template == tpl.GOTMPL["chatml"] and a.parameters == {"stop": CHATML_STOP}

    api.ok(model="b", files={"m.gguf": chatml}, template="{{ .Prompt }}", parameters={"temperature": 0.5})
    b = fake.model("b")
    assert b is not None and b.template == "{{ .Prompt }}"
    assert b.parameters == {"temperature": 0.5, "stop": CHATML_STOP}

    api.ok(model="c", files={"m.gguf": chatml}, parameters={"stop": ["</s>"]})
    assert fake.model("c").parameters == {"stop": ["</s>"]}

    far = api.upload(write_gguf(tmp_path / "far.gguf", chat_template=TOOLS_JINJA))
    api.ok(model="d", files={"m.gguf": far})
    assert fake.model("d").parameters == {} and fake.model("d").template == ""

    tiny = api.upload(write_gguf(tmp_path / "tiny.gguf", chat_template=TINY_JINJA))
    api.ok(model="e", files={"m.gguf": tiny}, template="{{ .Prompt }}")
    assert fake.model("e").parameters == {"stop": CHATML_STOP}
    assert tpl.levenshtein(TINY_JINJA, CHATML) == 39


@pytest.mark.toolchain
def test_gemma4_gets_its_stop_renderer_and_parser(current: Api, tmp_path: Path) -> None:
    """``createModel``'s architecture switch (server/create.go): ``gemma4`` sets renderer and
    parser ``gemma4`` and ``stop <turn|>`` unless the request has ``stop``; show prints them as
    RENDERER/PARSER lines (``Model.String``) and the gemma4 parser's tools/thinking capabilities
    (``parserCapabilities``). (The ``v.`` tensor spares it the COPY, as real gemma4 GGUFs.)"""
    api, fake = current, current.fake
    g4 = api.upload(write_gguf(tmp_path / "g4.gguf", arch="gemma4", extra_tensors=["v.blk.0.weight"]))
    api.ok(model="g4", files={"g4.gguf": g4}, template="{{ .Prompt }}")
    stored = fake.model("g4")
    assert stored is not None and stored.parameters == {"stop": ["<turn|>"]}
    assert stored.config["renderer"] == stored.config["parser"] == "gemma4"
    shown = api.show("g4").json()
    assert "\nRENDERER gemma4\nPARSER gemma4\n" in shown["modelfile"]
    assert "renderer" not in shown  # GetModelInfo never fills ShowResponse.Renderer
    assert shown["capabilities"] == ["completion", "tools", "thinking"]
    api.ok(model="g4b", files={"g4.gguf": g4}, parameters={"stop": ["<eos>"]})
    assert fake.model("g4b").parameters == {"stop": ["<eos>"]}


# --- 3. show in native chat mode -------------------------------------------------------------------


@pytest.mark.toolchain
def test_show_answers_with_the_gguf_jinja_when_ollama_would_render_with_it(toolchain, tmp_path: Path) -> None:
    """``GetModel``'s ``PreferChatTemplate`` (``shouldPreferChatTemplate``: the GGUF template has
    more capabilities), ``shouldUseGoTemplate`` / ``OLLAMA_GO_TEMPLATE`` and ``selectedModelTemplate``
    (server/images.go, server/routes.go): in native mode show's ``template`` is the Jinja and its
    capabilities are the Jinja's; the Modelfile's TEMPLATE stays the Go template."""
    gguf_path = write_gguf(tmp_path / "tools.gguf", chat_template=TOOLS_JINJA)
    for go_template, want_jinja in ((None, True), (True, False), (False, True)):
        with FakeOllama(generation="current", quantize=toolchain.quantize, go_template=go_template) as fake:
            api = Api(fake)
            d = api.upload(gguf_path)
            api.ok(model="m", files={"m.gguf": d}, template="{{ .Prompt }}")
            shown = api.show("m").json()
            assert shown["template"] == (TOOLS_JINJA if want_jinja else "{{ .Prompt }}"), go_template
            assert shown["capabilities"] == (["tools", "completion"] if want_jinja else ["completion"])
            assert "\nTEMPLATE {{ .Prompt }}\n" in shown["modelfile"]
            assert "tokenizer.chat_template" not in shown["model_info"]
            api.ok(model="plain", files={"m.gguf": d})  # no TEMPLATE layer at all: native, whatever the env
            assert api.show("plain").json()["template"] == TOOLS_JINJA
            api.ok(model="gotools", files={"m.gguf": d}, template="{{ .Prompt }}{{ .Tools }}")
            # Same capabilities and no tool round trip in the Jinja: the Go template stays.
            assert api.show("gotools").json()["template"] == (TOOLS_JINJA if go_template is False else
                                                             "{{ .Prompt }}{{ .Tools }}")
    with FakeOllama(generation="0.12") as fake:
        api = Api(fake)
        api.ok(model="m", files={"m.gguf": api.upload(gguf_path)}, template="{{ .Prompt }}")
        assert api.show("m").json()["template"] == "{{ .Prompt }}"


# --- 4. pruning on restart -------------------------------------------------------------------------


@pytest.mark.toolchain
def test_restart_prunes_unreferenced_blobs_older_than_an_hour(toolchain, tmp_path: Path) -> None:
    """``Serve`` -> ``PruneLayers`` / ``deleteUnusedLayers`` (server/routes.go, server/images.go):
    blobs no manifest references are removed at start, except (current) those younger than
    ``layerPruneGracePeriod``; ``OLLAMA_NOPRUNE`` turns it off. A replaced model's own unreferenced
    layers go at once (``CreateHandler`` -> ``Manifest.RemoveLayers``), unless NOPRUNE."""
    f32 = write_gguf(tmp_path / "f32.gguf")
    with FakeOllama(generation="current", quantize=toolchain.quantize) as fake:
        api = Api(fake)
        sent = api.upload(f32)
        api.ok(model="m", files={"m.gguf": sent}, system="first")
        first_system = next(x.digest for x in fake.model("m").layers if x.media_type.endswith(".system"))
        api.ok(model="m", files={"m.gguf": sent}, system="second")
        assert first_system not in fake.blobs  # RemoveLayers of the replaced manifest
        assert fake.restart() == []  # the upload is minutes old: spared
        assert api.http.head(f"/api/blobs/{sent}").status_code == 200
        pruned = fake.restart(elapsed=2 * 3600)
        assert pruned == [sent]  # only the upload: the COPY output and the other layers are in use
        assert api.http.head(f"/api/blobs/{sent}").status_code == 404
        assert api.show("m").status_code == 200

    with FakeOllama(generation="current", quantize=toolchain.quantize, noprune=True) as fake:
        api = Api(fake)
        sent = api.upload(f32)
        api.ok(model="m", files={"m.gguf": sent}, system="first")
        first_system = next(x.digest for x in fake.model("m").layers if x.media_type.endswith(".system"))
        api.ok(model="m", files={"m.gguf": sent}, system="second")
        assert first_system in fake.blobs
        assert fake.restart(elapsed=2 * 3600) == []

    with FakeOllama(generation="0.12") as fake:  # no grace period in 0.12
        api = Api(fake)
        stray = api.upload(f32)
        assert fake.restart() == [stray]


# --- 5. cloud / local tags -------------------------------------------------------------------------


@pytest.mark.toolchain
def test_cloud_and_local_tags_are_reinterpreted_by_show_and_delete(current: Api, tmp_path: Path) -> None:
    """``modelref.ParseRef`` / ``NormalizePullName`` (internal/modelref) as ``ShowHandler``
    (``parseAndValidateModelRef``) and ``DeleteHandler`` (``parseNormalizePullModelRef``) use them,
    while ``CreateHandler`` parses the name literally (``model.ParseName``)."""
    api, fake = current, current.fake
    d = api.upload(write_gguf(tmp_path / "m.gguf", extra_tensors=["v.x.weight"]))
    for tag in ("cloud", "local", "q4-cloud", "latest"):
        api.ok(model=f"bot:{tag}", files={"m.gguf": d}, system=tag)
        assert fake.model(f"bot:{tag}") is not None  # stored under the literal tag

    r = api.show("bot:cloud")  # goes to ollama.com (offline here), not to the local bot:cloud
    assert r.status_code == 502 and "ollama.com" in r.json()["error"]
    assert api.show("bot:q4-cloud").status_code == 502
    assert api.show("bot:local").json()["system"] == "latest"  # :local means bot (:latest)
    assert api.show("BOT:LOCAL").json()["system"] == "latest"
    fake.cloud_models["bot"] = {"remote_model": "bot", "remote_host": "https://ollama.com:443"}
    assert api.show("bot:cloud").json() == fake.cloud_models["bot"]

    assert api.delete("bot:local").status_code == 200  # deletes bot:latest
    assert fake.model("bot:latest") is None and fake.model("bot:local") is not None
    assert api.delete("bot:q4:cloud").status_code == 200  # the legacy name bot:q4-cloud
    assert fake.model("bot:q4-cloud") is None
    r = api.delete("bot:cloud:local")
    assert r.status_code == 400 and r.json()["error"] == 'use either :local or :cloud, not both: "bot:cloud:local"'
    with FakeOllama(generation="current", quantize=fake.quantize, no_cloud=True) as off:
        r = Api(off).show("bot:cloud")
        assert r.status_code == 403 and r.json()["error"].startswith("ollama cloud is disabled")


def test_0_12_takes_cloud_tags_literally(old: Api, tmp_path: Path) -> None:
    """v0.12.6's ``ShowHandler`` / ``DeleteHandler``: ``model.ParseName`` only."""
    d = old.upload(write_gguf(tmp_path / "m.gguf"))
    old.ok(model="bot:cloud", files={"m.gguf": d}, system="here")
    assert old.show("bot:cloud").json()["system"] == "here"
    assert old.show("bot:local").status_code == 404


# --- 6. errors -------------------------------------------------------------------------------------


def test_create_errors_arrive_as_ollama_sends_them(old: Api, tmp_path: Path) -> None:
    """``CreateHandler`` (status codes before streaming), ``streamResponse`` (an error after the
    first line is an ``{"error"}`` line under HTTP 200) and ``waitForStream`` (``stream: false``:
    the status the error carries, else 500) in server/create.go and server/routes.go."""
    api = old
    model = api.upload(write_gguf(tmp_path / "m.gguf"))
    missing = "sha256:" + "ab" * 32
    assert api.create(model="Bad Name", files={"m.gguf": model}) == (400, [{"error": "invalid model name"}])
    assert api.create(model="bot", files={"/abs.gguf": model}) == (400, [{"error": "file path must be relative"}])
    assert api.create(model="bot") == (400, [{"error": "neither 'from' or 'files' was specified"}])
    status, lines = api.create(model="bot", files={"m.gguf": missing})
    assert status == 200 and lines[0] == {"status": "parsing GGUF"}
    assert lines[1] == {"error": f"open {BLOBS_DIR}/{missing.replace(':', '-')}: no such file or directory"}
    assert api.create(model="bot", files={"m.gguf": missing}, stream=False)[0] == 500
    status, lines = api.create(model="bot", files={"m.gguf": model}, template="{{ .Prompt ")
    assert status == 200 and lines[-1] == {"error": "template error: template: :1: unclosed action"}
    assert api.create(model="bot", files={"m.gguf": model}, template="{{ .Prompt ", stream=False) == \
        (400, [{"error": "template error: template: :1: unclosed action"}])
    (tmp_path / "text.gguf").write_bytes(b"not a gguf at all")
    text = api.upload(tmp_path / "text.gguf")
    status, lines = api.create(model="bot", files={"m.gguf": text})
    assert status == 200 and lines == [{"status": "parsing GGUF"}, {"error": "supplied file was not in GGUF format"}]
    assert api.create(model="bot", files={"m.gguf": text}, stream=False)[0] == 400

    api.ok(model="bot", files={"m.gguf": model}, template="", parameters={"typical_p": 0.5})
    shown = api.show("bot").json()
    assert shown["template"] == "{{ .Prompt }}"  # "" is no TEMPLATE (r.Template != "")
    assert shown["parameters"] == "typical_p                      0.5"
    assert not any(x.media_type.endswith(".template") for x in api.fake.model("bot").layers)

    lora1 = api.upload(write_tiny_lora(tmp_path / "a.gguf", seed=1))
    lora2 = api.upload(write_tiny_lora(tmp_path / "b.gguf", seed=2))
    api.ok(model="bot:lora", files={"m.gguf": model}, adapters={"a.gguf": lora1})
    assert api.fake.model("bot:lora").adapter_blobs == [lora1]
    status, lines = api.create(model="bot:two", files={"m.gguf": model}, adapters={"a.gguf": lora1, "b.gguf": lora2})
    assert status == 200 and lines[-1] == {"error": "only one adapter is currently supported"}
    assert api.create(model="bot:two", files={"m.gguf": model}, adapters={"a.gguf": lora1, "b.gguf": lora2},
                      stream=False) == (400, [{"error": "only one adapter is currently supported"}])
    assert api.fake.model("bot:two") is None


@pytest.mark.toolchain
def test_current_refuses_empty_digests_before_streaming(current: Api, tmp_path: Path) -> None:
    """Current ``CreateHandler``: ``digest == ""`` in files or adapters is a 400 before the stream
    (``manifest.ErrInvalidDigestFormat``); v0.12.6 had no such check."""
    assert current.create(model="bot", files={"m.gguf": ""}) == (400, [{"error": "invalid digest format"}])
    assert current.create(model="bot", files={"m.gguf": "x"}, adapters={"a.gguf": ""}) == \
        (400, [{"error": "invalid digest format"}])


def test_stream_faults_and_blob_rules(old: Api, tmp_path: Path) -> None:
    """``CreateBlobHandler`` (server/routes.go; ``manifest.NewLayer`` keeps what it received under
    the digest it hashes to, even when that is not the digest asked for) and the injected faults."""
    api, fake = old, old.fake
    data = write_gguf(tmp_path / "m.gguf").read_bytes()
    good, wrong = digest_of(data), "sha256:" + "0" * 64
    r = api.http.post(f"/api/blobs/{wrong}", content=data)
    assert r.status_code == 400 and r.json()["error"] == f'digest mismatch, expected "{wrong}", got "{good}"'
    assert api.http.head(f"/api/blobs/{good}").status_code == 200  # stored anyway
    assert api.http.head(f"/api/blobs/{good.upper().replace('SHA256', 'sha256')}").status_code == 404
    assert api.http.head(f"/api/blobs/{good.replace(':', '-')}").status_code == 200
    assert api.http.head("/api/blobs/sha256:nope").status_code == 400
    fake.inject(Fault("POST", "/api/create", "drop", after=2))
    with pytest.raises(httpx.HTTPError):
        api.create(model="cut", files={"m.gguf": good})
    assert fake.model("cut") is None


# --- 7. names, Modelfiles and Go formatting with the stand-in's own code --------------------------


def test_the_stand_ins_share_no_code_with_modelkit() -> None:
    """The stand-ins import nothing from modelkit (names: types/model/name.go; Modelfiles:
    parser/parser.go; options: api/types.go; quoting: strconv.Quote)."""
    code = (f"import sys; sys.modules['modelkit'] = None; sys.path.insert(0, {str(HERE)!r}); import fake_server, "
            "fake_ollama_cli, modelfile_grammar, ollama_gguf, ollama_go, ollama_names, ollama_options, "
            "ollama_templates")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(("text", "valid"), [
    ("bot", True), ("Bot:Q4_K_M", True), ("host:5000/ns/model:tag", True), ("Support Bot", False),
    ("bot:", False), ("ns.x/m", False), ("-h", False), ("a" * 80, True), ("a" * 81, False), ("bot:q4:cloud", False),
    ("h.example/ns/m.v2:t.1", True), ("é", False),
])
def test_names_follow_types_model_name_go(text: str, valid: bool) -> None:
    """``model.ParseName`` + ``Name.IsValid`` (types/model/name.go ``isValidPart``)."""
    assert names.parse_name(text).is_valid() is valid


@pytest.mark.parametrize(("text", "base", "source"), [
    ("gpt-oss:20b:cloud", "gpt-oss:20b", "cloud"), ("gpt-oss:20b-cloud", "gpt-oss:20b", "cloud"),
    ("qwen3:8b:local", "qwen3:8b", "local"), ("my-cloud-model", "my-cloud-model", "unspecified"),
    ("foo:bar-cloud/baz", "foo:bar-cloud/baz", "unspecified"), ("m:CLOUD", "m", "cloud"),
])
def test_refs_follow_internal_modelref(text: str, base: str, source: str) -> None:
    """``modelref.ParseRef`` (its own test table, internal/modelref/modelref_test.go)."""
    ref = names.parse_ref(text)
    assert (ref.base, ref.source) == (base, source)


def test_show_prints_parameters_as_go_does(old: Api, tmp_path: Path) -> None:
    """``GetModelInfo``: ``fmt.Sprintf("%-*s %#v", 30, k, v)`` per value (strconv.Quote for
    strings, FormatFloat 'g' for numbers), in Go's random map order."""
    d = old.upload(write_gguf(tmp_path / "m.gguf"))
    stops = ["\u200b", 'say "hi"', "tab\there", "é\x01"]
    old.ok(model="m", files={"m.gguf": d}, parameters={"stop": stops, "num_ctx": 1000000, "top_p": 0.9,
                                                       "use_mmap": True})
    lines = old.show("m").json()["parameters"].splitlines()
    assert sorted(lines) == sorted([f"{'stop':<30} {quote(s)}" for s in stops] + [
        f"{'num_ctx':<30} 1e+06", f"{'top_p':<30} 0.9", f"{'use_mmap':<30} true"])
    assert [ln for ln in lines if ln.startswith("stop")] == [f"{'stop':<30} {quote(s)}" for s in stops]
    assert quote("\u200b") == '"\\u200b"' and quote("é\x01") == '"é\\x01"' and sharp_v(1e-05) == "1e-05"


def test_cli_stand_in_parses_modelfiles_with_its_own_grammar(old: Api, tmp_path: Path) -> None:
    """cmd/cmd.go ``CreateHandler``: ``parser.ParseFile`` + ``CreateRequest`` (here
    modelfile_grammar.py, api/types.go ``FormatParams`` kinds from ollama_options.py), blobs
    uploaded, then ``/api/create``; ``typical_p`` is a valid PARAMETER."""
    write_gguf(tmp_path / "m.gguf")
    (tmp_path / "Modelfile").write_text('FROM ./m.gguf\nPARAMETER typical_p 0.5\nPARAMETER stop "<|end|>"\n'
                                        'SYSTEM """Be brief."""\n')
    code = (f"import sys; sys.modules['modelkit'] = None; sys.path.insert(0, {str(HERE)!r}); "
            "from fake_ollama_cli import main; sys.exit(main(sys.argv[1:]))")
    env = {"OLLAMA_HOST": old.fake.host, "NO_PROXY": "127.0.0.1", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", code, "create", "bot", "-f", str(tmp_path / "Modelfile")],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    stored = old.fake.model("bot")
    assert stored is not None and stored.system == "Be brief."
    assert stored.parameters == {"typical_p": 0.5, "stop": ["<|end|>"]}
    bad = subprocess.run([sys.executable, "-c", code, "create", "Bad Name", "-f", str(tmp_path / "Modelfile")],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 1 and "invalid model name: Bad Name" in bad.stderr


# --- 8. the generation switch, 9. counters ---------------------------------------------------------


def test_generation_switch() -> None:
    """0.12 is the default; ``current`` needs llama-quantize."""
    assert FakeOllama().generation == "0.12" and FakeOllama().version == "0.12.6"
    with pytest.raises(ValueError, match="quantize"):
        FakeOllama(generation="current")
    assert FakeOllama(generation="current", quantize="/x/llama-quantize").version == "0.33.0"
    with pytest.raises(ValueError):
        FakeOllama(generation="0.13")


def test_counters_tell_uploads_and_creates_apart(old: Api, tmp_path: Path) -> None:
    """What a test needs to assert "a no-op build makes no create call and uploads 0 bytes":
    ``log.bytes_uploaded`` (body bytes read by blob POSTs), ``log.create_calls``,
    ``log.create_requests`` (their JSON) and ``log.records`` (status per request)."""
    api, log = old, old.fake.log
    path = write_gguf(tmp_path / "m.gguf")
    d = api.upload(path)
    api.upload(path)  # already held: 200, but the body was still sent
    assert log.bytes_uploaded == 2 * path.stat().st_size
    api.ok(model="m", files={"m.gguf": d})
    assert log.create_calls == 1 and log.create_requests == [{"model": "m", "files": {"m.gguf": d}}]
    assert [(r.method, r.status) for r in log.records] == [("POST", 201), ("POST", 200), ("POST", 200)]
    log.clear()
    api.http.head(f"/api/blobs/{d}")
    assert log.bytes_uploaded == 0 and log.create_calls == 0 and log.count("HEAD", "/api/blobs/") == 1
