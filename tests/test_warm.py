"""Scripts started warm behave as started cold (argv, environment, folder, output, exit status,
Ctrl-C and kills) while their preloaded modules are imported once per server, not once per run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from modelkit.core import process, warm
from modelkit.core.warm import Warm
from modelkit.errors import StepError


@pytest.fixture(autouse=True)
def warm_starts_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about warm starts: on, even in a run with ``MODELKIT_WARM=0`` (as the cold
    baseline of the suite is measured)."""
    monkeypatch.setenv(warm.SWITCH, "1")



PROBE = textwrap.dedent("""
    import os, sys
    import heavy
    print("argv", sys.argv[1:])
    print("cwd", os.getcwd())
    print("env", os.environ.get("PROBE_VALUE"), "HOME" in os.environ)
    print("path0", sys.path[0])
    print("name", __name__)
    print("comm", open("/proc/self/comm").read().strip())
    print("heavy", heavy.LOADED_IN)
    sys.exit(int(sys.argv[1]))
""")

HEAVY = 'import os\nLOADED_IN = os.getpid()\nopen(os.environ["HEAVY_LOG"], "a").write(f"{LOADED_IN}\\n")\n'


@pytest.fixture
def scripts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Warm, Path]:
    """A probe script and the module it imports, which logs each import."""
    folder = tmp_path / "tool"
    folder.mkdir()
    (folder / "probe.py").write_text(PROBE)
    (folder / "heavy.py").write_text(HEAVY)
    monkeypatch.setenv("HEAVY_LOG", str(tmp_path / "heavy.log"))
    return folder / "probe.py", Warm((str(folder),), ("heavy",)), tmp_path / "heavy.log"


def server_of(how: Warm) -> subprocess.Popen[bytes]:
    """The server runs of ``how`` in this environment go to."""
    return warm._SERVERS[(sys.executable, how, frozenset(os.environ.items()))].proc


def run_probe(probe: Path, how: Warm | None, log: Path, code: int, cwd: Path, **env: str) -> tuple[int, list[str]]:
    lines: list[str] = []
    status = process.stream([sys.executable, probe, str(code), "x y"], log, lines.append,
                            env={**os.environ, **env}, cwd=cwd, warm=how)
    return status, lines


def test_a_warm_run_is_the_cold_run_with_its_modules_loaded_once(scripts: tuple[Path, Warm, Path],
                                                                 tmp_path: Path) -> None:
    probe, how, imports = scripts
    cold = run_probe(probe, None, tmp_path / "cold.log", 3, tmp_path, PROBE_VALUE="v")
    imports.unlink()
    runs = [run_probe(probe, how, tmp_path / f"warm{i}.log", 3, tmp_path, PROBE_VALUE="v") for i in range(3)]
    server = int(imports.read_text())  # imported once, by the server, for all three
    for status, lines in runs:
        assert status == 3
        assert [line for line in lines if not line.startswith(("heavy", "comm"))] == \
               [line for line in cold[1] if not line.startswith(("heavy", "comm"))]
        assert f"heavy {server}" in lines and "comm probe.py" in lines  # ps shows the script, not python
    assert "name __main__" in cold[1] and f"path0 {probe.parent}" in cold[1]
    assert "argv ['3', 'x y']" in cold[1] and "env v True" in cold[1] and f"cwd {tmp_path}" in cold[1]


def test_a_different_environment_gets_its_own_server(scripts: tuple[Path, Warm, Path], tmp_path: Path) -> None:
    probe, how, imports = scripts
    for value in ("a", "b", "a"):
        assert run_probe(probe, how, tmp_path / "log", 0, tmp_path, PROBE_VALUE=value)[0] == 0
    assert len(imports.read_text().split()) == 2  # libraries may read a variable when imported


def test_a_failing_warm_script_fails_its_step_as_a_cold_one_does(tmp_path: Path) -> None:
    script = tmp_path / "fails.py"
    script.write_text("raise ValueError('mmap length is greater than file size')\n")
    for how in (None, Warm((str(tmp_path),), ())):
        with pytest.raises(StepError) as failed:
            process.run([sys.executable, script], tmp_path / "log", "convert", warm=how)
        assert str(failed.value) == ("convert failed: fails.py exited with status 1: "
                                     "ValueError: mmap length is greater than file size")


