"""What the CLI prints comes out as written: messages are text, never read as rich markup.

A message may name ``[evaluate] text``, a path may hold brackets, a tool's line may start with
``[  12/ 291]``: rich would eat each as a style tag. The consoles read no markup, and styles come
only from literals passed through :func:`modelkit.cli.reporter.markup`. The first test holds the
code to that; the others print every kind of message through the real consoles with such text.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT

from modelkit.cli import reporter
from modelkit.core.graph import Target
from modelkit.errors import OllamaUnavailable, StepError, UserError
from modelkit.ollama.engine import Choice
from modelkit.outcome import BuildOutcome, VariantOutcome

TRICKY = "[evaluate] text, [bold]not bold[/], C:\\[x]\\y and [/] alone"
STYLE_TAG = re.compile(r"\[/?(bold|dim|red|green|yellow|cyan|italic)\b[^\]]*\]|\[/\]")


def test_styles_come_only_from_literals_given_to_markup() -> None:
    """Every string in modelkit/cli/ that holds a rich style tag is the first argument of
    ``markup()``, a plain literal (values go through its holes, escaped)."""
    offenders = []
    for path in sorted((ROOT / "modelkit" / "cli").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        allowed = {id(call.args[0]) for call in ast.walk(tree) if isinstance(call, ast.Call)
                   and getattr(call.func, "id", getattr(call.func, "attr", None)) == "markup"
                   and call.args and isinstance(call.args[0], ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and STYLE_TAG.search(node.value) \
                    and id(node) not in allowed and not _is_docstring(tree, node):
                offenders.append(f"{path.name}:{node.lineno}: {node.value[:60]!r}")
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "markup" \
                    and node.args and not isinstance(node.args[0], ast.Constant):
                offenders.append(f"{path.name}:{node.lineno}: markup() of a non-literal")
    assert offenders == []


def _is_docstring(tree: ast.Module, node: ast.Constant) -> bool:
    return any(isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body
               and isinstance(n.body[0], ast.Expr) and n.body[0].value is node for n in ast.walk(tree))


def test_markup_fills_its_holes_with_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    reporter.stdout.print(reporter.markup("[bold]{}[/] and {}", TRICKY, "[red]x[/]"))
    assert capsys.readouterr().out == f"{TRICKY} and [red]x[/]\n"


class _Action:
    """Just enough of an action for the reporter's lines."""

    def describe(self) -> str:
        return f"quantize {TRICKY}"


def test_build_lines_show_names_reasons_notes_and_errors_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    target: Any = Target(f"gguf:{TRICKY}", _Action())
    rep = reporter.ConsoleReporter(verbose=True)
    rep.start(target, f"params changed: {TRICKY}")
    rep.note(target, f"note about {TRICKY}")
    rep.done(target, 1.5, changed=False)
    rep.failed(target, UserError(TRICKY))
    reporter.print_error(StepError(f"step failed: {TRICKY}", Path("/tmp/[x].log"), [f"[  12/ 291] {TRICKY}"]))
    err = capsys.readouterr().err
    assert f"  -> quantize {TRICKY} (params changed: {TRICKY})\n" in err
    assert f"  note: note about {TRICKY}\n" in err
    assert f"  ok  gguf:{TRICKY} 1.5s (same bytes as before: dependents stay fresh)\n" in err
    assert f"  !!  gguf:{TRICKY}\n" in err
    assert f"error: step failed: {TRICKY}\n" in err and f"  [  12/ 291] {TRICKY}\n" in err
    assert "full log: /tmp/[x].log\n" in err


def test_summaries_tables_and_reports_show_text_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    reporter.print_plan([{"target": f"t:{TRICKY}", "status": "stale", "action": TRICKY, "reason": "[why]"}])
    reporter.print_facts({"chat_template": TRICKY})
    reporter.print_report({"variants": [], "reference": None})
    out = capsys.readouterr().out
    assert f"t:{TRICKY}" in out and "[why]" in out and out.count(TRICKY) == 3
    assert "nothing evaluated yet: set [evaluate] text in the spec and run `modelkit build`\n" in out
    result = BuildOutcome(failed=[("t", UserError(f"bad: {TRICKY}"))])
    assert reporter.print_build_summary(result, 1.0) == 2
    err = capsys.readouterr().err
    assert f"error: bad: {TRICKY}\n" in err and "build failed after 1.0s: 0 built, 1 failed" in err
    assert not STYLE_TAG.search(err.replace(TRICKY, ""))


def test_the_build_summary_renders_the_outcome_it_is_given(capsys: pytest.CaptureFixture[str]) -> None:
    """The reporter formats what the build decided (no project, no graph, no GGUF to read)."""
    native = Choice("gguf_chat_template", ("tools",), ("tools", "thinking"))
    later = OllamaUnavailable("http://127.0.0.1:9", "connection refused", "m:q4", Path("build/q4.Modelfile"))
    outcome = BuildOutcome(ran=["a", "b"], fresh=["c"], unchanged=["b"], deferred=[("ollama:m:q4", later)],
                           notes=[f"note {TRICKY}"], variants=[
                               VariantOutcome(f"m:{TRICKY}", Path("build/x.Modelfile"), (f"m:{TRICKY}", "m:latest"),
                                              native, "mmproj-m-F16.gguf"),
                               VariantOutcome("m:q4", Path("build/q4.Modelfile"))])
    assert reporter.print_build_summary(outcome, 2.0) == 0
    out = capsys.readouterr().err  # the summary is for the person watching, on stderr
    assert "built 2 targets in 2.0s (1 were up to date, 1 produced identical bytes)" in out
    assert f"m:{TRICKY}  registered as m:{TRICKY}, m:latest" in out
    assert "Ollama renders the GGUF's Jinja (native chat mode); sees images (mmproj-m-F16.gguf)" in out
    assert "m:q4  build/q4.Modelfile; to register: ollama create m:q4 -f build/q4.Modelfile" in out
    assert f"note: note {TRICKY}" in out and "not registered (1 models): Ollama is not reachable at" in out


def test_modelkit_report_before_any_evaluation_names_the_section(tmp_path: Path) -> None:
    import sys

    from conftest import READY_GGUF_SPEC, modelkit
    sys.path.insert(0, str(ROOT / "tests" / "ollama"))
    from gguf_files import write_tiny_gguf

    write_tiny_gguf(tmp_path / "model.gguf")
    (tmp_path / "model.toml").write_text(READY_GGUF_SPEC)
    proc = modelkit("report", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "nothing evaluated yet: set [evaluate] text in the spec and run `modelkit build`" in proc.stdout
