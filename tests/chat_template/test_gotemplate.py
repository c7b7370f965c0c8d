"""modelkit's Go-template evaluator against Go's real text/template (the program in gorender/).

The runtime proof trusts the evaluator, so every template the translator produces for llama.cpp's
collection, and a set of hand-written edge cases, must render byte for byte as Go renders them,
fed the data the way Ollama feeds it; and fail where Go fails.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from modelkit.chat_template.proof import BATTERY
from modelkit.chat_template.translator import Unsupported, translate
from modelkit.golang import template as gt

pytestmark = pytest.mark.go

M = "{{ if false }}{{ .Messages }}{{ end }}"  # makes Ollama take the .Messages path
CASES = [
    "{{- range $i, $m := .Messages }}<{{ $m.Role }}>{{ .Content }}{{ end }}{{ currentDate }}|{{ yesterdayDate }}",
    '{{ $x := 0 }}{{ range .Messages }}{{ $x = len (printf "%*sx" $x "") }}{{ end }}{{ $x }} {{ printf "%b" 6 }} {{ print 1 2 "a" 3 "b" }}',
    '{{ define "t" }}{{ if and (gt (len .) 0) (eq (slice . 0 1) " ") }}{{ template "t" (slice . 1) }}{{ else }}[{{ . }}]{{ end }}{{ end }}{{ range .Messages }}{{ template "t" .Content }}{{ end }}',
    "{{ range $i, $m := .Messages }}{{ if eq $i 1 }}{{ break }}{{ end }}{{ $m.Role }}{{ continue }}x{{ end }}",
    "{{ $a := index .Messages 0 }}{{ $b := index .Messages 0 }}{{ eq $a $b }}{{ eq (index .Messages 0) (index .Messages 1) }}",
    M + '{{ eq 1 "a" }}',
    M + '{{ eq .Nope "a" }}',
    M + '{{ .Nope }}',
    M + '{{ slice "héllo" 0 2 }}|{{ len "héllo" }}|{{ index "abc" 1 }}|{{ eq (index "abc" 1) 98 }}',
    "{{ json .System }}{{ json (index .Messages 0).Content }}",
    "{{ if $x := .System }}{{ $x }}{{ end }}{{ range .Messages }}{{ .Role }}{{ else }}none{{ end }}",
    M + '{{ template "raise: no" . }}',
    "{{ and 0 (index .Messages 99) }}{{ or 1 (index .Messages 99) }}{{ and 1 (index .Messages 99) }}",
    "{{ (index .Messages 0).Role }}{{ (index $.Messages 0).Content }}",
    M + "{{- /* comment */ -}}  x  {{- \" y \" -}}  z {{/* c */}}",
    M + '{{ printf "%q %s %d %v %5s|%-4d|" "a\\"b" "s" 7 true "r" 3 }}',
    M + '{{ slice "abc" 2 1 }}',
    M + '{{ lt 1 2 }}{{ ge "b" "a" }}{{ lt true false }}',
    M + "{{ $y }}",
    M + "{{ if true }}{{ $z := 1 }}{{ end }}{{ $z }}",
    "{{ range .Messages }}{{ break }}{{ end }}{{ template \"x\" }}{{ define \"x\" }}X{{ .Messages }}{{ end }}",
    "{{ .System }}|{{ len .Messages }}",
    M + '{{ eq "a" "b" "a" }}{{ not 0 }}{{ ne 1 2 }}{{ index .Tools 0 }}',
]
CONVERSATIONS = [[dict(m) for m in c.messages] for c in BATTERY] + [
    [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}, {"role": "tool", "content": "t1"},
     {"role": "tool", "content": "t2"}],
]
_today = date.fromisoformat("2025-03-04")  # the clock gorender is given (conftest.TODAY)


def _python(template: str, conversations: list[list[dict[str, Any]]]) -> dict[str, Any]:
    try:
        tmpl = gt.check_ollama_parse(template)
    except gt.GoTemplateError as exc:
        return {"error": str(exc)}
    results = []
    for conv in conversations:
        try:
            results.append({"output": gt.execute(tmpl, gt.ollama_data(conv), _today)})
        except gt.GoTemplateError as exc:
            results.append({"error": str(exc)})
    return {"results": results}


def _assert_same(template: str, go: dict[str, Any], py: dict[str, Any]) -> None:
    assert bool(go.get("error")) == bool(py.get("error")), (template, go.get("error"), py.get("error"))
    if go.get("error"):
        return
    for k, (g, p) in enumerate(zip(go["results"], py["results"])):
        assert ("output" in g) == ("output" in p), (template, k, g, p)
        if "output" in g:
            assert g["output"] == p["output"], (template, k)


def test_edge_cases_match_go(go_render: Any) -> None:
    results = go_render([{"template": t, "conversations": CONVERSATIONS} for t in CASES])
    for template, go in zip(CASES, results):
        _assert_same(template, go, _python(template, CONVERSATIONS))


def test_every_translated_llama_cpp_template_matches_go(go_render: Any, llama_cpp_templates: Path) -> None:
    cases, names = [], []
    for path in sorted(llama_cpp_templates.glob("*.jinja")):
        source = path.read_text(encoding="utf-8")
        for add_bos in (True, False):
            try:
                tr = translate(source, "<s>", "</s>", add_bos)
            except Unsupported:
                continue
            cases.append({"template": tr.go_template, "conversations": CONVERSATIONS})
            names.append(f"{path.name} add_bos={add_bos}")
    assert len(cases) >= 120
    for name, case, go in zip(names, cases, go_render(cases)):
        assert not go.get("error"), f"{name}: Go refuses the template: {go.get('error')}"
        _assert_same(name, go, _python(case["template"], CONVERSATIONS))


def test_modelfile_system_is_prepended_like_ollama(go_render: Any) -> None:
    template = "{{ range .Messages }}[{{ .Role }}:{{ .Content }}]{{ end }}"
    convs = [[{"role": "user", "content": "hi"}], [{"role": "system", "content": "own"}, {"role": "user", "content": "hi"}]]
    go = go_render([{"template": template, "conversations": convs, "system": "SYS"}])[0]
    ours = [gt.execute(gt.parse(template), gt.ollama_data(c, system="SYS"), _today) for c in convs]
    assert [r["output"] for r in go["results"]] == ours == ["[system:SYS][user:hi]", "[system:own][user:hi]"]