def test_stopping_a_warm_run_stops_it_and_what_it_started(tmp_path: Path) -> None:
    script = tmp_path / "sleeps.py"
    script.write_text("import subprocess, time\nsubprocess.Popen(['sleep', '61.5'])\nprint('up', flush=True)\n"
                      "time.sleep(60)\n")
    running = warm.start(sys.executable, [str(script)], Warm((str(tmp_path),), ()), None, tmp_path)
    assert running is not None and running.stdout is not None
    assert running.stdout.readline() == b"up\n"
    process.stop(running)
    assert running.wait() == -signal.SIGTERM
    assert subprocess.run(["pgrep", "-f", "^sleep 61.5$"], capture_output=True).stdout == b""


def test_a_run_stopped_as_soon_as_it_starts_is_stopped_every_time(tmp_path: Path) -> None:
    """A stop right after the start (Ctrl-C as a build begins) must find the run's session: its
    pid is reported only once the child has called setsid, and stop() never waits unbounded."""
    script = tmp_path / "sleeps.py"
    script.write_text("import time\ntime.sleep(60)\n")
    how = Warm((str(tmp_path),), ())
    for _ in range(200):
        running = warm.start(sys.executable, [str(script)], how, None, tmp_path)
        assert running is not None
        stopping = threading.Thread(target=process.stop, args=(running,), daemon=True)
        stopping.start()
        stopping.join(timeout=20)
        assert not stopping.is_alive(), "stop() is waiting for a run it could not signal"
        assert running.wait(timeout=5) in (-signal.SIGTERM, -signal.SIGKILL)


def test_a_server_shows_a_short_command_line(tmp_path: Path) -> None:
    """``ps`` on a user's machine shows the server's module file, not its source."""
    (tmp_path / "quick.py").write_text("print('ok')\n")
    how = Warm((str(tmp_path),), ())
    running = warm.start(sys.executable, [str(tmp_path / "quick.py")], how, None, tmp_path)
    assert running is not None and running.wait(timeout=30) == 0
    argv = Path(f"/proc/{server_of(how).pid}/cmdline").read_bytes().split(b"\0")
    assert argv[1].endswith(b"modelkit/core/warm_server.py") and len(b" ".join(argv)) < 500


def test_a_server_that_dies_fails_its_runs_and_the_next_run_gets_a_new_one(tmp_path: Path) -> None:
    script = tmp_path / "sleeps.py"
    script.write_text("import time\ntime.sleep(60)\n")
    how = Warm((str(tmp_path),), ())
    running = warm.start(sys.executable, [str(script)], how, None, tmp_path)
    assert running is not None
    server_of(how).kill()
    assert running.wait(timeout=30) == -signal.SIGKILL  # it can no longer say how the run ended
    os.killpg(running.pid, signal.SIGKILL)
    (tmp_path / "quick.py").write_text("print('ok')\n")
    lines: list[str] = []
    assert process.stream([sys.executable, tmp_path / "quick.py"], tmp_path / "log", lines.append, warm=how) == 0
    assert lines == ["ok"]


def test_an_idle_server_exits_and_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(warm, "IDLE_SECONDS", 0.5)
    (tmp_path / "quick.py").write_text("print('ok')\n")
    how = Warm((str(tmp_path),), ())
    first = warm.start(sys.executable, [str(tmp_path / "quick.py")], how, None, tmp_path)
    assert first is not None and first.wait(timeout=30) == 0
    assert server_of(how).wait(timeout=30) == 0  # it exited once idle
    again = warm.start(sys.executable, [str(tmp_path / "quick.py")], how, None, tmp_path)
    assert again is not None and again.wait(timeout=30) == 0


def test_a_server_exits_when_its_client_is_killed(tmp_path: Path) -> None:
    (tmp_path / "quick.py").write_text("print('ok')\n")
    client = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from modelkit.core import warm
        run = warm.start(sys.executable, [{str(tmp_path / 'quick.py')!r}], warm.Warm(({str(tmp_path)!r},), ()),
                         None, None)
        run.wait()
        print(next(iter(warm._SERVERS.values())).proc.pid, flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    assert client.stdout is not None
    server = int(client.stdout.readline())
    client.kill()
    client.wait()
    deadline = time.monotonic() + 30
    while Path(f"/proc/{server}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # polling for the orphaned server to notice, bounded by the deadline
    assert not Path(f"/proc/{server}").exists() or "Z" in Path(f"/proc/{server}/stat").read_text().split()[2]


def test_warm_starts_can_be_switched_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(warm.SWITCH, "0")
    (tmp_path / "quick.py").write_text("print('ok')\n")
    assert warm.start(sys.executable, [str(tmp_path / "quick.py")], Warm((str(tmp_path),), ()), None, None) is None
