"""A tiny Gemma 3 that sees images, made offline for the vision tests: base, two LoRAs, an image.

``Gemma3ForConditionalGeneration`` as today's transformers saves it (``vision_tower.embeddings.…``,
``language_model.model.…``): a 2-layer Gemma 3 text model (head size 64: llama.cpp's CUDA path
refuses 32) and a 2-layer SigLIP tower with Gemma 3's projector (64×64 images of 16-pixel patches,
pooled to 4 tokens per image), a SentencePiece tokenizer with Gemma 3's turn and image tokens,
Gemma 3's own chat template (content parts: ``{"type": "image"}``), and a
``preprocessor_config.json`` with the image mean and standard deviation the projector needs.

- ``lora/``: a LoRA on the language model only (what llama.cpp's LoRA route converts);
- ``lora-vision/``: a LoRA on the language model *and* the vision tower (no GGUF LoRA can carry
  that: it is merged in PyTorch, and both halves converted from the merged weights);
- ``square.png``: the image both LoRAs were trained to describe (``ANSWER``).

Everything is seeded; two runs write the same bytes.
"""

from __future__ import annotations

import io
import json
import random
import struct
import zlib
from pathlib import Path
from typing import Any

TOKENS = ["<start_of_turn>", "<end_of_turn>", "<start_of_image>", "<end_of_image>", "<image_soft_token>"]
IMAGE_SIZE, PATCH, TOKENS_PER_IMAGE = 64, 16, 4
QUESTION = "What is in the picture?"
ANSWER = "A red square on white."

GEMMA3_TEMPLATE = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}
"""
"""Gemma 3's chat template as google/gemma-3-4b-it ships it."""


def make(out: Path) -> None:
    """Write ``base/``, ``lora/``, ``lora-vision/`` and ``square.png`` into ``out``."""
    from conftest import ROOT, load_module

    corpus = load_module(ROOT / "examples" / "tiny" / "make_tiny.py").corpus
    out.mkdir(parents=True, exist_ok=True)
    sp_model = _tokenizer(corpus(random.Random(0)))
    ids = _write_base(out / "base", sp_model)
    (out / "square.png").write_bytes(png(IMAGE_SIZE, IMAGE_SIZE, _square))
    _write_lora(out, "lora", ids, vision=False)
    _write_lora(out, "lora-vision", ids, vision=True)


def _tokenizer(text: list[str]) -> bytes:
    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text + [QUESTION, ANSWER] * 20), model_writer=buf, model_type="bpe", vocab_size=512,
        hard_vocab_limit=False, byte_fallback=True, user_defined_symbols=TOKENS, unk_id=0, bos_id=1, eos_id=2,
        pad_id=-1, character_coverage=1.0, num_threads=1, minloglevel=2, add_dummy_prefix=False,
        normalization_rule_name="identity")
    return buf.getvalue()


def _config(vocab: int, ids: dict[str, int]) -> Any:
    from transformers import Gemma3Config

    return Gemma3Config(
        text_config={"vocab_size": vocab, "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2,
                     "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64,
                     "max_position_embeddings": 512, "sliding_window": 128, "bos_token_id": 1, "eos_token_id": 2,
                     "pad_token_id": 0},
        vision_config={"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "image_size": IMAGE_SIZE, "patch_size": PATCH,
                       "vision_use_head": False},
        mm_tokens_per_image=TOKENS_PER_IMAGE, boi_token_index=ids["<start_of_image>"],
        eoi_token_index=ids["<end_of_image>"], image_token_index=ids["<image_soft_token>"],
        bos_token_id=1, eos_token_id=[2, ids["<end_of_turn>"]], pad_token_id=0)


