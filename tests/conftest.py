"""Shared fixtures. Markers (see pyproject.toml) say what each test needs from the machine.

Tests that need the llama.cpp toolchain skip when it is not installed, unless
``MODELKIT_REQUIRE_TOOLCHAIN=1`` (set by ``.ci/run``), where a missing toolchain is a failure:
CI must never go green by skipping the end-to-end tests.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "ollama"))  # the Ollama helpers import each other by name

READY_GGUF_SPEC = """\
name = "bot"

[base]
gguf = "./model.gguf"

[quantize]
types = []

[ollama]
template = "{{ .Prompt }}"
system = "Be brief."
parameters = { temperature = 0.5 }
"""
"""A project that ships a ready GGUF as is (``model.gguf``): no conversion, no toolchain."""


def _missing(what: str) -> None:
    if os.environ.get("MODELKIT_REQUIRE_TOOLCHAIN") == "1":
        pytest.fail(f"{what} (MODELKIT_REQUIRE_TOOLCHAIN=1)")
    pytest.skip(what)


@pytest.fixture(scope="session")
def toolchain():
    """The llama.cpp toolchain modelkit would use (managed, or $MODELKIT_LLAMA_CPP)."""
    from modelkit.toolchain import find_toolchain

    found = find_toolchain()
    if found is None or not found.quantize.is_file():
        _missing("no llama.cpp toolchain: run `modelkit toolchain install`")
    return found


@pytest.fixture(scope="session")
def llama_cpp_templates() -> Path:
    """The real chat templates that ship in llama.cpp's ``models/templates/``."""
    root = os.environ.get("MODELKIT_LLAMA_CPP")
    if root:
        return Path(root) / "models" / "templates"
    from modelkit.toolchain import find_toolchain

    found = find_toolchain()
    if found is None:
        _missing("no llama.cpp source tree: run `modelkit toolchain install` or set MODELKIT_LLAMA_CPP")
    return found.templates


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``base/`` (a 2-layer Llama) and ``lora/`` (a PEFT LoRA trained on it).

    Made by the same script the example uses (about 25 s on 2 cores), once per machine (see
    :func:`made_once`).
    """
    pytest.importorskip("torch")
    pytest.importorskip("peft")
    script = ROOT / "examples" / "tiny" / "make_tiny.py"
    return made_once(tmp_path_factory, "tiny-model", (script,), lambda out: load_module(script).main([str(out)]))


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Gemma 3 that sees images, its two LoRAs and an image (``tests/tiny_vlm.py``), made once per machine."""
    pytest.importorskip("torch")
    pytest.importorskip("peft")
    scripts = (ROOT / "tests" / "tiny_vlm.py", ROOT / "examples" / "tiny" / "make_tiny.py")
    return made_once(tmp_path_factory, "tiny-vlm", scripts, lambda out: load_module(scripts[0]).make(out))


