"""The table of vision architectures in ``docs/guides/vision.md`` is the managed llama.cpp's own list, and the
detection behind it."""

from __future__ import annotations

import re

import pytest
from conftest import ROOT

from modelkit.formats.vision import projector, touches_vision, vision_tower

AUDIO = {"AudioFlamingo3ForConditionalGeneration", "GlmasrModel", "GraniteSpeechForConditionalGeneration",
         "GraniteSpeechPlusForConditionalGeneration", "Lfm2AudioForConditionalGeneration",
         "MERaLiON2ForConditionalGeneration", "PocketTTSModel", "Qwen2AudioForConditionalGeneration",
         "Qwen3ASRForConditionalGeneration", "Qwen3TTSForConditionalGeneration", "UltravoxModel",
         "VoxtralForConditionalGeneration"}


PAGE = ROOT / "docs" / "guides" / "vision.md"


def page_table() -> set[str]:
    text = PAGE.read_text(encoding="utf-8")
    table = text.split("| architecture | models | built end to end in the tests |")[1].split("\n\n")[0]
    return {name.strip() for row in table.splitlines()[2:] for name in row.split("|")[1].split(",")}


@pytest.mark.toolchain
def test_the_vision_page_names_every_architecture_the_toolchain_projects(toolchain: object) -> None:
    projectable = toolchain.projectable()
    assert "Gemma3ForConditionalGeneration" in projectable and "LlamaForCausalLM" not in projectable
    assert page_table() == set(projectable) - AUDIO
    assert set(projectable) >= AUDIO
    for name in AUDIO:
        assert re.search(name.removesuffix("ForConditionalGeneration").removesuffix("Model"),
                         PAGE.read_text(encoding="utf-8")), name


def test_a_config_with_a_vision_tower_is_one_that_sees_images() -> None:
    tower = vision_tower({"architectures": ["Gemma3ForConditionalGeneration"],
                          "vision_config": {"model_type": "siglip_vision_model", "image_size": 896}})
    assert tower is not None and (tower.architecture, tower.tower, tower.image_size) == (
        "Gemma3ForConditionalGeneration", "siglip_vision_model", 896)
    assert vision_tower({"architectures": ["LlamaForCausalLM"], "hidden_size": 4096}) is None


@pytest.mark.parametrize(("tensor", "vision"), [
    ("base_model.model.model.vision_tower.encoder.layers.0.self_attn.q_proj.lora_A.weight", True),
    ("base_model.model.model.multi_modal_projector.mm_input_projection_weight", True),
    ("base_model.model.visual.blocks.0.attn.qkv.lora_A.weight", True),
    ("base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_A.weight", False),
    ("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight", False),
])
def test_tensors_of_the_vision_half_are_told_apart(tensor: str, vision: bool) -> None:
    assert touches_vision(tensor) is vision


def test_a_projectors_header_gives_its_tokens_per_image() -> None:
    gemma = projector({"general.type": "mmproj", "clip.projector_type": "gemma3", "clip.vision.image_size": 896,
                       "clip.vision.patch_size": 14})
    assert gemma is not None and gemma.tokens_per_image == 256  # 64 patches a side, pooled by 4: 16 × 16
    qwen = projector({"general.architecture": "clip", "clip.projector_type": "qwen2vl_merger",
                      "clip.vision.image_size": 560, "clip.vision.patch_size": 14})
    assert qwen is not None and qwen.tokens_per_image is None  # as many as the image's size gives
    assert projector({"general.architecture": "llama"}) is None