def _write_base(base: Path, sp_model: bytes) -> dict[str, int]:
    import sentencepiece as spm
    import torch
    from transformers import Gemma3ForConditionalGeneration

    sp = spm.SentencePieceProcessor(model_proto=sp_model)
    ids = {t: sp.piece_to_id(t) for t in TOKENS}
    torch.manual_seed(0)
    model = Gemma3ForConditionalGeneration(_config(sp.get_piece_size(), ids))
    with torch.no_grad():  # initialised to zeros, it would project every image to nothing (a trained one does not)
        model.model.multi_modal_projector.mm_input_projection_weight.normal_(0.0, 0.05)
    model.save_pretrained(base, safe_serialization=True)
    (base / "tokenizer.model").write_bytes(sp_model)
    special = [("<unk>", 0), ("<bos>", 1), ("<eos>", 2), *ids.items()]
    (base / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "GemmaTokenizer", "model_max_length": 512, "bos_token": "<bos>", "eos_token": "<eos>",
        "unk_token": "<unk>", "add_bos_token": True, "add_eos_token": False, "chat_template": GEMMA3_TEMPLATE,
        "boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>",
        "added_tokens_decoder": {str(i): {"content": t, "special": True, "lstrip": False, "rstrip": False,
                                          "normalized": False, "single_word": False} for t, i in special},
    }, indent=2) + "\n")
    (base / "special_tokens_map.json").write_text(json.dumps(
        {"bos_token": "<bos>", "eos_token": "<eos>", "unk_token": "<unk>"}, indent=2) + "\n")
    (base / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "Gemma3ImageProcessor", "processor_class": "Gemma3Processor",
        "do_convert_rgb": True, "do_normalize": True, "do_rescale": True, "do_resize": True,
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "image_seq_length": TOKENS_PER_IMAGE,
        "resample": 2, "rescale_factor": 1 / 255, "size": {"height": IMAGE_SIZE, "width": IMAGE_SIZE},
    }, indent=2) + "\n")
    (base / "processor_config.json").write_text(json.dumps(
        {"image_seq_length": TOKENS_PER_IMAGE, "processor_class": "Gemma3Processor"}, indent=2) + "\n")
    (base / "README.md").write_text("# tiny-gemma3\n\nA tiny Gemma 3 that sees images, made by modelkit's tests.\n")
    return ids


def _square(x: int, y: int) -> tuple[int, int, int]:
    return (220, 30, 30) if 16 <= x < 48 and 16 <= y < 48 else (255, 255, 255)


def png(width: int, height: int, pixel: Any) -> bytes:
    """An RGB PNG of ``pixel(x, y)``, written with the standard library (zlib), byte for byte the same."""
    rows = b"".join(b"\0" + bytes(c for x in range(width) for c in pixel(x, y)) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def _pixels() -> Any:
    """The square as the processor feeds it: scaled to [0, 1], normalised by mean and std 0.5."""
    import torch

    values = [[[_square(x, y)[c] / 255 for x in range(IMAGE_SIZE)] for y in range(IMAGE_SIZE)] for c in range(3)]
    return (torch.tensor([values]) - 0.5) / 0.5


def _write_lora(out: Path, name: str, ids: dict[str, int], vision: bool, steps: int = 80) -> None:
    """A rank-8 LoRA trained to answer :data:`QUESTION` about the square with :data:`ANSWER`."""
    import sentencepiece as spm
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Gemma3ForConditionalGeneration

    sp = spm.SentencePieceProcessor(model_file=str(out / "base" / "tokenizer.model"))
    torch.manual_seed(1)
    model = Gemma3ForConditionalGeneration.from_pretrained(out / "base")
    towers = "language_model|vision_tower" if vision else "language_model"
    lora = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, bias="none",
                                            target_modules=rf".*({towers}).*\.(q_proj|k_proj|v_proj|o_proj)"))
    image = [ids["<start_of_image>"], *[ids["<image_soft_token>"]] * TOKENS_PER_IMAGE, ids["<end_of_image>"]]
    turn = sp.encode("user\n") + image + sp.encode(QUESTION)
    prompt = [1, ids["<start_of_turn>"], *turn, ids["<end_of_turn>"], *sp.encode("\n"), ids["<start_of_turn>"],
              *sp.encode("model\n")]
    answer = [*sp.encode(ANSWER), ids["<end_of_turn>"]]
    input_ids = torch.tensor([prompt + answer])
    labels = torch.tensor([[-100] * len(prompt) + answer])
    optimizer = torch.optim.AdamW([p for p in lora.parameters() if p.requires_grad], lr=1e-2)
    lora.train()
    for _ in range(steps):
        loss = lora(input_ids=input_ids, pixel_values=_pixels(), labels=labels,
                    token_type_ids=(input_ids == ids["<image_soft_token>"]).long()).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    lora.save_pretrained(out / name, safe_serialization=True)
    config_path = out / name / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = "tiny-gemma3"
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    card = out / name / "README.md"
    card.write_text(card.read_text().replace(str(out / "base"), "tiny-gemma3"))