def made_once(tmp_path_factory: pytest.TempPathFactory, name: str, scripts: tuple[Path, ...],
              make: Callable[[Path], None]) -> Path:
    """A copy of what ``make`` writes into a folder. The scripts are seeded, so what they make is
    kept in modelkit's cache by the digest of the scripts and the versions of the libraries that
    decide its bytes, and later sessions (and the other pytest-xdist worker) copy it."""
    out = tmp_path_factory.mktemp(name)
    kept = kept_test_data(name, scripts, TINY_PACKAGES)
    kept.parent.mkdir(parents=True, exist_ok=True)
    with locked(kept.with_name(f".{kept.name}.lock")):  # pytest-xdist's workers: one makes it, the other waits
        if not kept.is_dir():
            made = tmp_path_factory.mktemp(f"{name}-made")
            make(made)
            partial = kept.with_name(f".{kept.name}.{os.getpid()}")
            shutil.copytree(made, partial)
            try:
                os.replace(partial, kept)  # whole or not at all, as another session may be reading
            except OSError:  # another session (without this lock) made it meanwhile: the same bytes
                shutil.rmtree(partial)
                if not kept.is_dir():
                    raise
    shutil.copytree(kept, out, dirs_exist_ok=True)
    return out


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (made if missing), as between pytest-xdist's workers."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def once_per_run(tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], None]) -> Path:
    """A folder that ``make`` fills once per test run. Under pytest-xdist (``make test`` runs two
    workers) the workers share it, in the run's own temporary folder: the first to ask makes it,
    the other waits for it, where each would otherwise spend the same minute building its own."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        folder = tmp_path_factory.mktemp(name)
        make(folder)
        return folder
    root = tmp_path_factory.getbasetemp().parent  # the run's folder, above each worker's own
    folder, done = root / name, root / f"{name}.done"
    with locked(root / f"{name}.lock"):
        if not done.is_file():
            shutil.rmtree(folder, ignore_errors=True)  # what a worker that failed making it left
            folder.mkdir()
            make(folder)
            done.touch()
    return folder


TINY_PACKAGES = ("torch", "transformers", "peft", "safetensors", "sentencepiece")
"""The libraries whose versions decide the bytes of the tiny model (and of what tests make from it)."""


def kept_test_data(name: str, scripts: tuple[Path, ...], packages: tuple[str, ...]) -> Path:
    """Where test data made by ``scripts`` is kept between sessions (``$MODELKIT_CACHE/test-data``),
    named by what decides its bytes: the scripts and the versions of ``packages``."""
    import hashlib

    from modelkit.core.installed import installed_version
    from modelkit.toolchain import cache_root

    versions = [(p, installed_version(p) or "-") for p in packages]
    what = b"".join(s.read_bytes() for s in scripts) + repr(versions).encode()
    return cache_root() / "test-data" / f"{name}-{hashlib.sha256(what).hexdigest()[:16]}"


def cli_env(ollama_host: str | None = None, env: dict[str, str] | None = None,
            without: tuple[str, ...] = ()) -> dict[str, str]:
    """The environment of a CLI run: this one without the variables named by the prefixes in
    ``without``, offline unless ``ollama_host`` names a (stand-in) server, then ``env``."""
    base = {k: v for k, v in os.environ.items() if k != "OLLAMA_HOST" and not k.startswith(without)}
    base["NO_PROXY"] = "127.0.0.1,localhost"
    base["OLLAMA_HOST"] = ollama_host or "http://127.0.0.1:9"  # nothing listens there: offline
    return base | (env or {})


def modelkit(*args: str, cwd: Path, ollama_host: str | None = None, cores: int | None = None,
             env: dict[str, str] | None = None, without: tuple[str, ...] = (),
             timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would (see :func:`cli_env`); ``cores``: on that many of this
    machine's cores only (the tools then get that many threads)."""
    pin = (lambda: os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:cores])) if cores else None
    return subprocess.run([sys.executable, "-m", "modelkit", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=cli_env(ollama_host, env, without), preexec_fn=pin)


def start_modelkit(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """The CLI started as :func:`modelkit` runs it, for a test that acts while it runs."""
    return subprocess.Popen([sys.executable, "-m", "modelkit", *args], cwd=cwd, env=cli_env(None, env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def copy_example(tiny_model: Path, project: Path) -> Path:
    """Copy the whole tiny example (models, texts, model.toml) into ``project``, as a user has it."""
    project.mkdir(parents=True, exist_ok=True)
    for folder in ("base", "lora"):
        shutil.copytree(tiny_model / folder, project / folder)
    for text in ("calibration.txt", "eval.txt"):
        shutil.copy(tiny_model / text, project / text)
    shutil.copy(ROOT / "examples" / "tiny" / "model.toml", project / "model.toml")
    return project


def without_quality(spec: str) -> str:
    """The example's spec without its importance matrix, IQ type and evaluation: what a test of
    conversion, templates or registration needs, built in half the time."""
    head, _, rest = spec.partition("[evaluate]")
    plain = head + "[ollama]" + rest.partition("[ollama]")[2]
    plain = "\n".join(line for line in plain.splitlines() if not line.startswith("imatrix ="))
    plain = plain.replace(', "IQ4_XS"]', "]")
    assert "evaluate" not in plain and "IQ4_XS" not in plain and "imatrix" not in plain, plain
    return plain + "\n"


@pytest.fixture
def tiny_project(tiny_model: Path, tmp_path: Path) -> Path:
    """A project folder with its own copy of the tiny model and the example's model.toml without
    its quality sections (see :func:`without_quality`; ``tiny_example`` has them)."""
    copy_example(tiny_model, tmp_path)
    spec = tmp_path / "model.toml"
    spec.write_text(without_quality(spec.read_text()))
    return tmp_path


@pytest.fixture
def tiny_example(tiny_model: Path, tmp_path: Path) -> Path:
    """A project folder holding the whole tiny example, quality sections included."""
    return copy_example(tiny_model, tmp_path / "example")


def load_module(path: Path) -> ModuleType:
    """Import a file that is not on sys.path (an example script, a test helper)."""
    name = f"_modelkit_test_{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def real_ollama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The real Ollama (``../shared/ollama``: 0.32.15, or an ``ollama`` on PATH), started once per
    session on a free loopback port with its own model store and home, its runner tapped (see
    ``tests/ollama/real_ollama.py``), stopped by its pid at the end. Skipped, saying why, where
    there is none; a failure where ``MODELKIT_REQUIRE_OLLAMA=1`` (CI sets it)."""
    real = load_module(ROOT / "tests" / "ollama" / "real_ollama.py")
    exe, why = real.find_ollama()
    if exe is None:
        if os.environ.get("MODELKIT_REQUIRE_OLLAMA") == "1":
            pytest.fail(f"{why} (MODELKIT_REQUIRE_OLLAMA=1)")
        pytest.skip(why)
    with real.RealOllama(exe, tmp_path_factory.mktemp("real-ollama"), tap=True) as server:
        yield server


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, each worker, and all it starts (the CLI, llama.cpp, Ollama, Ray), runs on
    a share of the cores (worker i on cores i, i + n, … of n workers; with more workers than cores,
    round them): two workers' multi-threaded llama.cpp on the same cores spin in ggml's barriers
    waiting for each other's threads, and every step then takes several times as long, where one
    thread per worker on a core shares it evenly."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if worker and count > 1 and cores:
        index = int(worker.removeprefix("gw"))
        share = cores[index::count] if count <= len(cores) else [cores[index % len(cores)]]
        os.sched_setaffinity(0, share)
    _let_ctrl_c_through()


_PACKAGE_PICTURE = pytest.StashKey[dict[str, tuple[int, ...]]]()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Take the package tree's picture (in the process that runs or controls the run)."""
    if not hasattr(session.config, "workerinput"):
        from package_guard import picture

        session.config.stash[_PACKAGE_PICTURE] = picture(ROOT / "modelkit")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if a test wrote in the package tree (see ``package_guard``)."""
    before = session.config.stash.get(_PACKAGE_PICTURE, None)
    if before is None:
        return
    from package_guard import changes, picture

    changed = changes(before, picture(ROOT / "modelkit"))
    if changed:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line("FAILED: tests wrote in the package tree modelkit/: " + "; ".join(changed), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _let_ctrl_c_through() -> None:
    """Tests send Ctrl-C (SIGINT) to the builds they start. A shell without job control starts a
    background job (``make test &`` in a script) with SIGINT ignored, and every process inherits
    that: the builds would never see the Ctrl-C. A Python handler, unlike an ignored signal, is
    reset at ``exec``, so the builds start with SIGINT as a terminal gives it."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that use the real Ollama are marked ``real_ollama``, so the summary can count them."""
    for item in items:
        if "real_ollama" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.real_ollama)
    config.stash[_REAL_OLLAMA_TESTS] = sum(1 for item in items if item.get_closest_marker("real_ollama"))


_REAL_OLLAMA_TESTS = pytest.StashKey[int]()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say how many tests ran against the real Ollama (CI must not go green by skipping them).
    Counted from the reports, which pytest-xdist's workers send back with their markers."""
    reports = [r for key in ("passed", "failed", "skipped") for r in terminalreporter.stats.get(key, [])
               if getattr(r, "keywords", None) and "real_ollama" in r.keywords]
    if not reports and not terminalreporter.config.stash.get(_REAL_OLLAMA_TESTS, 0):
        return
    ran = [r for r in reports if r.when == "call" and not r.skipped]
    skipped = [r for r in reports if r.skipped]
    terminalreporter.write_line(f"{len(ran)} tests ran against the real Ollama"
                                + (f", {len(skipped)} skipped" if skipped else ""))


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One ``file://`` remote artifact cache for the whole run (both workers), as a team shares one:
    a step a test builds from the tiny model is uploaded there, and the next test that needs the
    same step (the same key: the same inputs, tools and options) restores it instead of converting
    the same base again."""
    return once_per_run(tmp_path_factory, "shared-cache", lambda folder: None).as_uri()


@pytest.fixture(autouse=True)
def _builds_share_a_cache(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests of the tiny model build through :func:`shared_cache` ($MODELKIT_REMOTE_CACHE, for the
    CLI and the library alike), except those marked ``from_scratch`` (they check what a build from
    nothing does) and those that choose their own remote (their environment wins). Fixtures of a
    wider scope (a module's build, ``built_example``) are made before it, so without it."""
    if "tiny_model" in request.fixturenames and request.node.get_closest_marker("from_scratch") is None:
        monkeypatch.setenv("MODELKIT_REMOTE_CACHE", request.getfixturevalue("shared_cache"))


@pytest.fixture(scope="session")
def built_example(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole tiny example built once per test run from nothing (not registered; one build for
    both of pytest-xdist's workers): copy it with :func:`copy_built`, never build in it;
    :func:`build_log` is what its build said."""
    def build(folder: Path) -> None:
        project = copy_example(tiny_model, folder / "example")
        proc = modelkit("build", "--no-ollama", cwd=project)
        assert proc.returncode == 0, proc.stderr
        (folder / "build.log").write_text(proc.stderr)  # beside the project, so copies do not carry it

    return once_per_run(tmp_path_factory, "built-example", build) / "example"


def build_log(built: Path) -> str:
    """What the build of :func:`built_example` said on stderr (its steps, the ladder)."""
    return (built.parent / "build.log").read_text()


def copy_built(built: Path, project: Path) -> Path:
    """A copy of a built project (its state and artifact cache too), as a second checkout of it."""
    shutil.copytree(built, project, symlinks=True)
    return project
