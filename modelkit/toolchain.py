"""The llama.cpp toolchain: convert scripts, gguf-py and the binaries modelkit runs.

Which llama.cpp is used, in order: ``[toolchain] llama_cpp`` in the spec, then the environment
variable ``MODELKIT_LLAMA_CPP``, then a **managed** install in the user cache that modelkit builds
itself from a pinned source: the ``llama-cpp-python`` sdist on PyPI, which vendors llama.cpp
(convert scripts, gguf-py, CMake project). Pinning one source means everyone on a team converts
with the same scripts; the sdist's sha256 is checked before anything is unpacked.

The managed build uses CUDA (``-DGGML_CUDA=ON``) when ``nvcc`` is found *and* an NVIDIA GPU is
visible, and the CPU backend otherwise (``MODELKIT_BACKEND=cpu|cuda`` overrides). Installs are
keyed by version and backend, so a CPU and a CUDA build can live side by side.

A toolchain's **fingerprint** is part of every action key that uses it. It deliberately leaves the
backend out: conversion is Python and quantization runs on the CPU in both builds, so a teammate
with a GPU builds the same bytes and the lock file agrees.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from modelkit.core import process
from modelkit.core.files import replace_whole
from modelkit.core.hashing import sha256_file, tree_digest
from modelkit.core.installed import installed_version
from modelkit.core.locks import FileLock
from modelkit.core.process import Progress, ignore_progress
from modelkit.core.warm import Warm
from modelkit.errors import UserError
from modelkit.version import __version__

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
SDIST_NAME = f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}.tar.gz"
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
LOG_FLUSH = ("common/log.cpp", "        log = new common_log;\n",
             "        log = new common_log;\n"
             "        std::atexit([] { log->pause(); });  // modelkit: print what is queued before exiting\n")
"""llama.cpp's logger prints from a thread it never joins (llama.cpp issue 22142): a tool's last
lines, such as llama-perplexity's results, are lost at exit in most runs on a busy machine. The
patch flushes it at exit; it changes what the tools print, never what they write."""
TOWER_NAMES = ("conversion/gemma.py", '        if "vision_model.head." in name:\n',
               '        if name.startswith("vision_tower.") and not name.startswith("vision_tower.vision_model."):\n'
               '            # modelkit: transformers 5 saves the SigLIP tower without its vision_model level\n'
               '            name = "vision_tower.vision_model." + name[len("vision_tower."):]\n'
               '        if "vision_model.head." in name:\n')
"""Gemma 3's projector as transformers 5 saves it (``vision_tower.embeddings.…``, where Hub
checkpoints saved by transformers 4 hold ``vision_tower.vision_model.embeddings.…``): without the
patch, ``convert_hf_to_gguf.py --mmproj`` stops at ``Can not map tensor``. It renames the tensors
the converter reads; the GGUF it writes is the one a transformers 4 checkpoint gives."""
PATCHES = (LOG_FLUSH,)
PATCH_LEVEL = "log-flush-1"
"""Recorded in the manifest: a managed toolchain whose binaries were built without the patches is built again."""
SCRIPT_PATCHES = (TOWER_NAMES,)
"""Patches to the Python scripts only: applied to a managed tree when it is loaded, no rebuild."""
SCRIPT_PATCH_LEVEL = hashlib.sha256(json.dumps(SCRIPT_PATCHES).encode()).hexdigest()[:12]
CONVERT_PACKAGES = ("torch", "transformers", "numpy", "safetensors", "sentencepiece")
CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release", "-DLLAMA_CURL=OFF", "-DGGML_NATIVE=OFF", "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=ON",
)


class _Binary:
    """A program the managed build makes, read on a toolchain as the path to it."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, toolchain: Toolchain, owner: type[Toolchain]) -> Path:
        return toolchain.bin_dir / self.name


