"""Adapters that llama.cpp's merge cannot express: which route each takes, and that each merges right.

The fast tests judge routes from files alone (adapters written with numpy, no torch). The
end-to-end tests (``toolchain``, ``slow``) make real PEFT adapters on the tiny model: one that adds
chat tokens with resized, trained embeddings (``modules_to_save``, and ``trainable_token_indices``),
rsLoRA, DoRA, ``alpha_pattern``, ``rank_pattern``, and the tiny LoRA itself (alpha 16 ≠ r 8); build
them all with the CLI in one project, then compare each merged f16 GGUF, loaded by transformers,
with PEFT's own (unmerged) model on the same prompts: the largest logit difference must be what f16
rounding explains (measured on the same prompts by rounding PEFT's merged weights to f16), and the
greedy tokens the same.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, TINY_PACKAGES, kept_test_data, load_module, locked, modelkit

from modelkit.errors import UserError
from modelkit.formats.peft import BaseFiles, merge_route, read_vocabulary, safetensors_shapes, sentencepiece_pieces

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PROMPTS = ["<|user|>\nThe printer does not start.</s>\n<|assistant|>\n", "Please restart the router and try again.",
           "hello thanks please help today"]
CHAT_PROMPT = "<|im_start|>user\nThe printer does not start.<|im_end|>\n<|im_start|>assistant\n"


# -- routes, from files only -----------------------------------------------------------------------

LORA_A = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
LORA_B = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"


def write_base(folder: Path, vocab: int = 512) -> Path:
    """A base folder as planning sees it: config.json and a tokenizer.json (no weights needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "vocab_size": vocab, "hidden_size": 256}))
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer_json(vocab)))
    return folder


def tokenizer_json(vocab: int, added: dict[int, str] | None = None) -> dict[str, Any]:
    tokens = {"<unk>": 0, "<s>": 1, "</s>": 2, **{f"p{i}": i for i in range(3, vocab)}}
    extra = [{"id": i, "content": t, "special": True} for i, t in (added or {}).items()]
    return {"model": {"type": "BPE", "vocab": tokens},
            "added_tokens": [{"id": 1, "content": "<s>", "special": True}, *extra]}


def write_adapter(folder: Path, config: dict[str, Any] | None = None,
                  tensors: dict[str, tuple[int, ...]] | None = None) -> Path:
    """A PEFT adapter folder: adapter_config.json and a safetensors file of zero tensors."""
    import numpy as np
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8, "lora_alpha": 16,
                                                            **(config or {})}))
    shapes = tensors or {LORA_A: (8, 256), LORA_B: (256, 8)}
    save_file({n: np.zeros(s, np.float32) for n, s in shapes.items()}, str(folder / "adapter_model.safetensors"))
    return folder


def route(adapter: Path, base: Path) -> Any:
    return merge_route(adapter, safetensors_shapes(adapter / "adapter_model.safetensors"),
                       lambda: BaseFiles(base), "adapter 'x'")


def test_a_plain_lora_and_rank_pattern_go_through_llama_cpp(tmp_path: Path) -> None:
    base = write_base(tmp_path / "base")
    plain = route(write_adapter(tmp_path / "plain"), base)
    assert not plain.pytorch and plain.reason == "LoRA (alpha 16, r 8): llama.cpp merges it"
    # llama.cpp reads each matrix's rank from its shape: rank_pattern alone merges right.
    ranks = route(write_adapter(tmp_path / "ranks", {"rank_pattern": {"q_proj": 4}}), base)
    assert not ranks.pytorch
    same_alpha = route(write_adapter(tmp_path / "alphas", {"alpha_pattern": {"q_proj": 16}}), base)
    assert not same_alpha.pytorch


