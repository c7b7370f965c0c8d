"""The remote artifact cache with cheap actions: two machines sharing one remote (a real S3
protocol server on loopback, and a shared folder), corrupt and partial entries, bad URLs,
missing buckets and credentials."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import modelkit
from fake_actions import FileAction
from fixed_tools import FixedTools
from s3_server import client_env, make_bucket, moto_server, server_with_users

from modelkit.core.engine import Engine, Pin
from modelkit.core.graph import Graph, Target
from modelkit.core.remote_cache import ENV, Entry, RemoteCache, choose_url
from modelkit.core.state import State
from modelkit.errors import RemoteCacheError, SpecError, UserError


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    for name, value in client_env(s3_endpoint).items():
        monkeypatch.setenv(name, value)
    return s3_endpoint


@pytest.fixture(params=["s3", "file"])
def remote_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty remote: a new bucket on the loopback S3 server, or a shared folder."""
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_env")
        return f"s3://{make_bucket(endpoint)}/team/modelkit"
    folder = tmp_path / "shared"
    folder.mkdir()
    return folder.as_uri()


def upper(params: dict[str, Any], sources: list[bytes], reads: list[bytes]) -> bytes:
    return b"".join(reads).upper()


class Machine:
    """One checkout of a two-step project (a.txt + b.txt -> mid -> final) with its own state."""

    def __init__(self, root: Path, url: str, push: bool = True) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        (root / "a.txt").write_bytes(b"a" * 300_000)
        (root / "b.txt").write_bytes(b"b" * 200_000)
        for name in ("a.txt", "b.txt"):  # written a while ago, as inputs are (the stat cache trusts them)
            os.utime(root / name, (time.time() - 60, time.time() - 60))
        self.notes: list[str] = []
        self.remote = RemoteCache(url, notify=self.notes.append, push=push)
        self.state = State(root / ".modelkit")
        self.ran: list[str] = []

    def engine(self) -> Engine:
        build = self.root / "build"
        mid = FileAction(build / "mid.txt", [self.root / "a.txt", self.root / "b.txt"], name="mid", ran=self.ran)
        final = FileAction(build / "final.txt", reads=[build / "mid.txt"], compute=upper, name="final", ran=self.ran)
        graph = Graph([Target("mid", mid), Target("final", final, ("mid",))])
        return Engine(graph, self.root, self.state, remote=self.remote)

    def build(self) -> list[str]:
        result = self.engine().build()
        self.remote.finish()
        assert result.ok, result.failed
        return result.ran