@dataclass(frozen=True)
class Toolchain:
    """A usable llama.cpp: a source tree (scripts, gguf-py, templates) and built binaries."""

    source: Path
    bin_dir: Path
    version: str
    backend: str
    origin: str  # "managed", "spec" or "MODELKIT_LLAMA_CPP"
    python: str = sys.executable
    scripts_digest: str | None = None
    """The convert scripts' digest, recorded when a managed toolchain (which never changes) is built."""

    @property
    def convert_hf(self) -> Path:
        return self.source / "convert_hf_to_gguf.py"

    @property
    def convert_lora(self) -> Path:
        return self.source / "convert_lora_to_gguf.py"

    @property
    def warm_convert(self) -> Warm:
        """The convert scripts start warm: torch, transformers and the tree's own ``conversion``
        package (with its gguf-py) imported once per build, not once per conversion."""
        tree = (str(self.source), str(self.source / "gguf-py"))
        return Warm(tree, ("torch", "transformers:AutoConfig", "transformers:AutoTokenizer", "conversion"))

    quantize = _Binary("llama-quantize")
    export_lora = _Binary("llama-export-lora")
    completion = _Binary("llama-completion")
    imatrix = _Binary("llama-imatrix")
    perplexity = _Binary("llama-perplexity")
    gguf_split = _Binary("llama-gguf-split")
    server = _Binary("llama-server")
    """llama-server: the engine of Ollama's native chat mode, for proving what it renders."""

    @property
    def templates(self) -> Path:
        return self.source / "models" / "templates"

    def projectable(self) -> frozenset[str]:
        """The architectures whose projector this tree's ``convert_hf_to_gguf.py --mmproj`` converts."""
        return _projectable(self.source)

    def fingerprint(self, component: str) -> dict[str, Any]:
        """What determines the bytes ``component`` ("convert" or "quantize") produces."""
        if component == "convert":
            return {"llama.cpp": self.version, "scripts": self.scripts_digest or _scripts_digest(self.source),
                    "python": {p: installed_version(p) for p in CONVERT_PACKAGES}}
        if component == "quantize":
            return {"llama.cpp": self.version}
        raise ValueError(f"unknown toolchain component {component!r}")

    def check_convert_deps(self) -> None:
        """Fail early, and clearly, when the convert scripts' Python packages are missing."""
        missing = [p for p in ("torch", "transformers", "numpy", "safetensors") if installed_version(p) is None]
        if missing:
            raise UserError(f"converting to GGUF needs {', '.join(missing)} in this Python "
                            f"({self.python}): pip install 'modelkit[convert]'")


BINARIES = tuple(attr.name for attr in vars(Toolchain).values() if isinstance(attr, _Binary))


# -- finding ----------------------------------------------------------------------------------


def cache_root() -> Path:
    """modelkit's user cache: $MODELKIT_CACHE, else $XDG_CACHE_HOME/modelkit, else ~/.cache/modelkit."""
    if env := os.environ.get("MODELKIT_CACHE"):
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "modelkit"


def detect_backend() -> str:
    forced = os.environ.get("MODELKIT_BACKEND", "").strip().lower()
    if forced:
        if forced not in ("cpu", "cuda"):
            raise UserError(f"MODELKIT_BACKEND={forced!r}: use 'cpu' or 'cuda'")
        return forced
    return "cuda" if _nvcc() and _gpu_visible() else "cpu"


def managed_dir(backend: str) -> Path:
    return cache_root() / "toolchain" / f"llama-cpp-python-{LLAMA_CPP_PYTHON_VERSION}-{backend}"


def find_toolchain(configured: Path | None = None, configured_where: str = "spec") -> Toolchain | None:
    """The toolchain to use, or None when the managed one is not installed yet.

    ``configured`` is ``[toolchain] llama_cpp`` from the spec (already resolved to a path).
    """
    if configured is not None:
        return _checkout(configured, configured_where)
    if env := os.environ.get("MODELKIT_LLAMA_CPP"):
        return _checkout(Path(env).expanduser(), "MODELKIT_LLAMA_CPP")
    return _load_managed(managed_dir(detect_backend()))


def require_toolchain(configured: Path | None = None, configured_where: str = "spec",
                      progress: Progress | None = None) -> Toolchain:
    """The toolchain to use, installing the managed one first if needed."""
    toolchain = find_toolchain(configured, configured_where)
    return toolchain or install(progress=progress)


