"""Splitting a GGUF that is over the Hub's file size limit, with llama.cpp's ``llama-gguf-split``.

The split set is what llama.cpp and Ollama load natively (``name-00001-of-00003.gguf`` ...: given
the first part they find the rest, and ``llama-gguf-split --merge`` joins them), so the repository
stays usable by every runtime.

``--split-max-size`` counts tensor bytes only, and the first part also holds all the metadata
(the tokenizer alone can be megabytes): when a part comes out over the limit, the split is made
again with the overshoot taken off. The set is kept in ``.modelkit/publish/split/`` with a stamp
naming the GGUF it came from, so a second publish of the same build splits nothing and, the
parts being byte-identical, uploads nothing.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

from modelkit.core.process import Progress, ignore_progress
from modelkit.errors import PublishError, StepError
from modelkit.publish.plan import Upload

_MB = 1_000_000  # llama-gguf-split's M is decimal
_ATTEMPTS = 4


def split_gguf(tool: Path, gguf: Upload, max_bytes: int, folder: Path,
               progress: Progress | None = None) -> list[Upload]:
    """The parts of ``gguf`` (each at most ``max_bytes``), named after its name in the repository."""
    assert gguf.local is not None
    report = progress or ignore_progress
    stem = gguf.path_in_repo.removesuffix(".gguf")
    out = folder / stem
    stamp = out / "split.json"
    source = {"sha256": gguf.digest} if gguf.digest else \
        {"size": gguf.local.stat().st_size, "mtime_ns": gguf.local.stat().st_mtime_ns}
    wanted: dict[str, object] = {"source": source, "max_bytes": max_bytes}
    kept = _kept(stamp, wanted)
    if kept is None:
        report(None, f"splitting {gguf.path_in_repo} into parts of at most {max_bytes / 1e9:.2f} GB")
        kept = _split(tool, gguf.local, stem, max_bytes, out)
        stamp.write_text(json.dumps({**wanted, "files": kept}, indent=2) + "\n")
    return [Upload(name, f"{gguf.what} (part {i} of {len(kept)})", local=out / name) for i, name in
            enumerate(kept, 1)]


def _kept(stamp: Path, wanted: dict[str, object]) -> list[str] | None:
    """The parts an earlier publish made of the same GGUF with the same limit, if all are still there."""
    try:
        data = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return None
    files = data.get("files")
    if {k: data.get(k) for k in wanted} != wanted or not isinstance(files, list):
        return None
    return files if all((stamp.parent / f).is_file() for f in files) else None


def _split(tool: Path, source: Path, stem: str, max_bytes: int, out: Path) -> list[str]:
    """Split until every part fits (see the module docstring); the part names, in order."""
    budget = max_bytes // _MB
    for _ in range(_ATTEMPTS):
        if budget < 1:
            break
        work = out.with_name(out.name + ".tmp")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        _run(tool, ["--split", "--split-max-size", f"{budget}M", str(source), str(work / stem)])
        parts = sorted(p.name for p in work.glob(f"{stem}-*-of-*.gguf"))
        largest = max((work / p).stat().st_size for p in parts)
        if largest <= max_bytes:
            shutil.rmtree(out, ignore_errors=True)
            work.rename(out)
            return parts
        budget -= max(1, math.ceil((largest - max_bytes) / _MB))
    shutil.rmtree(out.with_name(out.name + ".tmp"), ignore_errors=True)
    raise PublishError(f"{source.name}: cannot split into files of at most {max_bytes} bytes (one tensor, or "
                       "the metadata, is bigger): raise [publish] max_file_size")


def _run(tool: Path, args: list[str]) -> None:
    if not tool.is_file():
        raise PublishError(f"{tool} is missing: the toolchain has no llama-gguf-split; run "
                           "`modelkit toolchain install --force`")
    proc = subprocess.run([str(tool), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-10:]
        raise StepError(f"llama-gguf-split failed (exit {proc.returncode})", tail=tail)


def merge_parts(tool: Path, first: Path, out: Path) -> None:
    """Join a split set back into one GGUF (``llama-gguf-split --merge``)."""
    _run(tool, ["--merge", str(first), str(out)])
