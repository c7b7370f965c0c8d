"""modelkit: declarative, incremental builds from Hugging Face models and LoRA adapters to
GGUF files and Ollama models, through llama.cpp."""

__version__ = "0.1.0"
