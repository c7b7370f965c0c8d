"""Hand-written Ollama templates for well-known chat formats: a cross-check of the translator.

Each family is written directly in Go template form, the way a person would write it for
Ollama, and recognised by the markers its Jinja writes. When a base model's template is
recognised, :func:`cross_check` proves the family template against the Jinja too: if both the
general translation and the family template are proven, two independent routes agree; if only
one is, the report says which. A family template is also the fallback when the general
translator cannot express a template (it still has to pass the same proof).

A family template does not read Ollama's ``think``: for a Jinja with a thinking switch it is
proven with all think settings where the switch changes nothing it writes, else with think unset
only, which its proof says.

Families cover the plain chat format (no tools): ChatML and Qwen 2.5's ChatML with its default
system prompt, Llama 3 and Llama 3.1/3.3 (with their system header), Gemma, Phi-3 and Zephyr.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..source import ChatTemplateSource
from ..translator import Call, If, Node, Out, Range, Text, print_template, strip_defines
from .prove import Proof, prove

_LAST = "eq (len (slice $.Messages $i)) 1"
_PREFILL = f'and ({_LAST}) (eq $m.Role "assistant")'


@dataclass(frozen=True)
class Family:
    """A chat format: how to recognise its Jinja and how to write it for Ollama."""

    name: str
    markers: tuple[str, ...]
    build: Callable[[ChatTemplateSource], str]

    def matches(self, jinja: str) -> bool:
        return all(m in jinja for m in self.markers)


def _gen_prompt(text: str) -> list[Node]:
    """The generation prompt, when the conversation does not end with the assistant."""
    return [If('ne (index $.Messages (len (slice $.Messages 1))).Role "assistant"', [Text(text)])]


def _bos(src: ChatTemplateSource) -> list[Node]:
    """BOS, when the Jinja writes it and the tokenizer does not add it."""
    writes = "bos_token" in src.template
    return [Text(src.bos_token)] if writes and src.bos_token and not src.add_bos_token else []


def _turns(open_: Callable[[], list[Node]], close: str, content: Node) -> Range:
    """A range over the messages: opener, content, and the closer except after a prefill."""
    return Range("$i", "$m", "$.Messages", open_() + [content, If(f"not ({_PREFILL})", [Text(close)])])


def _strip_call() -> Node:
    return Call("strip", "$m.Content")


def _render(nodes: list[Node], strip: bool = False) -> str:
    defines = strip_defines((None,), (None,))[1] if strip else {}
    return print_template(nodes, defines)


def _chatml(src: ChatTemplateSource) -> str:
    return _chatml_with(src, [])


QWEN_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."


def _qwen25(src: ChatTemplateSource) -> str:
    default: list[Node] = [If('ne (index $.Messages 0).Role "system"',
                              [Text(f"<|im_start|>system\n{QWEN_SYSTEM}<|im_end|>\n")])]
    return _chatml_with(src, default)


def _chatml_with(src: ChatTemplateSource, head: list[Node]) -> str:
    nodes = _bos(src) + head + [_turns(lambda: [Text("<|im_start|>"), Out("$m.Role"), Text("\n")], "<|im_end|>\n",
                                       Out("$m.Content"))]
    return _render(nodes + _gen_prompt("<|im_start|>assistant\n"))


def _llama31(src: ChatTemplateSource) -> str:
    """Llama 3.1/3.3: a system header with the knowledge cut-off, even without a system message."""
    head: list[Node] = [
        Text("<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
             "Today Date: 26 Jul 2024\n\n"),
        If('eq (index $.Messages 0).Role "system"', [Call("strip", "(index $.Messages 0).Content")]),
        Text("<|eot_id|>"),
    ]
    body = Range("$i", "$m", "$.Messages", [If('or (ne $i 0) (ne $m.Role "system")', [
        Text("<|start_header_id|>"), Out("$m.Role"), Text("<|end_header_id|>\n\n"), _strip_call(),
        If(f"not ({_PREFILL})", [Text("<|eot_id|>")])])])
    return _render(_bos(src) + head + [body] + _gen_prompt("<|start_header_id|>assistant<|end_header_id|>\n\n"),
                   strip=True)


def _llama3(src: ChatTemplateSource) -> str:
    nodes = _bos(src) + [_turns(lambda: [Text("<|start_header_id|>"), Out("$m.Role"), Text("<|end_header_id|>\n\n")],
                                "<|eot_id|>", _strip_call())]
    return _render(nodes + _gen_prompt("<|start_header_id|>assistant<|end_header_id|>\n\n"), strip=True)


def _gemma(src: ChatTemplateSource) -> str:
    role: list[Node] = [If('eq $m.Role "assistant"', [Text("model")], [Out("$m.Role")])]
    nodes = _bos(src) + [_turns(lambda: [Text("<start_of_turn>")] + role + [Text("\n")], "<end_of_turn>\n",
                                _strip_call())]
    return _render(nodes + _gen_prompt("<start_of_turn>model\n"), strip=True)


def _phi3(src: ChatTemplateSource) -> str:
    nodes: list[Node] = _bos(src) + [Range("$i", "$m", "$.Messages", [
        If('or (ne $m.Role "system") $m.Content', [
            Text("<|"), Out("$m.Role"), Text("|>\n"), Out("$m.Content"),
            If(f"not ({_PREFILL})", [Text("<|end|>\n")])])])]
    # Without a generation prompt the Jinja ends with EOS, but only continuations end with the
    # assistant here, and a continuation is cut right after the message text.
    return _render(nodes + _gen_prompt("<|assistant|>\n"))


def _zephyr(src: ChatTemplateSource) -> str:
    eos = src.eos_token or ""
    nodes = _bos(src) + [_turns(lambda: [Text("<|"), Out("$m.Role"), Text("|>\n")], eos + "\n", Out("$m.Content"))]
    return _render(nodes + _gen_prompt("<|assistant|>\n"))


FAMILIES: tuple[Family, ...] = (
    Family("qwen2.5", ("<|im_start|>", QWEN_SYSTEM), _qwen25),
    Family("chatml", ("<|im_start|>", "<|im_end|>"), _chatml),
    Family("llama3.1", ("<|start_header_id|>", "Cutting Knowledge Date: December 2023", "26 Jul 2024"), _llama31),
    Family("llama3", ("<|start_header_id|>", "<|eot_id|>"), _llama3),
    Family("gemma", ("<start_of_turn>", "<end_of_turn>"), _gemma),
    Family("phi3", ("<|end|>", "<|user|>", "<|assistant|>"), _phi3),
    Family("zephyr", ("'<|' + message['role'] + '|>",), _zephyr),
)


def recognise(jinja: str) -> list[Family]:
    """The families whose markers the template writes."""
    return [f for f in FAMILIES if f.matches(jinja)]


@dataclass(frozen=True)
class FamilyCheck:
    """A family template and its proof against the model's own Jinja."""

    family: str
    go_template: str
    proof: Proof


def cross_check(source: ChatTemplateSource, today: object | None = None) -> list[FamilyCheck]:
    """Prove each recognised family's template against the Jinja."""
    out: list[FamilyCheck] = []
    for fam in recognise(source.template):
        go = fam.build(source)
        proof = prove(go, source.template, source.bos_token, source.eos_token, source.add_bos_token)
        if not proof.proven and proof.follows_think:
            # A family template never reads .Think: where the Jinja's switch changes the prompt, it
            # can at most be proven with think unset, and says so.
            unset = prove(go, source.template, source.bos_token, source.eos_token, source.add_bos_token,
                          think=(None,), think_note="the family template does not follow Ollama's think option")
            proof = unset if unset.proven else proof
        out.append(FamilyCheck(fam.name, go, proof))
    return out