class ProjectTools:
    """The toolchain a project's steps use, as the machine running them finds it: this one, or a
    cluster's worker (it is picklable, without what it found, and installs the managed toolchain
    there on first use)."""

    def __init__(self, configured: Path | None = None, configured_where: str = "spec") -> None:
        self.configured, self.configured_where = configured, configured_where
        self._found: Toolchain | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"configured": self.configured, "configured_where": self.configured_where, "_found": None}

    def find(self) -> Toolchain | None:
        """The toolchain, or None when the managed one is not installed yet."""
        if self._found is None:
            self._found = find_toolchain(self.configured, self.configured_where)
        return self._found

    def toolchain(self, progress: Progress | None = None) -> Toolchain:
        """The toolchain, installing the managed one first if needed."""
        if self._found is None:
            self._found = require_toolchain(self.configured, self.configured_where, progress)
        return self._found

    def fingerprint(self, component: str) -> dict[str, Any] | None:
        """What of the toolchain decides ``component``'s bytes (part of every key that uses it);
        None until it is installed."""
        toolchain = self.find()
        return toolchain.fingerprint(component) if toolchain is not None else None

    def describe(self) -> str:
        """``llama.cpp 0.3.36 (cpu)``; where none is installed, how one will be."""
        toolchain = self.find()
        if toolchain is None:
            return "llama.cpp, which `modelkit build` installs (or `modelkit toolchain install`)"
        return f"llama.cpp {toolchain.version} ({toolchain.backend})"

    def platform(self) -> str:
        """What decides the bytes of the steps that run on the GPU where there is one: the
        toolchain's backend ("cpu" or "cuda")."""
        toolchain = self.find()
        return toolchain.backend if toolchain is not None else detect_backend()

    def gpu(self) -> bool:
        """Whether the steps that can offload to a GPU do (a CUDA toolchain)."""
        return self.platform() == "cuda"

    @staticmethod
    def version() -> str:
        """The modelkit that runs the steps, on the machine that asks."""
        return __version__


def _checkout(root: Path, where: str) -> Toolchain:
    """A user's own llama.cpp checkout, built with CMake into ``build/``."""
    root = root.resolve()
    if not (root / "convert_hf_to_gguf.py").is_file():
        raise UserError(f"{where}: {root} is not a llama.cpp checkout (no convert_hf_to_gguf.py)")
    bin_dir = Path(os.environ.get("MODELKIT_LLAMA_CPP_BIN") or root / "build" / "bin")
    manifest = root / "modelkit-toolchain.json"
    if manifest.is_file():  # a tree that `modelkit toolchain install` made
        data = json.loads(manifest.read_text())
        return Toolchain(root, Path(data["bin_dir"]), data["version"], data["backend"], where)
    return Toolchain(root, bin_dir, _checkout_version(root, bin_dir), _binary_backend(bin_dir), where)


def _load_managed(home: Path) -> Toolchain | None:
    manifest = home / "toolchain.json"
    if not manifest.is_file():
        return None
    try:
        data = json.loads(manifest.read_text())
        toolchain = Toolchain(Path(data["source"]), Path(data["bin_dir"]), data["version"],
                              data["backend"], "managed", scripts_digest=data.get("scripts_digest"))
    except (ValueError, KeyError):
        return None
    if not all((toolchain.bin_dir / b).is_file() for b in BINARIES) or data.get("patches") != PATCH_LEVEL:
        return None
    if toolchain.scripts_digest is None or data.get("script_patches") != SCRIPT_PATCH_LEVEL:
        _patch(toolchain.source, SCRIPT_PATCHES)  # built by an older modelkit: patch and record it now, once
        data.update(scripts_digest=_scripts_digest(toolchain.source), script_patches=SCRIPT_PATCH_LEVEL)
        _write_manifest(manifest, data)
        toolchain = replace(toolchain, scripts_digest=data["scripts_digest"])
    return toolchain


@functools.cache
def _projectable(source: Path) -> frozenset[str]:
    from modelkit.formats.vision import projectable_architectures

    return projectable_architectures(source)


