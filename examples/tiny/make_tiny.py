#!/usr/bin/env python3
"""Make the tiny example: a 2-layer Llama base model and a PEFT LoRA trained on it.

The model is small enough to build in seconds on a laptop CPU, yet real in every way that
matters to llama.cpp: a SentencePiece tokenizer (BPE with byte fallback, like Llama 2 and
Mistral), a chat template in ``tokenizer_config.json``, hidden and feed-forward sizes that are
multiples of 256 so K-quants apply, and a LoRA adapter trained for a few steps so that it
measurably changes greedy generation.

Everything is seeded: two runs write the same bytes. Usage::

    python examples/tiny/make_tiny.py [OUT_DIR]     # default: examples/tiny
"""

from __future__ import annotations

import argparse
import io
import json
import random
import shutil
import sys
from pathlib import Path

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)
ROLE_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>"]

_SUBJECTS = ["the printer", "my laptop", "the router", "the app", "my account", "the invoice",
             "the screen", "the battery", "the update", "the password", "the keyboard", "the order"]
_PROBLEMS = ["does not start", "is very slow", "shows an error", "keeps crashing", "will not connect",
             "is missing", "looks wrong", "stopped working", "asks for a code", "is locked"]
_FIXES = ["Please restart it and try again.", "Try turning it off and on.",
          "Check the cable and the power.", "Reset it from the settings page.",
          "Install the latest update first.", "Sign out, then sign in again.",
          "Clear the cache and reload.", "Contact us with the order number."]
_WORDS = ["hello", "thanks", "please", "help", "today", "again", "still", "now", "why", "when", "what", "how", "can",
          "you", "we", "they", "it", "is", "was", "the", "a", "an", "of", "to", "in", "on", "for", "with", "at", "by",
          "from", "and", "or", "but", "not", "very", "good", "bad", "new", "old"]


def corpus(rng: random.Random, lines: int = 3000) -> list[str]:
    """Short support-desk sentences: enough text for a ~500-piece BPE vocabulary."""
    out = []
    for _ in range(lines):
        kind = rng.random()
        if kind < 0.4:
            out.append(f"{rng.choice(_SUBJECTS).capitalize()} {rng.choice(_PROBLEMS)}.")
        elif kind < 0.7:
            out.append(rng.choice(_FIXES))
        else:
            out.append(" ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 12))))
    return out


def conversations(rng: random.Random, n: int) -> list[list[dict[str, str]]]:
    """Chats whose answers the LoRA learns: every problem gets the same polite fix."""
    chats = []
    for _ in range(n):
        subject, problem = rng.choice(_SUBJECTS), rng.choice(_PROBLEMS)
        chats.append([
            {"role": "system", "content": "You are a support agent."},
            {"role": "user", "content": f"{subject.capitalize()} {problem}."},
            {"role": "assistant", "content": f"Sorry to hear that. {_FIXES[0]}"},
        ])
    return chats


def train_tokenizer(text: list[str]) -> bytes:
    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text), model_writer=buf, model_type="bpe", vocab_size=512,
        hard_vocab_limit=False, byte_fallback=True, user_defined_symbols=ROLE_TOKENS,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, character_coverage=1.0,
        num_threads=1, minloglevel=2, add_dummy_prefix=True, normalization_rule_name="identity",
    )
    return buf.getvalue()


def write_base(out: Path, sp_model: bytes) -> int:
    """Write the base model folder as Hugging Face would, and return its vocabulary size."""
    import sentencepiece as spm
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    sp = spm.SentencePieceProcessor(model_proto=sp_model)
    vocab_size = sp.get_piece_size()
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False,
        torch_dtype="float32",
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.save_pretrained(out, safe_serialization=True)
    (out / "tokenizer.model").write_bytes(sp_model)
    added = {tok: sp.piece_to_id(tok) for tok in ROLE_TOKENS}
    tokenizer_config = {
        "tokenizer_class": "LlamaTokenizer",
        "model_max_length": 512,
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
        "add_bos_token": True, "add_eos_token": False,
        "added_tokens_decoder": {
            str(i): {"content": tok, "special": True, "lstrip": False, "rstrip": False,
                     "normalized": False, "single_word": False}
            for tok, i in [("<unk>", 0), ("<s>", 1), ("</s>", 2), *added.items()]
        },
        "chat_template": CHAT_TEMPLATE,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n")
    (out / "special_tokens_map.json").write_text(json.dumps(
        {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}, indent=2) + "\n")
    (out / "README.md").write_text(
        "# tiny-llama\n\nA 2-layer Llama made by `make_tiny.py` for modelkit's example and tests.\n")
    return vocab_size


def render_chat(chat: list[dict[str, str]]) -> str:
    import jinja2

    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(CHAT_TEMPLATE).render(
        messages=chat, bos_token="", eos_token="</s>", add_generation_prompt=False)


def write_lora(base: Path, out: Path, sp_model: bytes, rng: random.Random, steps: int = 60) -> None:
    """Train a rank-8 LoRA on q/k/v/o for a few steps, so it really changes the model."""
    import sentencepiece as spm
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    sp = spm.SentencePieceProcessor(model_proto=sp_model)
    torch.manual_seed(1)
    model = LlamaForCausalLM.from_pretrained(base)
    peft_model = get_peft_model(model, LoraConfig(
        r=8, lora_alpha=16, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    texts = [render_chat(c) for c in conversations(rng, 64)]
    batch = [[1] + sp.encode(t) for t in texts]
    width = max(len(ids) for ids in batch)
    ids = torch.tensor([row + [2] * (width - len(row)) for row in batch])
    labels = torch.tensor([row + [-100] * (width - len(row)) for row in batch])
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=5e-3)
    peft_model.train()
    for _ in range(steps):
        loss = peft_model(input_ids=ids, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    peft_model.save_pretrained(out, safe_serialization=True)
    config_path = out / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = "tiny-llama"
    config["target_modules"] = sorted(config["target_modules"])  # PEFT keeps a set: its order follows str hashing
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    card = out / "README.md"  # PEFT names the base by the folder it was loaded from: a machine's path
    card.write_text(card.read_text().replace(str(base), "tiny-llama"))
    print(f"lora: trained {steps} steps, final loss {loss.item():.3f}")


def write_texts(out: Path) -> None:
    """The calibration text (for the importance matrix) and the held-out evaluation text: support
    chats in the model's own format, as the fine-tune's training and chat data would be, each from
    its own random stream so the evaluation text is not the calibration text."""
    for name, seed, n in (("calibration.txt", 11, 400), ("eval.txt", 12, 200)):
        chats = conversations(random.Random(seed), n)
        (out / name).write_text("".join(render_chat(c) for c in chats), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=Path(__file__).resolve().parent,
                        help="folder to write base/ and lora/ into (default: next to this script)")
    parser.add_argument("--force", action="store_true", help="remake even if present")
    args = parser.parse_args(argv)
    base, lora = args.out / "base", args.out / "lora"
    if not (args.out / "eval.txt").exists() or args.force:
        args.out.mkdir(parents=True, exist_ok=True)
        write_texts(args.out)
    if not args.force and (base / "model.safetensors").exists() and (lora / "adapter_model.safetensors").exists():
        print(f"tiny model already in {args.out} (use --force to remake)")
        return 0
    for folder in (base, lora):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    rng = random.Random(0)
    sp_model = train_tokenizer(corpus(rng))
    vocab = write_base(base, sp_model)
    print(f"base: {base} (vocab {vocab})")
    write_lora(base, lora, sp_model, rng)
    print(f"lora: {lora}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
