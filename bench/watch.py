"""``modelkit watch``: from saving a params-only change to the updated Modelfile on disk.

Runs the watcher on a copy of the built tiny example (``make example`` first; without it, a
project shipping a ready GGUF is used), changes ``temperature`` in model.toml 15 times, and
measures how long each change takes to reach the Modelfile, beyond the quiet period (goal: p50
under 500 ms). It also prints which targets ran, to show that no GGUF step did.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from modelkit.watch import Round, Watcher

ROOT = Path(__file__).resolve().parent.parent
QUIET = 0.2


def project(tmp: Path) -> tuple[Path, str]:
    example = ROOT / "examples" / "tiny"
    if (example / "build").is_dir() and (example / "base").is_dir():
        dest = tmp / "tiny"
        shutil.copytree(example, dest, symlinks=True, ignore=shutil.ignore_patterns("modelkit.lock"))
        return dest / "model.toml", "the built tiny example"
    sys.path.insert(0, str(ROOT / "tests" / "ollama"))
    from gguf_files import write_tiny_gguf

    write_tiny_gguf(tmp / "model.gguf")
    (tmp / "model.toml").write_text('name = "bot"\n[base]\ngguf = "./model.gguf"\n[quantize]\ntypes = []\n'
                                    '[ollama]\ntemplate = "{{ .Prompt }}"\nparameters = { temperature = 0.2 }\n')
    return tmp / "model.toml", "a ready-GGUF project (run `make example` to measure the tiny example)"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        spec, what = project(Path(tmp))
        rounds: list[Round] = []
        watcher = Watcher(spec, quiet=QUIET, register="off", report=lambda line: None, on_round=rounds.append)
        stop = threading.Event()
        thread = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
        thread.start()
        _wait(lambda: len(rounds) >= 1)
        modelfiles = sorted(spec.parent.glob("build/*.Modelfile"))
        text = spec.read_text()
        latencies, ran = [], set()
        for i in range(15):
            value = f"{0.31 + i * 0.01:g}"  # written and rendered the same way (no trailing zeros)
            text = _set_temperature(text, value)
            count = len(rounds)
            start = time.perf_counter()
            spec.write_text(text)
            _wait(lambda value=value: all(f"PARAMETER temperature {value}" in m.read_text() for m in modelfiles))
            latencies.append(time.perf_counter() - start - QUIET)
            _wait(lambda count=count: len(rounds) > count)
            ran.update(t for r in rounds[count:] for t in r.ran)
        stop.set()
        thread.join(timeout=10)
    latencies.sort()
    p50 = statistics.median(latencies)
    p90 = latencies[int(len(latencies) * 0.9) - 1]
    print(f"watch on {what}, quiet period {QUIET * 1000:.0f} ms, 15 params-only edits:")
    print(f"  save -> updated Modelfile, beyond the quiet period: p50 {p50 * 1000:.0f} ms, p90 {p90 * 1000:.0f} ms "
          f"(goal: p50 < 500 ms)")
    gguf_steps = sorted(t for t in ran if t.startswith(("gguf:", "template", "source:")))
    print(f"  targets that ran: {', '.join(sorted(ran))}")
    print(f"  GGUF steps that ran: {', '.join(gguf_steps) if gguf_steps else 'none'}")


def _set_temperature(text: str, value: str) -> str:
    import re

    return re.sub(r"temperature = [0-9.]+", f"temperature = {value}", text, count=1)


def _wait(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the watcher did not react: {condition.__doc__ or condition}")
        time.sleep(0.005)


if __name__ == "__main__":
    main()
