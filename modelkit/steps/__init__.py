"""The build steps, one action per file, each a small dataclass on :class:`~modelkit.steps.base.Step`.

fetch (a Hub repo into the HF cache), convert (HF folder to GGUF), convert_lora (PEFT adapter to
GGUF), merge (adapter into the base), quantize, template (inherit the chat template), modelfile
(render one variant's Modelfile), register (with Ollama).
"""