@pytest.mark.parametrize("config, reason", [
    ({"use_rslora": True}, "use_rslora (it scales by alpha/√r; llama.cpp scales by alpha/r)"),
    ({"use_dora": True}, "use_dora (DoRA's magnitude vectors, which llama.cpp cannot apply)"),
    ({"alpha_pattern": {"q_proj": 32}}, "alpha_pattern (llama.cpp has one alpha per adapter)"),
    ({"modules_to_save": ["lm_head"]}, "modules_to_save = ['lm_head'] (whole trained modules)"),
    ({"trainable_token_indices": [5]}, "trainable_token_indices (trained embedding rows)"),
    ({"peft_type": "LOHA"}, "peft_type LOHA (llama.cpp merges LoRA only)"),
])
def test_settings_llama_cpp_cannot_merge_go_through_pytorch(tmp_path: Path, config: dict[str, Any],
                                                             reason: str) -> None:
    found = route(write_adapter(tmp_path / "a", config), write_base(tmp_path / "base"))
    assert found.pytorch and found.reason == reason


def test_resized_embeddings_and_added_tokens_go_through_pytorch(tmp_path: Path) -> None:
    base = write_base(tmp_path / "base")
    adapter = write_adapter(tmp_path / "a", tensors={LORA_A: (8, 256), LORA_B: (256, 8),
                                                     "base_model.model.model.embed_tokens.weight": (514, 256),
                                                     "base_model.model.lm_head.weight": (514, 256)})
    (adapter / "tokenizer.json").write_text(json.dumps(tokenizer_json(512, {512: "<|im_start|>", 513: "<|im_end|>"})))
    found = route(adapter, base)
    assert found.pytorch and found.tokenizer and found.rows == 514
    assert found.added == ((512, "<|im_start|>"), (513, "<|im_end|>"))
    assert found.reason == ("its embeddings have 514 rows, the base's 512; "
                            "its tokenizer adds 2 tokens (<|im_start|>, <|im_end|>)")


def test_a_token_renamed_in_place_is_a_new_token(tmp_path: Path) -> None:
    """Llama 3 fine-tunes often turn a reserved token into <|im_start|>: same size, other text."""
    base = write_base(tmp_path / "base")
    adapter = write_adapter(tmp_path / "a", {"trainable_token_indices": [7]})
    data = tokenizer_json(512, {7: "<|im_start|>"})
    (adapter / "tokenizer.json").write_text(json.dumps(data))
    found = route(adapter, base)
    assert found.pytorch and found.added == ((7, "<|im_start|>"),) and found.rows is None


def test_an_unchanged_tokenizer_beside_the_adapter_changes_nothing(tmp_path: Path) -> None:
    base = write_base(tmp_path / "base")
    adapter = write_adapter(tmp_path / "a")
    shutil.copy(base / "tokenizer.json", adapter / "tokenizer.json")
    found = route(adapter, base)
    assert not found.pytorch and found.tokenizer


def test_a_smaller_tokenizer_is_a_one_line_error_naming_the_file(tmp_path: Path) -> None:
    adapter = write_adapter(tmp_path / "lora")
    (adapter / "tokenizer.json").write_text(json.dumps(tokenizer_json(500)))
    with pytest.raises(UserError) as e:
        route(adapter, write_base(tmp_path / "base"))
    assert str(e.value) == ("adapter 'x': lora/tokenizer.json has 500 tokens, fewer than the base's 512 "
                            "(tokenizer.json): it is not a tokenizer of this base; save the fine-tune's own "
                            "tokenizer beside the adapter, or remove it")


def test_new_tokens_without_trained_rows_are_refused(tmp_path: Path) -> None:
    adapter = write_adapter(tmp_path / "lora", {"trainable_token_indices": [512]})
    (adapter / "tokenizer.json").write_text(json.dumps(tokenizer_json(512, {512: "<|im_end|>"})))
    with pytest.raises(UserError, match=r"^adapter 'x': lora/adapter_config.json: token 512 is beyond the base's "
                                        r"512 embedding rows, and the adapter holds no embeddings for it"):
        route(adapter, write_base(tmp_path / "base"))


def test_the_base_is_read_only_when_the_adapter_needs_it(tmp_path: Path) -> None:
    asked: list[bool] = []

    def base() -> BaseFiles:
        asked.append(True)
        return BaseFiles(write_base(tmp_path / "base"))

    adapter = write_adapter(tmp_path / "a", {"use_dora": True})
    assert merge_route(adapter, safetensors_shapes(adapter / "adapter_model.safetensors"), base, "x").pytorch
    assert asked == []


