"""The engine at scale: no-op builds, cold hashing, and inputs that come from a Hugging Face cache.

1. No-op build time with 8 GB of inputs vs 8 MB (goal: ratio <= 1.2, absolute < 0.3 s). The
   inputs are sparse files (no disk used); the graph has the shape of a real project (convert,
   adapter, merge, quantizations, Modelfiles) with cheap actions, so only the engine is measured.
2. Cold hashing throughput of modelkit's Hasher vs a plain ``hashlib.file_digest`` loop over the
   same files (goal: >= 1.0x).
3. Bytes read to digest files that came from a Hugging Face cache (goal: 0).
"""

from __future__ import annotations

import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from modelkit import hub
from modelkit.core.engine import Engine
from modelkit.core.graph import Graph, Target
from modelkit.core.hashing import Hasher
from modelkit.core.state import State

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from fake_actions import FileAction  # noqa: E402 - after the sys.path entry that finds it

GB = 1 << 30


def Cheap(name: str, sources: list[Path], out: Path) -> FileAction:
    """An action that costs nothing to run, so that only the engine is measured."""
    return FileAction(out, sources, params={"name": name}, compute=lambda params, s, r: name.encode(), name=name)


def project(root: Path, total: int, shards: int = 4) -> Graph:
    """A model folder of ``shards`` sparse safetensors files totalling ``total`` bytes."""
    base = root / "base"
    base.mkdir(parents=True)
    files = []
    for i in range(shards):
        path = base / f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        with open(path, "wb") as f:
            f.truncate(total // shards)
        files.append(path)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (base / name).write_text("{}")
        files.append(base / name)
    lora = root / "lora"
    lora.mkdir()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        (lora / name).write_bytes(b"x" * 1000)
    old = time.time() - 60  # inputs written a while ago, as in real use
    for p in [*files, *lora.iterdir()]:
        os.utime(p, (old, old))
    build = root / "build"
    graph = Graph()
    graph.add(Target("gguf:base.f16", Cheap("convert", files, build / "base.f16.gguf")))
    graph.add(Target("template", Cheap("template", files[-2:], build / "template.json")))
    graph.add(Target("gguf:adapter.x", Cheap("lora", list(lora.iterdir()), build / "adapter.gguf")))
    graph.add(Target("gguf:base+x.f16", Cheap("merge", [], build / "merged.gguf"), ("gguf:base.f16", "gguf:adapter.x")))
    for q in ("Q4_K_M", "Q5_K_M", "Q8_0"):
        graph.add(Target(f"gguf:base+x.{q}", Cheap(q, [], build / f"{q}.gguf"), ("gguf:base+x.f16",)))
        graph.add(Target(f"modelfile:{q}", Cheap(f"mf{q}", [], build / f"{q}.Modelfile"),
                         (f"gguf:base+x.{q}", "template")))
    return graph


def noop_seconds(root: Path, total: int, repeats: int = 15) -> tuple[float, int]:
    graph = project(root, total)
    state = State(root / ".modelkit")
    Engine(graph, root, state).build()
    times, read = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        engine = Engine(graph, root, state)
        result = engine.build()
        times.append(time.perf_counter() - start)
        assert not result.ran
        read += engine.hasher.bytes_read
    return statistics.median(times), read


def cli_noop_seconds(*flags: str, repeats: int = 5) -> float | None:
    """The whole ``modelkit build`` command on the built tiny example, if it is there."""
    spec = ROOT / "examples" / "tiny" / "model.toml"
    if not (ROOT / "examples" / "tiny" / "build").is_dir():
        return None
    cmd = [sys.executable, "-m", "modelkit", "build", str(spec), *flags]
    if subprocess.run(cmd, capture_output=True).returncode != 0:
        return None
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def hashing(root: Path, files: int = 4, size: int = 256 << 20) -> tuple[float, float]:
    """(modelkit GB/s, hashlib.file_digest GB/s) over the same files, best of 3 each."""
    paths = []
    chunk = os.urandom(1 << 20)
    for i in range(files):
        path = root / f"blob{i}"
        with open(path, "wb") as f:
            for _ in range(size >> 20):
                f.write(chunk)
        paths.append(path)
    total = files * size

    def plain() -> None:
        for p in paths:
            with open(p, "rb") as f:
                hashlib.file_digest(f, "sha256")

    def ours() -> None:
        Hasher(State(Path(tempfile.mkdtemp(dir=root)))).digests(paths)

    best: dict[str, float] = {}
    for _ in range(3):
        for name, fn in (("plain", plain), ("ours", ours)):
            start = time.perf_counter()
            fn()
            best[name] = min(best.get(name, 1e9), time.perf_counter() - start)
    return total / best["ours"] / GB, total / best["plain"] / GB


def hf_bytes_read(root: Path) -> tuple[int, int]:
    """(bytes read, bytes digested) for a 4 GB model in a Hugging Face cache layout."""
    folder = root / "hf" / "models--org--model"
    blobs = folder / "blobs"
    blobs.mkdir(parents=True)
    names = {}
    for i in range(4):
        digest = hashlib.sha256(str(i).encode()).hexdigest()  # stands for the LFS oid of a 1 GB shard
        with open(blobs / digest, "wb") as f:
            f.truncate(GB)
        names[f"model-{i}.safetensors"] = digest
    snapshot = folder / "snapshots" / ("c" * 40)
    snapshot.mkdir(parents=True)
    for name, digest in names.items():
        os.symlink(f"../../blobs/{digest}", snapshot / name)
    hasher = Hasher(State(root / "hfstate"), free_digest=hub.blob_digest)
    hasher.digests([snapshot / n for n in names])
    return hasher.bytes_read, 4 * GB


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        small, small_read = noop_seconds(root / "small", 8 << 20)
        big, big_read = noop_seconds(root / "big", 8 * GB)
        print(f"no-op build, engine only (median of 15): 8 MB inputs {small * 1000:.1f} ms, "
              f"8 GB inputs {big * 1000:.1f} ms -> ratio {big / small:.2f} (goal <= 1.2); "
              f"bytes read {small_read + big_read}")
        cli = cli_noop_seconds("--no-ollama")
        asking = cli_noop_seconds()
        if cli is not None and asking is not None:
            print(f"no-op `modelkit build --no-ollama` on the tiny example, whole command with Python start-up "
                  f"(median of 5): {cli * 1000:.0f} ms (goal < 300 ms); with registration, which asks Ollama "
                  f"about each model: {asking * 1000:.0f} ms")
        ours, plain = hashing(root)
        print(f"cold hashing, 4 x 256 MB (page cache): modelkit {ours:.2f} GB/s, hashlib.file_digest loop "
              f"{plain:.2f} GB/s -> ratio {ours / plain:.2f} (goal >= 1.0; {os.cpu_count()} cores)")
        read, digested = hf_bytes_read(root)
        print(f"Hugging Face cache inputs: {digested / GB:.0f} GB digested, {read} bytes read (goal 0)")


if __name__ == "__main__":
    main()
