"""Publishing to, and building from, a real OCI registry: Docker's ``docker-registry`` on loopback with
htpasswd users; what modelkit pushes is pulled back by independent clients (skopeo, oras-py) and
checked against the shipped files, and the ModelPack config against the spec's own JSON Schema
(``tests/data``, model-spec v0.0.7)."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import READY_GGUF_SPEC, ROOT, copy_built, modelkit
from oci_registry import USERS, login_env, oras_pull, registry, skopeo_copy, skopeo_manifest, skopeo_raw

pytestmark = [pytest.mark.toolchain, pytest.mark.slow]
SCHEMA = ROOT / "tests" / "data" / "modelpack-config-schema-v0.0.7.json"


@pytest.fixture(scope="module")
def oci(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with registry(tmp_path_factory.mktemp("registry")) as host:
        yield host


@pytest.fixture(scope="module")
def published(built_example: Path, oci: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """The example, built and published to ``oci`` as ``me/tiny``: (project, target, what publish printed)."""
    project = copy_built(built_example, tmp_path_factory.mktemp("published") / "example")
    target = f"{oci}/me/tiny"
    proc = modelkit("publish", "--oci", target, "--insecure", cwd=project, env=login_env())
    assert proc.returncode == 0, proc.stderr
    return project, target, proc.stderr + proc.stdout


def sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_variant_is_a_modelpack_artifact_tagged_like_ollama(published: tuple[Path, str, str]) -> None:
    project, target, _ = published
    for tag, quant in (("q4_k_m", "Q4_K_M"), ("q8_0", "Q8_0"), ("iq4_xs", "IQ4_XS"), ("latest", "Q4_K_M")):
        manifest = skopeo_manifest(f"{target}:{tag}")
        assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
        assert manifest["artifactType"] == "application/vnd.cncf.model.manifest.v1+json"
        assert manifest["config"]["mediaType"] == "application/vnd.cncf.model.config.v1+json"
        layers = manifest["layers"]
        assert all(layer["annotations"].get("org.cncf.model.filepath") for layer in layers)  # RamaLama's check
        by_path = {layer["annotations"]["org.cncf.model.filepath"]: layer for layer in layers}
        model = by_path[f"tiny-support-{quant}.gguf"]
        assert model["mediaType"] == "application/vnd.cncf.model.weight.v1.raw"
        assert model["digest"] == sha256(project / "build" / f"base+support.{quant}.gguf")
        assert by_path["chat_template.jinja"]["mediaType"] == "application/vnd.cncf.model.weight.config.v1.raw"
        assert by_path["README.md"]["mediaType"] == "application/vnd.cncf.model.doc.v1.raw"
    assert skopeo_manifest(f"{target}:latest") == skopeo_manifest(f"{target}:q4_k_m")


def test_skopeo_pulls_every_blob_back_as_shipped_and_the_config_is_modelpacks(
        published: tuple[Path, str, str], tmp_path: Path) -> None:
    import jsonschema

    project, target, _ = published
    blobs = skopeo_copy(f"{target}:q8_0", tmp_path / "oci")
    gguf = project / "build" / "base+support.Q8_0.gguf"
    assert (blobs / sha256(gguf).split(":")[1]).read_bytes() == gguf.read_bytes()
    manifest = skopeo_manifest(f"{target}:q8_0")
    config = json.loads((blobs / manifest["config"]["digest"].split(":")[1]).read_bytes())
    jsonschema.validate(config, json.loads(SCHEMA.read_text()))
    assert config["config"]["format"] == "gguf" and config["config"]["quantization"] == "Q8_0"
    assert config["config"]["architecture"] == "llama" and config["config"]["paramSize"].endswith("M")
    assert config["modelfs"]["diffIds"] == [layer["digest"] for layer in manifest["layers"]]
    template = next(layer for layer in manifest["layers"]
                    if layer["annotations"]["org.cncf.model.filepath"] == "chat_template.jinja")
    from modelkit.formats.gguf import read_header

    assert (blobs / template["digest"].split(":")[1]).read_text() == \
        read_header(gguf, index_strings=()).metadata["tokenizer.chat_template"]


def test_oras_pulls_the_same_files(published: tuple[Path, str, str], tmp_path: Path) -> None:
    project, target, _ = published
    pulled = {p.name: p for p in oras_pull(f"{target}:q4_k_m", tmp_path / "oras")}
    assert pulled["tiny-support-Q4_K_M.gguf"].read_bytes() == \
        (project / "build" / "base+support.Q4_K_M.gguf").read_bytes()


def test_a_second_publish_sends_nothing_and_changes_no_digest(published: tuple[Path, str, str]) -> None:
    project, target, said = published
    before = {tag: skopeo_manifest(f"{target}:{tag}") for tag in ("q4_k_m", "q8_0", "iq4_xs")}
    proc = modelkit("publish", "--oci", target, "--insecure", cwd=project, env=login_env())
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("no bytes sent: the registry held them") == 3 and "  pushed" not in proc.stderr
    assert {tag: skopeo_manifest(f"{target}:{tag}") for tag in before} == before
    assert said.count("  pushed ") == 3


def test_wrong_or_missing_credentials_are_one_line_each(published: tuple[Path, str, str]) -> None:
    project, target, _ = published
    refused = modelkit("publish", "--oci", target, "--insecure", cwd=project,
                       env={**login_env(), "MODELKIT_OCI_PASSWORD": "not-it"})
    missing = modelkit("publish", "--oci", target, "--insecure", cwd=project, env={"DOCKER_CONFIG": "/nonexistent"},
                       without=("MODELKIT_OCI_",))
    for proc, words in ((refused, "refused the credentials of 'alice'"), (missing, "asks for credentials")):
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert proc.returncode == 2 and len(errors) == 1 and words in errors[0], proc.stderr
        assert "not-it" not in proc.stderr and USERS["alice"] not in proc.stderr


def test_credentials_come_from_the_docker_config(published: tuple[Path, str, str], tmp_path: Path) -> None:
    import base64

    project, target, _ = published
    host = target.split("/")[0]
    (tmp_path / "config.json").write_text(json.dumps({"auths": {host: {"auth": base64.b64encode(
        f"bob:{USERS['bob']}".encode()).decode()}}}))
    proc = modelkit("publish", "--oci", f"{host}/me/tiny-bob", "--insecure", cwd=project,
                    env={"DOCKER_CONFIG": str(tmp_path)}, without=("MODELKIT_OCI_",))
    assert proc.returncode == 0, proc.stderr
    assert skopeo_manifest(f"{host}/me/tiny-bob:q8_0")["layers"]


def test_plain_https_to_a_plain_http_registry_says_insecure(published: tuple[Path, str, str]) -> None:
    project, target, _ = published
    proc = modelkit("publish", "--oci", target, cwd=project, env=login_env())
    assert proc.returncode == 1 and "use --insecure" in proc.stderr, proc.stderr


def test_a_split_model_is_ordered_layers(oci: str, tmp_path: Path) -> None:
    """A GGUF over max_file_size goes up as its split set, one layer per part, in order."""
    from test_publish import big_gguf

    project = tmp_path / "p"
    project.mkdir()
    big_gguf(project / "model.gguf")
    (project / "model.toml").write_text(READY_GGUF_SPEC + '\n[publish]\nmax_file_size = "1MB"\n')
    assert modelkit("build", "--no-ollama", cwd=project).returncode == 0
    proc = modelkit("publish", "--oci", f"{oci}/me/split", "--insecure", cwd=project, env=login_env())
    assert proc.returncode == 0, proc.stderr
    paths = [layer["annotations"]["org.cncf.model.filepath"] for layer in skopeo_manifest(f"{oci}/me/split:f32")["layers"]]
    parts = [p for p in paths if p.endswith(".gguf")]
    assert len(parts) > 1 and parts == sorted(parts) and parts[0].endswith(f"-00001-of-{len(parts):05d}.gguf")


def test_a_model_that_sees_images_carries_its_projector(tiny_vlm: Path, oci: str, tmp_path: Path) -> None:
    from test_vision import vlm_project

    project = vlm_project(tiny_vlm, tmp_path / "p", "eyes-oci", tail="")
    assert modelkit("build", "--no-ollama", cwd=project).returncode == 0
    proc = modelkit("publish", "--oci", f"{oci}/me/eyes", "--insecure", cwd=project, env=login_env())
    assert proc.returncode == 0, proc.stderr
    manifest = skopeo_manifest(f"{oci}/me/eyes:q8_0")
    projector = next(layer for layer in manifest["layers"]
                     if layer["annotations"]["org.cncf.model.filepath"].startswith("mmproj"))
    assert projector["digest"] == sha256(project / "build" / "mmproj-base.f16.gguf")


def base_from(oci_ref: str, folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.toml").write_text(f'name = "pulled"\n[base]\noci = "{oci_ref}"\ninsecure = true\n'
                                       '[quantize]\ntypes = ["Q8_0"]\n')
    return folder


def test_a_base_from_a_registry_builds_and_the_lock_pins_its_manifest(
        published: tuple[Path, str, str], oci: str, tmp_path: Path) -> None:
    """The example's merged full-precision GGUF pushed as an artifact (a ready-GGUF project), then a
    new project builds Q8_0 from it; the tag moved upstream is seen with --update, refused with --locked."""
    example, _, _ = published
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(example / "build" / "base+support.f16.gguf", source / "model.gguf")
    (source / "model.toml").write_text('name = "tiny-f16"\n[base]\ngguf = "./model.gguf"\n[quantize]\ntypes = []\n'
                                       '[ollama]\ntemplate = "{{ .Prompt }}"\n')
    assert modelkit("build", "--no-ollama", cwd=source).returncode == 0
    assert modelkit("publish", "--oci", f"{oci}/me/base", "--insecure", cwd=source, env=login_env()).returncode == 0
    tag = "f16"  # a GGUF shipped as is: its own type is its tag
    project = base_from(f"{oci}/me/base:{tag}", tmp_path / "pulled")
    proc = modelkit("build", "--no-ollama", cwd=project, env=login_env())
    assert proc.returncode == 0, proc.stderr
    lock = json.loads((project / "modelkit.lock").read_text())
    pinned = lock["sources"]["source:base"]
    assert pinned["manifest"] == manifest_digest(f"{oci}/me/base:{tag}")
    assert pinned["files"]["tiny-f16-F16.gguf"] == sha256(source / "model.gguf")
    assert (project / "build" / "base.Q8_0.gguf").is_file()
    move_tag(source, f"{oci}/me/base")  # the tag now names another artifact
    assert modelkit("build", "--no-ollama", cwd=project, env=login_env()).returncode == 0  # the lock holds
    assert json.loads((project / "modelkit.lock").read_text())["sources"] == lock["sources"]
    refused = modelkit("build", "--no-ollama", "--update", "--locked", cwd=project, env=login_env())
    assert refused.returncode == 2 and "would change the lock file" in refused.stderr, refused.stderr
    updated = modelkit("build", "--no-ollama", "--update", cwd=project, env=login_env())
    assert updated.returncode == 0, updated.stderr
    assert json.loads((project / "modelkit.lock").read_text())["sources"]["source:base"]["manifest"] != \
        pinned["manifest"]


def manifest_digest(ref: str) -> str:
    return "sha256:" + hashlib.sha256(skopeo_raw(ref)).hexdigest()


def move_tag(source: Path, target: str) -> None:
    """Publish ``source`` again with a license: one more layer, so a new manifest under the same tag."""
    spec = source / "model.toml"
    spec.write_text(spec.read_text() + 'license = "MIT"\n')
    assert modelkit("build", "--no-ollama", cwd=source).returncode == 0
    assert modelkit("publish", "--oci", target, "--insecure", cwd=source, env=login_env()).returncode == 0


def test_a_bad_reference_in_the_spec_is_one_line(tmp_path: Path) -> None:
    project = base_from("Registry.Example/UPPER:tag", tmp_path / "bad")
    proc = modelkit("plan", cwd=project)
    assert proc.returncode == 2 and "base.oci" in proc.stderr and "not a repository name" in proc.stderr, proc.stderr


def test_an_unreachable_registry_is_one_line_naming_it(tmp_path: Path) -> None:
    from real_ollama import free_port

    project = base_from(f"127.0.0.1:{free_port()}/me/none:f16", tmp_path / "gone")
    proc = modelkit("plan", cwd=project)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode != 0 and len(errors) == 1 and "is not reachable" in errors[0], proc.stderr