def entries(url: str) -> tuple[Any, list[str]]:
    """The remote's filesystem and every file under it."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(url, skip_instance_cache=True)
    return fs, sorted(fs.find(root))


def test_a_second_machine_restores_everything_from_the_first_ones_uploads(remote_url: str, tmp_path: Path) -> None:
    first = Machine(tmp_path / "one", remote_url)
    assert first.build() == ["mid", "final"] and first.ran == ["mid", "final"]
    assert first.notes == []
    noop = first.engine()
    assert noop.build().ran == [] and noop.hasher.bytes_read == 0  # uploading left the stat cache valid
    second = Machine(tmp_path / "two", remote_url)
    plan = {s.name: s.reason for s in second.engine().plan()}
    assert plan == {"mid": "restore from remote (never built)", "final": "restore from remote (never built)"}
    assert second.build() == ["mid", "final"]
    assert second.ran == []  # nothing ran: both restored
    for name in ("mid.txt", "final.txt"):
        assert (second.root / "build" / name).read_bytes() == (first.root / "build" / name).read_bytes()
    total = sum((first.root / "build" / n).stat().st_size for n in ("mid.txt", "final.txt"))
    assert second.remote.bytes_down == total  # each artifact read once
    assert second.remote.bytes_up == 0  # what it restored is not uploaded again
    assert (second.remote.restored, second.remote.missed, first.remote.restored, first.remote.missed) == (2, 0, 0, 2)
    assert second.engine().build().ran == []
    assert not list((second.root / "build").glob(".*tmp*"))


def test_uploading_the_same_key_again_is_harmless_and_uploads_nothing(remote_url: str, tmp_path: Path) -> None:
    Machine(tmp_path / "one", remote_url).build()
    _, before = entries(remote_url)
    again = Machine(tmp_path / "again", remote_url)
    again.engine().build(force=["mid", "final"])  # forced: built here, not restored
    again.remote.finish()
    assert again.ran == ["mid", "final"] and again.remote.bytes_up == 0
    assert entries(remote_url)[1] == before


def test_no_push_restores_but_uploads_nothing(remote_url: str, tmp_path: Path) -> None:
    machine = Machine(tmp_path / "one", remote_url, push=False)
    machine.build()
    assert entries(remote_url)[1] == []


def corrupt(url: str, digest_of: Path, how: str) -> None:
    fs, files = entries(url)
    blob = next(f for f in files if "/blobs/" in f and fs.cat_file(f) == digest_of.read_bytes())
    data = fs.cat_file(blob)
    fs.pipe_file(blob, data[:-10] if how == "truncate" else data[:-1] + b"X")


@pytest.mark.parametrize("how", ["truncate", "flip"])
def test_a_blob_that_disagrees_with_its_manifest_is_never_taken(remote_url: str, tmp_path: Path, how: str) -> None:
    first = Machine(tmp_path / "one", remote_url)
    first.build()
    corrupt(remote_url, first.root / "build" / "final.txt", how)
    second = Machine(tmp_path / "two", remote_url)
    assert second.build() == ["mid", "final"]
    assert second.ran == ["final"]  # mid restored, final built locally
    assert (second.root / "build" / "final.txt").read_bytes() == (first.root / "build" / "final.txt").read_bytes()
    assert len(second.notes) == 1 and "building locally" in second.notes[0], second.notes
    assert ("bytes" if how == "truncate" else "digest") in second.notes[0]
    assert not list((second.root / "build").glob(".*tmp*"))


def test_a_manifest_that_is_not_valid_is_a_miss(remote_url: str, tmp_path: Path) -> None:
    first = Machine(tmp_path / "one", remote_url)
    first.build()
    fs, files = entries(remote_url)
    for f in files:
        if "/keys/" in f:
            fs.pipe_file(f, fs.cat_file(f)[:-5])  # a manifest cut short
    second = Machine(tmp_path / "two", remote_url)
    second.build()
    assert second.ran == ["mid", "final"]
    assert len(second.notes) == 2 and all("not valid" in n for n in second.notes)


def test_an_interrupted_upload_leaves_no_manifest(remote_url: str, tmp_path: Path) -> None:
    machine = Machine(tmp_path / "one", remote_url)
    good = tmp_path / "good.bin"
    good.write_bytes(b"x" * 1000)
    gone = tmp_path / "gone.bin"  # a file that disappears before it is uploaded: the upload fails half-way
    staged = [(Entry("a.bin", "sha256:" + "1" * 64, 1000), good), (Entry("b.bin", "sha256:" + "2" * 64, 5), gone)]
    machine.remote._upload_entry("sha256:" + "f" * 64, staged)
    files = entries(remote_url)[1]
    assert any(f.endswith("/blobs/" + "1" * 64) for f in files)
    assert not any("/keys/" in f for f in files)  # the key does not look complete
    assert machine.remote.lookup("sha256:" + "f" * 64) is None
    assert len(machine.notes) == 1 and "not uploading" in machine.notes[0]


def test_a_bucket_that_does_not_exist_is_one_warning_and_a_local_build(s3_env: str, tmp_path: Path) -> None:
    machine = Machine(tmp_path / "one", "s3://no-such-bucket/x")
    assert machine.build() == ["mid", "final"] and machine.ran == ["mid", "final"]
    assert machine.notes == ["remote cache s3://no-such-bucket/x is not usable (bucket no-such-bucket does not exist "
                             "or cannot be reached): building locally"]


def test_no_credentials_is_one_warning_naming_them(s3_env: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = make_bucket(s3_env)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    machine = Machine(tmp_path / "one", f"s3://{bucket}/x")
    assert machine.build() == ["mid", "final"]
    assert len(machine.notes) == 1 and "no AWS credentials" in machine.notes[0]


def test_a_shared_folder_that_is_not_there_is_one_warning(tmp_path: Path) -> None:
    machine = Machine(tmp_path / "one", (tmp_path / "not-mounted").as_uri())
    assert machine.build() == ["mid", "final"]
    assert len(machine.notes) == 1 and "does not exist" in machine.notes[0]
    assert not (tmp_path / "not-mounted").exists()  # nothing written to an unmounted mount point


def test_an_unreachable_server_is_one_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from s3_server import free_port

    for name, value in client_env(f"http://127.0.0.1:{free_port()}").items():  # nothing listens there
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    machine = Machine(tmp_path / "one", "s3://bucket/x")
    assert machine.build() == ["mid", "final"]
    assert len(machine.notes) == 1 and "building locally" in machine.notes[0]


@pytest.fixture(scope="module")
def s3_users() -> Iterator[tuple[str, str, dict[str, tuple[str, str]]]]:
    """One permission-checking S3 server for the module (see ``s3_server.server_with_users``)."""
    with server_with_users() as server:
        yield server


def log_in(monkeypatch: pytest.MonkeyPatch, endpoint: str, key: tuple[str, str]) -> None:
    """Use the S3 server at ``endpoint`` with the user's (access key id, secret), as boto reads them."""
    for name, value in client_env(endpoint).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key[1])