def _write_manifest(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` whole (readers never see half a file); a read-only cache keeps its old one."""
    replace_whole(path, json.dumps(data, indent=2) + "\n")


def describe_toolchain(toolchain: Toolchain) -> dict[str, Any]:
    """What ``modelkit toolchain show`` prints: where everything is, and the fingerprints."""
    return {"installed": True, "origin": toolchain.origin, "version": toolchain.version,
            "backend": toolchain.backend, "source": str(toolchain.source), "bin": str(toolchain.bin_dir),
            "convert_hf_to_gguf": str(toolchain.convert_hf), "convert_lora_to_gguf": str(toolchain.convert_lora),
            "llama-quantize": str(toolchain.quantize), "llama-completion": str(toolchain.completion),
            "python": toolchain.python,
            "fingerprint": {c: toolchain.fingerprint(c) for c in ("convert", "quantize")}}


# -- installing ---------------------------------------------------------------------------------


def install(backend: str | None = None, progress: Progress | None = None, force: bool = False) -> Toolchain:
    """Build the managed toolchain into the user cache (a few minutes on a laptop CPU)."""
    backend = backend or detect_backend()
    home = managed_dir(backend)
    report = progress or ignore_progress
    if not force and (existing := _load_managed(home)):
        return existing
    home.mkdir(parents=True, exist_ok=True)
    log = home / "build.log"
    with FileLock(home / ".lock", holder_name="another modelkit toolchain install"):
        if not force and (existing := _load_managed(home)):
            return existing
        (home / "toolchain.json").unlink(missing_ok=True)
        log.write_text("")
        sdist = _fetch_sdist(report)
        source = _unpack(sdist, home, report)
        _patch(source, (*PATCHES, *SCRIPT_PATCHES))
        build = home / "build"
        flags = list(CMAKE_FLAGS)
        if backend == "cuda":
            flags += ["-DGGML_CUDA=ON",
                      f"-DCMAKE_CUDA_ARCHITECTURES={os.environ.get('MODELKIT_CUDA_ARCHITECTURES', 'native')}"]
        report(None, f"configuring llama.cpp ({backend})")
        _cmake(["-S", source, "-B", build, *flags], log, "configure llama.cpp", report)
        jobs = str(os.cpu_count() or 2)
        _cmake(["--build", build, "--config", "Release", "-j", jobs, "--target", *BINARIES],
               log, "build llama.cpp", report)
        bin_dir = home / "bin"
        bin_dir.mkdir(exist_ok=True)
        for name in BINARIES:
            shutil.copy2(build / "bin" / name, bin_dir / name)
        toolchain = Toolchain(source, bin_dir, f"llama-cpp-python {LLAMA_CPP_PYTHON_VERSION}", backend, "managed",
                              scripts_digest=_scripts_digest(source))
        manifest = {"source": str(source), "bin_dir": str(bin_dir), "version": toolchain.version,
                    "backend": backend, "sdist_sha256": SDIST_SHA256, "cmake_flags": flags,
                    "scripts_digest": toolchain.scripts_digest, "patches": PATCH_LEVEL,
                    "script_patches": SCRIPT_PATCH_LEVEL}
        _write_manifest(home / "toolchain.json", manifest)
        return toolchain


def _fetch_sdist(report: Progress) -> Path:
    """The pinned llama-cpp-python sdist: $MODELKIT_LLAMA_CPP_SDIST, the cache, or PyPI."""
    if local := os.environ.get("MODELKIT_LLAMA_CPP_SDIST"):
        path = Path(local).expanduser()
        _verify(path)
        return path
    path = cache_root() / "downloads" / SDIST_NAME
    if path.is_file():
        try:
            _verify(path)
            return path
        except UserError:
            path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    import urllib.request

    index = os.environ.get("MODELKIT_PYPI_URL", "https://pypi.org/simple").rstrip("/")
    url = _sdist_url(index)
    tmp = path.with_suffix(".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            while chunk := response.read(1 << 20):
                out.write(chunk)
                done += len(chunk)
                report(done / total if total else None, f"downloading {SDIST_NAME} ({done >> 20} MB)")
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot download {SDIST_NAME} from {index} ({e}); download it yourself and set "
                        "MODELKIT_LLAMA_CPP_SDIST to its path") from None
    _verify(tmp)
    os.replace(tmp, path)
    return path


def _sdist_url(index: str) -> str:
    import urllib.request

    request = urllib.request.Request(f"{index}/llama-cpp-python/",
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            files = json.load(response)["files"]
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"cannot read {index}/llama-cpp-python/ ({e}); set MODELKIT_LLAMA_CPP_SDIST to a "
                        f"downloaded {SDIST_NAME}") from None
    for f in files:
        if f.get("filename") == SDIST_NAME:
            return str(f["url"])
    raise UserError(f"{index} has no {SDIST_NAME}")


def _verify(path: Path) -> None:
    digest = sha256_file(path).removeprefix("sha256:")
    if digest != SDIST_SHA256:
        raise UserError(f"{path}: sha256 {digest} is not the pinned {SDIST_SHA256}")


def _patch(source: Path, patches: tuple[tuple[str, str, str], ...]) -> None:
    """Apply ``patches`` to the unpacked sources (once: a patched file is left as it is)."""
    for name, old, new in patches:
        path = source / name
        text = path.read_text(encoding="utf-8")
        if new in text:
            continue
        if text.count(old) != 1:
            raise UserError(f"{path}: modelkit's patch no longer applies to this llama.cpp; report it to modelkit")
        path.write_text(text.replace(old, new), encoding="utf-8")


def _unpack(sdist: Path, home: Path, report: Progress) -> Path:
    """Extract only ``vendor/llama.cpp`` from the sdist into ``home/llama.cpp``."""
    dest = home / "llama.cpp"
    if (dest / "convert_hf_to_gguf.py").is_file() and (dest / ".complete").is_file():
        return dest
    report(None, "unpacking llama.cpp sources")
    import tarfile

    prefix = f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}/vendor/llama.cpp/"
    tmp = home / "llama.cpp.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(sdist) as tar:
        members = []
        for member in tar.getmembers():
            if member.name.startswith(prefix) and len(member.name) > len(prefix):
                member.name = member.name[len(prefix):]
                members.append(member)
        tar.extractall(tmp, members=members, filter="data")
    (tmp / ".complete").write_text(SDIST_SHA256 + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return dest


_CMAKE_PERCENT = re.compile(r"^\[\s*(\d+)%\]")


def _cmake(args: list[Any], log: Path, what: str, report: Progress) -> None:
    if shutil.which("cmake") is None:
        raise UserError(f"{what}: cmake is not installed (apt-get install cmake g++)")
    process.run(["cmake", *args], log, what,
                on_line=lambda line: report(process.fraction_in(line, _CMAKE_PERCENT), f"{what}: {line[:100]}"))


# -- facts ------------------------------------------------------------------------------------


def _nvcc() -> str | None:
    return shutil.which("nvcc") or next(
        (str(p) for p in (Path("/usr/local/cuda/bin/nvcc"),) if p.is_file()), None)


def _gpu_visible() -> bool:
    smi = shutil.which("nvidia-smi")
    if not smi:
        return False
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


_SCRIPT_DIGESTS: dict[Path, str] = {}


def _scripts_digest(source: Path) -> str:
    """One digest over the Python the convert steps run: the scripts, conversion/ and gguf-py."""
    if source in _SCRIPT_DIGESTS:
        return _SCRIPT_DIGESTS[source]
    files = [source / "convert_hf_to_gguf.py", source / "convert_lora_to_gguf.py"]
    for folder in ("conversion", "gguf-py/gguf"):
        files += sorted((source / folder).rglob("*.py"))
    _SCRIPT_DIGESTS[source] = digest = tree_digest(source, files)
    return digest


def _checkout_version(root: Path, bin_dir: Path) -> str:
    quantize = bin_dir / "llama-quantize"
    if quantize.is_file():
        try:
            out = subprocess.run([str(quantize), "--version"], capture_output=True, text=True, timeout=30)
            m = re.search(r"version: (\d+ \(\w+\))", out.stdout + out.stderr)
            if m:
                return f"llama.cpp {m.group(1)}"
        except (OSError, subprocess.TimeoutExpired):
            pass
    return f"llama.cpp checkout {root}"


def _binary_backend(bin_dir: Path) -> str:
    return "cuda" if any(bin_dir.glob("*cuda*")) or any(bin_dir.parent.rglob("libggml-cuda*")) else "cpu"