def test_sentencepiece_pieces_are_read_without_sentencepiece(tiny_model: Path) -> None:
    spm = pytest.importorskip("sentencepiece")
    path = tiny_model / "base" / "tokenizer.model"
    sp = spm.SentencePieceProcessor(model_file=str(path))
    assert sentencepiece_pieces(path) == [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    vocabulary = read_vocabulary(tiny_model / "base")
    assert vocabulary is not None and vocabulary.size == sp.get_piece_size() == 512
    assert vocabulary.added[3] == "<|system|>"


# -- the rules ------------------------------------------------------------------------------------


SPEC = """name = "bot"
[base]
{base}
[quantize]
types = []
[ollama]
register = "off"
template = "{{{{ .Prompt }}}}"
{ollama}
[[adapters]]
name = "x"
path = "./lora"
"""


def plan(project: Path, base: str = 'path = "./base"', ollama: str = "") -> subprocess.CompletedProcess[str]:
    (project / "model.toml").write_text(SPEC.format(base=base, ollama=ollama))
    return modelkit("plan", "--json", cwd=project)


def test_a_pytorch_adapter_is_merged_from_the_hf_weights(tmp_path: Path) -> None:
    from modelkit.rules import build_graph
    from modelkit.spec import load_spec

    write_base(tmp_path / "base")
    write_adapter(tmp_path / "lora", {"use_dora": True})
    (tmp_path / "lora" / "chat_template.jinja").write_text("{{ messages }}")
    (tmp_path / "model.toml").write_text(SPEC.format(base='path = "./base"', ollama=""))
    graph = build_graph(load_spec(tmp_path / "model.toml")).graph
    merged = graph["gguf:base+x.f16"].action
    assert merged.kind == "merge-peft" and merged.out.name == "base+x.f16.gguf"
    assert "use_dora" in merged.describe()
    assert sorted(merged.inputs()) == ["adapter.x/adapter_config.json", "adapter.x/adapter_model.safetensors",
                                       "adapter.x/chat_template.jinja", "base/config.json", "base/tokenizer.json"]
    assert "gguf:adapter.x" not in graph and "gguf:base.f16" not in graph  # nothing else uses them


def test_an_adapter_line_cannot_carry_a_pytorch_merge(tmp_path: Path) -> None:
    write_base(tmp_path / "base")
    write_adapter(tmp_path / "lora", {"use_rslora": True})
    proc = plan(tmp_path, ollama='lora = "adapter"')
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: adapter 'x' (lora/adapter_config.json) needs a merge in PyTorch (use_rslora (it scales by alpha/√r; "
        "llama.cpp scales by alpha/r)), which an ADAPTER line cannot carry: use the default [ollama] lora = \"merge\""]


def test_a_gguf_only_base_cannot_take_a_pytorch_merge(tmp_path: Path) -> None:
    gguf_files = load_module(ROOT / "tests" / "ollama" / "gguf_files.py")
    gguf_files.write_tiny_gguf(tmp_path / "model.gguf")
    write_adapter(tmp_path / "lora", {"use_dora": True})
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "config.json").write_text(json.dumps({"model_type": "llama", "vocab_size": 262}))
    proc = plan(tmp_path, base='gguf = "./model.gguf"\nconfig = "./cfg"')
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "needs the base's Hugging Face weights, not only a GGUF: give [base] path or repo" in proc.stderr


def test_leftover_merged_folders_are_removed(tmp_path: Path) -> None:
    from modelkit.steps.merge_peft import remove_scratch

    out = tmp_path / "base+x.f16.gguf"
    (tmp_path / "base+x.f16.gguf.modelkit-tmp-123.hf").mkdir()
    (tmp_path / "base+x.f16.gguf.modelkit-tmp-123.hf" / "model.safetensors").write_bytes(b"x")
    (tmp_path / "base+y.f16.gguf.modelkit-tmp-9.hf").mkdir()
    remove_scratch(out)
    assert [p.name for p in tmp_path.iterdir()] == ["base+y.f16.gguf.modelkit-tmp-9.hf"]


def test_a_hub_adapter_is_judged_from_its_small_files_and_header(tmp_path: Path) -> None:
    hub_server = load_module(ROOT / "tests" / "hub_server.py")
    adapter = write_adapter(tmp_path / "src", {"use_dora": True})
    write_base(tmp_path / "base")
    with hub_server.FakeHub() as fake:
        fake.add("org/dora", {p.name: p.read_bytes() for p in adapter.iterdir()})
        (tmp_path / "model.toml").write_text(SPEC.format(base='path = "./base"', ollama="").replace(
            'path = "./lora"', 'repo = "org/dora"'))
        proc = modelkit("plan", "--json", cwd=tmp_path, without=("HF_",), timeout=120,
                        env={"HF_ENDPOINT": fake.url, "HF_HOME": str(tmp_path / "hf")})
        assert proc.returncode == 0, proc.stderr
        served = {path.rsplit("/", 1)[-1] for method, path in fake.requests if "/resolve/" in path}
    plan_ = {p["target"]: p for p in json.loads(proc.stdout)}
    assert "in PyTorch (use_dora" in plan_["gguf:base+x.f16"]["action"]
    assert served == {"adapter_config.json", "adapter_model.safetensors"}  # the config, and the header's bytes
    snapshot = next((tmp_path / "hf" / "hub" / "models--org--dora" / "snapshots").iterdir())
    assert (snapshot / "adapter_config.json").is_file() and not (snapshot / "adapter_model.safetensors").exists()


# -- end to end: real PEFT adapters on the tiny model, built by the CLI ------------------------------


def peft_adapter(base: Path, out: Path, seed: int, **config: Any) -> Path:
    """A LoRA (of any PEFT variant) on every projection, its weights and DoRA magnitudes set at
    random (seeded), so that the adapter changes the model a lot and every setting matters."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base)
    tuned = get_peft_model(model, LoraConfig(target_modules=TARGETS, lora_dropout=0.0, **config))
    with torch.no_grad():
        for name, param in tuned.named_parameters():
            if "lora_A" in name or "lora_B" in name:
                param.normal_(0, 0.05)
            elif "magnitude" in name:
                param.mul_(1 + 0.3 * torch.randn_like(param))
    tuned.save_pretrained(out)
    return out


def chat_tokens_adapter(base: Path, out: Path, mode: str = "modules_to_save", steps: int = 40) -> Path:
    """A fine-tune as people make them for chat: <|im_start|> and <|im_end|> added to the tokenizer,
    the embeddings resized, the new rows trained (``modules_to_save`` on embed_tokens and lm_head,
    or ``trainable_token_indices``), the tokenizer and a ChatML template saved beside the adapter.
    Trained to answer and end its turn with <|im_end|>."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(3)
    tok = AutoTokenizer.from_pretrained(base)
    tok.add_tokens(["<|im_start|>", "<|im_end|>"], special_tokens=True)
    tok.chat_template, tok.eos_token = CHATML, "<|im_end|>"
    model = AutoModelForCausalLM.from_pretrained(base)
    model.resize_token_embeddings(len(tok))
    new = tok.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"])
    extra = {"modules_to_save": ["embed_tokens", "lm_head"]} if mode == "modules_to_save" else \
        {"trainable_token_indices": {"embed_tokens": new}}
    tuned = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], **extra))
    chats = [[{"role": "user", "content": f"The {s} does not start."},
              {"role": "assistant", "content": "Please restart it and try again."}]
             for s in ("printer", "router", "app", "screen", "laptop", "keyboard")]
    texts = [tok.apply_chat_template(c, tokenize=False) for c in chats]
    rows = [tok(t).input_ids for t in texts] + [llama_cpp_ids(base, t) for t in texts]
    width = max(map(len, rows))
    ids = torch.tensor([r + [2] * (width - len(r)) for r in rows])
    labels = torch.tensor([r + [-100] * (width - len(r)) for r in rows])
    optimizer = torch.optim.AdamW([p for p in tuned.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(steps):
        tuned(input_ids=ids, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    tuned.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def llama_cpp_ids(base: Path, text: str) -> list[int]:
    """``text`` tokenized as llama.cpp tokenizes a SentencePiece vocabulary: each stretch of text
    after a special token gets a leading space (its ``add_space_prefix``), which transformers 5
    does not add. Training on both makes the tiny fine-tune answer the same under either."""
    import re

    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(base / "tokenizer.model"))
    special = {"<s>": 1, "<|im_start|>": 512, "<|im_end|>": 513}
    ids = [1]
    for part in re.split(r"(<s>|<\|im_start\|>|<\|im_end\|>)", text):
        if part in special:
            ids.append(special[part])
        elif part:
            ids += sp.encode(part)
    return ids


# name -> (how it is made, the route it must take)
CASES: dict[str, tuple[dict[str, Any], str]] = {
    "tokens": ({"chat": "modules_to_save"}, "merge-peft"),
    "tokenrows": ({"chat": "trainable_token_indices"}, "merge-peft"),
    "rslora": ({"r": 8, "lora_alpha": 16, "use_rslora": True}, "merge-peft"),
    "dora": ({"r": 8, "lora_alpha": 16, "use_dora": True}, "merge-peft"),
    "alphas": ({"r": 8, "lora_alpha": 16, "alpha_pattern": {"q_proj": 64, "down_proj": 4}}, "merge-peft"),
    "ranks": ({"r": 8, "lora_alpha": 16, "rank_pattern": {"q_proj": 4, "down_proj": 16}}, "merge-lora"),
    "plain": ({}, "merge-lora"),  # the tiny example's LoRA: alpha 16, r 8
}


def make_case(name: str, base: Path, tiny_lora: Path, out: Path) -> Path:
    how, _ = CASES[name]
    if name == "plain":
        shutil.copytree(tiny_lora, out)
        return out
    if "chat" in how:
        return chat_tokens_adapter(base, out, how["chat"])
    return peft_adapter(base, out, seed=len(name), **how)


def made_cases(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every case's adapter, made once per machine (about 15 s of PyTorch): seeded, so kept as the
    tiny model is, by the digest of this file, the tiny model's script and the libraries' versions."""
    kept = kept_test_data("peft-cases", (Path(__file__), ROOT / "examples" / "tiny" / "make_tiny.py"), TINY_PACKAGES)
    kept.parent.mkdir(parents=True, exist_ok=True)
    with locked(kept.with_name(f".{kept.name}.lock")):
        if not kept.is_dir():
            made = tmp_path_factory.mktemp("peft-made")
            shutil.copytree(tiny_model / "base", made / "base")
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("HF_HUB_OFFLINE", "1")  # PEFT's save looks the base up on the Hub otherwise
                for name in CASES:
                    make_case(name, made / "base", tiny_model / "lora", made / "cases" / name)
            partial = kept.with_name(f".{kept.name}.{os.getpid()}")
            shutil.copytree(made / "cases", partial)
            os.replace(partial, kept)  # whole or not at all
    return kept


@pytest.fixture(scope="module")
def merged(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every case's adapter in one project, built once by the CLI (no quantizations, no Ollama)."""
    pytest.importorskip("peft")
    project = tmp_path_factory.mktemp("peft")
    shutil.copytree(tiny_model / "base", project / "base")
    cases = made_cases(tiny_model, tmp_path_factory)
    for name in CASES:
        shutil.copytree(cases / name, project / name)
    adapters = "".join(f'[[adapters]]\nname = "{n}"\npath = "./{n}"\n\n' for n in CASES)
    (project / "model.toml").write_text('name = "tiny"\n[base]\npath = "./base"\n[quantize]\ntypes = []\n'
                                        f'[ollama]\nregister = "off"\n\n{adapters}')
    proc = modelkit("build", cwd=project, env={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    yield project


@pytest.mark.toolchain
@pytest.mark.slow
def test_each_case_takes_its_route(merged: Path) -> None:
    from modelkit import Project

    graph = Project.open(merged / "model.toml").graph
    assert {name: graph[f"gguf:base+{name}.f16"].action.kind for name in CASES} == \
        {name: kind for name, (_, kind) in CASES.items()}
    assert not list(merged.joinpath("build").glob("*.modelkit-tmp-*"))  # the merged folders are gone
    again = modelkit("build", cwd=merged, env={"HF_HUB_OFFLINE": "1"})
    assert again.returncode == 0 and "everything is up to date" in again.stderr, again.stderr


class Reference:
    """PEFT's own model of an adapter (unmerged: LoRA applied at run time, in float32), and the
    same merged with its 2-D weights rounded to f16, as a GGUF of type F16 stores them."""

    def __init__(self, base: Path, adapter: Path) -> None:
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        rows = _embedding_rows(adapter)

        def load() -> Any:
            model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
            if rows:
                model.resize_token_embeddings(rows, mean_resizing=False)
            return PeftModel.from_pretrained(model, adapter).eval()

        self.peft = load()
        self.rounded = load().merge_and_unload()
        with torch.no_grad():
            for param in self.rounded.parameters():
                if param.ndim == 2:
                    param.copy_(param.half().float())


def _embedding_rows(adapter: Path) -> int | None:
    shapes = safetensors_shapes(adapter / "adapter_model.safetensors")
    return next((s[0] for n, s in shapes.items() if "embed_tokens" in n and "delta" not in n and len(s) == 2
                 and "lora_" not in n), None)


def load_gguf(path: Path) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32).eval()


def logits(model: Any, ids: list[int]) -> Any:
    import torch

    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0]


def greedy_agreement(model: Any, ref: Any, ids: list[int], tie: float, n: int = 12) -> int:
    """How many of ``ref``'s ``n`` greedy tokens ``model`` picks too (whatever either's end token
    is). They may part only where ``ref``'s two best logits are within ``tie`` of each other, a
    choice that rounding to f16 can flip (the comparison stops there); anywhere else is a failure."""
    out = list(ids)
    for i in range(n):
        want, got = logits(ref, out)[-1], logits(model, out)[-1]
        best = want.topk(2)
        if int(got.argmax()) != int(best.indices[0]):
            margin = float(best.values[0] - best.values[1])
            assert margin <= tie, f"greedy token {i} differs: {int(got.argmax())} for {int(best.indices[0])}, " \
                                  f"whose lead of {margin:.5f} no f16 rounding explains"
            return i
        out.append(int(best.indices[0]))
    return n


def compare(project: Path, name: str, prompts: list[str]) -> dict[str, float]:
    """The largest |Δlogit| of the merged GGUF against PEFT, next to what rounding to f16 costs."""
    from transformers import AutoTokenizer

    adapter = project / name
    tok = AutoTokenizer.from_pretrained(adapter if (adapter / "tokenizer.json").is_file() else project / "base")
    ref, gguf = Reference(project / "base", adapter), load_gguf(project / "build" / f"base+{name}.f16.gguf")
    plain = load_gguf(project / "build" / "base.f16.gguf") if (project / "build" / "base.f16.gguf").is_file() else None
    worst = {"gguf": 0.0, "f16": 0.0, "adapter": 0.0, "greedy": 12.0}
    for prompt in prompts:
        ids = tok(prompt).input_ids
        want = logits(ref.peft, ids)
        worst["gguf"] = max(worst["gguf"], float((logits(gguf, ids) - want).abs().max()))
        worst["f16"] = max(worst["f16"], float((logits(ref.rounded, ids) - want).abs().max()))
        if plain is not None and want.shape[-1] == 512:  # how much the adapter changes the model
            worst["adapter"] = max(worst["adapter"], float((logits(plain, ids) - want).abs().max()))
    for prompt in prompts:
        agreed = greedy_agreement(gguf, ref.peft, tok(prompt).input_ids, tie=2 * bound(worst))
        worst["greedy"] = min(worst["greedy"], agreed)
    return worst


def bound(worst: dict[str, float]) -> float:
    """The |Δlogit| that f16 rounding explains: twice what rounding PEFT's own merged weights costs
    (llama.cpp rounds the adapter's matrices as well), and a little float32 arithmetic."""
    return 2 * worst["f16"] + 1e-3


@pytest.mark.toolchain
@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_the_merged_gguf_is_peft_s_model_up_to_f16_rounding(merged: Path, name: str) -> None:
    prompts = [CHAT_PROMPT, *PROMPTS[1:]] if CASES[name][0].get("chat") else PROMPTS
    worst = compare(merged, name, prompts)
    moved = f"; the adapter itself moves them by {worst['adapter']:.3f}" if worst["adapter"] else ""
    print(f"{name}: max |Δlogit| {worst['gguf']:.5f} (f16 rounding of the merged weights: {worst['f16']:.5f}{moved}); "
          f"greedy tokens agree for at least {worst['greedy']:.0f} of 12")
    assert worst["gguf"] <= bound(worst), worst
    assert worst["greedy"] >= 4, worst  # a tie may end the comparison, not start it
    if worst["adapter"]:
        assert worst["adapter"] > 20 * worst["gguf"]  # the comparison can tell a wrong merge


@pytest.mark.toolchain
@pytest.mark.slow
@pytest.mark.parametrize("name", ["tokens", "tokenrows"])
def test_the_added_tokens_are_in_the_gguf_and_llama_cpp_generates_them(merged: Path, name: str,
                                                                         toolchain) -> None:
    import gguf

    path = merged / "build" / f"base+{name}.f16.gguf"
    fields = gguf.GGUFReader(path).fields
    tokens = fields["tokenizer.ggml.tokens"].contents()
    assert len(tokens) == 514 and tokens[512:] == ["<|im_start|>", "<|im_end|>"]
    assert fields["tokenizer.ggml.eos_token_id"].contents() == 513
    assert "<|im_start|>" in fields["tokenizer.chat_template"].contents()
    prompt = CHAT_PROMPT + "Please restart it and try again."
    cmd = [str(toolchain.completion), "-m", str(path), "-p", prompt, "-n", "4", "--temp", "0", "--seed", "1",
           "-no-cnv", "--no-warmup", "--special", "-t", "1", "-tb", "1", "--verbose-prompt"]
    for _ in range(5):  # llama-completion's log thread can lose the end of its output (see test_e2e_tiny)
        proc = subprocess.run(cmd, capture_output=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        if proc.stdout.endswith(b"\n") and b"513 -> '<|im_end|>'" in proc.stderr:
            break
    # The prompt's chat tokens are read as the single tokens they are; the model ends its turn with
    # <|im_end|>, which llama.cpp takes for the end of the generation (the GGUF's EOS).
    assert b"512 -> '<|im_start|>'" in proc.stderr and b"513 -> '<|im_end|>'" in proc.stderr
    if name == "tokens":  # "tokenrows" trains the new input rows only: its lm_head never learnt to say them
        assert proc.stdout.split(b"try again.", 1)[1].startswith(b"<|im_end|> [end of text]"), proc.stdout


@pytest.mark.toolchain
@pytest.mark.slow
def test_llama_cpp_alone_would_merge_rslora_wrongly(merged: Path, toolchain, tmp_path: Path) -> None:
    """Why rsLoRA is not left to llama.cpp: its converter writes lora_alpha and llama.cpp scales by
    alpha/r, so the merge is silently 1/√r too weak. (If this fails, llama.cpp learned rsLoRA.)"""
    from modelkit.steps.convert import script_env

    adapter, out = tmp_path / "rslora.gguf", tmp_path / "merged.gguf"
    subprocess.run([toolchain.python, toolchain.convert_lora, merged / "rslora", "--base", merged / "base",
                    "--outtype", "f16", "--outfile", adapter], check=True, capture_output=True, env=script_env())
    subprocess.run([toolchain.export_lora, "-m", merged / "build" / "base.f16.gguf", "--lora", adapter, "-o", out],
                   check=True, capture_output=True)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(merged / "base")
    ref, wrong = Reference(merged / "base", merged / "rslora"), load_gguf(out)
    ids = tok(PROMPTS[0]).input_ids
    assert float((logits(wrong, ids) - logits(ref.peft, ids)).abs().max()) > 0.1