def test_a_read_only_remote_restores_and_says_once_that_it_cannot_upload(
        s3_users: tuple[str, str, dict[str, tuple[str, str]]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader may get and list (s3:GetObject, s3:ListBucket), so a missing entry is a 404."""
    endpoint, bucket, keys = s3_users
    url = f"s3://{bucket}/reader"
    log_in(monkeypatch, endpoint, keys["reader"])
    ci = Machine(tmp_path / "ci", url)
    assert ci.build() == ["mid", "final"] and ci.ran == ["mid", "final"]  # a miss: built locally
    assert len(ci.notes) == 1 and "is read-only here" in ci.notes[0] and "Access Denied" in ci.notes[0], ci.notes
    log_in(monkeypatch, endpoint, keys["writer"])
    box = Machine(tmp_path / "box", url)
    box.build()
    assert box.notes == [] and box.remote.bytes_up > 0
    log_in(monkeypatch, endpoint, keys["reader"])
    laptop = Machine(tmp_path / "laptop", url)
    assert laptop.build() == ["mid", "final"] and laptop.ran == [] and laptop.notes == []


def test_a_reader_that_may_not_list_restores_the_hits_and_builds_the_misses(
        s3_users: tuple[str, str, dict[str, tuple[str, str]]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without s3:ListBucket, S3 answers a missing entry with 403, as it answers a refusal: each
    is a miss, and the remote is not given up for the rest of the build."""
    from s3_server import missing_keys_forbidden

    endpoint, bucket, keys = s3_users
    url = f"s3://{bucket}/fetcher"
    log_in(monkeypatch, endpoint, keys["writer"])
    box = Machine(tmp_path / "box", url)
    box.build()
    with missing_keys_forbidden(endpoint, keys["fetcher"][0]) as relay:
        log_in(monkeypatch, relay, keys["fetcher"])
        import boto3

        s3 = boto3.client("s3", endpoint_url=relay, region_name="us-east-1")
        with pytest.raises(s3.exceptions.ClientError, match="403"):
            s3.head_object(Bucket=bucket, Key="fetcher/keys/none.json")  # as AWS answers this user
        laptop = Machine(tmp_path / "laptop", url)
        assert laptop.build() == ["mid", "final"] and laptop.ran == [] and laptop.remote.restored == 2
        assert laptop.notes == []
        changed = Machine(tmp_path / "changed", url)
        changed.root.joinpath("a.txt").write_bytes(b"z" * 300_000)  # what the remote has not seen: two misses
        os.utime(changed.root / "a.txt", (time.time() - 60, time.time() - 60))
        assert changed.build() == ["mid", "final"] and changed.ran == ["mid", "final"]
        assert changed.remote.missed == 2, changed.notes
        assert len(changed.notes) == 2, changed.notes
        assert "each refusal counts as a miss" in changed.notes[0] and "s3:ListBucket" in changed.notes[0]
        assert "is read-only here" in changed.notes[1]


def test_the_environment_wins_over_the_spec_and_empty_turns_it_off() -> None:
    assert choose_url("s3://spec/x", {}) == "s3://spec/x"
    assert choose_url("s3://spec/x", {ENV: "file:///mnt/team"}) == "file:///mnt/team"
    assert choose_url("s3://spec/x", {ENV: ""}) is None
    assert choose_url(None, {}) is None


@pytest.mark.parametrize("url, problem", [("ftp://host/x", "unknown scheme 'ftp://'"),
                                          ("/mnt/shared", "is not a URL"), ("s3://", "names no bucket")])
def test_a_bad_url_in_the_environment_is_a_one_line_error(url: str, problem: str) -> None:
    with pytest.raises(RemoteCacheError) as e:
        choose_url(None, {ENV: url})
    assert problem in str(e.value) and str(e.value).startswith(f"${ENV}: ") and "\n" not in str(e.value)


def test_a_bad_url_in_the_spec_names_its_line(tmp_path: Path) -> None:
    from conftest import READY_GGUF_SPEC

    from modelkit.spec import load_spec

    (tmp_path / "model.gguf").write_bytes(b"")
    (tmp_path / "model.toml").write_text(READY_GGUF_SPEC + '\n[cache]\nremote = "ftp://host/cache"\n')
    with pytest.raises(SpecError) as e:
        load_spec(tmp_path / "model.toml")
    assert len(e.value.lines) == 1
    line = e.value.lines[0]
    assert "model.toml:" in line and "cache.remote" in line and "unknown scheme 'ftp://'" in line, line


def test_the_manifest_names_outputs_digests_and_sizes(tmp_path: Path) -> None:
    url = (tmp_path / "shared").as_uri()
    (tmp_path / "shared").mkdir()
    machine = Machine(tmp_path / "one", url)
    machine.build()
    fs, files = entries(url)
    manifests = [json.loads(fs.cat_file(f)) for f in files if "/keys/" in f]
    assert sorted(m["outputs"][0]["name"] for m in manifests) == ["final.txt", "mid.txt"]
    for m in manifests:
        out = m["outputs"][0]
        assert out["size"] == os.path.getsize(machine.root / "build" / out["name"])
        assert any(f.endswith("/blobs/" + out["digest"].split(":")[1]) for f in files)


# -- the commands, on a project that ships a ready GGUF (no toolchain) ------------------------------

def ready_project(folder: Path) -> Path:
    from conftest import READY_GGUF_SPEC, ROOT, load_module

    folder.mkdir(parents=True)
    load_module(ROOT / "tests" / "ollama" / "gguf_files.py").write_tiny_gguf(folder / "model.gguf")
    (folder / "model.toml").write_text(READY_GGUF_SPEC)
    return folder


def cli(*args: str, cwd: Path, remote: str) -> Any:
    """The CLI (conftest's :func:`modelkit`) with ``remote`` as ``$MODELKIT_REMOTE_CACHE``."""
    return modelkit(*args, cwd=cwd, env={ENV: remote})


def test_the_commands_restore_say_so_and_push_unless_told_not_to(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    url = (tmp_path / "shared").as_uri()
    quiet = cli("build", "--no-ollama", "--no-push", cwd=ready_project(tmp_path / "quiet"), remote=url)
    assert quiet.returncode == 0, quiet.stderr
    assert entries(url)[1] == [] and "0 targets restored" in quiet.stderr and "uploaded 0 B" in quiet.stderr
    first = cli("build", "--no-ollama", cwd=ready_project(tmp_path / "checkout"), remote=url)
    assert first.returncode == 0, first.stderr
    assert any("/keys/" in f for f in entries(url)[1])
    # Another machine, the same checkout path (this spec's Modelfile names the GGUF's absolute path).
    (tmp_path / "checkout").rename(tmp_path / "first-machine")
    second = ready_project(tmp_path / "checkout")
    plan = cli("plan", cwd=second, remote=url)
    assert plan.returncode == 0 and "restore from remote" in plan.stdout, plan.stdout + plan.stderr
    built = cli("build", "--no-ollama", cwd=second, remote=url)
    assert built.returncode == 0, built.stderr
    assert "restored from the remote cache" in built.stderr and " 0 not there" in built.stderr, built.stderr


def test_the_commands_build_locally_when_the_remote_is_not_there(tmp_path: Path) -> None:
    proc = cli("build", "--no-ollama", cwd=ready_project(tmp_path / "one"), remote=(tmp_path / "gone").as_uri())
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "is not usable" in line]
    assert len(lines) == 1 and "building locally" in lines[0] and "Traceback" not in proc.stderr


def test_an_unknown_scheme_is_a_one_line_error_with_status_2(tmp_path: Path) -> None:
    proc = cli("build", "--no-ollama", cwd=ready_project(tmp_path / "one"), remote="ftp://host/cache")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: ${ENV}: unknown scheme 'ftp://' (known: file://, gcs://, "
                                                "gs://, hf://, s3://, s3a://)"]


class Download(FileAction):
    """A download pinned by its digest, as a Hub fetch with a lock is: its output is promised."""

    data = b"weights " * 50_000
    atomic = False  # like a Hub fetch: it lands in a cache of its own, never in the artifact caches

    def __init__(self, out: Path, ran: list[str]) -> None:
        super().__init__(out, params={"pinned": True}, compute=lambda p, s, r: self.data, name="fetch", ran=ran)

    def promised_outputs(self) -> dict[Path, str]:
        return {self.out: "sha256:" + hashlib.sha256(self.data).hexdigest()}


def pinned_engine(root: Path, url: str, ran: list[str], mode: str = "a") -> tuple[Engine, RemoteCache]:
    """fetch (promised) -> mid -> final; ``mode`` changes mid's parameters."""
    build = root / "build"
    remote = RemoteCache(url, notify=lambda _: None)
    fetch = Download(root / "cache" / "weights.bin", ran)
    mid = FileAction(build / "mid.txt", reads=[fetch.out], params={"mode": mode}, name="mid", ran=ran)
    final = FileAction(build / "final.txt", reads=[build / "mid.txt"], compute=upper, name="final", ran=ran)
    graph = Graph([Target("fetch", fetch), Target("mid", mid, ("fetch",)), Target("final", final, ("mid",))])
    return Engine(graph, root, State(root / ".modelkit"), remote=remote), remote


def test_a_promised_download_runs_only_when_a_target_reading_it_cannot_be_restored(tmp_path: Path) -> None:
    url = (tmp_path / "shared").as_uri()
    (tmp_path / "shared").mkdir()
    ran: list[str] = []
    first, remote = pinned_engine(tmp_path / "one", url, ran)
    assert first.build().ran == ["fetch", "mid", "final"] and ran == ["fetch", "mid", "final"]
    remote.finish()
    ran.clear()
    second, remote = pinned_engine(tmp_path / "two", url, ran)
    plan = {s.name: s.reason for s in second.plan()}
    assert plan["fetch"] == "never built; runs only if a target that reads it is not restored"
    assert plan["mid"] == "restore from remote (never built)"
    result = second.build()
    remote.finish()
    assert ran == [] and result.unneeded == ["fetch"] and not (tmp_path / "two" / "cache").exists()
    assert (tmp_path / "two" / "build" / "final.txt").read_bytes() == (tmp_path / "one" / "build" / "final.txt").read_bytes()
    third, remote = pinned_engine(tmp_path / "two", url, ran, mode="b")  # mid is nowhere: it must run
    result = third.build()
    remote.finish()
    assert ran == ["fetch", "mid"] and result.unneeded == [] and result.ok  # final: the same bytes, fresh
    assert (tmp_path / "two" / "cache" / "weights.bin").read_bytes() == Download.data


class GpuBound(FileAction):
    """A step whose bytes depend on the machine (as a GPU's floating-point order does): ``machine``
    is not one of its parameters, yet it changes what it writes."""

    reproducible = False

    def __init__(self, out: Path, reads: list[Path], machine: str, ran: list[str]) -> None:
        super().__init__(out, reads=reads, compute=lambda p, s, r: b"".join(r) + machine.encode(), name="bound",
                         ran=ran)


def bound_engine(root: Path, machine: str, remote: RemoteCache | None, ran: list[str],
                 pinned: dict[str, Pin] | None = None, locked: bool = False) -> Engine:
    """in.txt -> bound (machine-bound) -> final, on a machine whose platform is ``machine``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "in.txt").write_bytes(b"input ")
    build = root / "build"
    bound = GpuBound(build / "bound.txt", [root / "in.txt"], machine, ran)
    bound.sources = [root / "in.txt"]
    final = FileAction(build / "final.txt", reads=[build / "bound.txt"], compute=upper, name="final", ran=ran)
    graph = Graph([Target("bound", bound), Target("final", final, ("bound",))])
    return Engine(graph, root, State(root / ".modelkit"), remote=remote,
                  tools=FixedTools(machine=machine), pinned=pinned, locked=locked)


def test_a_step_that_is_not_reproducible_is_restored_from_where_the_lock_pins_it(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    url = (tmp_path / "shared").as_uri()
    ran: list[str] = []
    gpu = bound_engine(tmp_path / "gpu", "cuda", RemoteCache(url, notify=lambda _: None), ran)
    assert gpu.build().ok and ran == ["bound", "final"]
    assert gpu.remote is not None
    gpu.remote.finish()
    record = gpu.state.target("bound")
    assert record is not None and record.record["platform"] == "cuda"
    pin = {"bound": Pin("cuda", record.key)}
    ran.clear()
    # Another machine, locked to the GPU's bytes: restored, never computed, byte for byte.
    cpu = bound_engine(tmp_path / "cpu", "cpu", RemoteCache(url, notify=lambda _: None), ran, pin, locked=True)
    assert {s.name: s.reason for s in cpu.plan()}["bound"] == "restore from remote (never built)"
    assert cpu.build().ok and ran == []
    for name in ("bound.txt", "final.txt"):
        assert (tmp_path / "cpu" / "build" / name).read_bytes() == (tmp_path / "gpu" / "build" / name).read_bytes()
    assert cpu.state.target("bound").key == record.key
    # Locked, with no cache holding them: a one-line error at the plan, nothing computed.
    alone = bound_engine(tmp_path / "alone", "cpu", None, ran, pin, locked=True)
    with pytest.raises(UserError, match=r"^bound: the lock pins bytes computed on cuda \(key [0-9a-f]+\), which this "
                                        r"machine \(cpu\) computes differently, and no cache holds them: set the remote"):
        alone.plan()
    with pytest.raises(UserError, match="^bound: the lock pins bytes computed on cuda"):
        alone.build()  # before anything runs
    assert ran == [] and not (tmp_path / "alone" / "build" / "bound.txt").exists()
    # Not locked: computed here, under this machine's platform (another key: the lock will say so).
    free = bound_engine(tmp_path / "free", "cpu", None, ran, pin)
    assert free.build().ok and ran == ["bound", "final"]
    assert free.state.target("bound").record["platform"] == "cpu"
    assert (tmp_path / "free" / "build" / "bound.txt").read_bytes() == b"input cpu"
